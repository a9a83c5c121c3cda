"""Feedback for the graded exercises: run a student's function on probe inputs and name the mistake.

Each ``check_*`` function calls the student's function on a fixed set of probe inputs, converts
every result to a plain float ndarray (so an object whose ``__eq__`` always says True cannot pass),
and compares it with softgrad's reference implementation. On a wrong answer it looks for a known
mistake that reproduces the student's output on every probe (the catalogue is :data:`MISTAKES`),
and raises :class:`CheckFailed` with a message that names the mistake, says how to fix it, points
to the chapter section that derives the right answer, and gives the worst entry, expected against
got. An unrecognised wrong answer still gets the worst entry.

The student's function may not call softgrad's reference implementation (the exercise is to write
it with numpy); a call into softgrad while the student's code runs fails the check.

Examples
--------
>>> import numpy as np
>>> from softgrad.checks import check_softmax
>>> def softmax(z):
...     z = np.asarray(z, dtype=float)
...     e = np.exp(z - z.max(axis=-1, keepdims=True))  # the shift keeps exp from overflowing
...     return e / e.sum(axis=-1, keepdims=True)
>>> check_softmax(softmax)
softmax: passed 7 probes
>>> def naive_softmax(z):
...     e = np.exp(z)
...     return e / e.sum(axis=-1, keepdims=True)
>>> check_softmax(naive_softmax)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
softgrad.checks.CheckFailed: softmax is wrong on probe 'large logits'...
Likely mistake [softmax-overflow]: ...
"""

from __future__ import annotations

import itertools
import os
import sys
import tracemalloc
import warnings
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "MISTAKES",
    "SECTIONS",
    "CheckFailed",
    "Mistake",
    "Passed",
    "check_cross_entropy_grad",
    "check_log_softmax",
    "check_log_softmax_jacobian",
    "check_loss_and_grad",
    "check_matches",
    "check_numerical_gradient",
    "check_softmax",
    "check_softmax_jacobian",
    "check_softmax_vjp",
    "check_training",
]


class CheckFailed(AssertionError):
    """A student's function gave a wrong answer, a non-numeric answer, or raised."""


#: chapter file for each section label of the book (see the team contract)
SECTIONS = {
    "sec-softmax": "01_softmax",
    "sec-softmax-jacobian": "02_softmax_jacobian",
    "sec-softmax-backprop": "03_softmax_backprop",
    "sec-cross-entropy": "04_cross_entropy",
    "sec-gradient-checking": "05_gradient_checking",
    "sec-putting-together": "06_putting_it_together",
}


def _where(section: str) -> str:
    return f"chapters/{SECTIONS[section]}.html#{section} (section {section})"


@dataclass(frozen=True)
class Mistake:
    """One catalogued mistake: what the student did, how to fix it, where the book explains it."""

    key: str
    what: str
    fix: str
    section: str

    def describe(self) -> str:
        return (
            f"Likely mistake [{self.key}]: {self.what}\n"
            f"How to fix: {self.fix}\n"
            f"Read: {_where(self.section)}"
        )


def _catalogue(*mistakes: Mistake) -> dict[str, Mistake]:
    return {m.key: m for m in mistakes}


#: every mistake the checks recognise, by key
MISTAKES: dict[str, Mistake] = _catalogue(
    # -- softmax and log-softmax (chapter 1)
    Mistake(
        "softmax-overflow",
        "exp(z) overflows to inf for large logits, and inf/inf gives NaN (the naive softmax).",
        "subtract each row's maximum from z before exponentiating; softmax(z) = softmax(z - max z).",
        "sec-softmax",
    ),
    Mistake(
        "softmax-underflow",
        "every exp(z) underflows to 0 for very negative logits, and 0/0 gives NaN.",
        "subtract each row's maximum from z before exponentiating.",
        "sec-softmax",
    ),
    Mistake(
        "softmax-wrong-axis",
        "normalised over the wrong axis (axis 0, down the batch) instead of the class axis -1.",
        "use axis=-1 for the max and the sum, with keepdims=True.",
        "sec-softmax",
    ),
    Mistake(
        "softmax-sum-all",
        "divided by the sum over the whole array instead of each row's own sum.",
        "sum along axis=-1 with keepdims=True so every row is normalised by itself.",
        "sec-softmax",
    ),
    Mistake(
        "softmax-no-keepdims",
        "took the row max or the row sum without keepdims=True, so it broadcast along the wrong "
        "axis (entry [i, j] was shifted or divided by a number belonging to row j).",
        "use z.max(axis=-1, keepdims=True) and e.sum(axis=-1, keepdims=True).",
        "sec-softmax",
    ),
    Mistake(
        "softmax-not-normalised",
        "returned exp(z - max z) without dividing by the row sum.",
        "divide by e.sum(axis=-1, keepdims=True) so each row sums to 1.",
        "sec-softmax",
    ),
    Mistake(
        "log-softmax-underflow",
        "computed log(softmax(z)): a tiny probability underflows to 0 and its log to -inf, "
        "although the exact log-probability is a finite number like -1000.",
        "compute log_softmax(z) = (z - m) - log(sum(exp(z - m))) with m the row maximum; never take "
        "the log of a probability.",
        "sec-softmax",
    ),
    Mistake(
        "logsumexp-overflow",
        "computed log(sum(exp(z))) without shifting by the maximum: exp overflows and the result is "
        "-inf or NaN.",
        "use logsumexp(z) = m + log(sum(exp(z - m))) with m the row maximum.",
        "sec-softmax",
    ),
    Mistake(
        "mutated-input",
        "modified its input array in place (e.g. `z -= z.max()` or `x[i] += h`), which corrupts the "
        "caller's data.",
        "work on a copy (`z = z - z.max(...)` makes a new array; `x = x.copy()` before perturbing).",
        "sec-softmax",
    ),
    Mistake(
        "reference-call",
        "called softgrad's own implementation instead of writing the computation with numpy.",
        "write the formula with numpy; softgrad is what your answer is compared against.",
        "sec-softmax",
    ),
    # -- Jacobian (chapter 2)
    Mistake(
        "jacobian-diagonal-only",
        "returned only the diagonal p_i (1 - p_i), as if softmax acted elementwise like a sigmoid; "
        "every p_j depends on every z_i, so the off-diagonal entries -p_i p_j are missing.",
        "J = diag(p) - outer(p, p).",
        "sec-softmax-jacobian",
    ),
    Mistake(
        "jacobian-sign",
        "has the sign flipped: outer(p, p) - diag(p).",
        "J = diag(p) - outer(p, p); its diagonal p_i (1 - p_i) is positive.",
        "sec-softmax-jacobian",
    ),
    Mistake(
        "jacobian-missing-diag",
        "is missing the diag(p) term (only -outer(p, p)).",
        "J = diag(p) - outer(p, p): the Kronecker delta contributes p_i on the diagonal.",
        "sec-softmax-jacobian",
    ),
    Mistake(
        "jacobian-of-logits",
        "used the logits z where the probabilities p = softmax(z) belong.",
        "first compute p = softmax(z), then build J from p.",
        "sec-softmax-jacobian",
    ),
    Mistake(
        "jacobian-dot-not-outer",
        "used p @ p.T (or p.T @ p) on a 1-D array, which is the scalar dot product sum(p**2), "
        "not the outer product.",
        "use np.outer(p, p), or p[..., :, None] * p[..., None, :] for a batch.",
        "sec-softmax-jacobian",
    ),
    Mistake(
        "jacobian-transposed",
        "is transposed: entry [i, j] must be d out_i / d z_j (row = output, column = input). For "
        "softmax J is symmetric so this cannot show, but the log-softmax Jacobian I - 1 p^T is not.",
        "put the output index first: J[..., i, j] = d out_i / d z_j.",
        "sec-softmax-jacobian",
    ),
    Mistake(
        "jacobian-batch-layout",
        "put the batch axis in the wrong place: for z of shape (N, n) the Jacobians must be stacked "
        "as shape (N, n, n), one matrix per row.",
        "keep the batch axes first and the two class axes last (..., n, n).",
        "sec-softmax-jacobian",
    ),
    # -- backprop through softmax (chapter 3)
    Mistake(
        "vjp-missing-p",
        "returned s - sum(s) with s = g * p: the sum must be multiplied by p (the second seed "
        "question), dL/dz = s - p * sum(s).",
        "dL/dz = p * (g - sum(g * p)), summing along the class axis with keepdims=True.",
        "sec-softmax-backprop",
    ),
    Mistake(
        "vjp-sign",
        "has the sign flipped: p * (<g, p> - g).",
        "dL/dz = p * (g - <g, p>).",
        "sec-softmax-backprop",
    ),
    Mistake(
        "vjp-diagonal-only",
        "used only the diagonal of the Jacobian, g * p * (1 - p), as for an elementwise sigmoid.",
        "the off-diagonal terms give the - p * <g, p> part: dL/dz = p * (g - <g, p>).",
        "sec-softmax-backprop",
    ),
    Mistake(
        "vjp-wrong-axis",
        "took the inner product <g, p> over the wrong axis (down the batch, or over everything).",
        "sum g * p along axis=-1 with keepdims=True: one inner product per row.",
        "sec-softmax-backprop",
    ),
    Mistake(
        "vjp-softmax-of-p",
        "applied softmax to p again: the function receives probabilities, not logits.",
        "use p as given.",
        "sec-softmax-backprop",
    ),
    Mistake(
        "vjp-formed-jacobian",
        "formed the n x n Jacobian to multiply by it; that costs O(n^2) memory and time per row.",
        "use dL/dz = p * (g - <g, p>), which needs O(n).",
        "sec-softmax-backprop",
    ),
    # -- cross-entropy gradient (chapter 4)
    Mistake(
        "ce-seed-sum-py",
        "computed sum_k p_k y_k - y_i (the first seed question): the sum over k of y_k multiplies "
        "p_i, it is not a sum of p_k y_k.",
        "dL/dz_i = p_i * sum_k y_k - y_i, which is p_i - y_i when the targets sum to 1.",
        "sec-cross-entropy",
    ),
    Mistake(
        "ce-sign",
        "has the sign flipped (y - p): that is the direction of steepest ascent.",
        "dL/dz = p * sum(y) - y.",
        "sec-cross-entropy",
    ),
    Mistake(
        "ce-missing-mean",
        "is missing the 1/N of the batch mean: the loss is the mean over the N rows, so each "
        "row's gradient is divided by N.",
        "divide the per-row gradient by N = z.shape[0].",
        "sec-cross-entropy",
    ),
    Mistake(
        "ce-mean-over-all",
        "divided by N * C (np.mean over all entries) instead of the number of rows N.",
        "the loss averages over rows only: divide by N = z.shape[0].",
        "sec-cross-entropy",
    ),
    Mistake(
        "ce-p-minus-y-unnormalised",
        "used p - y where the targets do not sum to 1: p - y is the gradient only when sum(y) = 1.",
        "dL/dz = p * sum(y, axis=-1, keepdims=True) - y.",
        "sec-cross-entropy",
    ),
    Mistake(
        "ce-forgot-softmax",
        "used the logits z where the probabilities p = softmax(z) belong.",
        "compute p = softmax(z) (stably) first.",
        "sec-cross-entropy",
    ),
    Mistake(
        "ce-softmax-wrong-axis",
        "computed the softmax over the wrong axis (down the batch).",
        "normalise each row: axis=-1, keepdims=True.",
        "sec-cross-entropy",
    ),
    # -- gradient checking (chapter 5)
    Mistake(
        "gc-forward-difference",
        "used a forward difference (f(x + h) - f(x)) / h, whose error is O(h); the central "
        "difference (f(x + h) - f(x - h)) / (2h) has error O(h^2).",
        "evaluate f at x + h e_i and x - h e_i and divide by 2h.",
        "sec-gradient-checking",
    ),
    Mistake(
        "gc-backward-difference",
        "used a backward difference (f(x) - f(x - h)) / h, whose error is O(h).",
        "use the central difference (f(x + h) - f(x - h)) / (2h).",
        "sec-gradient-checking",
    ),
    Mistake(
        "gc-missing-half",
        "divided the central difference by h instead of 2h, so the gradient is twice too large.",
        "(f(x + h e_i) - f(x - h e_i)) / (2 * h).",
        "sec-gradient-checking",
    ),
    Mistake(
        "gc-step-too-small",
        "chose a step so small that rounding error (about eps * |f| / h) swamps the derivative.",
        "use h of the order of eps**(1/3) * max(1, |x_i|), about 6e-6 * max(1, |x_i|) in float64.",
        "sec-gradient-checking",
    ),
    Mistake(
        "gc-step-too-large",
        "chose a step so large that the truncation error (about h**2 * |f'''| / 6) dominates.",
        "use h of the order of eps**(1/3) * max(1, |x_i|), about 6e-6 * max(1, |x_i|) in float64.",
        "sec-gradient-checking",
    ),
    Mistake(
        "gc-step-not-scaled",
        "used a fixed absolute step: at |x_i| = 1e8 a step of 1e-5 is not even representable "
        "(x + h rounds), so the difference quotient is off.",
        "scale the step with the coordinate: h_i = h0 * max(1, |x_i|).",
        "sec-gradient-checking",
    ),
    # -- training (chapter 6)
    Mistake(
        "train-grad-shape",
        "returned dW with the shape of W transposed: the gradient has the shape of the parameter.",
        "dW = X.T @ dZ has shape (D, C) like W.",
        "sec-putting-together",
    ),
    Mistake(
        "train-db-double-mean",
        "averaged db over the batch although dZ already carries the 1/N of the mean loss.",
        "db = dZ.sum(axis=0).",
        "sec-putting-together",
    ),
    Mistake(
        "train-loss-sum",
        "returned the summed loss instead of the mean over the N examples.",
        "divide the summed cross-entropy by N (and keep the gradient consistent with it).",
        "sec-putting-together",
    ),
    Mistake(
        "train-diverged",
        "training went the wrong way: the loss grew (gradient ascent, or a learning rate that is "
        "too large) or became NaN.",
        "update W -= lr * dW (minus!), check your gradient with a gradient checker, and try a "
        "smaller lr.",
        "sec-putting-together",
    ),
)


