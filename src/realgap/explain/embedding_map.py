"""Where sim and real frames lie relative to each other: 2-D maps of an encoder's embeddings.

sim-to-real-glossary.txt names the diagnostic: embed both domains, project to two
dimensions, and look whether the real frames fall inside the simulated cloud or apart
from it. Two projections, each stated in the map's ``note``:

- **PCA fitted on sim**: features standardized with SIM statistics, the two leading
  principal axes of the sim frames, real frames projected onto them. Linear and faithful
  to distances along those axes; a real cluster apart from the sim cloud is a real gap
  along directions the sim data varies in (a gap orthogonal to them is invisible here,
  which is what the UMAP view is for).
- **UMAP** (umap-learn, McInnes et al. 2018) on the pooled frames, after the same sim
  standardization and a PCA to at most 50 components fitted on sim. Non-linear: clusters
  and neighbourhoods are meaningful, distances between clusters are not. Fitted on the
  pooled set (a neighbour graph of sim alone cannot place frames it never saw without
  UMAP's slow ``transform``); seeded, so the same frames give the same map.

Maps are for looking; no score is computed from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from realgap._optional import require
from realgap._rng import RngLike, as_rng
from realgap.errors import ConfigError, DataError

#: The projections :func:`embedding_maps` knows, in display order.
MAP_METHODS: tuple[str, ...] = ("pca", "umap")

#: UMAP works on at most this many leading sim principal components.
UMAP_MAX_COMPONENTS = 50


@dataclass(frozen=True)
class EmbeddingMap:
    """One 2-D projection of sim and real frames.

    Attributes:
        method: ``"pca"`` or ``"umap"``.
        sim: ``(n_sim, 2)`` float32 coordinates of the sim frames.
        real: ``(n_real, 2)`` float32 coordinates of the real frames.
        note: how the map was made, in words (shown under the figure).
    """

    method: str
    sim: np.ndarray
    real: np.ndarray
    note: str


def select_frames(episodes: Any, max_frames: int, rng: RngLike = 0) -> np.ndarray:
    """Indices of at most ``max_frames`` frames spread over all episodes (sorted).

    Every episode keeps about the same number of frames, evenly spaced in time, so a map
    of a long run shows every episode rather than the first few; the offset within each
    episode is drawn from ``rng``.
    """
    ep = np.asarray(episodes)
    n = ep.shape[0]
    if max_frames < 1:
        raise ConfigError(f"max_frames: expected an integer >= 1, got {max_frames!r}")
    if n <= max_frames:
        return np.arange(n)
    gen = as_rng(rng)
    uniq = np.unique(ep)
    per_ep = max(1, max_frames // uniq.size)
    keep: list[np.ndarray] = []
    for e in uniq:
        rows = np.flatnonzero(ep == e)
        if rows.size <= per_ep:
            keep.append(rows)
            continue
        stride = rows.size / per_ep
        start = gen.uniform(0, stride)
        keep.append(rows[np.floor(start + stride * np.arange(per_ep)).astype(np.int64)])
    out = np.sort(np.concatenate(keep))
    if out.size > max_frames:
        out = np.sort(gen.choice(out, size=max_frames, replace=False))
    return out


def _sim_standardize(emb_sim: np.ndarray, emb_real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu = emb_sim.mean(axis=0)
    sd = emb_sim.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return (emb_sim - mu) / sd, (emb_real - mu) / sd


def _sim_pca(zs: np.ndarray, zr: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project onto the ``k`` leading principal axes of the (centred) sim rows; also return
    each axis' share of sim variance."""
    _, s, vt = np.linalg.svd(zs, full_matrices=False)
    k = min(k, vt.shape[0])
    # deterministic sign: the largest loading of each axis is positive
    signs = np.sign(vt[np.arange(k), np.argmax(np.abs(vt[:k]), axis=1)])
    signs[signs == 0] = 1.0
    axes = vt[:k] * signs[:, None]
    var = s**2
    share = var[:k] / var.sum() if var.sum() > 0 else np.zeros(k)
    return zs @ axes.T, zr @ axes.T, share


