"""Attacks on the grader, and awkward hand-ins, judged by what happened on the host.

One ``grade`` run over the demo course grades a class in which every student tries one thing:
escape the sandbox (a package next to the notebook, ``/proc/sys``, links into the host), exhaust
the machine (forked children, files), or is merely awkward (LMS folder names, copies of the
notebook, a flat layout, stderr output). Each test then looks at the host: a canary file outside
the sandbox, the kernel's recorded view, the row of grades.csv, unmatched.csv.
"""

from __future__ import annotations

import csv
import fcntl
import html
import json
import os
import re
import shutil
import signal
import stat
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

A = "ex00_demo"
NB = f"{A}.ipynb"
TIMEOUT = 10
ENV_SECRET = "GRADER-ENV-SECRET-5kq"
CORRECT = "def double(x):\n    return 2.0 * np.asarray(x, dtype=float)\n"
WRONG = "def double(x):\n    return 3.0 * np.asarray(x, dtype=float)\n"
NEWLINE_NAME = "new\nline"


def _cli(*args: str, timeout: float = 900, env=None) -> subprocess.CompletedProcess:
    return cli(*args, timeout=timeout, env=env)


def _report(tag: str, body: str) -> str:
    """Solution code that runs ``body`` (which fills ``report``) and prints it, tagged."""
    return (
        CORRECT
        + "import json, os\nreport = {}\n"
        + body
        + f"\nprint('{tag}' + json.dumps(report).replace('\"', \"'\") + 'END')\n"
    )


def _kernel_report(graded, student: str, tag: str) -> dict:
    page = _text(_feedback(graded, student))
    found = re.search(tag + r"(\{.*?\})END", page)
    assert found, page[-3000:]
    return json.loads(found.group(1).replace("'", '"'))


def _feedback(graded, student: str) -> str:
    row = graded["rows"][student]
    sid = row["student_id"]
    return (graded["out"] / "feedback" / sid / A / f"{A}.html").read_text(encoding="utf-8")


def _text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def _memory_cgroup_available() -> bool:
    for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        try:
            if "memory" in Path(base, "cgroup.subtree_control").read_text().split():
                return os.geteuid() == 0
        except OSError:
            pass
    return os.geteuid() == 0 and Path("/sys/fs/cgroup/memory/cgroup.procs").exists()