@dataclass(frozen=True)
class Passed:
    """Returned by a check that passed; shows as one line in a notebook."""

    name: str
    n_probes: int

    def __repr__(self) -> str:
        return f"{self.name}: passed {self.n_probes} probe{'s' * (self.n_probes != 1)}"


# ----------------------------------------------------------------------------- running student code


_PKG_DIR = os.path.dirname(os.path.abspath(__file__))
_THIS = os.path.abspath(__file__)
_GRADING = os.path.join(_PKG_DIR, "grading") + os.sep

#: ``(run, allow, measure_memory)`` while :func:`_call` runs a student's function. The grader's
#: stand-in for a function that runs in the student's sandboxed kernel
#: (:class:`softgrad.grading.remote.Remote`) reports there what the kernel saw: calls into
#: softgrad, warnings, peak memory.
ACTIVE_CALL: ContextVar = ContextVar("softgrad_active_call", default=None)


@dataclass
class _Run:
    value: Any = None
    warnings: list[str] = field(default_factory=list)
    reference_calls: set[str] = field(default_factory=set)
    peak_bytes: int = 0
    remote_peak: int = 0  # reported by a function that ran in the grader's sandbox


_in_softgrad_cache: dict[str, bool] = {}


def _in_softgrad(code) -> bool:
    """Is this code object part of softgrad's numerics (not this module)?"""
    filename = code.co_filename
    if filename not in _in_softgrad_cache:
        path = os.path.abspath(filename)
        _in_softgrad_cache[filename] = (
            path.startswith(_PKG_DIR + os.sep) and path != _THIS and not path.startswith(_GRADING)
        )
    return _in_softgrad_cache[filename]


def _call(
    name: str,
    fn: Callable,
    args: tuple,
    probe: str,
    *,
    measure_memory: bool = False,
    allow: tuple[str, ...] = (),
) -> _Run:
    """Call the student's ``fn(*args)``: record floating-point warnings and calls into softgrad.

    A call from outside softgrad into a softgrad function whose name is not in ``allow``
    (e.g. the student's function calling ``softgrad.softmax`` when ``allow`` is empty) is
    recorded as a reference call; softgrad's internal calls are not.
    """
    if not callable(fn):
        raise CheckFailed(f"{name}: expected a function, got {type(fn).__name__} {fn!r:.60}")
    run = _Run()
    calls = run.reference_calls

    def profiler(frame, event, arg):
        if event == "call" and _in_softgrad(frame.f_code):
            caller = frame.f_back
            outermost = caller is None or not _in_softgrad(caller.f_code)
            if outermost and frame.f_code.co_name not in allow:
                calls.add(f"softgrad.{frame.f_code.co_name}")  # the public name

    old_profile = sys.getprofile()
    was_tracing = tracemalloc.is_tracing()
    try:
        with warnings.catch_warnings(record=True) as caught, np.errstate(all="warn"):
            warnings.simplefilter("always")
            if measure_memory:
                if not was_tracing:
                    tracemalloc.start()
                tracemalloc.reset_peak()
            token = ACTIVE_CALL.set((run, allow, measure_memory))
            sys.setprofile(profiler)
            try:
                run.value = fn(*args)
            finally:
                sys.setprofile(old_profile)
                ACTIVE_CALL.reset(token)
                if measure_memory:
                    run.peak_bytes = max(tracemalloc.get_traced_memory()[1], run.remote_peak)
                    if not was_tracing:
                        tracemalloc.stop()
    except NotImplementedError as exc:
        raise CheckFailed(
            f"{name} is not implemented yet: replace `raise NotImplementedError()` with your code."
        ) from exc
    except Exception as exc:
        hint = ""
        if "broadcast" in str(exc):
            hint = (
                "\nHint: a shape mismatch in broadcasting usually means a sum or max without "
                "keepdims=True (or over the wrong axis)."
            )
        raise CheckFailed(
            f"{name} raised {type(exc).__name__} on probe {probe!r}: {exc}{hint}"
        ) from exc
    run.warnings = [str(w.message) for w in caught]
    if run.reference_calls:
        raise CheckFailed(
            f"{name} is wrong on probe {probe!r}.\n"
            + MISTAKES["reference-call"].describe()
            + f"\nCalled: {', '.join(sorted(run.reference_calls))}"
        )
    return run