def _inputs(emb_sim: Any, emb_real: Any) -> tuple[np.ndarray, np.ndarray]:
    zs = np.asarray(emb_sim, dtype=np.float64)
    zr = np.asarray(emb_real, dtype=np.float64)
    if zs.ndim != 2 or zr.ndim != 2 or zs.shape[1] != zr.shape[1]:
        raise DataError(f"embedding map: expected (n_sim, dim) and (n_real, dim) embeddings of one "
                        f"encoder, got {zs.shape} and {zr.shape}")
    if zs.shape[0] < 3 or zr.shape[0] < 1:
        raise DataError(f"embedding map: needs at least 3 sim and 1 real frame, got {zs.shape[0]} "
                        f"and {zr.shape[0]}")
    if not (np.isfinite(zs).all() and np.isfinite(zr).all()):
        raise DataError("embedding map: embeddings contain NaN or inf")
    return zs, zr


def pca_map(emb_sim: Any, emb_real: Any) -> EmbeddingMap:
    """PCA fitted on sim (after sim standardization); real frames projected onto its axes.

    Args:
        emb_sim: ``(n_sim, dim)`` embeddings.
        emb_real: ``(n_real, dim)`` embeddings of the same encoder.
    """
    zs, zr = _sim_standardize(*_inputs(emb_sim, emb_real))
    ps, pr, share = _sim_pca(zs, zr, 2)
    if ps.shape[1] < 2:  # a 1-D embedding: plot it against 0
        ps, pr = np.c_[ps, np.zeros(len(ps))], np.c_[pr, np.zeros(len(pr))]
        share = np.r_[share, 0.0]
    note = (f"PCA fitted on sim frames only (features standardized with sim statistics); "
            f"PC1 and PC2 hold {100 * share[0]:.1f}% and {100 * share[1]:.1f}% of the sim "
            "variance; real frames are projected onto the same axes.")
    return EmbeddingMap("pca", ps.astype(np.float32), pr.astype(np.float32), note)


def umap_map(emb_sim: Any, emb_real: Any, *, rng: RngLike = 0, n_neighbors: int = 15) -> EmbeddingMap:
    """UMAP of the pooled frames after sim standardization and a sim-fitted PCA (<= 50 dims).

    Seeded (``random_state``), so the same frames and seed give the same map.
    """
    zs, zr = _sim_standardize(*_inputs(emb_sim, emb_real))
    ps, pr, _ = _sim_pca(zs, zr, UMAP_MAX_COMPONENTS)
    umap = require("umap", "report")
    pooled = np.concatenate([ps, pr]).astype(np.float32)
    seed = int(as_rng(rng).integers(0, 2**31 - 1))
    n_nb = int(min(n_neighbors, pooled.shape[0] - 1))
    reducer = umap.UMAP(n_components=2, n_neighbors=max(2, n_nb), random_state=seed,
                        n_jobs=1, init="spectral" if pooled.shape[0] > 10 else "random")
    xy = reducer.fit_transform(pooled).astype(np.float32)
    note = (f"UMAP (umap-learn, {reducer.n_neighbors} neighbours, seed {seed}) of the pooled sim and "
            f"real frames after sim standardization and a sim-fitted PCA to {ps.shape[1]} "
            "components; clusters and neighbourhoods are meaningful, distances between "
            "clusters are not.")
    return EmbeddingMap("umap", xy[: len(ps)], xy[len(ps):], note)


def embedding_maps(emb_sim: Any, emb_real: Any, *, methods: tuple[str, ...] = MAP_METHODS,
                   rng: RngLike = 0) -> list[EmbeddingMap]:
    """The maps named in ``methods`` (``"pca"``, ``"umap"``), in that order."""
    unknown = [m for m in methods if m not in MAP_METHODS]
    if unknown:
        raise ConfigError(f"embedding map methods: unknown {unknown}; known: {list(MAP_METHODS)}")
    out = []
    for m in methods:
        out.append(pca_map(emb_sim, emb_real) if m == "pca" else umap_map(emb_sim, emb_real, rng=rng))
    return out
