"""The filter matrix (issue 17, item 6): every ``SlotFilter`` field, alone and in pairs.

    python benchmarks/filters.py                      # full demo scale, about 10 minutes
    python benchmarks/filters.py --quick              # scale 0.05, one walk per case
    python benchmarks/filters.py --only lang:es       # the cases whose name holds it
    python benchmarks/filters.py --json filters.json  # the rows as JSON too

Run by hand, not by CI (the suite runs the same cases at scale 0.05, asserting codes
and statuses, not times: ``tests/sources/search/test_filter_matrix.py``). It starts
``python app.py`` with its demo systems on free loopback ports as an operator runs it
(issue 17, item 7): ``--env production`` with an anonymous rate high enough for one
client, ``/metrics`` on (its own port), JSON request logs to a file (the gateway's
log), traces off, no faults, ``--demo-churn 0``.

The cases (:func:`matrix`): each field alone -- ``near`` (10 km around downtown
Montreal), ``region`` (MONTREAL), ``appointmentTypes`` (WALK_IN, which sources filter,
and ROUTINE, which includes slots with no type), ``languages`` (fr, en, es, ar, vi, it,
each alone), ``clinicIds`` (the first 1 and 10 clinics near downtown), ``physicianIds``
(1 and 10 of their physicians), a 31-day window, and the empty filter; then every pair
among near, region, appointmentTypes, languages, clinicIds and physicianIds, each
value of one with each value of the other; each with ``first`` 20 and 100.

A case is a walk of three pages (``after`` the previous ``endCursor``), done
``--walks`` times (10: 30 sequential requests), each walk's window starting a minute
later than the one before, so that no walk is served from the answers of another (the
sources' cache and the response cache key on the minute). Per case: p50 and p99 of
the requests, the error codes met, the sources not ``UP`` in an answer, and whether
``totalCount`` stayed the same on the three pages of every walk.

Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

MONTREAL_CENTRE = {"latitude": 45.5017, "longitude": -73.5673}
LANGUAGES = ("fr", "en", "es", "ar", "vi", "it")
FIRSTS = (20, 100)
PAGES = 3
DEMO_REST_RPS_ENV = "PASSERELLE_DEMO_REST_RPS"  # examples.demo_rest.server.RATE_LIMIT_ENV
PAIRED = ("near", "region", "appointmentTypes", "languages", "clinicIds", "physicianIds")

QUERY = """query Matrix($filter: SlotFilter!, $first: Int!, $after: String) {
  slots(filter: $filter, first: $first, after: $after) {
    totalCount
    totalCountKind
    edges { node { id start } }
    pageInfo { hasNextPage endCursor }
  }
}"""
IDS = """query Ids($near: GeoPointInput!) {
  clinics(filter: {near: $near, radiusKm: 10}, first: 10) {
    edges { node { id physicians { id } } }
  }
}"""

# One request: the variables in, (milliseconds, the decoded answer) out.
Post = Callable[[dict[str, Any]], Awaitable[tuple[float, dict[str, Any]]]]


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    filter: dict[str, Any]
    first: int


@dataclass(slots=True)
class Walked:
    """What the walks of one case met."""

    ms: list[float] = field(default_factory=list)
    codes: set[str] = field(default_factory=set)
    not_up: set[str] = field(default_factory=set)  # "source=STATUS"
    totals: list[list[int | None]] = field(default_factory=list)  # per walk, per page
    slots: list[int] = field(default_factory=list)  # slots on each page
    order_errors: int = 0  # a page whose slots are not in order, or repeat a slot

    @property
    def steady_total(self) -> bool:
        return all(len(set(walk)) == 1 for walk in self.totals)


def field_values(
    clinic_ids: Sequence[str], physician_ids: Sequence[str]
) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Each pairable field's values: (label, filter fields)."""
    return {
        "near": [("near", {"near": MONTREAL_CENTRE, "radiusKm": 10})],
        "region": [("region", {"region": "MONTREAL"})],
        "appointmentTypes": [
            ("types:WALK_IN", {"appointmentTypes": ["WALK_IN"]}),
            ("types:ROUTINE", {"appointmentTypes": ["ROUTINE"]}),
        ],
        "languages": [(f"lang:{code}", {"languages": [code]}) for code in LANGUAGES],
        "clinicIds": [(f"clinics:{n}", {"clinicIds": list(clinic_ids[:n])}) for n in (1, 10)],
        "physicianIds": [
            (f"physicians:{n}", {"physicianIds": list(physician_ids[:n])}) for n in (1, 10)
        ],
    }


