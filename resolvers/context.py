"""The per-request context: a snapshot of the sources, the loaders, the errors to report.

Loaders are aiodataloader ``DataLoader``s built lazily inside the request's
event loop (never at import time: aiodataloader binds the loop it was built
in), so a query makes one batched call per source per kind of lookup whatever
the number of objects in its result.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from aiodataloader import DataLoader

from sources.search import Federation

if TYPE_CHECKING:
    from resolvers.webhooks import WebhookAccess
    from sources.errors import SourceError
    from sources.pool import SourcePool, SourceView
    from sources.search import FoundSlot, MergedClinic, MergedPhysician
    from sources.watch import SlotWatch


DEFAULT_FANOUT_DEADLINE_S = 3.0


@dataclass(frozen=True, slots=True)
class ReportedError:
    error: SourceError
    path: list[str | int] | None


@dataclass
class RequestContext:
    """What every resolver of one GraphQL request shares."""

    pool: SourcePool
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    reported: list[ReportedError] = field(default_factory=list)
    # All the waiting on booking sources one request may do, whatever it asks.
    fanout_deadline_s: float | None = DEFAULT_FANOUT_DEADLINE_S
    # Whether this request may introspect the schema (production: only some keys).
    allow_introspection: bool = True
    # Whether this request sees what is for operators only (a source problem's samples
    # and upstream diagnostics): development mode, or an operator's key in production.
    # False unless the edge says so: a context built elsewhere errs on the safe side.
    operator_view: bool = False
    # The partner client whose key the request carries (edge/documents/partners.py);
    # None: anonymous.
    client_id: str | None = None
    # The app's watch of the sources, for subscriptions (slot alerts); None: none here.
    watch: SlotWatch | None = None
    # Charges this request ``n`` more requests of its client's rate budget; the refusal's
    # message when that is over it, else None (the edge sets it; None: no limits here).
    charge: Callable[[float], Awaitable[str | None]] | None = None
    # Partners' webhook alerts (resolvers/webhooks.py); None: not on this gateway.
    webhooks: WebhookAccess | None = None
    # The root fields (response keys) whose compiled plan reads records rather than
    # strawberry objects (schema/plan/records.py): their resolvers return records.
    record_roots: set[str | int] = field(default_factory=set)
    federation: Federation = field(init=False)
    _views: Mapping[str, SourceView] = field(init=False, repr=False)
    _renewed: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        # One snapshot of the sources per request: a registry change while it runs
        # cannot leave a slot whose source is unknown.
        self.federation = Federation(self.pool, self.fanout_deadline_s)
        # The pool's own map, kept until a source changes (read only).
        self._views = self.pool.view_map()

    def renew(self, now: datetime) -> None:
        """Start afresh at ``now``, as a new request would (a subscription's next event):
        a new snapshot of the sources and deadline, no loader's cached answer, no error
        reported yet. The snapshot is shared with the other subscriptions renewed within
        ``SHARED_VIEWS_S`` (one change reaches thousands of them at once)."""
        self.now = now
        self.reported = []
        self.federation = Federation(self.pool, self.fanout_deadline_s)
        self._views = {v.id: v for v in recent_views(self.pool)}
        self._renewed = True
        for loader in _LOADERS:
            self.__dict__.pop(loader, None)

    def views_now(self) -> list[SourceView]:
        """The sources as they are now (what ``extensions.sources`` tells); a renewed
        context's events share a snapshot at most ``SHARED_VIEWS_S`` old."""
        return recent_views(self.pool) if self._renewed else self.pool.views()

    def report(self, errors: Sequence[SourceError], path: list[str | int] | None = None) -> None:
        """Remember source failures; each failed source is reported once per request."""
        seen = {r.error.source_id for r in self.reported}
        for error in errors:
            if error.source_id not in seen:
                seen.add(error.source_id)
                self.reported.append(ReportedError(error, path))

    def source_view(self, source_id: str) -> SourceView | None:
        return self._views.get(source_id)

    # -- loaders -------------------------------------------------------------------

    @cached_property
    def clinic_loader(self) -> DataLoader[str, MergedClinic | None]:
        """Merged key -> MergedClinic or None."""

        async def batch(keys: list[str]) -> list[MergedClinic | None]:
            found = await self.federation.clinics_by_keys(keys)
            self.report(found.errors)
            return [found.value.get(k) for k in keys]

        return DataLoader(batch)

    @cached_property
    def physician_loader(self) -> DataLoader[str, MergedPhysician | None]:
        async def batch(keys: list[str]) -> list[MergedPhysician | None]:
            found = await self.federation.physicians_by_keys(keys)
            self.report(found.errors)
            return [found.value.get(k) for k in keys]

        return DataLoader(batch)

    @cached_property
    def physicians_of_clinic_loader(self) -> DataLoader[MergedClinic, list[MergedPhysician]]:
        async def batch(clinics: list[MergedClinic]) -> list[list[MergedPhysician]]:
            found = await self.federation.physicians_of_clinics(clinics)
            self.report(found.errors)
            return [found.value.get(c.key, []) for c in clinics]

        return DataLoader(batch, get_cache_key=_key_of)

    @cached_property
    def clinics_of_physician_loader(self) -> DataLoader[MergedPhysician, list[MergedClinic]]:
        async def batch(physicians: list[MergedPhysician]) -> list[list[MergedClinic]]:
            found = await self.federation.clinics_of_physicians(physicians)
            self.report(found.errors)
            return [found.value.get(p.key, []) for p in physicians]

        return DataLoader(batch, get_cache_key=_key_of)

    @cached_property
    def next_slots_loader(self) -> DataLoader[NextSlotsKey, list[FoundSlot]]:
        """(MergedClinic | MergedPhysician, first, types) -> list[FoundSlot]."""
        from resolvers.slots import batch_next_slots

        async def batch(keys: list[NextSlotsKey]) -> list[list[FoundSlot]]:
            return await batch_next_slots(self, keys)

        return DataLoader(
            batch, get_cache_key=lambda k: (type(k.owner), k.owner.key, k.first, k.types)
        )


@dataclass(frozen=True, slots=True)
class NextSlotsKey:
    owner: MergedClinic | MergedPhysician
    first: int
    types: frozenset[Any] | None


# The cached loaders, dropped by ``renew``.
_LOADERS = (
    "clinic_loader",
    "physician_loader",
    "physicians_of_clinic_loader",
    "clinics_of_physician_loader",
    "next_slots_loader",
)


def _key_of(item: MergedClinic | MergedPhysician) -> str:
    return item.key


# Subscription events renewed within this long share one snapshot of the sources.
SHARED_VIEWS_S = 0.5
_RECENT: WeakKeyDictionary[SourcePool, tuple[float, list[SourceView]]] = WeakKeyDictionary()


def recent_views(pool: SourcePool) -> list[SourceView]:
    """``pool.views()``, taken at most ``SHARED_VIEWS_S`` ago."""
    now = time.monotonic()
    taken = _RECENT.get(pool)
    if taken is None or now - taken[0] > SHARED_VIEWS_S:
        taken = _RECENT[pool] = (now, pool.views())
    return taken[1]
