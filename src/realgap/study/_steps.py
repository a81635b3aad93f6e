"""Pieces both study jobs use: timing named steps and writing the report of a stored run."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def timed(timings: dict[str, float], name: str) -> Iterator[None]:
    """Record the wall time (s) of the block under ``timings[name]``."""
    t = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = time.perf_counter() - t


def write_report(db_path: Path, out: Path, run_id: str, say: Callable[[str], None]) -> Path | None:
    """``out/report.html`` for run ``run_id``; None (said, not raised) when it fails: the
    results are stored already and the report is only a view of them."""
    try:
        from realgap.report import build_report

        return Path(build_report(db_path, out / "report.html", run_ids=(run_id,)))
    except Exception as exc:  # noqa: BLE001 - see the docstring
        say(f"report not written: {exc}")
        return None
