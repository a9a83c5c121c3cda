"""Cross-entropy of a linear layer's output, without forming the logits.

A language model's last layer maps hidden states ``h`` (N, D), the book's ``X``, to logits
``Z = h W^T + b`` over a vocabulary of ``n`` classes; with n = 50257 the logits alone are N x n
(412 MB in float32 for N = 2048), and autograd keeps them, their softmax and their gradient.
Here the rows are taken a chunk at a time: the chunk's logits are formed, their loss and
gradient ``dZ = P - Y`` come from :func:`softgrad.cross_entropy_with_grad` (the same kernel as
everywhere else), and the chunk's share of the gradients is added up at once:

    dh = dZ W,    dW = dZ^T h,    db = sum over rows of dZ    (then divided by N for "mean").

``W`` is (n, D), one row per class, as in a language model and in PyTorch's ``Linear``: the
transpose of the (D, n) weights of the book's Chapter 6. Peak extra memory is two (chunk, n)
arrays, one (2048, D) block for dW and the cross-entropy kernel's work arrays (a row block,
about 1 MiB): it does not grow with N, and is never (N, n). Derived in the book, Chapter 8
(sec-linear-cross-entropy).
"""

from __future__ import annotations

import numpy as np

from softgrad._losses import cross_entropy_with_grad
from softgrad._validation import (
    check_chunk_size,
    check_finite_matrix,
    check_labels,
    check_reduction,
    check_smoothing,
)

__all__ = ["linear_cross_entropy", "linear_cross_entropy_with_grad"]

# A chunk's logits take about this many bytes (and so does its gradient): large enough that
# the matrix products run at full speed, small enough to stay far below N x V.
CHUNK_BYTES = 24 << 20
# dW is accumulated a block of vocabulary rows at a time, through a (block, d) buffer.
VOCAB_BLOCK = 2048