def matrix(clinic_ids: Sequence[str], physician_ids: Sequence[str]) -> list[Case]:
    """Every case: each field alone, the 31-day window, the empty filter, every pair."""
    values = field_values(clinic_ids, physician_ids)
    filters: list[tuple[str, dict[str, Any]]] = [("empty", {}), ("window:31d", {"window": 31})]
    filters += [value for name in PAIRED for value in values[name]]
    for a, b in itertools.combinations(PAIRED, 2):
        for (la, fa), (lb, fb) in itertools.product(values[a], values[b]):
            filters.append((f"{la}+{lb}", {**fa, **fb}))
    return [Case(name, f, first) for name, f in filters for first in FIRSTS]


def variables(case: Case, start: datetime, after: str | None) -> dict[str, Any]:
    """The query's variables: the window starts at ``start`` (7 days, or 31 for the
    window case)."""
    fields = dict(case.filter)
    days = fields.pop("window", 7)
    fields["startsAfter"] = start.isoformat()
    fields["startsBefore"] = (start + timedelta(days=days)).isoformat()
    return {"filter": fields, "first": case.first, "after": after}


async def walk(post: Post, case: Case, start: datetime, walked: Walked) -> None:
    """Three pages of one case (fewer when the search ends), noted in ``walked``."""
    after = None
    totals: list[int | None] = []
    seen: set[str] = set()
    for _ in range(PAGES):
        ms, answer = await post(variables(case, start, after))
        walked.ms.append(ms)
        for error in answer.get("errors") or ():
            walked.codes.add(str((error.get("extensions") or {}).get("code")))
        for source in (answer.get("extensions") or {}).get("sources") or ():
            if source.get("status") != "UP":
                walked.not_up.add(f"{source.get('id')}={source.get('status')}")
        slots = (answer.get("data") or {}).get("slots")
        if slots is None:
            walked.codes.add("NO_DATA")
            break
        totals.append(slots["totalCount"])
        nodes = [edge["node"] for edge in slots["edges"]]
        walked.slots.append(len(nodes))
        starts = [node["start"] for node in nodes]
        ids = [node["id"] for node in nodes]
        instants = [datetime.fromisoformat(s) for s in starts]
        if instants != sorted(instants) or seen.intersection(ids) or len(set(ids)) < len(ids):
            walked.order_errors += 1
        seen.update(ids)
        if not slots["pageInfo"]["hasNextPage"]:
            break
        after = slots["pageInfo"]["endCursor"]
    walked.totals.append(totals)


async def sample_ids(
    post_query: Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]],
) -> tuple[list[str], list[str]]:
    """Ten clinics near downtown Montreal (every source's) and one physician of each."""
    answer = await post_query(IDS, {"near": MONTREAL_CENTRE})
    clinics = [edge["node"] for edge in answer["data"]["clinics"]["edges"]]
    physicians = [c["physicians"][0]["id"] for c in clinics if c["physicians"]]
    return [c["id"] for c in clinics], physicians


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


