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
"""

from __future__ import annotations

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


__all__ = ["RUN_KIND", "CorrelationRow", "ScoresStudyRecord", "latest_scores_study", "read_scores_study",
           "write_scores_study"]
