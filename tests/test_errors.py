"""Every bad input gets a ValueError or TypeError naming the argument and, where it applies, the row."""

from __future__ import annotations

import numpy as np
import pytest

import softgrad as sg

NAN, INF = np.nan, np.inf
GOOD = np.zeros((3, 4))
LABELS = np.array([0, 1, 2])


def z_nan_in_row_2():
    z = np.zeros((3, 4))
    z[2, 1] = NAN
    return z


def z_posinf_in_row_1():
    z = np.zeros((3, 4))
    z[1, 3] = INF
    return z


def z_all_neginf_row_0():
    z = np.zeros((3, 4))
    z[0] = -INF
    return z


LOGIT_FUNCTIONS = {
    "softmax": lambda z: sg.softmax(z),
    "log_softmax": lambda z: sg.log_softmax(z),
    "logsumexp": lambda z: sg.logsumexp(z),
    "softmax_jacobian": lambda z: sg.softmax_jacobian(z),
}
LOSS_FUNCTIONS = {
    "cross_entropy": sg.cross_entropy,
    "cross_entropy_grad": sg.cross_entropy_grad,
    "cross_entropy_with_grad": sg.cross_entropy_with_grad,
}

BAD_LOGITS = [
    (z_nan_in_row_2(), ValueError, r"row \(2,\) contains NaN"),
    (z_posinf_in_row_1(), ValueError, r"row \(1,\) contains \+inf"),
    (z_all_neginf_row_0(), ValueError, r"row \(0,\) is all -inf"),
    (np.zeros((0, 4)), ValueError, r"is empty"),
    (np.zeros((3, 0)), ValueError, r"class axis .* is empty"),
    (np.zeros(0), ValueError, r"class axis .* is empty"),
    (np.zeros((2, 3), dtype=complex), TypeError, r"complex input is not supported"),
    (np.array([[1.0, "a"]], dtype=object), TypeError, r"expected an array of real numbers"),
    (np.array(["a", "b"]), TypeError, r"expected an array of real numbers"),
    ([[1.0, 2.0], [3.0]], ValueError, r"could not be converted"),
]


@pytest.mark.parametrize("name", list(LOGIT_FUNCTIONS))
@pytest.mark.parametrize(("z", "error", "words"), BAD_LOGITS)
def test_bad_logits_softmax_family(name, z, error, words):
    with pytest.raises(error, match=r"^z\b.*" + words):
        LOGIT_FUNCTIONS[name](z)


@pytest.mark.parametrize("name", list(LOSS_FUNCTIONS))
@pytest.mark.parametrize(("z", "error", "words"), BAD_LOGITS[:3])
def test_bad_logits_losses_name_logits_and_row(name, z, error, words):
    with pytest.raises(error, match=r"^logits: " + words):
        LOSS_FUNCTIONS[name](z, LABELS)


@pytest.mark.parametrize("name", list(LOSS_FUNCTIONS))
@pytest.mark.parametrize(("z", "error", "words"), BAD_LOGITS[3:])
def test_bad_logits_losses_other(name, z, error, words):
    labels = np.zeros(z.shape[:-1], dtype=int) if isinstance(z, np.ndarray) else LABELS[:2]
    with pytest.raises(error, match=r"^logits\b.*" + words):
        LOSS_FUNCTIONS[name](z, labels)


def test_one_dimensional_input_names_no_row():
    with pytest.raises(ValueError, match=r"^z contains NaN"):
        sg.softmax([0.0, NAN])
    with pytest.raises(ValueError, match=r"^logits contains \+inf"):
        sg.cross_entropy([0.0, INF], 0)


def test_row_of_higher_batch_rank_and_other_axis():
    z = np.zeros((2, 3, 4))
    z[1, 2, 0] = NAN
    with pytest.raises(ValueError, match=r"row \(1, 2\) contains NaN"):
        sg.softmax(z)
    # along axis 1 the row is (batch index 1, position 0 on the last axis)
    with pytest.raises(ValueError, match=r"row \(1, 0\) contains NaN"):
        sg.softmax(z, axis=1)


def test_rows_beyond_the_first_block_are_located():
    z = np.zeros((5000, 20))
    z[4321, 7] = NAN
    with pytest.raises(ValueError, match=r"row \(4321,\) contains NaN"):
        sg.log_softmax(z)
    with pytest.raises(ValueError, match=r"row \(4321,\) contains NaN"):
        sg.cross_entropy(z, np.zeros(5000, dtype=int))


@pytest.mark.parametrize("axis", [2, -3, 5])
def test_axis_out_of_range(axis):
    with pytest.raises(ValueError, match=rf"axis {axis} is out of range for z with 2 dimensions"):
        sg.softmax(GOOD, axis=axis)
    with pytest.raises(ValueError, match=rf"axis {axis} is out of range for logits"):
        sg.cross_entropy(GOOD, LABELS, axis=axis)
    with pytest.raises(ValueError, match=rf"axis {axis} is out of range for p"):
        sg.softmax_vjp(GOOD, GOOD, axis=axis)


