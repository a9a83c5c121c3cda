"""Time softgrad against scipy.special and plain numpy (and PyTorch on CPU if it is installed).

Operations: softmax, log_softmax, logsumexp, the fused cross-entropy forward + backward, and
the softmax VJP; shapes (1, 10), (2, 10), (16, 100), (64, 1000), (4096, 1000), (256, 50257);
float32 and float64. The small batches test "never slower than plain numpy" where per-call
overhead dominates.
Every candidate of one (operation, shape, dtype) is timed in the same run, interleaved round by
round (so that a burst of load from other processes hits them all alike), and the best round is
kept. Ratios are printed against ``z.copy()`` of the same array -- the memory floor: any
function that reads z and writes a new array of its size costs at least that.

Run from the repository root::

    .venv/bin/python benchmarks/bench_softmax.py                 # full run (about a minute)
    .venv/bin/python benchmarks/bench_softmax.py --markdown benchmarks/RESULTS.md
    .venv/bin/python benchmarks/bench_softmax.py --shapes 8x16 --rounds 2   # a quick smoke run
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import sys
import time

import numpy as np

import softgrad as sg
from softgrad._parallel import PARALLEL_BYTES

try:
    import scipy
    import scipy.special as sps
except ImportError:  # pragma: no cover - scipy is in the test extra
    sps = None

try:  # optional: never installed by this project
    import torch
except ImportError:
    torch = None

DEFAULT_SHAPES = [(1, 10), (2, 10), (16, 100), (64, 1000), (4096, 1000), (256, 50257)]
OPERATIONS = ["softmax", "log_softmax", "logsumexp", "xent fwd+bwd", "softmax_vjp"]


# ---------------------------------------------------------------- the plain numpy baselines
# The textbook stable versions, as one would write them without a library.


def np_softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_log_softmax(z):
    d = z - z.max(axis=-1, keepdims=True)
    return d - np.log(np.exp(d).sum(axis=-1, keepdims=True))


def np_logsumexp(z):
    m = z.max(axis=-1, keepdims=True)
    return (m + np.log(np.exp(z - m).sum(axis=-1, keepdims=True)))[..., 0]


def np_xent(z, labels):
    rows = np.arange(z.shape[0])
    p = np_softmax(z)
    loss = -np.log(p[rows, labels]).mean()
    p[rows, labels] -= 1.0
    p /= z.shape[0]
    return loss, p


def np_vjp(p, g):
    return p * (g - (g * p).sum(axis=-1, keepdims=True))


def sp_xent(z, labels):
    rows = np.arange(z.shape[0])
    lp = sps.log_softmax(z, axis=-1)
    loss = -lp[rows, labels].mean()
    grad = np.exp(lp)
    grad[rows, labels] -= 1.0
    grad /= z.shape[0]
    return loss, grad


def op_bytes(op, z):
    """Bytes of array input the operation reads (the size softgrad decides threads by)."""
    return 2 * z.nbytes if op == "softmax_vjp" else z.nbytes


def one_thread(f):
    def call():
        before = sg.get_num_threads()
        sg.set_num_threads(1)
        try:
            return f()
        finally:
            sg.set_num_threads(before)

    return call


def torch_xent(tz, tlabels):
    """PyTorch's fused loss, forward and backward through autograd (the way it is used)."""
    leaf = tz.clone().requires_grad_(True)

    def run():
        loss = torch.nn.functional.cross_entropy(leaf, tlabels)
        (grad,) = torch.autograd.grad(loss, leaf)
        return loss, grad

    return run


