"""The FHIR R4 scheduling adapter: free ``Slot``s, with their clinics and physicians.

    source = FhirSource(
        SourceConfig(id="fhir-demo", name="FHIR demo", protocol=SourceProtocol.FHIR_R4,
                     url="http://127.0.0.1:8101/fhir"),
        SourceContext(session=session, logger=logging.getLogger("passerelle.source.fhir-demo")),
    )
    result = await source.search_slots(SlotQuery(starts_after=now, starts_before=later, limit=20))

This module holds the searches and the paging; how FHIR resources map to the gateway's
records is :mod:`sources.fhir.resources`, and what a call has read is :mod:`sources.fhir.found`.

Reading is lenient per entry and strict per answer: a malformed entry is skipped and
counted in one log line, while an answer that is not a Bundle is a ``SourceBadResponse``.
A slot without ``appointmentType`` is ROUTINE (v2 table 0276: "default if not valued"); a
slot coded only in unknown systems is skipped rather than guessed. Only free slots are kept.
Next links are followed only on the origin of ``config.url``, never twice, at most
``MAX_PAGES`` pages per search.

It stays one module past 400 lines because :class:`FhirSource` is one conversation with
one server: the Location scope, paging, ``_include`` and the same-origin checks all read
the same base URL and search state; the resources and results are already apart
(``resources``, ``found``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar

from yarl import URL

from sources.base import Source
from sources.errors import SourceBadResponse
from sources.fhir.found import Found, clinic_matches, place_matches
from sources.fhir.options import MAX_PAGE_SIZE, FhirOptions
from sources.fhir.resources import (
    APPOINTMENT_TYPE_SYSTEM,
    V2_APPOINTMENT_REASON,
    V2_APPOINTMENT_REASON_SYSTEM,
    identifiers,
    ref_id,
    refs,
)
from sources.records import (
    AppointmentType,
    ClinicQuery,
    ClinicRecord,
    Identifier,
    PhysicianQuery,
    PhysicianRecord,
    SlotQuery,
    SlotResult,
    SourceProtocol,
)
from sources.transport.failures import shape_error
from sources.transport.http import request_json

if TYPE_CHECKING:
    from sources.base import SourceConfig, SourceContext

MAX_PAGES = 50
PAGE_SIZE = MAX_PAGE_SIZE

_MAX_URL = 64 * 1024


class FhirSource(Source):
    """Adapter for a FHIR R4 server offering Slot search; see the module docstring."""

    protocol: ClassVar[SourceProtocol] = SourceProtocol.FHIR_R4

    def __init__(self, config: SourceConfig, context: SourceContext) -> None:
        super().__init__(config, context)
        self.options = config.options_as(FhirOptions)
        self._base = config.url.rstrip("/")
        self._origin: URL | None
        try:
            self._origin = URL(self._base).origin()
        except ValueError:
            self._origin = None  # every call then fails with SourceBadResponse

    # -- the contract ---------------------------------------------------------

    @property
    def _page_size(self) -> int:
        """The ``_count`` asked for: the source's ``page_size`` option, within ``PAGE_SIZE``."""
        return min(PAGE_SIZE, self.options.page_size)

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
        roles: set[str] | None = None
        if query.physician_local_ids is not None:
            roles = await self._role_ids(query.physician_local_ids)
            if not roles:
                return SlotResult((), complete=True, total=0)

        params = [
            ("status", "free"),
            ("start", "ge" + query.starts_after.isoformat()),
            ("start", "lt" + query.starts_before.isoformat()),
            ("_sort", "start"),
            ("_count", str(min(self._page_size, max(1, query.limit)))),
            ("_include", "Slot:schedule"),
            ("_include:iterate", "Schedule:actor"),
            ("_include:iterate", "PractitionerRole:practitioner"),
            ("_total", "accurate"),
        ]
        if query.appointment_types is not None:
            params.append(("appointment-type", _type_tokens(query.appointment_types)))
        if found.scope is not None:
            params.append(("schedule.actor", _or_refs("Location", sorted(found.scope))))
        if roles is not None:
            params.append(("schedule.actor", _or_refs("PractitionerRole", sorted(roles))))

        total: int | None = None
        complete = False
        method, url = "POST", f"{self._base}/Slot/_search"
        data: list[tuple[str, str]] | None = params
        visited: set[str] = set()
        for page in range(MAX_PAGES):
            bundle = await self._bundle(method, url, data)
            if page == 0:
                total = _bundle_total(bundle)
            matches = found.add(bundle, "Slot")
            await self._fetch_missing(matches, found)
            for raw in matches:
                found.keep_slot(raw, query)
            next_url = _next_link(bundle)
            if next_url is None:
                complete = True
                break
            if len(found.slots) >= query.limit:
                break
            url, method, data = self._follow(next_url, visited), "GET", None
        else:
            self.logger.warning("stopped after %d pages of slots", MAX_PAGES)
        found.log(self.logger)

        slots = tuple(sorted(found.slots.values(), key=lambda s: (s.start, s.local_id)))
        return SlotResult(
            slots=slots,
            complete=complete,
            total=len(slots) if complete else total,
            clinics=found.clinics_of(slots),
            physicians=found.physicians_of(slots),
        )

    async def search_clinics(self, query: ClinicQuery) -> list[ClinicRecord]:
        found = Found(self.id)
        out = []
        for resource in await self._locations(query, found):
            clinic = found.clinic(resource["id"])
            if clinic is not None and clinic_matches(clinic, query):
                out.append(clinic)
        found.log(self.logger)
        return out

    async def _locations(self, query: ClinicQuery, found: Found) -> list[dict[str, Any]]:
        """Locations the server returns for ``query``, checked cheaply on id, place and region.

        Records are built later and only for the clinics that are used: building one
        costs far more than this check, and a region scope can hold hundreds of clinics.
        """
        params = [("_count", str(self._page_size))]
        if query.local_ids is not None:
            if not query.local_ids:
                return []
            params.append(("_id", _or(query.local_ids)))
        if query.identifiers is not None:
            if not query.identifiers:
                return []
            params.append(("identifier", _identifier_tokens(query.identifiers)))
        if query.near is not None and query.radius_km is not None:
            near = query.near
            params.append(("near", f"{near.latitude}|{near.longitude}|{query.radius_km}|km"))
        if query.name_contains:
            params.append(("name:contains", query.name_contains))
        if query.postal_codes is not None:
            if not query.postal_codes:
                return []
            params.append(("address-postalcode", _or(query.postal_codes)))
        if query.region is not None:
            params.append(("address-state", "QC"))
        for bundle in await self._all_pages("Location", params):
            found.add(bundle, "Location")
        return [r for r in found.resources["Location"].values() if place_matches(r, query)]

    async def get_physicians(self, query: PhysicianQuery) -> list[PhysicianRecord]:
        found = Found(self.id)
        wanted: set[str] = set()
        if query.local_ids:
            for bundle in await self._all_pages("Practitioner", [("_id", _or(query.local_ids))]):
                found.add(bundle, "Practitioner")
            wanted |= set(query.local_ids) & found.resources["Practitioner"].keys()
        if query.identifiers:
            token = _identifier_tokens(query.identifiers)
            asked = set(query.identifiers)
            for bundle in await self._all_pages("Practitioner", [("identifier", token)]):
                for practitioner in found.add(bundle, "Practitioner"):
                    if asked & set(identifiers(practitioner.get("identifier"))):
                        wanted.add(practitioner["id"])
        if query.clinic_local_ids:
            params = [
                ("location", _or_refs("Location", query.clinic_local_ids)),
                ("_include", "PractitionerRole:practitioner"),
            ]
            clinics = set(query.clinic_local_ids)
            for bundle in await self._all_pages("PractitionerRole", params):
                for role in found.add(bundle, "PractitionerRole"):
                    pid = ref_id(role.get("practitioner"), "Practitioner")
                    if pid and clinics & set(refs(role.get("location"), "Location")):
                        wanted.add(pid)
        if not wanted:
            found.log(self.logger)
            return []
        # Every role of each physician, so that clinic_local_ids lists all their clinics.
        params = [("practitioner", _or_refs("Practitioner", sorted(wanted)))]
        for bundle in await self._all_pages("PractitionerRole", params):
            found.add(bundle, "PractitionerRole")
        await self._fetch_by_id(found, "Practitioner", wanted)
        out = [p for pid in sorted(wanted) if (p := found.physician(pid)) is not None]
        found.log(self.logger)
        return out

    # -- HTTP -----------------------------------------------------------------

    async def _bundle(
        self, method: str, url: str, data: list[tuple[str, str]] | None = None
    ) -> dict[str, Any]:
        if self._origin is None:
            raise SourceBadResponse(self.id, "configured URL is not an absolute http(s) URL")
        headers = {"Accept": "application/fhir+json"}
        if self.config.credentials:
            headers["Authorization"] = f"Bearer {self.config.credentials}"
        body = await request_json(
            self.session,
            self.id,
            method,
            url,
            timeout_s=self.config.timeout_s,
            connect_timeout_s=self.config.effective_connect_timeout_s,
            read_timeout_s=self.config.effective_read_timeout_s,
            data=data,
            headers=headers,
        )
        if not isinstance(body, dict):
            raise shape_error(self.id, f"expected a Bundle, got a JSON {type(body).__name__}")
        kind = body.get("resourceType")
        if kind != "Bundle":
            raise shape_error(self.id, f"expected a Bundle, got {_short(kind)}")
        if not all(isinstance(body.get(key, []), list) for key in ("entry", "link")):
            raise shape_error(self.id, "Bundle.entry or Bundle.link is not a list")
        return body

    def _follow(self, link: object, visited: set[str]) -> str:
        """The absolute next-page URL, refused off our origin (SSRF) or when seen before."""
        if not isinstance(link, str) or not link.strip() or len(link) > _MAX_URL:
            raise shape_error(self.id, "Bundle next link is not a usable URL")
        try:
            url = URL(self._base + "/").join(URL(link.strip()))
            same_origin = url.scheme in ("http", "https") and url.origin() == self._origin
        except (ValueError, TypeError):
            same_origin = False
        if not same_origin:
            raise SourceBadResponse(self.id, "next link points outside the source's origin")
        text = str(url)
        if text in visited:
            raise SourceBadResponse(self.id, "next links loop")
        visited.add(text)
        return text

    async def _all_pages(
        self, resource_type: str, params: list[tuple[str, str]]
    ) -> list[dict[str, Any]]:
        """Every page of a search, following next links up to ``MAX_PAGES``; pages as
        large as the server allows (``_count``), so a search takes as few calls as it can."""
        if not any(name == "_count" for name, _ in params):
            params = [*params, ("_count", str(self._page_size))]
        bundles = [await self._bundle("POST", f"{self._base}/{resource_type}/_search", params)]
        visited: set[str] = set()
        while (link := _next_link(bundles[-1])) is not None:
            if len(bundles) >= MAX_PAGES:
                self.logger.warning("stopped after %d pages of %s", MAX_PAGES, resource_type)
                break
            bundles.append(await self._bundle("GET", self._follow(link, visited)))
        return bundles

    async def _fetch_by_id(self, found: Found, resource_type: str, ids: set[str]) -> None:
        missing = sorted(ids - found.resources[resource_type].keys())
        if not missing:
            return
        params = [("_id", _or(missing))]
        if resource_type == "Schedule":
            params += [
                ("_include", "Schedule:actor"),
                ("_include:iterate", "PractitionerRole:practitioner"),
            ]
        elif resource_type == "PractitionerRole":
            params.append(("_include", "PractitionerRole:practitioner"))
        for bundle in await self._all_pages(resource_type, params):
            found.add(bundle, resource_type)

    async def _fetch_missing(self, slots: list[dict[str, Any]], found: Found) -> None:
        """Fetch what the server did not ``_include`` (many ignore ``:iterate``)."""
        free = [s for s in slots if s.get("status") == "free"]
        schedules = {sid for s in free if (sid := ref_id(s.get("schedule"), "Schedule"))}
        await self._fetch_by_id(found, "Schedule", schedules)
        locations: set[str] = set()
        roles: set[str] = set()
        practitioners: set[str] = set()
        for sid in schedules:
            actors = found.resources["Schedule"].get(sid, {}).get("actor")
            locations.update(refs(actors, "Location"))
            roles.update(refs(actors, "PractitionerRole"))
            practitioners.update(refs(actors, "Practitioner"))
        await self._fetch_by_id(found, "Location", locations)
        await self._fetch_by_id(found, "PractitionerRole", roles)
        for rid in roles:
            role = found.resources["PractitionerRole"].get(rid, {})
            if pid := ref_id(role.get("practitioner"), "Practitioner"):
                practitioners.add(pid)
        await self._fetch_by_id(found, "Practitioner", practitioners)

    async def _role_ids(self, physician_ids: tuple[str, ...]) -> set[str]:
        if not physician_ids:
            return set()
        params = [("practitioner", _or_refs("Practitioner", physician_ids))]
        wanted = set(physician_ids)
        found = Found(self.id)
        roles: set[str] = set()
        for bundle in await self._all_pages("PractitionerRole", params):
            for role in found.add(bundle, "PractitionerRole"):
                if ref_id(role.get("practitioner"), "Practitioner") in wanted:
                    roles.add(role["id"])
        return roles


