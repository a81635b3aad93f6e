"""Do offline scores predict closed-loop transfer? The study's statistics, as pure functions.

Array conventions (stated once):

- ``outcomes``: a table with one row per played episode and columns ``encoder`` (str),
  ``seed`` (int, the policy's training seed), ``domain`` (str: ``sim`` or a real-proxy
  domain), ``episode`` (int, the reset seed of the initial state), ``success`` (bool) and
  ``final_distance`` (float, m; minus the last step's reward of a reach task). Every
  encoder has the same seeds, every (encoder, seed, domain) the same episodes: the study
  plays the same initial states with every policy (paired design).
- ``scores``: encoder -> offline metric -> value (one real-proxy domain's gap run).

Closed-loop performance of an encoder in a domain is the mean over its seeds and the
episodes: the success rate, or the mean final distance to the target (m). The *drop* is
``success(sim) - success(domain)`` (encoder-dis-as-framework.txt V-A asks whether DIS and
AS predict it; vla-domain-randomization-study.txt 4.2 measures transfer the same way).

Across encoders, each offline score is correlated with each closed-loop target: Pearson r
and Spearman rho, with percentile intervals from a hierarchical bootstrap that redraws the
episodes (the same draw for every encoder and domain, keeping the pairing) and, per
encoder, its training seeds; the offline score stays at its point value (its own interval
is the gap run's, drawn as the scatter's horizontal error bar). Where the statistic is
undefined (a constant side, e.g. no success drawn) in more than ``alpha`` of the redraws,
no interval is given: the rest would be conditional on the rare successes being drawn.
MMRV (sim side = the offline score, oriented so that higher predicts better) says how far
the score's order of encoders is from their closed-loop order, in units of the target.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from realgap._rng import RngLike, as_rng
from realgap.errors import DataError
from realgap.store.study import CorrelationRow

#: Offline scores correlated, when the gap run has them (``realgap.store.gap`` names).
SCORES: tuple[str, ...] = ("dis_paper", "dis_cal", "as_sim", "as_transfer", "combined", "mmd",
                           "c2st_acc", "coverage")
#: Scores for which a smaller value predicts better transfer (a distance, a detectable
#: domain); every other score is read as higher-is-better.
LOWER_IS_BETTER: frozenset[str] = frozenset({"mmd", "fd", "centroid_distance", "c2st_acc",
                                             "outside_fraction"})
#: Closed-loop targets: name -> (column, is a drop, higher is better).
TARGETS: dict[str, tuple[str, bool, bool]] = {
    "success": ("success", False, True),
    "final_distance": ("final_distance", False, False),
    "success_drop": ("success", True, False),
}
STATISTICS: tuple[str, ...] = ("pearson_r", "spearman_rho", "mmrv")
N_BOOT = 1000
OUTCOME_COLUMNS = ("encoder", "seed", "domain", "episode", "success", "final_distance")


@dataclass(frozen=True)
class Grid:
    """Outcomes as arrays ``(n_encoders, n_seeds, n_domains, n_episodes)``."""

    encoders: tuple[str, ...]
    seeds: tuple[int, ...]
    domains: tuple[str, ...]
    episodes: tuple[int, ...]
    success: np.ndarray
    final_distance: np.ndarray


def outcome_grid(outcomes: pd.DataFrame, sim_domain: str = "sim") -> Grid:
    """Check the paired design and lay ``outcomes`` out as a :class:`Grid` (sim first)."""
    missing = [c for c in OUTCOME_COLUMNS if c not in outcomes.columns]
    if missing:
        raise DataError(f"study outcomes: missing columns {missing}")
    if outcomes.empty:
        raise DataError("study outcomes: no episodes played")
    df = outcomes.loc[:, list(OUTCOME_COLUMNS)]
    encoders = tuple(dict.fromkeys(df["encoder"].astype(str)))
    seeds = tuple(sorted({int(s) for s in df["seed"]}))
    domains = tuple(dict.fromkeys(df["domain"].astype(str)))
    if sim_domain not in domains:
        raise DataError(f"study outcomes: no episodes in {sim_domain!r} (domains: {domains})")
    domains = (sim_domain, *[d for d in domains if d != sim_domain])
    episodes = tuple(sorted({int(e) for e in df["episode"]}))
    shape = (len(encoders), len(seeds), len(domains), len(episodes))
    if len(df) != int(np.prod(shape)):
        raise DataError(f"study outcomes: {len(df)} rows, but a paired grid of {shape} "
                        "(encoders x seeds x domains x episodes) needs one row per cell")
    pos = [{v: i for i, v in enumerate(vals)} for vals in (encoders, seeds, domains, episodes)]
    idx = (df["encoder"].astype(str).map(pos[0]).to_numpy(),
           df["seed"].astype(int).map(pos[1]).to_numpy(),
           df["domain"].astype(str).map(pos[2]).to_numpy(),
           df["episode"].astype(int).map(pos[3]).to_numpy())
    succ = np.full(shape, np.nan)
    dist = np.full(shape, np.nan)
    succ[idx] = df["success"].astype(float).to_numpy()
    dist[idx] = df["final_distance"].astype(float).to_numpy()
    if np.isnan(succ).any():
        raise DataError("study outcomes: a (encoder, seed, domain, episode) cell is repeated "
                        "and another is missing; every policy must play every episode once")
    return Grid(encoders, seeds, domains, episodes, succ, dist)


def performance(grid: Grid, seed_idx: np.ndarray | None = None,
                ep_idx: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per encoder and domain ``(n_encoders, n_domains)``: ``success`` rate and mean
    ``final_distance`` over the (drawn) seeds and episodes; ``success_drop`` is sim minus
    each domain (column 0, sim itself, is 0).

    ``seed_idx (n_encoders, n_seeds)`` and ``ep_idx (n_episodes,)``: a bootstrap draw.
    """
    ne, ns, _, nep = grid.success.shape
    s_idx = np.tile(np.arange(ns), (ne, 1)) if seed_idx is None else seed_idx
    e_idx = np.arange(nep) if ep_idx is None else ep_idx
    rows = np.arange(ne)[:, None]
    out = {}
    for name, arr in (("success", grid.success), ("final_distance", grid.final_distance)):
        drawn = arr[rows, s_idx][..., e_idx]  # (ne, ns, nd, nep)
        out[name] = np.nanmean(drawn, axis=(1, 3))
    out["success_drop"] = out["success"][:, :1] - out["success"]
    return out


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0 or not np.isfinite(y).all():
        return float("nan")
    return float(np.clip(np.corrcoef(x, y)[0, 1], -1.0, 1.0))


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import rankdata

    if not np.isfinite(y).all():
        return float("nan")
    return _pearson(rankdata(x), rankdata(y))


