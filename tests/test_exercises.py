"""The graded exercises (exercises/source/*/*.ipynb): the solutions pass, the tests bite, the format holds.

- every source notebook passes ``pytest --nbval-lax`` (its solutions pass all its tests, hidden ones
  included), one test per notebook so a failure names it;
- every released notebook, generated from source as ``make release`` does and run as a student receives
  it (blank answers), fails each of its autograded test cells: no test passes without an answer;
- structure: stored without outputs, descriptive unique grade ids, a markdown lead-in before every graded
  cell, visible tests that call ``softgrad.checks``, hidden tests, solutions written without softgrad's
  reference implementations, at least one hand-graded written answer, and a working link to the chapter.

The released notebooks are not committed (``exercises/release/`` is generated), so there is nothing to
prove current; if they are ever committed, ``test_committed_release_is_current`` compares them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "exercises"
SOURCE = COURSE / "source"
ASSIGNMENTS = [
    "ex01_stable_softmax",
    "ex02_softmax_jacobian",
    "ex03_softmax_backprop",
    "ex04_cross_entropy_grad",
    "ex05_gradient_checker",
    "ex06_train_classifier",
    "ex07_framework_conventions",
]
CHAPTERS = {  # assignment -> the chapter it links to
    "ex01_stable_softmax": "01_softmax.md",
    "ex02_softmax_jacobian": "02_softmax_jacobian.md",
    "ex03_softmax_backprop": "03_softmax_backprop.md",
    "ex04_cross_entropy_grad": "04_cross_entropy.md",
    "ex05_gradient_checker": "05_gradient_checking.md",
    "ex06_train_classifier": "06_putting_it_together.md",
    "ex07_framework_conventions": "09_frameworks.md",
}
GRADE_ID = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$|^[a-z]{4,}$")
TIMEOUT = 600


def source_notebook(name: str) -> Path:
    return SOURCE / name / f"{name}.ipynb"


@cache
def read(path: Path):
    return nbformat.read(path, as_version=4)


def meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_test_cell(cell) -> bool:
    m = meta(cell)
    return cell.cell_type == "code" and bool(m.get("grade")) and not m.get("solution")


def is_written_answer(cell) -> bool:
    m = meta(cell)
    return (
        cell.cell_type == "markdown"
        and bool(m.get("grade"))
        and bool(m.get("solution"))
        and not m.get("task")
        and m.get("points", 0) > 0
    )


def _visible(source: str) -> str:
    """The part of a test cell a student sees (hidden-test blocks removed)."""
    return re.sub(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", "", source, flags=re.DOTALL)


def _secret_lines(cell) -> list[str]:
    """Lines of a cell that students must not see: solution and hidden-test blocks, written model answers."""
    m = meta(cell)
    if m.get("solution") and "### BEGIN SOLUTION" not in cell.source:
        return cell.source.splitlines()
    blocks = re.findall(
        r"### BEGIN (?:SOLUTION|HIDDEN TESTS)(.*?)### END (?:SOLUTION|HIDDEN TESTS)",
        cell.source,
        flags=re.DOTALL,
    )
    return [line for block in blocks for line in block.splitlines()]


# --------------------------------------------------------------------------- structure (no kernel)


def test_every_assignment_has_its_notebook():
    found = sorted(p.parent.name for p in SOURCE.glob("*/*.ipynb"))
    assert found == ASSIGNMENTS, f"exercises/source holds {found}, expected {ASSIGNMENTS}"
    for name in ASSIGNMENTS:
        assert [p.name for p in (SOURCE / name).glob("*.ipynb")] == [f"{name}.ipynb"], name
    assert (COURSE / "nbgrader_config.py").is_file(), "exercises/nbgrader_config.py is missing"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_stored_without_outputs(name):
    nb = read(source_notebook(name))
    nbformat.validate(nb)
    dirty = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and (c.outputs or c.execution_count is not None)
    ]
    assert not dirty, (
        f"{name}: cells {dirty} have outputs or an execution count; store the notebook cleared"
    )


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_grade_ids_unique_and_descriptive(name):
    nb = read(source_notebook(name))
    ids = [meta(c).get("grade_id") for c in nb.cells]
    missing = [i for i, gid in enumerate(ids) if not gid]
    assert not missing, (
        f"{name}: cells {missing} carry no nbgrader grade_id (lock instruction cells too)"
    )
    dupes = sorted({gid for gid in ids if ids.count(gid) > 1})
    assert not dupes, f"{name}: duplicate grade ids {dupes}"
    bad = [gid for gid in ids if gid.startswith("cell-") or not GRADE_ID.match(gid)]
    assert not bad, f"{name}: grade ids that do not say what they hold: {bad}"
    tests = [meta(c)["grade_id"] for c in nb.cells if is_test_cell(c)]
    assert all(gid.startswith("test_") for gid in tests), (
        f"{name}: test cells must be named test_*: {tests}"
    )
    for c in nb.cells:
        m = meta(c)
        assert m.get("schema_version") == 3, (
            f"{name}: {m.get('grade_id')}: nbgrader schema_version must be 3"
        )
        if m.get("grade"):
            assert m.get("points", 0) > 0, f"{name}: graded cell {m['grade_id']} has no points"
        if not m.get("solution"):
            assert m.get("locked"), f"{name}: {m['grade_id']} is neither an answer cell nor locked"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_every_graded_cell_has_a_markdown_lead_in(name):
    cells = read(source_notebook(name)).cells
    assert cells[0].cell_type == "markdown", f"{name}: the notebook must open with a markdown cell"
    assert cells[0].source.startswith("# Exercise"), (
        f"{name}: the first cell must be '# Exercise ...'"
    )
    assert "**Goal.**" in cells[0].source, f"{name}: the first cell must state the goal"
    for i, cell in enumerate(cells):
        m = meta(cell)
        if m.get("grade") or m.get("solution"):
            assert i > 0, f"{name}: the notebook starts with a graded cell"
            assert cells[i - 1].cell_type == "markdown", (
                f"{name}: graded/answer cell {m['grade_id']} is not preceded by a markdown lead-in"
            )
            assert not meta(cells[i - 1]).get("grade"), (
                f"{name}: the cell before {m['grade_id']} is itself graded, not a lead-in"
            )


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_tests_visible_and_hidden(name):
    cells = read(source_notebook(name)).cells
    tests = [c for c in cells if is_test_cell(c)]
    assert len(tests) >= 2, (
        f"{name}: expected at least two autograded test cells, found {len(tests)}"
    )
    for c in tests:
        visible = _visible(c.source)
        assert visible.strip(), (
            f"{name}: {meta(c)['grade_id']} has no visible test: it would pass unanswered"
        )
        assert c.source.count("### BEGIN HIDDEN TESTS") == c.source.count("### END HIDDEN TESTS")
    assert any("### BEGIN HIDDEN TESTS" in c.source for c in tests), f"{name}: no hidden tests"
    assert any(re.search(r"\bcheck_\w+\(", _visible(c.source)) for c in tests), (
        f"{name}: no visible test calls a softgrad.checks function"
    )
    imports = "\n".join(
        c.source for c in cells if c.cell_type == "code" and not meta(c).get("grade")
    )
    assert "from softgrad.checks import" in imports, (
        f"{name}: the checks are not imported in a locked cell"
    )


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_solutions_use_numpy_not_softgrad(name):
    cells = read(source_notebook(name)).cells
    solutions = [c for c in cells if c.cell_type == "code" and meta(c).get("solution")]
    assert solutions, f"{name}: no solution cells"
    for c in solutions:
        src = c.source
        for marker in ("### BEGIN SOLUTION", "### END SOLUTION"):
            assert marker in src, f"{name}: {meta(c)['grade_id']} lacks the {marker} delimiter"
        body = src.split("### BEGIN SOLUTION", 1)[1].split("### END SOLUTION", 1)[0]
        assert not re.search(r"\bsoftgrad\b|\bsg\.", body), (
            f"{name}: the solution in {meta(c)['grade_id']} uses softgrad; write it with numpy"
        )
        assert not meta(c).get("grade"), (
            f"{name}: {meta(c)['grade_id']}: code answers are graded by tests"
        )


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_has_a_hand_graded_derivation(name):
    cells = read(source_notebook(name)).cells
    written = [c for c in cells if is_written_answer(c)]
    assert written, f"{name}: no manually graded written answer (markdown, grade and solution true)"
    for c in written:
        assert "BEGIN SOLUTION" not in c.source, "the whole written cell is the model answer"
        assert len(c.source) > 300, (
            f"{name}: {meta(c)['grade_id']}: the model answer is too short to grade by"
        )
        assert "Marking" in c.source, f"{name}: {meta(c)['grade_id']}: say how the points are given"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_links_to_its_chapter(name):
    """The introduction links its chapter's notebook, ``../../../chapters/NN_x.ipynb``.

    That is where the chapter is in the course kit (a notebook at its page's path), and the book
    takes it as a link to the page; so the kit needs no rewriting of this locked cell.
    """
    intro = read(source_notebook(name)).cells[0].source
    links = re.findall(r"\]\(([^)]+)\)", intro)
    want = f"../../../chapters/{CHAPTERS[name].removesuffix('.md')}.ipynb"
    assert want in links, (
        f"{name}: the introduction must link to its chapter as {want}, found {links}"
    )
    # release/<a>/<a>.ipynb sits at the same depth as source/<a>/<a>.ipynb; a link names a page
    # (its MyST source, with the notebook's suffix)
    for link in links:
        path = link.split("#")[0]
        target = (SOURCE / name / path).resolve()
        assert path.endswith(".ipynb"), f"{name}: link {link} is not a page's notebook"
        assert target.with_suffix(".md").is_file(), f"{name}: link {link} names no page ({target})"


# --------------------------------------------------------------------------- executing notebooks


@pytest.mark.notebooks
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_source_solutions_pass_nbval(name):
    """``pytest --nbval-lax`` over the source notebook: every cell, hidden tests included, runs cleanly."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval-lax",
            "-p",
            "no:cacheprovider",
            "-q",
            "--no-header",
            str(source_notebook(name).relative_to(ROOT)),
        ],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, (
        f"{name}: nbval-lax failed\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}"
    )


