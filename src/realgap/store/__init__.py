"""Results database: every run, its configuration, its subjects and all its numbers.

See :mod:`realgap.store.db`.
"""

from realgap.store.db import FORMAT_VERSION, ResultsDB, Score, resolve_db_path

__all__ = ["FORMAT_VERSION", "ResultsDB", "Score", "resolve_db_path"]
