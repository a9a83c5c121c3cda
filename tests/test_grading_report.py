"""The class report, the LMS import files, and grading in shards (``make grade``, ``grade-merge``).

One grading run over a small class of the two-assignment fixture course
(tests/fixtures/reportcourse, released there once) is shared by every test here. Each student's
answers are known programs: a correct softmax, the naive one that overflows (twice), one
normalised down the wrong axis, a sign-flipped cross-entropy gradient, one without the 1/N
(twice), and a student who redefines a check helper (flagged). The expected numbers are recomputed in this file from
those programs, without the grading pipeline: each answer and each test cell of the source
notebook run here, in this process, with the real ``softgrad.checks``; a test passes if its
cell raises nothing, and the mistakes it names are the ``[key]``s of its exception that are in
``checks.MISTAKES``. The report, mistakes.csv and grades.csv must agree with that model.

The shards reuse the same run: each of the three ``grade`` runs with ``shard=(k, 3)`` starts
from a copy of its cache (so nothing is executed again), then they are merged and compared
byte for byte with the single run.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

nbformat = pytest.importorskip("nbformat")
bs4 = pytest.importorskip("bs4")

import itertools

from gradingcourse import cli

from softgrad import checks
from softgrad.grading import lms
from softgrad.grading import shard as shards
from softgrad.grading.course import GradingError
from softgrad.grading.intake import safe_id

pytestmark = pytest.mark.grading

COURSE = Path(__file__).parent / "fixtures" / "reportcourse"
RA, RB = "ra_softmax", "rb_cross_entropy"
NAMES = [RA, RB]
TIMEOUT = "10"

SOFTMAX_OK = """def softmax(z):
    z = np.asarray(z, dtype=float)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
"""
SOFTMAX_NAIVE = """def softmax(z):
    e = np.exp(np.asarray(z, dtype=float))
    return e / e.sum(axis=-1, keepdims=True)
"""
SOFTMAX_AXIS0 = """def softmax(z):
    z = np.asarray(z, dtype=float)
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)
"""
SOFTMAX_CHEAT = SOFTMAX_OK + "\ndef check_softmax(f):\n    print('softmax: passed 7 probes')\n"
_P = """    z = np.asarray(z, dtype=float)
    y = np.asarray(y, dtype=float)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    p = e / e.sum(axis=-1, keepdims=True)
