"""Feedback for the graded exercises: run a student's function on probe inputs and name the mistake.

Each ``check_*`` function calls the student's function on fixed probe inputs, converts every
result to a plain float ndarray (so an object whose ``__eq__`` always says True cannot pass), and
compares it with softgrad's reference implementation. A wrong answer gets a message that says
what is wrong, on which probe, how to fix it, and where the exercise's chapter explains it.

**The diagnosis rule.** A catalogued mistake (:data:`MISTAKES`) is named only when it explains
the student's answers: on every probe the student answered, the mistake's prediction agrees with
the answer, and on every probe where the answer is wrong, the mistake predicts that wrong value
and not the right one (a mistake that makes no difference on a probe cannot explain an error
there). Otherwise the report is generic, and says how large the difference is, relative to the
precision of float64 ("right to about 7 significant digits: a float32 step, or an epsilon?").

**What a student may call.** :data:`ALLOWED` lists, for each check, the softgrad functions that
the student's answer may call (the exercise is to write the rest with NumPy); a call into any
other softgrad function fails the check. The hidden tests use the same lists
(``check_matches(..., check="check_softmax")``).

Examples
--------
>>> import numpy as np
>>> from softgrad.checks import check_softmax
>>> def softmax(z):
...     z = np.asarray(z, dtype=float)
...     e = np.exp(z - z.max(axis=-1, keepdims=True))  # the shift keeps exp from overflowing
...     return e / e.sum(axis=-1, keepdims=True)
>>> check_softmax(softmax)
softmax: passed 10 probes
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
import math
import os
import re
import sys
import tracemalloc
import warnings
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "ALLOWED",
    "MISTAKES",
    "SECTIONS",
    "CheckFailed",
    "Mistake",
    "Passed",
    "check_cross_entropy",
    "check_cross_entropy_grad",
    "check_directional_error",
    "check_gradient_error",
    "check_log_softmax",
    "check_log_softmax_jacobian",
    "check_loss_and_grad",
    "check_matches",
    "check_numerical_gradient",
    "check_softmax",
    "check_softmax_jacobian",
    "check_softmax_vjp",
    "check_training",
    "read_line",
]


class CheckFailed(AssertionError):
    """A student's function gave a wrong answer, a non-numeric answer, or raised."""


# ----------------------------------------------------------------------------- the book

#: every section a message may point to: label -> (chapter file, section title)
SECTIONS: dict[str, tuple[str, str]] = {
    "sec-softmax": ("01_softmax", "Softmax"),
    "sec-softmax-definition": ("01_softmax", "Definition"),
    "sec-softmax-logsumexp": ("01_softmax", "Overflow and the log-sum-exp trick"),
    "sec-softmax-jacobian": ("02_softmax_jacobian", "The softmax Jacobian"),
    "sec-softmax-jacobian-definition": ("02_softmax_jacobian", "What the Jacobian is"),
    "sec-softmax-jacobian-derivation": ("02_softmax_jacobian", "The derivation in indices"),
    "sec-softmax-jacobian-matrix": ("02_softmax_jacobian", "The matrix form"),
    "sec-softmax-backprop": ("03_softmax_backprop", "Backpropagation through softmax"),
    "sec-softmax-backprop-vjp": ("03_softmax_backprop", "The softmax VJP"),
    "sec-softmax-backprop-seed": ("03_softmax_backprop", "The second seed question, step by step"),
    "sec-softmax-backprop-cost": ("03_softmax_backprop", "What the Jacobian would cost"),
    "sec-softmax-backprop-batch": ("03_softmax_backprop", "Batches, and a broadcasting trap"),
    "sec-cross-entropy": ("04_cross_entropy", "Cross-entropy meets softmax"),
    "sec-cross-entropy-seed": ("04_cross_entropy", "Where the classic derivation goes wrong"),
    "sec-cross-entropy-derivation": ("04_cross_entropy", "The correct derivation, three ways"),
    "sec-cross-entropy-general-target": ("04_cross_entropy", "Why p - y needs sum(y) = 1"),
    "sec-cross-entropy-batch": ("04_cross_entropy", "A batch: where the 1/N comes from"),
    "sec-cross-entropy-sign": ("04_cross_entropy", "The sign: p - y, not y - p"),
    "sec-cross-entropy-log-softmax": (
        "04_cross_entropy",
        "Computing the loss: log_softmax, not log(softmax)",
    ),
    "sec-gradient-checking": ("05_gradient_checking", "Checking gradients numerically"),
    "sec-gradient-checking-differences": (
        "05_gradient_checking",
        "Finite differences and their truncation error",
    ),
    "sec-gradient-checking-step": (
        "05_gradient_checking",
        "Truncation against round-off: choosing the step",
    ),
    "sec-gradient-checking-relative-error": ("05_gradient_checking", "Relative error"),
    "sec-gradient-checking-directions": (
        "05_gradient_checking",
        "Checking along random directions",
    ),
    "sec-putting-together": ("06_putting_it_together", "Putting it together"),
    "sec-putting-together-linear": ("06_putting_it_together", "A linear softmax classifier"),
    "sec-putting-together-training": ("06_putting_it_together", "Training by gradient descent"),
}

#: where the chapters are from an exercise notebook (exercises/{source,release}/<ex>/<ex>.ipynb),
#: in the course kit as in the built book (whose exercise pages sit at the same depth)
CHAPTERS_FROM_EXERCISE = "../../../chapters/"


def read_line(label: str) -> str:
    """The "Read:" line for a section: its chapter, title and link from the exercise notebook.

    Examples
    --------
    >>> print(read_line("sec-softmax-logsumexp"))
    Read: chapter 1, "Overflow and the log-sum-exp trick": ../../../chapters/01_softmax.ipynb#sec-softmax-logsumexp
    """
    chapter, title = SECTIONS[label]
    return (
        f'Read: chapter {int(chapter[:2])}, "{title}": '
        f"{CHAPTERS_FROM_EXERCISE}{chapter}.ipynb#{label}"
    )


@dataclass(frozen=True)
class Mistake:
    """One catalogued mistake: what the student did, how to fix it, where the book explains it.

    ``section`` is None for mistakes that belong to no chapter in particular (changing the
    input, calling softgrad): they point to the section of the check that finds them.
    """

    key: str
    what: str
    fix: str
    section: str | None = None

    def describe(self, section: str | None = None) -> str:
        return (
            f"Likely mistake [{self.key}]: {self.what}\n"
            f"How to fix: {self.fix}\n"
            f"{read_line(section or self.section or 'sec-softmax')}"
        )


def _catalogue(*mistakes: Mistake) -> dict[str, Mistake]:
    return {m.key: m for m in mistakes}


_DEF, _LSE = "sec-softmax-definition", "sec-softmax-logsumexp"
_JDEF, _JDER, _JMAT = (
    "sec-softmax-jacobian-definition",
    "sec-softmax-jacobian-derivation",
    "sec-softmax-jacobian-matrix",
)
_VJP, _SEED2, _COST, _VBATCH = (
    "sec-softmax-backprop-vjp",
    "sec-softmax-backprop-seed",
    "sec-softmax-backprop-cost",
    "sec-softmax-backprop-batch",
)
_CESEED, _CEDER, _CEGEN, _CEBATCH, _CESIGN, _CELOG = (
    "sec-cross-entropy-seed",
    "sec-cross-entropy-derivation",
    "sec-cross-entropy-general-target",
    "sec-cross-entropy-batch",
    "sec-cross-entropy-sign",
    "sec-cross-entropy-log-softmax",
)
_FD, _STEP, _REL, _DIR = (
    "sec-gradient-checking-differences",
    "sec-gradient-checking-step",
    "sec-gradient-checking-relative-error",
    "sec-gradient-checking-directions",
)
_LIN, _TRAIN = "sec-putting-together-linear", "sec-putting-together-training"

