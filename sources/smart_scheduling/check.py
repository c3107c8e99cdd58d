"""``sources check`` for a SMART Scheduling Links feed: what the gateway would make of it.

The check runs what the adapter runs: it asks the manifest as a poll does (then again
with the validators it gave, and with ``?_since=<transactionTime>``), loads the feed once
with the adapter itself (``SmartSchedulingSource.load_once``), every line read once, and
counts what the adapter kept and skipped while it reads (``sources.smart_scheduling.survey``).
The free slots the gateway would serve are those the loaded index holds from now on;
those it would not are counted by reason.

A check fails when what it found loses free slots or makes the feed unusable, and warns
otherwise: ``manifest`` (read, lists files; a missing ``transactionTime`` warns),
``caching`` (``Cache-Control: max-age``, ``ETag``/``Last-Modified``, a 304 when they are
sent back), ``_since`` (deltas; fails when the manifest refuses the parameter: the
gateway's refreshes would fail), ``files`` (each read: fails otherwise), ``file types``
(the manifest's ``type`` against the lines' ``resourceType``), ``compression`` (gzip
without ``Content-Encoding`` warns), ``lines`` (unreadable lines fail; a byte-order mark
or a missing last newline warns), ``fields`` (skipped Slots fail; other skipped resources
fail when they cost slots; fields the specification asks for, numbers written as
strings, warn), ``references`` (fails when slots cannot be resolved), ``duplicate ids``,
``times`` (no offset, already begun, more than a year ahead), ``slots`` (free and busy;
unknown statuses are read as busy), ``booking links`` (http(s) only), ``phones``,
``places`` (outside Quebec: not served, not a loss; no position) all warn. The details,
check by check: ``sources/smart_scheduling/README.md``.

The report holds counts, field names, file names without their query, and at most a few
ids as samples: never what a slot or a location said. ``sources.check.run_check`` calls
it (``clock`` is for tests)::

    report = CheckReport("ssl-qc", "SMART_SCHEDULING_LINKS", config.url)
    await check_source(config, SourceContext(session, logger), report)
    report.exit_code  # 0: all it publishes can be served; 1: not
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from yarl import URL

from sources.errors import SourceError
from sources.fhir.resources import text_value
from sources.records import SlotQuery
from sources.smart_scheduling.adapter import SmartSchedulingSource
from sources.smart_scheduling.http import conditional_headers, fetch_manifest
from sources.smart_scheduling.manifest import covers_since, file_name, read_manifest
from sources.smart_scheduling.options import SmartSchedulingOptions
from sources.smart_scheduling.survey import READ_TYPES, FeedSurvey, FileTally
from sources.smart_scheduling.verdicts import FileSeen, LoadedFeed, Verdict, kinds, write_verdicts
from sources.timeutil import MONTREAL, parse_upstream_datetime

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from sources.base import SourceConfig, SourceContext
    from sources.check import CheckReport
    from sources.smart_scheduling.http import Fetched
    from sources.smart_scheduling.manifest import Manifest
    from sources.smart_scheduling.reports import LoadReport

    Ask = Callable[[dict[str, str] | None, dict[str, str]], Awaitable[tuple[Fetched, Any]]]

__all__ = ["check_source"]

YEAR = timedelta(days=365)
Deltas = Literal["honoured", "ignored", "refused", "not asked"]
_DELTAS_PLAN: dict[Deltas, str] = {
    "honoured": "then ?_since=<transactionTime> at each poll, the deltas applied; a full load "
    "at least every hour",
    "ignored": "no deltas (_since ignored): each change of the manifest is a full load",
    "refused": "after a full load, ?_since=<transactionTime> at each poll is refused: the "
    "refreshes fail until the next full load, an hour later",
    "not asked": "no deltas (no transactionTime): each change of the manifest is a full load",
}
_FOREVER = timedelta(days=365 * 200)


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def check_source(
    config: SourceConfig,
    context: SourceContext,
    report: CheckReport,
    *,
    clock: Callable[[], datetime] = _utc_now,
) -> None:
    """Check the feed at ``config.url`` into ``report`` (see the module docstring)."""
    now = clock()
    front = await _front(config, context, report)
    if front is None:
        return
    source = SmartSchedulingSource(config, context)
    survey = FeedSurvey()
    try:
        await source.load_once(survey)
        load = source.last_load
        if load is None:  # load_once returned: a full load is in
            raise AssertionError("a completed load left no report")
        future = await _count(source, now, now + _FOREVER)
        beyond = await _count(source, now + YEAR, now + _FOREVER)
    except SourceError as exc:
        tried = [file_name(url) for url in survey.files]
        which = f"none of its {len(tried)} files could be read" if tried else "not loaded"
        report.failed(
            "files",
            f"{which}: {exc.message}",
            "make every file the manifest lists answer 200 to a GET, one resource a line",
        )
        return
    finally:
        await source.aclose()
    files = _files_seen(load, front, survey)
    _plan(config, front, report)
    _capabilities(front, survey, report)
    write_verdicts(LoadedFeed(load, files, survey, future, beyond), report)


# -- the manifest, before the load ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Front:
    """What the manifest requests found."""

    fetched: Fetched
    manifest: Manifest
    types: dict[str, str]  # each output's declared type, by URL
    conditional: bool | None  # a 304 to its validators; None: no validators to send
    deltas: Deltas


async def _front(
    config: SourceConfig, context: SourceContext, report: CheckReport
) -> _Front | None:
    """The ``manifest``, ``caching`` and ``_since`` checks; None when the feed cannot be
    read at all (said in a failed check)."""

    async def ask(params: dict[str, str] | None, headers: dict[str, str]) -> tuple[Fetched, Any]:
        """The manifest, as the adapter asks it."""
        return await fetch_manifest(
            context.session,
            config.id,
            config.url,
            params=params,
            headers=headers,
            timeout_s=config.timeout_s,
        )

    try:
        fetched, body = await ask(None, {})
        manifest = read_manifest(config.id, config.url, body)
    except SourceError as exc:
        report.failed(
            "manifest",
            f"not read: {exc.message}",
            "serve the $bulk-publish manifest (a JSON object with an `output` list) at this "
            "URL, reachable from the gateway",
        )
        return None
    types = _declared_types(config.url, body)
    if not _manifest_check(fetched, manifest, types, report):
        return None
    conditional = None
    if fetched.etag or fetched.last_modified:
        try:
            again, _ = await ask(None, conditional_headers(fetched.etag, fetched.last_modified))
            conditional = again.not_modified
        except SourceError:
            conditional = False
    _caching_check(fetched, conditional, report)
    deltas = await _since_check(manifest, ask, config.id, config.url, report)
    return _Front(fetched, manifest, types, conditional, deltas)


def _manifest_check(
    fetched: Fetched, manifest: Manifest, types: dict[str, str], report: CheckReport
) -> bool:
    if not manifest.outputs:
        ignored = f" ({manifest.ignored} outputs ignored)" if manifest.ignored else ""
        report.failed(
            "manifest",
            f"lists no file the gateway reads{ignored}",
            f"list the feed's files in `output`, each with its `type` ({', '.join(READ_TYPES)}) "
            "and an http(s) `url` on the manifest's host, or https elsewhere",
        )
        return False
    listed = Counter(types.get(url, "?") for url in manifest.outputs)
    when = manifest.transaction_time
    verdict = Verdict("manifest", kinds(listed))
    if when is not None and _instant(when) is not None:
        verdict.facts = f"transactionTime {when}, {verdict.facts}"
    else:
        verdict.warn(
            "no readable transactionTime: deltas cannot be asked and the data's age is unknown",
            "give `transactionTime`, the instant of the data, with its offset",
        )
    if manifest.ignored:
        verdict.warn(
            f"{manifest.ignored} outputs ignored (types the gateway does not read, or URLs it "
            "may not follow: plain http to another host)",
            f"list only {', '.join(READ_TYPES)} files, on the manifest's host or over https",
        )
    if fetched.tolerated:
        verdict.warn(
            f"read despite {', '.join(fetched.tolerated)}",
            "send the manifest as plain UTF-8 JSON (gzip only with Content-Encoding: gzip)",
        )
    verdict.into(report)
    return True


def _caching_check(fetched: Fetched, conditional: bool | None, report: CheckReport) -> None:
    said = []
    if fetched.fresh_for_s is not None:
        said.append(f"Cache-Control max-age={fetched.fresh_for_s:g} s")
    said += [
        name
        for name, value in (("ETag", fetched.etag), ("Last-Modified", fetched.last_modified))
        if value
    ]
    if conditional:
        said.append("304 to a conditional request")
    verdict = Verdict("caching", "manifest: " + (", ".join(said) or "no caching headers"))
    if fetched.fresh_for_s is None:
        verdict.warn(
            "no Cache-Control max-age on the manifest",
            "send Cache-Control: max-age=N, how long the manifest stays as it is (60 to 300 s)",
        )
    if conditional is None:
        verdict.warn(
            "neither ETag nor Last-Modified on the manifest: every poll downloads it whole",
            "send ETag (or Last-Modified) and answer 304 to If-None-Match (If-Modified-Since)",
        )
    elif not conditional:
        verdict.warn(
            "its validators sent back did not get a 304: every poll downloads it whole",
            "answer 304 Not Modified to If-None-Match (If-Modified-Since) while it is unchanged",
        )
    verdict.into(report)


async def _since_check(
    manifest: Manifest,
    ask: Ask,
    source_id: str,
    url: str,
    report: CheckReport,
) -> Deltas:
    """Whether ``?_since=<transactionTime>`` gets a delta, as the adapter judges one."""
    since = manifest.transaction_time
    fix = (
        "answer ?_since=T with the files of the changes since T only, and echo the URL asked "
        "(with its _since) in `request`"
    )
    if since is None:
        report.warned("_since", "not asked: the manifest has no transactionTime", fix)
        return "not asked"
    try:
        _, body = await ask({"_since": since}, {})
        answer = read_manifest(source_id, url, body)
    except SourceError as exc:
        report.failed(
            "_since",
            f"?_since=<transactionTime> refused: {exc.message}; the gateway asks it at every "
            "poll after a full load, so its refreshes would fail (the copy served grows up to "
            "an hour old)",
            "answer ?_since=T with the changes since T, or ignore the parameter and answer "
            "the full feed",
        )
        return "refused"
    if (
        answer.since is not None
        and covers_since(answer.since, since)
        and set(answer.outputs) != set(manifest.outputs)
    ):
        report.passed(
            "_since",
            f"honoured: ?_since=<transactionTime> listed {len(answer.outputs)} delta files",
        )
        return "honoured"
    report.warned(
        "_since",
        "ignored (the answer is the full feed): every change of the feed is a full load",
        fix,
    )
    return "ignored"


def _declared_types(manifest_url: str, body: dict[str, Any]) -> dict[str, str]:
    """Each output's ``type``, by its URL resolved as ``read_manifest`` resolves it."""
    base = URL(manifest_url)
    types: dict[str, str] = {}
    for item in body.get("output") or ():
        if isinstance(item, dict) and (raw := text_value(item.get("url"))):
            try:
                types[str(base.join(URL(raw)))] = str(item.get("type"))
            except ValueError:
                continue
    return types


