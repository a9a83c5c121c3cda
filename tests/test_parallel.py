"""Large inputs split across threads: same results, first bad row named, safe fallbacks."""

from __future__ import annotations

import os
import sys
import threading
import warnings

import numpy as np
import pytest

import softgrad as sg
from softgrad import _parallel

# (600, 1000) float64 is 4.8 MB: above the threshold, and ~30 row blocks.
SHAPE = (600, 1000)


@pytest.fixture
def threads():
    """Run a test body at a chosen thread count; restore the default afterwards."""
    yield sg.set_num_threads
    sg.set_num_threads(None)


def _inputs(dtype):
    rng = np.random.default_rng(7)
    z = (rng.standard_normal(SHAPE) * 4).astype(dtype)
    z[::7, 3] = -np.inf  # masked classes in some rows
    labels = rng.integers(0, SHAPE[1], size=SHAPE[0])
    y = rng.random(SHAPE).astype(dtype)
    g = rng.standard_normal(SHAPE).astype(dtype)
    return z, labels, y, g


CALLS = {
    "softmax": lambda z, lab, y, g: sg.softmax(z),
    "softmax T=2": lambda z, lab, y, g: sg.softmax(z, temperature=2.0),
    "softmax axis=0": lambda z, lab, y, g: sg.softmax(z.T.copy(), axis=0),
    "log_softmax": lambda z, lab, y, g: sg.log_softmax(z),
    "logsumexp": lambda z, lab, y, g: sg.logsumexp(z),
    "softmax_vjp": lambda z, lab, y, g: sg.softmax_vjp(sg.softmax(z), g),
    "softmax_jvp": lambda z, lab, y, g: sg.softmax_jvp(sg.softmax(z), g),
    "xent labels": lambda z, lab, y, g: sg.cross_entropy_with_grad(z, lab),
    "xent labels smoothed none": lambda z, lab, y, g: sg.cross_entropy_with_grad(
        z, lab, label_smoothing=0.1, reduction="none"
    ),
    "xent soft": lambda z, lab, y, g: sg.cross_entropy_with_grad(z, y),
    "xent loss only": lambda z, lab, y, g: sg.cross_entropy(z, lab, reduction="sum"),
}


def _flat(result):
    parts = result if isinstance(result, tuple) else (result,)
    return [np.asarray(r) for r in parts]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", CALLS)
