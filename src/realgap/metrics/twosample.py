"""Two-sample scores between sim and real frames, read against a permutation null over episodes.

One per-episode design serves the point estimate, the bootstrap replicates (episodes
resampled within strata: counts) and the permutation null (domain labels shuffled between
WHOLE episodes: 0/1 labels). Every score is written once as a function of per-episode
*side weights* ``w_sim, w_real: (B, E)`` (how often each episode counts on each side):

- point estimate: ``w_real = is_real``, ``w_sim = 1 - is_real``;
- bootstrap replicate: ``w = counts * side`` (the space, kernel and classifier correctness
  held fixed);
- null replicate: ``w_real = permuted is_real`` (the pooled space is label-free, so a
  relabelling only re-weights precomputed per-episode sums).

Scores, all in the run's common space ``z: (N, k)`` in [0, 1]^k (``realgap.metrics.space``):

- ``centroid_distance`` ``d = ||c_sim - c_real||`` and ``dis = 1 - d / sqrt(k)``
  (encoder-dis-as-framework.txt III-C, on the run's common ``k``);
- ``dis_cal``, the null-calibrated DIS: ``1 - sqrt(max(d^2 - E_null[d^2], 0)) / sqrt(k)``.
  ``d^2`` is a linear-kernel (biased) MMD; sampling noise alone adds ``E_null[d^2]`` to it
  (two halves of one domain score ``d > 0``), so subtracting the permutation mean removes
  the noise floor: identical distributions give ``dis_cal ~ 1`` whatever ``k`` or the
  number of frames, and encoders become comparable. Its replicates subtract the same
  null mean from each bootstrap ``d^2``;
- ``mmd``: unbiased RBF MMD^2 (Gretton et al. 2012, eq. 3; median-heuristic bandwidth on
  the pooled, label-free subsample);
- ``fd``: Fréchet distance between Gaussian fits (Dowson & Landau 1982);
- ``c2st_acc``: classifier two-sample test (Lopez-Paz & Oquab 2017) as BALANCED accuracy
  (mean of the per-domain accuracies, so chance is 0.5 whatever the sim/real frame ratio)
  of a linear discriminant, out of fold over episode-grouped folds; its capacity (how many
  leading components it sees, from :data:`C2ST_GRID`) is chosen by an inner,
  episode-grouped CV on each outer training fold only (nested CV). The discriminant is the
  least-squares fit of the 0/1 domain label (the Fisher direction) with an equal-prior
  threshold (midway between the class mean scores); its Gram matrix is label-free, so
  every permutation refits the WHOLE nested procedure (folds re-dealt from the permuted
  labels) for the price of a few small solves. Bootstrap replicates hold the out-of-fold
  correctness fixed.

p-values are ``(1 + #{null >= observed}) / (1 + n_perm)`` (``<=`` for DIS, where smaller
means more different); effects are ``(observed - null mean) / null sd``
(:mod:`realgap.stats.null`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from realgap.errors import DataError
from realgap.metrics.distribution import (
    _single_thread,
    _subsample,
    frechet_from_moments_unlimited,
    median_heuristic,
    rbf_kernel_matrix,
)
from realgap.stats import Estimate, NullResult, estimate_from_replicates, null_from_replicates

#: Leading-component counts the C2ST's nested CV chooses among (cut at the space's k).
C2ST_GRID: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
#: Ridge penalty of the C2ST discriminant, per training frame (the space is in [0, 1]^k).
C2ST_RIDGE = 1e-3
#: Frames the C2ST reads at most (episodes thinned evenly in time beyond it): consecutive
#: frames of an episode are near-duplicates, so thinning costs little power and makes each
#: of the hundreds of nested-CV refits of the null proportionally cheaper.
C2ST_MAX_FRAMES = 4000

TWO_SAMPLE_SCORES: tuple[str, ...] = ("centroid_distance", "dis", "dis_cal", "mmd", "fd", "c2st_acc")
#: Direction in which each score signals a gap (the null's alternative).
ALTERNATIVE: dict[str, str] = {"centroid_distance": "greater", "dis": "less", "dis_cal": "less",
                               "mmd": "greater", "fd": "greater", "c2st_acc": "greater"}


# -- the per-episode design -----------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Design:
    """Which episode each frame belongs to and which side each episode is on.

    Attributes:
        codes: ``(N,)`` episode code of each pooled frame, in ``[0, E)``.
        ep_real: ``(E,)`` bool, True for a real episode.
        used: ``(E,)`` bool, episodes that have frames here (an encoder scored on a subset
            of sim episodes keeps the run's episode codes, so its replicates stay paired
            with the other encoders').
    """

    codes: np.ndarray
    ep_real: np.ndarray
    used: np.ndarray

    @property
    def n_episodes(self) -> int:
        return int(self.ep_real.shape[0])

    @property
    def sizes(self) -> np.ndarray:
        """``(E,)`` frames per episode (float)."""
        return np.bincount(self.codes, minlength=self.n_episodes).astype(np.float64)

    def ep_sums(self, values: np.ndarray) -> np.ndarray:
        """Per-episode sums ``(E,)`` or ``(E, d)`` of per-frame ``values``."""
        v = np.asarray(values, dtype=np.float64)
        out = np.zeros((self.n_episodes,) + v.shape[1:])
        np.add.at(out, self.codes, v)
        return out

    def observed_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """``(1, E)`` side weights of the true labelling."""
        real = (self.ep_real & self.used).astype(np.float64)[None, :]
        sim = (~self.ep_real & self.used).astype(np.float64)[None, :]
        return sim, real

    def boot_weights(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Side weights of bootstrap draws ``counts (B, E)``."""
        c = np.asarray(counts, dtype=np.float64)
        return c * (~self.ep_real & self.used), c * (self.ep_real & self.used)

    def perm_weights(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Side weights of relabellings ``labels (P, E)`` (True = real; unused ignored)."""
        lab = np.asarray(labels, dtype=bool)
        return (~lab & self.used).astype(np.float64), (lab & self.used).astype(np.float64)


# -- scores as functions of side weights ------------------------------------------------
def centroid_distances(s1: np.ndarray, sizes: np.ndarray, w_sim: np.ndarray,
                       w_real: np.ndarray) -> np.ndarray:
    """``(B,)`` centroid distances from per-episode sums ``s1 (E, k)`` and sizes ``(E,)``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        cs = (w_sim @ s1) / (w_sim @ sizes)[:, None]
        cr = (w_real @ s1) / (w_real @ sizes)[:, None]
    return np.linalg.norm(cs - cr, axis=1)


def frechet_replicates(s1: np.ndarray, s2: np.ndarray, sizes: np.ndarray, w_sim: np.ndarray,
                       w_real: np.ndarray) -> np.ndarray:
    """``(B,)`` Fréchet distances from per-episode first ``(E, k)`` and second ``(E, k, k)``
    moment sums (sample covariances, ddof=1)."""
    k = s1.shape[1]
    flat = s2.reshape(s2.shape[0], -1)
    out = np.full(w_sim.shape[0], np.nan)
    moms = []
    for w in (w_sim, w_real):
        tot = w @ sizes
        with np.errstate(invalid="ignore", divide="ignore"):
            mu = (w @ s1) / tot[:, None]
        second = (w @ flat).reshape(-1, k, k)
        cov = (second - tot[:, None, None] * mu[:, :, None] * mu[:, None, :]) / (tot - 1)[:, None, None]
        moms.append((tot, mu, cov))
    for b in range(w_sim.shape[0]):
        if moms[0][0][b] < 2 or moms[1][0][b] < 2:
            continue
        out[b] = frechet_from_moments_unlimited(moms[0][1][b], moms[0][2][b], moms[1][1][b], moms[1][2][b])
    return out


def episode_kernel_sums(kmat: np.ndarray, sub_codes: np.ndarray, n_episodes: int) -> np.ndarray:
    """``(E, E)`` sums of the kernel matrix over pairs of episodes' subsample frames.

    Every weighting here is per episode (a frame counts as often as its episode), so the
    ``M x M`` kernel enters every MMD only through these block sums: summed once, each of
    the hundreds of permutations and replicates costs ``O(E^2)`` instead of ``O(M^2)``."""
    order = np.argsort(sub_codes, kind="stable")
    codes = sub_codes[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    present = codes[starts]
    k = kmat[np.ix_(order, order)]
    blocks = np.add.reduceat(np.add.reduceat(k, starts, axis=0), starts, axis=1)
    out = np.zeros((n_episodes, n_episodes))
    out[np.ix_(present, present)] = blocks
    return out


def mmd_replicates(kep: np.ndarray, sub_sizes: np.ndarray, w_sim: np.ndarray,
                   w_real: np.ndarray) -> np.ndarray:
    """``(B,)`` unbiased MMD^2 over the kernel subsample from the episode block sums ``kep``
    (:func:`episode_kernel_sums`) and subsample frames per episode ``sub_sizes``; each frame
    is weighted by its episode's side weight. A draw is never paired with itself
    (``k(a, a) = 1`` for the RBF kernel); two copies of one frame are distinct draws, as in
    :func:`realgap.metrics.distribution.mmd2_weighted`."""
    nx, ny = w_sim @ sub_sizes, w_real @ sub_sizes
    # a frame drawn c times pairs with its own copies c^2 times in w^T K w; c of those are
    # the same draw (weights are integers), and each has k = 1
    sxx = np.einsum("be,ef,bf->b", w_sim, kep, w_sim) - w_sim @ sub_sizes
    syy = np.einsum("be,ef,bf->b", w_real, kep, w_real) - w_real @ sub_sizes
    sxy = np.einsum("be,ef,bf->b", w_sim, kep, w_real)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sxx / (nx * (nx - 1)) + syy / (ny * (ny - 1)) - 2.0 * sxy / (nx * ny)


# -- C2ST: a nested-CV linear discriminant whose Gram matrix is label-free ------------------
@dataclass(frozen=True, eq=False)
class C2STFit:
    """One run of the nested, episode-grouped C2ST.

    Attributes:
        accuracy: balanced out-of-fold accuracy (0.5 = chance).
        correct: ``(N,)`` bool, out-of-fold correctness of every frame.
        components: leading components chosen on each outer fold.
        n_folds: outer folds.
    """

    accuracy: float
    correct: np.ndarray = field(repr=False)
    components: tuple[int, ...]
    n_folds: int


class C2STModel:
    """Precomputed per-episode Gram matrices of ``[1, z]``; :meth:`fit` runs the nested CV
    for any episode labelling (see module docstring).

    Args:
        z: ``(N, k)`` frames in the common space.
        design: the episode design (``codes``; labels come per call).
        grid: leading-component counts to choose among (cut at ``k``).
        n_outer, n_inner: folds of the outer and inner CV (cut at the episodes per side).
        seed: seed of the fold dealing (the same for every labelling).
    """

    def __init__(self, z: np.ndarray, design: Design, *, grid: tuple[int, ...] = C2ST_GRID,
                 n_outer: int = 5, n_inner: int = 3, seed: int = 0) -> None:
        self.x = np.hstack([np.ones((len(z), 1)), np.asarray(z, dtype=np.float64)])
        self.design = design
        k = z.shape[1]
        self.grid = tuple(sorted({min(int(g), k) for g in grid}))
        self.n_outer, self.n_inner, self.seed = int(n_outer), int(n_inner), int(seed)
        e, p = design.n_episodes, self.x.shape[1]
        self.gram = np.zeros((e, p, p))
        self.s1 = design.ep_sums(self.x)
        self.sizes = design.sizes
        order = np.argsort(design.codes, kind="stable")
        bounds = np.r_[0, np.cumsum(np.bincount(design.codes, minlength=e))]
        for i in range(e):
            xe = self.x[order[bounds[i]:bounds[i + 1]]]
            self.gram[i] = xe.T @ xe
        self.gram_flat = self.gram.reshape(e, p * p)

    def _deal(self, label: np.ndarray, eligible: np.ndarray, k: int) -> np.ndarray:
        """Fold of each eligible episode (-1 elsewhere), dealt round-robin within each side."""
        gen = np.random.default_rng(self.seed)
        fold = np.full(label.shape[0], -1)
        offset = 0
        for side in (False, True):
            eps = np.flatnonzero(eligible & (label == side))
            eps = eps[gen.permutation(eps.size)]
            fold[eps] = (offset + np.arange(eps.size)) % k
            offset += eps.size
        return fold

    def _solve(self, train: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weights ``(p, G)`` (zero-padded beyond each entry's components) and thresholds
        ``(G,)`` of every grid entry, fitted on the episodes ``train``.

        The leading block of a Cholesky factor is the factor of the leading block (and the
        ridge term is diagonal), so one factorization serves every entry of the grid."""
        from scipy.linalg import solve_triangular

        t = train.astype(np.float64)
        p = self.x.shape[1]
        g = (t @ self.gram_flat).reshape(p, p)
        s_real = (t * label) @ self.s1
        s_sim = (t * ~label) @ self.s1
        n_real = float((t * label) @ self.sizes)
        n_sim = float((t * ~label) @ self.sizes)
        p_max = self.grid[-1] + 1
        a = g[:p_max, :p_max].copy()
        diag = np.arange(1, p_max)
        a[diag, diag] += C2ST_RIDGE * (n_real + n_sim)  # no penalty on the intercept
        # L^-1 is lower triangular, so its leading block inverts L's leading block and
        # (L^-1 s)[:p] = L[:p, :p]^-1 s[:p]: one inverse serves every prefix.
        inv = solve_triangular(np.linalg.cholesky(a), np.eye(p_max), lower=True,
                               check_finite=False)
        y = inv @ s_real[:p_max]
        w = np.zeros((self.x.shape[1], len(self.grid)))
        for j, m in enumerate(self.grid):
            w[:m + 1, j] = inv[:m + 1, :m + 1].T @ y[:m + 1]
        thr = 0.5 * (s_real @ w / n_real + s_sim @ w / n_sim)
        return w, thr

    def _balanced(self, rows: np.ndarray, w: np.ndarray, thr: np.ndarray,
                  frame_label: np.ndarray) -> np.ndarray:
        """Balanced accuracy ``(G,)`` of every grid entry on the frames ``rows``."""
        y = frame_label[rows]
        ok = (self.x[rows] @ w > thr) == y[:, None]
        if y.any() and (~y).any():
            return 0.5 * (ok[y].mean(0) + ok[~y].mean(0))
        return ok.mean(0)

    def fit(self, label: np.ndarray) -> C2STFit:
        """The nested CV for the episode labelling ``label (E,)`` (True = real)."""
        d = self.design
        label = np.asarray(label, dtype=bool)
        used = d.used
        n_sim_eps, n_real_eps = int((used & ~label).sum()), int((used & label).sum())
        k_out = min(self.n_outer, n_sim_eps, n_real_eps)
        if k_out < 2:
            raise DataError("c2st: needs at least 2 episodes per domain to cross-validate by "
                            f"episode, got {n_sim_eps} sim and {n_real_eps} real; record more "
                            "episodes")
        frame_label = label[d.codes]
        outer = self._deal(label, used, k_out)
        correct = np.zeros(len(d.codes), dtype=bool)
        chosen = []
        # BLAS threads are limited once by the caller (two_sample_scores), not per fit
        for f in range(k_out):
            train = used & (outer != f)
            k_in = min(self.n_inner, int((train & ~label).sum()), int((train & label).sum()))
            best = len(self.grid) - 1
            if k_in >= 2 and len(self.grid) > 1:
                inner = self._deal(label, train, k_in)
                score = np.zeros(len(self.grid))
                for g in range(k_in):
                    w, thr = self._solve(train & (inner != g), label)
                    score += self._balanced((inner == g)[d.codes], w, thr, frame_label)
                best = int(np.argmax(score))  # first maximum: the fewest components
            w, thr = self._solve(train, label)
            rows = (outer == f)[d.codes]
            correct[rows] = (self.x[rows] @ w[:, best] > thr[best]) == frame_label[rows]
            chosen.append(self.grid[best])
        y = frame_label
        acc = 0.5 * (correct[y].mean() + correct[~y].mean())
        return C2STFit(float(acc), correct, tuple(chosen), k_out)


def balanced_accuracy_replicates(correct: np.ndarray, design: Design,
                                 counts: np.ndarray) -> np.ndarray:
    """``(B,)`` balanced accuracies with per-frame correctness fixed and episodes resampled."""
    c_sum = design.ep_sums(correct.astype(np.float64))
    sizes = design.sizes
    w_sim, w_real = design.boot_weights(counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 0.5 * ((w_sim @ c_sum) / (w_sim @ sizes) + (w_real @ c_sum) / (w_real @ sizes))


# -- the battery ------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class TwoSampleResult:
    """Two-sample scores of one encoder.

    Attributes:
        estimates: score -> :class:`~realgap.stats.Estimate` (interval over resampled episodes).
        nulls: score -> :class:`~realgap.stats.NullResult` (permutation null over episodes).
        replicates: score -> ``(n_boot,)`` bootstrap replicates (paired across encoders when
            the counts are), or None.
        details: bandwidth, subsample sizes, C2ST components chosen per fold.
    """

    estimates: dict[str, Estimate]
    nulls: dict[str, NullResult]
    replicates: dict[str, np.ndarray | None]
    details: dict[str, Any]


def two_sample_scores(z: np.ndarray, design: Design, **kwargs: Any) -> TwoSampleResult:
    """Every two-sample score with interval and permutation null (module docstring).

    Args:
        z: ``(N, k)`` frames of the used episodes in the common space, rows aligned with
            ``design.codes``.
        design: the per-episode design.
        counts: ``(B, E)`` bootstrap draws of the run (None: no intervals).
        perms: ``(P, E)`` relabellings of the used episodes, True = real (None: no null).
        alpha, method: interval level and method (``"percentile"`` or ``"bc"``).
        mmd_max_samples: kernel subsample per side (seeded from ``rng``).
        c2st_grid: leading-component counts the C2ST chooses among.
        c2st_max_frames: the C2ST reads at most this many frames, each episode thinned
            evenly in time (label-free, so every relabelling sees the same frames).
        rng: draws the MMD subsample, the bandwidth subset and the C2ST fold seed, in that order.
    """
    # Thousands of small products: more BLAS threads only contend (see _single_thread).
    with _single_thread():
        return _two_sample_scores(z, design, **kwargs)


def _two_sample_scores(
    z: np.ndarray,
    design: Design,
    *,
    counts: np.ndarray | None,
    perms: np.ndarray | None,
    alpha: float = 0.05,
    method: str = "percentile",
    mmd_max_samples: int = 1500,
    c2st_grid: tuple[int, ...] = C2ST_GRID,
    c2st_max_frames: int = C2ST_MAX_FRAMES,
    rng: np.random.Generator,
) -> TwoSampleResult:
    k = z.shape[1]
    sizes = design.sizes
    s1 = design.ep_sums(z)
    obs_w = design.observed_weights()
    boot_w = design.boot_weights(counts) if counts is not None and len(counts) else None
    perm_w = design.perm_weights(perms) if perms is not None and len(perms) else None
    n_eps, n_frames = int(design.used.sum()), len(design.codes)
    reps: dict[str, np.ndarray | None] = {}
    nulls: dict[str, NullResult] = {}
    points: dict[str, float] = {}

    def run(name: str, fn: Any) -> None:
        points[name] = float(fn(*obs_w)[0])
        reps[name] = None if boot_w is None else fn(*boot_w)
        if perm_w is not None:
            nulls[name] = null_from_replicates(points[name], fn(*perm_w), ALTERNATIVE[name])

    # centroid distance, DIS, calibrated DIS
    run("centroid_distance", lambda ws, wr: centroid_distances(s1, sizes, ws, wr))
    sq_k = np.sqrt(k)
    run("dis", lambda ws, wr: 1.0 - centroid_distances(s1, sizes, ws, wr) / sq_k)
    null_d2 = float("nan")
    if perm_w is not None:
        null_d2 = float(np.nanmean(centroid_distances(s1, sizes, *perm_w) ** 2))

    def dis_cal(ws: np.ndarray, wr: np.ndarray) -> np.ndarray:
        d2 = centroid_distances(s1, sizes, ws, wr) ** 2
        return 1.0 - np.sqrt(np.clip(d2 - null_d2, 0.0, None)) / sq_k

    if perm_w is not None:
        run("dis_cal", dis_cal)

    # MMD on a label-free subsample
    sub = _mmd_subsample(design, mmd_max_samples, rng)
    sigma = median_heuristic(z[sub], rng)
    kep = episode_kernel_sums(rbf_kernel_matrix(z[sub], sigma), design.codes[sub],
                              design.n_episodes)
    sub_sizes = np.bincount(design.codes[sub], minlength=design.n_episodes).astype(np.float64)
    run("mmd", lambda ws, wr: mmd_replicates(kep, sub_sizes, ws, wr))

    # Fréchet distance from per-episode moments
    s2 = _second_moments(z, design, np.zeros((design.n_episodes, k, k)))
    run("fd", lambda ws, wr: frechet_replicates(s1, s2, sizes, ws, wr))

    # C2ST: refit per relabelling; bootstrap holds correctness fixed
    c_rows = _thin(design, c2st_max_frames)
    c_design = Design(design.codes[c_rows], design.ep_real, design.used)
    model = C2STModel(z[c_rows], c_design, grid=c2st_grid, seed=int(rng.integers(2**31 - 1)))
    obs = model.fit(design.ep_real)
    points["c2st_acc"] = obs.accuracy
    reps["c2st_acc"] = None if boot_w is None else balanced_accuracy_replicates(
        obs.correct, c_design, counts)
    if perms is not None and len(perms):
        null = np.array([model.fit(p).accuracy for p in np.asarray(perms, dtype=bool)])
        nulls["c2st_acc"] = null_from_replicates(obs.accuracy, null, "greater")

    estimates = {name: estimate_from_replicates(points[name], reps[name], n=n_eps,
                                                n_frames=n_frames, alpha=alpha, method=method)
                 for name in points}
    estimates["mmd"] = estimate_from_replicates(points["mmd"], reps["mmd"], n=n_eps,
                                                n_frames=int(sub.size), alpha=alpha, method=method)
    estimates["c2st_acc"] = estimate_from_replicates(points["c2st_acc"], reps["c2st_acc"], n=n_eps,
                                                     n_frames=int(c_rows.size), alpha=alpha,
                                                     method=method)
    details = {"k": k, "mmd_bandwidth": sigma, "mmd_frames": int(sub.size),
               "c2st_components": list(obs.components), "c2st_folds": obs.n_folds,
               "c2st_frames": int(c_rows.size),
               "c2st_grid": list(model.grid), "null_mean_d2": null_d2}
    return TwoSampleResult(estimates, nulls, reps, details)


def _second_moments(z: np.ndarray, design: Design, out: np.ndarray) -> np.ndarray:
    order = np.argsort(design.codes, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(design.codes, minlength=design.n_episodes))]
    for e in range(design.n_episodes):
        ze = z[order[bounds[e]:bounds[e + 1]]]
        out[e] = ze.T @ ze
    return out


def _thin(design: Design, max_frames: int) -> np.ndarray:
    """Rows keeping at most ``max_frames`` frames: each episode keeps a share proportional to
    its length (at least 1), evenly spaced in time. Independent of the labels."""
    n = len(design.codes)
    if n <= max_frames:
        return np.arange(n)
    keep = []
    order = np.argsort(design.codes, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(design.codes, minlength=design.n_episodes))]
    for e in range(design.n_episodes):
        rows = order[bounds[e]:bounds[e + 1]]
        if rows.size == 0:
            continue
        m = max(1, int(rows.size * max_frames // n))
        keep.append(rows[np.linspace(0, rows.size - 1, m).round().astype(np.int64)])
    return np.sort(np.unique(np.concatenate(keep)))


def _mmd_subsample(design: Design, max_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Frame rows of the kernel subsample: at most ``max_samples`` per side (by the true
    labels; a subsample is a fixed set of frames, relabelled with their episodes)."""
    side = design.ep_real[design.codes]
    rows = []
    for s in (False, True):
        idx = np.flatnonzero(side == s)
        rows.append(idx[_subsample(idx.size, max_samples, rng)])
    return np.sort(np.concatenate(rows))
