"""The catalogue of source problems agrees with the README's table."""

from __future__ import annotations

import re
from pathlib import Path

from sources.problems import ProblemCode

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_table() -> dict[str, str]:
    section = README.read_text(encoding="utf-8").split("\n### Source problems\n", 1)[1]
    section = section.split("\n#", 1)[0]
    rows = re.findall(r"^\| `([A-Z_]+)` \| (LOSS|WARNING) \|", section, flags=re.MULTILINE)
    return dict(rows)


def test_the_readme_lists_every_problem_code_with_its_severity() -> None:
    assert _readme_table() == {code.value: code.severity.value for code in ProblemCode}
