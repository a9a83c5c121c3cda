"""Input checks for every numeric function, in one place.

Every error names the argument it is about and, where it applies, the batch row, so that a
student who passes a bad array learns *which* row of *which* argument is wrong, e.g.
``z: row (2,) contains NaN``. All checks run before anything is written to ``out=``.

The checks on logits are nearly free: the row maximum is needed anyway for stability, and it is
NaN if the row has a NaN, ``+inf`` if it has a ``+inf`` and ``-inf`` if every entry is ``-inf``.
Only when one of those shows up do we go looking for the culprit.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

REDUCTIONS = ("mean", "sum", "none")


def as_float_array(x, name: str) -> np.ndarray:
    """``x`` as a floating ndarray; integers and booleans become float64.

    Raises ``TypeError`` for complex, object, string and other non-real input.
    """
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


def working_dtype(dtype: np.dtype) -> np.dtype:
    """The native-byte-order dtype we compute in: float16 is computed in float32 and rounded
    once at the end; a big-endian float64 is computed as a native float64."""
    dtype = np.dtype(dtype)
    if not dtype.isnative:
        dtype = dtype.newbyteorder("=")
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def result_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype of a result: the input's floating type, in native byte order."""
    dtype = np.dtype(dtype)
    return dtype if dtype.isnative else dtype.newbyteorder("=")


def check_axis(axis, ndim: int, name: str) -> int:
    """Normalise ``axis`` to a non-negative int, or raise naming ``name``."""
    if type(axis) is int and -ndim <= axis < ndim:
        return axis % ndim
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"axis must be an integer, got {axis!r}")
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"axis {axis} is out of range for {name} with {ndim} dimension"
            f"{'' if ndim == 1 else 's'}"
        )
    return axis % ndim


def check_not_empty(a: np.ndarray, axis: int, name: str) -> None:
    if a.size == 0:
        if a.shape[axis] == 0:
            raise ValueError(f"{name}: the class axis (axis {axis}) is empty, shape {a.shape}")
        raise ValueError(f"{name} is empty (shape {a.shape})")


def describe_row(r: int, batch_shape: tuple) -> str:
    """``name: row (2,)`` for batched input; just ``name`` for a single row."""
    return f"row {tuple(int(i) for i in np.unravel_index(r, batch_shape))}"


def located(name: str, r: int, batch_shape: tuple) -> str:
    if len(batch_shape) == 0:
        return name
    return f"{name}: {describe_row(r, batch_shape)}"


def check_row_maxima(m: np.ndarray, first_row: int, batch_shape: tuple, name: str) -> None:
    """Raise if a row maximum in ``m`` shows a NaN, a ``+inf`` or an all ``-inf`` row.

    ``m`` holds the (NaN-propagating) maxima of rows ``first_row, first_row + 1, ...``.
    """
    if math.isfinite(np.add.reduce(m)):  # one reduction; an overflowing sum looks further
        return
    finite = np.isfinite(m)
    if finite.all():
        return
    bad = int(np.flatnonzero(~finite)[0])
    where = located(name, first_row + bad, batch_shape)
    value = m[bad]
    if np.isnan(value):
        raise ValueError(f"{where} contains NaN")
    if value > 0:
        raise ValueError(f"{where} contains +inf; logits must be finite or -inf")
    raise ValueError(f"{where} is all -inf, so every class is masked and softmax is undefined")


def check_inner_products(dot, a, b, first_row: int, batch_shape: tuple, names: str) -> None:
    """Raise if a row's inner product ``dot`` of rows of ``a`` and ``b`` is not finite: a NaN or
    inf in one of them, or finite entries whose products overflow."""
    if math.isfinite(np.add.reduce(dot)):
        return
    finite = np.isfinite(dot)
    if finite.all():
        return
    bad = int(np.flatnonzero(~finite)[0])
    where = located(names, first_row + bad, batch_shape)
    if np.isfinite(a[bad]).all() and np.isfinite(b[bad]).all():
        raise ValueError(
            f"{where}: the inner product of the two overflows (entries too large; "
            f"{names.split('/')[0]} should hold probabilities)"
        )
    raise ValueError(f"{where} contains NaN or inf")


def check_positive_number(value, name: str) -> float:
    """A finite real number > 0 (``temperature``)."""
    if type(value) is float and 0.0 < value < math.inf:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def check_smoothing(value) -> float:
    """``label_smoothing`` in [0, 1]."""
    if type(value) is float and 0.0 <= value <= 1.0:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"label_smoothing must be a real number in [0, 1], got {value!r}")
    value = float(value)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"label_smoothing must be in [0, 1], got {value!r}")
    return value


def check_reduction(value) -> str:
    if not isinstance(value, str) or value not in REDUCTIONS:
        raise ValueError(f"reduction must be one of 'mean', 'sum', 'none'; got {value!r}")
    return value


def target_kind(target, shape: tuple, batch_shape: tuple, axis: int) -> str:
    """``"weights"`` (one weight per class, the logits' shape) or ``"labels"`` (one integer class
    per row, the logits' shape without the class axis); anything else is a named error."""
    try:
        target = np.asarray(target)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"target: could not be converted to a numeric array ({exc})") from None
    kind = target.dtype.kind
    if kind not in "iubf":
        raise TypeError(
            f"target: expected integer labels or real class weights, got dtype {target.dtype}"
        )
    if target.shape == shape:
        return "weights"
    if target.shape == batch_shape:
        if kind not in "iu":
            raise TypeError(
                f"target: class labels must be integers, got dtype {target.dtype} "
                f"(for class weights pass an array of shape {shape})"
            )
        return "labels"
    raise ValueError(
        f"target has shape {target.shape}; expected {batch_shape} (integer labels: logits' "
        f"shape {shape} without axis {axis}) or {shape} (class weights)"
    )


