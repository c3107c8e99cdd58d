"""Adapter for the proprietary REST/JSON booking API ("RDV Québec" style).

The API itself is documented in ``examples/demo_rest.py``: French field names,
Montreal local times without offset, ``page``/``limite`` paging, integer ids,
an ``X-Cle-Api`` key header. This adapter pushes every filter the API knows
down, follows pages only as far as the query needs, then fetches the clinics
and physicians the slots refer to, batched by ids.

    source = RestJsonSource(
        SourceConfig("rdvq", "RDV Québec", SourceProtocol.REST_JSON,
                     "http://127.0.0.1:8102/api/v1", credentials="KEY"),
        SourceContext(session, logging.getLogger("passerelle.sources.rdvq")),
    )
    result = await source.search_slots(SlotQuery(start, end, limit=50))

Options (``SourceConfig.options``): ``clinic_permit_system`` and
``physician_licence_system`` (identifier systems of ``no_permis`` and
``no_licence``), ``api_key_header``, ``page_size`` (the largest page asked
for, 1 to 500; slot searches ask for no more than their limit).

Tolerance: a malformed item is skipped and counted in one log line per call
(counts only, never payloads); a body that is not the paging envelope is a
``SourceBadResponse``.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final, TypeAlias, TypeVar

from sources.base import Source
from sources.geo import infer_region, normalize_postal_code, valid_point
from sources.http import request_json, shape_error
from sources.records import (
    Address,
    AppointmentType,
    ClinicQuery,
    ClinicRecord,
    GeoPoint,
    Identifier,
    PhysicianQuery,
    PhysicianRecord,
    Region,
    SlotQuery,
    SlotRecord,
    SlotResult,
    SourceProtocol,
)
from sources.timeutil import MONTREAL, parse_upstream_datetime, to_montreal

if TYPE_CHECKING:
    from sources.base import SourceConfig, SourceContext

MAX_PAGE_SIZE: Final = 500
# A hostile or broken upstream may announce any number of pages; never follow more.
MAX_PAGES: Final = 50
# Ids per batched lookup, to keep URLs well under common 8 KiB request-line limits.
IDS_PER_CALL: Final = 200
# The API refuses a list parameter of more values than this.
MAX_LIST_VALUES: Final = 1000
MAX_RADIUS_KM: Final = 1000.0
DEFAULT_API_KEY_HEADER: Final = "X-Cle-Api"
DEFAULT_CLINIC_PERMIT_SYSTEM: Final = "urn:passerelle:demo:clinic-permit"
DEFAULT_PHYSICIAN_LICENCE_SYSTEM: Final = "urn:passerelle:demo:physician-licence"

TYPES_BY_CODE: Final[Mapping[str, AppointmentType]] = {
    "sans_rendez_vous": AppointmentType.WALK_IN,
    "urgent": AppointmentType.URGENT,
    "prioritaire": AppointmentType.PRIORITY,
    "regulier": AppointmentType.ROUTINE,
    "suivi": AppointmentType.FOLLOW_UP,
    "bilan": AppointmentType.CHECKUP,
    "suivi_grossesse": AppointmentType.PREGNANCY_FOLLOW_UP,
    "suivi_enfant": AppointmentType.CHILD_FOLLOW_UP,
    "nouveau_patient": AppointmentType.NEW_PATIENT,
}
CODES_BY_TYPE: Final[Mapping[AppointmentType, str]] = {t: c for c, t in TYPES_BY_CODE.items()}
# Official codes of Quebec's administrative regions, "01" to "17", in Region's order.
REGION_CODES: Final[Mapping[Region, str]] = {r: f"{i:02d}" for i, r in enumerate(Region, 1)}

_URL_SCHEMES = ("https://", "http://")
_API_ID = re.compile(r"^\d{1,18}$")
_TRUE = frozenset({"true", "oui", "1", "vrai", "yes"})
_FALSE = frozenset({"false", "non", "0", "faux", "no"})
# What a malformed item can raise while being read; it is then skipped.
_ITEM_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OverflowError)


_T = TypeVar("_T")
_R = TypeVar("_R", ClinicRecord, PhysicianRecord)
_Reader: TypeAlias = Callable[[object], _T | None]


class _Malformed(Exception):
    """One item cannot be read; ``reason`` names the kind for the log line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Page:
    items: list[object]
    page: int | None
    pages: int | None
    total: int | None


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
        options = config.options
        self._key_header = _option_str(options, "api_key_header", DEFAULT_API_KEY_HEADER)
        self._permit_system = _option_str(
            options, "clinic_permit_system", DEFAULT_CLINIC_PERMIT_SYSTEM
        )
        self._licence_system = _option_str(
            options, "physician_licence_system", DEFAULT_PHYSICIAN_LICENCE_SYSTEM
        )
        page_size = options.get("page_size", MAX_PAGE_SIZE)
        self._page_size = (
            min(MAX_PAGE_SIZE, max(1, page_size))
            if isinstance(page_size, int) and not isinstance(page_size, bool)
            else MAX_PAGE_SIZE
        )

    # -- slots --------------------------------------------------------------

    async def search_slots(self, query: SlotQuery) -> SlotResult:
        query = _aware(query)
        if query.starts_before < query.starts_after:
            return SlotResult(slots=(), complete=True, total=0)
        pushed = self._slot_params(query)
        if pushed is None:  # a filter no slot of this source can match
            return SlotResult(slots=(), complete=True, total=0)
        params, wanted = pushed
        limit = max(1, query.limit)
        page_size = min(self._page_size, limit)
        skipped: Counter[str] = Counter()
        candidates: dict[str, SlotRecord] = {}
        clinics: dict[str, ClinicRecord] = {}
        physicians: dict[str, PhysicianRecord] = {}
        unknown_clinics: set[str] = set()
        looked_up_physicians: set[str] = set()
        paging = _Paging()

        def usable() -> list[SlotRecord]:
            return [s for s in candidates.values() if s.clinic_local_id not in unknown_clinics]

        while True:
            while paging.more and len(usable()) < limit:
                answer = await self._next_page("disponibilites", params, paging, page_size)
                if answer is None:
                    break
                known = len(candidates)
                duplicates = 0
                for item in answer.items:
                    slot = self._read_item(self._slot, item, skipped)
                    if slot is None or not wanted(slot):
                        continue
                    if slot.local_id in candidates:
                        duplicates += 1
                    else:
                        candidates[slot.local_id] = slot
                if duplicates and len(candidates) == known:
                    self.logger.warning("disponibilites: a page repeated earlier slots; stopped")
                    paging.stuck = True
            # Clinics decide which slots stay (their region must be known): look
            # up the new ones, and the new physicians alongside.
            new_clinics = {s.clinic_local_id for s in candidates.values()}
            new_clinics -= clinics.keys() | unknown_clinics
            new_physicians = {
                s.physician_local_id
                for s in candidates.values()
                if s.physician_local_id is not None
            } - looked_up_physicians
            found_clinics, found_physicians = await asyncio.gather(
                self._by_ids("cliniques", new_clinics, self._clinic, skipped),
                self._by_ids("medecins", new_physicians, self._physician, skipped),
            )
            clinics.update(found_clinics)
            physicians.update(found_physicians)
            unknown_clinics |= new_clinics - found_clinics.keys()
            looked_up_physicians |= new_physicians
            if len(usable()) >= limit or not paging.more:
                break

        kept = sorted(usable(), key=lambda s: (s.start.timestamp(), s.local_id))
        if unknown_clinics:
            skipped["slot of an unknown clinic"] += len(candidates) - len(kept)
        complete = paging.last and len(kept) <= limit
        kept = kept[:limit]
        slots = tuple(
            s
            if s.physician_local_id is None or s.physician_local_id in physicians
            else replace(s, physician_local_id=None)
            for s in kept
        )
        self._log_skipped("slot search", skipped)
        return SlotResult(
            slots=slots,
            complete=complete,
            total=paging.total,
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
        params = [
            ("statut", "libre"),
            ("debut_min", _local_bound(query.starts_after, upper=False)),
            ("debut_max", _local_bound(query.starts_before, upper=True)),
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
            types=query.appointment_types,
            clinics=None if clinic_ids is None else frozenset(clinic_ids),
            physicians=None if physician_ids is None else frozenset(physician_ids),
        )

    def _slot(self, item: object) -> SlotRecord | None:
        """A free slot, ``None`` for a busy one; raises ``_Malformed``."""
        data = _mapping(item)
        status = data.get("statut")
        if not isinstance(status, str) or status.strip().lower() != "libre":
            return None
        local_id = _opaque_id(data.get("id"))
        clinic_id = _api_id(data.get("clinique_id"))
        if local_id is None or clinic_id is None:
            raise _Malformed("missing id")
        code = data.get("type_rdv")
        kind = TYPES_BY_CODE.get(code.strip().lower()) if isinstance(code, str) else None
        if kind is None:
            raise _Malformed("unknown appointment type")
        start, end = _time(data.get("debut")), _time(data.get("fin"))
        if end.timestamp() <= start.timestamp() and end.tzinfo is MONTREAL:
            # A naive end in the repeated autumn hour may be its second occurrence.
            later = end.replace(fold=1)
            if later.timestamp() > start.timestamp():
                end = later
        if end.timestamp() <= start.timestamp():
            raise _Malformed("end not after start")
        url = _str(data.get("lien_reservation"))
        return SlotRecord(
            source_id=self.id,
            local_id=local_id,
            start=start,
            end=end,
            appointment_type=kind,
            clinic_local_id=clinic_id,
            physician_local_id=_api_id(data.get("medecin_id")),
            booking_url=url if url is not None and url.startswith(_URL_SCHEMES) else None,
            booking_phone=_str(data.get("telephone_reservation")),
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
            batches = [[("ids", ",".join(c))] for c in _chunks(ids, IDS_PER_CALL)]
        if query.identifiers is not None:
            permits = _values_of(query.identifiers, self._permit_system)
            if not permits:
                return []
            batches = [
                [*batch, ("no_permis", ",".join(c))]
                for batch in batches
                for c in _chunks(permits, IDS_PER_CALL)
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
            *(self._listing("cliniques", [*b, *params], self._clinic, skipped) for b in batches)
        )
        self._log_skipped("clinic search", skipped)
        merged: dict[str, ClinicRecord] = {}
        for answer in answers:
            for local_id, record in answer.items():
                merged.setdefault(local_id, record)
        return list(merged.values())

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
                self._listing("medecins", [(name, ",".join(chunk))], self._physician, skipped)
                for name, values in lookups
                for chunk in _chunks(values, IDS_PER_CALL)
            )
        )
        self._log_skipped("physician lookup", skipped)
        merged: dict[str, PhysicianRecord] = {}
        for answer in answers:
            for local_id, record in answer.items():
                merged.setdefault(local_id, record)
        return list(merged.values())

    def _clinic(self, item: object) -> ClinicRecord:
        """A clinic; raises ``_Malformed``, also when its region cannot be told."""
        data = _mapping(item)
        local_id = _api_id(data.get("id"))
        name = _str(data.get("nom"))
        if local_id is None or name is None:
            raise _Malformed("missing id or name")
        address = _mapping_or_empty(data.get("adresse"))
        postal_code = normalize_postal_code(_str(address.get("code_postal")))
        location = valid_point(_number(data.get("lat")), _number(data.get("lng")))
        region = infer_region(postal_code, location)
        if region is None:
            raise _Malformed("clinic of unknown region")
        permit = _identifier_value(data.get("no_permis"))
        return ClinicRecord(
            source_id=self.id,
            local_id=local_id,
            name=name,
            address=Address(
                city=_str(address.get("ville")) or "",
                region=region,
                line=_str(address.get("rue")),
                postal_code=postal_code,
            ),
            location=location,
            phone=_str(data.get("telephone")),
            languages=_languages(data.get("langues")),
            identifiers=(Identifier(self._permit_system, permit),) if permit else (),
        )

    def _physician(self, item: object) -> PhysicianRecord:
        data = _mapping(item)
        local_id = _api_id(data.get("id"))
        parts = [_str(data.get(k)) for k in ("titre", "prenom", "nom")]
        if local_id is None or not (parts[1] or parts[2]):
            raise _Malformed("missing id or name")
        licence = _identifier_value(data.get("no_licence"))
        clinics = data.get("cliniques")
        clinic_ids = (
            tuple(dict.fromkeys(i for i in map(_api_id, clinics) if i is not None))
            if isinstance(clinics, list)
            else ()
        )
        return PhysicianRecord(
            source_id=self.id,
            local_id=local_id,
            display_name=" ".join(p for p in parts if p),
            languages=_languages(data.get("langues")),
            identifiers=(Identifier(self._licence_system, licence),) if licence else (),
            clinic_local_ids=clinic_ids,
            accepting_new_patients=_boolean(data.get("accepte_nouveaux_patients")),
        )

    # -- paging and calls ---------------------------------------------------

    async def _by_ids(
        self,
        resource: str,
        ids: Iterable[str],
        read: _Reader[_R],
        skipped: Counter[str],
    ) -> dict[str, _R]:
        """Records by local id, one paged call per batch of ids, batches concurrently."""
        chunks = _chunks(sorted(ids, key=lambda i: (len(i), i)), IDS_PER_CALL)
        answers = await asyncio.gather(
            *(self._listing(resource, [("ids", ",".join(c))], read, skipped) for c in chunks)
        )
        return {k: v for answer in answers for k, v in answer.items()}

    async def _listing(
        self,
        resource: str,
        params: list[tuple[str, str]],
        read: _Reader[_R],
        skipped: Counter[str],
    ) -> dict[str, _R]:
        """Every record of a paged listing (up to ``MAX_PAGES`` pages), by local id."""
        found: dict[str, _R] = {}
        paging = _Paging()
        while paging.more:
            answer = await self._next_page(resource, params, paging, self._page_size)
            if answer is None:
                break
            known = len(found)
            duplicates = 0
            for item in answer.items:
                record = self._read_item(read, item, skipped)
                if record is None:
                    continue
                if record.local_id in found:
                    duplicates += 1
                else:
                    found[record.local_id] = record
            if duplicates and len(found) == known:
                self.logger.warning("%s: a page repeated earlier records; stopped", resource)
                paging.stuck = True
        return found

    async def _next_page(
        self, resource: str, params: list[tuple[str, str]], paging: _Paging, page_size: int
    ) -> _Page | None:
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

    async def _get(self, resource: str, params: list[tuple[str, str]]) -> _Page:
        headers = {"Accept": "application/json"}
        if self.config.credentials:
            headers[self._key_header] = self.config.credentials
        body = await request_json(
            self.session,
            self.id,
            "GET",
            f"{self._base}/{resource}",
            timeout_s=self.config.timeout_s,
            params=params,
            headers=headers,
        )
        if not isinstance(body, dict):
            raise shape_error(self.id, f"{resource}: expected an object, got {_kind(body)}")
        items = body.get("resultats")
        if not isinstance(items, list):
            raise shape_error(self.id, f"{resource}: 'resultats' is {_kind(items)}, not a list")
        return _Page(
            items=items,
            page=_count(body.get("page")),
            pages=_count(body.get("pages")),
            total=_count(body.get("total")),
        )

    def _read_item(self, read: _Reader[_T], item: object, skipped: Counter[str]) -> _T | None:
        try:
            return read(item)
        except _Malformed as exc:
            skipped[exc.reason] += 1
        except _ITEM_ERRORS as exc:
            skipped[f"unreadable ({type(exc).__name__})"] += 1
        return None

    def _log_skipped(self, what: str, skipped: Counter[str]) -> None:
        if skipped:
            detail = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items()))
            self.logger.warning("%s: skipped %d item(s): %s", what, skipped.total(), detail)