#: every mistake the checks recognise, by key
MISTAKES: dict[str, Mistake] = _catalogue(
    # -- anywhere
    Mistake(
        "mutated-input",
        "changed its input array in place (e.g. `z -= z.max()` or `x[i] += h`), which corrupts "
        "the caller's data.",
        "work on a copy: `z = z - z.max(...)` makes a new array; `x = x.copy()` before perturbing.",
    ),
    Mistake(
        "reference-call",
        "called a softgrad function that this exercise asks you to write yourself.",
        "write the formula with NumPy; softgrad is what your answer is compared against.",
    ),
    Mistake(
        "integer-array",
        "returned integers: an array made with an integer dtype (np.zeros(..., dtype=int), or "
        "zeros_like of an integer array) truncates every number written into it.",
        "make arrays of floats: np.zeros((n, n)) or np.zeros_like(x, dtype=float).",
    ),
    Mistake(
        "broadcast-keepdims",
        "raised a broadcasting error: a sum or max without keepdims=True leaves an array of "
        "shape (N,) that does not line up with the (N, n) rows.",
        "keep the reduced axis: x.sum(axis=-1, keepdims=True) has shape (N, 1).",
    ),
    Mistake(
        "axis-not-last",
        "used axis=1, which does not exist for a single vector z (and is not the class axis of a "
        "3-D batch).",
        "use axis=-1, the last axis, for every shape of z.",
        _DEF,
    ),
    # -- softmax and log-softmax (chapter 1)
    Mistake(
        "softmax-overflow",
        "exp(z) overflows to inf for large logits, and inf/inf gives nan (the naive softmax).",
        "subtract each row's maximum from z before exponentiating; softmax(z) = softmax(z - max z).",
        _LSE,
    ),
    Mistake(
        "softmax-underflow",
        "every exp(z) underflows to 0 for very negative logits, and 0/0 gives nan: the shift "
        "must be the row maximum also when it is negative.",
        "subtract each row's maximum (whatever its sign) before exponentiating.",
        _LSE,
    ),
    Mistake(
        "softmax-min-shift",
        "subtracted the row minimum: then the largest exponent is exp(max - min), which "
        "overflows when the logits are spread out.",
        "subtract the row maximum, so that every exponent is at most exp(0) = 1.",
        _LSE,
    ),
    Mistake(
        "softmax-global-max",
        "shifted by the maximum of the whole array instead of each row's: a row whose logits are "
        "far below the others' underflows to 0/0.",
        "z.max(axis=-1, keepdims=True): one maximum per row.",
        _LSE,
    ),
    Mistake(
        "softmax-wrong-axis",
        "normalised over the wrong axis (axis 0, down the batch) instead of the class axis -1.",
        "use axis=-1 for the max and the sum, with keepdims=True.",
        _DEF,
    ),
    Mistake(
        "softmax-sum-all",
        "divided by the sum over the whole array instead of each row's own sum.",
        "sum along axis=-1 with keepdims=True so every row is normalised by itself.",
        _DEF,
    ),
    Mistake(
        "softmax-no-keepdims",
        "took the row max or the row sum without keepdims=True, so it broadcast along the wrong "
        "axis (entry [i, j] was shifted or divided by a number belonging to row j).",
        "use z.max(axis=-1, keepdims=True) and e.sum(axis=-1, keepdims=True).",
        _DEF,
    ),
    Mistake(
        "softmax-not-normalised",
        "returned exp(z - max z) without dividing by the row sum.",
        "divide by e.sum(axis=-1, keepdims=True) so each row sums to 1.",
        _DEF,
    ),
    Mistake(
        "softmax-clipped",
        "clipped the logits before exponentiating: that changes the answer whenever a logit is "
        "clipped (large logits become equal).",
        "do not clip; subtract each row's maximum, which is exact.",
        _LSE,
    ),
    Mistake(
        "softmax-epsilon",
        "added a small epsilon to the sum or to the exponentials: the probabilities are then off "
        "(and masked entries are no longer exactly 0).",
        "no epsilon is needed: after the shift the row sum is at least 1.",
        _LSE,
    ),
    Mistake(
        "log-softmax-underflow",
        "computed log(softmax(z)): a tiny probability underflows to 0 and its log to -inf, "
        "although the exact log-probability is a finite number like -1000.",
        "compute log_softmax(z) = (z - m) - log(sum(exp(z - m))) with m the row maximum; never "
        "take the log of a probability.",
        _LSE,
    ),
    Mistake(
        "log-softmax-epsilon",
        "took log(p + eps) or log(max(p, eps)): a finite number, but not the log-probability "
        "(log(1e-12) = -27.6 where the answer is -1005).",
        "compute (z - m) - log(sum(exp(z - m))) with m the row maximum: no probability, no log of "
        "it, no epsilon.",
        _LSE,
    ),
    Mistake(
        "logsumexp-overflow",
        "computed log(sum(exp(z))) without shifting by the maximum: exp overflows and the result "
        "is -inf or nan.",
        "use logsumexp(z) = m + log(sum(exp(z - m))) with m the row maximum.",
        _LSE,
    ),
    Mistake(
        "logsumexp-missing-max",
        "is off by the row maximum m: the log-sum-exp is m + log(sum(exp(z - m))), and the m must "
        "appear exactly once in z - logsumexp(z).",
        "log_softmax(z) = (z - m) - log(sum(exp(z - m))).",
        _LSE,
    ),
    # -- Jacobians (chapter 2)
    Mistake(
        "jacobian-diagonal-only",
        "has only the diagonal, as if softmax acted entry by entry like a sigmoid; every p_i "
        "depends on every z_j, so the off-diagonal entries are missing.",
        "J = diag(p) - outer(p, p): off the diagonal, d p_i / d z_j = -p_i p_j.",
        _JDER,
    ),
    Mistake(
        "jacobian-sign",
        "has the sign flipped.",
        "J = diag(p) - outer(p, p); its diagonal p_i (1 - p_i) is positive.",
        _JDER,
    ),
    Mistake(
        "jacobian-missing-diag",
        "is missing the diag(p) term (only -outer(p, p)).",
        "J = diag(p) - outer(p, p): the Kronecker delta contributes p_i on the diagonal.",
        _JDER,
    ),
    Mistake(
        "jacobian-of-logits",
        "used the logits z where the probabilities p = softmax(z) belong.",
        "first compute p = softmax(z), then build J from p.",
        _JDER,
    ),
    Mistake(
        "jacobian-outer-same-axis",
        "used p_i twice where the product p_i p_j belongs (p[..., :, None] * p[..., :, None], or "
        "p[i] * p[i] in the loop).",
        "the outer product is p[..., :, None] * p[..., None, :]: entry [i, j] is p_i p_j.",
        _JDER,
    ),
    Mistake(
        "jacobian-dot-not-outer",
        "used p @ p.T (or p.T @ p) on a 1-D array, which is the number sum(p**2), not the outer "
        "product.",
        "use np.outer(p, p), or p[..., :, None] * p[..., None, :] for a batch.",
        _JMAT,
    ),
    Mistake(
        "jacobian-1d-only",
        "works for one vector but not for a batch: np.diag, np.outer and `np.eye(n) - p` treat "
        "a 2-D p as a matrix, not as a stack of rows.",
        "index the class axes explicitly: p[..., :, None] * np.eye(n) is a batch of diag(p), "
        "p[..., :, None] * p[..., None, :] a batch of outer products, p[..., None, :] a row.",
        _JMAT,
    ),
    Mistake(
        "jacobian-batch-layout",
        "put the batch axis in the wrong place: for z of shape (N, n) the Jacobians must be "
        "stacked as shape (N, n, n), one matrix per row.",
        "keep the batch axes first and the two class axes last (..., n, n).",
        _JMAT,
    ),
    Mistake(
        "jacobian-transposed",
        "is transposed: entry [i, j] must be d out_i / d z_j (row = output, column = input). For "
        "softmax J is symmetric so this cannot show, but the log-softmax Jacobian I - 1 p^T is not.",
        "put the output index first: J[..., i, j] = delta_ij - p_j.",
        _JDEF,
    ),
    Mistake(
        "jacobian-divided-by-p",
        "divided the softmax Jacobian by p: right on paper, but a probability that underflows to "
        "0 gives 0/0 = nan.",
        "write the result without dividing: d log p_i / d z_j = delta_ij - p_j, i.e. "
        "np.eye(n) - p[..., None, :].",
        _JMAT,
    ),
    Mistake(
        "jacobian-softmax-for-log-softmax",
        "returned the Jacobian of softmax, diag(p) - p p^T, where the Jacobian of log-softmax "
        "belongs.",
        "differentiate log p_i = z_i - logsumexp(z): the result is I - 1 p^T.",
        _JMAT,
    ),
    # -- backprop through softmax (chapter 3)
    Mistake(
        "vjp-missing-p",
        "returned s - sum(s) with s = g * p: the sum must be multiplied by p (the second seed "
        "question), dL/dz = s - p * sum(s).",
        "dL/dz = p * (g - sum(g * p)), summing along the class axis with keepdims=True.",
        _SEED2,
    ),
    Mistake(
        "vjp-missing-outer-p",
        "returned g - <g, p>: the whole bracket is multiplied by p.",
        "dL/dz = p * (g - <g, p>).",
        _VJP,
    ),
    Mistake(
        "vjp-sign",
        "has the sign flipped: p * (<g, p> - g).",
        "dL/dz = p * (g - <g, p>).",
        _VJP,
    ),
    Mistake(
        "vjp-diagonal-only",
        "used only the diagonal of the Jacobian, g * p * (1 - p), as for an elementwise sigmoid.",
        "the off-diagonal terms give the - p * <g, p> part: dL/dz = p * (g - <g, p>).",
        _VJP,
    ),
    Mistake(
        "vjp-wrong-axis",
        "took the inner product <g, p> over the wrong axis (down the batch, or over everything).",
        "sum g * p along axis=-1 with keepdims=True: one inner product per row.",
        _VBATCH,
    ),
    Mistake(
        "vjp-no-keepdims",
        "summed g * p along the last axis without keepdims=True, so the N inner products were "
        "spread across the columns instead of down the rows.",
        "np.sum(g * p, axis=-1, keepdims=True) has shape (N, 1): one inner product per row.",
        _VBATCH,
    ),
    Mistake(
        "vjp-matrix-product",
        "used g @ p (or np.dot) for the inner product: on a batch that is a matrix product, not "
        "one inner product per row.",
        "np.sum(g * p, axis=-1, keepdims=True).",
        _VBATCH,
    ),
    Mistake(
        "vjp-softmax-of-p",
        "applied softmax to p again: the function receives probabilities, not logits.",
        "use p as given.",
        _VJP,
    ),
    Mistake(
        "vjp-formed-jacobian",
        "formed the n x n Jacobian to multiply by it; that costs O(n^2) memory and time per row.",
        "use dL/dz = p * (g - <g, p>), which needs O(n).",
        _COST,
    ),
    # -- cross-entropy (chapter 4)
    Mistake(
        "ce-seed-sum-py",
        "computed sum_k p_k y_k - y_i (the first seed question): the sum over k of y_k "
        "multiplies p_i, it is not a sum of p_k y_k.",
        "dL/dz_i = p_i * sum_k y_k - y_i, which is p_i - y_i when the targets sum to 1.",
        _CESEED,
    ),
    Mistake(
        "ce-sign",
        "has the sign flipped (y - p): that is the direction of steepest ascent.",
        "dL/dz = p * sum(y) - y.",
        _CESIGN,
    ),
    Mistake(
        "ce-loss-sign",
        "is missing the minus sign: log p <= 0, so the cross-entropy -sum(y log p) is >= 0.",
        "L = -sum(y * log_softmax(z)) / N.",
        _CESIGN,
    ),
    Mistake(
        "ce-missing-mean",
        "is missing the 1/N of the batch mean: the loss is the mean over the N rows, so each "
        "row's gradient is divided by N.",
        "divide the per-row gradient by N = z.shape[0].",
        _CEBATCH,
    ),
    Mistake(
        "ce-mean-over-all",
        "divided by N * n (np.mean over every entry) instead of the number of rows N.",
        "the loss averages over rows only: divide by N = z.shape[0].",
        _CEBATCH,
    ),
    Mistake(
        "ce-mean-over-classes",
        "divided by the number of classes n = z.shape[1] instead of the number of rows N.",
        "divide by N = z.shape[0], the batch size.",
        _CEBATCH,
    ),
    Mistake(
        "ce-loss-weighted-mean",
        "divided by the total target weight sum(y) instead of the number of rows N; the two "
        "agree only when every row's targets sum to 1.",
        "divide by N = z.shape[0].",
        _CEBATCH,
    ),
    Mistake(
        "ce-precedence",
        "divided only y by N: p * sum(y) - y / N is not (p * sum(y) - y) / N.",
        "put the whole difference in parentheses before dividing by N.",
        _CEBATCH,
    ),
    Mistake(
        "ce-target-sum-all",
        "summed the targets over the whole batch (y.sum()) instead of each row (one sum(y) per "
        "example).",
        "y.sum(axis=-1, keepdims=True).",
        _CEBATCH,
    ),
    Mistake(
        "ce-p-minus-y-unnormalised",
        "used p - y where the targets do not sum to 1: p - y is the gradient only when sum(y) = 1.",
        "dL/dz = p * sum(y, axis=-1, keepdims=True) - y.",
        _CEGEN,
    ),
    Mistake(
        "ce-hard-labels",
        "used only the arg-max class of each target row, as if y were one-hot: soft targets and "
        "class weights weigh every class.",
        "use y itself: L = -sum(y * log_softmax(z)) / N and dL/dz = (p * sum(y) - y) / N.",
        _CEGEN,
    ),
    Mistake(
        "ce-forgot-softmax",
        "used the logits z where the probabilities p = softmax(z) belong.",
        "compute p = softmax(z) (stably) first.",
        _CEDER,
    ),
    Mistake(
        "ce-softmax-wrong-axis",
        "computed the softmax over the wrong axis (down the batch).",
        "normalise each row: axis=-1, keepdims=True.",
        _CEDER,
    ),
    Mistake(
        "ce-grad-wrt-p",
        "returned -y / p, the gradient with respect to the probabilities; the logits are one "
        "chain-rule step further, through softmax.",
        "dL/dz = (p * sum(y) - y) / N.",
        _CEDER,
    ),
    # -- gradient checking (chapter 5)
    Mistake(
        "gc-forward-difference",
        "used a forward difference (f(x + h) - f(x)) / h, whose error is O(h); the central "
        "difference (f(x + h) - f(x - h)) / (2h) has error O(h^2).",
        "evaluate f at x + h e_i and x - h e_i and divide by 2h.",
        _FD,
    ),
    Mistake(
        "gc-backward-difference",
        "used a backward difference (f(x) - f(x - h)) / h, whose error is O(h).",
        "use the central difference (f(x + h) - f(x - h)) / (2h).",
        _FD,
    ),
    Mistake(
        "gc-missing-half",
        "divided the central difference by h instead of 2h, so the gradient is twice too large.",
        "(f(x + h e_i) - f(x - h e_i)) / (2 * h).",
        _FD,
    ),
    Mistake(
        "gc-rows-not-entries",
        "looped over range(len(x)): for a 2-D x, x[i] is a whole row, so every step moved a row "
        "at once.",
        "loop over every entry: for i in np.ndindex(x.shape).",
        _FD,
    ),
    Mistake(
        "gc-explicit-step-changed",
        "did not use the step it was given: with h given, every coordinate must be moved by "
        "exactly h.",
        "use h as it is when it is not None; choose a step only when h is None.",
        _FD,
    ),
    Mistake(
        "gc-step-mismatch",
        "divided by a step other than the one it added to x, so the quotient is scaled wrongly.",
        "divide by 2 * h_i with the same h_i that moved x_i.",
        _FD,
    ),
    Mistake(
        "gc-step-too-small",
        "chose a step so small that rounding error (about eps * |f| / h) swamps the derivative.",
        "use h_i = eps**(1/3) * max(1, |x_i|), about 6e-6 * max(1, |x_i|) in float64 "
        "(between 1e-7 and 1e-4 times max(1, |x_i|)).",
        _STEP,
    ),
    Mistake(
        "gc-step-too-large",
        "chose a step so large that the truncation error (about h**2 * |f'''| / 6) dominates.",
        "use h_i = eps**(1/3) * max(1, |x_i|), about 6e-6 * max(1, |x_i|) in float64 "
        "(between 1e-7 and 1e-4 times max(1, |x_i|)).",
        _STEP,
    ),
    Mistake(
        "gc-step-not-scaled",
        "used a fixed absolute step: at |x_i| = 1e8 a step of 1e-5 is not even representable "
        "(x + h rounds), so the difference quotient is off.",
        "scale the step with the coordinate: h_i = h0 * max(1, |x_i|).",
        _STEP,
    ),
    Mistake(
        "gc-step-vanishes",
        "made the step proportional to |x_i| alone: at x_i = 0 the step is 0 and the quotient 0/0.",
        "h_i = eps**(1/3) * max(1, |x_i|): the max(1, .) keeps the step from vanishing.",
        _STEP,
    ),
    Mistake(
        "ge-absolute",
        "returned the absolute error |a - n| instead of the relative one: it grows with the "
        "scale of f, so no threshold works.",
        "divide by max(|a|, |n|, 1e-12).",
        _REL,
    ),
    Mistake(
        "ge-one-sided",
        "divided by the size of one gradient only: a gradient half as large and one twice as "
        "large then get different errors.",
        "divide by max(|a|, |n|, 1e-12), the larger of the two norms.",
        _REL,
    ),
    Mistake(
        "ge-sum-of-norms",
        "divided by |a| + |n| instead of the larger of the two.",
        "divide by max(|a|, |n|, 1e-12).",
        _REL,
    ),
    Mistake(
        "ge-wrong-norm",
        "measured the error with another norm than the Euclidean one over all entries.",
        "np.linalg.norm(a - n) / max(np.linalg.norm(a), np.linalg.norm(n), 1e-12), with "
        "np.linalg.norm of the whole array (of a.ravel() for a matrix).",
        _REL,
    ),
    Mistake(
        "ge-entrywise",
        "returned the largest entry-by-entry relative error instead of the relative error of "
        "the whole gradient.",
        "compare norms: |a - n| / max(|a|, |n|, 1e-12) over all entries at once.",
        _REL,
    ),
    Mistake(
        "ge-no-floor",
        "divided by max(|a|, |n|) without the 1e-12 floor: a zero gradient gives 0/0 = nan.",
        "divide by max(|a|, |n|, 1e-12).",
        _REL,
    ),
    Mistake(
        "de-unseeded",
        "drew its directions without the seed (a fresh np.random.default_rng() or np.random's "
        "global state): the same call gives another answer each time.",
        "rng = np.random.default_rng(seed), and draw every direction from that rng.",
        _DIR,
    ),
    Mistake(
        "de-seed-ignored",
        "gave the same directions for every seed.",
        "rng = np.random.default_rng(seed) with the seed argument.",
        _DIR,
    ),
    Mistake(
        "de-not-max",
        "did not return the largest error over the directions (their mean, or the last one).",
        "keep the maximum: worst = max(worst, error) in the loop.",
        _DIR,
    ),
    Mistake(
        "de-too-many-evaluations",
        "evaluated f more than twice per direction (through the full numerical gradient, two "
        "evaluations per coordinate): the point of directions is a cost independent of x.size.",
        "evaluate f only at x + h u and x - h u for each direction u.",
        _DIR,
    ),
    # -- training (chapter 6)
    Mistake(
        "train-grad-shape",
        "returned dW with the shape of W transposed: the gradient has the shape of the parameter.",
        "dW = X.T @ dZ has shape (D, n) like W.",
        _LIN,
    ),
    Mistake(
        "train-db-double-mean",
        "averaged db over the batch although dZ already carries the 1/N of the mean loss.",
        "db = dZ.sum(axis=0).",
        _LIN,
    ),
    Mistake(
        "train-dw-double-mean",
        "divided dW by N although dZ already carries the 1/N of the mean loss.",
        "dW = X.T @ dZ.",
        _LIN,
    ),
    Mistake(
        "train-db-wrong-axis",
        "summed dZ over the classes (axis=1) for db; the bias is shared by the rows, so its "
        "gradient sums over the rows.",
        "db = dZ.sum(axis=0), shape (n,).",
        _LIN,
    ),
    Mistake(
        "train-loss-sum",
        "returned the summed loss instead of the mean over the N examples.",
        "divide the summed cross-entropy by N (and keep the gradient consistent with it).",
        _LIN,
    ),
    Mistake(
        "ce-loss-all-classes",
        "averaged -log p over every class of every row; the loss takes each row's label only.",
        "L = -np.mean(log_softmax(Z)[np.arange(N), labels]).",
        _LIN,
    ),
    Mistake(
        "train-label-indexing",
        "indexed with [:, labels], which takes every row's entries at every label (an N x N "
        "array), not one entry per row.",
        "index with [np.arange(N), labels]: row i, column labels[i].",
        _LIN,
    ),
    Mistake(
        "train-labels-off-by-one",
        "shifted the labels by one (as if they counted from 1): the classes are 0, ..., n - 1.",
        "use the labels as they are: np.eye(n)[labels], or [np.arange(N), labels].",
        _LIN,
    ),
    Mistake(
        "train-diverged",
        "went uphill: the loss grows from the first step, as with W += lr * dW.",
        "update W -= lr * dW and b -= lr * db (minus!).",
        _TRAIN,
    ),
    Mistake(
        "train-lr-ignored",
        "did not train with the learning rate asked for (the lr argument ignored, or a default "
        "other than lr=0.5).",
        "use the lr argument in every update; keep the signature train(X, labels, n_classes, "
        "lr=0.5, steps=300).",
        _TRAIN,
    ),
    Mistake(
        "train-step-count",
        "did not record one loss per step for the number of steps asked for (the steps argument "
        "ignored, a loop one short, or only the last loss kept).",
        "loop for _ in range(steps) and append the loss of every step.",
        _TRAIN,
    ),
    Mistake(
        "train-bias-frozen",
        "never updated b.",
        "b -= lr * db in every step, next to W -= lr * dW.",
        _TRAIN,
    ),
    Mistake(
        "train-loss-after-update",
        "recorded the loss after the update instead of before it: losses[0] must be the loss at "
        "W = 0, b = 0, which is log(n).",
        "append the loss returned by loss_and_grad before changing W and b.",
        _TRAIN,
    ),
    Mistake(
        "train-negative-loss",
        "recorded negative losses: a cross-entropy is never below 0 (the update may be right, but "
        "-loss was recorded).",
        "append the loss itself.",
        _TRAIN,
    ),
    Mistake(
        "train-stale-gradient",
        "used the gradient of the first step in every step: the gradient must be recomputed at "
        "the current W and b.",
        "call loss_and_grad(W, b, X, labels) inside the loop and use its dW and db.",
        _TRAIN,
    ),
)


