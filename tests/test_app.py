"""``python app.py`` as a user runs it: subprocesses, real ports, signals."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import serve
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
NEAR_ME = """{ slots(filter: {near: {latitude: 45.5017, longitude: -73.5673}, radiusKm: 10},
  first: 100) { edges { node { start clinic { name address { line city postalCode } }
  source { id } } } } }"""
SOURCES = "{ sources { id status } }"


class Running:
    def __init__(self, process: subprocess.Popen[str], port: int, demo_port: int | None) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}/graphql"
        self.demo_port = demo_port

    async def query(self, query: str) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.url, json={"query": query}) as response,
        ):
            assert response.status == 200
            result: dict[str, Any] = await response.json()
            return result


@asynccontextmanager
async def app_process(*args: str, cwd: Path, demo: bool = True) -> AsyncIterator[Running]:
    port = free_port()
    demo_port = free_port(3) if demo else None
    argv = [sys.executable, APP, "--port", str(port), "--log-level", "warning", *args]
    if demo_port is not None:
        argv += ["--demo-base-port", str(demo_port)]
        if "--demo-churn" not in args:
            argv += ["--demo-churn", "0"]  # the demo's slots still, unless churn is tested
    log = cwd / "app.log"
    with log.open("w") as out:
        # Popen returns at once; the waits below do not block the loop. Its own
        # process group, as a shell gives each job: a terminal's Ctrl-C goes to it.
        process = subprocess.Popen(  # noqa: ASYNC220
            argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, text=True, process_group=0
        )
    try:
        deadline = time.monotonic() + 15
        while not await asyncio.to_thread(_ready, port):
            if process.poll() is not None:
                raise AssertionError(f"app.py exited {process.returncode}: {log.read_text()}")
            assert time.monotonic() < deadline, "app.py did not answer within 15 s"
            await asyncio.sleep(0.1)
        yield Running(process, port, demo_port)
    finally:
        await asyncio.to_thread(_stop, process)


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _ready(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            pass
    except OSError:
        return False
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def demo_pid(module: str, port: int) -> int:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if module.encode() in argv and str(port).encode() in argv:
            return int(entry.name)
    raise LookupError(f"no process for {module} on port {port}")


async def test_python_app_py_serves_slots_near_me_from_both_demo_systems(tmp_path: Path) -> None:
    async with app_process("--scale", "0.02", cwd=tmp_path) as app:
        result = await app.query(NEAR_ME)
    assert "errors" not in result, result
    nodes = [e["node"] for e in result["data"]["slots"]["edges"]]
    # demo-ssl lists fewer clinics: at this scale, maybe none within 10 km.
    assert (
        {"demo-fhir", "demo-rest"}
        <= {n["source"]["id"] for n in nodes}
        <= {
            "demo-fhir",
            "demo-rest",
            "demo-ssl",
        }
    )
    starts = [datetime.fromisoformat(n["start"]) for n in nodes]
    assert starts == sorted(starts)
    assert all(n["clinic"]["name"] and n["clinic"]["address"]["city"] for n in nodes)


async def test_killing_one_demo_provider_leaves_the_other_and_one_error(tmp_path: Path) -> None:
    async with app_process("--scale", "0.02", cwd=tmp_path) as app:
        assert app.demo_port is not None
        rest = demo_pid("examples.demo_rest", app.demo_port + 1)
        os.kill(rest, signal.SIGKILL)
        await asyncio.sleep(0.2)
        result = await app.query(NEAR_ME)
        # The gateway reaps it (no zombie left) and says so once, naming it.
        deadline = time.monotonic() + 5
        while "demo-rest exited" not in (tmp_path / "app.log").read_text():
            assert time.monotonic() < deadline, (tmp_path / "app.log").read_text()
            await asyncio.sleep(0.1)
        assert _reaped(rest)
    log = (tmp_path / "app.log").read_text()
    assert log.count("demo booking system demo-rest exited (killed by SIGKILL)") == 1
    assert "demo-logs/demo-rest.log" in log
    nodes = [e["node"] for e in result["data"]["slots"]["edges"]]
    assert nodes and "demo-fhir" in {n["source"]["id"] for n in nodes}
    assert "demo-rest" not in {n["source"]["id"] for n in nodes}
    assert [(e["extensions"]["code"], e["extensions"]["source"]) for e in result["errors"]] == [
        ("SOURCE_UNAVAILABLE", "demo-rest")
    ]


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name
)
async def test_a_signal_stops_the_gateway_and_the_demo_processes(
    tmp_path: Path, signum: signal.Signals
) -> None:
    async with app_process("--scale", "0.01", cwd=tmp_path) as app:
        assert app.demo_port is not None
        children = [
            demo_pid("examples.demo_fhir", app.demo_port),
            demo_pid("examples.demo_rest", app.demo_port + 1),
            demo_pid("examples.demo_ssl", app.demo_port + 2),
        ]
        app.process.send_signal(signum)
        assert await asyncio.to_thread(app.process.wait, 20) == 0
    assert not [pid for pid in children if _alive(pid)]


async def test_ctrl_c_stops_the_demo_processes_without_reporting_them_dead(
    tmp_path: Path,
) -> None:
    # The REST demo: slow answers but no start-up probes (the FHIR adapter probes its
    # server when it starts, which a slow server would drag out).
    slow = ("--demo-faults", "demo-rest=latency:1500ms")
    async with app_process("--scale", "0.01", *slow, cwd=tmp_path) as app:
        assert app.demo_port is not None
        children = [
            demo_pid("examples.demo_fhir", app.demo_port),
            demo_pid("examples.demo_rest", app.demo_port + 1),
            demo_pid("examples.demo_ssl", app.demo_port + 2),
        ]
        # A query in flight keeps the gateway draining for a while after the signal.
        in_flight = asyncio.create_task(app.query(NEAR_ME))
        await asyncio.sleep(0.3)
        # Ctrl-C in a terminal signals the whole foreground process group.
        os.killpg(app.process.pid, signal.SIGINT)
        assert await asyncio.to_thread(app.process.wait, 20) == 0
        await in_flight
    assert not [pid for pid in children if _alive(pid)]
    log = (tmp_path / "app.log").read_text()
    assert "exited" not in log and "ERROR" not in log, log
    assert "Traceback" not in log, log


def _reaped(pid: int) -> bool:
    """Gone altogether: not even a zombie waiting for its parent."""
    return not Path(f"/proc/{pid}").exists()


def _alive(pid: int) -> bool:
    """Running and not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_graphiql_is_served_to_browsers_with_the_example_query(tmp_path: Path) -> None:
    async with app_process("--no-demo", cwd=tmp_path, demo=False) as app:
        async with (
            aiohttp.ClientSession() as session,
            session.get(app.url, headers={"Accept": "text/html"}) as response,
        ):
            html = await response.text()
    assert response.status == 200
    assert "graphiql" in html.lower()
    assert "defaultQuery" in html and "SlotsNearMe" in html
    # Served by the gateway itself (tests/edge/test_graphiql_browser.py runs it in Chromium).
    assert "/graphql/static/" in html and "://" not in html


