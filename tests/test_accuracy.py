"""Accuracy against mpmath at 60 significant digits, measured in ulps of the working dtype.

Two kinds of input:

* moderate rows (random logits of size ~10): every function within a few ulps;
* hard rows: logits up to +-1e4 and 1e5, spreads from 1e-8 to 1e5, -inf masks, one dominant
  logit, every logit offset by +-1e4. Here the log-domain quantities (log_softmax, logsumexp,
  the cross-entropy loss and the target's gradient entry) stay within tens of ulps, while the
  naive formulas -- log(softmax(z)), scipy.special.log_softmax, logsumexp(z) - z_y and p_y - 1
  -- are shown to fail on the same rows.

The error of a result x against the exact value r is |x - r| / ulp(r), with ulp(r) the spacing
of the dtype at r (``np.spacing``), so an error below 1 means "correctly rounded or next to it".
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import scipy.special

import softgrad as sg

NEG_INF = float("-inf")
# The references are written so that nothing cancels: with m = max z (attained at k) and
# d_j = z_j - m, which mpmath forms exactly from the two floats, log p_j = d_j - log1p(S) with
# S = sum_{j != k} exp(d_j): both terms are <= 0. 60 significant digits then suffice.
DPS = 60


def mp_row(z):
    return [mpmath.mpf(float(v)) for v in z]


def _mp_parts(z):
    """``(d, log1p(S))`` for a row, exactly formed ``d_j = z_j - m``, at DPS digits."""
    zs = mp_row(z)
    k = max(range(len(zs)), key=lambda j: zs[j] if zs[j] != mpmath.ninf else -mpmath.inf)
    d = [v - zs[k] for v in zs]
    S = mpmath.fsum(mpmath.exp(v) for j, v in enumerate(d) if j != k and v != mpmath.ninf)
    return d, mpmath.log1p(S), zs[k]


def mp_logsumexp(z):
    with mpmath.workdps(DPS):
        _, L, m = _mp_parts(z)
        return m + L


def mp_log_softmax(z):
    with mpmath.workdps(DPS):
        d, L, _ = _mp_parts(z)
        return [v - L for v in d]


def mp_softmax(z):
    with mpmath.workdps(DPS):
        return [mpmath.exp(v) for v in mp_log_softmax(z)]


def mp_ce_grad_onehot(z, label):
    """p_j for j != label, and -sum_{j != label} p_j at the label (no 1 - p_label)."""
    with mpmath.workdps(DPS):
        p = mp_softmax(z)
        rest = mpmath.fsum(pj for j, pj in enumerate(p) if j != label)
        return [-rest if j == label else pj for j, pj in enumerate(p)]


def ulps(got, exact, dtype):
    """|got - exact| in units of the dtype's spacing at ``exact`` (elementwise, as float)."""
    got = np.atleast_1d(np.asarray(got, dtype=np.float64))
    exact = list(exact) if isinstance(exact, list | tuple) else [exact]
    out = []
    for g, r in zip(got, exact, strict=True):
        if r == mpmath.ninf or r == mpmath.inf:
            out.append(0.0 if g == float(r) else np.inf)
            continue
        spacing = float(np.spacing(np.abs(dtype(float(r)))))
        if spacing == 0.0 or not np.isfinite(g):
            out.append(np.inf)
            continue
        with mpmath.workdps(DPS):
            out.append(float(abs(mpmath.mpf(float(g)) - r) / mpmath.mpf(spacing)))
    return np.array(out)


# ---------------------------------------------------------------- the inputs

RNG = np.random.default_rng(20240607)
MODERATE = [RNG.normal(scale=3.0, size=10) for _ in range(12)] + [
    np.array([1.0, 2.0, 3.0]),
    np.array([0.0, 0.0]),
    np.array([-0.5, 0.25, 0.125, 4.0]),
]

DOMINANT = [
    np.array([50.0, 0.0, 0.0, 0.0]),
    np.array([40.0, 3.0, -2.0]),
    np.array([0.0, 30.0, -5.0, 29.0 - 38.0]),
    np.array([700.0, 0.0]),
    np.array([-1e4, -1e4 - 40.0, -1e4 - 45.0]),
    np.array([1e4, 1e4 - 39.0, 1e4 - 60.0]),
    np.array([20.0, -np.inf, 0.0, 1.0]),
]

