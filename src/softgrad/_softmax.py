"""Softmax, log-softmax and log-sum-exp, with the softmax Jacobian and its products.

Each operation is one kernel, written for a block of rows ``z`` (shape (rows, n), for n classes)
the way the book writes the formula; the driver in ``_rows.py`` validates the input, walks the blocks,
spreads large inputs over threads and writes ``out=``.

Accuracy. For a row ``z`` with maximum ``m = z_k`` every log-domain result here uses

    logsumexp(z) = m + log1p(s),    s = sum_{j != k} exp(z_j - m),

that is, the arg-max term (exactly 1) is taken out of the sum before the logarithm
(Blanchard, Higham and Higham, 2021). When one logit dominates, ``s`` is tiny and ``log1p(s)``
keeps all of its digits, where ``log(1 + s)`` would round to exactly 0. This is why
``log_softmax(z)[k]`` is ``-log1p(s)`` (accurate) rather than 0. :func:`_log1p_sum` is the
one place where this is computed, together with the rounding of ``z_j - m`` that it exposes.
"""

from __future__ import annotations

import numpy as np

from softgrad._rows import Result, as_rows, map_blocks
from softgrad._validation import (
    as_float_array,
    check_inner_products,
    check_out,
    check_positive_number,
    check_row_maxima,
)

__all__ = [
    "log_softmax",
    "logsumexp",
    "softmax",
    "softmax_jacobian",
    "softmax_jvp",
    "softmax_vjp",
]


# ---------------------------------------------------------------- the shared pieces

# Rows whose log1p(s) could be off by more than this many ulps through the rounding of z - m
# get the compensated sum (see _log1p_sum).
_FIX_ULPS = 8.0


def row_maxima(z):
    """Each row's maximum ``m``, its position ``k``, and the row numbers ``r`` (so that
    ``z[r, k]`` is ``m``).

    ``argmax`` stops at a NaN, so ``m`` is NaN for a row with a NaN, ``+inf`` for a row with a
    ``+inf`` and ``-inf`` for a row that is all ``-inf``: the maxima are also the check.
    """
    k = z.argmax(axis=1)
    r = np.arange(len(k))
    return z[r, k], k, r


def checked_maxima(rows, name, where=True):
    """``check(a, b)`` for the driver: the row maxima of rows a..b (and, with ``where``, their
    positions), or the named error."""

    def check(a, b):
        if where:
            m, k, r = row_maxima(rows.rows[a:b])
        else:
            m, k, r = rows.rows[a:b].max(axis=1), None, None  # max propagates NaN too
        check_row_maxima(m, a, rows.batch_shape, name)
        return m, k, r

    return check


# Rows up to this long take BLAS's dot (np.vecdot), about twice as fast as einsum's loop;
# OpenBLAS runs a dot product single-threaded below about 10^4 entries.
_BLAS_DOT_MAX = 8192


def rowdot(a, b):
    """``sum_j a_ij b_ij`` for each row i.

    Longer rows go through einsum's own loop instead of BLAS: above about 10^4 entries BLAS
    starts threads of its own, which on a busy machine stalled a (5, 50257) float64 product
    for 0.1 s, and inside softgrad's own threads would oversubscribe the cores. Either way a
    row's value depends only on that row.
    """
    if a.shape[1] <= _BLAS_DOT_MAX:
        return np.vecdot(a, b)
    return np.einsum("ij,ij->i", a, b)


def shifted(z, m, temperature, d):
    """``d = (z - m) / T``: every exponent ``<= 0``, so ``exp`` cannot overflow."""
    np.subtract(z, m[:, None], out=d)
    if temperature != 1.0:
        d /= temperature
    return d


def _log1p_sum(z, m, k, r, d, temperature, e):
    """``s = sum_{j != k} exp(d_j)`` and ``L = log1p(s) = log sum_j exp(d_j)`` for a block.

    ``d = (z - m) / T`` is given; ``e`` receives ``exp(d)`` with the arg-max entry, exactly 1,
    set to 0 (``log1p`` adds it back). Returns ``(s, L)``, one value per row.

    ``d_j = z_j - m`` is rounded, by up to half an ulp of ``d_j``, and ``exp`` turns that into
    a relative error of up to ``u |d_j|`` in ``e_j`` (``u`` the unit roundoff). Where the sum is
    made of terms far below the maximum -- ``z = [100.3, 1.1]``, one dominant logit -- that
    error is all of ``log1p(s)``'s: 48 ulps there. ``sum_j e_j |d_j| / ((1 + s) L)`` bounds it
    in ulps of ``L``. That sum is at most ``s log((n - 1) / s)`` (it is ``s`` times the entropy
    of ``e / s``, and an entropy is at most ``log`` of the number of terms), which costs
    nothing to compute; only when that bound is over ``_FIX_ULPS`` is the sum itself formed,
    and on the rows where it is over too, the exact rounding error of each ``d_j`` (Knuth's
    two-sum) corrects ``s``: ``exp(d_j + lo_j) = e_j (1 + lo_j)`` to first order.
    """
    np.exp(d, out=e)  # e may be d itself: d is not needed below
    e[r, k] = 0.0
    s = e.sum(axis=1)
    L = np.log1p(s)
    limit = _FIX_ULPS * ((1.0 + s) * L)
    doubt = ~(s * np.log((e.shape[1] - 1) / s) <= limit)  # NaN (s = 0) counts as a doubt
    if not doubt.any():
        return s, L
    i = np.flatnonzero(doubt)
    zi, mi, ei = z[i], m[i, None], e[i]
    di = zi - mi  # d_j as rounded above (before the division by T)
    spread = np.where(ei > 0.0, ei * -di, 0.0).sum(axis=1)  # sum_j e_j |d_j|, masks give 0
    if temperature != 1.0:
        spread /= temperature
    fix = spread > limit[i]
    if fix.any():
        zf, mf, df, ef, f = zi[fix], mi[fix], di[fix], ei[fix], i[fix]
        back = df - zf  # two-sum of z_j and -m: lo_j = (z_j - m) - df, exactly
        lo = (zf - (df - back)) + (-mf - back)
        if temperature != 1.0:
            lo /= temperature
        s[f] += np.where(ef > 0.0, ef * lo, 0.0).sum(axis=1)
        L[f] = np.log1p(s[f])
    return s, L