# ----------------------------------------------------------------------------- who may call what

_FORWARD = ("softmax", "log_softmax", "logsumexp")

#: for each check, the softgrad functions a student's answer may call while it runs (by public
#: name); a call into any other softgrad function fails the check. The hidden tests use the same
#: lists (``check_matches(..., check=...)``), and the grading kernel enables no others.
ALLOWED: dict[str, tuple[str, ...]] = {
    "check_softmax": (),
    "check_log_softmax": (),
    "check_softmax_jacobian": _FORWARD,
    "check_log_softmax_jacobian": _FORWARD,
    "check_softmax_vjp": (),
    "check_cross_entropy": _FORWARD,
    "check_cross_entropy_grad": _FORWARD,
    "check_numerical_gradient": (),
    "check_gradient_error": (),
    "check_directional_error": (),
    "check_loss_and_grad": _FORWARD,
    "check_training": _FORWARD,
}


@dataclass(frozen=True)
class _Spec:
    """How one check judges: tolerance, allow-list, where its messages point."""

    check: str  # the check function's name, the key of ALLOWED
    name: str  # the student's function, as messages call it
    home: str  # the section of the exercise's chapter that a generic report points to
    reads: Mapping[str, str] = field(default_factory=dict)  # mistake key -> section override
    rtol: float = 1e-9
    atol: float = 1e-12
    broadcast: str = "broadcast-keepdims"  # the mistake a broadcasting error names

    @property
    def allow(self) -> tuple[str, ...]:
        return ALLOWED.get(self.check, ())

    def section(self, key: str) -> str:
        """The section a mistake points to here: always in the exercise's own chapter."""
        if key in self.reads:
            return self.reads[key]
        own = MISTAKES[key].section
        if own is not None and SECTIONS[own][0] == SECTIONS[self.home][0]:
            return own
        return self.home

    def describe(self, key: str) -> str:
        return MISTAKES[key].describe(self.section(key))


_SPECS = {
    s.check: s
    for s in (
        _Spec("check_softmax", "softmax", _LSE),
        _Spec("check_log_softmax", "log_softmax", _LSE),
        _Spec("check_softmax_jacobian", "softmax_jacobian", _JMAT, broadcast="jacobian-1d-only"),
        _Spec(
            "check_log_softmax_jacobian",
            "log_softmax_jacobian",
            _JMAT,
            broadcast="jacobian-1d-only",
        ),
        _Spec(
            "check_softmax_vjp",
            "softmax_vjp",
            _VJP,
            reads={"broadcast-keepdims": _VBATCH, "integer-array": _VJP},
        ),
        _Spec(
            "check_cross_entropy",
            "cross_entropy",
            _CELOG,
            reads={
                "log-softmax-underflow": _CELOG,
                "log-softmax-epsilon": _CELOG,
                "logsumexp-overflow": _CELOG,
                "softmax-overflow": _CELOG,
                "train-loss-sum": _CEBATCH,
            },
        ),
        _Spec(
            "check_cross_entropy_grad",
            "cross_entropy_grad",
            _CEDER,
            reads={"softmax-overflow": _CELOG, "broadcast-keepdims": _CEBATCH},
        ),
        _Spec("check_numerical_gradient", "numerical_gradient", _FD, rtol=1e-6, atol=1e-9),
        _Spec("check_gradient_error", "gradient_error", _REL, rtol=1e-6, atol=1e-9),
        _Spec("check_directional_error", "directional_error", _DIR, rtol=1e-4, atol=1e-9),
        _Spec(
            "check_loss_and_grad",
            "loss_and_grad",
            _LIN,
            reads={"ce-missing-mean": _LIN, "softmax-overflow": _LIN},
        ),
        _Spec("check_training", "train", _TRAIN, rtol=1e-6, atol=1e-9),
    )
}


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


def _in_softgrad(code) -> bool:
    """Is this code object part of softgrad's numerics (not this module, not the grader)?"""
    path = os.path.abspath(code.co_filename)
    return path.startswith(_PKG_DIR + os.sep) and path != _THIS and not path.startswith(_GRADING)


def _raise_hint(spec: _Spec, exc: BaseException, args: tuple) -> str | None:
    """The mistake an exception names by itself, if any (a broadcasting error, a missing axis)."""
    text = str(exc)
    batch = any(isinstance(a, np.ndarray) and a.ndim > 1 for a in args)
    if "out of bounds for array of dimension" in text and "axis" in text:
        return "axis-not-last"
    if spec.check == "check_softmax_vjp" and ("matmul" in text or "not aligned" in text):
        return "vjp-matrix-product"
    if "could not be broadcast" not in text:
        return None
    if spec.broadcast != "broadcast-keepdims":
        return spec.broadcast if batch else None
    shapes = [
        tuple(int(n) for n in re.findall(r"\d+", m)) for m in re.findall(r"\(([\d, ]*)\)", text)
    ]
    dropped = any(  # (N, n) against (N,): a reduction that lost its axis
        len(b) == len(a) - 1 and any(a[:k] + a[k + 1 :] == b for k in range(len(a)))
        for a in shapes
        for b in shapes
    )
    return spec.broadcast if dropped else None


def _call(
    spec: _Spec,
    fn: Callable,
    args: tuple,
    probe: str,
    *,
    kwargs: Mapping | None = None,
    measure_memory: bool = False,
) -> _Run:
    """Call the student's ``fn(*args, **kwargs)``, recording warnings and calls into softgrad.

    A call from outside softgrad into a softgrad function not in the check's allow-list is a
    reference call (softgrad's internal calls are not); an argument array that differs after
    the call was changed in place. Both fail the check, as does an exception.
    """
    name, allow = spec.name, spec.allow
    if not callable(fn):
        raise CheckFailed(f"{name}: expected a function, got {type(fn).__name__} {fn!r:.60}")
    run = _Run()
    calls = run.reference_calls
    before = [np.copy(a) if isinstance(a, np.ndarray) else None for a in args]

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
                run.value = fn(*args, **(kwargs or {}))
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
        head = f"{name} raised {type(exc).__name__} on probe {probe!r}: {str(exc)[:300]}"
        key = _raise_hint(spec, exc, args)
        raise CheckFailed(f"{head}\n{spec.describe(key) if key else read_line(spec.home)}") from exc
    run.warnings = [str(w.message) for w in caught]
    if run.reference_calls:
        raise CheckFailed(
            f"{name} is wrong on probe {probe!r}.\n{spec.describe('reference-call')}\n"
            f"Called: {', '.join(sorted(run.reference_calls))} (allowed here: "
            f"{', '.join(allow) or 'none'})"
        )
    for i, (old, new) in enumerate(zip(before, args, strict=True)):
        if old is not None and not np.array_equal(old, new, equal_nan=True):
            raise CheckFailed(
                f"{name} is wrong on probe {probe!r}: it changed argument {i + 1} in place.\n"
                + spec.describe("mutated-input")
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


def _integer(value: Any) -> bool:
    """Did the student return integers (an array filled into an int dtype)?"""
    try:
        return np.asarray(value).dtype.kind in "iu"
    except Exception:  # noqa: BLE001 (not an array at all: _as_floats says so)
        return False


# ----------------------------------------------------------------------------- comparing


def _gap(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> float:
    """How far ``a`` is from ``b``, in units of the tolerance ``atol + rtol * |b|`` (worst entry).

    Equal infinities and nan against nan count as equal; any other non-finite pair, or a shape
    mismatch, is infinitely far.
    """
    if a.shape != b.shape:
        return math.inf
    fa, fb = np.isfinite(a), np.isfinite(b)
    same_special = (~fa & ~fb) & ((a == b) | (np.isnan(a) & np.isnan(b)))
    if np.any((~fa | ~fb) & ~same_special):
        return math.inf
    both = fa & fb
    if not both.any():
        return 0.0
    return float(np.max(np.abs(a[both] - b[both]) / (atol + rtol * np.abs(b[both]))))


def _worst(got: tuple, expected: tuple, rtol: float, atol: float):
    """None if every part matches, else (part index, "shape" or (index, expected, got))."""
    for k, (g, e) in enumerate(zip(got, expected, strict=True)):
        if g.shape != e.shape:
            return k, "shape"
        if _gap(g, e, rtol, atol) <= 1.0:
            continue
        close = np.isclose(g, e, rtol=rtol, atol=atol) | (g == e) | (np.isnan(g) & np.isnan(e))
        with np.errstate(invalid="ignore"):
            err = np.abs(g - e)
        err = np.where(np.isnan(err), np.inf, err)
        err = np.where(close, -1.0, err)
        flat = int(np.argmax(err))
        idx = np.unravel_index(flat, e.shape) if e.ndim else ()
        return k, (idx, e[idx], g[idx])
    return None


def _matches(got: np.ndarray, candidate: np.ndarray, rtol: float, atol: float) -> bool:
    return got.shape == candidate.shape and bool(
        np.isclose(got, candidate, rtol=rtol, atol=atol, equal_nan=True).all()
    )


def _fmt(a: Any) -> str:
    return np.array2string(np.asarray(a), precision=6, max_line_width=90, threshold=20)


def _show(name: str, a: Any) -> str:
    """An input as a message shows it: its values on one line when small, else its shape."""
    a = np.asarray(a)
    if a.size > 8:
        return f"{name} of shape {a.shape}"
    text = np.array2string(a, precision=4, separator=", ", max_line_width=10**6)
    return f"{name} = {' '.join(text.split())}"


# ----------------------------------------------------------------------------- the probe engine


@dataclass
class _Probe:
    label: str
    args: tuple
    expected: tuple[np.ndarray, ...]  # one array per part of the answer
    show: str = ""  # how to show the input in a message
    kwargs: dict = field(default_factory=dict)
    decides: bool = (
        True  # False: an answer whose right value is round-off (no mistake decided here)
    )
    tol: tuple[float, float] | None = None  # (rtol, atol) here instead of the check's


@dataclass
class _Candidate:
    """A catalogued mistake written out: what an answer with it returns for the probe's args."""

    keys: tuple[str, ...]
    fn: Callable[..., Any]


def _parts(value) -> tuple[np.ndarray, ...] | None:
    if value is None:
        return None
    values = value if isinstance(value, tuple) else (value,)
    return tuple(np.asarray(v, dtype=np.float64) for v in values)


def _evaluate(cand: _Candidate, probe: _Probe) -> tuple[np.ndarray, ...] | None:
    """The candidate's answer; None when the mistake is undefined for these inputs."""
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _parts(cand.fn(*_fresh(probe.args)))
    except (ValueError, IndexError, TypeError, ZeroDivisionError):
        return None


def _fresh(args: tuple) -> tuple:
    return tuple(np.copy(a) if isinstance(a, np.ndarray) else a for a in args)


def _tol(spec: _Spec, probe: _Probe) -> tuple[float, float]:
    return probe.tol or (spec.rtol, spec.atol)


def _parts_gap(a: tuple, b: tuple, rtol: float, atol: float) -> float:
    if len(a) != len(b):
        return math.inf
    return max((_gap(x, y, rtol, atol) for x, y in zip(a, b, strict=True)), default=0.0)


def _explains(cand: _Candidate, probes: list[_Probe], outputs: list, spec: _Spec) -> bool:
    """Does the mistake reproduce the student's answers, and not the right ones, where they fail?

    Distances are in units of the check's tolerance. On a probe the student answered right, the
    mistake must (nearly) give the right answer too: it makes no difference there. On a probe
    the student answered wrong, the answer must be a hundred times nearer the mistake's value
    than the right one; a mistake that gives (nearly) the right answer there cannot explain the
    error. At least one probe must decide: the mistake clearly unlike the right answer, and the
    student's answer with it.
    """
    decided = False
    for probe, out in zip(probes, outputs, strict=True):
        if out is None or not probe.decides:
            continue
        rtol, atol = _tol(spec, probe)
        off = _parts_gap(out, probe.expected, rtol, atol)  # the student from the right answer
        value = _evaluate(cand, probe)
        if value is None:
            if off > 1.0:
                return False
            continue
        unlike = _parts_gap(value, probe.expected, rtol, atol)  # the mistake from the right answer
        if off <= 1.0:
            if unlike > 4.0:
                return False
            continue
        near = _parts_gap(out, value, rtol, atol)  # the student from the mistake
        if not near <= max(1.0, 0.01 * off if math.isfinite(off) else 1e4):
            return False
        decided = decided or unlike > 4.0
    return decided


def _diagnose(candidates: list[_Candidate], probes, outputs, spec: _Spec) -> tuple[str, ...]:
    """Keys of the candidate that explains every answer (see :func:`_explains`).

    When mistakes that are not part of one another both explain the answers, the probes cannot
    tell them apart, and none is named.
    """
    found: list[tuple[str, ...]] = []
    for cand in candidates:
        if cand.keys not in found and _explains(cand, probes, outputs, spec):
            found.append(cand.keys)
    minimal = [k for k in found if not any(set(o) < set(k) for o in found)]
    return minimal[0] if len(minimal) == 1 else ()


def _size_hint(got: np.ndarray, expected: np.ndarray) -> str | None:
    """What the size of the difference says, for a report that names no mistake."""
    finite = np.isfinite(expected)
    if np.any(finite & ~np.isfinite(got)):
        return (
            "your answer has nan or inf where the right one is a finite number: something "
            "overflowed, or divided 0 by 0 (see numpy's warning)."
        )
    nz = finite & (expected != 0)
    if nz.sum() > 1 and np.all(got[finite & (expected == 0)] == 0):
        k = got[nz] / expected[nz]
        k0 = float(k[0])
        if abs(k0 - 1) > 1e-6 and np.all(np.abs(k - k0) <= 1e-9 * abs(k0)) and k0 != 0:
            m = round(1 / k0) if abs(k0) < 1 else 0
            factor = f"1/{m}" if m and math.isclose(k0 * m, 1, rel_tol=1e-9) else f"{k0:.6g}"
            return (
                f"your answer is exactly {factor} times the right one here: a factor is missing "
                "or doubled."
            )
    with np.errstate(all="ignore"):
        rel = np.abs(got - expected)[finite] / np.maximum(np.abs(expected[finite]), 1e-300)
    worst = float(np.max(rel)) if rel.size else math.inf
    if not 0 < worst < 1e-4:
        return None
    digits = int(-math.log10(worst))
    cause = (
        "a float32 step somewhere, or an epsilon?"
        if digits >= 6
        else "an epsilon, a clipped value or a rounded constant?"
    )
    return (
        f"right to about {digits} significant digits (worst relative error {worst:.1e}; float64 "
        f"keeps about 16): {cause}"
    )


def _message(
    spec: _Spec,
    probe: _Probe,
    got: tuple,
    bad,
    keys: tuple[str, ...],
    caught: list[str],
    parts: tuple[str, ...] = ("result",),
    detail: str = "",
) -> str:
    k, where = bad
    part = f" ({parts[k]})" if len(parts) > 1 else ""
    lines = [
        f"{spec.name} is wrong on probe {probe.label!r}{part}"
        + (f": {probe.show}" if probe.show else ".")
    ]
    if keys:
        lines += [spec.describe(key) for key in keys]
    else:
        lines.append("No catalogued mistake reproduces this answer.")
    g, e = got[k], probe.expected[k]
    if where is None:
        pass  # right to the tolerance, wrong in how it was computed (the detail says how)
    elif where == "shape":
        same = " (the right number of entries in another shape)" if g.size == e.size else ""
        lines.append(f"Shape: expected {e.shape}, got {g.shape}{same}.")
    else:
        idx, exp, gv = where
        at = f" at index {tuple(int(i) for i in idx)}" if idx else ""
        lines.append(f"Worst entry{at}: expected {float(exp)!r}, got {float(gv)!r}.")
        if not keys:
            hint = _size_hint(g, e)
            if hint:
                lines.append(f"How to fix: {hint}")
            if e.size <= 9 and e.ndim <= 2 and _fmt(e) != _fmt(g):
                lines.append(f"Expected {_fmt(e)}, got {_fmt(g)}.")
    if detail:
        lines.append(detail)
    if not keys:
        lines.append(read_line(spec.home))
    fp = sorted({w for w in caught if "encountered" in w or "overflow" in w or "divide" in w})
    if fp:
        lines.append("numpy warned: " + "; ".join(fp))
    return "\n".join(lines)


def _single(spec: _Spec, value: Any, probe: _Probe) -> tuple[np.ndarray, ...]:
    return (_as_floats(spec.name, value, probe.label),)


def _run_probes(
    spec: _Spec,
    fn: Callable,
    probes: list[_Probe],
    candidates: list[_Candidate],
    *,
    extract: Callable[[_Spec, Any, _Probe], tuple] = _single,
    parts: tuple[str, ...] = ("result",),
) -> Passed:
    """Run every probe; on the first wrong answer, diagnose it and raise CheckFailed."""

    def result(probe: _Probe):
        run = _call(spec, fn, _fresh(probe.args), probe.label, kwargs=probe.kwargs)
        return extract(spec, run.value, probe), run

    outputs: list = []
    for i, probe in enumerate(probes):
        got, run = result(probe)
        outputs.append(got)
        bad = _worst(got, probe.expected, *_tol(spec, probe))
        if bad is None:
            continue
        if _integer(run.value) or (isinstance(run.value, tuple) and any(map(_integer, run.value))):
            keys: tuple[str, ...] = ("integer-array",)
        else:
            # wrong: the answers on the remaining probes too, for a sharper diagnosis
            for later in probes[i + 1 :]:
                try:
                    outputs.append(result(later)[0])
                except CheckFailed:
                    outputs.append(None)
            keys = _diagnose(candidates, probes, outputs, spec)
        raise CheckFailed(_message(spec, probe, got, bad, keys, run.warnings, parts))
    return Passed(spec.name, len(probes))


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


def _stable_log_softmax_np(z, axis=-1):
    s = z - np.max(z, axis=axis, keepdims=True)
    return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))