def _mmrv(score: np.ndarray, perf: np.ndarray) -> float:
    """MMRV with the oriented offline score as the sim side (``realgap.protocol.correlation``)."""
    if score.size < 2 or not np.isfinite(perf).all():
        return float("nan")
    violated = (score[:, None] > score[None, :]) != (perf[:, None] > perf[None, :])
    rv = np.where(violated, np.abs(perf[:, None] - perf[None, :]), 0.0)
    return float(rv.max(axis=1).mean())


def _stats(x: np.ndarray, y: np.ndarray, x_sign: float, y_sign: float) -> tuple[float, float, float]:
    return _pearson(x, y), _spearman(x, y), _mmrv(x_sign * x, y_sign * y)


def correlate_scores(outcomes: pd.DataFrame, scores: Mapping[str, Mapping[str, Mapping[str, float]]],
                     *, score_names: Sequence[str] = SCORES, n_boot: int = N_BOOT,
                     alpha: float = 0.05, rng: RngLike = 0,
                     sim_domain: str = "sim") -> list[CorrelationRow]:
    """Correlate each offline score with each closed-loop target across encoders.

    Args:
        outcomes: the played episodes (module docstring).
        scores: real domain -> encoder -> metric -> value: the offline scores of the gap
            run of that real-proxy domain; encoders absent there are left out.
        score_names: metrics to correlate (those absent for some encoder are skipped).
        n_boot: bootstrap replicates (0: points only).
        alpha: 1 - interval level.
        rng: seed of the bootstrap; same seed, same rows.

    Returns:
        One :class:`CorrelationRow` per (domain, score, target, statistic), in that order.
    """
    from realgap.stats import percentile_interval

    grid = outcome_grid(outcomes, sim_domain)
    gen = as_rng(rng)
    ne, ns, _, nep = grid.success.shape
    draws = [(np.asarray(gen.integers(0, ns, size=(ne, ns))),
              np.asarray(gen.integers(0, nep, size=nep))) for _ in range(int(n_boot))]
    point = performance(grid)
    reps = [performance(grid, s, e) for s, e in draws]
    rows: list[CorrelationRow] = []
    nan = float("nan")
    for d_i, domain in enumerate(grid.domains):
        if domain == sim_domain or domain not in scores:
            continue
        by_enc = scores[domain]
        encs = [i for i, e in enumerate(grid.encoders) if e in by_enc]
        for score in score_names:
            if not encs or any(by_enc[grid.encoders[i]].get(score) is None for i in encs):
                continue
            x = np.array([float(by_enc[grid.encoders[i]][score]) for i in encs])
            if not np.isfinite(x).all():
                continue
            x_sign = -1.0 if score in LOWER_IS_BETTER else 1.0
            for target, (_, _, higher) in TARGETS.items():
                y_sign = 1.0 if higher else -1.0
                pt = _stats(x, point[target][encs, d_i], x_sign, y_sign)
                rep = np.array([_stats(x, r[target][encs, d_i], x_sign, y_sign) for r in reps]) \
                    if reps else np.empty((0, 3))
                for j, stat in enumerate(STATISTICS):
                    lo, hi = percentile_interval(rep[:, j], alpha) if len(rep) else (nan, nan)
                    if len(rep) and np.isnan(rep[:, j]).mean() > alpha:
                        # the statistic is undefined (a constant side) in more than alpha of
                        # the redraws: the interval of the rest would be conditional on the
                        # rare successes being drawn, so none is given
                        lo, hi = nan, nan
                    rows.append(CorrelationRow(score, target, domain, stat, pt[j], lo, hi,
                                               len(encs), int(n_boot)))
    return rows


