"""Passerelle beside its peer, Hive Gateway, over the same upstream (issue 17, item 5).

    python benchmarks/peer.py                   # three cases, 4 rounds each, about 6 min
    python benchmarks/peer.py --quick           # 2 rounds of 5 s
    python benchmarks/peer.py --cases c --rounds 6 --json peer.json

Run by hand, not by CI. Needs Node 20 and npm (the peer is installed by this script
with ``npm ci`` into ``benchmarks/peer/node_modules``, from the committed
``package-lock.json``) and ``wrk`` (Debian: ``apt-get install wrk``).

The upstream is the demo REST API (``python -m examples.demo_rest``, scale 0.05,
its per-key rate limit raised so that it never answers 429), started here. Beside
it, each case starts:

- Passerelle as an operator runs it: ``python app.py --no-demo`` with one source
  (that API), one uvicorn worker, ``--env production`` with an anonymous rate high
  enough for the load, ``/metrics`` on its own port, JSON request logs to a file,
  traces off;
- Hive Gateway 2.x (``@graphql-hive/gateway``, one process, as it starts by
  default) over a GraphQL Mesh JSON-schema composition of the same API
  (``benchmarks/peer/mesh.config.ts``, composed here with ``mesh-compose``), the
  slot's clinic and physician looked up in batches through Mesh's in-context SDK
  (``benchmarks/peer/gateway.config.ts``).

Both are first asked the same question, "the next 20 free slots within 10 km of
downtown Montreal in the next 3 days, with clinic name and city and physician
name", and must answer the same slots (ties at equal start times may come in
another order). Then ``wrk -t1 -c8`` loads them, rounds alternated A B A B (a
warm-up, then the measured run), for three cases:

(a) ``executed``: searches at varied points (a wrk script rotates 64 points around
    downtown), each request its own work: Passerelle ``--cache off
    --no-response-cache``, Hive without cache or deduplication;
(b) ``dedup``: the same search from every connection: Passerelle's single-flight of
    identical upstream reads (``--cache off --no-response-cache``) against Hive's
    inbound in-flight request deduplication (``inboundInflightRequestDeduplication``);
(c) ``cached``: one persisted query by hash over GET: Passerelle's response cache
    (defaults: source answers cached 30 s) against Hive's response cache plugin
    behind its APQ plugin (listed in that order; the same 30 s TTL).

For each run: requests/s, p50/p99 (wrk), the server's CPU per request (user +
system, summed over all of the gateway's processes, from ``/proc``), upstream calls
per request (the demo API's ``GET /_stats``) and RSS after the run (summed). The
machine is shared: the load average is printed with each run, and each figure's
spread over the rounds. Progress goes to stderr, the tables to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp

# ruff: noqa: RUF001  (the tables' en dashes and multiplication signs are meant)
from fanout import free_ports
from http_edge import LUA_DONE, Load, parse_wrk, require_wrk

ROOT = Path(__file__).resolve().parents[1]
PEER_DIR = Path(__file__).resolve().parent / "peer"
MONTREAL = ZoneInfo("America/Montreal")
DOWNTOWN = (45.5017, -73.5673)
KEY_ENV = "PASSERELLE_DEMO_REST_KEY"
CASES = ("a", "b", "c")
CASE_NAMES = {"a": "executed", "b": "dedup", "c": "cached"}
GATEWAYS = ("passerelle", "hive")
# Case (c) only: Passerelle's cached bytes from a bare Starlette endpoint on one uvicorn
# worker (``http_edge.py --serve ceiling``): what the Python HTTP stack alone costs.
CEILING = "ceiling"

PASSERELLE_QUERY = """\
query NearMe($near: GeoPointInput!, $after: DateTime!, $before: DateTime!) {
  slots(filter: {near: $near, radiusKm: 10, startsAfter: $after, startsBefore: $before},
        first: 20) {
    edges { node { start clinic { name address { city } } physician { displayName } } }
  }
}
"""
HIVE_QUERY = """\
query NearMe($lat: Float!, $lng: Float!, $after: String!, $before: String!) {
  disponibilites(lat: $lat, lng: $lng, rayon_km: 10, debut_min: $after, debut_max: $before,
                 limite: 20) {
    resultats { debut clinique { nom adresse { ville } } medecin { titre prenom nom } }
  }
}
"""


@dataclass(frozen=True, slots=True)
class Window:
    """The next 3 days, from this minute (Montreal wall time)."""

    start: datetime
    end: datetime

    @classmethod
    def now(cls) -> Window:
        start = datetime.now(MONTREAL).replace(second=0, microsecond=0)
        return cls(start, start + timedelta(days=3))

    def variables(self, gateway: str, point: tuple[float, float]) -> dict[str, Any]:
        if gateway == "passerelle":
            near = {"latitude": point[0], "longitude": point[1]}
            return {"near": near, "after": self.start.isoformat(), "before": self.end.isoformat()}
        naive = "%Y-%m-%dT%H:%M:%S"  # the API's local wall times, without offset
        return {"lat": point[0], "lng": point[1], "after": self.start.strftime(naive),
                "before": self.end.strftime(naive)}  # fmt: skip


def query_of(gateway: str) -> str:
    return PASSERELLE_QUERY if gateway == "passerelle" else HIVE_QUERY


def points(n: int = 64) -> list[tuple[float, float]]:
    """``n`` points on a grid about 1 km apart around downtown Montreal."""
    side = int(n**0.5)
    return [
        (round(DOWNTOWN[0] + 0.009 * (i - side // 2), 4),
         round(DOWNTOWN[1] + 0.013 * (j - side // 2), 4))
        for i in range(side) for j in range(side)
    ]  # fmt: skip


def slots_of(gateway: str, body: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(local start, clinic, city, physician) of each slot of an answer."""
    if body.get("errors") or not body.get("data"):
        raise SystemExit(f"{gateway} answered errors: {json.dumps(body)[:600]}")
    if gateway == "passerelle":
        out = []
        for edge in body["data"]["slots"]["edges"]:
            node = edge["node"]
            start = datetime.fromisoformat(node["start"]).astimezone(MONTREAL)
            physician = (node["physician"] or {}).get("displayName", "")
            clinic = node["clinic"]
            out.append((start.strftime("%Y-%m-%dT%H:%M"), clinic["name"],
                        clinic["address"]["city"], physician))  # fmt: skip
        return out
    rows = []
    for slot in body["data"]["disponibilites"]["resultats"]:
        doctor = slot["medecin"] or {}
        name = " ".join(doctor.get(k) or "" for k in ("titre", "prenom", "nom")).strip()
        clinic = slot["clinique"] or {}
        city = (clinic.get("adresse") or {}).get("ville", "")
        rows.append((slot["debut"][:16], clinic.get("nom", ""), city, name))
    return rows