HARD = (
    DOMINANT
    + [
        np.array([1e4, -1e4, 0.0]),
        np.array([1e5, 0.0, -1e5]),
        np.array([-1e4, -1e4 - 3.0, -1e4 - 5.0, -1e4 - 0.5]),
        np.array([1e4, 1e4 - 3.0, 1e4 - 5.0, 1e4 - 0.5]),
        np.array([1e-8, 2e-8, 3e-8, -1e-8]),
        np.array([0.0, -np.inf, 1.0, -np.inf]),
        np.array([1e4 + 0.25, 1e4 - 10.0, NEG_INF, 1e4 - 35.5]),
    ]
    + [-1e4 + RNG.normal(scale=s, size=8) for s in (0.1, 3.0)]
    + [1e4 + RNG.normal(scale=s, size=8) for s in (0.1, 3.0)]
)

DTYPES = [np.float64, np.float32]


def cast(z, dtype):
    return np.asarray(z, dtype=dtype)


def worst(rows, dtype, measure):
    """Largest ulps error of ``measure(row) -> (got, exact)`` over the rows."""
    errors = [ulps(*measure(cast(z, dtype)), dtype).max() for z in rows]
    return max(errors)


# ---------------------------------------------------------------- moderate inputs: a few ulps


@pytest.mark.parametrize("dtype", DTYPES)
def test_moderate_inputs_log_domain_within_a_few_ulps(dtype):
    checks = {
        "log_softmax": lambda z: (sg.log_softmax(z), mp_log_softmax(z)),
        "logsumexp": lambda z: (sg.logsumexp(z), mp_logsumexp(z)),
        "cross_entropy": lambda z: (sg.cross_entropy(z, 0, reduction="sum"), -mp_log_softmax(z)[0]),
    }
    measured = {name: worst(MODERATE, dtype, f) for name, f in checks.items()}
    assert max(measured.values()) <= 4, measured  # measured: about 2.5


@pytest.mark.parametrize("dtype", DTYPES)
def test_moderate_inputs_probabilities_within_their_condition_bound(dtype):
    """p_j = exp(z_j - m) / sum: rounding z_j - m moves p_j by up to |z_j - m| ulps (the
    conditioning of exp), so each entry is bounded by a few ulps plus |z_j - m|."""
    for z in MODERATE:
        z = cast(z, dtype)
        allowance = 4 + np.abs(z - z.max()).astype(np.float64)
        for got, exact in [
            (sg.softmax(z), mp_softmax(z)),
            (sg.cross_entropy_grad(z, 0, reduction="sum"), mp_ce_grad_onehot(z, 0)),
        ]:
            err = ulps(got, exact, dtype)
            assert np.all(err <= allowance), (z, err)
    worst_p = worst(MODERATE, dtype, lambda z: (sg.softmax(z), mp_softmax(z)))
    assert worst_p <= 10, worst_p  # measured: about 7.6 on these rows


# ---------------------------------------------------------------- hard inputs: log domain


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_softmax_and_logsumexp_on_hard_inputs(dtype):
    rows = HARD if dtype == np.float64 else [z for z in HARD if np.all(np.abs(z) < 3e38)]
    lsm = worst(rows, dtype, lambda z: (sg.log_softmax(z), mp_log_softmax(z)))
    lse = worst(rows, dtype, lambda z: (sg.logsumexp(z), mp_logsumexp(z)))
    assert lsm <= 4, lsm  # measured: 0.8 (float64), 2.0 (float32)
    assert lse <= 4, lse  # measured: 0.5


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_loss_on_hard_inputs_every_label(dtype):
    def measure(z):
        labels = np.arange(z.size)
        exact = [-v for v in mp_log_softmax(z)]
        return sg.cross_entropy(np.tile(z, (z.size, 1)), labels, reduction="none"), exact

    assert worst(HARD, dtype, measure) <= 4  # measured: 2


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_grad_on_dominant_rows(dtype):
    """The whole gradient row, including the target entry p_y - 1 = -sum_{j != y} p_j."""

    def measure(z):
        label = int(np.argmax(z))
        return sg.cross_entropy_grad(z, label, reduction="sum"), mp_ce_grad_onehot(z, label)

    assert worst(DOMINANT, dtype, measure) <= 4  # measured: below 1


