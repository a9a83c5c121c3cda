"""Numerical Jacobians by central differences, and a gradient checker built on them."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from softgrad._validation import as_float_array

__all__ = ["GradcheckResult", "gradcheck", "numerical_jacobian"]


def _default_eps(dtype: np.dtype) -> float:
    # Central differences: truncation error ~ h^2, rounding error ~ u / h; balanced at h ~ u^(1/3).
    return float(np.finfo(dtype).eps) ** (1.0 / 3.0)


def _call(f, x):
    y = np.asarray(f(x))
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
    with np.errstate(invalid="ignore", over="ignore"):
        d = f_plus - f_minus
    return np.where(f_plus == f_minus, 0.0, d)


def numerical_jacobian(f, x, eps=None):
    """Jacobian of ``f`` at ``x`` by central differences.

    Parameters
    ----------
    f : callable
        Maps an array shaped like ``x`` to an array (or a scalar). Called ``2 * x.size`` times.
    x : array_like, shape (...)
        Point at which to differentiate. Integers are promoted to float64; ``x`` is not modified.
    eps : float, optional
        Relative step. Entry ``i`` is moved by ``h_i = eps * max(1, |x_i|)``. The default is
        ``u ** (1/3)`` for the unit roundoff ``u`` of ``x``'s dtype (about 6e-6 in float64),
        which balances truncation against rounding error.

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
    x = as_float_array(x, "x")
    if eps is None:
        eps = _default_eps(x.dtype)
    elif not (isinstance(eps, int | float | np.floating) and math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    if not np.isfinite(x).all():
        raise ValueError("x contains NaN or inf")
    xp = np.array(x, copy=True)
    fx = _call(f, xp.copy())
    J = np.empty(fx.shape + (x.size,), dtype=x.dtype)
    flat = xp.reshape(-1)
    for j in range(x.size):
        xj = flat[j]
        h = eps * max(1.0, abs(float(xj)))
        flat[j] = xj + h
        hi = flat[j]
        f_plus = _call(f, xp.copy())
        flat[j] = xj - h
        lo = flat[j]
        f_minus = _call(f, xp.copy())
        flat[j] = xj
        J[..., j] = _difference(f_plus, f_minus) / float(hi - lo)
    return J.reshape(fx.shape + x.shape)


@dataclasses.dataclass(frozen=True, repr=False)
class GradcheckResult:
    """Outcome of :func:`gradcheck`; prints as a short readable report.

    Attributes
    ----------
    ok : bool
        Every compared entry satisfied ``|a - n| <= max(atol, rtol * max(|a|, |n|))``.
    max_rel_error : float
        ``max |a - n| / max(|a|, |n|, atol / rtol)`` over the entries (0 if they all agree).
    max_abs_error : float
        ``max |a - n|``.
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


def gradcheck(
    f,
    x,
    *,
    grad=None,
    jacobian=None,
    vjp=None,
    eps=None,
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
    eps : float, optional
        Relative step for :func:`numerical_jacobian`.
    rtol, atol : float, optional
        Tolerances; an entry passes if ``|a - n| <= max(atol, rtol * max(|a|, |n|))``.
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
        name for name, v in (("grad", grad), ("jacobian", jacobian), ("vjp", vjp)) if v is not None
    ]
    if len(given) != 1:
        raise TypeError(
            f"gradcheck: give exactly one of grad, jacobian, vjp (got {given or 'none'})"
        )
    mode = given[0]
    if mode == "vjp" and not callable(vjp):
        raise TypeError("vjp must be a callable (x, g) -> g^T J")
    x = as_float_array(x, "x")
    x = np.array(x, copy=True)
    if not np.isfinite(x).all():
        raise ValueError("x contains NaN or inf")
    d_rtol, d_atol = _TOLERANCES.get(x.dtype, (1e-6, 1e-8))
    rtol = d_rtol if rtol is None else float(rtol)
    atol = d_atol if atol is None else float(atol)
    if rtol < 0 or atol < 0:
        raise ValueError(f"rtol and atol must be >= 0, got rtol={rtol}, atol={atol}")
    fx = _call(f, x.copy())
    if n_directions is None and x.size > _FULL_LIMIT:
        n_directions = 8

    if n_directions is None:
        numeric = numerical_jacobian(f, x, eps).astype(np.float64)
        if mode == "grad":
            if fx.size != 1:
                raise ValueError(
                    f"grad needs a scalar f; f(x) has shape {fx.shape}, use jacobian or vjp"
                )
            numeric = numeric.reshape(x.shape)
            analytic = np.asarray(grad(x.copy()) if callable(grad) else grad, dtype=np.float64)
        elif mode == "jacobian":
            analytic = np.asarray(
                jacobian(x.copy()) if callable(jacobian) else jacobian, dtype=np.float64
            )
        else:
            analytic = np.empty(fx.shape + x.shape, dtype=np.float64)
            for i in np.ndindex(fx.shape):
                g = np.zeros(fx.shape, dtype=fx.dtype if fx.dtype.kind == "f" else np.float64)
                g[i] = 1.0
                analytic[i] = vjp(x.copy(), g)
        if analytic.shape != numeric.shape:
            raise ValueError(
                f"analytic {mode} has shape {analytic.shape}, expected {numeric.shape}"
            )
    else:
        n_directions = int(n_directions)
        if n_directions < 1:
            raise ValueError(f"n_directions must be >= 1, got {n_directions}")
        rng = np.random.default_rng(seed)
        mode_name = mode
        mode = f"{mode_name} (random directions)"
        numeric = np.empty(n_directions)
        analytic = np.empty(n_directions)
        e = _default_eps(x.dtype) if eps is None else eps
        h = e * max(1.0, float(np.abs(x).max()))
        an_grad = an_jac = None
        if mode_name == "grad":
            an_grad = np.asarray(grad(x.copy()) if callable(grad) else grad, dtype=np.float64)
        elif mode_name == "jacobian":
            an_jac = np.asarray(
                jacobian(x.copy()) if callable(jacobian) else jacobian, dtype=np.float64
            )
        for t in range(n_directions):
            u = rng.standard_normal(x.shape)
            u /= np.abs(u).max()
            v = rng.standard_normal(fx.shape)
            f_plus = f((x + h * u).astype(x.dtype))
            f_minus = f((x - h * u).astype(x.dtype))
            # A NaN or inf on either side makes that direction fail in the report, quietly.
            with np.errstate(invalid="ignore", over="ignore"):
                numeric[t] = np.sum(v * _difference(f_plus, f_minus)) / (2 * h)
                if mode_name == "grad":
                    analytic[t] = np.sum(an_grad * u) * (float(np.sum(v)) if fx.size == 1 else 1)
                elif mode_name == "jacobian":
                    Ju = np.tensordot(an_jac, u, axes=u.ndim) if u.ndim else an_jac * u
                    analytic[t] = np.sum(v * Ju)
                else:
                    analytic[t] = np.sum(
                        np.asarray(vjp(x.copy(), v.astype(fx.dtype)), dtype=np.float64) * u
                    )

    with np.errstate(invalid="ignore", over="ignore"):  # NaN / inf entries fail, quietly
        diff = np.abs(analytic - numeric)
    diff = np.where(analytic == numeric, 0.0, diff)  # the same infinity on both sides agrees
    scale = np.maximum(
        np.maximum(np.abs(analytic), np.abs(numeric)), atol / rtol if rtol > 0 else np.inf
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(diff == 0, 0.0, diff / scale)
    rel = np.where(np.isnan(analytic) | np.isnan(numeric), np.inf, rel)
    ok = bool(
        np.all(diff <= np.maximum(atol, rtol * np.maximum(np.abs(analytic), np.abs(numeric))))
    )
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
