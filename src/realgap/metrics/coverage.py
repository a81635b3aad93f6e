"""Coverage: which real frames land where the simulated data never goes.

sim-to-real-glossary.txt ("if your real-world samples land in a region your simulated
data never covers, you've found your sim-to-real failure"), made a per-frame test.

**Space, fitted on sim only.** Embeddings are centred on the *sim* mean and divided by one
number, the sim RMS feature std (``scale``), so distances keep the encoder's own geometry
in units comparable across encoders; optionally they are projected on ``n_components``
leading principal axes of sim frames, plus one coordinate, the distance to that principal
subspace (novelty off the sim axes must stay visible). Real frames are only projected: a real outlier never
stretches the space it is judged in (a pooled space shrinks the distances of everything
else to make room for it, which once hid 15% colour-inverted frames). Per-feature
standardization is not used: on pixels it divides a rarely covered pixel by a tiny std,
and since the calibration frames help set those stds, held-out sim frames looked typical
and 28% of in-distribution real frames were flagged at alpha = 0.05. All distances are
Euclidean, in float64, in this sim-centred space.

**Per-frame k-NN distance and conformal p-value.** For each real frame, ``knn_distance`` is
its distance to its ``k``-th nearest sim frame. Whether that distance is large is decided
against sim episodes held out from the support, by episode-grouped *cross-conformal*
calibration (Vovk 2015, "Cross-conformal predictors"): the sim episodes are dealt into
``n_cal_folds`` folds; a sim frame's calibration score ``s_j`` is its k-NN distance to the
sim frames of the *other* folds (so never to its own episode, whose consecutive frames are
near-duplicates); a real frame ``i`` gets, against the same supports, the distances
``d_i^f`` to the sim frames outside fold ``f``, and

    p_i = (1 + sum_f #{j in fold f : s_j >= d_i^f}) / (1 + n_sim)

With principal axes (``n_components``), the axes are fitted on calibration fold 0 only,
which then serves as support but never as calibration, so that calibration frames, like
real ones, are new to the space (sums over ``f`` then skip fold 0 and ``n_sim`` counts the
calibrating frames).
A real frame from new episodes of the sim distribution is exchangeable with the held-out
sim episodes, so ``P(p_i < alpha) ~ alpha``: ``flagged = p_value < alpha`` flags about an
``alpha`` share of in-distribution frames (marginally over frames; frames of one episode
are correlated, so the share in one small set varies more than for independent frames).
``outside_fraction`` is the share of flagged real frames.

**Naeem density and coverage** (Naeem et al., "Reliable Fidelity and Diversity Metrics for
Generative Models", ICML 2020, eqs. 3-4), computed exactly as the reference code ``prdc``
(``compute_prdc(real_features=sim, fake_features=real, nearest_k=k)``) computes them, with
the convention **sim = the reference manifold, real frames = the evaluated samples**::

    r_j      = distance from sim frame j to its k-th nearest other sim frame (any episode)
    density  = 1/(k M) sum_i sum_j 1[ ||y_i - x_j|| < r_j ]     (M real frames)
    coverage = 1/N sum_j 1[ min_i ||y_i - x_j|| < r_j ]        (N sim frames)

with strict ``<`` as in prdc (identical sets give density 1.000 exactly), in float64 in the
sim-centred space (far from the origin, float32 distances lose the digits that decide ties).
Centring and one global scale change no neighbour relation, so without ``n_components``
these are prdc's numbers on the raw embeddings; with it, prdc's numbers in that space.

Memory: distances are computed in row blocks of at most ~64 MiB; no ``N x N`` matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from realgap._rng import RngLike, as_rng
from realgap.errors import DataError
from realgap.metrics._validate import (
    as_groups,
    as_matrix,
    check_positive_int,
    check_prob,
    same_dim,
)

_BLOCK_BYTES = 64 * 2**20

#: Folds of the cross-conformal calibration when the caller does not say.
DEFAULT_CAL_FOLDS = 5


def _block_rows(n_ref: int) -> int:
    return max(1, _BLOCK_BYTES // (8 * max(1, n_ref)))


def _distances(q: np.ndarray, ref: np.ndarray, ref_sq: np.ndarray) -> np.ndarray:
    """Euclidean distances ``(len(q), len(ref))`` in float64 via one GEMM, as scikit-learn's
    ``euclidean_distances`` (which prdc calls), except that the two squared norms are added
    first: ``(|a|^2 + |b|^2) - 2 a.b`` rounds the same with the roles of ``a`` and ``b``
    swapped, so a real frame identical to a sim frame meets the sim radii exactly as that
    sim frame does (sklearn's order gave identical sets a density of 1.03 instead of 1).
    Round-off negatives are clipped to 0."""
    d2 = (q * q).sum(1)[:, None] + ref_sq[None, :]
    d2 -= 2.0 * (q @ ref.T)
    np.maximum(d2, 0.0, out=d2)
    return np.sqrt(d2, out=d2)


def kth_neighbour_distance(
    query: np.ndarray,
    ref: np.ndarray,
    k: int,
    *,
    query_groups: np.ndarray | None = None,
    ref_groups: np.ndarray | None = None,
) -> np.ndarray:
    """Distance ``(n_query,)`` from each query row to its ``k``-th nearest ``ref`` row,
    ignoring ``ref`` rows whose group equals the query row's group (when groups are
    given). Blocked, float64. Rows with fewer than ``k`` admissible neighbours get inf."""
    q = np.ascontiguousarray(query, dtype=np.float64)
    r = np.ascontiguousarray(ref, dtype=np.float64)
    r_sq = (r * r).sum(1)
    out = np.empty(len(q))
    step = _block_rows(len(r))
    for s in range(0, len(q), step):
        d = _distances(q[s:s + step], r, r_sq)
        if query_groups is not None and ref_groups is not None:
            d[np.asarray(query_groups)[s:s + step, None] == np.asarray(ref_groups)[None, :]] = np.inf
        out[s:s + step] = np.inf if k > d.shape[1] else np.partition(d, k - 1, axis=1)[:, k - 1]
    return out


# --------------------------------------------------------------------------------------
# The space: fitted on sim only.


@dataclass(frozen=True, eq=False)
class SimSpace:
    """The comparison space, fitted on sim frames only.

    Attributes:
        mean: ``(D,)`` sim feature means.
        scale: the sim RMS feature std (1 when every feature is constant).
        components: ``(m, D)`` leading principal axes of the centred sim frames, or None.
        description: ``name``, ``fitted_on``, ``n_components``, ``n_components_requested``,
            ``scale``, ``retained_variance`` (share of the sim variance kept), ``warning``
            (None or a sentence saying the request was cut by the data).
        seed: seed of the (possibly randomized) PCA solver, re-used for per-fold axes.
    """

    mean: np.ndarray
    scale: float
    components: np.ndarray | None
    description: dict[str, Any]
    seed: int

    def standardize(self, x: np.ndarray) -> np.ndarray:
        """Centred on the sim mean, divided by the sim RMS std (a similarity transform)."""
        return (x - self.mean) / self.scale

    def project(self, x: np.ndarray) -> np.ndarray:
        """``(n, m + 1)`` coordinates with principal axes (the ``m`` projections and the
        distance to the principal subspace), else ``(n, D)``. Without that last coordinate
        a frame that differs from sim only off the sim axes (an inverted colour channel
        that sim never varies) would project onto sim and pass unseen. The sim frames are
        centred, so projecting is a plain product: nothing is re-centred on the frames
        being projected."""
        z = self.standardize(x)
        if self.components is None:
            return z
        proj = z @ self.components.T
        resid = np.sqrt(np.maximum((z * z).sum(1) - (proj * proj).sum(1), 0.0))
        return np.column_stack([proj, resid])


def _pca_axes(z: np.ndarray, m: int, seed: int) -> tuple[np.ndarray, float]:
    """``(components (m, D), retained variance share)`` of the rows of ``z``."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=m, random_state=seed).fit(z)
    return pca.components_, float(pca.explained_variance_ratio_.sum())


