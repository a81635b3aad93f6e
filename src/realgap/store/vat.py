"""Layout of a ``vat`` run (``realgap vat``, Visual Alignment Testing,
visual-alignment-testing.txt III-C).

- ``subjects``: the policies ``pi_A``, ``pi_B``, ``pi_B'`` (``kind="policy"``, meta = checkpoint,
  task, encoder origin, head, epoch, final loss).
- ``scores`` (``group="vat"``): ``success_rate`` of ``pi_B`` and ``pi_B'`` (k/n in ``extra``,
  95% Wilson ``lo``/``hi``); ``mean_return`` of each with its bootstrap interval over rollouts;
  subject ``vat``: metric ``t`` (``n`` = pairs, ``extra`` = the whole test: critical, eps,
  alpha, p, mean and sd of D, reject, decision, metric), ``critical``, ``mean_diff``, ``p_value``.
- ``outcomes``: every rollout of ``pi_B`` and ``pi_B'``.
- ``artifacts``: ``vat_saliency`` (PNG, ``meta.caption``), subject ``vat``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from realgap.errors import DataError
from realgap.stats import Estimate
from realgap.store.common import (
    MEAN_RETURN,
    POLICY_SUBJECT,
    SUCCESS_RATE,
    Outcome,
    extra_of,
    integer,
    num,
    number,
    read_outcomes,
    run_info,
    score_rows,
    subject_metas,
    write_outcomes,
)
from realgap.store.db import ResultsDB, Score

RUN_KIND = "vat"
GROUP = "vat"
#: The subject that holds the test's numbers.
TEST_SUBJECT = "vat"
T_METRIC = "t"
SALIENCY_ARTIFACT = "vat_saliency"
#: The two policies whose outcomes are paired: end to end on B, and B with A's encoder.
PI_B, PI_B_PRIME = "pi_B", "pi_B'"


@dataclass(frozen=True)
class VatRate:
    """``successes`` of ``trials`` rollouts, rate and 95% Wilson [lo, hi]."""

    successes: int
    trials: int
    rate: float
    lo: float
    hi: float


@dataclass(frozen=True)
class VatRecord:
    """One VAT run. ``test``: the paired t-test as a dict (``t``, ``critical``, ``n``, ``eps``,
    ``alpha``, ``p_value``, ``mean_diff``, ``sd_diff``, ``reject``, ``decision``, ``metric``)."""

    name: str
    config: Mapping[str, Any]
    policies: Mapping[str, Mapping[str, Any]]
    rates: Mapping[str, VatRate]
    returns: Mapping[str, Estimate]
    test: Mapping[str, Any]
    outcomes: Mapping[str, tuple[Outcome, ...]]
    saliency_png: bytes | None = None
    saliency_caption: str = ""
    frameset_hash: str | None = None
    run_id: str | None = None


def write_vat(db: ResultsDB, rec: VatRecord) -> VatRecord:
    """Store ``rec`` as a finished ``vat`` run; returns it with its ``run_id``."""
    run_id = db.new_run(RUN_KIND, dict(rec.config), name=rec.name, frameset_hash=rec.frameset_hash)
    for label, meta in rec.policies.items():
        db.add_subject(run_id, label, POLICY_SUBJECT, dict(meta))
    task_b = rec.config.get("task_b")
    scores = [Score(label, SUCCESS_RATE, r.rate, r.lo, r.hi, r.trials, GROUP,
                    {"successes": r.successes, "trials": r.trials, "task": task_b})
              for label, r in rec.rates.items()]
    scores += [Score(label, MEAN_RETURN, e.value, e.lo, e.hi, e.n, GROUP,
                     {"interval": "95% percentile bootstrap over rollouts", "n_boot": e.n_boot,
                      "bias": e.bias})
               for label, e in rec.returns.items()]
    t = dict(rec.test)
    n = integer(t.get("n"))
    scores += [
        Score(TEST_SUBJECT, T_METRIC, number(t.get("t")), None, None, n, GROUP, t),
        Score(TEST_SUBJECT, "critical", number(t.get("critical")), None, None, n, GROUP,
              {"df": None if n is None else n - 1}),
        Score(TEST_SUBJECT, "mean_diff", number(t.get("mean_diff")), None, None, n, GROUP,
              {"sd": t.get("sd_diff")}),
        Score(TEST_SUBJECT, "p_value", number(t.get("p_value")), None, None, n, GROUP, {}),
    ]
    db.add_scores(run_id, scores)
    for label, oc in rec.outcomes.items():
        write_outcomes(db, run_id, label, oc)
    if rec.saliency_png:
        db.add_artifact(run_id, SALIENCY_ARTIFACT, rec.saliency_png, subject=TEST_SUBJECT,
                        meta={"caption": rec.saliency_caption})
    db.finish_run(run_id)
    return replace(rec, run_id=run_id)


def read_vat(db: Any, run_id: str) -> VatRecord:
    """The ``vat`` run ``run_id``; one without its ``t`` row is a DataError."""
    info = run_info(db, run_id)
    sc = score_rows(db, run_id)
    t_rows = sc[(sc["subject"] == TEST_SUBJECT) & (sc["metric"] == T_METRIC)]
    if t_rows.empty:
        raise DataError(f"{db.path}: vat run {run_id} has no test row; it was interrupted or "
                        "edited: rerun `realgap vat` with a new --out")
    nan = float("nan")
    rates: dict[str, VatRate] = {}
    returns: dict[str, Estimate] = {}
    for r in sc.to_dict(orient="records"):
        ex = extra_of(r["extra"])
        value = num(r["value"])
        lo, hi = num(r["lo"]), num(r["hi"])
        if r["metric"] == SUCCESS_RATE:
            rates[str(r["subject"])] = VatRate(integer(ex.get("successes")) or 0,
                                               integer(ex.get("trials", r["n"])) or 0,
                                               nan if value is None else value,
                                               nan if lo is None else lo, nan if hi is None else hi)
        elif r["metric"] == MEAN_RETURN:
            n = integer(r["n"]) or 0
            returns[str(r["subject"])] = Estimate(nan if value is None else value,
                                                  nan if lo is None else lo,
                                                  nan if hi is None else hi, n, n,
                                                  integer(ex.get("n_boot")) or 0)
    arts = db.artifacts(run_id)
    arts = arts[arts["name"] == SALIENCY_ARTIFACT]
    png, caption = None, ""
    if not arts.empty:
        png = bytes(arts.iloc[0]["data"])
        caption = str(extra_of(arts.iloc[0]["meta"]).get("caption", ""))
    return VatRecord(info.name, info.config, subject_metas(db, run_id, POLICY_SUBJECT), rates,
                     returns, extra_of(t_rows.iloc[0]["extra"]), read_outcomes(db, run_id), png,
                     caption, info.frameset_hash, run_id)


__all__ = ["GROUP", "PI_B", "PI_B_PRIME", "RUN_KIND", "SALIENCY_ARTIFACT", "TEST_SUBJECT",
           "T_METRIC", "VatRate", "VatRecord", "read_vat", "write_vat"]