def _as_floats(name: str, value: Any, probe: str, what: str = "result") -> np.ndarray:
    """Convert a student's result to a plain float64 ndarray, or fail with a clear message.

    Never calls the object's comparison operators; ndarray subclasses become plain ndarrays.
    """
    if value is None:
        raise CheckFailed(f"{name} returned None on probe {probe!r}: did you forget `return`?")
    if isinstance(value, (str, bytes)):
        raise CheckFailed(
            f"{name} returned a string on probe {probe!r}, not numbers: {value!r:.60}"
        )
    try:
        arr = np.asarray(value)
    except Exception as exc:
        raise CheckFailed(
            f"{name} returned a {type(value).__name__} as its {what} on probe {probe!r}, "
            f"which is not an array of numbers ({exc})."
        ) from exc
    kind = arr.dtype.kind
    if kind == "c":
        raise CheckFailed(f"{name} returned complex numbers as its {what} on probe {probe!r}.")
    if kind == "b":
        raise CheckFailed(
            f"{name} returned booleans as its {what} on probe {probe!r}, not numbers."
        )
    if kind not in "fiu":
        raise CheckFailed(
            f"{name} returned a {type(value).__name__} (dtype {arr.dtype}) as its {what} on probe "
            f"{probe!r}, which is not an array of real numbers."
        )
    return np.array(arr, dtype=np.float64, copy=True).view(np.ndarray)


def _mismatch(got: np.ndarray, expected: np.ndarray, rtol: float, atol: float):
    """Return None if got matches expected, else (index, expected, got) of the worst entry."""
    if got.shape != expected.shape:
        return "shape"
    close = np.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=False)
    if close.all():
        return None
    with np.errstate(invalid="ignore"):
        err = np.abs(got - expected)
    err = np.where(np.isnan(err), np.inf, err)
    err = np.where(close, -1.0, err)
    flat = int(np.argmax(err))
    idx = np.unravel_index(flat, expected.shape) if expected.ndim else ()
    return idx, expected[idx], got[idx]


def _matches(got: np.ndarray, candidate: np.ndarray, rtol: float, atol: float) -> bool:
    return got.shape == candidate.shape and bool(
        np.isclose(got, candidate, rtol=rtol, atol=atol, equal_nan=True).all()
    )


def _fmt(a: np.ndarray) -> str:
    return np.array2string(np.asarray(a), precision=6, max_line_width=90, threshold=20)


# ----------------------------------------------------------------------------- the probe engine


@dataclass
class _Probe:
    label: str
    args: tuple
    expected: np.ndarray
    show: str = ""  # how to show the input in a message


@dataclass
class _Candidate:
    keys: tuple[str, ...]
    fn: Callable[..., np.ndarray]


def _quiet(fn: Callable, *args) -> np.ndarray | None:
    """Evaluate a mistake candidate; None when it is undefined for these inputs."""
    try:
        with np.errstate(all="ignore"):
            out = fn(*args)
    except (ValueError, IndexError):
        return None
    return None if out is None else np.asarray(out, dtype=np.float64)


def _run_probes(
    name: str,
    fn: Callable,
    probes: list[_Probe],
    candidates: list[_Candidate],
    section: str,
    *,
    rtol: float = 1e-7,
    atol: float = 1e-12,
    extract: Callable[[Any, str], np.ndarray] | None = None,
    warning_mistakes: tuple[tuple[str, str], ...] = (),
    allow: tuple[str, ...] = (),
) -> Passed:
    """Run every probe; on the first wrong answer, diagnose it and raise CheckFailed."""

    def result_of(probe: _Probe) -> tuple[np.ndarray, _Run]:
        copies = tuple(np.copy(a) if isinstance(a, np.ndarray) else a for a in probe.args)
        run = _call(name, fn, copies, probe.label, allow=allow)
        for before, after in zip(probe.args, copies, strict=True):
            if isinstance(before, np.ndarray) and not np.array_equal(before, after, equal_nan=True):
                raise CheckFailed(
                    f"{name} is wrong on probe {probe.label!r}.\n"
                    + MISTAKES["mutated-input"].describe()
                )
        got = (
            extract(run.value, probe.label) if extract else _as_floats(name, run.value, probe.label)
        )
        return got, run

    outputs: list[np.ndarray | None] = []
    for i, probe in enumerate(probes):
        got, run = result_of(probe)
        bad = _mismatch(got, probe.expected, rtol, atol)
        if bad is None:
            outputs.append(got)
            continue
        # Wrong: collect the answers on the remaining probes too, for a sharper diagnosis.
        outputs.append(got)
        for later in probes[i + 1 :]:
            try:
                outputs.append(result_of(later)[0])
            except CheckFailed:
                outputs.append(None)
        mistake_keys = _diagnose(got, probe, probes, outputs, candidates, rtol, atol)
        if not mistake_keys:
            for needle, key in warning_mistakes:
                if any(needle in w for w in run.warnings) and not np.isfinite(got).all():
                    mistake_keys = (key,)
                    break
        raise CheckFailed(_message(name, probe, got, bad, mistake_keys, section, run.warnings))
    return Passed(name, len(probes))


def _diagnose(got, probe, probes, outputs, candidates, rtol, atol) -> tuple[str, ...]:
    """Keys of the first candidate that reproduces the student's answers.

    First on every probe the student answered, then (weaker) on the failing probe alone.
    """

    def agrees(cand: _Candidate, pr: _Probe, out: np.ndarray | None) -> bool | None:
        if out is None:
            return None
        value = _quiet(cand.fn, *pr.args)
        if value is None:
            return None
        return _matches(out, value, rtol=max(rtol, 1e-6), atol=max(atol, 1e-9))

    for cand in candidates:
        verdicts = [agrees(cand, pr, out) for pr, out in zip(probes, outputs, strict=False)]
        if agrees(cand, probe, got) and all(v is not False for v in verdicts):
            return cand.keys
    for cand in candidates:
        if agrees(cand, probe, got):
            return cand.keys
    return ()


def _message(name, probe, got, bad, keys, section, caught) -> str:
    lines = [
        f"{name} is wrong on probe {probe.label!r}" + (f": {probe.show}" if probe.show else ".")
    ]
    if keys:
        lines += [MISTAKES[k].describe() for k in keys]
    else:
        lines.append(f"No known mistake matches this answer. Read: {_where(section)}")
    if bad == "shape":
        lines.append(f"Shape: expected {probe.expected.shape}, got {got.shape}.")
    else:
        idx, exp, g = bad
        where = f" at index {tuple(int(i) for i in idx)}" if idx else ""
        lines.append(f"Worst entry{where}: expected {float(exp)!r}, got {float(g)!r}.")
        lines.append(f"Expected:\n{_fmt(probe.expected)}\nGot:\n{_fmt(got)}")
    fp = sorted({w for w in caught if "encountered" in w or "overflow" in w or "divide" in w})
    if fp:
        lines.append("numpy warned: " + "; ".join(fp))
    return "\n".join(lines)


#: softgrad functions a student may call where the exercise is about something else
_ALLOW_SOFTMAX = ("softmax", "log_softmax", "logsumexp")

#: The softgrad functions a student's answer may call, per check: the one list the check itself
#: uses and the grader uses to decide what the grading kernel keeps of softgrad
#: (:mod:`softgrad.grading.confine`). A check not listed allows none.
ALLOWED: dict[str, tuple[str, ...]] = {
    "check_softmax": (),
    "check_log_softmax": (),
    "check_softmax_jacobian": _ALLOW_SOFTMAX,
    "check_log_softmax_jacobian": ("softmax", "logsumexp"),
    "check_softmax_vjp": (),
    "check_cross_entropy_grad": _ALLOW_SOFTMAX,
    "check_numerical_gradient": _ALLOW_SOFTMAX,
    "check_loss_and_grad": _ALLOW_SOFTMAX,
    "check_training": _ALLOW_SOFTMAX,
}


