"""Cross-entropy on logits, its gradient, and both in one pass.

The loss of a row with logits ``z`` and class weights ``y`` is
``L = -sum_j y_j log softmax(z)_j`` and its gradient is ``dL/dz = softmax(z) * sum(y) - y``.
For one-hot ``y`` this is the familiar ``p - y``; for weights that do not sum to one the
``sum(y)`` factor matters.

Accuracy when one logit dominates. Write ``m = z_k`` for the row maximum,
``d_j = z_j - m <= 0`` and ``s = sum_{j != k} exp(d_j)``. Then

* ``-log p_j = -d_j + log1p(s)``: no large number is subtracted from another, so the loss of a
  confidently right row (tiny, about ``s``) keeps its digits, and an offset of all logits by
  -1e4 costs nothing (``logsumexp(z) - z_y`` would lose ~1e4 ulps there);
* ``p_k - 1 = -s / (1 + s)``: the gradient entry of a confident target is computed from the
  small terms, never as ``p_k - 1`` with ``p_k`` rounded to 1.
"""

from __future__ import annotations

import numpy as np

from softgrad._parallel import run_rows
from softgrad._validation import (
    as_float_array,
    check_labels,
    check_reduction,
    check_smoothing,
    check_weights,
    to_rows,
)
from softgrad.softmax import (
    _block_step,
    _check_out,
    _col,
    _dest,
    _finish,
    _offsets,
    _prepare,
    _row_offsets,
    _shift_block,
    _small_block,
)

__all__ = ["cross_entropy", "cross_entropy_grad", "cross_entropy_with_grad"]


def _cross_entropy(logits, target, axis, reduction, label_smoothing, want_grad, out=None):
    eps = check_smoothing(label_smoothing) if label_smoothing != 0.0 else 0.0
    if reduction != "mean":
        check_reduction(reduction)
    if (
        out is None
        and type(target) is np.ndarray
        and type(logits) is np.ndarray
        and target.size > 1
        and target.dtype.kind in "iu"
        and target.shape == logits.shape[:-1]
        and (blk := _small_block(logits, axis)) is not None
    ):
        # Small input, integer labels, several rows: the loop below in one block, without
        # its bookkeeping (same operations, bitwise the same results).
        fi, _, e = blk
        N, n = e.shape
        li = check_labels(target, n, target.shape) + _offsets(N, n)
        loss = _labels_block(e, fi, li, 1.0 / N if reduction == "mean" else 1.0, eps, want_grad)
        if reduction == "none":
            loss_out = loss.reshape(target.shape)
        else:
            total = np.add.reduce(loss)
            loss_out = logits.dtype.type(total / N if reduction == "mean" else total)
        return loss_out, (e.reshape(logits.shape) if want_grad else None)
    z, ax, rows, batch_shape = _prepare(logits, axis, "logits")
    N, n = rows.shape
    cdt = rows.dtype

    if type(target) is not np.ndarray:
        try:
            target = np.asarray(target)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"target: could not be converted to a numeric array ({exc})") from None
    kind = target.dtype.kind
    if kind not in "iubf":
        raise TypeError(
            f"target: expected integer labels or real class weights, got dtype {target.dtype}"
        )
    if target.shape == z.shape:
        soft = True
        y, _ = to_rows(as_float_array(target, "target"), ax, "target")
        y = y.astype(cdt, copy=False)
        check_weights(y, batch_shape)
    elif target.shape == batch_shape:
        soft = False
        if kind not in "iu":
            raise TypeError(
                f"target: class labels must be integers, got dtype {target.dtype} "
                f"(for class weights pass an array of shape {z.shape})"
            )
        labels = check_labels(target, n, batch_shape)
    else:
        raise ValueError(
            f"target has shape {target.shape}; expected {batch_shape} (integer labels: logits' "
            f"shape {z.shape} without axis {ax}) or {z.shape} (class weights)"
        )

    c = 1.0 / N if reduction == "mean" else 1.0  # gradient scale
    smooth = eps / n  # the weight every class gets from smoothing
    loss_rows = np.empty(N, dtype=cdt)
    step = _block_step(N, n, rows.itemsize)
    offs = _row_offsets(N, step, n)
    direct = False
    if out is not None:
        _check_out(out, z.shape, z.dtype)
    if want_grad:
        grad, direct = _dest(z, ax, out, rows)  # straight into out when its layout allows
    else:
        grad = None

    def work(lo, hi):
        scratch = None if want_grad else np.empty((min(hi - lo, step), n), dtype=cdt)
        tmp = np.empty((min(hi - lo, step), n), dtype=cdt) if soft else None
        for a in range(lo, hi, step):
            b = min(hi, a + step)
            e = grad[a:b] if want_grad else scratch[: b - a]
            if b - a == 1 and not soft:  # tiny inputs and wide rows: scalar arithmetic per row
                loss_rows[a] = _row_labels(
                    rows[a:b], e, int(labels[a]), c, eps, a, batch_shape, want_grad
                )
                continue
            ef = e.reshape(-1)
            fi, _ = _shift_block(rows[a:b], e, offs, a, batch_shape, "logits", 1.0)  # e = z - m
            fi = fi.reshape(-1)  # one flat arg-max index per row, also for a one-row block
            sum_d = np.add.reduce(e, axis=1) if eps > 0 else 0.0
            if soft:
                yb = y[a:b]
                t = tmp[: b - a]
                tf = t.reshape(-1)
                # sum_j y_j d_j, with 0 * (-inf) = 0 for weightless masked classes
                with np.errstate(invalid="ignore"):
                    np.multiply(yb, e, out=t)
                np.copyto(t, 0.0, where=yb == 0)
                yd = np.add.reduce(t, axis=1)
                np.copyto(t, yb)
                y_k = tf[fi]
                tf[fi] = 0.0
                rest_y = np.add.reduce(t, axis=1)  # sum_{j != k} y_j, without cancellation
            else:
                li = labels[a:b] if offs is None else labels[a:b] + offs[: b - a]
                loss_rows[a:b] = _labels_block(e, fi, li, c, eps, want_grad)
                continue
            np.exp(e, out=e)
            ef[fi] = 0.0  # the arg-max term, exactly 1, is added back by log1p
            s = np.add.reduce(e, axis=1)
            L = np.log1p(s)  # = logsumexp(z) - m

            # loss = sum_j y'_j (L - d_j) with y' = (1 - eps) y + eps / n; every term is >= 0
            Y = (1.0 - eps) * (rest_y + y_k) + eps  # sum of y'
            loss = Y * L
            if eps < 1:
                loss -= (1.0 - eps) * yd
            if eps > 0:
                loss -= smooth * sum_d
            loss_rows[a:b] = loss

            if want_grad:
                inv = np.reciprocal(s + 1.0)  # p_k = 1 / (1 + s)
                frac_rest = s * inv  # = sum_{j != k} p_j = 1 - p_k, accurately
                # grad = c (p Y - y'); the arg-max entry is c (sum_{j != k} y'_j - (1 - p_k) Y)
                np.multiply(e, _col(c * Y * inv), out=e)
                if eps < 1:
                    e -= (c * (1.0 - eps)) * yb
                if eps > 0:
                    e -= c * smooth
                rest_ys = (1.0 - eps) * rest_y + smooth * (n - 1)
                ef[fi] = c * (rest_ys - frac_rest * Y)

    run_rows(N, step, rows.nbytes, work)

    dtype = z.dtype
    if reduction == "none":
        loss_out = loss_rows.reshape(batch_shape)
        if loss_out.dtype != dtype:
            loss_out = loss_out.astype(dtype)
        if loss_out.ndim == 0:
            loss_out = loss_out[()]
    else:
        total = np.add.reduce(loss_rows)
        if reduction == "mean":
            total = total / N
        loss_out = dtype.type(total)
    if not want_grad:
        return loss_out, None
    return loss_out, _finish(grad, direct, z, ax, out, dtype)


