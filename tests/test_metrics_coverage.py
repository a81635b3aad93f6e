"""Coverage: k-NN against scikit-learn, Naeem density/coverage against a hand port of prdc,
conformal p-values against a brute-force port, and the known answers of issue 8 (d)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from realgap.errors import DataError
from realgap.metrics.coverage import coverage_report, kth_neighbour_distance


def _prdc_density_coverage(reference: np.ndarray, samples: np.ndarray, k: int) -> tuple[float, float]:
    """Hand port of prdc 0.2 ``compute_prdc`` (density, coverage): sklearn distances, radius
    = (k+1)-th smallest distance of a reference point (itself included), strict ``<``."""
    from sklearn.metrics import pairwise_distances

    d_ref = pairwise_distances(reference)
    radii = np.partition(d_ref, k, axis=1)[:, k]
    d_rs = pairwise_distances(reference, samples)
    density = (1.0 / k) * (d_rs < radii[:, None]).sum(axis=0).mean()
    coverage = (d_rs.min(axis=1) < radii).mean()
    return float(density), float(coverage)


def _sim_standardize(sim: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The coverage space: centred on the sim mean, divided by the sim RMS feature std."""
    return (x - sim.mean(0)) / np.sqrt(sim.var(0).mean())


def test_kth_neighbour_matches_sklearn() -> None:
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(0)
    ref, q = rng.normal(size=(300, 8)), rng.normal(size=(50, 8))
    ours = kth_neighbour_distance(q, ref, 3)
    theirs = NearestNeighbors(n_neighbors=3).fit(ref).kneighbors(q)[0][:, 2]
    assert np.allclose(ours, theirs, rtol=1e-10)
    g = rng.integers(0, 15, 300)
    brute = np.sqrt(((ref[:, None] - ref[None]) ** 2).sum(-1))
    brute[g[:, None] == g[None]] = np.inf
    assert np.allclose(kth_neighbour_distance(ref, ref, 3, query_groups=g, ref_groups=g),
                       np.sort(brute, axis=1)[:, 2])


def test_naeem_density_and_coverage_equal_prdc_far_from_the_origin() -> None:
    # Far from the origin with unequal scales: float32 distances once lost the digits here.
    rng = np.random.default_rng(1)
    sim = rng.normal(size=(90, 4)) * [1.0, 2.0, 3.0, 0.5] + 1e4
    real = rng.normal(size=(70, 4)) * [1.0, 2.0, 3.0, 0.5] + 1e4 + 0.7
    k = 4
    r = coverage_report(sim, np.repeat(np.arange(18), 5), real, np.repeat(np.arange(14), 5), k=k)
    density, coverage = _prdc_density_coverage(_sim_standardize(sim, sim), _sim_standardize(sim, real), k)
    assert r.density == pytest.approx(density, abs=1e-12)
    assert r.naeem_coverage == pytest.approx(coverage, abs=1e-12)
    assert 0.2 < r.density < 1.0 and 0.2 < r.naeem_coverage < 1.0  # the test can fail both ways
    assert r.density_count.sum() / (k * len(real)) == pytest.approx(r.density)


def test_identical_sets_give_density_one() -> None:
    rng = np.random.default_rng(2)
    sim = rng.normal(size=(120, 6)) * 3 + 500
    ep = np.repeat(np.arange(24), 5)
    r = coverage_report(sim, ep, sim.copy(), ep, k=5)
    assert r.density == 1.0 and r.naeem_coverage == 1.0
    z = _sim_standardize(sim, sim)
    assert _prdc_density_coverage(z, z.copy(), 5) == (1.0, 1.0)


