"""Answers to the six exercises as students write them: wrong ones, and correct but unusual ones.

Each wrong answer lists the catalogued mistakes (:data:`softgrad.checks.MISTAKES`) whose name
would be a right diagnosis; an empty tuple means the answer makes no catalogued mistake, and the
feedback must then be the generic report (naming anything would be a wrong diagnosis). The
correct answers must pass every visible and hidden test. :mod:`feedback_corpus` runs them.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

EX = {
    1: "ex01_stable_softmax",
    2: "ex02_softmax_jacobian",
    3: "ex03_softmax_backprop",
    4: "ex04_cross_entropy_grad",
    5: "ex05_gradient_checker",
    6: "ex06_train_classifier",
}


@dataclass(frozen=True)
class Answer:
    assignment: str
    cell: str  # the grade_id of the answer cell it replaces
    source: str
    keys: tuple[str, ...] = ()
    note: str = ""
    correct: bool = False
    undecidable: bool = False  # its first failing test cannot tell the mistake from another one


WRONG: list[Answer] = []
CORRECT: list[Answer] = []

# One answer per call, its source as a student types it: not reformatted.
# fmt: off


def wrong(ex: int, cell: str, keys, note: str, source: str, undecidable: bool = False) -> None:
    keys = (keys,) if isinstance(keys, str) else tuple(keys)
    WRONG.append(
        Answer(EX[ex], cell, textwrap.dedent(source).strip() + "\n", keys, note, False, undecidable)
    )


def right(ex: int, cell: str, note: str, source: str) -> None:
    CORRECT.append(Answer(EX[ex], cell, textwrap.dedent(source).strip() + "\n", (), note, True))


# ============================================================================ ex01: softmax

S = "softmax_impl"
wrong(1, S, "softmax-overflow", "the definition as written", """
    def softmax(z):
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)
""")
wrong(1, S, "softmax-overflow", "naive, with np.sum", """
    def softmax(z):
        z = np.asarray(z, dtype=float)
        return np.exp(z) / np.sum(np.exp(z), axis=-1, keepdims=True)
""")
wrong(1, S, "softmax-global-max", "shift by the max of the whole array", """
    def softmax(z):
        z = np.asarray(z, dtype=float)
        e = np.exp(z - np.max(z))
        return e / e.sum(axis=-1, keepdims=True)
""")
wrong(1, S, "softmax-sum-all", "whole-array max and sum", """
    def softmax(z):
        e = np.exp(z - np.max(z))
        return e / np.sum(e)
""")
wrong(1, S, "softmax-sum-all", "row max, whole-array sum", """
    def softmax(z):
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum()
""")
wrong(1, S, "softmax-wrong-axis", "axis 0", """
    def softmax(z):
        e = np.exp(z - z.max(axis=0, keepdims=True))
        return e / e.sum(axis=0, keepdims=True)
""")
wrong(1, S, "softmax-no-keepdims", "sum without keepdims", """
    def softmax(z):
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1)
""")
wrong(1, S, "softmax-no-keepdims", "max without keepdims", """
    def softmax(z):
        e = np.exp(z - z.max(axis=-1))
        return e / e.sum(axis=-1, keepdims=True)
""")
wrong(1, S, "softmax-not-normalised", "forgot the division", """
    def softmax(z):
        return np.exp(z - np.max(z, axis=-1, keepdims=True))
""")
wrong(1, S, "mutated-input", "shifts the caller's array in place", """
    def softmax(z):
        z -= z.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)
""")
wrong(1, S, "reference-call", "calls softgrad", """
    def softmax(z):
        import softgrad
        return softgrad.softmax(z)
""")
wrong(1, S, "softmax-underflow", "shifts only when the max is positive", """
    def softmax(z):
        m = np.maximum(z.max(axis=-1, keepdims=True), 0)
        e = np.exp(z - m)
        return e / e.sum(axis=-1, keepdims=True)
""")
wrong(1, S, "softmax-min-shift", "subtracts the minimum", """
    def softmax(z):
        e = np.exp(z - z.min(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
""")
wrong(1, S, (), "computes in float32", """
    def softmax(z):
        z = np.asarray(z, dtype=np.float32)
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
""")
wrong(1, S, "softmax-clipped", "clips the logits to [-500, 500]", """
    def softmax(z):
        z = np.clip(z, -500, 500)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)
""")
wrong(1, S, "softmax-clipped", "clips at 88 (the float32 limit) and shifts", """
    def softmax(z):
        z = np.clip(z, -88.0, 88.0)
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
""")
wrong(1, S, "softmax-epsilon", "an epsilon in the denominator", """
    def softmax(z):
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / (e.sum(axis=-1, keepdims=True) + 1e-8)
""")
wrong(1, S, "softmax-epsilon", "a larger epsilon in the denominator", """
    def softmax(z):
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / (e.sum(axis=-1, keepdims=True) + 1e-6)
""")
wrong(1, S, "softmax-epsilon", "an epsilon added to every exponential", """
    def softmax(z):
        e = np.exp(z - z.max(axis=-1, keepdims=True)) + 1e-10
        return e / e.sum(axis=-1, keepdims=True)
""")
wrong(1, S, (), "masks treated as logit 0", """
    def softmax(z):
        z = np.where(np.isinf(z), 0.0, z)
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
""")
wrong(1, S, (), "loops over the first axis (fine up to 2-D)", """
    def softmax(z):
        z = np.asarray(z, dtype=float)
        if z.ndim == 1:
            e = np.exp(z - z.max())
            return e / e.sum()
        out = np.empty_like(z)
        for i in range(z.shape[0]):
            e = np.exp(z[i] - z[i].max())
            out[i] = e / e.sum()
        return out
""")
wrong(1, S, "axis-not-last", "axis=1 (breaks on a vector)", """
    def softmax(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
""")
wrong(1, S, "softmax-not-normalised", "divides by the row max (which is 1 after the shift)", """
    def softmax(z):
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.max(axis=-1, keepdims=True)
""")
wrong(1, S, "softmax-sum-all", "row max with keepdims, plain np.sum", """
    def softmax(z):
        m = np.max(z, axis=-1, keepdims=True)
        return np.exp(z - m) / np.sum(np.exp(z - m))
""")
wrong(1, S, "softmax-overflow", "shift inside the sum only", """
    def softmax(z):
        m = z.max(axis=-1, keepdims=True)
        return np.exp(z) / (np.exp(m) * np.sum(np.exp(z - m), axis=-1, keepdims=True))
""")

L = "log_softmax_impl"
wrong(1, L, "log-softmax-underflow", "log of a stable softmax", """
    def log_softmax(z):
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return np.log(e / e.sum(axis=-1, keepdims=True))
""")
wrong(1, L, "logsumexp-overflow", "log-sum-exp without the shift", """
    def log_softmax(z):
        return z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))
""")
wrong(1, L, "softmax-sum-all", "lse summed over the whole array", """
    def log_softmax(z):
        s = z - z.max(axis=-1, keepdims=True)
        return s - np.log(np.sum(np.exp(s)))
""")
wrong(1, L, "logsumexp-missing-max", "forgot to add m back to the log-sum-exp", """
    def log_softmax(z):
        m = z.max(axis=-1, keepdims=True)
        return z - np.log(np.sum(np.exp(z - m), axis=-1, keepdims=True))
""")
wrong(1, L, "logsumexp-missing-max", "subtracts m twice", """
    def log_softmax(z):
        m = z.max(axis=-1, keepdims=True)
        lse = m + np.log(np.sum(np.exp(z - m), axis=-1, keepdims=True))
        return (z - m) - lse
""")
wrong(1, L, "log-softmax-epsilon", "log(p + 1e-12)", """
    def log_softmax(z):
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return np.log(e / e.sum(axis=-1, keepdims=True) + 1e-12)
""")
wrong(1, L, "log-softmax-epsilon", "log(clip(p, 1e-15, 1))", """
    def log_softmax(z):
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        p = e / e.sum(axis=-1, keepdims=True)
        return np.log(np.clip(p, 1e-15, 1.0))
