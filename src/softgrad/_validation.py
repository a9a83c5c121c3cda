"""Input checks shared by the numeric functions.

Every error names the argument it is about and, where it applies, the batch row, so that a
student who passes a bad array learns *which* row of *which* argument is wrong, e.g.
``logits: row (2,) contains NaN``.

The checks on logits are nearly free: the row maximum is computed anyway for stability, and
it is NaN if the row has a NaN, ``+inf`` if it has a ``+inf``, and ``-inf`` if every entry
is ``-inf``. Only when one of those shows up do we go looking for the culprit.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = [
    "as_float_array",
    "check_axis",
    "check_finite_rows",
    "check_positive_number",
    "check_reduction",
    "check_smoothing",
    "compute_dtype",
    "describe_row",
    "to_rows",
]

REDUCTIONS = ("mean", "sum", "none")


def as_float_array(x, name: str) -> np.ndarray:
    """Return ``x`` as a floating ndarray; integers and booleans become float64.

    Raises ``TypeError`` for complex, object, string and other non-real input.
    """
    if isinstance(x, np.ndarray):
        a = x
    else:
        try:
            a = np.asarray(x)
        except (ValueError, TypeError) as exc:  # ragged lists and the like
            raise ValueError(f"{name}: could not be converted to a numeric array ({exc})") from None
    kind = a.dtype.kind
    if kind == "f":
        return a
    if kind in "iub":
        return a.astype(np.float64)
    if kind == "c":
        raise TypeError(
            f"{name}: complex input is not supported (dtype {a.dtype}); pass real numbers"
        )
    raise TypeError(f"{name}: expected an array of real numbers, got dtype {a.dtype}")


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """Working precision: float16 is computed in float32 and rounded once at the end."""
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def check_axis(axis, ndim: int, name: str) -> int:
    """Normalise ``axis`` to a non-negative int, or raise a ValueError naming ``name``."""
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis must be an integer, got {axis!r}")
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"axis {axis} is out of range for {name} with {ndim} dimension"
            f"{'' if ndim == 1 else 's'}"
        )
    return axis % ndim


def to_rows(a: np.ndarray, axis: int, name: str):
    """View (or copy) ``a`` as a C-contiguous 2-D array of shape (N, n), rows along ``axis``.

    Returns ``(rows, batch_shape)``. Raises ValueError for empty input.
    """
    if a.size == 0:
        if a.shape[axis] == 0:
            raise ValueError(f"{name}: the class axis (axis {axis}) is empty, shape {a.shape}")
        raise ValueError(f"{name} is empty (shape {a.shape})")
    moved = a if axis == a.ndim - 1 else np.moveaxis(a, axis, -1)
    batch_shape = moved.shape[:-1]
    n = moved.shape[-1]
    rows = np.ascontiguousarray(moved).reshape(-1, n)
    return rows, batch_shape


def describe_row(r: int, batch_shape: tuple) -> str:
    """Human form of flat row ``r``: ``row (2,)`` for batched input, ``the row`` for 1-D."""
    if len(batch_shape) == 0:
        return "the row"
    return f"row {tuple(int(i) for i in np.unravel_index(r, batch_shape))}"


def _prefix(name: str, r: int, batch_shape: tuple) -> str:
    if len(batch_shape) == 0:
        return name
    return f"{name}: {describe_row(r, batch_shape)}"


def check_finite_rows(m: np.ndarray, row_offset: int, batch_shape: tuple, name: str) -> None:
    """Raise if a row maximum ``m`` shows a NaN, a ``+inf`` or an all ``-inf`` row.

    ``m`` holds the row maxima (NaN-propagating) of rows ``row_offset, row_offset + 1, ...``.
    """
    if np.isfinite(m).all():
        return
    bad = np.flatnonzero(~np.isfinite(m))[0]
    r = row_offset + int(bad)
    value = m.flat[bad]
    where = _prefix(name, r, batch_shape)
    if np.isnan(value):
        raise ValueError(f"{where} contains NaN")
    if value > 0:
        raise ValueError(f"{where} contains +inf; logits must be finite or -inf")
    raise ValueError(f"{where} is all -inf, so every class is masked and softmax is undefined")


def check_finite_pair(
    dot: np.ndarray, a: np.ndarray, b: np.ndarray, batch_shape: tuple, names: str, row_offset: int
) -> None:
    """Raise if a per-row inner product ``dot`` of rows of ``a`` and ``b`` is not finite.

    That means a NaN or inf in one of the inputs, or finite inputs whose product overflows.
    """
    if np.isfinite(dot).all():
        return
    bad = int(np.flatnonzero(~np.isfinite(dot.ravel()))[0])
    where = _prefix(names, row_offset + bad, batch_shape)
    if np.isfinite(a[bad]).all() and np.isfinite(b[bad]).all():
        raise ValueError(
            f"{where}: the inner product of the two overflows (entries too large; "
            f"{names.split('/')[0]} should hold probabilities)"
        )
    raise ValueError(f"{where} contains NaN or inf")


def check_positive_number(value, name: str) -> float:
    """A finite real number > 0 (``temperature``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def check_smoothing(value) -> float:
    """``label_smoothing`` in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"label_smoothing must be a real number in [0, 1], got {value!r}")
    value = float(value)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"label_smoothing must be in [0, 1], got {value!r}")
    return value


def check_reduction(value) -> str:
    if value not in REDUCTIONS:
        raise ValueError(f"reduction must be one of 'mean', 'sum', 'none'; got {value!r}")
    return value


def check_labels(labels: np.ndarray, n: int, batch_shape: tuple) -> np.ndarray:
    """Integer class indices in [0, n); returns them flattened as intp."""
    flat = labels.reshape(-1)
    if flat.shape[0] <= 32:  # plain Python is quicker on a few values
        values = flat.tolist()
        ok = 0 <= min(values) and max(values) < n
    else:
        # Viewed as unsigned, a negative label becomes huge: one max checks both ends.
        u = flat.view(f"u{flat.itemsize}") if flat.dtype.kind == "i" else flat
        ok = int(np.maximum.reduce(u)) < n
    if not ok:
        bad = (flat < 0) | (flat >= n)
        r = int(np.flatnonzero(bad)[0])
        where = _prefix("target", r, batch_shape)
        if flat[r] < 0:
            raise ValueError(f"{where} has class index {int(flat[r])}, which is negative")
        raise ValueError(
            f"{where} has class index {int(flat[r])}, out of range for {n} classes "
            f"(valid: 0..{n - 1})"
        )
    return flat.astype(np.intp, copy=False)


def check_weights(y: np.ndarray, batch_shape: tuple) -> None:
    """Class weights: finite and non-negative, checked per row."""
    lo = y.min(axis=1)  # NaN propagates
    hi = y.max(axis=1)
    bad = ~(lo >= 0) | ~np.isfinite(hi)
    if not bad.any():
        return
    r = int(np.flatnonzero(bad)[0])
    where = _prefix("target", r, batch_shape)
    if np.isnan(lo[r]) or np.isnan(hi[r]):
        raise ValueError(f"{where} contains NaN")
    if lo[r] < 0:
        raise ValueError(f"{where} has a negative class weight {lo[r]!r}; weights must be >= 0")
    raise ValueError(f"{where} contains inf; class weights must be finite")
