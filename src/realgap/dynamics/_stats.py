"""Estimates with intervals for the dynamics tools: a value, a percentile interval, n.

Every dynamics number is an :class:`Estimate`. Intervals come from bootstraps over whole
trajectories (or seeds, then episodes), never over single transitions, because transitions
of one trajectory are correlated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from realgap._rng import RngLike, as_rng
from realgap.errors import ConfigError


@dataclass(frozen=True)
class Estimate:
    """``value`` with a ``level`` interval ``[lo, hi]`` over ``n`` units (``unit`` names them)."""

    value: float
    lo: float
    hi: float
    n: int
    unit: str = "trajectories"
    level: float = 0.95
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "lo": self.lo, "hi": self.hi, "n": self.n,
                "unit": self.unit, "level": self.level, **self.details}


def _check_n_boot(n_boot: int) -> None:
    if n_boot < 0:
        raise ConfigError(f"n_boot: bootstrap replicates must be >= 0 (0: no interval), got {n_boot}")


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap ``samples`` (NaNs dropped)."""
    s = np.asarray(samples, dtype=float)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return float("nan"), float("nan")
    a = (1.0 - level) / 2.0
    return float(np.quantile(s, a)), float(np.quantile(s, 1.0 - a))


def cluster_bootstrap(
    groups: Sequence[np.ndarray],
    stat: Callable[..., float],
    *,
    n_boot: int = 500,
    rng: RngLike = 0,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """Point value and percentile interval of ``stat(*resampled)``.

    ``groups[i]`` is an array of cluster ids per row for the i-th input; each bootstrap
    replicate resamples the clusters of every input independently, with replacement, and
    passes ``stat`` one integer row index array per input.

    Returns ``(value, lo, hi)``; ``value`` is ``stat`` on the original rows.
    """
    _check_n_boot(n_boot)
    gen = as_rng(rng)
    members = []
    for g in groups:
        g = np.asarray(g)
        uniq = np.unique(g)
        members.append([np.flatnonzero(g == u) for u in uniq])
    value = float(stat(*[np.arange(len(np.asarray(g))) for g in groups]))
    reps = np.empty(n_boot)
    for b in range(n_boot):
        idx = []
        for mem in members:
            pick = gen.integers(0, len(mem), size=len(mem))
            idx.append(np.concatenate([mem[j] for j in pick]))
        reps[b] = stat(*idx)
    lo, hi = percentile_interval(reps, level)
    return value, lo, hi


def hierarchical_mean_ci(
    values_by_seed: Sequence[np.ndarray],
    *,
    n_boot: int = 2000,
    rng: RngLike = 0,
    level: float = 0.95,
) -> tuple[float, float, float, np.ndarray]:
    """Mean over all episodes with a two-level bootstrap: seeds, then episodes within a seed.

    Args:
        values_by_seed: one 1-D array of per-episode values per seed.

    Returns:
        ``(mean, lo, hi, replicates)``; the replicates let a caller bootstrap a ratio of two
        conditions with the same random draws.
    """
    _check_n_boot(n_boot)
    gen = as_rng(rng)
    arrays = [np.asarray(v, dtype=float) for v in values_by_seed]
    mean = float(np.mean(np.concatenate(arrays)))
    reps = np.empty(n_boot)
    k = len(arrays)
    for b in range(n_boot):
        seeds = gen.integers(0, k, size=k) if k > 1 else np.zeros(1, dtype=int)
        parts = [arrays[s][gen.integers(0, arrays[s].size, size=arrays[s].size)] for s in seeds]
        reps[b] = np.mean(np.concatenate(parts))
    lo, hi = percentile_interval(reps, level)
    return mean, lo, hi, reps
