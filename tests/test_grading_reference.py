"""A student who hands in softgrad's own implementation gets no points for it, however hidden.

The grading kernel loses softgrad's implementations of what the exercise asks for before the
first cell runs (:mod:`softgrad.grading.confine`). Each student below writes the rest of the
notebook honestly and gets ``softmax`` (or the Jacobian) from softgrad in one of the ways a
student who knows Python would try: directly, with the profiler switched off, through an alias
saved before the tests, a private module, a reload, a fresh import, a new Python process, the
garbage collector, the module's source file. Each is judged by the grade: the points of the
tests of that function are lost, and the row is flagged.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

from gradingcourse import cli
from gradingcourse import cell as _cell

pytestmark = [pytest.mark.grading, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
COURSE = REPO / "exercises"
EX1, EX2 = "ex01_stable_softmax", "ex02_softmax_jacobian"

# every attack switches off the profiler a check might watch it with
TAIL = "\nimport sys\n\ndef softmax(z):\n    sys.setprofile(None)\n    return _get()(z)\n"
ATTACKS = {
    "direct": "import softgrad\n\ndef _get():\n    return softgrad.softmax\n" + TAIL,
    "profiler_off": "import sys\nimport softgrad\n\ndef softmax(z):\n"
    "    sys.setprofile(None)\n    sys.settrace(None)\n    return softgrad.softmax(z)\n",
    "saved_alias": "from softgrad import softmax as _reference\n\n"
    "def _get():\n    return _reference\n" + TAIL,
    "private_module": "import importlib\n_m = importlib.import_module('softgrad._soft' + 'max')\n"
    "def _get():\n    return _m.softmax\n" + TAIL,
    "reload": "import importlib\nimport softgrad._softmax as _m\n"
    "def _get():\n    try:\n        importlib.reload(_m)\n    except Exception:\n        pass\n"
    "    return _m.softmax\n" + TAIL,
    "fresh_import": "import importlib, sys\n"
    "def _get():\n    for k in [k for k in sys.modules if k.startswith('softgrad')]:\n"
    "        del sys.modules[k]\n    return importlib.import_module('softgrad').softmax\n" + TAIL,
    "subprocess": "import json, subprocess, sys\nimport numpy as np\n\ndef softmax(z):\n"
    "    sys.setprofile(None)\n"
    "    code = ('import json, sys, numpy as np, softgrad; '\n"
    "            'print(json.dumps(softgrad.softmax(np.array(json.loads(sys.argv[1]))).tolist()))')\n"
    "    out = subprocess.run([sys.executable, '-c', code, json.dumps(np.asarray(z).tolist())],\n"
    "                         capture_output=True, text=True)\n"
    "    return np.array(json.loads(out.stdout))\n",
    "gc_search": "import gc, types\n"
    "_found = [o for o in gc.get_objects() if isinstance(o, types.FunctionType)\n"
    "          and o.__name__ == 'softmax' and 'softgrad' in o.__code__.co_filename]\n"
    "def _get():\n    return _found[0]\n" + TAIL,
    "source_exec": "import os, softgrad\n"
    "def _get():\n    ns = {'__name__': 'softgrad._softmax', '__package__': 'softgrad'}\n"
    "    path = os.path.join(os.path.dirname(softgrad.__file__), '_softmax.py')\n"
    "    exec(compile(open(path).read(), path, 'exec'), ns)\n    return ns['softmax']\n" + TAIL,
}
HONEST = ("honest", "redefined_after_the_tests")


def _points(nb, ids: tuple[str, ...]) -> float:
    return sum(
        float(_cell(nb, i).metadata["nbgrader"]["points"])
        for i in ids
        if _cell(nb, i).metadata["nbgrader"].get("points")
    )


def _softgrad_digest() -> str:
    h = hashlib.sha256()
    for p in sorted((REPO / "src" / "softgrad").rglob("*.py")):
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    from softgrad.grading.course import solved

    proc = cli("--course", str(COURSE), "release")
    assert proc.returncode == 0, proc.stderr
    base = tmp_path_factory.mktemp("reference")
    subs, out = base / "s", base / "o"

    def solution(a):
        name = f"{a}.ipynb"
        released = nbformat.read(COURSE / "release" / a / name, as_version=4)
        return solved(nbformat.read(COURSE / "source" / a / name, as_version=4), released)

    def put(student, a, nb):
        d = subs / student / a
        d.mkdir(parents=True)
        nbformat.write(nb, d / f"{a}.ipynb")

    put("honest", EX1, solution(EX1))
    for student, code in ATTACKS.items():
        nb = solution(EX1)
        _cell(nb, "softmax_impl").source = code
        put(student, EX1, nb)
    # a correct softmax, then (after its tests) a cell that redefines it wrongly
    nb = solution(EX1)
    nb.cells.append(nbformat.v4.new_code_cell("def softmax(z):\n    return z * 0.0\n"))
    put("redefined_after_the_tests", EX1, nb)
    # ex02 hands the student softgrad's softmax; its Jacobian stays the student's to write
    nb = solution(EX2)
    _cell(nb, "jacobian_vectorised_impl").source = (
        "import sys\nimport softgrad as _sg\n\ndef softmax_jacobian(z):\n"
        "    sys.setprofile(None)\n    return _sg.softmax_jacobian(z)\n"
    )
    put("jacobian_reference", EX2, nb)
    put("jacobian_honest", EX2, solution(EX2))

    before = _softgrad_digest()
    args = ["--course", str(COURSE), "grade", str(subs), "--out", str(out), "--jobs", "2"]
    proc = cli(*args, timeout=1200)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(out / "grades.csv", newline="") as f:
        rows = {(r["student"], r["assignment"]): r for r in csv.DictReader(f)}
    return {"rows": rows, "out": out, "digest": (before, _softgrad_digest())}


def _max(a):
    return _points(
        nbformat.read(COURSE / "source" / a / f"{a}.ipynb", as_version=4),
        tuple(
            c.metadata["nbgrader"]["grade_id"]
            for c in nbformat.read(COURSE / "source" / a / f"{a}.ipynb", as_version=4).cells
            if c.metadata.get("nbgrader", {}).get("grade")
            and c.cell_type == "code"
        ),
    )


SOFTMAX_TESTS = ("test_softmax_stable", "test_softmax_masks")


@pytest.mark.parametrize("student", HONEST)
def test_honest_work_keeps_every_automatic_point(graded, student):
    r = graded["rows"][(student, EX1)]
    assert r["status"] == "ok", r
    assert float(r["score"]) == _max(EX1), r
    assert "softgrad's own implementation" not in r["flags"], r


@pytest.mark.parametrize("student", sorted(ATTACKS))
def test_softgrads_softmax_handed_in_scores_nothing_and_is_flagged(graded, student):
    r = graded["rows"][(student, EX1)]
    source = nbformat.read(COURSE / "source" / EX1 / f"{EX1}.ipynb", as_version=4)
    assert float(r["score"]) == _max(EX1) - _points(source, SOFTMAX_TESTS), r
    if student not in ("subprocess", "fresh_import", "source_exec", "gc_search"):
        # these never reach softgrad at all: their own code fails, which is not a flag
        assert "softgrad's own implementation" in r["flags"], r


def test_the_jacobian_exercise_keeps_softmax_but_not_the_jacobian(graded):
    honest = graded["rows"][("jacobian_honest", EX2)]
    assert float(honest["score"]) == _max(EX2), honest
    cheat = graded["rows"][("jacobian_reference", EX2)]
    source = nbformat.read(COURSE / "source" / EX2 / f"{EX2}.ipynb", as_version=4)
    lost = _points(source, ("test_jacobian_vectorised", "test_jacobian_rows_sum_zero"))
    assert float(cheat["score"]) == _max(EX2) - lost, cheat
    assert "softgrad's own implementation" in cheat["flags"], cheat
    page = (
        graded["out"] / "feedback" / cheat["student_id"] / EX2 / f"{EX2}.html"
    ).read_text(encoding="utf-8")
    assert "reference-call" in page


def test_the_installed_package_is_untouched(graded):
    before, after = graded["digest"]
    assert before == after


def test_feedback_of_a_hidden_reference_call_names_the_mistake(graded):
    r = graded["rows"][("profiler_off", EX1)]
    page = (graded["out"] / "feedback" / r["student_id"] / EX1 / f"{EX1}.html").read_text(
        encoding="utf-8"
    )
    assert re.search(r"reference-call", page), page[-3000:]
    assert json.dumps(r)  # the row is plain data