@pytest.mark.parametrize("axis", [1.0, "0", None, True])
def test_axis_not_an_integer(axis):
    with pytest.raises(TypeError, match=r"axis must be an integer"):
        sg.softmax(GOOD, axis=axis)


def test_scalar_logits_have_no_class_axis():
    with pytest.raises(ValueError, match=r"axis -1 is out of range for z with 0 dimensions"):
        sg.softmax(3.0)


@pytest.mark.parametrize("temperature", [0, -1.0, np.inf, np.nan])
def test_temperature_must_be_positive(temperature):
    for f in (sg.softmax, sg.log_softmax):
        with pytest.raises(ValueError, match=r"temperature must be a finite number > 0"):
            f(GOOD, temperature=temperature)


@pytest.mark.parametrize("temperature", ["1", None, 1j])
def test_temperature_must_be_a_number(temperature):
    with pytest.raises(TypeError, match=r"temperature must be a real number"):
        sg.softmax(GOOD, temperature=temperature)


@pytest.mark.parametrize(
    ("target", "error", "words"),
    [
        (np.array([0, 1]), ValueError, r"target has shape \(2,\); expected \(3,\)"),
        (np.array([[0, 1, 2]]), ValueError, r"target has shape \(1, 3\)"),
        (np.zeros((3, 5)), ValueError, r"target has shape \(3, 5\)"),
        (
            np.array([0, 4, 1]),
            ValueError,
            r"target: row \(1,\) has class index 4, out of range for 4 classes",
        ),
        (
            np.array([0, 1, -1]),
            ValueError,
            r"target: row \(2,\) has class index -1, which is negative",
        ),
        (np.array([0.0, 1.0, 2.0]), TypeError, r"target: class labels must be integers"),
        (np.array([0, 1, 2], dtype=complex), TypeError, r"target: expected integer labels or real"),
        (np.array(["a", "b", "c"]), TypeError, r"target: expected integer labels or real"),
    ],
)
def test_bad_integer_targets(target, error, words):
    for f in LOSS_FUNCTIONS.values():
        with pytest.raises(error, match=words):
            f(GOOD, target)


def weights_with(row, col, value):
    y = np.full((3, 4), 0.25)
    y[row, col] = value
    return y


@pytest.mark.parametrize(
    ("target", "words"),
    [
        (weights_with(1, 2, -0.5), r"target: row \(1,\) has a negative class weight"),
        (weights_with(2, 0, NAN), r"target: row \(2,\) contains NaN"),
        (weights_with(0, 3, INF), r"target: row \(0,\) contains inf"),
    ],
)
def test_bad_probability_targets(target, words):
    for f in LOSS_FUNCTIONS.values():
        with pytest.raises(ValueError, match=words):
            f(GOOD, target)


@pytest.mark.parametrize("eps", [-0.1, 1.5, np.nan])
def test_label_smoothing_out_of_range(eps):
    for f in LOSS_FUNCTIONS.values():
        with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\]"):
            f(GOOD, LABELS, label_smoothing=eps)


def test_label_smoothing_not_a_number():
    with pytest.raises(TypeError, match=r"label_smoothing must be a real number"):
        sg.cross_entropy(GOOD, LABELS, label_smoothing="0.1")


@pytest.mark.parametrize("reduction", ["avg", None, "Mean"])
def test_bad_reduction(reduction):
    with pytest.raises(ValueError, match=r"reduction must be one of 'mean', 'sum', 'none'"):
        sg.cross_entropy(GOOD, LABELS, reduction=reduction)


def test_vjp_inputs():
    p = np.full((3, 4), 0.25)
    with pytest.raises(ValueError, match=r"g has shape \(3, 3\), but p has shape \(3, 4\)"):
        sg.softmax_vjp(p, np.zeros((3, 3)))
    g = np.zeros((3, 4))
    g[1, 1] = NAN
    with pytest.raises(ValueError, match=r"p/g: row \(1,\) contains NaN or inf"):
        sg.softmax_vjp(p, g)
    with pytest.raises(ValueError, match=r"p/v: row \(1,\) contains NaN or inf"):
        sg.softmax_jvp(p, g)
    with pytest.raises(TypeError, match=r"^p: complex input"):
        sg.softmax_vjp(p.astype(complex), g)
    with pytest.raises(ValueError, match=r"^p is empty"):
        sg.softmax_vjp(np.zeros((0, 4)), np.zeros((0, 4)))