def fit_sim_space(xs: np.ndarray, n_components: int | None, rng: RngLike) -> SimSpace:
    """Centre on the sim mean, divide by the sim RMS std and, when ``n_components`` is set,
    project on the leading principal axes of these frames (``min(n_components, n_sim - 1,
    D)`` of them; a cut is recorded in ``description["warning"]``)."""
    mean = xs.mean(axis=0)
    rms = float(np.sqrt(xs.var(axis=0).mean()))
    scale = rms if rms > 0 else 1.0
    dim = xs.shape[1]
    desc: dict[str, Any] = {"name": "sim-centred", "fitted_on": "sim", "n_components": dim,
                            "n_components_requested": n_components, "scale": scale,
                            "retained_variance": 1.0, "warning": None}
    seed = int(as_rng(rng).integers(2**31 - 1))
    if n_components is None:
        return SimSpace(mean, scale, None, desc, seed)
    want = check_positive_int(n_components, "n_components")
    m = min(want, len(xs) - 1, dim)
    if m < 1:
        raise DataError(f"sim_emb: a PCA space needs at least 2 sim frames, got {len(xs)}")
    if m < want:
        desc["warning"] = (f"n_components={want} cut to {m} by the data "
                           f"({len(xs)} sim frames, {dim} dims)")
    if m == dim:
        return SimSpace(mean, scale, None, desc | {"n_components": m}, seed)
    comps, kept = _pca_axes((xs - mean) / scale, m, seed)
    desc |= {"name": "sim-pca", "n_components": m, "retained_variance": kept}
    return SimSpace(mean, scale, comps, desc, seed)


