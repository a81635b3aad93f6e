"""The episode (cluster) bootstrap: resample whole episodes, never frames.

Frames of one episode are strongly correlated, so a frame bootstrap gives intervals
several times too narrow. Every interval in realgap resamples *episodes*; with ``strata``
(the domain of each frame) episodes are resampled within each stratum, so every replicate
keeps the number of sim and of real episodes (Davison & Hinkley 1997, 3.8, the two-stage
bootstrap's first stage).

Two routes give the same replicates:

- :func:`bootstrap_ci` / :func:`cluster_bootstrap` call a statistic on the concatenated
  frames of the drawn episodes: slow, obviously right, the reference;
- :func:`bootstrap_counts` returns the draw counts ``(n_boot, n_episodes)`` so that a
  statistic built from per-episode sums can be evaluated for every replicate at once
  (:func:`ratio_replicates`), and so that several statistics (or several encoders) share
  the same draws -- the basis of paired differences and ranks with ties
  (:mod:`realgap.stats.ranking`). Tests prove the fast route equals the reference one.

The draws are seeded: the same ``rng`` gives the same counts, in the manner of rliable's
``get_interval_estimates`` but without its flaw of ignoring the seed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from realgap._rng import RngLike, as_rng
from realgap.errors import DataError
from realgap.stats._checks import check_alpha, check_count
from realgap.stats.intervals import Estimate, estimate_from_replicates


def episode_codes(groups: Any, strata: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Integer episode codes ``(n_frames,)`` and each episode's stratum code ``(n_episodes,)``.

    An episode is a distinct ``(stratum, group)`` pair, so sim episode 0 and real episode 0
    are two episodes. Codes follow the sorted order of ``(stratum, group)``.
    """
    g = np.asarray(groups)
    if g.ndim != 1:
        raise DataError(f"groups: expected one episode label per frame (1-D), got shape {g.shape}")
    if strata is None:
        _, codes = np.unique(g, return_inverse=True)
        n_eps = int(codes.max()) + 1 if codes.size else 0
        return codes.ravel().astype(np.int64), np.zeros(n_eps, dtype=np.int64)
    s = np.asarray(strata)
    if s.shape != g.shape:
        raise DataError(f"strata: expected shape {g.shape} like groups, got {s.shape}")
    if g.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    _, s_codes = np.unique(s, return_inverse=True)
    _, g_codes = np.unique(g, return_inverse=True)
    width = int(g_codes.max()) + 1
    pair = s_codes.astype(np.int64).ravel() * width + g_codes.ravel()
    uniq, codes = np.unique(pair, return_inverse=True)
    return codes.ravel().astype(np.int64), (uniq // width).astype(np.int64)


def bootstrap_counts(ep_stratum: Any, n_boot: int, rng: RngLike = None) -> np.ndarray:
    """How often each episode is drawn in each replicate: int array ``(n_boot, n_episodes)``.

    Within each stratum of ``E_s`` episodes, ``E_s`` episodes are drawn with replacement
    (a multinomial with equal cell probabilities), so each row keeps every stratum's size.
    Strata are visited in sorted order, so the same seed gives the same counts.
    """
    n_boot = check_count(n_boot, "n_boot", minimum=0)
    gen = as_rng(rng)
    ep_stratum = np.asarray(ep_stratum)
    counts = np.zeros((n_boot, ep_stratum.shape[0]), dtype=np.int64)
    for s in np.unique(ep_stratum):
        cols = np.flatnonzero(ep_stratum == s)
        counts[:, cols] = gen.multinomial(cols.size, np.full(cols.size, 1.0 / cols.size), size=n_boot)
    return counts


def ratio_replicates(counts: np.ndarray, sums: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Replicates of a frame mean from per-episode sums.

    ``counts``: ``(n_boot, E)``; ``sums``: ``(E,)`` or ``(E, d)`` per-episode sums of a
    per-frame quantity; ``sizes``: ``(E,)`` frames per episode. Returns ``(n_boot,)`` or
    ``(n_boot, d)``: ``sum_e c_e * sums_e / sum_e c_e * sizes_e`` (NaN where a replicate
    drew no frame).
    """
    num = np.asarray(counts) @ np.asarray(sums, dtype=np.float64)
    den = np.asarray(counts) @ np.asarray(sizes, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / (den[:, None] if num.ndim == 2 else den)


def frames_of_episodes(codes: np.ndarray, n_episodes: int) -> list[np.ndarray]:
    """Frame indices of each episode code, in frame order."""
    order = np.argsort(codes, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=n_episodes))])
    return [order[bounds[e]:bounds[e + 1]] for e in range(n_episodes)]


def rows_of_draw(frames_of: list[np.ndarray], counts_row: np.ndarray) -> np.ndarray:
    """Frame indices of one bootstrap draw: each episode's frames repeated by its count."""
    eps = np.repeat(np.arange(counts_row.shape[0]), counts_row)
    if eps.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([frames_of[e] for e in eps])


def cluster_bootstrap(stat_fn: Callable[[np.ndarray], float], groups: Any, n_boot: int,
                      rng: RngLike = None, strata: Any = None) -> np.ndarray:
    """Replicates ``(n_boot,)`` of ``stat_fn(frame_indices)`` over resampled episodes.

    ``stat_fn`` receives the frame indices of the drawn episodes (an episode drawn twice
    appears twice) and returns a float. The draws are those of :func:`bootstrap_counts`
    with the same ``rng``, so this route and a per-episode-sums route agree exactly.
    """
    codes, ep_stratum = episode_codes(groups, strata)
    counts = bootstrap_counts(ep_stratum, n_boot, rng)
    frames_of = frames_of_episodes(codes, ep_stratum.shape[0])
    return np.array([float(stat_fn(rows_of_draw(frames_of, c))) for c in counts], dtype=np.float64)


def bootstrap_ci(metric_fn: Callable[..., float], *arrays: Any, groups: Any, strata: Any = None,
                 n_boot: int = 200, alpha: float = 0.05, rng: RngLike = None,
                 method: str = "percentile") -> Estimate:
    """Interval of ``metric_fn(*arrays)`` over resampled episodes (the plain reference route).

    Args:
        metric_fn: a pure function of row-aligned arrays returning a float.
        arrays: arrays with one row per frame, all of length ``n_frames``.
        groups: ``(n_frames,)`` episode label of each frame (the resampling unit).
        strata: optional ``(n_frames,)`` stratum label (e.g. domain); episodes are
            resampled within each stratum.
        n_boot: replicates (0: no interval, ``lo = hi = nan``).
        alpha: ``1 - alpha`` is the interval's coverage.
        rng: seed or Generator; the same seed gives the same interval.
        method: ``"percentile"`` or ``"bc"``.

    Returns:
        :class:`Estimate` with ``n`` = number of episodes; never widened to contain the point.
    """
    check_alpha(alpha)
    n_boot = check_count(n_boot, "n_boot", minimum=0)
    if not arrays:
        raise DataError("bootstrap_ci: pass at least one array for metric_fn")
    arrs = [np.asarray(a) for a in arrays]
    n_frames = len(arrs[0])
    for i, a in enumerate(arrs):
        if len(a) != n_frames:
            raise DataError(f"bootstrap_ci: array {i} has {len(a)} rows, array 0 has {n_frames}; "
                            "all arrays must have one row per frame")
    codes, ep_stratum = episode_codes(groups, strata)
    if codes.shape[0] != n_frames:
        raise DataError(f"groups: expected {n_frames} labels, got {codes.shape[0]}")
    point = float(metric_fn(*arrs))
    n_eps = int(ep_stratum.shape[0])
    if n_boot == 0:
        return estimate_from_replicates(point, None, n=n_eps, n_frames=n_frames, method=method)
    reps = cluster_bootstrap(lambda idx: metric_fn(*(a[idx] for a in arrs)), groups, n_boot,
                             rng, strata)
    return estimate_from_replicates(point, reps, n=n_eps, n_frames=n_frames, alpha=alpha,
                                    method=method)