def _shifted_exp(z):
    return np.exp(z - np.max(z, axis=-1, keepdims=True))


# clip bounds and epsilons students use; a candidate is tried with each
_CLIPS = (20.0, 30.0, 50.0, 80.0, 88.0, 100.0, 200.0, 300.0, 500.0, 700.0, 709.0, 710.0)
_EPSILONS = (
    *(10.0**-k for k in range(3, 17)),
    1e-20,
    1e-30,
    1e-50,
    1e-100,
    1e-300,
    float(np.finfo(float).eps),
    float(np.finfo(float).tiny),
)


def _softmax_probes(ref: Callable) -> list[_Probe]:
    rng = np.random.default_rng(20261125)
    inputs = [  # the square batch comes early: without keepdims it gives wrong numbers, not an error
        ("a vector", np.array([1.0, 2.0, 3.0])),
        ("a square batch of 4 rows of 4 logits", np.round(rng.normal(size=(4, 4)) * 2, 3)),
        ("a batch of 3 rows of 5 logits", np.round(rng.normal(size=(3, 5)) * 2, 3)),
        ("a 3-D batch of shape (2, 2, 3)", np.round(rng.normal(size=(2, 2, 3)) * 3, 3)),
        ("a single class", np.array([[5.0], [-3.0]])),
        ("large logits", np.array([1000.0, 1001.0, 1002.0])),
        ("very negative logits", np.array([[-1000.0, -1001.0, -1002.0], [-800.0, -800.0, -801.0]])),
        (
            "rows with very different maxima",
            np.array([[1000.0, 999.0, 998.0], [0.0, 1.0, 2.0], [-1000.0, -1001.0, -999.5]]),
        ),
        ("a wide spread of logits", np.array([0.0, -1000.0, 5.0])),
        ("-inf masks", np.array([[0.0, -np.inf, 1.0, 2.0], [3.0, 3.0, -np.inf, -np.inf]])),
    ]
    return [
        _Probe(label, (z,), (np.asarray(ref(z), dtype=float),), f"{_show('z', z)}")
        for label, z in inputs
    ]


def _row_softmax_mistakes(log: bool) -> list[_Candidate]:
    """The softmax mistakes, as the softmax (or, with ``log``, the log of it) they compute."""
    out = np.log if log else (lambda p: p)
    cands = [
        _Candidate(("softmax-overflow",), lambda z: out(_naive_softmax(z))),
        _Candidate(
            ("softmax-underflow",),
            lambda z: out(_naive_softmax(z - np.maximum(z.max(axis=-1, keepdims=True), 0))),
        ),
        _Candidate(
            ("softmax-min-shift",), lambda z: out(_naive_softmax(z - z.min(axis=-1, keepdims=True)))
        ),
        _Candidate(("softmax-wrong-axis",), lambda z: out(_stable_softmax_np(z, axis=0))),
        _Candidate(("softmax-global-max",), lambda z: out(_naive_softmax(z - z.max()))),
        _Candidate(
            ("softmax-sum-all",), lambda z: out(np.exp(z - z.max()) / np.exp(z - z.max()).sum())
        ),
        _Candidate(("softmax-sum-all",), lambda z: out(_shifted_exp(z) / _shifted_exp(z).sum())),
        _Candidate(
            ("softmax-no-keepdims",), lambda z: out(_shifted_exp(z) / _shifted_exp(z).sum(axis=-1))
        ),
        _Candidate(("softmax-no-keepdims",), lambda z: out(_naive_softmax(z - z.max(axis=-1)))),
    ]
    if not log:
        cands.append(_Candidate(("softmax-not-normalised",), _shifted_exp))
    for c in _CLIPS:
        cands.append(
            _Candidate(("softmax-clipped",), lambda z, c=c: out(_naive_softmax(np.clip(z, -c, c))))
        )
        cands.append(
            _Candidate(
                ("softmax-clipped",), lambda z, c=c: out(_stable_softmax_np(np.clip(z, -c, c)))
            )
        )
    if not log:
        for eps in _EPSILONS:
            cands.append(
                _Candidate(
                    ("softmax-epsilon",),
                    lambda z, eps=eps: (
                        _shifted_exp(z) / (_shifted_exp(z).sum(-1, keepdims=True) + eps)
                    ),
                )
            )
            cands.append(
                _Candidate(
                    ("softmax-epsilon",),
                    lambda z, eps=eps: (
                        (_shifted_exp(z) + eps) / (_shifted_exp(z) + eps).sum(-1, keepdims=True)
                    ),
                )
            )
    return cands


def check_softmax(softmax: Callable) -> Passed:
    """Check a student's ``softmax(z)``: along the last axis, any batch shape, stable.

    Probes: a vector; batches of 2 and 3 dimensions (a square one exposes a normalisation over
    the wrong axis or without keepdims); a single class; logits near 1000 (overflow) and -1000
    (underflow); rows with very different maxima (a shift by the whole array's maximum); a wide
    spread; and -inf masks.
    """
    spec = _SPECS["check_softmax"]
    return _run_probes(spec, softmax, _softmax_probes(_ref().softmax), _row_softmax_mistakes(False))


def check_log_softmax(log_softmax: Callable) -> Passed:
    """Check a student's ``log_softmax(z)``: along the last axis, stable, exact for tiny p.

    The softmax probes; on the wide spread [0, -1000, 5] the middle log-probability is about
    -1005 while its probability underflows to 0, which exposes log(softmax(z)).
    """
    spec = _SPECS["check_log_softmax"]

    def lse_form(s, axis):
        return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=axis is not None))

    def plus_eps(z, eps):
        return np.log(_stable_softmax_np(z) + eps)

    candidates = [
        _Candidate(("log-softmax-underflow",), lambda z: np.log(_stable_softmax_np(z))),
        _Candidate(("logsumexp-overflow",), lambda z: z - np.log(np.exp(z).sum(-1, keepdims=True))),
        _Candidate(
            ("logsumexp-missing-max",),
            lambda z: z - np.log(_shifted_exp(z).sum(-1, keepdims=True)),
        ),
        _Candidate(
            ("logsumexp-missing-max",),
            lambda z: _stable_log_softmax_np(z) - z.max(axis=-1, keepdims=True),
        ),
        *_row_softmax_mistakes(True),
        # the same mistakes written in log space, s - log(sum(exp(s))) with a wrong shift or sum
        _Candidate(("softmax-global-max",), lambda z: lse_form(z - z.max(), -1)),
        _Candidate(("softmax-sum-all",), lambda z: lse_form(z - z.max(), None)),
        _Candidate(("softmax-sum-all",), lambda z: lse_form(z - z.max(-1, keepdims=True), None)),
        _Candidate(("softmax-wrong-axis",), lambda z: _stable_log_softmax_np(z, axis=0)),
        _Candidate(
            ("softmax-no-keepdims",),
            lambda z: (z - z.max(-1, keepdims=True)) - np.log(_shifted_exp(z).sum(-1)),
        ),
        _Candidate(
            ("softmax-underflow",),
            lambda z: lse_form(z - np.maximum(z.max(axis=-1, keepdims=True), 0), -1),
        ),
        _Candidate(("softmax-min-shift",), lambda z: lse_form(z - z.min(-1, keepdims=True), -1)),
    ]
    for eps in _EPSILONS:
        candidates.append(_Candidate(("log-softmax-epsilon",), lambda z, e=eps: plus_eps(z, e)))
        candidates.append(
            _Candidate(
                ("log-softmax-epsilon",),
                lambda z, e=eps: np.log(np.maximum(_stable_softmax_np(z), e)),
            )
        )
    return _run_probes(spec, log_softmax, _softmax_probes(_ref().log_softmax), candidates)


# ----------------------------------------------------------------------------- chapter 2: Jacobian


def _outer(p):
    return p[..., :, None] * p[..., None, :]


def _diag(p):
    return p[..., :, None] * np.eye(p.shape[-1])


def _jacobian_layout(spec: _Spec):
    """Accept only the (..., n, n) layout; name a permuted batch layout as such."""

    def extract(spec: _Spec, value, probe: _Probe):
        got = _as_floats(spec.name, value, probe.label)
        expected = probe.expected[0]
        if got.shape != expected.shape and got.ndim == expected.ndim == 3:
            for perm in ((1, 2, 0), (2, 0, 1), (0, 2, 1), (1, 0, 2), (2, 1, 0)):
                back = np.transpose(got, np.argsort(perm))
                if back.shape == expected.shape and _matches(back, expected, 1e-6, 1e-9):
                    raise CheckFailed(
                        f"{spec.name} is wrong on probe {probe.label!r}.\n"
                        + spec.describe("jacobian-batch-layout")
                        + f"\nShape: expected {expected.shape}, got {got.shape} (the right "
                        "numbers with the axes in another order)."
                    )
        return (got,)

    return extract


def _jacobian_probes(batched: bool, reference: Callable) -> list[_Probe]:
    inputs = [
        ("a vector of 3 logits", np.array([1.0, 2.0, 3.0])),
        ("a vector of 4 logits", np.array([0.5, -1.0, 2.0, 0.0])),
        ("large logits", np.array([1000.0, 1001.0, 999.0])),
        ("a probability that underflows to 0", np.array([0.0, -1000.0, 5.0])),
    ]
    if batched:
        inputs += [
            ("a batch of 2 rows of 3 logits", np.array([[0.1, 0.7, -0.4], [2.0, -1.0, 0.3]])),
            (
                "a 3-D batch of shape (2, 2, 4)",
                np.round(np.random.default_rng(22).normal(size=(2, 2, 4)) * 2, 3),
            ),
        ]
    return [
        _Probe(label, (z,), (np.asarray(reference(z), dtype=float),), f"{_show('z', z)}")
        for label, z in inputs
    ]


