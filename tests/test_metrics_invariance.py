"""DIS, centroid distance and the shared space: hand-worked values and an independent route."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from realgap.errors import DataError
from realgap.metrics import domain_invariance, fit_gap_space


def test_identical_sets_give_dis_one_and_zero_distance() -> None:
    x = np.random.default_rng(0).normal(size=(60, 12))
    r = domain_invariance(x, x.copy(), k=384)
    assert r.dis == pytest.approx(1.0, abs=1e-12)
    assert r.centroid_distance == pytest.approx(0.0, abs=1e-12)
    assert r.k == 12  # min(384, N - 1 = 119, D = 12), recorded


def test_hand_worked_one_dimensional_example() -> None:
    # pooled [0, 1, 2, 3] -> standardize -> 1 PCA component -> min-max: 0, 1/3, 2/3, 1.
    # centroids 1/6 and 5/6, d = 2/3, DIS = 1 - (2/3) / sqrt(1) = 1/3.
    r = domain_invariance(np.array([[0.0], [1.0]]), np.array([[2.0], [3.0]]))
    assert r.k == 1
    assert r.centroid_distance == pytest.approx(2 / 3)
    assert r.dis == pytest.approx(1 / 3)


def test_matches_scikit_learn_route() -> None:
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    rng = np.random.default_rng(1)
    xs = rng.normal(size=(150, 20))
    xr = rng.normal(size=(100, 20)) * 1.3 + 0.4
    pooled = np.vstack([xs, xr])
    pca = PCA(n_components=8, svd_solver="full")
    z = MinMaxScaler().fit_transform(pca.fit_transform(StandardScaler().fit_transform(pooled)))
    d = np.linalg.norm(z[:150].mean(0) - z[150:].mean(0))
    r = domain_invariance(xs, xr, k=8)
    evr = fit_gap_space(xs, xr, k=8).explained_variance_ratio
    assert evr == pytest.approx(pca.explained_variance_ratio_.sum(), rel=1e-9)
    assert r.centroid_distance == pytest.approx(d, rel=1e-9)
    assert r.dis == pytest.approx(1 - d / np.sqrt(8), rel=1e-9)


@pytest.mark.parametrize("max_rows, method", [(4096, "gram-eigh"), (10, "randomized-svd")])
def test_wide_embedding_routes_match_exact(max_rows: int, method: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    import realgap.metrics.space as space_mod

    monkeypatch.setattr(space_mod, "EXACT_PCA_MAX_ROWS", max_rows)
    rng = np.random.default_rng(2)
    xs, xr = rng.normal(size=(40, 100)), rng.normal(size=(30, 100)) + 0.2
    space = fit_gap_space(xs, xr, k=384)  # N = 70 < D: the dual route, k = N - 1 = 69
    assert space.method == method and space.k == 69
    pooled = StandardScaler().fit_transform(np.vstack([xs, xr]))
    pca = PCA(n_components=69, svd_solver="full").fit(pooled)
    z = MinMaxScaler().fit_transform(pca.transform(pooled))
    d = np.linalg.norm(z[:40].mean(0) - z[40:].mean(0))
    assert np.linalg.norm(space.z_sim.mean(0) - space.z_real.mean(0)) == pytest.approx(d, rel=1e-6)
    np.testing.assert_allclose(space.component_variance_ratio,
                               pca.explained_variance_ratio_, rtol=1e-6, atol=1e-12)


def test_dis_falls_monotonically_as_shift_grows() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(size=(200, 16))
    other = base + 0.1 * rng.normal(size=(200, 16))  # a noisy copy: the shift dominates
    direction = rng.normal(size=16)
    direction /= np.linalg.norm(direction)
    dis = [domain_invariance(base, other + s * direction, k=16).dis
           for s in (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)]
    assert all(a > b for a, b in itertools.pairwise(dis)), dis
    assert 0.0 <= dis[-1] < dis[0] <= 1.0


def test_deterministic_and_validated() -> None:
    rng = np.random.default_rng(4)
    xs, xr = rng.normal(size=(30, 50)), rng.normal(size=(30, 50))
    assert domain_invariance(xs, xr, rng=7) == domain_invariance(xs, xr, rng=7)
    with pytest.raises(DataError, match="emb_real has 49"):
        domain_invariance(xs, xr[:, :49])
    bad = xr.copy()
    bad[3, 2] = np.nan
    with pytest.raises(DataError, match="row 3"):
        domain_invariance(xs, bad)


def test_imports_stay_light() -> None:
    import subprocess
    import sys

    code = ("import sys, realgap.metrics, realgap.protocol.stats, realgap.protocol.correlation, "
            "realgap.protocol.summarize; "
            "print(sorted(m for m in ('torch', 'mujoco', 'gymnasium', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
