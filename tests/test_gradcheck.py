"""numerical_jacobian against closed forms; gradcheck passes right derivatives and catches wrong ones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import softgrad as sg


def test_numerical_jacobian_of_a_linear_map_is_the_matrix():
    A = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, 4.0]])
    J = sg.numerical_jacobian(lambda x: A @ x, np.array([0.3, -1.0, 2.0]))
    assert J.shape == (2, 3)
    np.testing.assert_allclose(J, A, rtol=1e-10, atol=1e-10)


def test_numerical_jacobian_shapes_follow_f_and_x():
    x = np.arange(6.0).reshape(2, 3)
    assert sg.numerical_jacobian(lambda x: x.sum(), x).shape == (2, 3)
    assert sg.numerical_jacobian(lambda x: x * 2, x).shape == (2, 3, 2, 3)
    assert sg.numerical_jacobian(lambda x: x[0], x).shape == (3, 2, 3)


@given(hnp.arrays(np.float64, st.integers(1, 5), elements=st.floats(-1e3, 1e3)))
def test_numerical_jacobian_of_a_cubic_matches_the_closed_form(x):
    J = sg.numerical_jacobian(lambda x: (x**3).sum(), x)
    # rounding in f(x +- h) is about eps * |f| / h: scale atol with the size of f
    np.testing.assert_allclose(J, 3 * x**2, rtol=1e-8, atol=1e-9 * (1 + (np.abs(x) ** 3).sum()))


def test_numerical_jacobian_leaves_x_alone_and_accepts_integers():
    x = np.array([1.0, 2.0])
    before = x.copy()
    sg.numerical_jacobian(lambda v: v * v, x)
    np.testing.assert_array_equal(x, before)
    J = sg.numerical_jacobian(lambda v: v * v, np.array([1, 2]))
    assert J.dtype == np.float64
    np.testing.assert_allclose(J, np.diag([2.0, 4.0]), rtol=1e-9, atol=1e-9)


def test_numerical_jacobian_step_scales_with_x():
    # at |x| ~ 1e8 a fixed step of 1e-6 would be lost to rounding; the scaled step is not
    x = np.array([1e8, -3e8])
    J = sg.numerical_jacobian(lambda v: (v**2).sum(), x)
    np.testing.assert_allclose(J, 2 * x, rtol=1e-8)


def test_numerical_jacobian_float32():
    x = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    J = sg.numerical_jacobian(sg.softmax, x)
    p = np.exp(x.astype(np.float64)) / np.exp(x.astype(np.float64)).sum()
    np.testing.assert_allclose(J, np.diag(p) - np.outer(p, p), atol=1e-3)


# ---------------------------------------------------------------- gradcheck


def test_gradcheck_passes_the_softmax_derivatives():
    z = np.array([[0.2, -1.0, 3.0], [1.0, 1.0, -0.5]])
    assert sg.gradcheck(sg.softmax, z, jacobian=lambda x: _block_jacobian(x)).ok
    assert sg.gradcheck(sg.softmax, z, vjp=lambda x, g: sg.softmax_vjp(sg.softmax(x), g)).ok
    labels = np.array([2, 0])
    result = sg.gradcheck(
        lambda x: sg.cross_entropy(x, labels),
        z,
        grad=lambda x: sg.cross_entropy_grad(x, labels),
    )
    assert result.ok
    assert result.max_rel_error < 1e-7
    assert bool(result) is True


def _block_jacobian(z):
    """Jacobian of row-wise softmax over a batch, shape z.shape + z.shape (rows don't interact)."""
    N, n = z.shape
    J = np.zeros((N, n, N, n))
    per_row = sg.softmax_jacobian(z)
    for i in range(N):
        J[i, :, i, :] = per_row[i]
    return J


def test_gradcheck_catches_the_forgotten_sum_of_weights():
    """The seed question's mistake: using p - y as the gradient when y does not sum to 1."""
    z = np.array([0.3, -1.2, 2.0])
    y = np.array([0.5, 1.5, 1.0])
    wrong = sg.gradcheck(
        lambda x: sg.cross_entropy(x, y, reduction="sum"),
        z,
        grad=lambda x: sg.softmax(x) - y,
    )
    assert not wrong.ok
    assert wrong.max_rel_error > 0.1
    right = sg.gradcheck(
        lambda x: sg.cross_entropy(x, y, reduction="sum"),
        z,
        grad=lambda x: sg.softmax(x) * y.sum() - y,
    )
    assert right.ok


def test_gradcheck_reports_the_worst_entry():
    x = np.array([1.0, 2.0, 3.0])

    def bad_grad(v):
        g = 2 * v
        g[1] += 0.5  # one wrong entry
        return g

    result = sg.gradcheck(lambda v: (v**2).sum(), x, grad=bad_grad)
    assert not result.ok
    assert result.worst_index == (1,)
    assert result.worst_analytic == pytest.approx(4.5)
    assert result.worst_numeric == pytest.approx(4.0, rel=1e-8)
    assert result.max_rel_error == pytest.approx(0.5 / 4.5, rel=1e-6)
    text = str(result)
    assert "FAILED" in text
    assert "(1,)" in text
    assert "4.5" in text
    assert "GradcheckResult(ok=False" in repr(result)
    assert result.analytic.shape == result.numeric.shape == x.shape


def test_gradcheck_raises_only_when_asked():
    f = lambda v: (v**2).sum()
    x = np.array([1.0, 2.0])
    sg.gradcheck(f, x, grad=lambda v: v)  # no exception
    with pytest.raises(AssertionError, match="gradcheck FAILED"):
        sg.gradcheck(f, x, grad=lambda v: v, raise_on_fail=True)
    sg.gradcheck(f, x, grad=lambda v: 2 * v, raise_on_fail=True)  # passes quietly


def test_gradcheck_vjp_mode_catches_a_transposed_jacobian():
    A = np.array([[1.0, 2.0], [0.0, 3.0], [-1.0, 1.0]])
    f = lambda x: A @ x
    x = np.array([0.5, -0.25])
    assert sg.gradcheck(f, x, vjp=lambda x, g: g @ A).ok
    assert sg.gradcheck(f, x, jacobian=A).ok
    assert not sg.gradcheck(f, x, jacobian=A[:, ::-1]).ok


@pytest.mark.parametrize("mode", ["grad", "jacobian", "vjp"])
def test_random_direction_mode(mode):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(40, 30))
    labels = rng.integers(0, 30, size=40)
    if mode == "grad":
        f = lambda x: sg.cross_entropy(x, labels)
        right = {"grad": lambda x: sg.cross_entropy_grad(x, labels)}
        wrong = {"grad": lambda x: sg.cross_entropy_grad(x, labels) * 1.01}
    elif mode == "jacobian":
        z = z[:4, :6]
        f = sg.softmax
        right = {"jacobian": _block_jacobian}
        wrong = {"jacobian": lambda x: _block_jacobian(x).transpose(2, 3, 0, 1) + 0.01}
    else:
        f = sg.softmax
        right = {"vjp": lambda x, g: sg.softmax_vjp(sg.softmax(x), g)}
        wrong = {"vjp": lambda x, g: sg.softmax(x) * g}  # forgot the <g, p> term
    ok = sg.gradcheck(f, z, n_directions=4, **right)
    assert ok.ok, ok
    assert ok.analytic.shape == (4,)
    assert "random directions" in ok.mode
    assert not sg.gradcheck(f, z, n_directions=4, **wrong).ok


