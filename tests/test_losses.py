"""Cross-entropy, its gradient and the fused version, against references written here.

References: the loss as -sum_j y_j log p_j with log p from an extended-precision log-softmax,
the gradient as p * sum(y) - y (the seed question's general form), and test-local central
differences of the reference loss.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import softgrad as sg

EPS = {np.dtype(t): float(np.finfo(t).eps) for t in (np.float16, np.float32, np.float64)}


def ref_log_softmax(z, axis=-1):
    zl = np.asarray(z, dtype=np.longdouble)
    m = zl.max(axis=axis, keepdims=True)
    d = zl - m
    return d - np.log(np.exp(d).sum(axis=axis, keepdims=True))


def one_hot(labels, n, axis):
    y = (np.arange(n) == np.asarray(labels)[..., None]).astype(np.float64)
    return np.moveaxis(y, -1, axis)


def smoothed(y, eps, axis):
    return (1 - eps) * y + eps / y.shape[axis]


def ref_loss(z, y, axis, reduction):
    lp = ref_log_softmax(z, axis)
    with np.errstate(invalid="ignore"):
        rows = np.where(y == 0, 0, -y * lp).sum(axis=axis)
    if reduction == "none":
        return rows
    total = rows.sum()
    return total / rows.size if reduction == "mean" else total


def ref_grad(z, y, axis, reduction):
    lp = ref_log_softmax(z, axis)
    g = np.exp(lp) * y.sum(axis=axis, keepdims=True) - y
    n_rows = z.size // z.shape[axis]
    return g / n_rows if reduction == "mean" else g


@st.composite
def ce_case(draw, soft=None, dtypes=(np.float32, np.float64)):
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    scale = draw(st.sampled_from([1e-6, 1.0, 10.0, 300.0]))
    offset = draw(st.sampled_from([0.0, 1e4, -1e4]))
    z = (draw(hnp.arrays(np.float64, shape, elements=st.floats(-1, 1))) * scale + offset).astype(
        dtype
    )
    n = shape[axis]
    batch = tuple(s for i, s in enumerate(shape) if i != axis % len(shape))
    use_soft = draw(st.booleans()) if soft is None else soft
    if use_soft:
        target = draw(hnp.arrays(np.float64, shape, elements=st.floats(0, 3))).astype(dtype)
        y = target.astype(np.float64)
    else:
        target = draw(hnp.arrays(np.int64, batch, elements=st.integers(0, n - 1)))
        y = one_hot(target, n, axis)
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    eps = draw(st.sampled_from([0.0, 0.0, 0.1, 0.5, 1.0]))
    return z, target, y, axis, reduction, eps


@given(ce_case())
def test_loss_and_gradient_match_references(case):
    z, target, y, axis, reduction, eps = case
    kw = {"axis": axis, "reduction": reduction, "label_smoothing": eps}
    ys = smoothed(y, eps, axis)
    loss = sg.cross_entropy(z, target, **kw)
    grad = sg.cross_entropy_grad(z, target, **kw)
    e = EPS[z.dtype]
    n = z.shape[axis]
    ref = np.asarray(ref_loss(z, ys, axis, reduction), dtype=np.float64)
    got = np.asarray(loss, dtype=np.float64)
    assert got.shape == ref.shape
    assert np.asarray(loss).dtype == z.dtype
    # errors relative to the terms summed: y_j times |log p_j| and the log-sum
    mass = np.asarray(ref_loss(z, np.ones_like(ys) * ys.max(), axis, reduction), dtype=np.float64)
    np.testing.assert_array_less(np.abs(got - ref), 16 * n * e * (1 + np.abs(mass)) + 1e-300)
    assert grad.shape == z.shape
    assert grad.dtype == z.dtype
    gref = ref_grad(z, ys, axis, reduction).astype(np.float64)
    scale = ys.sum(axis=axis, keepdims=True).max() + ys.max()
    if reduction == "mean":
        scale = scale / (z.size // n)
    np.testing.assert_allclose(
        grad.astype(np.float64), gref, rtol=16 * e, atol=16 * n * e * scale + 1e-300
    )


@given(ce_case())
def test_fused_equals_separate_calls(case):
    z, target, _, axis, reduction, eps = case
    kw = {"axis": axis, "reduction": reduction, "label_smoothing": eps}
    loss, grad = sg.cross_entropy_with_grad(z, target, **kw)
    np.testing.assert_array_equal(loss, sg.cross_entropy(z, target, **kw))
    np.testing.assert_array_equal(grad, sg.cross_entropy_grad(z, target, **kw))


@given(ce_case(soft=False))
def test_integer_labels_equal_one_hot_weights(case):
    z, labels, y, axis, reduction, eps = case
    kw = {"axis": axis, "reduction": reduction, "label_smoothing": eps}
    as_weights = y.astype(z.dtype)
    e = EPS[z.dtype]
    np.testing.assert_allclose(
        np.asarray(sg.cross_entropy(z, labels, **kw), dtype=np.float64),
        np.asarray(sg.cross_entropy(z, as_weights, **kw), dtype=np.float64),
        rtol=16 * e,
        atol=16 * e,
    )
    np.testing.assert_allclose(
        sg.cross_entropy_grad(z, labels, **kw),
        sg.cross_entropy_grad(z, as_weights, **kw),
        rtol=16 * e,
        atol=16 * e,
    )


@given(ce_case(soft=True, dtypes=(np.float64,)))
def test_soft_label_gradient_is_p_sum_y_minus_y(case):
    """The seed question: for targets that do not sum to 1, dL/dz = p * sum(y) - y, not p - y."""
    z, y, _, axis, _, _ = case
    grad = sg.cross_entropy_grad(z, y, axis=axis, reduction="sum")
    p = np.exp(ref_log_softmax(z, axis)).astype(np.float64)
    expected = p * y.sum(axis=axis, keepdims=True) - y
    np.testing.assert_allclose(
        grad, expected, rtol=1e-13, atol=1e-13 * (1 + y.sum(axis=axis).max())
    )


def test_sum_of_weights_matters_seed_question():
    z = np.array([0.3, -1.2, 2.0])
    y = np.array([0.5, 1.5, 1.0])  # sums to 3
    p = np.exp(z) / np.exp(z).sum()
    grad = sg.cross_entropy_grad(z, y, reduction="sum")
    np.testing.assert_allclose(grad, 3 * p - y, rtol=1e-14)
    assert not np.allclose(grad, p - y)


def central_differences(f, z, h=1e-6):
    out = np.empty(z.shape)
    for idx in np.ndindex(z.shape):
        step = np.zeros_like(z)
        step[idx] = h
        out[idx] = (f(z + step) - f(z - step)) / (2 * h)
    return out


@given(ce_case(dtypes=(np.float64,)))
def test_gradient_agrees_with_finite_differences_of_reference_loss(case):
    z, target, y, axis, reduction, eps = case
    if reduction == "none" or np.abs(z).max() > 1e3:
        reduction = "sum"  # a scalar loss; moderate logits for a clean difference quotient
        z = (z - np.mean(z)) % 7.0
    ys = smoothed(y, eps, axis)
    fd = central_differences(lambda x: float(ref_loss(x, ys, axis, reduction)), z)
    grad = sg.cross_entropy_grad(z, target, axis=axis, reduction=reduction, label_smoothing=eps)
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-7 * (1 + ys.sum()))


def test_reductions_relate():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(6, 4))
    labels = rng.integers(0, 4, size=6)
    rows = sg.cross_entropy(z, labels, reduction="none")
    assert rows.shape == (6,)
    assert sg.cross_entropy(z, labels, reduction="sum") == pytest.approx(rows.sum(), rel=1e-14)
    assert sg.cross_entropy(z, labels) == pytest.approx(rows.mean(), rel=1e-14)
    g_sum = sg.cross_entropy_grad(z, labels, reduction="sum")
    np.testing.assert_allclose(sg.cross_entropy_grad(z, labels), g_sum / 6, rtol=1e-15)
    np.testing.assert_allclose(
        sg.cross_entropy_grad(z, labels, reduction="none"), g_sum, rtol=1e-15
    )


def test_worked_example():
    # z = [0, ln 3]: p = [1/4, 3/4]; label 1 -> loss = -ln(3/4), grad = [1/4, -1/4]
    z = np.array([0.0, np.log(3.0)])
    assert sg.cross_entropy(z, 1) == pytest.approx(-np.log(0.75), rel=1e-15)
    np.testing.assert_allclose(sg.cross_entropy_grad(z, 1), [0.25, -0.25], rtol=1e-15)
    # smoothing 0.2 over 2 classes: y' = [0.1, 0.9]
    assert sg.cross_entropy(z, 1, label_smoothing=0.2) == pytest.approx(
        -(0.1 * np.log(0.25) + 0.9 * np.log(0.75)), rel=1e-15
    )
    np.testing.assert_allclose(
        sg.cross_entropy_grad(z, 1, label_smoothing=0.2), [0.15, -0.15], rtol=1e-14
    )


def test_full_smoothing_is_cross_entropy_with_the_uniform_distribution():
    z = np.array([[2.0, 0.0, -1.0, 0.5]])
    uniform = np.full((1, 4), 0.25)
    assert sg.cross_entropy(z, np.array([2]), label_smoothing=1.0) == pytest.approx(
        sg.cross_entropy(z, uniform), rel=1e-15
    )


def test_masked_target_gives_infinite_loss_never_nan():
    z = np.array([[0.0, -np.inf, 1.0], [0.0, 1.0, 2.0]])
    labels = np.array([1, 0])
    rows = sg.cross_entropy(z, labels, reduction="none")
    assert rows[0] == np.inf
    assert np.isfinite(rows[1])
    assert sg.cross_entropy(z, labels) == np.inf
    loss, grad = sg.cross_entropy_with_grad(z, labels)
    assert loss == np.inf
    assert not np.isnan(grad).any()
    # smoothing puts weight on the masked class too: still inf, not NaN
    assert sg.cross_entropy(z, labels, label_smoothing=0.1) == np.inf
    # weights: zero weight on a masked class contributes 0, positive weight gives inf
    assert np.isfinite(sg.cross_entropy(z[:1], np.array([[0.5, 0.0, 0.5]])))
    assert sg.cross_entropy(z[:1], np.array([[0.5, 0.5, 0.0]])) == np.inf
    assert sg.cross_entropy(z[:1], np.array([[0.0, 1.0, 0.0]]), label_smoothing=1.0) == np.inf


def test_masked_non_target_class_is_ignored():
    z = np.array([0.0, -np.inf, np.log(3.0)])
    assert sg.cross_entropy(z, 2) == pytest.approx(-np.log(0.75), rel=1e-15)
    np.testing.assert_allclose(sg.cross_entropy_grad(z, 2), [0.25, 0.0, -0.25], rtol=1e-15)


def test_one_dimensional_logits_and_scalar_label():
    loss, grad = sg.cross_entropy_with_grad([1.0, 2.0, 3.0], 2, reduction="none")
    assert np.ndim(loss) == 0
    assert grad.shape == (3,)


def test_float16_and_integer_logits():
    z16 = np.array([[1.0, 2.0, 0.5]], dtype=np.float16)
    loss, grad = sg.cross_entropy_with_grad(z16, np.array([1]))
    assert np.asarray(loss).dtype == np.float16
    assert grad.dtype == np.float16
    ref = float(ref_loss(z16.astype(np.float64), one_hot([1], 3, -1), -1, "mean"))
    assert float(loss) == pytest.approx(ref, rel=1e-3)
    loss_int = sg.cross_entropy(np.array([[1, 2, 0]]), np.array([1]))
    assert np.asarray(loss_int).dtype == np.float64


def test_large_batches_in_several_blocks_match_row_by_row():
    rng = np.random.default_rng(5)
    z = rng.normal(scale=4, size=(700, 600))
    assert z.nbytes > 3 * sys.modules["softgrad._rows"].BLOCK_BYTES
    labels = rng.integers(0, 600, size=700)
    loss, grad = sg.cross_entropy_with_grad(z, labels, reduction="none")
    for i in (0, 99, 199, 699):
        li, gi = sg.cross_entropy_with_grad(z[i], labels[i], reduction="none")
        assert loss[i] == li
        np.testing.assert_array_equal(grad[i], gi)


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_small_and_large_batches_give_bitwise_identical_rows(eps):
    rng = np.random.default_rng(12)
    z = rng.normal(scale=4, size=(30000, 9))
    assert z.nbytes > 1 << 19  # beyond one block: the row-block loop
    labels = rng.integers(0, 9, size=30000)
    kw = {"reduction": "none", "label_smoothing": eps}
    loss, grad = sg.cross_entropy_with_grad(z, labels, **kw)
    small_loss, small_grad = sg.cross_entropy_with_grad(z[:4].copy(), labels[:4], **kw)
    np.testing.assert_array_equal(small_loss, loss[:4])
    np.testing.assert_array_equal(small_grad, grad[:4])


@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("hits", [(), (0, 2), (0, 1, 2, 3)])
def test_small_batches_with_labels_at_the_arg_max_match_the_block_loop(eps, hits):
    """The small-input path treats a label at the row's arg-max (p_k - 1, computed without
    cancellation) exactly as the block loop does, whether no, some or all rows have one."""
    rng = np.random.default_rng(13)
    z = rng.normal(scale=4, size=(30000, 9))
    assert z.nbytes > 1 << 19  # beyond one block: the row-block loop
    z[:4, 0] = 30.0  # a confident arg-max at class 0 in the first rows
    labels = rng.integers(1, 9, size=30000)
    labels[list(hits)] = 0
    for reduction in ("none", "sum"):
        kw = {"reduction": reduction, "label_smoothing": eps}
        loss, grad = sg.cross_entropy_with_grad(z[:4].copy(), labels[:4], **kw)
        big_loss, big_grad = sg.cross_entropy_with_grad(z, labels, **kw)
        np.testing.assert_array_equal(grad, big_grad[:4])
        if reduction == "none":
            np.testing.assert_array_equal(loss, big_loss[:4])
    for r in hits if eps == 0 else ():  # target entry -sum_{j != k} p_j: tiny but not 0
        assert -1e-6 < grad[r, 0] < 0


# ---------------------------------------------------------------- out= for the gradient


def _targets(z, kind):
    rng = np.random.default_rng(11)
    if kind == "labels":
        return rng.integers(0, z.shape[-1], size=z.shape[:-1])
    return rng.random(z.shape).astype(z.dtype)


@pytest.mark.parametrize("shape", [(3, 5), (700, 600)])  # the short path, and row blocks
@pytest.mark.parametrize("kind", ["labels", "weights"])
@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gradient_out_argument_is_written_and_returned(shape, kind, eps, dtype):
    z = np.random.default_rng(2).normal(scale=3, size=shape).astype(dtype)
    target = _targets(z, kind)
    loss, expected = sg.cross_entropy_with_grad(z, target, label_smoothing=eps)
    out = np.full_like(z, np.nan)
    loss2, grad = sg.cross_entropy_with_grad(z, target, label_smoothing=eps, out=out)
    assert grad is out
    assert loss2 == loss
    np.testing.assert_array_equal(out, expected)
    out = np.full_like(z, np.nan)
    assert sg.cross_entropy_grad(z, target, label_smoothing=eps, out=out) is out
    np.testing.assert_array_equal(out, expected)
    # in place over the logits
    w = z.copy()
    assert sg.cross_entropy_grad(w, target, label_smoothing=eps, out=w) is w
    np.testing.assert_array_equal(w, expected)


def test_gradient_out_along_another_axis():
    z = np.random.default_rng(4).normal(size=(5, 3))
    labels = np.array([0, 2, 1])
    out = np.empty_like(z)
    assert sg.cross_entropy_grad(z, labels, axis=0, out=out) is out
    np.testing.assert_array_equal(out, sg.cross_entropy_grad(z.T.copy(), labels).T)


def test_gradient_out_of_the_wrong_shape_or_dtype_is_named():
    z = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"out has shape \(3, 2\), expected \(2, 3\)"):
        sg.cross_entropy_grad(z, np.array([0, 1]), out=np.empty((3, 2)))
    with pytest.raises(TypeError, match=r"out has dtype float32, expected float64"):
        sg.cross_entropy_with_grad(z, np.array([0, 1]), out=np.empty((2, 3), np.float32))
    with pytest.raises(TypeError, match=r"out must be a numpy array, got list"):
        sg.cross_entropy_grad(z, np.array([0, 1]), out=[[0.0] * 3] * 2)