def candidates(op, z, labels, p, g):
    """name -> zero-argument callable, for one operation on one input."""
    c = {}
    if op == "softmax":
        c["softgrad"] = lambda: sg.softmax(z)
        c["numpy"] = lambda: np_softmax(z)
        if sps:
            c["scipy"] = lambda: sps.softmax(z, axis=-1)
    elif op == "log_softmax":
        c["softgrad"] = lambda: sg.log_softmax(z)
        c["numpy"] = lambda: np_log_softmax(z)
        if sps:
            c["scipy"] = lambda: sps.log_softmax(z, axis=-1)
    elif op == "logsumexp":
        c["softgrad"] = lambda: sg.logsumexp(z)
        c["numpy"] = lambda: np_logsumexp(z)
        if sps:
            c["scipy"] = lambda: sps.logsumexp(z, axis=-1)
    elif op == "xent fwd+bwd":
        c["softgrad"] = lambda: sg.cross_entropy_with_grad(z, labels)
        c["numpy"] = lambda: np_xent(z, labels)
        if sps:
            c["scipy"] = lambda: sp_xent(z, labels)
    elif op == "softmax_vjp":
        c["softgrad"] = lambda: sg.softmax_vjp(p, g)
        c["numpy"] = lambda: np_vjp(p, g)
    if sg.get_num_threads() > 1 and op_bytes(op, z) >= PARALLEL_BYTES:
        # the same call held to the calling thread: what the helper threads add
        c["sg 1 thread"] = one_thread(c["softgrad"])
    if torch is not None:
        tz = torch.from_numpy(z)
        if op == "softmax":
            c["torch"] = lambda: torch.softmax(tz, dim=-1)
        elif op == "log_softmax":
            c["torch"] = lambda: torch.log_softmax(tz, dim=-1)
        elif op == "logsumexp":
            c["torch"] = lambda: torch.logsumexp(tz, dim=-1)
        elif op == "xent fwd+bwd":
            c["torch"] = torch_xent(tz, torch.from_numpy(labels))
        elif op == "softmax_vjp":
            tp, tg = torch.from_numpy(p), torch.from_numpy(g)
            # the kernel autograd runs for softmax's backward, without the graph around it
            c["torch"] = lambda: torch.ops.aten._softmax_backward_data(tg, tp, -1, tp.dtype)
    c["z.copy()"] = lambda: z.copy()
    return c


def calibrate(f, target_seconds):
    """Number of calls per timing so that one timing lasts about ``target_seconds``."""
    f()  # warm up (first-call allocation, lazy imports)
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        dt = time.perf_counter() - t0
        if dt >= target_seconds / 4 or n >= 1 << 20:
            return max(1, int(n * target_seconds / max(dt, 1e-9)))
        n *= 4


def time_interleaved(funcs, rounds, target_seconds):
    """Best time per call (seconds) of each function, measured round-robin."""
    loops = {name: calibrate(f, target_seconds) for name, f in funcs.items()}
    best = dict.fromkeys(funcs, float("inf"))
    for _ in range(rounds):
        for name, f in funcs.items():
            n = loops[name]
            t0 = time.perf_counter()
            for _ in range(n):
                f()
            best[name] = min(best[name], (time.perf_counter() - t0) / n)
    return best


def fmt_time(seconds):
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    return f"{seconds * 1e3:.2f} ms"


def run(shapes, dtypes, operations, rounds, target_seconds, seed=0):
    rng = np.random.default_rng(seed)
    results = []
    for shape in shapes:
        for dtype in dtypes:
            z = (rng.standard_normal(shape) * 3).astype(dtype)
            labels = rng.integers(0, shape[-1], size=shape[0])
            p = sg.softmax(z)
            g = rng.standard_normal(shape).astype(dtype)
            for op in operations:
                times = time_interleaved(candidates(op, z, labels, p, g), rounds, target_seconds)
                results.append((op, shape, np.dtype(dtype).name, times))
                print(format_row(op, shape, np.dtype(dtype).name, times), flush=True)
    return results


COLUMNS = ["softgrad", "sg 1 thread", "numpy", "scipy", "torch", "z.copy()"]


def header():
    return (
        f"{'operation':<13} {'shape':<13} {'dtype':<8}"
        + "".join(f"{c:>11}" for c in COLUMNS)
        + f"{'sg/copy':>9}{'numpy/sg':>10}{'scipy/sg':>10}{'torch/sg':>10}"
    )


def ratios(times):
    sg_t = times["softgrad"]
    copy_r = sg_t / times["z.copy()"]
    np_r = times["numpy"] / sg_t
    sp_r = times["scipy"] / sg_t if "scipy" in times else float("nan")
    return copy_r, np_r, sp_r


def format_row(op, shape, dtype, times):
    cells = "".join(f"{fmt_time(times[c]) if c in times else '-':>11}" for c in COLUMNS)
    copy_r, np_r, sp_r = ratios(times)
    sp = f"{sp_r:>9.2f}x" if not math.isnan(sp_r) else f"{'-':>10}"
    th = f"{times['torch'] / times['softgrad']:>9.2f}x" if "torch" in times else f"{'-':>10}"
    return f"{op:<13} {shape!s:<13} {dtype:<8}{cells}{copy_r:>8.2f}x{np_r:>9.2f}x{sp}{th}"


