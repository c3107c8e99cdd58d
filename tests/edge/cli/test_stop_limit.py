"""A stop is bounded: a part stuck in its shutdown never leaves a stopped instance
running (``Settings.stop_limit_s``, ``edge/cli/serve.py``)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = """
import asyncio, logging, sys
import uvicorn
from edge.cli.serve import gateway_server
from edge.settings import Settings

from starlette.datastructures import State

async def stuck(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await asyncio.Event().wait()  # a part stuck in its shutdown, for ever
    else:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

stuck.state = State()  # as the gateway's app, which keeps its services there
app = stuck
logging.basicConfig(level=logging.INFO, format="%(message)s")
config = uvicorn.Config(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="info")
settings = Settings(stop_limit_s=1.0)
gateway_server(config, settings, before_exit=lambda: print("demo stopped", flush=True)).run()
"""


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def test_a_shutdown_stuck_past_its_limit_is_given_up_in_one_line_and_exits_1() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not _listening(port):
            assert process.poll() is None and time.monotonic() < deadline, "never listened"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        out, _ = process.communicate(timeout=15)
        took = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 1, out
    assert "shutdown did not finish within 1 s; exiting now" in out
    assert "demo stopped" in out
    assert 1.0 <= took < 12, took


async def test_a_server_stopped_in_time_leaves_no_watchdog_behind(registry_url: str) -> None:
    # A server in a test stops while its process goes on: its stop's watchdog must not
    # outlive it (it would end the whole process stop_limit_s later).
    import threading

    from edge.settings import Settings
    from tests.conftest import pinned_clock, serving

    settings = Settings(database_url=registry_url, stop_limit_s=60.0, clock=pinned_clock)
    async with serving(settings):
        pass
    timers = [t for t in threading.enumerate() if isinstance(t, threading.Timer)]
    assert [t for t in timers if t.is_alive() and not t.finished.is_set()] == []