# --------------------------------------------------------------------------------------
# Neighbour candidates per calibration fold (one pass over each distance block).


def _smallest_per_fold(d: np.ndarray, bounds: np.ndarray, m: int) -> np.ndarray:
    """``(rows, K, m)``: the ``m`` smallest distances of each row within each fold's column
    slice ``bounds[f]:bounds[f+1]`` (sorted; padded with inf where a fold is smaller)."""
    n_folds = len(bounds) - 1
    out = np.full((d.shape[0], n_folds, m), np.inf)
    for f in range(n_folds):
        block = d[:, bounds[f]:bounds[f + 1]]
        take = min(m, block.shape[1])
        if take == 0:
            continue
        part = block if take == block.shape[1] else np.partition(block, take - 1, axis=1)
        out[:, f, :take] = np.sort(part[:, :take], axis=1)
    return out


def _kth_excluding(cand: np.ndarray, k: int) -> np.ndarray:
    """``(rows, K)``: the ``k``-th smallest distance to the sim frames outside each fold,
    from the per-fold candidates ``(rows, K, m >= k)``."""
    rows, n_folds, _ = cand.shape
    out = np.empty((rows, n_folds))
    for f in range(n_folds):
        others = np.delete(cand, f, axis=1).reshape(rows, -1)
        out[:, f] = np.partition(others, k - 1, axis=1)[:, k - 1]
    return out


