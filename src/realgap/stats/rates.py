"""Success rates and aggregates over runs: Wilson intervals, pooled rates, IQM, the stratified
bootstrap, probability of improvement, and the two-level (seeds, then episodes) bootstrap of a
mean return.

Conventions (stated once):

- counts: ``successes`` k and ``trials`` n are non-negative integers with ``k <= n``;
- score matrices (IQM, probability of improvement) follow rliable:
  ``scores: (num_runs, num_tasks)`` float, one row per run (seed), one column per task;
- per-seed values (mean return): one 1-D array of per-episode values per seed.

Formulas:

- Wilson score interval (Wilson 1927; Brown, Cai & DasGupta 2001, eq. 4), with
  ``z = Phi^{-1}(1 - alpha/2)`` and ``p = k/n``::

      centre = (p + z^2 / (2n)) / (1 + z^2 / n)
      half   = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / (4 n^2))

- pooled rate over conditions: sum k / sum n with its Wilson interval, as in the
  real-world tables of vla-domain-randomization-study.txt (4.2, appendix 0.C) and
  DESIGN.md "Success statistics";
- IQM: mean of the middle 50% of all run x task scores (``scipy.stats.trim_mean(x, 0.25)``,
  Agarwal et al. 2021, "Deep RL at the edge of the statistical precipice");
- stratified bootstrap: runs are resampled with replacement independently within each
  task (rliable's ``StratifiedBootstrap``), percentile interval, never widened to contain the
  point -- seeded (rliable's ignores its seed);
- probability of improvement P(X > Y): per task the Mann-Whitney statistic
  ``P(x > y) + 0.5 P(x = y)`` over all run pairs, averaged over tasks (Agarwal et al. 2021);
- mean over seeds and episodes: a two-stage bootstrap (Davison & Hinkley 1997, 3.8): seeds
  drawn with replacement, then episodes with replacement within each drawn seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from realgap._rng import RngLike, as_rng
from realgap.errors import DataError
from realgap.stats._checks import check_alpha, check_count
from realgap.stats.intervals import Estimate, estimate_from_replicates


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not float(value).is_integer() or float(value) < 0:
        raise DataError(f"{name}: expected a non-negative integer count, got {value!r}")
    return int(value)


# -- rates ------------------------------------------------------------------------------
def wilson_interval(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval ``(lo, hi)`` for ``k`` successes in ``n`` trials.

    ``n == 0`` gives ``(nan, nan)`` (no trials, no rate). Raises ``DataError`` for
    negative or non-integer counts or ``k > n``.
    """
    from scipy.stats import norm

    k, n = _count(k, "successes"), _count(n, "trials")
    if k > n:
        raise DataError(f"successes: {k} is greater than trials {n}; successes must be <= trials")
    a = check_alpha(alpha)
    if n == 0:
        return float("nan"), float("nan")
    z = float(norm.ppf(1 - a / 2))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lo = 0.0 if k == 0 else max(0.0, centre - half)  # exact endpoints at k = 0 and k = n
    hi = 1.0 if k == n else min(1.0, centre + half)
    return float(lo), float(hi)


@dataclass(frozen=True)
class SuccessRate:
    """``successes`` out of ``trials``, the rate and its Wilson interval."""

    successes: int
    trials: int
    rate: float
    lo: float
    hi: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def success_rate(k: int, n: int, alpha: float = 0.05) -> SuccessRate:
    """:class:`SuccessRate` of ``k`` / ``n`` (rate NaN when ``n == 0``)."""
    lo, hi = wilson_interval(k, n, alpha)
    return SuccessRate(int(k), int(n), int(k) / int(n) if n else float("nan"), lo, hi)


def pooled_rate(successes: Sequence[int], trials: Sequence[int], alpha: float = 0.05) -> SuccessRate:
    """Pooled rate ``sum k / sum n`` over conditions, with its Wilson interval."""
    ks = [_count(k, "successes") for k in successes]
    ns = [_count(n, "trials") for n in trials]
    if len(ks) != len(ns):
        raise DataError(f"successes has {len(ks)} entries but trials has {len(ns)}; "
                        "pass one count pair per condition")
    for i, (k, n) in enumerate(zip(ks, ns)):
        if k > n:
            raise DataError(f"condition {i}: successes {k} > trials {n}")
    return success_rate(sum(ks), sum(ns), alpha)


