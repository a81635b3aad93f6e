"""Assemble the HTML report from the results database.

Sections come from the registry :data:`realgap.report.sections.SECTIONS`: for the kinds of
run the database holds, every section registered for one of those kinds is rendered, in
the sections' order; a section with nothing to show returns ``None`` and is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from realgap.errors import ConfigError, DataError, RealgapError
from realgap.report._html import page
from realgap.report.sections import BUILTIN, Section, sections
from realgap.store import ResultsDB, resolve_db_path

#: Built-in section modules in page order (kept for old imports; the registry decides).
SECTIONS: tuple[str, ...] = BUILTIN


#: What a section raises on a stored value of the wrong type or shape.
_CONTENT_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError)


class PinnedRuns:
    """A read view of a :class:`ResultsDB` whose "latest run" of a kind is the one the user
    picked (``realgap report --run ID``); everything else reads through unchanged.

    Sections ask ``db.latest_run(kind)`` for the run they show, so pinning here reaches
    every section without each of them taking a run argument.
    """

    def __init__(self, db: ResultsDB, run_ids: Sequence[str]) -> None:
        self._db = db
        runs = db.runs()
        known = dict(zip(runs["run_id"].astype(str), runs["kind"].astype(str), strict=True))
        self.pinned: dict[str, str] = {}
        for rid in run_ids:
            if rid not in known:
                hint = ", ".join(f"{r} ({k})" for r, k in list(known.items())[-8:]) or "none"
                raise DataError(f"--run {rid}: no such run in {db.path}; runs there (newest "
                                f"last): {hint}")
            if known[rid] in self.pinned:
                raise ConfigError(f"--run: two runs of kind {known[rid]!r} given "
                                  f"({self.pinned[known[rid]]}, {rid}); pick one per kind")
            self.pinned[known[rid]] = rid

    def latest_run(self, kind: str) -> str | None:
        return self.pinned.get(kind) or self._db.latest_run(kind)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def rendered_sections(db: ResultsDB | PinnedRuns) -> list[Section]:
    """The sections a report of ``db`` gets: those registered for a kind of run it holds."""
    kinds = set(db.runs()["kind"].astype(str))
    return [s for s in sections() if s.applies_to(kinds)]


def build_report(db_or_dir: str | Path, out: str | Path | None = None,
                 run_ids: Sequence[str] = ()) -> Path:
    """Write ``report.html`` next to the database (or at ``out``) and return its path.

    ``run_ids``: runs to show instead of the newest of their kind (at most one per kind).
    """
    db_path = resolve_db_path(db_or_dir)
    out_path = Path(out) if out else db_path.parent / "report.html"
    parts: list[tuple[str, str, str]] = []
    with ResultsDB(db_path, read_only=True) as raw:
        db = PinnedRuns(raw, run_ids)
        runs = db.runs()
        n_runs = len(runs)
        kinds = set(runs["kind"].astype(str))
        for sec in sections():
            if not sec.applies_to(kinds):
                continue
            try:
                body = sec.render(db)
            except RealgapError:  # already a one-line message (ConfigError is a ValueError)
                raise
            except _CONTENT_ERRORS as exc:
                # Sections trust the values inside the database's JSON (whose shape the
                # store checks); an edited value of the wrong type is input, not a bug.
                raise DataError(
                    f"{db_path}: the report's {sec.title!r} section cannot read the stored "
                    f"results ({type(exc).__name__}: {exc}); the database was edited or written "
                    "by another realgap version: restore it, or write new results with a new "
                    "--out") from exc
            if body:
                parts.append((sec.anchor, sec.title, body))
    shown = "; showing run(s) " + ", ".join(db.pinned.values()) if db.pinned else ""
    html = page(
        "realgap report",
        f"{n_runs} run(s) from {db_path.name}{shown}; every number carries its interval and "
        "sample size",
        parts,
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".html.tmp")
    try:
        # written whole, then renamed: a failed write (disk full) keeps the previous report
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(out_path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:  # write() names no file
            raise OSError(exc.errno, exc.strerror, str(out_path)) from exc
        raise
    return out_path
