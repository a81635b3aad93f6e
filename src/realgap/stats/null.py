"""Permutation nulls over whole episodes: is a two-sample score more than noise?

Two halves of one domain already score a centroid distance, an MMD or a Fréchet distance
above 0, and a classifier's accuracy scatters around 0.5. A score means something only
against what the same computation gives when the domain labels carry no information. Under
H0 (sim and real episodes come from one distribution) the episodes are exchangeable, so the
labels are shuffled between WHOLE episodes (frames of one episode stay together: shuffling
frames would break their correlation and give a null that is far too narrow), keeping the
number of sim and real episodes, and the score is recomputed (Good, *Permutation Tests*,
2005, ch. 3; the episode-level design of DESIGN.md).

Reported per score: the permutation p-value ``(1 + #{null at least as extreme}) / (1 + B)``
(Phipson & Smyth 2010: never 0, exact level), and the null-standardized effect
``(observed - null mean) / null sd``, a number comparable across encoders and spaces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from realgap._rng import RngLike, as_rng
from realgap.errors import ConfigError, DataError
from realgap.stats._checks import check_count
from realgap.stats.resample import episode_codes

Alternative = Literal["greater", "less", "two-sided"]
ALTERNATIVES: tuple[str, ...] = ("greater", "less", "two-sided")


@dataclass(frozen=True)
class NullResult:
    """A score read against its permutation null.

    Attributes:
        observed: the score on the true labels.
        p_value: ``(1 + #{null at least as extreme as observed}) / (1 + n_perm)``.
        null_mean, null_sd: mean and standard deviation (ddof=1) of the null replicates.
        effect: ``(observed - null_mean) / null_sd`` (NaN when ``null_sd == 0``).
        n_perm: number of permutations (finite replicates only).
        alternative: ``"greater"`` (large scores are evidence of a gap), ``"less"`` or
            ``"two-sided"`` (distance from the null mean).
    """

    observed: float
    p_value: float
    null_mean: float
    null_sd: float
    effect: float
    n_perm: int
    alternative: str = "greater"

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return asdict(self)


def permuted_labels(ep_label: Any, n_perm: int, rng: RngLike = None) -> np.ndarray:
    """``(n_perm, E)`` relabelings of episodes: each row a random permutation of ``ep_label``.

    The number of episodes per label is preserved in every row (a permutation, not a
    re-draw). Same ``rng``, same rows.
    """
    n_perm = check_count(n_perm, "n_perm", minimum=0)
    labels = np.asarray(ep_label)
    if labels.ndim != 1:
        raise DataError(f"ep_label: expected one label per episode (1-D), got shape {labels.shape}")
    gen = as_rng(rng)
    out = np.empty((n_perm, labels.shape[0]), dtype=labels.dtype)
    for b in range(n_perm):
        out[b] = labels[gen.permutation(labels.shape[0])]
    return out


def null_from_replicates(observed: float, null_reps: Any,
                         alternative: str = "greater") -> NullResult:
    """Read ``observed`` against null replicates (non-finite replicates dropped)."""
    if alternative not in ALTERNATIVES:
        raise ConfigError(f"alternative: expected one of {ALTERNATIVES}, got {alternative!r}")
    reps = np.asarray(null_reps, dtype=np.float64).ravel()
    reps = reps[np.isfinite(reps)]
    obs = float(observed)
    if reps.size == 0 or not np.isfinite(obs):
        nan = float("nan")
        return NullResult(obs, nan, nan, nan, nan, int(reps.size), alternative)
    mean = float(reps.mean())
    sd = float(reps.std(ddof=1)) if reps.size > 1 else float("nan")
    # A relative tolerance so that a replicate equal to the observed score up to
    # floating-point noise counts as "at least as extreme" (ties go to H0).
    tol = 1e-12 * max(1.0, abs(obs))
    if alternative == "greater":
        extreme = np.sum(reps >= obs - tol)
    elif alternative == "less":
        extreme = np.sum(reps <= obs + tol)
    else:
        extreme = np.sum(np.abs(reps - mean) >= abs(obs - mean) - tol)
    p = (1.0 + float(extreme)) / (1.0 + reps.size)
    effect = (obs - mean) / sd if sd > 0 else float("nan")
    return NullResult(obs, p, mean, sd, float(effect), int(reps.size), alternative)


def permutation_test(stat_fn: Callable[[np.ndarray], float], groups: Any, is_real: Any, *,
                     n_perm: int = 200, rng: RngLike = None,
                     alternative: str = "greater") -> NullResult:
    """Generic episode-level permutation test (the plain reference route).

    Args:
        stat_fn: ``stat_fn(is_real_mask (n_frames,) bool) -> float``, the two-sample score
            for a given labelling of the frames.
        groups: ``(n_frames,)`` episode label of each frame.
        is_real: ``(n_frames,)`` bool, constant within each episode.
        n_perm: permutations.
        rng: seed or Generator.
        alternative: see :func:`null_from_replicates`.
    """
    mask = np.asarray(is_real, dtype=bool)
    if mask.shape != np.shape(groups):
        raise DataError(f"is_real: expected shape {np.shape(groups)} like groups, got {mask.shape}")
    codes, ep_stratum = episode_codes(groups, mask)
    ep_is_real = np.zeros(ep_stratum.shape[0], dtype=bool)
    ep_is_real[codes] = mask
    observed = float(stat_fn(mask))
    perms = permuted_labels(ep_is_real, n_perm, rng)
    reps = np.array([float(stat_fn(p[codes])) for p in perms], dtype=np.float64)
    return null_from_replicates(observed, reps, alternative)