def test_gradcheck_arguments():
    f = lambda x: (x**2).sum()
    x = np.ones(3)
    with pytest.raises(TypeError, match=r"exactly one of grad, jacobian, vjp"):
        sg.gradcheck(f, x)
    with pytest.raises(TypeError, match=r"exactly one of grad, jacobian, vjp"):
        sg.gradcheck(f, x, grad=lambda x: 2 * x, vjp=lambda x, g: g * 2 * x)
    with pytest.raises(ValueError, match=r"grad needs a scalar f"):
        sg.gradcheck(lambda x: x**2, x, grad=lambda x: 2 * x)
    with pytest.raises(ValueError, match=r"analytic jacobian has shape \(2,\), expected \(3,\)"):
        sg.gradcheck(f, x, jacobian=np.zeros(2))
    with pytest.raises(ValueError, match=r"n_directions must be >= 1"):
        sg.gradcheck(f, x, grad=lambda x: 2 * x, n_directions=0)
    with pytest.raises(ValueError, match=r"^x contains NaN or inf"):
        sg.numerical_jacobian(f, np.array([1.0, NAN]))
    with pytest.raises(TypeError, match=r"^x: complex input"):
        sg.numerical_jacobian(f, np.array([1j]))
    with pytest.raises(ValueError, match=r"step must be a finite number > 0"):
        sg.numerical_jacobian(f, x, step=0.0)
    with pytest.raises(TypeError, match=r"step must be a number"):
        sg.gradcheck(f, x, grad=lambda x: 2 * x, step="1e-6")


# pytest runs with filterwarnings = error, so each case below would fail with a numpy
# RuntimeWarning ("invalid value encountered in vecdot") if one came before the named error.
VJP_NONFINITE = {
    "one row, lists": ([1.0, 0.0], [-0.0, -INF]),
    "one row, arrays": (np.array([1.0, 0.0]), np.array([-0.0, -INF])),
    "inf - inf": (np.array([1.0, 1.0]), np.array([INF, -INF])),
    "float16": (np.array([1.0, 0.0], np.float16), np.array([-0.0, -INF], np.float16)),
    "float32 rows": (
        np.array([[0.5, 0.5], [1, 0]], np.float32),
        np.array([[0, 0], [0, INF]], np.float32),
    ),
    "long rows": (np.tile([[1.0, 0.0]], (2, 5000)), np.tile([[1.0, INF]], (2, 5000))),
}


@pytest.mark.parametrize("case", list(VJP_NONFINITE))
@pytest.mark.parametrize(("fn", "gname"), [(sg.softmax_vjp, "g"), (sg.softmax_jvp, "v")])
def test_vjp_nonfinite_gives_the_named_error_not_a_warning(case, fn, gname):
    p, g = VJP_NONFINITE[case]
    with pytest.raises(ValueError, match=rf"^p/{gname}(: row \(\d,\))? contains NaN or inf"):
        fn(p, g)


@pytest.mark.parametrize("shape", [(2,), (3, 2)])
def test_vjp_overflowing_inner_product_is_named(shape):
    p = np.full(shape, 1e200)  # not probabilities, so <g, p> overflows
    with pytest.raises(ValueError, match=r"^p/g(: row \(0,\))?: the inner product .* overflows"):
        sg.softmax_vjp(p, p)


def test_gradcheck_nonfinite_values_fail_quietly():
    """A NaN or inf in the analytic or numeric side is a FAILED report, never a numpy warning."""
    f = lambda x: (x**2).sum()
    x = np.ones(2000)  # random-direction mode
    res = sg.gradcheck(f, x, grad=lambda x: np.full(x.shape, INF))
    assert not res.ok
    assert res.max_rel_error == INF
    res = sg.gradcheck(lambda x: x**2, np.ones(3), jacobian=np.full((3, 3), INF), n_directions=2)
    assert not res.ok
    res = sg.gradcheck(lambda x: x * INF, np.ones(3), jacobian=np.eye(3))
    assert not res.ok
    with pytest.raises(ValueError, match=r"^x contains NaN or inf"):
        sg.gradcheck(f, np.full(2000, NAN), grad=lambda x: 2 * x)


def test_numerical_jacobian_of_a_masked_class_is_zero():
    """log_softmax gives -inf for a masked class whatever x is: its derivative is 0, not NaN."""
    mask = np.array([0.0, -INF, 0.0])
    J = sg.numerical_jacobian(lambda x: sg.log_softmax(x + mask), np.array([0.5, 1.0, -1.0]))
    assert np.all(J[1] == 0)
    assert np.isfinite(J).all()
    assert sg.gradcheck(
        lambda x: sg.log_softmax(x + mask),
        np.array([0.5, 1.0, -1.0]),
        jacobian=lambda x: np.where(np.isinf(mask)[:, None], 0.0, np.eye(3) - sg.softmax(x + mask)),
    ).ok


def test_quiet_inner_product_leaves_the_callers_error_state_alone():
    with np.errstate(invalid="raise"):
        with pytest.raises(ValueError, match="contains NaN or inf"):
            sg.softmax_vjp(np.ones((2, 2)), np.array([[0.0, 0.0], [np.inf, -np.inf]]))
        with pytest.raises(FloatingPointError):
            np.subtract(np.inf, np.inf)  # the caller's setting is back
