"""Every chapter executes without error under nbval (lax mode: errors fail, outputs are not compared).

The chapters are MyST Markdown notebooks (`chapters/NN_*.md`); nbval reads only `.ipynb`, so each
chapter is converted with jupytext into a temporary notebook and run by `pytest --nbval-lax` in a
subprocess, one test per chapter so that a failure names the chapter and shows the failing cell.
This runs the chapters independently of the book build and its execution cache.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]


def _is_notebook(path: Path) -> bool:
    text = path.read_text(encoding="utf-8")
    return text.startswith("---") and "kernelspec" in text.split("\n---", 1)[0]


CHAPTERS = sorted(p for p in (ROOT / "chapters").glob("[0-9][0-9]_*.md") if _is_notebook(p))


def test_chapters_are_found():
    assert CHAPTERS, "no chapters/NN_*.md notebooks found"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_executes(chapter, tmp_path):
    import jupytext

    notebook = tmp_path / f"{chapter.stem}.ipynb"
    jupytext.write(jupytext.read(chapter), notebook, fmt="ipynb")
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "--nbval-lax",
        "--nbval-cell-timeout=600",
        "-p",
        "no:cacheprovider",
        "-q",
        "--rootdir",
        str(tmp_path),
        str(notebook),
    ]
    run = subprocess.run(
        cmd, check=False, cwd=tmp_path, capture_output=True, text=True, timeout=3600
    )
    assert run.returncode == 0, (
        f"{chapter.relative_to(ROOT)} failed under nbval-lax (exit {run.returncode}):\n"
        + "\n".join((run.stdout + run.stderr).splitlines()[-60:])
    )
