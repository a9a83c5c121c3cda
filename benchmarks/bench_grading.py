"""Time ``python -m softgrad.grading grade`` on a synthetic class, and say where the time goes.

Every student submits every assignment of the course, answered with the source notebook's
solutions (so every notebook runs to the end, as a good class's would). The run is the real
workflow: sandboxed kernels, autograde, feedback. Per notebook it reports the kernel start-up
(launch to kernel ready: bwrap, Python, ipykernel), the execution of the cells, and the rest
(nbgrader bookkeeping, copying and checking the submission, feedback HTML).

Usage::

    python benchmarks/bench_grading.py [--students 20] [--jobs 2] [--course exercises]
                                       [--write benchmarks/GRADING_RESULTS.md]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from softgrad.grading.course import assignments, solved


def synthesise(course: Path, subs: Path, n_students: int) -> list[str]:
    names = assignments(course)
    for a in names:
        for src in sorted((course / "source" / a).glob("*.ipynb")):
            released = nbformat.read(course / "release" / a / src.name, as_version=4)
            answer = solved(nbformat.read(src, as_version=4), released)
            for i in range(n_students):
                dest = subs / f"student{i:02d}" / a / src.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                nbformat.write(answer, dest)
    return names


def _stats(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{statistics.mean(values):.2f} s (median {statistics.median(values):.2f}, max {max(values):.2f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--course", type=Path, default=Path("exercises"))
    parser.add_argument("--write", type=Path, help="also write the report (markdown) here")
    args = parser.parse_args(argv)

    course = args.course.resolve()
    release = subprocess.run(
        [sys.executable, "-m", "softgrad.grading", "--course", str(course), "release"],
        capture_output=True,
        text=True,
        check=False,
    )
    if release.returncode:
        print(release.stderr, file=sys.stderr)
        return 1
    base = Path(tempfile.mkdtemp(prefix="sgbench-"))
    try:
        subs, out = base / "subs", base / "out"
        names = synthesise(course, subs, args.students)
        cmd = [
            sys.executable,
            "-m",
            "softgrad.grading",
            "--course",
            str(course),
            "grade",
            str(subs),
            "--out",
            str(out),
            "--jobs",
            str(args.jobs),
        ]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.monotonic() - t0
        if proc.returncode:
            print(proc.stdout, proc.stderr, file=sys.stderr)
            return 1
        t1 = time.monotonic()
        rerun = subprocess.run(cmd, capture_output=True, text=True, check=False)
        rerun_wall = time.monotonic() - t1
        with open(out / "grades.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        startup, execution, per_nb, feedback, cells, tests = [], [], [], [], [], []
        for p in sorted((out / ".work" / "results").glob("*/*.json")):
            r = json.loads(p.read_text())
            per_nb.append(r["seconds"])
            for t in r.get("timings", []):
                if "ready" in t and "end" in t:
                    startup.append(t["ready"])
                    execution.append(t["end"] - t["ready"])
                    if "cells" in t:  # the kernel's cells, then the tests run by the grader
                        cells.append(t["cells"] - t["ready"])
                        tests.append(t["end"] - t["cells"])
            if "phases" in r:
                feedback.append(r["phases"].get("feedback", 0.0))
        statuses = sorted({r["status"] for r in rows})
        n = len(rows)
        kernel_total = sum(startup) + sum(execution)
        lines = [
            "# Grading benchmark",
            "",
            (
                f"`python benchmarks/bench_grading.py --students {args.students} --jobs {args.jobs}`"
                f" on {os.cpu_count()} cores ({platform.machine()}),"
                f" {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}."
            ),
            "",
            (
                f"- class: {args.students} students x {len(names)} assignments"
                f" ({', '.join(names)}) = {n} notebooks, answered with the solutions;"
                f" statuses: {', '.join(statuses)}"
            ),
            (
                f"- wall time, sandboxed, {args.jobs} students at a time: **{wall:.1f} s**"
                f" ({wall / max(n, 1):.2f} s per notebook)"
            ),
            (
                f"- re-run with nothing changed (every result cached): {rerun_wall:.1f} s"
                f" (exit {rerun.returncode})"
            ),
            "",
            f"- load average (1 min) at the end: {os.getloadavg()[0]:.1f}",
            "",
            "Per notebook, measured inside its worker (workers run in parallel):",
            "",
            (
                f"- kernel start-up (launch to ready; prlimit + bwrap + Python + ipykernel):"
                f" {_stats(startup)}"
            ),
            f"- cell execution: {_stats(execution)}",
            f"  - the student's and the locked cells, in the kernel: {_stats(cells)}",
            (f"  - the test cells, run by the grader, calling into the kernel: {_stats(tests)}"),
            f"- feedback HTML (nbgrader generate_feedback + redaction): {_stats(feedback)}",
            f"- whole notebook in its worker: {_stats(per_nb)}",
            (
                f"- share of worker time in the kernel: start-up"
                f" {100 * sum(startup) / max(sum(per_nb), 1e-9):.0f} %, execution"
                f" {100 * sum(execution) / max(sum(per_nb), 1e-9):.0f} %, the rest (nbgrader bookkeeping, copy and checks,"
                f" gradebook, feedback)"
                f" {100 * (1 - kernel_total / max(sum(per_nb), 1e-9)):.0f} %"
            ),
        ]
        report = "\n".join(lines) + "\n"
        print(report)
        if args.write:
            args.write.write_text(report)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
