"""Coverage: which real frames land where the simulated data never goes.

sim-to-real-glossary.txt ("if your real-world samples land in a region your simulated
data never covers, you've found your sim-to-real failure"), made a number. All distances
are Euclidean in one space (realgap uses the shared DIS space); ``z_sim: (n_sim, k)``,
``z_real: (n_real, k)``.

Sim support, per frame: ``r_j`` = distance from sim frame ``j`` to its ``k``-th nearest
sim frame. Consecutive frames of one episode are near-duplicates, which would shrink
``r_j`` to the frame-to-frame step; so by default (``exclude_same_episode=True``, needs
``ep_sim``) neighbours from ``j``'s own episode are not counted (without episodes only
``j`` itself is excluded, as in Naeem et al.).

- ``threshold`` = the ``quantile`` (default 0.95) of the ``r_j``: 95% of sim frames have
  their k-th neighbour within it.
- a real frame ``i`` is *outside sim support* when ``d_i`` -- its distance to its ``k``-th
  nearest sim frame -- exceeds ``threshold``; ``outside_fraction`` is the share of such
  frames; ``ratio_i = d_i / threshold`` ranks the worst-covered frames.
- density and coverage of Naeem et al., "Reliable Fidelity and Diversity Metrics for
  Generative Models", ICML 2020, eqs. (3)-(4), with the convention **sim = the reference
  ("real") manifold, real frames = the evaluated ("fake") samples**, balls of radius
  ``r_j`` around sim frames::

      density  = 1/(k M) sum_i sum_j 1[ ||y_i - x_j|| <= r_j ]     (M real frames)
      coverage = 1/N sum_j 1[ min_i ||y_i - x_j|| <= r_j ]        (N sim frames)

  density ~ 1 when real frames sit where sim frames are as dense as among themselves;
  coverage = share of sim neighbourhoods that real frames reach.

Distances are computed in float32 row blocks of at most ~64 MiB; no ``N x N`` matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from realgap._rng import RngLike, as_rng
from realgap.errors import ConfigError, DataError
from realgap.metrics._validate import (
    as_groups,
    as_matrix,
    check_positive_int,
    check_prob,
    same_dim,
)

_BLOCK_BYTES = 64 * 2**20


def _block_rows(n_ref: int) -> int:
    return max(1, _BLOCK_BYTES // (4 * max(1, n_ref)))


def _d2_block(q: np.ndarray, ref: np.ndarray, ref_sq: np.ndarray) -> np.ndarray:
    """Squared distances ``(len(q), len(ref))`` via one GEMM and in-place updates (no
    temporaries of the block's size); round-off can leave tiny negatives, clipped by
    the callers where it matters."""
    d2 = q @ ref.T
    d2 *= -2.0
    d2 += ref_sq[None, :]
    d2 += (q * q).sum(1)[:, None]
    return d2


def _mask_same_group(d2: np.ndarray, q_groups: np.ndarray, ref_groups: np.ndarray) -> None:
    """Set ``d2[i, j] = inf`` where ``q_groups[i] == ref_groups[j]``. When ``ref_groups``
    is sorted (episodes contiguous, the usual case) each row masks one slice; otherwise a
    full comparison is used."""
    if ref_groups.size and np.all(ref_groups[1:] >= ref_groups[:-1]):
        lo = np.searchsorted(ref_groups, q_groups, side="left")
        hi = np.searchsorted(ref_groups, q_groups, side="right")
        for i in range(len(q_groups)):
            d2[i, lo[i]:hi[i]] = np.inf
    else:
        d2[q_groups[:, None] == ref_groups[None, :]] = np.inf


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
    given). Blocked, float32. Rows with fewer than ``k`` admissible neighbours get inf."""
    q = np.ascontiguousarray(query, dtype=np.float32)
    r = np.ascontiguousarray(ref, dtype=np.float32)
    r_sq = (r * r).sum(1)
    out = np.empty(len(q))
    step = _block_rows(len(r))
    for s in range(0, len(q), step):
        d2 = _d2_block(q[s:s + step], r, r_sq)
        if query_groups is not None and ref_groups is not None:
            _mask_same_group(d2, query_groups[s:s + step], ref_groups)
        if k > d2.shape[1]:
            out[s:s + step] = np.inf
            continue
        out[s:s + step] = np.sqrt(np.maximum(np.partition(d2, k - 1, axis=1)[:, k - 1], 0.0))
    return out


@dataclass(frozen=True, eq=False)
class CoverageReport:
    """Coverage of real frames by the sim set (see module docstring).

    Attributes:
        k, quantile: neighbourhood size and support quantile.
        threshold: sim support radius (a distance in the space's units).
        outside_fraction: share of real frames outside sim support.
        density, coverage: Naeem et al. 2020 (sim = reference manifold, real = samples).
        n_sim, n_real: frames (``n_sim`` after the optional ``max_sim`` subsample).
        sim_index: ``(n_sim,)`` rows of ``z_sim`` that formed the support.
        exclude_same_episode: whether sim radii ignore same-episode neighbours.
        sim_radius: ``(n_sim,)`` r_j.
        real_distance: ``(n_real,)`` d_i, distance to the k-th nearest sim frame.
        ratio: ``(n_real,)`` d_i / threshold (> 1 means outside).
        outside: ``(n_real,)`` bool.
        density_count: ``(n_real,)`` number of sim balls holding each real frame.
        sim_reached: ``(n_sim,)`` bool, sim ball reached by some real frame.
        worst: indices into the real rows, worst-covered first (``n_worst`` of them).
        by_factor: DataFrame ``factor, level, n_frames, n_outside, fraction_outside``
            (empty when no factors were given).
    """

    k: int
    quantile: float
    threshold: float
    outside_fraction: float
    density: float
    coverage: float
    n_sim: int
    n_real: int
    exclude_same_episode: bool
    sim_index: np.ndarray = field(repr=False)
    sim_radius: np.ndarray = field(repr=False)
    real_distance: np.ndarray = field(repr=False)
    ratio: np.ndarray = field(repr=False)
    outside: np.ndarray = field(repr=False)
    density_count: np.ndarray = field(repr=False)
    sim_reached: np.ndarray = field(repr=False)
    worst: np.ndarray = field(repr=False)
    by_factor: pd.DataFrame = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        """Scalars, the worst indices and the factor table (JSON-ready)."""
        keys = ("k", "quantile", "threshold", "outside_fraction", "density", "coverage",
                "n_sim", "n_real", "exclude_same_episode")
        out: dict[str, Any] = {key: getattr(self, key) for key in keys}
        out["worst"] = [int(i) for i in self.worst]
        out["worst_ratio"] = [float(self.ratio[i]) for i in self.worst]
        out["by_factor"] = self.by_factor.to_dict(orient="records")
        return out


def _factor_table(factors: Any, outside: np.ndarray) -> pd.DataFrame:
    cols = ["factor", "level", "n_frames", "n_outside", "fraction_outside"]
    if factors is None:
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame(factors)
    if len(df) != len(outside):
        raise DataError(f"factors_real: {len(df)} rows but there are {len(outside)} real frames; "
                        "pass one row of factor values per real frame")
    rows = []
    for col in df.columns:
        levels = df[col].astype(str).where(df[col].notna(), "<missing>")
        for level, idx in levels.groupby(levels, sort=True).groups.items():
            o = outside[np.asarray(list(idx)) if not isinstance(idx, np.ndarray) else idx]
            rows.append((str(col), str(level), int(o.size), int(o.sum()), float(o.mean())))
    return pd.DataFrame(rows, columns=cols)


def coverage_report(
    z_sim: np.ndarray,
    z_real: np.ndarray,
    *,
    ep_sim: np.ndarray | None = None,
    k: int = 5,
    quantile: float = 0.95,
    exclude_same_episode: bool = True,
    n_worst: int = 16,
    factors_real: Any = None,
    max_sim: int | None = None,
    rng: RngLike = 0,
) -> CoverageReport:
    """How well the sim frames cover the real frames (see module docstring).

    Args:
        z_sim: ``(n_sim, d)`` sim frames in the comparison space.
        z_real: ``(n_real, d)`` real frames in the same space.
        ep_sim: ``(n_sim,)`` episode of each sim frame (for same-episode exclusion).
        k: neighbourhood size (Naeem et al. use 5).
        quantile: sim-radius quantile that defines the support threshold.
        exclude_same_episode: ignore same-episode sim neighbours (needs ``ep_sim``).
        n_worst: how many worst-covered real frames to list.
        factors_real: optional table (DataFrame or dict of columns), one row per real
            frame, for the per-factor-level breakdown of ``outside``.
        max_sim: if set and smaller than ``n_sim``, the sim support is represented by a
            seeded uniform subsample of this many sim frames (cost is linear in it);
            the rows used are in :attr:`CoverageReport.sim_index`.
        rng: seed of that subsample.
    """
    xs = as_matrix(z_sim, "z_sim")
    xr = as_matrix(z_real, "z_real", min_rows=1)
    same_dim(xs, xr, "z_sim", "z_real")
    k = check_positive_int(k, "k")
    check_prob(quantile, "quantile")
    n_worst = check_positive_int(n_worst, "n_worst", minimum=0)
    if exclude_same_episode and ep_sim is None:
        raise ConfigError("coverage_report: exclude_same_episode=True needs ep_sim (the episode "
                          "of each sim frame); pass ep_sim or exclude_same_episode=False")
    if exclude_same_episode:
        groups = np.unique(as_groups(ep_sim, len(xs), "ep_sim"), return_inverse=True)[1].ravel()
    else:
        groups = np.arange(len(xs))
    sim_index = np.arange(len(xs))
    if max_sim is not None and check_positive_int(max_sim, "max_sim", minimum=2) < len(xs):
        sim_index = np.sort(as_rng(rng).choice(len(xs), int(max_sim), replace=False))
        xs, groups = xs[sim_index], groups[sim_index]
    if k >= len(xs):
        raise DataError(f"k: {k} neighbours needs more than {k} sim frames, got {len(xs)}; "
                        "lower k or add sim frames")
    order = np.argsort(groups, kind="stable")  # episodes contiguous: cheap masking
    radius = np.empty(len(xs))
    radius[order] = kth_neighbour_distance(xs[order], xs[order], k, query_groups=groups[order],
                                           ref_groups=groups[order])
    if not np.all(np.isfinite(radius)):
        raise DataError(f"coverage_report: some sim frames have fewer than k={k} neighbours "
                        "outside their own episode; lower k or add sim episodes")
    threshold = float(np.quantile(radius, quantile))

    xs32 = np.ascontiguousarray(xs, dtype=np.float32)
    xr32 = np.ascontiguousarray(xr, dtype=np.float32)
    s_sq = (xs32 * xs32).sum(1)
    r2 = (radius ** 2).astype(np.float32)
    dist = np.empty(len(xr32))
    count = np.empty(len(xr32), dtype=np.int64)
    nearest_real = np.full(len(xs32), np.inf, dtype=np.float32)
    step = _block_rows(len(xs32))
    for s in range(0, len(xr32), step):
        d2 = _d2_block(xr32[s:s + step], xs32, s_sq)
        count[s:s + step] = (d2 <= r2[None, :]).sum(1)
        np.minimum(nearest_real, d2.min(0), out=nearest_real)
        dist[s:s + step] = np.sqrt(np.maximum(np.partition(d2, k - 1, axis=1)[:, k - 1], 0.0))
    ratio = dist / threshold if threshold > 0 else np.where(dist > 0, np.inf, 0.0)
    outside = dist > threshold
    reached = np.maximum(nearest_real, 0.0) <= r2
    worst = np.argsort(-ratio, kind="stable")[:n_worst]
    return CoverageReport(
        k=k, quantile=float(quantile), threshold=threshold,
        outside_fraction=float(outside.mean()),
        density=float(count.sum() / (k * len(xr32))), coverage=float(reached.mean()),
        n_sim=len(xs), n_real=len(xr), exclude_same_episode=bool(exclude_same_episode),
        sim_index=sim_index, sim_radius=radius, real_distance=dist, ratio=ratio, outside=outside,
        density_count=count, sim_reached=reached, worst=worst,
        by_factor=_factor_table(factors_real, outside),
    )