def same_slots(a: Sequence[tuple[str, ...]], b: Sequence[tuple[str, ...]]) -> str:
    """Why two answers are not the same slots ("" when they are). Slots that start at
    the same time may come in any order; at the last start time a page may cut a tie
    differently, so there only the count is compared."""
    if len(a) != len(b):
        return f"{len(a)} slots against {len(b)}"
    if [s[0] for s in a] != [s[0] for s in b]:
        return "not the same start times"
    last = a[-1][0] if a else ""
    if sorted(s for s in a if s[0] != last) != sorted(s for s in b if s[0] != last):
        return "not the same slots (clinic, city or physician differ)"
    return ""


# -- processes ---------------------------------------------------------------------------


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def proc_tree(root: int) -> list[int]:
    """``root`` and every live descendant (from ``/proc/*/stat``)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def cpu_s(root: int) -> float:
    """User + system CPU seconds of ``root`` and its descendants."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for pid in proc_tree(root):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def rss_mb(root: int) -> float:
    total = 0
    for pid in proc_tree(root):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


@dataclass
class Server:
    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    log: Path
    url: str  # its /graphql
    ready_url: str
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def wait_ready(self, session: aiohttp.ClientSession, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(self.ready_url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.2)
        raise SystemExit(
            f"{self.name} not ready in {timeout_s:g} s:\n{self.log.read_text()[-3000:]}"
        )

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


@contextlib.asynccontextmanager
async def running(session: aiohttp.ClientSession, *servers: Server) -> AsyncIterator[None]:
    try:
        for server in servers:
            server.start()
        for server in servers:
            await server.wait_ready(session)
        yield
    finally:
        for server in servers:
            server.stop()


def install_peer() -> None:
    """``npm ci`` from the lock file, unless node_modules already holds exactly it."""
    lock = PEER_DIR / "package-lock.json"
    stamp = PEER_DIR / "node_modules" / ".peer-lock-sha256"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    if shutil.which("npm") is None:
        raise SystemExit("npm is needed for the peer (Debian: apt-get install nodejs npm)")
    say("  npm ci (Hive Gateway and GraphQL Mesh, from benchmarks/peer/package-lock.json)")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PEER_DIR, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    stamp.write_text(digest)


def compose(rest_url: str, out: Path) -> None:
    say("  mesh-compose: the demo REST API as a Mesh subgraph")
    env = {**os.environ, "DEMO_REST_URL": rest_url}
    mesh = PEER_DIR / "node_modules" / ".bin" / "mesh-compose"
    subprocess.run([str(mesh), "-o", str(out)], cwd=PEER_DIR, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def passerelle(case: str, work: Path, config: Path, key: str, root: Path = ROOT) -> Server:
    port = free_ports(2)
    metrics = port + 1
    argv = [sys.executable, "app.py", "--no-demo", "--config", str(config), "--port", str(port),
            "--env", "production", "--anonymous-rate", "1000000", "--metrics-port", str(metrics),
            "--database-url", f"sqlite:///{work / f'registry-{case}.sqlite3'}",
            "--log-level", "info"]  # fmt: skip
    if case in ("a", "b"):
        argv += ["--cache", "off", "--no-response-cache"]
    env = {**os.environ, KEY_ENV: key}
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)  # traces off
    base = f"http://127.0.0.1:{port}"
    return Server("passerelle", argv, root, env, work / f"passerelle-{case}.log",
                  f"{base}/graphql", f"{base}/ready")  # fmt: skip


def hive(case: str, work: Path, supergraph: Path, key: str) -> Server:
    port = free_ports(1)
    bin_js = PEER_DIR / "node_modules" / "@graphql-hive" / "gateway" / "dist" / "bin.js"
    argv = ["node", str(bin_js), "supergraph", str(supergraph), "-c", "gateway.config.ts",
            "-p", str(port), "-h", "127.0.0.1"]  # fmt: skip
    env = {**os.environ, KEY_ENV: key, "PEER_CASE": CASE_NAMES[case], "NODE_ENV": "production"}
    base = f"http://127.0.0.1:{port}"
    return Server("hive", argv, PEER_DIR, env, work / f"hive-{case}.log",
                  f"{base}/graphql", f"{base}/readiness")  # fmt: skip


# -- load --------------------------------------------------------------------------------


def lua_post(bodies: Sequence[str]) -> str:
    """A wrk script posting ``bodies`` in turn (one thread: one rotation)."""
    items = ",\n".join(f"[==[{b}]==]" for b in bodies)
    return f"""\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
local bodies = {{
{items}
}}
local i = 0
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
{LUA_DONE}"""


@dataclass
class Target:
    """What wrk asks of one gateway in one case: a URL and its script."""

    url: str
    script: Path
    probe: dict[str, Any] = field(default_factory=dict)  # one request, to check an answer


def apq_extensions(query: str) -> dict[str, Any]:
    digest = hashlib.sha256(query.encode()).hexdigest()
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


async def targets(
    session: aiohttp.ClientSession, case: str, server: Server, window: Window, work: Path
) -> Target:
    gateway, query = server.name, query_of(server.name)
    script = work / f"{gateway}-{case}.lua"
    if case == "c":
        variables = window.variables(gateway, DOWNTOWN)
        extensions = apq_extensions(query)
        # Register the document (APQ: the query with its hash), then ask by hash only.
        await post(session, server.url, {"query": query, "variables": variables,
                                          "extensions": extensions})  # fmt: skip
        params = {"extensions": json.dumps(extensions, separators=(",", ":")),
                  "variables": json.dumps(variables, separators=(",", ":"))}  # fmt: skip
        script.write_text('wrk.headers["Accept"] = "application/json"\n' + LUA_DONE)
        return Target(f"{server.url}?{urlencode(params)}", script)
    chosen = points() if case == "a" else [DOWNTOWN]
    bodies = [json.dumps({"query": query, "variables": window.variables(gateway, p)})
              for p in chosen]  # fmt: skip
    script.write_text(lua_post(bodies))
    return Target(server.url, script)


async def post(session: aiohttp.ClientSession, url: str, payload: dict[str, Any]) -> Any:
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    async with session.post(url, data=json.dumps(payload), headers=headers) as response:
        return await response.json(content_type=None)


async def get(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url, headers={"Accept": "application/json"}) as response:
        return await response.json(content_type=None)


async def run_wrk(url: str, script: Path, seconds: float, connections: int) -> Load:
    argv = [require_wrk(), "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s",
            "-s", str(script), url]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    stdout, _ = await process.communicate()
    return parse_wrk(stdout.decode(errors="replace"))


@dataclass(frozen=True, slots=True)
class Run:
    case: str
    gateway: str
    round: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float  # per request, summed over the gateway's processes
    upstream_per_request: float
    rss_mb: float
    load_avg: float  # the machine's 1-minute load average as the run ended
    errors: int
    # Passerelle only, from its request log: the p99 of the time spent inside the app
    # (not waiting for the CPU or in the socket) and the requests the response cache
    # did not answer (each executed the query; case c).
    logged_p99_ms: float | None = None
    not_from_cache: int | None = None


def request_log_since(log: Path, offset: int) -> tuple[float, int] | None:
    """The p99 duration and the requests not answered from the cache, in the JSON
    request-log lines written to ``log`` past ``offset``."""
    durations, executed = [], 0
    with log.open("rb") as lines:
        lines.seek(offset)
        for line in lines:
            if line.startswith(b'{"request_id"'):
                entry = json.loads(line)
                durations.append(entry["duration_ms"])
                executed += entry.get("cache") != "hit"
    if not durations:
        return None
    durations.sort()
    return durations[int(0.99 * (len(durations) - 1))], executed


async def measure(
    session: aiohttp.ClientSession, case: str, server: Server, target: Target, rnd: int,
    stats_url: str, args: argparse.Namespace,
) -> Run:  # fmt: skip
    await run_wrk(target.url, target.script, args.warmup, args.connections)
    upstream = (await get(session, stats_url))["requests"]
    offset = server.log.stat().st_size
    spy = await profile(server, case, rnd, args)
    cpu = cpu_s(server.pid)
    load = await run_wrk(target.url, target.script, args.seconds, args.connections)
    cpu = cpu_s(server.pid) - cpu
    if spy is not None:
        await spy.wait()
    upstream = (await get(session, stats_url))["requests"] - upstream
    logged = request_log_since(server.log, offset) if server.name == "passerelle" else None
    n = max(1, load.requests)
    in_app = f"  (in-app p99 {logged[0]:.2f} ms, {logged[1]} executed)" if logged else ""
    run = Run(case, server.name, rnd, round(load.rps, 1), round(load.p50_ms, 2),
              round(load.p99_ms, 2), round(1000 * cpu / n, 3), round(upstream / n, 3),
              round(rss_mb(server.pid), 1), round(os.getloadavg()[0], 2),
              load.errors + load.non_2xx, round(logged[0], 2) if logged else None,
              logged[1] if logged else None)  # fmt: skip
    say(f"    {case} {server.name:10} round {rnd}: {run.rps:8.1f} req/s  p50 {run.p50_ms:6.2f} ms"
        f"  p99 {run.p99_ms:6.2f} ms  cpu {run.cpu_ms:6.3f} ms/req  upstream"
        f" {run.upstream_per_request:.3f}/req  rss {run.rss_mb:.0f} MB  load {run.load_avg}"
        f"{f'  ERRORS {run.errors}' if run.errors else ''}{in_app}")  # fmt: skip
    return run


async def profile(
    server: Server, case: str, rnd: int, args: argparse.Namespace
) -> asyncio.subprocess.Process | None:
    """With ``--profile DIR``: py-spy samples Passerelle's process over the measured run
    (a speedscope file per case and round; its own CPU is another process's, not counted
    in the gateway's). Returns the py-spy process to wait for, or None."""
    if not args.profile or server.name != "passerelle":
        return None
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--profile needs py-spy (pip install py-spy)")
    out = Path(args.profile)
    out.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (once, before the run)
    name = out / f"passerelle-{case}-{rnd}.json"
    seconds = str(max(1, int(args.seconds)))
    argv = [spy, "record", "-p", str(server.pid), "-d", seconds, "-r", "250",
            "-f", "speedscope", "-o", str(name)]  # fmt: skip
    return await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )


