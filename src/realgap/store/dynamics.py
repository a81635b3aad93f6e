"""Layouts of the dynamics runs (``realgap dynamics degrade|gap|sysid``).

All three share one shape: ``subjects`` name the environment (``kind="env"``, meta
``env_id``, ``factor``) and, for ``degrade``, the policy; ``scores`` hold one row per
(subject, metric, perturbation scale) with ``group = "<factor>=<scale:g>"`` (``""`` for
``sysid``), its interval ``[lo, hi]`` and sample size ``n``, and ``extra`` with ``factor``,
``scale`` and the estimate's details.

- ``degrade`` (mbrl-latent-gap.txt sec. 5): metrics :data:`DEGRADE_METRICS`
  (``mean_return``, ``normalized_drop``, ``return_drop``); ``n`` = episodes; ``extra`` adds
  ``n_seeds``, ``perturbation`` and, when a drop is undefined, ``note``; ``outcomes`` hold
  every evaluation episode.
- ``dynamics-gap``: metrics :data:`GAP_MEASURES`; ``n`` = target trajectories.
- ``sysid``: one row per identified multiplier (metric = the parameter), ``extra`` =
  ``truth`` (when the target file knows it), ``objective``, ``objective_nominal``,
  ``n_boot``, ``n_frames``, ``bias``, ``bounds``, ``at_bound``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from realgap.store.common import (
    ENV_SUBJECT,
    MEAN_RETURN,
    extra_of,
    integer,
    num,
    run_info,
    score_rows,
)
from realgap.store.db import ResultsDB, Score

DEGRADE_KIND = "degrade"
GAP_KIND = "dynamics-gap"
SYSID_KIND = "sysid"
RUN_KINDS: tuple[str, ...] = (DEGRADE_KIND, GAP_KIND, SYSID_KIND)

NORMALIZED_DROP = "normalized_drop"
RETURN_DROP = "return_drop"
DEGRADE_METRICS: tuple[str, ...] = (MEAN_RETURN, NORMALIZED_DROP, RETURN_DROP)
#: The gap measures and what each means (report captions).
GAP_MEASURES: dict[str, str] = {
    "prediction_gap": "one-step prediction gap (MSE_cross / MSE_in - 1)",
    "c2st_gap": "classifier two-sample gap (2 acc - 1)",
    "latent_map_distance": "latent map distance |m(z) - z|^2 / spread",
}


def scale_group(factor: str, scale: float) -> str:
    """The ``group`` label of one perturbation scale: ``"<factor>=<scale:g>"``."""
    return f"{factor}={scale:g}"


@dataclass(frozen=True)
class CurvePoint:
    """One number of a dynamics run: ``metric`` of ``subject`` at perturbation ``scale``
    (None for ``sysid``), value with interval ``[lo, hi]`` (NaN: none) over ``n``."""

    subject: str
    metric: str
    value: float
    lo: float
    hi: float
    n: int | None
    factor: str = ""
    scale: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DynamicsRecord:
    """One dynamics run of ``kind`` (:data:`RUN_KINDS`) for ``env_id`` and ``factor``.

    ``subjects``: ``(name, kind, meta)`` triples; ``outcomes``: subject -> episode rows
    (``condition, trial, seed, success, ret, length, factors``)."""

    kind: str
    name: str
    env_id: str
    factor: str
    config: Mapping[str, Any]
    subjects: tuple[tuple[str, str, Mapping[str, Any]], ...]
    points: tuple[CurvePoint, ...]
    outcomes: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    run_id: str | None = None
    created: str = ""

    def metrics(self) -> list[str]:
        """Metrics recorded, in written order."""
        return list(dict.fromkeys(p.metric for p in self.points))


def write_dynamics(db: ResultsDB, rec: DynamicsRecord) -> DynamicsRecord:
    """Store ``rec`` as a finished run; returns it with its ``run_id``."""
    run_id = db.new_run(rec.kind, dict(rec.config), name=rec.name)
    for name, kind, meta in rec.subjects:
        db.add_subject(run_id, name, kind, dict(meta))
    db.add_scores(run_id, [
        Score(p.subject, p.metric, p.value, p.lo, p.hi, p.n,
              "" if p.scale is None else scale_group(p.factor, p.scale),
              {**({"factor": p.factor, "scale": p.scale} if p.scale is not None else {}),
               **dict(p.extra)})
        for p in rec.points])
    for subject, rows in rec.outcomes.items():
        db.add_outcomes(run_id, subject, rows)
    db.finish_run(run_id)
    return replace(rec, run_id=run_id)


def read_dynamics(db: Any, run_id: str) -> DynamicsRecord:
    """The dynamics run ``run_id`` (points in written order)."""
    info = run_info(db, run_id)
    subs = db.subjects(run_id)
    subjects = tuple((str(r.subject), str(r.kind), extra_of(r.meta)) for r in subs.itertuples())
    env = next((m for _, k, m in subjects if k == ENV_SUBJECT), {})
    nan = float("nan")
    points = []
    for r in score_rows(db, run_id).to_dict(orient="records"):
        ex = extra_of(r["extra"])
        scale = num(ex.get("scale"))
        rest = {k: v for k, v in ex.items() if k not in ("factor", "scale")}
        points.append(CurvePoint(str(r["subject"]), str(r["metric"]),
                                 nan if num(r["value"]) is None else float(r["value"]),
                                 nan if num(r["lo"]) is None else float(r["lo"]),
                                 nan if num(r["hi"]) is None else float(r["hi"]),
                                 integer(r["n"]), str(ex.get("factor") or env.get("factor") or ""),
                                 scale, rest))
    oc = db.query("SELECT * FROM outcomes WHERE run_id = ? ORDER BY rowid", [run_id])
    outcomes: dict[str, list[dict[str, Any]]] = {}
    for r in oc.to_dict(orient="records"):
        outcomes.setdefault(str(r.pop("subject")), []).append(r)
    return DynamicsRecord(info.kind, info.name, str(env.get("env_id") or info.config.get("env_id", "")),
                          str(env.get("factor") or info.config.get("factor", "")), info.config,
                          subjects, tuple(points), outcomes, run_id, info.created)


__all__ = ["DEGRADE_KIND", "DEGRADE_METRICS", "GAP_KIND", "GAP_MEASURES", "NORMALIZED_DROP",
           "RETURN_DROP", "RUN_KINDS", "SYSID_KIND", "CurvePoint", "DynamicsRecord",
           "read_dynamics", "scale_group", "write_dynamics"]
