"""Cross-entropy on logits, its gradient, and both in one pass.

The loss of a row with logits ``z`` and class weights ``y`` is
``L = -sum_j y_j log softmax(z)_j`` and its gradient is ``dL/dz = softmax(z) * sum(y) - y``.
For one-hot ``y`` (an integer label) this is the familiar ``p - y``; for weights that do not
sum to one the ``sum(y)`` factor matters. With label smoothing ``ls`` the target is
``y' = (1 - ls) y + ls / n``.

Accuracy when one logit dominates. Write ``m = z_k`` for the row maximum,
``d_j = z_j - m <= 0`` and ``s = sum_{j != k} exp(d_j)`` (from ``_softmax._log1p_sum``). Then

* ``-log p_j = log1p(s) - d_j``, and the loss ``sum_j y'_j (log1p(s) - d_j)`` is a sum of
  terms that are all ``>= 0``: nothing large is subtracted, so the loss of a confidently right
  row (about ``s``) keeps its digits, and an offset of all logits by -1e4 costs nothing
  (``logsumexp(z) - z_y`` would lose ~1e4 ulps there);
* ``p_k = 1 / (1 + s)`` and ``1 - p_k = s / (1 + s)``: the gradient entry of a confident target,
  ``p_k - 1``, is computed from the small terms, never as ``p_k - 1`` with ``p_k`` rounded to 1.
"""

from __future__ import annotations

import numpy as np

from softgrad._rows import Result, as_rows, map_blocks
from softgrad._softmax import _log1p_sum, checked_maxima, shifted
from softgrad._validation import (
    check_labels,
    check_reduction,
    check_smoothing,
    check_weights,
    target_kind,
)

__all__ = ["cross_entropy", "cross_entropy_grad", "cross_entropy_with_grad"]


class _Labels:
    """An integer class label per row: ``y`` is one-hot."""

    def __init__(self, labels, n, batch_shape):
        self.labels = check_labels(np.asarray(labels), n, batch_shape)
        self.inputs = []

    def terms(self, a, b, d, k, r, scratch):
        """``(sum_j y_j, sum_{j != k} y_j, sum_j y_j d_j)`` for rows a..b."""
        y = self.labels[a:b]
        return 1.0, y != k, d[r, y]

    def subtract(self, grad, a, b, r, w, scratch):
        """``grad -= w * y`` for rows a..b."""
        grad[r, self.labels[a:b]] -= w


class _Weights:
    """Non-negative class weights per row (probabilities, or any weights)."""

    def __init__(self, target, zr):
        self.y = as_rows(target, zr.axis, "target", zr.rows.dtype)
        check_weights(self.y.rows, zr.batch_shape)
        self.inputs = [self.y]

    def terms(self, a, b, d, k, r, scratch):
        y = self.y.rows[a:b]
        t = np.multiply(y, d, out=scratch(2, b - a))
        np.copyto(t, 0.0, where=y == 0)  # 0 * (-inf) = 0 for a weightless masked class
        yd = t.sum(axis=1)
        np.copyto(t, y)
        t[r, k] = 0.0
        rest = t.sum(axis=1)  # sum_{j != k} y_j, summed without the (maybe large) y_k
        return rest + y[r, k], rest, yd

    def subtract(self, grad, a, b, r, w, scratch):
        grad -= np.multiply(self.y.rows[a:b], w, out=scratch(2, b - a))


def _target(target, zr):
    if target_kind(target, zr.shape, zr.batch_shape, zr.axis) == "weights":
        return _Weights(target, zr)
    return _Labels(target, zr.rows.shape[1], zr.batch_shape)