def check_softmax_jacobian(softmax_jacobian: Callable, *, batched: bool = True) -> Passed:
    """Check a student's ``softmax_jacobian(z)`` -> J with J[..., i, j] = d p_i / d z_j.

    With ``batched=False`` only single vectors z of shape (n,) are probed (the loop version).
    Otherwise batches of shape (2, 3) and (2, 2, 4) must give (2, 3, 3) and (2, 2, 4, 4); a
    result whose axes are permuted is recognised as a wrong batch layout.

    The softmax Jacobian is symmetric, so J and J.T are the same matrix and a transposed answer
    is right here; whether rows are outputs is checked on the log-softmax Jacobian
    (:func:`check_log_softmax_jacobian`), which is not symmetric.
    """
    spec = _SPECS["check_softmax_jacobian"]
    probes = _jacobian_probes(batched, _ref().softmax_jacobian)

    def from_p(build, softmax=_stable_softmax_np):
        return lambda z: build(softmax(z))

    candidates = [
        _Candidate(("jacobian-diagonal-only",), from_p(lambda p: _diag(p * (1 - p)))),
        _Candidate(("jacobian-sign",), from_p(lambda p: _outer(p) - _diag(p))),
        _Candidate(("jacobian-missing-diag",), from_p(lambda p: -_outer(p))),
        _Candidate(("jacobian-dot-not-outer",), from_p(lambda p: np.diag(p) - p @ p.T)),
        _Candidate(
            ("jacobian-outer-same-axis",), from_p(lambda p: _diag(p) - p[..., :, None] ** 2)
        ),
        _Candidate(("jacobian-1d-only",), from_p(lambda p: np.diag(p) - np.outer(p, p))),
        _Candidate(("jacobian-1d-only",), from_p(lambda p: _diag(p) - np.outer(p, p))),
        _Candidate(("jacobian-of-logits",), lambda z: _diag(z) - _outer(z)),
        _Candidate(("softmax-overflow",), from_p(lambda p: _diag(p) - _outer(p), _naive_softmax)),
    ]
    return _run_probes(spec, softmax_jacobian, probes, candidates, extract=_jacobian_layout(spec))


def check_log_softmax_jacobian(log_softmax_jacobian: Callable) -> Passed:
    """Check a student's ``log_softmax_jacobian(z)`` -> J[..., i, j] = d log p_i / d z_j.

    This Jacobian, I - 1 p^T (entry [i, j] is delta_ij - p_j), is not symmetric, so here a
    transposed answer (delta_ij - p_i) is wrong and recognised. A probability that underflows
    to 0 exposes the softmax Jacobian divided by p (0/0).
    """
    spec = _SPECS["check_log_softmax_jacobian"]

    def reference(z):
        p = np.asarray(_ref().softmax(z), dtype=float)
        return np.eye(z.shape[-1]) - p[..., None, :]

    probes = _jacobian_probes(True, reference)

    def from_p(build, softmax=_stable_softmax_np):
        return lambda z: build(softmax(z))

    def eye(p):
        return np.eye(p.shape[-1])

    candidates = [
        _Candidate(("jacobian-transposed",), from_p(lambda p: eye(p) - p[..., :, None])),
        _Candidate(("jacobian-diagonal-only",), from_p(lambda p: _diag(1 - p))),
        _Candidate(("jacobian-sign",), from_p(lambda p: p[..., None, :] - eye(p))),
        _Candidate(("jacobian-of-logits",), lambda z: np.eye(z.shape[-1]) - z[..., None, :]),
        _Candidate(
            ("jacobian-divided-by-p",), from_p(lambda p: (_diag(p) - _outer(p)) / p[..., :, None])
        ),
        _Candidate(("jacobian-softmax-for-log-softmax",), from_p(lambda p: _diag(p) - _outer(p))),
        _Candidate(("jacobian-1d-only",), from_p(lambda p: eye(p) - p)),
        _Candidate(
            ("softmax-overflow",), from_p(lambda p: eye(p) - p[..., None, :], _naive_softmax)
        ),
    ]
    return _run_probes(
        spec, log_softmax_jacobian, probes, candidates, extract=_jacobian_layout(spec)
    )


# ----------------------------------------------------------------------------- chapter 3: backprop


def check_softmax_vjp(softmax_vjp: Callable, *, n_large: int = 2000) -> Passed:
    """Check a student's ``softmax_vjp(p, g)`` -> dL/dz = p * (g - <g, p>) without forming J.

    ``p`` are probabilities (rows sum to 1), ``g = dL/dp`` the upstream gradient. Probes a
    vector, a single class, a square batch (3, 3), a batch (3, 4), a 3-D batch and tiny
    probabilities, then measures the memory of one call with n = ``n_large`` classes: more than
    n * n * 2 bytes means the n x n Jacobian was formed.
    """
    spec = _SPECS["check_softmax_vjp"]
    sg = _ref()
    rng = np.random.default_rng(3)
    inputs = [
        ("a vector", sg.softmax(np.array([1.0, 2.0, 0.5, -1.0])), np.array([0.3, -1.0, 2.0, 0.5])),
        ("a single class", np.array([1.0]), np.array([2.5])),
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
        (
            "a 3-D batch of shape (2, 3, 5)",
            sg.softmax(rng.normal(size=(2, 3, 5)) * 3),
            rng.normal(size=(2, 3, 5)),
        ),
        (
            "tiny probabilities",
            sg.softmax(np.array([[30.0, 0.0, -30.0, 1.0]])),
            np.array([[1.0, -2.0, 0.5, 4.0]]),
        ),
    ]
    probes = [
        _Probe(
            label,
            (np.asarray(p, float), g),
            (np.asarray(sg.softmax_vjp(p, g), dtype=float),),
            f"{_show('p', p)}, {_show('g', g)}",
        )
        for label, p, g in inputs
    ]

    def right(p, g, axis=-1):
        return p * (g - np.sum(g * p, axis=axis, keepdims=True))

    candidates = [
        _Candidate(("vjp-missing-p",), lambda p, g: g * p - np.sum(g * p, axis=-1, keepdims=True)),
        _Candidate(
            ("vjp-missing-outer-p",), lambda p, g: g - np.sum(g * p, axis=-1, keepdims=True)
        ),
        _Candidate(("vjp-sign",), lambda p, g: -right(p, g)),
        _Candidate(("vjp-diagonal-only",), lambda p, g: g * p * (1 - p)),
        _Candidate(("vjp-wrong-axis",), lambda p, g: right(p, g, axis=0)),
        _Candidate(("vjp-wrong-axis",), lambda p, g: p * (g - np.sum(g * p))),
        _Candidate(("vjp-no-keepdims",), lambda p, g: p * (g - np.sum(g * p, axis=-1))),
        _Candidate(("vjp-matrix-product",), lambda p, g: p * (g - g @ p)),
        _Candidate(("vjp-softmax-of-p",), lambda p, g: right(_stable_softmax_np(p), g)),
    ]
    passed = _run_probes(spec, softmax_vjp, probes, candidates)

    label = f"{n_large} classes"
    p = np.full(n_large, 1.0 / n_large)
    g = np.linspace(-1.0, 1.0, n_large)
    run = _call(spec, softmax_vjp, (p.copy(), g.copy()), label, measure_memory=True)
    got = _as_floats(spec.name, run.value, label)
    if run.peak_bytes > n_large * n_large * 2:
        raise CheckFailed(
            f"{spec.name} is wrong on probe {label!r}.\n"
            + spec.describe("vjp-formed-jacobian")
            + f"\nPeak memory: {run.peak_bytes / 1e6:.1f} MB; an n x n matrix of float64 for "
            f"n = {n_large} is {8 * n_large * n_large / 1e6:.0f} MB, the answer itself "
            f"{8 * n_large / 1e6:.3f} MB."
        )
    probe = _Probe(label, (), (p * (g - g @ p),), "uniform p")
    bad = _worst((got,), probe.expected, spec.rtol, spec.atol)
    if bad is not None:
        raise CheckFailed(_message(spec, probe, (got,), bad, (), run.warnings))
    return Passed(spec.name, passed.n_probes + 1)


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


def _hard(y):
    return np.eye(y.shape[-1])[np.argmax(y, axis=-1)]


def check_cross_entropy(cross_entropy: Callable) -> Passed:
    """Check a student's ``cross_entropy(z, y)`` -> the mean over rows of -sum(y log p), one number.

    ``z`` logits and ``y`` targets (class weights), both of shape (N, n). The probes include a
    target whose probability is e^-2000 (0 in floating point: log(softmax(z)) gives inf), soft
    targets, class weights that do not sum to 1, and batches with N != n.
    """
    spec = _SPECS["check_cross_entropy"]
    sg = _ref()
    inputs = [
        *_ce_probes("batch"),
        (
            "large logits, the target on the largest",
            np.array([[1000.0, 999.0, 998.0]]),
            np.array([[1.0, 0.0, 0.0]]),
        ),
        (
            "a target class whose probability underflows to 0",
            np.array([[1000.0, 0.0, -1000.0], [0.5, -0.5, 0.0]]),
            np.array([[0.2, 0.3, 0.5], [0.0, 1.0, 0.0]]),
        ),
    ]
    probes = [
        _Probe(
            label,
            (z, y),
            (np.asarray(sg.cross_entropy(z, y), dtype=float),),
            f"{_show('z', z)}, {_show('y', y)}",
        )
        for label, z, y in inputs
    ]

    def one_number(spec: _Spec, value, probe: _Probe):
        got = _as_floats(spec.name, value, probe.label)
        return (got.reshape(()) if got.size == 1 else got,)

    def loss(logp, y, divide):
        return -np.sum(y * logp) / divide

    N = lambda z: z.shape[0]
    candidates = [
        _Candidate(
            ("log-softmax-underflow",), lambda z, y: loss(np.log(_stable_softmax_np(z)), y, N(z))
        ),
        _Candidate(
            ("log-softmax-underflow",),
            lambda z, y: -np.sum(np.where(y > 0, y * np.log(_stable_softmax_np(z)), 0.0)) / N(z),
        ),
        _Candidate(("softmax-overflow",), lambda z, y: loss(np.log(_naive_softmax(z)), y, N(z))),
        _Candidate(
            ("logsumexp-overflow",),
            lambda z, y: loss(z - np.log(np.exp(z).sum(-1, keepdims=True)), y, N(z)),
        ),
        _Candidate(("train-loss-sum",), lambda z, y: loss(_stable_log_softmax_np(z), y, 1)),
        _Candidate(("ce-mean-over-all",), lambda z, y: loss(_stable_log_softmax_np(z), y, z.size)),
        _Candidate(
            ("ce-mean-over-classes",), lambda z, y: loss(_stable_log_softmax_np(z), y, z.shape[1])
        ),
        _Candidate(("ce-loss-sign",), lambda z, y: -loss(_stable_log_softmax_np(z), y, N(z))),
        _Candidate(
            ("ce-hard-labels",), lambda z, y: loss(_stable_log_softmax_np(z), _hard(y), N(z))
        ),
        _Candidate(
            ("ce-loss-weighted-mean",), lambda z, y: loss(_stable_log_softmax_np(z), y, y.sum())
        ),
        _Candidate(
            ("ce-softmax-wrong-axis",), lambda z, y: loss(_stable_log_softmax_np(z, 0), y, N(z))
        ),
    ]
    for eps in _EPSILONS:
        candidates += [
            _Candidate(
                ("log-softmax-epsilon",),
                lambda z, y, e=eps: loss(np.log(_stable_softmax_np(z) + e), y, N(z)),
            ),
            _Candidate(
                ("log-softmax-epsilon",),
                lambda z, y, e=eps: loss(np.log(np.maximum(_stable_softmax_np(z), e)), y, N(z)),
            ),
        ]
    return _run_probes(spec, cross_entropy, probes, candidates, extract=one_number)


def check_cross_entropy_grad(cross_entropy_grad: Callable, *, part: str = "batch") -> Passed:
    """Check a student's ``cross_entropy_grad(z, y)`` -> dL/dz for L = mean over rows of -sum(y log p).

    ``z`` logits and ``y`` targets (class weights), both of shape (N, n). ``part`` selects the
    probes: "one_hot" (single rows with one-hot targets: p - y), "soft" (adds soft targets and
    weights that do not sum to 1: p * sum(y) - y) and "batch" (adds batches: the 1/N of the mean).

    Wrong answers are matched against every combination of a wrong per-row formula (the first
    seed's sum(p*y) - y, p - y for unnormalised targets, logits instead of probabilities, ...)
    with a wrong scale (no 1/N, 1/(N*n), 1/n) and a flipped sign.
    """
    if part not in ("one_hot", "soft", "batch"):
        raise ValueError(f"part: expected 'one_hot', 'soft' or 'batch', got {part!r}")
    spec = _SPECS["check_cross_entropy_grad"]
    sg = _ref()
    probes = [
        _Probe(
            label,
            (z, y),
            (np.asarray(sg.cross_entropy_grad(z, y, reduction="mean"), dtype=float),),
            f"{_show('z', z)}, {_show('y', y)}",
        )
        for label, z, y in _ce_probes(part)
    ]

    def rowsum(y):
        return y.sum(-1, keepdims=True)

    rows = {
        None: lambda z, y: _stable_softmax_np(z) * rowsum(y) - y,
        "ce-seed-sum-py": lambda z, y: np.sum(_stable_softmax_np(z) * y, -1, keepdims=True) - y,
        "ce-p-minus-y-unnormalised": lambda z, y: _stable_softmax_np(z) - y,
        "ce-forgot-softmax": lambda z, y: z - y,
        "ce-softmax-wrong-axis": lambda z, y: _stable_softmax_np(z, axis=0) * rowsum(y) - y,
        "ce-target-sum-all": lambda z, y: _stable_softmax_np(z) * y.sum() - y,
        "ce-hard-labels": lambda z, y: _stable_softmax_np(z) - _hard(y),
        "ce-grad-wrt-p": lambda z, y: -y / _stable_softmax_np(z),
        "softmax-overflow": lambda z, y: _naive_softmax(z) * rowsum(y) - y,
    }
    scales = {
        None: lambda z: z.shape[0],
        "ce-missing-mean": lambda z: 1,
        "ce-mean-over-all": lambda z: z.size,
        "ce-mean-over-classes": lambda z: z.shape[1],
    }
    candidates = []
    for row_key, row in rows.items():
        for scale_key, scale in scales.items():
            for sign in (1, -1):
                keys = tuple(k for k in (row_key, "ce-sign" if sign < 0 else None, scale_key) if k)
                if keys:
                    candidates.append(
                        _Candidate(
                            keys,
                            lambda z, y, row=row, scale=scale, sign=sign: (
                                sign * row(z, y) / scale(z)
                            ),
                        )
                    )
    candidates.append(
        _Candidate(("ce-precedence",), lambda z, y: _stable_softmax_np(z) * rowsum(y) - y / len(z))
    )
    candidates.sort(key=lambda c: len(c.keys))
    return _run_probes(spec, cross_entropy_grad, probes, candidates)


