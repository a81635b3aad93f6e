"""Distribution gap between sim and real frames: RBF-kernel MMD, Fréchet distance, C2ST.

All three take two row-sets in the same space -- in realgap the shared DIS space of
:mod:`realgap.metrics.space` -- with shapes ``x: (n_x, k)``, ``y: (n_y, k)``.

- :func:`mmd_rbf`: the *unbiased* U-statistic estimate of MMD^2 (Gretton et al., JMLR
  2012, eq. 3) with the Gaussian kernel ``exp(-||a - b||^2 / (2 sigma^2))`` and ``sigma``
  from the median heuristic (median Euclidean distance between distinct pooled points,
  Gretton et al. 2012 sec. 8). Its p-value is a permutation test of H0: same distribution;
  with episode labels the *episodes* are permuted between the two sides (frames of an
  episode are not exchangeable, so a frame permutation would be anti-conservative).
  Sets larger than ``max_samples`` per side are subsampled (seeded, recorded); the kernel
  is evaluated in row blocks, never as one ``N x N`` matrix beyond the subsample.
- :func:`frechet_distance`: ``||mu_x - mu_y||^2 + tr(C_x + C_y - 2 (C_x^{1/2} C_y
  C_x^{1/2})^{1/2})`` between Gaussian fits (Dowson & Landau 1982; the FID formula), via
  symmetric eigendecompositions (no complex ``sqrtm`` round-off).
- :func:`c2st_accuracy`: classifier two-sample test (Lopez-Paz & Oquab, ICLR 2017), the
  "source determination" of encoder-dis-as-framework.txt (III): a logistic regression
  predicts the domain, cross-validated BY EPISODE (``StratifiedGroupKFold``); the
  out-of-fold accuracy is reported against its chance level (the majority-class share).
  0.5 on balanced data means indistinguishable domains. A standalone variant with a fixed
  ``C``: ``gap_suite`` uses the nested-CV, null-calibrated C2ST of
  :mod:`realgap.metrics.twosample` instead (a fixed capacity in hundreds of components let
  noise swamp the domain direction).

The permutation nulls and bootstrap replicates ``gap_suite`` reports are computed in
:mod:`realgap.metrics.twosample` from per-episode sums; the functions here are the plain
point estimates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from realgap._rng import RngLike, as_rng
from realgap.errors import DataError
from realgap.metrics._validate import as_groups, as_matrix, check_positive_int, same_dim

#: Row-block size of kernel and distance evaluations.
BLOCK = 2048


# -- MMD --------------------------------------------------------------------------------
@dataclass(frozen=True)
class MMDResult:
    """Unbiased MMD^2 with its permutation p-value.

    Attributes:
        mmd2: unbiased estimate of MMD^2 (can be slightly negative when the sets agree).
        p_value: permutation p-value ``(1 + #{T_perm >= T}) / (1 + n_perm)``; NaN if
            ``n_perm == 0``.
        bandwidth: kernel ``sigma`` (median heuristic unless given).
        n_x, n_y: rows used per side (after subsampling).
        n_perm: permutations run.
        permutation_unit: ``"episode"`` or ``"frame"``.
        estimator: always ``"unbiased"`` (U-statistic).
    """

    mmd2: float
    p_value: float
    bandwidth: float
    n_x: int
    n_y: int
    n_perm: int
    permutation_unit: str
    estimator: str = "unbiased"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``(len(a), len(b))``, clipped at 0."""
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d2, 0.0, out=d2)


def median_heuristic(p: np.ndarray, rng: RngLike = 0, max_points: int = 2000) -> float:
    """Median Euclidean distance between distinct rows of ``p`` (a seeded subset of at
    most ``max_points`` rows); 1.0 if all rows coincide."""
    if len(p) > max_points:
        p = p[np.sort(as_rng(rng).choice(len(p), max_points, replace=False))]
    d2 = sq_dists(p, p)
    iu = np.triu_indices(len(p), k=1)
    med = float(np.sqrt(np.median(d2[iu])))
    return med if med > 0 else 1.0