# -- reading values -----------------------------------------------------------


def _mapping(value: object) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise _Malformed("not an object")
    return value


def _mapping_or_empty(value: object) -> Mapping[str, object]:
    return value if isinstance(value, dict) else {}


def _str(value: object) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    return None


def _api_id(value: object) -> str | None:
    """An integer id of this API (a JSON number or a string of digits), as text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if value >= 0 else None
    if isinstance(value, str) and _API_ID.match(value.strip()):
        return str(int(value.strip()))
    return None


def _opaque_id(value: object) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _str(value)


def _identifier_value(value: object) -> str | None:
    return _opaque_id(value)


def _number(value: object) -> object:
    """Numbers sent as strings are read as numbers; anything else is left to ``valid_point``."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return value


def _count(value: object) -> int | None:
    """A non-negative integer paging field, tolerating ``"3"`` and ``3.0``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return value if isinstance(value, int) and value >= 0 else None


def _boolean(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | str):
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    return None


def _languages(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return ()
    return tuple(
        dict.fromkeys(v.strip().lower() for v in value if isinstance(v, str) and v.strip())
    )


def _time(value: object) -> datetime:
    text = _str(value)
    if text is None:
        raise _Malformed("missing time")
    try:
        return parse_upstream_datetime(text)
    except ValueError:
        raise _Malformed("bad time") from None


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


# -- building queries ---------------------------------------------------------


def _api_ids(ids: Iterable[str]) -> list[str]:
    """The ids this API can be asked for; others cannot name any of its records."""
    return sorted({i for i in map(_api_id, ids) if i is not None}, key=lambda i: (len(i), i))


def _values_of(identifiers: Iterable[Identifier], system: str) -> list[str]:
    # Commas separate list values in this API; a value holding one cannot be asked for.
    return sorted({i.value for i in identifiers if i.system == system and "," not in i.value})


def _compact(postal_code: str) -> str:
    return "".join(postal_code.split()).replace("-", "").replace(",", "").upper()


def _chunks(values: Sequence[str], size: int) -> list[Sequence[str]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


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


def _local_bound(value: datetime, *, upper: bool) -> str:
    """A bound as the API's naive Montreal time, never narrower than asked.

    The API reads a naive time in the repeated autumn hour as its first
    occurrence, so an upper bound in the second one is pushed an hour later.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=MONTREAL)
    local = to_montreal(value)
    naive = local.replace(tzinfo=None)
    if upper:
        if local.fold == 1 and local.utcoffset() != local.replace(fold=0).utcoffset():
            naive += timedelta(hours=1)
        if naive.microsecond:
            naive += timedelta(seconds=1)
    return naive.replace(microsecond=0).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class _SlotFilter:
    """Re-checks the filters pushed down, so that ``limit`` counts only true matches."""

    after: datetime
    before: datetime
    types: frozenset[AppointmentType] | None
    clinics: frozenset[str] | None
    physicians: frozenset[str] | None

    def __call__(self, slot: SlotRecord) -> bool:
        return (
            self.after <= slot.start <= self.before
            and (self.types is None or slot.appointment_type in self.types)
            and (self.clinics is None or slot.clinic_local_id in self.clinics)
            and (self.physicians is None or slot.physician_local_id in self.physicians)
        )


def _aware(query: SlotQuery) -> SlotQuery:
    """The query with naive bounds read as Montreal time (the contract wants aware ones)."""
    if query.starts_after.tzinfo is None:
        query = replace(query, starts_after=query.starts_after.replace(tzinfo=MONTREAL))
    if query.starts_before.tzinfo is None:
        query = replace(query, starts_before=query.starts_before.replace(tzinfo=MONTREAL))
    return query


def _option_str(options: Mapping[str, object], name: str, default: str) -> str:
    value = options.get(name)
    return value if isinstance(value, str) and value else default


__all__ = ["CODES_BY_TYPE", "REGION_CODES", "TYPES_BY_CODE", "RestJsonSource"]