def _build(course: Path, subs: Path, host: Path) -> None:
    released = nbformat.read(course / "release" / A / NB, as_version=4)

    def fresh():
        return nbformat.from_dict(json.loads(nbformat.writes(released)))

    def put(student, nb, name=NB, folder=A):
        d = subs / student / folder if folder else subs / student
        d.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, d / name)
        return d

    # -- escapes ---------------------------------------------------------------------------
    canary = host / "imported.txt"
    d = put("pkg_shadow", _answer(fresh(), WRONG))
    (d / "softgrad").mkdir()
    shadow = f"open({str(canary)!r}, 'w').write('student code ran outside the sandbox')\n"
    (d / "softgrad" / "__init__.py").write_text(shadow)
    (d / "softgrad" / "checks.py").write_text(
        shadow + "def check_matches(*a, **k):\n    print('double: passed 1 probe')\n"
    )
    (d / "numpy.py").write_text(shadow)
    (d / "sitecustomize.py").write_text(shadow)

    put(
        "core_pattern",
        _answer(
            fresh(),
            _report(
                "CORE",
                f"""
report["cwd"] = sorted(os.listdir("."))
for path in ["/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe",
             "/proc/sysrq-trigger", "/proc/self/oom_score_adj", "/proc/1/attr/current"]:
    try:
        with open(path, "w") as f:
            f.write("|" + os.getcwd() + "/h.sh")
        report[path] = "wrote"
    except Exception as exc:
        report[path] = type(exc).__name__
with open("h.sh", "w") as f:
    f.write("#!/bin/sh\\necho pwned > {host / "core.txt"}\\n")
os.chmod("h.sh", 0o755)
pid = os.fork()
if pid == 0:
    os.abort()
os.waitpid(pid, 0)
report["uid"] = os.getuid()
report["gid"] = os.getgid()
report["groups"] = os.getgroups()
try:
    report["pid1_environ"] = open("/proc/1/environ").read()
except Exception as exc:
    report["pid1_environ"] = type(exc).__name__
report["environ"] = dict(os.environ)
try:
    os.setuid(0)
    report["setuid"] = "became root"
except Exception as exc:
    report["setuid"] = type(exc).__name__
# a user namespace of its own would give the kernel every capability over its own namespaces
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
pid = os.fork()
if pid == 0:
    os._exit(0 if libc.unshare(0x10000000) == 0 else 10 + ctypes.get_errno())
report["unshare_user"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
import subprocess
report["unshare_tool"] = subprocess.run(["unshare", "--user", "true"]).returncode
report["fork_ok"] = subprocess.run(["true"]).returncode
""",
            ),
        ),
    )
    # a host file the student's links point at: nothing may read, write or chmod it
    target = host / "target.txt"
    target.write_text("HOST-TARGET-CONTENT")
    os.chmod(target, 0o600)
    d = subs / "link_notebook" / A
    d.mkdir(parents=True)
    (d / NB).symlink_to(target)
    d = put("link_notes", _answer(fresh(), CORRECT))
    (d / "notes.txt").symlink_to(target)
    (d / "data").symlink_to(host)
    (subs / "link_assignment").mkdir()
    (subs / "link_assignment" / A).symlink_to(course / "source" / A)
    (subs / "link_student").symlink_to(course / "source")
    os.mkfifo(put("fifo", _answer(fresh(), CORRECT)) / "pipe")

    # -- exhaustion ------------------------------------------------------------------------
    put(
        "fork_memory",
        _answer(
            fresh(),
            _report(
                "FORK",
                """
kids = []
for i in range(4):
    pid = os.fork()
    if pid == 0:
        block = bytearray(400 * 1024 * 1024)
        for j in range(0, len(block), 4096):
            block[j] = 1
        import time
        time.sleep(3)
        os._exit(0)
    kids.append(pid)
report["exits"] = sorted(os.waitpid(pid, 0)[1] for pid in kids)
""",
            ),
        ),
    )
    put(
        "disk_fill",
        _answer(
            fresh(),
            _report(
                "DISK",
                """
chunk = b"x" * (16 * 1024 * 1024)
for where in (".", "/tmp"):
    total = 0
    try:
        for i in range(64):
            with open(f"{where}/fill{i}", "wb") as f:
                for _ in range(12):
                    f.write(chunk)
                    total += len(chunk)
    except OSError as exc:
        report[where + "_error"] = type(exc).__name__
    report[where] = total
    for i in range(64):
        try:
            os.remove(f"{where}/fill{i}")
        except OSError:
            pass
""",
            ),
        ),
    )

    # -- wrong work that nbgrader's model would pass: legal Python in the student's kernel ------
    cheats = {
        "cheat_checks_patched": "import importlib\n"
        "c = importlib.import_module('softgrad.che' + 'cks')\n"
        "c.check_matches = lambda *a, **k: None\n",
        "cheat_isclose": "np.isclose = lambda *a, **k: np.array(True)\n"
        "np.allclose = lambda *a, **k: True\n",
        "cheat_transformer": "get_ipython().input_transformers_cleanup.append("
        "lambda lines: ['pass\\n'])\n",
        "cheat_errors_cleared": "import sys\n"
        "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)\n"
        "sys.excepthook = lambda *a: None\n",
        "cheat_frames": "import inspect\n"
        "def double(x):\n"
        "    for f in inspect.stack():\n"
        "        for k, v in f.frame.f_locals.items():\n"
        "            if k in ('expected', 'want', 'reference'):\n"
        "                return v(x) if callable(v) else v\n"
        "    return 3.0 * np.asarray(x, dtype=float)\n",
        "cheat_builtins": "import builtins\n"
        "builtins.AssertionError = type('Quiet', (Exception,), {})\n"
        "builtins.float = lambda *a: 0.0\n",
    }
    for student, code in cheats.items():
        nb = _answer(fresh(), WRONG if "def double" not in code else code)
        idx = nb.cells.index(_cell(nb, "double_solution"))
        if "def double" not in code:
            nb.cells.insert(idx + 1, nbformat.v4.new_code_cell(code))
        put(student, nb)
    # a correct function that publishes its inputs, and cells that look for hidden tests
    secret = "'HIDDEN-TEST-' + 'SECRET-q7x'"
    nb = _answer(
        fresh(),
        "SEEN = []\n\ndef double(x):\n    SEEN.append(repr(x))\n    print('IN' + 'PUT-SEEN', x)\n"
        "    with open('seen.txt', 'a') as f:\n        f.write(repr(x) + '\\n')\n"
        "    return 2.0 * np.asarray(x, dtype=float)\n",
    )
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "import glob, os\n"
            f"texts = [open(p, errors='replace').read() for p in glob.glob('**', recursive=True) "
            "if os.path.isfile(p)]\n"
            f"print('SCAN', 'FOUND' if any({secret} in t for t in texts) else 'CLEAN', "
            "'probe' if 'hidden_' + 'probe_q7x' in globals() else 'noprobe', SEEN)\n"
        )
    )
    put("publishes_inputs", nb)
    # markup in the feedback
    nb = _answer(
        fresh(),
        CORRECT + "from IPython.display import HTML, display\n"
        "display(HTML('<scr' + 'ipt>document.title=\"PWN' + 'ED-SCRIPT\"</scr' + 'ipt><b>x</b>'))\n"
        "import base64\n"
        "png = base64.b64decode('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==')\n"
        "from IPython.display import Image\n"
        "for _ in range(3):\n    display({'image/png': base64.b64encode(png * 200000).decode()}, raw=True)\n",
    )
    _cell(
        nb, "written_linear"
    ).source = "<script>alert('PWNED-MD')</script><img src=x onerror=alert(1)>"
    put("markup", nb)

    # -- honest work with noise ------------------------------------------------------------
    put(
        "noisy_correct",
        _answer(
            fresh(),
            "import sys, warnings\nfrom IPython.display import display, HTML\n\n"
            "def double(x):\n"
            "    print('computing', file=sys.stderr)\n"
            "    warnings.warn('a harmless warning')\n"
            "    display(HTML('<b>working</b>'))\n"
            "    return 2.0 * np.asarray(x, dtype=float)\n",
        ),
    )

    # -- intake ----------------------------------------------------------------------------
    for name in ("Doe, Jane [12345]", NEWLINE_NAME, ".dotted", "__under"):
        put(name, _answer(fresh(), CORRECT))
    nbformat.write(_answer(fresh(), CORRECT), subs / "loose.ipynb")
    (subs / "__MACOSX").mkdir()
    d = put("copies", _answer(fresh(), CORRECT))
    put("copies", fresh(), folder=f"{A}/Archive")
    put("copies", fresh(), name=f"{A} (1).ipynb")
    put("copies_reversed", fresh())
    put("copies_reversed", _answer(fresh(), CORRECT), name=f"{A} (1).ipynb")
    put("flat", _answer(fresh(), CORRECT), folder="")


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    course = tmp_path_factory.mktemp("acourse") / "course"
    shutil.copytree(FIXTURE_COURSE, course)
    proc = _cli("--course", str(course), "release")
    assert proc.returncode == 0, proc.stderr
    return course