@dataclass(frozen=True, eq=False)
class CoverageReport:
    """Coverage of the real frames by the sim set (see module docstring).

    Attributes:
        k: neighbourhood size. alpha: level of the per-frame flag.
        n_sim, n_real: frames; n_cal_folds: folds of the cross-conformal calibration.
        space: how the space was built (``name``, ``fitted_on``, ``n_components``,
            ``n_components_requested``, ``retained_variance``, ``warning``).
        outside_fraction: share of real frames flagged.
        density, naeem_coverage: Naeem et al. 2020 as prdc computes them (sim = reference).
        knn_distance: ``(n_real,)`` distance to the k-th nearest sim frame.
        p_value: ``(n_real,)`` cross-conformal p-value of that distance.
        flagged: ``(n_real,)`` bool, ``p_value < alpha``.
        real_episodes: ``(n_real,)`` the episode of each real frame (as given).
        density_count: ``(n_real,)`` number of sim balls (radius ``sim_radius``) strictly
            holding each real frame; ``density = density_count.mean() / k``.
        sim_reached: ``(n_sim,)`` bool, sim ball strictly reached by some real frame;
            ``naeem_coverage = sim_reached.mean()``.
        sim_radius: ``(n_sim,)`` prdc radius of each sim frame.
        calibration_score: ``(n_sim,)`` each sim frame's k-NN distance to the other folds
            (NaN for the frames that fitted the principal axes).
        sim_fold: ``(n_sim,)`` the calibration fold of each sim frame used.
        sim_episodes: ``(n_sim,)`` the episode of each sim frame used (as given).
        sim_index: ``(n_sim,)`` rows of ``sim_emb`` used (all unless ``max_sim`` cut them).
        worst: indices into the real rows, lowest p-value first (ties: larger distance
            first), ``n_worst`` of them.
        by_factor: DataFrame ``factor, level, n_frames, n_outside, fraction_outside``
            (``n_outside`` counts flagged frames; empty when no factors were given).
    """

    k: int
    alpha: float
    n_sim: int
    n_real: int
    n_cal_folds: int
    space: dict[str, Any]
    outside_fraction: float
    density: float
    naeem_coverage: float
    knn_distance: np.ndarray = field(repr=False)
    p_value: np.ndarray = field(repr=False)
    flagged: np.ndarray = field(repr=False)
    real_episodes: np.ndarray = field(repr=False)
    density_count: np.ndarray = field(repr=False)
    sim_reached: np.ndarray = field(repr=False)
    sim_radius: np.ndarray = field(repr=False)
    calibration_score: np.ndarray = field(repr=False)
    sim_fold: np.ndarray = field(repr=False)
    sim_episodes: np.ndarray = field(repr=False)
    sim_index: np.ndarray = field(repr=False)
    worst: np.ndarray = field(repr=False)
    by_factor: pd.DataFrame = field(repr=False)

    @property
    def n_flagged(self) -> int:
        return int(self.flagged.sum())

    def flagged_frames(self) -> list[dict[str, Any]]:
        """One dict per flagged real frame, lowest p-value first: ``index`` (real row),
        ``episode``, ``knn_distance``, ``p_value``."""
        idx = np.flatnonzero(self.flagged)
        idx = idx[np.lexsort((-self.knn_distance[idx], self.p_value[idx]))]
        return [{"index": int(i), "episode": _plain(self.real_episodes[i]),
                 "knn_distance": float(self.knn_distance[i]), "p_value": float(self.p_value[i])}
                for i in idx]

    def as_dict(self) -> dict[str, Any]:
        """Scalars, the space, the flagged frames, the worst indices and the factor table
        (JSON-ready)."""
        keys = ("k", "alpha", "n_sim", "n_real", "n_cal_folds", "outside_fraction", "density",
                "naeem_coverage", "n_flagged")
        out: dict[str, Any] = {key: getattr(self, key) for key in keys}
        out["space"] = dict(self.space)
        out["flagged"] = self.flagged_frames()
        out["worst"] = [int(i) for i in self.worst]
        out["by_factor"] = self.by_factor.to_dict(orient="records")
        return out


def _plain(v: Any) -> Any:
    """A numpy scalar as the Python scalar JSON takes."""
    return v.item() if isinstance(v, np.generic) else v


def _factor_table(factors: Any, outside: np.ndarray) -> pd.DataFrame:
    cols = ["factor", "level", "n_frames", "n_outside", "fraction_outside"]
    if factors is None:
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame(factors)
    if len(df) != len(outside):
        raise DataError(f"factors: {len(df)} rows but there are {len(outside)} real frames; "
                        "pass one row of factor values per real frame")
    rows = []
    for col in df.columns:
        levels = df[col].astype(str).where(df[col].notna(), "<missing>")
        for level, idx in levels.groupby(levels, sort=True).groups.items():
            o = outside[np.asarray(list(idx)) if not isinstance(idx, np.ndarray) else idx]
            rows.append((str(col), str(level), int(o.size), int(o.sum()), float(o.mean())))
    return pd.DataFrame(rows, columns=cols)


def _episode_subsample(ep: np.ndarray, max_frames: int, gen: np.random.Generator) -> np.ndarray:
    """Sorted rows of whole episodes, taken in a random order until ``max_frames`` rows are
    reached (at least 2 episodes)."""
    uniq, codes = np.unique(ep, return_inverse=True)
    codes = codes.ravel()
    sizes = np.bincount(codes)
    order = gen.permutation(uniq.size)
    n_take = max(2, int(np.searchsorted(np.cumsum(sizes[order]), max_frames)) + 1)
    return np.flatnonzero(np.isin(codes, order[:n_take]))