def _ref():
    import softgrad  # imported late: softgrad's numerics are the reference

    return softgrad


# ----------------------------------------------------------------------------- chapter 1: softmax


def _naive_softmax(z, axis=-1):
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def _stable_softmax_np(z, axis=-1):
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _shifted_exp(z):
    return np.exp(z - np.max(z, axis=-1, keepdims=True))


def _softmax_probes(ref: Callable) -> list[_Probe]:
    rng = np.random.default_rng(20261125)
    z_batch = np.round(rng.normal(size=(3, 5)) * 2, 3)
    z_square = np.round(rng.normal(size=(4, 4)) * 2, 3)
    inputs = [  # the square batch comes first: without keepdims it gives wrong numbers, not an error
        ("a vector", np.array([1.0, 2.0, 3.0])),
        ("a square batch of 4 rows of 4 logits", z_square),
        ("a batch of 3 rows of 5 logits", z_batch),
        ("large logits", np.array([1000.0, 1001.0, 1002.0])),
        ("very negative logits", np.array([[-1000.0, -1001.0, -1002.0], [-800.0, -800.0, -801.0]])),
        ("a wide spread of logits", np.array([0.0, -1000.0, 5.0])),
        ("-inf masks", np.array([[0.0, -np.inf, 1.0, 2.0], [3.0, 3.0, -np.inf, -np.inf]])),
    ]
    return [
        _Probe(label, (z,), np.asarray(ref(z), dtype=float), f"z = {_fmt(z)}")
        for label, z in inputs
    ]


def check_softmax(softmax: Callable) -> Passed:
    """Check a student's ``softmax(z)``: along the last axis, any batch shape, stable.

    Probes: a vector, a square batch (4, 4) and a batch (3, 5) (which expose a normalisation
    over the wrong axis or without keepdims), logits 1000 (overflow), -1000 (underflow), and
    -inf masks.
    """
    sg = _ref()
    probes = _softmax_probes(sg.softmax)
    candidates = [
        _Candidate(("softmax-overflow",), _naive_softmax),
        _Candidate(
            ("softmax-underflow",),
            lambda z: np.where(
                z.max(axis=-1, keepdims=True) > 0, _stable_softmax_np(z), _naive_softmax(z)
            ),
        ),
        _Candidate(
            ("softmax-wrong-axis",), lambda z: _stable_softmax_np(z, axis=0) if z.ndim > 1 else None
        ),
        _Candidate(("softmax-sum-all",), lambda z: np.exp(z - z.max()) / np.exp(z - z.max()).sum()),
        _Candidate(
            ("softmax-no-keepdims",), lambda z: _shifted_exp(z) / _shifted_exp(z).sum(axis=-1)
        ),
        _Candidate(("softmax-no-keepdims",), lambda z: _stable_softmax_np(z - z.max(axis=-1))),
        _Candidate(
            ("softmax-not-normalised",), lambda z: np.exp(z - z.max(axis=-1, keepdims=True))
        ),
    ]
    return _run_probes(
        "softmax",
        softmax,
        probes,
        candidates,
        "sec-softmax",
        warning_mistakes=(("overflow", "softmax-overflow"), ("invalid", "softmax-underflow")),
    )


def check_log_softmax(log_softmax: Callable) -> Passed:
    """Check a student's ``log_softmax(z)``: along the last axis, stable, exact for tiny p.

    Besides the softmax probes, the 'wide spread' probe [0, -1000, 5] has a log-probability near
    -1005 whose probability underflows to 0, which exposes log(softmax(z)).
    """
    sg = _ref()
    probes = _softmax_probes(sg.log_softmax)

    def log_of_softmax(z):
        return np.log(_stable_softmax_np(z))

    def lse_no_shift(z):
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))

    candidates = [
        _Candidate(("log-softmax-underflow",), log_of_softmax),
        _Candidate(("softmax-overflow",), lambda z: np.log(_naive_softmax(z))),
        _Candidate(("logsumexp-overflow",), lse_no_shift),
        _Candidate(
            ("softmax-wrong-axis",),
            lambda z: np.log(_stable_softmax_np(z, axis=0)) if z.ndim > 1 else None,
        ),
        _Candidate(("softmax-sum-all",), lambda z: z - z.max() - np.log(np.exp(z - z.max()).sum())),
        _Candidate(
            ("softmax-no-keepdims",),
            lambda z: (
                (z - z.max(-1, keepdims=True))
                - np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1))
            ),
        ),
    ]
    return _run_probes(
        "log_softmax",
        log_softmax,
        probes,
        candidates,
        "sec-softmax",
        warning_mistakes=(
            ("divide by zero", "log-softmax-underflow"),
            ("overflow", "logsumexp-overflow"),
        ),
    )


# ----------------------------------------------------------------------------- chapter 2: Jacobian


def _outer(p):
    return p[..., :, None] * p[..., None, :]


def _diag(p):
    return p[..., :, None] * np.eye(p.shape[-1])


def check_softmax_jacobian(softmax_jacobian: Callable, *, batched: bool = True) -> Passed:
    """Check a student's ``softmax_jacobian(z)`` -> J with J[..., i, j] = d p_i / d z_j.

    With ``batched=False`` only single vectors z of shape (n,) are probed (the loop version).
    Otherwise a batch of shape (2, 3) must give (2, 3, 3); a result whose axes are permuted
    (for instance (3, 3, 2)) is recognised as a wrong batch layout.

    Note: the softmax Jacobian is symmetric, so J and J.T are the same matrix and a transposed
    answer is correct here. Whether rows are outputs is checked on the log-softmax Jacobian
    (:func:`check_log_softmax_jacobian`), which is not symmetric.
    """
    sg = _ref()
    inputs = [
        ("a vector of 3 logits", np.array([1.0, 2.0, 3.0])),
        ("a vector of 4 logits", np.array([0.5, -1.0, 2.0, 0.0])),
        ("large logits", np.array([1000.0, 1001.0, 999.0])),
    ]
    if batched:
        inputs.append(
            ("a batch of 2 rows of 3 logits", np.array([[0.1, 0.7, -0.4], [2.0, -1.0, 0.3]]))
        )
    probes = [
        _Probe(label, (z,), np.asarray(sg.softmax_jacobian(z), dtype=float), f"z = {_fmt(z)}")
        for label, z in inputs
    ]

    def from_p(build):
        return lambda z: build(_stable_softmax_np(z))

    candidates = [
        _Candidate(("jacobian-diagonal-only",), from_p(lambda p: _diag(p * (1 - p)))),
        _Candidate(("jacobian-sign",), from_p(lambda p: _outer(p) - _diag(p))),
        _Candidate(("jacobian-missing-diag",), from_p(lambda p: -_outer(p))),
        _Candidate(
            ("jacobian-dot-not-outer",),
            from_p(lambda p: _diag(p) - np.sum(p * p, -1)[..., None, None]),
        ),
        _Candidate(("jacobian-of-logits",), lambda z: _diag(z) - _outer(z)),
        _Candidate(
            ("softmax-overflow",), lambda z: _diag(_naive_softmax(z)) - _outer(_naive_softmax(z))
        ),
    ]
    return _run_probes(
        "softmax_jacobian",
        softmax_jacobian,
        probes,
        candidates,
        "sec-softmax-jacobian",
        extract=_jacobian_layout("softmax_jacobian", probes),
        allow=_ALLOW_SOFTMAX,
        warning_mistakes=(("overflow", "softmax-overflow"),),
    )


def _jacobian_layout(name: str, probes: list[_Probe]):
    """Accept only the (..., n, n) layout; name a permuted batch layout as such."""
    shapes = {p.label: p.expected for p in probes}

    def extract(value, label):
        got = _as_floats(name, value, label)
        expected = shapes[label]
        if got.shape != expected.shape and got.ndim == expected.ndim == 3:
            for perm in itertools.permutations(range(3)):
                if (
                    perm != (0, 1, 2)
                    and np.transpose(got, np.argsort(perm)).shape == expected.shape
                ):
                    back = np.transpose(got, np.argsort(perm))
                    if _matches(back, expected, 1e-6, 1e-9):
                        raise CheckFailed(
                            f"{name} is wrong on probe {label!r}.\n"
                            + MISTAKES["jacobian-batch-layout"].describe()
                            + f"\nShape: expected {expected.shape}, got {got.shape} (the right "
                            "numbers with the axes in another order)."
                        )
        return got

    return extract


