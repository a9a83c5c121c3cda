"""softgrad.checks: right answers pass, and every catalogued mistake is named when it is made.

Each buggy implementation below makes exactly one mistake from ``softgrad.checks.MISTAKES``;
the test proves that the check fails with that mistake's key, fix and chapter section.
"""

import numpy as np
import pytest

import softgrad as sg
from softgrad import checks
from softgrad.checks import MISTAKES, CheckFailed

# ----------------------------------------------------------------------------- right answers


def softmax(z):
    z = np.asarray(z, dtype=float)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(z):
    z = np.asarray(z, dtype=float)
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax_jacobian_loops(z):
    p = softmax(z)
    n = p.size
    J = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            J[i, j] = p[i] * ((i == j) - p[j])
    return J


def softmax_jacobian(z):
    p = softmax(z)
    return p[..., :, None] * np.eye(p.shape[-1]) - p[..., :, None] * p[..., None, :]


def log_softmax_jacobian(z):
    p = softmax(z)
    return np.eye(p.shape[-1]) - p[..., None, :]


def softmax_vjp(p, g):
    return p * (g - np.sum(g * p, axis=-1, keepdims=True))


def cross_entropy_grad(z, y):
    return (softmax(z) * y.sum(axis=-1, keepdims=True) - y) / z.shape[0]


def numerical_gradient(f, x, h=None):
    x = np.array(x, dtype=float)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = h if h is not None else 6e-6 * max(1.0, abs(x[i]))
        xp, xm = x.copy(), x.copy()
        xp[i] += step
        xm[i] -= step
        grad[i] = (f(xp) - f(xm)) / (xp[i] - xm[i])
    return grad


def loss_and_grad(W, b, X, labels):
    z = X @ W + b
    N = X.shape[0]
    logp = log_softmax(z)
    loss = -np.mean(logp[np.arange(N), labels])
    dz = softmax(z)
    dz[np.arange(N), labels] -= 1
    dz /= N
    return loss, X.T @ dz, dz.sum(axis=0)


def train(X, labels, n_classes, lr=0.5, steps=200):
    W = np.zeros((X.shape[1], n_classes))
    b = np.zeros(n_classes)
    losses = []
    for _ in range(steps):
        loss, dW, db = loss_and_grad(W, b, X, labels)
        W -= lr * dW
        b -= lr * db
        losses.append(loss)
    return W, b, losses


RIGHT = [
    (checks.check_softmax, softmax, {}),
    (checks.check_log_softmax, log_softmax, {}),
    (checks.check_softmax_jacobian, softmax_jacobian_loops, {"batched": False}),
    (checks.check_softmax_jacobian, softmax_jacobian, {}),
    (checks.check_log_softmax_jacobian, log_softmax_jacobian, {}),
    (checks.check_softmax_vjp, softmax_vjp, {}),
    (checks.check_cross_entropy_grad, cross_entropy_grad, {"part": "one_hot"}),
    (checks.check_cross_entropy_grad, cross_entropy_grad, {"part": "soft"}),
    (checks.check_cross_entropy_grad, cross_entropy_grad, {"part": "batch"}),
    (checks.check_numerical_gradient, numerical_gradient, {}),
    (checks.check_numerical_gradient, numerical_gradient, {"scale_test": True}),
    (checks.check_loss_and_grad, loss_and_grad, {}),
    (checks.check_training, train, {}),
]


@pytest.mark.parametrize(("check", "fn", "kwargs"), RIGHT, ids=lambda v: getattr(v, "__name__", ""))
def test_right_answer_passes(check, fn, kwargs):
    passed = check(fn, **kwargs)
    assert repr(passed).startswith(f"{fn.__name__.removesuffix('_loops')}: passed")


# ----------------------------------------------------------------------------- one bug each


