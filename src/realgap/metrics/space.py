"""The shared comparison space: pooled, standardized, PCA to k, min-max to [0, 1].

This is the space of the Domain Invariance Score (encoder-dis-as-framework.txt, III-C;
DESIGN.md "Definitions fixed here"), and realgap computes the distribution gap (MMD,
Fréchet, C2ST) and coverage in the same space, so that encoders of different embedding
dimensions are compared on equal footing. It is fitted once and reused (``gap_suite``).

Steps, on the pooled ``X = [emb_sim; emb_real]`` of shape ``(N, D)``:

1. standardize each feature (pooled mean, pooled std with ddof=0; a constant feature
   is left at 0);
2. PCA to ``k = min(k_requested, N - 1, D)`` components (recorded as :attr:`GapSpace.k`).
   When ``N > D`` and ``D <= 2048`` the exact eigendecomposition of the ``D x D``
   covariance is used (one ``N x D x D`` product: faster than a randomized SVD at these
   sizes, and deterministic); when ``N <= D`` and ``N <= 4096`` that of the ``N x N`` Gram
   matrix (the dual form, same components); otherwise scikit-learn's
   ``PCA(svd_solver="randomized")`` seeded from ``rng``. Component signs follow scikit-learn's ``svd_flip`` convention
   (largest-|loading| positive) -- no metric depends on them;
3. min-max normalize each component to [0, 1] over the pooled set (a constant component
   maps to 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from realgap._rng import RngLike, as_rng
from realgap.metrics._validate import as_matrix, check_positive_int, same_dim

#: Above this dimension the covariance eigendecomposition is not used.
EXACT_PCA_MAX_DIM = 2048
#: With more features than frames, up to this many frames the Gram (dual) eigendecomposition
#: is used; beyond, scikit-learn's randomized SVD.
EXACT_PCA_MAX_ROWS = 4096


@dataclass(frozen=True, eq=False)
class GapSpace:
    """Sim and real frames in the shared [0, 1]^k space.

    Attributes:
        z_sim: ``(n_sim, k)`` float64 in [0, 1].
        z_real: ``(n_real, k)`` float64 in [0, 1].
        k: components used, ``min(k_requested, N - 1, D)``.
        k_requested: the ``k`` asked for.
        dim: input embedding dimension ``D``.
        method: ``"covariance-eigh"``, ``"gram-eigh"`` or ``"randomized-svd"``.
        explained_variance_ratio: share of the standardized variance the ``k``
            components keep (in [0, 1]).
        component_variance_ratio: ``(k,)`` share kept by each component, leading first
            (so the leading ``m`` components keep ``component_variance_ratio[:m].sum()``).
    """

    z_sim: np.ndarray
    z_real: np.ndarray
    k: int
    k_requested: int
    dim: int
    method: str
    explained_variance_ratio: float
    component_variance_ratio: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    info: dict[str, Any] = field(default_factory=dict)

    def leading(self, m: int) -> GapSpace:
        """The same space cut to its leading ``m`` components (``m <= k``). Min-max scaling
        is per component, so the cut equals a fit with ``k = m`` (up to the PCA solver)."""
        m = int(min(m, self.k))
        cvr = self.component_variance_ratio[:m]
        return GapSpace(z_sim=self.z_sim[:, :m], z_real=self.z_real[:, :m], k=m,
                        k_requested=self.k_requested, dim=self.dim, method=self.method,
                        explained_variance_ratio=float(min(cvr.sum(), 1.0)),
                        component_variance_ratio=cvr, info=dict(self.info))

    @property
    def z(self) -> np.ndarray:
        """Pooled ``(n_sim + n_real, k)`` array, sim rows first."""
        return np.vstack([self.z_sim, self.z_real])

    @property
    def domain(self) -> np.ndarray:
        """``(n_sim + n_real,)`` labels: 0 for sim, 1 for real."""
        return np.r_[np.zeros(len(self.z_sim), np.int64), np.ones(len(self.z_real), np.int64)]


def _svd_flip(components: np.ndarray) -> np.ndarray:
    """Make the largest-|loading| entry of each component (rows) positive."""
    idx = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(components.shape[0]), idx])
    signs[signs == 0] = 1.0
    return components * signs[:, None]


def fit_gap_space(
    emb_sim: np.ndarray, emb_real: np.ndarray, k: int = 384, rng: RngLike = 0
) -> GapSpace:
    """Project sim and real embeddings into the shared DIS space (see module docstring).

    Args:
        emb_sim: ``(n_sim, D)`` embeddings of simulated frames.
        emb_real: ``(n_real, D)`` embeddings of real frames (same encoder).
        k: requested PCA components (default 384, as in DESIGN.md).
        rng: seed for the randomized SVD (unused by the exact route).
    """
    k = check_positive_int(k, "k")
    xs = as_matrix(emb_sim, "emb_sim")
    xr = as_matrix(emb_real, "emb_real")
    same_dim(xs, xr, "emb_sim", "emb_real")
    n_sim = xs.shape[0]
    x = np.vstack([xs, xr])
    del xs, xr
    n, d = x.shape
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    constant = std == 0
    std[constant] = 1.0
    x -= mean
    x /= std
    k_used = int(min(k, n - 1, d))
    # each standardized non-constant feature has variance n / (n - 1) at ddof=1
    total_var = float((~constant).sum() * n / (n - 1))
    if n > d and d <= EXACT_PCA_MAX_DIM:
        from threadpoolctl import threadpool_limits

        cov = (x.T @ x) / (n - 1)
        with threadpool_limits(limits=1, user_api="blas"):  # see distribution._single_thread
            evals, evecs = np.linalg.eigh(cov)
        top = np.argsort(evals)[::-1][:k_used]
        comps = _svd_flip(evecs[:, top].T)
        per = np.clip(evals[top], 0, None)
        kept = float(per.sum())
        method = "covariance-eigh"
    elif n <= EXACT_PCA_MAX_ROWS:
        from threadpoolctl import threadpool_limits

        # Dual (Gram) form for n <= d: the n x n eigenproblem gives the same components,
        # exactly and deterministically, and is far cheaper than a randomized SVD here.
        gram = x @ x.T
        with threadpool_limits(limits=1, user_api="blas"):
            evals, evecs = np.linalg.eigh(gram)
        top = np.argsort(evals)[::-1][:k_used]
        sv = np.sqrt(np.clip(evals[top], 0, None))
        sv[sv == 0] = 1.0
        comps = _svd_flip(((x.T @ evecs[:, top]) / sv).T)
        per = np.clip(evals[top], 0, None) / (n - 1)
        kept = float(per.sum())
        method = "gram-eigh"
    else:
        from sklearn.decomposition import PCA

        seed = int(as_rng(rng).integers(0, 2**31 - 1))
        pca = PCA(n_components=k_used, svd_solver="randomized", random_state=seed).fit(x)
        comps = _svd_flip(pca.components_)
        per = np.asarray(pca.explained_variance_, dtype=np.float64)
        kept = float(per.sum())
        method = "randomized-svd"
    z = x @ comps.T
    del x
    lo = z.min(axis=0)
    span = z.max(axis=0) - lo
    span[span <= 1e-12 * max(1.0, float(np.abs(z).max(initial=0.0)))] = np.inf
    z = (z - lo) / span
    evr = kept / total_var if total_var > 0 else 1.0
    return GapSpace(
        z_sim=z[:n_sim], z_real=z[n_sim:], k=k_used, k_requested=k, dim=d, method=method,
        explained_variance_ratio=float(min(evr, 1.0)),
        component_variance_ratio=per / total_var if total_var > 0 else np.zeros(k_used),
    )
