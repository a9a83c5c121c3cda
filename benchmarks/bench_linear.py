"""Loss and all gradients of a language model's output layer: softgrad's chunked
``linear_cross_entropy_with_grad`` against the obvious computation in PyTorch (CPU) and in
plain NumPy, which both form the (N, V) logits.

Every case runs in a fresh process, so that its peak resident set (``ru_maxrss``, which sees
torch's and BLAS's allocations as well as numpy's) belongs to it alone. Working memory is that
peak less the resident set just before the call (the interpreter, the libraries and the
inputs) and less the gradients themselves (dh, dW, db), which every method must return.

    .venv-torch/bin/python benchmarks/bench_linear.py                    # (2048, 768, 50257)
    .venv-torch/bin/python benchmarks/bench_linear.py --markdown benchmarks/RESULTS.md
    .venv/bin/python benchmarks/bench_linear.py --size 256 64 4000      # a quick run
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np
method, N, d, V, repeats = sys.argv[1], *map(int, sys.argv[2:6])
rng = np.random.default_rng(0)
h = rng.standard_normal((N, d), dtype=np.float32)
W = rng.standard_normal((V, d), dtype=np.float32) * np.float32(0.02)
b = np.zeros(V, dtype=np.float32)
labels = rng.integers(0, V, size=N)
grad_bytes = h.nbytes + W.nbytes + b.nbytes

def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize()

if method == "softgrad":
    import softgrad as sg
    sg.linear_cross_entropy_with_grad(h[:8], W[:64], labels[:8] % 64)  # warm up BLAS threads
    def run():
        return sg.linear_cross_entropy_with_grad(h, W, labels, bias=b)
elif method == "numpy":
    (h[:8] @ W[:64].T)
    def run():
        z = h @ W.T + b
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        rows = np.arange(N)
        loss = -np.log(z[rows, labels]).mean()
        z[rows, labels] -= 1.0
        z /= N
        return loss, z @ W, z.T @ h, z.sum(axis=0)
else:
    import torch
    th, tW = torch.from_numpy(h).requires_grad_(True), torch.from_numpy(W).requires_grad_(True)
    tb, tl = torch.from_numpy(b).requires_grad_(True), torch.from_numpy(labels)
    (th[:8] @ tW[:64].T).sum().backward()
    th.grad = tW.grad = tb.grad = None
    def run():
        th.grad = tW.grad = tb.grad = None
        loss = torch.nn.functional.cross_entropy(th @ tW.T + tb, tl)
        loss.backward()
        return loss, th.grad, tW.grad, tb.grad

before = rss()
times = []
for _ in range(repeats):
    t0 = time.perf_counter()
    out = run()
    times.append(time.perf_counter() - t0)
    if _ + 1 < repeats:
        del out
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": min(times), "working": peak - before - grad_bytes,
                  "loss": float(out[0])}))
"""

METHODS = ["softgrad", "numpy", "torch"]


def measure(method, N, d, V, repeats):
    r = subprocess.run(
        [sys.executable, "-c", CHILD, method, str(N), str(d), str(V), str(repeats)],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        if method == "torch" and "No module named 'torch'" in r.stderr:
            return None
        raise RuntimeError(f"{method} failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def run(N, d, V, rounds, repeats):
    """Best time and smallest working memory of each method, over interleaved rounds."""
    best = {}
    for _ in range(rounds):
        for method in METHODS:
            m = measure(method, N, d, V, repeats)
            if m is None:
                continue
            seen = best.setdefault(method, m)
            seen["seconds"] = min(seen["seconds"], m["seconds"])
            seen["working"] = min(seen["working"], m["working"])
    return best


def report(best, N, d, V):
    lines = [
        f"| method (N, d, V) = ({N}, {d}, {V}) float32 | wall time | working memory | loss |",
        "|---|---:|---:|---:|",
    ]
    for method, m in best.items():
        lines.append(
            f"| {method} | {m['seconds']:.2f} s | {m['working'] / 1e6:.0f} MB | {m['loss']:.6f} |"
        )
    sg = best["softgrad"]
    for peer in ("torch", "numpy"):
        if peer in best:
            p = best[peer]
            lines.append("")
            lines.append(
                f"- against {peer}: working memory {p['working'] / max(sg['working'], 1):.1f}x "
                f"smaller, wall time {sg['seconds'] / p['seconds']:.2f}x {peer}'s"
            )
    return lines


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--size", nargs=3, type=int, default=[2048, 768, 50257], metavar=("N", "d", "V")
    )
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds of fresh processes")
    ap.add_argument("--repeats", type=int, default=2, help="calls per process (best is kept)")
    ap.add_argument("--markdown", help="write the results as a section of this Markdown file")
    args = ap.parse_args(argv)
    N, d, V = args.size
    best = run(N, d, V, args.rounds, args.repeats)
    lines = report(best, N, d, V)
    print("\n".join(lines))
    if args.markdown:
        section = [
            "## Linear cross-entropy (issue 13)",
            "",
            (
                f"Generated by `python benchmarks/bench_linear.py {' '.join(argv)}` on "
                f"{datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}; "
                f"{platform.machine()}, {os.cpu_count()} cores, 1-minute load average "
                f"{os.getloadavg()[0]:.1f} when written. Loss and all gradients; each case in a "
                "fresh process; working memory is the peak resident set beyond the inputs and "
                "the gradients."
            ),
            "",
            *lines,
            "",
        ]
        text = ""
        if os.path.exists(args.markdown):
            with open(args.markdown) as fh:
                text = fh.read()
        text = re.sub(
            r"\n## Linear cross-entropy \(issue 13\)\n.*?(?=\n## |\Z)", "\n", text, flags=re.DOTALL
        )
        with open(args.markdown, "w") as fh:
            fh.write(text.rstrip("\n") + "\n\n" + "\n".join(section))
        print(f"wrote {args.markdown}")


if __name__ == "__main__":
    main()