def rbf_kernel_matrix(p: np.ndarray, sigma: float) -> np.ndarray:
    """``(m, m)`` Gaussian kernel matrix of the rows of ``p``, built in row blocks."""
    m = len(p)
    k = np.empty((m, m))
    for s in range(0, m, BLOCK):
        k[s:s + BLOCK] = np.exp(-sq_dists(p[s:s + BLOCK], p) / (2.0 * sigma * sigma))
    return k


def mmd2_weighted(kmat: np.ndarray, wx: np.ndarray, wy: np.ndarray) -> np.ndarray:
    """Unbiased MMD^2 for multiset weights over the rows of ``kmat``.

    ``wx, wy``: ``(m, B)`` non-negative integer multiplicities of each row on the x and y
    side, for ``B`` columns at once (permutations or bootstrap replicates). Pairs of the
    same draw are excluded (``k(a, a) = 1`` for the RBF kernel); two copies of one row are
    distinct draws. Returns ``(B,)``.
    """
    kx = kmat @ wx
    ky = kmat @ wy
    nx = wx.sum(0)
    ny = wy.sum(0)
    # w^T K w counts each draw paired with itself once (k(a, a) = 1): remove n of them.
    sxx = (wx * kx).sum(0) - nx
    syy = (wy * ky).sum(0) - ny
    sxy = (wx * ky).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sxx / (nx * (nx - 1)) + syy / (ny * (ny - 1)) - 2.0 * sxy / (nx * ny)


def mmd_rbf(
    x: np.ndarray,
    y: np.ndarray,
    *,
    groups_x: np.ndarray | None = None,
    groups_y: np.ndarray | None = None,
    bandwidth: float | None = None,
    n_perm: int = 200,
    max_samples: int = 2000,
    rng: RngLike = 0,
) -> MMDResult:
    """Unbiased RBF-kernel MMD^2 between ``x (n_x, k)`` and ``y (n_y, k)`` with a
    permutation p-value (see module docstring).

    Args:
        groups_x, groups_y: episode ids; when both are given, episodes are permuted.
        bandwidth: kernel sigma; ``None`` = median heuristic on the pooled rows used.
        n_perm: permutations (0 skips the test).
        max_samples: at most this many rows per side (seeded subsample).
        rng: seed of subsampling and permutations.
    """
    xa = as_matrix(x, "x")
    ya = as_matrix(y, "y")
    same_dim(xa, ya, "x", "y")
    n_perm = check_positive_int(n_perm, "n_perm", minimum=0)
    max_samples = check_positive_int(max_samples, "max_samples", minimum=2)
    gen = as_rng(rng)
    gx = None if groups_x is None else as_groups(groups_x, len(xa), "groups_x")
    gy = None if groups_y is None else as_groups(groups_y, len(ya), "groups_y")
    ix, iy, sigma, kmat = mmd_setup(xa, ya, max_samples=max_samples, bandwidth=bandwidth, rng=gen)
    return mmd_test_from_kernel(kmat, ix, iy, sigma, gx, gy, n_perm, gen)


