"""What a FHIR server really does, learnt by cheap probes, and what it costs.

    capabilities, refusals = await learn(client)
    capabilities.lines()     # ["paging: by _offset (no next links)", ...]
    capabilities.problems()  # (SourceProblem("FHIR_WORKAROUNDS", WARNING, ...),)

A ``CapabilityStatement`` (``/metadata``) says what a server claims; many say
nothing or say it wrongly (Medplum's engine answers an empty Bundle there), so
its claims are read, shown, and compared with a probe of one small page for
every capability the plans rely on (a claim found untrue is a
``FHIR_STATEMENT_WRONG`` warning; the probe is trusted):
whether ``next`` links come when ``Bundle.total`` says more, whether ``_offset``
pages, whether ``_include`` comes back, whether ``_sort=start`` orders by instant
(checked on instants, both ways, since text order is wrong across offsets),
whether a ``schedule.actor`` chain is answered, whether ``near`` is accepted,
what becomes of an unknown parameter, and whether ``appointment-type:missing`` splits
the free slots in two (many servers refuse or ignore the modifier). A refusal (400/422 with an
OperationOutcome) is an answer too: its diagnostics come back for the log.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from sources.errors import SourceError, SourceRefusedRequest, SourceTimeout, SourceUnavailable
from sources.fhir.client import bundle_total, matches_of
from sources.fhir.fetch import resources_in
from sources.fhir.resources import location_point, ref_id, refs
from sources.fhir.slots import in_order
from sources.problems import ProblemCode, problem

if TYPE_CHECKING:
    from sources.fhir.client import FhirClient
    from sources.records import SourceProblem

__all__ = [
    "PROBE_PAGE",
    "Capabilities",
    "Claim",
    "Refusal",
    "Support",
    "learn",
    "statement_claims",
]

# Slots read by each probe: enough to see an order, small enough to cost nothing.
PROBE_PAGE = 50
_NOWHERE = "0|0|1|km"  # the Gulf of Guinea: no clinic within 1 km
_NO_SUCH_ID = "passerelle-probe-none"


class Claim(enum.StrEnum):
    """What a CapabilityStatement may claim that the plans rely on."""

    NEAR = "Location near"
    INCLUDE = "_include Slot:schedule"
    SORT = "_sort on Slot"


_FOUND = {
    Claim.NEAR: "a near search was not answered",
    Claim.INCLUDE: "_include came back without the Schedules",
    Claim.SORT: "_sort=start did not order slots by instant",
}


def statement_claims(statement: dict[str, Any]) -> frozenset[str]:
    """The claims of a CapabilityStatement (R4 ``rest[].resource[]``) the plans use."""
    claims: set[str] = set()
    for rest in _dicts(statement.get("rest")):
        shared = {p.get("name") for p in _dicts(rest.get("searchParam"))}
        for resource in _dicts(rest.get("resource")):
            kind = resource.get("type")
            names = shared | {p.get("name") for p in _dicts(resource.get("searchParam"))}
            includes = resource.get("searchInclude")
            if kind == "Location" and "near" in names:
                claims.add(Claim.NEAR)
            if kind == "Slot" and isinstance(includes, list) and "Slot:schedule" in includes:
                claims.add(Claim.INCLUDE)
            if kind == "Slot" and "_sort" in names:
                claims.add(Claim.SORT)
    return frozenset(claims)


def _dicts(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


class Support(enum.StrEnum):
    """How a server answers a search parameter."""

    YES = "answered"
    REFUSED = "refused (400/422)"
    IGNORED = "ignored"
    NOTHING = "matches nothing"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A probe the server refused: what was asked, and its OperationOutcome's words."""

    asked: str
    diagnostics: str
    matters: bool = True  # False: a probe meant to be refused by strict servers


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What one server does, as probed; None / ``UNKNOWN``: not (yet) known, and the
    plans then assume the FHIR specification and check what they can as they read."""

    statement: bool | None = None  # /metadata is a CapabilityStatement
    # What that statement claims of what the plans use (``Claim`` values).
    claims: frozenset[str] = frozenset()
    next_links: bool | None = None
    offset_paging: bool | None = None
    total: bool | None = None
    include: bool | None = None
    sorted_by_instant: bool | None = None
    chained: Support = Support.UNKNOWN
    near: Support = Support.UNKNOWN
    unknown_parameters: Support = Support.UNKNOWN
    # appointment-type:missing: YES only when verified on the server's own counts.
    type_missing: Support = Support.UNKNOWN

    @property
    def chains(self) -> bool:
        """Whether a ``schedule.actor`` chain may narrow a Slot search."""
        return self.chained in (Support.YES, Support.UNKNOWN)

    @property
    def splits_routine(self) -> bool:
        """Whether ROUTINE may be asked as the types pushed plus ``:missing=true``."""
        return self.type_missing is Support.YES

    @property
    def first_page_only(self) -> bool:
        return self.next_links is False and self.offset_paging is False

    def lines(self) -> list[str]:
        """What it learnt, one line each, for the log and the command line."""

        def yes(value: bool | None, true: str, false: str) -> str:
            return "unknown" if value is None else true if value else false

        if self.next_links:
            paging = "by next links"
        elif self.offset_paging:
            paging = "by _offset (no next links)"
        elif self.first_page_only:
            paging = "first page only (no next links, _offset ignored)"
        else:
            paging = "unknown"
        said = f" (claims {', '.join(sorted(self.claims))})" if self.claims else ""
        return [
            f"CapabilityStatement: {yes(self.statement, 'read', 'none at /metadata')}{said}",
            f"paging: {paging}",
            f"Bundle.total: {yes(self.total, 'sent', 'absent')}",
            f"_include: {yes(self.include, 'honoured', 'ignored (read by _id)')}",
            "_sort=start: "
            + yes(self.sorted_by_instant, "by instant", "not by instant (windows read in full)"),
            f"chained search (schedule.actor): {self.chained}",
            f"near: {self.near}",
            f"unknown parameters: {self.unknown_parameters}",
            f"appointment-type:missing: {self.type_missing}",
        ]

    def changes_from(self, before: Capabilities) -> list[str]:
        """The lines that differ from ``before``, to log a change once."""
        old = set(before.lines())
        return [line for line in self.lines() if line not in old]

    def workarounds(self) -> list[str]:
        """The extra work its gaps cost each search (none for ``near``: the directory)."""
        out = []
        if self.next_links is False and self.offset_paging:
            out.append("no next links: pages read by _offset")
        if self.include is False:
            out.append("_include ignored: referenced resources read by _id")
        if not self.chains:
            out.append("schedule.actor chains not answered: Schedules by actor, then Slots")
        return out

    def contradictions(self) -> list[str]:
        """What the CapabilityStatement claims and the probes found untrue."""
        untrue = {
            Claim.NEAR: self.near in (Support.REFUSED, Support.IGNORED, Support.NOTHING),
            Claim.INCLUDE: self.include is False,
            Claim.SORT: self.sorted_by_instant is False,
        }
        claims = sorted(Claim(c) for c in self.claims)
        return [f"it claims {c} but {_FOUND[c]}" for c in claims if untrue[c]]

    def problems(self) -> tuple[SourceProblem, ...]:
        out = []
        if wrong := self.contradictions():
            out.append(
                problem(
                    ProblemCode.FHIR_STATEMENT_WRONG,
                    "the server's CapabilityStatement is wrong (the probes are trusted): "
                    + "; ".join(wrong),
                )
            )
        if self.first_page_only:
            out.append(
                problem(
                    ProblemCode.FHIR_NO_NEXT_LINK,
                    "the server sends no next link and ignores _offset: searches stop at "
                    "their first page and slots are missing; enable paging on the server",
                )
            )
        if self.sorted_by_instant is False:
            out.append(
                problem(
                    ProblemCode.FHIR_UNSORTED,
                    "the server does not order slots by instant (_sort=start): each window "
                    "is read in full before its slots are served",
                )
            )
        if work := self.workarounds():
            out.append(
                problem(
                    ProblemCode.FHIR_WORKAROUNDS, "searches cost more calls: " + "; ".join(work)
                )
            )
        return tuple(out)

    def merged(self, **learnt: Any) -> Capabilities:
        """A copy with what was learnt since (a demotion while reading)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return Capabilities(**{**values, **learnt})