@pytest.fixture(scope="module")
def graded(course, tmp_path_factory):
    base = tmp_path_factory.mktemp("attacks")
    subs, out, host = base / "subs", base / "out", base / "host"
    host.mkdir()
    _build(course, subs, host)
    core_before = Path("/proc/sys/kernel/core_pattern").read_text()
    env = {**os.environ, "SOFTGRAD_TEST_SECRET": ENV_SECRET}
    args = ["--course", str(course), "grade", str(subs), "--out", str(out)]
    proc = _cli(*args, "--jobs", "2", "--timeout", str(TIMEOUT), "--memory", "1g", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(out / "grades.csv", newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    with open(out / "unmatched.csv", newline="") as f:
        unmatched = {r["entry"]: r["reason"] for r in csv.DictReader(f)}
    return {
        "rows": rows,
        "unmatched": unmatched,
        "out": out,
        "subs": subs,
        "host": host,
        "course": course,
        "stdout": proc.stdout,
        "core_before": core_before,
        "core_after": Path("/proc/sys/kernel/core_pattern").read_text(),
    }


# --- escapes ------------------------------------------------------------------------------


def test_files_handed_in_beside_the_notebook_never_run(graded):
    assert not (graded["host"] / "imported.txt").exists()
    r = graded["rows"]["pkg_shadow"]
    # the fake softgrad/checks.py did not replace the real one: the wrong answer scores 0
    assert (r["status"], r["score"]) == ("ok", "0"), r
    assert "handed-in files not used" in r["flags"]
    assert "softgrad/checks.py" in r["flags"]


def test_kernel_is_unprivileged_and_proc_is_read_only(graded):
    assert graded["core_after"] == graded["core_before"]
    assert not (graded["host"] / "core.txt").exists()
    report = _kernel_report(graded, "core_pattern", "CORE")
    assert report["/proc/sys/kernel/core_pattern"] in {"OSError", "PermissionError"}, report
    assert [p for p, what in report.items() if p.startswith("/proc") and what == "wrote"] == []
    assert report["uid"] != 0, report
    assert report["gid"] != 0, report
    assert 0 not in report["groups"], report
    assert report["setuid"] == "PermissionError"
    # no user namespace of its own, by the system call or the tool; processes still start
    assert report["unshare_user"] == 10 + 1, report  # EPERM
    assert report["unshare_tool"] != 0, report
    assert report["fork_ok"] == 0, report
    # the kernel sees its own notebook and nothing else handed in
    assert report["cwd"] == [NB], report["cwd"]


def test_grader_environment_does_not_reach_the_kernel(graded):
    report = _kernel_report(graded, "core_pattern", "CORE")
    assert ENV_SECRET not in json.dumps(report)
    assert "SOFTGRAD_TEST_SECRET" not in report["environ"]
    assert "SOFTGRAD_SANDBOX" not in report["environ"]
    assert ENV_SECRET not in _feedback(graded, "core_pattern")


def test_links_to_the_host_are_refused_and_the_target_untouched(graded):
    target = graded["host"] / "target.txt"
    assert target.read_text() == "HOST-TARGET-CONTENT"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    r = graded["rows"]["link_notebook"]
    assert (r["status"], r["score"]) == ("missing", "0"), r
    assert f"{NB} (a link)" in r["flags"]
    r = graded["rows"]["link_notes"]
    assert (r["status"], r["score"]) == ("ok", "3"), r
    assert "notes.txt (a link)" in r["flags"]
    assert "data (a link)" in r["flags"]
    assert "HOST-TARGET-CONTENT" not in _feedback(graded, "link_notes")
    r = graded["rows"]["fifo"]
    assert (r["status"], r["score"]) == ("ok", "3"), r
    assert "pipe (not a regular file)" in r["flags"]


def test_a_linked_folder_never_grades_the_solutions(graded):
    r = graded["rows"]["link_assignment"]
    assert (r["status"], r["score"]) == ("missing", "0"), r
    assert "a link" in r["message"] + r["flags"]
    assert "link_student" not in graded["rows"]
    assert "link" in graded["unmatched"]["link_student"]


# --- exhaustion ---------------------------------------------------------------------------


def test_memory_limit_covers_the_kernel_and_its_children(graded):
    if not _memory_cgroup_available():
        message = "no memory cgroup here (the grader must run as root to make one)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true: the kernel's memory limit must be tested in CI)")
        pytest.skip(message)
    # four children of 400 MiB each under --memory 1g: at most two may live at once
    exits = _kernel_report(graded, "fork_memory", "FORK")["exits"]
    assert sum(e == 0 for e in exits) <= 2, exits
    assert any(e != 0 for e in exits), exits


def test_the_kernel_cannot_fill_the_disk(graded):
    report = _kernel_report(graded, "disk_fill", "DISK")
    assert report["."] <= 256 * 1024**2, report  # the kernel's folder: one capped tmpfs
    assert report["/tmp"] <= 128 * 1024**2, report
    assert report["._error"] == "OSError", report
    assert report["/tmp_error"] == "OSError", report
    on_host = sum(p.stat().st_size for p in graded["out"].rglob("*") if p.is_file())
    assert on_host < 64 * 1024**2


# --- verdicts where the student's code never ran ------------------------------------------


@pytest.mark.parametrize(
    "student",
    [
        "cheat_checks_patched",
        "cheat_isclose",
        "cheat_transformer",
        "cheat_errors_cleared",
        "cheat_frames",
        "cheat_builtins",
    ],
)
def test_rebinding_things_in_the_kernel_does_not_pass_a_wrong_answer(graded, student):
    r = graded["rows"][student]
    assert r["score"] == "0", r


def test_hidden_tests_and_probe_values_never_reach_the_student(graded):
    page = _text(_feedback(graded, "publishes_inputs"))
    r = graded["rows"]["publishes_inputs"]
    assert r["score"] == "3", r
    assert "SCAN CLEAN noprobe" in page, page[-2000:]
    assert "21.5" not in page  # the hidden probe's input
    assert "INPUT-SEEN" not in page  # what the function printed during the tests
    for p in (graded["out"] / "feedback").rglob("*.html"):
        text = p.read_text(encoding="utf-8")
        assert "HIDDEN-TEST-SECRET-q7x" not in text, p
        assert "hidden_probe_q7x" not in text, p


def test_feedback_is_sanitised_and_capped(graded):
    page = _feedback(graded, "markup")
    assert "PWNED-SCRIPT" not in page
    assert "<script>alert" not in page
    assert not re.search(r"<img[^>]*onerror", page)
    assert len(page) < 5 * 1024**2, len(page)
    r = graded["rows"]["markup"]
    assert r["score"] == "3", r


# --- honest work --------------------------------------------------------------------------


def test_stderr_warnings_and_display_cost_no_points(graded):
    r = graded["rows"]["noisy_correct"]
    assert (r["status"], r["score"]) == ("ok", "3"), r


# --- intake -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Doe, Jane [12345]", NEWLINE_NAME, ".dotted", "__under"])
def test_any_folder_name_an_lms_makes_is_graded(graded, name):
    r = graded["rows"][name]
    assert (r["status"], r["score"]) == ("ok", "3"), r
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", r["student_id"]), r["student_id"]
    assert "double: passed" in _text(_feedback(graded, name))


def test_every_entry_is_graded_or_reported_unmatched(graded):
    entries = {p.name for p in graded["subs"].iterdir()}
    students = set(graded["rows"])
    assert entries == students | set(graded["unmatched"]), entries ^ (
        students | set(graded["unmatched"])
    )
    assert "outside any student folder" in graded["unmatched"]["loose.ipynb"]
    assert "__MACOSX" in graded["unmatched"]
    assert "unmatched" in graded["stdout"]


def test_the_answered_copy_is_graded_and_the_others_flagged(graded):
    for student in ("copies", "copies_reversed"):
        r = graded["rows"][student]
        assert r["score"] == "3", r
        assert "several candidates" in r["flags"], r
    assert "Archive/" in graded["rows"]["copies"]["flags"]


def test_a_notebook_directly_in_the_student_folder_is_graded(graded):
    r = graded["rows"]["flat"]
    assert r["score"] == "3", r
    assert "flat layout" in r["flags"]


# --- clean stops ----------------------------------------------------------------------------


def test_a_second_run_on_the_same_out_is_refused(course, tmp_path):
    out = tmp_path / "out"
    (out / ".work").mkdir(parents=True)
    (tmp_path / "subs").mkdir()
    with open(out / ".work" / "lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        proc = _cli("--course", str(course), "grade", str(tmp_path / "subs"), "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    assert "in use by another grading run" in proc.stderr


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmd:
                found.append(f"{p.name}: {cmd[:200]}")
    return found


def test_sigterm_ends_workers_and_kernels_and_cleans_up(course, tmp_path):
    released = nbformat.read(course / "release" / A / NB, as_version=4)
    subs, out = tmp_path / "s", tmp_path / "o"
    for i in range(2):
        (subs / f"s{i}" / A).mkdir(parents=True)
        nbformat.write(
            _answer(released, "import time\ntime.sleep(60)\n" + CORRECT), subs / f"s{i}" / A / NB
        )
    args = ["--course", str(course), "grade", str(subs), "--out", str(out), "--timeout", "90"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "softgrad.grading", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    rt = out / ".work" / "rt"
    while time.monotonic() < deadline and not [
        p for p in _processes_mentioning(str(rt)) if "bwrap" in p
    ]:
        time.sleep(0.2)
    assert _processes_mentioning(str(rt)), "no kernel started"
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    time.sleep(1)
    assert _processes_mentioning(str(out)) == []
    assert not list((out / ".work" / "tmp").iterdir())
    assert not list(rt.iterdir())
    for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids"):
        assert not list(Path(base).glob(f"softgrad-{proc.pid}-*")), base


def test_cache_key_covers_the_package_source(tmp_path, monkeypatch):
    import softgrad
    from softgrad.grading import course

    copy = tmp_path / "softgrad"
    shutil.copytree(Path(softgrad.__file__).parent, copy)
    monkeypatch.setattr(softgrad, "__file__", str(copy / "__init__.py"))
    before = course.code_hash()
    with open(copy / "checks.py", "a") as f:
        f.write("\n# a fix in the checks\n")
    assert course.code_hash() != before
