"""Benchmark and soak of the fan-out engine (issue 4, section 7), measured from outside.

    python benchmarks/fanout.py                     # about 3 minutes
    python benchmarks/fanout.py --quick             # seconds: a small world, short runs
    python benchmarks/fanout.py --json fanout.json  # the same rows as JSON too

Run by hand, not by CI. Each part starts its own ``python app.py`` (its demo
systems included) on free loopback ports with a throw-away registry, so a
demo already running on 8000 and 8101-8103 is left alone, and prints its
figures into one table:

1. Fan-out overhead. demo-fhir answers 50 ms late, demo-rest 100 ms late and
   the cache is off (``--cache off``, when the gateway has that option). A
   "slots near me" query around Montreal or Quebec City, at a new point for
   every request so no two are alike; sequentially (1 client), then open loop
   at 20 requests/s.

       overhead = gateway latency (client-measured) - slowest upstream's service time

   Every demo system times the requests it serves, from arrival to answer,
   injected latency included, and lists them on ``GET /_stats?since=T``
   (``examples/request_stats.py``). For a gateway request sent at t0 and
   answered at t1, a source's service time is the length of the union of the
   [start, end] intervals of its requests that started within [t0, t1]: calls
   in sequence add up, concurrent calls count once. The slowest upstream is
   the source with the longest one (demo-ssl is left out: it answers from the
   gateway's own index, and its background polling is no part of a request).
   What is left is the gateway's own time before, between and after upstream
   calls (the table splits it so), loopback hops included: each hop's HTTP
   parsing and writing, outside the upstream's timing middleware, counts as
   overhead; a direct call to demo-fhir gives the price of one hop. At 20
   requests/s the requests overlap and the gateway passes no request id
   upstream, so calls cannot be pinned to one request: only raw latency is
   given there, beside the upstreams' per-call service time.

2. Batching. No faults, cache off. Upstream calls per query (the demo
   systems' ``/_stats`` request counters, read before and after each query)
   for 5, 50 and 100 slots with their clinic and physician, and for 5 and 50
   clinics with physicians and ``nextSlots``. They must not grow with the
   result.

3. Soak. demo-rest hangs, demo-fhir answers half its calls with 503, default
   cache. Five "near me" queries (at the first points where demo-fhir has
   slots among the first ten when nothing fails, as checked in part 2)
   repeated open loop at 20 requests/s for ``--soak-seconds``: every answer
   within the 3 s fan-out deadline + 50 ms, and at least 95 % of the answers
   carry a slot whose source is demo-fhir.

Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from dataclasses import asdict, astuple, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
FHIR, REST, SSL = "demo-fhir", "demo-rest", "demo-ssl"
DEMO_OFFSETS = {FHIR: 0, REST: 1, SSL: 2}  # ports after --demo-base-port, as app.py assigns them
TIMED = (FHIR, REST)  # the demo systems a query calls while it runs
LIMIT_MS = 3050.0  # the gateway's fan-out deadline (3 s) plus 50 ms
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}

Near = tuple[float, float]
CITIES: dict[str, Near] = {"Montreal": (45.5017, -73.5673), "Quebec City": (46.8139, -71.2080)}
SOAK_QUERIES = 5
SOAK_CANDIDATES: tuple[Near, ...] = (  # the first five with demo-fhir slots are soaked
    (45.5017, -73.5673),  # Montreal
    (46.8139, -71.2080),  # Quebec City
    (45.6066, -73.7124),  # Laval
    (45.5312, -73.5181),  # Longueuil
    (45.4765, -75.7013),  # Gatineau
    (45.4042, -71.8929),  # Sherbrooke
    (46.3432, -72.5477),  # Trois-Rivieres
    (46.8033, -71.1779),  # Levis
    (45.7804, -74.0036),  # Saint-Jerome
    (45.8803, -72.4843),  # Drummondville
    (48.4284, -71.0685),  # Saguenay
    (45.4001, -72.7325),  # Granby
)
NEAR_ME = """query NearMe($near: GeoPointInput!) {
  slots(filter: {near: $near, radiusKm: 10}, first: 10) {
    totalCount
    edges { node {
      start end appointmentType distanceKm bookingUrl
      clinic { name phone address { line city postalCode region } }
      physician { displayName languages }
      source { id status }
    } }
    pageInfo { hasNextPage endCursor }
  }
}"""
SLOTS = """query Slots($first: Int!) {
  slots(filter: {near: {latitude: 45.5017, longitude: -73.5673}, radiusKm: 50}, first: $first) {
    edges { node {
      start end
      clinic { name phone address { line city postalCode } }
      physician { displayName languages }
    } }
  }
}"""
CLINICS = """query Clinics($first: Int!) {
  clinics(first: $first) {
    edges { node {
      name
      physicians { displayName languages }
      nextSlots(first: 3) { start clinic { name } physician { displayName } }
    } }
  }
}"""
SOURCES = "{ sources { id protocol status } }"
HOP_NOTE = "client to demo-fhir, less its service time, one after each request"


@dataclass(frozen=True, slots=True)
class Settings:
    scale: float
    warmup: int
    sequential: int
    rate: float
    open_loop_s: float
    soak_s: float
    startup_timeout_s: float
    operator: bool = True  # as an operator runs it (issue 17, item 7); False: development

    def mode_args(self) -> list[str]:
        """Production, an anonymous rate no client here reaches, ``/metrics`` on its own
        port, JSON request logs (to the gateway's log file), traces off."""
        if not self.operator:
            return []
        return ["--env", "production", "--anonymous-rate", "100000", "--log-level", "info",
                "--metrics-port", str(free_ports(1))]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Row:
    part: str
    measure: str
    value: str
    target: str = ""
    verdict: str = ""


@dataclass(frozen=True, slots=True)
class Answer:
    """One GraphQL request as the client saw it."""

    start: float  # time.time() when sent
    ms: float
    status: int  # HTTP status; 0 when no answer came
    body: dict[str, Any] | None

    @property
    def end(self) -> float:
        return self.start + self.ms / 1000

    @property
    def errors(self) -> list[dict[str, Any]]:
        return list((self.body or {}).get("errors") or [])

    @property
    def data(self) -> dict[str, Any]:
        return dict((self.body or {}).get("data") or {})

    def slot_sources(self) -> list[str]:
        edges = (self.data.get("slots") or {}).get("edges") or []
        return [edge["node"]["source"]["id"] for edge in edges]


@dataclass(frozen=True, slots=True)
class Call:
    """One upstream request as the demo system served it."""

    start: float
    end: float


# -- the gateway under test ------------------------------------------------------------------


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free ports, below Linux's ephemeral range."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 32000)
        if all(_port_free(base + i) for i in range(count)):
            return base
    raise SystemExit(f"no {count} consecutive free ports found")


def gateway_has_cache_option() -> bool:
    done = subprocess.run(
        [sys.executable, "app.py", "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return "--cache" in done.stdout


@dataclass
class Gateway:
    """``python app.py`` with its demo systems, on free ports, logging to a file."""

    faults: dict[str, str]
    scale: float
    extra: Sequence[str] = ()
    base_port: int = field(default_factory=lambda: free_ports(4))
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.base_port + 3}/graphql"

    def stats_url(self, source: str) -> str:
        return f"http://127.0.0.1:{self.base_port + DEMO_OFFSETS[source]}/_stats"

    def start(self, workdir: Path) -> None:
        argv = [sys.executable, "app.py", "--port", str(self.base_port + 3)]
        argv += ["--demo-base-port", str(self.base_port), "--scale", f"{self.scale:g}"]
        argv += ["--database-url", f"sqlite:///{workdir / 'registry.sqlite3'}"]
        # Still demo systems: their slots change only when a benchmark changes them.
        argv += ["--log-level", "warning", "--demo-churn", "0", *self.extra]
        for source, spec in self.faults.items():
            argv += ["--demo-faults", f"{source}={spec}"]
        self.log = workdir / "gateway.log"
        with self.log.open("wb") as log:
            # Its own process group: Ctrl-C here does not reach it, and stop() can
            # take the demo processes down with it if it will not go by itself.
            env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}  # no traces
            self.process = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def log_tail(self, lines: int = 20) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    async def wait_ready(self, session: aiohttp.ClientSession, timeout_s: float) -> None:
        """Until every bulk feed is UP (loaded); fail with the log otherwise. Live
        sources are DEGRADED until first called: the gateway answering is enough."""
        deadline = time.monotonic() + timeout_s
        statuses: dict[str, str] = {}
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise SystemExit(f"the gateway exited:\n{self.log_tail()}")
            answer = await post(session, self.url, SOURCES)
            sources = answer.data.get("sources") or []
            statuses = {s["id"]: s["status"] for s in sources}
            feeds = [s for s in sources if s["protocol"] == "SMART_SCHEDULING_LINKS"]
            if statuses and all(s["status"] == "UP" for s in feeds):
                return
            await asyncio.sleep(0.25)
        raise SystemExit(f"bulk feeds not UP in {timeout_s:g} s: {statuses}\n{self.log_tail()}")


@contextlib.asynccontextmanager
async def running(
    session: aiohttp.ClientSession, gateway: Gateway, settings: Settings
) -> AsyncIterator[Gateway]:
    faults = ", ".join(f"{k}={v}" for k, v in gateway.faults.items()) or "no faults"
    say(f"  starting the gateway ({faults}; {' '.join(gateway.extra) or 'default options'})")
    with tempfile.TemporaryDirectory(prefix="passerelle-fanout-") as workdir:
        gateway.start(Path(workdir))
        try:
            await gateway.wait_ready(session, settings.startup_timeout_s)
            yield gateway
        finally:
            gateway.stop()


# -- the client ------------------------------------------------------------------------------


async def post(
    session: aiohttp.ClientSession, url: str, query: str, variables: dict[str, Any] | None = None
) -> Answer:
    payload = orjson.dumps({"query": query, "variables": variables or {}})
    start, began = time.time(), time.perf_counter()
    try:
        async with session.post(url, data=payload, headers=JSON_HEADERS) as response:
            raw = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError):
        return Answer(start, (time.perf_counter() - began) * 1000, 0, None)
    ms = (time.perf_counter() - began) * 1000
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    return Answer(start, ms, status, body if isinstance(body, dict) else None)


