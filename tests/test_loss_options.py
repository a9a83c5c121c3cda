"""cross_entropy's weight= and ignore_index=, with PyTorch's semantics (which are not the
obvious ones): checked against a plain-numpy reference written from the definitions, against
central differences of that reference, and against figures PyTorch 2.13 printed for one case.
"""

from __future__ import annotations

import numpy as np
import pytest

import softgrad as sg

Z = np.array(
    [
        [0.5, -1.0, 2.0, 0.3, -0.7],
        [1.5, 0.2, -0.3, 0.0, 0.9],
        [-2.0, 0.4, 0.1, 3.0, -1.0],
        [0.0, 0.0, 1.0, -1.0, 2.5],
    ]
)
LABELS = np.array([1, -100, 3, 4])
W = np.array([1.0, 2.0, 3.0, 0.5, 1.5])

# torch.nn.functional.cross_entropy(z, labels, weight=W, ignore_index=-100, ...), PyTorch 2.13
TORCH_LOSS = {
    (0.0, "mean"): 1.8590545315544622,
    (0.0, "sum"): 7.436218126217849,
    (0.2, "mean"): 2.070782475594498,
    (0.2, "sum"): 8.283129902377992,
}
TORCH_GRAD_ROW0 = {  # the gradient's first row, (0.0, "mean") and (0.2, "mean")
    0.0: [
        0.07326281918835745,
        -0.4836528554215763,
        0.3283411760186155,
        0.05998252312669993,
        0.02206633708790348,
    ],
    0.2: [
        0.06033230642082316,
        -0.4043067412047133,
        0.28520752897787094,
        0.05258322220163195,
        0.00618368360438734,
    ],
}