def _cross_entropy(logits, target, axis, reduction, label_smoothing, want_grad, out=None):
    ls = check_smoothing(label_smoothing)
    check_reduction(reduction)
    zr = as_rows(logits, axis, "logits")
    N, n = zr.rows.shape
    y = _target(target, zr)
    c = 1.0 / N if reduction == "mean" else 1.0  # the gradient's scale
    result = Result(zr, out, [zr, *y.inputs]) if want_grad else None
    loss_rows = np.empty(N, dtype=zr.rows.dtype)

    def kernel(a, b, state, scratch):
        m, k, r = state
        zb = zr.rows[a:b]
        d = shifted(zb, m, 1.0, scratch(0, b - a))  # d_j = z_j - m
        Y, rest, yd = y.terms(a, b, d, k, r, scratch)
        sum_d = d.sum(axis=1) if ls > 0 else 0.0
        e = d  # exp(d) goes in place of d
        s, L = _log1p_sum(zb, m, k, r, d, 1.0, e)  # L = log sum_j exp(d_j) = logsumexp(z) - m
        # loss = sum_j y'_j (L - d_j), y' = (1 - ls) y + ls / n: every term is >= 0
        Ys = (1.0 - ls) * Y + ls  # sum_j y'_j
        loss = Ys * L
        if ls < 1:
            loss -= yd if ls == 0 else (1.0 - ls) * yd
        if ls > 0:
            loss -= (ls / n) * sum_d
        loss_rows[a:b] = loss
        if want_grad:
            q = (c * Ys) / (1.0 + s)  # c Y' p_k, as p_k = 1 / (1 + s) and p_j = e_j p_k
            g = np.multiply(e, q[:, None], out=result.array[a:b])  # c Y' p (but the arg-max)
            y.subtract(g, a, b, r, c * (1.0 - ls), scratch)  # - c (1 - ls) y
            if ls > 0:
                g -= c * ls / n
            # arg-max entry c (Y' p_k - y'_k) = c (sum_{j != k} y'_j - Y' (1 - p_k)), with
            # c Y' (1 - p_k) = q s: no p_k - 1 that rounds to 0
            rest_s = rest if ls == 0 else (1.0 - ls) * rest + ls * (n - 1) / n
            g[r, k] = c * rest_s - q * s

    map_blocks(
        N, n, zr.rows.dtype, zr.rows.nbytes, checked_maxima(zr, "logits"), kernel, out is not None
    )

    if reduction == "none":
        loss_out = loss_rows.reshape(zr.batch_shape).astype(zr.dtype, copy=False)
        if loss_out.ndim == 0:
            loss_out = loss_out[()]
    else:
        total = loss_rows.sum()
        loss_out = zr.dtype.type(total / N if reduction == "mean" else total)
    return loss_out, (result.finish() if want_grad else None)


_PARAMS = """
    Parameters
    ----------
    logits : array_like, shape (..., n, ...)
        Logits ``z``: finite or ``-inf`` (a masked class); at least one finite entry per row.
    target : array_like
        Either integer class labels with the shape of ``logits`` without ``axis`` (each in
        ``0..n-1``), or non-negative class weights ``y`` with the shape of ``logits``
        (probabilities, or any weights: they need not sum to 1).
    axis : int, default -1
        The class axis.
    reduction : {"mean", "sum", "none"}, default "mean"
        Average over the batch rows, sum over them, or return one loss per row.
    label_smoothing : float in [0, 1], default 0.0
        ``ls``: the target becomes ``y' = (1 - ls) y + ls / n``.
"""

_RAISES = """
    Raises
    ------
    ValueError
        NaN, ``+inf`` or all ``-inf`` logits rows; labels out of range or negative; NaN, inf or
        negative weights; a target of the wrong shape; empty input; a bad ``axis``,
        ``reduction`` or ``label_smoothing``. Messages name the argument and the row.
    TypeError
        Complex, object or string input; float labels.
"""


def cross_entropy(logits, target, *, axis=-1, reduction="mean", label_smoothing=0.0):
    return _cross_entropy(logits, target, axis, reduction, label_smoothing, False)[0]


def cross_entropy_grad(logits, target, *, axis=-1, reduction="mean", label_smoothing=0.0, out=None):
    return _cross_entropy(logits, target, axis, reduction, label_smoothing, True, out)[1]


def cross_entropy_with_grad(
    logits, target, *, axis=-1, reduction="mean", label_smoothing=0.0, out=None
):
    return _cross_entropy(logits, target, axis, reduction, label_smoothing, True, out)


