"""Gap metrics: pure functions over arrays; uncertainty as a separate wrapper.

Array conventions (stated once): ``embeddings: (n_frames, dim) float``,
``actions: (n_frames, action_dim) float``, ``episodes: (n_frames,) int`` (the unit of
every split and bootstrap). Formulas: DESIGN.md "Definitions fixed here" and
encoder-dis-as-framework.txt section III; each module docstring cites its source.

- :mod:`~realgap.metrics.space`: the shared DIS space (standardize, PCA, min-max).
- :mod:`~realgap.metrics.invariance`: DIS and centroid distance.
- :mod:`~realgap.metrics.probe`: Action Score and transfer AS (ridge probe).
- :mod:`~realgap.metrics.distribution`: MMD, Fréchet distance, C2ST (plain functions).
- :mod:`~realgap.metrics.twosample`: the two-sample scores with permutation nulls over
  episodes and bootstrap replicates from one per-episode design (what ``gap_suite`` uses).
- :mod:`~realgap.metrics.coverage`: sim support, outside fraction, density/coverage.
- :mod:`~realgap.metrics.bootstrap`: re-export of :mod:`realgap.stats` (intervals live there).
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
from realgap.metrics.suite import (
    METRICS,
    NULL_METRICS,
    RANK_METRIC,
    ResamplePlan,
    gap_suite,
    harmonic_mean,
    resample_plan,
    two_sample_gap,
)
from realgap.metrics.twosample import TWO_SAMPLE_SCORES, two_sample_scores

__all__ = [
    "METRICS",
    "NULL_METRICS",
    "RANK_METRIC",
    "TWO_SAMPLE_SCORES",
    "ASResult",
    "C2STResult",
    "CoverageReport",
    "DISResult",
    "Estimate",
    "GapSpace",
    "MMDResult",
    "ResamplePlan",
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
    "resample_plan",
    "transfer_action_score",
    "two_sample_gap",
    "two_sample_scores",
]