def check_log_softmax_jacobian(log_softmax_jacobian: Callable) -> Passed:
    """Check a student's ``log_softmax_jacobian(z)`` -> J[..., i, j] = d log p_i / d z_j = delta_ij - p_j.

    This Jacobian, I - 1 p^T, is not symmetric, so here a transposed answer (delta_ij - p_i)
    is wrong and recognised.
    """
    sg = _ref()
    inputs = [
        ("a vector of 3 logits", np.array([1.0, 2.0, 3.0])),
        ("a batch of 2 rows of 4 logits", np.array([[0.5, -1.0, 2.0, 0.0], [1.0, 1.0, -3.0, 0.2]])),
        ("large logits", np.array([1000.0, 1001.0, 999.0])),
    ]

    def reference(z):
        p = np.asarray(sg.softmax(z), dtype=float)
        return np.eye(z.shape[-1]) - p[..., None, :]

    probes = [_Probe(label, (z,), reference(z), f"z = {_fmt(z)}") for label, z in inputs]

    def from_p(build):
        return lambda z: build(_stable_softmax_np(z))

    candidates = [
        _Candidate(
            ("jacobian-transposed",), from_p(lambda p: np.eye(p.shape[-1]) - p[..., :, None])
        ),
        _Candidate(("jacobian-diagonal-only",), from_p(lambda p: _diag(1 - p))),
        _Candidate(("jacobian-sign",), from_p(lambda p: p[..., None, :] - np.eye(p.shape[-1]))),
        _Candidate(("jacobian-of-logits",), lambda z: np.eye(z.shape[-1]) - z[..., None, :]),
    ]
    return _run_probes(
        "log_softmax_jacobian",
        log_softmax_jacobian,
        probes,
        candidates,
        "sec-softmax-jacobian",
        extract=_jacobian_layout("log_softmax_jacobian", probes),
        allow=("softmax", "logsumexp"),
        warning_mistakes=(("overflow", "softmax-overflow"),),
    )


# ----------------------------------------------------------------------------- chapter 3: backprop


def check_softmax_vjp(softmax_vjp: Callable, *, n_large: int = 2000) -> Passed:
    """Check a student's ``softmax_vjp(p, g)`` -> dL/dz = p * (g - <g, p>) without forming J.

    ``p`` are probabilities (rows sum to 1), ``g = dL/dp`` the upstream gradient. Probes a
    vector, a square batch (3, 3) and a batch (3, 4), then measures the memory of one call with
    n = ``n_large`` classes: more than n * n * 2 bytes means the n x n Jacobian was formed.
    """
    sg = _ref()
    rng = np.random.default_rng(3)
    inputs = [
        ("a vector", sg.softmax(np.array([1.0, 2.0, 0.5, -1.0])), np.array([0.3, -1.0, 2.0, 0.5])),
        (
            "a square batch of 3 rows of 3 classes",
            sg.softmax(rng.normal(size=(3, 3))),
            rng.normal(size=(3, 3)),
        ),
        (
            "a batch of 3 rows of 4 classes",
            sg.softmax(rng.normal(size=(3, 4))),
            rng.normal(size=(3, 4)),
        ),
    ]
    probes = [
        _Probe(
            label,
            (np.asarray(p, float), g),
            np.asarray(sg.softmax_vjp(p, g), dtype=float),
            f"p = {_fmt(p)}, g = {_fmt(g)}",
        )
        for label, p, g in inputs
    ]

    def right(p, g, axis=-1):
        return p * (g - np.sum(g * p, axis=axis, keepdims=True))

    candidates = [
        _Candidate(("vjp-missing-p",), lambda p, g: g * p - np.sum(g * p, axis=-1, keepdims=True)),
        _Candidate(("vjp-sign",), lambda p, g: -right(p, g)),
        _Candidate(("vjp-diagonal-only",), lambda p, g: g * p * (1 - p)),
        _Candidate(("vjp-wrong-axis",), lambda p, g: right(p, g, axis=0) if p.ndim > 1 else None),
        _Candidate(
            ("vjp-wrong-axis",), lambda p, g: p * (g - np.sum(g * p)) if p.ndim > 1 else None
        ),
        _Candidate(("vjp-wrong-axis",), lambda p, g: p * (g - np.sum(g * p, axis=-1))),
        _Candidate(("vjp-softmax-of-p",), lambda p, g: right(_stable_softmax_np(p), g)),
    ]
    passed = _run_probes("softmax_vjp", softmax_vjp, probes, candidates, "sec-softmax-backprop")

    p = np.full(n_large, 1.0 / n_large)
    g = np.linspace(-1.0, 1.0, n_large)
    run = _call("softmax_vjp", softmax_vjp, (p, g), f"{n_large} classes", measure_memory=True)
    got = _as_floats("softmax_vjp", run.value, f"{n_large} classes")
    if run.peak_bytes > n_large * n_large * 2:
        raise CheckFailed(
            f"softmax_vjp is wrong on probe '{n_large} classes'.\n"
            + MISTAKES["vjp-formed-jacobian"].describe()
            + f"\nPeak memory: {run.peak_bytes / 1e6:.1f} MB; an n x n matrix of float64 for "
            f"n = {n_large} is {8 * n_large * n_large / 1e6:.0f} MB, the answer itself "
            f"{8 * n_large / 1e6:.3f} MB."
        )
    expected = p * (g - g @ p)
    if _mismatch(got, expected, 1e-7, 1e-12) is not None:
        raise CheckFailed(f"softmax_vjp is wrong on probe '{n_large} classes' (uniform p).")
    return Passed("softmax_vjp", passed.n_probes + 1)


# ----------------------------------------------------------------------------- chapter 4: cross-entropy


def _ce_probes(part: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    one_hot = [
        ("one example, one-hot target", np.array([[1.0, 2.0, 0.5]]), np.array([[0.0, 1.0, 0.0]])),
        (
            "one example, large logits",
            np.array([[1000.0, 0.0, -1000.0]]),
            np.array([[0.0, 0.0, 1.0]]),
        ),
    ]
    soft = [
        (
            "one example, soft target summing to 1",
            np.array([[0.2, -1.0, 3.0, 0.5]]),
            np.array([[0.1, 0.2, 0.6, 0.1]]),
        ),
        (
            "one example, class weights summing to 2.5",
            np.array([[0.2, -1.0, 3.0, 0.5]]),
            np.array([[0.5, 0.0, 1.5, 0.5]]),
        ),
    ]
    batch = [
        (
            "a batch of 4 examples with one-hot targets",
            np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 0.0], [-1.0, 3.0, 2.0], [0.3, 0.1, -0.2]]),
            np.eye(3)[[1, 0, 2, 2]],
        ),
        (
            "a batch of 3 examples with class weights",
            np.array([[0.2, -1.0, 3.0, 0.5], [1.0, 1.0, 1.0, 1.0], [2.0, -2.0, 0.0, 0.5]]),
            np.array([[0.5, 0.0, 1.5, 0.5], [0.25, 0.25, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]),
        ),
    ]
    return {"one_hot": one_hot, "soft": one_hot + soft, "batch": one_hot + soft + batch}[part]


def check_cross_entropy_grad(cross_entropy_grad: Callable, *, part: str = "batch") -> Passed:
    """Check a student's ``cross_entropy_grad(z, y)`` -> dL/dz for L = mean over rows of -sum(y log p).

    ``z`` logits and ``y`` targets (class weights), both of shape (N, C). ``part`` selects the
    probes: "one_hot" (single rows with one-hot targets: p - y), "soft" (adds soft targets and
    weights that do not sum to 1: p * sum(y) - y) and "batch" (adds batches: the 1/N of the mean).

    Wrong answers are matched against every combination of a wrong per-row formula (the first
    seed's sum(p*y) - y, the sign flip, p - y for unnormalised targets, logits instead of
    probabilities, softmax over the wrong axis) with a wrong scale (no 1/N, 1/(N*C)).
    """
    if part not in ("one_hot", "soft", "batch"):
        raise ValueError(f"part: expected 'one_hot', 'soft' or 'batch', got {part!r}")
    sg = _ref()
    probes = [
        _Probe(
            label,
            (z, y),
            np.asarray(sg.cross_entropy_grad(z, y, reduction="mean"), dtype=float),
            f"z = {_fmt(z)}, y = {_fmt(y)}",
        )
        for label, z, y in _ce_probes(part)
    ]

    rows = {
        None: lambda z, y: _stable_softmax_np(z) * y.sum(-1, keepdims=True) - y,
        "ce-seed-sum-py": lambda z, y: np.sum(_stable_softmax_np(z) * y, -1, keepdims=True) - y,
        "ce-p-minus-y-unnormalised": lambda z, y: _stable_softmax_np(z) - y,
        "ce-forgot-softmax": lambda z, y: z - y,
        "ce-softmax-wrong-axis": lambda z, y: (
            _stable_softmax_np(z, axis=0) * y.sum(-1, keepdims=True) - y
        ),
    }
    scales = {
        None: lambda z: z.shape[0],
        "ce-missing-mean": lambda z: 1,
        "ce-mean-over-all": lambda z: z.size,
    }
    candidates = []
    for (row_key, row), (scale_key, scale), sign in itertools.product(
        rows.items(), scales.items(), (1, -1)
    ):
        keys = tuple(k for k in (row_key, "ce-sign" if sign < 0 else None, scale_key) if k)
        if keys:
            candidates.append(
                _Candidate(
                    keys, lambda z, y, row=row, scale=scale, sign=sign: sign * row(z, y) / scale(z)
                )
            )
    candidates.sort(key=lambda c: len(c.keys))
    return _run_probes(
        "cross_entropy_grad",
        cross_entropy_grad,
        probes,
        candidates,
        "sec-cross-entropy",
        allow=_ALLOW_SOFTMAX,
        warning_mistakes=(("overflow", "softmax-overflow"), ("invalid", "softmax-overflow")),
    )