# -- after the load ----------------------------------------------------------------------


def _files_seen(load: LoadReport, front: _Front, survey: FeedSurvey) -> tuple[FileSeen, ...]:
    """Each file of the load with its URL: the manifest's outputs in order (the load report
    names files by path only), else by name when the manifest changed in between."""
    urls = list(front.manifest.outputs)
    if [file_name(url) for url in urls] != [f.name for f in load.files]:
        by_name = {file_name(url): url for url in survey.files}
        urls = [by_name.get(f.name, f.name) for f in load.files]
    return tuple(
        FileSeen(f, url, survey.files.get(url) or FileTally(url), front.types.get(url, "?"))
        for f, url in zip(load.files, urls, strict=True)
    )


async def _count(source: SmartSchedulingSource, after: datetime, before: datetime) -> int:
    """The free slots of the loaded index beginning in [after, before)."""
    result = await source.search_slots(SlotQuery(after, before, limit=1))
    return result.total or 0


def _plan(config: SourceConfig, front: _Front, report: CheckReport) -> None:
    """How the gateway would read the feed, from what the manifest requests found."""
    adapter = SmartSchedulingSource
    poll = config.options_as(SmartSchedulingOptions).poll_interval_s
    every = max(adapter.MIN_POLL_INTERVAL_S, poll or adapter.DEFAULT_POLL_INTERVAL_S)
    fresh = front.fetched.fresh_for_s
    wait = ""
    if fresh is not None and fresh > every:
        wait = f", not before its max-age ({min(fresh, adapter.MAX_CACHE_AGE_S):g} s) runs out"
    report.plan += [
        f"poll the manifest every {every:g} s (poll_interval_s){wait}",
        f"a full load streams its {len(front.manifest.outputs)} files line by line, "
        f"{adapter.FILE_CONCURRENCY} at a time; a file at most once a minute, not within its "
        "max-age",
        _DELTAS_PLAN[front.deltas],
        "conditional requests (If-None-Match, If-Modified-Since): a 304 reuses what was read"
        if front.conditional
        else "no conditional requests: each poll downloads the manifest whole",
    ]


