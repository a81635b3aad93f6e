"""Layouts of factorized-evaluation runs: ``evaluate`` (``realgap evaluate``) and
``protocol-summary`` (``realgap protocol summarize``, counts from elsewhere).

An ``evaluate`` run, one policy on one protocol:

- ``subjects``: the policy (``kind="policy"``, ``meta`` = ``{"task", **policy config}``).
- ``scores``: one ``success_rate`` row per condition, in protocol order, ``group`` = the
  condition, ``value`` = k/n, ``lo``/``hi`` = 95% Wilson, ``n`` = trials, ``extra`` =
  ``{"successes", "trials", "factor", "value", "task", "base", "order"}`` (``order`` = the
  condition's place in the protocol); then the ``group="pooled"`` row, sum k / sum n.
- ``outcomes``: one row per trial (condition, trial, seed, success, ret, length, factors);
  the same seeds are played in every condition.
- ``runs.config``: ``protocol``, ``protocol_version``, ``task``, ``policy``, ``trials``, ...

A ``protocol-summary`` run: one subject per setting (``kind="setting"``); ``success_rate``
rows per (setting, condition) and ``pooled`` rows, ``extra`` as above plus the grouping keys
of the counts file and ``scope`` on pooled rows (``"group"`` or ``"setting"``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from realgap.errors import DataError
from realgap.store.common import (
    POLICY_SUBJECT,
    SUCCESS_RATE,
    Outcome,
    extra_of,
    integer,
    num,
    read_outcomes,
    run_info,
    score_rows,
    subject_metas,
    write_outcomes,
)
from realgap.store.db import ResultsDB, Score

RUN_KIND = "evaluate"
SUMMARY_KIND = "protocol-summary"
#: ``group`` of a pooled row (sum k / sum n over conditions).
POOLED = "pooled"
#: The name of the base condition (any case).
BASE = "base"
#: ``subjects.kind`` of a setting in a summary run.
SETTING_SUBJECT = "setting"


@dataclass(frozen=True)
class ConditionRate:
    """``successes`` of ``trials`` under one condition (or pooled), rate, 95% Wilson [lo, hi].

    ``factor``: the factor the condition varies (``"base"`` for the base condition, None for
    a pooled row); ``value``: its level as given by the protocol."""

    name: str
    factor: str | None
    value: Any
    successes: int
    trials: int
    rate: float
    lo: float
    hi: float

    @property
    def base(self) -> bool:
        return self.factor == BASE or self.name.lower() == BASE


@dataclass(frozen=True)
class EvaluationRecord:
    """One ``evaluate`` run: ``conditions`` in protocol order, ``pooled``, every trial."""

    protocol: str
    protocol_version: str
    policy: str
    task: str
    conditions: tuple[ConditionRate, ...]
    pooled: ConditionRate
    outcomes: tuple[Outcome, ...]
    config: Mapping[str, Any] = field(default_factory=dict)
    policy_meta: Mapping[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    created: str = ""

    def success_matrix(self, conditions: Sequence[str] | None = None
                       ) -> tuple[list[int], list[str], np.ndarray]:
        """``(seeds, conditions, S)`` with ``S (n_seeds, n_conditions)`` float 0/1: the
        success of the trial played with each seed under each condition (protocol order).

        Only seeds played under every condition are kept (a protocol plays the same seeds
        in each condition, so normally none is dropped); no outcomes -> ``S`` of 0 rows.
        """
        names = list(conditions) if conditions is not None else [c.name for c in self.conditions]
        by_cond: dict[str, dict[int, bool]] = {c: {} for c in names}
        for o in self.outcomes:
            if o.condition in by_cond:
                by_cond[o.condition].setdefault(o.seed, o.success)
        common = set.intersection(*(set(d) for d in by_cond.values())) if names else set()
        seeds = sorted(common)
        mat = np.array([[float(by_cond[c][s]) for c in names] for s in seeds],
                       dtype=np.float64).reshape(len(seeds), len(names))
        return seeds, names, mat


def _rate(r: Mapping[str, Any], name: str) -> ConditionRate:
    ex = extra_of(r["extra"])
    nan = float("nan")
    return ConditionRate(name, None if ex.get("factor") is None else str(ex["factor"]),
                         ex.get("value"), integer(ex.get("successes")) or 0,
                         integer(ex.get("trials", r["n"])) or 0,
                         nan if num(r["value"]) is None else float(r["value"]),
                         nan if num(r["lo"]) is None else float(r["lo"]),
                         nan if num(r["hi"]) is None else float(r["hi"]))


def write_evaluation(db: ResultsDB, rec: EvaluationRecord) -> EvaluationRecord:
    """Store ``rec`` as a finished ``evaluate`` run; returns it with its ``run_id``."""
    run_id = db.new_run(RUN_KIND, {"protocol": rec.protocol, "protocol_version": rec.protocol_version,
                                   "task": rec.task, "policy": rec.policy, **dict(rec.config)},
                        name=f"{rec.protocol}: {rec.policy}")
    db.add_subject(run_id, rec.policy, POLICY_SUBJECT, {"task": rec.task, **dict(rec.policy_meta)})
    scores = [Score(rec.policy, SUCCESS_RATE, c.rate, c.lo, c.hi, c.trials, c.name,
                    {"successes": c.successes, "trials": c.trials, "factor": c.factor,
                     "value": c.value, "task": rec.task, "base": c.base, "order": i})
              for i, c in enumerate(rec.conditions)]
    p = rec.pooled
    scores.append(Score(rec.policy, SUCCESS_RATE, p.rate, p.lo, p.hi, p.trials, POOLED,
                        {"successes": p.successes, "trials": p.trials, "factor": None,
                         "task": rec.task, "base": False}))
    db.add_scores(run_id, scores)
    write_outcomes(db, run_id, rec.policy, rec.outcomes)
    db.finish_run(run_id)
    return replace(rec, run_id=run_id)


def read_evaluation(db: Any, run_id: str) -> EvaluationRecord:
    """The ``evaluate`` run ``run_id``, conditions in protocol order (``extra.order``; runs
    written before it existed keep their written order)."""
    info = run_info(db, run_id)
    sc = score_rows(db, run_id)
    sc = sc[sc["metric"] == SUCCESS_RATE]
    pooled = sc[sc["grp"] == POOLED]
    if pooled.empty:
        raise DataError(f"{db.path}: evaluate run {run_id} has no pooled {SUCCESS_RATE} row; it "
                        "was interrupted or edited: rerun `realgap evaluate` with a new --out")
    rows = sc[sc["grp"] != POOLED].to_dict(orient="records")
    rows = sorted(enumerate(rows), key=lambda ir: (integer(extra_of(ir[1]["extra"]).get("order"))
                                                   if extra_of(ir[1]["extra"]).get("order") is not None
                                                   else ir[0], ir[0]))
    conds = tuple(_rate(r, str(r["grp"])) for _, r in rows)
    prow = pooled.iloc[0].to_dict()
    policy = str(prow["subject"])
    task = str(extra_of(prow["extra"]).get("task") or info.config.get("task") or "")
    return EvaluationRecord(str(info.config.get("protocol", "")),
                            str(info.config.get("protocol_version", "")), policy, task, conds,
                            _rate(prow, POOLED), read_outcomes(db, run_id).get(policy, ()),
                            info.config, subject_metas(db, run_id, POLICY_SUBJECT).get(policy, {}),
                            run_id, info.created)


# -- protocol-summary ---------------------------------------------------------------------
@dataclass(frozen=True)
class SummaryRow:
    """One (setting, condition) or pooled row of a counts summary; ``keys`` holds the
    grouping-key values (``task``, ...); ``scope`` is ``""`` for a condition row, else
    ``"group"`` or ``"setting"``."""

    setting: str
    rate: ConditionRate
    keys: Mapping[str, Any]
    scope: str = ""


@dataclass(frozen=True)
class SummaryRecord:
    """A ``protocol-summary`` run: counts from ``source`` at level ``1 - alpha``."""

    source: str
    alpha: float
    keys: tuple[str, ...]
    conditions: tuple[SummaryRow, ...]
    pooled: tuple[SummaryRow, ...]
    run_id: str | None = None


def write_summary(db: ResultsDB, rec: SummaryRecord, *, name: str = "") -> SummaryRecord:
    """Store ``rec`` as a finished ``protocol-summary`` run."""
    def extra(row: SummaryRow) -> dict[str, Any]:
        c = row.rate
        e = {"successes": c.successes, "trials": c.trials, "factor": c.factor,
             "task": row.keys.get("task"), "base": c.base if not row.scope else False}
        e.update({k: v for k, v in row.keys.items() if k != "task"})
        if row.scope:
            e["scope"] = row.scope
        return e

    run_id = db.new_run(SUMMARY_KIND, {"source": rec.source, "alpha": rec.alpha,
                                       "keys": list(rec.keys)}, name=name or f"summary of {rec.source}")
    for setting in dict.fromkeys(r.setting for r in rec.conditions):
        db.add_subject(run_id, setting, SETTING_SUBJECT, {"source": rec.source})
    scores = [Score(r.setting, SUCCESS_RATE, r.rate.rate, r.rate.lo, r.rate.hi, r.rate.trials,
                    r.rate.name, extra(r)) for r in rec.conditions]
    scores += [Score(r.setting, SUCCESS_RATE, r.rate.rate, r.rate.lo, r.rate.hi, r.rate.trials,
                     POOLED, extra(r)) for r in rec.pooled]
    db.add_scores(run_id, scores)
    db.finish_run(run_id)
    return replace(rec, run_id=run_id)


def read_summary(db: Any, run_id: str) -> SummaryRecord:
    """The ``protocol-summary`` run ``run_id`` (rows in written order)."""
    info = run_info(db, run_id)
    keys = tuple(str(k) for k in info.config.get("keys") or ())
    sc = score_rows(db, run_id)
    sc = sc[sc["metric"] == SUCCESS_RATE]
    conds: list[SummaryRow] = []
    pooled: list[SummaryRow] = []
    for r in sc.to_dict(orient="records"):
        ex = extra_of(r["extra"])
        kv = {k: ex.get(k) for k in keys}
        if r["grp"] == POOLED:
            pooled.append(SummaryRow(str(r["subject"]), _rate(r, POOLED), kv,
                                     str(ex.get("scope") or "setting")))
        else:
            conds.append(SummaryRow(str(r["subject"]), _rate(r, str(r["grp"])), kv))
    return SummaryRecord(str(info.config.get("source", "")), float(info.config.get("alpha", 0.05)),
                         keys, tuple(conds), tuple(pooled), run_id)


def condition_names(records: Sequence[EvaluationRecord]) -> list[str]:
    """Condition names of several evaluations of one protocol, in protocol order (the first
    record's order, then any condition only later records have)."""
    return list(dict.fromkeys(c.name for r in records for c in r.conditions))


__all__ = ["BASE", "POOLED", "RUN_KIND", "SETTING_SUBJECT", "SUMMARY_KIND", "ConditionRate",
           "EvaluationRecord", "SummaryRecord", "SummaryRow", "condition_names",
           "read_evaluation", "read_summary", "write_evaluation", "write_summary"]