# ---------------------------------------------------------------- the public functions


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
    zr = as_rows(z, axis, "z")
    N, n = zr.rows.shape
    res = np.empty(N, dtype=zr.rows.dtype)

    def kernel(a, b, state, scratch):
        m, k, r = state
        zb = zr.rows[a:b]
        d = shifted(zb, m, 1.0, scratch(0, b - a))
        _, L = _log1p_sum(zb, m, k, r, d, 1.0, d)
        np.add(m, L, out=res[a:b])  # logsumexp(z) = m + log1p(s)

    shape = zr.batch_shape
    if keepdims:
        shape = tuple(1 if i == zr.axis else s for i, s in enumerate(zr.shape))
    if out is not None:
        check_out(out, shape, zr.dtype)
    map_blocks(N, n, zr.rows.dtype, zr.rows.nbytes, checked_maxima(zr, "z"), kernel, False)
    res = res.reshape(shape)
    if out is not None:
        np.copyto(out, res, casting="same_kind")
        return out
    res = res.astype(zr.dtype, copy=False)
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
        Array of ``z``'s shape and floating dtype to write into: any layout, ``z`` itself, or
        an array that overlaps ``z``. Every row is checked first, so an error leaves it as it was.

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
    T = check_positive_number(temperature, "temperature")
    zr = as_rows(z, axis, "z")
    result = Result(zr, out, [zr])

    def kernel(a, b, state, scratch):
        m = state[0]
        p = shifted(zr.rows[a:b], m, T, result.array[a:b])
        np.exp(p, out=p)
        p *= np.reciprocal(p.sum(axis=1, keepdims=True))  # p_i = e_i / sum_j e_j

    N, n = zr.rows.shape
    map_blocks(
        N,
        n,
        zr.rows.dtype,
        zr.rows.nbytes,
        checked_maxima(zr, "z", where=False),
        kernel,
        out is not None,
    )
    return result.finish()


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
        Array of ``z``'s shape and floating dtype to write into: any layout, ``z`` itself, or
        an array that overlaps ``z``. Every row is checked first, so an error leaves it as it was.

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
    T = check_positive_number(temperature, "temperature")
    zr = as_rows(z, axis, "z")
    result = Result(zr, out, [zr])

    def kernel(a, b, state, scratch):
        m, k, r = state
        zb = zr.rows[a:b]
        d = shifted(zb, m, T, result.array[a:b])
        _, L = _log1p_sum(zb, m, k, r, d, T, scratch(0, b - a))
        d -= L[:, None]  # log p_j = d_j - log1p(s)

    N, n = zr.rows.shape
    map_blocks(
        N, n, zr.rows.dtype, zr.rows.nbytes, checked_maxima(zr, "z"), kernel, out is not None
    )
    return result.finish()


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
    p = np.moveaxis(softmax(z, axis=axis), axis, -1)
    J = -p[..., :, None] * p[..., None, :]  # -p_i p_j
    np.einsum("...ii->...i", J)[...] += p  # + p_i on the diagonal (a writable view)
    return J


def _vjp(p, g, axis, gname, out):
    """``p * (g - <g, p>)`` per row: the VJP and the JVP, as ``J`` is symmetric."""
    p = as_float_array(p, "p")
    g = as_float_array(g, gname)
    if g.shape != p.shape:
        raise ValueError(f"{gname} has shape {g.shape}, but p has shape {p.shape}")
    dtype = p.dtype if p.dtype == g.dtype else np.result_type(p.dtype, g.dtype)
    pr = as_rows(p, axis, "p", dtype)
    gr = as_rows(g, axis, gname, dtype)
    result = Result(pr, out, [pr, gr])
    names = f"p/{gname}"

    def check(a, b):
        pb, gb = pr.rows[a:b], gr.rows[a:b]
        dot = rowdot(pb, gb)  # <g, p> per row: J is never formed
        check_inner_products(dot, pb, gb, a, pr.batch_shape, names)
        return dot

    def kernel(a, b, dot, scratch):
        t = np.subtract(gr.rows[a:b], dot[:, None], out=result.array[a:b])  # g - <g, p>
        t *= pr.rows[a:b]

    N, n = pr.rows.shape
    map_blocks(N, n, pr.rows.dtype, 2 * pr.rows.nbytes, check, kernel, out is not None)
    return result.finish()


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
        Array of ``p``'s shape and dtype to write into (may be ``p``, the other input, or
        overlap them). Every row is checked first, so an error leaves it as it was.

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
    return _vjp(p, g, axis, "g", out)


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
        Array of ``p``'s shape and dtype to write into (may be ``p``, the other input, or
        overlap them). Every row is checked first, so an error leaves it as it was.

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
    return _vjp(p, v, axis, "v", out)