def test_threads_give_bitwise_the_same_result(name, dtype, threads):
    z, lab, y, g = _inputs(dtype)
    if name.startswith("xent soft"):
        z = np.where(np.isneginf(z), 0.0, z).astype(dtype)  # no weight on a masked class
    threads(1)
    one = _flat(CALLS[name](z, lab, y, g))
    threads(3)
    many = _flat(CALLS[name](z, lab, y, g))
    for a, b in zip(one, many, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_out_argument_is_filled_the_same_on_threads(threads):
    z, *_ = _inputs("float32")
    threads(1)
    expect = sg.log_softmax(z)
    threads(2)
    out = np.full_like(z, np.nan)
    assert sg.log_softmax(z, out=out) is out
    np.testing.assert_array_equal(out, expect)


def test_large_input_really_uses_helper_threads(threads, monkeypatch):
    seen = set()
    real = _parallel.run_rows

    def spy(N, step, nbytes, work):
        def traced(lo, hi):
            seen.add(threading.get_ident())
            return work(lo, hi)

        return real(N, step, nbytes, traced)

    monkeypatch.setattr(sys.modules["softgrad._rows"], "run_rows", spy)
    threads(2)
    sg.softmax(_inputs("float64")[0])
    assert len(seen) == 2
    seen.clear()
    threads(1)
    sg.softmax(_inputs("float64")[0])
    assert seen == {threading.get_ident()}


@pytest.mark.parametrize("N", [1, 2, 5, 64, 1001])
@pytest.mark.parametrize("step", [1, 3, 64])
@pytest.mark.parametrize("nthreads", [1, 2, 3, 8])
def test_run_rows_covers_each_row_once_in_whole_blocks(N, step, nthreads, threads):
    threads(nthreads)
    counts = np.zeros(N, dtype=int)
    calls = []
    lock = threading.Lock()

    def work(lo, hi):
        with lock:
            calls.append((lo, hi))
            counts[lo:hi] += 1

    _parallel.run_rows(N, step, _parallel.PARALLEL_BYTES, work)
    assert counts.tolist() == [1] * N
    nblocks = -(-N // step)
    assert len(calls) == min(nthreads, nblocks)
    assert all(lo % step == 0 for lo, _ in calls)


def test_small_input_stays_on_the_calling_thread(threads):
    threads(4)
    who = []
    _parallel.run_rows(100, 1, _parallel.PARALLEL_BYTES - 1, lambda lo, hi: who.append(lo))
    assert who == [0]


@pytest.mark.parametrize("bad_rows", [(13, 590), (590,), (0, 1, 599)])
def test_error_names_the_first_bad_row_as_on_one_thread(bad_rows, threads):
    z, lab, *_ = _inputs("float64")
    for r in bad_rows:
        z[r, 10] = np.nan
    messages = []
    for n in (1, 2, 3):
        threads(n)
        with pytest.raises(ValueError, match=rf"row \({bad_rows[0]},\) contains NaN") as exc:
            sg.cross_entropy_with_grad(z, lab)
        messages.append(str(exc.value))
        with pytest.raises(ValueError, match=rf"row \({bad_rows[0]},\)"):
            sg.softmax(z)
    assert len(set(messages)) == 1


@pytest.mark.parametrize("failing", ["helper", "caller"])
def test_an_error_is_raised_only_after_every_run_has_finished(failing, threads):
    """Whichever run fails, the slow one still finishes (and writes) before the caller sees
    the error, so no thread is left writing into arrays the caller gets back."""
    threads(2)
    done = []

    def work(lo, hi):
        is_helper = lo == 0  # the helper takes the first run, the calling thread the last
        if is_helper == (failing == "helper"):
            raise ValueError(f"the {failing}'s run fails")
        threading.Event().wait(0.1)  # the other run is still busy when this one fails
        done.append(hi)

    with pytest.raises(ValueError, match=f"the {failing}'s run fails"):
        _parallel.run_rows(10, 1, _parallel.PARALLEL_BYTES, work)
    assert done == ([10] if failing == "helper" else [5])


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_set_num_threads_rejects_non_positive_integers(bad):
    with pytest.raises(ValueError, match="set_num_threads: n must be a positive integer"):
        sg.set_num_threads(bad)


def test_environment_variable_sets_the_default(monkeypatch, threads):
    threads(None)
    monkeypatch.setenv("SOFTGRAD_NUM_THREADS", "3")
    assert sg.get_num_threads() == 3
    monkeypatch.setenv("SOFTGRAD_NUM_THREADS", "zero")
    with pytest.raises(ValueError, match="SOFTGRAD_NUM_THREADS must be a positive integer"):
        sg.get_num_threads()
    threads(2)  # an explicit setting wins over the environment
    assert sg.get_num_threads() == 2


def test_no_threads_available_falls_back_to_the_calling_thread(monkeypatch, threads):
    def refuse(self):
        raise RuntimeError("can't start new thread")

    threads(2)
    monkeypatch.setattr(_parallel, "_pool_key", None)
    monkeypatch.setattr(_parallel, "_pool", None)
    monkeypatch.setattr(threading.Thread, "start", refuse)
    z = _inputs("float64")[0]
    out = sg.softmax(z)
    monkeypatch.undo()
    threads(1)
    np.testing.assert_array_equal(out, sg.softmax(z))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_pool_is_remade_in_a_forked_child(threads):
    threads(2)
    z = _inputs("float64")[0]
    expect = sg.softmax(z)  # the parent's pool now exists
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # child: its copy of the pool has no threads; a hang here fails the test
        code = 1
        try:
            code = 0 if np.array_equal(sg.softmax(z), expect) else 2
        finally:
            os._exit(code)
    for _ in range(600):  # up to 60 s
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        threading.Event().wait(0.1)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung on the inherited thread pool")
    assert os.waitstatus_to_exitcode(status) == 0
