"""How often a booking source's slots are gone when a patient follows them: its
phantom-slot rate (``PhantomTally``).

Each hand-off (a patient following a slot's link through the gateway, which checks
the slot first) is counted for the source that listed the slot, and so is each one
found gone then. Nothing is kept per physician nor per patient: two counters per
source, in this process, since it started. A rate is shown only for a source known
to have at least ``MIN_PHYSICIANS`` physicians (a bulk feed's copy says how many; a
live source, once the slots checked have come from that many distinct physicians,
of whom only that many ids are held, until the count is reached): for a source of
one or two physicians the rate would tell their workload.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["MIN_PHYSICIANS", "PhantomRate", "PhantomTally"]

MIN_PHYSICIANS = 5


@dataclass(frozen=True, slots=True)
class PhantomRate:
    """A source's hand-offs, how many were gone, and their ratio (None: not shown, too
    few physicians known)."""

    hand_offs: int
    gone: int
    rate: float | None


@dataclass(slots=True)
class _Counts:
    hand_offs: int = 0
    gone: int = 0
    # Distinct physicians met, held only until MIN_PHYSICIANS are (then dropped).
    physicians: set[str] | None = field(default_factory=set)


class PhantomTally:
    """The hand-off counters of every source of one process."""

    def __init__(self) -> None:
        self._counts: dict[str, _Counts] = {}

    def hand_off(self, source_id: str, *, gone: bool, physician_id: str | None) -> None:
        counts = self._counts.setdefault(source_id, _Counts())
        counts.hand_offs += 1
        counts.gone += int(gone)
        seen = counts.physicians
        if seen is not None and physician_id:
            seen.add(physician_id)
            if len(seen) >= MIN_PHYSICIANS:
                counts.physicians = None  # enough known: the ids are dropped

    def rate(self, source_id: str, physicians: int | None = None) -> PhantomRate:
        """The source's counts; its rate when it has at least ``MIN_PHYSICIANS``
        physicians (``physicians``: what the source itself says, if it knows)."""
        counts = self._counts.get(source_id, _Counts())
        enough = counts.physicians is None or (physicians or 0) >= MIN_PHYSICIANS
        shown = enough and counts.hand_offs > 0
        return PhantomRate(
            counts.hand_offs, counts.gone, counts.gone / counts.hand_offs if shown else None
        )
