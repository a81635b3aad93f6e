"""Benchmark: the whole gap suite WITH its permutation nulls, against a plain route.

Two shapes (issue 8, item 9): 50,000 x 768 (a ViT-sized embedding) and 2,000 x 12,288 (raw
64 px pixels). For each, in one run on the same data:

- realgap: :func:`realgap.metrics.gap_suite` (common space, centroid distance / DIS /
  calibrated DIS / paper DIS / MMD / Fréchet / nested-CV C2ST, each with a 200-permutation
  null over episodes and 200 episode-bootstrap replicates; cross-fitted AS sim/real/transfer
  with floors; sim-fitted coverage), timed as a whole and piece by piece;
- plain: scikit-learn / scipy doing the same things the obvious way: ``StandardScaler +
  PCA + MinMaxScaler``; each permutation recomputes every two-sample score from the
  relabelled frames (means, ``rbf_kernel`` sub-blocks, ``np.cov`` + ``scipy.linalg.sqrtm``,
  and the nested CV refitted with ``LinearDiscriminantAnalysis`` over the same grid of
  leading components and ``StratifiedGroupKFold``/``GroupKFold`` folds); the bootstrap
  recomputes the scores on resampled episodes' rows (the MMD left out); AS with
  ``GridSearchCV(Ridge)`` over ``GroupKFold``; coverage with ``NearestNeighbors``. The
  plain permutation and bootstrap loops run a few iterations and are extrapolated linearly
  to 200 (marked ``~``): running them in full would take hours.

    python benchmarks/bench_metrics.py [--shape both|wide|tall] [--n-boot 200] [--n-perm 200]

Data: sim and real in episodes of 100 (tall) or 50 (wide) steps; a 32-d latent random walk
per episode mapped to the embedding plus noise; real = sim shifted along 8 latent
directions; actions = a linear map of the latent plus noise; state = the latent.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def make_data(frames: int, dim: int, steps: int, seed: int = 0) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    n_eps = frames // (2 * steps)
    latent_dim = 32
    mix = rng.normal(size=(latent_dim, dim)) / np.sqrt(latent_dim)
    act_map = rng.normal(size=(latent_dim, 7))

    def domain(shift: float) -> tuple[np.ndarray, ...]:
        lat = np.cumsum(rng.normal(scale=0.2, size=(n_eps, steps, latent_dim)), axis=1)
        lat += rng.normal(size=(n_eps, 1, latent_dim))
        lat = lat.reshape(-1, latent_dim)
        lat[:, :8] += shift
        emb = (lat @ mix + 0.5 * rng.normal(size=(len(lat), dim))).astype(np.float32)
        act = lat @ act_map + 0.3 * rng.normal(size=(len(lat), 7))
        return emb, act, np.repeat(np.arange(n_eps), steps), lat

    return domain(0.0), domain(0.4)


class Timer:
    def __init__(self) -> None:
        self.t: dict[str, float] = {}

    def __call__(self, name: str) -> Any:
        timer = self

        class _Ctx:
            def __enter__(self) -> None:
                self.s = time.perf_counter()

            def __exit__(self, *a: object) -> None:
                timer.t[name] = time.perf_counter() - self.s

        return _Ctx()


def run_realgap(sim: Any, real: Any, n_boot: int, n_perm: int, tm: Timer) -> dict[str, Any]:
    from realgap.metrics import gap_suite

    (xs, ys, es, ss), (xr, yr, er, sr) = sim, real
    with tm("realgap: gap_suite, everything (nulls + bootstrap + AS + coverage)"):
        r = gap_suite(xs, xr, ys, yr, es, er, state_sim=ss, state_real=sr, n_boot=n_boot,
                      n_perm=n_perm, rng=0)
    return r


def run_realgap_pieces(sim: Any, real: Any, n_boot: int, n_perm: int, tm: Timer) -> None:
    """The same work piece by piece, to see where the time goes."""
    from realgap.metrics import resample_plan
    from realgap.metrics.coverage import coverage_report
    from realgap.metrics.probe import action_score_crossfit, transfer_action_score_all
    from realgap.metrics.space import fit_gap_space
    from realgap.metrics.twosample import Design, two_sample_scores
    from realgap.stats import permuted_labels

    (xs, ys, es, _), (xr, yr, er, _) = sim, real
    with tm("realgap: space (standardize, PCA to 384, min-max)"):
        space = fit_gap_space(xs, xr, k=384, rng=0)
    plan = resample_plan(es, er, n_boot, 0)
    design = Design(np.r_[plan.codes_sim, plan.codes_real], plan.ep_real,
                    np.ones(plan.ep_real.size, bool))
    perms = permuted_labels(plan.ep_real, n_perm, 1)
    with tm(f"realgap: two-sample scores, {n_perm} perms + {n_boot} boots"):
        two_sample_scores(space.leading(32).z, design, counts=plan.counts, perms=perms,
                          rng=np.random.default_rng(0))
    with tm("realgap: AS cross-fit sim + real + transfer"):
        action_score_crossfit(xs, ys, es, rng=0)
        action_score_crossfit(xr, yr, er, rng=0)
        transfer_action_score_all(xs, ys, es, xr, yr, er, rng=0)
    with tm("realgap: coverage (sim-fitted, conformal)"):
        coverage_report(xs, es, xr, er, rng=0)


def _extrapolate(fn: Callable[[int], None], done: int, total: int) -> float:
    t = time.perf_counter()
    for i in range(done):
        fn(i)
    return (time.perf_counter() - t) / done * total


def run_plain(sim: Any, real: Any, n_boot: int, n_perm: int, tm: Timer,
              plain_iters: int) -> dict[str, float]:
    import scipy.linalg
    from sklearn.decomposition import PCA
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.linear_model import Ridge
    from sklearn.metrics.pairwise import rbf_kernel
    from sklearn.model_selection import GridSearchCV, GroupKFold, StratifiedGroupKFold
    from sklearn.neighbors import NearestNeighbors
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    from realgap.metrics.distribution import median_heuristic

    (xs, ys, es, _), (xr, yr, er, _) = sim, real
    out: dict[str, float] = {}
    n_s = len(xs)
    with tm("plain: StandardScaler + PCA(32) + MinMaxScaler"):
        pooled = np.vstack([xs, xr]).astype(np.float64)
        solver = "full" if pooled.shape[1] <= 2048 else "randomized"
        z = MinMaxScaler().fit_transform(PCA(n_components=32, svd_solver=solver, random_state=0)
                                         .fit_transform(StandardScaler().fit_transform(pooled)))
    real_f = np.r_[np.zeros(n_s, bool), np.ones(len(xr), bool)]
    keys = np.r_[np.char.add("s", es.astype(str)), np.char.add("r", er.astype(str))]
    uniq, codes = np.unique(keys, return_inverse=True)
    ep_real = np.array([k.startswith("r") for k in uniq])
    rng = np.random.default_rng(0)
    sub = np.sort(np.r_[rng.choice(n_s, min(1500, n_s), replace=False),
                        n_s + rng.choice(len(xr), min(1500, len(xr)), replace=False)])
    sigma = median_heuristic(z[sub], 0)
    kmat = rbf_kernel(z[sub], gamma=1 / (2 * sigma**2))

    def scores(lab_f: np.ndarray) -> tuple[float, float, float]:
        d = float(np.linalg.norm(z[lab_f].mean(0) - z[~lab_f].mean(0)))
        ls = lab_f[sub]
        kxx, kyy = kmat[np.ix_(~ls, ~ls)], kmat[np.ix_(ls, ls)]
        nx, ny = (~ls).sum(), ls.sum()
        mmd = ((kxx.sum() - nx) / (nx * (nx - 1)) + (kyy.sum() - ny) / (ny * (ny - 1))
               - 2 * kmat[np.ix_(~ls, ls)].mean())
        cx, cy = np.cov(z[~lab_f], rowvar=False), np.cov(z[lab_f], rowvar=False)
        mu = z[~lab_f].mean(0) - z[lab_f].mean(0)
        fd = float(mu @ mu + np.trace(cx + cy - 2 * np.real(scipy.linalg.sqrtm(cx @ cy))))
        return d, float(mmd), fd

    with tm("plain: centroid + MMD + FD, point"):
        out["centroid_distance"], out["mmd"], out["fd"] = scores(real_f)
    perm_labels = [rng.permutation(ep_real)[codes] for _ in range(plain_iters)]
    tm.t[f"plain: centroid + MMD + FD nulls, ~{n_perm} perms"] = _extrapolate(
        lambda i: scores(perm_labels[i]), plain_iters, n_perm)

    grid = [1, 2, 4, 8, 16, 32]

    def nested_c2st(lab_f: np.ndarray) -> float:
        pred = np.zeros(len(z), bool)
        outer = StratifiedGroupKFold(5, shuffle=True, random_state=0)
        for tr, te in outer.split(z, lab_f, codes):
            inner = GroupKFold(3)
            score = np.zeros(len(grid))
            for itr, iva in inner.split(z[tr], lab_f[tr], codes[tr]):
                for j, m in enumerate(grid):
                    clf = LinearDiscriminantAnalysis().fit(z[tr][itr][:, :m], lab_f[tr][itr])
                    score[j] += clf.score(z[tr][iva][:, :m], lab_f[tr][iva])
            m = grid[int(np.argmax(score))]
            pred[te] = LinearDiscriminantAnalysis().fit(z[tr][:, :m], lab_f[tr]).predict(z[te][:, :m])
        ok = pred == lab_f
        return 0.5 * (ok[lab_f].mean() + ok[~lab_f].mean())

    with tm("plain: nested-CV C2ST (sklearn LDA), point"):
        out["c2st_acc"] = nested_c2st(real_f)
    c2st_iters = max(1, plain_iters // 2)
    tm.t[f"plain: C2ST null, ~{n_perm} refits"] = _extrapolate(
        lambda i: nested_c2st(perm_labels[i]), c2st_iters, n_perm)
    t = time.perf_counter()
    for _ in range(plain_iters):  # each replicate: every score on resampled rows
        idx = np.concatenate([np.flatnonzero(codes == e) for e in
                              rng.choice(np.flatnonzero(ep_real), ep_real.sum())]
                             + [np.flatnonzero(codes == e) for e in
                                rng.choice(np.flatnonzero(~ep_real), (~ep_real).sum())])
        zz, rr = z[idx], real_f[idx]
        np.linalg.norm(zz[rr].mean(0) - zz[~rr].mean(0))
        cx, cy = np.cov(zz[~rr], rowvar=False), np.cov(zz[rr], rowvar=False)
        scipy.linalg.sqrtm(cx @ cy)
    tm.t[f"plain: bootstrap of the scores, ~{n_boot} replicates (no MMD)"] = (
        (time.perf_counter() - t) / plain_iters * n_boot)
    with tm("plain: AS cross-fit sim + real + transfer (GridSearchCV Ridge, GroupKFold)"):
        alphas = {"alpha": list(np.logspace(-2, 5, 8))}
        for x, y, g in ((xs, ys, es), (xr, yr, er)):
            for tr, te in GroupKFold(5).split(x, y, g):
                sx, sy = StandardScaler().fit(x[tr]), StandardScaler().fit(y[tr])
                GridSearchCV(Ridge(), alphas, cv=GroupKFold(4)).fit(
                    sx.transform(x[tr]), sy.transform(y[tr]), groups=g[tr]).predict(
                    sx.transform(x[te]))
        sx, sy = StandardScaler().fit(xs), StandardScaler().fit(ys)
        GridSearchCV(Ridge(), alphas, cv=GroupKFold(5)).fit(
            sx.transform(xs), sy.transform(ys), groups=es).predict(sx.transform(xr))
    with tm("plain: coverage k-NN (sklearn NearestNeighbors)"):
        sc = StandardScaler().fit(xs)
        nn = NearestNeighbors(n_neighbors=6).fit(sc.transform(xs))
        nn.kneighbors(sc.transform(xr), 5)
        nn.kneighbors(sc.transform(xs), 6)
    return out


def report(shape: str, frames: int, dim: int, steps: int, n_boot: int, n_perm: int,
           plain_iters: int) -> None:
    sim, real = make_data(frames, dim, steps)
    print(f"\n== {frames:,} frames x {dim:,} dims ({frames // (2 * steps)} + "
          f"{frames // (2 * steps)} episodes of {steps} steps), n_boot={n_boot}, n_perm={n_perm}")
    tm = Timer()
    r = run_realgap(sim, real, n_boot, n_perm, tm)
    run_realgap_pieces(sim, real, n_boot, n_perm, tm)
    plain = run_plain(sim, real, n_boot, n_perm, tm, plain_iters)
    for name, sec in tm.t.items():
        print(f"  {name:<72s} {sec:9.2f} s")
    tot_plain = sum(v for k, v in tm.t.items() if k.startswith("plain"))
    print(f"  {'plain total (~ = extrapolated loops)':<72s} {tot_plain:9.2f} s")
    print("  score               realgap (common space)     plain     p-value  effect")
    for m in ("centroid_distance", "mmd", "fd", "c2st_acc"):
        null = r["nulls"].get(m)
        print(f"  {m:<18s} {r[m].value:12.6f}      {plain[m]:12.6f}   {null.p_value:7.4f} "
              f"{null.effect:7.1f}")
    for m in ("dis_cal", "dis_paper", "as_sim", "as_sim_floor", "as_transfer", "combined",
              "outside_fraction"):
        e = r[m]
        print(f"  {m:<18s} {e.value:.4f} [{e.lo:.4f}, {e.hi:.4f}] n={e.n}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=("both", "tall", "wide"), default="both")
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument("--n-perm", type=int, default=200)
    ap.add_argument("--plain-iters", type=int, default=4,
                    help="iterations of the plain permutation/bootstrap loops (extrapolated)")
    a = ap.parse_args()
    if a.shape in ("both", "tall"):
        report("tall", 50_000, 768, 100, a.n_boot, a.n_perm, a.plain_iters)
    if a.shape in ("both", "wide"):
        report("wide", 2_000, 12_288, 50, a.n_boot, a.n_perm, a.plain_iters)


if __name__ == "__main__":
    main()
