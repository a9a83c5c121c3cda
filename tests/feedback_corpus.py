"""Run answers written as a struggling student would through the exercises' own test cells.

An :class:`~corpus_answers.Answer` replaces one answer cell of an exercise notebook (the other
answers stay the model solution). :func:`run` executes the notebook's locked imports and answer
cells in one namespace, in-process, then every test cell that depends on the replaced function,
statement by statement, with the visible and the hidden parts recorded apart (so a hidden test is
run even when a visible one failed before it); a wrong answer stops at its first visible failure,
the feedback it gets. :func:`classify` sorts the outcome:

- ``named``: a wrong answer whose first failing visible test names one of the expected mistakes;
- ``generic``: a wrong answer failing without a name (expected for answers listed without a key);
- ``wrong diagnosis``: a mistake was named that the answer does not make;
- ``named instead of generic`` would be a wrong diagnosis too (the answer has no catalogued mistake);
- ``passed-wrong``: a wrong answer passed every visible test (``caught only by hidden`` when a hidden
  test then failed it);
- ``rejected-correct``: a correct answer failed a visible or a hidden test;
- ``ok``: a correct answer passed everything.

``python tests/feedback_corpus.py [--source DIR]`` prints the counts (``DIR`` another checkout's
``exercises/source``, run with that checkout's ``src`` first on ``PYTHONPATH``, gives the counts
before a change).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import json
import re
import sys
import warnings
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

SOURCE = Path(__file__).resolve().parents[1] / "exercises" / "source"
BEGIN, END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
KEY = re.compile(r"Likely mistake \[([a-z0-9-]+)\]")
DEMOS = ("gradcheck_demo", "step_experiment")  # locked cells that only print


@dataclass
class Outcome:
    visible: dict[str, str] = field(default_factory=dict)  # test grade_id -> first error
    hidden: dict[str, str] = field(default_factory=dict)
    tests: list[str] = field(default_factory=list)  # the test cells that were run


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


@cache
def _cells(path: Path) -> tuple:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return tuple(
        (c["cell_type"], _meta(c), "".join(c["source"]))
        for c in nb["cells"]
        if c["cell_type"] == "code"
    )


def _defined(source: str) -> set[str]:
    return {n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)}


def _names(source: str) -> set[str]:
    return {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}


def _segments(source: str) -> list[tuple[bool, str]]:
    out, hidden, lines = [], False, []
    for line in source.splitlines():
        if BEGIN in line or END in line:
            out.append((hidden, "\n".join(lines)))
            hidden, lines = BEGIN in line, []
        else:
            lines.append(line)
    out.append((hidden, "\n".join(lines)))
    return [(h, code) for h, code in out if code.strip()]


def _exec(code: str, ns: dict) -> str | None:
    """Run ``code`` statement by statement; the first error, as 'Type: message'."""
    first = None
    for node in ast.parse(code).body:
        try:
            exec(compile(ast.Module([node], []), "<cell>", "exec"), ns)  # noqa: S102
        except Exception as exc:  # noqa: BLE001 (a failing test is what we record)
            if first is None:
                first = f"{type(exc).__name__}: {exc}"
    return first


def run(answer, source: Path = SOURCE) -> Outcome:
    """Execute the exercise with ``answer`` in its cell; the errors of the test cells it feeds."""
    cells = _cells(source / answer.assignment / f"{answer.assignment}.ipynb")
    answers = {m["grade_id"]: s for kind, m, s in cells if m.get("solution")}
    if answer.cell not in answers:
        raise KeyError(f"{answer.assignment} has no answer cell {answer.cell!r}")
    answers[answer.cell] = answer.source
    # the functions that depend on the replaced one (train calls loss_and_grad, ...)
    affected = _defined(answer.source) or {answer.cell}
    grew = True
    while grew:
        grew = False
        for gid, src in answers.items():
            if gid != answer.cell and _names(src) & affected and not _defined(src) <= affected:
                affected |= _defined(src)
                grew = True
    ns: dict = {"__name__": "__corpus__"}
    out = Outcome()
    with (
        warnings.catch_warnings(),
        np.errstate(all="ignore"),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        warnings.simplefilter("ignore")
        for _kind, m, src in cells:
            gid = m.get("grade_id", "")
            if m.get("solution"):
                err = _exec(answers[gid], ns)
                if err and gid == answer.cell:
                    out.visible["<answer cell>"] = err
            elif m.get("grade"):
                if not (_names(src) & affected):
                    continue
                out.tests.append(gid)
                for hidden, code in _segments(src):
                    err = _exec(code, ns)
                    where = out.hidden if hidden else out.visible
                    if err and gid not in where:
                        where[gid] = err
                    if out.visible and not answer.correct:
                        break  # the first visible failure is the feedback; nothing after counts
                if out.visible and not answer.correct:
                    break
            elif gid not in DEMOS:
                _exec(src, ns)
    return out


def classify(answer, outcome: Outcome) -> str:
    if answer.correct:
        return "ok" if not (outcome.visible or outcome.hidden) else "rejected-correct"
    if not outcome.visible:
        return "passed-wrong" + (" (caught only by hidden)" if outcome.hidden else "")
    first = next(iter(outcome.visible.values()))
    named = set(KEY.findall(first))
    if named - set(answer.keys):
        return "wrong diagnosis"
    return "named" if named else "generic"


CATEGORIES = (
    "named",
    "generic",
    "wrong diagnosis",
    "passed-wrong",
    "passed-wrong (caught only by hidden)",
    "ok",
    "rejected-correct",
)


def tally(answers, source: Path = SOURCE) -> tuple[Counter, list[tuple[object, str, Outcome]]]:
    counts: Counter = Counter()
    rows = []
    for a in answers:
        outcome = run(a, source)
        kind = classify(a, outcome)
        counts[kind] += 1
        rows.append((a, kind, outcome))
    return counts, rows


def main(argv: list[str] | None = None) -> int:
    from corpus_answers import CORRECT, WRONG

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args(argv)
    counts, rows = tally([*WRONG, *CORRECT], args.source)
    print(f"{len(WRONG)} wrong answers, {len(CORRECT)} correct ones")
    for kind in CATEGORIES:
        print(f"  {kind:38s} {counts[kind]}")
    for a, kind, outcome in rows:
        if args.verbose or kind not in ("named", "ok", "generic" if not a.keys else "-"):
            first = next(iter(outcome.visible.values()), "") or next(
                iter(outcome.hidden.values()), ""
            )
            print(f"\n[{kind}] {a.assignment}/{a.cell}: {a.note} (expected {a.keys or 'generic'})")
            print("   " + first[:600].replace("\n", "\n   "))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
