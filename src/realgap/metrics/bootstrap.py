"""Uncertainty as a wrapper: the episode bootstrap and the :class:`Estimate` it returns.

Frames of one episode are strongly correlated, so every interval in realgap resamples
*episodes*, never frames (a frame bootstrap would give intervals several times too narrow).
With ``strata`` (e.g. the domain of each frame) episodes are resampled within each stratum,
so every replicate keeps the number of sim and of real episodes. Intervals are percentile
intervals at level ``1 - alpha`` (Efron & Tibshirani 1993, ch. 13), in the manner of
rliable's ``get_interval_estimates`` -- but seeded: the same ``rng`` gives the same bytes.

The metric functions never bootstrap themselves (STYLE.md rule 2): :func:`bootstrap_ci`
takes any ``metric_fn(*arrays) -> float`` and calls it on resampled rows.
:func:`bootstrap_counts` exposes the draws themselves, so that several metrics can share
the same replicates (paired intervals, e.g. for the combined score of ``gap_suite``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from realgap._rng import RngLike, as_rng
from realgap.errors import DataError
from realgap.metrics._validate import check_positive_int, check_prob


@dataclass(frozen=True)
class Estimate:
    """A score with its interval and sample sizes.

    Attributes:
        value: the point estimate on all data.
        lo, hi: the ``1 - alpha`` percentile bootstrap interval over episodes (NaN when
            no bootstrap was run, ``n_boot == 0``). The interval is widened to contain
            ``value`` in the rare case the percentile interval misses it (possible for
            biased statistics at very small n); ``lo <= value <= hi`` always holds.
        n: number of episodes the estimate rests on (the resampling unit).
        n_frames: number of frames.
        n_boot: number of bootstrap replicates behind ``lo``/``hi``.
    """

    value: float
    lo: float
    hi: float
    n: int
    n_frames: int
    n_boot: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return asdict(self)


def episode_codes(groups: np.ndarray, strata: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Integer episode codes ``(n_frames,)`` and each episode's stratum code ``(n_episodes,)``.

    An episode is a distinct ``(stratum, group)`` pair, so sim episode 0 and real episode 0
    are two episodes.
    """
    g = np.asarray(groups)
    if strata is None:
        _, codes = np.unique(g, return_inverse=True)
        return codes.ravel(), np.zeros(int(codes.max()) + 1 if codes.size else 0, dtype=np.int64)
    s = np.asarray(strata)
    if s.shape != g.shape:
        raise DataError(f"strata: expected shape {g.shape} like groups, got {s.shape}")
    _, s_codes = np.unique(s, return_inverse=True)
    _, g_codes = np.unique(g, return_inverse=True)
    pair = s_codes.astype(np.int64) * (int(g_codes.max()) + 1) + g_codes
    uniq, codes = np.unique(pair, return_inverse=True)
    ep_stratum = uniq // (int(g_codes.max()) + 1)
    return codes.ravel(), ep_stratum


def bootstrap_counts(
    ep_stratum: np.ndarray, n_boot: int, rng: RngLike = None
) -> np.ndarray:
    """How often each episode is drawn in each replicate: int array ``(n_boot, n_episodes)``.

    Within each stratum of ``E_s`` episodes, ``E_s`` episodes are drawn with replacement
    (a multinomial with equal cell probabilities), so each row sums to the episode count.
    """
    gen = as_rng(rng)
    ep_stratum = np.asarray(ep_stratum)
    counts = np.zeros((n_boot, ep_stratum.shape[0]), dtype=np.int64)
    for s in np.unique(ep_stratum):
        cols = np.flatnonzero(ep_stratum == s)
        counts[:, cols] = gen.multinomial(cols.size, np.full(cols.size, 1.0 / cols.size), size=n_boot)
    return counts


def percentile_interval(replicates: np.ndarray, alpha: float, point: float) -> tuple[float, float]:
    """``alpha/2`` and ``1 - alpha/2`` quantiles of the finite replicates, widened to
    contain ``point``; ``(nan, nan)`` when there are no finite replicates."""
    reps = np.asarray(replicates, dtype=np.float64)
    reps = reps[np.isfinite(reps)]
    if reps.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(reps, [alpha / 2, 1 - alpha / 2])
    if np.isfinite(point):
        lo, hi = min(lo, point), max(hi, point)
    return float(lo), float(hi)


def ratio_replicates(counts: np.ndarray, sums: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Replicates of a frame mean from per-episode sums.

    ``counts``: ``(n_boot, E)``; ``sums``: ``(E,)`` or ``(E, d)`` per-episode sums of a
    per-frame quantity; ``sizes``: ``(E,)`` frames per episode. Returns ``(n_boot,)`` or
    ``(n_boot, d)``: ``sum_e c_e * sums_e / sum_e c_e * sizes_e``.
    """
    num = counts @ sums
    den = counts @ sizes.astype(np.float64)
    return num / (den[:, None] if num.ndim == 2 else den)


def bootstrap_ci(
    metric_fn: Callable[..., float],
    *arrays: np.ndarray,
    groups: np.ndarray,
    strata: np.ndarray | None = None,
    n_boot: int = 200,
    alpha: float = 0.05,
    rng: RngLike = None,
) -> Estimate:
    """Percentile interval of ``metric_fn(*arrays)`` over resampled episodes.

    Args:
        metric_fn: a pure function of row-aligned arrays returning a float.
        arrays: arrays with one row per frame, all of length ``n_frames``.
        groups: ``(n_frames,)`` episode label of each frame (the resampling unit).
        strata: optional ``(n_frames,)`` stratum label (e.g. domain); episodes are
            resampled within each stratum.
        n_boot: replicates (0 gives ``lo = hi = nan``).
        alpha: ``1 - alpha`` is the interval's coverage.
        rng: seed or Generator; the same seed gives the same interval.

    Returns:
        :class:`Estimate` with ``n`` = number of episodes.
    """
    check_prob(alpha, "alpha")
    n_boot = check_positive_int(n_boot, "n_boot", minimum=0)
    if not arrays:
        raise DataError("bootstrap_ci: pass at least one array for metric_fn")
    n_frames = len(arrays[0])
    for i, a in enumerate(arrays):
        if len(a) != n_frames:
            raise DataError(f"bootstrap_ci: array {i} has {len(a)} rows, array 0 has {n_frames}; "
                            "all arrays must have one row per frame")
    codes, ep_stratum = episode_codes(np.asarray(groups), strata)
    if codes.shape[0] != n_frames:
        raise DataError(f"groups: expected {n_frames} labels, got {codes.shape[0]}")
    point = float(metric_fn(*arrays))
    n_eps = int(ep_stratum.shape[0])
    if n_boot == 0:
        return Estimate(point, float("nan"), float("nan"), n_eps, n_frames, 0)
    order = np.argsort(codes, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=n_eps))])
    frames_of = [order[bounds[e]:bounds[e + 1]] for e in range(n_eps)]
    counts = bootstrap_counts(ep_stratum, n_boot, rng)
    reps = np.empty(n_boot)
    for b in range(n_boot):
        eps = np.repeat(np.arange(n_eps), counts[b])
        idx = np.concatenate([frames_of[e] for e in eps])
        reps[b] = float(metric_fn(*(np.asarray(a)[idx] for a in arrays)))
    lo, hi = percentile_interval(reps, alpha, point)
    return Estimate(point, lo, hi, n_eps, n_frames, n_boot)