async def request_count(session: aiohttp.ClientSession, gateway: Gateway, source: str) -> int:
    async with session.get(gateway.stats_url(source)) as response:
        return int((await response.json())["requests"])


async def served_calls(
    session: aiohttp.ClientSession, gateway: Gateway, source: str, since: float
) -> list[Call] | None:
    """The source's requests that started at ``since`` or later; None if it lists none."""
    async with session.get(gateway.stats_url(source), params={"since": repr(since)}) as response:
        body = await response.json()
    if "recent" not in body:
        return None
    return [Call(r["start"], r["start"] + r["ms"] / 1000) for r in body["recent"]]


async def open_loop(
    rate: float, seconds: float, send: Callable[[int], Coroutine[Any, Any, Answer]]
) -> list[Answer]:
    """``rate`` requests a second on a fixed schedule, whether earlier ones answered or not."""
    tasks: list[asyncio.Task[Answer]] = []
    began = time.perf_counter()
    for i in range(max(1, round(rate * seconds))):
        delay = began + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(i)))
    return list(await asyncio.gather(*tasks))


def random_near(rng: random.Random) -> dict[str, Any]:
    """A point within about 5 km of downtown Montreal or Quebec City."""
    latitude, longitude = CITIES[rng.choice(sorted(CITIES))]
    return {
        "near": {
            "latitude": round(latitude + rng.uniform(-0.05, 0.05), 6),
            "longitude": round(longitude + rng.uniform(-0.05, 0.05), 6),
        }
    }


