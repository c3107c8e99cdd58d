"""The sources as the API shows them (``SourceView``), kept until a source changes.

Every request takes the views twice (its context's snapshot, then
``extensions.sources``), and a view costs its adapter's ``problems`` (tallies of
places, the capabilities, the problem books) merged with the pool's own. ``ViewKeeper``
keeps the last views built and hands them out again while nothing they are made of
has changed. What changes them, and how a change is seen:

- the pool's own events (``ViewKeeper.changed``: a registry sync, a call's outcome
  recorded in the health, a copy loaded, a new health) bump an epoch, and each
  health's count of calls recorded is compared;
- a problem noted or cleared in any ``ProblemBook`` (an adapter's or the health's:
  ``sources.problems.problem_changes``) in a way a view shows;
- what each adapter says of itself without the pool seeing a call (its status hint,
  probe, copy's age, last success, latency, skipped records) and each circuit's
  status (which turns from open to half-open with time) are read on every take and
  compared: a handful of attribute reads, not the problems;
- what changes with time alone and says nothing (a problem forgotten ``ttl_s``
  after it was last noted; an adapter's background work that touches none of the
  above) shows within ``MAX_AGE_S``: views are never older than that.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sources.problems import problem_changes
from sources.records import SourceProblem, SourceProtocol, SourceStatus

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from sources.base import Source, SourceConfig
    from sources.pool.breaker import SourceBreakers
    from sources.pool.health import SourceHealth

__all__ = ["MAX_AGE_S", "SourceView", "ViewKeeper", "Views"]

# Views are rebuilt at least this often, whatever the signals say (see the docstring).
MAX_AGE_S = 0.5


@dataclass(frozen=True, slots=True)
class SourceView:
    """A registered source as the API shows it."""

    id: str
    name: str
    protocol: SourceProtocol
    status: SourceStatus
    last_success_at: datetime | None
    latency_ms: float | None
    data_as_of: datetime | None = None
    skipped_records: int | None = None
    problems: tuple[SourceProblem, ...] = ()


@dataclass(frozen=True, slots=True)
class Views:
    """One build of the views: in registry order, by id, and each enabled adapter's own
    problems (what a search reads to tell whether a source knows it lacks slots)."""

    listed: tuple[SourceView, ...]
    by_id: Mapping[str, SourceView]
    adapter_problems: Mapping[str, tuple[Source, tuple[SourceProblem, ...]]]


class ViewKeeper:
    """The last ``Views`` built, and what they were built from."""

    __slots__ = ("_built_at", "_epoch", "_kept", "_key")

    def __init__(self) -> None:
        self._epoch = 0
        self._kept: Views | None = None
        self._key: tuple[object, ...] = ()
        self._built_at = 0.0

    def changed(self) -> None:
        """Something the pool saw may show in a view: the next take builds anew."""
        self._epoch += 1

    def take(
        self,
        configs: Sequence[SourceConfig],
        adapters: Mapping[str, Source],
        health: Mapping[str, SourceHealth],
        breakers: SourceBreakers,
        build: Callable[[], Views],
    ) -> Views:
        key = _key(self._epoch, configs, adapters, health, breakers)
        now = time.monotonic()
        kept = self._kept
        if kept is not None and key == self._key and now - self._built_at <= MAX_AGE_S:
            return kept
        # The build does not await: nothing changes between the key and the views.
        kept = self._kept = build()
        self._key, self._built_at = key, now
        return kept


def _key(
    epoch: int,
    configs: Sequence[SourceConfig],
    adapters: Mapping[str, Source],
    health: Mapping[str, SourceHealth],
    breakers: SourceBreakers,
) -> tuple[object, ...]:
    parts: list[object] = [epoch, problem_changes(), len(configs)]
    for config in configs:
        adapter = adapters.get(config.id)
        seen = health.get(config.id)
        parts += (config, breakers.status(config.id), seen.calls if seen is not None else -1)
        if adapter is None:
            parts.append(None)
            continue
        parts += (
            adapter,
            adapter.status_hint(),
            adapter.probed_at,
            adapter.last_success_at,
            adapter.data_as_of,
            adapter.latency_ms,
            adapter.skipped_records,
        )
    return tuple(parts)
