"""What a load of a bulk feed read, file by file: counts only, never what the lines held."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sources.errors import SourceTimeout, SourceUnavailable
from sources.places import NO_PLACES, Places

if TYPE_CHECKING:
    import logging

    from sources.errors import SourceError
    from sources.smart_scheduling.feed import FeedFile
    from sources.smart_scheduling.files import How


@dataclass(frozen=True, slots=True)
class FileReport:
    """One file of a load: how it was obtained and what its lines gave."""

    name: str
    how: How
    lines: int = 0
    kept: int = 0
    busy: int = 0
    malformed: int = 0
    unresolved: int = 0
    tolerated: tuple[tuple[str, int], ...] = ()  # deviations read all the same, counted
    failure: str | None = None  # why a "failed" file could not be read
    places: Places = NO_PLACES  # locations outside Quebec, or without their own position
    unresolved_slots: int = 0  # of ``unresolved``, the free slots

    @property
    def skipped(self) -> int:
        return self.malformed + self.unresolved


@dataclass(frozen=True, slots=True)
class LoadReport:
    """The last completed load (full or delta) and the copy it left being served.
    ``tolerated``: the manifest's own deviations; ``folded``: free slots served as part
    of another with the same place, physician, type, start and end (seats added)."""

    delta: bool
    files: tuple[FileReport, ...]
    skipped: int
    slots: int
    tolerated: tuple[str, ...] = ()
    folded: int = 0


def file_report(file: FeedFile, how: How) -> FileReport:
    return FileReport(
        file.name,
        how,
        file.lines,
        file.kept,
        file.busy,
        file.malformed,
        file.unresolved,
        tuple(file.tolerated.items()),
        places=file.places,
        unresolved_slots=file.unresolved_slots,
    )


def log_file(logger: logging.Logger, report: FileReport) -> None:
    """One line per file and load: counts only, never what the lines held."""
    if report.how == "failed":
        return  # said when it failed
    if report.how != "fetched":
        logger.debug("%s: %s, %d records reused", report.name, report.how, report.kept)
        return
    # A file read whole says so only when debugging; one that lost records, always.
    log = logger.warning if report.skipped else logger.debug
    log(
        "%s: %d lines, %d records kept, %d busy slots dropped, %d skipped "
        "(%d malformed, %d referring to unknown or skipped records)",
        report.name,
        report.lines,
        report.kept,
        report.busy,
        report.skipped,
        report.malformed,
        report.unresolved,
    )


def may_pass(error: SourceError) -> bool:
    """A timeout, or an answer saying to come back (5xx, 429, no connection)."""
    return isinstance(error, SourceTimeout) or (
        isinstance(error, SourceUnavailable) and error.retryable
    )


__all__ = [
    "NO_PLACES",
    "FileReport",
    "LoadReport",
    "Places",
    "file_report",
    "log_file",
    "may_pass",
]
