"""Dynamics-gap measures from transitions that need no deep model.

Both take a *source* (simulation) and a *target* ("real": a perturbed env or logged data)
:class:`~realgap.dynamics.transitions.Transitions` with the same observation and action
dimensions, and return an :class:`~realgap.dynamics._stats.Estimate` that is ~0 when the two
share their dynamics and grows with the difference (issue 5, section 3; the deep-model
counterpart is :mod:`realgap.dynamics.latent`).

1. :func:`prediction_gap` (cross-domain one-step error). A one-step model
   ``f(s, a) -> s' - s`` (ridge on degree-2 polynomial features, or an sklearn MLP) is fitted
   on 70% of the source trajectories. With squared errors averaged over standardized state
   dimensions (source-train scale),

       gap = MSE(f; target) / MSE(f; held-out source) - 1.

   0 means the source model predicts the target as well as fresh source data; 1 means twice
   the in-domain error. Interval: cluster bootstrap over the held-out source and the target
   trajectories with the fitted model held fixed (it covers evaluation sampling, not refits).

2. :func:`transition_c2st` (classifier two-sample test on (s, a, s' - s)). A gradient-boosted
   classifier is trained to tell source from target transitions with grouped 5-fold
   cross-validation (whole trajectories per fold, equal row counts per domain). The gap is
   ``2 * accuracy - 1`` (0: indistinguishable, 1: perfectly separable); the details carry the
   counts k/n, the accuracy, and a trajectory-bootstrap interval.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from realgap._rng import RngLike, as_rng
from realgap.dynamics._stats import Estimate, cluster_bootstrap
from realgap.dynamics.transitions import Transitions
from realgap.errors import ConfigError, DataError

PREDICTORS = ("ridge", "mlp")


def check_compatible(source: Transitions, target: Transitions) -> None:
    """Raise :class:`DataError` when observation or action widths differ."""
    if source.obs.shape[1] != target.obs.shape[1] or source.action.shape[1] != target.action.shape[1]:
        raise DataError(
            f"transitions: source has obs/action dims {source.obs.shape[1]}/"
            f"{source.action.shape[1]} but target has {target.obs.shape[1]}/"
            f"{target.action.shape[1]}; both must come from the same robot and observation"
        )
    for name, t in (("source", source), ("target", target)):
        if t.episodes.size < 2:
            raise DataError(f"transitions: {name} has {t.episodes.size} trajectory; need >= 2 "
                            "(splits and intervals are by trajectory)")


def split_episodes(tr: Transitions, test_fraction: float, rng: RngLike) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (train, test) over rows, splitting whole trajectories at random."""
    gen = as_rng(rng)
    eps = tr.episodes
    n_test = max(1, round(test_fraction * eps.size))
    if n_test >= eps.size:
        n_test = eps.size - 1
    test_eps = gen.choice(eps, size=n_test, replace=False)
    test = np.isin(tr.episode, test_eps)
    return ~test, test


def _predictor(kind: str, seed: int) -> Any:
    from sklearn.linear_model import Ridge
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler

    if kind == "ridge":
        return make_pipeline(StandardScaler(), PolynomialFeatures(2), Ridge(alpha=1.0))
    if kind == "mlp":
        return make_pipeline(StandardScaler(), MLPRegressor(
            hidden_layer_sizes=(128, 128), max_iter=300, early_stopping=True, random_state=seed))
    raise ConfigError(f"model: unknown one-step predictor {kind!r}; use one of {PREDICTORS}")


