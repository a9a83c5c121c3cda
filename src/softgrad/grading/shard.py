"""Grading past one machine: disjoint, stable slices of the students, and their merge.

``make grade SHARD=k/n`` grades only the students of slice ``k`` of ``n`` (:func:`select`) and
also writes ``OUT/shard.json``, which holds everything the merge needs: the slice, the rows
it graded (before manual points are added), the full list of students and the unmatched
entries it saw, the assignments with their maximum and tests, and a key of the grading inputs
(grader version, softgrad's source, the course's source, the limits). ``make grade-merge``
(:func:`load`) checks that the shards fit together, one of each ``k`` with the same ``n``,
the same key and the same students, and gives the rows in the order of a single run, from
which grades.csv, the report and the LMS files are written as by ``make grade``.

A student's slice depends on nothing but their id and ``n`` (a hash), so a student keeps their
slice when others join or leave the class, and each shard can run on its own machine or as one
task of a job array (Slurm's ``SLURM_ARRAY_TASK_ID``, HTCondor's ``$(Process)``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .course import GradingError

FORMAT = 1
FILE = "shard.json"


def parse(text: str) -> tuple[int, int]:
    """``"k/n"`` -> ``(k, n)``, with ``1 <= k <= n``.

    Examples
    --------
    >>> parse("2/3")
    (2, 3)
    """
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise GradingError(f"SHARD: expected k/n with 1 <= k <= n (such as 1/4), got {text!r}")
    return int(m.group(1)), int(m.group(2))


def shard_of(student_id: str, n: int) -> int:
    """The slice (1 to ``n``) of the student with this id: a hash, so it never depends on the
    other students.

    Examples
    --------
    >>> [shard_of(s, 3) for s in ("ada", "bob")] == [shard_of(s, 3) for s in ("ada", "bob")]
    True
    >>> shard_of("ada", 1)
    1
    """
    digest = hashlib.sha256(student_id.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % n + 1


def select(students: list[str], k: int, n: int) -> list[str]:
    """The students of slice ``k`` of ``n``, in their given order."""
    return [s for s in students if shard_of(s, n) == k]


def save(out: Path, data: dict) -> None:
    path = out / FILE
    tmp = path.with_name(f".{FILE}.tmp")
    tmp.write_text(json.dumps({"format": FORMAT, **data}, indent=1, sort_keys=True))
    os.replace(tmp, path)


@dataclass
class Merged:
    """What :func:`load` gives: the rows of all shards in the order of a single run."""

    rows: list[dict]
    names: list[str]
    max_scores: dict[str, float]
    tests: dict[str, list[dict]]
    unmatched: list[list[str]]
    n: int


def load(dirs: list[Path], out: Path) -> Merged:
    """Read the shards' ``shard.json`` and check that they fit together into one class."""
    if not dirs:
        raise GradingError("SHARDS: give the output dirs of the shards to merge")
    out = out.resolve()
    shards = []
    for d in dirs:
        d = Path(d)
        if d.resolve() == out:
            raise GradingError(f"OUT {out} is one of the SHARDS: merge into a dir of its own")
        try:
            data = json.loads((d / FILE).read_text())
        except FileNotFoundError:
            raise GradingError(
                f"SHARDS: {d} has no {FILE}: it is not the output of make grade SHARD=k/n"
            ) from None
        except (OSError, ValueError) as exc:
            raise GradingError(f"SHARDS: cannot read {d / FILE}: {exc}") from None
        if data.get("format") != FORMAT:
            raise GradingError(
                f"SHARDS: {d / FILE} is in format {data.get('format')!r}, not {FORMAT}; "
                "grade it again with this version"
            )
        shards.append((d, data))
    first_dir, first = shards[0]
    n = first["shard"][1]
    for d, data in shards[1:]:
        for what, why in (
            ("shard", "another number of shards n"),
            ("key", "other grading inputs (grader or softgrad version, course, limits)"),
            ("students", "another SUBMISSIONS folder (other students)"),
            ("unmatched", "another SUBMISSIONS folder (other unmatched entries)"),
        ):
            mine, theirs = data[what], first[what]
            if what == "shard":
                mine, theirs = mine[1], theirs[1]
            if mine != theirs:
                raise GradingError(f"SHARDS: {d} was graded with {why} than {first_dir}")
    seen: dict[int, Path] = {}
    for d, data in shards:
        k = data["shard"][0]
        if k in seen:
            raise GradingError(f"SHARDS: {seen[k]} and {d} are both shard {k}/{n}")
        seen[k] = d
    absent = [f"{k}/{n}" for k in range(1, n + 1) if k not in seen]
    if absent:
        raise GradingError("SHARDS: missing shard " + ", ".join(absent) + " (grade it, then merge)")
    names = first["names"]
    rows, got = [], {}
    for d, data in shards:
        for r in data["rows"]:
            if shard_of(r["student_id"], n) != data["shard"][0]:
                raise GradingError(f"SHARDS: {d} holds {r['student_id']}, not of its slice")
            got.setdefault(r["student_id"], []).append(r["assignment"])
            rows.append(r)
    lost = [s for s in first["students"] if sorted(got.get(s, [])) != sorted(names)]
    if lost or set(got) - set(first["students"]):
        raise GradingError(
            "SHARDS: the shards' rows do not cover every student once: "
            + ", ".join(lost or sorted(set(got) - set(first["students"])))
        )
    order = {a: i for i, a in enumerate(names)}
    rows.sort(key=lambda r: (r["student_id"], order[r["assignment"]]))
    return Merged(rows, names, first["max_scores"], first["tests"], first["unmatched"], n)


def feedback_dirs(dirs: list[Path]) -> list[Path]:
    return [Path(d) / "feedback" for d in dirs if (Path(d) / "feedback").is_dir()]