async def check_answers(
    session: aiohttp.ClientSession, servers: Sequence[Server], window: Window
) -> str:
    """Both gateways answer the same slots to the question (raises when not)."""
    answers = {}
    for server in servers:
        payload = {"query": query_of(server.name),
                   "variables": window.variables(server.name, DOWNTOWN)}  # fmt: skip
        answers[server.name] = slots_of(server.name, await post(session, server.url, payload))
    problem = same_slots(answers["passerelle"], answers["hive"])
    if problem:
        raise SystemExit(f"the gateways disagree: {problem}\n{json.dumps(answers, indent=1)}")
    return f"same {len(answers['hive'])} slots, first at {answers['hive'][0][0]}"


async def run_case(
    session: aiohttp.ClientSession, case: str, work: Path, stats_url: str,
    config: Path, supergraph: Path, key: str, args: argparse.Namespace,
) -> list[Run]:  # fmt: skip
    say(f"case ({case}) {CASE_NAMES[case]}")
    window = Window.now()
    servers = (
        passerelle(case, work, config, key, Path(args.passerelle_root or ROOT)),
        hive(case, work, supergraph, key),
    )
    runs = []
    async with running(session, *servers):
        say(f"  check: {await check_answers(session, servers, window)}")
        chosen = {s.name: await targets(session, case, s, window, work) for s in servers}
        for rnd in range(1, args.rounds + 1):
            for server in servers:
                runs.append(await measure(session, case, server, chosen[server.name], rnd,
                                          stats_url, args))  # fmt: skip
        if case == "c" and not args.no_ceiling:
            runs += await ceiling_runs(session, chosen["passerelle"], work, stats_url, args)
    return runs


