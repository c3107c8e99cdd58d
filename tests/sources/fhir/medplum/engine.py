"""Start and stop the Medplum engine (``server.mjs``) on a free loopback port.

    with running_engine(data_path) as base_url:  # "http://127.0.0.1:PORT/fhir"
        ...

Its npm packages are installed from the lock file the first time; a missing node or npm
fails the test with what to install (tests/node_tools.py), never skips it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from tests.node_tools import npm_installed

if TYPE_CHECKING:
    from collections.abc import Iterator

FOLDER = Path(__file__).parent
START_TIMEOUT_S = 60


@contextlib.contextmanager
def running_engine(data: Path) -> Iterator[str]:
    """The engine loaded with ``data`` (a Bundle ``.json`` or ``.ndjson``), its FHIR base URL."""
    npm_installed(FOLDER, "@medplum/fhir-router")
    node = shutil.which("node")
    assert node, "Node.js is required (Debian package nodejs)"
    process = subprocess.Popen(
        [node, str(FOLDER / "server.mjs"), str(data), "--base", "/fhir"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = _first_line(process)
        assert ready, f"the Medplum engine did not start:\n{process.stderr.read()}"  # type: ignore[union-attr]
        info = json.loads(ready)
        yield f"http://127.0.0.1:{info['port']}{info['base']}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _first_line(process: subprocess.Popen[str]) -> str:
    """The line the engine prints when it listens, or "" if it dies or takes too long."""
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(process.stdout.readline()))  # type: ignore[union-attr]
    reader.start()
    reader.join(START_TIMEOUT_S)
    if reader.is_alive() or not line:
        process.kill()
        reader.join()
        return ""
    return line[0].strip()
