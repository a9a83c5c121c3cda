"""``make grade``: autograde a folder of submissions with nbgrader, safely and resumably.

Layout of ``out``::

    grades.csv                           one row per student and assignment
    unmatched.csv, manual.csv            entries not graded; written answers awaiting points
    report.html, mistakes.csv            the class report (:mod:`.report`)
    lms/canvas.csv, lms/moodle.csv       LMS import files, given a roster (:mod:`.lms`)
    shard.json                           with ``shard=(k, n)``: what the merge needs (:mod:`.shard`)
    feedback/<student>/<assignment>/<notebook>.html
    .work/                               private: gradebooks, copies of the submissions, results

Each (student, assignment) result is written atomically to ``.work/results`` with a hash of its
inputs (the submitted files, the assignment's source, the grading options); a re-run skips every
result whose hash is unchanged, so an interrupted run loses nothing already graded and the same
submissions give the same grades.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import intake, lms, report, sandbox
from . import shard as shards
from .course import GRADER_VERSION, GradingError, assignments, code_hash, generate, source_hash
from .worker import ERROR, TIMED_OUT, write_json_atomic

# student: the folder's name in SUBMISSIONS; student_id: the safe id nbgrader and feedback/ use
COLUMNS = [
    "student",
    "assignment",
    "score",
    "max_score",
    "status",
    "flags",
    "message",
    "student_id",
]


def _hash_dir(path: Path, extra: str, *, top_only: bool = False) -> str:
    """Hash of what is under ``path`` (by ``lstat``: a link is hashed as a link, never followed)."""
    h = hashlib.sha256(extra.encode())
    kind = intake.kind(path)
    h.update(kind.encode())
    if kind != "dir":
        return h.hexdigest()
    stack = [(path, "")]
    while stack:
        d, rel = stack.pop()
        with os.scandir(d) as it:
            for e in sorted(it, key=lambda e: e.name):
                r = f"{rel}/{e.name}".encode("utf-8", "surrogateescape")
                st = e.stat(follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    h.update(b"L" + r + b"\0" + os.fsencode(os.readlink(e.path)))
                elif stat.S_ISDIR(st.st_mode):
                    if not top_only:
                        stack.append((Path(e.path), rel + "/" + e.name))
                elif stat.S_ISREG(st.st_mode):
                    h.update(b"F" + r + b"\0" + str((st.st_size, st.st_mtime_ns)).encode())
                    if st.st_size <= intake.MAX_BYTES:
                        with open(e.path, "rb", opener=_nofollow) as f:
                            h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def _nofollow(path, flags):
    return os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK)


def _check_names() -> list[str]:
    """Public names of softgrad.checks (if the module exists): students must not redefine them."""
    try:
        from softgrad import checks
    except ImportError:
        return []
    return sorted(n for n in dir(checks) if not n.startswith("_") and callable(getattr(checks, n)))


def prepare_master(course: Path, work: Path, names: list[str], log) -> dict[str, float]:
    """Generate every assignment once into ``work/master`` (gradebook + released notebooks).

    Returns each assignment's maximum score.
    """
    from nbgrader.api import Gradebook

    master = work / "master"
    key = hashlib.sha256("".join(source_hash(course, n) for n in names).encode()).hexdigest()
    stamp = master / "hash.txt"
    if not (stamp.exists() and stamp.read_text() == key):
        tmp = Path(tempfile.mkdtemp(prefix="master-", dir=work))
        generate(course, names, tmp / "release", tmp / "gradebook.db", log=lambda m: None)
        (tmp / "hash.txt").write_text(key)
        if master.exists():
            shutil.rmtree(master)
        os.replace(tmp, master)
    with Gradebook(f"sqlite:///{master / 'gradebook.db'}") as gb:
        return {n: float(gb.find_assignment(n).max_score) for n in names}


class Grader:
    """One ``grade`` run. See :func:`grade`."""

    def __init__(
        self,
        submissions: Path,
        out: Path,
        course: Path,
        *,
        jobs: int = 2,
        cell_timeout: int = 30,
        memory: int = 2 * 1024**3,
        sandboxed: bool = True,
        shard: tuple[int, int] | None = None,
        roster: Path | None = None,
        book: str = "_build/html",
        log=print,
    ):
        self.shard = shard
        self.roster_path = Path(roster) if roster else None
        self.book = str(book)
        self.submissions = submissions.resolve()
        self.out = out.resolve()
        self.course = course.resolve()
        self.jobs = max(1, int(jobs))
        self.cell_timeout = int(cell_timeout)
        self.memory = int(memory)
        self.log = log
        self.work = self.out / ".work"
        self.sandboxed = sandboxed
        self.lock = threading.Lock()
        self.done = 0
        self.live: set[subprocess.Popen] = set()
        self.cancelled = False
        self.unmatched: list[intake.Unmatched] = []
        self.scratch: set[str] = set()  # temp dirs and cgroups of running workers
        self.source_names: dict[str, str] = {}
        self.missing_limits: list[str] = []
        self.private_mounts = (
            sandboxed and os.geteuid() == 0 and shutil.which("unshare") is not None
        )

    def students(self) -> list[str]:
        """Safe ids of the student folders (:func:`intake.safe_id`); fills ``self.unmatched``."""
        if not self.submissions.is_dir():
            raise GradingError(f"SUBMISSIONS: {self.submissions} is not a directory")
        names, self.unmatched = intake.entries(self.submissions)
        self.source_names: dict[str, str] = {}
        for name in names:
            sid = intake.safe_id(name)
            if sid in self.source_names:  # two folders cannot share an id; say so
                self.unmatched.append(
                    intake.Unmatched(name, f"its id {sid} is taken by {self.source_names[sid]!r}")
                )
                continue
            self.source_names[sid] = name
        return sorted(self.source_names)

    def run(self) -> list[dict]:
        for inside in (self.out, self.submissions):
            if inside == self.course or self.course in inside.parents:
                raise GradingError(f"{inside} must not be inside the course dir {self.course}")
        self.work.mkdir(parents=True, exist_ok=True)
        os.chmod(self.work, 0o700)  # our own dir: other users of the machine need not read it
        lock = open(self.work / "lock", "a+")  # noqa: SIM115 (held until the process ends)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            lock.close()
            raise GradingError(
                f"--out {self.out} is in use by another grading run ({holder}); wait for it to "
                "finish, or grade into another --out"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}")
        lock.flush()
        self._lock_file = lock
        try:
            return self._run_locked()
        finally:
            lock.close()

    def _run_locked(self) -> list[dict]:
        (self.work / "tmp").mkdir(exist_ok=True)
        (self.work / "rt").mkdir(exist_ok=True)
        # ZeroMQ ipc sockets are files named <runtime dir>/k-ipc-N: a unix socket path has at
        # most 107 bytes
        longest = len(str(self.work / "rt" / "xxxxxxxx" / "k-ipc-10"))
        if longest > 100:
            raise GradingError(
                f"--out: {self.out} is too long a path for the kernel's sockets "
                f"({longest} > 100 bytes); choose a shorter output dir"
            )
        names = assignments(self.course)
        roster = lms.read_roster(self.roster_path) if self.roster_path else None
        if not self.sandboxed:
            self.log(
                "WARNING: --unsafe-no-sandbox: student code runs unconfined, as this user, and "
                "can read the gradebook, the solutions and the other submissions"
            )
        if self.sandboxed:
            probe = Path(tempfile.mkdtemp(prefix="probe-", dir=self.work / "tmp"))
            sandbox.give(probe, sandbox.default_uid())
            problem = sandbox.self_test(str(probe))
            shutil.rmtree(probe, ignore_errors=True)
            if problem:
                raise GradingError("the grading sandbox does not work here: " + problem)
            caps, missing = sandbox.make_cgroups(
                f"softgrad-{os.getpid()}-probe", max_pids=8, memory=64 * 1024**2
            )
            sandbox.remove_cgroups(caps)
            self.missing_limits = missing
            if missing:
                self.log(
                    "warning: no writable "
                    + " and ".join(missing)
                    + " cgroup: "
                    + "; ".join(
                        {
                            "pids": "the number of processes of a student's kernel is not "
                            "capped (RLIMIT_NPROC does not bind root)",
                            "memory": "memory is capped per process (--memory), not for a "
                            "kernel and its children together",
                        }[m]
                        for m in missing
                    )
                )
            if not self.private_mounts:
                self.log(
                    "warning: no private mount namespace (needs root and unshare): a kernel's "
                    "files are capped per file (256 MiB), not in total"
                )
        self.max_scores = prepare_master(self.course, self.work, names, self.log)
        self.names = names
        students = everyone = self.students()
        if self.shard:
            students = shards.select(everyone, *self.shard)
        options = json.dumps(
            [GRADER_VERSION, code_hash(), self.cell_timeout, self.memory, self.sandboxed]
        )
        pending = []
        self.total = len(students)
        cached = 0
        for s in students:
            folder = self.submissions / self.source_names[s]
            hashes = {}
            for a in names:
                h = _hash_dir(folder / a, source_hash(self.course, a) + options)
                if intake.kind(folder / a) == "absent":  # a flat layout reads the top level
                    h = _hash_dir(folder, h, top_only=True)
                hashes[a] = h
            todo = [a for a in names if not self._cached(s, a, hashes[a])]
            if todo:
                pending.append((s, todo, hashes))
            else:
                cached += 1
        self.log(
            f"grading {len(students)} students x {len(names)} assignments "
            f"({cached} students unchanged since the last run), {self.jobs} at a time"
        )
        self.done = cached
        t0 = time.monotonic()
        pool = ThreadPoolExecutor(self.jobs)
        try:
            list(pool.map(lambda job: self._grade_student(*job), pending))
        except BaseException:
            # Ctrl-C: stop the workers; finished results stay on disk for the next run
            self.cancelled = True
            with self.lock:
                for proc in self.live:
                    _kill(proc)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        rows = self.collect(students, names)
        tests = report.released_tests(self.work / "master" / "release", names)
        note = ""
        if self.shard:
            k, n = self.shard
            key = hashlib.sha256(
                (options + "".join(source_hash(self.course, a) for a in names)).encode()
            ).hexdigest()
            shards.save(
                self.out,
                {
                    "shard": [k, n],
                    "key": key,
                    "names": names,
                    "max_scores": self.max_scores,
                    "tests": tests,
                    "students": everyone,
                    "unmatched": [[u.entry, u.reason] for u in self.unmatched],
                    "rows": json.loads(json.dumps(rows)),  # before manual points are added
                },
            )
            note = (
                f"Shard {k}/{n}: only the {len(students)} students of this slice; "
                "make grade-merge combines the shards."
            )
        notes = publish(
            self.out,
            rows,
            self.unmatched,
            names=names,
            max_scores=self.max_scores,
            tests=tests,
            roster=None if self.shard else roster,
            book=self.book,
            note=note,
        )
        self.log(self.summary(rows, time.monotonic() - t0))
        if self.shard and roster:
            notes.append("LMS files are written by make grade-merge, for the whole class")
        for line in notes:
            self.log(line)
        return rows

    def _result_path(self, s: str, a: str) -> Path:
        return self.work / "results" / s / f"{a}.json"

    def _done(self, s: str, a: str, h: str) -> dict | None:
        """The stored result of (s, a) if it was graded from inputs with hash ``h``."""
        try:
            r = json.loads(self._result_path(s, a).read_text())
        except (OSError, ValueError):
            return None
        return r if r.get("hash") == h else None

    def _cached(self, s: str, a: str, h: str) -> bool:
        """True if a re-run can keep the stored result (a grader error is tried again)."""
        r = self._done(s, a, h)
        return (
            r is not None
            and r.get("status") != ERROR
            and "traceback" not in r
            and all((self.out / "feedback" / f).exists() for f in r.get("feedback", []))
        )

    def _budget(self, todo: list[str]) -> float:
        # a legitimate notebook never needs more than every code cell at the limit
        cells = 0
        for a in todo:
            for nb in (self.work / "master" / "release" / a).glob("*.ipynb"):
                cells += json.loads(nb.read_text()).get("cells", []).__len__()
        return 120 + self.cell_timeout * (cells + 2 * len(todo))

    def _grade_student(self, s: str, todo: list[str], hashes: dict) -> None:
        for a in todo:  # stale: graded from other inputs, or a grader error to try again
            self._result_path(s, a).unlink(missing_ok=True)
        remaining = list(todo)
        while remaining and not self.cancelled:
            remaining = self._run_worker(s, remaining, hashes)
        if self.cancelled:
            return
        with self.lock:
            self.done += 1
            parts = []
            for a in todo:
                r = json.loads(self._result_path(s, a).read_text())
                parts.append(f"{a} {r['status']} {r['score']:g}/{r['max_score']:g}")
            self.log(f"[{self.done}/{self.total}] {s}: " + ", ".join(parts))

    def _run_worker(self, s: str, todo: list[str], hashes: dict) -> list[str]:
        """Run one worker for ``todo``; return the assignments it did not get to."""
        # private dirs of this worker, made by us (the only places student code may write)
        wdir = Path(tempfile.mkdtemp(prefix="w", dir=self.work / "tmp"))
        runtime = Path(tempfile.mkdtemp(prefix="", dir=self.work / "rt"))
        cgroups: list[str] = []
        if self.sandboxed:
            cgroups, _ = sandbox.make_cgroups(
                f"softgrad-{os.getpid()}-{runtime.name}", max_pids=128, memory=self.memory
            )
        with self.lock:
            self.scratch |= {str(wdir), str(runtime), *cgroups}
        try:
            return self._run_worker_in(s, todo, hashes, wdir, runtime, cgroups)
        finally:
            sandbox.remove_cgroups(cgroups)
            shutil.rmtree(wdir, ignore_errors=True)
            shutil.rmtree(runtime, ignore_errors=True)
            with self.lock:
                self.scratch -= {str(wdir), str(runtime), *cgroups}

    def _run_worker_in(self, s, todo, hashes, wdir: Path, runtime: Path, cgroups) -> list[str]:
        spec = {
            "student": s,
            "source_name": self.source_names.get(s, s),
            "private_mounts": self.private_mounts,
            "assignments": todo,
            "course": str(self.course),
            "submissions": str(self.submissions),
            "master": str(self.work / "master"),
            "work": str(wdir),
            "runtime": str(runtime),
            "results": str(self.work / "results" / s),
            "feedback": str(self.out / "feedback"),
            "cell_timeout": self.cell_timeout,
            "hashes": hashes,
            "max_scores": self.max_scores,
            "check_names": _check_names(),
            "sandboxed": self.sandboxed,
            "policy": {
                "memory": self.memory,
                "cgroups": cgroups,
                "uid": sandbox.default_uid(),
                "cpu": self.cell_timeout * 4 + 60,
                "hide": [str(self.course), str(self.submissions), str(self.work), str(self.out)],
            },
        }
        spec_file = wdir / "job.json"
        spec_file.write_text(json.dumps(spec))
        (wdir / "current.json").unlink(missing_ok=True)
        budget = self._budget(todo)
        with open(wdir / "worker.log", "w") as logf:
            # -I: nothing of the working directory or of PYTHON* variables reaches the worker
            argv = [sys.executable, "-I", "-W", "ignore", "-m", "softgrad.grading.worker"]
            if self.private_mounts:
                argv = ["unshare", "--mount", "--propagation", "private", "--", *argv]
            proc = subprocess.Popen(
                [*argv, str(spec_file)],
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=wdir,
            )
            with self.lock:
                self.live.add(proc)
            try:
                proc.wait(timeout=budget)
                why = f"the grader's worker exited with status {proc.returncode}"
                status = ERROR
            except subprocess.TimeoutExpired:
                _kill(proc)
                why = f"grading took longer than {budget:.0f} s and was stopped"
                status = TIMED_OUT
            finally:
                with self.lock:
                    self.live.discard(proc)
        logs = self.work / "results" / s
        logs.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(wdir / "worker.log", logs / "worker.log")
        left = [a for a in todo if self._done(s, a, hashes[a]) is None]
        if not left or self.cancelled:
            return []
        try:
            current = json.loads((wdir / "current.json").read_text())["assignment"]
        except (OSError, ValueError, KeyError):
            current = left[0]
        if current not in left:
            current = left[0]
        tail = (wdir / "worker.log").read_text(errors="replace").strip().splitlines()[-3:]
        write_json_atomic(
            self._result_path(s, current),
            {
                "student": s,
                "assignment": current,
                "score": 0.0,
                "max_score": self.max_scores[current],
                "status": status,
                "flags": [],
                "message": why + (": " + " | ".join(tail) if status == ERROR else ""),
                "feedback": [],
                "hash": hashes[current],
                "timings": [],
            },
        )
        return [a for a in left if a != current]

    def collect(self, students: list[str], names: list[str]) -> list[dict]:
        rows = []
        for s in students:
            for a in names:
                r = json.loads(self._result_path(s, a).read_text())
                r["student"] = self.source_names.get(s, s)  # the folder's own spelling
                r["student_id"] = s
                rows.append(r)
            extra = sorted(
                e.name
                for e in os.scandir(self.submissions / self.source_names.get(s, s))
                if e.is_dir(follow_symlinks=False)
                and e.name not in names
                and e.name not in intake.JUNK
            )
            if extra:
                rows[-1]["flags"] = [
                    *rows[-1]["flags"],
                    "unknown assignment folders ignored: " + ", ".join(extra),
                ]
        return rows

    def write_csv(self, rows: list[dict]) -> None:
        write_grades(self.out, rows, self.unmatched)

    def summary(self, rows: list[dict], seconds: float) -> str:
        return summary(self.out, rows, self.unmatched, seconds)


def write_grades(out: Path, rows: list[dict], unmatched: list[intake.Unmatched]) -> None:
    """Write ``out/grades.csv`` (columns :data:`COLUMNS`) and ``out/unmatched.csv``."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(
            {
                **{k: r[k] for k in COLUMNS[:5]},
                "score": f"{r['score']:g}",
                "max_score": f"{r['max_score']:g}",
                "flags": "; ".join(r["flags"]),
                "message": r["message"],
                "student_id": r["student_id"],
            }
        )
    tmp = out / ".grades.csv.tmp"
    tmp.write_text(buf.getvalue())
    os.replace(tmp, out / "grades.csv")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["entry", "reason"])
    for u in unmatched:
        w.writerow([u.entry, u.reason])
    tmp = out / ".unmatched.csv.tmp"
    tmp.write_text(buf.getvalue())
    os.replace(tmp, out / "unmatched.csv")