"""
_ROW = "(p * y.sum(axis=-1, keepdims=True) - y)"
CE_OK = "def cross_entropy_grad(z, y):\n" + _P + f"    return {_ROW} / z.shape[0]\n"
CE_SIGN = "def cross_entropy_grad(z, y):\n" + _P + f"    return -{_ROW} / z.shape[0]\n"
CE_NO_MEAN = "def cross_entropy_grad(z, y):\n" + _P + f"    return {_ROW}\n"

JANE = "Doe, Jane [12345]"
#: folder -> the answer to each assignment (None: no submission)
CLASS = {
    "ada": {RA: SOFTMAX_OK, RB: CE_OK},
    "cy": {RA: SOFTMAX_AXIS0, RB: CE_SIGN},
    "dee": {RA: SOFTMAX_NAIVE, RB: CE_NO_MEAN},
    "eve": {RA: SOFTMAX_CHEAT, RB: None},
    JANE: {RA: SOFTMAX_NAIVE, RB: CE_NO_MEAN},
}
ANSWER_CELL = {RA: "softmax_solution", RB: "grad_solution"}
#: the roster: Jane's folder is not on it (listed, never guessed); fay is, with no folder
#: (empty cells); Ada's name has a comma
ROSTER = [
    {"folder": "ada", "name": "Lovelace, Ada", "canvas_id": "101", "sis_login_id": "ada1", "section": "A",
     "idnumber": "S1", "email": "ada@example.org"},
    {"folder": "cy", "name": "Cy N", "canvas_id": "103", "sis_login_id": "cy1", "section": "B",
     "idnumber": "S3", "email": "cy@example.org"},
    {"folder": "dee", "name": "Dee O", "canvas_id": "104", "sis_login_id": "dee1", "section": "B",
     "idnumber": "S4", "email": "dee@example.org"},
    {"folder": "eve", "name": "Eve P", "canvas_id": "105", "sis_login_id": "eve1", "section": "B",
     "idnumber": "S5", "email": "eve@example.org"},
    {"folder": "fay", "name": "Fay Q", "canvas_id": "107", "sis_login_id": "fay1", "section": "A",
     "idnumber": "S7", "email": "fay@example.org"},
]  # fmt: skip


# ----------------------------------------------------------------------------- the model


def _cells(nb_path: Path) -> list:
    return nbformat.read(nb_path, as_version=4).cells


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def source_tests(a: str) -> list[tuple[str, str, float]]:
    """(grade_id, full source with hidden tests, points) of each graded test cell."""
    return [
        (_meta(c)["grade_id"], c.source, float(_meta(c)["points"]))
        for c in _cells(COURSE / "source" / a / f"{a}.ipynb")
        if c.cell_type == "code" and _meta(c).get("grade") and not _meta(c).get("solution")
    ]


def run_here(answer: str, test_source: str) -> tuple[bool, list[str]]:
    """Run one answer and one test cell in this process: (passed, named mistake keys).

    The check helpers are imported afresh after the answer ran, as the grader's rule is.
    """
    ns = {"np": np}
    exec(answer, ns)  # noqa: S102 (the fixture's own answers)
    ns.update({n: getattr(checks, n) for n in checks.__all__})
    try:
        exec(test_source, ns)  # noqa: S102
    except Exception as exc:  # noqa: BLE001
        keys = re.findall(r"\[([a-z0-9-]+)\]", str(exc))
        return False, sorted({k for k in keys if k in checks.MISTAKES})
    return True, []


@pytest.fixture(scope="module")
def model() -> dict:
    """(folder, assignment) -> {"score", "tests": {grade_id: (passed, mistakes)}} or None."""
    out = {}
    tests = {a: source_tests(a) for a in NAMES}
    for folder, answers in CLASS.items():
        for a in NAMES:
            if answers[a] is None:
                out[(folder, a)] = None
                continue
            results = {gid: run_here(answers[a], src) for gid, src, _ in tests[a]}
            score = sum(p for gid, _, p in tests[a] if results[gid][0])
            out[(folder, a)] = {"score": score, "tests": results}
    return out


def test_the_fixture_class_makes_named_mistakes(model):
    """The model is not vacuous: several catalogued mistakes, one of them made twice."""
    made = [k for v in model.values() if v for _, ks in v["tests"].values() for k in ks]
    assert len(set(made)) >= 4, made
    assert max(made.count(k) for k in made) >= 2
    assert any(v and all(p for p, _ in v["tests"].values()) for v in model.values())


# ----------------------------------------------------------------------------- one grading run


def _build_class(course: Path, subs: Path) -> None:
    for folder, answers in CLASS.items():
        for a, answer in answers.items():
            if answer is None:
                continue
            nb = nbformat.read(course / "release" / a / f"{a}.ipynb", as_version=4)
            for c in nb.cells:
                if _meta(c).get("grade_id") == ANSWER_CELL[a]:
                    c.source = answer
                if _meta(c).get("grade_id") == "written_shift" and folder == "ada":
                    c.source = "Because softmax(z - c) = softmax(z)."
            (subs / folder / a).mkdir(parents=True)
            nbformat.write(nb, subs / folder / a / f"{a}.ipynb")
    (subs / "notes.txt").write_text("not a student")  # an unmatched entry of SUBMISSIONS


def _write_roster(path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, lms.ROSTER_COLUMNS)
        w.writeheader()
        w.writerows(ROSTER)


def _grade(course, subs, out, *extra) -> str:
    proc = cli(
        "--course", str(course), "grade", str(subs), "--out", str(out), "--jobs", "2",
        "--timeout", TIMEOUT, "--memory", "2g", *extra,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("report")
    course = base / "course"
    shutil.copytree(COURSE, course, ignore=shutil.ignore_patterns("make_course.py"))
    subs, out, roster = base / "subs", base / "out", base / "roster.csv"
    _build_class(course, subs)
    _write_roster(roster)
    stdout = _grade(course, subs, out, "--roster", str(roster), "--book", str(base / "book"))
    with open(out / "grades.csv", newline="") as f:
        rows = {(r["student"], r["assignment"]): r for r in csv.DictReader(f)}
    return {"base": base, "course": course, "subs": subs, "out": out, "roster": roster,
            "rows": rows, "stdout": stdout}  # fmt: skip


def _page(graded):
    return bs4.BeautifulSoup((graded["out"] / "report.html").read_text("utf-8"), "html.parser")


def _section(page, a):
    return page.find("section", id=f"a-{a}")


def test_grades_match_the_model(graded, model):
    rows = graded["rows"]
    assert len(rows) == len(CLASS) * len(NAMES)
    for (folder, a), expected in model.items():
        r = rows[(folder, a)]
        if expected is None:
            assert r["status"] == "missing", r
        else:
            assert (r["status"], float(r["score"])) == ("ok", expected["score"]), r


def test_report_pass_rates_recomputed_from_the_answers(graded, model):
    page = _page(graded)
    for a in NAMES:
        shown = {
            tr["data-test"]: (int(tr["data-passed"]), int(tr["data-submitted"]))
            for tr in _section(page, a).find_all("tr", attrs={"data-passed": True})
        }
        expected = {}
        for gid, _, _ in source_tests(a):
            runs = [v["tests"][gid] for (f, b), v in model.items() if b == a and v]
            expected[gid] = (sum(p for p, _ in runs), len(runs))
        assert shown == expected, a


def test_report_histogram_counts_every_submitted_score(graded, model):
    page = _page(graded)
    for a in NAMES:
        bins = [
            (float(tr["data-lo"]), float(tr["data-hi"]), int(tr["data-count"]))
            for tr in _section(page, a).find_all("tr", attrs={"data-lo": True})
        ]
        scores = [v["score"] for (f, b), v in model.items() if b == a and v]
        top = sum(p for _, _, p in source_tests(a)) + (1 if a == RA else 0)  # + written answer
        assert bins[0][0] < 0 <= bins[0][1]
        assert bins[-1][0] <= top < bins[-1][1]
        assert all(hi == lo2 for (_, hi, _), (lo2, _, _) in itertools.pairwise(bins))
        for lo, hi, count in bins:
            assert count == sum(lo <= s < hi for s in scores), (a, lo, hi)
        assert sum(c for *_, c in bins) == len(scores)


def _expected_mistakes(model) -> dict[tuple[str, str, str], set[str]]:
    found: dict[tuple[str, str, str], set[str]] = {}
    for (folder, a), v in model.items():
        for gid, (_, keys) in (v or {"tests": {}})["tests"].items():
            for k in keys:
                found.setdefault((a, gid, k), set()).add(safe_id(folder))
    return found


def test_mistakes_csv_counts_each_mistake_of_each_test(graded, model):
    with open(graded["out"] / "mistakes.csv", newline="") as f:
        lines = list(csv.DictReader(f))
    assert list(lines[0]) == ["assignment", "test", "mistake", "count", "students"]
    got = {(r["assignment"], r["test"], r["mistake"]): set(r["students"].split()) for r in lines}
    assert got == _expected_mistakes(model)
    assert all(int(r["count"]) == len(r["students"].split()) for r in lines)
    for a in NAMES:  # most common first within an assignment
        counts = [int(r["count"]) for r in lines if r["assignment"] == a]
        assert counts == sorted(counts, reverse=True)
    assert [r["assignment"] for r in lines] == sorted(
        (r["assignment"] for r in lines), key=NAMES.index
    )


def test_report_bar_chart_links_each_mistake_to_its_book_section(graded, model):
    page = _page(graded)
    book = graded["base"] / "book"
    expected = _expected_mistakes(model)
    for a in NAMES:
        sec = _section(page, a)
        rows = sec.find_all("tr", attrs={"data-mistake": True})
        want = {(g, k): len(s) for (b, g, k), s in expected.items() if b == a}
        assert {(tr["data-test"], tr["data-mistake"]): int(tr["data-count"]) for tr in rows} == want
        counts = [int(tr["data-count"]) for tr in rows]
        assert counts == sorted(counts, reverse=True)
        svg_links = [x.get("xlink:href") for x in sec.find_all("svg")[-1].find_all("a")]
        for tr in rows:
            key = tr["data-mistake"]
            label = checks.MISTAKES[key].section
            if label is None:  # a mistake of no section in particular: no link
                assert tr.find("a") is None
                continue
            target = book / "chapters" / f"{checks.SECTIONS[label][0]}.html"
            href = tr.find("a")["href"]
            path, anchor = href.split("#")
            assert anchor == label
            assert (graded["out"] / path).resolve() == target.resolve()
            assert href in svg_links  # the bar and its label link there too


def test_flagged_submissions_are_listed_with_their_reasons(graded):
    sec = _section(_page(graded), RA)
    flagged = {
        tr["data-student"]: tr.get_text(" ") for tr in sec.find_all("tr", {"data-student": True})
    }
    assert set(flagged) == {"eve"}
    assert "redefines check helper check_softmax" in flagged["eve"]


def test_report_opens_from_disk_without_the_network(graded):
    text = (graded["out"] / "report.html").read_text("utf-8")
    page = bs4.BeautifulSoup(text, "html.parser")
    assert not page.find_all(["script", "link", "img", "iframe", "object"])
    assert "@import" not in text
    assert "url(http" not in text
    for tag in page.find_all(href=True):
        assert "://" not in tag["href"], tag["href"]
    for tag in page.find_all(src=True):
        pytest.fail(f"external resource {tag}")
    figures = page.find_all("figure")
    assert len(figures) == 4  # two histograms, two mistake charts
    for i, fig in enumerate(figures, 1):
        assert fig.figcaption.get_text().startswith(f"Figure {i}:")
        svg = fig.find("svg")
        assert svg["role"] == "img"
        assert len(svg["aria-label"]) > 20
    ids = [t["id"] for t in page.find_all(id=True)]
    assert len(ids) == len(set(ids)), "inline figures share ids"
    assert "Not graded" in text
    assert "notes.txt" in text


@pytest.mark.book
def test_every_mistake_links_to_a_section_of_the_built_book(tmp_path):
    """The report's link for each catalogued mistake reaches an element with that id in the
    book `make book` built (the default BOOK)."""
    import os

    from softgrad.grading.report import section_href

    book = Path(os.environ.get("SOFTGRAD_BOOK_HTML", Path(__file__).parents[1] / "_build/html"))
    if not (book / "index.html").exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"no built book in {book} (make book)")
        pytest.skip(f"no built book in {book} (make book)")
    pages: dict[str, str] = {}
    linked = 0
    for key in checks.MISTAKES:
        href = section_href(key, str(book), tmp_path)
        if checks.MISTAKES[key].section is None:  # a mistake of no section: no link
            assert href is None, key
            continue
        linked += 1
        path, anchor = href.split("#")
        if path not in pages:
            pages[path] = (tmp_path / path).read_text("utf-8")
        assert f'id="{anchor}"' in pages[path], (key, path, anchor)
    assert linked > len(checks.MISTAKES) // 2, "most mistakes belong to a section of the book"


# ----------------------------------------------------------------------------- LMS files


def _read(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def canvas_header_ok(row: list[str]) -> bool:
    """Canvas's header rule (GradebookImporter#header?, the Student/ID/SIS/Section layout)."""
    return (
        len(row) > 3
        and "Student" in row[0]
        and "ID" in row[1]
        and re.fullmatch(r"SIS\s+User\s+ID", row[2]) is not None
        and re.fullmatch(r"SIS\s+Login\s+ID", row[3]) is not None
        and "Section" in row[4]
    )