async def ceiling_runs(
    session: aiohttp.ClientSession, cached: Target, work: Path, stats_url: str,
    args: argparse.Namespace,
) -> list[Run]:  # fmt: skip
    """Case (c)'s ceiling: the bytes of Passerelle's cached answer, from a bare Starlette
    endpoint on one uvicorn worker (uvloop, httptools), loaded the same way."""
    async with session.get(cached.url, headers={"Accept": "application/json"}) as response:
        body = await response.read()
    payload = work / "ceiling.json"
    payload.write_bytes(body)
    port = free_ports(1)
    base = f"http://127.0.0.1:{port}"
    server = Server(CEILING, [sys.executable, str(ROOT / "benchmarks" / "http_edge.py"),
                              "--serve", "ceiling", "--port", str(port), "--file", str(payload)],
                    ROOT, dict(os.environ), work / "ceiling.log", f"{base}/graphql",
                    f"{base}/ready")  # fmt: skip
    runs = []
    async with running(session, server):
        target = Target(server.url, cached.script)
        for rnd in range(1, args.rounds + 1):
            runs.append(await measure(session, "c", server, target, rnd, stats_url, args))
    return runs


# -- report ------------------------------------------------------------------------------


def spread(values: Sequence[float], digits: int = 1) -> str:
    low, high = min(values), max(values)
    return f"{low:,.{digits}f}" if low == high else f"{low:,.{digits}f}–{high:,.{digits}f}"


