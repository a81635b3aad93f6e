"""The dynamics gap: perturbed MuJoCo bodies, degradation curves, transition-based gap
measures, the latent cross-domain model, and system identification
(mbrl-latent-gap.txt).

Importing this package is light (numpy only); MuJoCo, Gymnasium, torch and
stable-baselines3 load inside the functions that need them.

>>> from realgap.dynamics import perturb, Perturbation, factor_perturbation
"""

from __future__ import annotations

from realgap.dynamics.gap import gap_measures, prediction_gap, transition_c2st
from realgap.dynamics.perturb import (
    DYNAMICS_FACTORS,
    NAMED_FACTORS,
    REFERENCE_SCALES,
    AppliedPerturbation,
    Perturbation,
    factor_perturbation,
    halfcheetah_cases,
    make_env,
    perturb,
)
from realgap.dynamics.transitions import Transitions, collect, collect_perturbed, load, save
from realgap.stats import Estimate  # the package's one Estimate, re-exported for old imports

__all__ = [
    "DYNAMICS_FACTORS",
    "NAMED_FACTORS",
    "REFERENCE_SCALES",
    "AppliedPerturbation",
    "Estimate",
    "Perturbation",
    "Transitions",
    "collect",
    "collect_perturbed",
    "factor_perturbation",
    "gap_measures",
    "halfcheetah_cases",
    "load",
    "make_env",
    "perturb",
    "prediction_gap",
    "save",
    "transition_c2st",
]