""")
wrong(1, L, "log-softmax-epsilon", "log(maximum(p, 1e-300))", """
    def log_softmax(z):
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return np.log(np.maximum(e / e.sum(axis=-1, keepdims=True), 1e-300))
""")
wrong(1, L, "softmax-wrong-axis", "axis 0", """
    def log_softmax(z):
        s = z - z.max(axis=0, keepdims=True)
        return s - np.log(np.exp(s).sum(axis=0, keepdims=True))
""")
wrong(1, L, "softmax-no-keepdims", "lse without keepdims", """
    def log_softmax(z):
        s = z - z.max(axis=-1, keepdims=True)
        return s - np.log(np.sum(np.exp(s), axis=-1))
""")
wrong(1, L, "softmax-global-max", "global max, row sums", """
    def log_softmax(z):
        s = z - np.max(z)
        return s - np.log(np.sum(np.exp(s), axis=-1, keepdims=True))
""")
wrong(1, L, "mutated-input", "in place", """
    def log_softmax(z):
        z -= z.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
""")
wrong(1, L, "softmax-overflow", "log of the naive softmax", """
    def log_softmax(z):
        return np.log(np.exp(z) / np.sum(np.exp(z), axis=-1, keepdims=True))
""")
wrong(1, L, (), "float32", """
    def log_softmax(z):
        z = np.asarray(z, dtype=np.float32)
        s = z - z.max(axis=-1, keepdims=True)
        return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))
""")
wrong(1, L, (), "returns the softmax", """
    def log_softmax(z):
        s = z - z.max(axis=-1, keepdims=True)
        return np.exp(s) / np.exp(s).sum(axis=-1, keepdims=True)
""")
wrong(1, L, (), "shift outside, unshifted sum", """
    def log_softmax(z):
        m = z.max(axis=-1, keepdims=True)
        return z - m - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))
""")

right(1, S, "exp(z - logsumexp(z)), own logsumexp", """
    def softmax(z):
        z = np.asarray(z, dtype=float)
        m = z.max(axis=-1, keepdims=True)
        lse = m + np.log(np.sum(np.exp(z - m), axis=-1, keepdims=True))
        return np.exp(z - lse)
""")
right(1, S, "np.logaddexp.reduce", """
    def softmax(z):
        z = np.asarray(z, dtype=float)
        return np.exp(z - np.logaddexp.reduce(z, axis=-1, keepdims=True))
""")
right(1, S, "long double", """
    def softmax(z):
        z = np.asarray(z, dtype=np.longdouble)
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
""")
right(1, S, "apply_along_axis with a 1-D helper", """
    def softmax(z):
        def one(row):
            e = np.exp(row - row.max())
            return e / e.sum()
        return np.apply_along_axis(one, -1, np.asarray(z, dtype=float))
""")
right(1, S, "returns nested lists", """
    def softmax(z):
        z = np.asarray(z, dtype=float)
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return (e / e.sum(axis=-1, keepdims=True)).tolist()
""")
right(1, S, "recursion over leading axes", """
    def softmax(z):
        z = np.asarray(z, dtype=float)
        if z.ndim > 1:
            return np.stack([softmax(row) for row in z])
        e = np.exp(z - z.max())
        return e / e.sum()
""")
right(1, S, "nan_to_num on the masks, then the shift", """
    def softmax(z):
        z = np.nan_to_num(np.asarray(z, dtype=float))
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
""")
right(1, S, "einsum for the row sums", """
    def softmax(z):
        z = np.asarray(z, dtype=float)
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / np.einsum("...i->...", e)[..., None]
""")
right(1, L, "z - logaddexp.reduce(z)", """
    def log_softmax(z):
        z = np.asarray(z, dtype=float)
        return z - np.logaddexp.reduce(z, axis=-1, keepdims=True)
""")
right(1, L, "long double", """
    def log_softmax(z):
        z = np.asarray(z, dtype=np.longdouble)
        s = z - z.max(axis=-1, keepdims=True)
        return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))
""")
right(1, L, "apply_along_axis", """
    def log_softmax(z):
        def one(row):
            m = row.max()
            return row - (m + np.log(np.sum(np.exp(row - m))))
        return np.apply_along_axis(one, -1, np.asarray(z, dtype=float))
""")
right(1, L, "log1p of the others", """
    def log_softmax(z):
        z = np.asarray(z, dtype=float)
        m = z.max(axis=-1, keepdims=True)
        e = np.exp(z - m)
        return (z - m) - np.log1p(e.sum(axis=-1, keepdims=True) - 1.0)
""")

# ============================================================================ ex02: Jacobians

JL = "jacobian_loops_impl"
wrong(2, JL, "jacobian-diagonal-only", "the sigmoid's diagonal only", """
    def softmax_jacobian_loops(z):
        p = softmax(z)
        n = len(p)
        J = np.zeros((n, n))
        for i in range(n):
            J[i, i] = p[i] * (1 - p[i])
        return J
""")
wrong(2, JL, (), "off-diagonal +p_i p_j", """
    def softmax_jacobian_loops(z):
        p = softmax(z)
        n = len(p)
        J = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                J[i, j] = p[i] * (1 - p[i]) if i == j else p[i] * p[j]
        return J
""")
wrong(2, JL, "jacobian-sign", "both signs flipped", """
    def softmax_jacobian_loops(z):
        p = softmax(z)
        n = len(p)
        J = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                J[i, j] = p[i] * p[j] - (p[i] if i == j else 0.0)
        return J
""")
wrong(2, JL, "jacobian-of-logits", "z where p belongs", """
    def softmax_jacobian_loops(z):
        n = len(z)
        J = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                J[i, j] = z[i] * ((i == j) - z[j])
        return J
""")
wrong(2, JL, "softmax-overflow", "its own naive softmax", """
    def softmax_jacobian_loops(z):
        p = np.exp(z) / np.sum(np.exp(z))
        n = len(p)
        J = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                J[i, j] = p[i] * ((i == j) - p[j])
        return J
""")
wrong(2, JL, "jacobian-missing-diag", "no delta term", """
    def softmax_jacobian_loops(z):
        p = softmax(z)
        n = len(p)
        J = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                J[i, j] = -p[i] * p[j]
        return J
""")
wrong(2, JL, (), "delta read as 1", """
    def softmax_jacobian_loops(z):
        p = softmax(z)
        n = len(p)
        J = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                J[i, j] = p[i] * (1 - p[j])
        return J
""")
wrong(2, JL, (), "range(n - 1)", """
    def softmax_jacobian_loops(z):
        p = softmax(z)
        n = len(p)
        J = np.zeros((n, n))
        for i in range(n - 1):
            for j in range(n - 1):
                J[i, j] = p[i] * ((i == j) - p[j])
        return J
""")
wrong(2, JL, "jacobian-outer-same-axis", "p_i where p_j belongs", """
    def softmax_jacobian_loops(z):
        p = softmax(z)
        n = len(p)
        J = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                J[i, j] = p[i] * ((i == j) - p[i])
        return J
""")
wrong(2, JL, "mutated-input", "shifts z in place first", """
    def softmax_jacobian_loops(z):
        z -= z.max()
        p = np.exp(z) / np.exp(z).sum()
        n = len(p)
        J = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                J[i, j] = p[i] * ((i == j) - p[j])
        return J
""")
wrong(2, JL, "integer-array", "an integer array to fill", """
    def softmax_jacobian_loops(z):
        p = softmax(z)
        n = len(p)
        J = np.zeros((n, n), dtype=int)
        for i in range(n):
            for j in range(n):
                J[i, j] = p[i] * ((i == j) - p[j])
        return J
""")

JV = "jacobian_vectorised_impl"
wrong(2, JV, "jacobian-diagonal-only", "diagonal only", """
    def softmax_jacobian(z):
        p = softmax(z)
        return p[..., :, None] * (1 - p[..., :, None]) * np.eye(p.shape[-1])
""")
wrong(2, JV, "jacobian-sign", "sign flipped", """
    def softmax_jacobian(z):
        p = softmax(z)
        return p[..., :, None] * p[..., None, :] - p[..., :, None] * np.eye(p.shape[-1])
