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
- ``run_process(run_id, host, pid, token)``: the process that opened each run. A run still
  ``running`` whose process is gone (same host, pid dead or reused) was killed; it is
  marked ``interrupted`` the next time the database is opened for writing, and shown so
  when it is opened read-only. A run from another host stays ``running`` (no way to tell).
  A separate table, so databases written before it existed stay readable and writable.

Safety of opening: a DuckDB file that holds tables but no realgap ``meta`` is someone
else's database and is refused before anything is written to it. Every JSON column
(``runs.config``, ``subjects.meta``, ``scores.extra``, ``outcomes.factors``,
``artifacts.meta``) must hold a JSON object; a tampered one is a one-line
:class:`DataError` naming the table, column and run. A write the disk refuses (full, quota,
read-only) is an ``OSError`` naming the database file.
"""

from __future__ import annotations

import errno
import json
import math
import os
import socket
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
CREATE TABLE IF NOT EXISTS run_process (
    run_id VARCHAR, host VARCHAR, pid BIGINT, token VARCHAR);
"""

#: (table, column) pairs holding JSON text; each must be a JSON object (or NULL).
JSON_COLUMNS: tuple[tuple[str, str], ...] = (
    ("runs", "config"), ("subjects", "meta"), ("scores", "extra"), ("outcomes", "factors"),
    ("artifacts", "meta"),
)

#: duckdb's words for a write the machine refused, and the errno each stands for.
_DISK_FAILURES = (("No space left", errno.ENOSPC), ("Disk quota", errno.EDQUOT),
                  ("Read-only file system", errno.EROFS))


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


