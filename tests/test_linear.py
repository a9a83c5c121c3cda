"""linear_cross_entropy: the loss and gradients of cross_entropy(h @ W.T + b) without the
(N, V) logits, checked against the unchunked computation written here with plain numpy and
against finite differences."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import softgrad as sg


def problem(N=37, d=5, V=23, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    h = rng.normal(size=(N, d)).astype(dtype)
    W = rng.normal(size=(V, d)).astype(dtype)
    b = rng.normal(size=V).astype(dtype)
    labels = rng.integers(0, V, size=N)
    return h, W, b, labels


def reference(h, W, b, labels, reduction="mean", ls=0.0):
    """The obvious computation, from the definitions: all the logits, then the chain rule."""
    z = h.astype(np.float64) @ W.T.astype(np.float64) + (0.0 if b is None else b)
    N, V = z.shape
    zmax = z.max(axis=1, keepdims=True)
    logp = z - zmax - np.log(np.exp(z - zmax).sum(axis=1, keepdims=True))
    y = np.full((N, V), ls / V)
    y[np.arange(N), labels] += 1.0 - ls
    rows = -(y * logp).sum(axis=1)
    G = np.exp(logp) - y  # dL_i/dz_i
    if reduction == "mean":
        G /= N
    loss = rows.mean() if reduction == "mean" else rows.sum() if reduction == "sum" else rows
    return loss, G @ W, G.T @ h, G.sum(axis=0)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ls", [0.0, 0.1])
@pytest.mark.parametrize("chunk", [None, 1, 5, 36, 37, 100])
@pytest.mark.parametrize("with_bias", [True, False])
def test_matches_the_unchunked_computation(reduction, ls, chunk, with_bias):
    h, W, b, labels = problem()
    b = b if with_bias else None
    loss, dh, dW, db = sg.linear_cross_entropy_with_grad(
        h, W, labels, bias=b, reduction=reduction, label_smoothing=ls, chunk_size=chunk
    )
    r_loss, r_dh, r_dW, r_db = reference(h, W, b, labels, reduction, ls)
    np.testing.assert_allclose(loss, r_loss, rtol=1e-13)
    np.testing.assert_allclose(dh, r_dh, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dW, r_dW, rtol=1e-12, atol=1e-15)
    if with_bias:
        np.testing.assert_allclose(db, r_db, rtol=1e-12, atol=1e-15)
    else:
        assert db is None
    only = sg.linear_cross_entropy(
        h, W, labels, bias=b, reduction=reduction, label_smoothing=ls, chunk_size=chunk
    )
    np.testing.assert_allclose(only, r_loss, rtol=1e-13)


def test_equals_softgrads_cross_entropy_on_the_full_logits_to_a_few_ulps():
    h, W, b, labels = problem(N=300, V=700, d=16)
    z = h @ W.T + b
    want = sg.cross_entropy(z, labels, reduction="none")
    got = sg.linear_cross_entropy(h, W, labels, bias=b, reduction="none", chunk_size=64)
    np.testing.assert_array_equal(got, want)  # the same rows of logits, the same kernel
    G = sg.cross_entropy_grad(z, labels)
    _, dh, dW, db = sg.linear_cross_entropy_with_grad(h, W, labels, bias=b, chunk_size=64)
    np.testing.assert_allclose(dh, G @ W, rtol=1e-13, atol=1e-17)
    np.testing.assert_allclose(dW, G.T @ h, rtol=1e-12, atol=1e-17)
    np.testing.assert_allclose(db, G.sum(axis=0), rtol=1e-12, atol=1e-17)


def test_gradients_agree_with_finite_differences():
    h, W, b, labels = problem(N=6, d=3, V=7)
    _, dh, dW, db = sg.linear_cross_entropy_with_grad(h, W, labels, bias=b, chunk_size=4)
    loss_h = lambda x: sg.linear_cross_entropy(x, W, labels, bias=b, chunk_size=4)
    loss_W = lambda x: sg.linear_cross_entropy(h, x, labels, bias=b, chunk_size=4)
    loss_b = lambda x: sg.linear_cross_entropy(h, W, labels, bias=x, chunk_size=4)
    assert sg.gradcheck(loss_h, h, grad=dh).ok
    assert sg.gradcheck(loss_W, W, grad=dW).ok
    assert sg.gradcheck(loss_b, b, grad=db).ok


def test_float32_stays_float32_and_close_to_float64():
    h, W, b, labels = problem(dtype=np.float32)
    loss, dh, dW, db = sg.linear_cross_entropy_with_grad(h, W, labels, bias=b, chunk_size=8)
    assert {loss.dtype, dh.dtype, dW.dtype, db.dtype} == {np.dtype(np.float32)}
    r_loss, r_dh, r_dW, _ = reference(h, W, b, labels)
    np.testing.assert_allclose(loss, r_loss, rtol=1e-5)
    np.testing.assert_allclose(dh, r_dh, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(dW, r_dW, rtol=1e-4, atol=1e-6)


def test_peak_memory_grows_with_the_chunk_not_with_N_times_V():
    """numpy's allocations (tracemalloc): the logits of all rows would be N * V * 8 bytes."""
    h, W, b, labels = problem(N=2000, d=8, V=3000)
    full = 2000 * 3000 * 8
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        sg.linear_cross_entropy_with_grad(h, W, labels, bias=b, chunk_size=100)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    outputs = h.nbytes + W.nbytes + b.nbytes
    chunk = 100 * 3000 * 8
    assert peak - outputs < 6 * chunk, (peak, outputs, chunk)
    assert peak - outputs < full / 3


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"h": np.zeros((3, 4, 1))}, ValueError, r"^h must have 2 dimensions"),
        ({"W": np.zeros((5, 3))}, ValueError, r"^W has shape \(5, 3\): expected \(V, 4\)"),
        ({"bias": np.zeros(4)}, ValueError, r"^bias has shape \(4,\), expected \(5,\)"),
        ({"labels": np.array([0, 5, 1])}, ValueError, r"row \(1,\) has class index 5, out of"),
        ({"labels": np.array([0, -1, 1])}, ValueError, r"row \(1,\) has class index -1"),
        ({"labels": np.array([0.0, 1, 1])}, TypeError, r"^labels must be integers"),
        ({"labels": np.array([0, 1])}, ValueError, r"^labels has shape \(2,\), expected \(3,\)"),
        ({"chunk_size": 0}, ValueError, r"^chunk_size must be a positive integer"),
        ({"h": np.zeros((3, 4), dtype=complex)}, TypeError, r"^h: complex input"),
        ({"reduction": "avg"}, ValueError, r"^reduction must be one of"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, words):
    args = {"h": np.zeros((3, 4)), "W": np.zeros((5, 4)), "labels": np.array([0, 1, 2])}
    args.update(kwargs)
    h, W, labels = args.pop("h"), args.pop("W"), args.pop("labels")
    with pytest.raises(error, match=words):
        sg.linear_cross_entropy_with_grad(h, W, labels, **args)


@pytest.mark.parametrize(("name", "row"), [("h", 2), ("W", 4), ("bias", 3)])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_inputs_are_named_by_argument_and_row(name, row, value):
    h, W, b, labels = problem(N=5, d=3, V=6)
    arrays = {"h": h, "W": W, "bias": b}
    if name == "bias":
        arrays[name][row] = value
    else:
        arrays[name][row, 1] = value
    what = "entry" if name == "bias" else "row"
    with pytest.raises(ValueError, match=rf"^{name}: {what} \({row},\) contains NaN or inf"):
        sg.linear_cross_entropy(h, W, labels, bias=b)
