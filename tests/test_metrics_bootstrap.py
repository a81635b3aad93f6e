"""Episode bootstrap and gap_suite: intervals, shrinkage, determinism, properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from realgap.errors import ConfigError, DataError
from realgap.metrics import METRICS, bootstrap_ci, domain_invariance, gap_suite
from realgap.metrics.bootstrap import bootstrap_counts, episode_codes


def _mean(x: np.ndarray) -> float:
    return float(x.mean())


def test_counts_resample_episodes_within_strata() -> None:
    codes, strata = episode_codes(np.array([0, 0, 1, 1, 0, 1, 2]), np.array([0, 0, 0, 0, 1, 1, 1]))
    assert strata.tolist() == [0, 0, 1, 1, 1] and codes.tolist() == [0, 0, 1, 1, 2, 3, 4]
    c = bootstrap_counts(strata, 50, rng=0)
    assert (c[:, :2].sum(1) == 2).all() and (c[:, 2:].sum(1) == 3).all()


def test_interval_contains_point_and_shrinks_with_more_episodes() -> None:
    rng = np.random.default_rng(0)
    widths = []
    for n_eps in (10, 40, 160):
        ep = np.repeat(np.arange(n_eps), 5)
        x = np.repeat(rng.normal(size=n_eps), 5) + 0.1 * rng.normal(size=5 * n_eps)
        est = bootstrap_ci(_mean, x, groups=ep, n_boot=300, rng=1)
        assert est.lo <= est.value <= est.hi and est.n == n_eps and est.n_frames == 5 * n_eps
        widths.append(est.hi - est.lo)
    assert widths[0] > widths[1] > widths[2]
    # Episode (not frame) resampling: the width is about that of n_eps independent means.
    assert widths[1] == pytest.approx(2 * 1.96 / np.sqrt(40), rel=0.35)


def test_bootstrap_is_seeded() -> None:
    x = np.random.default_rng(1).normal(size=60)
    ep = np.repeat(np.arange(12), 5)
    a = bootstrap_ci(_mean, x, groups=ep, n_boot=50, rng=3)
    assert a == bootstrap_ci(_mean, x, groups=ep, n_boot=50, rng=3)
    assert a != bootstrap_ci(_mean, x, groups=ep, n_boot=50, rng=4)


def test_bootstrap_rejects_bad_arguments() -> None:
    x = np.zeros(6)
    with pytest.raises(ConfigError, match="alpha"):
        bootstrap_ci(_mean, x, groups=np.arange(6), alpha=1.5)
    with pytest.raises(DataError, match="array 1 has 5 rows"):
        bootstrap_ci(lambda a, b: 0.0, x, x[:5], groups=np.arange(6))


@settings(max_examples=25, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(4, 30), st.integers(1, 4)),
              elements=st.floats(-1e3, 1e3, allow_nan=False)))
def test_gap_of_a_set_with_itself_is_zero(x: np.ndarray) -> None:
    r = domain_invariance(x, x.copy())
    assert r.centroid_distance == pytest.approx(0.0, abs=1e-9)
    assert r.dis == pytest.approx(1.0, abs=1e-9)


@settings(max_examples=25, deadline=None)
@given(arrays(np.float64, st.integers(4, 40), elements=st.floats(-1e3, 1e3, allow_nan=False)),
       st.integers(0, 2**31))
def test_lo_le_point_le_hi(x: np.ndarray, seed: int) -> None:
    ep = np.arange(len(x)) // 2
    est = bootstrap_ci(_mean, x, groups=ep, n_boot=30, rng=seed)
    assert est.lo <= est.value <= est.hi


def _suite_data(seed: int, n_eps: int = 16, steps: int = 12, shift: float = 0.0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(10, 2))
    xs = rng.normal(size=(n_eps * steps, 10))
    xr = rng.normal(size=(n_eps * steps, 10)) + shift
    ep = np.repeat(np.arange(n_eps), steps)
    return xs, xr, xs @ w, xr @ w, ep, ep


def test_gap_suite_keys_intervals_and_determinism() -> None:
    data = _suite_data(0, shift=0.5)
    a = gap_suite(*data, n_boot=40, n_perm=20, rng=5)
    b = gap_suite(*data, n_boot=40, n_perm=20, rng=5)
    for m in METRICS:
        assert a[m] == b[m], m
        assert a[m].lo <= a[m].value <= a[m].hi, m
    assert a["dis"].n == 32 and a["as_transfer"].n == 16
    assert a["combined"].value == pytest.approx(
        2 * a["dis"].value * a["as_transfer"].value / (a["dis"].value + a["as_transfer"].value))
    assert a["coverage"].value == pytest.approx(1 - a["outside_fraction"].value)
    assert a["details"]["k"] == 10 and a["details"]["mmd"]["p_value"] < 0.2


def test_gap_suite_identical_sets() -> None:
    xs, _, ys, _, ep, _ = _suite_data(1)
    r = gap_suite(xs, xs, ys, ys, ep, ep, n_boot=20, n_perm=20)
    assert r["dis"].value == pytest.approx(1.0) and r["centroid_distance"].value == pytest.approx(0)
    assert r["fd"].value == pytest.approx(0.0, abs=1e-9)
    # a set against itself: at most about 1 - quantile of frames beyond the 95% radius
    assert r["as_transfer"].value > 0.99 and r["outside_fraction"].value <= 0.05


def test_gap_suite_points_equal_the_standalone_functions() -> None:
    from realgap._rng import child_seeds
    from realgap.metrics import action_score, c2st_accuracy, fit_gap_space, mmd_rbf

    xs, xr, ys, yr, es, er = _suite_data(2, shift=0.3)
    r = gap_suite(xs, xr, ys, yr, es, er, n_boot=10, n_perm=30, rng=9)
    seeds = child_seeds(9, 8)
    space = fit_gap_space(xs, xr, rng=seeds[1])
    m = mmd_rbf(space.z_sim, space.z_real, groups_x=es, groups_y=er, n_perm=30,
                max_samples=1500, rng=seeds[2])
    assert r["details"]["mmd"] == m.as_dict() and r["mmd"].value == m.mmd2
    assert r["as_sim"].value == action_score(xs, ys, es, rng=seeds[0]).score
    c = c2st_accuracy(space.z_sim, space.z_real, es, er, max_samples=3000, rng=seeds[3])
    assert r["c2st_acc"].value == pytest.approx(c.accuracy)