def test_report_counts_directions_in_random_direction_mode():
    f = lambda x: (x**2).sum()
    directions = sg.gradcheck(f, np.ones(50), grad=lambda x: 2 * x, n_directions=3)
    assert "(grad (random directions), 3 directions compared," in str(directions)
    assert "entries" not in str(directions)
    full = sg.gradcheck(f, np.ones(5), grad=lambda x: 2 * x)
    assert "(grad, 5 entries compared," in str(full)


def test_large_inputs_default_to_random_directions():
    z = np.random.default_rng(1).normal(size=(3, 600))
    result = sg.gradcheck(sg.softmax, z, vjp=lambda x, g: sg.softmax_vjp(sg.softmax(x), g))
    assert result.ok
    assert "random directions" in result.mode


def test_gradcheck_float32_uses_looser_default_tolerances():
    z = np.array([0.1, 0.7, -0.3], dtype=np.float32)
    result = sg.gradcheck(sg.softmax, z, vjp=lambda x, g: sg.softmax_vjp(sg.softmax(x), g))
    assert result.ok
    assert result.rtol > 1e-6


def test_the_same_infinity_on_both_sides_agrees_and_only_that():
    """An analytic and a numeric entry that are the same infinity agree; any other infinity,
    or a NaN, is a failed entry (reported, never a warning)."""
    step_up = lambda x: np.where(x > 0, np.inf, 0.0).sum()
    x = np.array([0.0, -2.0])
    same = sg.gradcheck(step_up, x, grad=np.array([np.inf, 0.0]))
    assert same.ok, same
    assert same.numeric[0] == np.inf
    opposite = sg.gradcheck(step_up, x, grad=np.array([-np.inf, 0.0]))
    assert not opposite.ok
    assert opposite.worst_index == (0,)
    finite = sg.gradcheck(step_up, x, grad=np.array([1e300, 0.0]))
    assert not finite.ok
    nan = sg.gradcheck(step_up, x, grad=np.array([np.nan, 0.0]))
    assert not nan.ok
    assert nan.max_rel_error == np.inf


def test_all_three_modes_are_one_vector_jacobian_product():
    """grad, jacobian and vjp give the same comparison, entry by entry and along directions."""
    z = np.array([0.3, -1.2, 2.0, 0.5])
    f = lambda x: sg.log_softmax(x)[2]
    grad = lambda x: np.eye(4)[2] - sg.softmax(x)
    jac = lambda x: (np.eye(4)[2] - sg.softmax(x))[None, :].reshape(4)
    by_grad = sg.gradcheck(f, z, grad=grad)
    by_vjp = sg.gradcheck(f, z, vjp=lambda x, g: g * grad(x))
    by_jac = sg.gradcheck(f, z, jacobian=jac)
    for r in (by_grad, by_vjp, by_jac):
        assert r.ok
    np.testing.assert_array_equal(by_vjp.analytic.reshape(4), by_grad.analytic)
    np.testing.assert_array_equal(by_jac.analytic.reshape(4), by_grad.analytic)
    d_grad = sg.gradcheck(f, z, grad=grad, n_directions=5)
    d_vjp = sg.gradcheck(f, z, vjp=lambda x, g: g * grad(x), n_directions=5)
    np.testing.assert_allclose(d_grad.analytic, d_vjp.analytic, rtol=1e-15)
    np.testing.assert_array_equal(d_grad.numeric, d_vjp.numeric)