def _score_cell(graded, folder, a) -> str:
    r = graded["rows"].get((folder, a))
    return "" if r is None or r["status"] == "missing" else f"{float(r['score']):g}"


def test_canvas_file_follows_the_gradebook_importer_rules(graded):
    rows = _read(graded["out"] / "lms" / "canvas.csv")
    assert canvas_header_ok(rows[0])
    assert rows[0][5:] == NAMES
    assert rows[1][0] == "Points Possible"
    assert rows[1][5:] == ["4", "3"]
    body = {r[1]: r for r in rows[2:]}
    roster = {e["canvas_id"]: e for e in ROSTER}
    assert list(body) == [e["canvas_id"] for e in ROSTER]  # every roster entry, in order
    for cid, r in body.items():
        e = roster[cid]
        assert r[:5] == [e["name"], cid, "", e["sis_login_id"], e["section"]]
        assert r[5:] == [_score_cell(graded, e["folder"], a) for a in NAMES]
        for cell in r[5:]:
            assert cell == "" or float(cell) >= 0
    assert body["105"][6] == ""  # eve handed in no rb: an empty cell, not 0
    assert body["107"][5:] == ["", ""]  # fay has no folder at all
    assert body["101"][0] == "Lovelace, Ada"  # the comma survives the quoting
    assert len(rows) == 2 + len(ROSTER)  # Jane's folder, on no roster line, is not guessed


