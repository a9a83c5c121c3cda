"""Take softgrad's own implementations out of the student's kernel before any student code runs.

An exercise asks for ``softmax``; softgrad's ``softmax`` is the reference its answer is compared
with. Watching the student's calls for the reference from inside the kernel (a profiler) cannot
be trusted: the student's code runs in the same process and can switch the profiler off, call
through a saved alias, or re-import the module. So the kernel never has the functions to call:

1. The grader decides which of softgrad's functions the notebook may use
   (:func:`enabled_names`: what its locked cells use, plus what its checks allow), and which
   definitions those need (:func:`switched_off`: everything else, found by following the names
   each definition refers to in softgrad's source).
2. The kernel starts with a private copy of the softgrad package (the sandbox launcher binds it
   over the installed one). Before the first cell, :data:`KERNEL_CODE` replaces every switched-off
   function, wherever softgrad's modules refer to it, by a stub that raises, drops the originals
   (and checks that none is left alive), and deletes the copy's numeric source files, so that no
   re-import, ``importlib.reload`` or fresh ``python`` started by the student finds them.

What stays in the kernel is what the notebook hands the student (``softmax`` in the Jacobian
exercise) and what those functions need. A student who pastes softgrad's source into a cell
has copied it, like copying from the book; that is a matter for the instructor, not the grader.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path

#: the first words of the error a switched-off function raises (the grader recognises it)
MARK = "switched off while grading:"
#: kept in every kernel: they choose how softgrad runs, they compute nothing
UTILITIES = frozenset({"get_num_threads", "set_num_threads"})


def _package_dir() -> Path:
    import softgrad

    return Path(softgrad.__file__).resolve().parent


def numeric_files(package: Path) -> list[Path]:
    """softgrad's numeric modules: ``__init__.py`` and the private ``_*.py``."""
    return sorted(p for p in package.glob("*.py") if p.name.startswith("_"))


def _module_name(path: Path) -> str:
    return "softgrad" if path.name == "__init__.py" else f"softgrad.{path.stem}"


@cache
def _definitions() -> dict[tuple[str, str], frozenset[str]]:
    """``(module, name) -> the identifiers its body refers to``, for every top-level def/class."""
    defs: dict[tuple[str, str], frozenset[str]] = {}
    for path in numeric_files(_package_dir()):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                used = set()
                for sub in ast.walk(node):
                    if isinstance(sub, ast.Name):
                        used.add(sub.id)
                    elif isinstance(sub, ast.Attribute):
                        used.add(sub.attr)
                defs[(_module_name(path), node.name)] = frozenset(used)
    return defs


def switched_off(enabled: Iterable[str]) -> list[tuple[str, str]]:
    """The definitions a kernel must lose when only the public names ``enabled`` may be used.

    A definition stays when an enabled function reaches it by name (a name defined in several
    modules keeps all of them: over-keeping is safe, losing a helper an allowed function needs
    is not).

    Examples
    --------
    >>> off = switched_off({"softmax"})
    >>> ("softgrad._softmax", "softmax") in off, ("softgrad._softmax", "log_softmax") in off
    (False, True)
    >>> ("softgrad._losses", "cross_entropy_grad") in switched_off(set())
    True
    """
    defs = _definitions()
    by_name: dict[str, list[tuple[str, str]]] = {}
    for key in defs:
        by_name.setdefault(key[1], []).append(key)
    todo = [key for name in {*enabled, *UTILITIES} for key in by_name.get(name, [])]
    kept: set[tuple[str, str]] = set()
    while todo:
        key = todo.pop()
        if key in kept:
            continue
        kept.add(key)
        todo += [k for name in defs[key] for k in by_name.get(name, []) if k not in kept]
    return sorted(set(defs) - kept)


def enabled_names(released, test_sources: Iterable[str]) -> frozenset[str]:
    """The public softgrad functions a notebook's kernel keeps.

    Those the notebook's locked cells use (:func:`.audit.allowed_softgrad_names`), and those
    that a check its test cells call allows a student's answer to use (the check's ``allow``
    list, :data:`softgrad.checks.ALLOWED`, or an ``allow=`` given in the test cell).
    """
    from .. import checks
    from . import audit

    names = set(audit.allowed_softgrad_names(released))
    for source in test_sources:
        try:
            tree = ast.parse(audit._strip_magics(source))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            names.update(checks.ALLOWED.get(called, ()))
            for kw in node.keywords:
                if kw.arg == "allow":
                    try:
                        names.update(str(n) for n in ast.literal_eval(kw.value))
                    except (ValueError, TypeError, SyntaxError):
                        pass
    return frozenset(names)


#: Run in the kernel right after :data:`.remote.SERVER`, with ``__softgrad_confine__(OFF,
#: DELETE)`` appended by :func:`kernel_code`. It prints nothing on success; any failure raises
#: (the grader then refuses to grade the notebook rather than grade it with the reference in).
KERNEL_CODE = r"""
def __softgrad_confine__(off, delete, mark):
    import gc, importlib, os, sys, types

    import softgrad

    pkg = os.path.dirname(os.path.abspath(softgrad.__file__))
    modules = {m: importlib.import_module(m) for m in sorted({m for m, _ in off} | {"softgrad"})}
    for name in sorted(os.listdir(pkg)):
        if name.startswith("_") and name.endswith(".py") and name != "__init__.py":
            modules.setdefault("softgrad." + name[:-3], importlib.import_module("softgrad." + name[:-3]))

    def stub(public):
        def switched_off(*args, **kwargs):
            raise RuntimeError(
                "%s %s is not available in this notebook while it is graded: the exercise "
                "asks you to write it yourself, without softgrad's implementation" % (mark, public)
            )

        switched_off.__name__ = switched_off.__qualname__ = public.rsplit(".", 1)[-1]
        return switched_off

    ours = [m for n, m in list(sys.modules.items()) if n == "softgrad" or n.startswith("softgrad.")]
    value = None
    for modname, name in off:
        original = vars(modules[modname]).get(name)
        if original is None:
            continue
        public = "softgrad." + name if getattr(softgrad, name, None) is original else modname + "." + name
        replacement = stub(public)
        for m in ours:
            for key, value in list(vars(m).items()):
                if value is original:
                    setattr(m, key, replacement)
        original = value = replacement = None
    gc.collect()
    wanted = {name for _, name in off}
    for obj in gc.get_objects():
        if isinstance(obj, (types.FunctionType, type)) and getattr(obj, "__name__", "") in wanted:
            module = getattr(obj, "__module__", "") or ""
            if (module, obj.__name__) in set(map(tuple, off)):
                raise RuntimeError("softgrad.%s is still reachable" % obj.__name__)
    if delete:
        if not os.path.exists(os.path.join(pkg, ".softgrad-kernel-copy")):
            raise RuntimeError("the kernel's softgrad is not its private copy")
        for name in sorted(os.listdir(pkg)):
            if name.startswith("_") and name.endswith(".py"):
                os.remove(os.path.join(pkg, name))
        cache = os.path.join(pkg, "__pycache__")
        if os.path.isdir(cache):
            for name in os.listdir(cache):
                os.remove(os.path.join(cache, name))
        importlib.invalidate_caches()
"""


def kernel_code(off: list[tuple[str, str]], *, delete: bool) -> str:
    """The code the kernel runs, silently, to lose ``off`` (and the source files if ``delete``)."""
    return (
        KERNEL_CODE
        + f"__softgrad_confine__({json.dumps([list(k) for k in off])}, {delete!r}, {MARK!r})\n"
        + "del __softgrad_confine__\n"
    )