def _process_token(pid: int) -> str | None:
    """What tells a process apart from a later one with the same pid: on Linux the boot id
    and the process's start time in clock ticks (``/proc``); None elsewhere."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # field 22 (starttime); split after the ')' that ends the command name, which may hold spaces
    fields = stat.rsplit(")", 1)[-1].split()
    return f"{boot}:{fields[19]}" if len(fields) > 19 else None


def process_gone(host: str | None, pid: int | None, token: str | None) -> bool:
    """Whether the process that opened a run has certainly ended: it ran on this host and
    its pid is dead, or now belongs to another process (different start time or boot)."""
    if host != socket.gethostname() or pid is None or pid <= 0:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's: a reused pid (realgap runs as the user)
        return token is not None
    return token is not None and _process_token(int(pid)) not in (None, token)


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except (ValueError, TypeError):
        return False


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
        try:
            tables = self._tables()
            if tables or read_only:  # an existing database must be realgap's, of this version
                self._check_version(tables)
            if not read_only:
                self._write(_SCHEMA)
                self._write("INSERT INTO meta VALUES ('format_version', ?) ON CONFLICT DO NOTHING",
                            [str(FORMAT_VERSION)])
            self._check_json()
            self._stale = self._stale_runs()
            if self._stale and not read_only:
                self._write("UPDATE runs SET status = 'interrupted' WHERE status = 'running' "
                            "AND run_id IN (SELECT unnest(?))", [sorted(self._stale)])
        except BaseException:
            self.con.close()
            raise

    def _tables(self) -> set[str]:
        return {str(r[0]) for r in self.con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "UNION ALL SELECT view_name FROM duckdb_views() WHERE NOT internal "
            "AND database_name = current_database()").fetchall()}

    def _check_version(self, tables: set[str]) -> None:
        if "meta" not in tables or "runs" not in tables:
            shown = ", ".join(sorted(tables)[:5]) or "none"
            raise FormatVersionError(
                f"{self.path}: a DuckDB file that is not a realgap results database (tables: "
                f"{shown}); realgap writes nothing to it: pass an --out directory without "
                "results.duckdb, or a realgap results database"
            )
        row = self.con.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchone()
        try:
            version = int(row[0]) if row is not None else None
        except (TypeError, ValueError):
            version = None
        if version != FORMAT_VERSION:
            raise FormatVersionError(
                f"{self.path}: results database format_version {row and row[0]!r}, "
                f"this realgap reads {FORMAT_VERSION}; write a new database with --out"
            )

    def _check_json(self) -> None:
        """Each JSON column holds a JSON object (readers call ``json.loads(...).get``)."""
        import duckdb

        for table, column in JSON_COLUMNS:
            try:
                bad = self.con.execute(
                    f"SELECT run_id, {column} FROM {table} WHERE {column} IS NOT NULL AND "
                    f"(NOT json_valid({column}) OR json_type({column}) <> 'OBJECT') LIMIT 1"
                ).fetchone()
            except duckdb.CatalogException:  # json extension unavailable: check in Python
                bad = next(((rid, text) for rid, text in self.con.execute(
                    f"SELECT run_id, {column} FROM {table} WHERE {column} IS NOT NULL"
                ).fetchall() if not _is_json_object(text)), None)
            if bad is not None:
                raise DataError(
                    f"{self.path}: table {table}, column {column} of run {bad[0]} holds "
                    f"{str(bad[1])[:40]!r}, not a JSON object; the database was edited or "
                    "damaged: restore it from a copy, or write new results with a new --out"
                )

    def _stale_runs(self) -> set[str]:
        rows = self.con.execute(
            "SELECT p.run_id, p.host, p.pid, p.token FROM run_process p JOIN runs r "
            "USING (run_id) WHERE r.status = 'running'"
        ).fetchall() if "run_process" in self._tables() else []
        return {str(rid) for rid, host, pid, token in rows if process_gone(host, pid, token)}

    def _write(self, sql: str, params: list[Any] | None = None, *, many: bool = False) -> None:
        """Execute a writing statement; a write the disk refuses becomes an ``OSError``
        naming this file (the CLI's one line), any other duckdb failure a DataError."""
        import duckdb

        try:
            if many:
                self.con.executemany(sql, params or [])
            else:
                self.con.execute(sql, params or [])
        except duckdb.Error as exc:
            text = str(exc)
            for words, code in _DISK_FAILURES:
                if words in text:
                    raise OSError(code, os.strerror(code), str(self.path)) from None
            raise DataError(f"{self.path}: cannot write the results database "
                            f"({text.splitlines()[0] if text else type(exc).__name__})") from None

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
        self._write(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [run_id, kind, name, datetime.now(UTC).replace(tzinfo=None),
             _json(dict(config)), frameset_hash, __version__, "running"],
        )
        pid = os.getpid()
        self._write("INSERT INTO run_process VALUES (?, ?, ?, ?)",
                    [run_id, socket.gethostname(), pid, _process_token(pid)])
        return run_id

    def finish_run(self, run_id: str, status: str = "ok") -> None:
        """Mark a run finished (``ok``) or failed/interrupted."""
        self._write("UPDATE runs SET status = ? WHERE run_id = ?", [status, run_id])

    def add_subject(self, run_id: str, subject: str, kind: str, meta: Mapping[str, Any]) -> None:
        """Record the identity of a scored thing (encoder incl. ``weights_origin``, policy, env)."""
        self._write(
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
            self._write("INSERT INTO scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows, many=True)

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
            self._write("INSERT INTO outcomes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", vals, many=True)

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
        self._write(
            "INSERT INTO artifacts VALUES (?, ?, ?, ?, ?, ?)",
            [run_id, subject, name, mime, bytes(data), _json(dict(meta or {}))],
        )

    # -- reading ---------------------------------------------------------------------
    def query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run SQL and return a DataFrame."""
        return self.con.execute(sql, params or []).df()

    def runs(self, kind: str | None = None) -> pd.DataFrame:
        """All runs (optionally of one kind), oldest first. A ``running`` run whose process
        has ended shows as ``interrupted`` (also when the database is open read-only)."""
        if kind is None:
            df = self.query("SELECT * FROM runs ORDER BY created, run_id")
        else:
            df = self.query("SELECT * FROM runs WHERE kind = ? ORDER BY created, run_id", [kind])
        if self._stale:
            df.loc[df["run_id"].isin(self._stale) & (df["status"] == "running"),
                   "status"] = "interrupted"
        return df

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
