"""Benchmark: the realgap metric suite on 50,000 x 768 synthetic embeddings.

Runs DIS + AS (sim, transfer) + MMD + Fréchet + coverage through realgap.metrics, then
the same numbers through a plain scikit-learn / scipy implementation on the same data
(same split, same subsample indices), prints both timings and the agreement, and finally
times ``gap_suite`` (all metrics with episode-bootstrap intervals).

    python benchmarks/bench_metrics.py [--frames 50000] [--dim 768] [--n-boot 200]

Data: 25,000 sim + 25,000 real frames in 250 + 250 episodes of 100 steps; a 32-d latent
random walk per episode mapped to 768-d embeddings plus noise; real = sim distribution
shifted along 8 latent directions; actions = a linear map of the latent plus noise.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def make_data(frames: int, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    steps = 100
    n_eps = frames // (2 * steps)
    latent_dim = 32
    mix = rng.normal(size=(latent_dim, dim)) / np.sqrt(latent_dim)
    act_map = rng.normal(size=(latent_dim, 7))

    def domain(shift: float):
        lat = np.cumsum(rng.normal(scale=0.2, size=(n_eps, steps, latent_dim)), axis=1)
        lat += rng.normal(size=(n_eps, 1, latent_dim))
        lat = lat.reshape(-1, latent_dim)
        lat[:, :8] += shift
        emb = (lat @ mix + 0.5 * rng.normal(size=(len(lat), dim))).astype(np.float32)
        act = lat @ act_map + 0.3 * rng.normal(size=(len(lat), 7))
        return emb, act, np.repeat(np.arange(n_eps), steps)

    return domain(0.0), domain(0.4)


class Timer:
    def __init__(self) -> None:
        self.t: dict[str, float] = {}

    def __call__(self, name: str):
        timer = self

        class _Ctx:
            def __enter__(self):
                self.s = time.perf_counter()

            def __exit__(self, *a):
                timer.t[name] = time.perf_counter() - self.s

        return _Ctx()


def run_realgap(sim, real, k: int, cov_dims: int, max_sim: int, mmd_n: int, tm: Timer):
    from realgap.metrics import coverage_report, fit_gap_space, mmd_rbf
    from realgap.metrics.distribution import frechet_distance
    from realgap.metrics.invariance import dis_from_space
    from realgap.metrics.probe import RidgeProbe, episode_split, score_from_mse

    (xs, ys, es), (xr, yr, er) = sim, real
    out = {}
    with tm("realgap: shared space (standardize + PCA + min-max)"):
        space = fit_gap_space(xs, xr, k=k, rng=0)
    with tm("realgap: DIS"):
        d = dis_from_space(space)
    out["dis"], out["centroid_distance"] = d.dis, d.centroid_distance
    with tm("realgap: AS sim + transfer (closed-form ridge)"):
        tr, va = episode_split(es, 0.2, rng=0)
        probe = RidgeProbe.fit(xs[tr].astype(np.float64), ys[tr], 1.0)
        out["as_sim"] = score_from_mse(probe.frame_errors(xs[va], ys[va]).mean())
        out["as_transfer"] = score_from_mse(probe.frame_errors(xr, yr).mean())
    with tm("realgap: MMD (unbiased, 200 episode permutations)"):
        m = mmd_rbf(space.z_sim, space.z_real, groups_x=es, groups_y=er, n_perm=200,
                    max_samples=mmd_n, rng=0)
    out["mmd2"], out["mmd_p"] = m.mmd2, m.p_value
    with tm("realgap: Fréchet"):
        out["fd"] = frechet_distance(space.z_sim, space.z_real)
    with tm("realgap: coverage (k=5, blocked k-NN)"):
        c = coverage_report(space.z_sim[:, :cov_dims], space.z_real[:, :cov_dims], ep_sim=es,
                            k=5, max_sim=max_sim, rng=0)
    out["outside_fraction"], out["density"], out["naeem_coverage"] = (
        c.outside_fraction, c.density, c.coverage)
    return out, space, (tr, va), c


def run_baseline(sim, real, k: int, cov_dims: int, space, split, cov, mmd_n: int, tm: Timer):
    import scipy.linalg
    from sklearn.decomposition import PCA
    from sklearn.linear_model import Ridge
    from sklearn.metrics.pairwise import rbf_kernel
    from sklearn.neighbors import NearestNeighbors
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    from realgap.metrics.distribution import _subsample, median_heuristic

    (xs, ys, es), (xr, yr, _) = sim, real
    out = {}
    with tm("baseline: StandardScaler + PCA(randomized) + MinMaxScaler"):
        pooled = np.vstack([xs, xr]).astype(np.float64)
        z = MinMaxScaler().fit_transform(
            PCA(n_components=k, svd_solver="randomized", random_state=0).fit_transform(
                StandardScaler().fit_transform(pooled)))
        zs, zr = z[: len(xs)], z[len(xs):]
    with tm("baseline: DIS"):
        d = np.linalg.norm(zs.mean(0) - zr.mean(0))
    out["dis"], out["centroid_distance"] = 1 - d / np.sqrt(k), d
    with tm("baseline: AS sim + transfer (sklearn Ridge)"):
        tr, va = split
        xsc = StandardScaler().fit(xs[tr])
        ysc = StandardScaler().fit(ys[tr])
        model = Ridge(alpha=1.0).fit(xsc.transform(xs[tr]), ysc.transform(ys[tr]))
        mse_v = np.mean((model.predict(xsc.transform(xs[va])) - ysc.transform(ys[va])) ** 2)
        mse_t = np.mean((model.predict(xsc.transform(xr)) - ysc.transform(yr)) ** 2)
        out["as_sim"], out["as_transfer"] = max(0, 1 - mse_v), max(0, 1 - mse_t)
    with tm("baseline: MMD statistic (sklearn rbf_kernel, no permutations)"):
        gen = np.random.default_rng(0)
        ix = _subsample(len(space.z_sim), mmd_n, gen)
        iy = _subsample(len(space.z_real), mmd_n, gen)
        a, b = space.z_sim[ix], space.z_real[iy]
        sigma = median_heuristic(np.vstack([a, b]), gen)
        g = 1 / (2 * sigma**2)
        kxx, kyy, kxy = rbf_kernel(a, a, gamma=g), rbf_kernel(b, b, gamma=g), rbf_kernel(a, b, gamma=g)
        n, m = len(a), len(b)
        out["mmd2"] = ((kxx.sum() - n) / (n * (n - 1)) + (kyy.sum() - m) / (m * (m - 1))
                       - 2 * kxy.mean())
    with tm("baseline: Fréchet (scipy.linalg.sqrtm)"):
        cs, cr = np.cov(space.z_sim, rowvar=False), np.cov(space.z_real, rowvar=False)
        mu = space.z_sim.mean(0) - space.z_real.mean(0)
        out["fd"] = mu @ mu + np.trace(cs + cr - 2 * scipy.linalg.sqrtm(cs @ cr).real)
    with tm("baseline: coverage (sklearn NearestNeighbors, same sim subsample)"):
        ref = space.z_sim[cov.sim_index, :cov_dims]
        ref_ep = es[cov.sim_index]
        nn = NearestNeighbors(n_neighbors=5 + 101, algorithm="brute").fit(ref)
        dist, idx = nn.kneighbors(ref)
        same = ref_ep[idx] == ref_ep[:, None]
        dist = np.where(same, np.inf, dist)
        radius = np.sort(dist, axis=1)[:, 4]
        thr = np.quantile(radius, 0.95)
        dr, _ = NearestNeighbors(n_neighbors=5, algorithm="brute").fit(ref).kneighbors(
            space.z_real[:, :cov_dims])
        out["outside_fraction"] = float((dr[:, 4] > thr).mean())
        # Naeem density needs every ball, not just the 5 nearest: radius_neighbors
        counts = 0
        reached = np.zeros(len(ref), bool)
        nn_r = NearestNeighbors(algorithm="brute").fit(space.z_real[:, :cov_dims])
        dmin = nn_r.kneighbors(ref, n_neighbors=1)[0][:, 0]
        reached = dmin <= radius
        for s in range(0, len(ref), 2000):
            hits = nn_r.radius_neighbors(ref[s:s + 2000], radius=radius.max(), return_distance=True)
            for j, dd in enumerate(hits[0]):
                counts += int((dd <= radius[s + j]).sum())
        out["density"] = counts / (5 * len(space.z_real))
        out["naeem_coverage"] = float(reached.mean())
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=50_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--k", type=int, default=384)
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--skip-suite", action="store_true")
    args = ap.parse_args()
    cov_dims, max_sim, mmd_n = 64, 10_000, 1500
    sim, real = make_data(args.frames, args.dim)
    print(f"data: {len(sim[0])} sim + {len(real[0])} real frames x {args.dim} dims, "
          f"{len(np.unique(sim[2]))} + {len(np.unique(real[2]))} episodes; k={args.k}, "
          f"coverage in the leading {cov_dims} components with a {max_sim}-frame sim support, "
          f"MMD on {mmd_n} + {mmd_n} frames")
    tm = Timer()
    ours, space, split, cov = run_realgap(sim, real, args.k, cov_dims, max_sim, mmd_n, tm)
    total_ours = sum(v for n, v in tm.t.items() if n.startswith("realgap"))
    theirs = None
    if not args.skip_baseline:
        theirs = run_baseline(sim, real, args.k, cov_dims, space, split, cov, mmd_n, tm)
    for name, sec in tm.t.items():
        print(f"  {name:<66} {sec:8.2f} s")
    print(f"  {'realgap total (DIS + AS + MMD + FD + coverage)':<66} {total_ours:8.2f} s")
    if theirs is not None:
        total_base = sum(v for n, v in tm.t.items() if n.startswith("baseline"))
        print(f"  {'baseline total (MMD without its permutation test)':<66} {total_base:8.2f} s")
        print("\nmetric              realgap        baseline       |diff|")
        for key in theirs:
            print(f"  {key:<17} {ours[key]:12.6f}  {theirs[key]:12.6f}  {abs(ours[key] - theirs[key]):10.2e}")
        print(f"  mmd p-value (realgap only, episode permutations): {ours['mmd_p']:.4f}")
    if not args.skip_suite:
        from realgap.metrics import gap_suite

        t0 = time.perf_counter()
        res = gap_suite(sim[0], real[0], sim[1], real[1], sim[2], real[2], k=args.k,
                        n_boot=args.n_boot, rng=0)
        dt = time.perf_counter() - t0
        print(f"\ngap_suite with {args.n_boot} episode-bootstrap replicates: {dt:.2f} s")
        for key in ("dis", "as_sim", "as_transfer", "combined", "mmd", "fd", "c2st_acc", "coverage"):
            e = res[key]
            print(f"  {key:<12} {e.value:.4f} [{e.lo:.4f}, {e.hi:.4f}]  n={e.n} episodes, "
                  f"{e.n_frames} frames, {e.n_boot} replicates")


if __name__ == "__main__":
    main()