def summary(out: Path, rows: list[dict], unmatched: list, seconds: float) -> str:
    """The run's closing summary: the statuses, and every row that needs a look."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    lines = [
        f"wrote {out / 'grades.csv'} ({len(rows)} rows) in {seconds:.1f} s: "
        + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    ]
    if unmatched:
        lines.append(
            f"  unmatched ({len(unmatched)} entries of SUBMISSIONS not graded, "
            f"in {out / 'unmatched.csv'}):"
        )
        lines += [f"    {u.entry!r}: {u.reason}" for u in unmatched]
    for r in rows:
        if r["status"] != "ok" or r["flags"]:
            detail = "; ".join([r["message"], *r["flags"]]).strip("; ")
            lines.append(
                f"  {r['student']}/{r['assignment']}: {r['status']}"
                + (f" - {detail}" if detail else "")
            )
    return "\n".join(lines)


MANUAL_COLUMNS = [
    "student",
    "assignment",
    "notebook",
    "grade_id",
    "max_points",
    "points",
    "submission",
]


def merge_manual(rows: list[dict], path: Path, seeds: tuple[Path, ...] = ()) -> None:
    """Add the instructor's manual points from ``path`` to ``rows``; rewrite ``path``.

    ``manual.csv`` has one line per cell that awaits manual grading (a written answer), with an
    empty ``points`` column for the instructor to fill in. On the next run the points entered
    are checked (a number from 0 to ``max_points``) and added to the row's score; the file is
    written again with the entered points kept. ``submission`` identifies the graded hand-in:
    points entered for an earlier submission of the same cell are kept in the file but not
    counted, and the row is flagged, until the instructor confirms them by clearing that
    column's old value.

    ``seeds`` are the shards' ``manual.csv`` files (``make grade-merge``): points entered there
    count too, unless ``path`` has points for the same cell.
    """
    entered: dict[tuple, dict] = {}
    for p in (path, *seeds):  # the first file with points for a cell wins
        if not p.exists():
            continue
        with open(p, newline="", encoding="utf-8") as f:
            for e in csv.DictReader(f):
                key = (e.get("student"), e.get("assignment"), e.get("notebook"), e.get("grade_id"))
                if key not in entered or not (entered[key].get("points") or "").strip():
                    entered[key] = e
    lines = []
    for r in rows:
        waiting = 0.0
        stamp = str(r.get("hash", ""))[:12]
        for cell in r.get("manual", []):
            key = (r["student"], r["assignment"], cell["notebook"], cell["grade_id"])
            old = entered.get(key, {})
            text = (old.get("points") or "").strip()
            top = float(cell["max_points"])
            line = {
                "student": r["student"],
                "assignment": r["assignment"],
                "notebook": cell["notebook"],
                "grade_id": cell["grade_id"],
                "max_points": f"{top:g}",
                "points": text,
                "submission": old.get("submission") or stamp,
            }
            lines.append(line)
            if not text:
                waiting += top
                continue
            try:
                points = float(text)
            except ValueError:
                points = float("nan")
            if line["submission"] not in ("", stamp):
                r["flags"] = [
                    *r["flags"],
                    (
                        f"manual points for {cell['grade_id']} were entered for an earlier "
                        "submission: check them, then clear the submission column"
                    ),
                ]
                waiting += top
            elif not 0.0 <= points <= top:
                r["flags"] = [
                    *r["flags"],
                    (
                        f"manual points ignored for {cell['grade_id']}: {text!r} is not a number "
                        f"from 0 to {top:g}"
                    ),
                ]
                waiting += top
            else:
                r["score"] = round(r["score"] + points, 4)
        if waiting:
            note = f"{waiting:g} point{'s await' if waiting != 1 else ' awaits'} manual grading"
            r["message"] = "; ".join(m for m in (r["message"], note) if m)
    buf = io.StringIO()
    w = csv.DictWriter(buf, MANUAL_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(lines)
    tmp = path.with_name(".manual.csv.tmp")
    tmp.write_text(buf.getvalue(), encoding="utf-8")
    os.replace(tmp, path)


def publish(
    out: Path,
    rows: list[dict],
    unmatched: list[intake.Unmatched],
    *,
    names: list[str],
    max_scores: dict[str, float],
    tests: dict[str, list[dict]],
    roster: lms.Roster | None,
    book: str,
    note: str = "",
    manual_seeds: tuple[Path, ...] = (),
) -> list[str]:
    """Everything written from the rows of a run (or of merged shards), in the same way.

    Adds the manual points (``manual.csv``), writes grades.csv and unmatched.csv, the class
    report and mistakes.csv, and, given a roster, the LMS files. Returns notes for the log.
    """
    merge_manual(rows, out / "manual.csv", manual_seeds)
    write_grades(out, rows, unmatched)
    report.write(out, rows, names, max_scores, tests, unmatched, book=book, note=note)
    notes = [f"wrote {out / 'report.html'} and {out / 'mistakes.csv'}"]
    if roster is not None:
        not_graded = {u.entry: u.reason for u in unmatched}
        notes += lms.write(out / "lms", rows, names, max_scores, roster, not_graded)
    return notes


def merge(
    shard_dirs: list[Path],
    out: Path,
    *,
    roster: Path | None = None,
    book: str = "_build/html",
    log=print,
) -> list[dict]:
    """``make grade-merge``: combine the outputs of ``make grade SHARD=k/n`` into ``out``.

    Writes what a single run over all the students would have written (grades.csv,
    unmatched.csv, manual.csv, the report and, given a roster, the LMS files), and copies the
    shards' feedback pages into ``out/feedback``. Re-running it after entering manual points
    in ``out/manual.csv`` adds them, as ``make grade`` does.
    """
    out = Path(out).resolve()
    dirs = [Path(d).resolve() for d in shard_dirs]
    the_roster = lms.read_roster(roster) if roster else None
    merged = shards.load(dirs, out)
    out.mkdir(parents=True, exist_ok=True)
    for src in shards.feedback_dirs(dirs):
        shutil.copytree(src, out / "feedback", symlinks=True, dirs_exist_ok=True)
    unmatched = [intake.Unmatched(e, why) for e, why in merged.unmatched]
    notes = publish(
        out,
        merged.rows,
        unmatched,
        names=merged.names,
        max_scores=merged.max_scores,
        tests=merged.tests,
        roster=the_roster,
        book=book,
        manual_seeds=tuple(d / "manual.csv" for d in dirs),
    )
    log(f"merged {merged.n} shards ({', '.join(map(str, dirs))})")
    log(summary(out, merged.rows, unmatched, 0.0).replace(" in 0.0 s", ""))
    for line in notes:
        log(line)
    return merged.rows


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, 9)  # the worker leads its own process group
    except ProcessLookupError:
        pass
    proc.wait()


def grade(submissions, out, course, **kwargs) -> list[dict]:
    """Grade ``submissions/<student>/<assignment>/`` against ``course``; write ``out``.

    Returns the rows of ``grades.csv`` as dicts (plus ``feedback`` paths and ``timings``).
    """
    return Grader(Path(submissions), Path(out), Path(course), **kwargs).run()
