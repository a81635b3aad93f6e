"""Pieces every run kind's layout shares: metric names used by several kinds, the per-trial
outcome record, the finished runs of a kind, and tolerant readers of stored JSON/NULLs.

A layout string (a run kind, a metric, an artifact name) is written in exactly one module of
:mod:`realgap.store`; writers (jobs) and readers (the report) import it from there.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from realgap.store.db import ResultsDB

#: A success rate k/n with its Wilson interval; ``extra`` holds ``successes`` and ``trials``.
SUCCESS_RATE = "success_rate"
#: A mean episode return with its bootstrap interval.
MEAN_RETURN = "mean_return"
#: ``subjects.kind`` of a policy.
POLICY_SUBJECT = "policy"
#: ``subjects.kind`` of an environment.
ENV_SUBJECT = "env"
#: The status of a finished run (``runs.status``).
OK = "ok"


def extra_of(text: Any) -> dict[str, Any]:
    """A stored JSON object as a dict; ``{}`` for NULL or anything not an object."""
    if isinstance(text, dict):
        return text
    try:
        d = json.loads(text or "{}")
    except (TypeError, json.JSONDecodeError):
        return {}
    return d if isinstance(d, dict) else {}


def num(x: Any) -> float | None:
    """A stored number, or None for NULL/NaN."""
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def number(x: Any) -> float:
    """A stored number, NaN for NULL (for records whose fields are plain floats)."""
    v = num(x)
    return float("nan") if v is None else v


def integer(x: Any) -> int | None:
    """A stored count, or None for NULL/NaN."""
    v = num(x)
    return None if v is None else int(v)


@dataclass(frozen=True)
class RunInfo:
    """One row of ``runs``: id, kind, name, creation time (text), config, status."""

    run_id: str
    kind: str
    name: str
    created: str
    config: Mapping[str, Any]
    status: str
    frameset_hash: str | None = None


def run_info(db: ResultsDB, run_id: str) -> RunInfo:
    """The ``runs`` row of ``run_id``."""
    from realgap.errors import DataError

    df = db.query("SELECT * FROM runs WHERE run_id = ?", [run_id])
    if df.empty:
        raise DataError(f"{db.path}: no run {run_id!r}; `realgap report` lists the runs it has")
    r = df.iloc[0]
    return RunInfo(str(r["run_id"]), str(r["kind"]), str(r["name"] or ""), str(r["created"])[:19],
                   extra_of(r["config"]), str(r["status"]),
                   None if r["frameset_hash"] is None else str(r["frameset_hash"]))


def finished_runs(db: Any, kinds: Iterable[str]) -> list[RunInfo]:
    """Finished runs of ``kinds``, oldest first (``db``: a ResultsDB or a read view of one)."""
    kinds = list(kinds)
    runs = db.runs()
    runs = runs[runs["kind"].isin(kinds) & (runs["status"] == OK)]
    return [RunInfo(str(r.run_id), str(r.kind), str(r.name or ""), str(r.created)[:19],
                    extra_of(r.config), str(r.status),
                    None if r.frameset_hash is None else str(r.frameset_hash))
            for r in runs.itertuples()]


@dataclass(frozen=True)
class Outcome:
    """One trial: ``condition`` (``""`` when there is none), ``trial`` index, reset ``seed``,
    ``success``, return ``ret`` (sum of rewards), ``length`` (steps), ``factors`` (the
    settings it ran under)."""

    condition: str
    trial: int
    seed: int
    success: bool
    ret: float
    length: int
    factors: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Outcome:
        """From an ``outcomes`` row (or the dict a job's outcome gives)."""
        ret = num(row.get("ret"))
        return cls(str(row.get("condition") or ""), integer(row.get("trial")) or 0,
                   integer(row.get("seed")) or 0, bool(row.get("success")),
                   float("nan") if ret is None else ret, integer(row.get("length")) or 0,
                   extra_of(row.get("factors")))

    def row(self) -> dict[str, Any]:
        return {"condition": self.condition, "trial": self.trial, "seed": self.seed,
                "success": self.success, "ret": self.ret, "length": self.length,
                "factors": dict(self.factors)}


def write_outcomes(db: ResultsDB, run_id: str, subject: str, outcomes: Sequence[Outcome]) -> None:
    """Append ``outcomes`` of ``subject`` in their order."""
    db.add_outcomes(run_id, subject, [o.row() for o in outcomes])


def read_outcomes(db: Any, run_id: str) -> dict[str, tuple[Outcome, ...]]:
    """Subject -> its outcomes, in the order they were written."""
    df = db.query("SELECT * FROM outcomes WHERE run_id = ? ORDER BY rowid", [run_id])
    out: dict[str, list[Outcome]] = {}
    for r in df.to_dict(orient="records"):
        out.setdefault(str(r["subject"]), []).append(Outcome.from_row(r))
    return {k: tuple(v) for k, v in out.items()}


def subject_metas(db: Any, run_id: str, kind: str | None = None) -> dict[str, dict[str, Any]]:
    """Subject -> meta of one run (optionally only subjects of ``kind``), in recorded order."""
    subs = db.subjects(run_id)
    return {str(r.subject): extra_of(r.meta) for r in subs.itertuples()
            if kind is None or r.kind == kind}


def score_rows(db: Any, run_id: str) -> pd.DataFrame:
    """The run's ``scores`` rows in written order, ``grp`` NULL read as ``""``."""
    df = db.query("SELECT * FROM scores WHERE run_id = ? ORDER BY rowid", [run_id])
    df["grp"] = df["grp"].fillna("")
    return df
