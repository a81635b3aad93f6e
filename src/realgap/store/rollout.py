"""Layout of a ``rollout`` run (``realgap rollout``): one policy played for n episodes.

- ``subjects``: the policy (``kind="policy"``, ``meta`` = ``{"task", **policy config}``).
- ``scores``: one ``success_rate`` row, ``group=""``, ``value`` = k/n, ``lo``/``hi`` = 95%
  Wilson interval, ``n`` = episodes, ``extra`` = ``{"successes", "trials", "task"}``.
- ``outcomes``: one row per episode (condition ``""``), in play order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from realgap.errors import DataError
from realgap.store.common import (
    POLICY_SUBJECT,
    SUCCESS_RATE,
    Outcome,
    extra_of,
    integer,
    number,
    read_outcomes,
    run_info,
    score_rows,
    subject_metas,
    write_outcomes,
)
from realgap.store.db import ResultsDB, Score

RUN_KIND = "rollout"


@dataclass(frozen=True)
class RolloutRecord:
    """One rollout run: ``successes`` of ``trials`` episodes, rate and 95% Wilson [lo, hi]."""

    policy: str
    task: str
    successes: int
    trials: int
    rate: float
    lo: float
    hi: float
    outcomes: tuple[Outcome, ...]
    config: Mapping[str, Any] = field(default_factory=dict)
    policy_meta: Mapping[str, Any] = field(default_factory=dict)
    run_id: str | None = None


def write_rollout(db: ResultsDB, rec: RolloutRecord) -> RolloutRecord:
    """Store ``rec`` as a finished ``rollout`` run; returns it with its ``run_id``."""
    run_id = db.new_run(RUN_KIND, dict(rec.config), name=f"rollout {rec.policy}")
    db.add_subject(run_id, rec.policy, POLICY_SUBJECT, {"task": rec.task, **dict(rec.policy_meta)})
    write_outcomes(db, run_id, rec.policy, rec.outcomes)
    db.add_scores(run_id, [Score(rec.policy, SUCCESS_RATE, rec.rate, rec.lo, rec.hi, rec.trials, "",
                                 {"successes": rec.successes, "trials": rec.trials,
                                  "task": rec.task})])
    db.finish_run(run_id)
    return replace(rec, run_id=run_id)


def read_rollout(db: Any, run_id: str) -> RolloutRecord:
    """The ``rollout`` run ``run_id``; a run without its success row is a DataError."""
    info = run_info(db, run_id)
    sc = score_rows(db, run_id)
    sc = sc[sc["metric"] == SUCCESS_RATE]
    if sc.empty:
        raise DataError(f"{db.path}: rollout run {run_id} has no {SUCCESS_RATE} row; it was "
                        "interrupted or edited: rerun `realgap rollout` with a new --out")
    r = sc.iloc[0]
    ex = extra_of(r["extra"])
    policy = str(r["subject"])
    metas = subject_metas(db, run_id, POLICY_SUBJECT)
    trials = integer(ex.get("trials", r["n"])) or 0
    return RolloutRecord(policy, str(ex.get("task") or info.config.get("task") or ""),
                         integer(ex.get("successes")) or 0, trials,
                         number(r["value"]), number(r["lo"]), number(r["hi"]),
                         read_outcomes(db, run_id).get(policy, ()), info.config,
                         metas.get(policy, {}), run_id)


__all__ = ["RUN_KIND", "RolloutRecord", "read_rollout", "write_rollout"]
