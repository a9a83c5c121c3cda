"""The class report: what the class as a whole got right and wrong, per assignment.

:func:`write` turns the rows of one grading run (or of merged shards) into

- ``OUT/report.html``, one self-contained page (figures are inline SVG drawn by matplotlib; no
  script, no stylesheet or font from the network) with, per assignment, the score distribution,
  the pass rate of each graded test, the catalogued mistakes (:data:`softgrad.checks.MISTAKES`)
  most common first, each linked to the book section that explains it, and the flagged
  submissions with their reasons;
- ``OUT/mistakes.csv``, one line per assignment, test and mistake: ``count`` students made it,
  listed by their ``student_id`` (as in grades.csv) in ``students``, separated by spaces.

What is counted (the instructors' page says the same):

- *submitted*: every row whose status is not ``missing`` (nothing handed in) or ``error`` (the
  grader failed, not the student); the histogram and the pass rates are over these;
- a test *passes* when it got its full points; a submitted notebook whose tests did not run (a
  kernel that died, a file that is not a notebook) counts as failing them;
- a mistake is counted once per student and test, when the test's failure named it.

The page depends only on the rows, never on when or where they were graded, so the same grades
give the same bytes (a merge of shards gives the page of a single run).
"""

from __future__ import annotations

import csv
import html
import io
import itertools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

MISTAKE_COLUMNS = ["assignment", "test", "mistake", "count", "students"]
NOT_SUBMITTED = ("missing", "error")


@dataclass
class TestStats:
    """Pass counts of one graded test cell of an assignment."""

    notebook: str
    grade_id: str
    max_points: float
    label: str = ""
    passed: int = 0
    submitted: int = 0


@dataclass
class MistakeCount:
    """The students who made one catalogued mistake in one test."""

    assignment: str
    test: str
    key: str
    students: list[str] = field(default_factory=list)
    position: int = 0  # the test's place in the notebook (ties are listed in test order)


def released_tests(release: Path, names: list[str]) -> dict[str, list[dict]]:
    """The graded test cells of each released assignment: ``notebook``, ``grade_id``, ``max_points``.

    Read from the released notebooks (tests are locked cells, so every student's copy has them),
    in notebook and cell order.
    """
    import nbformat

    from .audit import nbgrader_meta

    out: dict[str, list[dict]] = {}
    for a in names:
        cells = []
        for path in sorted((release / a).glob("*.ipynb")):
            for c in nbformat.read(path, as_version=4).cells:
                m = nbgrader_meta(c)
                if c.get("cell_type") == "code" and m.get("grade") and m.get("grade_id"):
                    cells.append(
                        {
                            "notebook": path.name,
                            "grade_id": m["grade_id"],
                            "max_points": float(m.get("points", 0)),
                        }
                    )
        out[a] = cells
    return out


def submitted(row: dict) -> bool:
    return row["status"] not in NOT_SUBMITTED


def test_stats(rows: list[dict], assignment: str, tests: list[dict]) -> list[TestStats]:
    """Pass counts of each graded test of ``assignment`` over the submitted rows."""
    ids = [t["grade_id"] for t in tests]
    stats = []
    for t in tests:
        label = t["grade_id"] if ids.count(t["grade_id"]) == 1 else _label(t)
        stats.append(TestStats(t["notebook"], t["grade_id"], t["max_points"], label))
    index = {(s.notebook, s.grade_id): s for s in stats}
    for r in rows:
        if r["assignment"] != assignment or not submitted(r):
            continue
        ran = {(t["notebook"], t["grade_id"]): t for t in r.get("tests", [])}
        for key, s in index.items():
            s.submitted += 1
            s.passed += bool(ran.get(key, {}).get("passed"))
    return stats


def _label(t: dict) -> str:
    return f"{Path(t['notebook']).stem}/{t['grade_id']}"


def mistake_counts(rows: list[dict], names: list[str], tests: dict) -> list[MistakeCount]:
    """Every (assignment, test, mistake) made by at least one student, most common first
    within each assignment (then in test order, then by key)."""
    out = []
    for a in names:
        stats = test_stats([], a, tests.get(a, []))
        order = {(s.notebook, s.grade_id): i for i, s in enumerate(stats)}
        label = {(s.notebook, s.grade_id): s.label for s in stats}
        found: dict[tuple, MistakeCount] = {}
        for r in rows:
            if r["assignment"] != a:
                continue
            for t in r.get("tests", []):
                where = (t["notebook"], t["grade_id"])
                for key in t.get("mistakes", []):
                    m = found.setdefault(
                        (where, key),
                        MistakeCount(
                            a, label.get(where, _label(t)), key, [], order.get(where, len(order))
                        ),
                    )
                    if r["student_id"] not in m.students:
                        m.students.append(r["student_id"])
        out += sorted(found.values(), key=lambda m: (-len(m.students), m.position, m.key))
    return out


