"""Steps several jobs share."""

from __future__ import annotations

from pathlib import Path


def check_out(out: str | Path) -> None:
    """Open (creating) the results database before the work starts: a bad ``--out`` then
    fails at once instead of after every episode has been played."""
    from realgap.store import ResultsDB

    with ResultsDB(out):
        pass
