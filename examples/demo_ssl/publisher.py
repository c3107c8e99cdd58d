"""A SMART Scheduling Links publisher whose feed changes between polls.

``Publisher`` writes the full feed once, then each :meth:`Publisher.book` (free slots
become busy) or :meth:`Publisher.add` (new free slots) rewrites the region files it
touched, writes a delta file of the changed ``Slot`` resources, rewrites the manifest and
moves ``transactionTime`` forward (strictly, by at least a millisecond)::

    publisher = Publisher(World(0.02), tmp_path)
    booked = publisher.book(3)
    publisher.manifest("http://127.0.0.1:8103", since=first_time)  # lists the delta only

A manifest asked ``_since`` a time at or after the first publication lists only the delta
files published after it (none if nothing changed); before it, or without ``_since``,
the full current files.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from examples.demo_ssl.feed import (
    Changes,
    Feed,
    FeedWriter,
    delta_file_name,
    write_manifest,
)
from examples.world import DAYS, WorldSlot
from sources.records import AppointmentType
from sources.timeutil import MONTREAL, zone_info

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from examples.demo_ssl.feed import FeedFile
    from examples.world import World, WorldClinic
    from sources.records import Region

_MAX_ADDED_PER_MORNING = 48  # added slots go back from 07:50 in ten-minute steps


@dataclass(frozen=True, slots=True)
class Publication:
    """One change of the feed: when, and the delta file of the slots it changed."""

    sequence: int
    transaction_time: datetime
    delta: FeedFile


class Publisher:
    """The demo publisher: the feed of ``clinics`` in ``directory``, and its changes."""

    def __init__(
        self,
        world: World,
        directory: Path,
        *,
        clinics: Iterable[WorldClinic] | None = None,
        deviations: bool = False,
        base_url: str = "http://127.0.0.1:8103",
        seed: int = 0,
    ) -> None:
        self.world = world
        self.directory = directory
        self.base_url = base_url
        self.changes = Changes()
        self.writer = FeedWriter(world, clinics, deviations=deviations, changes=self.changes)
        self.clinics_by_id = {c.id: c for c in self.writer.clinics}
        self.publications: list[Publication] = []
        self._rng = random.Random(seed)
        self.first_time = _now()
        self.feed: Feed = self.writer.write(directory, self.first_time)
        write_manifest(self.feed, base_url)

    @property
    def transaction_time(self) -> datetime:
        return self.feed.transaction_time

    def manifest(
        self, base_url: str, *, since: datetime | None = None, request_url: str | None = None
    ) -> dict[str, Any]:
        """The manifest: everything, or with ``since`` only the deltas published after it."""
        if since is None or since < self.first_time:
            return self.feed.manifest(base_url, request_url)
        deltas = [p.delta for p in self.publications if p.transaction_time > since]
        return self.feed.manifest(base_url, request_url, deltas)

    def book(self, n: int, *, now: datetime | None = None) -> list[WorldSlot]:
        """Book ``n`` free future slots (fewer if there are not that many); they turn busy."""
        now = now or datetime.now(MONTREAL)
        booked = self.changes.booked
        chosen: list[WorldSlot] = []
        clinics = list(self.clinics_by_id.values())
        self._rng.shuffle(clinics)
        for clinic in clinics:
            if len(chosen) >= n:
                break
            grouped = self.writer.grouped_ids(clinic.id)
            candidates = [
                s
                for s in self.world.iter_slots(clinic.id)
                if s.free and s.start > now and s.id not in booked and s.id not in grouped
            ]
            chosen += self._rng.sample(candidates, min(n - len(chosen), len(candidates)))
        booked.update(s.id for s in chosen)
        self._publish([replace(s, free=False) for s in chosen])
        return chosen

    def add(self, n: int) -> list[WorldSlot]:
        """Open ``n`` new free slots, early in the morning of days to come."""
        added: list[WorldSlot] = []
        clinics = [c for c in self.clinics_by_id.values() if self.world.physicians_by_clinic[c.id]]
        for _ in range(n if clinics else 0):
            clinic = self._rng.choice(clinics)
            physician = self._rng.choice(self.world.physicians_by_clinic[clinic.id])
            day_index = self._rng.randrange(1, DAYS)
            prefix = f"{clinic.id}-{physician.id}-{day_index:02d}-a"
            taken = sum(s.id.startswith(prefix) for s in self.changes.added[clinic.id])
            if taken >= _MAX_ADDED_PER_MORNING:
                continue
            day = self.world.first_day + timedelta(days=day_index)
            opening = datetime.combine(day, time(8), zone_info(clinic.time_zone))
            start = opening - timedelta(minutes=10 * (taken + 1))
            slot = WorldSlot(
                f"{prefix}{taken}",
                clinic.id,
                physician.id,
                start,
                start + timedelta(minutes=10),
                self._rng.choice(tuple(AppointmentType)),
                True,
            )
            self.changes.added[clinic.id].append(slot)
            added.append(slot)
        self._publish(added)
        return added

    def _publish(self, changed: list[WorldSlot]) -> None:
        transaction_time = _now(self.feed.transaction_time)
        sequence = len(self.publications) + 1
        regions: set[Region] = {self.clinics_by_id[s.clinic_id].region for s in changed}
        rewritten = {
            f.name: f
            for f in (
                self.writer.write_region(self.directory, r, transaction_time) for r in regions
            )
        }
        delta = self.writer.write_slots(
            self.directory,
            delta_file_name(sequence),
            ((self.clinics_by_id[s.clinic_id], s) for s in changed),
            transaction_time,
        )
        files = tuple(rewritten.get(f.name, f) for f in self.feed.files)
        self.feed = replace(self.feed, transaction_time=transaction_time, files=files)
        self.publications.append(Publication(sequence, transaction_time, delta))
        write_manifest(self.feed, self.base_url)


def _now(after: datetime | None = None) -> datetime:
    """Now to the millisecond, as the manifest writes it, and strictly after ``after``."""
    now = datetime.now(UTC)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    return now if after is None else max(now, after + timedelta(milliseconds=1))


__all__ = ["Publication", "Publisher"]