def test_moodle_file_follows_the_csv_import_rules(graded):
    rows = _read(graded["out"] / "lms" / "moodle.csv")
    assert rows[0] == ["ID number", *NAMES]
    assert [r[0] for r in rows[1:]] == [e["idnumber"] for e in ROSTER]
    for r in rows[1:]:
        assert len(r) == 1 + len(NAMES)
        assert r[0]
        folder = next(e["folder"] for e in ROSTER if e["idnumber"] == r[0])
        for a, cell in zip(NAMES, r[1:], strict=True):
            assert cell == (_score_cell(graded, folder, a) or "-")
    eve = next(r for r in rows if r[0] == "S5")
    assert eve[2] == "-"  # no submission: Moodle's "no grade", not 0


def test_unmatched_names_are_listed_never_guessed(graded):
    with open(graded["out"] / "lms" / "unmatched.csv", newline="") as f:
        lines = list(csv.DictReader(f))
    by = {(r["folder"], r["lms"]): r["reason"] for r in lines}
    assert "no roster entry" in by[(JANE, "all")]
    assert "no such folder" in by[("fay", "all")]
    assert len(lines) == 2
    assert JANE in graded["stdout"]


def test_roster_errors_name_the_file_and_line(tmp_path):
    def roster(text):
        p = tmp_path / "r.csv"
        p.write_text(text)
        return p

    cases = [
        ("name,canvas_id\nada,1\n", "no 'folder' column"),
        ("folder,name\nada,Ada\n", "no id column"),
        ("folder,canvas_id\nada,1\n,2\n", "line 3: the folder column is empty"),
        ("folder,canvas_id\nada,1\nada,2\n", "lines 2 and 3 have the same folder 'ada'"),
        ("folder,email\nada,a@x\nbob,a@x\n", "lines 2 and 3 have the same email 'a@x'"),
        ("folder,canvas_id\nDoe, Jane,1\n", "line 2: 3 cells but 2 columns"),
        ("", "is empty"),
    ]
    for text, message in cases:
        with pytest.raises(GradingError, match=re.escape(message)):
            lms.read_roster(roster(text))
    r = lms.read_roster(roster('\ufeff Folder ,Canvas_ID,extra\n"Doe, Jane",7,x\n\n'))
    assert [e.folder for e in r.entries] == ["Doe, Jane"]
    assert r.ignored == ["extra"]


