"""The gateway's own normalized records.

Every adapter turns its upstream's shapes (FHIR JSON, a proprietary payload...)
into these frozen, slotted dataclasses; nothing upstream-shaped leaves an
adapter. The GraphQL layer builds its types from them at the edge.

Only *free* slots exist as records: a busy or booked slot is dropped by the
adapter that reads it and never becomes a ``SlotRecord``.
"""

from __future__ import annotations

import enum
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime
from typing import TypeVar

_T = TypeVar("_T")


def quick_init(cls: type[_T]) -> type[_T]:
    """A frozen, slotted dataclass given an ``__init__`` that sets each field through its
    slot's descriptor (one C call) rather than ``object.__setattr__`` by name (a frozen
    dataclass's own): the same parameters and defaults, still frozen once made, in
    about half the time. For the records made by the hundred per request."""
    params, body, names = [], [], {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.default_factory is not MISSING or not f.init or hasattr(cls, "__post_init__"):
            raise TypeError(f"{cls.__name__}: quick_init takes plain fields only")
        names[f"_set_{f.name}"] = getattr(cls, f.name).__set__
        if f.default is MISSING:
            params.append(f.name)
        else:
            names[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        body.append(f"    _set_{f.name}(self, {f.name})")
    source = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body) + "\n"
    exec(source, names)  # as dataclasses makes its own
    init = names["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__annotations__ = cls.__init__.__annotations__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


class Region(enum.Enum):
    """The 17 administrative regions of Quebec."""

    BAS_SAINT_LAURENT = "BAS_SAINT_LAURENT"
    SAGUENAY_LAC_SAINT_JEAN = "SAGUENAY_LAC_SAINT_JEAN"
    CAPITALE_NATIONALE = "CAPITALE_NATIONALE"
    MAURICIE = "MAURICIE"
    ESTRIE = "ESTRIE"
    MONTREAL = "MONTREAL"
    OUTAOUAIS = "OUTAOUAIS"
    ABITIBI_TEMISCAMINGUE = "ABITIBI_TEMISCAMINGUE"
    COTE_NORD = "COTE_NORD"
    NORD_DU_QUEBEC = "NORD_DU_QUEBEC"
    GASPESIE_ILES_DE_LA_MADELEINE = "GASPESIE_ILES_DE_LA_MADELEINE"
    CHAUDIERE_APPALACHES = "CHAUDIERE_APPALACHES"
    LAVAL = "LAVAL"
    LANAUDIERE = "LANAUDIERE"
    LAURENTIDES = "LAURENTIDES"
    MONTEREGIE = "MONTEREGIE"
    CENTRE_DU_QUEBEC = "CENTRE_DU_QUEBEC"


class AppointmentType(enum.Enum):
    WALK_IN = "WALK_IN"
    URGENT = "URGENT"
    PRIORITY = "PRIORITY"
    ROUTINE = "ROUTINE"
    FOLLOW_UP = "FOLLOW_UP"
    CHECKUP = "CHECKUP"
    PREGNANCY_FOLLOW_UP = "PREGNANCY_FOLLOW_UP"
    CHILD_FOLLOW_UP = "CHILD_FOLLOW_UP"
    NEW_PATIENT = "NEW_PATIENT"


class SourceProtocol(enum.Enum):
    FHIR_R4 = "FHIR_R4"
    SMART_SCHEDULING_LINKS = "SMART_SCHEDULING_LINKS"
    REST_JSON = "REST_JSON"


class SourceStatus(enum.Enum):
    UP = "UP"
    DEGRADED = "DEGRADED"
    DOWN = "DOWN"
    DISABLED = "DISABLED"


class ProblemSeverity(enum.Enum):
    """How much a source problem costs: ``LOSS``, the current data lack slots the source
    published (its status is then ``DEGRADED``); ``WARNING``, records skipped as
    malformed per the specification, or a request it refused (status unchanged)."""

    WARNING = "WARNING"
    LOSS = "LOSS"


@dataclass(frozen=True, slots=True)
class SourceProblem:
    """Something an operator should fix about a source, as its adapter or the pool saw it.

    ``code`` is stable (``sources.problems.ProblemCode``); ``message`` says what to fix;
    ``count`` how many times or records. ``samples`` (ids, file URLs without their
    query string, line numbers) and ``diagnostics`` (the upstream's own words,
    sanitized) are for operators only: the API shows them in development mode::

        SourceProblem("FILE_FAILED", ProblemSeverity.LOSS,
                      "a file of the feed could not be read; its slots are missing", 1,
                      samples=("https://publisher.example/slots.ndjson",))
    """

    code: str
    severity: ProblemSeverity
    message: str
    count: int = 1
    samples: tuple[str, ...] = ()
    diagnostics: str | None = None


@dataclass(frozen=True, slots=True)
class GeoPoint:
    """A position. ``approximate``: not the upstream's own, but the centre of the place's
    municipality (``sources.places``), good to a few kilometres."""

    latitude: float
    longitude: float
    approximate: bool = False


@dataclass(frozen=True, slots=True)
class Identifier:
    """A business identifier: ``system`` is a URI naming the issuing register."""

    system: str
    value: str


@dataclass(frozen=True, slots=True)
class Address:
    city: str
    region: Region
    line: str | None = None
    postal_code: str | None = None


@dataclass(frozen=True, slots=True)
class ClinicRecord:
    """A clinic as one source describes it; ``local_id`` is that source's own id.

    ``time_zone`` is the IANA zone the clinic keeps (``sources.time_zones``' rule): its
    upstream's times without an offset are read in it.
    """

    source_id: str
    local_id: str
    name: str
    address: Address
    location: GeoPoint | None = None
    phone: str | None = None
    languages: tuple[str, ...] = ()
    identifiers: tuple[Identifier, ...] = ()
    time_zone: str = "America/Montreal"


@dataclass(frozen=True, slots=True)
class PhysicianRecord:
    source_id: str
    local_id: str
    display_name: str
    languages: tuple[str, ...] = ()
    identifiers: tuple[Identifier, ...] = ()
    clinic_local_ids: tuple[str, ...] = ()
    accepting_new_patients: bool | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class SlotRecord:
    """A free appointment slot. ``start``/``end`` are timezone-aware."""

    source_id: str
    local_id: str
    start: datetime
    end: datetime
    appointment_type: AppointmentType
    clinic_local_id: str
    physician_local_id: str | None = None
    booking_url: str | None = None
    booking_phone: str | None = None
    capacity: int | None = None  # seats in a grouped slot (SMART slot-capacity), if > 1


class SlotState(enum.Enum):
    """What a booking source says of one slot when asked now."""

    FREE = "FREE"
    GONE = "GONE"  # taken, withdrawn, or no longer listed
    UNKNOWN = "UNKNOWN"  # the source cannot be asked about one slot


@dataclass(frozen=True, slots=True)
class SlotCheck:
    """A source's answer about one slot: its state, and as of when (a live source:
    now; a bulk feed: its copy's time; None: unknown)."""

    state: SlotState
    as_of: datetime | None = None


@dataclass(frozen=True, slots=True)
class SlotQuery:
    """A slot search: one value, from the API's filter down to every source.

    The resolvers build it once from the GraphQL ``SlotFilter`` (checked, its
    defaults applied; ``limit`` the page size), with clinics and physicians as
    merged keys (``clinic_keys``/``physician_keys``, see ``sources.search.merge``).
    What a source receives is the same value projected for it by the federation
    with ``dataclasses.replace``: the keys resolved to ``clinic_local_ids``/
    ``physician_local_ids``, this source's own ids (the keys then None), the
    window widened to whole minutes and ``limit`` the slots asked of it::

        query = SlotQuery(starts_after=now, starts_before=now + week, limit=20)
        asked = replace(query, clinic_local_ids=("c-17",), limit=25)

    The adapter pushes down what its upstream can filter and returns at most
    ``limit`` slots ordered by start; the gateway re-checks every filter on
    what comes back, so an adapter may return more than asked, never less.
    ``starts_after``/``starts_before`` are timezone-aware.
    """

    starts_after: datetime
    starts_before: datetime
    limit: int
    near: GeoPoint | None = None
    radius_km: float | None = None
    region: Region | None = None
    appointment_types: frozenset[AppointmentType] | None = None
    languages: frozenset[str] | None = None
    clinic_keys: tuple[str, ...] | None = None
    physician_keys: tuple[str, ...] | None = None
    clinic_local_ids: tuple[str, ...] | None = None
    physician_local_ids: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True, weakref_slot=True)
class SlotResult:
    """One source's answer to a ``SlotQuery``.

    ``complete`` is true when ``slots`` holds every match (no more pages);
    ``total`` is the upstream's count of matches, ``None`` when it cannot count;
    ``total_exact``: that count is exactly the slots the gateway would keep of the
    whole answer (the upstream applied every filter the gateway checks).
    ``clinics``/``physicians`` hold the records the slots refer to, by local id.
    ``ties_complete``: see below. Weakly referable: the search keeps what it made of an
    answer's slots as long as the answer (``sources.search.results.found_of``).
    """

    slots: tuple[SlotRecord, ...]
    complete: bool
    total: int | None = None
    clinics: dict[str, ClinicRecord] = field(default_factory=dict)
    physicians: dict[str, PhysicianRecord] = field(default_factory=dict)
    # True when a truncated answer holds every match starting at its last start
    # (no tie group split): the gateway can then trust slots up to that start.
    ties_complete: bool = False
    # True when slots of one start come nearest first (to SlotQuery.near): the
    # gateway can then trust slots up to the last one's (start, distance).
    ordered_by_distance: bool = False
    total_exact: bool = False


@dataclass(frozen=True, slots=True)
class ClinicQuery:
    """A clinic search; every given criterion must hold (``identifiers`` match any)."""

    near: GeoPoint | None = None
    radius_km: float | None = None
    region: Region | None = None
    name_contains: str | None = None
    local_ids: tuple[str, ...] | None = None
    identifiers: tuple[Identifier, ...] | None = None
    postal_codes: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class PhysicianQuery:
    """A physician lookup by this source's ids, by identifiers, or by clinic (any match)."""

    local_ids: tuple[str, ...] = ()
    identifiers: tuple[Identifier, ...] = ()
    clinic_local_ids: tuple[str, ...] = ()
