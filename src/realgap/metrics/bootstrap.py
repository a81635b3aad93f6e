"""Thin re-export of :mod:`realgap.stats` (the package's one uncertainty module), kept so
that older imports keep working; new code imports from ``realgap.stats``."""

from realgap.stats import (
    Estimate,
    bootstrap_ci,
    bootstrap_counts,
    episode_codes,
    percentile_interval,
    ratio_replicates,
)

__all__ = ["Estimate", "bootstrap_ci", "bootstrap_counts", "episode_codes",
           "percentile_interval", "ratio_replicates"]
