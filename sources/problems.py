"""Source problems: the stable codes, and a book adapters and the pool note them in.

A problem (``sources.records.SourceProblem``) is what an operator should fix about
a source. Its code is one of ``ProblemCode``, declared here once with its
severity; ``LOSS`` problems make a source ``DEGRADED`` (``sources.pool.health``),
``WARNING``s leave its status alone.

    book = ProblemBook()
    book.note(ProblemCode.REQUEST_REFUSED, "the server refused `near`", diagnostics="...")
    book.current()  # (SourceProblem(code="REQUEST_REFUSED", ...),)

A noted problem is forgotten ``ttl_s`` after it was last seen: a problem of the
calls (a refusal) says what happened lately, not forever. ``note`` says when a code
is news, at most once per ``ttl_s``: what to log, rather than every occurrence.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum

from sources.records import ProblemSeverity, SourceProblem

__all__ = ["MAX_SAMPLES", "ProblemBook", "ProblemCode", "problem", "problem_changes"]

# Samples kept per problem: enough to find the records, never the whole list.
MAX_SAMPLES = 5


class ProblemCode(StrEnum):
    """A problem's stable code, with its ``severity``."""

    severity: ProblemSeverity

    def __new__(cls, code: str, severity: ProblemSeverity) -> ProblemCode:
        member = str.__new__(cls, code)
        member._value_ = code
        member.severity = severity
        return member

    # The pool's own view of the calls.
    BREAKER_OPEN = "BREAKER_OPEN", ProblemSeverity.LOSS
    BREAKER_HALF_OPEN = "BREAKER_HALF_OPEN", ProblemSeverity.LOSS
    REQUEST_REFUSED = "REQUEST_REFUSED", ProblemSeverity.WARNING
    # What an adapter saw of its upstream's data.
    INCOMPLETE_SEARCH = "INCOMPLETE_SEARCH", ProblemSeverity.LOSS
    FHIR_NO_NEXT_LINK = "FHIR_NO_NEXT_LINK", ProblemSeverity.LOSS
    FHIR_UNSORTED = "FHIR_UNSORTED", ProblemSeverity.WARNING
    FHIR_WORKAROUNDS = "FHIR_WORKAROUNDS", ProblemSeverity.WARNING
    FHIR_STATEMENT_WRONG = "FHIR_STATEMENT_WRONG", ProblemSeverity.WARNING
    FEED_NOT_LOADED = "FEED_NOT_LOADED", ProblemSeverity.LOSS
    REFRESH_FAILED = "REFRESH_FAILED", ProblemSeverity.LOSS
    FILE_FAILED = "FILE_FAILED", ProblemSeverity.LOSS
    MALFORMED_RECORDS = "MALFORMED_RECORDS", ProblemSeverity.WARNING
    FEED_DEVIATIONS = "FEED_DEVIATIONS", ProblemSeverity.WARNING
    OUTSIDE_QUEBEC = "OUTSIDE_QUEBEC", ProblemSeverity.WARNING
    NO_POSITION = "NO_POSITION", ProblemSeverity.WARNING
    APPROXIMATE_POSITION = "APPROXIMATE_POSITION", ProblemSeverity.WARNING
    UNKNOWN_TIME_ZONE = "UNKNOWN_TIME_ZONE", ProblemSeverity.WARNING
    SAME_TIME_SLOTS = "SAME_TIME_SLOTS", ProblemSeverity.WARNING


def problem(
    code: ProblemCode,
    message: str,
    count: int = 1,
    samples: tuple[str, ...] = (),
    diagnostics: str | None = None,
) -> SourceProblem:
    """A ``SourceProblem`` with its code's severity."""
    return SourceProblem(
        code.value, code.severity, message, count, samples[:MAX_SAMPLES], diagnostics
    )


# Bumped each time any book changes what ``current`` shows (a new problem, another
# message, count, sample or diagnostics, one cleared): the pool keeps the sources'
# views until it moves (``sources.pool.views``).
_changes = 0


def problem_changes() -> int:
    """How many visible changes every ``ProblemBook`` has had, in all."""
    return _changes


def _changed() -> None:
    global _changes
    _changes += 1


@dataclass(slots=True)
class _Entry:
    message: str
    count: int
    seen_at: float
    samples: list[str] = field(default_factory=list)
    diagnostics: str | None = None


class ProblemBook:
    """Problems noted as they happen, by code, counted, each forgotten ``ttl_s`` after
    it was last noted."""

    def __init__(self, ttl_s: float = 600.0) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[ProblemCode, _Entry] = {}
        self._announced: dict[ProblemCode, float] = {}

    def note(
        self,
        code: ProblemCode,
        message: str,
        *,
        sample: str | None = None,
        diagnostics: str | None = None,
        count: int = 1,
        largest: bool = False,
    ) -> bool:
        """Count one more occurrence (``count``); the latest message and diagnostics win.
        ``largest``: ``count`` is what one occurrence saw (records), and the problem's
        count the largest of them, not their sum. True when the code is news: not
        announced in the last ``ttl_s`` (log it then)."""
        now = time.monotonic()
        announced = self._announced.get(code)
        news = announced is None or now - announced > self.ttl_s
        if news:
            self._announced[code] = now
        entry = self._entries.get(code)
        shown = None if entry is None else (entry.message, entry.count, entry.diagnostics)
        if entry is None or now - entry.seen_at > self.ttl_s:
            entry = self._entries[code] = _Entry(message, 0, now)
            shown = None
        entry.message, entry.seen_at = message, now
        entry.count = max(entry.count, count) if largest else entry.count + count
        if diagnostics:
            entry.diagnostics = diagnostics
        if sample and sample not in entry.samples:
            entry.samples = [sample, *entry.samples][:MAX_SAMPLES]
            shown = None
        if shown != (entry.message, entry.count, entry.diagnostics):
            _changed()
        return news

    def clear(self, code: ProblemCode) -> None:
        if self._entries.pop(code, None) is not None:
            _changed()

    def current(self) -> tuple[SourceProblem, ...]:
        now = time.monotonic()
        return tuple(
            problem(code, e.message, e.count, tuple(e.samples), e.diagnostics)
            for code, e in self._entries.items()
            if now - e.seen_at <= self.ttl_s
        )