""")
wrong(2, JV, "jacobian-1d-only", "np.diag and np.outer", """
    def softmax_jacobian(z):
        p = softmax(z)
        return np.diag(p) - np.outer(p, p)
""")
wrong(2, JV, "jacobian-dot-not-outer", "p @ p.T", """
    def softmax_jacobian(z):
        p = softmax(z)
        return np.diag(p) - p @ p.T
""")
wrong(2, JV, "jacobian-batch-layout", "batch axis last", """
    def softmax_jacobian(z):
        p = softmax(z)
        J = p[..., :, None] * np.eye(p.shape[-1]) - p[..., :, None] * p[..., None, :]
        return np.moveaxis(J, 0, -1)
""")
wrong(2, JV, (), "einsum that sums the batch", """
    def softmax_jacobian(z):
        p = np.atleast_2d(softmax(z))
        n = p.shape[-1]
        return np.einsum("bi,ij->ij", p, np.eye(n)) - np.einsum("bi,bj->ij", p, p)
""")
wrong(2, JV, "jacobian-of-logits", "z where p belongs", """
    def softmax_jacobian(z):
        return z[..., :, None] * np.eye(z.shape[-1]) - z[..., :, None] * z[..., None, :]
""")
wrong(2, JV, "jacobian-missing-diag", "only -p p^T", """
    def softmax_jacobian(z):
        p = softmax(z)
        return -p[..., :, None] * p[..., None, :]
""")
wrong(2, JV, "jacobian-outer-same-axis", "p[..., :, None] twice", """
    def softmax_jacobian(z):
        p = softmax(z)
        return p[..., :, None] * np.eye(p.shape[-1]) - p[..., :, None] * p[..., :, None]
""")
wrong(2, JV, "jacobian-1d-only", "np.outer on a batch", """
    def softmax_jacobian(z):
        p = softmax(z)
        return p[..., :, None] * np.eye(p.shape[-1]) - np.outer(p, p)
""")
wrong(2, JV, "softmax-overflow", "its own naive softmax", """
    def softmax_jacobian(z):
        p = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
        return p[..., :, None] * np.eye(p.shape[-1]) - p[..., :, None] * p[..., None, :]
""")
wrong(2, JV, "jacobian-1d-only", "a list over rows (2-D only)", """
    def softmax_jacobian(z):
        p = softmax(z)
        if p.ndim == 1:
            return np.diag(p) - np.outer(p, p)
        return np.array([np.diag(r) - np.outer(r, r) for r in p])
""")
wrong(2, JV, "mutated-input", "in place", """
    def softmax_jacobian(z):
        z -= z.max(axis=-1, keepdims=True)
        p = softmax(z)
        return p[..., :, None] * np.eye(p.shape[-1]) - p[..., :, None] * p[..., None, :]
""")
wrong(2, JV, (), "float32", """
    def softmax_jacobian(z):
        p = softmax(z).astype(np.float32)
        return p[..., :, None] * np.eye(p.shape[-1], dtype=np.float32) - p[..., :, None] * p[..., None, :]
""")

LJ = "log_softmax_jacobian_impl"
wrong(2, LJ, "jacobian-transposed", "I - p 1^T", """
    def log_softmax_jacobian(z):
        p = softmax(z)
        return np.eye(p.shape[-1]) - p[..., :, None]
""")
wrong(2, LJ, "jacobian-divided-by-p", "the softmax Jacobian over p", """
    def log_softmax_jacobian(z):
        p = softmax(z)
        J = p[..., :, None] * np.eye(p.shape[-1]) - p[..., :, None] * p[..., None, :]
        return J / p[..., :, None]
""")
wrong(2, LJ, "jacobian-softmax-for-log-softmax", "returns the softmax Jacobian", """
    def log_softmax_jacobian(z):
        p = softmax(z)
        return p[..., :, None] * np.eye(p.shape[-1]) - p[..., :, None] * p[..., None, :]
""")
wrong(2, LJ, "jacobian-1d-only", "eye - p without the new axis", """
    def log_softmax_jacobian(z):
        p = softmax(z)
        return np.eye(p.shape[-1]) - p
""")
wrong(2, LJ, "jacobian-diagonal-only", "diag(1 - p)", """
    def log_softmax_jacobian(z):
        p = softmax(z)
        return np.eye(p.shape[-1]) * (1 - p[..., :, None])
""")
wrong(2, LJ, "jacobian-sign", "p - I", """
    def log_softmax_jacobian(z):
        p = softmax(z)
        return p[..., None, :] - np.eye(p.shape[-1])
""")
wrong(2, LJ, "jacobian-of-logits", "z where p belongs", """
    def log_softmax_jacobian(z):
        return np.eye(z.shape[-1]) - z[..., None, :]
""")
wrong(2, LJ, (), "log-probabilities where p belongs", """
    def log_softmax_jacobian(z):
        s = z - z.max(axis=-1, keepdims=True)
        logp = s - np.log(np.exp(s).sum(axis=-1, keepdims=True))
        return np.eye(z.shape[-1]) - logp[..., None, :]
""")

right(2, JL, "p computed inside the loop, entries as floats", """
    def softmax_jacobian_loops(z):
        n = len(z)
        J = [[0.0] * n for _ in range(n)]
        for i in range(n):
            for j in range(n):
                p = softmax(z)
                J[i][j] = float(p[i] * (float(i == j) - p[j]))
        return J
""")
right(2, JL, "quotient rule, with its own stable exponentials", """
    def softmax_jacobian_loops(z):
        e = np.exp(z - np.max(z))
        S = e.sum()
        n = len(z)
        J = np.empty((n, n))
        for i in range(n):
            for j in range(n):
                J[i, j] = ((i == j) * e[i] * S - e[i] * e[j]) / S**2
        return J
""")
right(2, JV, "einsum", """
    def softmax_jacobian(z):
        p = softmax(z)
        n = p.shape[-1]
        return np.einsum("...i,ij->...ij", p, np.eye(n)) - np.einsum("...i,...j->...ij", p, p)
""")
right(2, JV, "transposed (J is symmetric)", """
    def softmax_jacobian(z):
        p = softmax(z)
        J = p[..., :, None] * np.eye(p.shape[-1]) - p[..., :, None] * p[..., None, :]
        return np.swapaxes(J, -1, -2)
""")
right(2, JV, "diag along the other axis", """
    def softmax_jacobian(z):
        p = softmax(z)
        return p[..., None, :] * np.eye(p.shape[-1]) - p[..., :, None] * p[..., None, :]
""")
right(2, JV, "long double", """
    def softmax_jacobian(z):
        p = softmax(z).astype(np.longdouble)
        return p[..., :, None] * np.eye(p.shape[-1]) - p[..., :, None] * p[..., None, :]
""")
right(2, JV, "apply_along_axis over 1-D Jacobians", """
    def softmax_jacobian(z):
        return np.apply_along_axis(lambda r: np.diag(softmax(r)) - np.outer(softmax(r), softmax(r)),
                                   -1, np.asarray(z, dtype=float))
""")
right(2, LJ, "p = exp(z - logsumexp(z)) with softgrad's logsumexp", """
    def log_softmax_jacobian(z):
        import softgrad
        p = np.exp(z - softgrad.logsumexp(z, axis=-1, keepdims=True))
        return np.eye(p.shape[-1]) - p[..., None, :]
""")
right(2, LJ, "p = exp(log_softmax(z)) from softgrad", """
    def log_softmax_jacobian(z):
        from softgrad import log_softmax
        p = np.exp(log_softmax(z))
        return np.eye(p.shape[-1]) - p[..., None, :]
""")
right(2, LJ, "einsum with ones", """
    def log_softmax_jacobian(z):
        p = softmax(z)
        n = p.shape[-1]
        return np.eye(n) - np.einsum("i,...j->...ij", np.ones(n), p)
""")
right(2, LJ, "broadcast_to", """
    def log_softmax_jacobian(z):
        p = softmax(z)
        n = p.shape[-1]
        return np.eye(n) - np.broadcast_to(p[..., None, :], p.shape + (n,))