def table(runs: Sequence[Run]) -> str:
    lines = [
        "| case | gateway | req/s | p50 ms | p99 ms | CPU ms/req | upstream calls/req "
        "| RSS MB | load avg |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for case in CASES:
        for gateway in (*GATEWAYS, CEILING):
            rs = [r for r in runs if r.case == case and r.gateway == gateway]
            if not rs:
                continue
            lines.append(
                f"| ({case}) {CASE_NAMES[case]} | {gateway} | {spread([r.rps for r in rs], 0)} "
                f"| {spread([r.p50_ms for r in rs], 2)} | {spread([r.p99_ms for r in rs], 2)} "
                f"| {spread([r.cpu_ms for r in rs], 2)} "
                f"| {spread([r.upstream_per_request for r in rs], 2)} "
                f"| {spread([r.rss_mb for r in rs], 0)} | {spread([r.load_avg for r in rs], 1)} |"
            )
    lines += ["", "| case | req/s Passerelle / Hive | CPU/req Passerelle / Hive "
              "| p99 Passerelle / Hive |", "| --- | --- | --- | --- |"]  # fmt: skip
    for case in CASES:
        pairs = [
            (p, h)
            for p in runs
            for h in runs
            if p.case == h.case == case and p.round == h.round
            and (p.gateway, h.gateway) == GATEWAYS
        ]  # fmt: skip
        if pairs:
            lines.append(
                f"| ({case}) {CASE_NAMES[case]} | {spread([p.rps / h.rps for p, h in pairs], 2)}× "
                f"| {spread([p.cpu_ms / h.cpu_ms for p, h in pairs], 2)}× "
                f"| {spread([p.p99_ms / h.p99_ms for p, h in pairs], 2)}× |"
            )
    ceiling = [r for r in runs if r.gateway == CEILING]
    cached = [r for r in runs if r.case == "c" and r.gateway in GATEWAYS]
    if ceiling and cached:
        best = max(r.rps for r in ceiling)
        lowest = min(r.cpu_ms for r in ceiling)
        lines += [
            "",
            "Case (c) against its ceiling (the bare endpoint's best round):",
            "",
            "| gateway | req/s / ceiling | CPU/req / ceiling |",
            "| --- | --- | --- |",
        ]
        for gateway in GATEWAYS:
            rs = [r for r in cached if r.gateway == gateway]
            lines.append(f"| {gateway} | {spread([r.rps / best for r in rs], 2)}× "
                         f"| {spread([r.cpu_ms / lowest for r in rs], 2)}× |")  # fmt: skip
    lines += ["", "Each round (Passerelle's in-app p99 and executions from its request log):", "",
              "| case | round | gateway | req/s | p50 ms | p99 ms | in-app p99 ms | executed |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for r in runs:
        logged = "| —  | — |" if r.logged_p99_ms is None else (
            f"| {r.logged_p99_ms:.2f} | {r.not_from_cache} |")  # fmt: skip
        lines.append(f"| ({r.case}) | {r.round} | {r.gateway} | {r.rps:,.0f} | {r.p50_ms:.2f} "
                     f"| {r.p99_ms:.2f} {logged}")  # fmt: skip
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    require_wrk()
    install_peer()
    key = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="passerelle-peer-") as tmp:
        work = Path(args.logs or tmp)
        os.makedirs(work, exist_ok=True)
        rest_port = free_ports(1)
        rest_url = f"http://127.0.0.1:{rest_port}/api/v1"
        config = work / "sources.toml"
        config.write_text(
            '[[sources]]\nid = "demo-rest"\nname = "Demo proprietary booking API"\n'
            f'protocol = "REST_JSON"\nurl = "{rest_url}"\ntimeout_s = 2\nenabled = true\n'
            f'credentials_env = "{KEY_ENV}"\noptions = {{ {", ".join(args.rest_option)} }}\n'
        )
        supergraph = work / "supergraph.graphql"
        compose(rest_url, supergraph)
        upstream = Server(
            "demo-rest",
            [sys.executable, "-m", "examples.demo_rest", "--port", str(rest_port),
             "--scale", f"{args.scale:g}", "--api-key", key, "--rate-limit-rps", "1000000"],
            ROOT, dict(os.environ), work / "demo-rest.log", rest_url,
            f"http://127.0.0.1:{rest_port}/_stats",
        )  # fmt: skip
        runs: list[Run] = []
        async with aiohttp.ClientSession() as session, running(session, upstream):
            stats_url = f"http://127.0.0.1:{rest_port}/_stats"
            for case in args.cases:
                runs += await run_case(session, case, work, stats_url, config, supergraph, key,
                                       args)  # fmt: skip
    stamp = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    print(f"Run of {stamp}, {os.cpu_count()} cores, wrk -t1 -c{args.connections}, "
          f"{args.rounds} rounds of {args.seconds:g} s alternated (after {args.warmup:g} s "
          f"warm-up each), demo REST API at scale {args.scale:g}:\n")  # fmt: skip
    print(table(runs))
    if args.json:
        save(Path(args.json), runs)


def save(path: Path, runs: Sequence[Run]) -> None:
    path.write_text(json.dumps([asdict(r) for r in runs], indent=1))


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help="a,b,c (default: all)")
    parser.add_argument("--rounds", type=int, default=4, help="per gateway and case (4)")
    parser.add_argument("--seconds", type=float, default=10.0, help="each measured run (10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="before each run (2)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 5 s")
    parser.add_argument("--json", help="write the runs there too")
    parser.add_argument("--no-ceiling", action="store_true", help="case (c) without its ceiling")
    parser.add_argument("--profile", help="py-spy over Passerelle's measured runs, into DIR")
    parser.add_argument("--logs", help="keep the servers' logs (and request logs) in this folder")
    parser.add_argument(
        "--passerelle-root",
        help="run app.py of another checkout (e.g. a git worktree of an earlier commit)",
    )
    parser.add_argument(
        "--rest-option", action="append", default=['slot_path = "disponibilites/{id}"'],
        metavar="KEY=VALUE", help="one more option of the REST source (a TOML value), e.g. "
        "directory_ttl_s=0",
    )  # fmt: skip
    args = parser.parse_args(argv)
    for option in args.rest_option:
        try:
            tomllib.loads(option)
        except tomllib.TOMLDecodeError as exc:
            parser.error(f"--rest-option {option!r} is not KEY=VALUE in TOML: {exc}")
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if unknown := set(args.cases) - set(CASES):
        parser.error(f"unknown cases {sorted(unknown)}: choose among {', '.join(CASES)}")
    if args.quick:
        args.rounds, args.seconds = 2, 5.0
    return args


if __name__ == "__main__":
    asyncio.run(main(parse()))
