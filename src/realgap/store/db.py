"""The results database: one DuckDB file, append-only.

Every command that measures something opens a *run* (``new_run``), records what it
measured about (``add_subject``: an encoder with its weights' origin, a policy, an
environment), its numbers with intervals and sample sizes (``add_scores``), per-trial
outcomes (``add_outcomes``) and binary artifacts such as saliency PNGs (``add_artifact``),
then closes it (``finish_run``). Nothing is ever overwritten: rerunning adds a run. The
HTML report is built from this file alone, without MuJoCo, torch or a GPU.

Tables (all keyed by ``run_id``):

- ``meta(key, value)``: ``format_version`` of this schema.
- ``runs(run_id, kind, name, created, config, frameset_hash, realgap_version, status)``;
  ``config`` is JSON text.
- ``subjects(run_id, subject, kind, meta)``: identity of each thing scored; ``meta`` JSON.
- ``scores(run_id, subject, metric, value, lo, hi, n, grp, extra)``: one number with its
  interval ``[lo, hi]`` (NULL when it has none), its sample size ``n`` and an optional
  group label (a factor level, a condition, a scale); ``extra`` JSON.
- ``outcomes(run_id, subject, condition, trial, seed, success, ret, length, factors)``.
- ``artifacts(run_id, subject, name, mime, data, meta)``: ``data`` is a BLOB.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import pandas as pd

from realgap.errors import DataError, FormatVersionError, MissingFileError

FORMAT_VERSION = 1
DEFAULT_DB_NAME = "results.duckdb"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY, kind VARCHAR, name VARCHAR, created TIMESTAMP,
    config VARCHAR, frameset_hash VARCHAR, realgap_version VARCHAR, status VARCHAR);
CREATE TABLE IF NOT EXISTS subjects (
    run_id VARCHAR, subject VARCHAR, kind VARCHAR, meta VARCHAR);
CREATE TABLE IF NOT EXISTS scores (
    run_id VARCHAR, subject VARCHAR, metric VARCHAR, value DOUBLE, lo DOUBLE, hi DOUBLE,
    n BIGINT, grp VARCHAR, extra VARCHAR);
CREATE TABLE IF NOT EXISTS outcomes (
    run_id VARCHAR, subject VARCHAR, condition VARCHAR, trial INTEGER, seed BIGINT,
    success BOOLEAN, ret DOUBLE, length INTEGER, factors VARCHAR);
CREATE TABLE IF NOT EXISTS artifacts (
    run_id VARCHAR, subject VARCHAR, name VARCHAR, mime VARCHAR, data BLOB, meta VARCHAR);
"""


@dataclass(frozen=True)
class Score:
    """One measured number: ``value`` with interval ``[lo, hi]`` over ``n`` samples.

    ``group`` labels a breakdown (a factor level, a protocol condition, a scale).
    """

    subject: str
    metric: str
    value: float
    lo: float | None = None
    hi: float | None = None
    n: int | None = None
    group: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


def resolve_db_path(path: str | Path) -> Path:
    """A ``.duckdb`` file, or a directory holding ``results.duckdb``."""
    p = Path(path)
    if p.suffix == ".duckdb" or p.is_file():
        return p
    return p / DEFAULT_DB_NAME


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=_json_default)


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(obj)
    return str(obj)


