"""Node.js scripts the tests run (the GraphQL-over-HTTP audit, Apollo Client): their
packages are installed from the lock file the first time, and a missing tool fails
the test with what to install, never skips it."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def install_lock(folder: Path) -> Iterator[None]:
    """Held while ``folder``'s packages are checked and installed: ``npm ci`` deletes
    ``node_modules`` first, so a pytest-xdist worker must neither run it while another
    does nor find half a tree and use it. The lock file is outside the source tree."""
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"passerelle-npm-{key}.lock"
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def npm_installed(folder: Path, package: str) -> Path:
    """``folder`` with its ``node_modules`` installed by ``npm ci`` if ``package`` is missing."""
    assert shutil.which("node"), "Node.js is required (Debian package nodejs)"
    with install_lock(folder):
        if not (folder / "node_modules" / package).is_dir():
            npm = shutil.which("npm")
            assert npm, "npm is required (Debian package npm)"
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=folder,
                capture_output=True,
                text=True,
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
