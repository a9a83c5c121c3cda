"""Keep hidden tests out of student feedback, and make the pages safe to open.

The test cells run in the grader (:mod:`.remote`), so their outputs hold no hidden code; what
follows is the second line of defence, and :func:`sanitise` the markup and size limits.

nbgrader's feedback shows every test cell's source, hidden tests included, and an IPython
traceback quotes the failing lines. Before ``generate_feedback`` runs, :func:`redact` replaces
each hidden region by a one-line note, cuts the tracebacks of those cells down to
``ErrorName: message``, and blanks any output that quotes a hidden line (a student's cell could
print later cells' code through an IPython hook). :func:`leaks` re-checks the final HTML.
"""

from __future__ import annotations

import html
import json
import re

BEGIN, END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
NOTE = "# (hidden tests ran here; their code is not shown)"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _src(cell) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def hidden_lines(source_nb, *public_nbs) -> dict[str, list[str]]:
    """grade id -> the lines inside its hidden-test regions (in the source notebook).

    Lines that ``public_nbs`` show anyway (the released notebook's ``import softgrad as sg``, a
    helper given to the student, or a line the student wrote in the submission) are left out:
    a feedback page that shows them leaks nothing.

    Examples
    --------
    >>> import nbformat
    >>> cell = nbformat.v4.new_code_cell(
    ...     "check(f)\\n### BEGIN HIDDEN TESTS\\nimport numpy as np\\nassert f(3) == 9\\n"
    ...     "### END HIDDEN TESTS", metadata={"nbgrader": {"grade_id": "test_f"}})
    >>> released = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import numpy as np")])
    >>> hidden_lines(nbformat.v4.new_notebook(cells=[cell]), released)
    {'test_f': ['assert f(3) == 9']}
    """
    public = set()
    for nb in public_nbs:
        for cell in nb.cells:
            public |= {line.strip() for line in _src(cell).splitlines()}
    out: dict[str, list[str]] = {}
    for cell in source_nb.cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        inside, found, lines = False, False, []
        for line in _src(cell).splitlines():
            if BEGIN in line:
                inside = found = True
            elif END in line:
                inside = False
            elif inside and line.strip() not in public:
                lines.append(line)
        if gid and found:
            out[gid] = lines
    return out


def secrets(hidden: dict[str, list[str]], min_len: int = 12) -> list[str]:
    """Hidden lines distinctive enough to search for (short ones like ``)`` would match anything)."""
    found = {line.strip() for lines in hidden.values() for line in lines}
    return sorted((s for s in found if len(s) >= min_len), key=len, reverse=True)


def _strip_region(src: str) -> str:
    out, inside = [], False
    for line in src.splitlines():
        if BEGIN in line:
            inside = True
            out.append(line[: len(line) - len(line.lstrip())] + NOTE)
        elif END in line:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def _quotes(text: str, needles: list[str]) -> bool:
    flat = _ANSI.sub("", html.unescape(text))
    return any(n in flat for n in needles)


