"""``out=`` never lies: it gets the right result whatever it overlaps, and an error leaves it
(and an input that is ``out``) exactly as it was."""

from __future__ import annotations

import numpy as np
import pytest

import softgrad as sg

RNG = np.random.default_rng(11)
BIG = (2001, 1000)  # several row blocks, and two threads where the machine has them


def zs(shape=BIG, dtype=np.float64):
    return RNG.normal(scale=4.0, size=shape).astype(dtype)


# name -> (call(z, out), inputs made from z)
FUNCTIONS = {
    "softmax": lambda z, out: sg.softmax(z, out=out),
    "log_softmax": lambda z, out: sg.log_softmax(z, out=out),
    "softmax T=2": lambda z, out: sg.softmax(z, temperature=2.0, out=out),
    "softmax_vjp": lambda z, out: sg.softmax_vjp(sg.softmax(z), z, out=out),
    "softmax_jvp": lambda z, out: sg.softmax_jvp(sg.softmax(z), z, out=out),
    "cross_entropy_grad": lambda z, out: sg.cross_entropy_grad(
        z, np.arange(z.shape[0]) % z.shape[1], out=out
    ),
    "cross_entropy_with_grad": lambda z, out: sg.cross_entropy_with_grad(
        z, np.arange(z.shape[0]) % z.shape[1], label_smoothing=0.1, out=out
    )[1],
}


@pytest.mark.parametrize("name", list(FUNCTIONS))
@pytest.mark.parametrize("direction", ["out ahead", "out behind"])
def test_out_overlapping_its_input_gets_the_right_result(name, direction):
    f = FUNCTIONS[name]
    base = zs((BIG[0] + 1, BIG[1]))
    z, out = (base[:-1], base[1:]) if direction == "out ahead" else (base[1:], base[:-1])
    want = f(z.copy(), None)
    got = f(z, out)
    assert got is out
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "cross_entropy_grad"])
def test_out_is_the_input_itself(name):
    f = FUNCTIONS[name]
    z = zs()
    want = f(z.copy(), None)
    assert f(z, z) is z
    np.testing.assert_array_equal(z, want)


def test_vjp_out_may_be_p_or_g():
    z = zs()
    p, g = sg.softmax(z), RNG.normal(size=BIG)
    want = sg.softmax_vjp(p, g)
    p2, g2 = p.copy(), g.copy()
    np.testing.assert_array_equal(sg.softmax_vjp(p2, g2, out=p2), want)
    p2, g2 = p.copy(), g.copy()
    np.testing.assert_array_equal(sg.softmax_vjp(p2, g2, out=g2), want)


@pytest.mark.parametrize("name", list(FUNCTIONS))
@pytest.mark.parametrize("layout", ["strided", "F", "swapped"])
def test_out_of_any_layout_is_filled(name, layout):
    f = FUNCTIONS[name]
    z = zs((300, 50))
    want = f(z, None)
    if layout == "strided":
        out = np.zeros((300, 100))[:, ::2]
    elif layout == "F":
        out = np.zeros((300, 50), order="F")
    else:
        out = np.zeros((300, 50), dtype=">f8")
    assert f(z, out) is out
    np.testing.assert_array_equal(out, want)


def bad_last_row(z, value):
    z = z.copy()
    z[-1, 3] = value
    return z


ERROR_CASES = [(name, np.nan) for name in FUNCTIONS] + [
    (name, np.inf) for name in FUNCTIONS if not name.startswith("softmax_")
]


@pytest.mark.parametrize(("name", "value"), ERROR_CASES)
@pytest.mark.parametrize("shape", [BIG, (5, 7)])
def test_an_error_writes_nothing_into_out(name, value, shape):
    f = FUNCTIONS[name]
    z = bad_last_row(zs(shape), value)
    out = np.full(shape, 7.0)
    with pytest.raises(ValueError, match=rf"row \({shape[0] - 1},\)"):
        f(z, out)
    assert (out == 7.0).all()


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "cross_entropy_grad"])
def test_an_error_leaves_an_input_that_is_out_untouched(name):
    f = FUNCTIONS[name]
    z = bad_last_row(zs(), np.nan)
    before = z.copy()
    with pytest.raises(ValueError, match=r"row \(2000,\) contains NaN"):
        f(z, z)
    np.testing.assert_array_equal(z, before)


def test_logsumexp_error_leaves_out_untouched():
    z = bad_last_row(zs(), np.nan)
    out = np.full(BIG[0], 7.0)
    with pytest.raises(ValueError, match=r"row \(2000,\) contains NaN"):
        sg.logsumexp(z, out=out)
    assert (out == 7.0).all()


def test_read_only_out_is_named():
    out = np.zeros((2, 3))
    out.flags.writeable = False
    with pytest.raises(ValueError, match=r"^out is read-only"):
        sg.softmax(np.zeros((2, 3)), out=out)
