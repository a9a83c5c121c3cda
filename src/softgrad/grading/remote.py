"""Decide the points of test cells where the student's code never runs.

nbgrader runs a test cell inside the student's kernel, where legal Python (replacing
``numpy.isclose``, patching ``softgrad``, an IPython input transformer, reading the caller's
frame) decides what the test sees. Here the test cells run in the grader's own process instead,
in a namespace :class:`CellRunner` builds from the notebook's locked imports. A name the test
uses that the student defined becomes a :class:`Remote`: calling it sends the arguments to the
sandboxed kernel as plain numbers, the kernel calls the student's function there, and the
grader receives plain numbers back and judges them itself with :mod:`softgrad.checks`.

What crosses the boundary is JSON of a few plain types (:func:`encode`, :func:`decode`): None,
booleans, numbers, short strings, lists, tuples and numeric ndarrays (raw little-endian bytes,
base64). Anything else a student's function returns arrives as an :class:`Opaque` placeholder
that no check accepts; nothing from the kernel is ever unpickled or evaluated. A function passed
as an argument (``numerical_gradient(f, x)``) stays in the grader: the kernel gets a stub that
asks the grader for ``f(x)`` over the kernel's stdin channel.

The hidden tests' code and their outputs never enter the kernel; what the student's function
prints or displays during a test is dropped; a failure in a hidden region shows only the
diagnosis (the mistake's name and fix), never the probe values.
"""

from __future__ import annotations

import ast
import base64
import builtins
import contextlib
import io
import json
import queue
import re
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

MAX_BYTES = 256 * 1024**2  # of one reply
_KINDS = frozenset("biufc")
_DEPTH = 16

from ..checks import ACTIVE_CALL as ACTIVE  # (run, allow, measure) while a check calls
from ..checks import MISTAKES
from .confine import MARK


class Opaque:
    """Stands for a value of a type that is not plain numbers (an object, a module, a generator)."""

    def __init__(self, typename: str):
        self.typename = typename

    def __repr__(self) -> str:
        return f"<{self.typename} object from the student's kernel>"


class RemoteError(Exception):
    """The student's function raised an exception of a type that is not a plain builtin."""


class ReferenceCall(Exception):
    """The student's function called one of softgrad's implementations that its kernel lost
    (:mod:`.confine`): the answer is softgrad's, not the student's."""


class KernelGone(Exception):
    """The kernel died, or did not answer in time, while the grader waited for it."""

    def __init__(self, message: str, *, timed_out: bool = False):
        super().__init__(message)
        self.timed_out = timed_out


# Exceptions re-raised in the grader under their own type (the checks treat some specially,
# NotImplementedError above all); any other type arrives as RemoteError("Name: message").
_BUILTIN_ERRORS = {
    e.__name__: e
    for e in (
        ArithmeticError,
        AssertionError,
        AttributeError,
        FloatingPointError,
        IndexError,
        KeyError,
        LookupError,
        MemoryError,
        NameError,
        NotImplementedError,
        OverflowError,
        RecursionError,
        RuntimeError,
        TypeError,
        UnboundLocalError,
        ValueError,
        ZeroDivisionError,
    )
}


