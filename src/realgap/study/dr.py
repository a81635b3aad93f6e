"""``realgap study dr``: which randomization factor matters, in miniature (statistics).

vla-domain-randomization-study.txt (4.2, Table 1) trains one policy per data setting and
evaluates each on a one-factor-at-a-time real protocol. This module holds the settings
(:data:`DR_SETTINGS`) and the study's statistics as pure functions of the played
episodes; the job that generates, trains and evaluates per setting is
:mod:`realgap.study.dr_job`.

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
from realgap.store.study import FactorEffect  # the store's record type: one definition

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
class DrSetting:
    """One data setting of the study: how its demonstrations are rendered and simulated,
    and whether its policy is then fine-tuned with RL.

    Attributes:
        name: the setting's name in tables (Table 1's names; suffixes name the variants).
        factors: ``sim`` factors randomized in the demonstrations (:mod:`realgap.sim.factors`).
        granularity: ``episode`` (Table 1) or ``frame`` (Table 2; TD and TH stay episode-wise).
        fidelity: rendering fidelity of the demonstrations (4.3, ``low``/``medium``/``high``).
        physics: ``nominal`` or ``distorted`` (0.B.3.2, :data:`realgap.sim.generate.PHYSICS_PRESETS`).
        finetune: None, or the RL fine-tuning of the policy of setting ``base`` (4.4):
            ``clean`` (no randomization) or ``randomized`` (the base setting's factors).
        base: the supervised setting whose policy an RL setting starts from.
    """

    name: str
    factors: tuple[str, ...] = ()
    granularity: str = "episode"
    fidelity: str = "low"
    physics: str = "nominal"
    finetune: str | None = None
    base: str | None = None

    @property
    def data_key(self) -> str:
        """Settings with equal keys share one demonstration FrameSet."""
        return (f"{'+'.join(self.factors) or 'clean'}-{self.granularity}-{self.fidelity}-"
                f"{self.physics}")

    def as_dict(self) -> dict[str, Any]:
        return {"factors": list(self.factors), "granularity": self.granularity,
                "fidelity": self.fidelity, "physics": self.physics, "finetune": self.finetune,
                "base": self.base}


def _table1() -> dict[str, DrSetting]:
    return {n: DrSetting(n, f) for n, f in SETTINGS.items()}


#: Every setting the study knows: Table 1 (episode-wise), Table 2's frame-wise variants,
#: the fidelity presets and the distorted physics on Clean data, and RL fine-tuning of the
#: Clean policy (clean) and of the All-factors policy (under its randomization).
DR_SETTINGS: dict[str, DrSetting] = {
    **_table1(),
    "BG/frame": DrSetting("BG/frame", ("BG",), granularity="frame"),
    "LT/frame": DrSetting("LT/frame", ("LT",), granularity="frame"),
    "CP/frame": DrSetting("CP/frame", ("CP",), granularity="frame"),
    "Clean/medium": DrSetting("Clean/medium", fidelity="medium"),
    "Clean/high": DrSetting("Clean/high", fidelity="high"),
    "Clean/distorted-physics": DrSetting("Clean/distorted-physics", physics="distorted"),
    "Clean+RL": DrSetting("Clean+RL", finetune="clean", base="Clean"),
    "All+RL-DR": DrSetting("All+RL-DR", SETTINGS["All"], finetune="randomized", base="All"),
}

#: The comparisons the study reports besides the effects against Clean: (name, a, b), the
#: difference a - b, paired by seed and initial state.
COMPARISONS: tuple[tuple[str, str, str], ...] = (
    ("granularity: BG frame-wise vs episode-wise", "BG/frame", "BG"),
    ("granularity: LT frame-wise vs episode-wise", "LT/frame", "LT"),
    ("granularity: CP frame-wise vs episode-wise", "CP/frame", "CP"),
    ("fidelity: medium vs low (Clean)", "Clean/medium", "Clean"),
    ("fidelity: high vs medium (Clean)", "Clean/high", "Clean/medium"),
    ("fidelity: high vs low (Clean)", "Clean/high", "Clean"),
    ("physics: distorted vs nominal (Clean)", "Clean/distorted-physics", "Clean"),
    ("RL fine-tuning: Clean+RL vs Clean", "Clean+RL", "Clean"),
    ("RL fine-tuning under DR: All+RL-DR vs All", "All+RL-DR", "All"),
)


def dr_setting(name: str) -> DrSetting:
    """The :class:`DrSetting` of ``name``; an unknown name is a ConfigError listing them."""
    from realgap.errors import ConfigError

    if name not in DR_SETTINGS:
        raise ConfigError(f"--settings: unknown setting {name!r}; choose from "
                          f"{', '.join(DR_SETTINGS)}")
    return DR_SETTINGS[name]


#: Closed-loop measures the statistics take: column -> higher is better. Success is rare
#: at CPU sizes, so the final distance to the target (m) shows differences success hides
#: (issue 12, section 3).
MEASURES: dict[str, bool] = {"success": True, "final_distance": False}


def _check_measure(measure: str, outcomes: pd.DataFrame) -> None:
    if measure not in MEASURES:
        raise DataError(f"dr statistics: unknown measure {measure!r}; expected one of "
                        f"{', '.join(MEASURES)}")
    if measure not in outcomes.columns:
        raise DataError(f"dr outcomes: no {measure!r} column")


def _grid(outcomes: pd.DataFrame, measure: str = "success") -> tuple[list[str], np.ndarray]:
    """``(settings, measure (n_settings, n_seeds, n_conditions, n_episodes))``."""
    _check_measure(measure, outcomes)
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
    filled = np.zeros(shape, dtype=bool)
    succ[idx] = outcomes[measure].astype(float).to_numpy()
    filled[idx] = True
    if not filled.all():
        raise DataError("dr outcomes: a cell is repeated and another is missing")
    if np.isnan(succ).any():
        raise DataError(f"dr outcomes: {int(np.isnan(succ).sum())} episodes have no "
                        f"{measure} (NaN: no step was played)")
    return settings, succ


def paired_replicates(outcomes: pd.DataFrame, n_boot: int = 1000, rng: RngLike = 0,
                      measure: str = "success") -> tuple[list[str], np.ndarray, np.ndarray, int]:
    """``(settings, points (n_settings,), replicates (n_settings, n_boot), n_seeds)``.

    Each replicate redraws the training seeds and the initial states (episodes) with
    replacement ONCE for every setting, so differences between settings are paired by
    seed and by initial state. Same ``rng``, same replicates."""
    settings, succ = _grid(outcomes, measure)
    gen = as_rng(rng)
    ns, nseed, _, nep = succ.shape
    points = succ.mean(axis=(1, 2, 3))
    reps = np.empty((ns, int(n_boot)))
    for b in range(int(n_boot)):
        s_idx = gen.integers(0, nseed, size=nseed)   # one seed draw for every setting
        e_idx = gen.integers(0, nep, size=nep)       # one episode draw for every setting
        reps[:, b] = succ[:, s_idx][..., e_idx].mean(axis=(1, 2, 3))
    return settings, points, reps, nseed


def compare_settings(outcomes: pd.DataFrame, pairs: Any = COMPARISONS, *, n_boot: int = 1000,
                     alpha: float = 0.05, rng: RngLike = 0,
                     measure: str = "success") -> list[dict[str, Any]]:
    """``a - b`` of ``measure`` for each ``(name, a, b)`` in ``pairs`` whose settings were
    both played, with the paired percentile interval (:func:`paired_replicates`; the same
    draws as :func:`factor_effects` for the same ``rng``). ``rate_a``/``rate_b`` are the
    settings' means of ``measure``; a comparison of the final distance is named
    ``"<name> (final distance)"`` and carries ``"measure"``."""
    from realgap.stats import paired_difference

    settings, points, reps, nseed = paired_replicates(outcomes, n_boot, rng, measure)
    out = []
    for name, a, b in pairs:
        if a not in settings or b not in settings:
            continue
        i, j = settings.index(a), settings.index(b)
        d = paired_difference(reps[i], reps[j], points[i], points[j], n=nseed, alpha=alpha)
        row = {"name": name, "a": a, "b": b, "rate_a": float(points[i]),
               "rate_b": float(points[j]), "diff": d.value, "lo": d.lo, "hi": d.hi,
               "n_seeds": nseed}
        if measure != "success":
            row.update(name=f"{name} ({measure.replace('_', ' ')})", measure=measure)
        out.append(row)
    return out


def factor_effects(outcomes: pd.DataFrame, *, baseline: str = BASELINE, n_boot: int = 1000,
                   alpha: float = 0.05, rng: RngLike = 0,
                   measure: str = "success") -> list[FactorEffect]:
    """Each setting's pooled mean of ``measure`` (``rate``: the success rate, or the mean
    final distance in m), its effect against ``baseline`` (paired by seed and episode) and
    its rank with ties, best first (a smaller distance is better). Same ``rng``, same
    numbers."""
    from realgap.stats import paired_difference, rank_with_ties

    settings, points, reps, nseed = paired_replicates(outcomes, n_boot, rng, measure)
    if baseline not in settings:
        raise DataError(f"dr outcomes: no {baseline!r} setting to measure effects against "
                        f"(settings: {settings})")
    base = settings.index(baseline)
    ranks = {e.name: e for e in rank_with_ties(settings, points, reps, alpha=alpha,
                                               higher_is_better=MEASURES[measure])}
    out = []
    for i, s in enumerate(settings):
        d = paired_difference(reps[i], reps[base], points[i], points[base], n=nseed, alpha=alpha)
        out.append(FactorEffect(s, float(points[i]), d.value, d.lo, d.hi, ranks[s].rank,
                                ranks[s].tied_with))
    sign = -1.0 if MEASURES[measure] else 1.0
    return sorted(out, key=lambda e: (e.rank, sign * e.rate))


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