# ----------------------------------------------------------------------------- chapter 5: gradient checking


def _probe_function(x):
    return float(np.sum(np.sin(x) * x**2) + 0.5 * np.sum(x) ** 2)


def _probe_gradient(x):
    return np.cos(x) * x**2 + 2 * x * np.sin(x) + np.sum(x)


class _Spy:
    """Wraps f, recording every point it is evaluated at."""

    def __init__(self, f):
        self.f = f
        self.points: list[np.ndarray] = []

    def __call__(self, x):
        self.points.append(np.array(x, dtype=float, copy=True))
        return self.f(np.array(x, dtype=float, copy=True))

    def steps(self, x0: np.ndarray) -> np.ndarray:
        """Largest perturbation applied to each coordinate (0 where none)."""
        if not self.points:
            return np.zeros_like(x0)
        d = np.abs(np.stack([p.reshape(x0.shape) - x0 for p in self.points if p.size == x0.size]))
        return d.max(axis=0)


def check_numerical_gradient(numerical_gradient: Callable, *, scale_test: bool = False) -> Passed:
    """Check a student's ``numerical_gradient(f, x, h=None)``: central differences of a scalar f.

    With an explicit step ``h=1e-3`` the answer must equal the central difference with that step
    (a forward or backward difference, or a missing 1/2, is recognised). With ``h=None`` the
    student's own step must give the gradient to 1e-8 relative accuracy; the evaluation points
    reveal the step, so a step too small or too large is named. ``scale_test=True`` adds
    coordinates near 1e8, where the step must scale with |x_i|.
    """
    name = "numerical_gradient"
    section = "sec-gradient-checking"
    x = np.array([0.5, -1.3, 2.0, 0.1])
    x_matrix = np.array([[0.3, -0.7], [1.1, 2.5]])
    h = 1e-3

    def central(f, x, h, kind="central"):
        g = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            e = np.zeros_like(x)
            e[i] = h
            if kind == "central":
                g[i] = (f(x + e) - f(x - e)) / (2 * h)
            elif kind == "forward":
                g[i] = (f(x + e) - f(x)) / h
            elif kind == "backward":
                g[i] = (f(x) - f(x - e)) / h
            else:
                g[i] = (f(x + e) - f(x - e)) / h
        return g

    probes = [
        _Probe(
            f"f(x) = sum(sin(x) x^2) + sum(x)^2 / 2, h = {h}",
            (_probe_function, x, h),
            central(_probe_function, x, h),
            f"x = {_fmt(x)}",
        ),
        _Probe(
            f"the same f on a 2 x 2 array x, h = {h}",
            (_probe_function, x_matrix, h),
            central(_probe_function, x_matrix, h),
            f"x = {_fmt(x_matrix)}",
        ),
    ]
    candidates = [
        _Candidate(("gc-forward-difference",), lambda f, x, h: central(f, x, h, "forward")),
        _Candidate(("gc-backward-difference",), lambda f, x, h: central(f, x, h, "backward")),
        _Candidate(("gc-missing-half",), lambda f, x, h: central(f, x, h, "double")),
    ]
    passed = _run_probes(
        name,
        numerical_gradient,
        probes,
        candidates,
        section,
        rtol=1e-6,
        atol=1e-9,
        allow=_ALLOW_SOFTMAX,
    )

    own = [("h=None (your own step)", x, _probe_function, _probe_gradient, 1e-7, 1e-8)]
    if scale_test:
        own.append(
            (
                "h=None, f(x) = sum(log(x^2)) at coordinates near 1e8",
                np.array([1.0e8, -3.0e7, 2.0]),
                lambda v: float(np.sum(np.log(v**2))),
                lambda v: 2.0 / v,
                1e-6,
                0.0,
            )
        )
    for label, x0, f, grad, rtol, atol in own:
        spy = _Spy(f)
        x_arg = x0.copy()
        run = _call(name, numerical_gradient, (spy, x_arg, None), label, allow=_ALLOW_SOFTMAX)
        if not np.array_equal(x_arg, x0):
            raise CheckFailed(
                f"{name} is wrong on probe {label!r}.\n" + MISTAKES["mutated-input"].describe()
            )
        got = _as_floats(name, run.value, label)
        expected = grad(x0)
        bad = _mismatch(got, expected, rtol=rtol, atol=atol)
        if bad is None:
            continue
        steps = spy.steps(x0)
        rel_steps = steps / np.maximum(1.0, np.abs(x0))
        if x0.max() > 1e6 and (steps[:2] < 1.0).all():
            keys = ("gc-step-not-scaled",)
        elif rel_steps.min() < 1e-7:
            keys = ("gc-step-too-small",)
        elif rel_steps.max() > 1e-4:
            keys = ("gc-step-too-large",)
        else:
            keys = ()
        probe = _Probe(
            label, (), expected, f"x = {_fmt(x0)}; your step per coordinate: {_fmt(steps)}"
        )
        raise CheckFailed(_message(name, probe, got, bad, keys, section, run.warnings))
    return Passed(name, passed.n_probes + len(own))


# ----------------------------------------------------------------------------- chapter 6: training