""")

# ============================================================================ ex03: VJP

V = "softmax_vjp_impl"
wrong(3, V, "vjp-missing-p", "the slide's s - sum(s)", """
    def softmax_vjp(p, g):
        s = g * p
        return s - s.sum(axis=-1, keepdims=True)
""")
wrong(3, V, "vjp-sign", "sign flipped", """
    def softmax_vjp(p, g):
        return p * (np.sum(g * p, axis=-1, keepdims=True) - g)
""")
wrong(3, V, "vjp-diagonal-only", "diagonal only", """
    def softmax_vjp(p, g):
        return g * p * (1 - p)
""")
wrong(3, V, "vjp-wrong-axis", "inner product down the batch", """
    def softmax_vjp(p, g):
        return p * (g - np.sum(g * p, axis=0, keepdims=True))
""")
wrong(3, V, "vjp-wrong-axis", "inner product over everything", """
    def softmax_vjp(p, g):
        return p * (g - np.sum(g * p))
""")
wrong(3, V, ("vjp-no-keepdims", "vjp-wrong-axis"), "no keepdims", """
    def softmax_vjp(p, g):
        return p * (g - np.sum(g * p, axis=-1))
""")
wrong(3, V, "vjp-softmax-of-p", "softmax applied to p", """
    def softmax_vjp(p, g):
        e = np.exp(p - p.max(axis=-1, keepdims=True))
        q = e / e.sum(axis=-1, keepdims=True)
        return q * (g - np.sum(g * q, axis=-1, keepdims=True))
""")
wrong(3, V, "vjp-formed-jacobian", "forms J and multiplies", """
    def softmax_vjp(p, g):
        J = p[..., :, None] * np.eye(p.shape[-1]) - p[..., :, None] * p[..., None, :]
        return np.einsum("...i,...ij->...j", g, J)
""")
wrong(3, V, "vjp-missing-outer-p", "g - <g, p>", """
    def softmax_vjp(p, g):
        return g - np.sum(g * p, axis=-1, keepdims=True)
""")
wrong(3, V, "mutated-input", "multiplies g in place", """
    def softmax_vjp(p, g):
        g *= p
        return g - p * g.sum(axis=-1, keepdims=True)
""")
wrong(3, V, "vjp-matrix-product", "g @ p for the inner product", """
    def softmax_vjp(p, g):
        return p * (g - g @ p)
""")
wrong(3, V, (), "float32", """
    def softmax_vjp(p, g):
        p = np.asarray(p, dtype=np.float32)
        g = np.asarray(g, dtype=np.float32)
        return p * (g - np.sum(g * p, axis=-1, keepdims=True))
""")
wrong(3, V, (), "divides by n", """
    def softmax_vjp(p, g):
        return p * (g - np.mean(g * p, axis=-1, keepdims=True))
""")
wrong(3, V, (), "a Jacobian per row in a loop (breaks on a 3-D batch)", """
    def softmax_vjp(p, g):
        p2, g2 = np.atleast_2d(p), np.atleast_2d(g)
        out = np.empty_like(p2)
        for r in range(p2.shape[0]):
            J = np.diag(p2[r]) - np.outer(p2[r], p2[r])
            out[r] = J.T @ g2[r]
        return out.reshape(np.shape(p))
""")

right(3, V, "commuted", """
    def softmax_vjp(p, g):
        return (g - np.sum(g * p, axis=-1, keepdims=True)) * p
""")
right(3, V, "einsum for the inner product", """
    def softmax_vjp(p, g):
        inner = np.einsum("...i,...i->...", g, p)
        return p * (g - inner[..., None])
""")
right(3, V, "s - p * sum(s)", """
    def softmax_vjp(p, g):
        s = np.multiply(g, p)
        return s - p * np.add.reduce(s, axis=-1, keepdims=True)
""")
right(3, V, "diagonal and off-diagonal written out", """
    def softmax_vjp(p, g):
        s = g * p
        return s * (1 - p) - p * (s.sum(axis=-1, keepdims=True) - s)
""")
right(3, V, "long double", """
    def softmax_vjp(p, g):
        p = np.asarray(p, dtype=np.longdouble)
        g = np.asarray(g, dtype=np.longdouble)
        return p * (g - np.sum(g * p, axis=-1, keepdims=True))
""")
right(3, V, "vecdot-like matmul with a new axis", """
    def softmax_vjp(p, g):
        inner = (g[..., None, :] @ p[..., :, None])[..., 0]
        return p * (g - inner)
""")

# ============================================================================ ex04: cross-entropy

CE = "cross_entropy_impl"
wrong(4, CE, "log-softmax-underflow", "log(softmax(z))", """
    def cross_entropy(z, y):
        return float(-np.sum(y * np.log(softmax(z))) / z.shape[0])
""")
wrong(4, CE, "log-softmax-epsilon", "log(softmax(z) + 1e-12)", """
    def cross_entropy(z, y):
        return float(-np.sum(y * np.log(softmax(z) + 1e-12)) / z.shape[0])
""")
wrong(4, CE, "train-loss-sum", "no mean", """
    def cross_entropy(z, y):
        return float(-np.sum(y * log_softmax(z)))
""")
wrong(4, CE, "ce-mean-over-all", "np.mean over every entry", """
    def cross_entropy(z, y):
        return float(-np.mean(y * log_softmax(z)))
""")
wrong(4, CE, "ce-loss-sign", "forgot the minus", """
    def cross_entropy(z, y):
        return float(np.sum(y * log_softmax(z)) / z.shape[0])
""")
wrong(4, CE, "ce-hard-labels", "the arg-max of y as the label", """
    def cross_entropy(z, y):
        labels = np.argmax(y, axis=-1)
        return float(-np.mean(log_softmax(z)[np.arange(len(z)), labels]))
""")
wrong(4, CE, (), "a loss per row", """
    def cross_entropy(z, y):
        return -np.sum(y * log_softmax(z), axis=-1)
""")
wrong(4, CE, "ce-loss-weighted-mean", "divides by the total weight", """
    def cross_entropy(z, y):
        return float(-np.sum(y * log_softmax(z)) / np.sum(y))
""")
wrong(4, CE, "ce-softmax-wrong-axis", "log-softmax down the batch", """
    def cross_entropy(z, y):
        s = z - z.max(axis=0, keepdims=True)
        logp = s - np.log(np.exp(s).sum(axis=0, keepdims=True))
        return float(-np.sum(y * logp) / z.shape[0])
""")
wrong(4, CE, (), "float32", """
    def cross_entropy(z, y):
        logp = log_softmax(z).astype(np.float32)
        return float(-np.sum(y.astype(np.float32) * logp) / z.shape[0])
""")
wrong(4, CE, "mutated-input", "normalises the targets in place", """
    def cross_entropy(z, y):
        y /= y.sum(axis=-1, keepdims=True)
        return float(-np.sum(y * log_softmax(z)) / z.shape[0])
""")
wrong(4, CE, "logsumexp-overflow", "log-sum-exp without the shift", """
    def cross_entropy(z, y):
        logp = z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))
        return float(-np.sum(y * logp) / z.shape[0])
""")
wrong(4, CE, "log-softmax-underflow", "log(softmax) only where y > 0", """
    def cross_entropy(z, y):
        p = softmax(z)
        return float(-np.sum(np.where(y > 0, y * np.log(p), 0.0)) / z.shape[0])
""")
wrong(4, CE, "ce-mean-over-classes", "divides by the number of classes", """
    def cross_entropy(z, y):
        return float(-np.sum(y * log_softmax(z)) / z.shape[1])
""")

CG = "cross_entropy_grad_impl"
wrong(4, CG, "ce-seed-sum-py", "the first seed question", """
    def cross_entropy_grad(z, y):
        p = softmax(z)
        return (np.sum(p * y, axis=-1, keepdims=True) - y) / z.shape[0]
""")
wrong(4, CG, "ce-sign", "y - p", """
    def cross_entropy_grad(z, y):
        return (y - softmax(z) * y.sum(axis=-1, keepdims=True)) / z.shape[0]
""")
wrong(4, CG, "ce-missing-mean", "no 1/N", """
    def cross_entropy_grad(z, y):
        return softmax(z) * y.sum(axis=-1, keepdims=True) - y