# -- figures ---------------------------------------------------------------------------------


def union_ms(calls: Iterable[Call], lo: float, hi: float) -> float:
    """Length of the union of the calls that started in [lo, hi], clipped to it, in ms."""
    spans = sorted((c.start, min(c.end, hi)) for c in calls if lo <= c.start <= hi)
    total, open_start, open_end = 0.0, math.nan, -math.inf
    for start, end in spans:
        if start > open_end:
            if open_end > -math.inf:
                total += open_end - open_start
            open_start, open_end = start, end
        else:
            open_end = max(open_end, end)
    if open_end > -math.inf:
        total += open_end - open_start
    return total * 1000


def rounds(calls: Iterable[Call], lo: float, hi: float) -> int:
    """How many disjoint groups the calls that started in [lo, hi] make: calls in
    sequence are a group each, overlapping ones one."""
    spans = sorted((c.start, c.end) for c in calls if lo <= c.start <= hi)
    groups, open_end = 0, -math.inf
    for start, end in spans:
        if start > open_end:
            groups += 1
        open_end = max(open_end, end)
    return groups


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 1]); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def ms_pair(values: Sequence[float]) -> str:
    return f"{percentile(values, 0.5):.1f} / {percentile(values, 0.99):.1f} ms"


def below(value: float, target: float) -> str:
    if math.isnan(value):
        return "n/a"
    return "met" if value < target else f"missed by {value - target:.1f} ms"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- 1. fan-out overhead ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timed:
    """A gateway request beside the upstream calls it made."""

    answer: Answer
    upstream_ms: float  # the slowest source's service time
    before_ms: float  # from sending to the first upstream call
    after_ms: float  # from the end of the last upstream call to the answer
    hops: int = 1  # loopback hops on the critical path: the client's, and each round of
    # the slowest source's calls (calls in sequence: one hop each; concurrent: one)

    def net_ms(self, hop_ms: float) -> float:
        """The overhead less its critical path's hops, each at ``hop_ms``."""
        return self.overhead_ms - self.hops * hop_ms

    @property
    def overhead_ms(self) -> float:
        return self.answer.ms - self.upstream_ms

    @property
    def between_ms(self) -> float:
        return self.overhead_ms - self.before_ms - self.after_ms


