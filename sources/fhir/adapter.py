"""The FHIR R4 scheduling adapter: free ``Slot``s, with their clinics and physicians.

    source = FhirSource(
        SourceConfig(id="fhir-demo", name="FHIR demo", protocol=SourceProtocol.FHIR_R4,
                     url="http://127.0.0.1:8101/fhir"),
        SourceContext(session=session, logger=logging.getLogger("passerelle.source.fhir-demo")),
    )
    await source.start()  # learns what the server does, keeps its clinics, in the background
    result = await source.search_slots(SlotQuery(starts_after=now, starts_before=later, limit=20))

Servers implement part of the search specification, each its own part: what this one
does is learnt by probes (``capabilities``) when the adapter starts and every
``REFRESH_S``, and each search follows the plan those capabilities allow (``plan``,
carried out by ``slots``). Until the first probe answers, the plan assumes the
specification and checks what it reads: pages in order, no "no next link" taken for
the end while ``Bundle.total`` says more (``client``). The source's Locations are kept
whole (``directory``), so that near-me, region and clinic searches need no Location
search per request. A request the server refuses as unsupported (400/422 with an
OperationOutcome) is a capability: logged with its diagnostics, noted as a problem,
and the search falls back to a plainer plan. Locations are placed as every adapter
places them (``sources.places``); the places of the directory, and those the searches
met since it was last read, are the source's place problems.

The module is one class and stays whole (past 400 lines): the searches, the probes
and the directory share what was learnt of the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sources.base import Source
from sources.errors import SourceError, SourceRefusedRequest
from sources.fhir import slot_check
from sources.fhir.capabilities import Capabilities, Refusal, Support, learn
from sources.fhir.client import FhirClient
from sources.fhir.directory import Directory
from sources.fhir.fetch import all_pages, fetch_by_id
from sources.fhir.found import Found, clinic_matches, place_matches
from sources.fhir.options import MAX_PAGE_SIZE, FhirOptions
from sources.fhir.plan import SlotPlan, identifier_tokens, or_refs, or_values
from sources.fhir.resources import identifiers, ref_id, refs
from sources.fhir.slots import OutOfOrder, SlotSearch
from sources.places import PlaceKind, PlaceTally, place_problems
from sources.problems import MAX_SAMPLES, ProblemBook, ProblemCode
from sources.records import (
    ClinicQuery,
    ClinicRecord,
    PhysicianQuery,
    PhysicianRecord,
    SlotQuery,
    SlotResult,
    SourceProtocol,
)
from sources.transport.failures import redact_for_log

if TYPE_CHECKING:
    from sources.base import SourceConfig, SourceContext
    from sources.fhir.client import Pages
    from sources.records import SlotCheck, SlotRecord, SourceProblem

MAX_PAGES = 50
PAGE_SIZE = MAX_PAGE_SIZE
# How often what the server does, and its clinics, are read again.
REFRESH_S = 600.0
# A refusal of one kind of request is logged at most this often.
REFUSAL_LOG_S = 600.0


class FhirSource(Source):
    """Adapter for a FHIR R4 server offering Slot search; see the module docstring."""

    protocol: ClassVar[SourceProtocol] = SourceProtocol.FHIR_R4

    def __init__(self, config: SourceConfig, context: SourceContext) -> None:
        super().__init__(config, context)
        self.options = config.options_as(FhirOptions)
        self.client = FhirClient(config, context.session, context.logger)
        self.capabilities = Capabilities()
        self.directory = Directory()
        self.book = ProblemBook()
        self._met = PlaceTally()  # places the searches met since the directory was read
        self._probed = False
        self._probed_at: datetime | None = None
        self._demoted = False  # found out of order while reading: stays unsorted
        self._generation: tuple[Capabilities, str] | None = None
        self._refusals_logged: dict[str, float] = {}
        self._refusals: set[Refusal] = set()
        self._learnt = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- capabilities, in the background ------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._keep_learning(), name=f"fhir-probe-{self.id}")

    async def ready(self) -> None:
        if self._task is not None:
            await self._learnt.wait()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _keep_learning(self) -> None:
        while True:
            try:
                self._probed_at = None  # until this probe answers
                await self.learn()
                self._probed_at = datetime.now(UTC)
            except SourceError as exc:
                self.logger.warning("capabilities not learnt: %s", exc)
            except Exception:
                self.logger.exception("capabilities not learnt: probe failed")
            finally:
                self._learnt.set()
            await asyncio.sleep(REFRESH_S)

    @property
    def probed_at(self) -> datetime | None:
        return self._probed_at

    @property
    def cache_generation(self) -> str:
        """What was learnt, fingerprinted: answers cached under other capabilities (a
        server since found unsorted) are not served."""
        capabilities = self.capabilities
        if self._generation is None or self._generation[0] is not capabilities:
            lines = "\n".join(capabilities.lines()).encode()
            self._generation = (capabilities, hashlib.sha256(lines).hexdigest()[:12])
        return self._generation[1]

    async def learn(self) -> Capabilities:
        """Probe the server and read its clinics; log what was learnt or changed, once."""
        learnt, refusals = await learn(self.client)
        if self._demoted:
            learnt = learnt.merged(sorted_by_instant=False)
        for refusal in refusals:
            # Logged once each: the same refusal on every refresh is no news. A probe
            # meant to be refused by strict servers (an unknown parameter) is no problem.
            new = refusal not in self._refusals
            if refusal.matters:
                self._refused(
                    refusal.asked, refusal.diagnostics, level="warning" if new else "debug"
                )
            elif new:
                self.logger.info(
                    "probe refused, as expected of a strict server: %s: %s",
                    refusal.asked,
                    refusal.diagnostics or "no diagnostics",
                )
        self._refusals = set(refusals)
        changes = learnt.changes_from(self.capabilities) if self._probed else learnt.lines()
        if changes:
            verb = "changed" if self._probed else "learnt"
            self.logger.info("capabilities %s: %s", verb, "; ".join(changes))
        self.capabilities, self._probed = learnt, True
        try:
            if await self.directory.load(
                self.client, **self._sizes(), offset_paging=learnt.offset_paging
            ):
                self._met = PlaceTally()
        except SourceError as exc:
            self.logger.warning("clinic directory not refreshed: %s", exc)
        return learnt

    async def probe(self) -> list[str]:
        learnt = await self.learn()
        clinics = self.directory.locations
        kept = f"{len(clinics)} kept" if clinics is not None else "not kept (searched per request)"
        return [*learnt.lines(), f"clinic directory: {kept}"]

    @property
    def problems(self) -> tuple[SourceProblem, ...]:
        return (*self.capabilities.problems(), *self.book.current(), *self._place_problems())

    def _place_problems(self) -> list[SourceProblem]:
        tally = PlaceTally()
        tally.merge(self.directory.tally)
        tally.merge(self._met)
        outside = sorted(tally.kinds[PlaceKind.OUTSIDE_QUEBEC])[:MAX_SAMPLES]
        return place_problems(
            tally.places,
            ask="Location.position",
            outside_samples=tuple(f"Location/{lid}" for lid in outside),
            slots_seen=True,
        )

    def _refused(self, asked: str, diagnostics: str, *, level: str = "warning") -> None:
        # Once per kind of request per REFUSAL_LOG_S: a search the server refuses would
        # otherwise log on every request. The diagnostics go to the log with what could
        # locate a person masked; whole, they are for operators (the source's problems).
        now = time.monotonic()
        if now - self._refusals_logged.get(asked, -REFUSAL_LOG_S) >= REFUSAL_LOG_S:
            self._refusals_logged[asked] = now
            said = redact_for_log(diagnostics) if diagnostics else "no diagnostics"
            getattr(self.logger, level)("the server refused %s: %s", asked, said)
        self.book.note(
            ProblemCode.REQUEST_REFUSED,
            f"the server refused a request it does not support ({asked}); the gateway "
            "asks otherwise where it can",
            diagnostics=diagnostics or None,
        )

    def _sizes(self) -> dict[str, int]:
        """Page size (the ``page_size`` option, within ``PAGE_SIZE``) and page cap."""
        return {"page_size": min(PAGE_SIZE, self.options.page_size), "max_pages": MAX_PAGES}

    # -- the contract ---------------------------------------------------------

    async def search_slots(self, query: SlotQuery) -> SlotResult:
        found = Found(self.id)
        if query.clinic_local_ids is not None or query.region is not None or _has_radius(query):
            scope = ClinicQuery(
                near=query.near,
                radius_km=query.radius_km,
                region=query.region,
                local_ids=query.clinic_local_ids,
            )
            found.scope = {r["id"] for r in await self._locations(scope, found)}
            if not found.scope:
                return SlotResult((), complete=True, total=0)
        plan = SlotPlan.for_query(self.capabilities, query)
        roles: set[str] | None = None
        practitioners: set[str] | None = None
        if query.physician_local_ids is not None:
            roles = await self._role_ids(query.physician_local_ids)
            # A Schedule may name the Practitioner itself (no role): by actor, not by chain.
            practitioners = set(query.physician_local_ids)
            if not roles and (plan.chains or not practitioners):
                return SlotResult((), complete=True, total=0)
        speaking = None  # the Schedule actors a language filter narrows to (``directory``)
        by_language = bool(query.languages) and query.physician_local_ids is None
        if by_language and query.languages:
            speaking = self.directory.actors_speaking(query.languages, found.scope)
            if speaking == []:
                return SlotResult((), complete=True, total=0)
        search = SlotSearch(self.client, found, self.capabilities, **self._sizes())
        search.seeded_by(self.directory)
        scoped: dict[str, Any] = {"roles": roles, "practitioners": practitioners}
        scoped["speaking"] = speaking
        # Most slots pass what is filtered here: ROUTINE (the common type), a language
        # sent as its speakers or common (the staff is known), or of physicians asked.
        staff = self.directory.staff is not None or query.physician_local_ids is not None
        scoped["most_pass"] = not query.languages or staff
        try:
            try:
                result = await search.run(query, plan, **scoped)
            except OutOfOrder as exc:
                self._demote(str(exc))
                result = await search.run(
                    query, SlotPlan.for_query(self.capabilities, query), **scoped
                )
        except SourceRefusedRequest as exc:
            self._refused("the Slot search", exc.diagnostics)
            if plan.split_routine:  # the one parameter no probe asked with the others
                self.capabilities = self.capabilities.merged(type_missing=Support.REFUSED)
            result = await search.run(query, plan.fallback(), **scoped)
        self._read(search)
        self._met.merge(found.places)
        found.log(self.logger, self.book)
        return result

    def _demote(self, why: str) -> None:
        self._demoted = True
        self.capabilities = self.capabilities.merged(sorted_by_instant=False)
        self.logger.warning("slots came out of order (%s): now read as unsorted", why)

    def _read(self, search: SlotSearch) -> None:
        """What a search's paging taught: a search left incomplete is a LOSS."""
        for pages in search.paged:
            self._paged(pages)

    def _paged(self, pages: Pages) -> None:
        if pages.offset_ignored and self.capabilities.offset_paging is not False:
            self.capabilities = self.capabilities.merged(offset_paging=False)
        if pages.incomplete or pages.capped:
            self.book.note(
                ProblemCode.INCOMPLETE_SEARCH,
                f"a slot search stopped after {pages.matches} of "
                f"{pages.total if pages.total is not None else 'more'} slots: the server "
                "gave no way further (no next link, _offset ignored, or too many pages); "
                "its answers say they are partial",
            )

    async def check_slot(self, slot: SlotRecord) -> SlotCheck:
        """The Slot read now (``sources.fhir.slot_check``)."""
        return await slot_check.check_slot(self.client, slot)

    async def search_clinics(self, query: ClinicQuery) -> list[ClinicRecord]:
        found = Found(self.id)
        out = []
        for resource in await self._locations(query, found):
            clinic = found.clinic(resource["id"])
            if clinic is not None and clinic_matches(clinic, query):
                out.append(clinic)
        self._met.merge(found.places)
        found.log(self.logger, self.book)
        return out

    async def _locations(self, query: ClinicQuery, found: Found) -> list[dict[str, Any]]:
        """Locations for ``query``, checked cheaply on id, place and region: from the
        directory when it is loaded, else asked of the server.

        Records are built later and only for the clinics that are used: building one
        costs far more than this check, and a region scope can hold hundreds of clinics.
        """
        kept = self.directory.matching(query)
        if kept is not None:
            found.add({"entry": [{"resource": r} for r in kept]}, "Location")
            return kept
        params = []
        if query.local_ids is not None:
            if not query.local_ids:
                return []
            params.append(("_id", or_values(query.local_ids)))
        if query.identifiers is not None:
            if not query.identifiers:
                return []
            params.append(("identifier", identifier_tokens(query.identifiers)))
        if query.name_contains:
            params.append(("name:contains", query.name_contains))
        if query.postal_codes is not None:
            if not query.postal_codes:
                return []
            params.append(("address-postalcode", or_values(query.postal_codes)))
        if query.region is not None:
            params.append(("address-state", "QC"))
        near = query.near
        if near is not None and query.radius_km is not None:
            if self.capabilities.near in (Support.YES, Support.UNKNOWN):
                at = ("near", f"{near.latitude}|{near.longitude}|{query.radius_km}|km")
                try:
                    await self._add_pages(found, "Location", [*params, at])
                    return self._placed(found, query)
                except SourceRefusedRequest as exc:
                    self.capabilities = self.capabilities.merged(near=Support.REFUSED)
                    self._refused("Location?near", exc.diagnostics)
        await self._add_pages(found, "Location", params)
        return self._placed(found, query)

    @staticmethod
    def _placed(found: Found, query: ClinicQuery) -> list[dict[str, Any]]:
        return [r for r in found.resources["Location"].values() if place_matches(r, query)]

    async def _add_pages(
        self, found: Found, resource_type: str, params: list[tuple[str, str]]
    ) -> list[dict[str, Any]]:
        """Every page of a search indexed in ``found``; the matches returned."""
        bundles, _ = await all_pages(
            self.client,
            resource_type,
            params,
            **self._sizes(),
            offset_paging=self.capabilities.offset_paging,
        )
        return [m for bundle in bundles for m in found.add(bundle, resource_type)]

    async def get_physicians(self, query: PhysicianQuery) -> list[PhysicianRecord]:
        found = Found(self.id)
        wanted: set[str] = set()
        if query.local_ids:
            await self._add_pages(found, "Practitioner", [("_id", or_values(query.local_ids))])
            wanted |= set(query.local_ids) & found.resources["Practitioner"].keys()
        if query.identifiers:
            token = identifier_tokens(query.identifiers)
            asked = set(query.identifiers)
            for practitioner in await self._add_pages(
                found, "Practitioner", [("identifier", token)]
            ):
                if asked & set(identifiers(practitioner.get("identifier"))):
                    wanted.add(practitioner["id"])
        if query.clinic_local_ids:
            params = [
                ("location", or_refs("Location", query.clinic_local_ids)),
                ("_include", "PractitionerRole:practitioner"),
            ]
            clinics = set(query.clinic_local_ids)
            for role in await self._add_pages(found, "PractitionerRole", params):
                pid = ref_id(role.get("practitioner"), "Practitioner")
                if pid and clinics & set(refs(role.get("location"), "Location")):
                    wanted.add(pid)
        if not wanted:
            found.log(self.logger)
            return []
        # Every role of each physician, so that clinic_local_ids lists all their clinics.
        params = [("practitioner", or_refs("Practitioner", sorted(wanted)))]
        await self._add_pages(found, "PractitionerRole", params)
        await fetch_by_id(self.client, found, "Practitioner", wanted, **self._sizes())
        out = [p for pid in sorted(wanted) if (p := found.physician(pid)) is not None]
        found.log(self.logger)
        return out

    async def _role_ids(self, physician_ids: tuple[str, ...]) -> set[str]:
        if not physician_ids:
            return set()
        params = [("practitioner", or_refs("Practitioner", physician_ids))]
        wanted = set(physician_ids)
        found = Found(self.id)
        roles: set[str] = set()
        for role in await self._add_pages(found, "PractitionerRole", params):
            if ref_id(role.get("practitioner"), "Practitioner") in wanted:
                roles.add(role["id"])
        return roles


def _has_radius(query: SlotQuery) -> bool:
    return query.near is not None and query.radius_km is not None


__all__ = [
    "MAX_PAGES",
    "REFRESH_S",
    "FhirSource",
]
