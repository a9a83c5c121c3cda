"""softgrad.checks for exercise 7 (the weighted mean and ignore_index): right answers pass, and each
catalogued mistake of the framework conventions is named when it is made.

The right answers below are written from the definitions of chapter 9 in plain NumPy; the expected
values inside the checks come from softgrad's ``cross_entropy(..., weight=, ignore_index=)``, which
tests/test_loss_options.py checks against PyTorch's own figures and finite differences.
"""

import numpy as np
import pytest

from softgrad import checks
from softgrad.checks import MISTAKES, CheckFailed


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(z):
    s = z - z.max(axis=-1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


def _parts(z, labels, weight, ignore_index):
    z = np.asarray(z, dtype=float)
    labels = np.asarray(labels)
    keep = labels != ignore_index
    lab = np.where(keep, labels, 0)
    return z, keep, lab, np.asarray(weight, dtype=float)[lab] * keep


def loss_right(z, labels, weight, ignore_index=-100):
    z, _, lab, a = _parts(z, labels, weight, ignore_index)
    return -(a * log_softmax(z)[np.arange(len(lab)), lab]).sum() / a.sum()


def grad_right(z, labels, weight, ignore_index=-100):
    z, _, lab, a = _parts(z, labels, weight, ignore_index)
    g = a[:, None] * (softmax(z) - np.eye(z.shape[1])[lab])
    return g / a.sum() if a.sum() > 0 else np.zeros_like(g)


def loss_divided_by_n(z, labels, weight, ignore_index=-100):
    z, _, lab, a = _parts(z, labels, weight, ignore_index)
    return -(a * log_softmax(z)[np.arange(len(lab)), lab]).sum() / len(lab)


def grad_divided_by_n(z, labels, weight, ignore_index=-100):
    z, _, lab, a = _parts(z, labels, weight, ignore_index)
    return a[:, None] * (softmax(z) - np.eye(z.shape[1])[lab]) / len(lab)


def grad_divided_by_count(z, labels, weight, ignore_index=-100):
    z, keep, lab, a = _parts(z, labels, weight, ignore_index)
    return a[:, None] * (softmax(z) - np.eye(z.shape[1])[lab]) / max(keep.sum(), 1)


def grad_weight_missing(z, labels, weight, ignore_index=-100):
    z, keep, lab, a = _parts(z, labels, weight, ignore_index)
    g = keep[:, None] * (softmax(z) - np.eye(z.shape[1])[lab])
    return g / a.sum() if a.sum() > 0 else np.zeros_like(g)


def grad_ignored_counted(z, labels, weight, ignore_index=-100):
    z = np.asarray(z, dtype=float)
    lab = np.where(np.asarray(labels) == ignore_index, 0, labels)  # padding becomes class 0
    a = np.asarray(weight, dtype=float)[lab]
    return a[:, None] * (softmax(z) - np.eye(z.shape[1])[lab]) / a.sum()


def loss_ignored_in_divisor(z, labels, weight, ignore_index=-100):
    z, _, lab, a = _parts(z, labels, weight, ignore_index)
    all_weights = np.asarray(weight, dtype=float)[lab]
    return -(a * log_softmax(z)[np.arange(len(lab)), lab]).sum() / all_weights.sum()


def grad_ignored_in_divisor(z, labels, weight, ignore_index=-100):
    z, _, lab, a = _parts(z, labels, weight, ignore_index)
    all_weights = np.asarray(weight, dtype=float)[lab]
    return a[:, None] * (softmax(z) - np.eye(z.shape[1])[lab]) / all_weights.sum()


def grad_softmax_twice(z, labels, weight, ignore_index=-100):
    z, _, lab, a = _parts(z, labels, weight, ignore_index)
    q = softmax(softmax(z))  # the probabilities taken for logits
    g = a[:, None] * (q - np.eye(z.shape[1])[lab])
    return g / a.sum() if a.sum() > 0 else np.zeros_like(g)


def grad_softmax_twice_chain(z, labels, weight, ignore_index=-100):
    """The exact gradient of the loss of softmax(z): what autograd gives for that bug."""
    z, _, lab, a = _parts(z, labels, weight, ignore_index)
    p = softmax(z)
    g = softmax(p) - np.eye(z.shape[1])[lab]
    g = a[:, None] * p * (g - (g * p).sum(axis=1, keepdims=True))
    return g / a.sum() if a.sum() > 0 else np.zeros_like(g)


def loss_softmax_twice(z, labels, weight, ignore_index=-100):
    z, _, lab, a = _parts(z, labels, weight, ignore_index)
    return -(a * log_softmax(softmax(z))[np.arange(len(lab)), lab]).sum() / a.sum()


def grad_sign(z, labels, weight, ignore_index=-100):
    return -grad_right(z, labels, weight, ignore_index)


def grad_all_ignored_nan(z, labels, weight, ignore_index=-100):
    z, _, lab, a = _parts(z, labels, weight, ignore_index)
    with np.errstate(invalid="ignore"):
        return a[:, None] * (softmax(z) - np.eye(z.shape[1])[lab]) / a.sum()


LOSS = checks.check_weighted_cross_entropy
GRAD = checks.check_weighted_cross_entropy_grad


@pytest.mark.parametrize("part", ["weights", "padding", "all"])
def test_right_answers_pass(part):
    assert LOSS(loss_right, part=part).n_probes >= 3
    assert GRAD(grad_right, part=part).n_probes >= 3


CASES = [
    ("fw-divisor-n", LOSS, loss_divided_by_n, "weights"),
    ("fw-divisor-n", GRAD, grad_divided_by_n, "weights"),
    ("fw-divisor-count", GRAD, grad_divided_by_count, "padding"),
    ("fw-weight-missing", GRAD, grad_weight_missing, "weights"),
    ("fw-ignored-rows-counted", GRAD, grad_ignored_counted, "padding"),
    ("fw-ignored-in-divisor", LOSS, loss_ignored_in_divisor, "padding"),
    ("fw-ignored-in-divisor", GRAD, grad_ignored_in_divisor, "padding"),
    ("fw-softmax-twice", LOSS, loss_softmax_twice, "weights"),
    ("fw-softmax-twice", GRAD, grad_softmax_twice, "weights"),
    ("fw-softmax-twice", GRAD, grad_softmax_twice_chain, "all"),
    ("ce-sign", GRAD, grad_sign, "weights"),
    ("fw-all-ignored-nan", GRAD, grad_all_ignored_nan, "padding"),
]

#: the keys this file proves are named (tests/test_checks.py covers the rest of the catalogue)
FRAMEWORK_KEYS = {key for key, *_ in CASES if key.startswith("fw-")}


@pytest.mark.parametrize(
    ("key", "check", "fn", "part"),
    CASES,
    ids=[f"{key}-{fn.__name__}" for key, _, fn, _ in CASES],
)
def test_mistake_is_named(key, check, fn, part):
    with pytest.raises(CheckFailed) as info:
        check(fn, part=part)
    message = str(info.value)
    mistake = MISTAKES[key]
    assert f"[{key}]" in message, message
    assert mistake.fix in message
    # every Read: link goes to the exercise's own chapter (a mistake of chapter 4 included)
    assert "chapters/09_frameworks.ipynb#sec-frameworks" in message, message
    others = [k for k in MISTAKES if k != key and f"[{k}]" in message]
    assert not others, f"{fn.__name__} named {others} besides {key}: {message}"


def test_every_framework_mistake_has_a_test():
    assert {k for k in MISTAKES if k.startswith("fw-")} == FRAMEWORK_KEYS


def test_two_mistakes_at_once_are_both_named():
    def wrong(z, labels, weight, ignore_index=-100):  # padding counted as class 0, and over N
        lab = np.where(np.asarray(labels) == ignore_index, 0, labels)
        a = np.asarray(weight, dtype=float)[lab]
        return a[:, None] * (softmax(np.asarray(z, float)) - np.eye(len(weight))[lab]) / len(lab)

    with pytest.raises(CheckFailed) as info:
        GRAD(wrong, part="padding")
    assert "[fw-ignored-rows-counted]" in str(info.value)
    assert "[fw-divisor-n]" in str(info.value)


def test_part_is_validated():
    with pytest.raises(ValueError, match="part"):
        LOSS(loss_right, part="everything")


def test_calling_softgrads_loss_is_refused():
    import softgrad as sg

    def cheat(z, labels, weight, ignore_index=-100):
        return sg.cross_entropy_grad(z, labels, weight=weight, ignore_index=ignore_index)

    with pytest.raises(CheckFailed, match="reference-call"):
        GRAD(cheat)


def test_allowed_lists_the_new_checks():
    assert checks.ALLOWED["check_weighted_cross_entropy_grad"] == (
        "softmax",
        "log_softmax",
        "logsumexp",
    )
    assert "check_weighted_cross_entropy" in checks.__all__
