"""The SMART Scheduling Links adapter: a published bulk feed, loaded into a local index.

    source = SmartSchedulingSource(
        SourceConfig(id="ssl-qc", name="SSL Québec", protocol=SourceProtocol.SMART_SCHEDULING_LINKS,
                     url="https://publisher.example/fhir/$bulk-publish",
                     options=SmartSchedulingOptions(poll_interval_s=120)),
        SourceContext(session, logging.getLogger("passerelle.sources.ssl-qc")),
    )
    await source.start()  # loads the feed, then polls it in the background
    result = await source.search_slots(query)  # answered from the loaded copy
    await source.aclose()

The module is one class and stays whole (past 400 lines): the polling loop, the loads
and the copy they leave share one state (manifest, files, index, overlay, failures).

**Polling.** The manifest is fetched every ``poll_interval_s`` (60 to 300 s, default 60),
never before its ``Cache-Control: max-age`` runs out, and every file no more than once a
``MIN_FILE_INTERVAL_S`` nor before its own max-age runs out; a file within those bounds
is reused as read. Requests carry ``If-None-Match``/``If-Modified-Since``; a 304 reuses
what was read. Files are streamed line by line, at most ``FILE_CONCURRENCY`` at once
(reading: ``sources.smart_scheduling.feed``; resolving: ``sources.smart_scheduling.load``).

**Deltas.** Once a full load is in, the manifest is asked ``?_since=<its transactionTime>``.
The answer is taken as a delta when its ``request`` URL (the spec: "the full URL of the
manifest") echoes a ``_since`` at or before the one sent, and it does not list the very
files of the last full load; anything else is a full data set (the spec lets publishers
ignore ``_since``) and is loaded as such. A delta's slots, free or not, replace their
previous versions (by id, and by place where the feed repeats ids: ``load.slot_changes``)
through ``SlotIndex.with_slot_changes``; a delta that also carries Locations, Schedules
or physicians makes the next poll a full load. A full load is made at least every
``FULL_RELOAD_S`` regardless.

**Serving.** Queries read the current ``SlotIndex``, taken once per call; a load builds a
new one aside and swaps the reference. Until the first load completes, searches raise
``SourceNotReady`` (a ``SOURCE_UNAVAILABLE`` to clients, never counted by the breaker) and
the status is DEGRADED; after a failed refresh the previous
copy is served, DEGRADED, while retries back off up to ``MAX_BACKOFF_S``. A file that
cannot be read does not void the others: the rest is served, DEGRADED, with a
``FILE_FAILED`` problem, unless a previous copy is being served and the failure may pass
(a timeout, a 5xx, a 429): then the refresh fails and that copy stays. Its problems
(``Source.problems``): ``sources.smart_scheduling.problems``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

from sources.base import Source
from sources.errors import SourceBadResponse, SourceError, SourceNotReady
from sources.problems import MAX_SAMPLES
from sources.records import SlotCheck, SlotState, SourceProtocol, SourceStatus
from sources.slot_index.lookup import holds
from sources.smart_scheduling.files import FeedFiles, FetchRules
from sources.smart_scheduling.http import conditional_headers, fetch_manifest
from sources.smart_scheduling.load import apply_delta, give_back_memory, resolve
from sources.smart_scheduling.manifest import covers_since, file_name, read_manifest
from sources.smart_scheduling.options import SmartSchedulingOptions
from sources.smart_scheduling.problems import feed_problems
from sources.smart_scheduling.reports import (
    FileReport,
    LoadReport,
    file_report,
    log_file,
    may_pass,
)

if TYPE_CHECKING:
    from sources.base import SourceConfig, SourceContext
    from sources.records import (
        ClinicQuery,
        ClinicRecord,
        PhysicianQuery,
        PhysicianRecord,
        SlotQuery,
        SlotRecord,
        SlotResult,
        SourceProblem,
    )
    from sources.slot_index.index import SlotIndex
    from sources.smart_scheduling.files import Cached, FeedWatch, How
    from sources.smart_scheduling.load import Held, Target
    from sources.smart_scheduling.manifest import Manifest


class SmartSchedulingSource(Source):
    """Adapter for a SMART Scheduling Links publisher; see the module docstring."""

    protocol: ClassVar[SourceProtocol] = SourceProtocol.SMART_SCHEDULING_LINKS
    # It answers from its own index in about a millisecond: a cache would only cost.
    cache_answers: ClassVar[bool] = False

    DEFAULT_POLL_INTERVAL_S: ClassVar[float] = 60.0
    MIN_POLL_INTERVAL_S: ClassVar[float] = 60.0
    MIN_FILE_INTERVAL_S: ClassVar[float] = 60.0  # the spec: no file more than once a minute
    MAX_CACHE_AGE_S: ClassVar[float] = 3600.0  # a longer max-age is honoured for this long
    MAX_BACKOFF_S: ClassVar[float] = 900.0
    FULL_RELOAD_S: ClassVar[float] = 3600.0
    FILE_DEADLINE_S: ClassVar[float] = 900.0
    FILE_CONCURRENCY: ClassVar[int] = 4
    MAX_LINE_BYTES: ClassVar[int] = 1024 * 1024

    def __init__(self, config: SourceConfig, context: SourceContext) -> None:
        super().__init__(config, context)
        self.options = config.options_as(SmartSchedulingOptions)
        self._poll_s = self.options.poll_interval_s
        self._max_file_bytes = self.options.max_file_bytes
        self._task: asyncio.Task[None] | None = None
        self._first_attempt = asyncio.Event()
        self._index: SlotIndex | None = None
        self._files = FeedFiles(self.session, self.id, self.logger)
        self._targets: dict[str, Target] = {}
        self._overlay: dict[int, tuple[Held, ...]] = {}  # deltas since the last full load
        self._ids_repeat: bool | None = None  # of the last full load, once a delta asks
        self._manifest: Manifest | None = None  # the last manifest loaded
        self._manifest_delta = False
        self._validators: tuple[str | None, str | None] = (None, None)
        self._manifest_at = -math.inf
        self._manifest_fresh_until = -math.inf
        self._full_at = -math.inf
        self._need_full = False
        self._failures = 0
        # The files the last full load could not read: (URL, why).
        self._failed: tuple[tuple[str, str], ...] = ()
        self._manifest_tolerated: tuple[str, ...] = ()
        self._success_at: datetime | None = None
        self._latency_ms: float | None = None
        self._as_of: datetime | None = None
        self._skipped: int | None = None
        self._report: LoadReport | None = None

    # -- the contract -----------------------------------------------------------------

    async def search_slots(self, query: SlotQuery) -> SlotResult:
        return self._current().search_slots(query)

    async def check_slot(self, slot: SlotRecord) -> SlotCheck:
        """From the latest load, as of the feed's own time."""
        state = SlotState.FREE if holds(self._current(), slot) else SlotState.GONE
        return SlotCheck(state, self._as_of)

    async def search_clinics(self, query: ClinicQuery) -> list[ClinicRecord]:
        return self._current().search_clinics(query)

    async def get_physicians(self, query: PhysicianQuery) -> list[PhysicianRecord]:
        return self._current().get_physicians(query)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"smart-scheduling {self.id}")

    async def ready(self) -> None:
        await self._first_attempt.wait()

    async def load_once(self, watch: FeedWatch | None = None) -> None:
        """Poll the feed once, now, raising what failed (``sources check``; ``start`` polls
        for good). ``watch`` sees its files as they are read."""
        self._files.watch = watch
        try:
            await self._poll()
        finally:
            self._files.watch = None

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def status_hint(self) -> SourceStatus | None:
        if self._index is None or self._failures or self._failed:
            return SourceStatus.DEGRADED
        return SourceStatus.UP

    @property
    def problems(self) -> tuple[SourceProblem, ...]:
        index = self._index
        folds = index.folds(MAX_SAMPLES) if index is not None and index.folded_slots else ()
        loaded, failed = index is not None, self._failed
        return feed_problems(loaded, self._failures, self._as_of, failed, self._report, folds)

    @property
    def data_as_of(self) -> datetime | None:
        return self._as_of

    @property
    def last_success_at(self) -> datetime | None:
        """When the last refresh completed (the publisher answered)."""
        return self._success_at

    @property
    def latency_ms(self) -> float | None:
        """How long the publisher took to answer the manifest request of that refresh."""
        return self._latency_ms

    @property
    def physician_count(self) -> int | None:
        return self._index.physician_count if self._index is not None else None

    @property
    def refresh_interval_s(self) -> float:
        return max(self.MIN_POLL_INTERVAL_S, self._poll_s or self.DEFAULT_POLL_INTERVAL_S)

    @property
    def skipped_records(self) -> int | None:
        return self._skipped

    @property
    def last_load(self) -> LoadReport | None:
        """What the last completed load read, file by file (counts only)."""
        return self._report

    def _current(self) -> SlotIndex:
        index = self._index
        if index is None:
            raise SourceNotReady(self.id, "first load of the bulk feed in progress")
        return index

    # -- polling ----------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self._poll()
            except Exception as exc:  # a failed load must never end the polling
                self._failures += 1
                if isinstance(exc, SourceError):
                    reason = exc.message
                else:
                    self.logger.exception("refresh raised an unexpected %s", type(exc).__name__)
                    reason = f"unexpected {type(exc).__name__}"
                delay = self._next_delay()
                serving = "the previous copy" if self._index is not None else "nothing yet"
                self.logger.warning(
                    "refresh failed (%s); serving %s, retrying in %.1f s", reason, serving, delay
                )
            else:
                self._failures = 0
                delay = self._next_delay()
            self._first_attempt.set()
            await asyncio.sleep(delay)

    def _next_delay(self) -> float:
        interval = self.refresh_interval_s
        if self._failures:
            backoff = interval * 2 ** min(self._failures - 1, 16)
            interval = min(backoff, max(self.MAX_BACKOFF_S, interval))
        now = time.monotonic()
        not_before = max(self._manifest_fresh_until, self._manifest_at + self.MIN_FILE_INTERVAL_S)
        return max(interval, not_before - now, 0.0)

    def _rules(self) -> FetchRules:
        return FetchRules(
            min_interval_s=self.MIN_FILE_INTERVAL_S,
            max_cache_age_s=self.MAX_CACHE_AGE_S,
            timeout_s=self.config.timeout_s,
            deadline_s=self.FILE_DEADLINE_S,
            max_bytes=self._max_file_bytes,
            max_line_bytes=self.MAX_LINE_BYTES,
            concurrency=self.FILE_CONCURRENCY,
        )

    def _since(self, now: float) -> str | None:
        manifest = self._manifest
        if manifest is None or self._index is None or self._need_full:
            return None
        if now - self._full_at >= self.FULL_RELOAD_S:
            return None
        return manifest.transaction_time

    async def _poll(self) -> None:
        now = time.monotonic()
        since = self._since(now)
        started = time.perf_counter()
        fetched, body = await fetch_manifest(
            self.session,
            self.id,
            self.config.url,
            params={"_since": since} if since else None,
            headers=conditional_headers(*self._validators) if self._manifest else {},
            timeout_s=self.config.timeout_s,
        )
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        self._manifest_at = now
        if not fetched.not_modified:
            self._manifest_tolerated = fetched.tolerated
        if fetched.not_modified:  # the last manifest loaded, unchanged
            if self._manifest is None:
                raise SourceBadResponse(self.id, "manifest answered 304 to a first request")
            manifest, delta = self._manifest, self._manifest_delta
            if not delta:  # its files may have changed all the same
                await self._full_load(manifest)
        else:
            manifest = read_manifest(self.id, self.config.url, body)
            delta = since is not None and self._is_delta(manifest, since)
            if not (await self._delta(manifest) if delta else await self._full_load(manifest)):
                self._success_at, self._latency_ms = datetime.now(UTC), latency_ms
                return
        self._manifest, self._manifest_delta = manifest, delta
        if fetched.not_modified:  # a 304 may refresh the validators, or not repeat them
            etag, modified = self._validators
            self._validators = (fetched.etag or etag, fetched.last_modified or modified)
        else:
            self._validators = (fetched.etag, fetched.last_modified)
        self._manifest_fresh_until = self._rules().fresh_until(now, fetched)
        self._success_at, self._latency_ms = datetime.now(UTC), latency_ms

    def _is_delta(self, manifest: Manifest, sent: str) -> bool:
        if manifest.since is None or not covers_since(manifest.since, sent):
            return False
        base = self._files.cached
        return not (base and set(manifest.outputs) == set(base))

    # -- loads ------------------------------------------------------------------------

    async def _full_load(self, manifest: Manifest) -> bool:
        try:
            return await self._full_load_of(manifest)
        except BaseException:
            if self._files.released:  # the copy served has lost the files deltas build on
                self._need_full = True
            raise

    async def _full_load_of(self, manifest: Manifest) -> bool:
        now = time.monotonic()
        rules, revalidate = self._rules(), bool(self._overlay)
        entries = await self._files.fetch(manifest.outputs, rules, now, revalidate=revalidate)
        self._give_up_on_failures(entries)
        files = [entry.file for entry, _ in entries if entry is not None]
        changed = (
            self._index is None
            or bool(self._overlay)
            or any(how in ("fetched", "failed") for _, how in entries)
            or self._files.base != files  # FeedFiles compare by identity
        )
        if changed:
            resolved = await asyncio.to_thread(resolve, self.id, files)
            changes = await asyncio.to_thread(resolved.index.changed_since, self._index)
            self._index, self._targets, self._overlay = resolved.index, resolved.targets, {}
            self._ids_repeat = None
            self._skipped = sum(file.skipped for file in files)
            del resolved
            await asyncio.to_thread(give_back_memory)  # the previous copy's, now let go
            self.copy_loaded(changes)  # the watch reads what changed once this load is over
        self._files.keep(manifest.outputs, entries)
        self._full_at = now
        self._need_full = False
        failures = self._files.failures
        self._failed = tuple((url, failures[url].message) for url in failures)
        read = [url for url, (entry, _) in zip(manifest.outputs, entries, strict=True) if entry]
        self._as_of = manifest.as_of_for(read) or datetime.now(UTC)
        reports = tuple(
            file_report(entry.file, how)
            if entry
            else FileReport(file_name(url), how, failure=failures[url].message)
            for url, (entry, how) in zip(manifest.outputs, entries, strict=True)
        )
        self._finish(reports, delta=False)
        return True

    def _give_up_on_failures(self, entries: list[tuple[Cached | None, How]]) -> None:
        """Raise, for the load to fail as a whole, when no file could be read, or when a
        copy is being served and a file failed in a way that may pass: the copy is
        better than the feed without that file's slots."""
        errors = list(self._files.failures.values())
        if not errors:
            return
        if all(entry is None for entry, _ in entries):
            raise errors[0]
        passing = [e for e in errors if may_pass(e)]
        if self._index is not None and passing:
            raise passing[0]

    async def _delta(self, manifest: Manifest) -> bool:
        """Apply a ``_since`` delta; False when it must wait (or needs a full load)."""
        urls = [*manifest.outputs, *manifest.deleted]
        files = await self._files.fetch_deltas(urls, self._rules(), time.monotonic())
        if files is None:
            return False  # a file fetched less than a minute ago: at the next poll
        if any(file.has_non_slots for file in files):
            self.logger.info("the delta changes clinics or physicians: full reload at next poll")
            self._need_full = True
            return False
        base, overlay, targets = self._files.base, self._overlay, self._targets
        delta = (before := self._current(), files, base, overlay, targets, self._ids_repeat)
        self._index, updates, self._ids_repeat = await asyncio.to_thread(apply_delta, *delta)
        # Off the loop: clinics a delta touched are compared slot by slot.
        self.copy_loaded(await asyncio.to_thread(self._current().changed_since, before))
        self._overlay.update(updates)
        self._as_of = manifest.as_of_for(urls) or datetime.now(UTC)
        self._skipped = (self._skipped or 0) + sum(file.skipped for file in files)
        self._finish(tuple(file_report(file, "fetched") for file in files), delta=True)
        return True

    def _finish(self, reports: tuple[FileReport, ...], *, delta: bool) -> None:
        index = self._current()
        skipped, tolerated = self._skipped or 0, self._manifest_tolerated
        self._report = LoadReport(
            delta, reports, skipped, index.slot_count, tolerated, index.folded_slots
        )
        for report in reports:
            log_file(self.logger, report)
        fetched = sum(r.how == "fetched" for r in reports)
        (self.logger.info if fetched else self.logger.debug)(
            "%s: %d clinics, %d physicians, %d free slots from %d files (%d fetched); "
            "%d records skipped",
            "delta applied" if delta else "feed loaded",
            index.clinic_count,
            index.physician_count,
            index.slot_count,
            len(reports),
            fetched,
            self._skipped or 0,
        )


__all__ = ["FileReport", "LoadReport", "SmartSchedulingSource"]
