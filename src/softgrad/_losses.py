"""Cross-entropy on logits, its gradient, and both in one pass.

The loss of a row with logits ``z`` and class weights ``y`` is
``L = -sum_j y_j log softmax(z)_j`` and its gradient is ``dL/dz = softmax(z) * sum(y) - y``.
For one-hot ``y`` (an integer label) this is the familiar ``p - y``; for weights that do not
sum to one the ``sum(y)`` factor matters. With label smoothing ``eps`` (the book's epsilon) the
target is ``y_eps = (1 - eps) y + eps / n``, for ``n`` classes.

Accuracy when one logit dominates. Write ``m = z_k`` for the row maximum,
``d_j = z_j - m <= 0`` and ``s = sum_{j != k} exp(d_j)`` (from ``_softmax._log1p_sum``). Then

* ``-log p_j = log1p(s) - d_j``, and the loss ``sum_j (y_eps)_j (log1p(s) - d_j)`` is a sum of
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
    check_class_weights,
    check_ignore_index,
    check_labels,
    check_reduction,
    check_smoothing,
    check_weights,
    target_kind,
)

__all__ = ["cross_entropy", "cross_entropy_grad", "cross_entropy_with_grad"]


class _Labels:
    """An integer class label per row: ``y`` is one-hot, times the label's class weight, and 0
    on an ignored row."""

    def __init__(self, labels, n, batch_shape, weight, ignore_index, dtype):
        labels = np.asarray(labels)
        keep = None
        if ignore_index is not None:
            keep = (labels != ignore_index).reshape(-1)
            labels = np.where(labels == ignore_index, 0, labels)  # checked as class 0
        self.labels = check_labels(labels, n, batch_shape)
        # the weight of each row's label part: w[y_i], 0 where ignored (None: all 1)
        self.scale = None if weight is None else weight[self.labels]
        if keep is not None:
            self.scale = keep.astype(dtype)
            if weight is not None:
                self.scale *= weight[self.labels]
        self.keep = keep  # rows that count (None: all)
        self.inputs = []

    def divisor(self, N):
        """What "mean" divides by: the sum of the counted rows' label weights (PyTorch)."""
        return N if self.scale is None else float(self.scale.sum())

    def terms(self, a, b, d, k, r, scratch):
        """``(sum_j y_j, sum_{j != k} y_j, sum_j y_j d_j)`` for rows a..b."""
        y = self.labels[a:b]
        if self.scale is None:
            return 1.0, y != k, d[r, y]
        w = self.scale[a:b]
        d_y = d[r, y]
        return w, w * (y != k), np.where(w > 0, w * d_y, 0.0)  # 0 * (-inf) = 0 if weightless

    def subtract(self, grad, a, b, r, c, scratch):
        """``grad -= c * y`` for rows a..b."""
        grad[r, self.labels[a:b]] -= c if self.scale is None else c * self.scale[a:b]


class _Weights:
    """Non-negative class weights per row (probabilities, or any weights), times the class
    weights ``weight`` when given."""

    def __init__(self, target, zr, weight):
        self.y = as_rows(target, zr.axis, "target", zr.rows.dtype)
        check_weights(self.y.rows, zr.batch_shape)
        self.weight = weight
        self.keep = None
        self.inputs = [self.y]

    def divisor(self, N):
        return N  # PyTorch: the mean over rows, for probability targets with or without weight

    def _rows(self, a, b, scratch):
        y = self.y.rows[a:b]
        if self.weight is None:
            return y
        return np.multiply(y, self.weight, out=scratch(3, b - a))

    def terms(self, a, b, d, k, r, scratch):
        y = self._rows(a, b, scratch)
        t = np.multiply(y, d, out=scratch(2, b - a))
        np.copyto(t, 0.0, where=y == 0)  # 0 * (-inf) = 0 for a weightless masked class
        yd = t.sum(axis=1)
        np.copyto(t, y)
        t[r, k] = 0.0
        rest = t.sum(axis=1)  # sum_{j != k} y_j, summed without the (maybe large) y_k
        return rest + y[r, k], rest, yd

    def subtract(self, grad, a, b, r, c, scratch):
        grad -= np.multiply(self._rows(a, b, scratch), c, out=scratch(2, b - a))


def _target(target, zr, weight, ignore_index):
    n = zr.rows.shape[1]
    kind = target_kind(target, zr.shape, zr.batch_shape, zr.axis)
    check_ignore_index(ignore_index, kind, weight)
    if kind == "weights":
        return _Weights(target, zr, weight)
    return _Labels(target, n, zr.batch_shape, weight, ignore_index, zr.rows.dtype)


