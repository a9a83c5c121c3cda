"""Command line: ``python -m softgrad.grading release|grade|merge`` (see ``--help``)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from .course import GradingError, release, tools_on_path
from .grade import grade, merge
from .shard import parse as parse_shard


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM (a BaseException, like KeyboardInterrupt)."""


def _size(text: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    t = text.strip().lower().rstrip("b")
    if t and t[-1] in units:
        return int(float(t[:-1]) * units[t[-1]])
    return int(t)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m softgrad.grading", description="Release and grade the nbgrader exercises."
    )
    parser.add_argument(
        "--course",
        type=Path,
        default=Path("exercises"),
        help="nbgrader course directory (default: exercises)",
    )
    # --course is also accepted after the command
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--course", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "release", parents=[common], help="generate the student notebooks into COURSE/release/"
    )
    report_options = argparse.ArgumentParser(add_help=False)
    report_options.add_argument(
        "--roster",
        type=Path,
        help="CSV pairing each student's folder name with their LMS ids: writes "
        "OUT/lms/canvas.csv and OUT/lms/moodle.csv (see the instructors' page)",
    )
    report_options.add_argument(
        "--book",
        default="_build/html",
        help="the built book's folder, or the published book's URL, that the class report "
        "links to (default: _build/html)",
    )
    g = sub.add_parser(
        "grade",
        parents=[common, report_options],
        help="autograde SUBMISSIONS/<student>/<assignment>/*.ipynb",
    )
    g.add_argument(
        "submissions", type=Path, help="folder of <student>/<assignment>/<notebook>.ipynb"
    )
    g.add_argument(
        "--out",
        type=Path,
        default=Path("grading-out"),
        help="output dir: grades.csv, feedback/, .work/ (default: grading-out)",
    )
    g.add_argument("--jobs", type=int, default=2, help="students graded at once (default: 2)")
    g.add_argument("--timeout", type=int, default=30, help="seconds per cell (default: 30)")
    g.add_argument(
        "--memory",
        type=_size,
        default="2g",
        help="memory limit of a student's kernel and all its processes together, and of each "
        "process's address space (default: 2g)",
    )
    g.add_argument(
        "--unsafe-no-sandbox",
        action="store_true",
        help="run student code unconfined (only for trusted notebooks)",
    )
    g.add_argument(
        "--shard",
        metavar="K/N",
        help="grade only slice K of N disjoint, stable slices of the students, and write "
        "OUT/shard.json for the merge command",
    )
    m = sub.add_parser(
        "merge",
        parents=[common, report_options],
        help="combine the output dirs of grade --shard K/N into one grades.csv, report, LMS files",
    )
    m.add_argument("shards", type=Path, nargs="+", help="the shards' output dirs")
    m.add_argument("--out", type=Path, required=True, help="output dir of the merge")
    args = parser.parse_args(argv)
    tools_on_path()

    def terminated(signum, frame):
        raise Terminated

    # SIGTERM stops like Ctrl-C: workers and kernels are killed, cgroups and temp dirs removed
    signal.signal(signal.SIGTERM, terminated)
    try:
        if args.command == "release":
            release(args.course)
        elif args.command == "merge":
            merge(args.shards, args.out, roster=args.roster, book=args.book)
        else:
            rows = grade(
                args.submissions,
                args.out,
                args.course,
                jobs=args.jobs,
                cell_timeout=args.timeout,
                memory=args.memory,
                sandboxed=not args.unsafe_no_sandbox,
                shard=parse_shard(args.shard) if args.shard else None,
                roster=args.roster,
                book=args.book,
            )
            if not rows:
                print("no submissions found", file=sys.stderr)
    except GradingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Terminated:
        print("terminated: every result finished so far is kept", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(
            "interrupted: every result finished so far is kept; run the same command again to "
            "grade the rest",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
