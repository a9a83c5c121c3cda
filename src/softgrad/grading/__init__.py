"""The instructor's grading workflow, built on nbgrader (kept apart from the numerics).

- ``python -m softgrad.grading release``: nbgrader ``generate_assignment`` for every assignment
  of the course directory (default ``exercises/``) into its ``release/``.
- ``python -m softgrad.grading grade SUBMISSIONS --out DIR --jobs N``: nbgrader ``autograde``
  and ``generate_feedback`` for ``SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb``, read
  without following links (:mod:`.intake`), each kernel in a sandbox (:mod:`.sandbox`), the
  test cells run by the grader against the student's functions in that kernel (:mod:`.remote`),
  with structural and static checks (:mod:`.audit`) and safe feedback pages (:mod:`.feedback`);
  writes ``DIR/grades.csv``, ``DIR/unmatched.csv`` and ``DIR/manual.csv``.
"""

from .course import GradingError, release
from .grade import grade

__all__ = ["GradingError", "grade", "release"]
