"""Softmax, log-softmax and log-sum-exp, with the softmax Jacobian and its products.

All functions work along ``axis`` over any batch shape. Internally the input is viewed as rows of
shape (N, n) and processed a block of rows at a time, so that each block stays in cache while it
is read once and written once; results go straight into ``out`` when one is given.

Accuracy. For a row ``z`` with maximum ``m = z[k]`` every function here uses

    logsumexp(z) = m + log1p(s),    s = sum_{j != k} exp(z_j - m),

that is, the arg-max term (exactly 1) is taken out of the sum before the logarithm
(Blanchard, Higham and Higham, 2021). When one logit dominates, ``s`` is tiny and ``log1p(s)``
keeps all of its digits, where ``log(1 + s)`` would round to exactly 0. This is why
``log_softmax(z)[k]`` is ``-log1p(s)`` (accurate) rather than 0.
"""

from __future__ import annotations

import numpy as np

from softgrad._validation import (
    as_float_array,
    check_axis,
    check_finite_pair,
    check_finite_rows,
    check_positive_number,
    compute_dtype,
    to_rows,
)

__all__ = [
    "log_softmax",
    "logsumexp",
    "softmax",
    "softmax_jacobian",
    "softmax_jvp",
    "softmax_vjp",
]

# Elements per block of rows: 32 Ki float64 = 256 KiB; with a scratch block and the output
# block this stays inside a 1 MiB L2 cache.
_BLOCK_ELEMS = 1 << 15


def _row_blocks(N: int, n: int):
    step = max(1, _BLOCK_ELEMS // n)
    for start in range(0, N, step):
        yield start, min(N, start + step)


def _shift_block(zb, dest, start, batch_shape, name, temperature):
    """Write ``(z - max) / T`` for a block of rows into ``dest``; return (rows, argmax, max).

    The row maximum doubles as the validity check: NaN, +inf and all -inf rows show up in it.
    """
    k = zb.argmax(axis=1)  # argmax treats NaN as the maximum, so NaN rows are caught below
    r = np.arange(zb.shape[0])
    m = zb[r, k]
    check_finite_rows(m, start, batch_shape, name)
    # z - m cannot overflow except for logits near +-1.8e308; the result is then -inf, which
    # is the right answer after exp.
    with np.errstate(over="ignore"):
        np.subtract(zb, m[:, None], out=dest)
        if temperature != 1.0:
            np.divide(dest, temperature, out=dest)
    return r, k, m


def _rest_sum(e, r, k):
    """Sum of a row of ``exp(z - m)`` without the arg-max term (which is exactly 1)."""
    e[r, k] = 0.0
    return np.add.reduce(e, axis=1)


def _check_out(out, shape, dtype, name="out"):
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"{name} has shape {out.shape}, expected {shape}")
    if out.dtype != dtype:
        raise TypeError(f"{name} has dtype {out.dtype}, expected {dtype}")
    return out


def _prepare(z, axis, name="z"):
    z = as_float_array(z, name)
    ax = check_axis(axis, z.ndim, name)
    rows, batch_shape = to_rows(z, ax, name)
    cdt = compute_dtype(z.dtype)
    if rows.dtype != cdt:
        rows = rows.astype(cdt)
    return z, ax, rows, batch_shape


