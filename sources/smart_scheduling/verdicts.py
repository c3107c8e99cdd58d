"""The checks of ``sources check`` on a loaded feed, and the free slots served or not.

Each check reads what the adapter's load left (its ``LoadReport``, file by file), what the
survey counted while the files were read (``sources.smart_scheduling.survey``) and what
the index holds from now on, and writes one verdict into the report: it fails when what
it found loses free slots, and warns otherwise. The free slots the gateway would serve
are those of the index from now on; those it would not, by reason:

MALFORMED       lost      Slot lines skipped (fields at fault), and unreadable lines of
                          the files listed as Slot files
UNRESOLVED      lost      free slots whose Schedule, Location or physician is missing
FILE_FAILED     lost      free slots read before their file failed (at least; a file
                          that could not be read at all is a failed check)
OUTSIDE_QUEBEC  not lost  free slots of Locations outside Quebec
PAST            not lost  free slots already begun: searches start now
UNACCOUNTED     lost      free slots read and kept that the index neither holds nor folded
                          into another: none, unless the adapter loses slots

Free slots sharing place, physician (or none), type, start and end with another are
served as one slot with their seats added (``SAME_TIME_SLOTS``): counted as served,
and told by a warning.

It stays one module past 400 lines because it is one verdict per check, in the order the
report gives them, over the one ``LoadedFeed``: split, a vendor's question ("why did this
fail?") would be answered in two places.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sources.smart_scheduling.feed import STRING_NUMBERS
from sources.smart_scheduling.http import BOM, GZIP_UNLABELLED, NO_FINAL_NEWLINE

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sources.check import CheckReport
    from sources.smart_scheduling.reports import FileReport, LoadReport
    from sources.smart_scheduling.survey import FeedSurvey, FileTally

__all__ = ["FileSeen", "LoadedFeed", "Verdict", "kinds", "write_verdicts"]


@dataclass(slots=True)
class Verdict:
    """One check being written: the facts found, then what failed or warned with its
    fix, or, when nothing did, ``good``.

        verdict = Verdict("lines", "1,200 lines", good="each one JSON resource")
        verdict.warn("a byte-order mark", "write files without one")
        verdict.into(report)  # warn  lines  1,200 lines; a byte-order mark
    """

    name: str
    facts: str = ""
    good: str = ""
    fails: list[tuple[str, str]] = field(default_factory=list)
    warns: list[tuple[str, str]] = field(default_factory=list)

    def fail(self, what: str, fix: str) -> None:
        self.fails.append((what, fix))

    def warn(self, what: str, fix: str) -> None:
        self.warns.append((what, fix))

    def into(self, report: CheckReport) -> None:
        found = [*self.fails, *self.warns]
        said = [self.facts] if self.facts else []
        if not found:
            report.passed(self.name, "; ".join([*said, self.good] if self.good else said))
            return
        what = "; ".join([*said, *(w for w, _ in found)])
        fix = "; ".join(dict.fromkeys(f for _, f in found))
        (report.failed if self.fails else report.warned)(self.name, what, fix)


@dataclass(frozen=True, slots=True)
class FileSeen:
    """One file of the load: the adapter's report of it, its URL, what the survey counted
    in it, and the ``type`` the manifest gave it."""

    report: FileReport
    url: str
    tally: FileTally
    declared: str

    @property
    def unreadable(self) -> int:
        """Lines that were not JSON objects, or over the line cap."""
        return self.report.malformed - self.tally.skipped


@dataclass(frozen=True, slots=True)
class LoadedFeed:
    """What the checks after the load read. ``future``: the free slots the index holds
    from now on; ``beyond``: of those, the ones beginning more than a year ahead."""

    load: LoadReport
    files: tuple[FileSeen, ...]
    survey: FeedSurvey
    future: int
    beyond: int

    @property
    def read(self) -> list[FileSeen]:
        return [f for f in self.files if f.report.how != "failed"]

    @property
    def failed(self) -> list[FileSeen]:
        return [f for f in self.files if f.report.how == "failed"]

    @property
    def unresolved(self) -> int:
        return sum(f.report.unresolved_slots for f in self.read)

    @property
    def skipped_slots(self) -> int:
        return sum(f.tally.skipped_slots for f in self.read)


def write_verdicts(feed: LoadedFeed, report: CheckReport) -> None:
    """Every check of the loaded feed, then the free slots served and not served."""
    for write in (
        _files,
        _file_types,
        _compression,
        _lines,
        _fields,
        _references,
        _duplicates,
        _times,
        _slots,
        _links,
        _phones,
        _places,
    ):
        write(feed, report)
    _served(feed, report)


def _files(feed: LoadedFeed, report: CheckReport) -> None:
    lines = sum(f.report.lines for f in feed.files)
    verdict = Verdict("files", f"{len(feed.read)} of {len(feed.files)} read, {lines:,} lines")
    failures: dict[str, list[str]] = {}
    for f in feed.failed:
        failures.setdefault(f.report.failure or "not read", []).append(f.report.name)
    fix = "make every file the manifest lists answer 200 to a GET"
    if any("too large" in why for why in failures):
        fix += ", each under the source's max_file_bytes (2 GiB unless set)"
    for why, names in failures.items():
        verdict.fail(f"{_names(names)}: {why}", fix)
    if failures:
        verdict.fail("their free slots are not served (how many is not known)", fix)
    verdict.into(report)


def _file_types(feed: LoadedFeed, report: CheckReport) -> None:
    verdict = Verdict("file types", good="every file holds the resources its `type` says")
    for f in feed.read:
        others = Counter({k: n for k, n in f.tally.types.items() if k != f.declared})
        if others:
            verdict.warn(
                f"{f.report.name} is listed as {f.declared} and holds {kinds(others, 'line')}",
                "give each output the `type` of the resources its file holds (the gateway "
                "reads each line by its own resourceType, other readers may not)",
            )
    verdict.into(report)


def _compression(feed: LoadedFeed, report: CheckReport) -> None:
    encoded = sum(1 for f in feed.read if f.tally.fetched and f.tally.fetched.encoding)
    verdict = Verdict("compression", f"{encoded} of {len(feed.read)} files with a Content-Encoding")
    unlabelled = [f.report.name for f in feed.read if GZIP_UNLABELLED in dict(f.report.tolerated)]
    if unlabelled:
        verdict.warn(
            f"{_names(unlabelled)} gzip'd without Content-Encoding (read all the same)",
            "send Content-Encoding: gzip with gzip'd files, or serve them uncompressed",
        )
    verdict.into(report)


def _lines(feed: LoadedFeed, report: CheckReport) -> None:
    lines = sum(f.report.lines for f in feed.read)
    verdict = Verdict("lines", _n(lines, "line"), "each one JSON resource")
    bad = {f.report.name: f.unreadable for f in feed.read if f.unreadable}
    if bad:
        verdict.fail(
            f"{_n(sum(bad.values()), 'line')} not JSON objects or over 1 MiB "
            f"({', '.join(f'{name}: {n:,}' for name, n in bad.items())})",
            "write one JSON resource a line, each under 1 MiB",
        )
    for deviation, fix in (
        (BOM, "write files without a byte-order mark"),
        (NO_FINAL_NEWLINE, "end every line, the last too, with a newline"),
    ):
        names = [f.report.name for f in feed.read if deviation in dict(f.report.tolerated)]
        if names:
            verdict.warn(f"{_names(names)}: {deviation} (read all the same)", fix)
    verdict.into(report)


def _fields(feed: LoadedFeed, report: CheckReport) -> None:
    survey = feed.survey
    held: Counter[str] = Counter()
    for f in feed.read:
        held.update(f.tally.types)
    verdict = Verdict(
        "fields", kinds(held, "resource"), "each with the fields the gateway and the spec need"
    )
    if survey.skipped:
        faults = survey.skipped_fields.items()
        by_kind = "; ".join(
            f"{kind} {n:,} ({', '.join(f'{name} {m:,}' for (k, name), m in faults if k == kind)})"
            for kind, n in sorted(survey.skipped.items())
        )
        what = f"skipped, by the fields at fault: {by_kind}"
        fix = "give every resource the fields the specification requires"
        lost = feed.skipped_slots or feed.unresolved
        (verdict.fail if lost else verdict.warn)(what, fix)
    if survey.spec_missing:
        verdict.warn(
            "fields the specification asks for are missing: "
            + ", ".join(
                f"{kind}.{name} on {n:,}" for (kind, name), n in survey.spec_missing.items()
            ),
            "add them: other readers of the feed need them",
        )
    strings = sum(dict(f.report.tolerated).get(STRING_NUMBERS, 0) for f in feed.read)
    if strings:
        verdict.warn(
            f"{_n(strings, 'slot-capacity count')} written as strings (read all the same)",
            'write valueInteger as a JSON number (1, not "1")',
        )
    verdict.into(report)


def _references(feed: LoadedFeed, report: CheckReport) -> None:
    verdict = Verdict(
        "references",
        good="every Slot names a Schedule of the feed, every Schedule its Location and physician",
    )
    unresolved = feed.unresolved
    for refs in feed.survey.dangling():
        concerns = [_n(refs.slots, "free slot")] if refs.slots else []
        concerns += ["e.g. " + ", ".join(refs.samples)] if refs.samples else []
        said = f" ({'; '.join(concerns)})" if concerns else ""
        (verdict.fail if unresolved else verdict.warn)(
            f"{refs.what}: {_n(refs.count, 'reference')} to ids not in the feed{said}",
            "publish every resource a reference names, in a file the manifest lists",
        )
    if unresolved:
        verdict.fail(
            f"{_n(unresolved, 'free slot')} cannot be placed: their Schedule, its Location or "
            "its physician is missing or was skipped",
            "publish every Schedule, Location, PractitionerRole and Practitioner the slots need",
        )
    verdict.into(report)


def _duplicates(feed: LoadedFeed, report: CheckReport) -> None:
    survey = feed.survey
    verdict = Verdict("duplicate ids", good="every id is unique within its resource type")
    counts = Counter(survey.duplicates)
    counts["Slot"] += survey.slot_duplicates()
    for kind, n in sorted(counts.items()):
        if n:
            samples = survey.duplicate_samples.get(kind)
            e_g = f" (e.g. {', '.join(samples)})" if samples else ""
            verdict.warn(
                f"{kind}: {_n(n, 'line')} with an id already read{e_g}",
                "give each resource one line and an id unique within its type (of a repeated "
                "Location or Schedule, the last read wins; repeated slot ids confuse deltas)",
            )
    verdict.into(report)


def _times(feed: LoadedFeed, report: CheckReport) -> None:
    survey = feed.survey
    past = feed.load.slots - feed.future
    verdict = Verdict(
        "times", good="every free slot time has an offset, none has begun, none is a year ahead"
    )
    if survey.no_offset:
        verdict.warn(
            f"{_n(survey.no_offset, 'free slot time')} without an offset (read as Montreal time)",
            "write every instant with its offset (2026-11-16T08:00:00-05:00)",
        )
    if past:
        verdict.warn(
            f"{_n(past, 'free slot')} already begun (not served)", "publish only slots to come"
        )
    if feed.beyond:
        verdict.warn(
            f"{_n(feed.beyond, 'free slot')} more than a year ahead (served, but implausible)",
            "check the year and the offset of these slots",
        )
    verdict.into(report)


def _slots(feed: LoadedFeed, report: CheckReport) -> None:
    statuses = feed.survey.statuses
    busy = sum(n for s, n in statuses.items() if s not in ("free", "(other)"))
    verdict = Verdict("slots", f"{statuses['free']:,} free, {busy:,} busy or otherwise taken")
    if statuses["(other)"]:
        verdict.warn(
            f"{_n(statuses['(other)'], 'slot')} with a status outside the FHIR codes, read as busy",
            "use Slot.status free, busy, busy-unavailable, busy-tentative or entered-in-error",
        )
    if not statuses["free"]:
        verdict.warn("no free slot: nothing to serve", "publish the free slots")
    verdict.into(report)


def _links(feed: LoadedFeed, report: CheckReport) -> None:
    survey = feed.survey
    verdict = Verdict("booking links", _n(survey.links, "booking-deep-link"), "all http(s)")
    if survey.bad_links:
        verdict.warn(
            f"{_n(survey.bad_links, 'link')} not http(s): dropped, their slots served without",
            "give each booking-deep-link as an absolute http(s) URL",
        )
    verdict.into(report)


def _phones(feed: LoadedFeed, report: CheckReport) -> None:
    survey = feed.survey
    verdict = Verdict(
        "phones", f"{_n(survey.phones, 'phone')} (booking-phone, Location.telecom)", "well formed"
    )
    if survey.dropped_phones:
        verdict.warn(
            f"{_n(survey.dropped_phones, 'phone')} not a phone number: dropped",
            "write phones as digits with spaces, dashes, dots, parentheses or a leading +",
        )
    if survey.foreign_phones:
        verdict.warn(
            f"{_n(survey.foreign_phones, 'phone')} not a 10-digit North American number",
            "write the full number with its area code (+1-514-555-0100)",
        )
    verdict.into(report)


def _places(feed: LoadedFeed, report: CheckReport) -> None:
    places = [f.report.places for f in feed.read]
    outside = sum(p.outside for p in places)
    no_position = sum(p.no_position for p in places)
    approximate = sum(p.approximate for p in places)
    verdict = Verdict("places", good="every Location is in Quebec and has a position")
    if outside:
        slots = sum(p.outside_slots for p in places)
        verdict.warn(
            f"{_n(outside, 'Location')} outside Quebec: not served, nor their "
            f"{_n(slots, 'free slot')} (the gateway serves Quebec)",
            "publish only Quebec locations to this gateway, or accept they are not served",
        )
    if approximate or no_position:
        verdict.warn(
            f"{_n(approximate + no_position, 'Quebec Location')} without a position: "
            f"{approximate:,} placed at their municipality's centre (approximate), "
            f"{no_position:,} served except by `near`",
            "give Location.position (latitude, longitude)",
        )
    verdict.into(report)


def _served(feed: LoadedFeed, report: CheckReport) -> None:
    kept = sum(f.tally.free for f in feed.read)
    outside = sum(f.report.places.outside_slots for f in feed.read)
    # FeedReader refuses what the index would (no duration, no seat): every kept free
    # slot is held by the index, folded into a same-time one, or a loss to report.
    folded = feed.load.folded
    unaccounted = max(0, kept - feed.unresolved - outside - feed.load.slots - folded)
    skipped = feed.skipped_slots
    unreadable = sum(f.unreadable for f in feed.read if f.declared == "Slot")
    partial = sum(f.tally.free for f in feed.failed)
    failed = _names(f.report.name for f in feed.failed)
    report.served = feed.future
    why = [f"{skipped:,} with fields at fault"] if skipped else []
    why += [f"{unreadable:,} unreadable lines of Slot files"] if unreadable else []
    report.not_served_for("MALFORMED", skipped + unreadable, loss=True, detail=", ".join(why))
    report.not_served_for(
        "UNRESOLVED", feed.unresolved, loss=True, detail="no Schedule, Location or physician"
    )
    report.not_served_for(
        "FILE_FAILED", partial, loss=True, detail=f"at least, read before {failed} failed"
    )
    report.not_served_for("OUTSIDE_QUEBEC", outside, loss=False, detail="Locations outside Quebec")
    report.not_served_for("PAST", feed.load.slots - feed.future, loss=False, detail="already begun")
    report.not_served_for(
        "UNACCOUNTED",
        unaccounted,
        loss=True,
        detail="read and kept, yet not in the index: an adapter fault, please report it",
    )
    if folded:
        report.warned(
            "same-time slots",
            f"{_n(folded, 'free slot')} shared place, physician (or none), type, start and "
            "end with another: served as one slot with their seats added (SAME_TIME_SLOTS)",
            "give each Slot its own time, or one Slot with slot-capacity for its seats",
        )


def kinds(counts: Counter[str], unit: str = "file") -> str:
    """``"8 files (Location 1, Slot 7)"``."""
    parts = ", ".join(f"{kind} {n:,}" for kind, n in sorted(counts.items()))
    return f"{_n(counts.total(), unit)} ({parts})" if parts else _n(0, unit)


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def _names(names: Iterable[str]) -> str:
    listed = list(names)
    shown = ", ".join(listed[:3])
    return shown + (f" and {len(listed) - 3} more" if len(listed) > 3 else "")