def _brute_conformal(sim: np.ndarray, fold: np.ndarray, real: np.ndarray, k: int) -> np.ndarray:
    """Cross-conformal p-values from full distance matrices (an independent port)."""
    dss = np.sqrt(((sim[:, None] - sim[None]) ** 2).sum(-1))
    drs = np.sqrt(((real[:, None] - sim[None]) ** 2).sum(-1))
    n_ge = np.zeros(len(real))
    for f in np.unique(fold):
        out = fold != f
        cal = np.sort(dss[np.ix_(fold == f, out)], axis=1)[:, k - 1]
        test = np.sort(drs[:, out], axis=1)[:, k - 1]
        n_ge += (cal[None, :] >= test[:, None]).sum(1)
    return (1 + n_ge) / (1 + len(sim))


def test_p_values_equal_a_brute_force_cross_conformal_port() -> None:
    rng = np.random.default_rng(3)
    sim, real = rng.normal(size=(60, 3)), rng.normal(size=(25, 3)) * 1.5
    ep = np.repeat(np.arange(12), 5)
    r = coverage_report(sim, ep, real, np.arange(25), k=3, rng=7, n_cal_folds=4)
    fold = r.sim_fold
    assert np.array_equal(np.unique(fold), np.arange(4))
    assert all(np.unique(fold[ep == e]).size == 1 for e in range(12))  # whole episodes
    z_sim, z_real = _sim_standardize(sim, sim), _sim_standardize(sim, real)
    assert np.allclose(r.p_value, _brute_conformal(z_sim, fold, z_real, 3))
    assert np.allclose(r.knn_distance, np.sort(np.sqrt(((z_real[:, None] - z_sim[None]) ** 2)
                                                       .sum(-1)), axis=1)[:, 2])
    assert np.array_equal(r.flagged, r.p_value < 0.05)