def _capabilities(front: _Front, survey: FeedSurvey, report: CheckReport) -> None:
    fetched = [t.fetched for t in survey.files.values() if t.fetched is not None]
    n = len(fetched)
    free = survey.statuses["free"]
    named = survey.schedules_with
    report.capabilities += [
        f"_since: {front.deltas}",
        "conditional requests" if front.conditional else "no conditional requests",
        f"files: ETag on {sum(bool(f.etag) for f in fetched)}/{n}, Last-Modified on "
        f"{sum(bool(f.last_modified) for f in fetched)}/{n}, max-age on "
        f"{sum(f.fresh_for_s is not None for f in fetched)}/{n}, Content-Encoding on "
        f"{sum(bool(f.encoding) for f in fetched)}/{n}",
        f"Schedules: {named['PractitionerRole']:,} name a PractitionerRole, "
        f"{named['Practitioner']:,} a Practitioner, {named['no physician']:,} no physician",
        f"free slots: booking-deep-link on {survey.links:,}/{free:,}, booking-phone on "
        f"{survey.slot_phones:,}/{free:,}, slot-capacity on {survey.capacities:,}/{free:,}",
    ]


def _instant(value: str) -> datetime | None:
    try:
        # The manifest's own time, not a clinic's: without an offset, Montreal's.
        return parse_upstream_datetime(value, MONTREAL)
    except (ValueError, OverflowError):
        return None
