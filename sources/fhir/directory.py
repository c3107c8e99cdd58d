"""The source's clinics, read whole in the background and searched here.

    directory = Directory()
    await directory.load(client, page_size=1000, max_pages=50)
    directory.matching(ClinicQuery(near=here, radius_km=5))  # Location resources, or None

Clinics change rarely, and many servers refuse or ignore ``near`` and
``address-state``: a near-me, region or clinic search is answered from this copy,
with no Location search per request. Until it is loaded (or when the server gave
no way past its first page of Locations) ``matching`` says None and the adapter
asks the server. Each Location is placed once per load (``sources.places``), and
``tally`` counts them: the source's ``OUTSIDE_QUEBEC``, ``NO_POSITION`` and
``APPROXIMATE_POSITION`` problems.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sources.fhir.client import matches_of
from sources.fhir.fetch import all_pages
from sources.fhir.found import place_matches
from sources.fhir.resources import location_place, text_value
from sources.places import PlaceTally

if TYPE_CHECKING:
    from sources.fhir.client import FhirClient
    from sources.places import Place
    from sources.records import ClinicQuery

__all__ = ["Directory"]


class Directory:
    """Every Location of one source, by id, as last read whole."""

    def __init__(self) -> None:
        self.locations: dict[str, dict[str, Any]] | None = None
        self.places: dict[str, Place] = {}
        self.tally = PlaceTally()
        self.loaded_at: float | None = None

    async def load(
        self,
        client: FhirClient,
        *,
        page_size: int,
        max_pages: int,
        offset_paging: bool | None = None,
    ) -> bool:
        """Read every Location; True when the copy was replaced (the read was whole)."""
        bundles, pages = await all_pages(
            client,
            "Location",
            [],
            page_size=page_size,
            max_pages=max_pages,
            offset_paging=offset_paging,
        )
        if not pages.complete:
            client.logger.warning(
                "clinic directory not kept: the server gave no way past page %d", pages.read
            )
            return False
        locations = {}
        for bundle in bundles:
            for resource in matches_of(bundle, "Location"):
                if (rid := text_value(resource.get("id"))) is not None:
                    locations[rid] = {**resource, "id": rid}
        places = {rid: location_place(resource) for rid, resource in locations.items()}
        tally = PlaceTally()
        for rid, place in places.items():
            tally.note(rid, place)
        self.locations, self.places, self.tally = locations, places, tally
        self.loaded_at = time.monotonic()
        return True

    def matching(self, query: ClinicQuery) -> list[dict[str, Any]] | None:
        """The Locations that may match ``query`` (id, place, region), or None when not loaded."""
        if self.locations is None:
            return None
        if query.local_ids is not None:
            candidates = [self.locations[i] for i in query.local_ids if i in self.locations]
        else:
            candidates = list(self.locations.values())
        return [r for r in candidates if place_matches(r, query, self.places.get(r["id"]))]