def _trajectories(rng: np.random.Generator, n_eps: int, steps: int, dim: int,
                  mix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Episodes as smooth walks in a 3-d latent space, seen through a fixed linear map."""
    start = rng.normal(size=(n_eps, 1, 3))
    walk = np.cumsum(0.15 * rng.normal(size=(n_eps, steps, 3)), axis=1)
    lat = (start + walk).reshape(-1, 3)
    x = lat @ mix + 0.3 * rng.normal(size=(len(lat), dim))
    return x, np.repeat(np.arange(n_eps), steps)


def test_in_distribution_flag_rate_is_what_alpha_says() -> None:
    rates = []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        mix = np.random.default_rng(99).normal(size=(3, 16))
        sim, es = _trajectories(rng, 60, 10, 16, mix)
        real, er = _trajectories(rng, 60, 10, 16, mix)  # new episodes, same distribution
        rates.append(coverage_report(sim, es, real, er, alpha=0.1, rng=seed).outside_fraction)
    # 8 x 600 correlated frames: the mean rate of a calibrated flag sits near alpha = 0.1
    assert 0.06 < float(np.mean(rates)) < 0.14, rates


def test_principal_axes_keep_the_calibration() -> None:
    # Axes fitted on the calibration frames spread them along the axes: on a flat spectrum
    # the flag rate fell from 0.05 to 0.000. Axes fitted on a fold that does not calibrate
    # keep it at alpha.
    rates = []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        sim, real = rng.normal(size=(1200, 60)), rng.normal(size=(1200, 60))
        ep = np.repeat(np.arange(60), 20)
        r = coverage_report(sim, ep, real, ep, n_components=8, rng=seed, alpha=0.1)
        rates.append(r.outside_fraction)
        assert np.isnan(r.calibration_score[r.sim_fold == 0]).all()
        assert r.space["fitted_on"] == "sim calibration fold 0 (240 frames)"
    assert 0.06 < float(np.mean(rates)) < 0.14, rates


def _shifted_with_outliers(seed: int, share: float = 0.15):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(3, 24))
    sim, es = _trajectories(rng, 50, 12, 24, mix)
    real, er = _trajectories(rng, 20, 12, 24, mix)
    real += 0.15 * mix.std() * rng.normal(size=24)            # a mild, global shift
    n_out = round(share * len(real))
    hide = rng.choice(len(real), n_out, replace=False)
    return sim, es, real, er, hide


def test_hidden_out_of_support_frames_are_flagged_with_few_false_flags() -> None:
    # issue 8 (d): 15% of a mildly shifted set replaced by frames pushed off the sim
    # manifold (2 noise scales per dimension, ~10 units where sim neighbours sit ~3 apart).
    sim, es, real, er, hide = _shifted_with_outliers(0)
    real[hide] += 2.0 * np.random.default_rng(100).normal(size=(len(hide), real.shape[1]))
    r = coverage_report(sim, es, real, er, alpha=0.05, rng=0)
    inlier = np.ones(len(real), dtype=bool)
    inlier[hide] = False
    assert r.flagged[hide].mean() >= 0.8
    assert r.flagged[inlier].mean() <= 0.10
    assert {int(i) for i in r.worst[:5]} <= {int(i) for i in hide}


def test_hiding_outliers_does_not_lower_the_flag_rate_of_the_other_frames() -> None:
    # The regression of issue 8: a pooled space stretched to hidden outliers and flagged
    # fewer of the other shifted frames. Fitted on sim only, the other frames do not move.
    sim, es, real, er, hide = _shifted_with_outliers(1)
    real = real + 0.8 * sim.std(0)  # shifted enough that some frames are flagged
    keep = np.setdiff1d(np.arange(len(real)), hide)
    clean = coverage_report(sim, es, real[keep], er[keep], rng=0)
    dirty_real = real.copy()
    dirty_real[hide] = 50.0 * np.abs(real[hide]) + 100.0
    dirty = coverage_report(sim, es, dirty_real, er, rng=0)
    assert 0.1 < clean.outside_fraction < 0.9
    assert np.array_equal(dirty.flagged[keep], clean.flagged)
    assert np.array_equal(dirty.p_value[keep], clean.p_value)
    assert dirty.flagged[hide].all()
    assert dirty.space == clean.space


def _images(rng: np.random.Generator, n_eps: int, steps: int, size: int = 12,
            noise: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """Tiny rendered scenes: a red block sliding over a grey table with per-episode light."""
    frames = []
    for _ in range(n_eps):
        light = rng.uniform(0.8, 1.0)
        x0, y0 = rng.integers(0, size - 4, 2)
        for t in range(steps):
            img = np.full((size, size, 3), 0.5 * light)
            cx = min(size - 3, x0 + t // 2)
            img[y0:y0 + 3, cx:cx + 3] = np.array([0.9, 0.1, 0.1]) * light
            frames.append(img + noise * rng.normal(size=img.shape))
    return np.asarray(frames).reshape(n_eps * steps, -1), np.repeat(np.arange(n_eps), steps)


def test_colour_inverted_frames_hidden_in_rendered_images_are_flagged() -> None:
    rng = np.random.default_rng(5)
    sim, es = _images(rng, 40, 8)
    real, er = _images(rng, 15, 8)
    real = real * 0.97 + 0.02                       # a mild colour response shift
    hide = rng.choice(len(real), 18, replace=False)  # 15% of 120 frames
    real[hide] = 1.0 - real[hide]                    # colour-inverted
    r = coverage_report(sim, es, real, er, n_components=16, rng=0)
    inlier = np.setdiff1d(np.arange(len(real)), hide)
    assert r.flagged[hide].mean() >= 0.8
    assert r.flagged[inlier].mean() <= 0.10
    assert r.space["name"] == "sim-pca" and r.space["n_components"] == 16
    assert 0 < r.space["retained_variance"] <= 1


def test_space_records_a_cut_and_the_report_is_json_ready() -> None:
    rng = np.random.default_rng(6)
    sim, real = rng.normal(size=(30, 50)), rng.normal(size=(10, 50)) + 4.0
    factors = pd.DataFrame({"light": ["dim"] * 5 + ["day"] * 5})
    r = coverage_report(sim, np.repeat(np.arange(6), 5), real, np.repeat([7, 8], 5),
                        n_components=64, factors=factors, rng=0)
    n_axes = int((r.sim_fold == 0).sum()) - 1  # the axes are fitted on fold 0 alone
    assert r.space["n_components"] == n_axes and f"cut to {n_axes}" in r.space["warning"]
    d = json.loads(json.dumps(r.as_dict()))
    assert d["n_flagged"] == len(d["flagged"]) == int(r.flagged.sum()) > 0
    assert {f["episode"] for f in d["flagged"]} <= {7, 8}
    assert [f["p_value"] for f in d["flagged"]] == sorted(f["p_value"] for f in d["flagged"])
    row = r.by_factor.set_index("level").loc["dim"]
    assert (row.n_frames, row.n_outside) == (5, int(r.flagged[:5].sum()))


def test_same_seed_same_bytes() -> None:
    rng = np.random.default_rng(7)
    sim, real = rng.normal(size=(100, 5)), rng.normal(size=(40, 5))
    ep = np.repeat(np.arange(20), 5)
    a = coverage_report(sim, ep, real, np.arange(40), rng=3, n_components=3)
    b = coverage_report(sim, ep, real, np.arange(40), rng=3, n_components=3)
    assert a.p_value.tobytes() == b.p_value.tobytes()
    assert a.knn_distance.tobytes() == b.knn_distance.tobytes()


def test_bad_inputs_name_the_argument() -> None:
    rng = np.random.default_rng(8)
    sim, real = rng.normal(size=(40, 4)), rng.normal(size=(10, 4))
    ep = np.repeat(np.arange(8), 5)
    with pytest.raises(DataError, match="real_emb"):
        coverage_report(sim, ep, real[:, :3], np.arange(10))
    with pytest.raises(DataError, match="sim_episodes"):
        coverage_report(sim, np.zeros(40), real, np.arange(10))
    with pytest.raises(DataError, match="real_episodes"):
        coverage_report(sim, ep, real, np.arange(9))
    with pytest.raises(DataError, match="k: 39"):
        coverage_report(sim, ep, real, np.arange(10), k=39)


def test_max_sim_takes_whole_episodes_seeded() -> None:
    rng = np.random.default_rng(9)
    sim, real = rng.normal(size=(300, 4)), rng.normal(size=(30, 4))
    ep = np.repeat(np.arange(30), 10)
    a = coverage_report(sim, ep, real, np.arange(30), max_sim=95, rng=1)
    b = coverage_report(sim, ep, real, np.arange(30), max_sim=95, rng=1)
    assert a.n_sim == 100 and np.array_equal(a.sim_index, b.sim_index)
    assert np.array_equal(np.bincount(ep[a.sim_index], minlength=30)[np.unique(ep[a.sim_index])],
                          [10] * 10)                                    # whole episodes
    assert a.p_value.tobytes() == b.p_value.tobytes()
    full = coverage_report(sim, ep, real, np.arange(30), rng=1)
    assert full.n_sim == 300 and not np.array_equal(full.p_value, a.p_value)


@pytest.mark.parametrize("n_components", [None, 8])
def test_noiseless_pixels_of_the_sim_distribution_are_flagged_at_about_alpha(n_components: int | None) -> None:
    # Pixels a sliding block rarely covers have a tiny sim std: per-feature standardization
    # divided by it, the calibration frames (which helped set it) looked typical and 28% of
    # new frames of the same distribution were flagged at alpha = 0.05.
    rates = []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        sim, es = _images(rng, 30, 8, noise=0.0)
        real, er = _images(rng, 30, 8, noise=0.0)
        rates.append(coverage_report(sim, es, real, er, n_components=n_components,
                                     rng=seed).outside_fraction)
    assert float(np.mean(rates)) <= 0.10, rates
