"""realgap.stats: hand-worked values, the fast route equals the plain one, honest intervals,
a calibrated permutation null, ranks with ties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realgap.errors import ConfigError, DataError
from realgap.stats import (
    Estimate,
    bias_corrected_interval,
    bootstrap_ci,
    bootstrap_counts,
    cluster_bootstrap,
    episode_codes,
    estimate_from_replicates,
    null_from_replicates,
    paired_difference,
    percentile_interval,
    permutation_test,
    permuted_labels,
    rank_with_ties,
    ratio_replicates,
)


def test_episode_codes_separate_domains():
    codes, strat = episode_codes(np.array([0, 0, 1, 0, 0]), np.array(["s", "s", "s", "r", "r"]))
    # (r,0) < (s,0) < (s,1) in sorted order
    assert codes.tolist() == [1, 1, 2, 0, 0]
    assert strat.tolist() == [0, 1, 1]


def test_counts_keep_stratum_sizes_and_are_seeded():
    strat = np.array([0, 0, 0, 1, 1])
    c = bootstrap_counts(strat, 50, rng=3)
    assert c.shape == (50, 5)
    assert (c[:, :3].sum(1) == 3).all() and (c[:, 3:].sum(1) == 2).all()
    assert np.array_equal(c, bootstrap_counts(strat, 50, rng=3))


def test_percentile_interval_hand_values_and_never_widened():
    reps = np.arange(101, dtype=float)  # quantiles are exact on 0..100
    assert percentile_interval(reps, 0.1) == (5.0, 95.0)
    est = estimate_from_replicates(500.0, reps, n=4, n_frames=40, alpha=0.1)
    assert (est.lo, est.hi) == (5.0, 95.0)
    assert est.bias  # the point lies outside its interval: reported, not hidden
    assert est.as_dict()["bias"] is True
    assert percentile_interval([np.nan, np.inf]) != percentile_interval([1.0])
    assert all(np.isnan(percentile_interval([np.nan])))


def test_bc_interval_equals_percentile_when_point_is_median():
    reps = np.random.default_rng(0).normal(size=4001)
    med = float(np.median(reps))
    lo, hi = bias_corrected_interval(reps, med, 0.05)
    plo, phi = percentile_interval(reps, 0.05)
    assert lo == pytest.approx(plo, abs=1e-2) and hi == pytest.approx(phi, abs=1e-2)
    # a point below all replicates: correction undefined -> no interval, not a made-up one
    assert all(np.isnan(bias_corrected_interval(reps, -100.0)))
    # shifting the point shifts the BC interval the same way
    lo2, _ = bias_corrected_interval(reps, med + 0.5, 0.05)
    assert lo2 > lo


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError):
        percentile_interval([1.0, 2.0], alpha=1.5)
    with pytest.raises(ConfigError):
        bootstrap_counts(np.zeros(3), -1)
    with pytest.raises(ConfigError):
        null_from_replicates(1.0, [0.0], alternative="bigger")
    with pytest.raises(DataError):
        paired_difference([1.0, 2.0], [1.0], 0.0, 0.0, n=2)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 6), st.integers(2, 6), st.integers(0, 2**31 - 1))
def test_fast_ratio_route_equals_plain_resample(n_sim, n_real, seed):
    """A frame mean from per-episode sums and counts == the mean of the resampled frames."""
    gen = np.random.default_rng(seed)
    sizes = gen.integers(1, 6, size=n_sim + n_real)
    groups = np.repeat(np.arange(sizes.size), sizes)
    strata = np.repeat(np.r_[np.zeros(n_sim), np.ones(n_real)], sizes)
    x = gen.normal(size=groups.size)
    codes, ep_strat = episode_codes(groups, strata)
    counts = bootstrap_counts(ep_strat, 25, rng=seed)
    fast = ratio_replicates(counts, np.bincount(codes, weights=x), np.bincount(codes))
    plain = cluster_bootstrap(lambda idx: x[idx].mean(), groups, 25, rng=seed, strata=strata)
    np.testing.assert_allclose(fast, plain, rtol=1e-12, atol=1e-12)
    est = bootstrap_ci(lambda v: v.mean(), x, groups=groups, strata=strata, n_boot=25, rng=seed)
    assert (est.lo, est.hi) == percentile_interval(plain)
    assert est.n == n_sim + n_real and est.n_frames == x.size and est.n_boot == 25


def test_bootstrap_interval_covers_the_mean_of_clustered_data():
    """Coverage, not containment: over 200 data sets with episode effects, the 90% episode
    interval covers the true mean in roughly 90% of them (a frame bootstrap would not)."""
    gen = np.random.default_rng(7)
    hits = 0
    for rep in range(200):
        ep_effect = gen.normal(size=20)
        groups = np.repeat(np.arange(20), 10)
        x = ep_effect[groups] + 0.3 * gen.normal(size=200)
        est = bootstrap_ci(lambda v: v.mean(), x, groups=groups, n_boot=200, alpha=0.1, rng=rep)
        hits += est.lo <= 0.0 <= est.hi
    assert 0.8 <= hits / 200 <= 0.97


def test_null_hand_values():
    res = null_from_replicates(3.0, [0.0, 1.0, 2.0, 3.0], alternative="greater")
    assert res.p_value == pytest.approx(2 / 5)  # 3.0 itself counts as "at least as extreme"
    assert res.null_mean == pytest.approx(1.5)
    assert res.effect == pytest.approx((3.0 - 1.5) / np.std([0, 1, 2, 3], ddof=1))
    assert null_from_replicates(-1.0, [0.0, 1.0], "less").p_value == pytest.approx(1 / 3)


def test_permuted_labels_preserve_counts():
    lab = np.array([0, 0, 0, 1, 1])
    perms = permuted_labels(lab, 40, rng=1)
    assert (perms.sum(1) == 2).all()
    assert np.array_equal(perms, permuted_labels(lab, 40, rng=1))


def test_permutation_null_is_calibrated_and_detects_a_shift():
    """No shift: p-values roughly uniform (rejections near 5%). A shift: rejected."""
    def stat(groups, x):
        return lambda m: abs(x[m].mean() - x[~m].mean())

    groups = np.repeat(np.arange(16), 8)
    is_real = groups >= 8
    rejections = 0
    for seed in range(40):
        gen = np.random.default_rng(seed)
        x = gen.normal(size=16)[groups] + gen.normal(size=groups.size)
        rejections += permutation_test(stat(groups, x), groups, is_real, n_perm=99,
                                       rng=seed).p_value < 0.05
    assert rejections <= 6
    gen = np.random.default_rng(99)
    x = gen.normal(size=16)[groups] + gen.normal(size=groups.size) + 3.0 * is_real
    res = permutation_test(stat(groups, x), groups, is_real, n_perm=199, rng=0)
    assert res.p_value < 0.01 and res.effect > 3


def test_paired_difference_is_narrower_than_separate_intervals():
    gen = np.random.default_rng(0)
    common = gen.normal(size=500)
    a, b = common + 0.1 + 0.01 * gen.normal(size=500), common + 0.01 * gen.normal(size=500)
    d = paired_difference(a, b, 0.1, 0.0, n=10)
    assert d.lo > 0  # resolved despite heavily overlapping marginal intervals
    assert percentile_interval(a)[0] < percentile_interval(b)[1]


def test_rank_with_ties_marks_unresolved_pairs():
    gen = np.random.default_rng(0)
    noise = gen.normal(size=(4, 400))
    reps = np.stack([
        0.9 + 0.01 * noise[0],          # clear winner
        0.5 + 0.05 * noise[1],          # two that cannot be told apart
        0.49 + 0.05 * noise[2],
        0.0 + 0.01 * noise[3],          # clear loser
    ])
    ranks = rank_with_ties(["oracle", "a", "b", "noise"], [0.9, 0.5, 0.49, 0.0], reps)
    by = {r.name: r for r in ranks}
    assert [r.name for r in ranks] == ["oracle", "a", "b", "noise"]
    assert by["oracle"].rank == 1 and not by["oracle"].tied
    assert by["a"].rank == by["b"].rank == 2 and by["a"].tied_with == ("b",)
    assert by["noise"].rank == 4
    # lower-is-better flips the order
    flipped = rank_with_ties(["oracle", "noise"], [0.9, 0.0], reps[[0, 3]], higher_is_better=False)
    assert flipped[0].name == "noise"


def test_estimate_without_bootstrap():
    est = estimate_from_replicates(0.3, None, n=5, n_frames=50)
    assert isinstance(est, Estimate) and est.n_boot == 0 and np.isnan(est.lo) and not est.bias