# -- reading Bundles -------------------------------------------------------------


def _bundle_total(bundle: dict[str, Any]) -> int | None:
    total = bundle.get("total")
    return total if type(total) is int and 0 <= total < 2**31 else None


def _next_link(bundle: dict[str, Any]) -> object:
    """The ``url`` of the ``next`` link, whatever its type (``_follow`` checks it), or None."""
    for link in bundle.get("link") or ():
        if isinstance(link, dict) and link.get("relation") == "next":
            return link.get("url", "")
    return None


def _short(value: object) -> str:
    return repr(value)[:40] if isinstance(value, str) else type(value).__name__


# -- writing search parameters -------------------------------------------------


def _has_radius(query: SlotQuery) -> bool:
    return query.near is not None and query.radius_km is not None


def _escape(value: str) -> str:
    """FHIR search escaping of ``\\``, ``,``, ``|`` and ``$`` inside one value."""
    return re.sub(r"([\\,|$])", r"\\\1", value)


def _or(values: tuple[str, ...] | list[str]) -> str:
    return ",".join(_escape(v) for v in values)


def _or_refs(resource_type: str, ids: tuple[str, ...] | list[str]) -> str:
    return ",".join(f"{resource_type}/{_escape(i)}" for i in ids)


def _identifier_tokens(wanted: tuple[Identifier, ...]) -> str:
    return ",".join(f"{_escape(i.system)}|{_escape(i.value)}" for i in wanted)


def _type_tokens(kinds: frozenset[AppointmentType]) -> str:
    """Both codings, so servers that know only v2-0276 filter too; we re-check locally."""
    tokens = [f"{APPOINTMENT_TYPE_SYSTEM}|{k.value}" for k in sorted(kinds, key=lambda k: k.value)]
    tokens += sorted(
        f"{V2_APPOINTMENT_REASON_SYSTEM}|{V2_APPOINTMENT_REASON[k]}"
        for k in kinds
        if k in V2_APPOINTMENT_REASON
    )
    return ",".join(tokens)


__all__ = [
    "MAX_PAGES",
    "FhirSource",
]