def _blobs(seed: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian blobs in 2-D, 40 points each: a linear softmax classifier separates them."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 3.0], [-3.0, -2.0], [3.0, -2.0]])
    labels = np.repeat(np.arange(3), 40)
    X = centres[labels] + rng.normal(size=(labels.size, 2))
    return X, labels


def check_loss_and_grad(loss_and_grad: Callable) -> Passed:
    """Check a student's ``loss_and_grad(W, b, X, labels)`` -> (loss, dW, db).

    The model is z = X @ W + b with W of shape (D, C) and b of shape (C,); the loss is the mean
    cross-entropy over the N rows of X with integer ``labels``. A wrong dW is matched against
    X.T @ G for each catalogued cross-entropy mistake G.
    """
    sg = _ref()
    name = "loss_and_grad"
    rng = np.random.default_rng(60)
    X = np.round(rng.normal(size=(6, 3)), 3)
    labels = np.array([0, 2, 1, 3, 2, 0])
    W = np.round(rng.normal(size=(3, 4)) * 0.5, 3)
    b = np.array([0.1, -0.2, 0.0, 0.3])
    z = X @ W + b
    loss = float(sg.cross_entropy(z, labels))
    dz = np.asarray(sg.cross_entropy_grad(z, labels), dtype=float)
    dW, db = X.T @ dz, dz.sum(axis=0)
    label = "X of shape (6, 3), W (3, 4), b (4,), 4 classes"
    run = _call(
        name,
        loss_and_grad,
        (W.copy(), b.copy(), X.copy(), labels.copy()),
        label,
        allow=_ALLOW_SOFTMAX,
    )
    value = run.value
    if not isinstance(value, tuple) or len(value) != 3:
        raise CheckFailed(
            f"{name} must return a tuple (loss, dW, db), got {type(value).__name__} {value!r:.80}"
        )
    got_loss = _as_floats(name, value[0], label, "loss")
    got_dW = _as_floats(name, value[1], label, "dW")
    got_db = _as_floats(name, value[2], label, "db")
    Y = np.eye(4)[labels]
    N = X.shape[0]

    def fail(what, got, expected, keys):
        bad = _mismatch(got, expected, 1e-7, 1e-12)
        probe = _Probe(f"{label} ({what})", (), expected, "")
        raise CheckFailed(
            _message(name, probe, got, bad, keys, "sec-putting-together", run.warnings)
        )

    if got_loss.size != 1:
        raise CheckFailed(
            f"{name}: the loss must be one number (the mean over rows), got shape {got_loss.shape}."
        )
    got_loss = got_loss.reshape(())
    if _mismatch(got_loss, np.array(loss), 1e-7, 1e-12) is not None:
        keys = ("train-loss-sum",) if np.isclose(got_loss, loss * N) else ()
        fail("loss", got_loss, np.array(loss), keys)
    if got_dW.shape == dW.T.shape and got_dW.shape != dW.shape:
        fail("dW", got_dW, dW, ("train-grad-shape",))
    if _mismatch(got_dW, dW, 1e-7, 1e-12) is not None:
        p = _stable_softmax_np(z)
        variants = {
            ("ce-sign",): Y - p,
            ("ce-missing-mean",): (p - Y) * N,
            ("ce-sign", "ce-missing-mean"): (Y - p) * N,
            ("ce-seed-sum-py",): np.sum(p * Y, -1, keepdims=True) - Y,
            ("ce-forgot-softmax",): z - Y,
            ("ce-mean-over-all",): (p - Y) * N / z.size,
        }
        keys = next(
            (k for k, G in variants.items() if _matches(got_dW, X.T @ (G / N), 1e-6, 1e-9)), ()
        )
        fail("dW", got_dW, dW, keys)
    if _mismatch(got_db, db, 1e-7, 1e-12) is not None:
        keys = ("train-db-double-mean",) if _matches(got_db, db / N, 1e-6, 1e-9) else ()
        fail("db", got_db, db, keys)
    return Passed(name, 1)


def check_training(train: Callable, *, min_accuracy: float = 0.9) -> Passed:
    """Check a student's ``train(X, labels, n_classes)`` -> (W, b, losses) on three 2-D blobs.

    The final parameters must classify at least ``min_accuracy`` of the 120 training points,
    and the recorded losses (one per step) must be finite and end below where they started.
    """
    name = "train"
    X, labels = _blobs()
    label = "three 2-D Gaussian blobs, 120 points"
    run = _call(name, train, (X.copy(), labels.copy(), 3), label, allow=_ALLOW_SOFTMAX)
    value = run.value
    if not isinstance(value, tuple) or len(value) != 3:
        raise CheckFailed(
            f"{name} must return a tuple (W, b, losses), got {type(value).__name__} {value!r:.80}"
        )
    W = _as_floats(name, value[0], label, "W")
    b = _as_floats(name, value[1], label, "b")
    losses = _as_floats(name, value[2], label, "losses").reshape(-1)
    if W.shape != (2, 3) or b.shape != (3,):
        raise CheckFailed(
            f"{name}: expected W of shape (2, 3) and b of shape (3,), got {W.shape} and {b.shape}."
        )
    diverged = MISTAKES["train-diverged"].describe()
    if losses.size < 2:
        raise CheckFailed(
            f"{name}: losses must hold the loss of every step, got {losses.size} value(s)."
        )
    if not np.isfinite(losses).all() or not np.isfinite(W).all() or losses[-1] >= losses[0]:
        raise CheckFailed(
            f"{name} is wrong on probe {label!r}.\n{diverged}\n"
            f"Loss at the first step {losses[0]!r}, at the last {losses[-1]!r}."
        )
    accuracy = float(np.mean(np.argmax(X @ W + b, axis=1) == labels))
    if accuracy < min_accuracy:
        raise CheckFailed(
            f"{name}: the trained classifier gets {accuracy:.0%} of the training points right; "
            f"at least {min_accuracy:.0%} are expected. Train for more steps or with a larger lr, "
            f"and check your gradient. Read: {_where('sec-putting-together')}"
        )
    return Passed(name, 1)


# ----------------------------------------------------------------------------- hidden tests


def check_matches(
    fn: Callable,
    reference: Callable,
    inputs: list,
    *,
    section: str,
    name: str | None = None,
    rtol: float = 1e-7,
    atol: float = 1e-12,
    allow: tuple[str, ...] = (),
) -> Passed:
    """Compare ``fn(*args)`` with ``reference(*args)`` for each ``args`` in ``inputs``.

    For the hidden tests: extra shapes and values, with the same plain-float conversion and
    messages as the other checks but no diagnosis. An element of ``inputs`` that is not a tuple
    is passed as the only argument. ``section`` is the book section to point to.

    Examples
    --------
    >>> import numpy as np, softgrad
    >>> check_matches(np.tanh, np.tanh, [np.zeros(3)], section="sec-softmax")
    tanh: passed 1 probe
    """
    if section not in SECTIONS:
        raise ValueError(f"section: expected one of {sorted(SECTIONS)}, got {section!r}")
    name = name or getattr(fn, "__name__", "your function")
    probes = []
    for i, item in enumerate(inputs):
        args = item if isinstance(item, tuple) else (item,)
        args = tuple(
            np.asarray(a, dtype=float) if isinstance(a, (list, np.ndarray)) else a for a in args
        )
        shapes = ", ".join(str(np.shape(a)) for a in args if isinstance(a, np.ndarray))
        probes.append(
            _Probe(
                f"hidden probe {i + 1} (shapes {shapes})",
                args,
                np.asarray(reference(*args), dtype=float),
            )
        )
    return _run_probes(name, fn, probes, [], section, rtol=rtol, atol=atol, allow=allow)


# ----------------------------------------------------------------------------- chapter 9: framework conventions
# (issue 11: the weighted mean and ignore_index of exercise 7; this section only adds to the
# catalogue, the section list, ALLOWED and __all__ above.)

for _label in ("", "-logits", "-weight", "-ignore-index"):
    SECTIONS[f"sec-frameworks{_label}"] = "09_frameworks"
del _label

MISTAKES.update(
    _catalogue(
        Mistake(
            "fw-divisor-n",
            "divided the weighted sum by N, the number of rows: PyTorch's weighted mean divides by "
            "the sum of the weights of the counted rows' labels, W = sum_r w[c_r].",
            "divide by W = (weight[labels] * keep).sum(), where keep marks the rows that count.",
            "sec-frameworks-weight",
        ),
        Mistake(
            "fw-divisor-count",
            "divided by the number of counted rows instead of the sum of their label weights: with "
            "class weights the mean is a weighted average, sum_r w[c_r] l_r / sum_r w[c_r].",
            "divide by W = (weight[labels] * keep).sum(), not by keep.sum().",
            "sec-frameworks-weight",
        ),
        Mistake(
            "fw-weight-missing",
            "left the class weight out of the rows' losses: row r's term is w[c_r] times its loss.",
            "multiply each row's loss (and its gradient p - e_c) by weight[labels[r]].",
            "sec-frameworks-weight",
        ),
        Mistake(
            "fw-ignored-rows-counted",
            "counted the ignored rows (labels equal to ignore_index) as rows of some class: they got "
            "a loss, a gradient and a share of the divisor, so padding is trained like a token.",
            "mask them: keep = labels != ignore_index; their loss and gradient are 0 and they are "
            "left out of the divisor.",
            "sec-frameworks-ignore-index",
        ),
        Mistake(
            "fw-ignored-in-divisor",
            "gave the ignored rows a zero loss and gradient but still counted them in the divisor, "
            "which shrinks the result of a batch with much padding.",
            "sum the divisor over the rows that count only: W = (weight[labels] * keep).sum().",
            "sec-frameworks-ignore-index",
        ),
        Mistake(
            "fw-softmax-twice",
            "applied softmax to the logits twice (softmax of the probabilities, as a model with a "
            "softmax layer in front of F.cross_entropy does): the function receives logits.",
            "compute p = softmax(z) once from the logits z, and use p - e_c.",
            "sec-frameworks-logits",
        ),
        Mistake(
            "fw-all-ignored-nan",
            "returned NaN for a batch whose every row is ignored: W = 0 and 0/0 is NaN. The gradient "
            "of such a batch is 0 (nothing counts); only PyTorch's mean loss is NaN.",
            "return zeros when W == 0 (for example divide by W only if W > 0).",
            "sec-frameworks-ignore-index",
        ),
    )
)

ALLOWED["check_weighted_cross_entropy"] = _ALLOW_SOFTMAX
ALLOWED["check_weighted_cross_entropy_grad"] = _ALLOW_SOFTMAX
__all__ += ["check_weighted_cross_entropy", "check_weighted_cross_entropy_grad"]


def _fw_candidate(z, labels, weight, ignore_index=-100, *, rows, weighted, ignored, divisor, loss):
    """A weighted-mean loss or gradient, right or with the named mistakes (numpy, no softgrad).

    rows: "right", "twice" (p = softmax(softmax(z))), "twice-chain" (the true gradient of the
    loss of softmax(z)), "sign"; ignored: "right", "counted" (label -> class 0, counted),
    "in-divisor"; divisor: "W", "N", "count".
    """
    z = np.asarray(z, dtype=np.float64)
    labels = np.asarray(labels)
    w = np.asarray(weight, dtype=np.float64)
    N, C = z.shape
    keep = labels != ignore_index
    lab = np.where(keep, labels, 0)
    onehot = np.eye(C)[lab]
    counted = np.ones(N, bool) if ignored == "counted" else keep  # rows with a loss
    in_divisor = keep if ignored == "right" else np.ones(N, bool)
    a = w[lab] if weighted else np.ones(N)
    D = {"W": (w[lab] * in_divisor).sum(), "N": N, "count": in_divisor.sum()}[divisor]
    p = _stable_softmax_np(z)
    if rows in ("twice", "twice-chain"):
        q = _stable_softmax_np(p)
        if loss:
            per_row = -np.log(q[np.arange(N), lab])
        elif rows == "twice":
            per_row = q - onehot
        else:  # J(z) (q - e_c): the chain rule through the first softmax
            g = q - onehot
            per_row = p * (g - (g * p).sum(axis=1, keepdims=True))
    else:
        logp = z - z.max(axis=1, keepdims=True)
        logp = logp - np.log(np.exp(logp).sum(axis=1, keepdims=True))
        per_row = -logp[np.arange(N), lab] if loss else p - onehot
        if rows == "sign":
            per_row = -per_row
    scale = a * counted
    if loss:
        return (scale * per_row).sum() / D
    return scale[:, None] * per_row / D


def _fw_candidates(loss: bool) -> list[_Candidate]:
    out = []
    for rows, weighted, ignored, divisor in itertools.product(
        ("right", "twice", "twice-chain", "sign"),
        (True, False),
        ("right", "counted", "in-divisor"),
        ("W", "N", "count"),
    ):
        if loss and rows in ("sign", "twice-chain"):
            continue  # the loss has no sign to flip; "twice" is the loss of softmax twice
        keys = tuple(
            key
            for key, on in (
                ("fw-softmax-twice", rows in ("twice", "twice-chain")),
                ("ce-sign", rows == "sign"),
                ("fw-weight-missing", not weighted),
                ("fw-ignored-rows-counted", ignored == "counted"),
                ("fw-ignored-in-divisor", ignored == "in-divisor"),
                ("fw-divisor-n", divisor == "N"),
                ("fw-divisor-count", divisor == "count"),
            )
            if on
        )
        if keys:
            kw = {"rows": rows, "weighted": weighted, "ignored": ignored, "divisor": divisor}
            out.append(_Candidate(keys, lambda *args, kw=kw: _fw_candidate(*args, **kw, loss=loss)))
    if not loss:  # the right formula without a guard for W == 0
        out.append(
            _Candidate(
                ("fw-all-ignored-nan",),
                lambda *args: _fw_candidate(
                    *args, rows="right", weighted=True, ignored="right", divisor="W", loss=False
                ),
            )
        )
    out.sort(key=lambda c: len(c.keys))
    return out


def _fw_probes(part: str, loss: bool) -> list[tuple]:
    """(label, z, labels, weight, ignore_index or None) for the weighted-mean checks."""
    z4 = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 1.5], [-1.0, 3.0, 2.0], [0.3, 0.1, -0.2]])
    z6 = np.array(
        [
            [0.5, -1.0, 2.0, 0.3],
            [1.5, 0.2, -0.3, 0.0],
            [-2.0, 0.4, 0.1, 3.0],
            [0.0, 0.0, 1.0, -1.0],
            [2.0, 1.0, 0.0, -1.0],
            [0.7, -0.4, 0.2, 0.9],
        ]
    )
    weights = [
        ("no class weights, no ignored rows", z4, np.array([1, 0, 2, 2]), np.ones(3), None),
        ("class weights [1, 2, 0.5]", z4, np.array([1, 0, 2, 2]), np.array([1.0, 2.0, 0.5]), None),
        (
            "class weights [1, 3, 0.5, 2], 6 rows",
            z6,
            np.array([1, 3, 0, 1, 2, 1]),
            np.array([1.0, 3.0, 0.5, 2.0]),
            None,
        ),
    ]
    padding = [
        (
            "two rows labelled -100, no class weights",
            z6,
            np.array([1, -100, 0, -100, 2, 3]),
            np.ones(4),
            None,
        ),
        (
            "rows labelled -100 and class weights [1, 3, 0.5, 2]",
            z6,
            np.array([1, -100, 0, 3, -100, 1]),
            np.array([1.0, 3.0, 0.5, 2.0]),
            None,
        ),
        (
            "ignore_index=-1 (not the default), class weights",
            z4,
            np.array([-1, 0, 2, 1]),
            np.array([1.0, 2.0, 0.5]),
            -1,
        ),
        (
            "large logits, class weights, a row labelled -100",
            np.array([[1000.0, 0.0, -1000.0], [0.0, 800.0, 0.0], [5.0, 5.0, 5.0]]),
            np.array([2, -100, 1]),
            np.array([1.0, 2.0, 0.5]),
            None,
        ),
    ]
    every_row_ignored = [
        ("every row labelled -100", z4[:2], np.array([-100, -100]), np.array([1.0, 2.0, 0.5]), None)
    ]
    probes = {"weights": weights, "padding": padding, "all": weights + padding}[part]
    return probes if loss else probes + (every_row_ignored if part != "weights" else [])