def write_mistakes_csv(path: Path, counts: list[MistakeCount]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(MISTAKE_COLUMNS)
    for m in counts:
        w.writerow([m.assignment, m.test, m.key, len(m.students), " ".join(sorted(m.students))])
    _write_atomic(path, buf.getvalue())


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- book links


def section_href(key: str, book: str, out: Path) -> str | None:
    """Where the book explains mistake ``key``: ``BOOK/chapters/<chapter>.html#<label>``.

    ``book`` is the built book's folder (the link is made relative to the report, so the two
    can be moved together) or a URL of the published book. None for a mistake that belongs to
    no section of the book.
    """
    from softgrad.checks import MISTAKES, SECTIONS

    label = MISTAKES[key].section
    if label is None or label not in SECTIONS:
        return None
    page = f"chapters/{SECTIONS[label][0]}.html"
    if "://" in book:
        return f"{book.rstrip('/')}/{page}#{label}"
    target = os.path.relpath(Path(book).resolve() / page, out.resolve())
    return f"{Path(target).as_posix()}#{label}"


# ----------------------------------------------------------------------------- figures


def histogram_edges(max_score: float) -> list[float]:
    """Bin edges of the score histogram: one bin per whole point (centred on it) up to 20
    points, otherwise 20 equal bins from 0 to the maximum."""
    import numpy as np

    if max_score <= 20:
        top = int(np.ceil(max_score))
        return [i - 0.5 for i in range(top + 2)]
    return [float(e) for e in np.linspace(0.0, max_score, 21)]


def histogram_counts(scores: list[float], edges: list[float]) -> list[int]:
    import numpy as np

    counts, _ = np.histogram(np.asarray(scores, dtype=float), bins=np.asarray(edges))
    return [int(c) for c in counts]


def _svg(fig, name: str, label: str) -> str:
    """``fig`` as inline SVG whose ids are prefixed by ``name`` (several figures share a page)."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "softgrad-report", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r'\bid="([^"]+)"', rf'id="{name}-\1"', text)
    text = re.sub(r"url\(#([^)]+)\)", rf"url(#{name}-\1)", text)
    text = re.sub(r'xlink:href="#([^"]+)"', rf'xlink:href="#{name}-\1"', text)
    attrs = f'role="img" aria-label="{html.escape(label)}" '
    return text.replace("<svg ", "<svg " + attrs, 1)


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    return fig, fig.add_subplot()


def histogram_svg(name: str, edges: list[float], counts: list[int], max_score: float) -> str:
    from matplotlib.ticker import MaxNLocator

    fig, ax = _figure(6.0, 2.8)
    lefts, widths = edges[:-1], [b - a for a, b in itertools.pairwise(edges)]
    ax.bar(lefts, counts, width=widths, align="edge", color="#1f5f99", edgecolor="white")
    ax.set_xlim(edges[0], edges[-1])
    if max_score <= 20:  # one bin per point: a tick under each
        ax.set_xticks(range(int(edges[-1] + 0.5)))
    ax.set_xlabel(f"score (out of {max_score:g})")
    ax.set_ylabel("students")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.spines[["top", "right"]].set_visible(False)
    label = "Histogram of scores: " + ", ".join(
        f"{c} from {a:g} to {b:g}" for a, b, c in zip(edges, edges[1:], counts, strict=False) if c
    )
    return _svg(fig, name, label or "Histogram of scores: no submissions")


def mistakes_svg(name: str, counts: list[MistakeCount], links: dict[str, str]) -> str:
    from matplotlib.ticker import MaxNLocator

    fig, ax = _figure(6.0, 0.9 + 0.35 * len(counts))
    keys = [m.key for m in counts]  # the test is named only where a key is in several tests
    labels = [m.key if keys.count(m.key) == 1 else f"{m.key} ({m.test})" for m in counts]
    ys = list(range(len(counts)))
    bars = ax.barh(ys, [len(m.students) for m in counts], color="#a33b20")
    ax.set_yticks(ys, labels)
    ax.invert_yaxis()  # the most common mistake on top
    ax.set_xlabel("students")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.spines[["top", "right"]].set_visible(False)
    for bar, text, m in zip(bars, ax.get_yticklabels(), counts, strict=True):
        bar.set_url(links.get(m.key))
        text.set_url(links.get(m.key))
    label = "Bar chart of named mistakes, most common first: " + ", ".join(
        f"{m.key} in {m.test}, {len(m.students)} students" for m in counts
    )
    return _svg(fig, name, label)


# ----------------------------------------------------------------------------- the page

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1a1a1a;
line-height:1.45}
main{max-width:60rem;margin:0 auto;padding:1rem}
h1{font-size:1.6rem}h2{font-size:1.3rem;border-bottom:1px solid #ccc;margin-top:2.5rem}
h3{font-size:1.05rem;margin-top:1.5rem}
figure{margin:1rem 0}figure .scroll svg{width:100%;max-width:38rem;min-width:26rem;height:auto}
figcaption{font-size:.9rem;color:#333}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
td.num{text-align:right}td.what{min-width:14rem}
.id{overflow-wrap:anywhere}td code{white-space:nowrap}
a{color:#0b5394}
"""


def _e(text) -> str:
    return html.escape(str(text))


def _pct(a: int, b: int) -> str:
    return f"{100 * a / b:.0f}%" if b else "-"


def flagged(rows: list[dict], assignment: str) -> list[tuple[dict, list[str]]]:
    """Rows of ``assignment`` that need a look, with their reasons: a status other than ``ok``
    or ``missing``, or any flag."""
    out = []
    for r in rows:
        if r["assignment"] != assignment:
            continue
        reasons = []
        if r["status"] not in ("ok", "missing"):
            reasons.append(f"status {r['status']}" + (f": {r['message']}" if r["message"] else ""))
        reasons += list(r["flags"])
        if reasons:
            out.append((r, reasons))
    return out


def render(
    rows: list[dict],
    names: list[str],
    max_scores: dict[str, float],
    tests: dict[str, list[dict]],
    unmatched: list,
    *,
    out: Path,
    book: str,
    note: str = "",
) -> str:
    """The report page's HTML (see the module docstring)."""
    students = sorted({r["student_id"] for r in rows})
    folder = {r["student_id"]: r["student"] for r in rows}
    counts = mistake_counts(rows, names, tests)
    from softgrad.checks import MISTAKES

    # a key from results graded by another version of the checks has no section to link to
    links = {m.key: section_href(m.key, book, out) for m in counts if m.key in MISTAKES}
    links = {k: v for k, v in links.items() if v is not None}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Class report</title>",
        f"<style>{_CSS}</style></head><body><main>",
        "<h1>Class report</h1>",
    ]
    if note:
        parts.append(f"<p><strong>{_e(note)}</strong></p>")
    parts.append(
        f"<p>{len(students)} students, {len(names)} assignments. Named mistakes link to the "
        f"book section that explains them ({_e(book)}). The same numbers are in "
        '<a href="mistakes.csv">mistakes.csv</a> and <a href="grades.csv">grades.csv</a>.</p>'
    )
    parts.append(
        "<nav><ul>"
        + "".join(f'<li><a href="#a-{_e(a)}">{_e(a)}</a></li>' for a in names)
        + ("<li><a href='#not-graded'>Not graded</a></li>" if unmatched else "")
        + "</ul></nav>"
    )
    figure = 0
    for a in names:
        mine = [r for r in rows if r["assignment"] == a]
        handed = [r for r in mine if submitted(r)]
        missing = [r for r in mine if r["status"] == "missing"]
        failed = [r for r in mine if r["status"] == "error"]
        top = float(max_scores.get(a, 0.0))
        scores = [float(r["score"]) for r in handed]
        parts.append(f'<section id="a-{_e(a)}"><h2>{_e(a)}</h2>')
        summary = f"{len(handed)} of {len(mine)} students submitted"
        if scores:
            mean = sum(scores) / len(scores)
            mid = sorted(scores)[len(scores) // 2]
            if len(scores) % 2 == 0:
                mid = (sorted(scores)[len(scores) // 2 - 1] + mid) / 2
            summary += f"; mean score {mean:.2f}, median {mid:g} (out of {top:g})"
        pending = sum("manual grading" in r["message"] for r in handed)
        if pending:
            summary += (
                f"; {pending} still await{'s' if pending == 1 else ''} manual points, which are "
                "not in the scores yet"
            )
        parts.append(f"<p>{_e(summary)}.</p>")
        if missing:
            parts.append(
                f"<details><summary>{len(missing)} with no submission</summary><p>"
                + ", ".join(f'<span class="id">{_e(r["student"])}</span>' for r in missing)
                + "</p></details>"
            )
        if failed:
            parts.append(
                f"<p>{len(failed)} not counted: the grader failed on them (see the flagged "
                "submissions below) and they have no score yet.</p>"
            )
        # score distribution
        edges = histogram_edges(top)
        hist = histogram_counts(scores, edges)
        figure += 1
        parts.append(
            '<figure><div class="scroll">'
            + histogram_svg(f"f{figure}", edges, hist, top)
            + f"</div><figcaption>Figure {figure}: distribution of the scores of the {len(handed)} "
            f"submissions of {_e(a)}, manual points included.</figcaption></figure>"
        )
        parts.append(
            '<details><summary>The histogram as a table</summary><div class="scroll">'
            "<table><thead><tr><th>scores from</th><th>to below</th><th>students</th></tr>"
            "</thead><tbody>"
        )
        for lo, hi, c in zip(edges, edges[1:], hist, strict=False):
            parts.append(
                f'<tr data-lo="{lo:g}" data-hi="{hi:g}" data-count="{c}"><td class="num">{lo:g}'
                f'</td><td class="num">{hi:g}</td><td class="num">{c}</td></tr>'
            )
        parts.append("</tbody></table></div></details>")
        # pass rates
        stats = test_stats(rows, a, tests.get(a, []))
        parts.append(f"<h3>Graded tests of {_e(a)}</h3>")
        if stats:
            parts.append(
                '<div class="scroll"><table><thead><tr><th>test</th><th>points</th>'
                "<th>passed</th><th>submitted</th><th>pass rate</th></tr></thead><tbody>"
            )
            for s in stats:
                parts.append(
                    f'<tr data-test="{_e(s.label)}" data-passed="{s.passed}" '
                    f'data-submitted="{s.submitted}"><td><code>{_e(s.label)}</code></td>'
                    f'<td class="num">{s.max_points:g}</td><td class="num">{s.passed}</td>'
                    f'<td class="num">{s.submitted}</td>'
                    f'<td class="num">{_pct(s.passed, s.submitted)}</td></tr>'
                )
            parts.append("</tbody></table></div>")
        else:
            parts.append("<p>This assignment has no automatically graded tests.</p>")
        # mistakes
        made = [m for m in counts if m.assignment == a]
        parts.append(f"<h3>Named mistakes in {_e(a)}</h3>")
        if made:
            figure += 1
            parts.append(
                '<figure><div class="scroll">'
                + mistakes_svg(f"f{figure}", made, links)
                + f"</div><figcaption>Figure {figure}: how many students made each catalogued mistake "
                f"in {_e(a)}, most common first; each bar links to the book section that "
                "explains the mistake.</figcaption></figure>"
            )
            parts.append(
                '<div class="scroll"><table><thead><tr><th>mistake</th><th>test</th>'
                "<th>students</th><th>what went wrong</th><th>who</th></tr></thead><tbody>"
            )
            for m in made:
                what = MISTAKES[m.key].what if m.key in MISTAKES else "(not a catalogued mistake)"
                who = ", ".join(
                    f'<span class="id">{_e(folder.get(s, s))}</span>' for s in sorted(m.students)
                )
                parts.append(
                    f'<tr data-mistake="{_e(m.key)}" data-test="{_e(m.test)}" '
                    f'data-count="{len(m.students)}"><td>'
                    + (
                        f'<a href="{_e(links[m.key])}"><code>{_e(m.key)}</code></a>'
                        if m.key in links
                        else f"<code>{_e(m.key)}</code>"
                    )
                    + f"</td><td><code>{_e(m.test)}</code></td>"
                    f'<td class="num">{len(m.students)}</td>'
                    f'<td class="what">{_e(what)}</td>'
                    f"<td>{who}</td></tr>"
                )
            parts.append("</tbody></table></div>")
        else:
            parts.append("<p>No failing test named a catalogued mistake.</p>")
        # flagged
        flags = flagged(rows, a)
        parts.append(f"<h3>Flagged submissions of {_e(a)}</h3>")
        if flags:
            parts.append(
                '<div class="scroll"><table><thead><tr><th>student</th><th>score</th>'
                "<th>reasons</th></tr></thead><tbody>"
            )
            for r, reasons in flags:
                parts.append(
                    f'<tr data-student="{_e(r["student_id"])}"><td class="id">{_e(r["student"])}'
                    f'</td><td class="num">{float(r["score"]):g}</td><td><ul>'
                    + "".join(f"<li>{_e(x)}</li>" for x in reasons)
                    + "</ul></td></tr>"
                )
            parts.append("</tbody></table></div>")
        else:
            parts.append("<p>None.</p>")
        parts.append("</section>")
    if unmatched:
        parts.append(
            '<section id="not-graded"><h2>Not graded</h2><p>Entries of the submissions folder '
            "that are not a student's folder (also in unmatched.csv):</p><ul>"
        )
        for u in unmatched:
            parts.append(f'<li><span class="id">{_e(u.entry)}</span>: {_e(u.reason)}</li>')
        parts.append("</ul></section>")
    parts.append("</main></body></html>\n")
    return "\n".join(parts)


def write(
    out: Path,
    rows: list[dict],
    names: list[str],
    max_scores: dict[str, float],
    tests: dict[str, list[dict]],
    unmatched: list,
    *,
    book: str,
    note: str = "",
) -> None:
    """Write ``out/report.html`` and ``out/mistakes.csv`` (see the module docstring)."""
    write_mistakes_csv(out / "mistakes.csv", mistake_counts(rows, names, tests))
    page = render(rows, names, max_scores, tests, unmatched, out=out, book=book, note=note)
    _write_atomic(out / "report.html", page)
