"""Layout of a ``correlate`` run (``realgap correlate``): does sim success predict real success?

- ``subjects``: ``sim-vs-real`` (``kind="correlation"``, meta = the two sources).
- ``scores`` of subject ``sim-vs-real``, ``group`` = task or ``"pooled"``, ``n`` = policies:
  ``pearson_r`` (``lo``/``hi`` = Fisher-z interval), ``spearman_rho`` and ``mmrv`` (``lo``/``hi`` =
  bootstrap interval over policies when computed, else NULL); ``extra`` = ``convention``,
  ``p_value``, ``alpha`` and the interval's ``interval``/``n_boot``.
- one ``sim_success_rate`` and one ``real_success_rate`` row per (policy, task) (subject =
  policy, ``group`` = task), ``extra`` = ``{"successes", "trials"}`` when counts are known.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from realgap.store.common import extra_of, integer, num, run_info, score_rows
from realgap.store.db import ResultsDB, Score

RUN_KIND = "correlate"
SUBJECT = "sim-vs-real"
SUBJECT_KIND = "correlation"
POOLED = "pooled"
PEARSON, SPEARMAN, MMRV = "pearson_r", "spearman_rho", "mmrv"
STATISTICS: tuple[str, ...] = (PEARSON, SPEARMAN, MMRV)
SIM_RATE, REAL_RATE = "sim_success_rate", "real_success_rate"


@dataclass(frozen=True)
class CorrelationStat:
    """One statistic over ``n`` policies in ``group`` (a task or ``"pooled"``)."""

    group: str
    metric: str
    value: float
    lo: float
    hi: float
    n: int
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RatePoint:
    """One policy (in one task): its sim and real success rates, with counts when known."""

    policy: str
    task: str
    sim: float
    real: float
    sim_counts: tuple[int, int] | None = None
    real_counts: tuple[int, int] | None = None


@dataclass(frozen=True)
class CorrelationRecord:
    """A ``correlate`` run: ``stats`` per group and metric, the ``points`` behind them."""

    sim: str
    real: str
    alpha: float
    convention: str
    stats: tuple[CorrelationStat, ...]
    points: tuple[RatePoint, ...]
    name: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)
    run_id: str | None = None

    def groups(self) -> list[str]:
        return list(dict.fromkeys(s.group for s in self.stats))

    def stat(self, group: str, metric: str) -> CorrelationStat | None:
        return next((s for s in self.stats if s.group == group and s.metric == metric), None)


def _counts_extra(c: tuple[int, int] | None) -> dict[str, int]:
    return {} if c is None else {"successes": int(c[0]), "trials": int(c[1])}


def write_correlation(db: ResultsDB, rec: CorrelationRecord) -> CorrelationRecord:
    """Store ``rec`` as a finished ``correlate`` run; returns it with its ``run_id``."""
    run_id = db.new_run(RUN_KIND, {"sim": rec.sim, "real": rec.real, "alpha": rec.alpha,
                                   "convention": rec.convention, **dict(rec.config)},
                        name=rec.name or f"{rec.sim} vs {rec.real}")
    db.add_subject(run_id, SUBJECT, SUBJECT_KIND, {"sim": rec.sim, "real": rec.real})
    scores = [Score(SUBJECT, s.metric, s.value, s.lo, s.hi, s.n, s.group,
                    {"convention": rec.convention, "alpha": rec.alpha, **dict(s.extra)})
              for s in rec.stats]
    for p in rec.points:
        scores += [Score(p.policy, SIM_RATE, p.sim, group=p.task, extra=_counts_extra(p.sim_counts)),
                   Score(p.policy, REAL_RATE, p.real, group=p.task,
                         extra=_counts_extra(p.real_counts))]
    db.add_scores(run_id, scores)
    db.finish_run(run_id)
    return replace(rec, run_id=run_id)


def read_correlation(db: Any, run_id: str) -> CorrelationRecord:
    """The ``correlate`` run ``run_id``."""
    info = run_info(db, run_id)
    sc = score_rows(db, run_id)
    nan = float("nan")
    stats = []
    for r in sc[sc["subject"] == SUBJECT].to_dict(orient="records"):
        ex = extra_of(r["extra"])
        stats.append(CorrelationStat(str(r["grp"]), str(r["metric"]),
                                     nan if num(r["value"]) is None else float(r["value"]),
                                     nan if num(r["lo"]) is None else float(r["lo"]),
                                     nan if num(r["hi"]) is None else float(r["hi"]),
                                     integer(r["n"]) or 0,
                                     {k: v for k, v in ex.items() if k not in ("convention", "alpha")}))
    pts: dict[tuple[str, str], dict[str, Any]] = {}
    for r in sc[sc["metric"].isin([SIM_RATE, REAL_RATE])].to_dict(orient="records"):
        d = pts.setdefault((str(r["subject"]), str(r["grp"])), {})
        side = "sim" if r["metric"] == SIM_RATE else "real"
        d[side] = nan if num(r["value"]) is None else float(r["value"])
        ex = extra_of(r["extra"])
        if ex.get("trials") is not None:
            d[f"{side}_counts"] = (integer(ex.get("successes")) or 0, integer(ex["trials"]) or 0)
    points = tuple(RatePoint(pol, task, d.get("sim", nan), d.get("real", nan),
                             d.get("sim_counts"), d.get("real_counts"))
                   for (pol, task), d in pts.items())
    conv = str(info.config.get("convention") or next(
        (extra_of(r).get("convention") for r in sc["extra"]), "") or "")
    return CorrelationRecord(str(info.config.get("sim", "")), str(info.config.get("real", "")),
                             float(info.config.get("alpha", 0.05)), conv, tuple(stats), points,
                             info.name, info.config, run_id)


__all__ = ["MMRV", "PEARSON", "POOLED", "REAL_RATE", "RUN_KIND", "SIM_RATE", "SPEARMAN",
           "STATISTICS", "SUBJECT", "CorrelationRecord", "CorrelationStat", "RatePoint",
           "read_correlation", "write_correlation"]
