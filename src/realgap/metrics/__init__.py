"""Gap metrics: pure functions over arrays; uncertainty as a separate wrapper.

Array conventions (stated once): ``embeddings: (n_frames, dim) float``,
``actions: (n_frames, action_dim) float``, ``episodes: (n_frames,) int`` (the unit of
every split and bootstrap). Formulas: DESIGN.md "Definitions fixed here" and
encoder-dis-as-framework.txt section III; each module docstring cites its source.

- :mod:`~realgap.metrics.space`: the shared DIS space (standardize, PCA, min-max).
- :mod:`~realgap.metrics.invariance`: DIS and centroid distance.
- :mod:`~realgap.metrics.probe`: Action Score and transfer AS (ridge probe).
- :mod:`~realgap.metrics.distribution`: MMD, Fréchet distance, C2ST.
- :mod:`~realgap.metrics.coverage`: sim support, outside fraction, density/coverage.
- :mod:`~realgap.metrics.bootstrap`: :class:`Estimate` and the episode bootstrap.
- :mod:`~realgap.metrics.suite`: :func:`gap_suite`, all of the above for one encoder.
"""

from realgap.metrics.bootstrap import Estimate, bootstrap_ci
from realgap.metrics.coverage import CoverageReport, coverage_report
from realgap.metrics.distribution import (
    C2STResult,
    MMDResult,
    c2st_accuracy,
    frechet_distance,
    mmd_rbf,
)
from realgap.metrics.invariance import DISResult, domain_invariance
from realgap.metrics.probe import ASResult, action_score, episode_split, transfer_action_score
from realgap.metrics.space import GapSpace, fit_gap_space
from realgap.metrics.suite import METRICS, gap_suite, harmonic_mean

__all__ = [
    "METRICS",
    "ASResult",
    "C2STResult",
    "CoverageReport",
    "DISResult",
    "Estimate",
    "GapSpace",
    "MMDResult",
    "action_score",
    "bootstrap_ci",
    "c2st_accuracy",
    "coverage_report",
    "domain_invariance",
    "episode_split",
    "fit_gap_space",
    "frechet_distance",
    "gap_suite",
    "harmonic_mean",
    "mmd_rbf",
    "transfer_action_score",
]
