"""What each graded test of a submission gave: its points, and the mistakes its failure named.

The worker calls :func:`graded_tests` once per assignment, after nbgrader has scored it, and
stores the list in the result (``result["tests"]``); the class report (:mod:`.report`) counts
passes and named mistakes from these lists. A mistake is named by :mod:`softgrad.checks` in a
failing test's message as ``[key]``, where ``key`` is one of :data:`softgrad.checks.MISTAKES`;
only keys of that catalogue are kept, so a bracketed number in a message, or a key a student's
own exception made up, is not counted as a catalogued mistake.
"""

from __future__ import annotations

import re
from pathlib import Path

_KEY = re.compile(r"\[([a-z0-9][a-z0-9-]*)\]")


def mistake_keys(text: str) -> list[str]:
    """The catalogued mistakes named in ``text``, in the order they first appear.

    Examples
    --------
    >>> mistake_keys("Likely mistake [ce-sign]: ...\\nworst entry [0, 1]; [no-such-key]")
    ['ce-sign']
    """
    from softgrad.checks import MISTAKES

    return list(dict.fromkeys(k for k in _KEY.findall(text) if k in MISTAKES))


def _errors(cell) -> str:
    return "\n".join(
        f"{o.get('ename', '')}: {o.get('evalue', '')}"
        for o in cell.get("outputs", [])
        if o.get("output_type") == "error"
    )


def graded_tests(
    gradebook: Path, assignment: str, student: str, autograded: Path, ran: set[str], deleted: dict
) -> list[dict]:
    """One entry per autograded code cell of the submission, in notebook and cell order.

    Each entry has ``notebook``, ``grade_id``, ``points`` (as scored: 0 for a test cell the
    student deleted), ``max_points``, ``passed`` (full points) and ``mistakes`` (the keys of
    :data:`softgrad.checks.MISTAKES` named in the cell's error output). Notebooks that did not
    run (``ran``) give no entries: the report counts their tests as not passed.
    """
    import nbformat
    from nbgrader.api import Gradebook

    from .audit import nbgrader_meta

    out = []
    with Gradebook(f"sqlite:///{gradebook}") as gb:
        sub = gb.find_submission(assignment, student)
        for nb in sub.notebooks:
            name = f"{nb.name}.ipynb"
            if name not in ran:
                continue
            cells = {}
            path = autograded / name
            if path.exists():
                for c in nbformat.read(path, as_version=4).cells:
                    gid = nbgrader_meta(c).get("grade_id")
                    if gid:
                        cells[gid] = c
            order = {gid: i for i, gid in enumerate(cells)}
            gone = set(deleted.get(name, ()))
            for g in sorted(nb.grades, key=lambda g: order.get(g.name, len(order))):
                if g.cell_type != "code":
                    continue
                points = 0.0 if g.name in gone else float(g.auto_score or 0.0)
                top = float(g.max_score)
                cell = cells.get(g.name)
                out.append(
                    {
                        "notebook": name,
                        "grade_id": g.name,
                        "points": points,
                        "max_points": top,
                        "passed": g.name not in gone and points >= top,
                        "mistakes": mistake_keys(_errors(cell)) if cell and points < top else [],
                    }
                )
    return out
