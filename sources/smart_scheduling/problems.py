"""What an operator should fix about a bulk feed, from its last loads (``Source.problems``).

FEED_NOT_LOADED     LOSS      the first load has not completed: nothing is served
REFRESH_FAILED      LOSS      the last refreshes failed: an older copy is served
FILE_FAILED         LOSS      files of the feed could not be read (an HTTP error,
                              too large...): their slots are missing (samples:
                              their URLs without the query, which may hold a
                              signature, nor a user and password, and why)
FEED_DEVIATIONS     WARNING   the feed deviates from the specification in ways
                              read all the same (numbers written as strings, a
                              byte-order mark, gzip without Content-Encoding...):
                              nothing is lost (samples: the files and deviations)
MALFORMED_RECORDS   WARNING   lines malformed per the specification, or referring
                              to unknown or skipped records, were skipped
                              (samples: the files and their counts)
SAME_TIME_SLOTS     WARNING   free slots with the same place, physician (or none), type,
                              start and end are served as one slot, its seats the sum of
                              theirs, with the first one's booking link and phone; count:
                              the slots served as part of another (samples: the slots)
OUTSIDE_QUEBEC, NO_POSITION, APPROXIMATE_POSITION: the places of its Locations, as
every adapter reports them (``sources.places.tally``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from yarl import URL

from sources.places import Places, place_problems
from sources.problems import MAX_SAMPLES, ProblemCode, problem

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from sources.records import SlotRecord, SourceProblem
    from sources.smart_scheduling.adapter import LoadReport

__all__ = ["feed_problems", "public_url"]


def public_url(url: str) -> str:
    """A file's URL as an operator may see it: without a user and password, its
    query (which may hold a signature) and its fragment."""
    try:
        return str(URL(url).with_user(None).with_query(None).with_fragment(None))
    except ValueError:
        return "?"


def feed_problems(
    loaded: bool,
    failures: int,
    as_of: datetime | None,
    failed: tuple[tuple[str, str], ...],
    report: LoadReport | None,
    folds: Sequence[tuple[SlotRecord, int]] = (),
) -> tuple[SourceProblem, ...]:
    """The feed's problems: see the module docstring. ``folds``: samples of the slots
    served for several (``SlotIndex.folds``)."""
    found = []
    if not loaded:
        found.append(
            problem(
                ProblemCode.FEED_NOT_LOADED,
                "the feed's first load has not completed; check the manifest URL and the log",
            )
        )
    elif failures:
        when = as_of.isoformat() if as_of is not None else "an earlier load"
        found.append(
            problem(
                ProblemCode.REFRESH_FAILED,
                f"the last refreshes of the feed failed; the copy of {when} is served "
                "(see the log for why)",
                failures,
            )
        )
    if failed:
        found.append(
            problem(
                ProblemCode.FILE_FAILED,
                "files of the feed could not be read; their slots are missing: ask the "
                "publisher to fix them (or, for files too large, raise max_file_bytes)",
                len(failed),
                tuple(f"{public_url(url)}: {why}" for url, why in failed),
            )
        )
    if report is not None and report.skipped:
        files = sorted((f for f in report.files if f.skipped), key=lambda f: -f.skipped)
        found.append(
            problem(
                ProblemCode.MALFORMED_RECORDS,
                "records malformed per the SMART Scheduling Links specification, or referring "
                "to unknown or skipped records, were skipped; ask the publisher to fix them",
                report.skipped,
                tuple(
                    f"{f.name}: {f.malformed} malformed, {f.unresolved} unresolved"
                    for f in files[:MAX_SAMPLES]
                ),
            )
        )
    if report is not None and (deviations := _deviations(report)):
        found.append(
            problem(
                ProblemCode.FEED_DEVIATIONS,
                "the feed deviates from the SMART Scheduling Links specification in ways the "
                "gateway reads all the same; nothing is lost, but other readers may fail",
                sum(count for _, count in deviations),
                tuple(sample for sample, _ in deviations),
            )
        )
    if report is not None:
        found.extend(_place_problems(report))
    if report is not None and report.folded:
        found.append(
            problem(
                ProblemCode.SAME_TIME_SLOTS,
                f"{report.folded} free slots had the same place, physician (or none), type, "
                "start and end as another slot of the feed: each such group is served as one "
                "slot, its seats the sum of theirs, with the first one's booking link and phone",
                report.folded,
                tuple(_fold_sample(slot, count) for slot, count in folds),
            )
        )
    return tuple(found)


def _fold_sample(slot: SlotRecord, count: int) -> str:
    physician = f"Practitioner/{slot.physician_local_id}" if slot.physician_local_id else "none"
    return (
        f"Location/{slot.clinic_local_id} at {slot.start.isoformat()}, "
        f"{slot.appointment_type.value}, physician {physician}: "
        f"{count} slots served as one, {slot.capacity or 1} seats"
    )


def _deviations(report: LoadReport) -> list[tuple[str, int]]:
    found = [(f"manifest: {deviation}", 1) for deviation in report.tolerated]
    for file in report.files:
        found += [(f"{file.name}: {what} ({n})", n) for what, n in file.tolerated]
    return found


def _place_problems(report: LoadReport) -> list[SourceProblem]:
    places = Places(*map(sum, zip(*(f.places for f in report.files), strict=True)))
    samples = tuple(f"{f.name}: {f.places.outside}" for f in report.files if f.places.outside)
    return place_problems(places, ask="Location.position", outside_samples=samples)
