"""Layout of a ``scores-study`` run (``realgap study scores``): offline scores against
closed-loop transfer.

- ``subjects``: one per encoder (``kind="encoder"``, meta = its training seeds), and one per
  correlated offline score (``score:<metric>``, ``kind="offline-score"``).
- ``outcomes`` (subject = encoder): one row per played episode; ``condition`` = domain,
  ``trial`` = index of the initial state, ``seed`` = its reset seed, ``success``, ``ret``,
  ``length``; ``factors`` = ``{"policy_seed", "final_distance"}`` (m).
- ``scores`` of an encoder, ``group`` = domain: ``offline:<metric>`` (the gap run's point
  and interval for that real-proxy domain), ``success_rate`` (``lo``/``hi`` = Wilson,
  ``extra`` = successes/trials), ``final_distance`` (m) and ``success_drop`` (sim minus
  domain).
- ``scores`` of ``score:<metric>``, ``group`` = real domain: one row per statistic
  (``pearson_r``, ``spearman_rho``, ``mmrv``) and target, ``extra`` = ``{"target",
  "n_boot"}``; ``lo``/``hi`` = the hierarchical bootstrap interval
  (:mod:`realgap.study.analysis`). The run's config holds the bootstrap's seed and size,
  so the correlation can be recomputed from the stored outcomes and scores.

Layout of a ``dr-study`` run (``realgap study dr``): which randomization factor matters
(vla-domain-randomization-study.txt, 4.2-4.4, Tables 1-2).

- ``runs.config``: the study config and its timings, as the job gives them.
- ``subjects``: one per data setting (``kind="dr-setting"``, meta = the setting's
  description, ``{"factors", "granularity", "fidelity", "physics", "finetune",
  "frameset_hash", "demo_success"}``, plus ``"policy_seeds"``: its training seeds); one per
  comparison (``comparison:<name>``, ``kind="dr-comparison"``, meta = ``{"a", "b"}``).
- ``outcomes`` (subject = setting): one row per played episode; ``condition`` = protocol
  condition (``base``, ``BG-lib3``, ...), ``trial`` = the row's position in the study's
  outcome table (the table reads back in its order), ``seed`` = the reset seed (the
  initial state: the same in every setting and condition), ``success``, ``ret``,
  ``length``; ``factors`` = ``{"policy_seed", "final_distance", "factor"}`` (distance in
  m; factor = the condition's protocol factor, ``base`` for base).
- ``scores`` of a setting: ``success_rate`` per ``group`` = condition (``lo``/``hi`` =
  Wilson at the config's ``alpha``, default 0.05; ``extra`` = ``{successes, trials,
  factor}``) and ``group = "pooled"`` (seeds x real-proxy conditions x episodes pooled as
  trials: every condition but ``sim``, the nominal simulator's in-distribution check,
  which is stored as its own condition and pooled with nothing); ``final_distance``
  (pooled mean over the same episodes, m, ``n`` = finite distances); ``effect_vs_Clean``
  (``group="pooled"``): the pooled rate minus Clean's with the paired bootstrap interval
  (seeds and episodes redrawn once for every setting), ``n`` = seeds, ``extra`` =
  ``{rate, rank, tied_with}``.
- ``scores`` of ``comparison:<name>``: ``success_diff`` (``group="pooled"``) = rate(a) -
  rate(b) with its paired interval, ``n`` = seeds, ``extra`` = ``{a, b, rate_a, rate_b}``
  (and any further keys the job gave).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from realgap.store.common import extra_of, integer, num, run_info, score_rows
from realgap.store.db import ResultsDB, Score

RUN_KIND = "scores-study"
ENCODER_SUBJECT = "encoder"
SCORE_SUBJECT = "offline-score"
OFFLINE_PREFIX = "offline:"
SCORE_PREFIX = "score:"
SUCCESS_RATE, FINAL_DISTANCE, SUCCESS_DROP = "success_rate", "final_distance", "success_drop"


@dataclass(frozen=True)
class CorrelationRow:
    """One offline score against one closed-loop target in one real-proxy domain.

    ``value``/``lo``/``hi`` of one ``statistic`` (``pearson_r``, ``spearman_rho``,
    ``mmrv``) over ``n`` encoders; the interval is the percentile interval of ``n_boot``
    hierarchical bootstrap replicates (:mod:`realgap.study.analysis`).
    """

    score: str
    target: str
    domain: str
    statistic: str
    value: float
    lo: float
    hi: float
    n: int
    n_boot: int

    def as_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                for k, v in asdict(self).items()}


@dataclass(frozen=True)
class ScoresStudyRecord:
    """A scores study: config, the outcome table, offline scores (real domain -> encoder ->
    metric -> ``{value, lo, hi}``), the correlation rows and the per-encoder summary."""

    config: Mapping[str, Any]
    outcomes: pd.DataFrame
    scores: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float | None]]]]
    correlations: tuple[Any, ...]
    summary: tuple[Mapping[str, Any], ...]
    frameset_hash: str | None = None
    run_id: str | None = None
    created: str = ""


def _f(x: Any) -> float:
    v = num(x)
    return float("nan") if v is None else v


def write_scores_study(db: ResultsDB, rec: ScoresStudyRecord) -> ScoresStudyRecord:
    """Store ``rec`` as a finished ``scores-study`` run; returns it with its ``run_id``."""
    cfg = dict(rec.config)
    run_id = db.new_run(RUN_KIND, cfg, name=f"study scores ({cfg.get('preset', 'custom')})",
                        frameset_hash=rec.frameset_hash)
    oc = rec.outcomes
    for enc in dict.fromkeys(oc["encoder"].astype(str)):
        seeds = sorted({int(s) for s in oc.loc[oc["encoder"] == enc, "seed"]})
        db.add_subject(run_id, enc, ENCODER_SUBJECT, {"seeds": seeds})
        sub = oc[oc["encoder"] == enc]
        db.add_outcomes(run_id, enc, [
            {"condition": str(r.domain), "trial": i, "seed": int(r.episode),
             "success": bool(r.success), "ret": float(r.ret) if "ret" in sub else None,
             "length": int(r.length) if "length" in sub else None,
             "factors": {"policy_seed": int(r.seed),
                         "final_distance": None if not np.isfinite(r.final_distance)
                         else float(r.final_distance)}}
            for i, r in enumerate(sub.itertuples())])
    scores: list[Score] = []
    for dom, by_enc in rec.scores.items():
        for enc, by_metric in by_enc.items():
            for metric, est in by_metric.items():
                scores.append(Score(enc, OFFLINE_PREFIX + metric, _f(est.get("value")),
                                    _f(est.get("lo")), _f(est.get("hi")), group=dom))
    for s in rec.summary:
        scores += [
            Score(s["encoder"], SUCCESS_RATE, s["success_rate"], s["wilson_lo"], s["wilson_hi"],
                  int(s["trials"]), s["domain"],
                  {"successes": int(s["successes"]), "trials": int(s["trials"])}),
            Score(s["encoder"], FINAL_DISTANCE, s["final_distance"], n=int(s["trials"]),
                  group=s["domain"]),
            Score(s["encoder"], SUCCESS_DROP, s["success_drop"], n=int(s["trials"]),
                  group=s["domain"])]
    for name in dict.fromkeys(r.score for r in rec.correlations):
        db.add_subject(run_id, SCORE_PREFIX + name, SCORE_SUBJECT, {"metric": name})
    scores += [Score(SCORE_PREFIX + r.score, r.statistic, r.value, r.lo, r.hi, r.n, r.domain,
                     {"target": r.target, "n_boot": r.n_boot}) for r in rec.correlations]
    db.add_scores(run_id, scores)
    db.finish_run(run_id)
    return replace(rec, run_id=run_id)


def read_scores_study(db: Any, run_id: str) -> ScoresStudyRecord:
    """The ``scores-study`` run ``run_id``."""
    info = run_info(db, run_id)
    df = db.query("SELECT * FROM outcomes WHERE run_id = ? ORDER BY rowid", [run_id])
    rows = []
    for r in df.to_dict(orient="records"):
        ex = extra_of(r["factors"])
        rows.append({"encoder": str(r["subject"]), "seed": integer(ex.get("policy_seed")) or 0,
                     "domain": str(r["condition"]), "episode": integer(r["seed"]) or 0,
                     "success": bool(r["success"]), "final_distance": _f(ex.get("final_distance")),
                     "ret": _f(r["ret"]), "length": integer(r["length"]) or 0})
    outcomes = pd.DataFrame(rows)
    sc = score_rows(db, run_id)
    scores: dict[str, dict[str, dict[str, dict[str, float | None]]]] = {}
    corr = []
    summary: dict[tuple[str, str], dict[str, Any]] = {}
    for r in sc.to_dict(orient="records"):
        subj, metric, grp = str(r["subject"]), str(r["metric"]), str(r["grp"])
        if metric.startswith(OFFLINE_PREFIX):
            scores.setdefault(grp, {}).setdefault(subj, {})[metric[len(OFFLINE_PREFIX):]] = {
                "value": num(r["value"]), "lo": num(r["lo"]), "hi": num(r["hi"])}
        elif subj.startswith(SCORE_PREFIX):
            ex = extra_of(r["extra"])
            corr.append(CorrelationRow(subj[len(SCORE_PREFIX):], str(ex.get("target")), grp,
                                       metric, _f(r["value"]), _f(r["lo"]), _f(r["hi"]),
                                       integer(r["n"]) or 0, integer(ex.get("n_boot")) or 0))
        elif metric in (SUCCESS_RATE, FINAL_DISTANCE, SUCCESS_DROP):
            d = summary.setdefault((subj, grp), {"encoder": subj, "domain": grp})
            if metric == SUCCESS_RATE:
                ex = extra_of(r["extra"])
                d.update({"successes": integer(ex.get("successes")) or 0,
                          "trials": integer(ex.get("trials")) or 0,
                          "success_rate": _f(r["value"]), "wilson_lo": _f(r["lo"]),
                          "wilson_hi": _f(r["hi"])})
            else:
                d[metric] = _f(r["value"])
    return ScoresStudyRecord(dict(info.config), outcomes, scores, tuple(corr),
                             tuple(summary.values()), info.frameset_hash, run_id, info.created)


def latest_scores_study(db: Any) -> str | None:
    """The newest finished ``scores-study`` run, or None."""
    return db.latest_run(RUN_KIND)



# -- ``dr-study`` runs (``realgap study dr``) --------------------------------------------------
# (layout: the module docstring)

DR_RUN_KIND = "dr-study"
DR_SETTING_SUBJECT = "dr-setting"
DR_COMPARISON_SUBJECT = "dr-comparison"
COMPARISON_PREFIX = "comparison:"
#: ``group`` of the numbers that pool every real-proxy condition.
DR_POOLED = "pooled"
#: The condition played in the nominal simulator: an in-distribution check, kept out of the
#: pooled real-proxy numbers (the reference's Table 1 reports Sim and Real apart).
DR_SIM_CONDITION = "sim"
#: The setting every effect is measured against (the reference's "Clean": no randomization).
DR_BASELINE = "Clean"
DR_EFFECT_METRIC = f"effect_vs_{DR_BASELINE}"
#: The same for the mean final distance to the target (m; negative = closer than Clean).
DR_DISTANCE_EFFECT_METRIC = f"final_distance_effect_vs_{DR_BASELINE}"
DR_DIFF_METRIC = "success_diff"
#: Columns of :attr:`DrStudyRecord.outcomes`, with the dtype each reads back as (``"str"``:
#: pandas' default for text, ``str`` from pandas 3 and ``object`` before).
DR_OUTCOME_DTYPES: dict[str, str] = {
    "setting": "str", "seed": "int64", "condition": "str", "factor": "str",
    "episode": "int64", "success": "bool", "final_distance": "float64", "ret": "float64",
    "length": "int64"}
_SEEDS_KEY = "policy_seeds"
_COMPARISON_NUMBERS = ("name", "diff", "lo", "hi", "n_seeds")


@dataclass(frozen=True)
class FactorEffect:
    """A setting's pooled success rate and its paired difference from the baseline.

    ``rate``: pooled success rate in [0, 1]; ``effect``: ``rate - rate(Clean)`` with the
    paired percentile interval ``[lo, hi]``; ``rank`` (1 = best) and ``tied_with`` (the
    settings it is not told apart from) from :func:`realgap.stats.rank_with_ties`.
    """

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


@dataclass(frozen=True, eq=False)
class DrStudyRecord:
    """A factor study: config (+ timings), the outcome table, the settings' descriptions,
    the factor effects (best first) and the comparisons.

    ``outcomes``: one row per played episode, columns :data:`DR_OUTCOME_DTYPES`
    (``setting``, ``seed`` = training seed, ``condition`` = protocol condition, ``factor``
    = its factor, ``episode`` = reset seed, ``success``, ``final_distance`` (m), ``ret``,
    ``length``). ``settings``: setting -> ``{"factors", "granularity", "fidelity",
    "physics", "finetune", "frameset_hash", "demo_success"}``. ``comparisons``: dicts
    ``{"name", "a", "b", "rate_a", "rate_b", "diff", "lo", "hi", "n_seeds"}``. Two records
    are equal when every field is (the outcome table with its dtypes; effects compared as
    :meth:`FactorEffect.as_dict`).
    """

    config: dict[str, Any]
    outcomes: pd.DataFrame
    settings: dict[str, dict[str, Any]]
    effects: tuple[FactorEffect, ...]
    comparisons: tuple[dict[str, Any], ...]
    run_id: str | None = None
    #: the effects on the mean final distance (m; ``rate`` = the setting's mean final
    #: distance, best = smallest first); empty in records written before it existed
    distance_effects: tuple[Any, ...] = ()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DrStudyRecord):
            return NotImplemented
        return (self.config == other.config and self.settings == other.settings
                and self.run_id == other.run_id
                and list(self.outcomes.columns) == list(other.outcomes.columns)
                and list(self.outcomes.dtypes) == list(other.outcomes.dtypes)
                and self.outcomes.reset_index(drop=True).equals(other.outcomes.reset_index(drop=True))
                and [e.as_dict() for e in self.effects] == [e.as_dict() for e in other.effects]
                and ([e.as_dict() for e in self.distance_effects]
                     == [e.as_dict() for e in other.distance_effects])
                and _same(list(self.comparisons), list(other.comparisons)))

    __hash__ = None  # type: ignore[assignment]  # holds a DataFrame and dicts


def _same(a: Any, b: Any) -> bool:
    """Equality where NaN equals NaN (an undefined interval reads back undefined)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (np.isnan(a) and np.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _plain(x: Any) -> Any:
    """JSON-safe: NaN/inf -> None (duckdb refuses NaN in JSON text), numpy -> Python."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


def _check_dr(rec: DrStudyRecord) -> pd.DataFrame:
    """The outcome table with its columns coerced, or a DataError naming what is wrong."""
    from realgap.errors import DataError

    oc = rec.outcomes
    missing = [c for c in DR_OUTCOME_DTYPES if c not in oc.columns]
    if missing:
        raise DataError(f"dr-study outcomes: missing columns {missing}; expected "
                        f"{list(DR_OUTCOME_DTYPES)}")
    unknown = sorted(set(oc["setting"].astype(str)) - set(rec.settings))
    if unknown:
        raise DataError(f"dr-study outcomes: settings {unknown} have no description in "
                        f"settings (described: {sorted(rec.settings)})")
    try:
        out = pd.DataFrame({c: oc[c].astype(t)
                            for c, t in DR_OUTCOME_DTYPES.items()})
    except (TypeError, ValueError) as exc:
        raise DataError(f"dr-study outcomes: a column has the wrong type ({exc})") from None
    return out.reset_index(drop=True)


def _dr_scores(oc: pd.DataFrame, rec: DrStudyRecord, alpha: float) -> list[Score]:
    from realgap.stats import wilson_interval

    scores: list[Score] = []
    for name in rec.settings:
        sub = oc[oc["setting"] == name]
        if sub.empty:
            continue
        for cond, g in sub.groupby("condition", sort=False):
            k, n = int(g["success"].sum()), len(g)
            lo, hi = wilson_interval(k, n, alpha)
            scores.append(Score(name, SUCCESS_RATE, k / n, lo, hi, n, str(cond),
                                {"successes": k, "trials": n, "factor": str(g["factor"].iloc[0])}))
        sub = sub[sub["condition"] != DR_SIM_CONDITION]
        if sub.empty:
            continue
        k, n = int(sub["success"].sum()), len(sub)
        lo, hi = wilson_interval(k, n, alpha)
        scores.append(Score(name, SUCCESS_RATE, k / n, lo, hi, n, DR_POOLED,
                            {"successes": k, "trials": n}))
        d = sub["final_distance"].to_numpy(dtype=float)
        d = d[np.isfinite(d)]
        if d.size:
            scores.append(Score(name, FINAL_DISTANCE, float(d.mean()), n=int(d.size),
                                group=DR_POOLED))
    for metric, effects in ((DR_EFFECT_METRIC, rec.effects),
                            (DR_DISTANCE_EFFECT_METRIC, rec.distance_effects)):
        for e in effects:
            seeds = oc.loc[oc["setting"] == e.setting, "seed"].nunique()
            scores.append(Score(str(e.setting), metric, _f(e.effect), _f(e.lo), _f(e.hi),
                                int(seeds), DR_POOLED,
                                _plain({"rate": float(e.rate), "rank": int(e.rank),
                                        "tied_with": [str(t) for t in e.tied_with]})))
    for c in rec.comparisons:
        extra = _plain({k: v for k, v in c.items() if k not in _COMPARISON_NUMBERS})
        scores.append(Score(COMPARISON_PREFIX + str(c["name"]), DR_DIFF_METRIC, _f(c.get("diff")),
                            _f(c.get("lo")), _f(c.get("hi")), integer(c.get("n_seeds")),
                            DR_POOLED, extra))
    return scores


def write_dr_study(db: ResultsDB, rec: DrStudyRecord) -> DrStudyRecord:
    """Store ``rec`` as a finished ``dr-study`` run; returns it with its ``run_id``.

    The outcome table is checked (columns, described settings, types) before the run is
    opened; a write that fails half-way marks the run ``failed`` (it is never shown as a
    finished study).
    """
    oc = _check_dr(rec)
    cfg = dict(rec.config)
    alpha = float(cfg.get("alpha", 0.05))
    scores = _dr_scores(oc, rec, alpha)
    run_id = db.new_run(DR_RUN_KIND, cfg, name=f"study dr ({cfg.get('preset', 'custom')})")
    try:
        for name, desc in rec.settings.items():
            seeds = sorted({int(s) for s in oc.loc[oc["setting"] == name, "seed"]})
            db.add_subject(run_id, name, DR_SETTING_SUBJECT, {**_plain(dict(desc)),
                                                              _SEEDS_KEY: seeds})
        for name in rec.settings:
            sub = oc[oc["setting"] == name]
            db.add_outcomes(run_id, name, [
                {"condition": r.condition, "trial": int(i), "seed": int(r.episode),
                 "success": bool(r.success), "ret": float(r.ret), "length": int(r.length),
                 "factors": {"policy_seed": int(r.seed), "factor": r.factor,
                             "final_distance": _plain(float(r.final_distance))}}
                for i, r in zip(sub.index, sub.itertuples(index=False), strict=True)])
        for c in rec.comparisons:
            db.add_subject(run_id, COMPARISON_PREFIX + str(c["name"]), DR_COMPARISON_SUBJECT,
                           {"a": str(c.get("a")), "b": str(c.get("b"))})
        db.add_scores(run_id, scores)
    except BaseException:
        with contextlib.suppress(Exception):
            db.finish_run(run_id, "failed")
        raise
    db.finish_run(run_id)
    return replace(rec, run_id=run_id)


def read_dr_study(db: Any, run_id: str) -> DrStudyRecord:
    """The ``dr-study`` run ``run_id``: what :func:`write_dr_study` was given (the config and
    the settings as JSON gives them back: tuples read back as lists; the outcome table with
    the dtypes of :data:`DR_OUTCOME_DTYPES`, in its order)."""
    from realgap.errors import DataError

    info = run_info(db, run_id)
    if info.kind != DR_RUN_KIND:
        raise DataError(f"{db.path}: run {run_id} is a {info.kind!r} run, not a {DR_RUN_KIND!r} "
                        "run; `realgap report` lists the runs and their kinds")
    subs = db.subjects(run_id)
    settings: dict[str, dict[str, Any]] = {}
    for r in subs.itertuples():
        if r.kind == DR_SETTING_SUBJECT:
            meta = extra_of(r.meta)
            meta.pop(_SEEDS_KEY, None)
            settings[str(r.subject)] = meta
    df = db.query("SELECT * FROM outcomes WHERE run_id = ? ORDER BY trial, rowid", [run_id])
    rows = []
    for r in df.to_dict(orient="records"):
        ex = extra_of(r["factors"])
        rows.append({"setting": str(r["subject"]), "seed": integer(ex.get("policy_seed")) or 0,
                     "condition": str(r["condition"]), "factor": str(ex.get("factor", "")),
                     "episode": integer(r["seed"]) or 0, "success": bool(r["success"]),
                     "final_distance": _f(ex.get("final_distance")), "ret": _f(r["ret"]),
                     "length": integer(r["length"]) or 0})
    outcomes = pd.DataFrame(rows, columns=list(DR_OUTCOME_DTYPES)).astype(DR_OUTCOME_DTYPES)
    effects: dict[str, list[FactorEffect]] = {DR_EFFECT_METRIC: [], DR_DISTANCE_EFFECT_METRIC: []}
    comparisons = []
    for r in score_rows(db, run_id).to_dict(orient="records"):
        subj, metric, ex = str(r["subject"]), str(r["metric"]), extra_of(r["extra"])
        if metric in effects:
            effects[metric].append(FactorEffect(
                subj, _f(ex.get("rate")), _f(r["value"]), _f(r["lo"]), _f(r["hi"]),
                integer(ex.get("rank")) or 0, tuple(str(t) for t in ex.get("tied_with", []))))
        elif metric == DR_DIFF_METRIC and subj.startswith(COMPARISON_PREFIX):
            c = {"name": subj[len(COMPARISON_PREFIX):], **ex, "diff": _f(r["value"]),
                 "lo": _f(r["lo"]), "hi": _f(r["hi"]), "n_seeds": integer(r["n"]) or 0}
            for k in ("rate_a", "rate_b"):
                if k in c:
                    c[k] = _f(c[k])
            comparisons.append(c)
    return DrStudyRecord(dict(info.config), outcomes, settings, tuple(effects[DR_EFFECT_METRIC]),
                         tuple(comparisons), run_id,
                         tuple(effects[DR_DISTANCE_EFFECT_METRIC]))


def latest_dr_study(db: Any) -> str | None:
    """The newest finished ``dr-study`` run, or None."""
    return db.latest_run(DR_RUN_KIND)


__all__ = ["COMPARISON_PREFIX", "DR_BASELINE", "DR_DIFF_METRIC", "DR_EFFECT_METRIC",
           "DR_OUTCOME_DTYPES", "DR_POOLED", "DR_RUN_KIND", "DR_SIM_CONDITION", "RUN_KIND", "CorrelationRow",
           "DrStudyRecord", "FactorEffect", "ScoresStudyRecord", "latest_dr_study",
           "latest_scores_study", "read_dr_study", "read_scores_study", "write_dr_study",
           "write_scores_study"]
