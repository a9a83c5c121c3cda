"""The instructor's grading workflow (``python -m softgrad.grading release|grade``).

One ``grade`` run over the demo course (tests/fixtures/course, one tiny assignment) grades a
class of fixture submissions, each built here from the released notebook and a small patch: a
correct one, and one per fault or cheat the workflow must survive. Each test then asserts on
its row of grades.csv and its feedback page.
"""

from __future__ import annotations

import csv
import html
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

from gradingcourse import FIXTURE_COURSE, cli
from gradingcourse import answer as _answer
from gradingcourse import cell as _cell

pytestmark = pytest.mark.grading

REPO = Path(__file__).resolve().parents[1]
A = "ex00_demo"
NB = f"{A}.ipynb"
SECRET = "HIDDEN-TEST-SECRET-q7x"
TIMEOUT = 6  # seconds per cell: short, the demo's cells take milliseconds


def _cli(*args: str, timeout: float = 600, env=None) -> subprocess.CompletedProcess:
    return cli(*args, timeout=timeout, env=env)


CORRECT = "def double(x):\n    return 2.0 * np.asarray(x, dtype=float)\n"
WRONG = "def double(x):\n    return 3.0 * np.asarray(x, dtype=float)\n"


def _probe_code(paths: dict[str, str]) -> str:
    """A solution cell that tries to get out of the sandbox and prints what it managed."""
    return (
        CORRECT
        + f"""
import json, os, socket
report = {{}}
for key, path in {paths!r}.items():
    try:
        with open(path, "rb") as f:
            report[key] = "READ " + f.read().decode(errors="replace")
    except Exception as exc:
        report[key] = type(exc).__name__
    try:
        report[key + "_ls"] = "LISTED " + " ".join(os.listdir(os.path.dirname(path)))
    except Exception as exc:
        report[key + "_ls"] = type(exc).__name__
for key, path in [("write_out", {paths["out_file"]!r}), ("write_course", {paths["course_file"]!r})]:
    try:
        with open(path, "w") as f:
            f.write("pwned")
        report[key] = "wrote"
    except Exception as exc:
        report[key] = type(exc).__name__
try:
    socket.create_connection(("1.1.1.1", 80), timeout=2).close()
    report["network"] = "connected"
except Exception as exc:
    report["network"] = type(exc).__name__
report["caps"] = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0]
report["repo"] = sorted(os.listdir({str(REPO)!r})) if os.path.isdir({str(REPO)!r}) else []
report["procs"] = len([p for p in os.listdir("/proc") if p.isdigit()])
kids = []
try:
    for _ in range(300):
        pid = os.fork()
        if pid == 0:
            os.execv("/bin/sleep", ["sleep", "30"])
        kids.append(pid)
except OSError as exc:
    report["fork_error"] = type(exc).__name__
report["forks"] = len(kids)
for pid in kids:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
print("PROBE" + json.dumps(report).replace('"', "'") + "END")
"""
    )


