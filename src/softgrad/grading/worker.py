"""Grade one student's assignments (run as ``python -m softgrad.grading.worker JOB.json``).

The orchestrator (:mod:`softgrad.grading.grade`) starts one worker process per student so that
a crash, a hang or a leaked kernel stays contained; the worker writes each assignment's result
atomically as soon as it is known, so an interrupted run keeps what was graded.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import audit, confine, feedback, intake, outcomes, sandbox
from .course import load_config, tools_on_path

# Status values, from worst to best; ``ok`` means nbgrader graded it cleanly.
MISSING, EMPTY, INVALID_JSON, KERNEL_DIED, TIMED_OUT, ERROR = (
    "missing",
    "empty",
    "invalid_json",
    "kernel_died",
    "timed_out",
    "error",
)
RENAMED, OK = "renamed", "ok"

TIMINGS: list[dict] = []  # filled by TimedExecute, read per notebook


def write_json_atomic(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _is_test(cell) -> bool:
    meta = audit.nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def _graded_execute_class(kernel_home: Path | None, uid: int, off: dict[str, list]):
    """nbgrader's Execute, timed, with the test cells run by the grader (:mod:`.remote`).

    The kernel runs every other code cell (the student's and the locked ones); then the grader
    runs each test cell in its own process, calling the student's functions in the kernel as they
    were defined at the test cell's place (a later cell that redefines one changes nothing; a
    helper they call is looked up when the test runs). Each
    notebook's kernel starts in ``kernel_home/<notebook>`` (made here, owned by ``uid``,
    holding a copy of the notebook without its hidden tests, and nothing else), and loses
    softgrad's implementations ``off[<notebook>]`` (:mod:`.confine`) before the first cell.
    """
    import nbformat
    from nbclient.exceptions import DeadKernelError
    from nbconvert.preprocessors.execute import NotebookClient
    from nbgrader.preprocessors import Execute

    from . import remote

    class GradedExecute(Execute):
        def preprocess(self, nb, resources=None, km=None):
            entry = {"start": time.monotonic()}
            TIMINGS.append(entry)
            self.on_notebook_start = lambda **kw: entry.__setitem__("ready", time.monotonic())
            resources = resources or {}
            key = resources.get("unique_key", "")
            if kernel_home is not None:
                home = kernel_home / key
                home.mkdir(parents=True)
                public = nbformat.from_dict(json.loads(nbformat.writes(nb)))
                for cell in public.cells:
                    if _is_test(cell):
                        cell.source = feedback._strip_region(feedback._src(cell))
                nbformat.write(public, home / f"{key}.ipynb")
                sandbox.give(home, uid)
                sandbox.give(home / f"{key}.ipynb", uid)
                resources.setdefault("metadata", {})["path"] = str(home)
            NotebookClient.__init__(self, nb, km)
            self.reset_execution_trackers()
            self._check_assign_resources(resources)
            try:
                with self.setup_kernel():
                    info = self.wait_for_reply(self.kc.kernel_info())
                    self.nb.metadata["language_info"] = info["content"]["language_info"]
                    self.setup_server(key)
                    with self.test_runner() as (snapshot, run_test):
                        tests = []
                        for index, cell in enumerate(self.nb.cells):
                            if _is_test(cell):
                                snapshot(index)
                                tests.append((index, cell))
                            else:
                                self.preprocess_cell(cell, resources, index)
                        entry["cells"] = time.monotonic()
                        # after every other cell: nothing the student's code keeps from a
                        # hidden test's call can be printed by a later cell
                        for index, cell in tests:
                            run_test(index, cell)
            finally:
                entry["end"] = time.monotonic()
            self.set_widgets_metadata()
            return self.nb, self.resources

        def setup_server(self, key: str) -> None:
            """The kernel's side of :mod:`.remote`, then the confinement; fail closed."""
            code = remote.SERVER + confine.kernel_code(
                off.get(key, confine.switched_off(set())), delete=kernel_home is not None
            )
            reply = self.wait_for_reply(self.kc.execute(code, silent=True, store_history=False))
            content = (reply or {}).get("content", {})
            if content.get("status") != "ok":
                raise RuntimeError(
                    "the grading kernel could not be prepared: "
                    f"{content.get('ename')}: {content.get('evalue')}"
                )

        @contextlib.contextmanager
        def test_runner(self):
            """``(snapshot, run)``: ``snapshot(index)`` keeps the student's names at the test
            cell ``index``'s place; ``run(index, cell)``, after the last cell, runs that test in
            the grader against those names and records its outputs."""
            from jupyter_client import BlockingKernelClient
            from jupyter_core.utils import run_sync

            kc = BlockingKernelClient()
            kc.load_connection_info(self.km.get_connection_info())
            kc.start_channels()
            channel = remote.Channel(
                kc,
                is_alive=lambda: run_sync(self.km.is_alive)(),
                interrupt=lambda: run_sync(self.km.interrupt_kernel)(),
            )
            setup = [
                feedback._src(c)
                for c in self.nb.cells
                if c.get("cell_type") == "code"
                and audit.nbgrader_meta(c).get("locked")
                and not _is_test(c)
                and not audit.nbgrader_meta(c).get("solution")
            ]
            runner = remote.CellRunner(channel, setup, float(self.timeout or 30))

            def snapshot(index: int) -> None:
                try:
                    channel.snapshot(index)
                except remote.KernelGone as exc:
                    raise DeadKernelError("Kernel died before a test cell") from exc

            def run(index: int, cell) -> None:
                count = max((c.get("execution_count") or 0 for c in self.nb.cells), default=0)
                channel.snap = index
                try:
                    outputs = runner.run_cell(feedback._src(cell))
                except remote.KernelGone as exc:
                    if not exc.timed_out:
                        raise DeadKernelError("Kernel died while running the tests") from exc
                    outputs = [dict(self.error_on_timeout, output_type="error")]
                cell.outputs = [nbformat.from_dict(o) for o in outputs]
                cell.execution_count = count + 1

            try:
                yield snapshot, run
            finally:
                kc.stop_channels()

    return GradedExecute


