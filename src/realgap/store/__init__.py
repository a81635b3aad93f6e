"""Results database: every run, its configuration, its subjects and all its numbers.

:mod:`realgap.store.db` holds the tables; one module per run kind fixes that kind's layout
(its kind, metric and artifact names, ``write_x(db, record)`` and ``read_x(db, run_id)``),
imported by the job that writes it and by the report that reads it:

===================  =====================================================
run kind             layout module
===================  =====================================================
``gap``              :mod:`realgap.store.gap` (+ :mod:`realgap.store.embedding_map`)
``rollout``          :mod:`realgap.store.rollout`
``evaluate``         :mod:`realgap.store.evaluate`
``protocol-summary`` :mod:`realgap.store.evaluate`
``vat``              :mod:`realgap.store.vat`
``degrade``, ``dynamics-gap``, ``sysid``  :mod:`realgap.store.dynamics`
``correlate``        :mod:`realgap.store.correlate`
``scores-study``     :mod:`realgap.store.study`
``dr-study``         :mod:`realgap.store.study`
===================  =====================================================

(``realgap train`` writes a checkpoint, not a run.)
"""

from realgap.store.db import FORMAT_VERSION, ResultsDB, Score, resolve_db_path

#: Every run kind a realgap writer produces -> the module that lays it out.
RUN_KINDS: dict[str, str] = {
    "gap": "realgap.store.gap",
    "rollout": "realgap.store.rollout",
    "evaluate": "realgap.store.evaluate",
    "protocol-summary": "realgap.store.evaluate",
    "vat": "realgap.store.vat",
    "degrade": "realgap.store.dynamics",
    "dynamics-gap": "realgap.store.dynamics",
    "sysid": "realgap.store.dynamics",
    "correlate": "realgap.store.correlate",
    "scores-study": "realgap.store.study",
    "dr-study": "realgap.store.study",
}

__all__ = ["FORMAT_VERSION", "RUN_KINDS", "ResultsDB", "Score", "resolve_db_path"]