def markdown(results, argv):
    lines = [
        "# softgrad benchmark results",
        "",
        (
            f"Generated by `python benchmarks/bench_softmax.py {' '.join(argv)}` on "
            f"{datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}."
        ),
        "",
        (
            f"- Machine: {platform.machine()}, {os.cpu_count()} cores "
            f"({_cpu_name()}); 1-minute load average {os.getloadavg()[0]:.1f} when written"
        ),
        f"- Python {platform.python_version()}, numpy {np.__version__}"
        + (f", scipy {scipy.__version__}" if sps else "")
        + (f", torch {torch.__version__}" if torch is not None else ", torch not installed"),
        (
            "- Best of interleaved rounds; times per call. `sg/copy` is softgrad's time over"
            " `z.copy()` (the memory floor); `numpy/sg`, `scipy/sg` and `torch/sg` above 1 mean"
            " softgrad is faster."
        ),
        (
            "- numpy baseline: the textbook stable formulas (subtract the row max, exp, sum,"
            " divide / log); scipy: `scipy.special.softmax / log_softmax / logsumexp`; the fused"
            " cross-entropy baseline for scipy uses `log_softmax` and `exp` of it."
        ),
        (
            "- torch (CPU, when installed; not a dependency): `torch.softmax / log_softmax /"
            " logsumexp`, `F.cross_entropy` forward and backward through autograd, and the kernel"
            " of softmax's backward (`aten._softmax_backward_data`) for the VJP; its own"
            f" {torch.get_num_threads() if torch is not None else '-'} intra-op threads."
        ),
        "",
        (
            f"- softgrad splits inputs of {PARALLEL_BYTES >> 20} MiB or more across"
            f" {sg.get_num_threads()} threads (`softgrad.set_num_threads`); `sg 1 thread` is the"
            " same call held to one thread, for those sizes."
        ),
        "",
        (
            "| operation | shape | dtype | softgrad | sg 1 thread | numpy | scipy | torch | z.copy() |"
            " sg/copy | numpy/sg | scipy/sg | torch/sg |"
        ),
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for op, shape, dtype, times in results:
        copy_r, np_r, sp_r = ratios(times)
        sp = fmt_time(times["scipy"]) if "scipy" in times else "-"
        th = fmt_time(times["torch"]) if "torch" in times else "-"
        one = fmt_time(times["sg 1 thread"]) if "sg 1 thread" in times else "-"
        spr = f"{sp_r:.2f}x" if not math.isnan(sp_r) else "-"
        thr = f"{times['torch'] / times['softgrad']:.2f}x" if "torch" in times else "-"
        lines.append(
            f"| {op} | {shape} | {dtype} | {fmt_time(times['softgrad'])} | {one} |"
            f" {fmt_time(times['numpy'])} | {sp} | {th} | {fmt_time(times['z.copy()'])} |"
            f" {copy_r:.2f}x | {np_r:.2f}x | {spr} | {thr} |"
        )
    lines += ["", "## Targets (issue 8)", ""] + [f"- {t}" for t in targets(results)]
    return "\n".join(lines) + "\n"


def targets(results):
    """The rebuilt core's speed targets (issue 8), checked against this run's figures."""
    out = []
    limits = {"softmax": 2.5, "log_softmax": 2.5, "xent fwd+bwd": 3.0}
    for op, shape, dtype, times in results:
        copy_r, np_r, sp_r = ratios(times)
        if shape == (256, 50257):
            if op in limits:
                verdict = "met" if copy_r <= limits[op] else "MISSED"
                out.append(
                    f"{op} {dtype} at {shape} within {limits[op]}x of z.copy(): "
                    f"{copy_r:.2f}x, {verdict}"
                )
            if not math.isnan(sp_r):
                verdict = "met" if sp_r >= 1.5 else "MISSED"
                out.append(
                    f"{op} {dtype} at {shape} 1.5x faster than scipy: {sp_r:.2f}x, {verdict}"
                )
        if shape in ((1, 10), (2, 10)):
            verdict = "met" if np_r >= 0.5 else "MISSED"
            out.append(
                f"{op} {dtype} at {shape} at most 2x the plain-numpy time: "
                f"{1 / np_r:.2f}x, {verdict}"
            )
    return out


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def parse_shape(text):
    a, b = text.lower().split("x")
    return (int(a), int(b))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--shapes", nargs="+", type=parse_shape, default=DEFAULT_SHAPES, help="e.g. 64x1000"
    )
    ap.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    ap.add_argument("--ops", nargs="+", default=OPERATIONS, choices=OPERATIONS)
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds (best is kept)")
    ap.add_argument("--seconds", type=float, default=0.02, help="target duration of one timing")
    ap.add_argument("--markdown", help="also write a Markdown table to this file")
    args = ap.parse_args(argv)
    print(header())
    results = run(args.shapes, args.dtypes, args.ops, args.rounds, args.seconds)
    for line in targets(results):
        print(line)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(markdown(results, argv))
        print(f"wrote {args.markdown}")
    return results


if __name__ == "__main__":
    main()
