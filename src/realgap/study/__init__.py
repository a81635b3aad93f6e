"""Studies that close the loop: do realgap's offline scores predict closed-loop transfer?

Public API::

    from realgap.study import ScoresStudyConfig, preset_config, run_scores_study

- :mod:`realgap.study.analysis`: the study's statistics as pure functions of the played
  episodes (paired grid, hierarchical bootstrap over seeds and episodes, Pearson,
  Spearman, MMRV);
- :mod:`realgap.study.scores`: the ``realgap study scores`` job (demonstrations, gap runs,
  one policy per frozen encoder and seed, rollouts in sim and the real proxy, correlation).

``import realgap.study`` imports neither torch nor MuJoCo.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ScoresStudyConfig": "realgap.study.config",
    "PRESETS": "realgap.study.config",
    "preset_config": "realgap.study.config",
    "run_scores_study": "realgap.study.scores",
    "ScoresStudyResult": "realgap.study.scores",
    "correlate_scores": "realgap.study.analysis",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'realgap.study' has no attribute {name!r}")
    return getattr(importlib.import_module(mod), name)
