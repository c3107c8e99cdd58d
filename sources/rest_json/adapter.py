"""Adapter for the proprietary REST/JSON booking API ("RDV Québec" style).

The API itself is documented in ``examples/demo_rest/``: French field names,
each clinic's local times without offset, ``page``/``limite`` paging, integer ids,
an ``X-Cle-Api`` key header. This adapter pushes every filter the API knows
down, follows pages only as far as the query needs, then fetches the clinics
and physicians the slots refer to, batched by ids, those its ``directory`` does not
hold fresh (``directory_ttl_s``).

    source = RestJsonSource(
        SourceConfig(id="rdvq", name="RDV Québec", protocol=SourceProtocol.REST_JSON,
                     url="http://127.0.0.1:8102/api/v1", credentials="KEY"),
        SourceContext(session, logging.getLogger("passerelle.sources.rdvq")),
    )
    result = await source.search_slots(SlotQuery(start, end, limit=50))

Options: ``sources.rest_json.options.RestJsonOptions`` (page size, key header,
identifier systems), typed and checked when the definition is read.

Tolerance: a malformed item is skipped and counted in one log line per call
(counts only, never payloads); a body that is not the paging envelope is a
``SourceBadResponse``. Reading bodies is ``sources.rest_json.payload``'s part.
Clinics are placed as every adapter places them (``sources.places``); those met lately
make the source's place problems.

It stays one module past 400 lines because :class:`RestJsonSource` is one API's requests:
paging, id batching by URL length and the local-time bounds share its paging state;
the payloads are already apart (``payload``).
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final, TypeVar
from urllib.parse import quote

from sources.base import Source
from sources.errors import AnswerTooLarge, SourceBadResponse
from sources.geo import valid_point
from sources.places import PlaceKind, place_problems
from sources.problems import MAX_SAMPLES
from sources.records import (
    AppointmentType,
    ClinicQuery,
    ClinicRecord,
    GeoPoint,
    Identifier,
    PhysicianQuery,
    PhysicianRecord,
    Region,
    SlotCheck,
    SlotQuery,
    SlotRecord,
    SlotResult,
    SlotState,
    SourceProtocol,
)
from sources.rest_json.directory import Directory, Held
from sources.rest_json.options import RestJsonOptions
from sources.rest_json.payload import (
    TYPES_BY_CODE,
    ItemReader,
    SlotItem,
    api_id,
    read_item,
    read_page,
)
from sources.time_zones import QUEBEC_ZONES
from sources.timeutil import zone_info
from sources.transport.http import request_json

if TYPE_CHECKING:
    from sources.base import SourceConfig, SourceContext
    from sources.records import SourceProblem
    from sources.rest_json.directory import Ask
    from sources.rest_json.payload import Page, Reader

# A hostile or broken upstream may announce any number of pages; never follow more.
MAX_PAGES: Final = 50
# The API refuses a list parameter of more values than this.
MAX_LIST_VALUES: Final = 1000
# Characters of ids per batched lookup, to keep URLs well under common 8 KiB
# request-line limits: short ids go up to MAX_LIST_VALUES per call, long ones fewer.
ID_CHARS_PER_CALL: Final = 5000
MAX_RADIUS_KM: Final = 1000.0

CODES_BY_TYPE: Final[Mapping[AppointmentType, str]] = {t: c for c, t in TYPES_BY_CODE.items()}
# Official codes of Quebec's administrative regions, "01" to "17", in Region's order.
REGION_CODES: Final[Mapping[Region, str]] = {r: f"{i:02d}" for i, r in enumerate(Region, 1)}

_R = TypeVar("_R", SlotItem, ClinicRecord, PhysicianRecord, "Held[Any]")


@dataclass(slots=True)
class _Paging:
    """Where a paged listing stands: ``last`` once the upstream has no further page,
    ``stuck`` when it stopped making progress (page cap, page that does not advance)."""

    page: int = 1
    last: bool = False
    stuck: bool = False
    total: int | None = None

    @property
    def more(self) -> bool:
        return not (self.last or self.stuck)


class RestJsonSource(Source):
    """The REST/JSON booking system. See the module docstring."""

    protocol = SourceProtocol.REST_JSON

    def __init__(self, config: SourceConfig, context: SourceContext) -> None:
        super().__init__(config, context)
        self._base = config.url.rstrip("/")
        self.options = config.options_as(RestJsonOptions)
        self._key_header = self.options.api_key_header
        self._permit_system = self.options.clinic_permit_system
        self._licence_system = self.options.physician_licence_system
        self._items = ItemReader(self.id, self._permit_system, self._licence_system)
        self._page_size = self.options.page_size
        self._languages_refused = False  # the languages parameter got a 400: not sent
        # Clinics and physicians read by id, kept (``directory``); None: asked every time.
        ttl = self.options.directory_ttl_s
        self.directory = Directory(self._items, ttl) if ttl > 0 else None

    @property
    def problems(self) -> tuple[SourceProblem, ...]:
        tally = self._items.places.tally()
        outside = sorted(tally.kinds[PlaceKind.OUTSIDE_QUEBEC], key=lambda i: (len(i), i))
        return tuple(
            place_problems(
                tally.places,
                ask="its position (lat, lng)",
                outside_samples=tuple(f"cliniques/{i}" for i in outside[:MAX_SAMPLES]),
                slots_seen=True,
            )
        )

    # -- slots --------------------------------------------------------------

    async def search_slots(self, query: SlotQuery) -> SlotResult:
        if query.starts_before < query.starts_after:
            return SlotResult(slots=(), complete=True, total=0)
        param = self.options.slot_languages_param
        if not query.languages or param is None or self._languages_refused:
            return await self._search_slots(query, [])
        # The language, not its region: "fr-CA" asks "fr".
        spoken = ",".join(sorted({code.split("-")[0].lower() for code in query.languages}))
        try:
            return await self._search_slots(query, [(param, spoken)])
        except SourceBadResponse as exc:
            refused = "HTTP 400" in str(exc) or "HTTP 422" in str(exc)
            if isinstance(exc, AnswerTooLarge) or not refused:
                raise
            self._languages_refused = True
            self.logger.warning(
                "the API refused the languages parameter %r (%s): no longer sent, the "
                "gateway filters languages",
                param,
                exc,
            )
            return await self._search_slots(query, [])

    async def _search_slots(self, query: SlotQuery, languages: list[tuple[str, str]]) -> SlotResult:
        """``languages``: the API's languages parameter, when it has one (else empty)."""
        pushed = self._slot_params(query)
        if pushed is None:  # a filter no slot of this source can match
            return SlotResult(slots=(), complete=True, total=0)
        params, wanted = pushed
        params += languages
        limit = max(1, query.limit)
        # Twice the limit: what comes past it tells where the limit's tie group ends.
        page_size = min(self._page_size, 2 * limit)
        skipped: Counter[str] = Counter()
        candidates: dict[str, SlotItem] = {}
        # The candidates whose clinic is known, their times read in its zone (start,
        # end, the start's POSIX time), or None when it does not match after all (or
        # ends before it starts). Records are made only for the slots kept, once sorted.
        placed: dict[str, tuple[SlotItem, datetime, datetime, float] | None] = {}
        clinics: dict[str, ClinicRecord] = {}
        physicians: dict[str, PhysicianRecord] = {}
        unknown_clinics: set[str] = set()
        looked_up_physicians: set[str] = set()
        paging = _Paging()

        def usable() -> int:
            """Candidates that may be kept: placed and matching, or not placed yet."""
            return sum(
                placed.get(s.local_id, True) is not None
                for s in candidates.values()
                if s.clinic_local_id not in unknown_clinics
            )

        while True:
            while paging.more and usable() < limit:
                answer = await self._next_page("disponibilites", params, paging, page_size)
                if answer is None:
                    break
                if _add_items(answer.items, self._items.slot, candidates, skipped, wanted.read):
                    self.logger.warning("disponibilites: a page repeated earlier slots; stopped")
                    paging.stuck = True
            # Clinics decide which slots stay (their region must be known, and their
            # zone places naive times): look up the new ones, the new physicians alongside.
            new_clinics = {s.clinic_local_id for s in candidates.values()}
            new_clinics -= clinics.keys() | unknown_clinics
            new_physicians = {
                s.physician_local_id
                for s in candidates.values()
                if s.physician_local_id is not None
            } - looked_up_physicians
            found_clinics, found_physicians = await asyncio.gather(
                self._clinics_by_ids(new_clinics, skipped),
                self._physicians_by_ids(new_physicians, skipped),
            )
            clinics.update(found_clinics)
            physicians.update(found_physicians)
            unknown_clinics |= new_clinics - found_clinics.keys()
            looked_up_physicians |= new_physicians
            for item in candidates.values():
                clinic = clinics.get(item.clinic_local_id)
                if clinic is not None and item.local_id not in placed:
                    timed = item.placed(zone_info(clinic.time_zone))
                    if timed is None:
                        skipped["end not after start"] += 1
                    matches = timed is not None and wanted.placed(item, timed[2])
                    placed[item.local_id] = (item, *timed) if matches and timed else None
            if usable() >= limit or not paging.more:
                break

        kept = sorted(
            (p for p in placed.values() if p is not None), key=lambda p: (p[3], p[0].local_id)
        )
        if unknown_clinics:
            # Slots of clinics outside Quebec are not served, and not malformed either.
            places = self._items.places.current
            outside = unknown_clinics & places.kinds[PlaceKind.OUTSIDE_QUEBEC]
            abroad = sum(s.clinic_local_id in outside for s in candidates.values())
            places.outside_slots = max(places.outside_slots, abroad)
            unknown = sum(s.clinic_local_id in unknown_clinics for s in candidates.values())
            if unknown - abroad:
                skipped["slot of an unknown clinic"] += unknown - abroad
        complete = paging.last and len(kept) <= limit
        cut = limit
        if not complete and len(kept) > limit:
            # The slots starting with the limit's last one are kept whole when a later
            # one was read: the gateway can then settle that start without more.
            while cut < len(kept) and kept[cut][1] == kept[limit - 1][1]:
                cut += 1
        ties_complete = cut < len(kept)
        # A physician the API did not list is not named.
        slots = tuple(
            item.record(
                start, end, doctor if (doctor := item.physician_local_id) in physicians else None
            )
            for item, start, end, _ in kept[:cut]
        )
        self._log_skipped("slot search", skipped)
        return SlotResult(
            slots=slots,
            complete=complete,
            total=paging.total,
            ties_complete=ties_complete,
            clinics={s.clinic_local_id: clinics[s.clinic_local_id] for s in slots},
            physicians={
                s.physician_local_id: physicians[s.physician_local_id]
                for s in slots
                if s.physician_local_id is not None
            },
        )

    def _slot_params(self, query: SlotQuery) -> tuple[list[tuple[str, str]], _SlotFilter] | None:
        """The API parameters for ``query`` and the filter re-checking them, ``None``
        when nothing can match."""
        clinic_ids = physician_ids = None
        low, high = local_bounds(query.starts_after, query.starts_before)
        params = [
            ("statut", "libre"),
            ("debut_min", low.isoformat(timespec="seconds")),
            ("debut_max", high.isoformat(timespec="seconds")),
        ]
        # A list too long for the API is not pushed down; the filter re-checks it.
        if query.clinic_local_ids is not None:
            clinic_ids = _api_ids(query.clinic_local_ids)
            if not clinic_ids:
                return None
            if len(clinic_ids) <= MAX_LIST_VALUES:
                params.append(("cliniques", ",".join(clinic_ids)))
        if query.physician_local_ids is not None:
            physician_ids = _api_ids(query.physician_local_ids)
            if not physician_ids:
                return None
            if len(physician_ids) <= MAX_LIST_VALUES:
                params.append(("medecins", ",".join(physician_ids)))
        if query.appointment_types is not None:
            if not query.appointment_types:
                return None
            codes = sorted(CODES_BY_TYPE[t] for t in query.appointment_types)
            params.append(("types", ",".join(codes)))
        if query.region is not None:
            params.append(("region", REGION_CODES[query.region]))
        params += _circle_params(query.near, query.radius_km)
        return params, _SlotFilter(
            after=query.starts_after,
            before=query.starts_before,
            naive_after=low,
            naive_before=high,
            types=query.appointment_types,
            clinics=None if clinic_ids is None else frozenset(clinic_ids),
            physicians=None if physician_ids is None else frozenset(physician_ids),
        )

    # -- clinics and physicians ---------------------------------------------

    async def search_clinics(self, query: ClinicQuery) -> list[ClinicRecord]:
        params: list[tuple[str, str]] = []
        # Long id or permit lists are asked for in batches, each with the other filters.
        batches: list[list[tuple[str, str]]] = [[]]
        if query.local_ids is not None:
            ids = _api_ids(query.local_ids)
            if not ids:
                return []
            batches = [[("ids", ",".join(c))] for c in _chunks(ids)]
        if query.identifiers is not None:
            permits = _values_of(query.identifiers, self._permit_system)
            if not permits:
                return []
            batches = [
                [*batch, ("no_permis", ",".join(c))] for batch in batches for c in _chunks(permits)
            ]
        if query.postal_codes is not None:
            codes = sorted({_compact(c) for c in query.postal_codes if _compact(c)})
            if not codes:
                return []
            params.append(("code_postal", ",".join(codes)))
        if query.name_contains is not None and query.name_contains.strip():
            params.append(("nom", query.name_contains.strip()))
        if query.region is not None:
            params.append(("region", REGION_CODES[query.region]))
        params += _circle_params(query.near, query.radius_km)
        skipped: Counter[str] = Counter()
        answers = await asyncio.gather(
            *(
                self._listing("cliniques", [*b, *params], self._items.clinic, skipped)
                for b in batches
            )
        )
        self._log_skipped("clinic search", skipped)
        return _first_of_each(answers)

    async def get_physicians(self, query: PhysicianQuery) -> list[PhysicianRecord]:
        # The API combines different filters with AND; the query means any of them.
        lookups: list[tuple[str, list[str]]] = [
            ("ids", _api_ids(query.local_ids)),
            ("no_licence", _values_of(query.identifiers, self._licence_system)),
            ("clinique", _api_ids(query.clinic_local_ids)),
        ]
        skipped: Counter[str] = Counter()
        answers = await asyncio.gather(
            *(
                self._listing("medecins", [(name, ",".join(c))], self._items.physician, skipped)
                for name, values in lookups
                for c in _chunks(values)
            )
        )
        self._log_skipped("physician lookup", skipped)
        return _first_of_each(answers)

    # -- paging and calls ---------------------------------------------------

    async def _clinics_by_ids(
        self, ids: set[str], skipped: Counter[str]
    ) -> dict[str, ClinicRecord]:
        if self.directory is None:
            return await self._by_ids("cliniques", ids, self._items.clinic, skipped)
        ask = self._asker("cliniques", skipped)
        return await self.directory.clinics.by_ids(ids, ask, skipped, self._items.places)

    async def _physicians_by_ids(
        self, ids: set[str], skipped: Counter[str]
    ) -> dict[str, PhysicianRecord]:
        if self.directory is None:
            return await self._by_ids("medecins", ids, self._items.physician, skipped)
        ask = self._asker("medecins", skipped)
        return await self.directory.physicians.by_ids(ids, ask, skipped, self._items.places)

    def _asker(self, resource: str, skipped: Counter[str]) -> Ask[Any]:
        """The directory's way to ask ``resource`` by ids: :meth:`_by_ids`, and whether
        every batch was read to its last page."""

        async def ask(ids: list[str], read: Reader[Held[Any]]) -> tuple[dict[str, Held[Any]], bool]:
            pagings: list[_Paging] = []
            found = await self._by_ids(resource, ids, read, skipped, pagings)
            return found, all(p.last for p in pagings)

        return ask

    async def _by_ids(
        self,
        resource: str,
        ids: Iterable[str],
        read: Reader[_R],
        skipped: Counter[str],
        pagings: list[_Paging] | None = None,
    ) -> dict[str, _R]:
        """Records by local id, one paged call per batch of ids, batches concurrently;
        each batch's paging, where it ended, is added to ``pagings`` when given."""
        batches = [(c, _Paging()) for c in _chunks(sorted(ids, key=lambda i: (len(i), i)))]
        if pagings is not None:
            pagings += (p for _, p in batches)
        answers = await asyncio.gather(
            *(self._listing(resource, [("ids", ",".join(c))], read, skipped, p) for c, p in batches)
        )
        return {k: v for answer in answers for k, v in answer.items()}

    async def _listing(
        self,
        resource: str,
        params: list[tuple[str, str]],
        read: Reader[_R],
        skipped: Counter[str],
        paging: _Paging | None = None,
    ) -> dict[str, _R]:
        """Every record of a paged listing (up to ``MAX_PAGES`` pages), by local id."""
        found: dict[str, _R] = {}
        paging = paging or _Paging()
        while paging.more:
            answer = await self._next_page(resource, params, paging, self._page_size)
            if answer is None:
                break
            if _add_items(answer.items, read, found, skipped):
                self.logger.warning("%s: a page repeated earlier records; stopped", resource)
                paging.stuck = True
        return found

    async def _next_page(
        self, resource: str, params: list[tuple[str, str]], paging: _Paging, page_size: int
    ) -> Page | None:
        """Fetch ``paging.page`` and advance ``paging``; ``None`` when paging must stop."""
        if paging.page > MAX_PAGES:
            self.logger.warning("%s: stopped after %d pages", resource, MAX_PAGES)
            paging.stuck = True
            return None
        requested = paging.page
        answer = await self._get(
            resource, [*params, ("page", str(requested)), ("limite", str(page_size))]
        )
        if answer.total is not None:
            paging.total = answer.total
        if answer.page is not None and answer.page != requested:
            self.logger.warning(
                "%s: asked for page %d, got page %d; stopped", resource, requested, answer.page
            )
            paging.stuck = True
            return answer if requested == 1 else None
        if answer.pages is not None:
            paging.last = requested >= answer.pages
        else:  # no page count: a short page is the last one
            paging.last = len(answer.items) < page_size
        if not answer.items and not paging.last:
            paging.stuck = True
        paging.page += 1
        return answer

    async def check_slot(self, slot: SlotRecord) -> SlotCheck:
        """``GET`` the option ``slot_path`` with the slot's id; ``UNKNOWN`` without it."""
        path = self.options.slot_path
        if path is None:
            return SlotCheck(SlotState.UNKNOWN)
        now = datetime.now(UTC)
        target = path.replace("{id}", quote(slot.local_id, safe=""))
        body = await self._read(target, absent=frozenset({404, 410}))
        if body is None:
            return SlotCheck(SlotState.GONE, now)
        if not isinstance(body, dict) or str(body.get("id")) != slot.local_id:
            raise SourceBadResponse(self.id, f"{path}: the answer is not that slot")
        status = body.get("statut")
        free = isinstance(status, str) and status.strip().lower() == "libre"
        return SlotCheck(SlotState.FREE if free else SlotState.GONE, now)

    async def _get(self, resource: str, params: list[tuple[str, str]]) -> Page:
        return read_page(self.id, resource, await self._read(resource, params))

    async def _read(
        self,
        resource: str,
        params: list[tuple[str, str]] | None = None,
        absent: frozenset[int] = frozenset(),
    ) -> Any:
        """One ``GET`` of ``resource`` (relative to the source URL), with the API key;
        None for a status in ``absent``."""
        headers = {"Accept": "application/json"}
        if self.config.credentials:
            headers[self._key_header] = self.config.credentials
        return await request_json(
            self.session,
            self.id,
            "GET",
            f"{self._base}/{resource}",
            timeout_s=self.config.timeout_s,
            connect_timeout_s=self.config.effective_connect_timeout_s,
            read_timeout_s=self.config.effective_read_timeout_s,
            params=params,
            headers=headers,
            absent=absent,
        )

    def _log_skipped(self, what: str, skipped: Counter[str]) -> None:
        if skipped:
            detail = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items()))
            self.logger.warning("%s: skipped %d item(s): %s", what, skipped.total(), detail)


