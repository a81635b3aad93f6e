"""Domain Invariance Score (DIS) and centroid distance.

encoder-dis-as-framework.txt, section III-C, with the choices fixed in DESIGN.md: in the
shared space of :mod:`realgap.metrics.space` (standardize, PCA to ``k``, min-max to
[0, 1]), with centroids ``c_sim``, ``c_real``::

    d   = || c_sim - c_real ||_2          ("centroid distance", in [0, sqrt(k)])
    DIS = 1 - d / sqrt(k)                 (in [0, 1]; 1 means identical centroids)

``sqrt(k)`` is the diameter of the unit cube [0, 1]^k, so DIS is dimension-normalized.
With a linear kernel, ``d**2`` is the (biased) MMD between the two sets, which is why the
reference reads a small ``d`` as strong sim-real alignment.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from realgap._rng import RngLike
from realgap.metrics.space import GapSpace, fit_gap_space


@dataclass(frozen=True)
class DISResult:
    """DIS with its ingredients.

    Attributes:
        dis: Domain Invariance Score in [0, 1].
        centroid_distance: ``d``, Euclidean distance of the centroids in [0, 1]^k.
        k: PCA components used (``min(k_requested, N - 1, D)``).
        n_sim, n_real: frames per domain.
        pca_method: how the PCA was computed (see :func:`fit_gap_space`).
    """

    dis: float
    centroid_distance: float
    k: int
    n_sim: int
    n_real: int
    pca_method: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def centroid_distance(z_sim: np.ndarray, z_real: np.ndarray) -> float:
    """Euclidean distance between the row means of ``(n_sim, k)`` and ``(n_real, k)``."""
    return float(np.linalg.norm(z_sim.mean(axis=0) - z_real.mean(axis=0)))


def dis_from_distance(d: float | np.ndarray, k: int) -> float | np.ndarray:
    """``DIS = 1 - d / sqrt(k)`` (DESIGN.md)."""
    return 1.0 - np.asarray(d) / np.sqrt(k) if np.ndim(d) else 1.0 - float(d) / np.sqrt(k)


def dis_from_space(space: GapSpace) -> DISResult:
    """DIS of a fitted :class:`GapSpace` (no refit)."""
    d = centroid_distance(space.z_sim, space.z_real)
    return DISResult(
        dis=float(dis_from_distance(d, space.k)), centroid_distance=d, k=space.k,
        n_sim=len(space.z_sim), n_real=len(space.z_real), pca_method=space.method,
    )


def domain_invariance(
    emb_sim: np.ndarray, emb_real: np.ndarray, k: int = 384, rng: RngLike = 0
) -> DISResult:
    """Domain Invariance Score of one encoder.

    Args:
        emb_sim: ``(n_sim, D)`` embeddings of simulated frames.
        emb_real: ``(n_real, D)`` embeddings of real frames, same encoder.
        k: PCA components requested (default 384); the value used is recorded.
        rng: seed of the randomized PCA when it is needed (large ``D``).

    Returns:
        :class:`DISResult`. Identical sets give ``dis == 1`` and ``centroid_distance == 0``.
    """
    return dis_from_space(fit_gap_space(emb_sim, emb_real, k=k, rng=rng))
