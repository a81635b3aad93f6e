"""Success statistics: Wilson against a textbook computation, pooling, IQM, PoI, VAT t-test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest, ttest_rel

from realgap.errors import ConfigError, DataError
from realgap.protocol.stats import (
    iqm,
    pooled_rate,
    probability_of_improvement,
    stratified_bootstrap_ci,
    success_rate,
    vat_ttest,
    wilson_interval,
)


def _textbook_wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    # Wilson (1927) as the solution of |p - p_hat| = z sqrt(p (1 - p) / n), a quadratic in p.
    a = 1 + z * z / n
    b = -(2 * k / n + z * z / n)
    c = (k / n) ** 2
    disc = math.sqrt(b * b - 4 * a * c)
    return (-b - disc) / (2 * a), (-b + disc) / (2 * a)


@pytest.mark.parametrize("k,n", [(0, 10), (1, 10), (5, 10), (9, 10), (10, 10), (37, 120), (3, 7)])
def test_wilson_matches_textbook_and_scipy(k: int, n: int) -> None:
    lo, hi = wilson_interval(k, n)
    tlo, thi = _textbook_wilson(k, n)
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert lo == pytest.approx(tlo, abs=1e-12) and hi == pytest.approx(thi, abs=1e-12)
    assert lo == pytest.approx(ci.low, abs=1e-12) and hi == pytest.approx(ci.high, abs=1e-12)


def test_wilson_known_values_and_edges() -> None:
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))
    assert wilson_interval(10, 10)[1] == 1.0
    lo90, hi90 = wilson_interval(5, 10, alpha=0.10)
    assert 0.2366 < lo90 and hi90 < 0.7634
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    with pytest.raises(DataError, match="greater than trials"):
        wilson_interval(11, 10)
    with pytest.raises(DataError, match="non-negative integer"):
        wilson_interval(-1, 10)
    with pytest.raises(DataError, match="non-negative integer"):
        wilson_interval(2.5, 10)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_contains_rate(kn: tuple[int, int]) -> None:
    k, n = kn
    lo, hi = wilson_interval(k, n)
    assert 0 <= lo <= k / n <= hi <= 1


def test_pooled_rate_is_sum_k_over_sum_n() -> None:
    r = pooled_rate([3, 7, 0], [10, 10, 5])
    assert (r.successes, r.trials) == (10, 25) and r.rate == pytest.approx(0.4)
    assert (r.lo, r.hi) == wilson_interval(10, 25)
    # not the mean of the per-condition rates (0.3 + 0.7 + 0) / 3
    assert r.rate != pytest.approx(1 / 3)
    assert math.isnan(success_rate(0, 0).rate)
    with pytest.raises(DataError, match="condition 1: successes 7 > trials 5"):
        pooled_rate([1, 7], [2, 5])


def test_iqm_hand_values() -> None:
    # rliable's test: IQM of 0..3 is the mean of the middle two, 1.5.
    assert iqm(np.array([[0.0], [1.0], [2.0], [3.0]])) == 1.5
    assert iqm(np.arange(8.0).reshape(4, 2)) == pytest.approx(3.5)  # middle 4 of 0..7


def test_probability_of_improvement_hand_values() -> None:
    x = np.array([[1.0, 0.5], [3.0, 0.5]])
    y = np.array([[2.0, 0.5], [0.0, 0.5]])
    # task 0: pairs (1>2 no, 1>0 yes, 3>2 yes, 3>0 yes) = 3/4; task 1: all ties = 1/2.
    assert probability_of_improvement(x, y) == pytest.approx((0.75 + 0.5) / 2)
    assert probability_of_improvement(y, x) == pytest.approx(1 - (0.75 + 0.5) / 2)


def test_stratified_bootstrap_is_seeded_and_sized() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random((10, 3)), rng.random((10, 3)) + 0.2
    e1 = stratified_bootstrap_ci(iqm, a, n_boot=200, rng=7)
    assert e1 == stratified_bootstrap_ci(iqm, a, n_boot=200, rng=7)
    assert e1 != stratified_bootstrap_ci(iqm, a, n_boot=200, rng=8)
    assert (e1.n, e1.n_frames, e1.n_boot) == (10, 30, 200) and e1.lo < e1.hi
    poi = stratified_bootstrap_ci(probability_of_improvement, b, a, n_boot=200, rng=1)
    assert poi.value > 0.5 and 0.5 < poi.hi <= 1 and poi.n == 20
    with pytest.raises(ConfigError, match="n_boot"):
        stratified_bootstrap_ci(iqm, a, n_boot=0)


def test_stratified_bootstrap_is_not_widened_and_reports_bias() -> None:
    # Distinct rows in a resample of 10 distinct runs: ~6.5 on average, 10 only if every run
    # is drawn once (p = 10!/10^10). The point (10) lies above every replicate: reported as
    # bias, not hidden by stretching the interval up to it.
    x = np.arange(10.0)[:, None]
    e = stratified_bootstrap_ci(lambda m: float(np.unique(m).size), x, n_boot=300, rng=0)
    assert e.value == 10.0 and e.hi < 10.0 and e.bias


def test_stratified_bootstrap_covers_the_true_mean() -> None:
    # Known answer: runs ~ N(1, 1) on 2 tasks, the mean of all scores has true value 1.
    rng = np.random.default_rng(3)
    hits = [
        (e := stratified_bootstrap_ci(np.mean, rng.normal(1.0, 1.0, (30, 2)), n_boot=300,
                                      rng=i)).lo <= 1.0 <= e.hi
        for i in range(150)
    ]
    assert 0.88 <= np.mean(hits) <= 0.99


def test_protocol_stats_reexports_the_one_home() -> None:
    import realgap.protocol.stats as ps
    import realgap.stats as rs

    for name in ("wilson_interval", "pooled_rate", "iqm", "probability_of_improvement",
                 "stratified_bootstrap_ci", "success_rate", "vat_ttest"):
        assert getattr(ps, name) is getattr(rs, name), name


@pytest.mark.parametrize("eps", [0.0, 0.05, 0.2])
def test_vat_ttest_matches_scipy_ttest_rel(eps: float) -> None:
    rng = np.random.default_rng(1)
    rb = (rng.random(30) < 0.8).astype(float)
    rbp = (rng.random(30) < 0.5).astype(float)
    res = vat_ttest(rb, rbp, eps=eps, alpha=0.05)
    ref = ttest_rel(rb - eps, rbp, alternative="greater")  # H0: mean(D) <= eps by shifting
    assert res.t == pytest.approx(ref.statistic, rel=1e-12)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert res.n == 30 and res.eps == eps
    assert res.critical == pytest.approx(1.6991270265334972)  # t_{0.95, 29}
    assert res.reject == (res.t > res.critical) == (res.p_value < 0.05)


def test_vat_ttest_hand_worked() -> None:
    # D = [1, 1, 0, 1]: mean 0.75, sd 0.5, t = 0.75 / (0.5 / 2) = 3 > t_{0.95,3} = 2.353.
    r = vat_ttest([1, 1, 1, 1], [0, 0, 1, 0])
    assert r.t == pytest.approx(3.0) and r.critical == pytest.approx(2.3533634, rel=1e-6)
    assert r.reject and "reject H0" in r.decision
    # with eps = 0.5: t = (0.75 - 0.5) / 0.25 = 1 -> not rejected
    r2 = vat_ttest([1, 1, 1, 1], [0, 0, 1, 0], eps=0.5)
    assert r2.t == pytest.approx(1.0) and not r2.reject and "cannot reject" in r2.decision


def test_vat_ttest_degenerate_and_bad_input() -> None:
    same = vat_ttest([1, 0, 1], [0, -1, 0])  # D constant 1 > eps 0
    assert same.t == math.inf and same.p_value == 0.0 and same.reject
    tie = vat_ttest([1, 1], [1, 1])
    assert math.isnan(tie.t) and not tie.reject
    with pytest.raises(DataError, match="paired"):
        vat_ttest([1, 0, 1], [1, 0])
    with pytest.raises(DataError, match="at least 2 pairs"):
        vat_ttest([1], [0])
    with pytest.raises(ConfigError, match="alpha"):
        vat_ttest([1, 0], [0, 0], alpha=0)
