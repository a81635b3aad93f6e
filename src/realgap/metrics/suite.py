"""``gap_suite``: every gap metric of one encoder, each with an episode-bootstrap interval.

The shared DIS space (:func:`realgap.metrics.space.fit_gap_space`) is fitted once and
reused by DIS, MMD, Fréchet, C2ST and coverage; the action probes work on the raw
embeddings (encoder-dis-as-framework.txt III-D). Every probe and classifier is fitted
once; the bootstrap then resamples EPISODES (within each domain) and recomputes each
score from per-episode sums of per-frame quantities, so thousands of replicates cost
little. What the intervals therefore cover:

- ``dis``, ``centroid_distance``: resampled sim and real episodes, PCA space held fixed;
- ``as_sim``, ``as_real``: resampled validation episodes, probe held fixed (the interval
  does not include the probe-fitting variance or the choice of split);
- ``as_transfer``: resampled real episodes, sim probe held fixed;
- ``combined``: harmonic mean of paired ``dis`` and ``as_transfer`` replicates (the same
  draws of real episodes);
- ``mmd``: unbiased MMD^2 on the kernel subsample, frames weighted by their episode's
  multiplicity; ``fd``: Gaussian moments from per-episode sums (``min(n_boot, fd_boot)``
  replicates: each needs two eigendecompositions);
- ``c2st_acc``: out-of-fold correctness held fixed, episodes resampled;
- ``coverage`` (share of real frames inside sim support, ``1 - outside_fraction``),
  ``outside_fraction``, ``density``: real episodes resampled, sim support held fixed;
  ``naeem_coverage``: sim episodes resampled.

Distance-type scores (centroid distance and DIS, MMD, FD) are biased away from zero
(sampling noise adds distance) and resampling adds more of the same bias, so for a small
gap their percentile interval lies on one side of the point (above it for distances,
below it for DIS). That is reported as measured; compare encoders by overlapping intervals
computed the same way, not by the interval's position around the point.

Each value is an :class:`~realgap.metrics.bootstrap.Estimate` (``n`` = episodes,
``n_frames``, ``n_boot``); ``details`` holds the rest (k used, PCA method, MMD p-value
and bandwidth, C2ST chance level, the coverage report, the worst-covered real frames).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from realgap._rng import RngLike, as_rng, child_seeds
from realgap.errors import DataError
from realgap.metrics._validate import as_groups, as_matrix, check_positive_int, check_prob
from realgap.metrics.bootstrap import (
    Estimate,
    bootstrap_counts,
    episode_codes,
    percentile_interval,
    ratio_replicates,
)
from realgap.metrics.coverage import coverage_report
from realgap.metrics.distribution import (
    c2st_accuracy,
    frechet_from_moments,
    mmd2_weighted,
    mmd_setup,
    mmd_test_from_kernel,
)
from realgap.metrics.invariance import dis_from_space
from realgap.metrics.probe import RidgeProbe, episode_split, score_from_mse
from realgap.metrics.space import fit_gap_space

#: Above this many floats (float32, 4 bytes each), per-episode second moments are not
#: stored and the FD interval is skipped (NaN, ``n_boot = 0``).
_FD_MOMENT_LIMIT = 128 * 2**20

METRICS: tuple[str, ...] = (
    "dis", "centroid_distance", "as_sim", "as_real", "as_transfer", "combined", "mmd", "fd",
    "c2st_acc", "coverage", "outside_fraction", "density", "naeem_coverage",
)


def harmonic_mean(a: float | np.ndarray, b: float | np.ndarray) -> float | np.ndarray:
    """``2ab / (a + b)``, 0 where ``a + b == 0``: the combined score of DIS and AS(sim->real)."""
    a_, b_ = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(a_ + b_ > 0, 2 * a_ * b_ / (a_ + b_), 0.0)
    return float(out) if out.ndim == 0 else out


def _onehot(codes: np.ndarray, n_eps: int) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))),
                         shape=(n_eps, len(codes)))


def _ep_sums(values: np.ndarray, codes: np.ndarray, n_eps: int) -> np.ndarray:
    """Per-episode sums ``(E,)`` or ``(E, d)`` of per-frame ``values``."""
    return np.asarray(_onehot(codes, n_eps) @ values)


def _est(point: float, reps: np.ndarray | None, alpha: float, n: int, n_frames: int) -> Estimate:
    if reps is None or len(reps) == 0:
        return Estimate(float(point), float("nan"), float("nan"), n, n_frames, 0)
    lo, hi = percentile_interval(reps, alpha, float(point))
    return Estimate(float(point), lo, hi, n, n_frames, len(reps))


def _frame_mean_est(per_frame: np.ndarray, codes: np.ndarray, counts: np.ndarray,
                    alpha: float, transform: Any = None) -> Estimate:
    n_eps = counts.shape[1]
    sums = _ep_sums(per_frame.astype(np.float64), codes, n_eps)
    sizes = np.bincount(codes, minlength=n_eps)
    point = float(per_frame.mean())
    reps = ratio_replicates(counts, sums, sizes) if len(counts) else None
    if transform is not None:
        point = float(transform(point))
        reps = None if reps is None else transform(reps)
    used = int(np.count_nonzero(sizes))
    return _est(point, reps, alpha, used, len(per_frame))


def gap_suite(
    emb_sim: np.ndarray,
    emb_real: np.ndarray,
    act_sim: np.ndarray,
    act_real: np.ndarray,
    ep_sim: np.ndarray,
    ep_real: np.ndarray,
    *,
    k: int = 384,
    n_boot: int = 200,
    alpha: float = 0.05,
    rng: RngLike = 0,
    factors_real: Any = None,
    val_fraction: float = 0.2,
    ridge_alpha: float | str = "cv",
    mmd_max_samples: int = 1500,
    n_perm: int = 200,
    c2st_max_samples: int = 3000,
    coverage_k: int = 5,
    coverage_quantile: float = 0.95,
    coverage_dims: int = 64,
    coverage_max_sim: int | None = 10000,
    n_worst: int = 16,
    fd_boot: int = 50,
) -> dict[str, Any]:
    """All gap metrics of one encoder with episode-bootstrap intervals (module docstring).

    Args:
        emb_sim, emb_real: ``(n_sim, D)``, ``(n_real, D)`` embeddings, same encoder.
        act_sim, act_real: ``(n_sim, A)``, ``(n_real, A)`` actions.
        ep_sim, ep_real: ``(n_sim,)``, ``(n_real,)`` episode ids (separate id spaces).
        k: PCA components of the shared space (reduced to ``min(k, N-1, D)``).
        n_boot: episode-bootstrap replicates (0: no intervals); ``alpha``: 1 - coverage.
        rng: one seed for everything (split, PCA, subsamples, permutations, bootstrap).
        factors_real: optional per-real-frame factor table for the coverage breakdown.
        coverage_dims: coverage uses the leading this-many components of the shared
            space (k-NN distances in hundreds of min-max dimensions concentrate, and the
            cost is linear in it); ``coverage_max_sim``: sim support subsample size.
        mmd_max_samples, c2st_max_samples: per-side subsample caps.
        fd_boot: cap on the Fréchet replicates.
        ridge_alpha: the action probes' penalty, or ``"cv"`` (default): chosen by
            leave-episodes-out CV inside each train split (:mod:`realgap.metrics.probe`).

    Returns:
        ``{metric: Estimate for metric in METRICS} | {"details": dict}``.
    """
    n_boot = check_positive_int(n_boot, "n_boot", minimum=0)
    check_prob(alpha, "alpha")
    xs, xr = as_matrix(emb_sim, "emb_sim"), as_matrix(emb_real, "emb_real")
    ys, yr = as_matrix(act_sim, "act_sim"), as_matrix(act_real, "act_real")
    for y, x, tag in ((ys, xs, "sim"), (yr, xr, "real")):
        if len(y) != len(x):
            raise DataError(f"act_{tag}: {len(y)} rows but emb_{tag} has {len(x)}; "
                            "pass one action per frame")
    es = as_groups(ep_sim, len(xs), "ep_sim")
    er = as_groups(ep_real, len(xr), "ep_real")
    seeds = child_seeds(rng, 8)
    s_split, s_pca, s_mmd, s_c2st, s_cov, s_boot, s_split_r, _ = seeds

    space = fit_gap_space(xs, xr, k=k, rng=s_pca)
    cs, _ = episode_codes(es)
    cr, _ = episode_codes(er)
    n_es, n_er = int(cs.max()) + 1, int(cr.max()) + 1
    boot = as_rng(s_boot)
    cnt_s = bootstrap_counts(np.zeros(n_es), n_boot, boot)
    cnt_r = bootstrap_counts(np.zeros(n_er), n_boot, boot)
    out: dict[str, Any] = {}

    # DIS and centroid distance from per-episode sums of the shared space.
    dres = dis_from_space(space)
    d_reps = None
    if n_boot:
        c_sim = ratio_replicates(cnt_s, _ep_sums(space.z_sim, cs, n_es), np.bincount(cs))
        c_real = ratio_replicates(cnt_r, _ep_sums(space.z_real, cr, n_er), np.bincount(cr))
        d_reps = np.linalg.norm(c_sim - c_real, axis=1)
    n_all, f_all = n_es + n_er, len(xs) + len(xr)
    out["centroid_distance"] = _est(dres.centroid_distance, d_reps, alpha, n_all, f_all)
    dis_reps = None if d_reps is None else 1.0 - d_reps / np.sqrt(space.k)
    out["dis"] = _est(dres.dis, dis_reps, alpha, n_all, f_all)

    # Action probes: fitted once, validation episodes resampled.
    tr_s, va_s = episode_split(es, val_fraction, s_split)
    tr_r, va_r = episode_split(er, val_fraction, s_split_r)
    probe_s = RidgeProbe.fit(xs[tr_s], ys[tr_s], ridge_alpha, groups=es[tr_s])
    probe_r = RidgeProbe.fit(xr[tr_r], yr[tr_r], ridge_alpha, groups=er[tr_r])
    if ys.shape[1] != yr.shape[1]:
        raise DataError(f"act_real has {yr.shape[1]} action dims but act_sim has {ys.shape[1]}; "
                        "sim and real must share the action space")
    err_s = probe_s.frame_errors(xs[va_s], ys[va_s])
    err_r = probe_r.frame_errors(xr[va_r], yr[va_r])
    err_t = probe_s.frame_errors(xr, yr)
    # Validation episodes are resampled among themselves (each replicate keeps their number).
    cnt_vs = _restrict(n_boot, n_es, np.unique(cs[va_s]), boot)
    cnt_vr = _restrict(n_boot, n_er, np.unique(cr[va_r]), boot)
    out["as_sim"] = _frame_mean_est(err_s, cs[va_s], cnt_vs, alpha, score_from_mse)
    out["as_real"] = _frame_mean_est(err_r, cr[va_r], cnt_vr, alpha, score_from_mse)
    out["as_transfer"] = _frame_mean_est(err_t, cr, cnt_r, alpha, score_from_mse)
    t_reps = ratio_replicates(cnt_r, _ep_sums(err_t, cr, n_er), np.bincount(cr)) if n_boot else None
    comb_point = harmonic_mean(out["dis"].value, out["as_transfer"].value)
    comb_reps = None if t_reps is None else harmonic_mean(dis_reps, score_from_mse(t_reps))
    out["combined"] = _est(float(comb_point), comb_reps, alpha, n_all, f_all)

    # MMD on the kernel subsample.
    # Same draws as mmd_rbf(..., rng=s_mmd): the kernel matrix is built once for both.
    gen_mmd = as_rng(s_mmd)
    ix, iy, sigma, kmat = mmd_setup(space.z_sim, space.z_real, max_samples=mmd_max_samples,
                                    bandwidth=None, rng=gen_mmd)
    mres = mmd_test_from_kernel(kmat, ix, iy, sigma, es, er, n_perm, gen_mmd)
    m_reps = None
    if n_boot:
        wx = np.r_[cnt_s[:, cs[ix]].T, np.zeros((len(iy), n_boot))]
        wy = np.r_[np.zeros((len(ix), n_boot)), cnt_r[:, cr[iy]].T]
        m_reps = mmd2_weighted(kmat, wx, wy)
    out["mmd"] = _est(mres.mmd2, m_reps, alpha, n_all, len(ix) + len(iy))

    # Fréchet distance from per-episode moments.
    out["fd"] = _fd_estimate(space.z_sim, space.z_real, cs, cr, cnt_s[:fd_boot], cnt_r[:fd_boot],
                             alpha, n_all)

    # C2ST: out-of-fold correctness held fixed.
    cres = c2st_accuracy(space.z_sim, space.z_real, es, er, max_samples=c2st_max_samples,
                         rng=s_c2st)
    codes_c = np.r_[cs[cres.index_x], n_es + cr[cres.index_y]]
    cnt_c = np.hstack([cnt_s, cnt_r])
    out["c2st_acc"] = _frame_mean_est(cres.correct.astype(float), codes_c, cnt_c, alpha)

    # Coverage in the leading components.
    dims = min(int(coverage_dims), space.k)
    cov = coverage_report(space.z_sim[:, :dims], space.z_real[:, :dims], ep_sim=es,
                          k=coverage_k, quantile=coverage_quantile, n_worst=n_worst,
                          factors_real=factors_real, max_sim=coverage_max_sim, rng=s_cov)
    outside = cov.outside.astype(float)
    out["outside_fraction"] = _frame_mean_est(outside, cr, cnt_r, alpha)
    out["coverage"] = _frame_mean_est(1.0 - outside, cr, cnt_r, alpha)
    out["density"] = _frame_mean_est(cov.density_count / cov.k, cr, cnt_r, alpha)
    out["naeem_coverage"] = _frame_mean_est(cov.sim_reached.astype(float), cs[cov.sim_index],
                                            cnt_s, alpha)

    out["details"] = {
        "k": space.k, "k_requested": space.k_requested, "dim": space.dim,
        "pca_method": space.method, "explained_variance_ratio": space.explained_variance_ratio,
        "n_sim_frames": len(xs), "n_real_frames": len(xr),
        "n_sim_episodes": n_es, "n_real_episodes": n_er,
        "n_boot": n_boot, "alpha": alpha, "ridge_alpha": ridge_alpha,
        "val_fraction": val_fraction, "mmd": mres.as_dict(), "c2st": cres.as_dict(),
        "coverage": cov.as_dict() | {"dims": dims}, "coverage_report": cov,
    }
    return out


def _restrict(n_boot: int, n_eps: int, keep: np.ndarray, gen: np.random.Generator) -> np.ndarray:
    """Bootstrap counts ``(n_boot, n_eps)`` that draw only among the episodes ``keep``."""
    out = np.zeros((n_boot, n_eps), dtype=np.int64)
    if n_boot:
        out[:, keep] = gen.multinomial(keep.size, np.full(keep.size, 1.0 / keep.size), size=n_boot)
    return out


def _fd_estimate(zs: np.ndarray, zr: np.ndarray, cs: np.ndarray, cr: np.ndarray,
                 cnt_s: np.ndarray, cnt_r: np.ndarray, alpha: float, n_all: int) -> Estimate:
    def moments(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return z.mean(0), np.atleast_2d(np.cov(z, rowvar=False))

    mu_s, c_s = moments(zs)
    mu_r, c_r = moments(zr)
    point = frechet_from_moments(mu_s, c_s, mu_r, c_r)
    k = zs.shape[1]
    n_es, n_er = cnt_s.shape[1], cnt_r.shape[1]
    if len(cnt_s) == 0 or (n_es + n_er) * k * k > _FD_MOMENT_LIMIT:
        return _est(point, None, alpha, n_all, len(zs) + len(zr))

    def ep_moments(z: np.ndarray, codes: np.ndarray, n_eps: int) -> tuple[np.ndarray, ...]:
        s1 = _ep_sums(z, codes, n_eps)
        s2 = np.empty((n_eps, k, k), dtype=np.float32)  # halves memory; sums stay ~1e-7 relative
        order = np.argsort(codes, kind="stable")
        bounds = np.r_[0, np.cumsum(np.bincount(codes, minlength=n_eps))]
        for e in range(n_eps):
            ze = z[order[bounds[e]:bounds[e + 1]]]
            s2[e] = ze.T @ ze
        return s1, s2, np.bincount(codes, minlength=n_eps).astype(np.float64)

    s1s, s2s, ns = ep_moments(zs, cs, n_es)
    s1r, s2r, nr = ep_moments(zr, cr, n_er)
    reps = np.empty(len(cnt_s))
    for b in range(len(cnt_s)):
        moms = []
        for cnt, s1, s2, n in ((cnt_s[b], s1s, s2s, ns), (cnt_r[b], s1r, s2r, nr)):
            w = cnt.astype(np.float64)
            tot = w @ n
            mu = (w @ s1) / tot
            second = np.tensordot(w.astype(np.float32), s2, axes=1).astype(np.float64)
            cov = (second - tot * np.outer(mu, mu)) / (tot - 1)
            moms.append((mu, cov))
        reps[b] = frechet_from_moments(moms[0][0], moms[0][1], moms[1][0], moms[1][1])
    return _est(point, reps, alpha, n_all, len(zs) + len(zr))