""")
wrong(4, CG, "ce-mean-over-all", "divides by N * n (one row: the one-hot test cannot tell it from 1/n)", """
    def cross_entropy_grad(z, y):
        return (softmax(z) * y.sum(axis=-1, keepdims=True) - y) / z.size
""", undecidable=True)
wrong(4, CG, "ce-p-minus-y-unnormalised", "p - y for every target", """
    def cross_entropy_grad(z, y):
        return (softmax(z) - y) / z.shape[0]
""")
wrong(4, CG, "ce-forgot-softmax", "z - y", """
    def cross_entropy_grad(z, y):
        return (z - y) / z.shape[0]
""")
wrong(4, CG, "ce-softmax-wrong-axis", "softmax down the batch", """
    def cross_entropy_grad(z, y):
        e = np.exp(z - z.max(axis=0, keepdims=True))
        p = e / e.sum(axis=0, keepdims=True)
        return (p * y.sum(axis=-1, keepdims=True) - y) / z.shape[0]
""")
wrong(4, CG, ("ce-sign", "ce-missing-mean"), "y - p and no 1/N", """
    def cross_entropy_grad(z, y):
        return y - softmax(z) * y.sum(axis=-1, keepdims=True)
""")
wrong(4, CG, (), "float32", """
    def cross_entropy_grad(z, y):
        p = softmax(z).astype(np.float32)
        return (p * y.sum(axis=-1, keepdims=True).astype(np.float32) - y.astype(np.float32)) / z.shape[0]
""")
wrong(4, CG, "ce-target-sum-all", "sum(y) over the whole batch", """
    def cross_entropy_grad(z, y):
        return (softmax(z) * y.sum() - y) / z.shape[0]
""")
wrong(4, CG, "broadcast-keepdims", "row sums of y without keepdims", """
    def cross_entropy_grad(z, y):
        return (softmax(z) * y.sum(axis=-1) - y) / z.shape[0]
""")
wrong(4, CG, "softmax-overflow", "its own naive softmax", """
    def cross_entropy_grad(z, y):
        e = np.exp(z)
        p = e / e.sum(axis=-1, keepdims=True)
        return (p * y.sum(axis=-1, keepdims=True) - y) / z.shape[0]
""")
wrong(4, CG, "ce-mean-over-classes", "divides by n (one row: the one-hot test cannot tell it from 1/(N n))", """
    def cross_entropy_grad(z, y):
        return (softmax(z) * y.sum(axis=-1, keepdims=True) - y) / z.shape[1]
""", undecidable=True)
wrong(4, CG, "ce-precedence", "p - y / N", """
    def cross_entropy_grad(z, y):
        N = z.shape[0]
        return softmax(z) * y.sum(axis=-1, keepdims=True) - y / N
""")
wrong(4, CG, "ce-hard-labels", "one-hot of the arg-max", """
    def cross_entropy_grad(z, y):
        onehot = np.eye(z.shape[1])[np.argmax(y, axis=1)]
        return (softmax(z) - onehot) / z.shape[0]
