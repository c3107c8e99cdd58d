"""Whole searches and reads by ``_id``: what every plan does the same way.

    bundles = await all_pages(client, "Location", params, page_size=1000, max_pages=50)
    await fetch_missing(slots, found, ...)  # what the server did not _include

Many servers ignore ``_include`` (or its ``:iterate``): whatever a Slot refers to
that did not come with it is read by ``_id``, one batched search per type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sources.fhir.plan import or_values
from sources.fhir.resources import ref_id, refs

if TYPE_CHECKING:
    from sources.fhir.client import FhirClient, Pages
    from sources.fhir.found import Found

__all__ = ["all_pages", "fetch_by_id", "fetch_missing", "resources_in"]


async def all_pages(
    client: FhirClient,
    resource_type: str,
    params: list[tuple[str, str]],
    *,
    page_size: int,
    max_pages: int,
    offset_paging: bool | None = None,
) -> tuple[list[dict[str, Any]], Pages]:
    """Every page of a search (as large as the server allows), and how the paging went."""
    if not any(name == "_count" for name, _ in params):
        params = [*params, ("_count", str(page_size))]
    pages = client.pages(resource_type, params, max_pages=max_pages, offset_paging=offset_paging)
    bundles = []
    while (bundle := await pages.next()) is not None:
        bundles.append(bundle)
    return bundles, pages


async def fetch_by_id(
    client: FhirClient,
    found: Found,
    resource_type: str,
    ids: set[str],
    *,
    page_size: int,
    max_pages: int,
) -> None:
    missing = sorted(ids - found.resources[resource_type].keys())
    if not missing:
        return
    params = [("_id", or_values(missing))]
    if resource_type == "Schedule":
        params += [
            ("_include", "Schedule:actor"),
            ("_include:iterate", "PractitionerRole:practitioner"),
        ]
    elif resource_type == "PractitionerRole":
        params.append(("_include", "PractitionerRole:practitioner"))
    bundles, _ = await all_pages(
        client, resource_type, params, page_size=page_size, max_pages=max_pages
    )
    for bundle in bundles:
        found.add(bundle, resource_type)


async def fetch_missing(
    client: FhirClient,
    slots: list[dict[str, Any]],
    found: Found,
    *,
    page_size: int,
    max_pages: int,
) -> None:
    """Read what the server did not ``_include`` (many ignore ``:iterate``)."""
    sizes = {"page_size": page_size, "max_pages": max_pages}
    free = [s for s in slots if s.get("status") == "free"]
    schedules = {sid for s in free if (sid := ref_id(s.get("schedule"), "Schedule"))}
    await fetch_by_id(client, found, "Schedule", schedules, **sizes)
    locations: set[str] = set()
    roles: set[str] = set()
    practitioners: set[str] = set()
    for sid in schedules:
        actors = found.resources["Schedule"].get(sid, {}).get("actor")
        locations.update(refs(actors, "Location"))
        roles.update(refs(actors, "PractitionerRole"))
        practitioners.update(refs(actors, "Practitioner"))
    await fetch_by_id(client, found, "Location", locations, **sizes)
    await fetch_by_id(client, found, "PractitionerRole", roles, **sizes)
    for rid in roles:
        role = found.resources["PractitionerRole"].get(rid, {})
        if pid := ref_id(role.get("practitioner"), "Practitioner"):
            practitioners.add(pid)
    await fetch_by_id(client, found, "Practitioner", practitioners, **sizes)


def resources_in(bundle: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    """Every resource of ``resource_type`` in a Bundle, matches and includes alike."""
    out = []
    for entry in bundle.get("entry") or ():
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == resource_type:
            out.append(resource)
    return out