def redact(nb, hidden: dict[str, list[str]]) -> int:
    """Remove hidden-test code from ``nb`` (an autograded notebook) in place.

    Returns the number of outputs blanked because they quoted hidden code.
    """
    needles = secrets(hidden)
    blanked = 0
    for cell in nb.cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid in hidden:
            cell["source"] = _strip_region(_src(cell))
            if BEGIN in _src(cell) or _quotes(_src(cell), needles):
                cell["source"] = NOTE
        if cell.get("cell_type") != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error" and gid in hidden:
                out["traceback"] = [f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"]
            text = _output_text(out)
            if needles and _quotes(text, needles):
                blanked += 1
                kept.append(
                    {
                        "output_type": "stream",
                        "name": "stdout",
                        "text": "[output removed: it quoted hidden test code]\n",
                    }
                )
                continue
            kept.append(out)
        cell["outputs"] = kept
    return blanked


def _output_text(out) -> str:
    parts = [out.get("text", ""), out.get("ename", ""), out.get("evalue", "")]
    parts += out.get("traceback", []) or []
    for value in (out.get("data") or {}).values():
        parts.append(
            value
            if isinstance(value, str)
            else "".join(map(str, value))
            if isinstance(value, list)
            else ""
        )
    return "\n".join(p if isinstance(p, str) else "".join(p) for p in parts)


def leaks(page: str, hidden: dict[str, list[str]]) -> list[str]:
    """Hidden lines that appear in a rendered feedback page (should be none)."""
    flat = _ANSI.sub("", html.unescape(re.sub(r"<[^>]+>", "", page)))
    return [n for n in secrets(hidden) if n in flat]


def notice_cell(notes: list[str]):
    """A markdown cell for the top of a feedback page, listing grading notes for the student."""
    import nbformat

    text = "**Grading notes**\n\n" + "\n".join(f"- {html.escape(n)}" for n in notes)
    return nbformat.v4.new_markdown_cell(text)


def failure_page(student: str, assignment: str, status: str, message: str) -> str:
    """A small standalone HTML page for a notebook nbgrader could not grade."""
    esc = html.escape
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Feedback: {esc(assignment)}</title></head><body>\n"
        f"<h1>Feedback for {esc(assignment)}</h1>\n<p>Student: {esc(student)}</p>\n"
        f"<p><strong>Status: {esc(status)}</strong></p>\n<p>{esc(message)}</p>\n"
        "<p>Score: 0. Ask your instructor if you think this is wrong.</p>\n</body></html>\n"
    )


# ----------------------------------------------------------------------------- safe to open

#: output types kept in a feedback page; HTML, SVG, JavaScript, Markdown and LaTeX from a
#: student's code could carry script or markup, and are shown as their plain-text form instead
SAFE_MIME = ("text/plain", "image/png", "image/jpeg")
MAX_OUTPUT = 1024**2  # bytes of one output (an image, a stream)
MAX_PAGE = 4 * 1024**2  # bytes of all outputs of one page


def sanitise(nb, student_written: set[int]) -> list[str]:
    """Make ``nb`` (an autograded notebook) safe to render and to open, in place.

    The markdown cells at the indices ``student_written`` are shown as text (their HTML
    escaped, attachments dropped); every output keeps only plain text and PNG/JPEG images; an
    output over 1 MiB, or past 4 MiB in all, is replaced by a note. Returns what was changed,
    one line each, for the flags.

    Examples
    --------
    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[
    ...     nbformat.v4.new_markdown_cell("<script>x()</script>"),
    ...     nbformat.v4.new_code_cell("", outputs=[nbformat.v4.new_output(
    ...         "display_data", data={"text/html": "<script>y()</script>", "text/plain": "y"})])])
    >>> sanitise(nb, {0})
    ['markup removed from output: text/html']
    >>> nb.cells[0].source, dict(nb.cells[1].outputs[0].data)
    ('&lt;script&gt;x()&lt;/script&gt;', {'text/plain': 'y'})
    """
    import nbformat

    changes: list[str] = []
    used = 0
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") in ("markdown", "raw") and i in student_written:
            cell["source"] = html.escape(_src(cell), quote=False)
            cell.pop("attachments", None)
        if cell.get("cell_type") != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            data = out.get("data")
            if data is not None:
                dropped = sorted(k for k in data if k not in SAFE_MIME)
                if dropped:
                    changes.append("markup removed from output: " + ", ".join(dropped))
                out["data"] = {k: v for k, v in data.items() if k in SAFE_MIME}
                if not out["data"]:
                    out["data"] = {"text/plain": "[output removed: not plain text or an image]"}
                out["metadata"] = {}
            size = len(json.dumps(out, default=str))
            if size > MAX_OUTPUT or used + size > MAX_PAGE:
                changes.append(f"output of {size / 2**20:.1f} MiB removed (feedback size cap)")
                out = nbformat.from_dict(
                    {
                        "output_type": "stream",
                        "name": "stdout",
                        "text": f"[output of {size / 2**20:.1f} MiB removed: too large for feedback]\n",
                    }
                )
                size = len(out["text"])
            used += size
            kept.append(out)
        cell["outputs"] = kept
    return list(dict.fromkeys(changes))
