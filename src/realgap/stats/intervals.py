"""Point estimates with intervals: :class:`Estimate`, percentile and bias-corrected intervals.

An interval is computed from bootstrap replicates and reported as it comes out. It is never
widened to contain the point estimate: for a biased statistic on a small sample (a distance
between two sets is biased away from 0) the point can fall outside its percentile interval,
and that is information (``Estimate.bias``), not something to hide.

References: Efron & Tibshirani, *An Introduction to the Bootstrap* (1993): percentile interval
ch. 13.3; bias-corrected (BC) percentile interval ch. 14.3 (BCa with acceleration ``a = 0``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy.stats import norm

from realgap.errors import ConfigError
from realgap.stats._checks import check_alpha

IntervalMethod = Literal["percentile", "bc"]
METHODS: tuple[str, ...] = ("percentile", "bc")


@dataclass(frozen=True)
class Estimate:
    """A score with its interval and the sample sizes it rests on.

    Attributes:
        value: the point estimate on all data.
        lo, hi: the ``1 - alpha`` bootstrap interval over resampled episodes; NaN when no
            bootstrap ran (``n_boot == 0``) or no replicate was finite. Never widened.
        n: number of episodes (the resampling unit) behind the estimate.
        n_frames: number of frames behind the estimate.
        n_boot: number of bootstrap replicates behind ``lo``/``hi``.
        method: ``"percentile"`` or ``"bc"`` (bias-corrected percentile).
    """

    value: float
    lo: float
    hi: float
    n: int
    n_frames: int
    n_boot: int = 0
    method: str = "percentile"

    @property
    def bias(self) -> bool:
        """True when the point estimate lies outside its own interval (bias, reported)."""
        if not (np.isfinite(self.value) and np.isfinite(self.lo) and np.isfinite(self.hi)):
            return False
        return bool(self.value < self.lo or self.value > self.hi)

    @property
    def width(self) -> float:
        """``hi - lo`` (NaN without an interval)."""
        return float(self.hi - self.lo)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready), ``bias`` included."""
        out = asdict(self)
        out["bias"] = self.bias
        return out


def _finite(replicates: Any) -> np.ndarray:
    reps = np.asarray(replicates, dtype=np.float64).ravel()
    return reps[np.isfinite(reps)]


def percentile_interval(replicates: Any, alpha: float = 0.05) -> tuple[float, float]:
    """The ``alpha/2`` and ``1 - alpha/2`` quantiles of the finite replicates.

    ``(nan, nan)`` when no replicate is finite. The point estimate plays no part: the
    interval is not widened to contain it.
    """
    a = check_alpha(alpha)
    reps = _finite(replicates)
    if reps.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(reps, [a / 2, 1 - a / 2])
    return float(lo), float(hi)


def bias_corrected_interval(replicates: Any, point: float, alpha: float = 0.05) -> tuple[float, float]:
    """Efron's bias-corrected (BC) percentile interval (Efron & Tibshirani 1993, 14.3).

    ``z0 = Phi^-1(share of replicates below the point, ties counted half)``; the interval
    is the ``Phi(2 z0 -+ z_{1-alpha/2})`` quantiles of the replicates. When the replicates
    sit wholly on one side of the point (``z0`` infinite) the correction is undefined and
    ``(nan, nan)`` is returned rather than a made-up interval.
    """
    a = check_alpha(alpha)
    reps = _finite(replicates)
    if reps.size == 0 or not np.isfinite(point):
        return float("nan"), float("nan")
    share = (np.sum(reps < point) + 0.5 * np.sum(reps == point)) / reps.size
    if share <= 0 or share >= 1:
        return float("nan"), float("nan")
    z0 = norm.ppf(share)
    z = norm.ppf(1 - a / 2)
    q_lo, q_hi = norm.cdf(2 * z0 - z), norm.cdf(2 * z0 + z)
    lo, hi = np.quantile(reps, [q_lo, q_hi])
    return float(lo), float(hi)


def interval(replicates: Any, point: float, alpha: float = 0.05,
             method: str = "percentile") -> tuple[float, float]:
    """Dispatch to :func:`percentile_interval` or :func:`bias_corrected_interval`."""
    if method == "percentile":
        return percentile_interval(replicates, alpha)
    if method == "bc":
        return bias_corrected_interval(replicates, point, alpha)
    raise ConfigError(f"interval method: expected one of {METHODS}, got {method!r}")


def estimate_from_replicates(point: float, replicates: Any, *, n: int, n_frames: int,
                             alpha: float = 0.05, method: str = "percentile") -> Estimate:
    """An :class:`Estimate` from a point and its bootstrap replicates (``None`` or empty:
    no interval, ``n_boot = 0``)."""
    if replicates is None:
        return Estimate(float(point), float("nan"), float("nan"), int(n), int(n_frames), 0, method)
    reps = np.asarray(replicates, dtype=np.float64).ravel()
    lo, hi = interval(reps, float(point), alpha, method)
    return Estimate(float(point), lo, hi, int(n), int(n_frames), int(reps.size), method)
