"""Helpers shared by the grading tests (test_grading, test_grading_attacks): the demo course,
the grading command, and the demo notebook's answer cell."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FIXTURE_COURSE = Path(__file__).parent / "fixtures" / "course"


def cli(*args: str, timeout: float = 600, env=None) -> subprocess.CompletedProcess:
    """``python -m softgrad.grading ARGS``, its output captured, never raising."""
    return subprocess.run(
        [sys.executable, "-m", "softgrad.grading", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


def cell(nb, grade_id):
    """The cell of ``nb`` with this nbgrader grade id."""
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def answer(nb, source: str):
    """``nb`` with the demo's solution cell replaced by ``source``."""
    cell(nb, "double_solution").source = source
    return nb