def encode(value, callback=None, depth: int = 0):
    """A JSON-able form of ``value``; ``callback(fn)`` names a function passed to the kernel."""
    if depth > _DEPTH:
        return {"o": "nested too deep"}
    if isinstance(value, np.generic):
        value = np.asarray(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**62 else float(value)
    if isinstance(value, float):
        return {"f": repr(float(value))}
    if isinstance(value, str):
        return {"s": value[:1000]}
    if isinstance(value, np.generic):
        value = np.asarray(value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in _KINDS:
            return {"o": f"ndarray of dtype {value.dtype}"}
        a = np.array(value, dtype=value.dtype.newbyteorder("<"), order="C")  # keeps 0-d
        return {"nd": [a.dtype.str, list(a.shape), base64.b64encode(a.tobytes()).decode()]}
    if isinstance(value, list | tuple):
        key = "l" if isinstance(value, list) else "t"
        return {key: [encode(v, callback, depth + 1) for v in value]}
    if callable(value) and callback is not None:
        return {"cb": callback(value)}
    return {"o": type(value).__name__[:100]}


def decode(data, depth: int = 0):
    """The value :func:`encode` encoded, checked strictly: plain types only, sizes consistent."""
    if depth > _DEPTH:
        raise ValueError("nested too deep")
    if data is None or isinstance(data, bool | int):
        return data
    if not isinstance(data, dict) or len(data) != 1:
        raise ValueError(f"not an encoded value: {str(data)[:80]}")
    ((key, v),) = data.items()
    if key == "f":
        return float(v)
    if key == "s":
        return str(v)[:1000]
    if key in ("l", "t"):
        if not isinstance(v, list):
            raise ValueError("bad sequence")
        items = [decode(x, depth + 1) for x in v]
        return items if key == "l" else tuple(items)
    if key == "nd":
        dtype_str, shape, b64 = v
        dtype = np.dtype(str(dtype_str))
        if dtype.kind not in _KINDS or dtype.itemsize > 16 or dtype.hasobject:
            raise ValueError(f"dtype {dtype} is not plain numbers")
        shape = tuple(int(n) for n in shape)
        if any(n < 0 for n in shape):
            raise ValueError("negative shape")
        raw = base64.b64decode(b64, validate=True)
        if len(raw) != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise ValueError("array data does not match its shape")
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    if key == "o":
        return Opaque(str(v)[:100])
    raise ValueError(f"unknown encoding {key!r}")


# ----------------------------------------------------------------------------- the kernel's side

# Executed once in the kernel (silently) before any of the student's cells. It holds nothing
# secret: a student who breaks it only breaks the calls of their own tests.
SERVER = r"""
def __softgrad_server():
    import base64, builtins, json, os, sys, tracemalloc, warnings
    import numpy as np

    try:
        import softgrad
        pkg = os.path.dirname(os.path.abspath(softgrad.__file__))
    except Exception:
        pkg = "\0"
    skip = (os.path.join(pkg, "checks.py"), os.path.join(pkg, "grading") + os.sep)
    kinds = "biufc"

    def in_softgrad(code):
        f = os.path.abspath(code.co_filename)
        return f.startswith(pkg + os.sep) and not f.startswith(skip)

    def enc(value, depth=0):
        if depth > 16:
            return {"o": "nested too deep"}
        if isinstance(value, np.generic):
            value = np.asarray(value)
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value if abs(value) < 2**62 else float(value)
        if isinstance(value, float):
            return {"f": repr(float(value))}
        if isinstance(value, str):
            return {"s": value[:1000]}
        if isinstance(value, np.generic):
            value = np.asarray(value)
        if isinstance(value, np.ndarray) and type(value) is not np.ndarray:
            value = np.asarray(value).view(np.ndarray)
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in kinds:
                return {"o": "ndarray of dtype %s" % value.dtype}
            a = np.array(value, dtype=value.dtype.newbyteorder("<"), order="C")  # keeps 0-d
            return {"nd": [a.dtype.str, list(a.shape), base64.b64encode(a.tobytes()).decode()]}
        if type(value) in (list, tuple):
            return {"l" if type(value) is list else "t": [enc(v, depth + 1) for v in value]}
        return {"o": type(value).__name__[:100]}

    def dec(data):
        if data is None or isinstance(data, (bool, int)):
            return data
        (key, v), = data.items()
        if key == "f":
            return float(v)
        if key == "s":
            return v
        if key in ("l", "t"):
            items = [dec(x) for x in v]
            return items if key == "l" else tuple(items)
        if key == "nd":
            raw = base64.b64decode(v[2])
            return np.frombuffer(raw, dtype=np.dtype(v[0])).reshape(v[1]).copy()
        if key == "cb":
            ident = v

            def callback(*args):
                reply = json.loads(input(json.dumps({"cb": ident, "args": enc(list(args))})))
                if "error" in reply:
                    raise RuntimeError(reply["error"])
                return dec(reply["value"])

            return callback
        return None

    snapshots = {}

    def call(request):
        req = json.loads(request)
        if "snapshot" in req:  # the names as they are at a test cell's place in the notebook
            snapshots[str(req["snapshot"])] = dict(get_ipython().user_ns)
            return json.dumps({"snapshot": req["snapshot"]})
        ns = snapshots.get(str(req.get("snap")), get_ipython().user_ns)
        out = {"refs": [], "warnings": [], "peak": 0, "mutated": []}
        if req.get("describe"):
            found = {}
            for name in req["describe"]:
                if name not in ns:
                    continue
                obj = ns[name]
                found[name] = "callable" if callable(obj) and not isinstance(obj, type) else enc(obj)
            out["found"] = found
            return json.dumps(out)
        fn = ns.get(req["name"])
        args = dec(req["args"])
        kwargs = dec(req["kwargs"])
        kwargs = dict(kwargs) if kwargs else {}
        before = [np.copy(a) if isinstance(a, np.ndarray) else None for a in args]
        refs = set()

        def profiler(frame, event, arg):
            if event == "call" and in_softgrad(frame.f_code):
                caller = frame.f_back
                if caller is None or not in_softgrad(caller.f_code):
                    refs.add(frame.f_globals.get("__name__", "softgrad") + "." + frame.f_code.co_name)

        measure = req.get("measure")
        try:
            with warnings.catch_warnings(record=True) as caught, np.errstate(all="warn"):
                warnings.simplefilter("always")
                if measure:
                    tracemalloc.start()
                sys.setprofile(profiler)
                try:
                    if fn is None:
                        raise NameError("name %r is not defined" % req["name"])
                    value = fn(*args, **kwargs)
                finally:
                    sys.setprofile(None)
                    if measure:
                        out["peak"] = tracemalloc.get_traced_memory()[1]
                        tracemalloc.stop()
            out["value"] = enc(value)
        except BaseException as exc:
            out["error"] = [type(exc).__name__, str(exc)[:2000]]
            caught = []
        out["warnings"] = [str(w.message)[:500] for w in caught][:50]
        out["refs"] = sorted(refs)
        for i, (a, b) in enumerate(zip(args, before)):
            if b is not None and not np.array_equal(a, b, equal_nan=True):
                out["mutated"].append([i, enc(a)])
        return json.dumps(out, allow_nan=True)

    return call


__softgrad_call__ = __softgrad_server()
del __softgrad_server
"""


# ----------------------------------------------------------------------------- the grader's side


@dataclass
class Channel:
    """A blocking client of the kernel, used for the calls of the test cells."""

    client: object  # jupyter_client.BlockingKernelClient
    is_alive: object  # () -> bool
    interrupt: object  # () -> None
    deadline: float = float("inf")
    calls: int = 0
    snap: int | None = None  # the snapshot of the student's names that calls resolve in
    callbacks: dict = field(default_factory=dict)

    def request(self, payload: dict) -> dict:
        import zmq

        code = f"__softgrad_reply__ = __softgrad_call__({json.dumps(json.dumps(payload))})"
        kc = self.client
        msg_id = kc.execute(
            code,
            silent=False,
            store_history=False,
            user_expressions={"r": "__softgrad_reply__"},
            allow_stdin=True,
        )
        self.calls += 1
        poller = zmq.Poller()
        sockets = {}
        for name in ("shell", "stdin", "iopub"):
            sock = getattr(kc, f"{name}_channel").socket
            poller.register(sock, zmq.POLLIN)
            sockets[sock] = name
        checked = time.monotonic()
        while True:
            now = time.monotonic()
            if now > self.deadline:
                self.interrupt()
                raise KernelGone("no reply from the kernel before the time limit", timed_out=True)
            if now - checked > 0.5:
                checked = now
                if not self.is_alive():
                    raise KernelGone("the kernel died")
            ready = {sockets[s] for s, _ in poller.poll(100)}
            if "iopub" in ready:  # what the student's code prints or displays is dropped
                with contextlib.suppress(Exception):
                    while True:
                        kc.get_iopub_msg(timeout=0)
            if "stdin" in ready:
                with contextlib.suppress(Exception):
                    msg = kc.get_stdin_msg(timeout=0)
                    if msg["parent_header"].get("msg_id") == msg_id:
                        kc.input(self._answer(msg["content"].get("prompt", "")))
            if "shell" not in ready:
                continue
            try:
                msg = kc.get_shell_msg(timeout=0)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            content = msg["content"]
            if content.get("status") != "ok":
                ename = content.get("ename", "Error")
                if ename == "KeyboardInterrupt":
                    raise KernelGone("interrupted", timed_out=True)
                return {"error": [ename, content.get("evalue", "")]}
            data = content.get("user_expressions", {}).get("r", {})
            text = (data.get("data") or {}).get("text/plain", "")
            if data.get("status") != "ok" or len(text) > MAX_BYTES:
                return {"error": ["RuntimeError", "the grader could not read the answer"]}
            try:
                return json.loads(ast.literal_eval(text))
            except (ValueError, SyntaxError, TypeError) as exc:
                return {"error": ["RuntimeError", f"the grader could not read the answer: {exc}"]}

    def _answer(self, prompt: str) -> str:
        """Evaluate a grader-side function the kernel's stub asked for, on plain numbers."""
        try:
            req = json.loads(prompt)
            fn = self.callbacks[int(req["cb"])]
            args = decode(req["args"])
            old = sys.getprofile()
            sys.setprofile(None)  # the grader's function is not the student's reference call
            try:
                value = fn(*args)
            finally:
                sys.setprofile(old)
            return json.dumps({"value": encode(value)}, allow_nan=True)
        except Exception as exc:  # noqa: BLE001 (the kernel gets the error as text)
            return json.dumps({"error": f"{type(exc).__name__}: {exc}"[:500]})

    def call(self, name: str, args: tuple, kwargs: dict):
        active = ACTIVE.get()

        def register(fn) -> int:
            self.callbacks[len(self.callbacks)] = fn
            return len(self.callbacks) - 1

        payload = {
            "snap": self.snap,
            "name": name,
            "args": encode(list(args), register),
            "kwargs": encode(list(kwargs.items()), register) if kwargs else None,
            "measure": bool(active and active[2]),
        }
        reply = self.request(payload)
        if active is not None:
            run, allow, _ = active
            run.reference_calls |= {
                r for r in reply.get("refs", []) if r.split(".")[-1] not in allow
            }
            run.remote_peak = max(run.remote_peak, int(reply.get("peak", 0) or 0))
        for message in reply.get("warnings", []):
            warnings.warn(str(message), RuntimeWarning, stacklevel=2)
        for i, value in reply.get("mutated", []):
            if isinstance(args[i], np.ndarray):
                with contextlib.suppress(Exception):
                    np.copyto(args[i], decode(value))
        if "error" in reply:
            ename, evalue = reply["error"]
            if MARK in str(evalue):  # the student's function called a switched-off reference
                called = str(evalue).split(MARK, 1)[1].split()[0]
                if active is not None:
                    active[0].reference_calls.add(called)
                raise ReferenceCall(
                    MISTAKES["reference-call"].describe() + f"\nCalled: {called}"
                )
            raise _BUILTIN_ERRORS.get(ename, RemoteError)(
                evalue if ename in _BUILTIN_ERRORS else f"{ename}: {evalue}"
            )
        return decode(reply["value"])

    def snapshot(self, key: int) -> None:
        """Keep the student's names as they are now, for the test cell ``key`` (see :attr:`snap`)."""
        reply = self.request({"snapshot": key})
        if reply.get("snapshot") != key:
            raise KernelGone("the kernel did not keep the names for a test cell")

    def describe(self, names: list[str]) -> dict:
        reply = self.request({"describe": names, "snap": self.snap})
        if "error" in reply:
            return {}
        return reply.get("found", {})


class Remote:
    """The student's function ``name``, called in the sandboxed kernel on plain numbers."""

    def __init__(self, channel: Channel, name: str):
        self._channel = channel
        self.__name__ = self.__qualname__ = name

    def __call__(self, *args, **kwargs):
        return self._channel.call(self.__name__, args, kwargs)

    def __repr__(self) -> str:
        return f"<function {self.__name__} (the student's)>"


# ----------------------------------------------------------------------------- test cells

BEGIN, END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
_KEEP = ("Likely mistake", "How to fix", "Read:")


def segments(source: str) -> list[tuple[bool, str]]:
    """``(hidden, code)`` pieces of a test cell, in order.

    Examples
    --------
    >>> segments("a = 1\\n### BEGIN HIDDEN TESTS\\nb = 2\\n### END HIDDEN TESTS\\nc = 3")
    [(False, 'a = 1'), (True, 'b = 2'), (False, 'c = 3')]
    """
    out: list[tuple[bool, list[str]]] = [(False, [])]
    for line in source.splitlines():
        if BEGIN in line:
            out.append((True, []))
        elif END in line:
            out.append((False, []))
        else:
            out[-1][1].append(line)
    return [(h, "\n".join(lines)) for h, lines in out if "".join(lines).strip()]


def _free_names(tree: ast.AST) -> list[str]:
    """Names a cell reads and never binds itself (the candidates for the student's)."""
    loaded, bound = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
    return sorted(loaded - bound - set(dir(builtins)))


def _imports_only(source: str) -> str:
    """The top-level import statements of a locked cell (instructor code, safe to run here)."""
    try:
        tree = ast.parse(_strip_magics(source))
    except SyntaxError:
        return ""
    return "\n".join(
        ast.unparse(n) for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)
    )


def _strip_magics(src: str) -> str:
    return "\n".join("" if re.match(r"\s*[%!?]", ln) else ln for ln in src.splitlines())


def _hidden_message(exc: BaseException) -> str:
    """What a student sees of a failure in a hidden test: the diagnosis, never the values."""
    kept = [ln for ln in str(exc).splitlines() if ln.startswith(_KEEP)]
    return "\n".join(["a hidden test failed", *kept])


class CellRunner:
    """Runs the test cells of one notebook in the grader against one kernel."""

    def __init__(self, channel: Channel, setup_sources: list[str], cell_timeout: float):
        self.channel = channel
        self.cell_timeout = cell_timeout
        self.ns: dict = {"__name__": "__softgrad_tests__", "__builtins__": builtins}
        for src in setup_sources:
            code = _imports_only(src)
            if code:
                exec(compile(code, "<locked imports>", "exec"), self.ns)  # noqa: S102

    def bind(self, tree: ast.AST) -> None:
        wanted = [n for n in _free_names(tree) if n not in self.ns]
        if not wanted:
            return
        for name, what in self.channel.describe(wanted).items():
            if name not in wanted:
                continue
            try:
                self.ns[name] = Remote(self.channel, name) if what == "callable" else decode(what)
            except (ValueError, TypeError):
                self.ns[name] = Opaque("value")

    def run_cell(self, source: str) -> list[dict]:
        """Outputs of one test cell, as nbgrader would record them (an error output fails it)."""
        self.channel.deadline = time.monotonic() + self.cell_timeout
        outputs: list[dict] = []
        pieces = segments(source)
        for k, (hidden, code) in enumerate(pieces):
            stdout = io.StringIO()
            try:
                tree = ast.parse(_strip_magics(code))
                self.bind(tree)
                last = None
                if k == len(pieces) - 1 and tree.body and isinstance(tree.body[-1], ast.Expr):
                    last = ast.Expression(tree.body.pop().value)
                with contextlib.redirect_stdout(stdout), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    exec(compile(tree, "<test>", "exec"), self.ns)  # noqa: S102
                    value = eval(compile(last, "<test>", "eval"), self.ns) if last else None
            except KernelGone:
                raise
            except Exception as exc:  # noqa: BLE001 (a failing test is an error output)
                ename = type(exc).__name__
                evalue = _hidden_message(exc) if hidden else str(exc)
                if not hidden and stdout.getvalue():
                    outputs.append(_stream(stdout.getvalue()))
                outputs.append(
                    {
                        "output_type": "error",
                        "ename": ename,
                        "evalue": evalue,
                        "traceback": [f"{ename}: {evalue}"],
                    }
                )
                return outputs
            if not hidden and stdout.getvalue():
                outputs.append(_stream(stdout.getvalue()))
            if value is not None and not hidden:
                outputs.append(
                    {
                        "output_type": "execute_result",
                        "execution_count": None,
                        "metadata": {},
                        "data": {"text/plain": repr(value)[:10000]},
                    }
                )
        return outputs


def _stream(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": text[:100_000]}
