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

The source's staff is kept the same way (``Staff``: every Practitioner's languages and
every PractitionerRole's practitioner and clinics), so that a language filter becomes
the few Schedule actors that can hold a matching slot (``actors_speaking``), sent to
the server as ``schedule.actor`` (or Schedules by ``actor``): a rare language is then
one small search instead of the whole window read and filtered here. Its meaning is
the adapter's own (``found._speaks``): a slot matches unless the languages known of its
clinic and physician exclude the wanted ones, so a clinic speaking it, a physician
speaking it, and a clinic with no languages known (whose physician may have none
either) are the actors. Read whole rather than asked per request
(``Practitioner?communication=``): a token search would miss ``fr-CA`` for ``fr`` and
could not find the practitioners with no language known, and many servers do not
support it. A source whose staff could not be read whole gets no language scope: the
window is then filtered here, as before.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sources.fhir.client import matches_of
from sources.fhir.fetch import all_pages
from sources.fhir.found import place_matches
from sources.fhir.resources import (
    location_languages,
    location_place,
    practitioner_languages,
    primary_language,
    ref_id,
    refs,
    text_value,
)
from sources.places import PlaceTally

if TYPE_CHECKING:
    from sources.fhir.client import FhirClient
    from sources.fhir.found import Found
    from sources.places import Place
    from sources.records import ClinicQuery

__all__ = ["MAX_LANGUAGE_ACTORS", "Directory", "Staff"]

# A language scope of at most ``CHEAP_ACTORS`` actors is sent. A longer one costs both
# ends (measured on the demo, full scale: 7,477 actors, 190 kB, cost 20-40 ms a
# request, more than reading the slots it spares): it is sent only when its Schedules
# are at most ``NARROW_ENOUGH`` of those of the clinics searched (the Schedules are
# kept), and never past ``MAX_LANGUAGE_ACTORS`` (the next link of a server that
# repeats the search in it must stay usable).
CHEAP_ACTORS = 500
NARROW_ENOUGH = 0.5
MAX_LANGUAGE_ACTORS = 10_000
# Language scopes worked out (by languages and clinics) kept until the next load.
DECIDED_KEPT = 256