def _stderr_is_not_failure(nb) -> None:
    """Show a test cell's stderr as ordinary output: nbgrader scores a test cell with any
    stderr output 0, so a correct function that logs or warns would lose its points.
    Only an error output (an exception) fails a test cell.
    """
    for cell in nb.cells:
        meta = audit.nbgrader_meta(cell)
        if cell.get("cell_type") != "code" or not meta.get("grade") or meta.get("solution"):
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                out["name"] = "stdout"


def _read_notebook(path: Path):
    """(notebook, None) or (None, (status, message))."""
    import nbformat

    raw = path.read_bytes()
    if not raw.strip():
        return None, (EMPTY, f"{path.name} is an empty file")
    try:
        nb = nbformat.reads(raw.decode("utf-8", errors="replace"), as_version=4)
    except Exception as exc:  # noqa: BLE001 (nbformat raises many JSON and schema errors)
        return None, (
            INVALID_JSON,
            (f"{path.name} is not a readable notebook: {type(exc).__name__}: {str(exc)[:200]}"),
        )
    if not nb.cells:
        return None, (EMPTY, f"{path.name} has no cells")
    return nb, None


class Job:
    def __init__(self, spec: dict):
        self.spec = spec
        self.student = spec["student"]
        self.course = Path(spec["course"])
        self.submissions = Path(spec["submissions"])
        self.master = Path(spec["master"])
        self.work = Path(spec["work"])
        self.runtime = Path(spec["runtime"])
        self.results = Path(spec["results"])
        self.feedback_out = Path(spec["feedback"])
        self.policy = sandbox.Policy(**spec["policy"])
        self.source_id = spec.get("source_name", self.student)  # the folder name, any spelling
        self.kernel_home: Path | None = None

    def private_scratch(self) -> None:
        """Put the kernels' writable folders on a size-limited tmpfs of this worker's own.

        The orchestrator starts a root worker in a mount namespace of its own (``unshare
        --mount``): the tmpfs mounted here on the runtime dir is seen by no other process, caps
        what a student's kernel can write (files, sockets) at ``Policy.fsize`` in all, and
        disappears with the worker, however it ends.
        """
        if self.spec.get("private_mounts"):
            subprocess.run(
                [
                    "mount",
                    "-t",
                    "tmpfs",
                    "-o",
                    f"size={self.policy.fsize},nr_inodes=4096,mode=0700,nosuid,nodev",
                    "softgrad-scratch",
                    str(self.runtime),
                ],
                check=True,
            )
        if self.spec.get("sandboxed", True):
            sandbox.give(self.runtime, self.policy.uid)
            self.kernel_home = self.runtime / "k"

    def run(self) -> None:
        tools_on_path()
        self.private_scratch()
        jupyter = self.work / "jupyter"
        sandbox.write_kernelspec(jupyter)
        os.environ["JUPYTER_PATH"] = str(jupyter)
        os.environ[sandbox.ENV_VAR] = self.policy.to_env()
        for a in self.spec["assignments"]:
            write_json_atomic(self.work / "current.json", {"assignment": a})
            t0 = time.monotonic()
            try:
                result = self.grade(a)
            except Exception as exc:  # noqa: BLE001 (keep going: record it for this assignment)
                import traceback

                result = self.row(a, ERROR, message=f"grader error: {type(exc).__name__}: {exc}")
                result["traceback"] = traceback.format_exc()
            result["hash"] = self.spec["hashes"][a]
            result["seconds"] = round(time.monotonic() - t0, 3)
            write_json_atomic(self.results / f"{a}.json", result)
            print(json.dumps({"done": a, "status": result["status"]}), flush=True)
        (self.work / "current.json").unlink(missing_ok=True)

    def row(
        self,
        a: str,
        status: str,
        *,
        score=0.0,
        max_score=None,
        flags=(),
        message="",
        feedback_files=(),
        timings=(),
    ) -> dict:
        if max_score is None:
            max_score = self.spec["max_scores"][a]
        return {
            "student": self.student,
            "assignment": a,
            "score": round(float(score), 4),
            "max_score": round(float(max_score), 4),
            "status": status,
            "flags": list(flags),
            "message": message,
            "feedback": list(feedback_files),
            "timings": list(timings),
        }

    def write_failure_feedback(self, a: str, nb_name: str, status: str, message: str) -> str:
        rel = Path(self.student) / a / f"{Path(nb_name).stem}.html"
        dest = self.feedback_out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp")
        tmp.write_text(feedback.failure_page(self.student, a, status, message))
        os.replace(tmp, dest)
        return str(rel)

    def config(self, root: Path):
        from traitlets.config import Config

        c = load_config(self.course)
        kernel = sandbox.KERNEL_NAME if self.spec.get("sandboxed", True) else "python3"
        c.merge(
            Config(
                {
                    "CourseDirectory": {
                        "root": str(root),
                        "source_directory": str((self.course / "source").resolve()),
                        "db_url": f"sqlite:///{root / 'gradebook.db'}",
                    },
                    "Execute": {
                        "timeout": int(self.spec["cell_timeout"]),
                        "kernel_name": kernel,
                        "startup_timeout": 60,
                    },
                    # A fixed connection file in the private runtime dir (jupyter_client's default is a
                    # tempfile in /tmp, whose directory the launcher must never touch), and ZeroMQ over
                    # unix sockets next to it: the sandbox has no network, not even loopback.
                    "KernelManager": {
                        "transport": "ipc",
                        "connection_file": str(self.runtime / "k.json"),
                    },
                    "LimitOutput": {"max_lines": 1000, "max_traceback": 100},
                }
            )
        )
        return c

    def grade(self, a: str) -> dict:
        import nbformat

        release_dir = self.master / "release" / a
        expected = sorted(p.name for p in release_dir.glob("*.ipynb"))
        sub_dir = self.submissions / self.source_id / a
        root = self.work / a
        if root.exists():
            shutil.rmtree(root)
        submitted = root / "submitted" / self.student / a
        submitted.mkdir(parents=True)
        shutil.copyfile(self.master / "gradebook.db", root / "gradebook.db")

        statuses, flags, notes, messages = [], [], {}, []
        withhold: set[str] = set()
        runnable = []
        copied_dir = root / "intake"
        copied_dir.mkdir()
        where = intake.kind(sub_dir)
        if where == "dir":
            copied = intake.copy_tree(self.submissions, [self.source_id, a], copied_dir)
            pool = list(copied.files)
        elif where == "absent":
            # a flat layout: the notebooks lie in the student's folder itself
            copied = intake.copy_tree(self.submissions, [self.source_id], copied_dir, top_only=True)
            pool = [f for f in copied.files if f.endswith(".ipynb")]
            stems = [n[: -len(".ipynb")] for n in expected]
            pool = [f for f in pool if any(f.startswith(stem) for stem in stems)]
            if pool:
                flags.append(f"flat layout: {', '.join(pool)} found outside a folder {a}/")
            copied.refused = [r for r in copied.refused if r.split(" (")[0].split("/")[0] in pool]
        else:
            copied, pool = intake.Copied(), []
            why = "a link (refused)" if where == "link" else "not a folder"
            flags.append(f"{a}: {why}")
        if copied.refused:
            flags.append(
                "refused (links and special files are never followed): " + ", ".join(copied.refused)
            )
        if not pool and where != "dir":
            message = (
                f"no folder {self.source_id}/{a} in the submissions"
                if where == "absent"
                else f"{self.source_id}/{a} is {'a link' if where == 'link' else 'not a folder'}"
                " and was not read"
            )
            return self.row(
                a,
                MISSING,
                flags=flags,
                message=message,
                feedback_files=[
                    self.write_failure_feedback(a, n, MISSING, "Nothing was submitted.")
                    for n in expected
                ],
            )
        failure_pages = []
        cache: dict[str, object] = {}

        def read(rel: str):
            if rel not in cache:
                cache[rel] = _read_notebook(copied_dir / rel)
            return cache[rel][0]

        used: set[str] = set()
        for name in expected:
            cands = [
                c for c in intake.candidates(pool, name, set(expected) - {name}) if c not in used
            ]
            if not cands:
                statuses.append(MISSING)
                messages.append(f"{name}: not submitted")
                failure_pages.append((name, MISSING, f"{name} was not submitted."))
                continue
            released_nb = nbformat.read(release_dir / name, as_version=4)
            rel, others = intake.choose(cands, name, read, released_nb, copied.mtimes)
            used.add(rel)
            if others:
                flags.append(
                    f"{name}: several candidates, graded {rel} (most answers, then the released "
                    f"name, then the newest); not graded: {', '.join(others)}"
                )
                notes.setdefault(name, []).append(
                    f"You handed in several copies of {name}; {rel} was graded."
                )
            read(rel)
            nb, problem = cache[rel]
            if problem:
                statuses.append(problem[0])
                messages.append(problem[1])
                failure_pages.append((name, *problem))
                continue
            if rel != name:
                statuses.append(RENAMED)
                messages.append(f"{rel} was graded as {name}")
                notes.setdefault(name, []).append(f"Your file {rel} was graded as {name}.")
            nbformat.write(nb, submitted / name)
            runnable.append(name)
        extra = sorted(f for f in pool if f not in used and not f.endswith(".ipynb"))
        if extra:
            flags.append("handed-in files not used by the grader: " + ", ".join(extra[:20]))

        feedback_files = [self.write_failure_feedback(a, n, s, m) for n, s, m in failure_pages]
        if not runnable:
            return self.row(
                a,
                _worst(statuses),
                flags=flags,
                message="; ".join(messages),
                feedback_files=feedback_files,
            )

        check_names = frozenset(self.spec.get("check_names", ()))
        hidden_by_nb, deleted_by_nb = {}, {}
        for name in runnable:
            released = nbformat.read(release_dir / name, as_version=4)
            sub_nb = nbformat.read(submitted / name, as_version=4)
            found = audit.compare_structure(released, sub_nb)
            deleted_by_nb[name] = found.deleted
            if found.deleted:
                flags.append(f"{name}: test cells deleted (scored 0): {', '.join(found.deleted)}")
                notes.setdefault(name, []).append(
                    "These test cells were missing from your notebook and score 0: "
                    + ", ".join(found.deleted)
                    + "."
                )
            if found.edited_locked:
                flags.append(
                    f"{name}: locked cells edited (restored before grading): "
                    + ", ".join(found.edited_locked)
                )
                notes.setdefault(name, []).append(
                    "Read-only cells you changed were restored before grading: "
                    + ", ".join(found.edited_locked)
                    + "."
                )
            suspicious = audit.scan_cells(
                audit.student_cells(released, sub_nb),
                check_names=check_names,
                allowed=audit.allowed_softgrad_names(released),
            )
            flags += [f"{name}: suspicious: {s}" for s in suspicious]
            if any(s.startswith(audit.LEAK_RISKS) for s in suspicious):
                withhold.add(name)
            source_nb = nbformat.read(self.course / "source" / a / name, as_version=4)
            hidden_by_nb[name] = feedback.hidden_lines(source_nb, released, sub_nb)

        t_auto = time.monotonic()
        result = self.autograde(root, a)
        t_auto = time.monotonic() - t_auto
        log = (result.get("log") or "") + (result.get("error") or "")
        autograded = root / "autograded" / self.student / a
        for name in runnable:
            out_nb = autograded / name
            if not out_nb.exists():
                status, why = _diagnose_failure(log)
                statuses.append(status)
                messages.append(f"{name}: {why}")
                feedback_files.append(self.write_failure_feedback(a, name, status, why))
                continue
            nb = nbformat.read(out_nb, as_version=4)
            flags += _output_flags(name, nb, self.policy.memory)
            timeouts = [
                c.get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"cell {i + 1}"
                for i, c in enumerate(nb.cells)
                if c.get("cell_type") == "code"
                and any(o.get("ename") == "CellTimeoutError" for o in c.get("outputs", []))
            ]
            if timeouts:
                statuses.append(TIMED_OUT)
                why = f"{name}: cells stopped after {self.spec['cell_timeout']} s: " + ", ".join(
                    timeouts
                )
                messages.append(why)
                notes.setdefault(name, []).append(
                    f"These cells ran longer than {self.spec['cell_timeout']} s and were stopped: "
                    + ", ".join(timeouts)
                    + "."
                )
            else:
                statuses.append(OK)
        ran = {n for n in runnable if (autograded / n).exists()}
        score, max_score, manual = self.scores(root, a, deleted_by_nb, ran)
        tests = outcomes.graded_tests(
            root / "gradebook.db", a, self.student, autograded, ran, deleted_by_nb
        )
        t_feedback = time.monotonic()
        feedback_files += self.feedback(root, a, runnable, hidden_by_nb, notes, flags, withhold)
        t_feedback = time.monotonic() - t_feedback
        timings = [
            {k: round(v - t["start"], 3) for k, v in t.items() if k != "start"} for t in TIMINGS
        ]
        TIMINGS.clear()
        row = self.row(
            a,
            _worst(statuses),
            score=score,
            max_score=max_score,
            flags=flags,
            message="; ".join(messages),
            feedback_files=feedback_files,
            timings=timings,
        )
        row["phases"] = {"autograde": round(t_auto, 3), "feedback": round(t_feedback, 3)}
        row["manual"] = manual  # the cells that await manual grading (see grade.merge_manual)
        row["tests"] = tests  # each graded test's points and named mistakes (see .report)
        return row

    def confinement(self, a: str) -> dict[str, list]:
        """What each notebook's kernel loses of softgrad, from the course's own source notebook."""
        import nbformat

        off = {}
        for path in sorted((self.course / "source" / a).glob("*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            tests = [feedback._src(c) for c in nb.cells if _is_test(c)]
            off[path.stem] = confine.switched_off(confine.enabled_names(nb, tests))
        return off

    def autograde(self, root: Path, a: str) -> dict:
        from nbgrader.converters import Autograde
        from nbgrader.coursedir import CourseDirectory
        from nbgrader.utils import capture_log

        c = self.config(root)
        os.environ["JUPYTER_RUNTIME_DIR"] = str(self.runtime)
        coursedir = CourseDirectory(config=c)
        coursedir.assignment_id = a
        coursedir.student_id = self.student
        app = Autograde(coursedir=coursedir, config=c)
        app.force = True
        app.create_student = True
        timed = _graded_execute_class(self.kernel_home, self.policy.uid, self.confinement(a))
        app.autograde_preprocessors = [
            timed if p.__name__ == "Execute" else p for p in app.autograde_preprocessors
        ]
        return capture_log(app)

    def scores(
        self, root: Path, a: str, deleted_by_nb: dict, ran: set[str]
    ) -> tuple[float, float, list[dict]]:
        """(automatic score, maximum score, the cells that await manual grading)."""
        from nbgrader.api import Gradebook

        score = max_score = 0.0
        manual = []
        with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
            sub = gb.find_submission(a, self.student)
            for nb in sub.notebooks:
                deleted = set(deleted_by_nb.get(f"{nb.name}.ipynb", ()))
                for g in nb.grades:
                    max_score += g.max_score
                    if g.name in deleted:
                        continue
                    if g.manual_score is not None:
                        score += g.manual_score
                    elif g.auto_score is not None:
                        score += g.auto_score
                    elif g.needs_manual_grade and f"{nb.name}.ipynb" in ran:
                        manual.append(
                            {
                                "notebook": f"{nb.name}.ipynb",
                                "grade_id": g.name,
                                "max_points": float(g.max_score),
                            }
                        )
        return score, max_score, manual

    def feedback(self, root, a, runnable, hidden_by_nb, notes, flags, withhold) -> list[str]:
        import nbformat
        from nbgrader.converters import GenerateFeedback
        from nbgrader.coursedir import CourseDirectory
        from nbgrader.utils import capture_log

        autograded = root / "autograded" / self.student / a
        present = [n for n in runnable if (autograded / n).exists()]
        if not present:
            return []
        for name in present:
            nb = nbformat.read(autograded / name, as_version=4)
            if feedback.redact(nb, hidden_by_nb[name]):
                flags.append(f"{name}: output quoting hidden test code was removed")
            released = nbformat.read(self.master / "release" / a / name, as_version=4)
            locked = {
                audit.nbgrader_meta(c).get("grade_id")
                for c in released.cells
                if audit.nbgrader_meta(c).get("locked")
                and not audit.nbgrader_meta(c).get("solution")
            }
            theirs = {
                i
                for i, c in enumerate(nb.cells)
                if audit.nbgrader_meta(c).get("grade_id") not in locked
            }
            capped = [c for c in feedback.sanitise(nb, theirs) if "size cap" in c]
            if capped:
                flags.append(f"{name}: feedback: " + "; ".join(capped))
            if notes.get(name):
                nb.cells.insert(0, feedback.notice_cell(notes[name]))
            nbformat.write(nb, autograded / name)
        c = self.config(root)
        c.HTMLExporter.template_name = "feedback"
        coursedir = CourseDirectory(config=c)
        coursedir.assignment_id = a
        coursedir.student_id = self.student
        app = GenerateFeedback(coursedir=coursedir, config=c)
        app.force = True
        result = capture_log(app)
        files = []
        for name in present:
            page = root / "feedback" / self.student / a / f"{Path(name).stem}.html"
            rel = Path(self.student) / a / page.name
            if not result["success"] or not page.exists():
                files.append(
                    self.write_failure_feedback(
                        a, name, ERROR, "Feedback could not be generated; ask your instructor."
                    )
                )
                flags.append(f"{name}: generate_feedback failed")
                continue
            text = page.read_text(encoding="utf-8")
            leaked = feedback.leaks(text, hidden_by_nb[name])
            # never hand out hidden tests: not if the page quotes them, nor if the student's
            # code could have copied them out in some encoding (history, frames, linecache)
            if leaked or name in withhold:
                why = "it quoted hidden tests" if leaked else "code that can read hidden tests"
                flags.append(f"{name}: feedback withheld ({why})")
                files.append(
                    self.write_failure_feedback(
                        a,
                        name,
                        "withheld",
                        "Your feedback is held back for your instructor to review.",
                    )
                )
                continue
            dest = self.feedback_out / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, dest)
            files.append(str(rel))
        return files


def _cell_label(i: int, cell) -> str:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"cell {i + 1}"


def _output_flags(name: str, nb, memory: int) -> list[str]:
    """Flags for outputs a grader should know about: memory limit hit, output cut short."""
    mem, cut, ref = [], [], []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            if out.get("ename") == "MemoryError" or "MemoryError" in str(out.get("evalue", "")):
                mem.append(_cell_label(i, cell))
            evalue = str(out.get("evalue", ""))
            if confine.MARK in evalue or "[reference-call]" in evalue:
                ref.append(_cell_label(i, cell))
            if out.get("output_type") == "stream" and "... Output truncated ..." in out.get(
                "text", ""
            ):
                cut.append(_cell_label(i, cell))
    flags = []
    if mem:
        flags.append(
            f"{name}: MemoryError (memory limit {memory / 2**30:g} GiB) in "
            + ", ".join(dict.fromkeys(mem))
        )
    if ref:
        flags.append(
            f"{name}: called softgrad's own implementation in " + ", ".join(dict.fromkeys(ref))
        )
    if cut:
        flags.append(
            f"{name}: output truncated (too many lines) in " + ", ".join(dict.fromkeys(cut))
        )
    return flags


_ORDER = [MISSING, INVALID_JSON, EMPTY, KERNEL_DIED, TIMED_OUT, ERROR, RENAMED, OK]


def _worst(statuses: list[str]) -> str:
    return min(statuses, key=_ORDER.index) if statuses else OK


def _diagnose_failure(log: str) -> tuple[str, str]:
    if "DeadKernelError" in log or "Kernel died" in log or "kernel died" in log.lower():
        return KERNEL_DIED, (
            "the kernel died while running the notebook (crash, os._exit, "
            "or out of memory); no test results"
        )
    if "CellTimeoutError" in log or "Timeout" in log:
        return TIMED_OUT, "a cell did not stop after the time limit; no test results"
    last = [ln for ln in log.strip().splitlines() if ln.strip()][-1:] or ["unknown error"]
    return ERROR, f"nbgrader could not grade it: {last[0][:300]}"


def main(argv: list[str]) -> None:
    spec = json.loads(Path(argv[0]).read_text())
    Job(spec).run()


if __name__ == "__main__":
    main(sys.argv[1:])
