"""``python app.py``'s command line: quick to answer, and a mistake is one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge.cli.parser import build_parser

ROOT = Path(__file__).resolve().parents[3]
# What a registry command or the server needs; --help and a bad flag need none of it.
HEAVY = ("aiohttp", "alembic", "examples", "redis", "resolvers", "schema", "sqlalchemy")
HEAVY += ("sqlmodel", "starlette", "strawberry", "uvicorn")


def _app(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "app.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_help_answers_on_stdout_and_exits_0() -> None:
    done = _app("--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python app.py") and done.stderr == ""
    for command in ("sources", "clients", "documents"):
        assert command in done.stdout


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ("clients", "create", "x", "--rate-limit", "abc"),
            "passerelle: --rate-limit: 'abc' is not a number of requests per second",
        ),
        (("--port", "http"), "passerelle: --port: not a port number: 'http'"),
        (("--anonymous-rate", "-1"), "passerelle: --anonymous-rate: must be 0 or more"),
        (("--trusted-proxy", "proxy"), "passerelle: --trusted-proxy: expected an address"),
        (("--max-cost", "0"), "passerelle: --max-cost: must be at least 1, got 0"),
        (("--watch-lease-s", "0.5"), "passerelle: --watch-lease-s: must be 1 to 600 seconds"),
        (("--watch-lease-s", "soon"), "passerelle: --watch-lease-s: must be 1 to 600 seconds"),
        (("--drain-s", "-1"), "passerelle: --drain-s: must be 0 to 300 seconds, got -1"),
        (("sources", "add", "--id", "x"), "passerelle: the following arguments are required"),
        (("sources",), "passerelle: the following arguments are required: ACTION"),
        (("wat",), "passerelle: COMMAND: invalid choice: 'wat'"),
        (("--colour",), "passerelle: unrecognized arguments: --colour"),
        (("--no-demo", "--demo-faults", "demo-rest"), "passerelle: --demo-faults: expected"),
    ],
)
def test_a_bad_flag_is_told_in_one_line_and_exits_2(args: tuple[str, ...], line: str) -> None:
    done = _app(*args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith(line), done.stderr


def test_every_subcommand_reports_its_mistakes_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit:
        build_parser().parse_args(["documents", "push", "m.json"])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert err == "passerelle: the following arguments are required: --client\n"


def test_the_command_line_loads_nothing_heavy_to_read_its_flags() -> None:
    probe = (
        "import sys, app, edge.cli.parser as p\n"
        "p.build_parser().parse_args(['clients', 'create', 'x', '--rate-limit', '2'])\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