def timed(answer: Answer, calls: dict[str, list[Call]]) -> Timed:
    lo, hi = answer.start, answer.end
    mine = [c for source_calls in calls.values() for c in source_calls if lo <= c.start <= hi]
    slowest = max(calls.values(), key=lambda source_calls: union_ms(source_calls, lo, hi))
    upstream = union_ms(slowest, lo, hi)
    if not mine:  # answered without calling anyone
        return Timed(answer, 0.0, answer.ms, 0.0)
    before = (min(c.start for c in mine) - lo) * 1000
    after = (hi - min(hi, max(c.end for c in mine))) * 1000
    return Timed(answer, upstream, before, after, 1 + rounds(slowest, lo, hi))


async def sequential(
    session: aiohttp.ClientSession, gateway: Gateway, settings: Settings, rng: random.Random
) -> tuple[list[Answer], list[Timed], list[str], list[float]]:
    """Answers, the same beside their upstream calls, the sources that list no timings,
    and one loopback hop measured after each request (the same conditions as its own)."""
    answers: list[Answer] = []
    measured: list[Timed] = []
    untimed: set[str] = set()
    hops: list[float] = []
    for i in range(settings.warmup + settings.sequential):
        answer = await post(session, gateway.url, NEAR_ME, random_near(rng))
        if i < settings.warmup:
            continue
        answers.append(answer)
        calls: dict[str, list[Call]] = {}
        for source in TIMED:
            listed = await served_calls(session, gateway, source, answer.start)
            if listed is None:
                untimed.add(source)
            else:
                calls[source] = listed
        if not untimed:
            measured.append(timed(answer, calls))
        hops += await hop_ms(session, gateway, 1)
    return answers, measured if not untimed else [], sorted(untimed), hops


async def hop_ms(session: aiohttp.ClientSession, gateway: Gateway, n: int) -> list[float]:
    """One loopback HTTP hop: a direct call to demo-fhir, less its own service time."""
    url = gateway.stats_url(FHIR).removesuffix("/_stats") + "/fhir/metadata"
    hops = []
    for _ in range(n):
        start, began = time.time(), time.perf_counter()
        async with session.get(url) as response:
            await response.read()
        ms = (time.perf_counter() - began) * 1000
        calls = await served_calls(session, gateway, FHIR, start) or []
        hops += [ms - (c.end - c.start) * 1000 for c in calls[:1]]
    return hops


async def per_call_ms(
    session: aiohttp.ClientSession, gateway: Gateway, since: float
) -> dict[str, list[float] | None]:
    """Each source's service time per call since ``since``; None if it lists no timings."""
    out: dict[str, list[float] | None] = {}
    for source in TIMED:
        calls = await served_calls(session, gateway, source, since)
        out[source] = None if calls is None else [(c.end - c.start) * 1000 for c in calls]
    return out


def answer_problems(part: str, answers: Sequence[Answer]) -> list[Row]:
    failed = sum(1 for a in answers if a.status != 200 or a.errors or not a.data)
    if not failed:
        return []
    value = f"{failed} of {len(answers)} failed or carried errors"
    return [Row(part, "answers", value, "all with data", "see the gateway log")]


