"""Fetching the files of a SMART Scheduling Links feed politely, and remembering them.

A file is fetched again only once its ``Cache-Control: max-age`` has run out and no
sooner than ``FetchRules.min_interval_s`` after the last fetch (the spec: once a minute);
until then the copy read last time is reused. A fetch sends the file's validators, and a
304 reuses the copy. At most ``concurrency`` files are streamed at once. A file that
cannot be read (a 404, a timeout, over the size cap) does not stop the others: it is
``"failed"`` and ``FeedFiles.failures`` says why; the load decides what that costs.
A delta is whole or not at all: its first failure cancels the others. A ``FeedWatch``
set on ``FeedFiles.watch`` sees the files of full loads as they are read (``sources check``).

    files = FeedFiles(session, source_id, logger)
    entries = await files.fetch(urls, rules, now)  # [(Cached | None, How)], in order
    files.keep(urls, entries)  # once the load built from them is being served
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from sources.errors import SourceBadResponse, SourceError
from sources.smart_scheduling.feed import FeedReader
from sources.smart_scheduling.http import conditional_headers, stream_ndjson
from sources.smart_scheduling.manifest import file_name

if TYPE_CHECKING:
    import logging
    from collections.abc import Awaitable, Callable, Iterable, Sequence

    import aiohttp

    from sources.smart_scheduling.feed import FeedFile
    from sources.smart_scheduling.http import Fetched

How = Literal["fetched", "not modified", "fresh", "failed"]
_T = TypeVar("_T")


class FeedWatch(Protocol):
    """Sees a full load's files as they are read: ``reading(url)`` is asked once per file
    fetched for what to hand each decoded line (and whether it was kept),
    ``answered(url, fetched)`` is told what its answer said of itself."""

    def reading(self, url: str) -> Callable[[Any, bool], None]: ...

    def answered(self, url: str, fetched: Fetched) -> None: ...


@dataclass(frozen=True, slots=True)
class FetchRules:
    """The limits every fetch honours; the source builds them from its settings."""

    min_interval_s: float
    max_cache_age_s: float  # a longer max-age is honoured for this long only
    timeout_s: float  # connection and each read
    deadline_s: float  # a whole file
    max_bytes: int
    max_line_bytes: int
    concurrency: int

    def fresh_until(self, now: float, fetched: Fetched) -> float:
        if fetched.fresh_for_s is None:
            return now
        return now + min(fetched.fresh_for_s, self.max_cache_age_s)


@dataclass(frozen=True, slots=True)
class Cached:
    """A file as read, and what it takes to ask for it again."""

    file: FeedFile
    etag: str | None
    last_modified: str | None
    fetched_at: float
    fresh_until: float


class FeedFiles:
    """The files of the last full load, by URL, and the fetches of the next ones."""

    def __init__(self, session: aiohttp.ClientSession, source_id: str, logger: logging.Logger):
        self.session = session
        self.source_id = source_id
        self.logger = logger
        self.cached: dict[str, Cached] = {}
        # The files of the last ``fetch`` that failed, by URL: the error.
        self.failures: dict[str, SourceError] = {}
        self.watch: FeedWatch | None = None
        # The files of the last ``fetch`` whose copy was let go when a new body began:
        # until a load built from the new ones is kept, deltas have no base to go on.
        self.released: set[str] = set()
        self._delta_fetched: dict[str, float] = {}

    @property
    def base(self) -> list[FeedFile]:
        return [entry.file for entry in self.cached.values()]

    async def fetch(
        self, urls: Sequence[str], rules: FetchRules, now: float, *, revalidate: bool = False
    ) -> list[tuple[Cached | None, How]]:
        """Every file of a full load: reused, revalidated or fetched (None when refused).

        ``revalidate`` asks again for files still within their max-age: the caller knows
        they changed since (deltas were applied on top of them).
        """
        self.failures = {}
        self.released = set()
        jobs = [functools.partial(self._fetch_one, url, rules, now, revalidate) for url in urls]
        return await bounded(jobs, rules.concurrency)

    def keep(self, urls: Sequence[str], entries: Sequence[tuple[Cached | None, How]]) -> None:
        self.cached = {
            url: entry for url, (entry, _) in zip(urls, entries, strict=True) if entry is not None
        }

    async def fetch_deltas(
        self, urls: Sequence[str], rules: FetchRules, now: float
    ) -> list[FeedFile] | None:
        """The files of a ``_since`` delta; None when one was fetched too recently."""
        self._delta_fetched = {
            url: at for url, at in self._delta_fetched.items() if now - at < rules.min_interval_s
        }
        if any(url in self._delta_fetched for url in urls):
            return None
        self._delta_fetched.update(dict.fromkeys(urls, now))
        jobs = [functools.partial(self._fetch_delta, url, rules) for url in urls]
        return await bounded(jobs, rules.concurrency)

    async def _fetch_one(
        self, url: str, rules: FetchRules, now: float, revalidate: bool
    ) -> tuple[Cached | None, How]:
        cached = self.cached.get(url)
        if cached is not None and (
            (now < cached.fresh_until and not revalidate)
            or now - cached.fetched_at < rules.min_interval_s
        ):
            return cached, "fresh"
        watch = self.watch
        reader = FeedReader(self.source_id, file_name(url))
        reader.watch = watch.reading(url) if watch else None
        headers = conditional_headers(cached.etag, cached.last_modified) if cached else {}
        del cached  # not held while the new copy is read: see _line
        try:
            fetched = await self._stream(url, headers, reader, rules, release=True)
            if watch is not None:
                watch.answered(url, fetched)
        except SourceError as exc:
            self.logger.warning("%s: not read (%s)", reader.file.name, exc.message)
            self.failures[url] = exc
            return None, "failed"
        fresh_until = rules.fresh_until(now, fetched)
        if not fetched.not_modified:
            file = reader.finish()
            return Cached(file, fetched.etag, fetched.last_modified, now, fresh_until), "fetched"
        cached = self.cached.get(url)  # a 304 has no body: the copy was kept
        if cached is None:
            raise SourceBadResponse(self.source_id, "file answered 304 to an unconditional request")
        etag = fetched.etag or cached.etag
        modified = fetched.last_modified or cached.last_modified
        return Cached(cached.file, etag, modified, now, fresh_until), "not modified"

    async def _fetch_delta(self, url: str, rules: FetchRules) -> FeedFile:
        reader = FeedReader(self.source_id, file_name(url), delta=True)
        fetched = await self._stream(url, {}, reader, rules)
        if fetched.not_modified:
            raise SourceBadResponse(self.source_id, "file answered 304 to an unconditional request")
        return reader.finish()

    async def _stream(
        self,
        url: str,
        headers: dict[str, str],
        reader: FeedReader,
        rules: FetchRules,
        *,
        release: bool = False,
    ) -> Fetched:
        read, cached = reader.line, self.cached

        def line(data: bytes) -> None:
            """A full load's copy of a file is let go as its new body begins, rather than
            once the load is over: a province's reload never holds two copies of a file."""
            if url in cached:
                del cached[url]
                self.released.add(url)
            read(data)

        fetched = await stream_ndjson(
            self.session,
            self.source_id,
            url,
            headers=headers,
            timeout_s=rules.timeout_s,
            deadline_s=rules.deadline_s,
            max_bytes=rules.max_bytes,
            max_line_bytes=rules.max_line_bytes,
            on_line=line if release else read,
        )
        reader.oversized(fetched.oversized_lines)
        for deviation in fetched.tolerated:
            reader.file.tolerate(deviation)
        return fetched


async def bounded(jobs: Iterable[Callable[[], Awaitable[_T]]], limit: int) -> list[_T]:
    """Run ``jobs`` at most ``limit`` at a time, results in order; the first failure
    cancels the rest and is raised (a ``SourceError`` in preference)."""
    semaphore = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[_T]]) -> _T:
        async with semaphore:
            return await job()

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(job)) for job in jobs]
    except ExceptionGroup as failed:
        errors = [e for e in failed.exceptions if isinstance(e, SourceError)]
        raise (errors or failed.exceptions)[0]  # noqa: B904 - keeps the error's own cause
    return [task.result() for task in tasks]


__all__ = ["Cached", "FeedFiles", "FeedWatch", "FetchRules", "How", "bounded"]