# -- reading answers ----------------------------------------------------------


def _add_items(
    items: list[object],
    read: Reader[_R],
    found: dict[str, _R],
    skipped: Counter[str],
    keep: Callable[[_R], bool] | None = None,
) -> bool:
    """Add the readable items that ``keep`` accepts to ``found``, by local id.

    True when the page brought nothing new but repeated earlier records: the
    upstream is not advancing, and paging must stop.
    """
    known = len(found)
    duplicates = 0
    for item in items:
        record = read_item(read, item, skipped)
        if record is None or (keep is not None and not keep(record)):
            continue
        if record.local_id in found:
            duplicates += 1
        else:
            found[record.local_id] = record
    return bool(duplicates) and len(found) == known


def _first_of_each(answers: Iterable[Mapping[str, _R]]) -> list[_R]:
    """The records of several answers, the first one of each local id kept."""
    merged: dict[str, _R] = {}
    for answer in answers:
        for local_id, record in answer.items():
            merged.setdefault(local_id, record)
    return list(merged.values())


# -- building queries ---------------------------------------------------------


def _api_ids(ids: Iterable[str]) -> list[str]:
    """The ids this API can be asked for; others cannot name any of its records."""
    return sorted({i for i in map(api_id, ids) if i is not None}, key=lambda i: (len(i), i))