def mmd_test_from_kernel(
    kmat: np.ndarray, ix: np.ndarray, iy: np.ndarray, sigma: float,
    gx: np.ndarray | None, gy: np.ndarray | None, n_perm: int, gen: np.random.Generator,
) -> MMDResult:
    """Statistic and permutation p-value from :func:`mmd_setup`'s output (``gx``/``gy``:
    episode ids of all x/y rows, or None for a frame permutation)."""
    p_len, nx = len(ix) + len(iy), len(ix)
    side = np.r_[np.ones(nx), np.zeros(len(iy))][:, None]
    stat = float(mmd2_weighted(kmat, side, 1.0 - side)[0])
    episodes = gx is not None and gy is not None
    if n_perm == 0:
        return MMDResult(stat, float("nan"), sigma, nx, len(iy), 0,
                         "episode" if episodes else "frame")
    if episodes:
        labels = np.r_[np.char.add("x", gx[ix].astype(str)), np.char.add("y", gy[iy].astype(str))]
        _, codes = np.unique(labels, return_inverse=True)
        n_units = int(codes.max()) + 1
        n_x_units = int(np.unique(codes[:nx]).size)
        unit = "episode"
    else:
        codes = np.arange(p_len)
        n_units, n_x_units, unit = p_len, nx, "frame"
    perms = np.empty(n_perm)
    for s in range(0, n_perm, 64):
        b = min(64, n_perm - s)
        chosen = np.zeros((n_units, b))
        for j in range(b):
            chosen[gen.permutation(n_units)[:n_x_units], j] = 1.0
        wx = chosen[codes]
        perms[s:s + b] = mmd2_weighted(kmat, wx, 1.0 - wx)
    pval = (1.0 + float(np.sum(perms >= stat))) / (1.0 + n_perm)
    return MMDResult(stat, pval, sigma, nx, len(iy), n_perm, unit)


def mmd_setup(
    x: np.ndarray, y: np.ndarray, *, max_samples: int, bandwidth: float | None,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """Subsample rows (``ix``, ``iy``), pick ``sigma`` and build the pooled kernel
    matrix ``(len(ix) + len(iy))^2`` (x rows first). Shared by :func:`mmd_rbf` and the
    episode bootstrap of ``gap_suite``; draws from ``rng`` in a fixed order."""
    ix = _subsample(len(x), max_samples, rng)
    iy = _subsample(len(y), max_samples, rng)
    p = np.vstack([x[ix], y[iy]])
    sigma = float(bandwidth) if bandwidth is not None else median_heuristic(p, rng)
    if not sigma > 0:
        raise DataError(f"bandwidth: expected a kernel width > 0, got {bandwidth!r}")
    return ix, iy, sigma, rbf_kernel_matrix(p, sigma)


def _subsample(n: int, max_samples: int, gen: np.random.Generator) -> np.ndarray:
    if n <= max_samples:
        return np.arange(n)
    return np.sort(gen.choice(n, max_samples, replace=False))


# -- Fréchet distance ---------------------------------------------------------------------
def _single_thread() -> Any:
    """LAPACK eigensolvers at these sizes (k <= a few hundred) are no faster with more
    BLAS threads, and on a busy machine thread contention makes them 10-50x slower."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _sqrt_psd(c: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(c)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_from_moments(mu_x: np.ndarray, cov_x: np.ndarray,
                         mu_y: np.ndarray, cov_y: np.ndarray) -> float:
    """Fréchet distance between ``N(mu_x, cov_x)`` and ``N(mu_y, cov_y)``."""
    with _single_thread():
        return frechet_from_moments_unlimited(mu_x, cov_x, mu_y, cov_y)


def frechet_from_moments_unlimited(mu_x: np.ndarray, cov_x: np.ndarray,
                                   mu_y: np.ndarray, cov_y: np.ndarray) -> float:
    """:func:`frechet_from_moments` without limiting BLAS threads (for callers that limit
    them once around many calls: threadpoolctl costs milliseconds per entry)."""
    # tr (C_x^{1/2} C_y C_x^{1/2})^{1/2} = sum sqrt(eig(C_x C_y)); with C_x = L L^T the
    # symmetric L^T C_y L has those eigenvalues, so one Cholesky and one eigvalsh suffice.
    # A singular C_x (constant component, n <= k) falls back to the eigh square root.
    try:
        low = np.linalg.cholesky(cov_x)
        m = low.T @ cov_y @ low
    except np.linalg.LinAlgError:
        sx = _sqrt_psd(cov_x)
        m = sx @ cov_y @ sx
    tr_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0.0, None)).sum())
    diff = mu_x - mu_y
    return float(diff @ diff + np.trace(cov_x) + np.trace(cov_y) - 2.0 * tr_sqrt)


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Fréchet distance between Gaussian fits of ``x (n_x, k)`` and ``y (n_y, k)``
    (sample covariances with ddof=1). Units: squared units of the space."""
    xa = as_matrix(x, "x")
    ya = as_matrix(y, "y")
    same_dim(xa, ya, "x", "y")
    return frechet_from_moments(xa.mean(0), np.atleast_2d(np.cov(xa, rowvar=False)),
                                ya.mean(0), np.atleast_2d(np.cov(ya, rowvar=False)))


# -- classifier two-sample test -----------------------------------------------------------
@dataclass(frozen=True, eq=False)
class C2STResult:
    """Out-of-fold accuracy of a domain classifier.

    Attributes:
        accuracy: share of frames whose domain is predicted correctly out of fold.
        chance: majority-class share of the scored frames (accuracy of a constant guess).
        n_splits: folds (by episode).
        n_x, n_y: frames scored per side (after subsampling).
        correct: ``(n_x + n_y,)`` bool, out-of-fold correctness per scored frame.
        groups: ``(n_x + n_y,)`` episode key per scored frame (``"x:<ep>"``/``"y:<ep>"``).
        index_x, index_y: rows of ``x`` and ``y`` that were scored.
    """

    accuracy: float
    chance: float
    n_splits: int
    n_x: int
    n_y: int
    correct: np.ndarray = field(repr=False)
    groups: np.ndarray = field(repr=False)
    index_x: np.ndarray = field(repr=False)
    index_y: np.ndarray = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("accuracy", "chance", "n_splits", "n_x", "n_y")}


