"""Properties of softmax, log_softmax, logsumexp and the softmax Jacobian products.

References are computed here, independently of softgrad: in extended precision
(``np.longdouble``, 64-bit significand on x86) for float64 input and in float64 for float32 and
float16 input, with the textbook formulas. Finite differences are written out here too.
"""

from __future__ import annotations

import sys
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import softgrad as sg

DTYPES = [np.float16, np.float32, np.float64]
EPS = {np.dtype(t): float(np.finfo(t).eps) for t in DTYPES}


def wide(dtype):
    """A precision wider than ``dtype`` for references."""
    return np.longdouble if np.dtype(dtype) == np.float64 else np.float64


def ref_log_softmax(z, axis=-1, temperature=1.0):
    zl = np.asarray(z).astype(wide(z.dtype)) / temperature
    m = zl.max(axis=axis, keepdims=True)
    d = zl - m
    return d - np.log(np.exp(d).sum(axis=axis, keepdims=True))


def ref_softmax(z, axis=-1, temperature=1.0):
    zl = np.asarray(z).astype(wide(z.dtype)) / temperature
    e = np.exp(zl - zl.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def ref_logsumexp(z, axis=-1):
    zl = np.asarray(z).astype(wide(z.dtype))
    m = zl.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(zl - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def ref_jacobian_rows(p):
    """diag(p) - p p^T for rows along the last axis."""
    return np.einsum("...i,ij->...ij", p, np.eye(p.shape[-1])) - p[..., :, None] * p[..., None, :]


@st.composite
def logits_and_axis(draw, dtypes=DTYPES, max_dims=3, max_side=6, mask=True):
    """Logits over shapes, axes, dtypes and scales (1e-8 .. 1e4, offsets +-1e4), maybe masked."""
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=max_dims, min_side=1, max_side=max_side))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    scale = draw(st.sampled_from([1e-8, 1e-3, 1.0, 30.0, 1e3, 1e4]))
    offset = draw(st.sampled_from([0.0, 0.0, 50.0, 1e4, -1e4]))
    base = draw(hnp.arrays(np.float64, shape, elements=st.floats(-1, 1)))
    z = (base * scale + offset).astype(dtype)
    if mask and draw(st.booleans()):
        masked = draw(hnp.arrays(np.bool_, shape))
        # keep the arg-max of every row unmasked, so no row is all -inf
        keep = np.expand_dims(np.argmax(z, axis=axis), axis)
        np.put_along_axis(masked, keep, False, axis=axis)
        z = np.where(masked, -np.inf, z).astype(dtype)
    return z, axis


def tol(dtype, ulps=4.0):
    e = EPS[np.dtype(dtype)]
    return {"rtol": ulps * e, "atol": ulps * e}


# ---------------------------------------------------------------- softmax, log_softmax, LSE


@given(logits_and_axis())
def test_softmax_matches_reference_sums_to_one_and_keeps_dtype(case):
    z, axis = case
    p = sg.softmax(z, axis=axis)
    assert p.dtype == z.dtype
    assert p.shape == z.shape
    assert np.all(p >= 0)
    assert np.all(p <= 1)
    np.testing.assert_allclose(
        p.astype(np.float64), ref_softmax(z, axis).astype(np.float64), **tol(z.dtype)
    )
    np.testing.assert_allclose(
        p.astype(np.float64).sum(axis=axis), 1.0, rtol=0, atol=4 * z.shape[axis] * EPS[z.dtype]
    )
    assert np.all(p[np.isneginf(z)] == 0)  # masked classes get exactly 0


@given(logits_and_axis())
def test_log_softmax_matches_reference(case):
    z, axis = case
    lp = sg.log_softmax(z, axis=axis)
    assert lp.dtype == z.dtype
    assert np.all(lp <= 0)
    ref = ref_log_softmax(z, axis)
    # relative to the size of the terms that were combined (z - m and the log-sum)
    scale = 1.0 + np.abs(np.where(np.isfinite(ref), ref, 0).astype(np.float64))
    finite = np.isfinite(ref)
    assert np.array_equal(np.isneginf(lp), np.isneginf(ref))
    err = np.abs(lp.astype(np.float64)[finite] - ref.astype(np.float64)[finite])
    assert np.all(err <= 4 * EPS[z.dtype] * scale[finite])


