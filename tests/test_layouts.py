"""A result never depends on how its input is laid out in memory.

Every public function gets the same numbers in C order, Fortran order, as a transposed view,
with negative or zero strides (a broadcast), in the other byte order and read-only, and must
return bitwise the result it returns for a C-contiguous, native copy -- at small sizes and at
sizes that span several row blocks and threads. (Seen before this test existed: the log-domain
functions were silently wrong on F-ordered arrays up to 512 KiB, and labels in big-endian byte
order raised an IndexError.)
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import softgrad as sg

LAYOUTS = ["C", "F", "transposed", "reversed", "strided", "broadcast", "swapped", "read-only"]


def relayout(a: np.ndarray, layout: str) -> np.ndarray:
    """``a``'s values (or, for "broadcast", its first row repeated) in another memory layout."""
    if layout == "C":
        return np.ascontiguousarray(a)
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "transposed":  # a view whose strides are those of a.T, reversed
        return np.ascontiguousarray(a.T).T
    if layout == "reversed":  # negative strides along every axis
        r = a[(slice(None, None, -1),) * a.ndim]
        return np.ascontiguousarray(r)[(slice(None, None, -1),) * a.ndim]
    if layout == "strided":  # every other element of a wider array
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
        wide[..., ::2] = a
        return wide[..., ::2]
    if layout == "broadcast":  # zero strides: one row seen N times
        return np.broadcast_to(a[(slice(0, 1),) * (a.ndim - 1)], a.shape)
    if layout == "swapped":  # non-native byte order
        return a.astype(a.dtype.newbyteorder("S"))
    if layout == "read-only":
        r = a.copy()
        r.flags.writeable = False
        return r
    raise AssertionError(layout)


def canonical(x):
    return np.array(x, copy=True, order="C", dtype=np.asarray(x).dtype.newbyteorder("="))


