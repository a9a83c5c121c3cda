"""Numerical Jacobians by central differences, and a gradient checker built on them.

:func:`gradcheck` sees every analytic derivative it is given -- a gradient, a Jacobian or a
vector-Jacobian product -- as one thing, the VJP ``v -> v^T J``, and compares it with central
differences, either entry by entry or along random directions.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from softgrad._validation import as_float_array

__all__ = ["GradcheckResult", "gradcheck", "numerical_jacobian"]


def _default_step(dtype: np.dtype) -> float:
    # Central differences: truncation error ~ h^2, rounding error ~ u / h; balanced at h ~ u^(1/3).
    return float(np.finfo(dtype).eps) ** (1.0 / 3.0)


def _check_step(step, dtype) -> float:
    if step is None:
        return _default_step(dtype)
    if isinstance(step, bool) or not isinstance(step, int | float | np.floating):
        raise TypeError(f"step must be a number, got {step!r}")
    if not (math.isfinite(step) and step > 0):
        raise ValueError(f"step must be a finite number > 0, got {step!r}")
    return float(step)


def _point(x) -> np.ndarray:
    """A private, C-ordered, native copy of ``x``: the differences write into it in place."""
    x = as_float_array(x, "x")
    return np.array(x, dtype=x.dtype.newbyteorder("="), order="C", copy=True)


def _call(f, x):
    y = np.asarray(f(x.copy()))  # a copy: f may modify its argument
    if y.dtype.kind not in "iubf":
        raise TypeError(f"f must return real numbers, got dtype {y.dtype}")
    return y


def _difference(f_plus, f_minus):
    """``f_plus - f_minus`` in float64, never warning.

    An output that is the same infinity on both sides (a masked class's ``-inf`` log-probability)
    does not change, so its difference is 0; other infinities and NaNs stay NaN or inf and show
    up as a failed entry in :func:`gradcheck`'s report rather than as a numpy RuntimeWarning.
    """
    f_plus = np.asarray(f_plus, dtype=np.float64)
    f_minus = np.asarray(f_minus, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        d = f_plus - f_minus
    return np.where(f_plus == f_minus, 0.0, d)


def numerical_jacobian(f, x, step=None):
    """Jacobian of ``f`` at ``x`` by central differences.

    Parameters
    ----------
    f : callable
        Maps an array shaped like ``x`` to an array (or a scalar). Called ``2 * x.size`` times.
    x : array_like, shape (...)
        Point at which to differentiate. Integers are promoted to float64; ``x`` is not modified.
    step : float, optional
        Relative step. Entry ``i`` is moved by ``h_i = step * max(1, |x_i|)``. The default is
        ``eps_mach ** (1/3)`` for the machine epsilon ``eps_mach`` of ``x``'s dtype
        (``np.finfo(dtype).eps``; about 6e-6 in float64), which balances truncation against
        rounding error.

    Returns
    -------
    J : ndarray, shape ``f(x).shape + x.shape``
        ``J[i..., j...] ~ d f(x)[i...] / d x[j...]``, in ``x``'s floating dtype.

    Notes
    -----
    ``(f(x + h e_j) - f(x - h e_j)) / (2 h)`` has error ``O(h^2)``, against ``O(h)`` for the
    one-sided difference. The step actually taken is ``(x + h) - (x - h)``, computed in floating
    point, so that the division uses the exact distance between the two points. Derived in the
    book, Chapter 5 (sec-gradient-checking).

    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import numerical_jacobian, softmax_jacobian, softmax
    >>> z = np.array([0.5, -1.0, 2.0])
    >>> J = numerical_jacobian(softmax, z)
    >>> J.shape
    (3, 3)
    >>> bool(np.allclose(J, softmax_jacobian(z), atol=1e-9))
    True
    >>> numerical_jacobian(lambda x: (x ** 2).sum(), np.array([1.0, 3.0]))
    array([2., 6.])
    """
    x = _point(x)
    step = _check_step(step, x.dtype)
    if not np.isfinite(x).all():
        raise ValueError("x contains NaN or inf")
    fx = _call(f, x)
    J = np.empty(fx.shape + (x.size,), dtype=x.dtype)
    flat = x.reshape(-1)
    for j in range(x.size):
        xj = flat[j]
        h = step * max(1.0, abs(float(xj)))
        flat[j] = xj + h
        hi = flat[j]
        f_plus = _call(f, x)
        flat[j] = xj - h
        lo = flat[j]
        f_minus = _call(f, x)
        flat[j] = xj
        J[..., j] = _difference(f_plus, f_minus) / float(hi - lo)  # the step actually taken
    return J.reshape(fx.shape + x.shape)


@dataclasses.dataclass(frozen=True, repr=False)
class GradcheckResult:
    """Outcome of :func:`gradcheck`; prints as a short readable report.

    Attributes
    ----------
    ok : bool
        Every compared entry satisfied ``|a - b| <= max(atol, rtol * max(|a|, |b|))``, for the
        analytic value ``a`` and the numeric value ``b``.
    max_rel_error : float
        ``max |a - b| / max(|a|, |b|, atol / rtol)`` over the entries (0 if they all agree).
    max_abs_error : float
        ``max |a - b|``.
    worst_index : tuple of int
        Index of the worst entry in ``analytic`` / ``numeric``.
    analytic, numeric : ndarray
        What was compared: full gradients / Jacobians, or, in random-direction mode, the
        ``n_directions`` numbers ``v^T J u``.
    worst_analytic, worst_numeric : float
        The two values at ``worst_index``.
    mode : str
        "grad", "jacobian" or "vjp", with " (random directions)" when ``v^T J u`` was compared.
    rtol, atol : float
        The tolerances used.
    """

    ok: bool
    max_rel_error: float
    max_abs_error: float
    worst_index: tuple
    analytic: np.ndarray
    numeric: np.ndarray
    worst_analytic: float
    worst_numeric: float
    mode: str
    rtol: float
    atol: float

    def __bool__(self) -> bool:
        return bool(self.ok)

    def __str__(self) -> str:
        status = "PASSED" if self.ok else "FAILED"
        what = "directions" if self.mode.endswith("(random directions)") else "entries"
        return (
            f"gradcheck {status} ({self.mode}, {self.numeric.size} {what} compared, "
            f"rtol={self.rtol:g}, atol={self.atol:g})\n"
            f"  max relative error {self.max_rel_error:.3e}, max absolute error "
            f"{self.max_abs_error:.3e}\n"
            f"  worst entry {self.worst_index}: analytic {self.worst_analytic:.10g}, "
            f"numeric {self.worst_numeric:.10g}"
        )

    def __repr__(self) -> str:
        return (
            f"GradcheckResult(ok={self.ok}, max_rel_error={self.max_rel_error:.3e}, "
            f"worst_index={self.worst_index}, analytic={self.worst_analytic:.10g}, "
            f"numeric={self.worst_numeric:.10g}, mode={self.mode!r})"
        )


_TOLERANCES = {  # (rtol, atol) by dtype of x
    np.dtype(np.float64): (1e-6, 1e-8),
    np.dtype(np.float32): (2e-2, 1e-3),
    np.dtype(np.float16): (1e-1, 5e-2),
}

_FULL_LIMIT = 1000  # inputs larger than this are checked along random directions by default


def _as_vjp(mode, given, x, fx):
    """The analytic derivative of any mode as ``vjp(v) = v^T J`` (an array shaped like x)."""
    if mode == "vjp":
        return lambda v: np.asarray(given(x.copy(), v.astype(fx.dtype)), dtype=np.float64)
    value = np.asarray(given(x.copy()) if callable(given) else given, dtype=np.float64)
    if mode == "grad":
        if fx.size != 1:
            raise ValueError(
                f"grad needs a scalar f; f(x) has shape {fx.shape}, use jacobian or vjp"
            )
        if value.shape != x.shape:
            raise ValueError(f"analytic grad has shape {value.shape}, expected {x.shape}")
        return lambda v: float(np.sum(v)) * value
    if value.shape != fx.shape + x.shape:
        raise ValueError(
            f"analytic jacobian has shape {value.shape}, expected {fx.shape + x.shape}"
        )
    return lambda v: np.tensordot(v, value, axes=v.ndim)


def gradcheck(
    f,
    x,
    *,
    grad=None,
    jacobian=None,
    vjp=None,
    step=None,
    rtol=None,
    atol=None,
    n_directions=None,
    seed=0,
    raise_on_fail=False,
):
    """Compare an analytic derivative of ``f`` at ``x`` with central differences.

    Give exactly one of ``grad``, ``jacobian`` or ``vjp``.

    Parameters
    ----------
    f : callable
        The function, ``x -> f(x)``.
    x : array_like
        Where to check (not modified).
    grad : callable or array_like, optional
        For scalar ``f``: ``x -> df/dx`` (shape of ``x``), or the gradient itself.
    jacobian : callable or array_like, optional
        ``x -> J`` with shape ``f(x).shape + x.shape``, or the Jacobian itself.
    vjp : callable, optional
        ``(x, g) -> g^T J`` (shape of ``x``) for an upstream ``g`` shaped like ``f(x)``.
    step : float, optional
        Relative step for :func:`numerical_jacobian`.
    rtol, atol : float, optional
        Tolerances; an entry passes if ``|a - b| <= max(atol, rtol * max(|a|, |b|))`` for the
        analytic value ``a`` and the numeric value ``b``.
        Defaults depend on ``x``'s dtype: (1e-6, 1e-8) for float64, (2e-2, 1e-3) for float32.
    n_directions : int, optional
        Compare ``v^T J u`` for this many random unit-scale ``u`` (shape of ``x``) and ``v``
        (shape of ``f(x)``) instead of the full Jacobian: ``2 * n_directions`` evaluations of
        ``f`` instead of ``2 * x.size``. Default: full check up to 1000 entries of ``x``, else 8
        directions.
    seed : int, default 0
        Seed for the random directions.
    raise_on_fail : bool, default False
        Raise ``AssertionError`` carrying the report when the check fails.

    Returns
    -------
    GradcheckResult
        ``ok``, the worst entry (index, both values, relative error) and the compared arrays.

    Notes
    -----
    In direction mode the numeric side is the directional derivative
    ``(v . f(x + h u) - v . f(x - h u)) / (2h)``, and the analytic side is ``<grad, u>``,
    ``v^T (J u)`` or ``<vjp(x, v), u>``. Derived in the book, Chapter 5 (sec-gradient-checking).

    Examples
    --------
    >>> import numpy as np
    >>> from softgrad import gradcheck, softmax, softmax_vjp
    >>> z = np.array([0.2, -1.0, 3.0])
    >>> result = gradcheck(softmax, z, vjp=lambda z, g: softmax_vjp(softmax(z), g))
    >>> result.ok
    True
    >>> bad = gradcheck(lambda x: (x ** 3).sum(), np.array([1.0, 2.0]), grad=lambda x: 3 * x)
    >>> print(bad)  # doctest: +ELLIPSIS
    gradcheck FAILED (grad, 2 entries compared, rtol=1e-06, atol=1e-08)
      max relative error 5.000e-01, max absolute error 6.000e+00
      worst entry (1,): analytic 6, numeric 12...
    """
    given = [
        (name, v)
        for name, v in (("grad", grad), ("jacobian", jacobian), ("vjp", vjp))
        if v is not None
    ]
    if len(given) != 1:
        raise TypeError(
            f"gradcheck: give exactly one of grad, jacobian, vjp "
            f"(got {[name for name, _ in given] or 'none'})"
        )
    mode, derivative = given[0]
    if mode == "vjp" and not callable(vjp):
        raise TypeError("vjp must be a callable (x, g) -> g^T J")
    x = _point(x)
    if not np.isfinite(x).all():
        raise ValueError("x contains NaN or inf")
    d_rtol, d_atol = _TOLERANCES.get(x.dtype, (1e-6, 1e-8))
    rtol = d_rtol if rtol is None else float(rtol)
    atol = d_atol if atol is None else float(atol)
    if rtol < 0 or atol < 0:
        raise ValueError(f"rtol and atol must be >= 0, got rtol={rtol}, atol={atol}")
    step = _check_step(step, x.dtype)
    fx = _call(f, x)
    if fx.dtype.kind != "f":
        fx = fx.astype(np.float64)
    vjp_of = _as_vjp(mode, derivative, x, fx)
    if n_directions is None and x.size > _FULL_LIMIT:
        n_directions = 8

    if n_directions is None:
        # Every entry: row i of J is the VJP of the i-th unit vector.
        numeric = numerical_jacobian(f, x, step).astype(np.float64)
        analytic = np.empty(fx.shape + x.shape)
        for i in np.ndindex(fx.shape):
            unit = np.zeros(fx.shape, dtype=fx.dtype)
            unit[i] = 1.0
            analytic[i] = vjp_of(unit)
        if mode == "grad":
            analytic, numeric = analytic.reshape(x.shape), numeric.reshape(x.shape)
    else:
        # Random directions: v^T J u, with J u by a central difference along u.
        n_directions = int(n_directions)
        if n_directions < 1:
            raise ValueError(f"n_directions must be >= 1, got {n_directions}")
        rng = np.random.default_rng(seed)
        mode = f"{mode} (random directions)"
        h = step * max(1.0, float(np.abs(x).max()))
        numeric = np.empty(n_directions)
        analytic = np.empty(n_directions)
        for t in range(n_directions):
            u = rng.standard_normal(x.shape)
            u /= np.abs(u).max()
            v = rng.standard_normal(fx.shape)
            f_plus = _call(f, (x + h * u).astype(x.dtype))
            f_minus = _call(f, (x - h * u).astype(x.dtype))
            with np.errstate(invalid="ignore", over="ignore"):  # NaN / inf fail in the report
                numeric[t] = np.sum(v * _difference(f_plus, f_minus)) / (2 * h)
                analytic[t] = np.sum(vjp_of(v) * u)

    with np.errstate(invalid="ignore", over="ignore"):  # NaN / inf entries fail, quietly
        diff = np.abs(analytic - numeric)
    diff = np.where(analytic == numeric, 0.0, diff)  # the same infinity on both sides agrees
    size = np.maximum(np.abs(analytic), np.abs(numeric))
    scale = np.maximum(size, atol / rtol if rtol > 0 else np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(diff == 0, 0.0, diff / scale)
    # an infinite or NaN difference (opposite infinities, inf against a number, a NaN) fails,
    # even where the tolerance rtol * inf would let it through
    broken = ~np.isfinite(diff)
    rel = np.where(broken, np.inf, rel)
    ok = bool(np.all((diff <= np.maximum(atol, rtol * size)) & ~broken))
    worst = np.unravel_index(int(np.argmax(rel)), rel.shape) if rel.size else ()
    result = GradcheckResult(
        ok=ok,
        max_rel_error=float(rel.max()) if rel.size else 0.0,
        max_abs_error=float(diff.max()) if diff.size else 0.0,
        worst_index=tuple(int(i) for i in worst),
        analytic=analytic,
        numeric=numeric,
        worst_analytic=float(analytic[worst]) if rel.size else 0.0,
        worst_numeric=float(numeric[worst]) if rel.size else 0.0,
        mode=mode,
        rtol=rtol,
        atol=atol,
    )
    if raise_on_fail and not ok:
        raise AssertionError(str(result))
    return result
