"""Success statistics: Wilson intervals, pooled rates, IQM, stratified bootstrap,
probability of improvement, and the one-sided dependent t-test of Visual Alignment Testing.

Conventions (stated once):

- counts: ``successes`` k and ``trials`` n are non-negative integers with ``k <= n``;
- score matrices (IQM, probability of improvement) follow rliable:
  ``scores: (num_runs, num_tasks)`` float, one row per run (seed), one column per task;
- paired outcomes (VAT): two 1-D arrays over the same initial states / checkpoints.

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
  task (rliable's ``StratifiedBootstrap``), percentile intervals -- seeded (rliable's
  ignores its seed);
- probability of improvement P(X > Y): per task the Mann-Whitney statistic
  ``P(x > y) + 0.5 P(x = y)`` over all run pairs, averaged over tasks (Agarwal et al. 2021);
- VAT (visual-alignment-testing.txt III-C, DESIGN.md): ``D_i = r_B,i - r_B',i``,
  H0: ``mean(D) <= eps`` against H1: ``mean(D) > eps``,
  ``t = (mean(D) - eps) / (sd(D) / sqrt(n))`` with ``sd`` at ddof=1, reject H0 when
  ``t > t_{1-alpha, n-1}``; ``p = 1 - F_{t, n-1}(t)``. Identical to
  ``scipy.stats.ttest_rel(r_b - eps, r_b_prime, alternative="greater")``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from realgap._rng import RngLike, as_rng
from realgap.errors import ConfigError, DataError


def _alpha(alpha: float) -> float:
    a = float(alpha)
    if not 0 < a < 1:
        raise ConfigError(f"alpha: expected a level in (0, 1), got {alpha!r}")
    return a


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
    a = _alpha(alpha)
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


@dataclass(frozen=True)
class IntervalEstimate:
    """A statistic with its stratified-bootstrap percentile interval.

    ``n_runs`` per input (tuple), ``n_tasks``, ``n_boot`` replicates.
    """

    value: float
    lo: float
    hi: float
    n_runs: tuple[int, ...]
    n_tasks: int
    n_boot: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def stratified_bootstrap_ci(
    statistic: Callable[..., float],
    *score_matrices: Any,
    n_boot: int = 2000,
    alpha: float = 0.05,
    rng: RngLike = None,
) -> IntervalEstimate:
    """Percentile interval of ``statistic(*score_matrices)``: in each replicate, the runs
    (rows) of every matrix are resampled with replacement independently within each task
    (column). Seeded: the same ``rng`` gives the same interval."""
    a = _alpha(alpha)
    if isinstance(n_boot, bool) or int(n_boot) != n_boot or n_boot < 1:
        raise ConfigError(f"n_boot: expected an integer >= 1, got {n_boot!r}")
    mats = [_scores(m, f"scores[{i}]") for i, m in enumerate(score_matrices)]
    if not mats:
        raise DataError("stratified_bootstrap_ci: pass at least one score matrix")
    gen = as_rng(rng)
    point = float(statistic(*mats))
    reps = np.empty(int(n_boot))
    cols = [np.arange(m.shape[1])[None, :] for m in mats]
    for b in range(int(n_boot)):
        resampled = [m[gen.integers(0, m.shape[0], size=m.shape), c] for m, c in zip(mats, cols)]
        reps[b] = statistic(*resampled)
    lo, hi = np.quantile(reps, [a / 2, 1 - a / 2])
    return IntervalEstimate(point, float(min(lo, point)), float(max(hi, point)),
                            tuple(m.shape[0] for m in mats), mats[0].shape[1], int(n_boot))


# -- Visual Alignment Testing -----------------------------------------------------------
@dataclass(frozen=True)
class PairedTTest:
    """One-sided dependent t-test of H0: mean(D) <= eps (module docstring).

    Attributes:
        t: the statistic (``+inf``/``-inf`` when all differences are equal and differ
            from ``eps``; NaN when they all equal ``eps``).
        critical: ``t_{1-alpha, n-1}``.
        n: number of pairs; ``df = n - 1``.
        eps, alpha: threshold and level.
        p_value: one-sided p-value.
        mean_diff, sd_diff: mean and sample sd (ddof=1) of ``D``.
        reject: True when ``t > critical`` (H0 rejected: a significant drop from
            ``r_b`` to ``r_b_prime`` beyond ``eps``).
        decision: the verdict in words.
    """

    t: float
    critical: float
    n: int
    eps: float
    alpha: float
    p_value: float
    mean_diff: float
    sd_diff: float
    reject: bool
    decision: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def vat_ttest(r_b: Any, r_b_prime: Any, eps: float = 0.0, alpha: float = 0.05) -> PairedTTest:
    """The VAT test on paired outcomes ``r_b``, ``r_b_prime`` (1-D, same length n >= 2:
    success 0/1 per paired initial state, or success rates per checkpoint)."""
    from scipy.stats import t as t_dist

    a = _alpha(alpha)
    rb = np.asarray(r_b, dtype=np.float64).ravel()
    rbp = np.asarray(r_b_prime, dtype=np.float64).ravel()
    if rb.shape != rbp.shape:
        raise DataError(f"r_b has {rb.size} outcomes but r_b_prime has {rbp.size}; the test "
                        "needs paired outcomes over the same initial states")
    if rb.size < 2:
        raise DataError(f"r_b: the paired t-test needs at least 2 pairs, got {rb.size}")
    if not (np.all(np.isfinite(rb)) and np.all(np.isfinite(rbp))):
        raise DataError("r_b/r_b_prime: contain NaN or inf; drop the unfinished pairs")
    eps = float(eps)
    if not np.isfinite(eps):
        raise ConfigError(f"eps: expected a finite threshold, got {eps!r}")
    d = rb - rbp
    n = d.size
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    crit = float(t_dist.ppf(1 - a, n - 1))
    if sd > 0:
        t = (mean - eps) / (sd / np.sqrt(n))
        p = float(t_dist.sf(t, n - 1))
    elif mean > eps:
        t, p = float("inf"), 0.0
    elif mean < eps:
        t, p = float("-inf"), 1.0
    else:
        t, p = float("nan"), float("nan")
    reject = bool(t > crit)
    decision = (
        f"reject H0 (mean difference {mean:.3f} > eps {eps:g} at level {a:g}): "
        "the frozen encoder costs performance, the visual encoder takes part in decisions"
        if reject else
        f"cannot reject H0 (mean difference {mean:.3f} <= eps {eps:g} not refuted at level {a:g})"
    )
    return PairedTTest(float(t), crit, n, eps, a, p, mean, sd, reject, decision)
