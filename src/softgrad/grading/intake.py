"""Read the submissions folder without trusting it.

Everything under SUBMISSIONS was made by students (or by an LMS export of their uploads). The
grader never follows a link there and never opens a file of it in place after intake:

- :func:`entries` lists SUBMISSIONS with ``lstat``: every student folder becomes a student, and
  everything else (links, loose files, a notebook at the top level, an LMS's ``__MACOSX``) an
  :class:`Unmatched` entry with its reason, reported beside grades.csv;
- :func:`copy_tree` copies one student's assignment folder by content (``O_NOFOLLOW`` at every
  level, regular files only, with size and count caps) into a grader-owned folder, and lists
  the links and special files it refused;
- :func:`choose` picks the one notebook that is graded for each released notebook, by the rule
  documented on the instructors' page, and says which others were passed over;
- :func:`safe_id` maps a folder name of any spelling (``Doe, Jane [12345]``, a newline, a
  leading dot) to the id nbgrader and the feedback folders use.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

#: folders an archive tool or an OS adds, never a student's
JUNK = frozenset({"__MACOSX", ".ipynb_checkpoints", ".git", ".DS_Store", "Thumbs.db"})
MAX_FILES = 2000
MAX_BYTES = 64 * 1024**2  # per student and assignment
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass
class Unmatched:
    """An entry of SUBMISSIONS that is not graded, and why."""

    entry: str
    reason: str


@dataclass
class Copied:
    """What :func:`copy_tree` copied and what it refused."""

    files: list[str] = field(default_factory=list)  # relative paths, copied
    refused: list[str] = field(default_factory=list)  # "path (why)"
    mtimes: dict[str, float] = field(default_factory=dict)


def safe_id(name: str) -> str:
    """The id under which nbgrader and the feedback folders know the student ``name``.

    A plain name is kept as it is; any other gets a slug and a short hash of the exact name, so
    two spellings never share an id.

    Examples
    --------
    >>> safe_id("jdoe")
    'jdoe'
    >>> safe_id("Doe, Jane [12345]")
    'Doe-Jane-12345-4f6498ff'
    >>> safe_id(".hidden") != safe_id("hidden")
    True
    """
    if _SAFE.fullmatch(name) and name not in JUNK:
        return name
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")[:40] or "student"
    return f"{slug}-{hashlib.sha256(name.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"


def entries(submissions: Path) -> tuple[list[str], list[Unmatched]]:
    """(student folder names, entries that are not graded) of SUBMISSIONS, by ``lstat``."""
    students, unmatched = [], []
    with os.scandir(submissions) as it:
        for e in sorted(it, key=lambda e: e.name):
            st = e.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                unmatched.append(Unmatched(e.name, "a link: the grader never follows links"))
            elif not stat.S_ISDIR(st.st_mode):
                why = (
                    "a notebook outside any student folder (expected <student>/<assignment>/)"
                    if e.name.endswith(".ipynb")
                    else "not a folder"
                )
                unmatched.append(Unmatched(e.name, why))
            elif e.name in JUNK:
                unmatched.append(Unmatched(e.name, "a folder added by an archive tool or an OS"))
            else:
                students.append(e.name)
    return students, unmatched


def kind(path: Path) -> str:
    """``"dir"``, ``"file"``, ``"link"``, ``"other"`` or ``"absent"``, by ``lstat``."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return "absent"
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISDIR(mode):
        return "dir"
    return "file" if stat.S_ISREG(mode) else "other"


def copy_tree(base: Path, parts: list[str], dest: Path, *, top_only: bool = False) -> Copied:
    """Copy the regular files under ``base/parts...`` into ``dest`` by content, following no link.

    ``base`` is SUBMISSIONS (the instructor's own path); from there every folder is opened with
    ``O_NOFOLLOW | O_DIRECTORY`` relative to its parent's descriptor and every file with
    ``O_NOFOLLOW``, so a link is refused at every level, even one swapped in while this runs.
    ``top_only`` copies the files directly in the folder and no subfolder.
    """
    out = Copied()
    total = 0
    flags_dir = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    root_fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts:
            fd = os.open(part, flags_dir, dir_fd=root_fd)
            os.close(root_fd)
            root_fd = fd
    except OSError as exc:
        os.close(root_fd)
        out.refused.append(f"{'/'.join(parts)} ({exc.strerror})")
        return out

    def walk(dir_fd: int, rel: str) -> None:
        nonlocal total
        for name in sorted(os.listdir(dir_fd)):
            path = f"{rel}/{name}" if rel else name
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                out.refused.append(f"{path} (a link)")
            elif stat.S_ISDIR(st.st_mode):
                if name in JUNK or top_only:
                    continue
                try:
                    fd = os.open(name, flags_dir, dir_fd=dir_fd)
                except OSError as exc:
                    out.refused.append(f"{path} ({exc.strerror})")
                    continue
                try:
                    walk(fd, path)
                finally:
                    os.close(fd)
            elif not stat.S_ISREG(st.st_mode):
                out.refused.append(f"{path} (not a regular file)")
            elif name in JUNK:
                continue
            elif len(out.files) >= MAX_FILES or total + st.st_size > MAX_BYTES:
                out.refused.append(f"{path} (over the intake cap of {MAX_FILES} files, 64 MiB)")
            else:
                try:
                    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
                except OSError as exc:
                    out.refused.append(f"{path} ({exc.strerror})")
                    continue
                with os.fdopen(fd, "rb") as f:
                    if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                        out.refused.append(f"{path} (not a regular file)")
                        continue
                    data = f.read(MAX_BYTES - total + 1)
                total += len(data)
                target = dest / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                out.files.append(path)
                out.mtimes[path] = st.st_mtime

    try:
        walk(root_fd, "")
    finally:
        os.close(root_fd)
    return out


def _answered(nb, released) -> int:
    """How many solution cells of ``nb`` differ from the released notebook's."""
    from .audit import _norm, _source, nbgrader_meta

    given = {
        nbgrader_meta(c).get("grade_id"): _norm(_source(c))
        for c in released.cells
        if nbgrader_meta(c).get("solution")
    }
    return sum(
        1
        for c in nb.cells
        if nbgrader_meta(c).get("solution")
        and nbgrader_meta(c).get("grade_id") in given
        and _norm(_source(c)) != given[nbgrader_meta(c).get("grade_id")]
    )


def candidates(files: list[str], expected: str, others: set[str]) -> list[str]:
    """Copied notebooks that could be the student's ``expected``: its name, or its stem
    followed by anything (``ex01 (1).ipynb``, ``ex01-jdoe.ipynb``), anywhere; if there is none,
    every notebook that is not another released notebook's exact name.
    """
    nbs = [f for f in files if f.endswith(".ipynb")]
    stem = expected[: -len(".ipynb")]
    like = [f for f in nbs if Path(f).name == expected or Path(f).name.startswith(stem)]
    like = [f for f in like if Path(f).name not in others or Path(f).name == expected]
    return like or [f for f in nbs if Path(f).name not in others]


def choose(paths: list[str], expected: str, read, released, mtimes) -> tuple[str, list[str]]:
    """The notebook graded for ``expected`` among ``paths``, and the ones passed over.

    The rule (documented on the instructors' page): most solution cells answered first; then
    the released name at the top of the assignment folder; then the newest file; then the
    shortest path. A notebook that cannot be read counts as answering nothing.
    """

    def key(p: str):
        nb = read(p)
        answered = _answered(nb, released) if nb is not None else -1
        return (-answered, p != expected, -mtimes.get(p, 0.0), len(p), p)

    ranked = sorted(paths, key=key)
    return ranked[0], ranked[1:]
