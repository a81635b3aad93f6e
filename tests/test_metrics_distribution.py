"""MMD, Fréchet distance and C2ST against direct numpy/scipy computations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from realgap.metrics import c2st_accuracy, frechet_distance, mmd_rbf
from realgap.metrics.distribution import median_heuristic


def _mmd2_direct(x: np.ndarray, y: np.ndarray, sigma: float) -> float:
    from sklearn.metrics.pairwise import rbf_kernel

    g = 1.0 / (2 * sigma**2)
    kxx, kyy, kxy = rbf_kernel(x, x, gamma=g), rbf_kernel(y, y, gamma=g), rbf_kernel(x, y, gamma=g)
    n, m = len(x), len(y)
    return ((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
            - 2 * kxy.mean())


def test_mmd_matches_direct_computation_and_median_heuristic() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 5)), rng.normal(size=(30, 5)) + 0.5
    r = mmd_rbf(x, y, n_perm=0)
    p = np.vstack([x, y])
    d = np.sqrt(((p[:, None] - p[None]) ** 2).sum(-1))
    assert r.bandwidth == pytest.approx(np.median(d[np.triu_indices(70, 1)]))
    assert r.mmd2 == pytest.approx(_mmd2_direct(x, y, r.bandwidth), rel=1e-10)
    assert r.estimator == "unbiased" and (r.n_x, r.n_y) == (40, 30)
    r2 = mmd_rbf(x, y, bandwidth=0.7, n_perm=0)
    assert r2.mmd2 == pytest.approx(_mmd2_direct(x, y, 0.7), rel=1e-10)


def test_mmd_permutation_p_value() -> None:
    rng = np.random.default_rng(1)
    ep = np.repeat(np.arange(20), 5)
    same = mmd_rbf(rng.normal(size=(100, 4)), rng.normal(size=(100, 4)), groups_x=ep, groups_y=ep,
                   n_perm=199, rng=0)
    shifted = mmd_rbf(rng.normal(size=(100, 4)), rng.normal(size=(100, 4)) + 1.0, groups_x=ep,
                      groups_y=ep, n_perm=199, rng=0)
    assert same.p_value > 0.05 and same.permutation_unit == "episode"
    assert shifted.p_value == pytest.approx(1 / 200)  # nothing beats the observed statistic
    again = mmd_rbf(rng.normal(size=(10, 2)), rng.normal(size=(10, 2)), rng=3)
    assert again.permutation_unit == "frame" and 0 < again.p_value <= 1


def test_mmd_subsample_is_seeded() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(300, 3)), rng.normal(size=(300, 3))
    a = mmd_rbf(x, y, max_samples=100, n_perm=20, rng=4)
    b = mmd_rbf(x, y, max_samples=100, n_perm=20, rng=4)
    assert a == b and a.n_x == 100


def test_frechet_matches_scipy_sqrtm_route() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6))
    y = rng.normal(size=(150, 6)) * 2 + 1
    mx, my = x.mean(0), y.mean(0)
    cx, cy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    ref = ((mx - my) ** 2).sum() + np.trace(cx + cy - 2 * scipy.linalg.sqrtm(cx @ cy).real)
    assert frechet_distance(x, y) == pytest.approx(ref, rel=1e-8)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)


def test_frechet_of_known_gaussians() -> None:
    # Large samples of N(0, I) and N(1, 4I) in 2-D: FD = 2 + 2 (1 + 4 - 2*2) = 4.
    rng = np.random.default_rng(4)
    fd = frechet_distance(rng.normal(size=(200_00, 2)), 1 + 2 * rng.normal(size=(200_00, 2)))
    assert fd == pytest.approx(4.0, abs=0.1)


def test_c2st_chance_for_same_distribution_and_high_for_separated() -> None:
    rng = np.random.default_rng(5)
    ep = np.repeat(np.arange(10), 20)
    same = c2st_accuracy(rng.normal(size=(200, 4)), rng.normal(size=(200, 4)), ep, ep, rng=0)
    far = c2st_accuracy(rng.normal(size=(200, 4)), rng.normal(size=(200, 4)) + 3, ep, ep, rng=0)
    assert same.chance == 0.5 and abs(same.accuracy - 0.5) < 0.1
    assert far.accuracy > 0.95 and far.n_splits == 5


def test_median_heuristic_of_coincident_points_is_one() -> None:
    assert median_heuristic(np.zeros((5, 3))) == 1.0


def test_frechet_with_a_constant_component_uses_the_fallback() -> None:
    # A constant column makes C_x singular (no Cholesky); it adds only (0 - 1)^2 = 1.
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(300, 4)), rng.normal(size=(200, 4)) + 0.5
    fd = frechet_distance(x, y)
    fd_const = frechet_distance(np.c_[x, np.zeros(300)], np.c_[y, np.ones(200)])
    assert fd_const == pytest.approx(fd + 1.0, rel=1e-10)
