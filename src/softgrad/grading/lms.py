"""Grades into the learning-management system: import files for Canvas and Moodle.

Given a roster (``ROSTER=roster.csv``) that pairs each student's folder name in SUBMISSIONS with
their ids in the LMS, :func:`write` turns the rows of grades.csv into

- ``OUT/lms/canvas.csv`` for the Canvas Gradebook's *Import*;
- ``OUT/lms/moodle.csv`` for Moodle's *Import > CSV file* of the gradebook;
- ``OUT/lms/unmatched.csv``: every graded folder that no roster entry names, every roster entry
  that cannot be put in a file, and every roster entry with no folder (empty cells).

Names are matched exactly, never guessed: a folder ``Jane Doe`` and a roster entry ``jane doe``
are different students (the unmatched list points out such near misses). One column per
assignment holds the score of grades.csv, manual points included; a student with no
submission gets no score (an empty cell in Canvas, ``-`` in Moodle, see below), never 0.

The column rules, from the importers' source code (the instructors' page cites them):

Canvas (``GradebookImporter`` in instructure/canvas-lms) reads a header whose first cells are
``Student`` and ``ID``, then ``SIS User ID`` and ``SIS Login ID``, then ``Section``; every later
column is an assignment, matched by its exact title (or ``title (id)``), a new one otherwise. A
row whose first cell is ``Points Possible`` gives the assignments' maximum points. A student is
found by ``ID`` (the Canvas user id), else ``SIS User ID``, else ``SIS Login ID``, and only
then by name; so every row here has at least one of those ids. An empty cell is "no score".

Moodle (``gradeimport_csv_load_data`` in moodle/moodle) lets the instructor map one column to
the user field that identifies the student (``useridnumber``, ``useremail``, ``username`` or
``userid``) and every other column to a grade item or to a new one. A value that matches no
user aborts the whole import, so only roster entries with that id are written. ``-`` is "no
grade" both for an existing grade item and for a new one; an empty cell is "no grade" only for
an existing item (for a new item it is stored as a grade, which a database column turns into
0), so this file writes ``-``.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

from .course import GradingError

#: roster columns: the folder name, the student's name, and the ids each LMS can match on
ROSTER_COLUMNS = (
    "folder",
    "name",
    "canvas_id",
    "sis_user_id",
    "sis_login_id",
    "section",
    "idnumber",
    "email",
    "username",
)
ID_COLUMNS = ("canvas_id", "sis_user_id", "sis_login_id", "idnumber", "email", "username")
CANVAS_IDS = ("canvas_id", "sis_user_id", "sis_login_id")
CANVAS_HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
#: Moodle's identifying column, in order of preference: roster column, header, Moodle field
MOODLE_IDS = (
    ("idnumber", "ID number", "useridnumber"),
    ("email", "Email address", "useremail"),
    ("username", "Username", "username"),
)
#: headers the Canvas importer treats as its own (not an assignment) when a column contains them
CANVAS_RESERVED = (
    "Student",
    "LastName",
    "FirstName",
    "ID",
    "SIS User ID",
    "SIS Login ID",
    "Section",
    "Integration ID",
    "Root Account",
    "Current Score",
    "Current Points",
    "Current Grade",
    "Final Score",
    "Final Points",
    "Final Grade",
    "Override Score",
    "Override Grade",
    "Override Status",
)
UNMATCHED_COLUMNS = ["folder", "lms", "reason"]


@dataclass
class Entry:
    """One roster line (``line`` counts from 1 at the header)."""

    line: int
    values: dict[str, str]

    @property
    def folder(self) -> str:
        return self.values["folder"]


@dataclass
class Roster:
    path: Path
    entries: list[Entry]
    columns: list[str]
    ignored: list[str] = field(default_factory=list)  # header cells that are not roster columns


def read_roster(path: Path) -> Roster:
    """Read and check ``ROSTER``: a CSV with a header naming :data:`ROSTER_COLUMNS`.

    ``folder`` is required, and at least one id column. Header cells are matched without regard
    to case or surrounding spaces; values are kept exactly as written. Raises
    :class:`GradingError` naming the file and line of an empty or repeated folder name or id.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise GradingError(f"ROSTER: cannot read {path} as UTF-8 text: {exc}") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise GradingError(f"ROSTER: {path} is empty (expected a header with 'folder')")
    names = [h.strip().lower() for h in header]
    if "folder" not in names:
        raise GradingError(
            f"ROSTER: {path} has no 'folder' column (the student's folder name in SUBMISSIONS); "
            f"its header is {header!r}; known columns: {', '.join(ROSTER_COLUMNS)}"
        )
    if not any(c in names for c in ID_COLUMNS):
        raise GradingError(
            f"ROSTER: {path} has no id column: give at least one of {', '.join(ID_COLUMNS)}"
        )
    for c in set(names):
        if c in ROSTER_COLUMNS and names.count(c) > 1:
            raise GradingError(f"ROSTER: {path}: column {c!r} appears {names.count(c)} times")
    entries, seen = [], {}
    for line, cells in enumerate(reader, start=2):
        if not any(cell.strip() for cell in cells):
            continue  # a blank line
        if len(cells) > len(names):
            raise GradingError(
                f"ROSTER: {path} line {line}: {len(cells)} cells but {len(names)} columns "
                "(a name with a comma must be quoted)"
            )
        values = {c: "" for c in ROSTER_COLUMNS}
        for c, v in zip(names, cells, strict=False):
            if c in ROSTER_COLUMNS:
                values[c] = v if c == "folder" else v.strip()
        e = Entry(line, values)
        if not e.folder:
            raise GradingError(f"ROSTER: {path} line {line}: the folder column is empty")
        for c in ("folder", *ID_COLUMNS):
            v = values[c]
            if v and (c, v) in seen:
                raise GradingError(
                    f"ROSTER: {path} lines {seen[(c, v)]} and {line} have the same {c} {v!r}"
                )
            seen[(c, v)] = line
        entries.append(e)
    ignored = [h for h, c in zip(header, names, strict=True) if c not in ROSTER_COLUMNS]
    return Roster(path, entries, [c for c in names if c in ROSTER_COLUMNS], ignored)