def _values_of(identifiers: Iterable[Identifier], system: str) -> list[str]:
    # Commas separate list values in this API; a value holding one cannot be asked for.
    return sorted({i.value for i in identifiers if i.system == system and "," not in i.value})


def _compact(postal_code: str) -> str:
    return "".join(postal_code.split()).replace("-", "").replace(",", "").upper()


def _chunks(values: Sequence[str]) -> list[Sequence[str]]:
    """Values in batches of at most ``MAX_LIST_VALUES`` and ``ID_CHARS_PER_CALL`` characters."""
    chunks: list[Sequence[str]] = []
    start = chars = 0
    for i, value in enumerate(values):
        size = len(value) + 1  # and its comma
        if i > start and (i - start >= MAX_LIST_VALUES or chars + size > ID_CHARS_PER_CALL):
            chunks.append(values[start:i])
            start, chars = i, 0
        chars += size
    if start < len(values):
        chunks.append(values[start:])
    return chunks


def _circle_params(near: GeoPoint | None, radius_km: float | None) -> list[tuple[str, str]]:
    """``lat``/``lng``/``rayon_km`` when the API can take them; the gateway re-checks anyway."""
    if near is None or radius_km is None or valid_point(near.latitude, near.longitude) is None:
        return []
    if not (math.isfinite(radius_km) and 0 < radius_km <= MAX_RADIUS_KM):
        return []
    return [
        ("lat", repr(near.latitude)),
        ("lng", repr(near.longitude)),
        ("rayon_km", repr(float(radius_km))),
    ]