def sequential_rows(
    answers: Sequence[Answer],
    measured: Sequence[Timed],
    untimed: Sequence[str],
    hops: Sequence[float],
    cache: str,
) -> list[Row]:
    part = "fan-out, 1 client"
    n = len(answers)
    rows = [Row(part, f"latency p50 / p99 ({n} requests)", ms_pair([a.ms for a in answers]))]
    if untimed:
        why = f"{', '.join(untimed)}: /_stats lists no timings"
        return [*rows, Row(part, "overhead p50 / p99", "n/a", "< 5 / < 20 ms", why)]
    upstream = ms_pair([t.upstream_ms for t in measured])
    overheads = [t.overhead_ms for t in measured]
    p50, p99 = percentile(overheads, 0.5), percentile(overheads, 0.99)
    parts = [
        percentile([t.before_ms for t in measured], 0.5),
        percentile([t.between_ms for t in measured], 0.5),
        percentile([t.after_ms for t in measured], 0.5),
    ]
    split = " / ".join(f"{ms:.1f}" for ms in parts) + " ms"
    hop = percentile(hops, 0.5)
    nets = [t.net_ms(hop) for t in measured]
    net50, net99 = percentile(nets, 0.5), percentile(nets, 0.99)
    on_path = sorted({t.hops for t in measured})
    counted = f"{' or '.join(map(str, on_path))} hops of {hop:.2f} ms (the hop p50 below)"
    return [
        *rows,
        Row(part, "slowest upstream p50 / p99", upstream, "", cache),
        Row(part, "overhead less the hops, p50", f"{net50:.1f} ms", "< 2 ms", below(net50, 2)),
        Row(part, "overhead less the hops, p99", f"{net99:.1f} ms", "< 8 ms", below(net99, 8)),
        Row(part, "loopback hops on the critical path", counted),
        Row(part, "overhead p50 (raw)", f"{p50:.1f} ms", "< 5 ms", below(p50, 5)),
        Row(part, "overhead p99 (raw)", f"{p99:.1f} ms", "< 20 ms", below(p99, 20)),
        Row(part, "overhead p50: before / between / after calls", split),
        Row(part, "one loopback HTTP hop p50 / p99", ms_pair(hops), "", HOP_NOTE),
        *answer_problems(part, answers),
    ]


def open_loop_rows(
    rate: float, loaded: Sequence[Answer], service: dict[str, list[float] | None]
) -> list[Row]:
    part = f"fan-out, {rate:g} req/s open loop"
    latencies = [a.ms for a in loaded]
    in_flight = rate * statistics.fmean(latencies) / 1000
    note = f"~{in_flight:.1f} in flight: calls not attributable, so no overhead"
    rows = [Row(part, f"latency p50 / p99 ({len(loaded)} requests)", ms_pair(latencies), "", note)]
    for source, values in service.items():
        if values is None:
            rows.append(Row(part, f"{source} per call", "n/a", "", "/_stats lists no timings"))
        else:
            rows.append(Row(part, f"{source} per call p50 / p99", ms_pair(values)))
    return [*rows, *answer_problems(part, loaded)]


async def fanout_overhead(
    session: aiohttp.ClientSession, settings: Settings, cache_off: Sequence[str]
) -> list[Row]:
    say("1. fan-out overhead")
    faults = {FHIR: "latency:50ms", REST: "latency:100ms"}
    gateway = Gateway(faults, settings.scale, [*cache_off, *settings.mode_args()])
    rng = random.Random(2026)
    async with running(session, gateway, settings):
        answers, measured, untimed, hops = await sequential(session, gateway, settings, rng)
        say(f"  open loop at {settings.rate:g}/s for {settings.open_loop_s:g} s")
        since = time.time()
        loaded = await open_loop(
            settings.rate,
            settings.open_loop_s,
            lambda _: post(session, gateway.url, NEAR_ME, random_near(rng)),
        )
        service = await per_call_ms(session, gateway, since)
    cache = "cache off" if cache_off else "no --cache option: nothing cached"
    return [
        *sequential_rows(answers, measured, untimed, hops, cache),
        *open_loop_rows(settings.rate, loaded, service),
    ]


# -- 2. batching -----------------------------------------------------------------------------


