"""Churn: the demo booking systems' free slots changing as time passes (``--churn RATE``).

A demo system given ``--churn RATE`` changes ``RATE`` slots a minute, one every
``60 / RATE`` seconds, alternately one opened (a busy slot to come turns free, as a
cancellation would free it; the bulk publisher opens a new one) and one taken (a
free slot to come turns busy). Which ones is drawn from a random stream seeded by
the world's seed and the system's name: the same run changes the same slots, in
the same order. ``python app.py`` starts its demo with ``--demo-churn 6``, so that a
subscription in GraphiQL hears of a slot within a minute; ``--demo-churn 0`` stills it.

    churn = Churn(6, seed=2026, system="fhir")
    slot = churn.pick(clinic_ids, slots_of, opening=True)  # a busy slot to free, or None
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Protocol

from aiohttp import web

from examples.world import WorldSlot
from sources.timeutil import MONTREAL

__all__ = ["CHURN_HELP", "DEFAULT_RATE", "SERVED", "Churn", "Served", "churn_argument", "churning"]


class Served(Protocol):
    """A demo system's slots as it serves them now, which churn (and tests) change."""

    def slots_of(self, clinic_id: str) -> list[WorldSlot]: ...

    def set_free(self, slot: WorldSlot, free: bool) -> WorldSlot: ...


# Where a demo system's app keeps what it serves (``app[SERVED]``), for tests.
SERVED: web.AppKey[Served] = web.AppKey("served", Served)

DEFAULT_RATE = 6.0
CHURN_HELP = "slots opened and taken a minute, alternately (0: none, the default)"
# Clinics tried for one change before it is skipped (all their slots past or alike).
_TRIES = 20

logger = logging.getLogger("passerelle.demo.churn")


def _montreal_now() -> datetime:
    return datetime.now(MONTREAL)


class Churn:
    """Which slot changes next, for one demo system (see the module docstring)."""

    def __init__(
        self,
        rate: float,
        *,
        seed: int,
        system: str,
        clock: Callable[[], datetime] = _montreal_now,
    ) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"a churn rate must be a positive number, got {rate}")
        self.interval_s = 60.0 / rate
        self.clock = clock
        self.rng = random.Random(zlib.crc32(f"churn|{seed}|{system}".encode()))

    def pick(
        self,
        clinic_ids: Sequence[str],
        slots_of: Callable[[str], Sequence[WorldSlot]],
        *,
        opening: bool,
    ) -> WorldSlot | None:
        """A slot to come that is busy (``opening``) or free (taking), of a clinic drawn
        at random; None when the clinics tried have none."""
        now = self.clock()
        for _ in range(_TRIES if clinic_ids else 0):
            clinic_id = self.rng.choice(clinic_ids)
            candidates = [s for s in slots_of(clinic_id) if s.free is not opening and s.start > now]
            if candidates:
                return self.rng.choice(candidates)
        return None


def churning(
    churn: Churn, step: Callable[[bool], object]
) -> Callable[[web.Application], AsyncIterator[None]]:
    """An aiohttp ``cleanup_ctx`` calling ``step(opening)`` every ``churn.interval_s``,
    alternately opening and taking, for as long as the app runs."""

    async def run() -> None:
        opening = True
        while True:
            await asyncio.sleep(churn.interval_s)
            try:
                step(opening)
            except Exception:  # a bad step must not stop the demo
                logger.exception("a churn step failed")
            opening = not opening

    async def context(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(run())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context


def churn_argument(text: str) -> float:
    """``--churn``'s value: slots a minute, 0 for none."""
    import argparse

    try:
        rate = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected slots a minute, got {text!r}") from None
    if not (math.isfinite(rate) and rate >= 0):
        raise argparse.ArgumentTypeError(f"expected 0 or more slots a minute, got {text!r}")
    return rate
