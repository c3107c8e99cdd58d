"""Benchmark: ``python app.py`` from process start to the README's near-me query answered whole.

    python benchmarks/startup.py                 # full scale, 3 runs, median
    python benchmarks/startup.py --runs 5 --cold

Full scale only: in a smaller world (``--scale 0.05``) the README's first 10 slots
near downtown Montreal need not come from all three systems, and no run is whole.

Each run starts ``python app.py --port P --demo-base-port Q --demo-churn 0`` in a
fresh scratch directory (its ``data/`` stays out of the repository), then polls,
every 50 ms:

- ``/ready`` until it answers 200;
- the README's "Asking for slots" query (POST ``/graphql``) until its slots come
  from demo-fhir, demo-rest and demo-ssl and every source in
  ``extensions.sources`` is ``UP``.

It prints, per run, the seconds from ``Popen`` to each, and their median. The
target (issue 17): near-me complete within 10 s, median of 3 warm runs (the
Python bytecode already compiled, the OS page cache warm). ``--cold`` removes
every ``__pycache__`` of the checkout (not of ``.venv``) before each run: what a
first run after a fresh clone pays on top, since ``pip install -e .`` compiles the
dependencies but none of the project's modules. ``PYTHONDONTWRITEBYTECODE`` is
dropped from the app's environment, as in a user's shell.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app.py"
DEMO_SOURCES = {"demo-fhir", "demo-rest", "demo-ssl"}
# The README's "Asking for slots" query, word for word.
NEAR_ME = """{
  slots(filter: {near: {latitude: 45.5017, longitude: -73.5673}, radiusKm: 10}, first: 10) {
    totalCount totalCountKind
    edges {
      node {
        start end appointmentType distanceKm bookingUrl
        clinic { name address { line city postalCode } }
        physician { displayName languages }
        source { id status }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}"""
POLL_S = 0.05
# As a user runs it: Python writes and reuses bytecode (a shell here may say otherwise).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def free_port(span: int = 1) -> int:
    """A port whose next ``span - 1`` neighbours are free too (the demo takes three)."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if all(_free(port + i) for i in range(span)):
            return port
    raise RuntimeError("no free ports")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as r:
            return bool(r.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _near_me_whole(port: int) -> tuple[bool, str]:
    """Whether the near-me answer holds all three demo sources, all UP; and why not."""
    body = json.dumps({"query": NEAR_ME}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            answer = json.loads(r.read())
    except (OSError, urllib.error.URLError, ValueError) as error:
        return False, f"no answer ({error})"
    data = answer.get("data") or {}
    edges = (data.get("slots") or {}).get("edges") or []
    got = {e["node"]["source"]["id"] for e in edges}
    statuses = {s["id"]: s["status"] for s in (answer.get("extensions") or {}).get("sources", [])}
    whole = DEMO_SOURCES <= got and all(v == "UP" for v in statuses.values())
    whole = whole and DEMO_SOURCES <= set(statuses)
    return whole, f"slots from {sorted(got)}, statuses {statuses}"


def one_run(scale: float | None, timeout_s: float, cold: bool) -> tuple[float, float, str]:
    if cold:
        for cache in ROOT.rglob("__pycache__"):
            if ".venv" not in cache.parts:
                shutil.rmtree(cache, ignore_errors=True)
    port, demo_port = free_port(), free_port(3)
    argv = [sys.executable, str(APP), "--port", str(port), "--demo-base-port", str(demo_port)]
    argv += ["--demo-churn", "0"]
    if scale is not None:
        argv += ["--scale", str(scale)]
    with tempfile.TemporaryDirectory(prefix="passerelle-startup-") as scratch:
        log = Path(scratch) / "app.log"
        with log.open("w") as out:
            started = time.monotonic()
            process = subprocess.Popen(
                argv,
                cwd=scratch,
                env=ENV,
                stdout=out,
                stderr=subprocess.STDOUT,
                process_group=0,
            )
        ready_s = whole_s = float("nan")
        why = ""
        try:
            while time.monotonic() - started < timeout_s:
                if process.poll() is not None:
                    raise RuntimeError(f"app.py exited {process.returncode}: {log.read_text()}")
                if ready_s != ready_s and _ready(port):
                    ready_s = time.monotonic() - started
                if ready_s == ready_s:
                    whole, why = _near_me_whole(port)
                    if whole:
                        whole_s = time.monotonic() - started
                        break
                time.sleep(POLL_S)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return ready_s, whole_s, why


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=None, help="demo scale (default: app's)")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds per run")
    parser.add_argument("--cold", action="store_true", help="remove __pycache__ before each run")
    parser.add_argument("--no-warm-up", action="store_true", help="skip the untimed first run")
    args = parser.parse_args()
    if not args.cold and not args.no_warm_up:
        one_run(args.scale, args.timeout, cold=False)  # compiles bytecode, warms the page cache
    readies, wholes = [], []
    for i in range(args.runs):
        ready_s, whole_s, why = one_run(args.scale, args.timeout, args.cold)
        readies.append(ready_s)
        wholes.append(whole_s)
        missing = "" if whole_s == whole_s else f"  (not whole after {args.timeout:g} s: {why})"
        print(
            f"run {i + 1}: /ready 200 at {ready_s:.2f} s, near-me whole at {whole_s:.2f} s{missing}"
        )
    print(
        f"median of {args.runs} ({'cold' if args.cold else 'warm'}): "
        f"/ready {statistics.median(readies):.2f} s, "
        f"near-me whole {statistics.median(wholes):.2f} s"
    )
    if any(w != w for w in wholes):
        sys.exit("some runs never got the whole answer")


if __name__ == "__main__":
    main()
