"""The driver under every numeric function: rows, row blocks, threads and ``out=``.

Every function in softgrad works along one axis of its input. The driver views each argument
as a C-contiguous array of shape (N, n) -- N rows of n classes, in native byte order and the
working dtype -- whatever the caller's layout (C, Fortran, transposed, reversed, broadcast,
byte-swapped or read-only). Copying an awkward layout once costs one pass over the data and
makes every result bitwise independent of the layout, because the kernels then see the same
numbers in the same order.

The kernels (in ``_softmax.py`` and ``_losses.py``) are written for one block of rows. The
driver cuts the rows into blocks of about 1 MiB, so that a block stays in cache while a kernel
makes its few passes over it, and hands runs of whole blocks to threads (``_parallel.py``).

Each operation has two parts: ``check(a, b)`` reads rows a..b, raises on bad input and returns
what the kernel needs (the row maxima, say); ``kernel(a, b, state, scratch)`` computes and
writes rows a..b of the result. When the caller gave ``out=``, every block is checked before
any block is written, so an error leaves ``out`` (and an input that is ``out``) untouched.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from softgrad._parallel import run_rows
from softgrad._validation import (
    as_float_array,
    check_axis,
    check_not_empty,
    check_out,
    result_dtype,
    working_dtype,
)

# Rows are processed in blocks of about this many bytes. Measured on this project's 2-core
# machine (1 MiB L2 per core, 32 MiB shared L3), 1 MiB blocks beat 256 KiB ones by 0-15% at
# (4096, 1000) and (256, 50257): fewer Python-level calls per row, and a block stays in cache.
BLOCK_BYTES = 1 << 20


class Rows(NamedTuple):
    """One argument seen as rows: ``rows`` has shape (N, n) and is C-contiguous."""

    rows: np.ndarray  # (N, n), native byte order, working dtype; may be a view of the input
    shape: tuple  # the argument's own shape
    axis: int  # its class axis, non-negative
    batch_shape: tuple  # its shape without the class axis, in order
    dtype: np.dtype  # the dtype of a result computed from it


def as_rows(x, axis, name: str, dtype=None) -> Rows:
    """View ``x`` as rows along ``axis``; a copy only when its layout or dtype needs one."""
    a = as_float_array(x, name)
    ax = check_axis(axis, a.ndim, name)
    check_not_empty(a, ax, name)
    moved = a if ax == a.ndim - 1 else np.moveaxis(a, ax, -1)
    wdt = working_dtype(a.dtype if dtype is None else dtype)
    if moved.ndim == 2 and moved.dtype == wdt and moved.flags.c_contiguous:
        rows = moved  # already rows: the common case costs nothing
    else:
        rows = np.ascontiguousarray(moved, dtype=wdt).reshape(-1, a.shape[ax])
    out_dtype = result_dtype(a.dtype if dtype is None else dtype)
    return Rows(rows, a.shape, ax, moved.shape[:-1], out_dtype)


def rows_per_block(N: int, n: int, itemsize: int) -> int:
    return max(1, min(N, BLOCK_BYTES // (n * itemsize)))


class Result:
    """Where an (N, n) result is written, and how it is handed back in the caller's layout.

    Straight into ``out`` when ``out`` is C-contiguous along the class axis, of the working
    dtype, and shares no memory with an input. Any other ``out`` -- strided, of another byte
    order, the input itself (``out=z``) or overlapping it (``out=z[1:]`` for ``z[:-1]``) -- gets
    a fresh array, copied into ``out`` at the end. So a kernel may use its block of the result
    as work space, and never reads an input that it has already overwritten.
    """

    def __init__(self, like: Rows, out, inputs, shape=None):
        self.like = like
        self.out = out
        self.shape = like.shape if shape is None else shape
        rows = like.rows
        self.array = None
        if out is not None:
            check_out(out, self.shape, like.dtype)
            if (
                like.axis == len(like.shape) - 1
                and out.dtype == rows.dtype
                and out.flags.c_contiguous
            ):
                flat = out.reshape(rows.shape)
                if not any(np.may_share_memory(flat, r.rows) for r in inputs):
                    self.array = flat
        self.direct = self.array is not None
        if self.array is None:
            self.array = np.empty(rows.shape, dtype=rows.dtype)

    def finish(self):
        """The result in the layout of the input (or ``out``, filled)."""
        if self.direct:
            return self.out
        like = self.like
        res = self.array.reshape(like.batch_shape + (like.shape[like.axis],))
        if like.axis != len(like.shape) - 1:
            res = np.moveaxis(res, -1, like.axis)
        if self.out is not None:
            np.copyto(self.out, res, casting="same_kind")
            return self.out
        return res if res.dtype == like.dtype else res.astype(like.dtype)


class Scratch:
    """Block-sized work arrays for one run of blocks, made once and reused by every block
    (a fresh 1 MiB array per block would cost its page faults every time)."""

    def __init__(self, rows: int, n: int, dtype):
        self.shape = (rows, n)
        self.dtype = dtype
        self.arrays = {}

    def __call__(self, i: int, b: int) -> np.ndarray:
        """Work array number ``i``, its first ``b`` rows."""
        a = self.arrays.get(i)
        if a is None:
            a = self.arrays[i] = np.empty(self.shape, dtype=self.dtype)
        return a[:b]


def map_blocks(N: int, n: int, dtype, nbytes: int, check, kernel, check_first: bool) -> None:
    """Run ``kernel(a, b, check(a, b), scratch)`` over all row blocks ``a:b``.

    With ``check_first`` every block is checked before any kernel runs (for ``out=``).
    Errors are raised for the first bad row, also when several threads work.
    """
    step = rows_per_block(N, n, np.dtype(dtype).itemsize)

    def blocks(lo, hi, body):
        scratch = Scratch(min(step, hi - lo), n, dtype)
        for a in range(lo, hi, step):
            body(a, min(hi, a + step), scratch)

    # Inside the kernels, over/invalid/divide only come from entries that are already -inf or
    # far below the maximum, or rows whose other entries vanish: their results are exact zeros,
    # or are named by a check. Quiet them.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if N <= step:  # one block: checked before it is written, nothing to walk or share
            kernel(0, N, check(0, N), Scratch(N, n, dtype))
        elif check_first:
            states = {}
            run_rows(
                N,
                step,
                nbytes,
                lambda lo, hi: blocks(lo, hi, lambda a, b, s: states.__setitem__(a, check(a, b))),
            )
            run_rows(
                N,
                step,
                nbytes,
                lambda lo, hi: blocks(lo, hi, lambda a, b, s: kernel(a, b, states[a], s)),
            )
        else:
            run_rows(
                N,
                step,
                nbytes,
                lambda lo, hi: blocks(lo, hi, lambda a, b, s: kernel(a, b, check(a, b), s)),
            )