def best_predictor(rows: Sequence[CorrelationRow], target: str = "success",
                   statistic: str = "spearman_rho") -> dict[str, Any] | None:
    """The score whose ``statistic`` against ``target`` is largest in magnitude, with the
    sign that predicts better transfer, per domain: ``{domain: {score, value, lo, hi}}``.

    A score "predicts" when its oriented rho is positive; confidence is whether the
    interval excludes 0 (reported, not decided here). The interval redraws seeds and
    episodes for a fixed set of encoders, so it does not carry the uncertainty of which
    encoders were studied: with 3 encoders rho can only be +-0.5 or +-1, and scores that
    order the encoders alike tie (``tied_with``).
    """
    out: dict[str, Any] = {}
    oriented_of: dict[tuple[str, str], float] = {}
    for r in rows:
        if r.target != target or r.statistic != statistic or not np.isfinite(r.value):
            continue
        sgn = (-1.0 if r.score in LOWER_IS_BETTER else 1.0) * (1.0 if TARGETS[target][2] else -1.0)
        oriented_of[(r.domain, r.score)] = sgn * r.value
        sign = -1.0 if r.score in LOWER_IS_BETTER else 1.0
        if TARGETS[target][2] is False:
            sign = -sign
        oriented = sign * r.value
        cur = out.get(r.domain)
        if cur is None or oriented > cur["oriented"]:
            lo, hi = sorted((sign * r.lo, sign * r.hi)) if np.isfinite(r.lo) else (r.lo, r.hi)
            out[r.domain] = {"score": r.score, "value": r.value, "oriented": oriented,
                             "oriented_lo": lo, "oriented_hi": hi,
                             "interval_excludes_zero": bool(np.isfinite(lo) and lo > 0)}
    for dom, best in out.items():
        best["tied_with"] = sorted(sc for (d, sc), v in oriented_of.items()
                                   if d == dom and sc != best["score"] and v == best["oriented"])
        best["n_encoders"] = next(r.n for r in rows if r.domain == dom)
    return out or None


def summarize(grid: Grid, alpha: float = 0.05) -> list[dict[str, Any]]:
    """Per encoder and domain: success k/n with its Wilson interval, mean final distance,
    and the drop from sim (one dict each, sim first)."""
    from realgap.stats import wilson_interval

    perf = performance(grid)
    rows = []
    for e_i, enc in enumerate(grid.encoders):
        for d_i, dom in enumerate(grid.domains):
            k = int(np.nansum(grid.success[e_i, :, d_i]))
            n = int(np.isfinite(grid.success[e_i, :, d_i]).sum())
            lo, hi = wilson_interval(k, n, alpha)
            rows.append({"encoder": enc, "domain": dom, "successes": k, "trials": n,
                         "success_rate": k / n if n else float("nan"), "wilson_lo": lo,
                         "wilson_hi": hi,
                         "final_distance": float(perf["final_distance"][e_i, d_i]),
                         "success_drop": float(perf["success_drop"][e_i, d_i])})
    return rows
