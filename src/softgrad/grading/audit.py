"""Checks of a submitted notebook before it is run: structure against the released version, and
a static scan of the student's own cells for ways of cheating the tests.

nbgrader restores locked cells and test cells it finds (``OverwriteCells``), but it silently
leaves a deleted test cell ungraded and never looks at what the student's cells do. These checks
only report; the grade itself comes from nbgrader.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

# softgrad's reference implementations: a solution that calls them has not done the exercise.
REFERENCE_NAMES = frozenset(
    {
        "logsumexp",
        "softmax",
        "log_softmax",
        "softmax_jacobian",
        "softmax_vjp",
        "softmax_jvp",
        "cross_entropy",
        "cross_entropy_grad",
        "cross_entropy_with_grad",
        "linear_cross_entropy",
        "linear_cross_entropy_with_grad",
        "numerical_jacobian",
        "gradcheck",
    }
)
REFERENCE_MODULES = frozenset(
    {"_softmax", "_losses", "_linear", "_gradcheck", "_validation", "_rows", "softmax", "gradcheck"}
)
# Attributes whose override makes a wrong answer compare equal or look truthy.
COMPARISON_DUNDERS = frozenset(
    {
        "__eq__",
        "__ne__",
        "__bool__",
        "__array_ufunc__",
        "__array_function__",
        "__float__",
        "__len__",
    }
)
_TRACE_HOOKS = frozenset({"settrace", "setprofile", "excepthook", "register"})
# IPython's record of the code it ran (hidden tests included) and ways to read a caller's frame
# (a function called by a hidden test could read the expected answer from it)
# findings after which the feedback page is held back (the code could copy hidden tests out)
LEAK_RISKS = ("reads IPython's history", "inspects stack frames", "reads linecache")
_HISTORY_NAMES = frozenset({"In", "Out", "_ih", "_oh", "_i", "_ii", "_iii", "get_ipython"})
_FRAME_ATTRS = frozenset(
    {
        "_getframe",
        "currentframe",
        "f_back",
        "f_locals",
        "f_globals",
        "get_referrers",
        "getouterframes",
    }
)


@dataclass
class Finding:
    """What the pre-run checks found in one notebook."""

    deleted: list[str] = field(default_factory=list)  # grade ids of test cells missing
    edited_locked: list[str] = field(default_factory=list)
    suspicious: list[str] = field(default_factory=list)


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _norm(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def compare_structure(released, submitted) -> Finding:
    """Test cells and locked cells of ``released`` that are missing or edited in ``submitted``.

    A cell counts as present only if it still carries its nbgrader grade id; removing the
    metadata from a test cell is the same as deleting it.
    """
    found = Finding()
    by_id = {}
    for cell in submitted.cells:
        gid = nbgrader_meta(cell).get("grade_id")
        if gid is not None:
            by_id.setdefault(gid, cell)
    for cell in released.cells:
        meta = nbgrader_meta(cell)
        gid = meta.get("grade_id")
        if gid is None:
            continue
        sub = by_id.get(gid)
        if sub is None:
            if meta.get("grade") or meta.get("task"):
                found.deleted.append(gid)
            elif meta.get("locked"):
                found.edited_locked.append(gid)
            continue
        if meta.get("locked") and not meta.get("solution"):
            sub_meta = nbgrader_meta(sub)
            if (
                _norm(_source(sub)) != _norm(_source(cell))
                or sub.get("cell_type") != cell.get("cell_type")
                or sub_meta.get("locked") is not True
                or bool(sub_meta.get("grade")) != bool(meta.get("grade"))
            ):
                found.edited_locked.append(gid)
    return found


def student_cells(released, submitted) -> list[tuple[str, str]]:
    """``(label, source)`` of every code cell the student wrote: solution cells and added cells."""
    locked_ids = {
        nbgrader_meta(c).get("grade_id")
        for c in released.cells
        if nbgrader_meta(c).get("locked") and not nbgrader_meta(c).get("solution")
    }
    out = []
    for i, cell in enumerate(submitted.cells):
        if cell.get("cell_type") != "code":
            continue
        gid = nbgrader_meta(cell).get("grade_id")
        if gid in locked_ids:
            continue  # nbgrader overwrites it with the released source
        out.append((gid or f"added cell {i + 1}", _source(cell)))
    return out


def _strip_magics(src: str) -> str:
    # IPython syntax (%magic, !shell, ?help) is not Python; blank it so ast can parse the rest
    return "\n".join("" if re.match(r"\s*[%!?]", line) else line for line in src.splitlines())


def _dotted(node) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


class _Scanner(ast.NodeVisitor):
    def __init__(self, label: str, check_names: frozenset[str], allowed: frozenset[str]):
        self.label = label
        self.check_names = check_names
        self.allowed = allowed
        self.softgrad_aliases: set[str] = set()
        self.found: list[str] = []

    def add(self, what: str) -> None:
        msg = f"{what} ({self.label})"
        if msg not in self.found:
            self.found.append(msg)

    def _is_check_name(self, name: str) -> bool:
        base = name.rsplit(".", 1)[-1]
        return base.startswith("check_") or base in self.check_names or ".checks." in f".{name}"

    def _target(self, node) -> None:
        name = _dotted(node)
        if not name:
            return
        if self._is_check_name(name):
            self.add(f"redefines check helper {name}")
        if name.rsplit(".", 1)[-1] in COMPARISON_DUNDERS:
            self.add(f"overrides {name.rsplit('.', 1)[-1]}")
        head = name.split(".", 1)[0]
        if "." in name and (head in self.softgrad_aliases or head in {"softgrad", "sg"}):
            self.add(f"patches the softgrad package ({name})")
        if name.startswith(("builtins.", "__builtins__")):
            self.add(f"patches builtins ({name})")

    def visit_FunctionDef(self, node) -> None:
        if self._is_check_name(node.name):
            self.add(f"redefines check helper {node.name}")
        if node.name in COMPARISON_DUNDERS:
            self.add(f"overrides {node.name}")
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node) -> None:
        if self._is_check_name(node.name):
            self.add(f"redefines check helper {node.name}")
        self.generic_visit(node)

    def visit_Assign(self, node) -> None:
        for t in node.targets:
            for sub in ast.walk(t):
                if isinstance(sub, ast.Name | ast.Attribute):
                    self._target(sub)
        self.generic_visit(node)

    def visit_AnnAssign(self, node) -> None:
        self._target(node.target)
        self.generic_visit(node)

    visit_AugAssign = visit_AnnAssign

    def visit_Import(self, node) -> None:
        for alias in node.names:
            if alias.name.split(".")[0] == "linecache":
                self.add("reads linecache (the source of every cell run)")
            mod = alias.name
            bound = alias.asname or mod.split(".")[0]
            if mod == "softgrad" or mod.startswith("softgrad."):
                self.softgrad_aliases.add(bound)
                sub = mod.split(".")[1] if "." in mod else ""
                if sub in REFERENCE_MODULES and sub not in self.allowed:
                    self.add(f"imports softgrad's reference implementation {mod}")
            if alias.asname and self._is_check_name(alias.asname):
                self.add(f"redefines check helper {alias.asname}")
        self.generic_visit(node)

    def visit_ImportFrom(self, node) -> None:
        mod = node.module or ""
        if mod.split(".")[0] == "linecache":
            self.add("reads linecache (the source of every cell run)")
        for alias in node.names:
            bound = alias.asname or alias.name
            if mod == "softgrad" or mod.startswith("softgrad."):
                sub = mod.split(".")[1] if "." in mod else ""
                if (
                    (
                        alias.name in REFERENCE_NAMES
                        or alias.name in REFERENCE_MODULES
                        or sub in REFERENCE_MODULES
                    )
                    and alias.name not in self.allowed
                    and sub not in self.allowed
                ):
                    self.add(f"imports softgrad's reference implementation {mod}.{alias.name}")
            if self._is_check_name(bound) and not (mod.endswith("checks") and alias.asname is None):
                self.add(f"redefines check helper {bound}")
            if alias.name == "_exit" and mod == "os":
                self.add("calls os._exit")
        self.generic_visit(node)

    def visit_Attribute(self, node) -> None:
        self._frames(node)
        name = _dotted(node)
        head, _, rest = name.partition(".")
        first = rest.split(".", 1)[0] if rest else ""
        if (
            head in self.softgrad_aliases
            and first
            and (first in REFERENCE_NAMES or first in REFERENCE_MODULES)
            and first not in self.allowed
        ):
            self.add(f"uses softgrad's reference implementation {name}")
        if name in {"os._exit", "os.kill", "os.killpg", "os.abort"}:
            self.add(f"calls {name}")
        if name.rsplit(".", 1)[-1] in _TRACE_HOOKS and (
            name.startswith("sys.") or ".events." in name
        ):
            self.add(f"installs an interpreter hook ({name})")
        self.generic_visit(node)

    def visit_Call(self, node) -> None:
        name = _dotted(node.func)
        if name in {"__import__", "importlib.import_module", "exec", "eval", "compile"}:
            for arg in node.args:
                if (
                    isinstance(arg, ast.Constant)
                    and isinstance(arg.value, str)
                    and ("softgrad" in arg.value or "checks" in arg.value)
                ):
                    self.add(f"dynamic import or exec mentioning softgrad ({name})")
        if name in {"setattr", "delattr"} and node.args:
            target = _dotted(node.args[0])
            if target.split(".", 1)[0] in self.softgrad_aliases | {"softgrad", "builtins"}:
                self.add(f"patches {target} with {name}")
        self.generic_visit(node)

    def visit_Name(self, node) -> None:
        if node.id in _HISTORY_NAMES or re.fullmatch(r"_i\d+", node.id):
            self.add(f"reads IPython's history or shell ({node.id})")
        self.generic_visit(node)

    def _frames(self, node) -> None:
        if isinstance(node, ast.Attribute) and (
            node.attr in _FRAME_ATTRS or _dotted(node) == "inspect.stack"
        ):
            self.add(f"inspects stack frames ({_dotted(node) or node.attr})")

    def visit_Constant(self, node) -> None:
        if isinstance(node.value, str):
            if "NBGRADER_EXECUTION" in node.value:
                self.add("reads NBGRADER_EXECUTION")
            if node.value in COMPARISON_DUNDERS:
                self.add(f"overrides {node.value}")


def scan_cells(
    cells: list[tuple[str, str]], *, check_names=frozenset(), allowed=frozenset()
) -> list[str]:
    """Suspicious constructs in the student's cells, one readable line each.

    ``allowed`` holds softgrad names the released notebook itself uses (a locked cell may import
    ``softmax`` for the student to build on); those are not flagged.

    Examples
    --------
    >>> scan_cells([("added cell 3", "class A:\\n    def __eq__(self, o): return True")])
    ['overrides __eq__ (added cell 3)']
    >>> scan_cells([("solution", "from softgrad import softmax\\n")])
    ["imports softgrad's reference implementation softgrad.softmax (solution)"]
    >>> scan_cells([("cell", "def f(:\\n  import os; os._exit(0)")])  # syntax error: regex scan
    ['calls os._exit (cell)']
    """
    found: list[str] = []
    aliases: set[str] = set()
    for label, src in cells:
        try:
            tree = ast.parse(_strip_magics(src))
        except (SyntaxError, ValueError):
            found += [f"{what} ({label})" for what in _regex_scan(src)]
            continue
        scanner = _Scanner(label, frozenset(check_names), frozenset(allowed))
        scanner.softgrad_aliases |= aliases
        scanner.visit(tree)
        aliases |= scanner.softgrad_aliases
        found += [f for f in scanner.found if f not in found]
    return found


_REGEXES = [
    (r"\bos\s*\.\s*_exit\b", "calls os._exit"),
    (r"NBGRADER_EXECUTION", "reads NBGRADER_EXECUTION"),
    (r"\b(_ih|In|get_ipython)\b", "reads IPython's history or shell"),
    (r"\blinecache\b", "reads linecache (the source of every cell run)"),
    (r"\b(_getframe|currentframe|f_back|f_locals)\b", "inspects stack frames"),
    (r"\b__eq__\b", "overrides __eq__"),
    (r"^\s*(def|class)\s+check_\w*|^\s*check_\w*\s*=", "redefines check helper"),
    (
        r"from\s+softgrad(\.\w+)?\s+import\s+.*\b(" + "|".join(sorted(REFERENCE_NAMES)) + r")\b",
        "imports softgrad's reference implementation",
    ),
]


def _regex_scan(src: str) -> list[str]:
    return [what for pattern, what in _REGEXES if re.search(pattern, src, re.MULTILINE)]


def allowed_softgrad_names(released) -> frozenset[str]:
    """softgrad reference names that the released notebook's own locked code cells use.

    A later exercise may hand the student ``softmax`` to build on; a solution that uses what
    the notebook itself imports is not flagged. Autograded test cells do not count: they use
    softgrad as the reference to compare the student's answer with (``sg.cross_entropy_grad``
    in the cross-entropy exercise), which gives the student no licence to call it.

    Examples
    --------
    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
    ...     "import softgrad as sg\\nfrom softgrad.checks import check_softmax\\np = sg.softmax(z)\\n"
    ...     "check_matches(f, g, [], section='sec-softmax')")])
    >>> sorted(allowed_softgrad_names(nb))
    ['softmax']
    >>> test = nbformat.v4.new_code_cell("import softgrad as sg\\ncheck_matches(f, sg.log_softmax, [])")
    >>> test.metadata["nbgrader"] = {"grade": True, "solution": False, "points": 1}
    >>> nb.cells.append(test)
    >>> sorted(allowed_softgrad_names(nb))  # a test cell's reference grants nothing
    ['softmax']
    """
    names: set[str] = set()
    for cell in released.cells:
        meta = nbgrader_meta(cell)
        if cell.get("cell_type") != "code" or meta.get("solution") or meta.get("grade"):
            continue
        try:
            tree = ast.parse(_strip_magics(_source(cell)))
        except (SyntaxError, ValueError):
            continue
        aliases = {"softgrad"}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                aliases |= {
                    a.asname or a.name.split(".")[0]
                    for a in node.names
                    if a.name.split(".")[0] == "softgrad"
                }
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("softgrad"):
                parts = (node.module or "").split(".")
                names |= {a.name for a in node.names} | set(parts[1:2])
            elif isinstance(node, ast.Attribute):
                head, _, rest = _dotted(node).partition(".")
                if head in aliases and rest:
                    names.add(rest.split(".", 1)[0])
    return frozenset(names & (REFERENCE_NAMES | REFERENCE_MODULES))
