"""Success statistics for protocols: a re-export of :mod:`realgap.stats` (their one home).

Wilson intervals, pooled rates, IQM, the stratified bootstrap and probability of improvement
live in :mod:`realgap.stats.rates`; the VAT one-sided dependent t-test in
:mod:`realgap.stats.ttest`. Kept so that ``from realgap.protocol.stats import ...`` still works.
"""

from __future__ import annotations

from realgap.stats.rates import (
    SuccessRate,
    iqm,
    pooled_rate,
    probability_of_improvement,
    stratified_bootstrap_ci,
    success_rate,
    wilson_interval,
)
from realgap.stats.ttest import PairedTTest, vat_ttest

__all__ = [
    "PairedTTest",
    "SuccessRate",
    "iqm",
    "pooled_rate",
    "probability_of_improvement",
    "stratified_bootstrap_ci",
    "success_rate",
    "vat_ttest",
    "wilson_interval",
]
