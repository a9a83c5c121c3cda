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

import math

import numpy as np

from softgrad._parallel import run_rows
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

# Rows are processed in blocks of about this many bytes. Measured on this 2-core machine (1 MiB
# L2 per core, 32 MiB shared L3), 1 MiB blocks beat 256 KiB ones by 0-15% at (4096, 1000) and
# (256, 50257), on one thread and on two: fewer calls per row, and the block stays in cache.
_BLOCK_BYTES = 1 << 20
# Below this |max|, z - max cannot overflow: the spacing of float64 near 1.8e308 is ~2e292,
# that of float32 near 3.4e38 is ~2e31.
_SAFE_MAX = {"d": 1e291, "f": 1e30}


# Longest row whose inner product goes through np.vecdot (BLAS, single-threaded at this size).
_VECDOT_MAX = 8192


# Arrays up to this size take the short path for small inputs (one block, no bookkeeping).
_ONE_BLOCK_BYTES = 1 << 19


def _block_step(N: int, n: int, itemsize: int) -> int:
    """Rows per block for an (N, n) array."""
    if N * n * itemsize <= _BLOCK_BYTES:
        return N
    return max(1, (_BLOCK_BYTES // itemsize) // n)


def _row_offsets(N: int, step: int, n: int):
    """Flat offsets of the first ``min(N, step)`` row starts: turns a per-row column into a flat index."""
    return np.arange(0, min(N, step) * n, n) if N > 1 else None


_OFFSETS: dict = {}


def _offsets(N: int, n: int):
    """``arange(0, N * n, n)``, the flat start of each row of a small (N, n) array, cached
    (it is needed on every call, and rebuilding it costs as much as a ufunc call)."""
    offs = _OFFSETS.get((N, n))
    if offs is None:
        if len(_OFFSETS) > 256:
            _OFFSETS.clear()
        offs = _OFFSETS[N, n] = np.arange(0, N * n, n)
        offs.flags.writeable = False
    return offs


def _col(v):
    """``v`` (one value per row) shaped to broadcast against a block of rows.

    A one-row block gets a scalar: numpy's scalar loops are much faster than broadcasting a
    (1, 1) array, which matters for tiny inputs and for the one-row blocks of a wide vocabulary.
    """
    return v[0] if v.shape[0] == 1 else v[:, None]


def _shift_block(zb, dest, offs, start, batch_shape, name, temperature):
    """Write ``(z - max) / T`` for a block of rows into ``dest``.

    Returns ``(fi, m)``: the flat positions of each row's arg-max inside the block, and the row
    maxima (scalars for a one-row block). The maxima double as the validity check: a NaN, a
    ``+inf`` or an all ``-inf`` row shows up in them (``argmax`` treats NaN as the maximum), so
    checking costs nothing per entry.
    """
    if zb.shape[0] == 1:
        fi = zb.argmax()
        m = zb.reshape(-1)[fi]
        big = abs(float(m))
        mcol = m
    else:
        fi = zb.argmax(axis=1)
        if offs is not None:
            fi += offs[: fi.shape[0]]
        m = zb.reshape(-1)[fi]
        if m.shape[0] <= 32:  # plain Python is quicker on a few values
            ms = m.tolist()
            big = max(-min(ms), max(ms)) if math.isfinite(sum(ms)) else math.inf
        else:
            big = float(np.maximum.reduce(np.abs(m)))
        mcol = m[:, None]
    if big < _SAFE_MAX.get(zb.dtype.char, 0.0) and temperature == 1.0:  # False for NaN
        np.subtract(zb, mcol, out=dest)
    else:
        check_finite_rows(np.atleast_1d(m), start, batch_shape, name)
        # Overflow here only means an entry so far below the max that exp gives 0 anyway.
        with np.errstate(over="ignore"):
            np.subtract(zb, mcol, out=dest)
            if temperature != 1.0:
                np.divide(dest, temperature, out=dest)
    return fi, m


_PLANS: dict = {}


def _small_plan(shape, char, axis):
    """``(N, n, limit, offsets)`` when an array of this shape and dtype char along ``axis``
    takes the small-input path, else None; cached, as deciding costs more than a ufunc call."""
    key = (shape, char, axis)
    plan = _PLANS.get(key, False)
    if plan is False:
        limit = _SAFE_MAX.get(char)
        size = math.prod(shape) if shape else 0
        plan = None
        if (
            limit is not None
            and shape
            and (axis == -1 or axis == len(shape) - 1)
            and 0 < size * np.dtype(char).itemsize <= _ONE_BLOCK_BYTES
        ):
            n = shape[-1]
            N = size // n
            plan = (N, n, limit, _offsets(N, n) if N > 1 else None)
        if len(_PLANS) > 256:
            _PLANS.clear()
        _PLANS[key] = plan
    return plan


def _small_block(z, axis):
    """Fast path for float32/float64 input along the last axis that fits in one row block.

    Returns ``(fi, m, z - m)``: flat arg-max positions (a scalar for a single row), the row
    maxima (likewise) and a new (N, n) array; or None, meaning "use the general path" (other
    dtype, axis or size, or a non-finite or huge maximum, which the general path reports or
    handles). Small inputs are dominated by per-call overhead, so this does the block loop's
    operations (with bitwise the same results) and none of its bookkeeping.
    """
    if (
        type(z) is not np.ndarray
        or type(axis) is not int  # also keeps True (== 1) out of the plan cache
        or (plan := _small_plan(z.shape, z.dtype.char, axis)) is None
    ):
        return None
    N, n, limit, offs = plan
    if N == 1:
        row = z if z.ndim == 2 else z.reshape(1, n)
        k = row.argmax()
        m = row[0, k]
        if abs(float(m)) < limit:  # False for NaN
            return k, m, row - m
        return None
    rows = z if z.ndim == 2 else z.reshape(N, n)
    fi = rows.argmax(axis=1)
    fi += offs
    m = rows.reshape(-1)[fi]
    # The row maxima show every bad row: NaN, +inf, or -inf when the whole row is -inf.
    if N <= 32:  # plain Python is quicker on a few values
        ms = m.tolist()
        ok = math.isfinite(sum(ms)) and -limit < min(ms) and max(ms) < limit
    else:
        ok = float(np.maximum.reduce(np.abs(m))) < limit
    return (fi, m, rows - m[:, None]) if ok else None


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
    """Return ``(z, ax, rows, batch_shape)`` with ``rows`` a C-contiguous (N, n) array.

    The common case -- a contiguous float32/float64 array along its last axis -- is a reshape.
    """
    if (
        type(z) is np.ndarray
        and z.dtype.char in "fd"
        and type(axis) is int
        and z.ndim
        and (axis == -1 or axis == z.ndim - 1)
        and z.size
        and z.flags.c_contiguous
    ):
        return z, z.ndim - 1, z.reshape(-1, z.shape[-1]), z.shape[:-1]
    z = as_float_array(z, name)
    ax = check_axis(axis, z.ndim, name)
    rows, batch_shape = to_rows(z, ax, name)
    cdt = compute_dtype(z.dtype)
    if rows.dtype != cdt:
        rows = rows.astype(cdt)
    return z, ax, rows, batch_shape


def _dest(z, ax, out, rows):
    """Where to write the (N, n) result: straight into ``out`` when its layout allows.

    Returns ``(dest, direct)``; ``direct`` says that ``dest`` is a view of ``out``.
    """
    if out is None:
        return np.empty(rows.shape, dtype=rows.dtype), False
    if ax == z.ndim - 1 and out.dtype == rows.dtype and out.flags.c_contiguous:
        return out.reshape(rows.shape), True
    return np.empty(rows.shape, dtype=rows.dtype), False


def _finish(res2d, direct, z, ax, out, dtype):
    """Reshape the (N, n) result back to the layout of ``z`` and to ``dtype``, or into ``out``."""
    if direct:
        return out
    if ax == z.ndim - 1:
        res = res2d.reshape(z.shape)
    else:
        moved_shape = tuple(s for i, s in enumerate(z.shape) if i != ax) + (z.shape[ax],)
        res = np.moveaxis(res2d.reshape(moved_shape), -1, ax)
    if out is not None:
        np.copyto(out, res, casting="same_kind")
        return out
    return res if res.dtype == dtype else res.astype(dtype)


def _all_finite(v) -> bool:
    """Cheap test that a 1-D array is finite; may say False for a finite array whose sum overflows."""
    if v.shape[0] <= 32:  # plain Python is quicker on a few values, and never warns
        return math.isfinite(sum(v.tolist()))
    with np.errstate(over="ignore"):
        return math.isfinite(np.add.reduce(v))


# A NaN or inf in p or g (or an overflowing product) must reach the named check below as a NaN
# or inf in the inner product, not as a numpy RuntimeWarning first (an error under -W error).
# np.errstate costs ~0.7 us to enter and leave, as much as the inner product of a small batch;
# it sets a context variable, which we set directly where NumPy has it (2.x), else fall back.
try:
    from numpy._core._ufunc_config import _extobj_contextvar as _ERRSTATE
    from numpy._core.umath import _make_extobj

    _IGNORE_FP = _make_extobj(all="ignore")
except (ImportError, AttributeError, TypeError):  # other NumPy layouts: use np.errstate
    _ERRSTATE = None


def _quietly(fn, *args):
    """``fn(*args)`` with NumPy's floating-point warnings off."""
    if _ERRSTATE is None:
        with np.errstate(all="ignore"):
            return fn(*args)
    token = _ERRSTATE.set(_IGNORE_FP)
    try:
        return fn(*args)
    finally:
        _ERRSTATE.reset(token)


def _quiet_vecdot(p, g):
    """``<p, g>`` along the last axis, never warning."""
    return _quietly(np.vecdot, p, g)


def _rowdot(pb, gb, scratch):
    if pb.shape[1] <= _VECDOT_MAX:
        return np.vecdot(pb, gb, axis=1)
    return np.add.reduce(np.multiply(pb, gb, out=scratch), axis=1)


def _quiet_rowdot(pb, gb, scratch):
    """``<p, g>`` per row of a block, never warning. Long rows avoid BLAS (vecdot), which goes
    multithreaded above ~10^4 entries and then stalls on a busy machine."""
    return _quietly(_rowdot, pb, gb, scratch)


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
    if out is None and not keepdims and (blk := _small_block(z, axis)) is not None:
        fi, m, e = blk
        np.exp(e, out=e)
        # the arg-max term, exactly 1, is added back by log1p
        if e.shape[0] == 1:
            e[0, fi] = 0.0
            res = m + np.log1p(np.add.reduce(e, axis=None))
            return res if z.ndim == 1 else res.reshape(z.shape[:-1])
        e.reshape(-1)[fi] = 0.0
        res = m + np.log1p(np.add.reduce(e, axis=1))
        return res if z.ndim == 2 else res.reshape(z.shape[:-1])
    z, ax, rows, batch_shape = _prepare(z, axis, "z")
    N, n = rows.shape
    step = _block_step(N, n, rows.itemsize)
    offs = _row_offsets(N, step, n)
    res = np.empty(N, dtype=rows.dtype)

    def work(lo, hi):
        scratch = np.empty((min(hi - lo, step), n), dtype=rows.dtype)
        for a in range(lo, hi, step):
            b = min(hi, a + step)
            e = scratch[: b - a]
            fi, m = _shift_block(rows[a:b], e, offs, a, batch_shape, "z", 1.0)
            np.exp(e, out=e)
            e.reshape(-1)[fi] = 0.0  # the arg-max term, exactly 1, is added back by log1p
            np.add(m, np.log1p(np.add.reduce(e, axis=1)), out=res[a:b])

    run_rows(N, step, rows.nbytes, work)
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
    if res.dtype != z.dtype:
        res = res.astype(z.dtype)
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
    if temperature != 1.0:
        temperature = check_positive_number(temperature, "temperature")
    if out is None and temperature == 1.0 and (blk := _small_block(z, axis)) is not None:
        p = blk[2]
        np.exp(p, out=p)
        if p.shape[0] == 1:
            p *= 1.0 / np.add.reduce(p, axis=None)
        else:
            p *= np.reciprocal(np.add.reduce(p, axis=1))[:, None]
        return p if p.ndim == z.ndim else p.reshape(z.shape)
    z, ax, rows, batch_shape = _prepare(z, axis, "z")
    N, n = rows.shape
    if out is not None:
        _check_out(out, z.shape, z.dtype)
    dest, direct = _dest(z, ax, out, rows)
    step = _block_step(N, n, rows.itemsize)
    offs = _row_offsets(N, step, n)

    def work(lo, hi):
        for a in range(lo, hi, step):
            b = min(hi, a + step)
            p = dest[a:b]
            _shift_block(rows[a:b], p, offs, a, batch_shape, "z", temperature)
            np.exp(p, out=p)
            inv = np.reciprocal(np.add.reduce(p, axis=1))
            np.multiply(p, _col(inv), out=p)

    run_rows(N, step, rows.nbytes, work)
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
    if temperature != 1.0:
        temperature = check_positive_number(temperature, "temperature")
    if out is None and temperature == 1.0 and (blk := _small_block(z, axis)) is not None:
        fi, _, d = blk
        e = np.exp(d)
        # the arg-max term, exactly 1, is added back by log1p
        if d.shape[0] == 1:
            e[0, fi] = 0.0
            d -= np.log1p(np.add.reduce(e, axis=None))
        else:
            e.reshape(-1)[fi] = 0.0
            d -= np.log1p(np.add.reduce(e, axis=1))[:, None]
        return d if d.ndim == z.ndim else d.reshape(z.shape)
    z, ax, rows, batch_shape = _prepare(z, axis, "z")
    N, n = rows.shape
    if out is not None:
        _check_out(out, z.shape, z.dtype)
    dest, direct = _dest(z, ax, out, rows)
    step = _block_step(N, n, rows.itemsize)
    offs = _row_offsets(N, step, n)

    def work(lo, hi):
        scratch = np.empty((min(hi - lo, step), n), dtype=rows.dtype)
        for a in range(lo, hi, step):
            b = min(hi, a + step)
            d = dest[a:b]
            e = scratch[: b - a]
            fi, _ = _shift_block(rows[a:b], d, offs, a, batch_shape, "z", temperature)
            np.exp(d, out=e)
            e.reshape(-1)[fi] = 0.0  # the arg-max term, exactly 1, is added back by log1p
            L = np.log1p(np.add.reduce(e, axis=1))
            np.subtract(d, _col(L), out=d)

    run_rows(N, step, rows.nbytes, work)
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


def _small_vjp(p, g, axis):
    """``p * (g - <g, p>)`` for small float32/float64 input along the last axis, or None.

    The same operations as the block loop of :func:`_vjp_like`, without its bookkeeping; None
    means "use the general path" (other types or sizes, or a NaN or inf, which it reports).
    """
    if type(p) is not np.ndarray or type(g) is not np.ndarray or type(axis) is not int:
        return None
    shape = p.shape
    plan = _small_plan(shape, p.dtype.char, axis)  # the same size limits as softmax's short path
    if plan is None or plan[1] > _VECDOT_MAX or g.shape != shape or g.dtype != p.dtype:
        return None
    if plan[0] == 1:  # one row
        dot = np.vdot(p, g)  # unlike dot, vdot never warns: a NaN or inf shows in its result
        if math.isfinite(dot):
            res = g - dot
            res *= p
            return res
        return None
    dot = _quiet_vecdot(p, g)
    if _all_finite(dot if dot.ndim == 1 else dot.reshape(-1)):
        res = g - dot[..., None]
        res *= p
        return res
    return None


def _vjp_like(p, g, axis, pname, gname, out):
    if (
        type(p) is np.ndarray
        and type(g) is np.ndarray
        and p.dtype.char in "fd"
        and g.dtype == p.dtype
        and p.shape == g.shape
    ):
        dtype = p.dtype
    else:
        p = as_float_array(p, pname)
        g = as_float_array(g, gname)
        if p.shape != g.shape:
            raise ValueError(f"{gname} has shape {g.shape}, but {pname} has shape {p.shape}")
        dtype = np.result_type(p.dtype, g.dtype)
    _, ax, prow, batch_shape = _prepare(p, axis, pname)
    _, _, grow, _ = _prepare(g, axis, gname)
    cdt = compute_dtype(dtype)
    prow = prow.astype(cdt, copy=False)
    grow = grow.astype(cdt, copy=False)
    if out is not None:
        _check_out(out, p.shape, dtype)
    N, n = prow.shape
    dest, direct = _dest(p, ax, out, prow)
    step = _block_step(N, n, prow.itemsize)

    def work(lo, hi):
        for a in range(lo, hi, step):
            b = min(hi, a + step)
            pb, gb, ob = prow[a:b], grow[a:b], dest[a:b]
            dot = _quiet_rowdot(pb, gb, ob)  # <g, p> per row; J is never formed
            if not _all_finite(dot):
                check_finite_pair(dot, pb, gb, batch_shape, f"{pname}/{gname}", a)
            np.subtract(gb, _col(dot), out=ob)
            np.multiply(ob, pb, out=ob)

    run_rows(N, step, 2 * prow.nbytes, work)
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
    if out is None and (res := _small_vjp(p, g, axis)) is not None:
        return res
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
    if out is None and (res := _small_vjp(p, v, axis)) is not None:
        return res
    return _vjp_like(p, v, axis, "p", "v", out)
