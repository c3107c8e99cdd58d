"""Loopback ports and a Redis database of this test process's own, for pytest-xdist.

The suite runs in worker processes (``-n`` in pyproject.toml), so two tests may run at
once. Servers that the tests start in-process bind port 0 and report the port they got;
what is here is for the others:

- :func:`free_port`, for a subprocess that must be told its port before it binds it (the
  app, the demo systems, a private ``redis-server``), or for a port that must stay
  closed. A port probed with ``bind(("127.0.0.1", 0))`` lies in the kernel's ephemeral
  range, where any outgoing connection on the machine (the other worker makes hundreds)
  can take it before the subprocess binds it. These come from below that range, where
  only an explicit bind takes a port, and from a band of this worker's own.
- :data:`REDIS_URL`: the shared Redis, in a database of this worker's own, so that the
  gateways of two workers never share cached answers or rate-limit buckets (both are
  keyed on the same source ids and on the client's address, 127.0.0.1).
"""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

# PYTEST_XDIST_WORKER is "gw0", "gw1", ... in a worker, unset in a serial run: slot 0.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
# PASSERELLE_TEST_SLOT_OFFSET moves a whole run to other slots, so that two checkouts'
# suites running at once on one machine never share a port band or a Redis database.
_OFFSET = int(os.environ.get("PASSERELLE_TEST_SLOT_OFFSET", "0") or 0)
WORKER_SLOT = _OFFSET + (int(_WORKER.removeprefix("gw")) + 1 if _WORKER.startswith("gw") else 0)

# Redis has databases 0 to 15: a serial run keeps 0, worker gwN uses N + 1.
REDIS_URL = f"redis://127.0.0.1:6379/{WORKER_SLOT % 16}"

_FIRST, _WIDTH = 20_000, 500  # slot n's band: 20000 + 500 n to 20499 + 500 n
# Each call moves on in the band, from a random place: the port that the previous test's
# server had is not handed out again at once.
_offset = random.randrange(_WIDTH)


def _band() -> range | None:
    """This slot's ports, or None where they would reach the ephemeral range."""
    try:
        range_file = Path("/proc/sys/net/ipv4/ip_local_port_range")
        ephemeral_low = int(range_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32_768  # Linux's default
    start = _FIRST + (WORKER_SLOT % 16) * _WIDTH
    return range(start, start + _WIDTH) if start + _WIDTH <= ephemeral_low else None


def free_port(span: int = 1) -> int:
    """A loopback port, free with the ``span - 1`` after it (checked, not reserved)."""
    global _offset
    band = _band()
    for _ in range(_WIDTH):
        if band is None:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port: int = probe.getsockname()[1]
        else:
            port = band.start + _offset % (len(band) - span + 1)
            _offset += span
        if all(_free(port + i) for i in range(span)):
            return port
    raise RuntimeError("no free loopback ports")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