def prediction_gap(
    source: Transitions,
    target: Transitions,
    *,
    model: str = "ridge",
    test_fraction: float = 0.3,
    n_boot: int = 500,
    rng: RngLike = 0,
) -> Estimate:
    """Relative excess one-step error of a source-fitted dynamics model on the target.

    Returns an :class:`Estimate` of ``MSE_cross / MSE_in - 1`` (see the module docstring) with
    ``n`` = number of target trajectories; ``details`` holds both MSEs and row counts.
    """
    check_compatible(source, target)
    gen = as_rng(rng)
    train, test = split_episodes(source, test_fraction, gen)
    xs, ys = source.features()
    xt, yt = target.features()
    scale = ys[train].std(axis=0)
    scale[scale < 1e-12] = 1.0
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        f = _predictor(model, int(gen.integers(2**31))).fit(xs[train], ys[train] / scale)
        err_in = np.mean((f.predict(xs[test]) - ys[test] / scale) ** 2, axis=1)
        err_x = np.mean((f.predict(xt) - yt / scale) ** 2, axis=1)
    ep_in, ep_x = source.episode[test], target.episode

    def stat(i_in: np.ndarray, i_x: np.ndarray) -> float:
        return float(err_x[i_x].mean() / err_in[i_in].mean() - 1.0)

    value, lo, hi = cluster_bootstrap([ep_in, ep_x], stat, n_boot=n_boot, rng=gen)
    return Estimate(value, lo, hi, int(np.unique(ep_x).size), details={
        "metric": "prediction_gap", "model": model, "mse_in": float(err_in.mean()),
        "mse_cross": float(err_x.mean()), "n_source_test_rows": int(test.sum()),
        "n_target_rows": len(target), "n_source_train_rows": int(train.sum())})


def transition_c2st(
    source: Transitions,
    target: Transitions,
    *,
    n_folds: int = 5,
    max_iter: int = 100,
    n_boot: int = 500,
    rng: RngLike = 0,
) -> Estimate:
    """Classifier two-sample test on ``[s, a, s' - s]``: gap = 2 * accuracy - 1.

    ``max_iter`` is the number of boosting rounds of each fold's classifier.

    Rows of the larger set are subsampled (whole trajectories kept where possible) to equal
    counts; out-of-fold predictions come from ``GroupKFold`` over trajectories.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import GroupKFold

    check_compatible(source, target)
    gen = as_rng(rng)
    n = min(len(source), len(target))

    def take(t: Transitions) -> Transitions:
        return t if len(t) == n else t.subset(np.sort(gen.choice(len(t), size=n, replace=False)))

    s, t = take(source), take(target)
    x = np.vstack([np.hstack([d.obs, d.action, d.next_obs - d.obs]) for d in (s, t)])
    y = np.r_[np.zeros(n, dtype=int), np.ones(n, dtype=int)]
    groups = np.r_[s.episode, t.episode + s.episode.max() + 1]
    k = min(n_folds, np.unique(s.episode).size, np.unique(t.episode).size)
    if k < 2:
        raise DataError("transitions: the two-sample test needs >= 2 trajectories per domain")
    from threadpoolctl import threadpool_limits

    correct = np.zeros(2 * n, dtype=bool)
    seed = int(gen.integers(2**31))
    # OpenMP threads in HistGradientBoosting oversubscribe a shared machine badly (minutes
    # instead of seconds); small data needs one.
    with threadpool_limits(limits=1):
        for tr_idx, te_idx in GroupKFold(n_splits=k).split(x, y, groups):
            clf = HistGradientBoostingClassifier(max_iter=max_iter, early_stopping=False,
                                                 random_state=seed)
            clf.fit(x[tr_idx], y[tr_idx])
            correct[te_idx] = clf.predict(x[te_idx]) == y[te_idx]

    def stat(i: np.ndarray) -> float:
        return float(2.0 * correct[i].mean() - 1.0)

    value, lo, hi = cluster_bootstrap([groups], stat, n_boot=n_boot, rng=gen)
    kk = int(correct.sum())
    return Estimate(value, lo, hi, int(np.unique(groups).size), details={
        "metric": "c2st_gap", "accuracy": kk / (2 * n), "k": kk, "n_rows": 2 * n,
        "folds": k})


def gap_measures(
    source: Transitions, target: Transitions, *, rng: RngLike = 0, n_boot: int = 500,
    model: str = "ridge",
) -> dict[str, Estimate]:
    """Both baseline measures: ``{"prediction_gap": ..., "c2st_gap": ...}``."""
    gen = as_rng(rng)
    return {
        "prediction_gap": prediction_gap(source, target, model=model, n_boot=n_boot, rng=gen),
        "c2st_gap": transition_c2st(source, target, n_boot=n_boot, rng=gen),
    }