async def learn(client: FhirClient) -> tuple[Capabilities, list[Refusal]]:
    """Probe the server; ``SourceTimeout``/``SourceUnavailable`` when it cannot be reached."""
    probe = _Probe(client)
    return await probe.run(), probe.refusals


class _Probe:
    def __init__(self, client: FhirClient) -> None:
        self.client = client
        self.refusals: list[Refusal] = []

    async def run(self) -> Capabilities:
        statement, claims = await self._statement()
        asc = [("status", "free"), ("_sort", "start"), ("_count", str(PROBE_PAGE))]
        first = await self._search(
            "Slot", [*asc, ("_include", "Slot:schedule"), ("_total", "accurate")]
        )
        if first is None:
            first = await self._search("Slot", asc) or await self._search("Slot", asc[::2])
        slots = matches_of(first, "Slot") if first is not None else []
        total = bundle_total(first) if first is not None else None
        more = (total is not None and total > len(slots)) or len(slots) >= PROBE_PAGE
        has_link = first is not None and any(
            isinstance(link, dict) and link.get("relation") == "next"
            for link in first.get("link") or ()
        )
        next_links = True if has_link else (False if more else None)
        offset = await self._offset(asc, slots) if more and not has_link else None
        include = None
        if slots and first is not None:
            include = bool(resources_in(first, "Schedule"))
        location = await self._location_with_slots(first, slots)
        return Capabilities(
            statement=statement,
            claims=claims,
            next_links=next_links,
            offset_paging=offset,
            total=None if first is None else total is not None,
            include=include,
            sorted_by_instant=await self._sorted(slots),
            chained=await self._chained(location),
            near=await self._near(location),
            unknown_parameters=await self._unknown(),
            type_missing=await self._type_missing(total if slots else None),
        )

    async def _statement(self) -> tuple[bool, frozenset[str]]:
        """Whether /metadata is a CapabilityStatement, and what it claims."""
        try:
            body = await self.client.json("GET", f"{self.client.base}/metadata")
        except (SourceTimeout, SourceUnavailable):
            raise
        except SourceError:
            return False, frozenset()
        if not isinstance(body, dict) or body.get("resourceType") != "CapabilityStatement":
            return False, frozenset()
        return True, statement_claims(body)

    async def _search(
        self, resource_type: str, params: list[tuple[str, str]], *, matters: bool = True
    ) -> dict[str, Any] | None:
        """A probe's page, or None when refused (the refusal kept for the log)."""
        try:
            return await self.client.search(resource_type, params)
        except SourceRefusedRequest as exc:
            asked = "&".join(f"{k}={v}" for k, v in params if not k.startswith("_count"))
            self.refusals.append(Refusal(f"{resource_type}?{asked}", exc.diagnostics, matters))
            return None

    async def _offset(self, asc: list[tuple[str, str]], slots: list[dict[str, Any]]) -> bool | None:
        page = await self._search("Slot", [*asc, ("_offset", str(len(slots)))])
        if page is None:
            return False
        seen = {s.get("id") for s in slots}
        fresh = [s for s in matches_of(page, "Slot") if s.get("id") not in seen]
        return True if fresh else (False if matches_of(page, "Slot") else None)

    async def _sorted(self, asc: list[dict[str, Any]]) -> bool | None:
        if len(asc) < 2:
            return None
        ascending = in_order(asc, descending=False)
        if ascending is not True:
            return ascending
        # Text order and instant order differ only across offsets: the other end of
        # the order shows them where the first page has one offset only.
        desc = [("status", "free"), ("_sort", "-start"), ("_count", str(PROBE_PAGE))]
        page = await self._search("Slot", desc, matters=False)
        if page is not None and in_order(matches_of(page, "Slot"), descending=True) is False:
            return False
        return True

    async def _location_with_slots(
        self, first: dict[str, Any] | None, slots: list[dict[str, Any]]
    ) -> dict[str, Any] | None:
        """A Location whose Schedule holds the first probed slot, to probe chains and near."""
        sid = ref_id(slots[0].get("schedule"), "Schedule") if slots else None
        if sid is None or first is None:
            return None
        schedule = next((r for r in resources_in(first, "Schedule") if r.get("id") == sid), None)
        if schedule is None:
            page = await self._search("Schedule", [("_id", sid)])
            schedule = next(iter(matches_of(page, "Schedule")), None) if page else None
        lid = next(iter(refs((schedule or {}).get("actor"), "Location")), None)
        if lid is None:
            return None
        page = await self._search("Location", [("_id", lid)])
        return next(iter(matches_of(page, "Location")), None) if page else {"id": lid}

    async def _chained(self, location: dict[str, Any] | None) -> Support:
        if location is None:
            return Support.UNKNOWN
        hits = []
        for lid in (location["id"], _NO_SUCH_ID):
            params = [("status", "free"), ("schedule.actor", f"Location/{lid}"), ("_count", "1")]
            page = await self._search("Slot", params)
            if page is None:
                return Support.REFUSED
            hits.append(bool(matches_of(page, "Slot")))
        if hits[1]:
            return Support.IGNORED
        return Support.YES if hits[0] else Support.NOTHING

    async def _near(self, location: dict[str, Any] | None) -> Support:
        page = await self._search("Location", [("near", _NOWHERE), ("_count", "1")])
        if page is None:
            return Support.REFUSED
        if matches_of(page, "Location"):
            return Support.IGNORED
        point = location_point(location) if location else None
        if point is None:
            return Support.YES  # accepted; not checked on a clinic
        here = f"{point.latitude}|{point.longitude}|1|km"
        page = await self._search("Location", [("near", here), ("_count", "1")])
        if page is None:
            return Support.REFUSED
        return Support.YES if matches_of(page, "Location") else Support.NOTHING

    async def _type_missing(self, free: int | None) -> Support:
        """YES when ``appointment-type:missing`` true and false bring only slots without
        and with a type, counted, adding up to the ``free`` slots; anything less is not
        trusted (a server matching nothing for what it does not know)."""
        counts = []
        for flag in ("true", "false"):
            params = [("status", "free"), ("appointment-type:missing", flag), ("_count", "10")]
            page = await self._search("Slot", [*params, ("_total", "accurate")], matters=False)
            if page is None:
                return Support.REFUSED
            coded = [s.get("appointmentType") is not None for s in matches_of(page, "Slot")]
            if any(coded) if flag == "true" else not all(coded):  # the modifier unheard
                return Support.IGNORED
            counts.append(bundle_total(page))
        if not free or counts[0] is None or counts[1] is None:
            return Support.UNKNOWN
        return Support.YES if counts[0] + counts[1] == free else Support.NOTHING

    async def _unknown(self) -> Support:
        plain = await self._search("Location", [("_count", "1")])
        if plain is None or not matches_of(plain, "Location"):
            return Support.UNKNOWN
        probe = [("passerelle-probe", "1"), ("_count", "1")]
        page = await self._search("Location", probe, matters=False)
        if page is None:
            return Support.REFUSED
        return Support.IGNORED if matches_of(page, "Location") else Support.NOTHING
