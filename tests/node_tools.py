"""Node.js scripts the tests run (the GraphQL-over-HTTP audit, Apollo Client): their
packages are installed from the lock file the first time, and a missing tool fails
the test with what to install, never skips it."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any


def npm_installed(folder: Path, package: str) -> Path:
    """``folder`` with its ``node_modules`` installed by ``npm ci`` if ``package`` is missing."""
    assert shutil.which("node"), "Node.js is required (Debian package nodejs)"
    if not (folder / "node_modules" / package).is_dir():
        npm = shutil.which("npm")
        assert npm, "npm is required (Debian package npm)"
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=folder, capture_output=True, text=True
        )
        assert done.returncode == 0, f"npm ci in {folder} failed:\n{done.stdout}\n{done.stderr}"
    return folder


async def run_node_json(script: Path, *args: str, timeout_s: float = 120) -> Any:
    """Run ``node script args...`` and return the JSON it prints."""
    node = shutil.which("node")
    assert node, "Node.js is required (Debian package nodejs)"
    process = await asyncio.create_subprocess_exec(
        node, str(script), *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=timeout_s)
    assert process.returncode == 0, err.decode()
    return json.loads(out)