def _inputs(h, W, labels, bias, reduction, label_smoothing, chunk_size):
    ls = check_smoothing(label_smoothing)
    check_reduction(reduction)
    h = check_finite_matrix(h, "h", 2)
    W = check_finite_matrix(W, "W", 2)
    N, d = h.shape
    V = W.shape[0]
    if W.shape[1] != d:
        raise ValueError(f"W has shape {W.shape}: expected (V, {d}), as h has {d} features")
    dtype = np.result_type(h.dtype, W.dtype)
    if bias is not None:
        bias = check_finite_matrix(bias, "bias", 1)
        if bias.shape != (V,):
            raise ValueError(f"bias has shape {bias.shape}, expected ({V},)")
        dtype = np.result_type(dtype, bias.dtype)
        bias = bias.astype(dtype, copy=False)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"h and W must be float32 or float64, got {dtype}")
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.shape != (N,):
        raise ValueError(f"labels has shape {labels.shape}, expected ({N},)")
    labels = check_labels(labels, V, (N,))
    c = check_chunk_size(chunk_size, N, max(1, CHUNK_BYTES // (V * np.dtype(dtype).itemsize)))
    h = np.ascontiguousarray(h, dtype=dtype)
    W = np.ascontiguousarray(W, dtype=dtype)
    return h, W, labels, bias, ls, c


def _run(h, W, labels, bias, reduction, ls, c, want_grad):
    N, d = h.shape
    V = W.shape[0]
    dtype = h.dtype
    z = np.empty((min(c, N), V), dtype=dtype)  # one chunk of logits
    dz = np.empty_like(z) if want_grad else None  # and of their gradient
    dh = np.empty_like(h) if want_grad else None
    dW = np.zeros_like(W) if want_grad else None
    db = np.zeros(V, dtype=dtype) if want_grad and bias is not None else None
    acc = np.empty((min(VOCAB_BLOCK, V), d), dtype=dtype) if want_grad else None
    losses = np.empty(N, dtype=dtype)
    for a in range(0, N, c):
        b = min(N, a + c)
        hb, zb = h[a:b], z[: b - a]
        np.matmul(hb, W.T, out=zb)  # z = h W^T (+ b): BLAS, W read transposed in place
        if bias is not None:
            zb += bias
        if not want_grad:
            losses[a:b] = cross_entropy_with_grad(
                zb, labels[a:b], reduction="none", label_smoothing=ls
            )[0]
            continue
        g = dz[: b - a]
        losses[a:b], _ = cross_entropy_with_grad(
            zb, labels[a:b], reduction="none", label_smoothing=ls, out=g
        )
        # the "none" gradient is dL_i/dz_i per row: sum over rows below, scale at the end
        np.matmul(g, W, out=dh[a:b])  # dh = dz W
        if db is not None:
            db += g.sum(axis=0)
        for v0 in range(0, V, VOCAB_BLOCK):  # dW += dz^T h, a block of vocabulary at a time
            v1 = min(V, v0 + VOCAB_BLOCK)
            t = np.matmul(g[:, v0:v1].T, hb, out=acc[: v1 - v0])
            dW[v0:v1] += t
    if reduction == "none":
        loss = losses
    else:
        total = losses.sum()
        loss = dtype.type(total / N if reduction == "mean" else total)
    if want_grad and reduction == "mean":
        for grad in (dh, dW) + ((db,) if db is not None else ()):
            grad /= N
    return loss, dh, dW, db


_PARAMS = """
    Parameters
    ----------
    h : array_like, shape (N, D)
        Hidden states, one row per token: the ``D`` inputs of the output layer (the book's
        ``X``), float32 or float64.
    W : array_like, shape (n, D)
        The output layer's weights, one row per class (vocabulary entry) for ``n`` classes.
    labels : array_like of int, shape (N,)
        The target class of each row, in ``0..n-1``.
    bias : array_like, shape (n,), optional
        The output layer's bias; None for none (then ``db`` is None).
    reduction : {"mean", "sum", "none"}, default "mean"
        As in :func:`softgrad.cross_entropy`. With "none" the gradients are those of the sum.
    label_smoothing : float in [0, 1], default 0.0
        As in :func:`softgrad.cross_entropy`.
    chunk_size : int, optional
        Rows per chunk. The default keeps a chunk's logits near 24 MiB (about 125 rows of a
        50257-word vocabulary in float32); peak extra memory is about twice that.
"""

_RAISES = """
    Raises
    ------
    ValueError
        Shapes that do not fit, NaN or inf in ``h``, ``W`` or ``bias`` (the message names the
        argument and the row), labels out of range, a bad ``reduction``, ``label_smoothing``
        or ``chunk_size``.
    TypeError
        Non-float inputs (other than integers, which become float64), non-integer labels.
"""


def linear_cross_entropy(
    h, W, labels, *, bias=None, reduction="mean", label_smoothing=0.0, chunk_size=None
):
    h, W, labels, bias, ls, c = _inputs(h, W, labels, bias, reduction, label_smoothing, chunk_size)
    return _run(h, W, labels, bias, reduction, ls, c, want_grad=False)[0]


def linear_cross_entropy_with_grad(
    h, W, labels, *, bias=None, reduction="mean", label_smoothing=0.0, chunk_size=None
):
    h, W, labels, bias, ls, c = _inputs(h, W, labels, bias, reduction, label_smoothing, chunk_size)
    return _run(h, W, labels, bias, reduction, ls, c, want_grad=True)


linear_cross_entropy.__doc__ = (
    """Cross-entropy of ``softmax(h W^T + b)`` against ``labels``, without the (N, n) logits.

    Equals ``cross_entropy(h @ W.T + bias, labels, ...)``; the logits are formed a chunk of
    rows at a time and dropped.
"""
    + _PARAMS
    + """
    Returns
    -------
    loss : float scalar of the inputs' dtype, or ndarray (N,) for "none"
"""
    + _RAISES
    + """
    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import cross_entropy, linear_cross_entropy
    >>> rng = np.random.default_rng(0)
    >>> h, W = rng.normal(size=(6, 4)), rng.normal(size=(9, 4))
    >>> labels = np.array([0, 3, 8, 1, 1, 5])
    >>> loss = linear_cross_entropy(h, W, labels, chunk_size=4)
    >>> bool(np.isclose(loss, cross_entropy(h @ W.T, labels), rtol=1e-14))
    True
"""
)

linear_cross_entropy_with_grad.__doc__ = (
    """The loss of :func:`linear_cross_entropy` and its gradients with respect to ``h``, ``W``
    and ``bias``, without the (N, n) logits or their gradient.
"""
    + _PARAMS
    + """
    Returns
    -------
    loss : as :func:`linear_cross_entropy`
    dh : ndarray, shape (N, D)
        ``dL/dh = (P - Y) W`` (divided by N for "mean": ``G W`` with the book's ``G``).
    dW : ndarray, shape (n, D)
        ``dL/dW = (P - Y)^T h`` (divided by N for "mean").
    db : ndarray, shape (n,), or None when ``bias`` is None
        ``dL/db``: the column sums of ``P - Y`` (divided by N for "mean").
"""
    + _RAISES
    + """
    Notes
    -----
    ``P - Y`` is the chapter-4 gradient of the loss with respect to the logits, one chunk of
    rows at a time; the chain rule through ``Z = h W^T + b`` gives the three products above.
    Derived in the book, Chapter 8 (sec-linear-cross-entropy).

    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import cross_entropy_grad, linear_cross_entropy_with_grad
    >>> rng = np.random.default_rng(0)
    >>> h, W, b = rng.normal(size=(6, 4)), rng.normal(size=(9, 4)), rng.normal(size=9)
    >>> labels = np.array([0, 3, 8, 1, 1, 5])
    >>> loss, dh, dW, db = linear_cross_entropy_with_grad(h, W, labels, bias=b, chunk_size=4)
    >>> G = cross_entropy_grad(h @ W.T + b, labels)  # (P - Y) / N, all of it
    >>> bool(np.allclose(dh, G @ W) and np.allclose(dW, G.T @ h) and np.allclose(db, G.sum(0)))
    True
"""
)