def test_lms_files_from_rows_without_grading(tmp_path):
    """The LMS rules on rows made here: no Canvas file without a Canvas id column, an error row
    gets no score, a roster line naming an entry that was not graded says why."""
    (tmp_path / "r.csv").write_text(
        "folder,email\nada,ada@x\nbob,bob@x\nlink,l@x\nnone,\nAda ,a2@x\n"
    )
    roster = lms.read_roster(tmp_path / "r.csv")

    def row(student, status, score):
        return {"student": student, "assignment": "Final Score 1", "status": status,
                "score": score}  # fmt: skip

    rows = [row("ada", "ok", 2.5), row("bob", "error", 0.0), row("cyd", "ok", 1.0)]
    notes = lms.write(tmp_path / "lms", rows, ["Final Score 1"], {"Final Score 1": 3.0}, roster,
                      {"link": "a link: the grader never follows links"})  # fmt: skip
    assert not (tmp_path / "lms" / "canvas.csv").exists()
    assert _read(tmp_path / "lms" / "moodle.csv") == [
        ["Email address", "Final Score 1"], ["ada@x", "2.5"], ["bob@x", "-"], ["l@x", "-"],
        ["a2@x", "-"],
    ]  # fmt: skip
    with open(tmp_path / "lms" / "unmatched.csv", newline="") as f:
        why = {(r["folder"], r["lms"]): r["reason"] for r in csv.DictReader(f)}
    assert "the grader failed" in why[("bob", "all")]
    assert "was not graded (a link" in why[("link", "all")]
    assert "left out of moodle.csv" in why[("none", "moodle")]
    assert "no roster entry" in why[("cyd", "all")]
    assert "Canvas takes columns containing Final Score" in " ".join(notes)
    assert "differs in case or spaces only" not in why[("cyd", "all")]
    (tmp_path / "r.csv").write_text("folder,email\nAda ,a@x\n")
    lms.write(tmp_path / "lms", rows[:1], ["Final Score 1"], {"Final Score 1": 3.0},
              lms.read_roster(tmp_path / "r.csv"))  # fmt: skip
    with open(tmp_path / "lms" / "unmatched.csv", newline="") as f:
        why = {(r["folder"], r["lms"]): r["reason"] for r in csv.DictReader(f)}
    assert "line 2 has 'Ada ', which differs in case or spaces only" in why[("ada", "all")]