def _cal_folds(ep: np.ndarray, n_folds: int, rng: RngLike) -> tuple[np.ndarray, int]:
    """Fold of each sim frame (whole episodes per fold) and the number of folds."""
    _, codes = np.unique(ep, return_inverse=True)
    codes = codes.ravel()
    n_eps = int(codes.max()) + 1
    if n_eps < 2:
        raise DataError(f"sim_episodes: coverage calibrates on held-out sim episodes and needs "
                        f"at least 2, got {n_eps}; record more sim episodes")
    k = min(check_positive_int(n_folds, "n_cal_folds", minimum=2), n_eps)
    order = np.arange(n_eps) if rng is None else as_rng(rng).permutation(n_eps)
    fold = np.empty(n_eps, dtype=np.int64)
    fold[order] = np.arange(n_eps) % k
    return fold[codes], k


def coverage_report(
    sim_emb: np.ndarray,
    sim_episodes: np.ndarray,
    real_emb: np.ndarray,
    real_episodes: np.ndarray,
    *,
    k: int = 5,
    alpha: float = 0.05,
    n_components: int | None = None,
    factors: Any = None,
    rng: RngLike = None,
    n_cal_folds: int = DEFAULT_CAL_FOLDS,
    n_worst: int = 16,
    max_sim: int | None = None,
) -> CoverageReport:
    """How well the sim frames cover the real frames, per frame (see module docstring).

    Args:
        sim_emb: ``(n_sim, D)`` sim embeddings.
        sim_episodes: ``(n_sim,)`` episode of each sim frame (calibration folds hold out
            whole episodes).
        real_emb: ``(n_real, D)`` real embeddings from the same encoder.
        real_episodes: ``(n_real,)`` episode of each real frame (carried to the output).
        k: neighbourhood size (Naeem et al. use 5).
        alpha: a real frame is flagged when its conformal p-value is below ``alpha``.
        n_components: None (default) keeps every feature; an int projects on that many
            leading sim principal axes (cut to ``n_sim - 1`` and ``D``, recorded). The
            axes (and the centring and scale) are then fitted on calibration
            fold 0 alone, which serves as support but not as calibration: frames the axes
            were fitted on spread further along them than new frames, and calibrating on
            them made the flag conservative. Needs 3 folds.
        factors: optional table (DataFrame or dict of columns), one row per real frame,
            for the per-factor-level breakdown of the flags.
        rng: seed of the calibration folds (and of a randomized PCA); None deals the sorted
            sim episodes round-robin.
        n_cal_folds: folds of the cross-conformal calibration.
        n_worst: how many worst-covered real frames to list in ``worst``.
        max_sim: if set and smaller than ``n_sim``, the support, the calibration and the
            Naeem reference are a seeded subsample of whole sim episodes (taken in a random
            order until ``max_sim`` frames are reached): the cost is
            ``O((n_sim + n_real) * n_sim * D)``. The rows used are in ``sim_index``.
    """
    xs = as_matrix(sim_emb, "sim_emb")
    xr = as_matrix(real_emb, "real_emb", min_rows=1)
    same_dim(xs, xr, "sim_emb", "real_emb")
    es = as_groups(sim_episodes, len(xs), "sim_episodes")
    er = as_groups(real_episodes, len(xr), "real_episodes")
    k = check_positive_int(k, "k")
    alpha = check_prob(alpha, "alpha")
    n_worst = check_positive_int(n_worst, "n_worst", minimum=0)
    gen = None if rng is None else as_rng(rng)
    sim_index = np.arange(len(xs))
    if max_sim is not None and check_positive_int(max_sim, "max_sim", minimum=2) < len(xs):
        sim_index = _episode_subsample(es, int(max_sim), as_rng(gen))
        xs, es = xs[sim_index], es[sim_index]
    fold, n_folds = _cal_folds(es, n_cal_folds, gen)
    # Principal axes spread the frames they were fitted on: fitted on calibration frames
    # they made the flag conservative (0.000 instead of 0.05 on a flat spectrum). So with
    # axes, fold 0 fits the space and is support only; the other folds calibrate.
    pca = n_components is not None
    if pca and n_folds < 3:
        raise DataError(f"sim_episodes: principal axes need 3 calibration folds (one fits the "
                        f"axes), got {n_folds}; record more sim episodes or pass "
                        "n_components=None")
    space = fit_sim_space(xs[fold == 0] if pca else xs, n_components, gen)
    zs, zr = space.project(xs), space.project(xr)
    cal_folds = range(1, n_folds) if pca else range(n_folds)

    # Sim sorted by fold: each fold is one contiguous column slice of a distance block.
    order = np.argsort(fold, kind="stable")
    zs_o = np.ascontiguousarray(zs[order])
    bounds = np.r_[0, np.cumsum(np.bincount(fold, minlength=n_folds))]
    if len(zs) - int(np.diff(bounds).max()) < k:
        raise DataError(f"k: {k} neighbours outside a held-out fold needs more sim frames "
                        f"outside every fold ({len(zs) - int(np.diff(bounds).max())} in the "
                        "smallest support); lower k or add sim episodes")
    if k >= len(zs):
        raise DataError(f"k: {k} neighbours needs more than {k} sim frames, got {len(zs)}")
    s_sq = (zs_o * zs_o).sum(1)
    step = _block_rows(len(zs_o))

    # Sim against sim: calibration scores (other folds only) and prdc radii (all, self = 0).
    cal = np.empty(len(zs_o))
    radius = np.empty(len(zs_o))
    fold_o = fold[order]
    for s in range(0, len(zs_o), step):
        d = _distances(zs_o[s:s + step], zs_o, s_sq)
        rows = np.arange(d.shape[0])
        d[rows, s + rows] = 0.0  # a frame's distance to itself, exactly (as sklearn sets it)
        radius[s:s + step] = np.partition(d, k, axis=1)[:, k]  # (k+1)-th smallest, self incl.
        cand = _smallest_per_fold(d, bounds, k)
        kth = _kth_excluding(cand, k)
        cal[s:s + step] = kth[rows, fold_o[s:s + step]]

    # Real against sim: per-fold test distances, k-NN distance, Naeem counts.
    knn = np.empty(len(zr))
    count = np.empty(len(zr), dtype=np.int64)
    nearest_real = np.full(len(zs_o), np.inf)
    n_at_least = np.zeros(len(zr), dtype=np.int64)
    cal_sorted = {f: np.sort(cal[bounds[f]:bounds[f + 1]]) for f in cal_folds}
    for s in range(0, len(zr), step):
        d = _distances(np.ascontiguousarray(zr[s:s + step]), zs_o, s_sq)
        count[s:s + step] = (d < radius[None, :]).sum(1)
        np.minimum(nearest_real, d.min(0), out=nearest_real)
        cand = _smallest_per_fold(d, bounds, k)
        knn[s:s + step] = np.sort(cand.reshape(len(d), -1), axis=1)[:, k - 1]
        kth = _kth_excluding(cand, k)
        for f in cal_folds:
            # #{j in fold f: s_j >= d_i^f}
            n_at_least[s:s + step] += cal_sorted[f].size - np.searchsorted(
                cal_sorted[f], kth[:, f], side="left")
    inv = np.empty_like(order)
    inv[order] = np.arange(len(order))
    sim_radius, sim_reached, cal_score = radius[inv], (nearest_real < radius)[inv], cal[inv]
    n_cal = sum(cal_sorted[f].size for f in cal_folds)
    if pca:
        cal_score[fold == 0] = np.nan  # fitted the axes: no calibration score
    p_value = (1.0 + n_at_least) / (1.0 + n_cal)
    flagged = p_value < alpha

    worst = np.lexsort((-knn, p_value))[:n_worst]
    return CoverageReport(
        k=k, alpha=alpha, n_sim=len(zs), n_real=len(zr), n_cal_folds=n_folds,
        space=dict(space.description) | ({"fitted_on": f"sim calibration fold 0 "
                                                        f"({int((fold == 0).sum())} frames)"}
                                         if pca else {}),
        outside_fraction=float(flagged.mean()), density=float(count.sum() / (k * len(zr))),
        naeem_coverage=float(sim_reached.mean()), knn_distance=knn, p_value=p_value,
        flagged=flagged, real_episodes=er, density_count=count, sim_reached=sim_reached,
        sim_radius=sim_radius, calibration_score=cal_score, sim_fold=fold, sim_episodes=es,
        sim_index=sim_index, worst=worst,
        by_factor=_factor_table(factors, flagged),
    )
