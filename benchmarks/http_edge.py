"""Benchmark of the HTTP edge (issue 5, item 8): requests/s of one persisted query.

    python benchmarks/http_edge.py                      # about 75 s
    python benchmarks/http_edge.py --quick              # 3 s per case, about 40 s
    python benchmarks/http_edge.py --json edge.json     # the rows as JSON too
    python benchmarks/http_edge.py --profile prof/      # and py-spy over (a) and (b)
    python benchmarks/http_edge.py --only b,d           # some cases only

Run by hand, not by CI. Needs ``wrk`` (Debian: ``apt-get install wrk``) and,
for case (a) on Redis, a Redis server at ``--redis-url``. The query is
``edge/static/example_query.graphql``, registered once as an automatic
persisted query (a POST with the query and its hash), then asked by hash
only, ``GET /graphql?extensions=...&variables={}`` with ``Accept:
application/json``. Each case runs in its own process on one uvicorn worker
(uvloop and httptools, as ``app.py`` runs) and is loaded by wrk on the same
machine (2 threads and 32 connections by default, a 2 s warm-up, then 10 s):

(a) ``python app.py`` (demo systems, scale 0.05): served from the response
    cache, in-process backend; then again with ``--cache redis``.
(b) ``python app.py --no-response-cache``: executed every time, the booking
    systems' answers cached (the default source cache).
(c) The ceiling: the bytes (a) sends, pre-serialized, from a bare Starlette
    endpoint.
(d) The naive peer: a plain strawberry schema with the types the query needs,
    over the gateway's answer held in memory, served by
    ``strawberry.asgi.GraphQL`` and asked the same document by GET (no
    persisted queries, no parse or validation cache).

Before each case one request checks the answer: 200, the same ``data`` as the
gateway's first answer, ``X-Cache: HIT`` for (a) and not for (b). Targets:
(a) at least half of (c); (b) at least (d), twice (d) as the stretch. On a
shared 2-core machine, compare ratios within one run: wrk competes with the
server for the cores, alike in every case; the server's own CPU time per
request (user + system, from ``/proc``) is given beside, and is steadier than
requests/s when the machine is busy. Progress goes to stderr, the table to
stdout. ``--profile DIR`` also loads (a) and (b) once more under ``py-spy
record`` (written to DIR as collapsed stacks, for speedscope or flamegraph.pl)
and prints how the samples split between the phases of a request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import aiohttp
import orjson
import strawberry
import uvicorn
from fanout import Gateway, free_ports
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.types import Info

ROOT = Path(__file__).resolve().parents[1]
QUERY_FILE = ROOT / "edge" / "static" / "example_query.graphql"  # GraphiQL's example query
ACCEPT = "application/json"
CASES = ("a", "a-redis", "b", "c", "d")
LUA_DONE = """\
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_JSON {\\"requests\\": %.0f, \\"duration_us\\": %.0f, \\"bytes\\": %.0f, " ..
    "\\"p50_us\\": %.0f, \\"p99_us\\": %.0f, \\"errors\\": %.0f, \\"non_2xx\\": %.0f}\\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


@dataclass(frozen=True, slots=True)
class Settings:
    seconds: int
    warmup_s: int
    threads: int
    connections: int
    scale: float
    redis_url: str
    startup_timeout_s: float
    profile_dir: Path | None
    profile_s: int
    only: tuple[str, ...]
    operator: bool = True  # as an operator runs it (issue 17, item 7); False: development


@dataclass(frozen=True, slots=True)
class Load:
    """What wrk measured."""

    requests: int
    seconds: float
    bytes_per_response: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors and timeouts
    non_2xx: int
    cpu_user_s: float = 0.0  # the server process's CPU time over the run (/proc)
    cpu_sys_s: float = 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def cpu_us(self, system_only: bool = False) -> float:
        """The server's CPU time per request, in microseconds."""
        cpu = self.cpu_sys_s if system_only else self.cpu_user_s + self.cpu_sys_s
        return 1e6 * cpu / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class Result:
    case: str
    label: str
    load: Load | None
    problem: str = ""  # why the case was not loaded, or what went wrong under load
    note: str = ""


@dataclass(frozen=True, slots=True)
class Row:
    case: str
    rps: str
    p50_ms: str
    p99_ms: str
    bytes_per_response: str
    cpu_us: str
    ratio_to_c: str
    target: str
    verdict: str


@dataclass(frozen=True, slots=True)
class Fetched:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def data(self) -> Any:
        try:
            return orjson.loads(self.body).get("data")
        except (orjson.JSONDecodeError, AttributeError):
            return None


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the query -------------------------------------------------------------------------------


def query_text() -> str:
    return QUERY_FILE.read_text(encoding="utf-8")


def persisted_extensions() -> dict[str, Any]:
    digest = hashlib.sha256(query_text().encode("utf-8")).hexdigest()
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


def apq_get_url(graphql_url: str) -> str:
    """The hash-only GET of the persisted query (Apollo's APQ over GET)."""
    extensions = json.dumps(persisted_extensions(), separators=(",", ":"))
    return f"{graphql_url}?{urlencode({'extensions': extensions, 'variables': '{}'})}"


def plain_get_url(graphql_url: str) -> str:
    return f"{graphql_url}?{urlencode({'query': query_text()})}"


async def fetch(
    session: aiohttp.ClientSession, url: str, payload: dict[str, Any] | None = None
) -> Fetched:
    sent = {"Accept": ACCEPT}
    if payload is None:
        request = session.get(url, headers=sent)
    else:
        sent["Content-Type"] = ACCEPT
        request = session.post(url, data=orjson.dumps(payload), headers=sent)
    async with request as response:
        headers = {name.lower(): value for name, value in response.headers.items()}
        return Fetched(response.status, headers, await response.read())


def check(answer: Fetched, reference: Any, x_cache: str | None = None) -> str:
    """Why ``answer`` is not the expected one ("" when it is)."""
    if answer.status != 200:
        return f"HTTP {answer.status}: {answer.body[:200]!r}"
    if answer.data != reference and comparable(answer.data) != comparable(reference):
        return "its data differ from the gateway's first answer"
    seen = answer.headers.get("x-cache", "")
    if x_cache == "HIT" and seen != "HIT":
        return f"X-Cache is {seen or 'absent'}, not HIT"
    if x_cache == "not HIT" and seen == "HIT":
        return "X-Cache: HIT on a gateway that should execute every time"
    return ""


def comparable(data: Any) -> Any:
    """The data without ``pageInfo.endCursor``, an opaque string that may spell the same
    position differently (a start time in UTC rather than Montreal time)."""
    try:
        slots = data["slots"]
        page_info = {**slots["pageInfo"], "endCursor": None}
        return {**data, "slots": {**slots, "pageInfo": page_info}}
    except (KeyError, TypeError):
        return data


def data_note(answer: Fetched, reference: Any) -> str:
    if answer.data == reference:
        return ""
    return "same data but for pageInfo.endCursor"


# -- load ------------------------------------------------------------------------------------


def require_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit(
            "wrk is needed to load the servers: apt-get install -y wrk (Debian), then run again"
        )
    return wrk


def parse_wrk(stdout: str) -> Load:
    line = next((ln for ln in stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{stdout}")
    raw = json.loads(line.removeprefix("WRK_JSON "))
    requests = int(raw["requests"])
    return Load(
        requests=requests,
        seconds=raw["duration_us"] / 1e6,
        bytes_per_response=raw["bytes"] / requests if requests else 0.0,
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        errors=int(raw["errors"]),
        non_2xx=int(raw["non_2xx"]),
    )


async def wrk(url: str, seconds: int, settings: Settings, script: Path) -> Load:
    argv = [require_wrk(), f"-t{settings.threads}", f"-c{settings.connections}"]
    argv += [f"-d{seconds}s", "--timeout", "5s", "-s", str(script), "-H", f"Accept: {ACCEPT}"]
    process = await asyncio.create_subprocess_exec(
        *argv, url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    stdout, _ = await process.communicate()
    return parse_wrk(stdout.decode(errors="replace"))


def cpu_times(pid: int) -> tuple[float, float]:
    """A process's user and system CPU seconds so far (Linux ``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


async def measure(url: str, settings: Settings, script: Path, pid: int) -> Load:
    """A warm-up run (discarded), then the measured one, with the server's CPU time."""
    if settings.warmup_s > 0:
        await wrk(url, settings.warmup_s, settings, script)
    user, system = cpu_times(pid)
    load = await wrk(url, settings.seconds, settings, script)
    user_after, system_after = cpu_times(pid)
    return replace(load, cpu_user_s=user_after - user, cpu_sys_s=system_after - system)


def load_problem(load: Load) -> str:
    if load.errors or load.non_2xx:
        return f"{load.errors} socket errors, {load.non_2xx} non-2xx answers under load"
    return ""


# -- processes under test --------------------------------------------------------------------


@contextlib.asynccontextmanager
async def gateway(
    session: aiohttp.ClientSession, settings: Settings, extra: Sequence[str]
) -> AsyncIterator[Gateway]:
    """``python app.py`` with its demo systems on free ports, stopped on the way out."""
    if settings.operator:
        # Production, an anonymous rate wrk never reaches, /metrics on its own port, JSON
        # request logs (to the gateway's log file); fanout.Gateway leaves OTEL_* out.
        extra = [*extra, "--env", "production", "--anonymous-rate", "1000000",
                 "--log-level", "info", "--metrics-port", str(free_ports(1))]  # fmt: skip
    say(f"  starting the gateway ({' '.join(extra) or 'default options'})")
    gw = Gateway({}, settings.scale, extra)
    with tempfile.TemporaryDirectory(prefix="passerelle-edge-") as workdir:
        gw.start(Path(workdir))
        try:
            await gw.wait_ready(session, settings.startup_timeout_s)
            yield gw
        finally:
            gw.stop()


@contextlib.asynccontextmanager
async def server(
    session: aiohttp.ClientSession, kind: str, payload: Path, timeout_s: float
) -> AsyncIterator[tuple[str, int]]:
    """This module's ``--serve KIND`` on a free port; yields its /graphql URL and pid."""
    port = free_ports(1)
    argv = [__file__, "--serve", kind, "--port", str(port), "--file", str(payload)]
    process = await asyncio.create_subprocess_exec(
        sys.executable, *argv, cwd=ROOT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        await wait_listening(session, process, url, timeout_s)
        yield url, process.pid
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=10)
            except TimeoutError:
                process.kill()
                await process.wait()


async def wait_listening(
    session: aiohttp.ClientSession, process: asyncio.subprocess.Process, url: str, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise SystemExit(f"{url}: the server exited with {process.returncode}")
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(url.removesuffix("/graphql") + "/ready") as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.1)
    raise SystemExit(f"{url}: not listening after {timeout_s:g} s")


# -- (c) the ceiling -------------------------------------------------------------------------


def ceiling_app(body: bytes) -> Starlette:
    """The pre-serialized answer, as fast as Starlette can send it."""

    async def answer(request: Request) -> Response:
        return Response(body, media_type=ACCEPT)

    return Starlette(routes=[Route("/graphql", answer), Route("/ready", answer)])


# -- (d) the naive peer ----------------------------------------------------------------------
# The types the query needs; enums are plain strings.


@strawberry.type
class Address:
    line: str | None
    city: str
    postal_code: str | None
    region: str


@strawberry.type
class Clinic:
    name: str
    phone: str | None
    address: Address


@strawberry.type
class Physician:
    display_name: str
    languages: list[str]


@strawberry.type
class Source:
    id: strawberry.ID
    status: str


@strawberry.type
class Slot:
    start: datetime
    end: datetime
    appointment_type: str
    distance_km: float | None
    booking_url: str | None
    clinic: Clinic
    physician: Physician | None
    source: Source


@strawberry.type
class SlotEdge:
    node: Slot


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class SlotConnection:
    total_count: int | None
    edges: list[SlotEdge]
    page_info: PageInfo


@strawberry.input
class GeoPointInput:
    latitude: float
    longitude: float


@strawberry.input
class SlotFilter:
    near: GeoPointInput | None = None
    radius_km: float | None = None


@strawberry.type
class Query:
    @strawberry.field
    def slots(
        self,
        info: Info[None, SlotConnection],
        slot_filter: Annotated[SlotFilter | None, strawberry.argument(name="filter")] = None,
        first: int | None = None,
    ) -> SlotConnection:
        held: SlotConnection = info.root_value
        radius = slot_filter.radius_km if slot_filter and slot_filter.radius_km else 25.0
        edges = [e for e in held.edges if (e.node.distance_km or 0.0) <= radius]
        return SlotConnection(
            total_count=held.total_count, edges=edges[:first], page_info=held.page_info
        )


def slot_from_json(node: dict[str, Any]) -> Slot:
    clinic, physician = node["clinic"], node["physician"]
    return Slot(
        start=datetime.fromisoformat(node["start"]),
        end=datetime.fromisoformat(node["end"]),
        appointment_type=node["appointmentType"],
        distance_km=node["distanceKm"],
        booking_url=node["bookingUrl"],
        clinic=Clinic(
            name=clinic["name"],
            phone=clinic["phone"],
            address=Address(
                line=clinic["address"]["line"],
                city=clinic["address"]["city"],
                postal_code=clinic["address"]["postalCode"],
                region=clinic["address"]["region"],
            ),
        ),
        physician=None
        if physician is None
        else Physician(display_name=physician["displayName"], languages=physician["languages"]),
        source=Source(id=strawberry.ID(node["source"]["id"]), status=node["source"]["status"]),
    )


def connection_from_json(data: dict[str, Any]) -> SlotConnection:
    """The gateway's ``data.slots``, as the peer's objects."""
    slots = data["slots"]
    return SlotConnection(
        total_count=slots["totalCount"],
        edges=[SlotEdge(node=slot_from_json(edge["node"])) for edge in slots["edges"]],
        page_info=PageInfo(
            has_next_page=slots["pageInfo"]["hasNextPage"],
            end_cursor=slots["pageInfo"]["endCursor"],
        ),
    )


class PeerGraphQL(GraphQL[None, SlotConnection]):
    """Strawberry's ASGI view as it comes, with the held answer as root value."""

    def __init__(self, held: SlotConnection) -> None:
        super().__init__(strawberry.Schema(query=Query), graphql_ide=None)
        self.held = held

    async def get_root_value(self, request: Any) -> SlotConnection:
        return self.held


def peer_app(data: dict[str, Any]) -> Starlette:
    async def ready(request: Request) -> Response:
        return Response(b"ok")

    graphql = PeerGraphQL(connection_from_json(data))
    return Starlette(routes=[Route("/graphql", graphql), Route("/ready", ready)])


def serve(kind: str, port: int, payload: Path) -> None:
    """Run (c) or (d) on one uvicorn worker, configured as ``app.py`` runs the gateway."""
    raw = payload.read_bytes()
    app = ceiling_app(raw) if kind == "ceiling" else peer_app(orjson.loads(raw))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# -- the cases -------------------------------------------------------------------------------


@dataclass
class Run:
    """What the cases share: the client, the settings, and what the first case learned."""

    session: aiohttp.ClientSession
    settings: Settings
    workdir: Path
    script: Path
    reference: Any = None  # the gateway's first answer's data
    hit_body: bytes = b""  # what (a) sends

    def wanted(self, case: str) -> bool:
        return case in self.settings.only


async def register(run: Run, gw: Gateway) -> tuple[Fetched, str]:
    """Register the persisted query (POST with query and hash); its answer and APQ GET URL."""
    payload = {"query": query_text(), "extensions": persisted_extensions()}
    return await fetch(run.session, gw.url, payload), apq_get_url(gw.url)


async def cached_case(run: Run, case: str, extra: Sequence[str]) -> Result | None:
    """(a): the response cache. The first one sets the reference data and the hit's bytes,
    and is not loaded (None) unless wanted."""
    label = "(a) response cache, " + ("Redis" if "redis" in extra else "in-process")
    async with gateway(run.session, run.settings, extra) as gw:
        registered, url = await register(run, gw)
        if run.reference is None:
            run.reference = registered.data
        await fetch(run.session, url)  # executed and stored (or a hit stored by an earlier run)
        answer = await fetch(run.session, url)
        if problem := check(registered, run.reference) or check(answer, run.reference, "HIT"):
            return Result(case, label, None, problem)
        run.hit_body = run.hit_body or answer.body
        if not run.wanted(case):
            return None
        pid = gw.process.pid if gw.process else 0
        result = await loaded(run, case, label, url, pid, data_note(answer, run.reference))
        if case == "a":
            await profile(run, case, url, gw)
    return result


async def executed_case(run: Run) -> Result:
    """(b): executed every time, the booking systems' answers cached."""
    label = "(b) executed every time, sources cached"
    # Each request its own execution: identical concurrent ones would share one.
    flags = ["--no-response-cache", "--no-shared-operations"]
    async with gateway(run.session, run.settings, flags) as gw:
        registered, url = await register(run, gw)
        answer = await fetch(run.session, url)
        if problem := check(registered, run.reference) or check(answer, run.reference, "not HIT"):
            return Result("b", label, None, problem)
        pid = gw.process.pid if gw.process else 0
        result = await loaded(run, "b", label, url, pid, data_note(answer, run.reference))
        await profile(run, "b", url, gw)
    return result


async def served_case(run: Run, case: str, label: str, payload: bytes) -> Result:
    """(c) or (d): this module's own server, given the hit's bytes or the reference data."""
    kind = "ceiling" if case == "c" else "peer"
    path = run.workdir / f"{kind}.json"
    path.write_bytes(payload)
    async with server(run.session, kind, path, run.settings.startup_timeout_s) as (url, pid):
        if kind == "peer":
            url = plain_get_url(url)
        answer = await fetch(run.session, url)
        if problem := check(answer, run.reference):
            return Result(case, label, None, problem)
        return await loaded(run, case, label, url, pid)


async def loaded(run: Run, case: str, label: str, url: str, pid: int, note: str = "") -> Result:
    say(f"  {label}: {run.settings.warmup_s} s warm-up, {run.settings.seconds} s measured")
    load = await measure(url, run.settings, run.script, pid)
    return Result(case, label, load, load_problem(load), note)


async def run_cases(settings: Settings) -> list[Result]:
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        with tempfile.TemporaryDirectory(prefix="passerelle-edge-bench-") as tmp:
            workdir = Path(tmp)
            script = workdir / "done.lua"
            script.write_text(LUA_DONE)
            run = Run(session, settings, workdir, script)
            # (a) runs first, wanted or not: it gives the reference and the bytes of (c).
            first = await cached_case(run, "a", ())
            results = [first] if first is not None else []
            if run.reference is None or not run.hit_body:
                return results
            if run.wanted("c"):
                label = "(c) pre-serialized bytes, bare Starlette"
                results.append(await served_case(run, "c", label, run.hit_body))
            if run.wanted("a-redis"):
                redis = ["--cache", "redis", "--redis-url", settings.redis_url]
                if (on_redis := await cached_case(run, "a-redis", redis)) is not None:
                    results.append(on_redis)
            if run.wanted("b"):
                results.append(await executed_case(run))
            if run.wanted("d"):
                label = "(d) plain strawberry, in-memory data"
                results.append(await served_case(run, "d", label, orjson.dumps(run.reference)))
    return results


# -- the profile -----------------------------------------------------------------------------
# Where a sample's time goes: the innermost frame that one of these rules claims
# (a cache backend's frames go to their caller: the response cache or a source read).
PHASES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    # (phase, file prefixes, function-name prefixes)
    ("response cache: key, lookup, rebuilt body", ("edge/middleware/response_cache",), ()),
    (
        "slots resolver: fan-out over cached answers, federation, merge",
        ("sources/", "resolvers/"),
        (),
    ),
    ("GraphQL execution: resolving and completing fields", ("graphql/execution",), ()),
    (
        "parse and validation (cached), operation limits, other extension hooks",
        ("graphql/language", "graphql/validation", "schema/limits", "strawberry/extensions"),
        ("Schema._prepare_operation", "Schema.execute"),
    ),
    (
        "the view: request, APQ, JSON encoding, response",
        ("strawberry/http", "strawberry/asgi", "edge/graphql_view", "edge/documents/apq"),
        (),
    ),
)
OTHER_PHASE = "HTTP server (uvicorn, httptools, uvloop) and Starlette middleware"


def find_py_spy() -> Path:
    found = shutil.which("py-spy")
    path = Path(found) if found else Path(sys.executable).with_name("py-spy")
    if not path.exists():
        raise SystemExit("--profile needs py-spy: pip install py-spy (into the venv only)")
    return path


async def profile(run: Run, case: str, url: str, gw: Gateway) -> None:
    """With --profile: load the case again under ``py-spy record``; print where time goes."""
    out_dir = run.settings.profile_dir
    if out_dir is None or gw.process is None:
        return
    raw = out_dir / f"{case}.collapsed.txt"
    seconds = run.settings.profile_s
    say(f"  profiling ({case}) with py-spy for {seconds} s under the same load -> {raw}")
    argv = [str(find_py_spy()), "record", "--pid", str(gw.process.pid), "--rate", "250"]
    argv += ["--duration", str(seconds), "--format", "raw", "--nonblocking", "--output", str(raw)]
    spy = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    await asyncio.gather(spy.wait(), wrk(url, seconds + 1, run.settings, run.script))
    with contextlib.suppress(OSError):
        say(profile_summary(f"({case})", raw.read_text()))


_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def frame_parts(frame: str) -> tuple[str, str]:
    """A py-spy frame ``name (file:line)`` as (name, file); files are short, as py-spy
    prints them (``sources/search/merge.py``, ``graphql/execution/execute.py``)."""
    match = _FRAME.match(frame.strip())
    return (match["name"], match["file"]) if match else (frame, "?")


def phase_of(frames: Sequence[str]) -> str:
    for frame in reversed(frames):
        name, file = frame_parts(frame)
        if file.startswith("sources/kv/"):
            continue
        for phase, files, names in PHASES:
            if file.startswith(files) or (names and name.startswith(names)):
                return phase
    return OTHER_PHASE


def collapsed(text: str) -> list[tuple[list[str], int]]:
    stacks = []
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def profile_summary(case: str, text: str, top: int = 15) -> str:
    """Samples by phase, and the functions with the most self time."""
    stacks = collapsed(text)
    total = sum(count for _, count in stacks) or 1
    phases: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    for frames, count in stacks:
        phases[phase_of(frames)] += count
        name, file = frame_parts(frames[-1])
        functions[f"{name} ({file})"] += count
    lines = [f"py-spy, {case}: {total} samples (CPU only: waits are not sampled)", "  by phase:"]
    lines += [f"    {100 * n / total:5.1f} %  {k}" for k, n in phases.most_common()]
    lines.append("  self time by function:")
    lines += [f"    {100 * n / total:5.1f} %  {k}" for k, n in functions.most_common(top)]
    return "\n".join(lines)


# -- the table -------------------------------------------------------------------------------


def ratio_verdict(result: Result, by_case: dict[str, Load]) -> tuple[str, str]:
    """The target and the verdict of a case, from the other cases' figures."""
    load, ceiling, peer = result.load, by_case.get("c"), by_case.get("d")
    if load is None:
        return "", f"not measured: {result.problem}"
    note = "".join(f"; {text}" for text in (result.problem, result.note) if text)
    if result.case in ("a", "a-redis") and ceiling is not None:
        share = load.rps / ceiling.rps
        target = ">= 0.50 x (c)" if result.case == "a" else "(reported; (a)'s: >= 0.50 x (c))"
        met = "met" if share >= 0.5 else f"missed by {0.5 * ceiling.rps - load.rps:.0f} req/s"
        return target, f"{met}: {share:.2f} x (c){note}"
    if result.case == "b" and peer is not None:
        times = load.rps / peer.rps
        verdict = "met" if times >= 1 else f"missed: {times:.2f} x (d)"
        stretch = "stretch met" if times >= 2 else "stretch missed"
        return ">= 1 x (d), stretch 2 x (d)", f"{verdict}, {stretch}: {times:.2f} x (d){note}"
    return "", note.removeprefix("; ")


def rows(results: Sequence[Result]) -> list[Row]:
    by_case = {r.case: r.load for r in results if r.load is not None}
    ceiling = by_case.get("c")
    out = []
    for result in results:
        target, verdict = ratio_verdict(result, by_case)
        load = result.load
        if load is None:
            out.append(Row(result.label, "-", "-", "-", "-", "-", "-", target, verdict))
            continue
        ratio = f"{load.rps / ceiling.rps:.2f}" if ceiling else "-"
        out.append(
            Row(
                result.label,
                f"{load.rps:,.0f}",
                f"{load.p50_ms:.2f}",
                f"{load.p99_ms:.2f}",
                f"{load.bytes_per_response:,.0f}",
                f"{load.cpu_us():,.0f} ({load.cpu_us(system_only=True):,.0f})",
                ratio,
                target,
                verdict,
            )
        )
    return out


def table(table_rows: Sequence[Row]) -> str:
    header = Row(
        "case",
        "requests/s",
        "p50 ms",
        "p99 ms",
        "bytes/response",
        "server CPU µs/request (system)",
        "ratio to (c)",
        "target",
        "verdict",
    )
    cells = [tuple(asdict(r).values()) for r in (header, *table_rows)]
    widths = [max(len(str(cell[i])) for cell in cells) for i in range(len(cells[0]))]
    lines = [
        "| " + " | ".join(str(c).ljust(w) for c, w in zip(cell, widths, strict=True)) + " |"
        for cell in cells
    ]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(lines)


# -- command line ----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, Settings]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 s per case (1 s warm-up)")
    parser.add_argument("--seconds", type=int, help="measured seconds per case (10)")
    parser.add_argument("--warmup", type=int, help="warm-up seconds per case (2)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--scale", type=float, default=0.05, help="demo world scale (0.05)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--only", default=",".join(CASES), help="cases to load: a,a-redis,b,c,d")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--profile", type=Path, help="py-spy over (a) and (b), stacks written here")
    parser.add_argument("--profile-seconds", type=int, default=15)
    parser.add_argument("--startup-timeout", type=float, default=180)
    parser.add_argument(
        "--development",
        action="store_true",
        help="the gateway in development mode, request logs at warning (default: production,"
        " /metrics on, JSON request logs)",
    )
    parser.add_argument("--serve", choices=["ceiling", "peer"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    only = tuple(case.strip() for case in args.only.split(",") if case.strip())
    if unknown := sorted(set(only) - set(CASES)):
        parser.error(f"unknown case(s) {', '.join(unknown)}; pick among {', '.join(CASES)}")
    settings = Settings(
        seconds=args.seconds or (3 if args.quick else 10),
        warmup_s=args.warmup if args.warmup is not None else (1 if args.quick else 2),
        threads=args.threads,
        connections=args.connections,
        scale=args.scale,
        redis_url=args.redis_url,
        startup_timeout_s=args.startup_timeout,
        profile_dir=args.profile,
        profile_s=args.profile_seconds,
        only=only,
        operator=not args.development,
    )
    return args, settings


def main(argv: Sequence[str] | None = None) -> None:
    args, settings = parse_args(argv)
    if args.serve:
        serve(args.serve, args.port, args.file)
        return
    require_wrk()
    if settings.profile_dir is not None:
        find_py_spy()
        settings.profile_dir.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    results = asyncio.run(run_cases(settings))
    load_after = os.getloadavg()[0]
    table_rows = rows(results)
    print(table(table_rows))
    context = (
        f"wrk -t{settings.threads} -c{settings.connections}, {settings.warmup_s} s warm-up + "
        f"{settings.seconds} s per case; demo world scale {settings.scale:g}; {os.cpu_count()} "
        f"CPUs, load average {load_before:.2f} before, {load_after:.2f} after"
    )
    print(context)
    if args.json is not None:
        document = {
            "settings": {k: str(v) for k, v in asdict(settings).items()},
            "context": context,
            "results": [asdict(r) for r in results],
            "rows": [asdict(r) for r in table_rows],
        }
        args.json.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
