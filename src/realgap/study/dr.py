"""``realgap study dr`` (skeleton): which randomization factor matters, in miniature.

vla-domain-randomization-study.txt (4.2, Table 1) trains one policy per data setting and
evaluates each on a one-factor-at-a-time real protocol. This module holds the settings
and the study's statistics as pure functions of the played episodes; the job that
generates, trains and evaluates per setting is not written yet.

Array convention (stated once): ``outcomes`` is a table with one row per played episode,
columns ``setting`` (a :data:`SETTINGS` name), ``seed`` (int: the training seed; the
policies of every setting share the seeds, which pairs them), ``condition`` (a protocol
condition, e.g. ``BG-lib3``), ``episode`` (int: the reset seed; every policy plays the
same episodes in every condition) and ``success`` (bool).

A setting's success rate pools seeds, conditions and episodes. Its effect is the
difference from ``Clean``; the interval comes from a bootstrap that redraws the seeds and
the episodes once per replicate for every setting (paired by seed and by initial state),
through :func:`realgap.stats.paired_difference`. The ranking is
:func:`realgap.stats.rank_with_ties` on the same replicates (tied = not told apart).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from realgap._rng import RngLike, as_rng
from realgap.errors import DataError

#: Data settings of the reference's Table 1: name -> randomized factors of ``sim``.
SETTINGS: dict[str, tuple[str, ...]] = {
    "Clean": (), "BG": ("BG",), "LT": ("LT",), "TD": ("TD",), "CP": ("CP",), "TH": ("TH",),
    "TH+CP+BG": ("TH", "CP", "BG"), "TH+CP+LT": ("TH", "CP", "LT"),
    "TH+CP+TD": ("TH", "CP", "TD"), "All": ("BG", "LT", "TD", "CP", "TH"),
}
#: The subset a ``tiny`` run trains.
TINY_SETTINGS: tuple[str, ...] = ("Clean", "BG", "LT")
BASELINE = "Clean"
COLUMNS = ("setting", "seed", "condition", "episode", "success")


@dataclass(frozen=True)
class FactorEffect:
    """A setting's pooled success rate and its paired difference from the baseline."""

    setting: str
    rate: float
    effect: float
    lo: float
    hi: float
    rank: int
    tied_with: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"setting": self.setting, "rate": self.rate, "effect": self.effect,
                "lo": self.lo, "hi": self.hi, "rank": self.rank, "tied_with": list(self.tied_with)}


def _grid(outcomes: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """``(settings, success (n_settings, n_seeds, n_conditions, n_episodes))``."""
    missing = [c for c in COLUMNS if c not in outcomes.columns]
    if missing:
        raise DataError(f"dr outcomes: missing columns {missing}")
    settings = list(dict.fromkeys(outcomes["setting"].astype(str)))
    axes = [settings, sorted(set(outcomes["seed"].astype(int))),
            list(dict.fromkeys(outcomes["condition"].astype(str))),
            sorted(set(outcomes["episode"].astype(int)))]
    shape = tuple(len(a) for a in axes)
    if len(outcomes) != int(np.prod(shape)):
        raise DataError(f"dr outcomes: {len(outcomes)} rows for a paired grid of {shape} "
                        "(settings x seeds x conditions x episodes); every setting's policies "
                        "must share the seeds and play every condition's episodes once")
    pos = [{v: i for i, v in enumerate(a)} for a in axes]
    idx = (outcomes["setting"].astype(str).map(pos[0]).to_numpy(),
           outcomes["seed"].astype(int).map(pos[1]).to_numpy(),
           outcomes["condition"].astype(str).map(pos[2]).to_numpy(),
           outcomes["episode"].astype(int).map(pos[3]).to_numpy())
    succ = np.full(shape, np.nan)
    succ[idx] = outcomes["success"].astype(float).to_numpy()
    if np.isnan(succ).any():
        raise DataError("dr outcomes: a cell is repeated and another is missing")
    return settings, succ


def factor_effects(outcomes: pd.DataFrame, *, baseline: str = BASELINE, n_boot: int = 1000,
                   alpha: float = 0.05, rng: RngLike = 0) -> list[FactorEffect]:
    """Each setting's pooled rate, its effect against ``baseline`` (paired by seed and
    episode) and its rank with ties, best first. Same ``rng``, same numbers."""
    from realgap.stats import paired_difference, rank_with_ties

    settings, succ = _grid(outcomes)
    if baseline not in settings:
        raise DataError(f"dr outcomes: no {baseline!r} setting to measure effects against "
                        f"(settings: {settings})")
    gen = as_rng(rng)
    ns, nseed, _, nep = succ.shape
    points = succ.mean(axis=(1, 2, 3))
    reps = np.empty((ns, int(n_boot)))
    for b in range(int(n_boot)):
        s_idx = gen.integers(0, nseed, size=nseed)   # one seed draw for every setting
        e_idx = gen.integers(0, nep, size=nep)       # one episode draw for every setting
        reps[:, b] = succ[:, s_idx][..., e_idx].mean(axis=(1, 2, 3))
    base = settings.index(baseline)
    ranks = {e.name: e for e in rank_with_ties(settings, points, reps, alpha=alpha)}
    out = []
    for i, s in enumerate(settings):
        d = paired_difference(reps[i], reps[base], points[i], points[base], n=nseed, alpha=alpha)
        out.append(FactorEffect(s, float(points[i]), d.value, d.lo, d.hi, ranks[s].rank,
                                ranks[s].tied_with))
    return sorted(out, key=lambda e: (e.rank, -e.rate))


def factor_table(outcomes: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """The reference's layout: one row per setting, ``k/n`` per condition and pooled, with
    the pooled Wilson interval (seeds x episodes pooled as trials)."""
    from realgap.stats import wilson_interval

    settings, succ = _grid(outcomes)
    conditions = list(dict.fromkeys(outcomes["condition"].astype(str)))
    rows = []
    for i, s in enumerate(settings):
        row: dict[str, Any] = {"setting": s}
        for c_i, c in enumerate(conditions):
            cell = succ[i, :, c_i]
            row[c] = f"{int(cell.sum())}/{cell.size}"
        k, n = int(succ[i].sum()), succ[i].size
        lo, hi = wilson_interval(k, n, alpha)
        row.update({"pooled": f"{k}/{n}", "rate": k / n, "wilson_lo": lo, "wilson_hi": hi})
        rows.append(row)
    return pd.DataFrame(rows)
