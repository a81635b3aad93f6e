"""Coverage: blocked k-NN against scikit-learn, Naeem density/coverage against the formula."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from realgap.errors import ConfigError
from realgap.metrics import coverage_report
from realgap.metrics.coverage import kth_neighbour_distance


def test_kth_neighbour_matches_sklearn() -> None:
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(0)
    ref, q = rng.normal(size=(300, 8)), rng.normal(size=(50, 8))
    ours = kth_neighbour_distance(q, ref, 3)
    theirs = NearestNeighbors(n_neighbors=3).fit(ref).kneighbors(q)[0][:, 2]
    assert np.allclose(ours, theirs, rtol=1e-4)


def test_naeem_density_and_coverage_match_the_formula() -> None:
    rng = np.random.default_rng(1)
    sim, real = rng.normal(size=(80, 3)), rng.normal(size=(60, 3)) + 0.5
    k = 4
    r = coverage_report(sim, real, k=k, exclude_same_episode=False)
    dss = np.sqrt(((sim[:, None] - sim[None]) ** 2).sum(-1))
    radius = np.sort(dss, axis=1)[:, k]  # column 0 is the point itself
    drs = np.sqrt(((real[:, None] - sim[None]) ** 2).sum(-1))
    density = (drs <= radius[None]).sum() / (k * len(real))
    coverage = (drs.min(0) <= radius).mean()
    assert np.allclose(r.sim_radius, radius, rtol=1e-4)
    assert r.density == pytest.approx(density)
    assert r.coverage == pytest.approx(coverage)
    kth = np.sort(drs, axis=1)[:, k - 1]
    thr = np.quantile(radius, 0.95)
    assert r.threshold == pytest.approx(thr, rel=1e-4)
    assert r.outside_fraction == pytest.approx((kth > thr).mean())


def test_far_real_frames_are_outside_and_listed_worst_first() -> None:
    rng = np.random.default_rng(2)
    ep = np.repeat(np.arange(20), 10)
    sim = rng.normal(size=(200, 5))
    real = rng.normal(size=(50, 5))
    real[[7, 31]] += 20.0
    real[31] += 10.0
    factors = pd.DataFrame({"light": ["dim" if i in (7, 31) else "day" for i in range(50)]})
    r = coverage_report(sim, real, ep_sim=ep, n_worst=3, factors_real=factors)
    assert list(r.worst[:2]) == [31, 7]
    assert r.outside[[7, 31]].all()
    row = r.by_factor.set_index("level").loc["dim"]
    assert (row.n_frames, row.n_outside, row.fraction_outside) == (2, 2, 1.0)
    assert r.as_dict()["worst"][:2] == [31, 7]


def test_same_episode_neighbours_are_excluded() -> None:
    # Each sim episode is a tight cluster of near-duplicates: excluding the episode makes
    # the sim radius the between-episode distance, not the frame-to-frame step.
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(10, 2)) * 5
    sim = np.repeat(centres, 8, axis=0) + 1e-3 * rng.normal(size=(80, 2))
    ep = np.repeat(np.arange(10), 8)
    loose = coverage_report(sim, sim[:5] + 0.5, ep_sim=ep)
    tight = coverage_report(sim, sim[:5] + 0.5, ep_sim=ep, exclude_same_episode=False)
    assert loose.threshold > 100 * tight.threshold
    assert loose.outside_fraction == 0.0 and tight.outside_fraction == 1.0
    with pytest.raises(ConfigError, match="ep_sim"):
        coverage_report(sim, sim)


def test_max_sim_subsample_is_seeded() -> None:
    rng = np.random.default_rng(4)
    sim, real = rng.normal(size=(300, 3)), rng.normal(size=(40, 3))
    a = coverage_report(sim, real, exclude_same_episode=False, max_sim=100, rng=1)
    b = coverage_report(sim, real, exclude_same_episode=False, max_sim=100, rng=1)
    assert a.n_sim == 100 and np.array_equal(a.sim_index, b.sim_index)
    assert a.outside_fraction == b.outside_fraction


def test_group_masking_paths_agree() -> None:
    # sorted groups mask one slice per row, unsorted ones a full comparison: same result
    rng = np.random.default_rng(5)
    a, g = rng.normal(size=(300, 4)), rng.integers(0, 15, 300)
    order = np.argsort(g, kind="stable")
    unsorted = kth_neighbour_distance(a, a, 3, query_groups=g, ref_groups=g)
    by_slice = np.empty(300)
    by_slice[order] = kth_neighbour_distance(a[order], a[order], 3, query_groups=g[order],
                                             ref_groups=g[order])
    assert np.array_equal(unsorted, by_slice)
    brute = np.sqrt(((a[:, None] - a[None]) ** 2).sum(-1))
    brute[g[:, None] == g[None]] = np.inf
    assert np.allclose(unsorted, np.sort(brute, axis=1)[:, 2], rtol=1e-4)