def _nullable(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x  # NaN -> NULL


class ResultsDB:
    """Append-only results database in one DuckDB file.

    Args:
        path: a ``.duckdb`` file or a directory (then ``DIR/results.duckdb``).
        read_only: open an existing file for reading only (the report does this).

    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | Path, read_only: bool = False) -> None:
        import duckdb

        self.path = resolve_db_path(path)
        if read_only and not self.path.exists():
            raise MissingFileError(
                f"{self.path}: no results database here; run `realgap gap`, `realgap evaluate` "
                "or `realgap dynamics ...` with --out pointing at this directory first"
            )
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.Error as exc:  # not a DuckDB file, or locked by another process
            raise DataError(
                f"{self.path}: cannot open the results database ({exc}); point --out or the "
                "database argument at a realgap results directory or .duckdb file"
            ) from None
        if not read_only:
            self.con.execute(_SCHEMA)
            self.con.execute(
                "INSERT INTO meta VALUES ('format_version', ?) ON CONFLICT DO NOTHING",
                [str(FORMAT_VERSION)],
            )
        self._check_version()

    def _check_version(self) -> None:
        try:
            row = self.con.execute(
                "SELECT value FROM meta WHERE key = 'format_version'"
            ).fetchone()
        except Exception as exc:  # noqa: BLE001 - duckdb raises CatalogException
            raise FormatVersionError(
                f"{self.path}: not a realgap results database (no meta table: {exc})"
            ) from None
        if row is None or int(row[0]) != FORMAT_VERSION:
            raise FormatVersionError(
                f"{self.path}: results database format_version {row and row[0]!r}, "
                f"this realgap reads {FORMAT_VERSION}; write a new database with --out"
            )

    # -- writing ---------------------------------------------------------------------
    def new_run(
        self,
        kind: str,
        config: Mapping[str, Any],
        *,
        name: str = "",
        frameset_hash: str | None = None,
    ) -> str:
        """Open a run of ``kind`` ("gap", "evaluate", "vat", "degrade", ...); return its id."""
        from realgap import __version__

        run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        self.con.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [run_id, kind, name, datetime.now(UTC).replace(tzinfo=None),
             _json(dict(config)), frameset_hash, __version__, "running"],
        )
        return run_id

    def finish_run(self, run_id: str, status: str = "ok") -> None:
        """Mark a run finished (``ok``) or failed/interrupted."""
        self.con.execute("UPDATE runs SET status = ? WHERE run_id = ?", [status, run_id])

    def add_subject(self, run_id: str, subject: str, kind: str, meta: Mapping[str, Any]) -> None:
        """Record the identity of a scored thing (encoder incl. ``weights_origin``, policy, env)."""
        self.con.execute(
            "INSERT INTO subjects VALUES (?, ?, ?, ?)", [run_id, subject, kind, _json(dict(meta))]
        )

    def add_scores(self, run_id: str, scores: Iterable[Score]) -> None:
        """Append scores; NaN intervals are stored as NULL."""
        rows = [
            [run_id, s.subject, s.metric, _nullable(s.value), _nullable(s.lo), _nullable(s.hi),
             None if s.n is None else int(s.n), s.group, _json(dict(s.extra))]
            for s in scores
        ]
        if rows:
            self.con.executemany("INSERT INTO scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def add_outcomes(self, run_id: str, subject: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append per-trial outcomes: dicts with ``condition, trial, seed, success, ret,
        length, factors`` (missing keys become NULL)."""
        vals = [
            [run_id, subject, str(r.get("condition", "")), r.get("trial"), r.get("seed"),
             None if r.get("success") is None else bool(r["success"]),
             _nullable(r.get("ret")), r.get("length"), _json(r.get("factors", {}))]
            for r in rows
        ]
        if vals:
            self.con.executemany("INSERT INTO outcomes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", vals)

    def add_artifact(
        self,
        run_id: str,
        name: str,
        data: bytes,
        *,
        mime: str = "image/png",
        subject: str = "",
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """Store a binary artifact (a PNG figure, a thumbnail) inside the database."""
        self.con.execute(
            "INSERT INTO artifacts VALUES (?, ?, ?, ?, ?, ?)",
            [run_id, subject, name, mime, bytes(data), _json(dict(meta or {}))],
        )

    # -- reading ---------------------------------------------------------------------
    def query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run SQL and return a DataFrame."""
        return self.con.execute(sql, params or []).df()

    def runs(self, kind: str | None = None) -> pd.DataFrame:
        """All runs (optionally of one kind), oldest first."""
        if kind is None:
            return self.query("SELECT * FROM runs ORDER BY created, run_id")
        return self.query("SELECT * FROM runs WHERE kind = ? ORDER BY created, run_id", [kind])

    def latest_run(self, kind: str) -> str | None:
        """Id of the newest finished run of ``kind``, or None."""
        row = self.con.execute(
            "SELECT run_id FROM runs WHERE kind = ? AND status = 'ok' "
            "ORDER BY created DESC, run_id DESC LIMIT 1", [kind]
        ).fetchone()
        return None if row is None else str(row[0])

    def _table(self, table: str, run_id: str | None) -> pd.DataFrame:
        if run_id is None:
            return self.query(f"SELECT * FROM {table}")
        return self.query(f"SELECT * FROM {table} WHERE run_id = ?", [run_id])

    def scores(self, run_id: str | None = None) -> pd.DataFrame:
        return self._table("scores", run_id)

    def subjects(self, run_id: str | None = None) -> pd.DataFrame:
        return self._table("subjects", run_id)

    def outcomes(self, run_id: str | None = None) -> pd.DataFrame:
        return self._table("outcomes", run_id)

    def artifacts(self, run_id: str | None = None) -> pd.DataFrame:
        return self._table("artifacts", run_id)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