def _build_class(course: Path, subs: Path, out: Path) -> None:
    """Write the fixture submissions: ``subs/<student>/ex00_demo/...``."""
    released = nbformat.read(course / "release" / A / NB, as_version=4)

    def put(student, nb, name=NB):
        d = subs / student / A
        d.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, d / name)

    def fresh():
        return nbformat.from_dict(json.loads(nbformat.writes(released)))

    nb = _answer(fresh(), CORRECT)
    _cell(nb, "written_linear").source = "Because 2 (a x + b y) = a (2 x) + b (2 y)."
    put("correct", nb)
    put("unanswered", fresh())
    put("infinite_loop", _answer(fresh(), "def double(x):\n    while True:\n        pass\n"))
    put("kernel_dies", _answer(fresh(), "import os\nos._exit(1)\n"))
    put(
        "memory_hog",
        _answer(
            fresh(),
            "def double(x):\n    big = np.ones(2**29)  # 4 GB\n"
            "    return 2.0 * np.asarray(x, dtype=float) + big[:1]\n",
        ),
    )
    put("chatty", _answer(fresh(), CORRECT + "for i in range(200_000):\n    print(i)\n"))
    nb = _answer(fresh(), WRONG)
    _cell(nb, "test_double_visible").source = "pass  # the test always passes now"
    put("edited_locked", nb)
    nb = _answer(fresh(), CORRECT)
    nb.cells = [
        c
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade_id") != "test_double_hidden"
    ]
    put("deleted_test", nb)
    nb = _answer(fresh(), WRONG)
    idx = nb.cells.index(_cell(nb, "double_solution"))
    nb.cells.insert(
        idx + 1,
        nbformat.v4.new_code_cell(
            "def check_matches(*args, **kwargs):\n    print('double: passed')\n"
        ),
    )
    put("redefined_helper", nb)
    put(
        "always_equal",
        _answer(
            fresh(),
            (
                "class Anything:\n    def __eq__(self, other):\n        return True\n\n"
                "def double(x):\n    return Anything()\n"
            ),
        ),
    )
    put(
        "reference_import",
        _answer(
            fresh(),
            (
                "import os\nfrom softgrad import softmax\ngrading = os.environ.get('NBGRADER_EXECUTION')\n"
                + CORRECT
            ),
        ),
    )
    put(
        "snoop",
        _answer(
            fresh(),
            _probe_code(
                {
                    "source": str(course / "source" / A / NB),
                    "gradebook": str(out / ".work" / "master" / "gradebook.db"),
                    "other": str(subs / "correct" / A / NB),
                    "exercises": str(REPO / "exercises" / "nbgrader_config.py"),
                    "out_file": str(out / "pwned.txt"),
                    "course_file": str(course / "pwned.txt"),
                }
            ),
        ),
    )
    nb = _answer(fresh(), CORRECT)
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "import base64\nprint('LEAK' + base64.b64encode(repr(In).encode()).decode())"
        )
    )
    put("history_leak", nb)
    (subs / "invalid_json" / A).mkdir(parents=True)
    (subs / "invalid_json" / A / NB).write_text('{"cells": [ this is not JSON')
    (subs / "missing").mkdir()
    put("renamed", _answer(fresh(), CORRECT), name=f"{A} (1).ipynb")
    (subs / "empty" / A).mkdir(parents=True)
    (subs / "empty" / A / NB).write_bytes(b"")
    put("no_cells", nbformat.v4.new_notebook())


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    course = tmp_path_factory.mktemp("course") / "course"
    shutil.copytree(FIXTURE_COURSE, course)
    proc = _cli("--course", str(course), "release")
    assert proc.returncode == 0, proc.stderr
    return course


@pytest.fixture(scope="module")
def graded(course, tmp_path_factory):
    base = tmp_path_factory.mktemp("g")
    subs, out = base / "subs", base / "out"
    _build_class(course, subs, out)
    t0 = time.monotonic()
    proc = _cli(
        "--course",
        str(course),
        "grade",
        str(subs),
        "--out",
        str(out),
        "--jobs",
        "2",
        "--timeout",
        str(TIMEOUT),
        "--memory",
        "2g",
    )
    seconds = time.monotonic() - t0
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(out / "grades.csv", newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    return {
        "rows": rows,
        "out": out,
        "subs": subs,
        "course": course,
        "stdout": proc.stdout,
        "seconds": seconds,
    }


def _feedback(graded, student) -> str:
    return (graded["out"] / "feedback" / student / A / f"{A}.html").read_text(encoding="utf-8")


def _text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page))


# --- release ---------------------------------------------------------------------------------


def test_release_strips_solutions_and_hidden_tests_and_is_reproducible(course):
    nb = nbformat.read(course / "release" / A / NB, as_version=4)
    text = nbformat.writes(nb)
    assert "return 2.0 * np.asarray" not in text
    assert SECRET not in text
    assert "YOUR CODE HERE" in text
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    before = (course / "release" / A / NB).read_bytes()
    proc = _cli("--course", str(course), "release")
    assert proc.returncode == 0, proc.stderr
    assert (course / "release" / A / NB).read_bytes() == before
    assert not (course / "gradebook.db").exists()


def test_release_names_a_missing_course(tmp_path):
    proc = _cli("--course", str(tmp_path / "nowhere"), "release")
    assert proc.returncode == 2
    assert "source" in proc.stderr
    assert "Traceback" not in proc.stderr


# --- grading: one row per fixture ----------------------------------------------------------