# -- the benchmark -------------------------------------------------------------------------


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    import aiohttp
    import orjson

    Gateway, free_ports = _fanout()
    metrics_port = free_ports(1)
    extra = ["--env", "production", "--anonymous-rate", "100000", "--log-level", "info"]
    extra += ["--metrics-port", str(metrics_port)]
    gateway = Gateway({}, args.scale, extra)
    # The demo REST server limits a key to 100 requests a second, which this one client's
    # walks reach (the adapter then waits a 1 s Retry-After): raised, as peer.py does.
    os.environ[DEMO_REST_RPS_ENV] = str(args.demo_rest_rps)
    rows = []
    timeout = aiohttp.ClientTimeout(total=60)
    with tempfile.TemporaryDirectory(prefix="passerelle-filters-") as workdir:
        say(f"starting the gateway at scale {args.scale:g} ({' '.join(extra)})")
        gateway.start(Path(workdir))
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                await gateway.wait_ready(session, args.startup_timeout)

                async def post_query(query: str, values: dict[str, Any]) -> dict[str, Any]:
                    body = orjson.dumps({"query": query, "variables": values})
                    headers = {"content-type": "application/json"}
                    async with session.post(gateway.url, data=body, headers=headers) as response:
                        return dict(orjson.loads(await response.read()))

                async def post(values: dict[str, Any]) -> tuple[float, dict[str, Any]]:
                    began = time.perf_counter()
                    answer = await post_query(QUERY, values)
                    return (time.perf_counter() - began) * 1000, answer

                clinic_ids, physician_ids = await sample_ids(post_query)
                cases = [c for c in matrix(clinic_ids, physician_ids) if args.only in c.name]
                say(f"{len(cases)} cases, {args.walks} walks of {PAGES} pages each; {_load()}")
                # Warm-up: every live source called once (they are DEGRADED until then).
                base = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=1)
                await walk(post, Case("warm-up", {}, 20), base, Walked())
                for n, case in enumerate(cases, 1):
                    walked = Walked()
                    for i in range(args.walks):
                        await walk(post, case, base + timedelta(minutes=1 + i), walked)
                    row = summary(case, walked)
                    rows.append(row)
                    say(f"[{n}/{len(cases)}] {line(row)}")
        finally:
            gateway.stop()
            if args.keep_log:
                _copy(Path(workdir) / "gateway.log", Path(args.keep_log))
    return rows


def _fanout() -> tuple[Any, Any]:
    """``benchmarks/fanout.py``'s gateway process and free ports (imported on use, so that
    the suite can import this module's cases without it)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from fanout import Gateway, free_ports

    return Gateway, free_ports


def _load() -> str:
    """The machine's load average (1, 5, 15 minutes): figures are read beside it."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def _copy(source: Path, target: Path) -> None:
    if source.exists():
        target.write_bytes(source.read_bytes())


def summary(case: Case, walked: Walked) -> dict[str, Any]:
    return {
        "case": case.name,
        "first": case.first,
        "requests": len(walked.ms),
        "p50_ms": round(percentile(walked.ms, 50), 1),
        "p99_ms": round(percentile(walked.ms, 99), 1),
        "max_ms": round(max(walked.ms), 1),
        "codes": sorted(walked.codes),
        "not_up": sorted(walked.not_up),
        "steady_total": walked.steady_total,
        "order_errors": walked.order_errors,
        "slots_first_page": walked.slots[0] if walked.slots else 0,
    }


def line(row: dict[str, Any]) -> str:
    problems = [*row["codes"], *row["not_up"]]
    if not row["steady_total"]:
        problems.append("totalCount changed")
    if row["order_errors"]:
        problems.append(f"{row['order_errors']} pages out of order")
    return (
        f"| {row['case']} | {row['first']} | {row['p50_ms']:.0f} | {row['p99_ms']:.0f} | "
        f"{'yes' if row['p99_ms'] < 1000 else 'NO'} | {', '.join(problems) or 'none'} |"
    )


def table(rows: Sequence[dict[str, Any]]) -> str:
    head = [
        "| case | first | p50 ms | p99 ms | p99 < 1 s | problems |",
        "|---|---:|---:|---:|---|---|",
    ]
    return "\n".join(head + [line(row) for row in rows])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="demo world scale (1.0)")
    parser.add_argument("--walks", type=int, default=10, help="walks of 3 pages per case (10)")
    parser.add_argument("--only", default="", help="only the cases whose name holds this")
    parser.add_argument("--quick", action="store_true", help="scale 0.05, one walk per case")
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--keep-log", help="copy the gateway's log (JSON lines) here")
    parser.add_argument("--startup-timeout", type=float, default=120.0)
    parser.add_argument(
        "--demo-rest-rps", type=float, default=100000.0, help="the demo REST's rate limit"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.scale, args.walks = 0.05, 1
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rows = asyncio.run(run(args))
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(list(rows), indent=1))
    missed = [r for r in rows if r["p99_ms"] >= 1000 or r["codes"] or r["not_up"]]
    say(f"{len(rows) - len(missed)} of {len(rows)} cases under 1 s p99 with no problem")
    say(f"done {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {_load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
