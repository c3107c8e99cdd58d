"""The demo launcher: its children's start-up failures point at their output."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from examples.faults import Faults
from examples.launcher import DemoProviders
from tests.ports import free_port


def test_a_demo_system_dying_at_start_is_named_with_its_log_file(tmp_path: Path) -> None:
    # A spec the child's own command line refuses: it exits 2 before it listens.
    demo = DemoProviders(
        scale=0.01,
        base_port=free_port(3),
        faults={"demo-rest": Faults(latency_s=-1)},
        log_dir=tmp_path / "demo-logs",
    )
    log = tmp_path / "demo-logs" / "demo-rest.log"
    expected = f"demo provider demo-rest exited (exit code 2), its output is in {log}"
    with pytest.raises(RuntimeError, match=re.escape(expected)):
        demo.start()
    assert "--faults" in log.read_text()
    assert not demo.processes