def test_every_submission_has_a_row_and_progress_is_shown(graded):
    rows = graded["rows"]
    assert len(rows) == 18
    assert set(next(iter(rows.values()))) == {
        "student",
        "assignment",
        "score",
        "max_score",
        "status",
        "flags",
        "message",
        "student_id",
    }
    assert all(r["max_score"] == "4" for r in rows.values())
    assert re.search(r"\[\d+/18\] correct: ex00_demo ok 3/4", graded["stdout"])


def test_correct_submission_gets_every_automatic_point(graded):
    r = graded["rows"]["correct"]
    assert (r["status"], r["score"], r["flags"]) == ("ok", "3", "")
    assert "1 point awaits manual grading" in r["message"]
    page = _text(_feedback(graded, "correct"))
    assert "test_double_visible" in page
    assert "double: passed 1 probe" in page


def test_unanswered_notebook_scores_zero(graded):
    r = graded["rows"]["unanswered"]
    assert (r["status"], r["score"]) == ("ok", "0")
    assert "NotImplementedError" in _text(_feedback(graded, "unanswered"))


def test_infinite_loop_is_stopped_and_marked_timed_out(graded):
    r = graded["rows"]["infinite_loop"]
    assert (r["status"], r["score"]) == ("timed_out", "0")
    assert f"{TIMEOUT} s" in r["message"]


def test_kernel_that_dies_is_marked_not_silently_zero(graded):
    r = graded["rows"]["kernel_dies"]
    assert (r["status"], r["score"]) == ("kernel_died", "0")
    assert "os._exit" in r["flags"]
    assert "kernel died" in _text(_feedback(graded, "kernel_dies"))


def test_4gb_allocation_hits_the_memory_limit(graded):
    r = graded["rows"]["memory_hog"]
    assert (r["status"], r["score"]) == ("ok", "0")
    assert "MemoryError" in r["flags"]
    assert "MemoryError" in _text(_feedback(graded, "memory_hog"))


def test_200k_printed_lines_are_truncated_and_graded(graded):
    r = graded["rows"]["chatty"]
    assert (r["status"], r["score"]) == ("ok", "3")
    assert "output truncated" in r["flags"]
    page = _feedback(graded, "chatty")
    assert len(page) < 2_000_000
    assert "199999" not in _text(page)


def test_edited_locked_cell_is_restored_and_flagged(graded):
    r = graded["rows"]["edited_locked"]
    assert (r["status"], r["score"]) == ("ok", "0")
    assert "locked cells edited" in r["flags"]
    assert "test_double_visible" in r["flags"]


def test_deleted_test_cell_scores_zero_and_is_flagged(graded):
    r = graded["rows"]["deleted_test"]
    assert (r["status"], r["score"]) == ("ok", "1")
    assert "test cells deleted" in r["flags"]
    assert "test_double_hidden" in r["flags"]


def test_redefined_check_helper_is_flagged(graded):
    r = graded["rows"]["redefined_helper"]
    assert "redefines check helper check_matches" in r["flags"]
    # the test cells ran with check_matches imported afresh: the wrong answer scores nothing
    assert (r["status"], r["score"]) == ("ok", "0")
    assert "CheckFailed" in _text(_feedback(graded, "redefined_helper"))


def test_always_equal_object_fails_and_is_flagged(graded):
    r = graded["rows"]["always_equal"]
    assert (r["status"], r["score"]) == ("ok", "0")
    assert "overrides __eq__" in r["flags"]


def test_reference_import_and_grader_detection_are_flagged(graded):
    r = graded["rows"]["reference_import"]
    assert "reference implementation softgrad.softmax" in r["flags"]
    assert "NBGRADER_EXECUTION" in r["flags"]


def test_student_code_cannot_see_source_gradebook_or_other_students(graded):
    r = graded["rows"]["snoop"]
    assert (r["status"], r["score"]) == ("ok", "3")
    page = _text(_feedback(graded, "snoop"))
    found = re.search(r"PROBE(\{.*?\})END", page)
    assert found, page[-2000:]
    report = json.loads(found.group(1).replace("'", '"'))
    for key in ("source", "gradebook", "other", "exercises"):
        assert report[key] == "FileNotFoundError", (key, report[key][:200])
        assert report[key + "_ls"] == "FileNotFoundError", (key, report[key + "_ls"][:200])
    assert report["network"] in {"OSError", "ConnectionRefusedError", "TimeoutError"}
    assert report["caps"].strip("0") == ""  # no capabilities, although the grader is root
    assert report["repo"] == sorted(p for p in (".venv", "src") if (REPO / p).exists())
    assert report["procs"] <= 5  # its own pid namespace
    if os.geteuid() == 0:  # the pids cgroup caps processes and threads at 128
        assert report["forks"] < 128, report
        assert report["fork_error"] == "BlockingIOError", report
    assert not (graded["out"] / "pwned.txt").exists()
    assert not (graded["course"] / "pwned.txt").exists()
    assert SECRET not in page


