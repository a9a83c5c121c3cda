"""Keep benchmarks/bench_softmax.py from rotting: run it once at a toy size (no timing asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_softmax.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_softmax", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_runs_at_a_toy_size(tmp_path, capsys):
    bench = load_bench()
    out = tmp_path / "results.md"
    results = bench.main(
        ["--shapes", "3x7", "--rounds", "1", "--seconds", "0.0005", "--markdown", str(out)]
    )
    assert {op for op, *_ in results} == set(bench.OPERATIONS)
    assert all(times["softgrad"] > 0 and times["z.copy()"] > 0 for *_, times in results)
    table = out.read_text()
    assert "| xent fwd+bwd | (3, 7) | float64 |" in table
    assert "softgrad" in capsys.readouterr().out


def test_baselines_agree_with_softgrad():
    """The numpy baselines time the same mathematics (otherwise the comparison is unfair)."""
    import numpy as np

    import softgrad as sg

    bench = load_bench()
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 9))
    labels = rng.integers(0, 9, size=5)
    np.testing.assert_allclose(bench.np_softmax(z), sg.softmax(z), rtol=1e-13)
    np.testing.assert_allclose(bench.np_log_softmax(z), sg.log_softmax(z), rtol=1e-13)
    np.testing.assert_allclose(bench.np_logsumexp(z), sg.logsumexp(z), rtol=1e-13)
    loss, grad = bench.np_xent(z, labels)
    sg_loss, sg_grad = sg.cross_entropy_with_grad(z, labels)
    np.testing.assert_allclose(loss, sg_loss, rtol=1e-13)
    np.testing.assert_allclose(grad, sg_grad, rtol=1e-12, atol=1e-15)
    sp_loss, sp_grad = bench.sp_xent(z, labels)
    np.testing.assert_allclose(sp_loss, sg_loss, rtol=1e-13)
    np.testing.assert_allclose(sp_grad, sg_grad, rtol=1e-12, atol=1e-15)
    p = sg.softmax(z)
    g = rng.normal(size=z.shape)
    np.testing.assert_allclose(bench.np_vjp(p, g), sg.softmax_vjp(p, g), rtol=1e-12, atol=1e-15)


def test_linear_benchmark_runs_at_a_toy_size_and_rewrites_its_own_section(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "bench_linear", BENCH.with_name("bench_linear.py")
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "RESULTS.md"
    out.write_text("# results\n\n## Targets (issue 8)\n\n- kept\n")
    for _ in range(2):  # a second run replaces its section instead of adding another
        bench.main(
            ["--size", "64", "8", "300", "--rounds", "1", "--repeats", "1", "--markdown", str(out)]
        )
    text = out.read_text()
    assert text.count("## Linear cross-entropy (issue 13)") == 1
    assert "- kept" in text
    assert "| softgrad |" in text
    assert "| numpy |" in text