# ----------------------------------------------------------------------------- chapter 5: gradient checking


def _probe_function(x):
    return float(np.sum(np.sin(x) * x**2) + 0.5 * np.sum(x) ** 2)


def _probe_gradient(x):
    return np.cos(x) * x**2 + 2 * x * np.sin(x) + np.sum(x)


def _log_square(x):
    return float(np.sum(np.log(x**2)))


class _Spy:
    """Wraps f, recording every point it is evaluated at and the value it returned."""

    def __init__(self, f):
        self.f = f
        self.points: list[np.ndarray] = []
        self.values: list[float] = []

    def __call__(self, x):
        point = np.array(x, dtype=float, copy=True)
        value = self.f(point.copy())
        self.points.append(point)
        self.values.append(value)
        return value

    def moves(self, x0: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """(point - x0, f(point)) for every evaluation, in x0's shape."""
        return [
            (p.reshape(x0.shape) - x0, v)
            for p, v in zip(self.points, self.values, strict=True)
            if p.size == x0.size
        ]

    def steps(self, x0: np.ndarray) -> np.ndarray:
        """Largest move of each coordinate in the evaluations (0 where none)."""
        moves = [np.abs(d) for d, _ in self.moves(x0)]
        return np.max(moves, axis=0) if moves else np.zeros_like(x0)


#: a step h_i is sound between these multiples of max(1, |x_i|) (eps**(1/3) ~ 6e-6 is between)
_STEP_WINDOW = (1e-7, 1e-4)


def _step_keys(x0: np.ndarray, steps: np.ndarray) -> tuple[str, ...]:
    """The step mistake the recorded steps show, if any (steps of 0 are not judged here)."""
    moved = steps > 0
    if not moved.any():
        return ()
    scale = np.maximum(1.0, np.abs(x0))
    rel = steps[moved] / scale[moved]
    big = (np.abs(x0) > 1e6) & moved
    if big.any() and np.any(steps[big] < _STEP_WINDOW[0] * np.abs(x0[big])):
        return ("gc-step-not-scaled",)
    if rel.min() < _STEP_WINDOW[0]:
        return ("gc-step-too-small",)
    if rel.max() > _STEP_WINDOW[1]:
        return ("gc-step-too-large",)
    return ()


def _central(f, x, h, kind="central"):
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
        else:  # "double": no 1/2
            g[i] = (f(x + e) - f(x - e)) / h
    return g


def _by_rows(f, x, h):
    """range(len(x)): for a 2-D x every step moves a whole row."""
    g = np.zeros_like(x)
    for i in range(len(x)):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def _own_step(x0: np.ndarray, got: np.ndarray, moves) -> tuple[tuple[str, ...], str]:
    """Judge a step chosen by the student from where it evaluated f: (keys, detail)."""
    single = {}  # coordinate -> list of (signed move, value) for moves of that coordinate alone
    at_x0 = False
    for d, v in moves:
        nz = np.flatnonzero(d)
        if nz.size == 0:
            at_x0 = True
        elif nz.size == 1:
            i = np.unravel_index(int(nz[0]), x0.shape)
            single.setdefault(i, []).append((float(d[i]), v))
    coords = list(np.ndindex(x0.shape))
    for i in coords:  # a coordinate never moved
        if i not in single:
            key = ("gc-step-vanishes",) if x0[i] == 0 else ()
            return key, f"Your function never moved coordinate {i} (x = {x0[i]!r}) to evaluate f."
    for i in coords:
        plus = [m for m, _ in single[i] if m > 0]
        minus = [m for m, _ in single[i] if m < 0]
        if not (plus and minus):
            key = "gc-forward-difference" if plus else "gc-backward-difference"
            return (key,) if at_x0 else (), (
                f"Your function evaluated f on one side of x only along coordinate {i}."
            )
    steps = np.array([max(abs(m) for m, _ in single[i]) for i in coords]).reshape(x0.shape)
    keys = _step_keys(x0, steps)
    if keys:
        return keys, f"Your step per coordinate: {_fmt(steps)}."
    # the quotient from the points evaluated, f(x + s e_i) - f(x - s e_i) over 2 s_i
    ratio, divisor, step = {}, {}, {}
    for i in coords:
        (s_plus, f_plus), (s_minus, f_minus) = max(single[i]), min(single[i])
        if len(single[i]) != 2 or not math.isclose(s_plus, -s_minus, rel_tol=1e-6):
            continue  # an unusual stencil: judged by its accuracy only
        quotient = (f_plus - f_minus) / (s_plus - s_minus)
        if math.isclose(float(got[i]), quotient, rel_tol=1e-7, abs_tol=1e-10) or not got[i]:
            continue
        ratio[i], divisor[i], step[i] = (
            float(got[i]) / quotient,
            (f_plus - f_minus) / float(got[i]),
            s_plus,
        )
    if not ratio:
        return (), ""
    if all(math.isclose(r, 2.0, rel_tol=1e-6) for r in ratio.values()):
        return ("gc-missing-half",), ""
    d = list(divisor.values())
    one_divisor = len(d) > 1 and all(math.isclose(v, d[0], rel_tol=1e-6) for v in d)
    if one_divisor and not all(math.isclose(s, 0.5 * d[0], rel_tol=1e-6) for s in step.values()):
        return ("gc-step-mismatch",), (
            f"You divided by {d[0]:.3g} for every coordinate, but moved them by "
            f"{_fmt(np.array(list(step.values())))}."
        )
    i = next(iter(ratio))
    return (), (
        f"Along coordinate {i} the points you evaluated give the quotient {float(got[i]) / ratio[i]!r}"
        f"; you returned {float(got[i])!r}."
    )


def check_numerical_gradient(numerical_gradient: Callable, *, scale_test: bool = False) -> Passed:
    """Check a student's ``numerical_gradient(f, x, h=None)``: central differences of a scalar f.

    With an explicit step (``h=1e-3`` and ``h=0.1``) the answer must be the central difference
    with exactly that step; a forward or backward difference, a missing 1/2, a loop over rows
    and a step other than h are recognised. With ``h=None`` the points where f is evaluated
    reveal the student's own step: it must move every coordinate, including one at 0, to both
    sides by the same h_i between 1e-7 and 1e-4 times max(1, |x_i|), divide by 2 h_i, and give
    the gradient to 1e-7 relative accuracy. ``scale_test=True`` adds coordinates near 1e8,
    where the step must scale with |x_i|.
    """
    spec = _SPECS["check_numerical_gradient"]
    x = np.array([0.5, -1.3, 2.0, 0.1])
    x_matrix = np.array([[0.3, -0.7], [1.1, 2.5]])
    explicit = [
        ("h = 1e-3", x, 1e-3),
        ("a 2 x 2 array x, h = 1e-3", x_matrix, 1e-3),
        ("h = 0.1", x, 0.1),
    ]
    probes = [
        _Probe(
            f"f(x) = sum(sin(x) x^2) + sum(x)^2 / 2, {label}",
            (_probe_function, x0, h),
            (_central(_probe_function, x0, h),),
            f"{_show('x', x0)}",
        )
        for label, x0, h in explicit
    ]
    candidates = [
        _Candidate(("gc-forward-difference",), lambda f, x, h: _central(f, x, h, "forward")),
        _Candidate(("gc-backward-difference",), lambda f, x, h: _central(f, x, h, "backward")),
        _Candidate(("gc-missing-half",), lambda f, x, h: _central(f, x, h, "double")),
        _Candidate(("gc-rows-not-entries",), _by_rows),
    ]
    outputs = []  # every call gets a fresh spy, so the steps the student took are known per probe
    for i, probe in enumerate(probes):
        f, x0, h = probe.args
        spy = _Spy(f)
        run = _call(spec, numerical_gradient, (spy, x0.copy(), h), probe.label)
        got = (_as_floats(spec.name, run.value, probe.label),)
        outputs.append(got)
        bad = _worst(got, probe.expected, spec.rtol, spec.atol)
        if bad is None:
            continue
        steps = spy.steps(x0)
        if np.any((steps > 0) & ~np.isclose(steps, h, rtol=1e-6, atol=0)):
            keys: tuple[str, ...] = ("gc-explicit-step-changed",)
            detail = f"Asked for h = {h}; your steps per coordinate: {_fmt(steps)}."
        else:
            for later in probes[i + 1 :]:
                try:
                    f2, x2, h2 = later.args
                    r2 = _call(spec, numerical_gradient, (_Spy(f2), x2.copy(), h2), later.label)
                    outputs.append((_as_floats(spec.name, r2.value, later.label),))
                except CheckFailed:
                    outputs.append(None)
            keys, detail = _diagnose(candidates, probes, outputs, spec), ""
        raise CheckFailed(_message(spec, probe, got, bad, keys, run.warnings, detail=detail))

    own = [
        (
            "h=None (your own step)",
            np.array([0.5, -1.3, 2.0, 1e-9, 0.0]),
            _probe_function,
            _probe_gradient,
        ),
        (
            "h=None on a 2 x 2 array x",
            np.array([[0.3, 0.0], [-2.5, 1.1]]),
            _probe_function,
            _probe_gradient,
        ),
    ]
    if scale_test:
        own.append(
            (
                "h=None, f(x) = sum(log(x^2)) at coordinates near 1e8",
                np.array([1.0e8, -3.0e7, 2.0]),
                _log_square,
                lambda v: 2.0 / v,
            )
        )
    for label, x0, f, grad in own:
        spy = _Spy(f)
        run = _call(spec, numerical_gradient, (spy, x0.copy(), None), label)
        got = _as_floats(spec.name, run.value, label)
        probe = _Probe(label, (), (grad(x0),), f"{_show('x', x0)}")
        bad = _worst((got,), probe.expected, 1e-7, 1e-8)
        if got.shape != x0.shape:
            raise CheckFailed(_message(spec, probe, (got,), bad, (), run.warnings))
        keys, detail = _own_step(x0, got, spy.moves(x0))
        if keys or bad is not None:
            bad = bad or _worst((got,), probe.expected, 1e-15, 1e-300) or (0, None)
            raise CheckFailed(_message(spec, probe, (got,), bad, keys, run.warnings, detail=detail))
    return Passed(spec.name, len(probes) + len(own))


def _scalar(spec: _Spec, value, probe: _Probe) -> tuple[np.ndarray, ...]:
    """One real number (a float, a NumPy scalar, a 0-d or one-element array)."""
    got = _as_floats(spec.name, value, probe.label)
    if got.size != 1:
        raise CheckFailed(
            f"{spec.name} must return one number (a float), got an array of shape {got.shape} on "
            f"probe {probe.label!r}."
        )
    return (got.reshape(()),)


def _relative_error(a, n):
    return np.linalg.norm(a - n) / max(np.linalg.norm(a), np.linalg.norm(n), 1e-12)


def check_gradient_error(gradient_error: Callable) -> Passed:
    """Check a student's ``gradient_error(f, grad_f, x)``: |a - n| / max(|a|, |n|, 1e-12).

    ``a = grad_f(x)`` is the analytic gradient and ``n`` the student's numerical gradient of
    ``f`` at ``x`` (Euclidean norms over all entries). Probes: gradients half and twice the right
    size (both 0.5: a one-sided normalisation tells them apart), a function of scale 1e6, a zero
    gradient (0/0 without the floor), one wrong entry among several, a 2 x 3 array x, and correct
    gradients, whose error must be below 1e-7.
    """
    spec = _SPECS["check_gradient_error"]
    x3 = np.array([1.0, -2.0, 3.0])
    x4 = np.array([0.5, -1.3, 2.0, 0.1])
    xm = np.array([[0.3, -0.7, 1.2], [1.1, 2.5, -0.4]])

    def square(v):
        return float(np.sum(v**2))

    def big(v):
        return 1e6 * float(np.sum(v**2))

    def one_wrong(v):
        g = _probe_gradient(v)
        g.flat[0] *= 2.0
        return g

    def sign_slip(v):
        g = _probe_gradient(v)
        g.flat[-1] *= -1.0
        return g

    cases = [  # label, f, grad_f, x, the true gradient of f (None: grad_f is right)
        ("a gradient half the right size", square, lambda v: v, x3, lambda v: 2 * v),
        ("a gradient twice the right size", square, lambda v: 4 * v, x3, lambda v: 2 * v),
        ("f = 1e6 |x|^2, half its gradient", big, lambda v: 1e6 * v, x3, lambda v: 2e6 * v),
        ("a constant f and its zero gradient", lambda v: 3.0, np.zeros_like, x3, None),
        ("one wrong entry of four", _probe_function, one_wrong, x4, _probe_gradient),
        ("a 2 x 3 array x, one sign error", _probe_function, sign_slip, xm, _probe_gradient),
        ("a correct gradient", _probe_function, _probe_gradient, x4, None),
        ("f = 1e6 |x|^2 and its correct gradient", big, lambda v: 2e6 * v, x3, None),
    ]
    probes = []
    for label, f, grad, x0, true in cases:
        a = np.asarray(grad(x0.copy()), dtype=float)
        if true is None:  # right gradient: the answer is round-off, below 1e-7
            expected, decides, tol = 0.0, label.startswith("a constant"), (0.0, 1e-7)
        else:
            expected, decides, tol = _relative_error(a, true(x0)), True, None
        probes.append(
            _Probe(
                label,
                (f, grad, x0, true),  # the student is called with the first three
                (np.array(expected),),
                f"{_show('x', x0)}, {_show('grad_f(x)', a)}",
                decides=decides,
                tol=tol,
            )
        )

    def candidate(formula):
        def fn(f, grad, x0, true):
            a = np.asarray(grad(x0.copy()), dtype=float).ravel()
            n = (true(x0) if true is not None else a).ravel()
            return formula(a, n)

        return fn

    def norm(v, order):
        return np.linalg.norm(v, order)

    def safe(num, den):
        return num / den if den else (np.nan if num == 0 else np.inf)

    candidates = [
        _Candidate(("ge-absolute",), candidate(lambda a, n: norm(a - n, 2))),
        _Candidate(
            ("ge-one-sided",), candidate(lambda a, n: norm(a - n, 2) / max(norm(a, 2), 1e-12))
        ),
        _Candidate(
            ("ge-one-sided",), candidate(lambda a, n: norm(a - n, 2) / max(norm(n, 2), 1e-12))
        ),
        _Candidate(
            ("ge-sum-of-norms",),
            candidate(lambda a, n: norm(a - n, 2) / max(norm(a, 2) + norm(n, 2), 1e-12)),
        ),
        _Candidate(
            ("ge-wrong-norm",),
            candidate(
                lambda a, n: norm(a - n, np.inf) / max(norm(a, np.inf), norm(n, np.inf), 1e-12)
            ),
        ),
        _Candidate(
            ("ge-wrong-norm",),
            candidate(lambda a, n: norm(a - n, 1) / max(norm(a, 1), norm(n, 1), 1e-12)),
        ),
        _Candidate(
            ("ge-no-floor",),
            candidate(lambda a, n: safe(norm(a - n, 2), max(norm(a, 2), norm(n, 2)))),
        ),
        _Candidate(
            ("ge-entrywise",),
            candidate(
                lambda a, n: np.max(
                    np.abs(a - n) / np.maximum(np.maximum(np.abs(a), np.abs(n)), 1e-12)
                )
            ),
        ),
    ]
    outputs = []
    for i, probe in enumerate(probes):
        f, grad, x0, _ = probe.args
        spy = _Spy(f)
        run = _call(spec, gradient_error, (spy, grad, x0.copy()), probe.label)
        got = _scalar(spec, run.value, probe)
        outputs.append(got)
        bad = _worst(got, probe.expected, *_tol(spec, probe))
        if bad is None:
            continue
        keys = _step_keys(x0, spy.steps(x0))  # the student's numerical gradient, seen through f
        if not keys:
            for later in probes[i + 1 :]:
                try:
                    f2, g2, x2, _ = later.args
                    r2 = _call(spec, gradient_error, (_Spy(f2), g2, x2.copy()), later.label)
                    outputs.append(_scalar(spec, r2.value, later))
                except CheckFailed:
                    outputs.append(None)
            keys = _diagnose(candidates, probes, outputs, spec)
        raise CheckFailed(_message(spec, probe, got, bad, keys, run.warnings))
    return Passed(spec.name, len(probes))


def _pairs(moves) -> tuple[list[tuple[np.ndarray, float, float]], bool, int]:
    """Central-difference pairs among the evaluations: [(d, f(x + d), f(x - d))], x itself seen,
    and how many moves found no partner."""
    at_x0, pending, pairs = False, [], []
    for d, v in moves:
        if not np.any(d):
            at_x0 = True
            continue
        scale = float(np.max(np.abs(d)))
        for k, (e, w) in enumerate(pending):
            if np.allclose(d, -e, rtol=1e-6, atol=1e-9 * scale):
                pairs.append((e, w, v))  # f(x + e) = w, f(x - e) = v
                del pending[k]
                break
        else:
            pending.append((d, v))
    return pairs, at_x0, len(pending)


def _direction_errors(g: np.ndarray, pairs) -> np.ndarray:
    """The relative error along each recorded direction, from the values the student saw."""
    out = []
    for d, f_plus, f_minus in pairs:
        size = float(np.linalg.norm(d))
        a = float(np.sum(g * d)) / size
        n = (f_plus - f_minus) / (2 * size)
        out.append(abs(a - n) / max(abs(a), abs(n), 1e-12))
    return np.array(out)


def _unit(pairs) -> np.ndarray:
    return np.array([np.ravel(d) / np.linalg.norm(d) for d, _, _ in pairs])


def check_directional_error(directional_error: Callable, *, seed: int = 53) -> Passed:
    """Check a student's ``directional_error(f, grad_f, x, n_directions=3, seed=0)``.

    It must draw ``n_directions`` random unit directions u from ``np.random.default_rng(seed)``,
    evaluate f only at x + h u and x - h u (h = eps**(1/3) * max(1, max |x_i|)), and return the
    largest relative error |a - n| / max(|a|, |n|, 1e-12) of a = grad_f(x) . u against the
    central difference n. The evaluation points reveal the directions and the step, so the
    answer is checked against the errors along the student's own directions: a correct gradient
    must give below 1e-6, a wrong one the largest of those errors; the same seed must give the
    same directions, another seed others. ``seed`` chooses the probe data (hidden tests use
    another).
    """
    spec = _SPECS["check_directional_error"]
    rng = np.random.default_rng(seed)
    x_big = rng.normal(size=2000)
    x_matrix = rng.normal(size=(20, 30))
    x_far = 1e6 * rng.uniform(1.0, 3.0, size=50) * rng.choice([-1.0, 1.0], size=50)

    def f_big(x):
        return float(0.5 * np.sum(x**2) + np.sum(np.sin(x)))

    def g_big(x):
        return x + np.cos(x)

    def g_big_wrong(x):
        g = x + np.cos(x)
        g[::10] = x[::10] - np.cos(x[::10])  # a sign error in one entry of every ten
        return g

    def f_tanh(x):
        return float(np.sum(np.tanh(x)))

    runs = [  # label, f, grad_f, x, n_directions, seed, is grad_f right
        ("2000 variables, a correct gradient, 4 directions", f_big, g_big, x_big, 4, 0, True),
        (
            "2000 variables, a sign error in every tenth entry, seed 7",
            f_big,
            g_big_wrong,
            x_big,
            4,
            7,
            False,
        ),
        ("the same call again (seed 7)", f_big, g_big_wrong, x_big, 4, 7, False),
        ("the same call with seed 8", f_big, g_big_wrong, x_big, 4, 8, False),
        (
            "a 20 x 30 array x, a wrong gradient",
            f_tanh,
            lambda w: 1.0 / np.cosh(w),
            x_matrix,
            3,
            1,
            False,
        ),
        (
            "a 20 x 30 array x, a correct gradient",
            f_tanh,
            lambda w: 1.0 / np.cosh(w) ** 2,
            x_matrix,
            3,
            2,
            True,
        ),
        (
            "coordinates near 1e6, a correct gradient",
            _log_square,
            lambda v: 2.0 / v,
            x_far,
            3,
            3,
            True,
        ),
    ]
    seen: dict[int, tuple[float, np.ndarray]] = {}  # run -> (answer, directions)

    def fail(probe, got, expected, keys, detail="", run=None):
        """Raise for this run; ``expected`` None when the fault is not in the number."""
        if expected is None:
            bad, probe.expected = (0, None), got
        else:
            probe.expected = (np.array(expected),)
            bad = _worst(got, probe.expected, spec.rtol, spec.atol) or (0, None)
        raise CheckFailed(
            _message(spec, probe, got, bad, keys, run.warnings if run else [], detail=detail)
        )

    for k, (label, f, grad, x0, n_dir, s, right) in enumerate(runs):
        spy = _Spy(f)
        probe = _Probe(
            label, (), (np.array(0.0),), f"x of shape {x0.shape}, n_directions={n_dir}, seed={s}"
        )
        run = _call(
            spec,
            directional_error,
            (spy, grad, x0.copy()),
            label,
            kwargs={"n_directions": n_dir, "seed": s},
        )
        got = _scalar(spec, run.value, probe)
        value = float(got[0])
        calls = len(spy.points)
        if calls > 2 * n_dir + 2:
            fail(
                probe,
                got,
                None,
                ("de-too-many-evaluations",),
                f"f was evaluated {calls} times for {n_dir} directions (at most {2 * n_dir + 2}).",
                run,
            )
        pairs, at_x0, unpaired = _pairs(spy.moves(x0))
        if unpaired or len(pairs) != n_dir:
            keys = ("gc-forward-difference",) if at_x0 and not pairs else ()
            fail(
                probe,
                got,
                None,
                keys,
                f"Asked for {n_dir} directions; f was evaluated at {len(pairs)} pairs x +- h u "
                f"and {unpaired} other points.",
                run,
            )
        size = np.array([np.linalg.norm(d) for d, _, _ in pairs])
        keys = _step_keys(np.array([np.max(np.abs(x0))]), np.array([size.min()]))
        keys = keys or _step_keys(np.array([np.max(np.abs(x0))]), np.array([size.max()]))
        if keys:
            fail(probe, got, None, keys, f"Your steps h |u|: {_fmt(size)}.", run)
        errors = _direction_errors(np.asarray(grad(x0.copy()), dtype=float), pairs)
        expected = float(errors.max())
        seen[k] = (value, _unit(pairs))
        if right:
            if not value < 1e-6:
                fail(
                    probe,
                    got,
                    expected,
                    (),
                    "A correct gradient must give an error below 1e-6.",
                    run,
                )
            continue
        if _worst(got, (np.array(expected),), spec.rtol, spec.atol) is not None:
            absolute = max(
                abs(
                    float(np.sum(np.asarray(grad(x0), float) * d)) / np.linalg.norm(d)
                    - (fp - fm) / (2 * np.linalg.norm(d))
                )
                for d, fp, fm in pairs
            )
            if math.isclose(value, absolute, rel_tol=1e-4):
                keys = ("ge-absolute",)
            elif math.isclose(value, float(errors.mean()), rel_tol=1e-4) or np.any(
                np.isclose(value, errors, rtol=1e-4)
            ):
                keys = ("de-not-max",)
            else:
                keys = ()
            fail(
                probe,
                got,
                expected,
                keys,
                f"The errors along your {n_dir} directions: {_fmt(errors)}.",
                run,
            )
        if k == 2:
            (v1, u1), (v2, u2) = seen[1], seen[2]
            if v1 != v2 or not np.array_equal(u1, u2):
                fail(
                    probe,
                    got,
                    v1,
                    ("de-unseeded",),
                    "Two calls with seed=7 gave different directions.",
                    run,
                )
        if k == 3 and np.allclose(seen[1][1], seen[3][1]):
            fail(
                probe,
                got,
                value,
                ("de-seed-ignored",),
                "seed=7 and seed=8 gave the same directions.",
                run,
            )
    return Passed(spec.name, len(runs))


# ----------------------------------------------------------------------------- chapter 6: training


def _blobs(seed: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Three overlapping Gaussian blobs in 2-D, 40 points each.

    They overlap, so the loss has a minimum above 0: a learning rate far too large shows in the
    curve instead of driving every loss to 0.
    """
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 1.5], [-1.3, -0.75], [1.3, -0.75]])
    labels = np.repeat(np.arange(3), 40)
    X = centres[labels] + rng.normal(size=(labels.size, 2))
    return X, labels


def _three(spec: _Spec, value, probe: _Probe, names: tuple[str, str, str]) -> tuple:
    """The three values a function returns as a tuple (a list is accepted too)."""
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        what = (
            f"{type(value).__name__} of length {len(value)}"
            if isinstance(value, (tuple, list))
            else type(value).__name__
        )
        raise CheckFailed(
            f"{spec.name} must return the three values ({', '.join(names)}) as a tuple; got a "
            f"{what} on probe {probe.label!r}."
        )
    return tuple(
        _as_floats(spec.name, v, probe.label, n) for v, n in zip(value, names, strict=True)
    )


def _linear_pieces(W, b, X, labels):
    Z = X @ W + b
    N, n = Z.shape
    rows = np.arange(N)
    Y = np.eye(n)[labels]
    return Z, N, rows, Y, _stable_softmax_np(Z), _stable_log_softmax_np(Z)


def _loss_and_grad_mistakes() -> list[_Candidate]:
    """What loss_and_grad returns with each catalogued mistake, as (loss, dW, db)."""

    def variant(loss=None, G=None, dW=None, db=None):
        def fn(W, b, X, labels):
            Z, N, rows, Y, P, logp = _linear_pieces(W, b, X, labels)
            env = {
                "Z": Z,
                "N": N,
                "rows": rows,
                "Y": Y,
                "P": P,
                "logp": logp,
                "X": X,
                "labels": labels,
                "n": Z.shape[1],
            }
            L = loss(env) if loss else -np.mean(logp[rows, labels])
            g = G(env) if G else (P - Y) / N
            return (
                np.asarray(L, dtype=float).reshape(()),
                dW(env, g) if dW else X.T @ g,
                db(env, g) if db else g.sum(axis=0),
            )

        return fn

    def shifted(e, k):
        return (e["labels"] + k) % e["n"]

    def label_index_grad(e):
        P = e["P"].copy()
        P[:, e["labels"]] -= 1.0
        return P / e["N"]

    return [
        _Candidate(("train-grad-shape",), variant(dW=lambda e, g: (e["X"].T @ g).T)),
        _Candidate(("train-db-double-mean",), variant(db=lambda e, g: g.sum(axis=0) / e["N"])),
        _Candidate(("train-dw-double-mean",), variant(dW=lambda e, g: e["X"].T @ g / e["N"])),
        _Candidate(("train-db-wrong-axis",), variant(db=lambda e, g: g.sum(axis=1))),
        _Candidate(
            ("train-loss-sum",), variant(loss=lambda e: -np.sum(e["logp"][e["rows"], e["labels"]]))
        ),
        _Candidate(("ce-sign",), variant(G=lambda e: (e["Y"] - e["P"]) / e["N"])),
        _Candidate(("ce-sign",), variant(dW=lambda e, g: -(e["X"].T @ g))),
        _Candidate(("ce-missing-mean",), variant(G=lambda e: e["P"] - e["Y"])),
        _Candidate(("ce-mean-over-all",), variant(G=lambda e: (e["P"] - e["Y"]) / e["Z"].size)),
        _Candidate(
            ("ce-seed-sum-py",),
            variant(G=lambda e: (np.sum(e["P"] * e["Y"], 1, keepdims=True) - e["Y"]) / e["N"]),
        ),
        _Candidate(("ce-forgot-softmax",), variant(G=lambda e: (e["Z"] - e["Y"]) / e["N"])),
        _Candidate(
            ("softmax-overflow",),
            variant(G=lambda e: (_naive_softmax(e["Z"]) - e["Y"]) / e["N"]),
        ),
        _Candidate(
            ("log-softmax-underflow",),
            variant(loss=lambda e: -np.mean(np.log(e["P"][e["rows"], e["labels"]]))),
        ),
        _Candidate(("ce-loss-all-classes",), variant(loss=lambda e: -np.mean(e["logp"]))),
        _Candidate(
            ("train-label-indexing",), variant(loss=lambda e: -np.mean(e["logp"][:, e["labels"]]))
        ),
        _Candidate(("train-label-indexing",), variant(G=label_index_grad)),
        _Candidate(
            ("train-label-indexing",),
            variant(loss=lambda e: -np.mean(e["logp"][:, e["labels"]]), G=label_index_grad),
        ),
        *(
            _Candidate(
                ("train-labels-off-by-one",),
                variant(
                    loss=lambda e, k=k: -np.mean(e["logp"][e["rows"], shifted(e, k)]),
                    G=lambda e, k=k: (e["P"] - np.eye(e["n"])[shifted(e, k)]) / e["N"],
                ),
            )
            for k in (-1, 1)
        ),
    ]


def check_loss_and_grad(loss_and_grad: Callable) -> Passed:
    """Check a student's ``loss_and_grad(W, b, X, labels)`` -> (loss, dW, db).

    The model is Z = X @ W + b with W of shape (D, n) and b of shape (n,); the loss is the mean
    cross-entropy over the N rows of X with integer ``labels``. Probes of different N, D and n,
    a single example, two classes, and logits near +-1000 (where a label's probability is
    e^-2000: log(softmax) gives inf, a naive softmax nan). The answer is a tuple (a list is
    accepted) of a number and two arrays of the shapes of W and b.
    """
    spec = _SPECS["check_loss_and_grad"]
    sg = _ref()
    rng = np.random.default_rng(60)
    problems = [
        (
            "X of shape (6, 3), W (3, 4), b (4,)",
            np.round(rng.normal(size=(3, 4)) * 0.5, 3),
            np.array([0.1, -0.2, 0.0, 0.3]),
            np.round(rng.normal(size=(6, 3)), 3),
            np.array([0, 2, 1, 3, 2, 0]),
        ),
        (
            "logits near +-1000",
            np.array([[100.0, 0.0, -100.0], [0.0, 50.0, 0.0]]),
            np.zeros(3),
            np.array([[10.0, 0.0], [-10.0, 0.0], [0.0, 1.0]]),
            np.array([2, 0, 1]),
        ),
        (
            "one example, X (1, 2), W (2, 3)",
            np.array([[0.5, -0.3, 0.2], [0.1, 0.4, -0.6]]),
            np.array([0.0, 0.2, -0.1]),
            np.array([[1.5, -2.0]]),
            np.array([1]),
        ),
        (
            "two classes, X (7, 3), W (3, 2)",
            np.round(rng.normal(size=(3, 2)), 3),
            np.array([0.3, -0.3]),
            np.round(rng.normal(size=(7, 3)) * 2, 3),
            np.array([0, 1, 1, 0, 1, 0, 0]),
        ),
    ]
    probes = []
    for label, W, b, X, labels in problems:
        Z = X @ W + b
        loss, G = sg.cross_entropy_with_grad(Z, labels)
        probes.append(
            _Probe(
                label,
                (W, b, X, labels),
                (np.asarray(loss, dtype=float).reshape(()), X.T @ G, G.sum(axis=0)),
                f"{_show('labels', labels)}",
            )
        )

    def extract(spec: _Spec, value, probe: _Probe):
        loss, dW, db = _three(spec, value, probe, ("loss", "dW", "db"))
        if loss.size != 1:
            raise CheckFailed(
                f"{spec.name}: the loss must be one number (the mean over rows), got shape "
                f"{loss.shape} on probe {probe.label!r}."
            )
        return loss.reshape(()), dW, db

    return _run_probes(
        spec,
        loss_and_grad,
        probes,
        _loss_and_grad_mistakes(),
        extract=extract,
        parts=("loss", "dW", "db"),
    )


def _reference_training(
    X, labels, n, lr, steps, *, sign=1.0, scale=1.0, update_b=True, stale=False
):
    """Full-batch gradient descent from W = b = 0 with softgrad's loss and gradient: (W, b, losses).

    The keyword arguments write out the training mistakes (ascent, a gradient not averaged, b
    never updated, the first gradient reused).
    """
    sg = _ref()
    W, b = np.zeros((X.shape[1], n)), np.zeros(n)
    losses, first = [], None
    for _ in range(steps):
        loss, G = sg.cross_entropy_with_grad(X @ W + b, labels)
        dW, db = X.T @ G, G.sum(axis=0)
        if stale:
            first = first or (dW, db)
            dW, db = first
        losses.append(float(loss))
        W = W - sign * lr * scale * dW
        if update_b:
            b = b - sign * lr * scale * db
    return W, b, np.array(losses)


def _learning_rates(X, labels, n, target: float) -> list[float]:
    """Learning rates whose first step from W = b = 0 gives the loss ``target``."""
    sg = _ref()
    _, G = sg.cross_entropy_with_grad(np.zeros((len(X), n)), labels)
    dW, db = X.T @ G, G.sum(axis=0)

    def excess(lr):
        return float(sg.cross_entropy(X @ (-lr * dW) - lr * db, labels)) - target

    grid = np.logspace(-4, 6, 61)
    values = [excess(lr) for lr in grid]
    roots = []
    for lo, hi, vlo, vhi in zip(grid, grid[1:], values, values[1:], strict=False):
        if vlo == 0:
            roots.append(float(lo))
        elif vlo * vhi < 0:
            for _ in range(60):
                mid = math.sqrt(lo * hi)
                if excess(mid) * vlo > 0:
                    lo = mid
                else:
                    hi = mid
            roots.append(math.sqrt(lo * hi))
    return roots


def check_training(train: Callable, *, data: tuple | None = None) -> Passed:
    """Check a student's ``train(X, labels, n_classes, lr=0.5, steps=300)`` -> (W, b, losses).

    Gradient descent from W = b = 0 is deterministic, so the student's run is compared with the
    reference's on the same data, learning rate and step count: once with ``lr=0.3, steps=40``
    and once with the defaults. ``losses`` must hold one loss per step, taken before that step's
    update (so losses[0] = log(n)), never negative; W and b must both have moved, and be the
    parameters after the last step. ``data = (X, labels, n_classes)`` replaces the three 2-D
    blobs (hidden tests use other data).
    """
    spec = _SPECS["check_training"]
    X, labels, n = data if data is not None else (*_blobs(), 3)
    X, labels = np.asarray(X, dtype=float), np.asarray(labels)
    where = f"{len(X)} points in {X.shape[1]}-D, {n} classes"
    runs = [
        (f"{where}, lr=0.3, steps=40", {"lr": 0.3, "steps": 40}),
        (f"{where}, the defaults lr=0.5, steps=300", {}),
    ]
    for label, kwargs in runs:
        lr, steps = kwargs.get("lr", 0.5), kwargs.get("steps", 300)
        probe = _Probe(label, (), (), "")
        run = _call(spec, train, (X.copy(), labels.copy(), n), label, kwargs=kwargs)
        W, b, losses = _three(spec, run.value, probe, ("W", "b", "losses"))
        if W.shape != (X.shape[1], n) or b.shape != (n,):
            raise CheckFailed(
                f"{spec.name}: expected W of shape {(X.shape[1], n)} and b of shape {(n,)}, got "
                f"{W.shape} and {b.shape} on probe {label!r}."
            )
        losses = losses.reshape(-1)
        ref_W, ref_b, ref = _reference_training(X, labels, n, lr, steps)
        probe.expected = (ref,)
        keys, detail = _training_keys(X, labels, n, lr, steps, W, b, losses, ref)
        curve_bad = _worst((losses,), (ref,), spec.rtol, spec.atol)
        if keys or curve_bad is not None:
            bad = curve_bad if curve_bad is not None else (0, None)
            if bad[1] == "shape":
                bad = (0, None)
            raise CheckFailed(
                _message(
                    spec,
                    probe,
                    (losses,),
                    bad,
                    keys,
                    run.warnings,
                    parts=("losses",),
                    detail=detail,
                )
            )
        params_bad = _worst((W, b), (ref_W, ref_b), spec.rtol, spec.atol)
        if params_bad is not None:
            probe.expected = (ref_W, ref_b)
            raise CheckFailed(
                _message(
                    spec,
                    probe,
                    (W, b),
                    params_bad,
                    (),
                    run.warnings,
                    parts=("W", "b"),
                    detail="The losses are right: return W and b as they are after the last step.",
                )
            )
    return Passed(spec.name, len(runs))


def _training_keys(X, labels, n, lr, steps, W, b, losses, ref) -> tuple[tuple[str, ...], str]:
    """The training mistake the returned curve shows: (keys, detail)."""

    def same(curve):
        return curve.shape == losses.shape and bool(
            np.allclose(losses, curve, rtol=1e-6, atol=1e-9)
        )

    if losses.size != steps:
        detail = f"steps={steps} was asked for; losses has {losses.size} entries."
        return ("train-step-count",), detail
    if not np.all(np.isfinite(losses)):
        return (), "The losses became inf or nan."
    if same(ref):
        return (), ""
    if np.any(losses < 0):
        keys = ("train-negative-loss",) if same(-ref) else ()
        return (
            keys,
            f"The smallest loss recorded: {float(losses.min())!r}; a cross-entropy is >= 0.",
        )
    if not math.isclose(losses[0], math.log(n), rel_tol=1e-9):
        if steps > 1 and same(_reference_training(X, labels, n, lr, steps + 1)[2][1:]):
            return ("train-loss-after-update",), ""
        return (), (
            f"losses[0] = {float(losses[0])!r}, but at W = b = 0 the loss is log({n}) = "
            f"{math.log(n)!r}: start from zeros, record the loss before the update, and check "
            "loss_and_grad."
        )
    N = len(X)
    variants = [
        (("train-diverged",), {"sign": -1.0}),
        (("ce-missing-mean",), {"scale": float(N)}),
        (("train-bias-frozen",), {"update_b": False}),
        (("train-stale-gradient",), {"stale": True}),
    ]
    for keys, kw in variants:
        if same(_reference_training(X, labels, n, lr, steps, **kw)[2]):
            return keys, ""
    if steps > 1:
        for other in _learning_rates(X, labels, n, float(losses[1])):
            if not math.isclose(other, lr, rel_tol=1e-6) and same(
                _reference_training(X, labels, n, other, steps)[2]
            ):
                return (
                    "train-lr-ignored",
                ), f"Your losses are those of lr = {other:.4g}; lr={lr} was asked for."
    return (), ("b is still 0." if not np.any(b) else "")


# ----------------------------------------------------------------------------- hidden tests


def check_matches(
    fn: Callable,
    reference: Callable,
    inputs: list,
    *,
    check: str | None = None,
    section: str | None = None,
    name: str | None = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> Passed:
    """Compare ``fn(*args)`` with ``reference(*args)`` for each ``args`` in ``inputs``.

    For the hidden tests (other shapes and values) and for plain comparisons: the same
    plain-float conversion and messages as the other checks, without a diagnosis. ``check``
    names the visible check whose rules apply (its allow-list :data:`ALLOWED`, tolerance and
    section); ``section`` (a key of :data:`SECTIONS`), ``rtol`` and ``atol`` override them. An
    element of ``inputs`` that is not a tuple is passed as the only argument.

    Examples
    --------
    >>> import numpy as np, softgrad
    >>> check_matches(np.tanh, np.tanh, [np.zeros(3)], section="sec-softmax")
    tanh: passed 1 probe
    >>> check_matches(np.exp, softgrad.softmax, [np.zeros(2)], check="check_softmax")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    softgrad.checks.CheckFailed: exp is wrong on probe 'probe 1 of 1 (shapes (2,))'.
    ...
    """
    if check is not None and check not in ALLOWED:
        raise ValueError(f"check: expected one of {sorted(ALLOWED)}, got {check!r}")
    if section is not None and section not in SECTIONS:
        raise ValueError(f"section: expected one of {sorted(SECTIONS)}, got {section!r}")
    if check is None and section is None:
        raise ValueError("check_matches needs check= (a visible check's name) or section=")
    base = _SPECS[check] if check else _Spec("", "", section or "sec-softmax")
    spec = _Spec(
        check or "check_matches",
        name or getattr(fn, "__name__", "your function"),
        section or base.home,
        rtol=base.rtol if rtol is None else rtol,
        atol=base.atol if atol is None else atol,
        broadcast=base.broadcast,
    )
    probes = []
    for i, item in enumerate(inputs):
        args = item if isinstance(item, tuple) else (item,)
        args = tuple(
            np.asarray(a, dtype=float) if isinstance(a, (list, np.ndarray)) else a for a in args
        )
        shapes = ", ".join(str(np.shape(a)) for a in args if isinstance(a, np.ndarray))
        expected = (np.asarray(reference(*_fresh(args)), dtype=float),)
        probes.append(_Probe(f"probe {i + 1} of {len(inputs)} (shapes {shapes})", args, expected))
    return _run_probes(spec, fn, probes, [])


# ----------------------------------------------------------------------------- chapter 9: framework conventions
# (issue 11: the weighted mean and ignore_index of exercise 7; this section only adds to the
# catalogue, the section list, ALLOWED and __all__ above.)

SECTIONS.update(
    {
        "sec-frameworks": ("09_frameworks", "From the page to the framework"),
        "sec-frameworks-logits": ("09_frameworks", "The loss takes logits, not probabilities"),
        "sec-frameworks-weight": ("09_frameworks", "Class weights and the weighted mean's divisor"),
        "sec-frameworks-ignore-index": ("09_frameworks", "Padding tokens and `ignore_index`"),
    }
)

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

ALLOWED["check_weighted_cross_entropy"] = _FORWARD
ALLOWED["check_weighted_cross_entropy_grad"] = _FORWARD
_SPECS["check_weighted_cross_entropy"] = _Spec(
    "check_weighted_cross_entropy", "weighted_cross_entropy", "sec-frameworks"
)
_SPECS["check_weighted_cross_entropy_grad"] = _Spec(
    "check_weighted_cross_entropy_grad", "weighted_cross_entropy_grad", "sec-frameworks"
)
__all__ += ["check_weighted_cross_entropy", "check_weighted_cross_entropy_grad"]


def _fw_candidate(
    z, labels, weight, ignore_index=-100, *, rows, weighted, ignored, divisor, loss, guard=True
):
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
    if D == 0 and guard:  # every row ignored: a zero gradient, as the right answer has
        return np.zeros_like(per_row)
    return scale[:, None] * per_row / D


def _fw_candidates(loss: bool, ignored_rows: bool = True) -> list[_Candidate]:
    """The catalogued mistakes written out; without ignored rows in the probes, only those that
    can differ there (dividing by N or by the rows counted is one mistake when none is ignored)."""
    out = []
    for rows, weighted, ignored, divisor in itertools.product(
        ("right", "twice", "twice-chain", "sign"),
        (True, False),
        ("right", "counted", "in-divisor") if ignored_rows else ("right",),
        ("W", "N", "count") if ignored_rows else ("W", "N"),
    ):
        if loss and rows in ("sign", "twice-chain"):
            continue  # the loss has no sign to flip; "twice" is the loss of softmax twice
        if (ignored == "in-divisor" and divisor == "N") or (
            ignored != "right" and divisor == "count"
        ):
            continue  # the same as dividing by N: one mistake, not two that cannot be told apart
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
                    *args,
                    rows="right",
                    weighted=True,
                    ignored="right",
                    divisor="W",
                    loss=False,
                    guard=False,
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
        probes.append(_Probe(label, args, (expected,), shown + ("" if ii is None else f", {ii=}")))
    check = "check_weighted_cross_entropy" if loss else "check_weighted_cross_entropy_grad"
    return _run_probes(_SPECS[check], fn, probes, _fw_candidates(loss, part != "weights"))


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
