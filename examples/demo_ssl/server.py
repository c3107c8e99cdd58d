"""A demo SMART Scheduling Links publisher: the demo world as static NDJSON files.

    python -m examples.demo_ssl --port 8103 --scale 0.01 [--host 127.0.0.1] [--all]
        [--data-dir DIR] [--sessions-per-day N --free-share F] [--deviations]
        [--max-age S] [--update-every S] [--churn RATE]

It writes the feed of ``World.clinics_for("ssl")`` (``--all``: every clinic of the
province) to ``--data-dir``, or to a temporary directory removed on exit, then serves it:

- ``GET /$bulk-publish`` (also ``/%24bulk-publish``): the manifest, whose URLs point at
  the host the client asked. ``?_since=T`` (ISO 8601; no offset means Montreal time)
  lists only the delta files holding the slots changed after ``T`` (an empty ``output``
  when nothing changed); a ``T`` before the first publication gets the full feed.
- ``GET /data/{name}.ndjson``: the files (``application/fhir+ndjson``), laid out as
  ``examples.demo_ssl.feed`` describes.
- Every answer carries ``ETag``, ``Last-Modified`` and ``Cache-Control: max-age=N``
  (``--max-age``, default 60 s: clients poll the manifest every 1 to 5 minutes and fetch
  a file at most once a minute) and honours ``If-None-Match`` and, when that header is
  absent, ``If-Modified-Since`` (one-second precision, as HTTP dates go) with a 304.
- ``GET /_stats``: ``{"requests": N}``, the requests received but its own.

``--update-every S`` books and opens a few slots every ``S`` seconds, as a live
publisher would; ``--churn RATE`` opens and books ``RATE`` a minute, one at a time.
``build_app`` serves a :class:`~examples.demo_ssl.publisher.Publisher`
or a directory already written by :func:`~examples.demo_ssl.feed.write_feed`; a directory
is served as a static host would, ignoring ``_since``. The server exits cleanly on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
import time as _time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from examples import request_stats
from examples.churn import CHURN_HELP, Churn, churn_argument, churning
from examples.demo_ssl.feed import (
    DATA_PATH,
    MANIFEST_NAME,
)
from examples.demo_ssl.publisher import Publisher
from examples.world import MAX_SESSIONS_PER_DAY, World
from sources.timeutil import MONTREAL, parse_upstream_datetime

NDJSON = "application/fhir+ndjson"
DEFAULT_MAX_AGE_S = 60
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\.ndjson")
_CHUNK = 1 << 20


def build_app(
    feed: Publisher | Path | str,
    *,
    max_age_s: int = DEFAULT_MAX_AGE_S,
    churn: Churn | None = None,
) -> web.Application:
    """The aiohttp application serving a publisher's feed, or a feed directory; with a
    ``churn``, the publisher opens and books slots as time passes (``examples.churn``)."""
    publisher = feed if isinstance(feed, Publisher) else None
    directory = feed.directory if isinstance(feed, Publisher) else Path(feed)
    cache_control = f"max-age={max_age_s}"
    app = web.Application()

    async def manifest(request: web.Request) -> web.StreamResponse:
        origin = str(request.url.origin())
        if publisher is None:
            body = _rebased_manifest(directory, origin, str(request.url))
            modified = (directory / MANIFEST_NAME).stat().st_mtime
        else:
            try:
                since = _since(request)
            except ValueError as exc:
                raise web.HTTPBadRequest(text=f"_since: {exc}") from exc
            body = publisher.manifest(origin, since=since, request_url=str(request.url))
            modified = publisher.transaction_time.timestamp()
        payload = orjson.dumps(body)
        etag = '"' + hashlib.sha256(payload).hexdigest()[:32] + '"'
        headers = _validators(etag, modified, cache_control)
        if _not_modified(request, etag, modified):
            return web.Response(status=304, headers=headers)
        return web.Response(body=payload, content_type="application/json", headers=headers)

    async def data(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if not _FILE_NAME.fullmatch(name):
            raise web.HTTPNotFound()
        path = directory / name
        try:
            handle = path.open("rb")
        except OSError as exc:
            raise web.HTTPNotFound() from exc
        with handle:
            # One open file: the ETag and the bytes belong to the same publication even if
            # the publisher replaces the file meanwhile.
            stat = os.fstat(handle.fileno())
            etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
            headers = _validators(etag, stat.st_mtime, cache_control)
            if _not_modified(request, etag, stat.st_mtime):
                return web.Response(status=304, headers=headers)
            response = web.StreamResponse(headers=headers)
            response.content_type = NDJSON
            response.content_length = stat.st_size
            await response.prepare(request)
            if request.method != "HEAD":
                loop = asyncio.get_running_loop()
                while chunk := await loop.run_in_executor(None, handle.read, _CHUNK):
                    await response.write(chunk)
            await response.write_eof()
            return response

    if churn is not None and publisher is not None:
        publisher_ = publisher

        def step(opening: bool) -> None:
            if opening:
                publisher_.add(1)
            else:
                publisher_.book(1, now=churn.clock())

        app.cleanup_ctx.append(churning(churn, step))
    request_stats.install(app)
    app.router.add_get(f"/{MANIFEST_NAME}", manifest)
    app.router.add_get(DATA_PATH + "{name}", data)
    return app


def _since(request: web.Request) -> datetime | None:
    raw = request.query.get("_since")
    if raw is None or not raw.strip():
        return None
    # An unencoded "+01:00" arrives as " 01:00": a query string's "+" is a space.
    return parse_upstream_datetime(raw.strip().replace(" ", "+"), MONTREAL)


def _rebased_manifest(directory: Path, origin: str, request_url: str) -> dict[str, Any]:
    """The manifest written in ``directory``, its URLs moved to the host that was asked."""
    manifest: dict[str, Any] = orjson.loads((directory / MANIFEST_NAME).read_bytes())
    for item in manifest.get("output", []):
        item["url"] = origin + DATA_PATH + str(item["url"]).rsplit("/", 1)[-1]
    manifest["request"] = request_url
    return manifest


def _validators(etag: str, modified: float, cache_control: str) -> dict[str, str]:
    last_modified = format_datetime(datetime.fromtimestamp(int(modified), UTC), usegmt=True)
    return {"ETag": etag, "Last-Modified": last_modified, "Cache-Control": cache_control}


def _not_modified(request: web.Request, etag: str, modified: float) -> bool:
    """RFC 9110 13.1: If-None-Match wins; If-Modified-Since counts only without it."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return "*" in tags or etag in tags
    since = request.if_modified_since
    return since is not None and int(modified) <= since.timestamp()