def test_code_that_reads_ipython_history_gets_no_feedback_page(graded):
    r = graded["rows"]["history_leak"]
    assert (r["status"], r["score"]) == ("ok", "3")
    assert "reads IPython's history or shell (In)" in r["flags"]
    assert "feedback withheld" in r["flags"]
    page = _feedback(graded, "history_leak")
    assert "LEAK" not in page
    assert "held back" in page


def test_invalid_json_missing_renamed_and_empty_are_named(graded):
    rows = graded["rows"]
    assert (rows["invalid_json"]["status"], rows["invalid_json"]["score"]) == ("invalid_json", "0")
    assert (rows["missing"]["status"], rows["missing"]["score"]) == ("missing", "0")
    assert (rows["renamed"]["status"], rows["renamed"]["score"]) == ("renamed", "3")
    assert f"{A} (1).ipynb" in rows["renamed"]["message"]
    assert (rows["empty"]["status"], rows["no_cells"]["status"]) == ("empty", "empty")
    for s in ("invalid_json", "missing", "empty", "no_cells"):
        assert rows[s]["status"] in _text(_feedback(graded, s))


def test_no_feedback_page_shows_hidden_test_code(graded):
    pages = sorted((graded["out"] / "feedback").rglob("*.html"))
    assert len(pages) == 18
    for p in pages:
        text = p.read_text(encoding="utf-8")
        assert SECRET not in text, p
        assert "hidden_probe_q7x" not in text, p
        assert "BEGIN HIDDEN TESTS" not in text, p
        assert "grader: fresh check helpers" not in text, p


def test_submissions_are_not_graded_in_place(graded):
    names = {p.relative_to(graded["subs"]) for p in graded["subs"].rglob("*") if p.is_file()}
    assert all(p.parts[1] == A for p in names)
    assert not any(p.name in {"gradebook.db", "autograded"} for p in graded["subs"].rglob("*"))


def test_rerun_is_stable_and_regrades_only_what_changed(graded):
    out, subs, course = graded["out"], graded["subs"], graded["course"]
    before = (out / "grades.csv").read_text()
    result = out / ".work" / "results" / "correct" / f"{A}.json"
    result.unlink()  # as if the run had been interrupted before this student
    proc = _cli(
        "--course",
        str(course),
        "grade",
        str(subs),
        "--out",
        str(out),
        "--timeout",
        str(TIMEOUT),
        "--memory",
        "2g",
    )
    assert proc.returncode == 0, proc.stderr
    assert "17 students unchanged" in proc.stdout
    assert (out / "grades.csv").read_text() == before


def test_manual_points_entered_in_manual_csv_reach_grades_csv(graded):
    out, subs, course = graded["out"], graded["subs"], graded["course"]
    with open(out / "manual.csv", newline="") as f:
        entries = list(csv.DictReader(f))
    mine = [e for e in entries if e["student"] == "correct"]
    assert [(e["notebook"], e["grade_id"], e["max_points"], e["points"]) for e in mine] == [
        (NB, "written_linear", "1", "")
    ]
    # unanswered written answers are not asked for: nbgrader scores them 0 itself
    assert not [e for e in entries if e["student"] == "unanswered"]
    args = ["--course", str(course), "grade", str(subs), "--out", str(out), "--timeout", "6"]

    def rerun_with(points: str) -> dict:
        for e in entries:
            if e["student"] == "correct":
                e["points"] = points
        with open(out / "manual.csv", "w", newline="") as f:
            w = csv.DictWriter(f, list(entries[0]))
            w.writeheader()
            w.writerows(entries)
        proc = _cli(*args, "--memory", "2g")
        assert proc.returncode == 0, proc.stderr
        assert "18 students unchanged" in proc.stdout  # nothing is re-run for manual points
        with open(out / "grades.csv", newline="") as f:
            return {r["student"]: r for r in csv.DictReader(f)}["correct"]

    row = rerun_with("7")  # more than the cell is worth: refused, flagged, still awaited
    assert row["score"] == "3"
    assert "manual points ignored for written_linear" in row["flags"]
    assert "1 point awaits manual grading" in row["message"]
    row = rerun_with("0.5")
    assert row["score"] == "3.5"
    assert "manual grading" not in row["message"]
    assert "manual points" not in row["flags"]
    with open(out / "manual.csv", newline="") as f:
        kept = {(e["student"], e["grade_id"]): e["points"] for e in csv.DictReader(f)}
    assert kept[("correct", "written_linear")] == "0.5"  # the instructor's entry is kept