# -- aggregates over runs and tasks (rliable) -------------------------------------------
def _scores(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise DataError(f"{name}: expected scores of shape (num_runs, num_tasks), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{name}: contains NaN or inf; drop those runs")
    return arr


def iqm(scores: Any) -> float:
    """Interquartile mean of all entries of ``scores (num_runs, num_tasks)``."""
    from scipy.stats import trim_mean

    return float(trim_mean(_scores(scores, "scores"), proportiontocut=0.25, axis=None))


def probability_of_improvement(x: Any, y: Any) -> float:
    """P(X > Y) for ``x (runs_x, tasks)`` and ``y (runs_y, tasks)`` (same tasks), the
    per-task Mann-Whitney ``P(x > y) + 0.5 P(x = y)`` averaged over tasks."""
    xa, ya = _scores(x, "x"), _scores(y, "y")
    if xa.shape[1] != ya.shape[1]:
        raise DataError(f"x has {xa.shape[1]} tasks but y has {ya.shape[1]}; "
                        "probability of improvement compares the same tasks")
    gt = (xa[:, None, :] > ya[None, :, :]).mean(axis=(0, 1))
    eq = (xa[:, None, :] == ya[None, :, :]).mean(axis=(0, 1))
    return float(np.mean(gt + 0.5 * eq))


def stratified_bootstrap_ci(
    statistic: Callable[..., float],
    *score_matrices: Any,
    n_boot: int = 2000,
    alpha: float = 0.05,
    rng: RngLike = None,
    method: str = "percentile",
) -> Estimate:
    """Interval of ``statistic(*score_matrices)``: in each replicate, the runs (rows) of every
    matrix are resampled with replacement independently within each task (column).

    Seeded: the same ``rng`` gives the same interval. The interval is never widened to
    contain the point (a point outside it is reported by ``Estimate.bias``).

    Returns:
        :class:`~realgap.stats.Estimate` with ``n`` = runs (rows, summed over the matrices;
        the resampling unit), ``n_frames`` = scores (entries, summed over the matrices).
    """
    check_alpha(alpha)
    n_boot = check_count(n_boot, "n_boot", minimum=1)
    mats = [_scores(m, f"scores[{i}]") for i, m in enumerate(score_matrices)]
    if not mats:
        raise DataError("stratified_bootstrap_ci: pass at least one score matrix")
    gen = as_rng(rng)
    point = float(statistic(*mats))
    reps = np.empty(n_boot)
    cols = [np.arange(m.shape[1])[None, :] for m in mats]
    for b in range(n_boot):
        resampled = [m[gen.integers(0, m.shape[0], size=m.shape), c] for m, c in zip(mats, cols)]
        reps[b] = statistic(*resampled)
    return estimate_from_replicates(point, reps, n=sum(m.shape[0] for m in mats),
                                    n_frames=sum(m.size for m in mats), alpha=alpha,
                                    method=method)


def hierarchical_mean_replicates(
    values_by_seed: Sequence[Any], n_boot: int, rng: RngLike = None
) -> tuple[float, np.ndarray]:
    """Mean over all episodes and its two-stage bootstrap replicates ``(n_boot,)``.

    Each replicate draws the seeds with replacement, then, within each drawn seed, its
    episodes with replacement, and takes the mean of all drawn episode values (one seed:
    episodes only). The replicates are returned, not an interval, so that a caller can
    pair two conditions drawn with their own rng (e.g. a drop ``R(1) - R(s)``).

    Args:
        values_by_seed: one 1-D array of per-episode values per seed (each non-empty).
        n_boot: replicates (0: an empty array).
        rng: seed or Generator; same rng, same replicates.
    """
    n_boot = check_count(n_boot, "n_boot", minimum=0)
    arrays = [np.asarray(v, dtype=np.float64).ravel() for v in values_by_seed]
    if not arrays or any(a.size == 0 for a in arrays):
        raise DataError("values_by_seed: expected one non-empty array of episode values per seed")
    gen = as_rng(rng)
    mean = float(np.mean(np.concatenate(arrays)))
    reps = np.empty(n_boot)
    k = len(arrays)
    for b in range(n_boot):
        seeds = gen.integers(0, k, size=k) if k > 1 else np.zeros(1, dtype=int)
        parts = [arrays[s][gen.integers(0, arrays[s].size, size=arrays[s].size)] for s in seeds]
        reps[b] = np.mean(np.concatenate(parts))
    return mean, reps


__all__ = [
    "SuccessRate",
    "hierarchical_mean_replicates",
    "iqm",
    "pooled_rate",
    "probability_of_improvement",
    "stratified_bootstrap_ci",
    "success_rate",
    "wilson_interval",
]
