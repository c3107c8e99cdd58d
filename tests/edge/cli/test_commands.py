"""The registry commands, run as an operator runs them (more in tests/test_partners.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_a_registry_command_says_only_its_answer_once_migrated(tmp_path: Path) -> None:
    # The stores load Alembic after logging is set up: its plugin list must stay quiet.
    argv = [sys.executable, str(ROOT / "app.py"), "sources", "list"]
    argv += ["--database-url", f"sqlite:///{tmp_path / 'registry.sqlite3'}"]
    first = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=tmp_path)
    assert (again.returncode, again.stdout, again.stderr) == (0, "no sources registered\n", "")


async def test_sources_probe_prints_what_a_fhir_server_can_do_and_fails_when_unreachable(
    tmp_path: Path,
) -> None:
    import asyncio

    from examples import demo_fhir
    from examples.world import World
    from tests.conftest import serve

    database = ["--database-url", f"sqlite:///{tmp_path / 'registry.sqlite3'}"]

    async def app(*argv: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "app.py"), *argv, *database, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await process.communicate()
        return process.returncode or 0, out.decode(), err.decode()

    async with serve(demo_fhir.build_app(World(0.01))) as server:
        url = str(server.make_url("/fhir"))
        for source_id, where in (("demo", url), ("gone", "http://127.0.0.1:1/fhir")):
            added = await app(
                "sources", "add", "--id", source_id, "--protocol", "FHIR_R4", "--url", where
            )
            assert added[0] == 0, added[2]
        status, out, _ = await app("sources", "probe", "demo")
        assert status == 0
        assert "  paging: by next links\n" in out and "  _sort=start: by instant\n" in out
        assert "  no problems\n" in out
    status, out, err = await app("sources", "probe", "gone")
    assert (status, out) == (1, "")
    assert err.strip().splitlines()[-1].startswith("passerelle: gone could not be probed:")


async def test_sources_check_passes_the_fhir_demo_and_fails_an_unreachable_url_in_json(
    tmp_path: Path,
) -> None:
    import asyncio
    import json

    from examples import demo_fhir
    from examples.world import World
    from sources.registry.store import SourceStore
    from tests.conftest import fhir_definition, serve

    database = ["--database-url", f"sqlite:///{tmp_path / 'registry.sqlite3'}"]

    async def app(*argv: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "app.py"), *argv, *database, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await process.communicate()
        return process.returncode or 0, out.decode(), err.decode()

    # The world starts today, as the check's window does (nothing asserted depends on it).
    async with serve(demo_fhir.build_app(World(0.01))) as server:
        demo = fhir_definition(server, "demo")
        with SourceStore(database[1]) as store:
            store.add(demo)
        status, out, err = await app("sources", "check", "demo")
    assert status == 0, out + err
    lines = out.splitlines()
    assert lines[0] == f"demo (FHIR_R4) {demo.url}"
    assert "  capabilities:" in lines and "    paging: by next links" in lines
    assert "  plan:" in lines
    assert any(line.startswith("    near a clinic (10 km): sorted by the") for line in lines)
    assert any(line.startswith("  free slots the gateway would serve: ") for line in lines)
    assert lines[-1].startswith("  result: PASS (") and lines[-1].endswith(" 0 failed)")
    gone = "http://127.0.0.1:1/fhir"
    status, out, err = await app(
        "sources", "check", "--protocol", "FHIR_R4", "--url", gone, "--json"
    )
    assert (status, err) == (1, "")
    report = json.loads(out)
    assert report["result"] == "fail" and [c["name"] for c in report["checks"]] == ["reachable"]
    assert report["checks"][0]["outcome"] == "fail" and report["checks"][0]["fix"]