def c2st_accuracy(
    x: np.ndarray,
    y: np.ndarray,
    groups_x: np.ndarray,
    groups_y: np.ndarray,
    *,
    n_splits: int = 5,
    max_samples: int = 5000,
    C: float = 1.0,
    rng: RngLike = 0,
) -> C2STResult:
    """Classifier two-sample test accuracy (see module docstring).

    A standardized L2 logistic regression (``C``) is trained to tell ``x`` (label 0) from
    ``y`` (label 1) with ``min(n_splits, episodes per side)`` folds that never split an
    episode. At most ``max_samples`` frames per side are used (seeded subsample).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xa = as_matrix(x, "x")
    ya = as_matrix(y, "y")
    same_dim(xa, ya, "x", "y")
    gx = as_groups(groups_x, len(xa), "groups_x")
    gy = as_groups(groups_y, len(ya), "groups_y")
    gen = as_rng(rng)
    ix = _subsample(len(xa), max_samples, gen)
    iy = _subsample(len(ya), max_samples, gen)
    feats = np.vstack([xa[ix], ya[iy]])
    label = np.r_[np.zeros(len(ix), np.int64), np.ones(len(iy), np.int64)]
    keys = np.r_[np.char.add("x:", gx[ix].astype(str)), np.char.add("y:", gy[iy].astype(str))]
    folds = min(int(n_splits), np.unique(gx[ix]).size, np.unique(gy[iy]).size)
    if folds < 2:
        raise DataError("c2st_accuracy: needs at least 2 episodes per domain to cross-validate "
                        f"by episode, got {np.unique(gx[ix]).size} sim and "
                        f"{np.unique(gy[iy]).size} real; record more episodes")
    cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=int(gen.integers(2**31 - 1)))
    pred = np.empty_like(label)
    for tr, te in cv.split(feats, label, keys):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
        clf.fit(feats[tr], label[tr])
        pred[te] = clf.predict(feats[te])
    correct = pred == label
    chance = max(len(ix), len(iy)) / (len(ix) + len(iy))
    return C2STResult(float(correct.mean()), float(chance), folds, len(ix), len(iy),
                      correct, keys, ix, iy)
