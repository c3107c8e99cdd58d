"""Schemathesis fuzzes the live GraphQL endpoint (development mode, so it can
introspect): a fixed seed and example count, and no server error, no response
that breaks the schema. Inputs the schema allows but the API refuses on purpose
(``first`` over 100, a negative radius: ``BAD_USER_INPUT``) are not failures,
hence ``positive_data_acceptance`` is left out."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import Gateway

EXAMPLES_PER_OPERATION = 150
SEED = 20261125


async def test_schemathesis_finds_no_server_error_nor_schema_violation(gateway: Gateway) -> None:
    binary = shutil.which("st", path=str(Path(sys.executable).parent))
    assert binary, "schemathesis is a dev dependency: pip install -e '.[dev]'"
    process = await asyncio.create_subprocess_exec(
        binary, "run", gateway.url,
        "--max-examples", str(EXAMPLES_PER_OPERATION), "--seed", str(SEED),
        "--checks", "all", "--exclude-checks", "positive_data_acceptance",
        "--no-color",
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), timeout=110)
    report = out.decode(errors="replace")
    assert process.returncode == 0, report[-4000:]
    assert "passed" in report and "generated" in report
