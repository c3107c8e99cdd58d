"""``python app.py sources check``, through the command line's entry point, against SMART
Scheduling Links feeds (each protocol's checks are tested in its package)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from app import create_app
from edge.cli import main
from examples import demo_ssl
from examples.demo_ssl.publisher import Publisher
from examples.world import World
from tests.conftest import serve

SSL = ("--protocol", "SMART_SCHEDULING_LINKS")


async def test_the_demo_feed_passes_registered_or_not_a_failed_file_fails_json_says_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def run(*argv: str) -> tuple[int, str, str]:
        # The command runs its own event loop, as it does from a shell: in a thread here,
        # while this test's loop serves the feeds.
        status = await asyncio.to_thread(main, ["sources", *argv], create_app=create_app)
        out, err = capsys.readouterr()
        return status, out, err

    async def check(*argv: str) -> tuple[int, str, str]:
        return await run("check", *SSL, *argv)

    # The demo's own feed, and the same feed on a static host that lost one slot file.
    world = World(0.01)
    live = Publisher(world, tmp_path / "live")
    static = tmp_path / "static"
    Publisher(world, static)
    lost = sorted(static.glob("slots-*.ndjson"))[-1]
    lost.unlink()
    async with (
        serve(demo_ssl.build_app(live)) as demo,
        serve(demo_ssl.build_app(static)) as broken,
    ):
        demo_url = str(demo.make_url("/$bulk-publish"))
        status, text, _ = await check("--url", demo_url)
        assert status == 0, text
        assert text.splitlines()[-1].startswith("  result: PASS (")

        status, out, _ = await check("--url", demo_url, "--json")
        assert status == 0
        data = json.loads(out)
        assert data["result"] == "pass" and data["slots"]["served"] > 0
        lines = text.splitlines()
        for item in data["checks"]:
            assert f"  {item['outcome']:<4}  {item['name']}" in text
            assert item["detail"] in text
        assert f"  free slots the gateway would serve: {data['slots']['served']}" in lines

        # Registered, it is checked with its own settings.
        registry = ["--database-url", f"sqlite:///{tmp_path / 'registry.sqlite3'}"]
        added = await run("add", "--id", "demo-ssl", *SSL, "--url", demo_url, *registry)
        assert added[0] == 0
        status, out, _ = await run("check", "demo-ssl", *registry)
        assert status == 0 and out.startswith("demo-ssl (SMART_SCHEDULING_LINKS) ")
        assert f"  free slots the gateway would serve: {data['slots']['served']}" in out

        status, out, _ = await check("--url", str(broken.make_url("/$bulk-publish")))
        assert status == 1
        assert f"/data/{lost.name}: upstream answered HTTP 404" in out
        assert out.splitlines()[-1].startswith("  result: FAIL (")

    status, out, _ = await check("--url", "http://127.0.0.1:1/$bulk-publish")
    assert status == 1
    failed = [line for line in out.splitlines() if line.startswith("  fail")]
    assert len(failed) == 1 and failed[0].startswith("  fail  manifest  not read: ")


def test_a_check_without_its_url_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["sources", "check", *SSL], create_app=create_app)
    assert exit.value.code == 2
    assert "give a registered source's ID, or --protocol and --url" in capsys.readouterr().err
