"""softgrad.checks: right answers pass, a mistake is named only when it explains the answer.

- Right answers (plain and unusual) pass every check.
- Every catalogued mistake stays silent on answers that are almost right (float32, a little noise):
  a mistake that fits "an answer slightly off" is the wrong diagnosis this module must never give.
  (That every mistake fires on an answer that makes it is proved through the exercises' own test
  cells in tests/test_feedback_corpus.py.)
- One case for each kind of failure issue 15 found, each failing on the checks before it.
- The "Read:" lines point to a labelled subsection of the exercise's own chapter; ALLOWED is the
  one allow-list per check; answers that are not numbers fail by name.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np
import pytest

import softgrad as sg
from softgrad import checks
from softgrad.checks import ALLOWED, MISTAKES, SECTIONS, CheckFailed

ROOT = Path(__file__).resolve().parents[1]

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


def cross_entropy(z, y):
    return float(-np.sum(y * log_softmax(z)) / z.shape[0])


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


def gradient_error(f, grad_f, x):
    a = np.asarray(grad_f(np.array(x, dtype=float)), dtype=float)
    n = numerical_gradient(f, x)
    return float(np.linalg.norm(a - n) / max(np.linalg.norm(a), np.linalg.norm(n), 1e-12))


def directional_error(f, grad_f, x, n_directions=3, seed=0):
    x = np.array(x, dtype=float)
    rng = np.random.default_rng(seed)
    g = np.asarray(grad_f(x.copy()), dtype=float)
    h = np.finfo(float).eps ** (1 / 3) * max(1.0, float(np.max(np.abs(x))))
    worst = 0.0
    for _ in range(n_directions):
        u = rng.normal(size=x.shape)
        u /= np.linalg.norm(u)
        a, n = float(np.sum(g * u)), (f(x + h * u) - f(x - h * u)) / (2 * h)
        worst = max(worst, abs(a - n) / max(abs(a), abs(n), 1e-12))
    return worst


def loss_and_grad(W, b, X, labels):
    z = X @ W + b
    N = X.shape[0]
    loss = -np.mean(log_softmax(z)[np.arange(N), labels])
    dz = softmax(z)
    dz[np.arange(N), labels] -= 1
    dz /= N
    return loss, X.T @ dz, dz.sum(axis=0)


def train(X, labels, n_classes, lr=0.5, steps=300):
    W = np.zeros((X.shape[1], n_classes))
    b = np.zeros(n_classes)
    losses = []
    for _ in range(steps):
        loss, dW, db = loss_and_grad(W, b, X, labels)
        W -= lr * dW
        b -= lr * db
        losses.append(loss)
    return W, b, losses


cg, gn = checks.check_cross_entropy_grad, checks.check_numerical_gradient
RIGHT = [
    (checks.check_softmax, softmax, {}),
    (checks.check_log_softmax, log_softmax, {}),
    (checks.check_softmax_jacobian, softmax_jacobian_loops, {"batched": False}),
    (checks.check_softmax_jacobian, softmax_jacobian, {}),
    (checks.check_log_softmax_jacobian, log_softmax_jacobian, {}),
    (checks.check_softmax_vjp, softmax_vjp, {}),
    (checks.check_cross_entropy, cross_entropy, {}),
    (cg, cross_entropy_grad, {"part": "one_hot"}),
    (cg, cross_entropy_grad, {"part": "soft"}),
    (cg, cross_entropy_grad, {"part": "batch"}),
    (gn, numerical_gradient, {}),
    (gn, numerical_gradient, {"scale_test": True}),
    (checks.check_gradient_error, gradient_error, {}),
    (checks.check_directional_error, directional_error, {}),
    (checks.check_loss_and_grad, loss_and_grad, {}),
    (checks.check_training, train, {}),
]


def _id(v):
    return getattr(v, "__name__", "")


@pytest.mark.parametrize(("check", "fn", "kwargs"), RIGHT, ids=_id)
def test_right_answer_passes(check, fn, kwargs):
    passed = check(fn, **kwargs)
    assert repr(passed).startswith(f"{fn.__name__.removesuffix('_loops')}: passed")


# ----------------------------------------------------------------------------- silent on near misses


def _float32(fn):
    def near(*args, **kwargs):
        args = [
            a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
            for a in args
        ]
        out = fn(*args, **kwargs)
        if isinstance(out, tuple):
            return tuple(np.float32(o) for o in out)
        return np.float32(out)

    near.__name__ = fn.__name__
    return near


def _noisy(fn, size):
    """Right but for a relative error of ``size`` that alternates in sign (not a factor)."""

    def near(*args, **kwargs):
        out = fn(*args, **kwargs)

        def shake(o):
            o = np.asarray(o, dtype=float)
            return o * (1 + size * (-1.0) ** np.arange(o.size).reshape(o.shape))

        return tuple(shake(o) for o in out) if isinstance(out, tuple) else shake(out)

    near.__name__ = fn.__name__
    return near


def _train_noisy(X, labels, n_classes, lr=0.5, steps=300):
    W, b, losses = train(X, labels, n_classes, lr, steps)
    return W, b, np.asarray(losses) * (1 + 1e-5 * (-1.0) ** np.arange(len(losses)))


import test_checks_frameworks as _fw

#: for each check, answers that are almost right: each must fail with no mistake named (or pass)
NEAR_MISSES = {
    "check_softmax": [(_float32(softmax), {}), (_noisy(softmax, 1e-7), {})],
    "check_log_softmax": [(_float32(log_softmax), {}), (_noisy(log_softmax, 1e-7), {})],
    "check_softmax_jacobian": [
        (_float32(softmax_jacobian), {}),
        (_noisy(softmax_jacobian_loops, 1e-7), {"batched": False}),
    ],
    "check_log_softmax_jacobian": [(_float32(log_softmax_jacobian), {})],
    "check_softmax_vjp": [(_float32(softmax_vjp), {}), (_noisy(softmax_vjp, 1e-7), {})],
    "check_cross_entropy": [(_float32(cross_entropy), {}), (_noisy(cross_entropy, 1e-7), {})],
    "check_cross_entropy_grad": [
        (_float32(cross_entropy_grad), {"part": "one_hot"}),
        (_float32(cross_entropy_grad), {"part": "batch"}),
        (_noisy(cross_entropy_grad, 1e-7), {}),
    ],
    "check_numerical_gradient": [(_noisy(numerical_gradient, 1e-5), {"scale_test": True})],
    "check_gradient_error": [(_noisy(gradient_error, 1e-3), {})],
    "check_directional_error": [(_noisy(directional_error, 1e-3), {})],
    "check_loss_and_grad": [(_float32(loss_and_grad), {}), (_noisy(loss_and_grad, 1e-7), {})],
    "check_training": [(_train_noisy, {})],
    "check_weighted_cross_entropy": [(_noisy(_fw.loss_right, 1e-7), {})],
    "check_weighted_cross_entropy_grad": [(_noisy(_fw.grad_right, 1e-7), {})],
}


@functools.cache
def _near_miss_messages(check: str) -> tuple[str, ...]:
    out = []
    for fn, kwargs in NEAR_MISSES[check]:
        try:
            getattr(checks, check)(fn, **kwargs)
        except CheckFailed as exc:
            out.append(str(exc))
    return tuple(out)


def _checks_naming(key: str) -> list[str]:
    """The checks whose code can name ``key`` (every check can name the generic ones)."""
    src = Path(checks.__file__).read_text(encoding="utf-8")
    names = []
    for name in ALLOWED:
        body = src[src.index(f"def {name}(") :]
        body = body[: body.find("\ndef check_", 10)]
        if f'"{key}"' in body or key in ("mutated-input", "reference-call", "integer-array"):
            names.append(name)
    return names or list(ALLOWED)  # named from a helper: test it everywhere


@pytest.mark.parametrize("key", sorted(MISTAKES))
def test_mistake_stays_silent_on_answers_that_are_almost_right(key):
    messages = [m for c in _checks_naming(key) for m in _near_miss_messages(c)]
    assert messages, "no near miss failed: this test would prove nothing"
    fired = [m for m in messages if f"[{key}]" in m]
    assert not fired, f"[{key}] named for an answer that is only slightly off:\n{fired[0]}"


@pytest.mark.parametrize("check", sorted(NEAR_MISSES))
def test_an_almost_right_answer_gets_the_size_of_its_error(check):
    for message in _near_miss_messages(check):
        assert "No catalogued mistake reproduces this answer." in message, message
        assert "Likely mistake" not in message, message


# ----------------------------------------------------------------------------- the kinds of issue 15


def _message(check, fn, **kwargs) -> str:
    with pytest.raises(CheckFailed) as info:
        check(fn, **kwargs)
    return str(info.value)


def test_wrong_diagnosis_float32_softmax_is_not_told_overflow():
    message = _message(checks.check_softmax, _float32(softmax))
    assert "[softmax-overflow]" not in message
    assert "right to about 7 significant digits" in message
    assert "float32" in message


def test_wrong_diagnosis_float32_gradient_on_one_row_is_not_told_the_missing_mean():
    message = _message(cg, _float32(cross_entropy_grad), part="one_hot")
    assert "[ce-missing-mean]" not in message
    assert "Likely mistake" not in message


def test_wrong_diagnosis_recording_minus_the_loss_is_not_told_to_fix_the_update():
    def records_minus_loss(X, labels, n_classes, lr=0.5, steps=300):
        W, b, losses = train(X, labels, n_classes, lr, steps)
        return W, b, [-loss for loss in losses]

    message = _message(checks.check_training, records_minus_loss)
    assert "[train-negative-loss]" in message
    assert "minus!" not in message


def global_max_softmax(z):
    e = np.exp(z - np.max(z))
    return e / e.sum(axis=-1, keepdims=True)


def jacobian_over_p(z):
    p = softmax(z)
    return softmax_jacobian(z) / p[..., :, None]


def loss_of_log_softmax(z, y):
    return float(-np.sum(y * np.log(softmax(z))) / z.shape[0])


def proportional_step(f, x, h=None):
    x = np.array(x, dtype=float)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = h if h is not None else 6e-6 * abs(x[i])
        e = np.zeros_like(x)
        e[i] = step
        g[i] = (f(x + e) - f(x - e)) / (2 * step)
    return g


def absolute_gradient_error(f, grad_f, x):
    return float(np.linalg.norm(grad_f(np.array(x, dtype=float)) - numerical_gradient(f, x)))


def one_sided_gradient_error(f, grad_f, x):
    a, n = grad_f(np.array(x, dtype=float)), numerical_gradient(f, x)
    return float(np.linalg.norm(a - n) / max(np.linalg.norm(n), 1e-12))


def unseeded_directions(f, grad_f, x, n_directions=3, seed=0):
    return directional_error(f, grad_f, x, n_directions, seed=None)


def loss_and_grad_moving_w(W, b, X, labels):
    loss, dW, db = loss_and_grad(W, b, X, labels)
    W -= 1e-3 * dW
    return loss, dW, db


def forward_when_h_is_none(f, x, h=None):
    if h is not None:
        return numerical_gradient(f, x, h)
    x = np.array(x, dtype=float)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.sqrt(np.finfo(float).eps) * max(1.0, abs(x[i]))
        e = np.zeros_like(x)
        e[i] = step
        g[i] = (f(x + e) - f(x)) / step
    return g


def _trainer(update_b=True, scale=1.0, lr_forced=None, steps_forced=None):
    def train_wrong(X, labels, n_classes, lr=0.5, steps=300):
        W, b, losses = np.zeros((X.shape[1], n_classes)), np.zeros(n_classes), []
        for _ in range(steps if steps_forced is None else steps_forced):
            loss, dW, db = loss_and_grad(W, b, X, labels)
            rate = lr if lr_forced is None else lr_forced
            W = W - rate * scale * dW
            if update_b:
                b = b - rate * scale * db
            losses.append(loss)
        return W, b, losses

    return train_wrong


def vjp_without_outer_p(p, g):
    return g - np.sum(g * p, axis=-1, keepdims=True)


def row_max_whole_sum(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum()


def clipped_softmax(z):
    return softmax(np.clip(z, -500, 500))


def epsilon_log_softmax(z):
    return np.log(softmax(z) + 1e-12)


def lse_without_max(z):
    m = z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def diag_and_outer(z):
    p = softmax(z)
    return np.diag(p) - np.outer(p, p)


def double_vjp(p, g):
    return 2 * softmax_vjp(p, g)


def labels_from_one(W, b, X, labels):
    return loss_and_grad(W, b, X, (labels - 1) % W.shape[1])


ISSUE_CASES = [  # (kind, check, answer, kwargs, what the message must contain)
    ("passed", checks.check_softmax, global_max_softmax, {}, "[softmax-global-max]"),
    ("passed", checks.check_log_softmax_jacobian, jacobian_over_p, {}, "[jacobian-divided-by-p]"),
    ("passed", checks.check_cross_entropy, loss_of_log_softmax, {}, "[log-softmax-underflow]"),
    ("passed", gn, proportional_step, {}, "[gc-step-vanishes]"),
    ("passed", checks.check_gradient_error, absolute_gradient_error, {}, "[ge-absolute]"),
    ("passed", checks.check_gradient_error, one_sided_gradient_error, {}, "[ge-one-sided]"),
    ("passed", checks.check_directional_error, unseeded_directions, {}, "[de-unseeded]"),
    ("passed", checks.check_loss_and_grad, loss_and_grad_moving_w, {}, "[mutated-input]"),
    ("uncaught", gn, forward_when_h_is_none, {}, "[gc-forward-difference]"),
    ("uncaught", checks.check_training, _trainer(lr_forced=1e4), {}, "[train-lr-ignored]"),
    ("uncaught", checks.check_training, _trainer(scale=120.0), {}, "[ce-missing-mean]"),
    ("uncaught", checks.check_training, _trainer(update_b=False), {}, "[train-bias-frozen]"),
    ("uncaught", checks.check_training, _trainer(steps_forced=5), {}, "[train-step-count]"),
    ("generic", checks.check_softmax_vjp, vjp_without_outer_p, {}, "[vjp-missing-outer-p]"),
    (
        "generic",
        checks.check_log_softmax_jacobian,
        softmax_jacobian,
        {},
        "[jacobian-softmax-for-log-softmax]",
    ),
    ("generic", checks.check_softmax, row_max_whole_sum, {}, "[softmax-sum-all]"),
    ("generic", checks.check_softmax, clipped_softmax, {}, "[softmax-clipped]"),
    ("generic", checks.check_log_softmax, epsilon_log_softmax, {}, "[log-softmax-epsilon]"),
    ("generic", checks.check_log_softmax, lse_without_max, {}, "[logsumexp-missing-max]"),
    ("generic", checks.check_softmax_jacobian, diag_and_outer, {}, "[jacobian-1d-only]"),
    ("generic", checks.check_softmax_vjp, double_vjp, {}, "exactly 2 times the right one"),
    ("generic", checks.check_loss_and_grad, labels_from_one, {}, "[train-labels-off-by-one]"),
]


@pytest.mark.parametrize(
    ("kind", "check", "fn", "kwargs", "expected"),
    ISSUE_CASES,
    ids=[f"{k}-{c.__name__}-{f.__name__}" for k, c, f, _, _ in ISSUE_CASES],
)
def test_issue_case_is_caught_and_named(kind, check, fn, kwargs, expected):
    message = _message(check, fn, **kwargs)
    assert expected in message, message


def test_correct_rejected_log_softmax_jacobian_through_logsumexp_passes_visible_and_hidden():
    def through_logsumexp(z):
        p = np.exp(z - sg.logsumexp(z, axis=-1, keepdims=True))
        return np.eye(p.shape[-1]) - p[..., None, :]

    checks.check_log_softmax_jacobian(through_logsumexp)
    checks.check_matches(
        through_logsumexp,
        lambda z: np.eye(z.shape[-1]) - sg.softmax(z)[..., None, :],
        [np.random.default_rng(203).normal(size=(3, 2, 4))],
        check="check_log_softmax_jacobian",
    )


def test_correct_rejected_a_list_for_the_tuple_is_accepted():
    checks.check_loss_and_grad(lambda *a: list(loss_and_grad(*a)))
    checks.check_training(lambda *a, **k: list(train(*a, **k)))


def test_visible_probes_are_not_called_hidden():
    with pytest.raises(CheckFailed, match=r"probe 'probe 1 of 1 \(shapes \(2, 3\)\)'") as info:
        checks.check_matches(
            global_max_softmax,
            sg.softmax,
            [[[0.0, 1.0, 2.0], [-1e3, -1e3, -1e3]]],
            check="check_softmax",
        )
    assert "hidden" not in str(info.value)


def test_a_broadcasting_error_on_a_batch_of_jacobians_does_not_blame_keepdims():
    message = _message(checks.check_softmax_jacobian, diag_and_outer)
    assert "keepdims" not in message.split("How to fix")[0]


def test_generic_report_is_short_and_says_where_to_read():
    message = _message(checks.check_softmax, _float32(softmax))
    assert len(message.splitlines()) <= 6
    assert message.splitlines()[-1].startswith("Read: chapter 1")


# ----------------------------------------------------------------------------- links and allow-lists


def _labels(chapter: str) -> dict[str, str]:
    """label -> the heading right after it, in chapters/<chapter>.md."""
    text = (ROOT / "chapters" / f"{chapter}.md").read_text(encoding="utf-8")
    return dict(re.findall(r"^\(([\w-]+)\)=\n#+ (.+)$", text, flags=re.MULTILINE))


def _plain(title: str) -> str:
    return re.sub(r"[$`\\{}]|\\\w+", "", title).lower().split(":")[0].split()[0]


def test_every_section_is_a_labelled_heading_of_its_chapter():
    for label, (chapter, title) in SECTIONS.items():
        headings = _labels(chapter)
        assert label in headings, f"{label} is not a label of chapters/{chapter}.md"
        assert _plain(title) == _plain(headings[label]), (label, title, headings[label])


@pytest.mark.parametrize("check", sorted(ALLOWED))
def test_every_mistake_a_check_names_points_into_the_exercises_own_chapter(check):
    spec = checks._SPECS[check]
    chapter = SECTIONS[spec.home][0]
    for key in MISTAKES:
        line = spec.describe(key).splitlines()[-1]
        assert line.startswith("Read: "), (check, key, line)
        assert f"../../../chapters/{chapter}.ipynb#" in line, (check, key, line)


def test_mutated_input_in_a_jacobian_exercise_points_to_chapter_2():
    def shifts_in_place(z):
        z -= z.max(axis=-1, keepdims=True)
        return softmax_jacobian(z)

    message = _message(checks.check_softmax_jacobian, shifts_in_place)
    assert "[mutated-input]" in message
    assert "chapters/02_softmax_jacobian.ipynb#" in message


def test_allowed_has_one_entry_per_check_with_public_softgrad_names():
    public = {n for n in sg.__all__ if callable(getattr(sg, n))}
    check_functions = {n for n in checks.__all__ if n.startswith("check_")} - {"check_matches"}
    assert set(ALLOWED) == check_functions
    for names in ALLOWED.values():
        assert set(names) <= public


def test_a_call_outside_the_allow_list_fails_and_one_inside_passes():
    def via_cross_entropy_grad(z, y):
        return sg.cross_entropy_grad(z, y)

    message = _message(cg, via_cross_entropy_grad)
    assert "[reference-call]" in message
    assert "softgrad.cross_entropy_grad" in message
    checks.check_cross_entropy_grad(lambda z, y: cross_entropy_grad(z, y) + 0 * sg.softmax(z))
    with pytest.raises(CheckFailed, match=r"\[reference-call\]"):
        checks.check_softmax(sg.softmax.__call__)  # a bound call from outside softgrad


def test_check_matches_takes_the_rules_of_a_check():
    inputs = [np.array([[0.0, -np.inf, 2.0]]), np.random.default_rng(0).normal(size=(2, 3, 4))]
    checks.check_matches(softmax, sg.softmax, inputs, check="check_softmax")
    with pytest.raises(CheckFailed, match=r"\[reference-call\]"):
        checks.check_matches(lambda z: sg.softmax(z), sg.softmax, inputs, check="check_softmax")
    checks.check_matches(  # softmax is allowed where the exercise is about the Jacobian
        lambda z: sg.softmax(z)[..., :, None] * 0 + softmax_jacobian(z),
        sg.softmax_jacobian,
        inputs[1:],
        check="check_softmax_jacobian",
    )
    with pytest.raises(ValueError, match="check"):
        checks.check_matches(softmax, sg.softmax, inputs, check="check_everything")
    with pytest.raises(ValueError, match="section"):
        checks.check_matches(softmax, sg.softmax, inputs, section="chapter 1")


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
    with pytest.raises(CheckFailed, match="is wrong on probe"):
        checks.check_softmax(lambda z: np.zeros(np.shape(z)).view(EqualArray))


def test_missing_return_is_named():
    with pytest.raises(CheckFailed, match="forget `return`"):
        checks.check_softmax(lambda z: None)


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


def test_not_a_function():
    with pytest.raises(CheckFailed, match="expected a function"):
        checks.check_softmax(np.array([0.1, 0.2, 0.7]))


def test_cross_entropy_part_is_validated():
    with pytest.raises(ValueError, match="part"):
        checks.check_cross_entropy_grad(cross_entropy_grad, part="everything")


def test_wrong_shape_is_reported():
    with pytest.raises(CheckFailed, match=r"Shape: expected \(3,\), got \(1, 3\)"):
        checks.check_softmax(lambda z: softmax(np.atleast_2d(z)))


def test_overflow_warnings_do_not_escape_the_check():
    # filterwarnings=error would turn numpy's overflow warning into an exception; the check
    # records it instead and names the mistake
    def naive(z):
        return np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)

    with pytest.raises(CheckFailed, match="(?s)softmax-overflow.*numpy warned: .*overflow"):
        checks.check_softmax(naive)