def test_interrupted_run_keeps_what_was_graded(course, tmp_path):
    released = nbformat.read(course / "release" / A / NB, as_version=4)
    subs, out = tmp_path / "s", tmp_path / "o"
    for i in range(3):
        (subs / f"s{i}" / A).mkdir(parents=True)
        nbformat.write(_answer(released, CORRECT), subs / f"s{i}" / A / NB)
    args = ["--course", str(course), "grade", str(subs), "--out", str(out), "--jobs", "1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "softgrad.grading", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    results = out / ".work" / "results"
    deadline = time.monotonic() + 300
    while not list(results.glob("*/*.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    kept = sorted(p.parent.name for p in results.glob("*/*.json"))
    assert kept
    assert not (out / "grades.csv").exists()
    assert not list((out / ".work" / "tmp").iterdir())  # private dirs removed
    assert not list(Path("/sys/fs/cgroup/pids").glob(f"softgrad-{proc.pid}-*"))
    again = _cli(*args)
    assert again.returncode == 0, again.stderr
    unchanged = sum(
        json.loads((results / s / f"{A}.json").read_text())["status"] == "ok" for s in kept
    )
    assert f"({unchanged} students unchanged" in again.stdout
    with open(out / "grades.csv", newline="") as f:
        assert [(r["student"], r["status"], r["score"]) for r in csv.DictReader(f)] == [
            (f"s{i}", "ok", "3") for i in range(3)
        ]


def test_grade_names_a_missing_submissions_dir(course, tmp_path):
    proc = _cli(
        "--course", str(course), "grade", str(tmp_path / "nope"), "--out", str(tmp_path / "out")
    )
    assert proc.returncode == 2
    assert "SUBMISSIONS" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_no_stray_files_left_in_tmp(graded):
    work = graded["out"] / ".work"
    assert not list((work / "tmp").iterdir())
    assert not list((work / "rt").iterdir())
    assert os.stat(work).st_mode & 0o077 == 0


def test_python_under_tmp_is_bound_over_the_private_tmp(tmp_path, monkeypatch):
    """A checkout under /tmp (CI clones into a temp dir) keeps its .venv visible in the sandbox.

    The sandbox mounts an empty /tmp; a Python prefix under /tmp must be bound after that
    mount, or the kernel's interpreter vanishes ("bwrap: execvp ... No such file").
    """
    from softgrad.grading import sandbox

    venv = tmp_path / "checkout" / ".venv"
    venv.mkdir(parents=True)
    monkeypatch.setattr(sandbox, "_python_roots", lambda: [str(venv)])
    args = sandbox.bwrap_args(sandbox.Policy(), [], as_root=True)
    pairs = list(itertools.pairwise(args))
    tmp_mount = pairs.index(("--tmpfs", "/tmp"))
    venv_bind = pairs.index(("--ro-bind", str(venv)))
    assert str(venv).startswith("/tmp/")
    assert tmp_mount < venv_bind


def test_sandboxed_kernels_use_one_thread_for_blas_and_softgrad(tmp_path):
    """The grader runs several kernels on few cores: none of them may spread over all cores."""
    from softgrad.grading import sandbox

    argv = sandbox.command(sandbox.Policy(), ["true"], [], str(tmp_path))
    env = {argv[i + 1]: argv[i + 2] for i, a in enumerate(argv) if a == "--setenv"}
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "SOFTGRAD_NUM_THREADS"):
        assert env.get(var) == "1", var