cross_entropy.__doc__ = (
    """Cross-entropy of softmax(logits) against a target, computed from the logits.

    ``L = -sum_j y_j log softmax(z)_j`` per row, then reduced over the batch.
"""
    + _PARAMS
    + """
    Returns
    -------
    loss : float scalar of the logits' dtype, or ndarray of the batch shape for "none"
        A target class whose logit is ``-inf`` gives ``inf`` (the true value), never NaN.
"""
    + _RAISES
    + """
    See Also
    --------
    cross_entropy_grad, cross_entropy_with_grad

    Notes
    -----
    With ``m = z_k`` the row maximum and ``s = sum_{j != k} exp(z_j - m)``,
    ``-log p_j = (m - z_j) + log1p(s)``. Never ``-log(softmax(z)[y])``: it is ``inf`` as soon as
    ``p_y`` underflows, and exactly 0 for a confidently correct row whose true loss is tiny but
    positive. Derived in the book, Chapter 4 (sec-cross-entropy).

    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import cross_entropy
    >>> z = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.2]])
    >>> cross_entropy(z, np.array([0, 1]), reduction="none")
    array([0.41703002, 0.21155193])
    >>> round(float(cross_entropy(z, np.array([0, 1]))), 12)  # the mean over the 2 rows
    0.31429097257
    >>> round(float(cross_entropy(z, np.array([[1.0, 0, 0], [0, 1.0, 0]]))), 12)  # as weights
    0.31429097257
    >>> float(cross_entropy([40.0, 0.0], 0))  # tiny, not 0: about exp(-40)
    4.248354255291589e-18
"""
)

_OUT = """    out : ndarray, optional
        Array of the logits' shape and floating dtype to write the gradient into. Reusing one
        buffer step after step saves allocating, and page-faulting, a fresh array of the
        logits' size each time. It may also be ``logits`` itself or overlap it (then the
        gradient is computed into a fresh array and copied in). Every row is checked first,
        so an error leaves ``out`` as it was.
"""

cross_entropy_grad.__doc__ = (
    """Gradient of :func:`cross_entropy` with respect to the logits.
"""
    + _PARAMS
    + _OUT
    + """
    Returns
    -------
    grad : ndarray, same shape and floating dtype as ``logits``
        ``dL/dz = softmax(z) * sum(y') - y'`` per row, divided by the number of rows for
        "mean".
"""
    + _RAISES
    + """
    Notes
    -----
    ``dL/dz_i = sum_j y_j (p_i - delta_ij) = p_i sum(y) - y_i``. For a one-hot target this is
    ``p - y``; with weights that do not sum to 1 the ``sum(y)`` factor is what the quick
    derivation forgets. The target entry of a confident row, ``p_k - 1``, is computed as
    ``-sum_{j != k} p_j`` so that it does not round to 0. Derived in the book, Chapter 4
    (sec-cross-entropy), using Chapter 3 (sec-softmax-backprop).

    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import cross_entropy_grad, softmax
    >>> z = np.array([[2.0, 1.0, 0.1]])
    >>> cross_entropy_grad(z, np.array([0]))
    array([[-0.34099886,  0.24243297,  0.09856589]])
    >>> bool(np.allclose(cross_entropy_grad(z, np.array([0])), softmax(z) - [1, 0, 0]))
    True
    >>> y = np.array([[2.0, 1.0, 0.0]])  # weights summing to 3: grad = 3 p - y
    >>> bool(np.allclose(cross_entropy_grad(z, y), 3 * softmax(z) - y))
    True
"""
)

cross_entropy_with_grad.__doc__ = (
    """Cross-entropy and its gradient with respect to the logits, in one pass.

    The softmax computed for the loss is reused for the gradient, so this costs about as much
    as either alone.
"""
    + _PARAMS
    + _OUT
    + """
    Returns
    -------
    loss : float scalar of the logits' dtype, or ndarray of the batch shape for "none"
        As :func:`cross_entropy`.
    grad : ndarray, same shape as ``logits``
        As :func:`cross_entropy_grad`.
"""
    + _RAISES
    + """
    Notes
    -----
    Derived in the book, Chapter 4 (sec-cross-entropy).

    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import cross_entropy_with_grad
    >>> loss, grad = cross_entropy_with_grad(np.array([[0.0, 0.0]]), np.array([1]))
    >>> float(loss)
    0.6931471805599453
    >>> grad
    array([[ 0.5, -0.5]])
"""
)