@lru_cache(maxsize=256)  # the same window for every search of a minute
def local_bounds(after: datetime, before: datetime) -> tuple[datetime, datetime]:
    """The window as the API's naive local times, never narrower than asked.

    The API compares its bounds with each clinic's local wall time, and a search spans
    clinics of every Quebec zone: the lower bound is the earliest of the window's start
    in each zone, the upper one the latest of its end. The API reads a naive time in the
    repeated autumn hour as its first occurrence, so an upper bound in the second one is
    pushed an hour later.
    """
    lows, highs = [], []
    for name in QUEBEC_ZONES:
        zone = zone_info(name)
        lows.append(after.astimezone(zone).replace(tzinfo=None, microsecond=0))
        local = before.astimezone(zone)
        naive = local.replace(tzinfo=None)
        if local.fold == 1 and local.utcoffset() != local.replace(fold=0).utcoffset():
            naive += timedelta(hours=1)
        if naive.microsecond:
            naive += timedelta(seconds=1)
        highs.append(naive.replace(microsecond=0))
    return min(lows), max(highs)


@dataclass(frozen=True, slots=True)
class _SlotFilter:
    """Re-checks the filters pushed down, so that ``limit`` counts only true matches:
    :meth:`read` what can be checked before the slot's clinic is known (a naive time
    against the naive bounds), :meth:`placed` all of it once the slot is placed."""

    after: datetime
    before: datetime
    naive_after: datetime
    naive_before: datetime
    types: frozenset[AppointmentType] | None
    clinics: frozenset[str] | None
    physicians: frozenset[str] | None
    after_at: float = field(init=False)  # the window's bounds as POSIX times
    before_at: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "after_at", self.after.timestamp())
        object.__setattr__(self, "before_at", self.before.timestamp())

    def read(self, slot: SlotItem) -> bool:
        if slot.start.tzinfo is None:
            in_window = self.naive_after <= slot.start <= self.naive_before
        else:
            in_window = self.after <= slot.start <= self.before
        return (
            in_window
            and (self.types is None or slot.appointment_type in self.types)
            and (self.clinics is None or slot.clinic_local_id in self.clinics)
            and (self.physicians is None or slot.physician_local_id in self.physicians)
        )

    def placed(self, slot: SlotItem, start_at: float) -> bool:
        """All of it, once the slot is placed; ``start_at``: its start's POSIX time,
        compared as its instant would be (the window's bounds' POSIX times alike)."""
        return (
            self.after_at <= start_at <= self.before_at
            and (self.types is None or slot.appointment_type in self.types)
            and (self.clinics is None or slot.clinic_local_id in self.clinics)
            and (self.physicians is None or slot.physician_local_id in self.physicians)
        )


__all__ = ["CODES_BY_TYPE", "REGION_CODES", "RestJsonSource", "local_bounds"]