""")
wrong(4, CG, "mutated-input", "shifts z in place", """
    def cross_entropy_grad(z, y):
        z -= z.max(axis=-1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
        return (p * y.sum(axis=-1, keepdims=True) - y) / len(z)
""")
wrong(4, CG, "ce-grad-wrt-p", "-y / p, the gradient with respect to p", """
    def cross_entropy_grad(z, y):
        return -y / softmax(z) / z.shape[0]
""")

right(4, CE, "einsum", """
    def cross_entropy(z, y):
        return -np.einsum("ik,ik->", y, log_softmax(z)) / len(z)
""")
right(4, CE, "mean of the per-row losses, a 0-d array", """
    def cross_entropy(z, y):
        return np.asarray(-(y * log_softmax(z)).sum(axis=1).mean())
""")
right(4, CE, "logaddexp.reduce", """
    def cross_entropy(z, y):
        lse = np.logaddexp.reduce(z, axis=-1, keepdims=True)
        return float(np.sum(y * (lse - z)) / z.shape[0])
""")
right(4, CE, "softgrad's logsumexp and sum(y)", """
    def cross_entropy(z, y):
        import softgrad
        lse = softgrad.logsumexp(z, axis=-1)
        return float(np.mean(y.sum(axis=-1) * lse - np.sum(y * z, axis=-1)))
""")
right(4, CE, "long double", """
    def cross_entropy(z, y):
        z = np.asarray(z, dtype=np.longdouble)
        s = z - z.max(axis=-1, keepdims=True)
        logp = s - np.log(np.exp(s).sum(axis=-1, keepdims=True))
        return -np.sum(y * logp) / z.shape[0]
""")
right(4, CG, "divides by len(z), y.sum with axis=1", """
    def cross_entropy_grad(z, y):
        return (softmax(z) * y.sum(axis=1)[:, None] - y) / len(z)
""")
right(4, CG, "exp(z - logsumexp(z)) with softgrad's logsumexp", """
    def cross_entropy_grad(z, y):
        import softgrad
        p = np.exp(z - softgrad.logsumexp(z, axis=-1, keepdims=True))
        return (p * np.sum(y, axis=-1, keepdims=True) - y) / z.shape[0]
""")
right(4, CG, "exp(log_softmax) and einsum", """
    def cross_entropy_grad(z, y):
        p = np.exp(log_softmax(z))
        return (np.einsum("ik,i->ik", p, y.sum(axis=1)) - y) / z.shape[0]
""")
right(4, CG, "long double", """
    def cross_entropy_grad(z, y):
        z = np.asarray(z, dtype=np.longdouble)
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        p = e / e.sum(axis=-1, keepdims=True)
        return (p * y.sum(axis=-1, keepdims=True) - y) / z.shape[0]
""")

# ============================================================================ ex05: gradient checking

NG = "numerical_gradient_impl"


def _ng(step: str, quotient: str, name: str = "numerical_gradient") -> str:
    return f"""
    def {name}(f, x, h=None):
        x = np.array(x, dtype=float)
        g = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            step = {step}
            e = np.zeros_like(x)
            e[i] = step
            g[i] = {quotient}
        return g
    """


CENTRAL = "(f(x + e) - f(x - e)) / (2 * step)"
GOOD = "h if h is not None else np.finfo(float).eps ** (1 / 3) * max(1.0, abs(x[i]))"
wrong(5, NG, "gc-forward-difference", "forward difference", _ng(GOOD, "(f(x + e) - f(x)) / step"))
wrong(5, NG, "gc-backward-difference", "backward difference", _ng(GOOD, "(f(x) - f(x - e)) / step"))
wrong(5, NG, "gc-missing-half", "divides by h", _ng(GOOD, "(f(x + e) - f(x - e)) / step"))
wrong(5, NG, "gc-step-too-small", "h = 1e-12", _ng("h if h is not None else 1e-12", CENTRAL))
wrong(5, NG, "gc-step-too-large", "h = 1e-2", _ng("h if h is not None else 1e-2", CENTRAL))
wrong(5, NG, "gc-step-not-scaled", "a fixed 1e-5", _ng("h if h is not None else 1e-5", CENTRAL))
wrong(5, NG, "gc-step-vanishes", "proportional to |x_i| without max(1, .)",
      _ng("h if h is not None else np.finfo(float).eps ** (1 / 3) * abs(x[i])", CENTRAL))
wrong(5, NG, "gc-step-too-small", "central with a sqrt(eps) step",
      _ng("h if h is not None else np.sqrt(np.finfo(float).eps) * max(1.0, abs(x[i]))", CENTRAL))
wrong(5, NG, "gc-step-too-large", "float32's eps", _ng(
    "h if h is not None else np.finfo(np.float32).eps ** (1 / 3) * max(1.0, abs(x[i]))", CENTRAL))
wrong(5, NG, "gc-forward-difference", "forward with sqrt(eps) when h is None (the issue's case)", """
    def numerical_gradient(f, x, h=None):
        x = np.array(x, dtype=float)
        g = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            e = np.zeros_like(x)
            if h is None:
                step = np.sqrt(np.finfo(float).eps) * max(1.0, abs(x[i]))
                e[i] = step
                g[i] = (f(x + e) - f(x)) / step
            else:
                e[i] = h
                g[i] = (f(x + e) - f(x - e)) / (2 * h)
        return g
""")
wrong(5, NG, "mutated-input", "perturbs the caller's x and never restores it", """
    def numerical_gradient(f, x, h=None):
        h = 1e-5 if h is None else h
        g = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            x[i] += h
            fp = f(x)
            x[i] -= 2 * h
            fm = f(x)
            g[i] = (fp - fm) / (2 * h)
        return g
""")
wrong(5, NG, "mutated-input", "restores by adding h back (rounding)", """
    def numerical_gradient(f, x, h=None):
        g = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            step = h if h is not None else 6e-6 * max(1.0, abs(x[i]))
            x[i] += step
            fp = f(x)
            x[i] -= 2 * step
            fm = f(x)
            x[i] += step
            g[i] = (fp - fm) / (2 * step)
        return g
""")
wrong(5, NG, "gc-rows-not-entries", "range(len(x)) on a 2-D x", """
    def numerical_gradient(f, x, h=None):
        x = np.array(x, dtype=float)
        g = np.zeros_like(x)
        for i in range(len(x)):
            step = h if h is not None else 6e-6 * max(1.0, float(np.max(np.abs(x[i]))))
            e = np.zeros_like(x)
            e[i] = step
            g[i] = (f(x + e) - f(x - e)) / (2 * step)
        return g
""")
wrong(5, NG, (), "returns the flattened gradient", """
    def numerical_gradient(f, x, h=None):
        x = np.array(x, dtype=float)
        g = []
        for i in np.ndindex(x.shape):
            step = h if h is not None else 6e-6 * max(1.0, abs(x[i]))
            e = np.zeros_like(x)
            e[i] = step
            g.append((f(x + e) - f(x - e)) / (2 * step))
        return np.array(g)
""")
wrong(5, NG, "gc-explicit-step-changed", "perturbs by a scaled step, divides by the unscaled one", """
    def numerical_gradient(f, x, h=None):
        x = np.array(x, dtype=float)
        h0 = h if h is not None else 6e-6
        g = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            e = np.zeros_like(x)
            e[i] = h0 * max(1.0, abs(x[i]))
            g[i] = (f(x + e) - f(x - e)) / (2 * h0)
        return g
""")
wrong(5, NG, "gc-step-mismatch", "its own step scaled, divided by the unscaled one", """
    def numerical_gradient(f, x, h=None):
        x = np.array(x, dtype=float)
        g = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            e = np.zeros_like(x)
            if h is None:
                e[i] = 6e-6 * max(1.0, abs(x[i]))
                g[i] = (f(x + e) - f(x - e)) / (2 * 6e-6)
            else:
                e[i] = h
                g[i] = (f(x + e) - f(x - e)) / (2 * h)
        return g
""")
wrong(5, NG, "gc-explicit-step-changed", "scales the h it is given", """
    def numerical_gradient(f, x, h=None):
        x = np.array(x, dtype=float)
        h0 = 6e-6 if h is None else h
        g = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            step = h0 * max(1.0, abs(x[i]))
            e = np.zeros_like(x)
            e[i] = step
            g[i] = (f(x + e) - f(x - e)) / (2 * step)
        return g
""")
wrong(5, NG, "gc-explicit-step-changed", "ignores h and always uses its own step", """
    def numerical_gradient(f, x, h=None):
        x = np.array(x, dtype=float)
        g = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            step = 6e-6 * max(1.0, abs(x[i]))
            e = np.zeros_like(x)
            e[i] = step
            g[i] = (f(x + e) - f(x - e)) / (2 * step)
        return g
""")

GE = "gradient_error_impl"


def _ge(expr: str) -> str:
    return f"""
    def gradient_error(f, grad_f, x):
        a = np.asarray(grad_f(np.array(x, dtype=float)), dtype=float)
        n = numerical_gradient(f, x)
        return float({expr})
    """


wrong(5, GE, "ge-absolute", "absolute error", _ge("np.linalg.norm(a - n)"))
wrong(5, GE, "ge-one-sided", "divides by the analytic norm only",
      _ge("np.linalg.norm(a - n) / max(np.linalg.norm(a), 1e-12)"))
wrong(5, GE, "ge-one-sided", "divides by the numerical norm only",
      _ge("np.linalg.norm(a - n) / max(np.linalg.norm(n), 1e-12)"))
wrong(5, GE, "ge-sum-of-norms", "divides by the sum of the norms",
      _ge("np.linalg.norm(a - n) / max(np.linalg.norm(a) + np.linalg.norm(n), 1e-12)"))
wrong(5, GE, "ge-wrong-norm", "max-abs norm",
      _ge("np.max(np.abs(a - n)) / max(np.max(np.abs(a)), np.max(np.abs(n)), 1e-12)"))
wrong(5, GE, "ge-wrong-norm", "L1 norm",
      _ge("np.sum(np.abs(a - n)) / max(np.sum(np.abs(a)), np.sum(np.abs(n)), 1e-12)"))
wrong(5, GE, "ge-no-floor", "no 1e-12 floor",
      _ge("np.linalg.norm(a - n) / max(np.linalg.norm(a), np.linalg.norm(n))"))
wrong(5, GE, "ge-entrywise", "the largest entrywise relative error",
      _ge("np.max(np.abs(a - n) / np.maximum(np.maximum(np.abs(a), np.abs(n)), 1e-12))"))
wrong(5, GE, "gc-step-too-large", "calls numerical_gradient with h = 1e-2", """
    def gradient_error(f, grad_f, x):
        a = np.asarray(grad_f(np.array(x, dtype=float)), dtype=float)
        n = numerical_gradient(f, x, h=1e-2)
        return float(np.linalg.norm(a - n) / max(np.linalg.norm(a), np.linalg.norm(n), 1e-12))
""")
wrong(5, GE, (), "squared norms", _ge(
    "np.sum((a - n) ** 2) / max(np.sum(a ** 2), np.sum(n ** 2), 1e-12)"))

DE = "directional_error_impl"


def _de(draw: str, numeric: str = "(f(x + h * u) - f(x - h * u)) / (2 * h)", reduce: str = "max",
        rel: str = "abs(a - nm) / max(abs(a), abs(nm), 1e-12)", norm: bool = True,
        step: str = "np.finfo(float).eps ** (1 / 3) * max(1.0, float(np.max(np.abs(x))))") -> str:
    normalise = "u = u / np.linalg.norm(u)" if norm else "pass"
    return f"""
    def directional_error(f, grad_f, x, n_directions=3, seed=0):
        x = np.array(x, dtype=float)
        rng = np.random.default_rng(seed)
        g = np.asarray(grad_f(x.copy()), dtype=float)
        h = {step}
        errors = []
        for _ in range(n_directions):
            u = {draw}
            {normalise}
            a = float(np.sum(g * u))
            nm = {numeric}
            errors.append({rel})
        return float(np.{reduce}(errors))
    """


NORMAL = "rng.normal(size=x.shape)"
wrong(5, DE, "de-unseeded", "a fresh unseeded generator", _de("np.random.default_rng().normal(size=x.shape)"))
wrong(5, DE, "de-unseeded", "np.random.randn (global state)", _de("np.random.randn(*x.shape)"))
wrong(5, DE, "de-seed-ignored", "always seed 0", _de("np.random.default_rng(0).normal(size=x.shape)"))
wrong(5, DE, "ge-absolute", "absolute error", _de(NORMAL, rel="abs(a - nm)"))
wrong(5, DE, "de-not-max", "the mean over directions", _de(NORMAL, reduce="mean"))
wrong(5, DE, "gc-forward-difference", "forward difference", _de(NORMAL, numeric="(f(x + h * u) - f(x)) / h"))
wrong(5, DE, "gc-step-not-scaled", "a fixed step 1e-5", _de(NORMAL, step="1e-5"))
wrong(5, DE, "gc-step-too-large", "directions not normalised", _de(NORMAL, norm=False))
wrong(5, DE, "de-too-many-evaluations", "through the full numerical gradient", """
    def directional_error(f, grad_f, x, n_directions=3, seed=0):
        x = np.array(x, dtype=float)
        rng = np.random.default_rng(seed)
        g = np.asarray(grad_f(x.copy()), dtype=float)
        n_full = numerical_gradient(f, x)
        worst = 0.0
        for _ in range(n_directions):
            u = rng.normal(size=x.shape)
            u /= np.linalg.norm(u)
            a, nm = float(np.sum(g * u)), float(np.sum(n_full * u))
            worst = max(worst, abs(a - nm) / max(abs(a), abs(nm), 1e-12))
        return worst
""")
wrong(5, DE, "de-not-max", "keeps the last direction's error", """
    def directional_error(f, grad_f, x, n_directions=3, seed=0):
        x = np.array(x, dtype=float)
        rng = np.random.default_rng(seed)
        g = np.asarray(grad_f(x.copy()), dtype=float)
        h = np.finfo(float).eps ** (1 / 3) * max(1.0, float(np.max(np.abs(x))))
        for _ in range(n_directions):
            u = rng.normal(size=x.shape)
            u /= np.linalg.norm(u)
            a = float(np.sum(g * u))
            nm = (f(x + h * u) - f(x - h * u)) / (2 * h)
            err = abs(a - nm) / max(abs(a), abs(nm), 1e-12)
        return float(err)
""")

right(5, NG, "iterates x.flat with a reshaped view", """
    def numerical_gradient(f, x, h=None):
        x = np.array(x, dtype=float)
        flat = x.reshape(-1)
        g = np.zeros(flat.size)
        for k in range(flat.size):
            step = h if h is not None else 1e-5 * max(1.0, abs(flat[k]))
            old = flat[k]
            flat[k] = old + step
            fp = f(x)
            flat[k] = old - step
            fm = f(x)
            flat[k] = old
            g[k] = (fp - fm) / (2 * step)
        return g.reshape(x.shape)
""")
right(5, NG, "perturbs the caller's x but restores it exactly; returns a list for 1-D", """
    def numerical_gradient(f, x, h=None):
        g = np.zeros(np.shape(x))
        for i in np.ndindex(np.shape(x)):
            old = x[i]
            step = h if h is not None else 1e-6 * max(1.0, abs(old))
            x[i] = old + step
            fp = f(x)
            x[i] = old - step
            fm = f(x)
            x[i] = old
            g[i] = (fp - fm) / (2 * step)
        return g.tolist() if g.ndim == 1 else g
""")
right(5, NG, "vectorised step array, np.nditer", """
    def numerical_gradient(f, x, h=None):
        x = np.asarray(x, dtype=float)
        steps = np.full(x.shape, h) if h is not None else 6e-6 * np.maximum(1.0, np.abs(x))
        g = np.empty_like(x)
        it = np.nditer(x, flags=["multi_index"])
        for _ in it:
            i = it.multi_index
            e = np.zeros_like(x)
            e[i] = steps[i]
            g[i] = (f(x + e) - f(x - e)) / (2 * steps[i])
        return g
""")
right(5, GE, "np.sqrt of sums, numpy float", """
    def gradient_error(f, grad_f, x):
        a = np.asarray(grad_f(np.array(x, dtype=float)), dtype=float).ravel()
        n = np.asarray(numerical_gradient(f, x), dtype=float).ravel()
        return np.sqrt(np.sum((a - n) ** 2)) / max(np.sqrt(a @ a), np.sqrt(n @ n), 1e-12)
""")
right(5, GE, "numerical minus analytic, explicit h", """
    def gradient_error(f, grad_f, x):
        n = numerical_gradient(f, x, h=1e-5)
        a = grad_f(x.copy())
        return float(np.linalg.norm(n - a) / np.max([np.linalg.norm(a), np.linalg.norm(n), 1e-12]))
""")
right(5, DE, "Rademacher directions", _de("rng.choice([-1.0, 1.0], size=x.shape)"))
right(5, DE, "all directions drawn at once", """
    def directional_error(f, grad_f, x, n_directions=3, seed=0):
        x = np.asarray(x, dtype=float)
        U = np.random.default_rng(seed).standard_normal((n_directions,) + x.shape)
        U /= np.sqrt(np.sum(U ** 2, axis=tuple(range(1, U.ndim)), keepdims=True))
        g = np.asarray(grad_f(x), dtype=float)
        h = 6e-6 * max(1.0, np.abs(x).max())
        worst = 0.0
        for u in U:
            a = np.vdot(g, u)
            nm = (f(x + h * u) - f(x - h * u)) / (2 * h)
            worst = max(worst, abs(a - nm) / max(abs(a), abs(nm), 1e-12))
        return worst
""")
right(5, DE, "uniform directions on the sphere via rng.uniform", _de(
    "rng.uniform(-1.0, 1.0, size=x.shape)"))

# ============================================================================ ex06: training

LG = "loss_and_grad_impl"


def _lg(*parts: str) -> str:
    body = "\n".join(textwrap.dedent(p).strip() for p in parts)
    return "def loss_and_grad(W, b, X, labels):\n" + textwrap.indent(body, "    ")


BASE = """
    N = X.shape[0]
    rows = np.arange(N)
    Z = X @ W + b
    loss = -float(np.mean(log_softmax(Z)[rows, labels]))
    dZ = softmax(Z)
    dZ[rows, labels] -= 1.0
    dZ /= N
"""
wrong(6, LG, "train-grad-shape", "dW transposed", _lg(BASE, "return loss, dZ.T @ X, dZ.sum(axis=0)"))
wrong(6, LG, "train-db-double-mean", "db averaged again", _lg(BASE, "return loss, X.T @ dZ, dZ.mean(axis=0)"))
wrong(6, LG, "train-loss-sum", "summed loss", _lg(BASE, "return loss * N, X.T @ dZ, dZ.sum(axis=0)"))
wrong(6, LG, "ce-sign", "Y - P", _lg(BASE, "return loss, -(X.T @ dZ), -dZ.sum(axis=0)"))
wrong(6, LG, "ce-missing-mean", "no 1/N", _lg(BASE, "return loss, X.T @ dZ * N, dZ.sum(axis=0) * N"))
wrong(6, LG, "train-dw-double-mean", "dW divided by N again", _lg(BASE, "return loss, X.T @ dZ / N, dZ.sum(axis=0)"))
wrong(6, LG, "train-db-wrong-axis", "db summed over the classes", _lg(BASE, "return loss, X.T @ dZ, dZ.sum(axis=1)"))
wrong(6, LG, "ce-seed-sum-py", "the first seed question", _lg("""
    N = X.shape[0]
    Z = X @ W + b
    P = softmax(Z)
    Y = np.eye(W.shape[1])[labels]
    loss = -float(np.mean(log_softmax(Z)[np.arange(N), labels]))
    dZ = (np.sum(P * Y, axis=1, keepdims=True) - Y) / N
    return loss, X.T @ dZ, dZ.sum(axis=0)
"""))
wrong(6, LG, "ce-forgot-softmax", "logits where P belongs", _lg("""
    N = X.shape[0]
    Z = X @ W + b
    Y = np.eye(W.shape[1])[labels]
    loss = -float(np.mean(log_softmax(Z)[np.arange(N), labels]))
    dZ = (Z - Y) / N
    return loss, X.T @ dZ, dZ.sum(axis=0)
"""))
wrong(6, LG, "ce-mean-over-all", "divides by N * n", _lg("""
    Z = X @ W + b
    Y = np.eye(W.shape[1])[labels]
    loss = -float(np.mean(log_softmax(Z)[np.arange(len(X)), labels]))
    dZ = (softmax(Z) - Y) / Z.size
    return loss, X.T @ dZ, dZ.sum(axis=0)
"""))
wrong(6, LG, "train-labels-off-by-one", "labels taken as 1-based", _lg("""
    N = X.shape[0]
    Z = X @ W + b
    Y = np.eye(W.shape[1])[labels - 1]
    loss = -float(np.mean(np.sum(Y * log_softmax(Z), axis=1)))
    dZ = (softmax(Z) - Y) / N
    return loss, X.T @ dZ, dZ.sum(axis=0)
"""))
wrong(6, LG, "mutated-input", "takes a gradient step on the caller's W", _lg(BASE, """
    dW = X.T @ dZ
    W -= 0.0 * dW + 1e-3 * dW
    return loss, dW, dZ.sum(axis=0)
"""))
wrong(6, LG, "mutated-input", "centres X in place", _lg("""
    X -= X.mean(axis=0)
""", BASE, "return loss, X.T @ dZ, dZ.sum(axis=0)"))
wrong(6, LG, "log-softmax-underflow", "loss through log(softmax)", _lg("""
    N = X.shape[0]
    rows = np.arange(N)
    Z = X @ W + b
    P = softmax(Z)
    loss = -float(np.mean(np.log(P[rows, labels])))
    dZ = P.copy()
    dZ[rows, labels] -= 1.0
    dZ /= N
    return loss, X.T @ dZ, dZ.sum(axis=0)
"""))
wrong(6, LG, "ce-loss-all-classes", "the mean of -log p over every class", _lg(BASE, """
    loss = -float(np.mean(log_softmax(Z)))
    return loss, X.T @ dZ, dZ.sum(axis=0)
"""))
wrong(6, LG, "train-label-indexing", "log_softmax(Z)[:, labels]", _lg("""
    N = X.shape[0]
    Z = X @ W + b
    loss = -float(np.mean(log_softmax(Z)[:, labels]))
    dZ = softmax(Z)
    dZ[np.arange(N), labels] -= 1.0
    dZ /= N
    return loss, X.T @ dZ, dZ.sum(axis=0)
"""))
wrong(6, LG, (), "float32", _lg("""
    N = X.shape[0]
    rows = np.arange(N)
    Z = (X.astype(np.float32) @ W.astype(np.float32) + b.astype(np.float32))
    loss = -float(np.mean(log_softmax(Z)[rows, labels]))
    dZ = softmax(Z)
    dZ[rows, labels] -= 1.0
    dZ /= N
    return loss, X.astype(np.float32).T @ dZ, dZ.sum(axis=0)
"""))
wrong(6, LG, "softmax-overflow", "its own naive softmax for dZ", _lg("""
    N = X.shape[0]
    rows = np.arange(N)
    Z = X @ W + b
    loss = -float(np.mean(log_softmax(Z)[rows, labels]))
    E = np.exp(Z)
    dZ = E / E.sum(axis=1, keepdims=True)
    dZ[rows, labels] -= 1.0
    dZ /= N
    return loss, X.T @ dZ, dZ.sum(axis=0)
"""))

TR = "train_impl"


def _tr(update: str = "W -= lr * dW\n        b -= lr * db", record: str = "losses.append(loss)",
        init: str = "W = np.zeros((X.shape[1], n_classes))\n    b = np.zeros(n_classes)",
        loop: str = "range(steps)", before: str = "", args: str = "lr=0.5, steps=300") -> str:
    return f"""
def train(X, labels, n_classes, {args}):
    {init}
    losses = []
    {before}
    for _ in {loop}:
        loss, dW, db = loss_and_grad(W, b, X, labels)
        {update}
        {record}
    return W, b, losses
"""


wrong(6, TR, "train-diverged", "gradient ascent", _tr(update="W += lr * dW\n        b += lr * db"))
wrong(6, TR, "train-lr-ignored", "learning rate forced to 1e4", _tr(update="W -= 1e4 * dW\n        b -= 1e4 * db"))
wrong(6, TR, "train-lr-ignored", "learning rate fixed at 0.5", _tr(update="W -= 0.5 * dW\n        b -= 0.5 * db"))
wrong(6, TR, "ce-missing-mean", "the gradient not averaged", _tr(
    update="W -= lr * dW * len(X)\n        b -= lr * db * len(X)"))
wrong(6, TR, "train-bias-frozen", "b never updated", _tr(update="W -= lr * dW"))
wrong(6, TR, "train-step-count", "5 steps instead of steps", _tr(loop="range(5)"))
wrong(6, TR, "train-step-count", "one step short", _tr(loop="range(steps - 1)"))
wrong(6, TR, "train-loss-after-update", "records the loss after the update", _tr(
    update="W -= lr * dW\n        b -= lr * db\n        loss = loss_and_grad(W, b, X, labels)[0]"))
wrong(6, TR, "train-negative-loss", "records -loss", _tr(record="losses.append(-loss)"))
wrong(6, TR, (), "random initial weights", _tr(
    init="W = np.random.default_rng(0).normal(size=(X.shape[1], n_classes))\n    b = np.zeros(n_classes)"))
wrong(6, TR, "train-stale-gradient", "the gradient computed once", """
def train(X, labels, n_classes, lr=0.5, steps=300):
    W = np.zeros((X.shape[1], n_classes))
    b = np.zeros(n_classes)
    losses = []
    _, dW, db = loss_and_grad(W, b, X, labels)
    for _ in range(steps):
        loss = loss_and_grad(W, b, X, labels)[0]
        W -= lr * dW
        b -= lr * db
        losses.append(loss)
    return W, b, losses
""")
wrong(6, TR, "mutated-input", "standardises X in place", _tr(before="X -= X.mean(axis=0)"))
wrong(6, TR, "train-step-count", "returns only the last loss", """
def train(X, labels, n_classes, lr=0.5, steps=300):
    W = np.zeros((X.shape[1], n_classes))
    b = np.zeros(n_classes)
    for _ in range(steps):
        loss, dW, db = loss_and_grad(W, b, X, labels)
        W -= lr * dW
        b -= lr * db
    return W, b, [loss]
""")
wrong(6, TR, "train-lr-ignored", "default lr changed to 5", _tr(args="lr=5.0, steps=300"))
wrong(6, TR, "train-step-count", "default steps changed to 20", _tr(args="lr=0.5, steps=20"))

right(6, LG, "one-hot by np.add.at, dW by einsum, a list", _lg("""
    N = len(X)
    Z = X @ W + b
    P = softmax(Z)
    Y = np.zeros_like(P)
    np.add.at(Y, (np.arange(N), labels), 1.0)
    loss = -np.sum(Y * log_softmax(Z)) / N
    G = (P - Y) / N
    return [loss, np.einsum("nd,nc->dc", X, G), G.sum(axis=0)]
"""))
right(6, LG, "softgrad's logsumexp for the loss", _lg("""
    import softgrad
    Z = X @ W + b
    N = len(Z)
    loss = float(np.mean(softgrad.logsumexp(Z, axis=-1) - Z[np.arange(N), labels]))
    G = softmax(Z)
    G[np.arange(N), labels] -= 1
    G = G / N
    return loss, X.T @ G, np.sum(G, axis=0)
"""))
right(6, LG, "long double", _lg("""
    N = len(X)
    Z = (X @ W + b).astype(np.longdouble)
    s = Z - Z.max(axis=1, keepdims=True)
    logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    Y = np.eye(W.shape[1])[labels]
    G = (np.exp(logp) - Y) / N
    return -np.sum(Y * logp) / N, X.T @ G, G.sum(axis=0)
"""))
right(6, TR, "losses as an array, a while loop, float(loss)", """
def train(X, labels, n_classes, lr=0.5, steps=300):
    W, b = np.zeros((X.shape[1], n_classes)), np.zeros(n_classes)
    losses = np.empty(steps)
    k = 0
    while k < steps:
        loss, dW, db = loss_and_grad(W, b, X, labels)
        losses[k] = float(loss)
        W, b = W - lr * dW, b - lr * db
        k += 1
    return W, b, losses
""")
right(6, TR, "returns a list, parameters as one flat vector", """
def train(X, labels, n_classes, lr=0.5, steps=300):
    D = X.shape[1]
    theta = np.zeros(D * n_classes + n_classes)
    losses = []
    for _ in range(steps):
        W, b = theta[: D * n_classes].reshape(D, n_classes), theta[D * n_classes :]
        loss, dW, db = loss_and_grad(W, b, X, labels)
        losses.append(loss)
        theta = theta - lr * np.concatenate([np.ravel(dW), db])
    return [theta[: D * n_classes].reshape(D, n_classes), theta[D * n_classes :], losses]
""")