def log_softmax_rows(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def reference(z, target, weight=None, ignore_index=None, ls=0.0, reduction="mean"):
    """PyTorch's definition, written out: per-row NLL weighted by the label's class weight,
    plus ls / C times the class-weighted smoothing term; "mean" divides by the summed label
    weights of the counted rows (integer labels) or by N (probability targets)."""
    N, C = z.shape
    w = np.ones(C) if weight is None else np.asarray(weight, dtype=float)
    logp = log_softmax_rows(z)
    if target.ndim == 1:
        keep = np.ones(N, bool) if ignore_index is None else target != ignore_index
        y = np.where(keep, target, 0)
        nll = -w[y] * logp[np.arange(N), y] * keep
        smooth = -(logp * w).sum(axis=1) * keep
        rows = (1 - ls) * nll + ls / C * smooth
        divisor = (w[y] * keep).sum()
    else:
        yw = w * ((1 - ls) * target + ls / C)
        rows = -(yw * logp).sum(axis=1)
        divisor = N
    if reduction == "none":
        return rows
    return rows.sum() / divisor if reduction == "mean" else rows.sum()


def central_differences(f, z, h=1e-6):
    g = np.zeros_like(z)
    for i in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[i] += h
        zm[i] -= h
        g[i] = (f(zp) - f(zm)) / (2 * h)
    return g


@pytest.mark.parametrize(("ls", "reduction"), list(TORCH_LOSS))
def test_pytorchs_own_figures(ls, reduction):
    kw = {"weight": W, "ignore_index": -100, "label_smoothing": ls, "reduction": reduction}
    loss, grad = sg.cross_entropy_with_grad(Z, LABELS, **kw)
    assert loss == pytest.approx(TORCH_LOSS[ls, reduction], rel=1e-14)
    assert sg.cross_entropy(Z, LABELS, **kw) == pytest.approx(TORCH_LOSS[ls, reduction], rel=1e-14)
    assert (grad[1] == 0).all()  # the ignored row
    if reduction == "mean":
        np.testing.assert_allclose(grad[0], TORCH_GRAD_ROW0[ls], rtol=1e-13)


CASES = [
    {"weight": W},
    {"ignore_index": -100},
    {"weight": W, "ignore_index": -100},
    {"weight": W, "ignore_index": 1, "weight0": 1},  # a class index as ignore_index, weight 0
    {"weight": np.array([0.0, 2.0, 0.0, 1.0, 1.0])},  # zero weights
]


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("ls", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_integer_labels_match_the_definition_and_its_differences(case, ls, reduction):
    kw = dict(CASES[case])
    labels = LABELS.copy()
    if kw.pop("weight0", None):
        kw["weight"] = W.copy()
        kw["weight"][1] = 0.0
        labels = np.array([0, 1, 3, 1])
    elif "ignore_index" not in kw:
        labels = np.array([1, 0, 3, 4])
    want = reference(Z, labels, kw.get("weight"), kw.get("ignore_index"), ls, reduction)
    loss, grad = sg.cross_entropy_with_grad(
        Z, labels, label_smoothing=ls, reduction=reduction, **kw
    )
    np.testing.assert_allclose(loss, want, rtol=1e-13, atol=1e-15)
    total = lambda z: np.sum(
        reference(z, labels, kw.get("weight"), kw.get("ignore_index"), ls, reduction)
    )
    np.testing.assert_allclose(grad, central_differences(total, Z), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("ls", [0.0, 0.3])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_probability_targets_with_weights(ls, reduction):
    rng = np.random.default_rng(2)
    P = rng.dirichlet(np.ones(5), size=4)
    want = reference(Z, P, W, None, ls, reduction)
    loss, grad = sg.cross_entropy_with_grad(Z, P, weight=W, label_smoothing=ls, reduction=reduction)
    np.testing.assert_allclose(loss, want, rtol=1e-13)
    total = lambda z: np.sum(reference(z, P, W, None, ls, reduction))
    np.testing.assert_allclose(grad, central_differences(total, Z), rtol=1e-6, atol=1e-8)


def test_every_row_ignored_gives_nan_mean_and_zero_gradient_as_pytorch():
    labels = np.full(4, -100)
    loss, grad = sg.cross_entropy_with_grad(Z, labels, ignore_index=-100)
    assert np.isnan(loss)
    assert (grad == 0).all()
    assert sg.cross_entropy(Z, labels, ignore_index=-100, reduction="sum") == 0.0
    assert (sg.cross_entropy(Z, labels, ignore_index=-100, reduction="none") == 0).all()


def test_ignored_rows_and_weights_in_a_large_batch_across_blocks():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(2500, 300))
    labels = rng.integers(0, 300, size=2500)
    labels[::7] = -1
    w = rng.uniform(0.1, 2.0, size=300)
    loss, grad = sg.cross_entropy_with_grad(z, labels, weight=w, ignore_index=-1)
    assert loss == pytest.approx(reference(z, labels, w, -1), rel=1e-12)
    assert (grad[::7] == 0).all()
    one = sg.cross_entropy_grad(z[:3], labels[:3], weight=w, ignore_index=-1, reduction="sum")
    keep = labels != -1
    np.testing.assert_allclose(
        grad[:3] * (w[np.where(keep, labels, 0)] * keep).sum(), one, rtol=1e-12
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"weight": [1.0, -1.0, 1.0, 1.0, 1.0]}, ValueError, r"^weight: entry \(1,\) is negative"),
        ({"weight": [1.0, 1.0, np.nan, 1.0, 1.0]}, ValueError, r"^weight: entry \(2,\) is NaN"),
        ({"weight": [1.0, 1.0, 1.0, np.inf, 1.0]}, ValueError, r"^weight: entry \(3,\) is inf"),
        ({"weight": [1.0, 1.0]}, ValueError, r"^weight has shape \(2,\); expected \(5,\)"),
        ({"weight": [[1.0] * 5]}, ValueError, r"^weight has shape \(1, 5\)"),
        ({"ignore_index": 1.5}, TypeError, r"^ignore_index must be an integer"),
        ({"ignore_index": True}, TypeError, r"^ignore_index must be an integer"),
        ({"ignore_index": 2, "weight": W}, ValueError, r"^ignore_index 2 is also a class index"),
    ],
)
def test_bad_options_are_named(kwargs, error, words):
    with pytest.raises(error, match=words):
        sg.cross_entropy(Z, np.array([0, 1, 2, 3]), **kwargs)


def test_ignore_index_is_for_integer_labels_only():
    with pytest.raises(ValueError, match=r"^ignore_index applies to integer labels"):
        sg.cross_entropy(Z, np.full((4, 5), 0.2), ignore_index=-100)


def test_labels_other_than_ignore_index_are_still_range_checked():
    with pytest.raises(ValueError, match=r"row \(2,\) has class index 7, out of range"):
        sg.cross_entropy(Z, np.array([0, -100, 7, 1]), ignore_index=-100)