async def test_websocket_compression_is_declined_unless_asked(tmp_path: Path) -> None:
    # A browser offers permessage-deflate on every WebSocket: declined by default.
    for flags, compressed in (((), False), (("--ws-compression",), True)):
        async with app_process("--no-demo", *flags, cwd=tmp_path, demo=False) as app:
            async with (
                aiohttp.ClientSession() as session,
                session.ws_connect(
                    app.url.replace("http", "ws", 1),
                    protocols=["graphql-transport-ws"],
                    compress=15,
                ) as ws,
            ):
                assert ws.protocol == "graphql-transport-ws"
                assert bool(ws.compress) is compressed, flags


@asynccontextmanager
async def demo_fhir_server() -> AsyncIterator[str]:
    from examples import demo_fhir
    from examples.world import World

    async with serve(demo_fhir.build_app(World(0.01))) as server:
        yield str(server.make_url("/fhir"))


async def _wait_for_source(app: Running, source_id: str, timeout_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        result = await app.query(SOURCES)
        if any(s["id"] == source_id for s in result["data"]["sources"]):
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"{source_id} not seen within {timeout_s} s")


async def test_sources_add_reaches_the_running_gateway_within_five_seconds(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    async with demo_fhir_server() as fhir_url:
        async with app_process("--no-demo", "--database-url", db, cwd=tmp_path, demo=False) as app:
            added = await asyncio.to_thread(
                subprocess.run,
                [
                    sys.executable,
                    APP,
                    "sources",
                    "add",
                    "--id",
                    "clinique-a",
                    "--protocol",
                    "FHIR_R4",
                    "--url",
                    fhir_url,
                    "--database-url",
                    db,
                ],
                capture_output=True,
                text=True,
                cwd=tmp_path,
            )
            assert added.returncode == 0, added.stderr
            assert await _wait_for_source(app, "clinique-a", 5.0) < 5.0
            result = await app.query(
                "{ slots(filter: {}, first: 3) { edges { node { source { id } } } } }"
            )
            assert {e["node"]["source"]["id"] for e in result["data"]["slots"]["edges"]} == {
                "clinique-a"
            }


async def test_a_config_file_is_applied_at_start_and_when_it_changes(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    config = tmp_path / "sources.toml"
    async with demo_fhir_server() as fhir_url:
        config.write_text(
            f'[[sources]]\nid = "a"\nname = "A"\nprotocol = "FHIR_R4"\nurl = "{fhir_url}"\n'
            "timeout_s = 2\nenabled = true\n"
        )
        async with app_process(
            "--no-demo", "--database-url", db, "--config", str(config), cwd=tmp_path, demo=False
        ) as app:
            result = await app.query(SOURCES)
            assert [s["id"] for s in result["data"]["sources"]] == ["a"]
            config.write_text(config.read_text().replace('id = "a"', 'id = "b"'))
            await _wait_for_source(app, "b", 5.0)
            result = await app.query(SOURCES)
            assert [s["id"] for s in result["data"]["sources"]] == ["b"]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, APP, *args], capture_output=True, text=True, cwd=cwd, check=False
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--port", "abc"), "not a port number"),
        (("--scale", "0"), "scale must be in (0, 10]"),
        (("sources", "add", "--id", "x", "--protocol", "SOAP", "--url", "http://h"), "protocol"),
        (("sources", "add", "--id", "x", "--protocol", "FHIR_R4", "--url", "ftp://h"), "url"),
        (
            (
                "sources",
                "add",
                "--id",
                "x",
                "--protocol",
                "FHIR_R4",
                "--url",
                "http://h",
                "--timeout-s",
                "abc",
            ),
            "timeout_s",
        ),
        (("sources", "remove", "nope"), "nope"),
    ],
)
def test_bad_command_line_input_gets_a_one_line_message(
    tmp_path: Path, args: tuple[str, ...], expected: str
) -> None:
    done = (
        _cli(*args, "--database-url", f"sqlite:///{tmp_path / 'r.sqlite3'}", cwd=tmp_path)
        if args[0] == "sources"
        else _cli(*args, cwd=tmp_path)
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert expected in done.stderr.strip().splitlines()[-1]


def test_a_bad_config_file_is_refused_naming_the_key_and_the_file(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        '[[sources]]\nid = "a"\nprotocol = "FHIR_R4"\nurl = "http://h/fhir"\ncolour = "red"\n'
    )
    done = _cli("--no-demo", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert "colour" in last and "bad.toml" in last


def test_help_documents_the_options_and_subcommands(tmp_path: Path) -> None:
    done = _cli("--help", cwd=tmp_path)
    for option in (
        "--host",
        "--port",
        "--config",
        "--no-demo",
        "--scale",
        "--demo-base-port",
        "sources",
    ):
        assert option in done.stdout


async def test_start_up_ends_with_graphiqls_url_and_the_demo_systems_stay_quiet(
    tmp_path: Path,
) -> None:
    async with app_process("--scale", "0.01", "--log-level", "info", cwd=tmp_path) as app:
        port = app.url.rsplit(":", 1)[1].split("/")[0]
        deadline = time.monotonic() + 5
        while "ready: " not in (tmp_path / "app.log").read_text():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
    log = (tmp_path / "app.log").read_text()
    started = log[: log.index("ready: ")]
    assert log.splitlines()[started.count("\n")].endswith(
        f"ready: GraphiQL at http://127.0.0.1:{port}/graphql (open it in a browser)"
    )
    # The demo systems' own banners went to their log files, not to this console.
    assert "demo on http" not in started and "Running on" not in started
    assert started.count("Press CTRL+C to quit") == 1  # the gateway's own uvicorn line
    demo_logs = tmp_path / "data" / "demo-logs"
    assert "FHIR demo on http" in (demo_logs / "demo-fhir.log").read_text()
    # A bulk feed read whole: one summary line, not one line per file.
    assert "records kept" not in started and "feed loaded" in started


async def test_each_request_is_logged_once_by_the_app_without_the_clients_address(
    tmp_path: Path,
) -> None:
    async with app_process("--no-demo", "--log-level", "info", cwd=tmp_path, demo=False) as app:
        await app.query(SOURCES)
        await app.query(SOURCES)
    log = (tmp_path / "app.log").read_text()
    ours = [line for line in log.splitlines() if "POST /graphql query anonymous -> 200" in line]
    assert len(ours) == 2, log
    # uvicorn's access line ('127.0.0.1:PORT - "POST /graphql HTTP/1.1" 200') is off.
    assert 'HTTP/1.1"' not in log and ' - "POST' not in log