def _score(row: dict | None) -> str | None:
    """The cell for one row of grades.csv: its score, or None for no score."""
    if row is None or row["status"] in ("missing", "error"):
        return None
    return f"{float(row['score']):g}"


def _near(folder: str, roster: Roster) -> str:
    key = " ".join(folder.split()).casefold()
    for e in roster.entries:
        if " ".join(e.folder.split()).casefold() == key:
            return f" (line {e.line} has {e.folder!r}, which differs in case or spaces only)"
    return ""


def write(
    lms_dir: Path,
    rows: list[dict],
    names: list[str],
    max_scores: dict,
    roster: Roster,
    not_graded: dict[str, str] | None = None,
) -> list[str]:
    """Write the import files into ``lms_dir``; return notes for the run's summary.

    ``not_graded`` maps the entries of SUBMISSIONS that were not graded to the reason, so a
    roster line naming one says why it has no scores.
    """
    not_graded = not_graded or {}
    lms_dir.mkdir(parents=True, exist_ok=True)
    by_folder: dict[str, dict[str, dict]] = {}
    for r in rows:
        by_folder.setdefault(r["student"], {})[r["assignment"]] = r
    listed = {e.folder for e in roster.entries}
    unmatched: list[list[str]] = []
    for folder in by_folder:
        if folder not in listed:
            unmatched.append(
                [folder, "all", "no roster entry has this folder name" + _near(folder, roster)]
            )
    for e in roster.entries:
        if e.folder not in by_folder:
            where = (
                f"its entry in SUBMISSIONS was not graded ({not_graded[e.folder]})"
                if e.folder in not_graded
                else "no such folder in SUBMISSIONS"
            )
            why = f"roster line {e.line}: {where}; written with no scores (no submission)"
            unmatched.append([e.folder, "all", why])
        for a, r in by_folder.get(e.folder, {}).items():
            if r["status"] == "error":
                why = f"{a}: the grader failed on it; no score written (re-run make grade)"
                unmatched.append([e.folder, "all", why])
    notes = []
    reserved = [a for a in names if any(x in a for x in CANVAS_RESERVED)]
    if reserved:
        notes.append(
            "Canvas takes columns containing "
            + ", ".join(x for x in CANVAS_RESERVED if any(x in a for a in reserved))
            + " for its own: rename assignments "
            + ", ".join(reserved)
        )
    canvas_cols = [c for c in CANVAS_IDS if c in roster.columns]
    if canvas_cols:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([*CANVAS_HEADER, *names])
        w.writerow(["Points Possible", "", "", "", "", *(f"{max_scores[a]:g}" for a in names)])
        for e in roster.entries:
            v = e.values
            if not any(v[c] for c in CANVAS_IDS):
                why = (
                    f"roster line {e.line}: no canvas_id, sis_user_id or sis_login_id (Canvas "
                    "would match the name), left out of canvas.csv"
                )
                unmatched.append([e.folder, "canvas", why])
                continue
            mine = by_folder.get(e.folder, {})
            cells = [_score(mine.get(a)) for a in names]
            w.writerow(
                [
                    v["name"] or e.folder,
                    v["canvas_id"],
                    v["sis_user_id"],
                    v["sis_login_id"],
                    v["section"],
                    *(c if c is not None else "" for c in cells),
                ]
            )
        _write_atomic(lms_dir / "canvas.csv", buf.getvalue())
        notes.append(f"wrote {lms_dir / 'canvas.csv'} (Canvas Gradebook > Import)")
    else:
        (lms_dir / "canvas.csv").unlink(missing_ok=True)
    moodle = next((m for m in MOODLE_IDS if m[0] in roster.columns), None)
    if moodle:
        column, header, field_name = moodle
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([header, *names])
        for e in roster.entries:
            if not e.values[column]:
                why = (
                    f"roster line {e.line}: no {column}, left out of moodle.csv (Moodle stops "
                    "the whole import at a row it cannot match)"
                )
                unmatched.append([e.folder, "moodle", why])
                continue
            mine = by_folder.get(e.folder, {})
            cells = [_score(mine.get(a)) for a in names]
            w.writerow([e.values[column], *(c if c is not None else "-" for c in cells)])
        _write_atomic(lms_dir / "moodle.csv", buf.getvalue())
        notes.append(
            f"wrote {lms_dir / 'moodle.csv'} (Moodle Grades > Import > CSV file: map "
            f"'{header}' to {field_name}, each assignment column to its grade item)"
        )
    else:
        (lms_dir / "moodle.csv").unlink(missing_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(UNMATCHED_COLUMNS)
    w.writerows(unmatched)
    _write_atomic(lms_dir / "unmatched.csv", buf.getvalue())
    if unmatched:
        notes.append(f"{len(unmatched)} roster problems listed in {lms_dir / 'unmatched.csv'}:")
        notes += [f"  {f!r} ({where}): {why}" for f, where, why in unmatched]
    if roster.ignored:
        notes.append("roster columns ignored: " + ", ".join(map(repr, roster.ignored)))
    return notes


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