async def _keep_updating(publisher: Publisher, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        publisher.book(3)
        publisher.add(2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m examples.demo_ssl", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8103)
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--all", action="store_true", help="publish every clinic")
    parser.add_argument("--data-dir", type=Path, help="keep the feed here (default: temporary)")
    parser.add_argument(
        "--sessions-per-day", type=int, default=1, choices=range(1, MAX_SESSIONS_PER_DAY + 1)
    )
    parser.add_argument("--free-share", type=float, default=0.3)
    parser.add_argument("--deviations", action="store_true", help="publish as the wild does")
    parser.add_argument("--max-age", type=int, default=DEFAULT_MAX_AGE_S, help="seconds")
    parser.add_argument("--update-every", type=float, default=0.0, help="seconds; 0: never")
    parser.add_argument("--churn", type=churn_argument, default=0.0, help=CHURN_HELP)
    args = parser.parse_args(argv)
    world = World(
        args.scale,
        seed=args.seed,
        sessions_per_day=args.sessions_per_day,
        free_share=args.free_share,
    )
    base_url = f"http://{args.host}:{args.port}"
    with contextlib.ExitStack() as stack:
        directory = args.data_dir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="passerelle-ssl-"))
        )
        started = _time.monotonic()
        publisher = Publisher(
            world,
            directory,
            clinics=world.clinics if args.all else None,
            deviations=args.deviations,
            base_url=base_url,
        )
        slots = publisher.feed.slots
        print(
            f"SMART Scheduling Links demo on {base_url}/{MANIFEST_NAME}: "
            f"{len(publisher.writer.clinics)} clinics, {slots.free} free and {slots.busy} busy "
            f"slots written to {directory} in {_time.monotonic() - started:.1f} s",
            flush=True,
        )
        churn = Churn(args.churn, seed=args.seed, system="ssl") if args.churn else None
        app = build_app(publisher, max_age_s=args.max_age, churn=churn)
        if args.update_every > 0:
            app.cleanup_ctx.append(_updates(publisher, args.update_every))
        web.run_app(app, host=args.host, port=args.port, print=None)  # exits cleanly on SIGTERM


def _updates(
    publisher: Publisher, every_s: float
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def run(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_keep_updating(publisher, every_s))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return run


__all__ = ["DEFAULT_MAX_AGE_S", "NDJSON", "build_app", "main"]
