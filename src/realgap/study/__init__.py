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

from realgap._optional import lazy_exports

_EXPORTS = {
    "ScoresStudyConfig": "realgap.study.config",
    "PRESETS": "realgap.study.config",
    "preset_config": "realgap.study.config",
    "run_scores_study": "realgap.study.scores",
    "ScoresStudyResult": "realgap.study.scores",
    "correlate_scores": "realgap.study.analysis",
}

__all__ = list(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