# ---------------------------------------------------------------- where the naive formulas fail


def naive_log_softmax(z):
    e = np.exp(z - z.max())
    with np.errstate(divide="ignore"):
        return np.log(e / e.sum())


def test_dominant_logit_log_probability_naive_is_zero_softgrad_is_accurate():
    z = np.array([50.0, 0.0, 0.0, 0.0])
    exact = mp_log_softmax(z)[0]  # = -log1p(3 e^-50), about -5.8e-22
    assert float(exact) < 0
    assert naive_log_softmax(z)[0] == 0.0  # 100% relative error
    assert scipy.special.log_softmax(z)[0] == 0.0  # the reference library does the same
    assert ulps(sg.log_softmax(z)[0], exact, np.float64)[0] <= 2


def test_naive_log_of_softmax_gives_minus_inf_where_log_softmax_is_finite():
    z = np.array([0.0, -800.0])
    assert naive_log_softmax(z)[1] == -np.inf
    assert ulps(sg.log_softmax(z), mp_log_softmax(z), np.float64).max() <= 2


def test_dominant_logit_loss_and_target_gradient_naive_is_zero():
    z = np.array([[40.0, 3.0, -2.0]])
    label = np.array([0])
    exact_loss = -mp_log_softmax(z[0])[0]
    exact_grad = mp_ce_grad_onehot(z[0], 0)[0]
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    naive_loss = -np.log(p[0, 0])
    naive_grad = p[0, 0] - 1.0
    assert naive_loss == 0.0
    assert naive_grad == 0.0
    loss, grad = sg.cross_entropy_with_grad(z, label, reduction="sum")
    assert ulps(loss, exact_loss, np.float64)[0] <= 2
    assert ulps(grad[0, 0], exact_grad, np.float64)[0] <= 4
    assert float(loss) > 0
    assert grad[0, 0] < 0


@pytest.mark.parametrize("offset", [-1e4, 1e4])
def test_offset_logits_loss_naive_loses_thousands_of_ulps(offset):
    z = offset + np.array([0.0, -3.0, -5.0, -0.5])
    exact = -mp_log_softmax(z)[0]
    naive = scipy.special.logsumexp(z) - z[0]
    assert ulps(naive, exact, np.float64)[0] > 1000
    assert ulps(sg.cross_entropy(z, 0), exact, np.float64)[0] <= 4


def test_offset_logits_loss_float32():
    z = np.float32(-1e4) + np.array([0.0, -3.0, -5.0, -0.5], dtype=np.float32)
    exact = -mp_log_softmax(z)[0]
    naive = sg.logsumexp(z) - z[0]  # even with an accurate logsumexp, the subtraction loses
    assert ulps(naive, exact, np.float32)[0] > 1000
    assert ulps(sg.cross_entropy(z, 0), exact, np.float32)[0] <= 4


def test_float16_is_computed_in_float32_and_rounded_once():
    z = np.array([3.0, 1.0, 0.2, -1.5], dtype=np.float16)
    for got, exact in [
        (sg.softmax(z), mp_softmax(z)),
        (sg.log_softmax(z), mp_log_softmax(z)),
        ([sg.logsumexp(z)], [mp_logsumexp(z)]),
    ]:
        assert np.asarray(got).dtype == np.float16
        assert ulps(got, exact, np.float16).max() <= 1


# ---------------------------------------------------------------- gaps that are not representable
# z_j - m rounds unless the gap happens to be representable, and exp turns that rounding into a
# relative error of |z_j - m| ulps: 48 ulps for log_softmax([100.3, 1.1])[0] before softgrad
# compensated it. The rows above mostly have representable gaps; these do not.

GAP_RNG = np.random.default_rng(20261201)
NON_REPRESENTABLE = [
    np.array([100.3, 1.1]),
    np.array([18.05, 0.7]),
    np.array([60.7, 3.3, -2.9, 0.1]),
    np.array([0.3, -98.9]),
    np.array([1e4 + 0.3, 1e4 - 33.7, -np.inf, 1e4 - 35.1]),
    np.array([-1e4 + 0.7, -1e4 - 30.9, -1e4 - 41.3]),
    np.array([35.2, -np.inf, 0.2]),
] + [
    np.concatenate([[m], GAP_RNG.uniform(-3, 3, size=6)]) for m in GAP_RNG.uniform(15, 80, size=10)
]