def test_output_only_modules_exist():
    """The modules left out of the grading cache key are there (a rename would re-grade on
    every change to them, and hide nothing)."""
    from softgrad.grading import course

    root = Path(course.__file__).resolve().parents[1]
    assert all((root / m).is_file() for m in course.OUTPUT_ONLY)


# ----------------------------------------------------------------------------- shards


def test_a_students_shard_depends_only_on_their_id():
    names = [f"s{i}" for i in range(200)]
    for n in (1, 2, 3, 7):
        slices = [shards.select(names, k, n) for k in range(1, n + 1)]
        assert sorted(s for piece in slices for s in piece) == sorted(names)  # disjoint, covering
        more = shards.select([*names, "newcomer", "late"], 1, n)
        assert [s for s in more if s in names] == slices[0]  # nobody moves
    sizes = [len(shards.select(names, k, 4)) for k in range(1, 5)]
    assert min(sizes) > 30  # roughly even
    for bad in ("0/3", "4/3", "1", "a/b", "1/0"):
        with pytest.raises(GradingError, match="SHARD"):
            shards.parse(bad)


@pytest.fixture(scope="module")
def sharded(graded):
    """Three shard outputs of the same class, and their merge (with the roster)."""
    from softgrad.grading import grade
    from softgrad.grading.course import tools_on_path

    tools_on_path()  # as the command line does: nbgrader runs alembic by name
    base, single = graded["base"], graded["out"]
    ids = [safe_id(f) for f in CLASS]
    sizes = {k: sum(shards.shard_of(s, 3) == k for s in ids) for k in (1, 2, 3)}
    dirs, logs = [], []
    for k in (1, 2, 3):
        d = base / f"shard{k}"
        for part in (".work/master", ".work/results", "feedback"):  # the single run's cache
            shutil.copytree(single / part, d / part)
        grade(graded["subs"], d, graded["course"], jobs=2, cell_timeout=int(TIMEOUT),
              memory=2 * 1024**3, shard=(k, 3), roster=graded["roster"], log=logs.append)  # fmt: skip
        dirs.append(d)
    for n in sizes.values():  # every result came from the copied cache
        assert any(f"grading {n} students x 2 assignments ({n} students unchanged" in x
                   for x in logs), logs  # fmt: skip
    merged = base / "merged"
    proc = cli("merge", *map(str, dirs), "--out", str(merged), "--roster", str(graded["roster"]),
               "--book", str(base / "book"))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"dirs": dirs, "merged": merged, "sizes": sizes, "logs": logs}


def test_shards_are_disjoint_slices_of_the_class(graded, sharded):
    seen = []
    for k, d in enumerate(sharded["dirs"], 1):
        with open(d / "grades.csv", newline="") as f:
            students = {r["student_id"] for r in csv.DictReader(f)}
        assert all(shards.shard_of(s, 3) == k for s in students)
        assert len(students) == sharded["sizes"][k]
        seen += students
        assert not (d / "lms").exists()  # a slice's LMS file would blank the other students
    assert sorted(seen) == sorted(safe_id(f) for f in CLASS)


OUTPUTS = ["grades.csv", "unmatched.csv", "manual.csv", "mistakes.csv", "report.html",
           "lms/canvas.csv", "lms/moodle.csv", "lms/unmatched.csv"]  # fmt: skip


