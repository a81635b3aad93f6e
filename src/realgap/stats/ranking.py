"""Paired differences and rankings with ties.

Two encoders scored on the same frames are compared on the SAME resampled episodes: the
replicates of their difference carry the correlation between them, so the interval of
the difference is far narrower than what two separate intervals suggest (and far more
honest than reading overlap of those intervals). Encoders whose paired difference interval
contains 0 cannot be told apart at this sample size: they share a rank.

The rank of an entry is ``1 + #{others that are better by a difference whose interval
excludes 0}`` (a competition ranking in which "tied" means "not distinguishable"). Because
"not distinguishable" is not transitive (A ~ B, B ~ C, A > C), each entry also lists the
names it is tied with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from realgap.errors import DataError
from realgap.stats._checks import check_alpha
from realgap.stats.intervals import Estimate, percentile_interval


@dataclass(frozen=True)
class RankEntry:
    """One entry of a ranking with ties.

    Attributes:
        name: the entry (encoder) name.
        rank: 1 + number of entries better than it beyond noise.
        value: its point score.
        tied_with: names whose paired difference interval with it contains 0.
    """

    name: str
    rank: int
    value: float
    tied_with: tuple[str, ...] = ()

    @property
    def tied(self) -> bool:
        """True when at least one other entry cannot be told apart from this one."""
        return bool(self.tied_with)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return {"name": self.name, "rank": self.rank, "value": self.value,
                "tied_with": list(self.tied_with), "tied": self.tied}


def paired_difference(reps_a: Any, reps_b: Any, point_a: float, point_b: float, *, n: int,
                      n_frames: int = 0, alpha: float = 0.05) -> Estimate:
    """``a - b`` with the percentile interval of the paired replicates ``reps_a - reps_b``.

    ``reps_a`` and ``reps_b`` must come from the same draws (same counts matrix); replicates
    where either is non-finite are dropped.
    """
    check_alpha(alpha)
    ra = np.asarray(reps_a, dtype=np.float64).ravel()
    rb = np.asarray(reps_b, dtype=np.float64).ravel()
    if ra.shape != rb.shape:
        raise DataError(f"paired_difference: replicates differ in length ({ra.size} vs {rb.size}); "
                        "both must come from the same bootstrap draws")
    diff = ra - rb
    lo, hi = percentile_interval(diff, alpha)
    return Estimate(float(point_a) - float(point_b), lo, hi, int(n), int(n_frames),
                    int(np.isfinite(diff).sum()))


def rank_with_ties(names: Any, points: Any, replicates: Any, *, higher_is_better: bool = True,
                   alpha: float = 0.05) -> list[RankEntry]:
    """Rank entries by their points, with ties wherever a paired difference is not resolved.

    Args:
        names: ``(m,)`` entry names.
        points: ``(m,)`` point scores.
        replicates: ``(m, n_boot)`` bootstrap replicates of each score on the SAME draws.
        higher_is_better: direction of the score.
        alpha: ``1 - alpha`` is the coverage of each paired-difference interval.

    Returns:
        Entries sorted by rank, then by point (best first). An entry whose point is NaN is
        ranked last and tied with nothing.
    """
    check_alpha(alpha)
    names = [str(n) for n in names]
    pts = np.asarray(points, dtype=np.float64).ravel()
    reps = np.asarray(replicates, dtype=np.float64)
    m = len(names)
    if pts.shape != (m,) or reps.ndim != 2 or reps.shape[0] != m:
        raise DataError(f"rank_with_ties: expected {m} points and ({m}, n_boot) replicates, got "
                        f"{pts.shape} and {reps.shape}")
    sign = 1.0 if higher_is_better else -1.0
    better = np.zeros((m, m), dtype=bool)      # better[i, j]: i beats j beyond noise
    tied = np.zeros((m, m), dtype=bool)
    for i in range(m):
        for j in range(m):
            if i == j or not (np.isfinite(pts[i]) and np.isfinite(pts[j])):
                continue
            lo, hi = percentile_interval(sign * (reps[i] - reps[j]), alpha)
            if not (np.isfinite(lo) and np.isfinite(hi)):
                tied[i, j] = True
            elif lo > 0:
                better[i, j] = True
            elif hi >= 0:
                tied[i, j] = True
    entries = []
    for j in range(m):
        rank = 1 + int(better[:, j].sum()) if np.isfinite(pts[j]) else m
        entries.append(RankEntry(names[j], rank, float(pts[j]),
                                 tuple(names[i] for i in range(m) if tied[j, i])))
    key_pts = np.where(np.isfinite(pts), sign * pts, -np.inf)
    order = sorted(range(m), key=lambda j: (entries[j].rank, -key_pts[j]))
    return [entries[j] for j in order]