def check_labels(labels: np.ndarray, n: int, batch_shape: tuple) -> np.ndarray:
    """Integer class indices in ``[0, n)``, returned flat as native ``intp``.

    Converted first, so that any byte order, width or signedness is read by value.
    """
    flat = np.asarray(labels).reshape(-1)
    if flat.dtype.kind == "u" and flat.dtype.itemsize >= np.dtype(np.intp).itemsize:
        too_big = flat >= n  # compared as unsigned: a huge label must not wrap to a negative
        if too_big.any():
            r = int(np.flatnonzero(too_big)[0])
            raise ValueError(
                f"{located('target', r, batch_shape)} has class index {int(flat[r])}, out of "
                f"range for {n} classes (valid: 0..{n - 1})"
            )
    flat = flat.astype(np.intp)
    if 0 <= flat.min() and flat.max() < n:
        return flat
    bad = (flat < 0) | (flat >= n)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        where = located("target", r, batch_shape)
        if flat[r] < 0:
            raise ValueError(f"{where} has class index {int(flat[r])}, which is negative")
        raise ValueError(
            f"{where} has class index {int(flat[r])}, out of range for {n} classes "
            f"(valid: 0..{n - 1})"
        )
    return flat


def check_weights(y: np.ndarray, batch_shape: tuple) -> None:
    """Class weights (rows of ``y``): finite and non-negative."""
    lo = y.min(axis=1)  # NaN propagates
    hi = y.max(axis=1)
    bad = ~(lo >= 0) | ~np.isfinite(hi)
    if not bad.any():
        return
    r = int(np.flatnonzero(bad)[0])
    where = located("target", r, batch_shape)
    if np.isnan(lo[r]) or np.isnan(hi[r]):
        raise ValueError(f"{where} contains NaN")
    if lo[r] < 0:
        raise ValueError(f"{where} has a negative class weight {lo[r]!r}; weights must be >= 0")
    raise ValueError(f"{where} contains inf; class weights must be finite")


def check_out(out, shape: tuple, dtype: np.dtype, name: str = "out") -> None:
    """``out`` must be a writeable ndarray of the result's shape and floating dtype."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"{name} has shape {out.shape}, expected {shape}")
    if out.dtype.newbyteorder("=") != dtype:
        raise TypeError(f"{name} has dtype {out.dtype}, expected {dtype}")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")


def check_finite_matrix(x, name: str, ndim: int) -> np.ndarray:
    """A real array of ``ndim`` dimensions with no NaN or inf; the error names the first bad row.

    Checked a block of rows at a time through row sums (a NaN or inf propagates into the sum;
    a finite row whose sum overflows is looked at entry by entry), so that a large weight
    matrix costs one read and no array of its size.
    """
    a = as_float_array(x, name)
    if a.ndim != ndim:
        raise ValueError(
            f"{name} must have {ndim} dimension{'s' if ndim > 1 else ''}, got shape {a.shape}"
        )
    if a.size == 0:
        raise ValueError(f"{name} is empty (shape {a.shape})")
    rows = a.reshape(a.shape[0], -1)
    step = max(1, (1 << 20) // max(1, rows.shape[1] * rows.itemsize))
    with np.errstate(over="ignore", invalid="ignore"):
        for lo in range(0, rows.shape[0], step):
            sums = np.add.reduce(rows[lo : lo + step], axis=1)
            for r in np.flatnonzero(~np.isfinite(sums)):
                if not np.isfinite(rows[lo + r]).all():
                    what = "row" if ndim > 1 else "entry"
                    raise ValueError(f"{name}: {what} ({lo + int(r)},) contains NaN or inf")
    return a


def check_chunk_size(value, N: int, default: int) -> int:
    """``chunk_size``: a positive integer (capped at N), or None for ``default``."""
    if value is None:
        return max(1, min(N, default))
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"chunk_size must be a positive integer or None, got {value!r}")
    return min(N, int(value))


def check_class_weights(weight, n: int, dtype) -> np.ndarray | None:
    """``weight``: None, or one finite weight >= 0 per class, as an array of ``dtype``."""
    if weight is None:
        return None
    w = as_float_array(weight, "weight")
    if w.shape != (n,):
        raise ValueError(f"weight has shape {w.shape}; expected ({n},), one weight per class")
    bad = ~(w >= 0) | ~np.isfinite(w)
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        if np.isnan(w[j]):
            raise ValueError(f"weight: entry ({j},) is NaN")
        if w[j] < 0:
            raise ValueError(f"weight: entry ({j},) is negative ({w[j]!r}); weights must be >= 0")
        raise ValueError(f"weight: entry ({j},) is inf; weights must be finite")
    return w.astype(dtype)


def check_ignore_index(ignore_index, kind: str, weight) -> None:
    """``ignore_index``: None, or an integer label, for integer-label targets only."""
    if ignore_index is None:
        return
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"ignore_index must be an integer or None, got {ignore_index!r}")
    if kind != "labels":
        raise ValueError("ignore_index applies to integer labels, not to class-weight targets")
    if weight is not None and 0 <= ignore_index < weight.shape[0] and weight[ignore_index] != 0:
        raise ValueError(
            f"ignore_index {ignore_index} is also a class index, with weight "
            f"{float(weight[ignore_index])!r}: give that class weight 0, or use an ignore_index "
            f"outside 0..{weight.shape[0] - 1}"
        )