def result_size(answer: Answer) -> tuple[int, str]:
    """The number of top-level objects in the answer, and its size in words."""
    if "slots" in answer.data:
        slots = len(answer.data["slots"]["edges"])
        return slots, f"{slots} slots"
    clinics = [edge["node"] for edge in (answer.data.get("clinics") or {}).get("edges") or []]
    slots = sum(len(clinic["nextSlots"]) for clinic in clinics)
    return len(clinics), f"{len(clinics)} clinics, {slots} nextSlots"


def batching_verdict(answer: Answer, total: int, smallest: float, objects: int) -> str:
    verdict = "flat" if total <= smallest else f"grows: {total} vs {smallest:g} calls"
    if total > smallest and total < objects:
        verdict += f", fewer than its {objects} objects"
    if answer.errors or answer.status != 200:
        verdict += f"; HTTP {answer.status}, {len(answer.errors)} errors"
    return verdict


async def calls_per_query(
    session: aiohttp.ClientSession, gateway: Gateway, query: str, first: int, repeat: int = 3
) -> tuple[dict[str, set[int]], Answer]:
    """Upstream calls per source for each of ``repeat`` runs of the query."""
    counts: dict[str, set[int]] = {source: set() for source in TIMED}
    answer = None
    for _ in range(repeat):
        before = {source: await request_count(session, gateway, source) for source in TIMED}
        answer = await post(session, gateway.url, query, {"first": first})
        for source in TIMED:
            counts[source].add(await request_count(session, gateway, source) - before[source])
    assert answer is not None
    return counts, answer


def spread(values: set[int]) -> str:
    return str(min(values)) if len(values) == 1 else f"{min(values)}-{max(values)}"


async def batching(
    session: aiohttp.ClientSession, settings: Settings, cache_off: Sequence[str]
) -> tuple[list[Row], list[Near]]:
    """The rows, and the soak's points: those whose healthy answer carries demo-fhir slots."""
    say("2. batching")
    gateway = Gateway({}, settings.scale, [*cache_off, *settings.mode_args()])
    rows = []
    async with running(session, gateway, settings):
        for name, query, sizes in (("slots", SLOTS, (5, 50, 100)), ("clinics", CLINICS, (5, 50))):
            smallest = math.inf
            for first in sizes:
                counts, answer = await calls_per_query(session, gateway, query, first)
                total = sum(max(values) for values in counts.values())
                smallest = min(smallest, total)
                value = " + ".join(f"{s} {spread(v)}" for s, v in counts.items())
                objects, size = result_size(answer)
                verdict = batching_verdict(answer, total, smallest, objects)
                measure = f"{name}(first: {first}): {size}"
                rows.append(Row("batching", measure, f"{value} calls", "flat", verdict))
        points = await points_with_fhir_slots(session, gateway)
    return rows, points


async def points_with_fhir_slots(session: aiohttp.ClientSession, gateway: Gateway) -> list[Near]:
    """Up to five soak points where demo-fhir has slots among the first ten, when healthy."""
    found: list[Near] = []
    for point in SOAK_CANDIDATES:
        answer = await post(session, gateway.url, NEAR_ME, near_variables(point))
        if FHIR in answer.slot_sources():
            found.append(point)
        if len(found) == SOAK_QUERIES:
            break
    return found


# -- 3. soak ---------------------------------------------------------------------------------


def near_variables(point: Near) -> dict[str, Any]:
    return {"near": {"latitude": point[0], "longitude": point[1]}}


def error_codes(answers: Iterable[Answer]) -> str:
    codes: dict[str, int] = {}
    for answer in answers:
        for error in answer.errors:
            extensions = error.get("extensions") or {}
            key = f"{extensions.get('source', '-')} {extensions.get('code', '?')}"
            codes[key] = codes.get(key, 0) + 1
    return ", ".join(f"{key} x{n}" for key, n in sorted(codes.items())) or "none"


async def soak(
    session: aiohttp.ClientSession, settings: Settings, points: Sequence[Near]
) -> list[Row]:
    say(f"3. soak: {settings.soak_s:g} s at {settings.rate:g}/s")
    part = f"soak {settings.soak_s:g} s, {settings.rate:g} req/s"
    if not points:
        return [Row(part, "queries", "none", "", "no point with demo-fhir slots: raise --scale")]
    gateway = Gateway({REST: "hang", FHIR: "errors:0.5"}, settings.scale, settings.mode_args())
    async with running(session, gateway, settings):
        answers = await open_loop(
            settings.rate,
            settings.soak_s,
            lambda i: post(session, gateway.url, NEAR_ME, near_variables(points[i % len(points)])),
        )
    return soak_rows(part, answers, len(points))


