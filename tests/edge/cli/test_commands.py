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