@given(logits_and_axis(), st.booleans())
def test_logsumexp_matches_reference_and_bounds(case, keepdims):
    z, axis = case
    lse = sg.logsumexp(z, axis=axis, keepdims=keepdims)
    lse = np.asarray(lse)
    expected_shape = list(z.shape)
    if keepdims:
        expected_shape[axis] = 1
    else:
        del expected_shape[axis]
    assert lse.shape == tuple(expected_shape)
    assert lse.dtype == z.dtype
    ref = ref_logsumexp(z, axis)
    got = lse.reshape(ref.shape).astype(np.float64)
    np.testing.assert_allclose(
        got, ref.astype(np.float64), rtol=4 * EPS[z.dtype], atol=4 * EPS[z.dtype]
    )
    # max <= LSE <= max + log(n), up to rounding
    m = z.max(axis=axis).astype(np.float64)
    slack = 4 * EPS[z.dtype] * (1 + np.abs(m))
    assert np.all(got >= m - slack)
    assert np.all(got <= m + np.log(z.shape[axis]) + slack)


@st.composite
def shift_case(draw):
    # logits on a 1/8 grid and integer shifts, so z + c is exact and z - max(z) is unchanged
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64])))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=6))
    q = draw(hnp.arrays(np.int64, shape, elements=st.integers(-1000, 1000)))
    c = draw(st.integers(-10_000, 10_000))
    return (q / 8).astype(dtype), dtype.type(c)


@given(shift_case())
def test_softmax_is_exactly_shift_invariant(case):
    z, c = case
    assert np.array_equal(sg.softmax(z + c), sg.softmax(z))
    assert np.array_equal(sg.log_softmax(z + c), sg.log_softmax(z))


@given(logits_and_axis(dtypes=[np.float64], mask=False), st.sampled_from([0.05, 0.5, 2.0, 10.0]))
def test_temperature_divides_the_logits(case, temperature):
    z, axis = case
    np.testing.assert_allclose(
        sg.softmax(z, axis=axis, temperature=temperature),
        ref_softmax(z, axis, temperature),
        rtol=1e-13,
        atol=1e-15,
    )
    ref = ref_log_softmax(z, axis, temperature).astype(np.float64)
    np.testing.assert_allclose(
        sg.log_softmax(z, axis=axis, temperature=temperature), ref, rtol=1e-13, atol=1e-13
    )


def test_worked_example_and_large_logits():
    expected = np.exp([0.0, 1.0, 2.0]) / np.exp([0.0, 1.0, 2.0]).sum()
    np.testing.assert_allclose(sg.softmax([100.0, 101.0, 102.0]), expected, rtol=1e-15)
    np.testing.assert_allclose(sg.softmax(np.array([1e4, 1e4 + 1, 1e4 + 2])), expected, rtol=1e-12)
    assert sg.logsumexp([1000.0, 1000.0]) == pytest.approx(1000 + np.log(2), rel=1e-15)
    assert sg.logsumexp([-1000.0, -1000.0]) == pytest.approx(-1000 + np.log(2), rel=1e-15)