class Staff:
    """Every Practitioner's languages and every PractitionerRole, as last read whole."""

    def __init__(
        self,
        practitioners: dict[str, dict[str, Any]],
        roles: dict[str, dict[str, Any]],
        schedules: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        # Kept whole, so that a Slot search needs no _include (``Directory.seed``).
        self.practitioners, self.roles = practitioners, roles
        self.schedules = schedules
        # language -> the practitioners speaking it; practitioner -> (role id, its clinics)
        self.speakers: dict[str, set[str]] = {}
        for pid, practitioner in practitioners.items():
            for language in practitioner_languages(practitioner):
                self.speakers.setdefault(language, set()).add(pid)
        self.roles_of: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        for rid, role in sorted(roles.items()):
            who = ref_id(role.get("practitioner"), "Practitioner")
            if who is not None:
                at = refs(role.get("location"), "Location")
                self.roles_of.setdefault(who, []).append((rid, at))

    @classmethod
    async def load(
        cls, client: FhirClient, *, page_size: int, max_pages: int, offset_paging: bool | None
    ) -> Staff | None:
        """Every Practitioner and PractitionerRole (None when either could not be read
        whole), and every Schedule (None when they could not)."""
        read: dict[str, dict[str, dict[str, Any]] | None] = {}
        for kind in ("Practitioner", "PractitionerRole", "Schedule"):
            bundles, pages = await all_pages(
                client,
                kind,
                [],
                page_size=page_size,
                max_pages=max_pages,
                offset_paging=offset_paging,
            )
            if not pages.complete:
                client.logger.warning(
                    "staff directory not kept: the server gave no way past page %d of %s",
                    pages.read,
                    kind,
                )
                if kind == "Schedule":
                    read[kind] = None
                    break
                return None
            read[kind] = {
                rid: resource
                for bundle in bundles
                for resource in matches_of(bundle, kind)
                if (rid := text_value(resource.get("id"))) is not None
            }
        return cls(read["Practitioner"] or {}, read["PractitionerRole"] or {}, read["Schedule"])


class Directory:
    """Every Location of one source, by id, as last read whole."""

    def __init__(self) -> None:
        self.locations: dict[str, dict[str, Any]] | None = None
        self.places: dict[str, Place] = {}
        self.tally = PlaceTally()
        self.loaded_at: float | None = None
        self.staff: Staff | None = None
        # language -> the Locations speaking it; and the Locations with no language known
        self._speaking: dict[str, set[str]] = {}
        self._mute: set[str] = set()
        # (languages, clinic scope) -> their actors (None: not sent), as last worked out.
        self._decided: dict[tuple[frozenset[str], frozenset[str] | None], list[str] | None]
        self._decided = {}
        self._by_actor: dict[str, set[str]] | None = None  # actor -> its Schedules
        # A Slot's Schedule reference -> what ``seed`` brings for it (until the next load).
        self._seeds: dict[str, tuple[tuple[str, str, dict[str, Any]], ...]] = {}

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
        speaking: dict[str, set[str]] = {}
        mute = set()
        for rid, resource in locations.items():
            spoken = location_languages(resource)
            for language in spoken:
                speaking.setdefault(language, set()).add(rid)
            if not spoken:
                mute.add(rid)
        self._speaking, self._mute = speaking, mute
        self.loaded_at = time.monotonic()
        self.staff = await Staff.load(
            client, page_size=page_size, max_pages=max_pages, offset_paging=offset_paging
        )
        self._decided, self._by_actor, self._seeds = {}, None, {}
        return True

    @property
    def whole(self) -> bool:
        """Whether every Location, Practitioner, PractitionerRole and Schedule is kept."""
        staff = self.staff
        return self.locations is not None and staff is not None and staff.schedules is not None

    def seed(self, found: Found, slots: list[dict[str, Any]]) -> None:
        """Index in ``found`` the kept Schedules of these Slots, with their actors and
        the practitioners of their roles (and all those practitioners' roles): what a
        Slot search's ``_include`` would bring, and a physician's every clinic.
        What is not kept (made since the directory was read) is left for ``fetch_missing``
        to read by ``_id``."""
        known = found.resources
        entries: list[dict[str, Any]] = []
        done: set[str | None] = set()
        for slot in slots:
            schedule = slot.get("schedule")
            reference = schedule.get("reference") if isinstance(schedule, dict) else None
            if not isinstance(reference, str):
                reference = None  # any JSON value: ``ref_id`` reads it, or not
            if reference is not None and reference in done:
                continue
            done.add(reference)
            seeds = self._seeds.get(reference) if reference is not None else None
            if seeds is None:
                sid = ref_id(schedule, "Schedule")
                if sid is None or sid in known["Schedule"]:
                    continue
                seeds = self._seeds_of(sid)
                if reference is not None:
                    self._seeds[reference] = seeds
            for kind, rid, entry in seeds:
                if rid not in known[kind]:
                    entries.append(entry)
        if entries:
            found.add({"entry": entries}, "")

    def _seeds_of(self, sid: str) -> tuple[tuple[str, str, dict[str, Any]], ...]:
        """What ``seed`` brings for one Schedule, as ``(type, id, include entry)``; the
        same entry twice is indexed once."""
        staff = self.staff
        if self.locations is None or staff is None or staff.schedules is None:
            return ()
        schedule = staff.schedules.get(sid)
        if schedule is None:
            return ()
        out: dict[tuple[str, str], dict[str, Any]] = {}

        def take(kind: str, rid: str | None, pool: dict[str, dict[str, Any]]) -> None:
            if rid and (kind, rid) not in out and (resource := pool.get(rid)) is not None:
                out[kind, rid] = {"resource": resource, "search": {"mode": "include"}}

        take("Schedule", sid, staff.schedules)
        actors = schedule.get("actor")
        for lid in refs(actors, "Location"):
            take("Location", lid, self.locations)
        people = list(refs(actors, "Practitioner"))
        for rid in refs(actors, "PractitionerRole"):
            take("PractitionerRole", rid, staff.roles)
            role = staff.roles.get(rid) or {}
            if who := ref_id(role.get("practitioner"), "Practitioner"):
                people.append(who)
        for pid in people:
            take("Practitioner", pid, staff.practitioners)
            # Every role of theirs: a physician's clinics are all of them, whatever else
            # the page holds.
            for rid, _ in staff.roles_of.get(pid, ()):
                take("PractitionerRole", rid, staff.roles)
        return tuple((kind, rid, entry) for (kind, rid), entry in out.items())

    def matching(self, query: ClinicQuery) -> list[dict[str, Any]] | None:
        """The Locations that may match ``query`` (id, place, region), or None when not loaded."""
        if self.locations is None:
            return None
        if query.local_ids is not None:
            candidates = [self.locations[i] for i in query.local_ids if i in self.locations]
        else:
            candidates = list(self.locations.values())
        return [r for r in candidates if place_matches(r, query, self.places.get(r["id"]))]

    def actors_speaking(self, wanted: frozenset[str], scope: set[str] | None) -> list[str] | None:
        """The Schedule actors (``Location/…``, ``PractitionerRole/…``, ``Practitioner/…``)
        whose slots may speak one of ``wanted`` (``found._speaks``), within the clinics of
        ``scope`` when given; None when not known (no directory, no staff), too many to
        send (``MAX_LANGUAGE_ACTORS``), or, without a scope, held by most Schedules
        (``MOST_SCHEDULES``): the slots are then filtered here.

        A superset: every slot that matches has one of these actors, and what comes back
        is checked again (a clinic with no languages known is listed whatever its
        physicians speak)."""
        staff = self.staff
        if self.locations is None or staff is None:
            return None
        asked = {primary_language(w) for w in wanted}
        key = (frozenset(asked), None if scope is None else frozenset(scope))
        if key in self._decided:
            return self._decided[key]
        clinics = set(self._mute).union(*(self._speaking.get(a, ()) for a in asked))
        speakers = set().union(*(staff.speakers.get(a, ()) for a in asked))
        if scope is not None:
            clinics &= scope
        elif len(clinics) + len(speakers) > MAX_LANGUAGE_ACTORS:
            return None
        if len(clinics) > MAX_LANGUAGE_ACTORS:
            return None
        actors = self._actors(staff, clinics, speakers, scope)
        if actors is not None and len(actors) > CHEAP_ACTORS:
            share = self._share(actors, scope)
            if share is None or share > NARROW_ENOUGH:
                actors = None  # most slots pass: a list this long costs more than it spares
        if len(self._decided) >= DECIDED_KEPT:
            self._decided.clear()
        self._decided[key] = actors
        return actors

    def _share(self, actors: list[str], scope: set[str] | None) -> float | None:
        """The share of the Schedules of the ``scope``'s clinics (or all) that have one of
        ``actors``; None when the Schedules are not kept."""
        staff = self.staff
        if staff is None or not staff.schedules:
            return None
        if self._by_actor is None:
            self._by_actor = {}
            for sid, schedule in staff.schedules.items():
                for actor in schedule.get("actor") or ():
                    ref = actor.get("reference") if isinstance(actor, dict) else None
                    if isinstance(ref, str):
                        self._by_actor.setdefault(ref, set()).add(sid)
        by_actor = self._by_actor
        hit = set().union(*(by_actor.get(a, ()) for a in actors))
        if scope is None:
            return len(hit) / len(staff.schedules)
        held = set().union(*(by_actor.get(f"Location/{lid}", ()) for lid in scope))
        return len(hit & held) / len(held) if held else None

    @staticmethod
    def _actors(
        staff: Staff, clinics: set[str], speakers: set[str], scope: set[str] | None
    ) -> list[str] | None:
        actors = [f"Location/{lid}" for lid in sorted(clinics)]
        for pid in sorted(speakers):
            roles = staff.roles_of.get(pid, [])
            mine = [r for r, at in roles if scope is None or not at or scope.intersection(at)]
            actors += [f"PractitionerRole/{rid}" for rid in mine]
            # A speaker whose every role is at a clinic outside the scope has no slot in it.
            if mine or not roles:
                actors.append(f"Practitioner/{pid}")
            if len(actors) > MAX_LANGUAGE_ACTORS:
                return None
        return actors
