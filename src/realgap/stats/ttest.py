"""The one-sided dependent t-test of Visual Alignment Testing (visual-alignment-testing.txt,
III-C, equations 4-7; DESIGN.md "Visual Alignment Testing").

Paired outcomes over the same initial states (or checkpoints), ``D_i = r_B,i - r_B',i``,
H0: ``mean(D) <= eps`` against H1: ``mean(D) > eps``::

    t = (mean(D) - eps) / (sd(D) / sqrt(n))        sd at ddof = 1

reject H0 when ``t > t_{1-alpha, n-1}``; ``p = 1 - F_{t, n-1}(t)``. Identical to
``scipy.stats.ttest_rel(r_b - eps, r_b_prime, alternative="greater")``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from realgap.errors import ConfigError, DataError
from realgap.stats._checks import check_alpha


@dataclass(frozen=True)
class PairedTTest:
    """One-sided dependent t-test of H0: mean(D) <= eps (module docstring).

    Attributes:
        t: the statistic (``+inf``/``-inf`` when all differences are equal and differ
            from ``eps``; NaN when they all equal ``eps``).
        critical: ``t_{1-alpha, n-1}``.
        n: number of pairs; ``df = n - 1``.
        eps, alpha: threshold and level.
        p_value: one-sided p-value.
        mean_diff, sd_diff: mean and sample sd (ddof=1) of ``D``.
        reject: True when ``t > critical`` (H0 rejected: a significant drop from
            ``r_b`` to ``r_b_prime`` beyond ``eps``).
        decision: the verdict in words.
    """

    t: float
    critical: float
    n: int
    eps: float
    alpha: float
    p_value: float
    mean_diff: float
    sd_diff: float
    reject: bool
    decision: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def vat_ttest(r_b: Any, r_b_prime: Any, eps: float = 0.0, alpha: float = 0.05) -> PairedTTest:
    """The VAT test on paired outcomes ``r_b``, ``r_b_prime`` (1-D, same length n >= 2:
    success 0/1 per paired initial state, or success rates per checkpoint)."""
    from scipy.stats import t as t_dist

    a = check_alpha(alpha)
    rb = np.asarray(r_b, dtype=np.float64).ravel()
    rbp = np.asarray(r_b_prime, dtype=np.float64).ravel()
    if rb.shape != rbp.shape:
        raise DataError(f"r_b has {rb.size} outcomes but r_b_prime has {rbp.size}; the test "
                        "needs paired outcomes over the same initial states")
    if rb.size < 2:
        raise DataError(f"r_b: the paired t-test needs at least 2 pairs, got {rb.size}")
    if not (np.all(np.isfinite(rb)) and np.all(np.isfinite(rbp))):
        raise DataError("r_b/r_b_prime: contain NaN or inf; drop the unfinished pairs")
    eps = float(eps)
    if not np.isfinite(eps):
        raise ConfigError(f"eps: expected a finite threshold, got {eps!r}")
    d = rb - rbp
    n = d.size
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    crit = float(t_dist.ppf(1 - a, n - 1))
    if sd > 0:
        t = (mean - eps) / (sd / np.sqrt(n))
        p = float(t_dist.sf(t, n - 1))
    elif mean > eps:
        t, p = float("inf"), 0.0
    elif mean < eps:
        t, p = float("-inf"), 1.0
    else:
        t, p = float("nan"), float("nan")
    reject = bool(t > crit)
    decision = (
        f"reject H0 (mean difference {mean:.3f} > eps {eps:g} at level {a:g}): "
        "the frozen encoder costs performance, the visual encoder takes part in decisions"
        if reject else
        f"cannot reject H0 (mean difference {mean:.3f} <= eps {eps:g} not refuted at level {a:g})"
    )
    return PairedTTest(float(t), crit, n, eps, a, p, mean, sd, reject, decision)


__all__ = ["PairedTTest", "vat_ttest"]