def test_masked_classes():
    z = np.array([[0.0, -np.inf, 0.0], [-np.inf, 3.0, -np.inf]])
    np.testing.assert_array_equal(sg.softmax(z), [[0.5, 0.0, 0.5], [0.0, 1.0, 0.0]])
    lp = sg.log_softmax(z)
    np.testing.assert_array_equal(lp[1], [-np.inf, 0.0, -np.inf])
    assert lp[0, 1] == -np.inf
    np.testing.assert_allclose(lp[0, [0, 2]], -np.log(2), rtol=1e-15)
    np.testing.assert_allclose(sg.logsumexp(z), [np.log(2), 3.0], rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
def test_integers_become_float64(dtype):
    z = np.array([[0, 1, 1]], dtype=dtype)
    for f in (sg.softmax, sg.log_softmax, sg.logsumexp):
        assert np.asarray(f(z)).dtype == np.float64
    np.testing.assert_allclose(
        sg.softmax([1, 2, 3]), ref_softmax(np.array([1.0, 2.0, 3.0])), rtol=1e-15
    )


def test_nested_lists_and_scalar_results():
    assert sg.softmax([[1, 2], [3, 4]]).shape == (2, 2)
    value = sg.logsumexp([0.0, 0.0])
    assert np.ndim(value) == 0
    assert float(value) == pytest.approx(np.log(2))


def test_large_arrays_match_small_rowwise_results():
    """Arrays large enough to be processed in several row blocks give the same rows."""
    rng = np.random.default_rng(3)
    z = rng.normal(scale=5, size=(600, 700))
    assert z.nbytes > 3 * sys.modules["softgrad._rows"].BLOCK_BYTES
    z[7, ::3] = -np.inf
    for f in (sg.softmax, sg.log_softmax):
        whole = f(z)
        for i in (0, 7, 150, 299, 599):
            np.testing.assert_array_equal(whole[i], f(z[i]))
    lse = sg.logsumexp(z)
    np.testing.assert_array_equal(lse[[0, 7, 299]], [sg.logsumexp(z[i]) for i in (0, 7, 299)])
    np.testing.assert_allclose(sg.softmax(z.T, axis=0), sg.softmax(z).T, rtol=1e-15, atol=1e-300)


# ---------------------------------------------------------------- out=


@pytest.mark.parametrize("f", [sg.softmax, sg.log_softmax])
def test_out_argument_is_written_and_returned(f):
    z = np.random.default_rng(0).normal(size=(3, 5))
    expected = f(z)
    out = np.empty_like(z)
    assert f(z, out=out) is out
    np.testing.assert_array_equal(out, expected)
    # in place, and along another axis (out then gets a strided write)
    w = z.copy()
    assert f(w, out=w) is w
    np.testing.assert_array_equal(w, expected)
    out0 = np.empty_like(z)
    f(z, axis=0, out=out0)
    np.testing.assert_array_equal(out0, f(z, axis=0))


def test_logsumexp_out_argument():
    z = np.random.default_rng(0).normal(size=(3, 5))
    out = np.empty(3)
    assert sg.logsumexp(z, out=out) is out
    np.testing.assert_array_equal(out, sg.logsumexp(z))


@pytest.mark.parametrize(
    ("out", "match"),
    [
        (np.empty((3, 4)), "out has shape"),
        (np.empty((3, 5), dtype=np.float32), "out has dtype"),
        ([0.0] * 15, "out must be a numpy array"),
    ],
)
def test_bad_out(out, match):
    z = np.zeros((3, 5))
    with pytest.raises((ValueError, TypeError), match=match):
        sg.softmax(z, out=out)


# ---------------------------------------------------------------- Jacobian and its products


@st.composite
def small_logits(draw, dtypes=(np.float32, np.float64)):
    z, axis = draw(logits_and_axis(dtypes=list(dtypes), max_dims=3, max_side=5, mask=False))
    return z, axis


@given(small_logits())
def test_jacobian_is_symmetric_psd_annihilates_ones_and_matches_formula(case):
    z, axis = case
    J = sg.softmax_jacobian(z, axis=axis)
    n = z.shape[axis]
    batch = tuple(s for i, s in enumerate(z.shape) if i != axis % z.ndim)
    assert J.shape == batch + (n, n)
    assert J.dtype == z.dtype
    assert np.array_equal(J, np.swapaxes(J, -1, -2))  # exactly symmetric
    e = EPS[z.dtype]
    Jw = J.astype(np.float64)
    assert np.all(np.linalg.eigvalsh(Jw) >= -8 * n * e)  # positive semidefinite
    np.testing.assert_allclose(Jw.sum(axis=-1), 0.0, atol=8 * n * e)  # J 1 = 0
    p_ref = np.moveaxis(ref_softmax(z, axis), axis, -1).astype(np.float64)
    np.testing.assert_allclose(Jw, ref_jacobian_rows(p_ref), rtol=8 * e, atol=8 * e)


def central_differences(f, z, h=1e-6):
    """d f(z) / d z along the last axis of a 1-D z, by central differences (test-local)."""
    cols = []
    for j in range(z.size):
        step = np.zeros_like(z)
        step[j] = h
        cols.append((f(z + step) - f(z - step)) / (2 * h))
    return np.stack(cols, axis=-1)


@given(hnp.arrays(np.float64, st.integers(1, 6), elements=st.floats(-20, 20)))
def test_jacobian_agrees_with_finite_differences(z):
    J = sg.softmax_jacobian(z)
    fd = central_differences(lambda x: ref_softmax(x).astype(np.float64), z)
    np.testing.assert_allclose(J, fd, rtol=1e-6, atol=1e-9)
    fd_log = central_differences(lambda x: ref_log_softmax(x).astype(np.float64), z)
    p = ref_softmax(z).astype(np.float64)
    # d log p_i / d z_j = delta_ij - p_j
    np.testing.assert_allclose(np.eye(z.size) - p[None, :], fd_log, rtol=1e-6, atol=1e-8)


@st.composite
def prob_and_upstream(draw):
    z, axis = draw(small_logits())
    g = draw(hnp.arrays(np.float64, z.shape, elements=st.floats(-10, 10))).astype(z.dtype)
    return z, g, axis


@given(prob_and_upstream())
def test_vjp_equals_g_transpose_J_and_jvp_equals_J_v(case):
    z, g, axis = case
    p = sg.softmax(z, axis=axis)
    p_rows = np.moveaxis(p, axis, -1).astype(np.float64)
    g_rows = np.moveaxis(g, axis, -1).astype(np.float64)
    J = ref_jacobian_rows(p_rows)
    expected = np.moveaxis(np.einsum("...i,...ij->...j", g_rows, J), -1, axis)
    e = EPS[z.dtype]
    scale = 8 * e * (1 + np.abs(g).max())
    for f in (sg.softmax_vjp, sg.softmax_jvp):
        got = f(p, g, axis=axis)
        assert got.shape == z.shape
        assert got.dtype == z.dtype
        np.testing.assert_allclose(got.astype(np.float64), expected, rtol=0, atol=scale)
    # the gradient with respect to logits sums to zero over the classes
    np.testing.assert_allclose(
        sg.softmax_vjp(p, g, axis=axis).astype(np.float64).sum(axis=axis),
        0.0,
        atol=z.shape[axis] * scale,
    )


def test_vjp_on_a_worked_example():
    # p = [0.5, 0.25, 0.25], g = [1, 0, 0]: <g, p> = 0.5, so p * (g - 0.5) = [0.25, -0.125, -0.125]
    p = np.array([0.5, 0.25, 0.25])
    np.testing.assert_array_equal(
        sg.softmax_vjp(p, np.array([1.0, 0.0, 0.0])), [0.25, -0.125, -0.125]
    )
    # a constant upstream gradient has no effect
    np.testing.assert_array_equal(sg.softmax_vjp(p, np.full(3, 7.0)), [0.0, 0.0, 0.0])


def test_vjp_never_forms_the_jacobian():
    n = 100_000  # an (n, n) float64 Jacobian would need 80 GB
    rng = np.random.default_rng(0)
    p = sg.softmax(rng.normal(size=(2, n)))
    g = rng.normal(size=(2, n))
    tracemalloc.start()
    try:
        sg.softmax_vjp(p, g)
        sg.softmax_jvp(p, g)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * p.nbytes


def test_vjp_out_argument():
    p = sg.softmax(np.arange(6.0).reshape(2, 3))
    g = np.ones((2, 3))
    g[:, 0] = 2.0
    out = np.empty_like(p)
    assert sg.softmax_vjp(p, g, out=out) is out
    np.testing.assert_array_equal(out, sg.softmax_vjp(p, g))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_and_large_inputs_give_bitwise_identical_rows(dtype):
    """Small inputs take a short path, large ones the row-block loop; a row's result must not
    depend on which path computed it."""
    rng = np.random.default_rng(11)
    big = (
        rng.normal(scale=4, size=(30000, 7)) + rng.choice([0.0, 1e4, -1e4], size=(30000, 1))
    ).astype(dtype)
    assert big.nbytes > 1 << 19  # beyond one block: the row-block loop
    big[1, 2] = -np.inf
    small = big[:5].copy()
    one = big[1].copy()
    for f in (sg.softmax, sg.log_softmax, sg.logsumexp):
        whole = f(big)
        np.testing.assert_array_equal(f(small), whole[:5])
        np.testing.assert_array_equal(f(one), whole[1])
    p = sg.softmax(big)
    g = rng.normal(size=big.shape).astype(dtype)
    whole = sg.softmax_vjp(p, g)
    np.testing.assert_array_equal(sg.softmax_vjp(p[:5].copy(), g[:5].copy()), whole[:5])