def _cross_entropy(
    logits,
    target,
    axis,
    reduction,
    label_smoothing,
    want_grad,
    out=None,
    weight=None,
    ignore_index=None,
):
    ls = check_smoothing(label_smoothing)
    check_reduction(reduction)
    zr = as_rows(logits, axis, "logits")
    N, n = zr.rows.shape
    w = check_class_weights(weight, n, zr.rows.dtype)
    y = _target(target, zr, w, ignore_index)
    # label smoothing spreads ls over the classes as u = weight / n (uniform 1 / n without
    # weights), on the rows that count; U = sum_j u_j
    u = None if w is None else w / n
    U = 1.0 if u is None else float(u.sum())
    D = y.divisor(N) if reduction == "mean" else 1.0
    c = 1.0 / D if D > 0 else 0.0  # the gradient's scale; nothing counted: a zero gradient
    result = Result(zr, out, [zr, *y.inputs]) if want_grad else None
    loss_rows = np.empty(N, dtype=zr.rows.dtype)

    def kernel(a, b, state, scratch):
        m, k, r = state
        zb = zr.rows[a:b]
        d = shifted(zb, m, 1.0, scratch(0, b - a))  # d_j = z_j - m
        Y, rest, yd = y.terms(a, b, d, k, r, scratch)
        v = 1.0 if y.keep is None else y.keep[a:b]  # 1 on the rows that count
        if ls > 0:
            ud = d.sum(axis=1) / n if u is None else np.where(u > 0, d, 0.0) @ u  # sum u_j d_j
        e = d  # exp(d) goes in place of d
        s, L = _log1p_sum(zb, m, k, r, d, 1.0, e)  # L = log sum_j exp(d_j) = logsumexp(z) - m
        # loss = sum_j y'_j (L - d_j), y' = (1 - ls) y + ls v u: every term is >= 0
        Ys = (1.0 - ls) * Y + ls * U * v  # sum_j y'_j
        loss = Ys * L
        if ls < 1:
            loss -= yd if ls == 0 else (1.0 - ls) * yd
        if ls > 0:
            loss -= (ls * v) * ud
        loss_rows[a:b] = loss
        if want_grad:
            q = (c * Ys) / (1.0 + s)  # c Y' p_k, as p_k = 1 / (1 + s) and p_j = e_j p_k
            g = np.multiply(e, q[:, None], out=result.array[a:b])  # c Y' p (but the arg-max)
            y.subtract(g, a, b, r, c * (1.0 - ls), scratch)  # - c (1 - ls) y
            if ls > 0:
                cu = c * ls / n if u is None else (c * ls) * u
                g -= cu if y.keep is None else v[:, None] * cu
            # arg-max entry c (Y' p_k - y'_k) = c (sum_{j != k} y'_j - Y' (1 - p_k)), with
            # c Y' (1 - p_k) = q s: no p_k - 1 that rounds to 0
            if ls == 0:
                rest_s = rest
            else:
                u_k = 1.0 / n if u is None else u[k]
                rest_s = (1.0 - ls) * rest + (ls * v) * (U - u_k)
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
        if reduction == "mean":  # nothing counted (every row ignored): NaN, as in PyTorch
            total = total / D if D > 0 else np.nan
        loss_out = zr.dtype.type(total)
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
        ``eps``: the target becomes ``y_eps = (1 - eps) y + eps / n`` for ``n`` classes.
    weight : array_like, shape (n,), optional
        One non-negative weight per class, with PyTorch's meaning: a row's loss is scaled by
        its label's weight, the smoothing term weights class ``j`` by ``weight[j]``, and for
        integer labels "mean" divides by the sum of the counted rows' label weights, not by
        the number of rows (probability targets: ``y_eps = weight * ((1 - eps) y + eps / n)``, and
        "mean" divides by the number of rows).
    ignore_index : int, optional
        For integer labels: rows with this label count for nothing (loss and gradient 0) and
        are left out of the "mean" divisor. If every row is ignored, "mean" gives NaN (as
        PyTorch does) and a zero gradient. With ``weight``, an ``ignore_index`` that is a
        class index must have weight 0.
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


def cross_entropy(
    logits,
    target,
    *,
    axis=-1,
    reduction="mean",
    label_smoothing=0.0,
    weight=None,
    ignore_index=None,
):
    return _cross_entropy(
        logits, target, axis, reduction, label_smoothing, False, None, weight, ignore_index
    )[0]


def cross_entropy_grad(
    logits,
    target,
    *,
    axis=-1,
    reduction="mean",
    label_smoothing=0.0,
    weight=None,
    ignore_index=None,
    out=None,
):
    return _cross_entropy(
        logits, target, axis, reduction, label_smoothing, True, out, weight, ignore_index
    )[1]


def cross_entropy_with_grad(
    logits,
    target,
    *,
    axis=-1,
    reduction="mean",
    label_smoothing=0.0,
    weight=None,
    ignore_index=None,
    out=None,
):
    return _cross_entropy(
        logits, target, axis, reduction, label_smoothing, True, out, weight, ignore_index
    )


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
        ``dL/dz = softmax(z) * sum(y_eps) - y_eps`` per row, divided by the number ``N`` of rows
        for "mean" (for a batch ``Z``, this is the book's ``G = (P - Y) / N``).
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
