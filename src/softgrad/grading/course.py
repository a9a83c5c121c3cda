"""The nbgrader course directory: its config, its assignments, and ``generate_assignment``."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

GRADER_VERSION = "softgrad-grading-3"  # part of every cache key: bump when grading changes


class GradingError(RuntimeError):
    """A problem with the course or the command line, reported without a traceback."""


def assignments(course: Path) -> list[str]:
    """Assignment names: the folders of ``course/source`` that hold a notebook."""
    source = course / "source"
    if not source.is_dir():
        raise GradingError(f"course: {source} does not exist (expected source/<assignment>/)")
    names = sorted(
        p.name
        for p in source.iterdir()
        if p.is_dir() and not p.name.startswith(".") and any(p.glob("*.ipynb"))
    )
    if not names:
        raise GradingError(f"course: no assignment notebooks under {source}")
    return names


def tools_on_path() -> None:
    """Put this Python's ``bin`` first on PATH: nbgrader runs its ``alembic`` script by name."""
    import os
    import sys

    bindir = os.path.dirname(sys.executable)
    path = os.environ.get("PATH", "")
    if path.split(os.pathsep)[:1] != [bindir]:
        os.environ["PATH"] = bindir + os.pathsep + path


def load_config(course: Path):
    """The course's ``nbgrader_config.py`` as a traitlets Config (empty if there is none)."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    cfg_file = course / "nbgrader_config.py"
    if not cfg_file.exists():
        return Config()
    return PyFileConfigLoader(cfg_file.name, path=str(course)).load_config()


#: modules that only write files from stored results (the report, the LMS files, the shard
#: merge): every run writes those files again, so a change to them need not re-grade anything
OUTPUT_ONLY = frozenset({"grading/report.py", "grading/lms.py", "grading/shard.py"})


def code_hash() -> str:
    """Hash of the softgrad package's Python source: the checks, the reference numerics and the
    grader all decide grades, so a change to any of them re-grades everything (apart from
    :data:`OUTPUT_ONLY`)."""
    import softgrad

    root = Path(softgrad.__file__).resolve().parent
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        rel = p.relative_to(root).as_posix()
        if rel not in OUTPUT_ONLY:
            h.update(rel.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def source_hash(course: Path, assignment: str) -> str:
    """Hash of everything under ``source/<assignment>`` plus the course config."""
    h = hashlib.sha256(GRADER_VERSION.encode())
    cfg = course / "nbgrader_config.py"
    if cfg.exists():
        h.update(cfg.read_bytes())
    base = course / "source" / assignment
    for p in sorted(base.rglob("*")):
        if p.is_file() and ".ipynb_checkpoints" not in p.parts:
            h.update(str(p.relative_to(base)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def generate(course: Path, names: list[str], release_dir: Path, db_path: Path, log) -> None:
    """Run nbgrader ``generate_assignment`` for ``names`` into ``release_dir``.

    The gradebook it fills (with the test cells, hidden tests included) goes to ``db_path``.
    """
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.utils import capture_log

    tools_on_path()
    config = load_config(course)
    config.CourseDirectory.root = str(course.resolve())
    config.CourseDirectory.release_directory = str(release_dir.resolve())
    config.CourseDirectory.db_url = f"sqlite:///{db_path.resolve()}"
    for name in names:
        coursedir = CourseDirectory(config=config)
        coursedir.assignment_id = name
        app = GenerateAssignment(coursedir=coursedir, config=config)
        app.force = True
        app.create_assignment = True
        result = capture_log(app)
        if not result["success"]:
            raise GradingError(
                f"generate_assignment {name} failed:\n{result.get('log', '')}"
                f"\n{result.get('error', '')}"
            )
        log(f"released {name} -> {release_dir / name}")


def release(course: Path, log=print) -> list[Path]:
    """``make release``: the student version of every assignment in ``course/release``."""
    course = course.resolve()
    names = assignments(course)
    release_dir = course / "release"
    with tempfile.TemporaryDirectory(prefix="softgrad-release-") as tmp:
        staged = Path(tmp) / "release"
        generate(course, names, staged, Path(tmp) / "gradebook.db", log=lambda m: None)
        # replace each assignment's folder only once all were generated
        release_dir.mkdir(exist_ok=True)
        for name in names:
            dest = release_dir / name
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(staged / name, dest)
            log(f"released {name} -> {dest}")
    return sorted(p for n in names for p in (release_dir / n).glob("*.ipynb"))


def solved(source_nb, released_nb):
    """A submission that answers every solution cell of ``released_nb`` with the source's solution.

    Used to synthesise submissions for tests and the benchmark; returns a new notebook.
    """
    import copy

    answers = {
        c.metadata.get("nbgrader", {}).get("grade_id"): c.source
        for c in source_nb.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }
    nb = copy.deepcopy(released_nb)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and gid in answers:
            cell.source = answers[gid]
    return nb