def in_a_batch(row, dtype, rows=700):
    """``row`` as row 350 of a batch of random rows: several row blocks, maybe two threads."""
    batch = GAP_RNG.normal(scale=3.0, size=(rows, row.size))
    batch[350] = row
    return batch.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
@pytest.mark.parametrize("batched", [False, True])
def test_log_domain_results_with_non_representable_gaps(dtype, batched):
    def results(z):
        zz = in_a_batch(z, dtype) if batched else z
        pick = (lambda a: a[350]) if batched else (lambda a: a)
        n = z.size
        labels = np.full(zz.shape[:-1], int(np.argmax(z)))
        other = (int(np.argmax(z)) + 1) % n
        loss_rows = sg.cross_entropy(zz, labels, reduction="none")
        grad = sg.cross_entropy_grad(zz, labels, reduction="sum")
        loss_other = sg.cross_entropy(zz, np.full_like(labels, other), reduction="none")
        k = int(np.argmax(z))
        return {
            "log_softmax": (pick(sg.log_softmax(zz)), mp_log_softmax(z)),
            "logsumexp": (pick(sg.logsumexp(zz)), mp_logsumexp(z)),
            "loss at the arg-max": (pick(loss_rows), -mp_log_softmax(z)[k]),
            "loss elsewhere": (pick(loss_other), -mp_log_softmax(z)[other]),
            "target gradient entry": (pick(grad)[k], mp_ce_grad_onehot(z, k)[k]),
        }

    worst_seen = {}
    for z in NON_REPRESENTABLE:
        z = z.astype(dtype)
        if not np.all(np.abs(z[np.isfinite(z)]) < np.finfo(dtype).max / 2):
            continue
        if dtype == np.float16 and np.abs(z[np.isfinite(z)]).max() > 1000:
            continue  # offsets of 1e4 leave float16 no fractional digits
        for name, (got, exact) in results(z).items():
            worst_seen[name] = max(worst_seen.get(name, 0.0), ulps(got, exact, dtype).max())
    assert max(worst_seen.values()) <= 4, worst_seen  # measured: at most 1.5


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_reported_row_is_within_an_ulp(dtype):
    z = np.array([100.3, 1.1] if dtype == np.float64 else [18.05, 0.7], dtype=dtype)
    assert ulps(sg.log_softmax(z)[0], mp_log_softmax(z)[0], dtype)[0] <= 1


def test_target_gradient_entry_at_the_arg_max_in_a_large_batch():
    """Every row has its label at a dominant arg-max, in a batch of several blocks: the entry
    p_k - 1 must come from the small terms (-sum_{j != k} p_j), never round to 0."""
    rng = np.random.default_rng(5)
    z = rng.normal(size=(900, 200))
    z[:, 7] += 45.0
    labels = np.full(900, 7)
    _, grad = sg.cross_entropy_with_grad(z, labels, reduction="sum")
    for r in (0, 449, 899):
        exact = mp_ce_grad_onehot(z[r], 7)[7]
        assert ulps(grad[r, 7], exact, np.float64)[0] <= 4
    assert (grad[:, 7] < 0).all()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rows_just_below_the_compensation_threshold(dtype):
    """Rows whose other logits sit 3-12 below the max, at non-representable gaps: many of them
    are left uncompensated (their bound sum_j e_j |d_j| / ((1 + s) L) is under _FIX_ULPS), and
    those must still be within a few ulps."""
    rng = np.random.default_rng(1)
    worst = 0.0
    for _ in range(150):
        n = int(rng.integers(2, 12))
        z = np.concatenate([[rng.uniform(5, 60)], rng.uniform(-1, 1, size=n - 1)])
        z[1:] += z[0] - rng.uniform(3, 12)
        z = z.astype(dtype)
        worst = max(worst, ulps(sg.log_softmax(z), mp_log_softmax(z), dtype).max())
    assert worst <= 4, worst  # measured: 3.3 (float64), 2.0 (float32)