_EXECUTE = """
import json, sys
import nbformat
from nbclient import NotebookClient
path = sys.argv[1]
nb = nbformat.read(path, as_version=4)
NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
               resources={"metadata": {"path": sys.argv[2]}}).execute()
rows = []
for cell in nb.cells:
    if cell.cell_type != "code":
        continue
    errors = [o for o in cell.outputs if o.get("output_type") == "error"]
    rows.append({"grade_id": cell.metadata.get("nbgrader", {}).get("grade_id"),
                 "error": errors[0]["ename"] + ": " + errors[0]["evalue"][:3000] if errors else None})
print(json.dumps(rows))
"""


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    """The student versions, generated from a copy of the course as `make release` does."""
    course = tmp_path_factory.mktemp("course")
    shutil.copy(COURSE / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(SOURCE, course / "source", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    env_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": env_bin + os.pathsep + os.environ.get("PATH", "")}
    if importlib.util.find_spec("softgrad.grading") is not None:  # the real `make release` path
        commands = [[sys.executable, "-m", "softgrad.grading", "--course", str(course), "release"]]
    else:  # plain nbgrader, same course config
        commands = [
            [
                sys.executable,
                "-m",
                "nbgrader",
                "generate_assignment",
                name,
                "--force",
                f"--CourseDirectory.root={course}",
                f"--CourseDirectory.db_url=sqlite:///{course}/gradebook.db",
            ]
            for name in ASSIGNMENTS
        ]
    for cmd in commands:
        proc = subprocess.run(
            cmd, check=False, cwd=course, capture_output=True, text=True, timeout=TIMEOUT, env=env
        )
        assert proc.returncode == 0, (
            f"release failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return course / "release"


@pytest.mark.notebooks
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_released_notebook_hides_answers(released, name):
    path = released / name / f"{name}.ipynb"
    assert path.is_file(), f"release produced no {path}"
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    for marker in (
        "### BEGIN SOLUTION",
        "### END SOLUTION",
        "### BEGIN HIDDEN TESTS",
        "### END HIDDEN TESTS",
    ):
        assert marker not in text, f"{name}: the released notebook still contains {marker!r}"
    src = read(source_notebook(name))
    public = {
        line.strip()
        for c in src.cells
        if not meta(c).get("solution")
        for line in _visible(c.source).splitlines()
    }
    secret = {line.strip() for c in src.cells for line in _secret_lines(c)} - public
    leaked = sorted(line for line in secret if len(line) > 25 and line in text)
    assert not leaked, (
        f"{name}: solution or hidden-test lines in the released notebook: {leaked[:5]}"
    )
    assert [meta(c).get("grade_id") for c in nb.cells] == [
        meta(c).get("grade_id") for c in src.cells
    ]
    for cell in nb.cells:
        if is_written_answer(cell):
            assert cell.source.strip() == "YOUR ANSWER HERE", f"{name}: a model answer was released"


@pytest.mark.notebooks
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_released_notebook_fails_every_test_cell(released, name):
    """Run the blank student version: each autograded test cell must error (the tests bite)."""
    path = released / name / f"{name}.ipynb"
    proc = subprocess.run(
        [sys.executable, "-c", _EXECUTE, str(path), str(path.parent)],
        check=False,
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, (
        f"{name}: could not execute the released notebook\n{proc.stderr[-4000:]}"
    )
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    by_id = {r["grade_id"]: r["error"] for r in rows}
    nb = nbformat.read(path, as_version=4)
    tests = [meta(c)["grade_id"] for c in nb.cells if is_test_cell(c)]
    assert tests, f"{name}: the released notebook has no autograded test cells"
    passing = [gid for gid in tests if by_id.get(gid) is None]
    assert not passing, (
        f"{name}: test cells that pass with blank answers (they prove nothing): {passing}"
    )
    # the failures come from the blank answers, not from a broken notebook
    assert by_id.get("imports", "missing") is None, (
        f"{name}: the imports cell fails: {by_id.get('imports')}"
    )


def test_release_is_generated_not_committed():
    """Student notebooks are made from the sources by `make release` on every build; a committed
    copy could go stale beside them (and would be what a clone hands out)."""
    tracked = subprocess.run(
        ["git", "ls-files", "exercises/release"],
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert not tracked, (
        f"generated files are committed (remove them, `make release` makes them): {tracked}"
    )
    ignored = subprocess.run(
        [
            "git",
            "check-ignore",
            "-q",
            "exercises/release/ex01_stable_softmax/ex01_stable_softmax.ipynb",
        ],
        cwd=ROOT,
        check=False,
    )
    assert ignored.returncode == 0, "exercises/release/ is not in .gitignore"


# One catalogued mistake per answer cell (the seed questions among them): the released notebook, answered
# with the mistake and otherwise with the model solution, fails the named test cell with that mistake's key.
MISTAKE_RUNS = {
    "ex01_stable_softmax": (
        {
            "softmax_impl": "def softmax(z):\n    e = np.exp(z)\n    return e / e.sum(axis=-1, keepdims=True)",
            "log_softmax_impl": "def log_softmax(z):\n    e = np.exp(z - z.max(axis=-1, keepdims=True))\n"
            "    return np.log(e / e.sum(axis=-1, keepdims=True))",
        },
        {
            "test_softmax_stable": "softmax-overflow",
            "test_log_softmax_stable": "log-softmax-underflow",
        },
    ),
    "ex02_softmax_jacobian": (
        {
            "jacobian_vectorised_impl": "def softmax_jacobian(z):\n    p = softmax(z)\n"
            "    return p[..., :, None] * (1 - p[..., :, None]) * np.eye(p.shape[-1])",
            "log_softmax_jacobian_impl": "def log_softmax_jacobian(z):\n    p = softmax(z)\n"
            "    return np.eye(p.shape[-1]) - p[..., :, None]",
        },
        {
            "test_jacobian_vectorised": "jacobian-diagonal-only",
            "test_log_softmax_jacobian": "jacobian-transposed",
        },
    ),
    "ex03_softmax_backprop": (
        {
            "softmax_vjp_impl": "def softmax_vjp(p, g):\n    return g * p - np.sum(g * p, axis=-1, keepdims=True)",
        },
        {"test_softmax_vjp": "vjp-missing-p", "test_vjp_sums_to_zero": "second seed question"},
    ),
    "ex04_cross_entropy_grad": (
        {
            "cross_entropy_grad_impl": "def cross_entropy_grad(z, y):\n    p = softmax(z)\n"
            "    return (np.sum(p * y, axis=-1, keepdims=True) - y) / z.shape[0]",
        },
        {"test_ce_grad_one_hot": "ce-seed-sum-py", "test_ce_grad_batch_mean": "ce-seed-sum-py"},
    ),
    "ex05_gradient_checker": (
        {
            "numerical_gradient_impl": "def numerical_gradient(f, x, h=None):\n    x = np.array(x, dtype=float)\n"
            "    h = 1e-6 if h is None else h\n    g = np.zeros_like(x)\n"
            "    for i in np.ndindex(x.shape):\n        e = np.zeros_like(x)\n"
            "        e[i] = h\n        g[i] = (f(x + e) - f(x)) / h\n    return g",
        },
        {"test_numerical_gradient_central": "gc-forward-difference"},
    ),
    "ex06_train_classifier": (
        {
            "loss_and_grad_impl": "def loss_and_grad(W, b, X, labels):\n    N = X.shape[0]\n"
            "    Z = X @ W + b\n    dZ = softmax(Z)\n    dZ[np.arange(N), labels] -= 1.0\n"
            "    dZ /= N\n    loss = -np.mean(log_softmax(Z)[np.arange(N), labels])\n"
            "    return loss, X.T @ dZ, dZ.mean(axis=0)",
        },
        {"test_loss_and_grad": "train-db-double-mean"},
    ),
    "ex07_framework_conventions": (
        {
            "weighted_loss_impl": "def weighted_cross_entropy(z, labels, weight, ignore_index=-100):\n"
            "    keep = labels != ignore_index\n    safe = np.where(keep, labels, 0)\n"
            "    a = weight[safe] * keep\n"
            "    return -(a * log_softmax(z)[np.arange(len(safe)), safe]).sum() / len(safe)",
            "weighted_grad_impl": "def weighted_cross_entropy_grad(z, labels, weight, ignore_index=-100):\n"
            "    keep = labels != ignore_index\n    safe = np.where(keep, labels, 0)\n"
            "    a = weight[safe] * keep\n    p = softmax(softmax(z))\n"
            "    g = a[:, None] * (p - np.eye(z.shape[1])[safe])\n"
            "    return g / a.sum() if a.sum() > 0 else np.zeros_like(g)",
        },
        {
            "test_weighted_loss": "fw-divisor-n",
            "test_grad_weights": "fw-softmax-twice",
            "test_grad_all": "fw-softmax-twice",
        },
    ),
}


@pytest.mark.notebooks
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_released_notebook_names_the_mistake(released, name, tmp_path):
    """Answer the released notebook with a catalogued mistake: the test cell fails and names it."""
    answers, expected = MISTAKE_RUNS[name]
    src = {meta(c).get("grade_id"): c.source for c in read(source_notebook(name)).cells}
    nb = nbformat.read(released / name / f"{name}.ipynb", as_version=4)
    for cell in nb.cells:
        gid = meta(cell).get("grade_id")
        if meta(cell).get("solution") and cell.cell_type == "code":
            cell.source = answers.get(gid, src[gid])
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(nb, path)
    proc = subprocess.run(
        [sys.executable, "-c", _EXECUTE, str(path), str(tmp_path)],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert proc.returncode == 0, f"{name}: could not execute the notebook\n{proc.stderr[-4000:]}"
    by_id = {r["grade_id"]: r["error"] for r in json.loads(proc.stdout.strip().splitlines()[-1])}
    for gid, key in expected.items():
        assert by_id[gid] is not None, (
            f"{name}: {gid} passed although the answer has the mistake {key}"
        )
        assert key in by_id[gid], f"{name}: {gid} failed without naming {key!r}: {by_id[gid]}"
    assert by_id.get("imports", "missing") is None, (
        f"{name}: the imports cell fails: {by_id.get('imports')}"
    )