def _fw_run(name, fn, part, loss):
    if part not in ("weights", "padding", "all"):
        raise ValueError(f"part: expected 'weights', 'padding' or 'all', got {part!r}")
    sg = _ref()
    probes = []
    for label, z, labels, w, ii in _fw_probes(part, loss):
        args = (z, labels, w) if ii is None else (z, labels, w, ii)
        kw = {"weight": w, "ignore_index": -100 if ii is None else ii}
        if loss:
            expected = np.asarray(sg.cross_entropy(z, labels, **kw), dtype=float)
        else:
            expected = np.asarray(sg.cross_entropy_grad(z, labels, **kw), dtype=float)
        shown = f"z = {_fmt(z)}, labels = {_fmt(labels)}, weight = {_fmt(w)}"
        probes.append(_Probe(label, args, expected, shown + ("" if ii is None else f", {ii=}")))
    return _run_probes(
        name,
        fn,
        probes,
        _fw_candidates(loss),
        "sec-frameworks",
        allow=_ALLOW_SOFTMAX,
        warning_mistakes=(("overflow", "softmax-overflow"), ("invalid", "softmax-overflow")),
    )


def check_weighted_cross_entropy(weighted_cross_entropy: Callable, *, part: str = "all") -> Passed:
    """Check a student's ``weighted_cross_entropy(z, labels, weight, ignore_index=-100)``.

    The loss is PyTorch's ``F.cross_entropy(z, labels, weight=weight, ignore_index=...)`` with
    ``reduction="mean"``: ``sum_r keep_r w[c_r] l_r / sum_r keep_r w[c_r]`` with
    ``l_r = -log softmax(z_r)[c_r]`` and ``keep_r = labels[r] != ignore_index``. ``part`` selects
    the probes: "weights" (class weights, nothing ignored), "padding" (rows labelled -100, a
    non-default ignore_index, large logits) or "all". Wrong answers are matched against every
    combination of the wrong divisor (N, or the count of rows), the missing weight, ignored rows
    counted (as class 0, or in the divisor only) and softmax applied twice.

    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import log_softmax
    >>> def weighted_cross_entropy(z, labels, weight, ignore_index=-100):
    ...     keep = labels != ignore_index
    ...     lab = np.where(keep, labels, 0)
    ...     a = weight[lab] * keep
    ...     return -(a * log_softmax(z)[np.arange(len(lab)), lab]).sum() / a.sum()
    >>> check_weighted_cross_entropy(weighted_cross_entropy)
    weighted_cross_entropy: passed 7 probes
    """
    return _fw_run("weighted_cross_entropy", weighted_cross_entropy, part, loss=True)


def check_weighted_cross_entropy_grad(
    weighted_cross_entropy_grad: Callable, *, part: str = "all"
) -> Passed:
    """Check a student's ``weighted_cross_entropy_grad(z, labels, weight, ignore_index=-100)``.

    The gradient of :func:`check_weighted_cross_entropy`'s loss: row r is
    ``keep_r w[c_r] (p_r - e_{c_r}) / W`` with ``W = sum_r keep_r w[c_r]``, and 0 everywhere when
    ``W == 0`` (every row ignored). ``part`` as there; "padding" and "all" add the batch whose
    every row is ignored. Mistakes as there, plus the sign flip and NaN for the empty batch.

    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import softmax
    >>> def weighted_cross_entropy_grad(z, labels, weight, ignore_index=-100):
    ...     keep = labels != ignore_index
    ...     lab = np.where(keep, labels, 0)
    ...     a = weight[lab] * keep
    ...     W = a.sum()
    ...     g = a[:, None] * (softmax(z) - np.eye(z.shape[1])[lab])
    ...     return g / W if W > 0 else np.zeros_like(g)
    >>> check_weighted_cross_entropy_grad(weighted_cross_entropy_grad)
    weighted_cross_entropy_grad: passed 8 probes
    """
    return _fw_run("weighted_cross_entropy_grad", weighted_cross_entropy_grad, part, loss=False)