def _dest(z, ax, out, cdt):
    """Where to write the (N, n) result: straight into ``out`` when its layout allows.

    Returns ``(dest, direct)``; ``direct`` says that ``dest`` is a view of ``out``.
    """
    if out is not None and ax == z.ndim - 1 and out.dtype == cdt and out.flags.c_contiguous:
        return out.reshape(-1, z.shape[-1]), True
    return np.empty((z.size // z.shape[ax], z.shape[ax]), dtype=cdt), False


def _finish(res2d, direct, z, ax, out, dtype):
    """Reshape the (N, n) result back to the layout of ``z`` and to ``dtype``, or into ``out``."""
    if direct:
        return out
    moved_shape = tuple(s for i, s in enumerate(z.shape) if i != ax) + (z.shape[ax],)
    res = np.moveaxis(res2d.reshape(moved_shape), -1, ax)
    if out is not None:
        np.copyto(out, res, casting="same_kind")
        return out
    return res.astype(dtype, copy=False)


def logsumexp(z, axis=-1, keepdims=False, *, out=None):
    """Log of the sum of exponentials along an axis, without overflow.

    Parameters
    ----------
    z : array_like, shape (..., n, ...)
        Logits. Finite values or ``-inf`` (a masked class); at least one finite entry per row.
    axis : int, default -1
        The class axis.
    keepdims : bool, default False
        Keep the reduced axis with length 1.
    out : ndarray, optional
        Array of the result's shape and dtype to write into.

    Returns
    -------
    ndarray
        ``log(sum(exp(z), axis))``, with ``z``'s batch shape and floating dtype.

    Raises
    ------
    ValueError
        NaN, ``+inf`` or all ``-inf`` rows (the message names the row), empty input, bad axis.
    TypeError
        Complex, object or string input.

    See Also
    --------
    log_softmax : ``z - logsumexp(z)``, computed accurately.

    Notes
    -----
    With ``m = max_j z_j`` attained at ``k``,

    .. math:: \\operatorname{LSE}(z) = m + \\operatorname{log1p}\\Big(\\sum_{j \\ne k} e^{z_j - m}\\Big).

    Every exponent is ``<= 0``, so nothing overflows, and ``log1p`` keeps the small sum's
    digits when one logit dominates. Derived in the book, Chapter 1 (sec-softmax).

    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import logsumexp
    >>> float(logsumexp([1000.0, 1000.0]))  # log(2 e^1000) without overflow
    1000.6931471805599
    >>> logsumexp(np.zeros((2, 4)))
    array([1.38629436, 1.38629436])
    """
    z, ax, rows, batch_shape = _prepare(z, axis, "z")
    N, n = rows.shape
    res = np.empty(N, dtype=rows.dtype)
    scratch = np.empty((min(N, max(1, _BLOCK_ELEMS // n)), n), dtype=rows.dtype)
    for a, b in _row_blocks(N, n):
        e = scratch[: b - a]
        r, k, m = _shift_block(rows[a:b], e, a, batch_shape, "z", 1.0)
        np.exp(e, out=e)
        res[a:b] = m + np.log1p(_rest_sum(e, r, k))
    shape = batch_shape
    if keepdims:
        shape = list(z.shape)
        shape[ax] = 1
        shape = tuple(shape)
    res = res.reshape(shape)
    if out is not None:
        _check_out(out, shape, z.dtype)
        np.copyto(out, res, casting="same_kind")
        return out
    res = res.astype(z.dtype, copy=False)
    return res if res.ndim else res[()]


def softmax(z, axis=-1, temperature=1.0, *, out=None):
    """Softmax along an axis: ``p = exp(z / T) / sum(exp(z / T))``, computed stably.

    Parameters
    ----------
    z : array_like, shape (..., n, ...)
        Logits. Finite values or ``-inf`` (a masked class, which gets probability exactly 0).
    axis : int, default -1
        The class axis.
    temperature : float, default 1.0
        ``T > 0``; large ``T`` flattens the distribution, small ``T`` sharpens it.
    out : ndarray, optional
        Array of ``z``'s shape and floating dtype to write into (may be ``z`` itself).

    Returns
    -------
    p : ndarray, same shape and floating dtype as ``z``
        Non-negative, sums to 1 along ``axis``.

    Raises
    ------
    ValueError
        NaN, ``+inf`` or all ``-inf`` rows (the message names the row), empty input, bad axis,
        ``temperature <= 0``.
    TypeError
        Complex, object or string input.

    Notes
    -----
    ``p_i = exp((z_i - m)/T) / sum_j exp((z_j - m)/T)`` with ``m = max_j z_j``. Subtracting the
    maximum does not change ``p`` (softmax is shift-invariant) but makes every exponent
    ``<= 0``, so ``exp`` cannot overflow and the largest term is exactly 1. Derived in the
    book, Chapter 1 (sec-softmax).

    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import softmax
    >>> softmax([1.0, 2.0, 3.0])
    array([0.09003057, 0.24472847, 0.66524096])
    >>> softmax([1000.0, 1001.0, 1002.0])  # same answer: shift invariance
    array([0.09003057, 0.24472847, 0.66524096])
    >>> softmax([0.0, -np.inf])  # a masked class
    array([1., 0.])
    """
    temperature = check_positive_number(temperature, "temperature")
    z, ax, rows, batch_shape = _prepare(z, axis, "z")
    _check_out(out, z.shape, z.dtype)
    N, n = rows.shape
    dest, direct = _dest(z, ax, out, rows.dtype)
    for a, b in _row_blocks(N, n):
        p = dest[a:b]
        r, k, _ = _shift_block(rows[a:b], p, a, batch_shape, "z", temperature)
        np.exp(p, out=p)
        inv = 1.0 / (1.0 + _rest_sum(p, r, k))
        p *= inv[:, None]
        p[r, k] = inv
    return _finish(dest, direct, z, ax, out, z.dtype)


def log_softmax(z, axis=-1, temperature=1.0, *, out=None):
    """Log of the softmax along an axis, accurate even where softmax rounds to 0 or 1.

    Parameters
    ----------
    z : array_like, shape (..., n, ...)
        Logits. Finite values or ``-inf`` (a masked class, whose log-probability is ``-inf``).
    axis : int, default -1
        The class axis.
    temperature : float, default 1.0
        ``T > 0``; computes ``log softmax(z / T)``.
    out : ndarray, optional
        Array of ``z``'s shape and floating dtype to write into (may be ``z`` itself).

    Returns
    -------
    ndarray, same shape and floating dtype as ``z``
        ``log p``, all ``<= 0``.

    Raises
    ------
    ValueError
        NaN, ``+inf`` or all ``-inf`` rows (the message names the row), empty input, bad axis,
        ``temperature <= 0``.
    TypeError
        Complex, object or string input.

    Notes
    -----
    ``log p_i = (z_i - m)/T - log1p(sum_{j != k} exp((z_j - m)/T))`` where ``m = z_k`` is the
    row maximum. Never compute ``log(softmax(z))``: a probability that underflows to 0 gives
    ``-inf``, and one that rounds to 1 gives 0 where the true value is a small negative number.
    Derived in the book, Chapter 1 (sec-softmax).

    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import log_softmax
    >>> log_softmax([0.0, 0.0])
    array([-0.69314718, -0.69314718])
    >>> log_softmax([0.0, -800.0])  # log(softmax) would give [0, -inf]
    array([   0., -800.])
    >>> float(log_softmax([50.0, 0.0])[0])  # tiny but not 0: -exp(-50)
    -1.9287498479639178e-22
    """
    temperature = check_positive_number(temperature, "temperature")
    z, ax, rows, batch_shape = _prepare(z, axis, "z")
    _check_out(out, z.shape, z.dtype)
    N, n = rows.shape
    dest, direct = _dest(z, ax, out, rows.dtype)
    scratch = np.empty((min(N, max(1, _BLOCK_ELEMS // n)), n), dtype=rows.dtype)
    for a, b in _row_blocks(N, n):
        d = dest[a:b]
        e = scratch[: b - a]
        r, k, _ = _shift_block(rows[a:b], d, a, batch_shape, "z", temperature)
        np.exp(d, out=e)
        d -= np.log1p(_rest_sum(e, r, k))[:, None]
    return _finish(dest, direct, z, ax, out, z.dtype)


def softmax_jacobian(z, axis=-1):
    """The Jacobian of softmax at logits ``z``: ``J = diag(p) - p p^T``.

    This forms an (n, n) matrix per row, which is what you want for studying ``J`` and what you
    never want inside backpropagation: use :func:`softmax_vjp` there.

    Parameters
    ----------
    z : array_like, shape (..., n, ...)
        Logits (not probabilities).
    axis : int, default -1
        The class axis.

    Returns
    -------
    J : ndarray, shape (batch..., n, n)
        ``J[..., i, j] = dp_i / dz_j``; the batch axes are those of ``z`` without ``axis``.

    Notes
    -----
    ``dp_i/dz_j = p_i (delta_ij - p_j)``, so ``J = diag(p) - p p^T``. It is symmetric,
    positive semidefinite, and ``J 1 = 0`` (adding a constant to every logit changes nothing).
    Derived in the book, Chapter 2 (sec-softmax-jacobian).

    Examples
    --------
    >>> from softgrad import softmax_jacobian
    >>> J = softmax_jacobian([0.0, 0.0])
    >>> J
    array([[ 0.25, -0.25],
           [-0.25,  0.25]])
    >>> J.sum(axis=1)  # rows sum to zero
    array([0., 0.])
    """
    p = softmax(z, axis=axis)
    p = np.moveaxis(p, axis, -1)
    J = -p[..., :, None] * p[..., None, :]
    diag = np.einsum("...ii->...i", J)  # a writable view of the diagonal
    diag += p
    return J


def _vjp_like(p, g, axis, pname, gname, out):
    p = as_float_array(p, pname)
    g = as_float_array(g, gname)
    if p.shape != g.shape:
        raise ValueError(f"{gname} has shape {g.shape}, but {pname} has shape {p.shape}")
    dtype = np.result_type(p.dtype, g.dtype)
    ax = check_axis(axis, p.ndim, pname)
    _check_out(out, p.shape, dtype)
    prow, batch_shape = to_rows(p, ax, pname)
    grow, _ = to_rows(g, ax, gname)
    cdt = compute_dtype(dtype)
    prow = prow.astype(cdt, copy=False)
    grow = grow.astype(cdt, copy=False)
    N, n = prow.shape
    dest, direct = _dest(p, ax, out, cdt)
    for a, b in _row_blocks(N, n):
        pb, gb, ob = prow[a:b], grow[a:b], dest[a:b]
        dot = np.vecdot(pb, gb, axis=1)
        check_finite_pair(dot, batch_shape, f"{pname}/{gname}", a)
        np.subtract(gb, dot[:, None], out=ob)
        ob *= pb
    return _finish(dest, direct, p, ax, out, dtype)


def softmax_vjp(p, g, axis=-1, *, out=None):
    """Backpropagate through softmax: ``dL/dz = J^T g = p * (g - <g, p>)``, in O(n).

    Parameters
    ----------
    p : array_like, shape (..., n, ...)
        The softmax output ``p = softmax(z)`` (probabilities, not logits).
    g : array_like, same shape as ``p``
        Upstream gradient ``dL/dp``.
    axis : int, default -1
        The class axis.
    out : ndarray, optional
        Array of ``p``'s shape and dtype to write into.

    Returns
    -------
    ndarray, same shape as ``p``
        ``dL/dz``. Each row sums to 0 (up to rounding) when ``p`` sums to 1.

    Notes
    -----
    With ``s = p * g``, ``J^T g = s - (1^T s) p = p * (g - <g, p>)``: one inner product per row
    and two elementwise passes, and ``J`` (n x n) is never formed. ``J`` is symmetric, so this
    is also ``J g``. Derived in the book, Chapter 3 (sec-softmax-backprop).

    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import softmax, softmax_jacobian, softmax_vjp
    >>> z = np.array([1.0, 2.0, 3.0]); g = np.array([1.0, 0.0, 0.0])
    >>> softmax_vjp(softmax(z), g)
    array([ 0.08192507, -0.02203304, -0.05989202])
    >>> bool(np.allclose(softmax_vjp(softmax(z), g), g @ softmax_jacobian(z)))
    True
    """
    return _vjp_like(p, g, axis, "p", "g", out)


def softmax_jvp(p, v, axis=-1, *, out=None):
    """Forward-mode product through softmax: ``J v = p * (v - <v, p>)``, in O(n).

    Parameters
    ----------
    p : array_like, shape (..., n, ...)
        The softmax output ``p = softmax(z)``.
    v : array_like, same shape as ``p``
        A tangent (perturbation) of the logits ``z``.
    axis : int, default -1
        The class axis.
    out : ndarray, optional
        Array of ``p``'s shape and dtype to write into.

    Returns
    -------
    ndarray, same shape as ``p``
        The first-order change of ``p`` when ``z`` moves along ``v``.

    Notes
    -----
    ``J = diag(p) - p p^T`` is symmetric, so the JVP and the VJP share one formula.
    Derived in the book, Chapter 2 (sec-softmax-jacobian) and Chapter 3 (sec-softmax-backprop).

    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import softmax, softmax_jvp
    >>> p = softmax(np.array([0.0, 0.0]))
    >>> softmax_jvp(p, np.array([1.0, 1.0]))  # shifting all logits changes nothing
    array([0., 0.])
    """
    return _vjp_like(p, v, axis, "p", "v", out)
