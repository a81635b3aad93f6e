"""Uncertainty in one place: estimates with intervals, the episode bootstrap, permutation
nulls, paired differences and rankings with ties.

Every interval in realgap resamples whole episodes; no interval is widened to contain its
point; every two-sample score can be read against a permutation null over episodes. The
metric functions (``realgap.metrics``, ``realgap.dynamics``, ``realgap.protocol``) are pure
functions of arrays and never bootstrap themselves: these wrappers do (STYLE.md rule 2).
This package imports only numpy/scipy and realgap's error and rng helpers.
"""

from realgap.stats.intervals import (
    METHODS,
    Estimate,
    bias_corrected_interval,
    estimate_from_replicates,
    interval,
    percentile_interval,
)
from realgap.stats.null import (
    ALTERNATIVES,
    NullResult,
    null_from_replicates,
    permutation_test,
    permuted_labels,
)
from realgap.stats.ranking import RankEntry, paired_difference, rank_with_ties
from realgap.stats.rates import (  # noqa: F401  (success statistics)
    SuccessRate,
    hierarchical_mean_replicates,
    iqm,
    pooled_rate,
    probability_of_improvement,
    stratified_bootstrap_ci,
    success_rate,
    wilson_interval,
)
from realgap.stats.resample import (
    bootstrap_ci,
    bootstrap_counts,
    cluster_bootstrap,
    episode_codes,
    frames_of_episodes,
    ratio_replicates,
    rows_of_draw,
)
from realgap.stats.ttest import PairedTTest, vat_ttest  # noqa: F401

__all__ = [
    "ALTERNATIVES",
    "METHODS",
    "Estimate",
    "NullResult",
    "RankEntry",
    "bias_corrected_interval",
    "bootstrap_ci",
    "bootstrap_counts",
    "cluster_bootstrap",
    "episode_codes",
    "estimate_from_replicates",
    "frames_of_episodes",
    "interval",
    "null_from_replicates",
    "paired_difference",
    "percentile_interval",
    "permutation_test",
    "permuted_labels",
    "rank_with_ties",
    "ratio_replicates",
    "rows_of_draw",
]