def naive_softmax(z):
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def softmax_shift_only_positive(z):
    e = np.exp(z - np.maximum(z.max(axis=-1, keepdims=True), 0))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_axis0(z):
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def softmax_sum_all(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def softmax_no_keepdims(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1)


def softmax_unnormalised(z):
    return np.exp(z - z.max(axis=-1, keepdims=True))


def softmax_in_place(z):
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def softmax_calls_reference(z):
    return sg.softmax(z)


def log_of_softmax(z):
    return np.log(softmax(z))


def log_softmax_unshifted(z):
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def jacobian_diagonal(z):
    p = softmax(z)
    return p[..., :, None] * np.eye(p.shape[-1]) * (1 - p[..., :, None])


def jacobian_sign(z):
    return -softmax_jacobian(z)


def jacobian_no_diag(z):
    p = softmax(z)
    return -(p[..., :, None] * p[..., None, :])


def jacobian_of_logits(z):
    return np.diag(z) - np.outer(z, z)


def jacobian_dot(z):
    p = softmax(z)
    return np.diag(p) - p @ p.T  # p is 1-D: p @ p.T is a number


def jacobian_batch_last(z):
    return np.moveaxis(softmax_jacobian(z), 0, -1)


def log_softmax_jacobian_transposed(z):
    p = softmax(z)
    return np.eye(p.shape[-1]) - p[..., :, None]


def vjp_seed2(p, g):
    s = g * p
    return s - s.sum(axis=-1, keepdims=True)


def vjp_sign(p, g):
    return -softmax_vjp(p, g)


def vjp_diagonal(p, g):
    return g * p * (1 - p)


def vjp_axis0(p, g):
    return p * (g - np.sum(g * p, axis=0, keepdims=True))


def vjp_softmax_again(p, g):
    return softmax_vjp(softmax(p), g)


def vjp_forms_jacobian(p, g):
    J = p[..., :, None] * np.eye(p.shape[-1]) - p[..., :, None] * p[..., None, :]
    return np.einsum("...i,...ij->...j", g, J)


def ce_seed1(z, y):
    p = softmax(z)
    return (np.sum(p * y, axis=-1, keepdims=True) - y) / z.shape[0]


def ce_sign(z, y):
    return -cross_entropy_grad(z, y)


def ce_no_mean(z, y):
    return softmax(z) * y.sum(axis=-1, keepdims=True) - y


def ce_mean_all(z, y):
    return (softmax(z) * y.sum(axis=-1, keepdims=True) - y) / z.size


def ce_p_minus_y(z, y):
    return (softmax(z) - y) / z.shape[0]


def ce_logits(z, y):
    return (z - y) / z.shape[0]


def ce_softmax_axis0(z, y):
    return (softmax_axis0(z) * y.sum(axis=-1, keepdims=True) - y) / z.shape[0]


def ce_sign_and_no_mean(z, y):
    return y - softmax(z) * y.sum(axis=-1, keepdims=True)


def _differences(kind, default_h=None):
    def numerical_gradient(f, x, h=None):
        h = default_h if h is None else h
        x = np.array(x, dtype=float)
        grad = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            e = np.zeros_like(x)
            e[i] = h
            if kind == "forward":
                grad[i] = (f(x + e) - f(x)) / h
            elif kind == "backward":
                grad[i] = (f(x) - f(x - e)) / h
            elif kind == "no-half":
                grad[i] = (f(x + e) - f(x - e)) / h
            else:
                grad[i] = (f(x + e) - f(x - e)) / (2 * h)
        return grad

    return numerical_gradient


def gradient_in_place(f, x, h=None):
    h = 1e-5 if h is None else h
    grad = np.zeros_like(x)
    for i in range(x.size):
        x[i] += h
        fp = f(x)
        x[i] -= 2 * h
        fm = f(x)
        x[i] += h  # rounding: x[i] + h - 2h + h is not always x[i]
        grad[i] = (fp - fm) / (2 * h)
    return grad


def loss_and_grad_transposed(W, b, X, labels):
    loss, dW, db = loss_and_grad(W, b, X, labels)
    return loss, dW.T, db


def loss_and_grad_db_mean(W, b, X, labels):
    loss, dW, db = loss_and_grad(W, b, X, labels)
    return loss, dW, db / X.shape[0]


def loss_and_grad_summed_loss(W, b, X, labels):
    loss, dW, db = loss_and_grad(W, b, X, labels)
    return loss * X.shape[0], dW, db


def loss_and_grad_ascent(W, b, X, labels):
    loss, dW, db = loss_and_grad(W, b, X, labels)
    return loss, -dW, db


def train_ascent(X, labels, n_classes, lr=0.5, steps=50):
    W = np.zeros((X.shape[1], n_classes))
    b = np.zeros(n_classes)
    losses = []
    for _ in range(steps):
        loss, dW, db = loss_and_grad(W, b, X, labels)
        W += lr * dW
        b += lr * db
        losses.append(loss)
    return W, b, losses


cg, gn = checks.check_cross_entropy_grad, checks.check_numerical_gradient
MISTAKE_CASES = [
    ("softmax-overflow", checks.check_softmax, naive_softmax, {}),
    ("softmax-overflow", checks.check_log_softmax, lambda z: np.log(naive_softmax(z)), {}),
    ("softmax-overflow", cg, lambda z, y: (naive_softmax(z) - y) / z.shape[0], {"part": "one_hot"}),
    ("softmax-underflow", checks.check_softmax, softmax_shift_only_positive, {}),
    ("softmax-wrong-axis", checks.check_softmax, softmax_axis0, {}),
    ("softmax-sum-all", checks.check_softmax, softmax_sum_all, {}),
    ("softmax-no-keepdims", checks.check_softmax, softmax_no_keepdims, {}),
    ("softmax-not-normalised", checks.check_softmax, softmax_unnormalised, {}),
    ("mutated-input", checks.check_softmax, softmax_in_place, {}),
    ("mutated-input", gn, gradient_in_place, {}),
    ("reference-call", checks.check_softmax, softmax_calls_reference, {}),
    ("log-softmax-underflow", checks.check_log_softmax, log_of_softmax, {}),
    ("logsumexp-overflow", checks.check_log_softmax, log_softmax_unshifted, {}),
    ("jacobian-diagonal-only", checks.check_softmax_jacobian, jacobian_diagonal, {}),
    ("jacobian-sign", checks.check_softmax_jacobian, jacobian_sign, {}),
    ("jacobian-missing-diag", checks.check_softmax_jacobian, jacobian_no_diag, {}),
    ("jacobian-of-logits", checks.check_softmax_jacobian, jacobian_of_logits, {"batched": False}),
    ("jacobian-dot-not-outer", checks.check_softmax_jacobian, jacobian_dot, {"batched": False}),
    ("jacobian-batch-layout", checks.check_softmax_jacobian, jacobian_batch_last, {}),
    ("jacobian-transposed", checks.check_log_softmax_jacobian, log_softmax_jacobian_transposed, {}),
    ("vjp-missing-p", checks.check_softmax_vjp, vjp_seed2, {}),
    ("vjp-sign", checks.check_softmax_vjp, vjp_sign, {}),
    ("vjp-diagonal-only", checks.check_softmax_vjp, vjp_diagonal, {}),
    ("vjp-wrong-axis", checks.check_softmax_vjp, vjp_axis0, {}),
    ("vjp-softmax-of-p", checks.check_softmax_vjp, vjp_softmax_again, {}),
    ("vjp-formed-jacobian", checks.check_softmax_vjp, vjp_forms_jacobian, {}),
    ("ce-seed-sum-py", cg, ce_seed1, {"part": "one_hot"}),
    ("ce-sign", cg, ce_sign, {"part": "one_hot"}),
    ("ce-missing-mean", cg, ce_no_mean, {"part": "batch"}),
    ("ce-mean-over-all", cg, ce_mean_all, {"part": "one_hot"}),
    ("ce-p-minus-y-unnormalised", cg, ce_p_minus_y, {"part": "soft"}),
    ("ce-forgot-softmax", cg, ce_logits, {"part": "one_hot"}),
    ("ce-softmax-wrong-axis", cg, ce_softmax_axis0, {"part": "one_hot"}),
    ("gc-forward-difference", gn, _differences("forward", 1e-5), {}),
    ("gc-backward-difference", gn, _differences("backward", 1e-5), {}),
    ("gc-missing-half", gn, _differences("no-half", 1e-5), {}),
    ("gc-step-too-small", gn, _differences("central", 1e-11), {}),
    ("gc-step-too-large", gn, _differences("central", 1e-2), {}),
    ("gc-step-not-scaled", gn, _differences("central", 1e-5), {"scale_test": True}),
    ("train-grad-shape", checks.check_loss_and_grad, loss_and_grad_transposed, {}),
    ("train-db-double-mean", checks.check_loss_and_grad, loss_and_grad_db_mean, {}),
    ("train-loss-sum", checks.check_loss_and_grad, loss_and_grad_summed_loss, {}),
    ("ce-sign", checks.check_loss_and_grad, loss_and_grad_ascent, {}),
    ("train-diverged", checks.check_training, train_ascent, {}),
]


@pytest.mark.parametrize(
    ("key", "check", "fn", "kwargs"),
    MISTAKE_CASES,
    ids=[f"{key}-{check.__name__}" for key, check, *_ in MISTAKE_CASES],
)
def test_mistake_is_named(key, check, fn, kwargs):
    with pytest.raises(CheckFailed) as info:
        check(fn, **kwargs)
    message = str(info.value)
    mistake = MISTAKES[key]
    assert f"[{key}]" in message, message
    assert mistake.fix in message
    assert f"chapters/{checks.SECTIONS[mistake.section]}.html#{mistake.section}" in message


def test_every_catalogued_mistake_has_a_test():
    from test_checks_frameworks import FRAMEWORK_KEYS  # exercise 7's mistakes are tested there

    assert {case[0] for case in MISTAKE_CASES} | FRAMEWORK_KEYS == set(MISTAKES)


def test_two_mistakes_at_once_are_both_named():
    with pytest.raises(CheckFailed) as info:
        checks.check_cross_entropy_grad(ce_sign_and_no_mean)
    assert "[ce-sign]" in str(info.value)
    assert "[ce-missing-mean]" in str(info.value)


def test_unknown_wrong_answer_gives_the_worst_entry():
    def off_by_one_entry(z):
        p = softmax(z)
        p[..., 0] += 0.25
        return p

    with pytest.raises(CheckFailed) as info:
        checks.check_softmax(off_by_one_entry)
    message = str(info.value)
    assert "No known mistake matches" in message
    assert "Worst entry at index (0,): expected" in message
    assert "chapters/01_softmax.html#sec-softmax" in message


def test_wrong_shape_is_reported():
    with pytest.raises(CheckFailed, match=r"Shape: expected \(3,\), got \(1, 3\)"):
        checks.check_softmax(lambda z: softmax(np.atleast_2d(z)))


# ----------------------------------------------------------------------------- answers that are not numbers


class AlwaysEqual:
    def __eq__(self, other):
        return True

    __hash__ = object.__hash__


class EqualArray(np.ndarray):
    def __eq__(self, other):
        return True

    __hash__ = None


@pytest.mark.parametrize(
    "answer",
    [
        lambda z: AlwaysEqual(),
        lambda z: [AlwaysEqual()] * np.size(z),
        lambda z: "0.09, 0.24, 0.67",
        lambda z: softmax(z) + 0j,
        lambda z: softmax(z) > 0.5,
    ],
    ids=["always-equal", "list-of-always-equal", "string", "complex", "bool"],
)
def test_non_numeric_answers_fail(answer):
    with pytest.raises(CheckFailed, match="returned"):
        checks.check_softmax(answer)


def test_ndarray_subclass_with_always_true_eq_is_compared_by_value():
    def cheat(z):
        return np.zeros(np.shape(z)).view(EqualArray)

    with pytest.raises(CheckFailed, match="is wrong on probe"):
        checks.check_softmax(cheat)


def test_missing_return_is_named():
    def forgot_return(z):
        softmax(z)

    with pytest.raises(CheckFailed, match="forget `return`"):
        checks.check_softmax(forgot_return)


def test_not_implemented_is_named():
    def stub(z):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not implemented yet"):
        checks.check_softmax(stub)


def test_student_exception_is_reported_with_its_type_and_probe():
    def broken(z):
        return softmax(z)[5]

    with pytest.raises(CheckFailed, match=r"softmax raised IndexError on probe 'a vector'") as info:
        checks.check_softmax(broken)
    assert isinstance(info.value.__cause__, IndexError)


def test_max_without_keepdims_is_named():
    def no_keepdims_max(z):
        e = np.exp(z - z.max(axis=-1))
        return e / e.sum(axis=-1, keepdims=True)

    with pytest.raises(CheckFailed, match=r"\[softmax-no-keepdims\]"):
        checks.check_softmax(no_keepdims_max)


def test_broadcast_error_gets_a_keepdims_hint():
    def no_keepdims_target_sum(z, y):
        return (softmax(z) * y.sum(axis=-1) - y) / z.shape[0]

    with pytest.raises(CheckFailed, match="(?s)raised ValueError on probe 'a batch of 4.*keepdims"):
        checks.check_cross_entropy_grad(no_keepdims_target_sum)


def test_not_a_function():
    with pytest.raises(CheckFailed, match="expected a function"):
        checks.check_softmax(np.array([0.1, 0.2, 0.7]))


def test_cross_entropy_part_is_validated():
    with pytest.raises(ValueError, match="part"):
        checks.check_cross_entropy_grad(cross_entropy_grad, part="everything")


def test_overflow_warnings_do_not_escape_the_check():
    # filterwarnings=error would turn numpy's overflow warning into an exception; the check
    # records it instead and names the mistake
    with pytest.raises(CheckFailed, match="numpy warned: .*overflow"):
        checks.check_softmax(naive_softmax)


# ----------------------------------------------------------------------------- softgrad's own functions


def test_jacobian_may_use_softgrads_softmax():
    def jacobian_with_sg_softmax(z):
        p = sg.softmax(z)
        return p[..., :, None] * np.eye(p.shape[-1]) - p[..., :, None] * p[..., None, :]

    checks.check_softmax_jacobian(jacobian_with_sg_softmax)


def test_calling_the_function_under_test_from_softgrad_is_named():
    def borrowed(z, y):
        return sg.cross_entropy_grad(z, y)

    with pytest.raises(CheckFailed, match=r"(?s)\[reference-call\].*softgrad.cross_entropy_grad"):
        checks.check_cross_entropy_grad(borrowed)


def test_check_matches_compares_on_hidden_inputs():
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(2, 3, 4)) * 30, np.array([[0.0, -np.inf, 2.0]])]
    checks.check_matches(softmax, sg.softmax, inputs, section="sec-softmax")
    with pytest.raises(CheckFailed, match="hidden probe 1"):
        checks.check_matches(softmax_axis0, sg.softmax, inputs, section="sec-softmax")
    with pytest.raises(ValueError, match="section"):
        checks.check_matches(softmax, sg.softmax, inputs, section="chapter 1")