def _labels_block(e, fi, li, c, eps, want_grad):
    """The loop body above for a block of several rows with integer labels; returns their losses.

    ``e`` holds ``z - m`` for the block (and becomes the gradient rows when ``want_grad``);
    ``fi`` and ``li`` are the flat positions of each row's arg-max and label inside ``e``.
    """
    ef = e.reshape(-1)
    n = e.shape[1]
    smooth = eps / n
    d_y = ef[li]
    sum_d = np.add.reduce(e, axis=1) if eps > 0 else 0.0
    np.exp(e, out=e)
    ef[fi] = 0.0  # the arg-max term, exactly 1, is added back by log1p
    s = np.add.reduce(e, axis=1)
    L = np.log1p(s)  # = logsumexp(z) - m
    loss = L - d_y if eps == 0 else L - (1.0 - eps) * d_y if eps < 1 else L
    if eps > 0:
        loss -= smooth * sum_d
    if want_grad:
        inv = np.reciprocal(s + 1.0)  # p_k = 1 / (1 + s)
        cinv = c * inv
        np.multiply(e, cinv[:, None], out=e)
        if eps > 0:
            e -= c * smooth
        ef[li] -= c * (1.0 - eps)
        # arg-max entry p_k - y'_k: when the label is the arg-max this is
        # (1 - y'_k) - (1 - p_k), both parts computed without cancellation
        hit = li == fi
        if eps > 0:
            ef[fi] = np.where(hit, c * (eps - smooth - s * inv), c * (inv - smooth))
        elif True in hit.tolist():
            ef[fi] = np.where(hit, -(c * (s * inv)), cinv)
        else:
            ef[fi] = cinv
    return loss


def _row_labels(zb, e, label, c, eps, start, batch_shape, want_grad):
    """The loop body above for a block of one row and an integer label; returns its loss.

    The same operations in the same precision (numpy scalars of the row's dtype instead of
    length-1 arrays), so the results are bitwise identical, with far less per-call overhead.
    """
    k, _ = _shift_block(zb, e, None, start, batch_shape, "logits", 1.0)  # e = z - m
    n = e.shape[1]
    ef = e.reshape(-1)
    smooth = eps / n
    d_y = ef[label]
    sum_d = np.add.reduce(e, axis=None) if eps > 0 else 0.0
    np.exp(e, out=e)
    ef[k] = 0.0  # the arg-max term, exactly 1, is added back by log1p
    s = np.add.reduce(e, axis=None)
    L = np.log1p(s)
    loss = L - d_y if eps == 0 else L - (1.0 - eps) * d_y if eps < 1 else L
    if eps > 0:
        loss -= smooth * sum_d
    if want_grad:
        inv = np.reciprocal(s + 1.0)
        frac_rest = s * inv
        e *= c * inv
        if eps > 0:
            e -= c * smooth
        ef[label] -= c * (1.0 - eps)
        ef[k] = c * (eps - smooth - frac_rest) if label == k else c * (inv - smooth)
    return loss


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
        ``eps``: the target becomes ``y' = (1 - eps) y + eps / n``.
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
        Array of the logits' shape and floating dtype to write the gradient into (may be
        ``logits`` itself). Reusing one buffer step after step saves allocating, and
        page-faulting, a fresh array of the logits' size each time. If an error is raised,
        ``out`` may already hold some rows.
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