def test_three_shards_merged_give_the_bytes_of_one_run(graded, sharded):
    for name in OUTPUTS:
        assert (sharded["merged"] / name).read_bytes() == (graded["out"] / name).read_bytes(), name
    pages = sorted(p.relative_to(graded["out"]) for p in (graded["out"] / "feedback").rglob("*"))
    assert sorted(p.relative_to(sharded["merged"]) for p in
                  (sharded["merged"] / "feedback").rglob("*")) == pages  # fmt: skip


def test_manual_points_reach_the_lms_files_through_the_merge(graded, sharded):
    merged = sharded["merged"]
    with open(merged / "manual.csv", newline="") as f:
        entries = list(csv.DictReader(f))
    assert [(e["student"], e["grade_id"]) for e in entries] == [("ada", "written_shift")]
    entries[0]["points"] = "0.5"
    with open(merged / "manual.csv", "w", newline="") as f:
        w = csv.DictWriter(f, list(entries[0]))
        w.writeheader()
        w.writerows(entries)
    proc = cli("merge", *map(str, sharded["dirs"]), "--out", str(merged),
               "--roster", str(graded["roster"]))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    before = float(graded["rows"][("ada", RA)]["score"])
    canvas = {r[1]: r for r in _read(merged / "lms" / "canvas.csv")}
    moodle = {r[0]: r for r in _read(merged / "lms" / "moodle.csv")}
    assert float(canvas["101"][5]) == float(moodle["S1"][1]) == before + 0.5


def _copy_shards(sharded, tmp_path) -> list[Path]:
    out = []
    for d in sharded["dirs"]:
        dest = tmp_path / d.name
        dest.mkdir()
        shutil.copy(d / "shard.json", dest / "shard.json")
        out.append(dest)
    return out


def _edit(path: Path, change) -> None:
    data = json.loads((path / "shard.json").read_text())
    change(data)
    (path / "shard.json").write_text(json.dumps(data))


def test_merge_refuses_shards_that_do_not_fit(sharded, tmp_path):
    dirs = _copy_shards(sharded, tmp_path)
    out = tmp_path / "m"
    with pytest.raises(GradingError, match=r"missing shard 3/3"):
        shards.load(dirs[:2], out)
    with pytest.raises(GradingError, match=r"are both shard 1/3"):
        shards.load([dirs[0], dirs[0], dirs[1]], out)
    with pytest.raises(GradingError, match=r"has no shard.json"):
        shards.load([*dirs, tmp_path], out)
    with pytest.raises(GradingError, match=r"one of the SHARDS"):
        shards.load(dirs, dirs[1])
    for change, message in [
        (lambda d: d.__setitem__("key", "other"), "other grading inputs"),
        (lambda d: d["students"].append("ghost"), "other students"),
        (lambda d: d.__setitem__("shard", [d["shard"][0], 4]), "another number of shards"),
    ]:
        edited = [tmp_path / "e" / d.name for d in dirs]
        shutil.rmtree(tmp_path / "e", ignore_errors=True)
        for d, e in zip(dirs, edited, strict=True):
            shutil.copytree(d, e)
        _edit(edited[1], change)
        with pytest.raises(GradingError, match=message):
            shards.load(edited, out)
    full = shards.load(dirs, out)
    assert [r["student_id"] for r in full.rows][:: len(NAMES)] == sorted(safe_id(f) for f in CLASS)


def test_merge_refuses_a_shard_that_lost_a_student(sharded, tmp_path):
    dirs = _copy_shards(sharded, tmp_path)
    victim = next(d for d in dirs if json.loads((d / "shard.json").read_text())["rows"])
    _edit(victim, lambda d: d.__setitem__("rows", d["rows"][len(NAMES) :]))
    with pytest.raises(GradingError, match="do not cover every student"):
        shards.load(dirs, tmp_path / "m")


def test_shard_json_keeps_rows_before_manual_points(sharded):
    rows = [r for d in sharded["dirs"] for r in json.loads((d / "shard.json").read_text())["rows"]]
    assert all("tests" in r for r in rows if r["status"] == "ok")
    assert rows
    assert all("manual grading" not in r["message"] for r in rows)


def test_report_of_a_shard_says_it_is_partial(sharded):
    text = (sharded["dirs"][0] / "report.html").read_text("utf-8")
    assert "Shard 1/3" in text
