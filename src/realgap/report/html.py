"""Assemble the HTML report from the results database.

Sections are modules in :mod:`realgap.report.sections`, each with ``ANCHOR``, ``TITLE``
and ``render(db) -> str | None``; they are rendered in the order of :data:`SECTIONS`
and a section with nothing to show returns ``None`` and is left out.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from realgap.report._html import page
from realgap.store import ResultsDB, resolve_db_path

#: Section modules in page order.
SECTIONS: tuple[str, ...] = (
    "verdict",
    "gap",
    "coverage",
    "embedding_map",
    "saliency",
    "protocol",
    "vat",
    "correlation",
    "dynamics",
    "provenance",
)


def build_report(db_or_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.html`` next to the database (or at ``out``) and return its path."""
    db_path = resolve_db_path(db_or_dir)
    out_path = Path(out) if out else db_path.parent / "report.html"
    parts: list[tuple[str, str, str]] = []
    with ResultsDB(db_path, read_only=True) as db:
        n_runs = len(db.runs())
        for name in SECTIONS:
            mod = importlib.import_module(f"realgap.report.sections.{name}")
            body = mod.render(db)
            if body:
                parts.append((mod.ANCHOR, mod.TITLE, body))
    html = page(
        "realgap report",
        f"{n_runs} run(s) from {db_path.name}; every number carries its interval and sample size",
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