def soak_rows(part: str, answers: Sequence[Answer], queries: int) -> list[Row]:
    n = len(answers)
    within = sum(a.status == 200 and a.ms <= LIMIT_MS for a in answers)
    answered = [a for a in answers if a.status == 200 and a.data]
    with_fhir = sum(FHIR in a.slot_sources() for a in answered)
    share = 100 * with_fhir / len(answered) if answered else 0.0
    http_errors = sum(a.status != 200 for a in answers)
    worst = max(a.ms for a in answers)
    late = "met" if worst <= LIMIT_MS else f"missed by {worst - LIMIT_MS:.0f} ms"
    return [
        Row(part, "requests", f"{n} over {queries} near-me queries", "", default_cache()),
        Row(
            part,
            f"answered within {LIMIT_MS:.0f} ms",
            f"{within} ({100 * within / n:.1f} %)",
            "100 %",
            "met" if within == n else f"missed: {n - within} late or failed",
        ),
        Row(
            part,
            "answers carrying demo-fhir slots",
            f"{with_fhir} ({share:.1f} %)",
            ">= 95 %",
            "met" if share >= 95 else f"missed by {95 - share:.1f} points",
        ),
        Row(part, "max latency", f"{worst:.0f} ms", f"<= {LIMIT_MS:.0f} ms", late),
        Row(part, "HTTP errors (or no answer)", str(http_errors), "0"),
        Row(part, "GraphQL errors per source and code", error_codes(answers)),
    ]


def default_cache() -> str:
    """The cache the gateway picks without --cache (see ``python app.py --help``)."""
    if choice := os.environ.get("PASSERELLE_CACHE"):
        return f"cache {choice} ($PASSERELLE_CACHE)"
    return "cache redis" if os.environ.get("PASSERELLE_REDIS_URL") else "cache memory (default)"


# -- the table -------------------------------------------------------------------------------


def table(rows: Sequence[Row]) -> str:
    header = Row("part", "measure", "value", "target", "verdict / note")
    cells = [astuple(row) for row in (header, *rows)]
    widths = [max(len(cell[i]) for cell in cells) for i in range(5)]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)) + " |"
        for cell in cells
    ]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> tuple[Settings, Path | None, bool]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small world and short runs")
    parser.add_argument("--scale", type=float, help="demo world scale (0.05; --quick: 0.02)")
    parser.add_argument("--soak-seconds", type=float, help="soak duration (60; --quick: 5)")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    parser.add_argument(
        "--startup-timeout", type=float, default=180, help="seconds for every source to be UP"
    )
    parser.add_argument(
        "--development",
        action="store_true",
        help="the gateway in development mode, request logs off (default: as an operator runs"
        " it: production, /metrics on, JSON request logs)",
    )
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    settings = Settings(
        scale=args.scale or (0.02 if quick else 0.05),
        warmup=5 if quick else 20,
        sequential=20 if quick else 200,
        rate=20.0,
        open_loop_s=3 if quick else 15,
        soak_s=args.soak_seconds or (5 if quick else 60),
        startup_timeout_s=args.startup_timeout,
        operator=not args.development,
    )
    return settings, args.json, quick


async def run(settings: Settings) -> list[Row]:
    cache_off = ("--cache", "off") if gateway_has_cache_option() else ()
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        rows = await fanout_overhead(session, settings, cache_off)
        batching_rows, points = await batching(session, settings, cache_off)
        rows += batching_rows
        rows += await soak(session, settings, points)
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    settings, json_path, quick = parse_args(argv)
    load_before = os.getloadavg()[0]
    rows = asyncio.run(run(settings))
    load_after = os.getloadavg()[0]
    print(table(rows))
    context = (
        f"demo world scale {settings.scale:g}{' (--quick)' if quick else ''}; "
        f"{os.cpu_count()} CPUs, load average {load_before:.2f} before, {load_after:.2f} after"
    )
    print(context)
    if json_path is not None:
        document = {
            "settings": asdict(settings),
            "context": context,
            "rows": [asdict(r) for r in rows],
        }
        json_path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