def same(got, want):
    """Bitwise equal (NaN and -inf included), same shape and dtype."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(
        canonical(got).reshape(-1).view(np.uint8), canonical(want).reshape(-1).view(np.uint8)
    )


def logits(rng, shape, dtype, dominant=False):
    z = rng.normal(scale=4.0, size=shape)
    if dominant:
        z[..., 0] += 60.0
    z = z.astype(dtype)
    z[(-1,) * (z.ndim - 1) + (1,)] = -np.inf  # a masked class (never a whole row: sides >= 2)
    return z


LOGIT_FUNCTIONS = {
    "softmax": lambda z, ax: sg.softmax(z, axis=ax),
    "softmax T=0.7": lambda z, ax: sg.softmax(z, axis=ax, temperature=0.7),
    "log_softmax": lambda z, ax: sg.log_softmax(z, axis=ax),
    "log_softmax T=3": lambda z, ax: sg.log_softmax(z, axis=ax, temperature=3.0),
    "logsumexp": lambda z, ax: sg.logsumexp(z, axis=ax),
    "logsumexp keepdims": lambda z, ax: sg.logsumexp(z, axis=ax, keepdims=True),
    "softmax_jacobian": lambda z, ax: sg.softmax_jacobian(z, axis=ax),
}


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(list(LOGIT_FUNCTIONS)),
    layout=st.sampled_from(LAYOUTS),
    dtype=st.sampled_from([np.float16, np.float32, np.float64]),
    shape=hnp.array_shapes(min_dims=2, max_dims=3, min_side=2, max_side=7),
    seed=st.integers(0, 2**16),
    dominant=st.booleans(),
    data=st.data(),
)
def test_logit_functions_ignore_layout(name, layout, dtype, shape, seed, dominant, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    z = relayout(logits(np.random.default_rng(seed), shape, dtype, dominant), layout)
    f = LOGIT_FUNCTIONS[name]
    same(f(z, axis), f(canonical(z), axis))


def loss_calls(z, target, axis, ls, reduction):
    kw = {"axis": axis, "label_smoothing": ls, "reduction": reduction}
    loss, grad = sg.cross_entropy_with_grad(z, target, **kw)
    return [sg.cross_entropy(z, target, **kw), sg.cross_entropy_grad(z, target, **kw), loss, grad]


@settings(max_examples=60, deadline=None)
@given(
    layout=st.sampled_from(LAYOUTS),
    target_layout=st.sampled_from(LAYOUTS),
    dtype=st.sampled_from([np.float16, np.float32, np.float64]),
    shape=hnp.array_shapes(min_dims=2, max_dims=3, min_side=2, max_side=7),
    seed=st.integers(0, 2**16),
    soft=st.booleans(),
    ls=st.sampled_from([0.0, 0.1, 1.0]),
    reduction=st.sampled_from(["mean", "sum", "none"]),
    label_dtype=st.sampled_from(["<i8", ">i8", "<u4", ">i2", "<u8"]),
)
def test_losses_ignore_layout_of_logits_and_target(
    layout, target_layout, dtype, shape, seed, soft, ls, reduction, label_dtype
):
    rng = np.random.default_rng(seed)
    z = logits(rng, shape, dtype)
    z[np.isinf(z)] = 0.0  # every class may carry target weight here
    if soft:
        target = rng.random(shape).astype(dtype)
    else:
        target = rng.integers(0, shape[-1], size=shape[:-1]).astype(label_dtype)
    z, target = relayout(z, layout), relayout(target, target_layout)
    for got, want in zip(
        loss_calls(z, target, -1, ls, reduction),
        loss_calls(canonical(z), canonical(target), -1, ls, reduction),
        strict=True,
    ):
        same(got, want)


@settings(max_examples=40, deadline=None)
@given(
    p_layout=st.sampled_from(LAYOUTS),
    g_layout=st.sampled_from(LAYOUTS),
    dtype=st.sampled_from([np.float16, np.float32, np.float64]),
    shape=hnp.array_shapes(min_dims=2, max_dims=3, min_side=2, max_side=7),
    seed=st.integers(0, 2**16),
)
def test_vjp_and_jvp_ignore_layout(p_layout, g_layout, dtype, shape, seed):
    rng = np.random.default_rng(seed)
    p = sg.softmax(logits(rng, shape, dtype))
    g = rng.normal(size=shape).astype(dtype)
    p2, g2 = relayout(p, p_layout), relayout(g, g_layout)
    for f in (sg.softmax_vjp, sg.softmax_jvp):
        same(f(p2, g2, axis=0), f(canonical(p2), canonical(g2), axis=0))
        same(f(p2, g2), f(canonical(p2), canonical(g2)))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_inputs_ignore_layout_across_blocks_and_threads(layout, dtype):
    """(400, 1500): several 1 MiB row blocks, and two threads where the machine has them."""
    rng = np.random.default_rng(7)
    z = logits(rng, (400, 1500), dtype, dominant=True)
    labels = rng.integers(0, 1500, size=400)
    labels[::3] = 0  # the dominant class, at the arg-max
    zl = relayout(z, layout)
    zc = canonical(zl)
    assert zc.nbytes > 2 * sg._rows.BLOCK_BYTES
    for f in (sg.softmax, sg.log_softmax, sg.logsumexp):
        same(f(zl), f(zc))
        same(f(zl, axis=0), f(zc, axis=0))
    for got, want in zip(
        loss_calls(zl, labels, -1, 0.0, "mean"),
        loss_calls(zc, labels, -1, 0.0, "mean"),
        strict=True,
    ):
        same(got, want)
    p = sg.softmax(zc)
    g = rng.normal(size=p.shape).astype(dtype)
    same(
        sg.softmax_vjp(relayout(p, layout), relayout(g, layout)),
        sg.softmax_vjp(p, canonical(relayout(g, layout))),
    )


@pytest.mark.parametrize("layout", LAYOUTS)
def test_gradcheck_and_numerical_jacobian_ignore_layout(layout):
    x = relayout(np.random.default_rng(1).normal(size=(3, 4)), layout)
    xc = canonical(x)
    same(sg.numerical_jacobian(sg.softmax, x), sg.numerical_jacobian(sg.softmax, xc))
    r1 = sg.gradcheck(
        sg.log_softmax, x, vjp=lambda z, g: g - sg.softmax(z) * g.sum(-1, keepdims=True)
    )
    r2 = sg.gradcheck(
        sg.log_softmax, xc, vjp=lambda z, g: g - sg.softmax(z) * g.sum(-1, keepdims=True)
    )
    assert r1.ok
    assert r2.ok
    same(r1.analytic, r2.analytic)
    same(r1.numeric, r2.numeric)


def test_the_reported_transposed_example():
    z = np.asfortranarray([[1.0, 2, 3], [0.5, -1, 2]])
    np.testing.assert_allclose(sg.log_softmax(z)[0], [-2.40760596, -1.40760596, -0.40760596])
    np.testing.assert_allclose(sg.logsumexp(z), [3.40760596, 2.24131130])
    _loss, grad = sg.cross_entropy_with_grad(z, np.array([2, 0]), reduction="sum")
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-15)  # the -1 at the label is there
    assert grad[0, 2] < 0
    assert grad[1, 0] < 0


def test_big_endian_labels_beyond_a_few_rows():
    z = np.zeros((40, 5))
    labels = (np.arange(40) % 5).astype(">i8")
    assert sg.cross_entropy(z, labels) == pytest.approx(np.log(5))
    with pytest.raises(
        ValueError, match=r"target: row \(39,\) has class index -1, which is negative"
    ):
        sg.cross_entropy(z, np.where(np.arange(40) == 39, -1, labels).astype(">i8"))
    huge = np.zeros(40, dtype=np.uint64)
    huge[7] = 2**63 + 1  # would wrap to a negative intp
    with pytest.raises(ValueError, match=r"row \(7,\) has class index 9223372036854775809, out of"):
        sg.cross_entropy(z, huge)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_cross_entropy_ignores_layout(layout, dtype):
    rng = np.random.default_rng(3)
    h = rng.normal(size=(40, 6)).astype(dtype)
    W = rng.normal(size=(30, 6)).astype(dtype)
    b = rng.normal(size=30).astype(dtype)
    labels = rng.integers(0, 30, size=40)
    hl, Wl, bl = relayout(h, layout), relayout(W, layout), relayout(b[None, :], layout)[0]
    got = sg.linear_cross_entropy_with_grad(hl, Wl, relayout(labels, layout), bias=bl, chunk_size=7)
    want = sg.linear_cross_entropy_with_grad(
        canonical(hl),
        canonical(Wl),
        canonical(relayout(labels, layout)),
        bias=canonical(bl),
        chunk_size=7,
    )
    for g, w in zip(got, want, strict=True):
        same(g, w)
