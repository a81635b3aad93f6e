"""Dynamics-gap measures from transitions that need no deep model.

Both take a *source* (simulation) and a *target* ("real": a perturbed env or logged data)
:class:`~realgap.dynamics.transitions.Transitions` with the same observation and action
dimensions, and return a :class:`GapMeasure`: the score as a :class:`realgap.stats.Estimate`
(interval from resampling whole trajectories, stratified by domain) read against a
permutation null over whole trajectories (:class:`realgap.stats.NullResult`: p-value and
null-standardized effect). Both are ~0 when the two domains share their dynamics and grow
with the difference (measures of transitions alone; the deep-model counterpart is
:mod:`realgap.dynamics.latent`).

One-step model, cross-fitted. ``f(s, a) -> s' - s`` (ridge on degree-2 polynomial features,
or an sklearn MLP). Source trajectories are split into K folds (K = ``n_folds``, default 5);
the model of fold k is fitted on the other source folds. Every source row is predicted by the
model that never saw its trajectory, and every target trajectory, assigned at random to a
fold, by that fold's model. Squared errors are averaged over state dimensions standardized
with the fold's training scale. So a source row and a target row of one fold meet the same
model under the same conditions: with shared dynamics their errors are exchangeable.

1. :func:`prediction_gap` (cross-domain excess one-step error)::

       gap = MSE(f; target) / MSE(f; source, out of fold) - 1

   with MSE taken as the *geometric* mean of the rows' errors (``geometric=True``, the
   default): 0 means the source model predicts a typical target transition as well as a
   typical fresh source one; 1: twice the error. A smooth one-step model extrapolates wildly
   on the rare states outside its training range, and under identical dynamics one such row
   moved the arithmetic ratio to 11 (InvertedPendulum-v5, measured); the geometric mean is
   robust to it (null intervals +-0.15 instead of [-0.2, 36]) and keeps a graded gravity
   ladder monotone. ``geometric=False`` gives the plain arithmetic MSE ratio. Null: domain
   labels shuffled between whole trajectories *within each fold* (the models held fixed),
   one-sided (a gap is excess error).

2. :func:`transition_c2st` (classifier two-sample test, Lopez-Paz & Oquab 2017). Features
   ``[s, a, s' - s]`` plus, by default, the cross-fitted one-step residual
   ``(s' - s) - f(s, a)`` (standardized): with near-deterministic dynamics the two domains'
   transitions lie on two thin manifolds that trees find hard to tell apart from
   ``[s, a, s' - s]`` alone, while the residual is centred at 0 in the source and shifted in
   the target. A gradient-boosted classifier is trained on half of each domain's
   trajectories, its decision threshold set at the training share of target rows (the
   balanced Bayes rule), and scored on the other half::

       gap = 2 * balanced accuracy - 1 = acc(source) + acc(target) - 1

   (0: indistinguishable, 1: perfectly separable). Null: domain labels shuffled between the
   held-out trajectories, the classifier held fixed (exact: it never saw them).

Why not the earlier designs (measured on InvertedPendulum-v5 with identical dynamics):
the C2ST used ``GroupKFold`` cross-validation, whose folds are balanced in trajectories but not
in domains, so a fold's classifier leans to the class its held-out part lacks (accuracy below
chance, intervals excluding 0; a held-out trajectory also pulls its own training neighbours
away: anti-learning); and the prediction gap compared the target's full set with a 30%
held-out source split, a ratio of means of heavy-tailed errors over sets of different size
whose median is above 1 under the null. Intervals here come from the trajectory bootstrap with
the fitted models held fixed: they cover which trajectories were observed, not refits; the
permutation null is the calibrated test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from realgap._rng import RngLike, as_rng
from realgap.dynamics.transitions import Transitions
from realgap.errors import ConfigError, DataError
from realgap.stats import (
    Estimate,
    NullResult,
    bootstrap_counts,
    episode_codes,
    estimate_from_replicates,
    null_from_replicates,
    permuted_labels,
)
from realgap.stats._checks import check_alpha, check_count

PREDICTORS = ("ridge", "mlp")


@dataclass(frozen=True)
class GapMeasure:
    """A dynamics-gap score: its estimate, its permutation null, and how it was computed.

    Attributes:
        metric: ``prediction_gap``, ``c2st_gap`` or ``latent_map_distance``.
        estimate: value with its trajectory-bootstrap interval; ``n`` = trajectories the
            interval resamples, ``n_frames`` = transitions behind it.
        null: the permutation null over whole trajectories (None where none is computed).
        details: what was computed (errors, accuracies, counts, model).
    """

    metric: str
    estimate: Estimate
    null: NullResult | None = None
    details: dict[str, Any] | None = None

    @property
    def value(self) -> float:
        return self.estimate.value

    @property
    def lo(self) -> float:
        return self.estimate.lo

    @property
    def hi(self) -> float:
        return self.estimate.hi

    @property
    def n(self) -> int:
        return self.estimate.n

    @property
    def bias(self) -> bool:
        """True when the point lies outside its own interval (reported, never hidden)."""
        return self.estimate.bias

    @property
    def p_value(self) -> float:
        """Permutation p-value (NaN without a null)."""
        return float("nan") if self.null is None else self.null.p_value

    def as_dict(self) -> dict[str, Any]:
        """Plain dict: the estimate's fields, ``bias``, the null's p-value and effect, details."""
        out: dict[str, Any] = {"metric": self.metric, "unit": "trajectories",
                               **self.estimate.as_dict()}
        if self.null is not None:
            n = self.null
            out.update({"p_value": n.p_value, "null_mean": n.null_mean, "null_sd": n.null_sd,
                        "effect": n.effect, "n_perm": n.n_perm, "alternative": n.alternative})
        out.update(self.details or {})
        return out


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


def _trajectory_folds(episode: np.ndarray, k: int, gen: np.random.Generator) -> np.ndarray:
    """Fold ``(N,)`` of each row: trajectories dealt at random into ``k`` near-equal folds."""
    eps, inverse = np.unique(episode, return_inverse=True)
    fold_of_ep = np.empty(eps.size, dtype=np.int64)
    fold_of_ep[gen.permutation(eps.size)] = np.arange(eps.size) % k
    return fold_of_ep[inverse.ravel()]


@dataclass(frozen=True)
class CrossFit:
    """Out-of-fold one-step residuals of a source model on both domains (module docstring).

    ``resid_*``: ``(N, S)`` standardized residuals ``(s' - s) / scale - f(s, a)``;
    ``err_*`` their row means of squares ``(N,)``; ``fold_*`` the fold of each row.
    """

    resid_source: np.ndarray
    resid_target: np.ndarray
    fold_source: np.ndarray
    fold_target: np.ndarray
    n_folds: int
    model: str

    @property
    def err_source(self) -> np.ndarray:
        return np.mean(self.resid_source**2, axis=1)

    @property
    def err_target(self) -> np.ndarray:
        return np.mean(self.resid_target**2, axis=1)


def cross_fit(source: Transitions, target: Transitions, *, model: str = "ridge",
              n_folds: int = 5, rng: RngLike = 0) -> CrossFit:
    """Fit the one-step model K times over source trajectory folds (module docstring)."""
    check_compatible(source, target)
    n_folds = check_count(n_folds, "n_folds", minimum=2)
    _predictor(model, 0)  # an unknown model fails before any fitting
    gen = as_rng(rng)
    k = min(n_folds, source.episodes.size)
    fs = _trajectory_folds(source.episode, k, gen)
    ft = _trajectory_folds(target.episode, k, gen)
    xs, ys = source.features()
    xt, yt = target.features()
    rs, rt = np.empty_like(ys), np.empty_like(yt)
    seed = int(gen.integers(2**31))
    from threadpoolctl import threadpool_limits

    # One thread: small fits, and the numbers must not depend on the core count.
    with threadpool_limits(limits=1):
        for j in range(k):
            train = fs != j
            scale = ys[train].std(axis=0)
            scale[scale < 1e-12] = 1.0
            f = _predictor(model, seed + j).fit(xs[train], ys[train] / scale)
            rs[~train] = ys[~train] / scale - f.predict(xs[~train])
            m = ft == j
            if m.any():
                rt[m] = yt[m] / scale - f.predict(xt[m])
    return CrossFit(rs, rt, fs, ft, k, model)


def _codes(source: Transitions, target: Transitions) -> tuple[np.ndarray, np.ndarray]:
    """Trajectory codes over the stacked rows (source first) and each trajectory's domain
    (0 source, 1 target): a trajectory is a (domain, episode id) pair."""
    dom = np.r_[np.zeros(len(source), np.int64), np.ones(len(target), np.int64)]
    return episode_codes(np.r_[source.episode, target.episode], dom)


def excess_error_score(
    err: np.ndarray, is_target: np.ndarray, groups: np.ndarray, folds: np.ndarray | None = None,
    *, n_boot: int = 500, n_perm: int = 1000, alpha: float = 0.05, rng: RngLike = None,
    geometric: bool = False,
) -> tuple[Estimate, NullResult | None]:
    """``mean(err[target]) / mean(err[source]) - 1`` with its interval and null (fast route);
    ``geometric``: geometric means, ``exp(mean log err[target] - mean log err[source]) - 1``.

    Args:
        err: ``(N,)`` per-row errors; is_target: ``(N,)`` bool, constant per trajectory;
        groups: ``(N,)`` trajectory ids (a trajectory is a (domain, id) pair);
        folds: ``(N,)`` cross-fit fold of each row, constant per trajectory; labels are
            permuted within folds (None: one fold).

    Replicates are evaluated from per-trajectory sums for all draws at once; the draws are
    those of :func:`realgap.stats.bootstrap_ci` (stratified by domain) and
    :func:`realgap.stats.permuted_labels` with the same ``rng``, which the tests check.
    """
    n_boot = check_count(n_boot, "n_boot", minimum=0)
    n_perm = check_count(n_perm, "n_perm", minimum=0)
    gen = as_rng(rng)
    mask = np.asarray(is_target, dtype=bool)
    codes, ep_dom = episode_codes(groups, mask)
    e = np.asarray(err, dtype=np.float64)
    if geometric:
        # a floor far below any real error, so that an exact 0 does not give -inf
        e = np.log(np.maximum(e, 1e-12 * max(float(np.median(e)), 1e-300)))
    sums = np.bincount(codes, weights=e)
    sizes = np.bincount(codes).astype(np.float64)
    is_t = ep_dom.astype(np.float64)

    def stat(w_target: np.ndarray, w_source: np.ndarray) -> np.ndarray:
        # weights (..., E): draw counts or labels per trajectory
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            m_t, m_s = (w_target @ sums) / (w_target @ sizes), (w_source @ sums) / (w_source @ sizes)
            return np.exp(m_t - m_s) - 1.0 if geometric else m_t / m_s - 1.0

    point = float(stat(is_t, 1.0 - is_t))
    reps = None
    if n_boot:
        c = bootstrap_counts(ep_dom, n_boot, gen)
        reps = stat(c * is_t, c * (1.0 - is_t))
    est = estimate_from_replicates(point, reps, n=ep_dom.size, n_frames=mask.size, alpha=alpha)
    if not n_perm:
        return est, None
    ep_fold = np.zeros(ep_dom.size, np.int64)
    if folds is not None:
        ep_fold[codes] = np.asarray(folds)
    # Labels shuffled within each fold: a fold's source and target trajectories met the same
    # model, so there they are exchangeable under H0.
    lab = np.empty((n_perm, ep_dom.size))
    for j in np.unique(ep_fold):
        cols = np.flatnonzero(ep_fold == j)
        lab[:, cols] = permuted_labels(is_t[cols], n_perm, gen)
    return est, null_from_replicates(point, stat(lab, 1.0 - lab), "greater")


def prediction_gap(
    source: Transitions,
    target: Transitions,
    *,
    model: str = "ridge",
    n_folds: int = 5,
    n_boot: int = 500,
    n_perm: int = 1000,
    alpha: float = 0.05,
    rng: RngLike = 0,
    fit: CrossFit | None = None,
    geometric: bool = True,
) -> GapMeasure:
    """Relative excess one-step error of a source-fitted dynamics model on the target.

    Args:
        source, target: transitions of the two domains (same dimensions, >= 2 trajectories).
        model: ``ridge`` or ``mlp``.
        n_folds: source trajectory folds of the cross-fit.
        n_boot: trajectory-bootstrap replicates (0: no interval).
        n_perm: permutations of the null (0: no null).
        alpha: ``1 - alpha`` is the interval's coverage.
        rng: seed or Generator; same rng, same numbers.
        fit: a :func:`cross_fit` of the same data to reuse (:func:`gap_measures` shares one).
        geometric: ratio of geometric mean errors (default, robust) or of arithmetic means.

    Returns:
        :class:`GapMeasure` of ``MSE_target / MSE_source_out_of_fold - 1``; ``n`` = source +
        target trajectories; ``details`` holds both MSEs and row counts.
    """
    check_alpha(alpha)
    n_boot = check_count(n_boot, "n_boot", minimum=0)
    n_perm = check_count(n_perm, "n_perm", minimum=0)
    gen = as_rng(rng)
    cf = fit or cross_fit(source, target, model=model, n_folds=n_folds, rng=gen)
    codes, ep_dom = _codes(source, target)
    est, null = excess_error_score(
        np.r_[cf.err_source, cf.err_target], ep_dom[codes].astype(bool),
        np.r_[source.episode, target.episode], np.r_[cf.fold_source, cf.fold_target],
        n_boot=n_boot, n_perm=n_perm, alpha=alpha, rng=gen, geometric=geometric)
    return GapMeasure("prediction_gap", est, null, {
        "model": cf.model, "folds": cf.n_folds, "mse_source": float(cf.err_source.mean()),
        "mse_target": float(cf.err_target.mean()), "geometric": bool(geometric),
        "n_source_rows": len(source),
        "n_target_rows": len(target), "n_source_trajectories": int(source.episodes.size),
        "n_target_trajectories": int(target.episodes.size)})


def balanced_accuracy_score(
    says_target: np.ndarray, is_target: np.ndarray, groups: np.ndarray, *, n_boot: int = 500,
    n_perm: int = 1000, alpha: float = 0.05, rng: RngLike = None,
) -> tuple[Estimate, NullResult | None]:
    """``acc(source) + acc(target) - 1`` of fixed predictions, interval and null (fast route).

    Args:
        says_target: ``(N,)`` the classifier's call per held-out row (1: target);
        is_target: ``(N,)`` bool truth, constant per trajectory; groups: ``(N,)`` ids.

    The predictions are held fixed: the interval resamples the held-out trajectories
    (stratified by domain), the null permutes their labels. Same draws as
    :func:`realgap.stats.bootstrap_ci` and :func:`realgap.stats.permutation_test` with the
    same ``rng``.
    """
    n_boot = check_count(n_boot, "n_boot", minimum=0)
    n_perm = check_count(n_perm, "n_perm", minimum=0)
    gen = as_rng(rng)
    mask = np.asarray(is_target, dtype=bool)
    codes, ep_dom = episode_codes(groups, mask)
    sizes = np.bincount(codes).astype(np.float64)
    called = np.bincount(codes, weights=np.asarray(says_target, dtype=np.float64))
    is_t = ep_dom.astype(np.float64)

    def stat(w_target: np.ndarray, w_source: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            acc_t = (w_target @ called) / (w_target @ sizes)
            acc_s = (w_source @ (sizes - called)) / (w_source @ sizes)
        return acc_t + acc_s - 1.0

    point = float(stat(is_t, 1.0 - is_t))
    reps = None
    if n_boot:
        c = bootstrap_counts(ep_dom, n_boot, gen)
        reps = stat(c * is_t, c * (1.0 - is_t))
    est = estimate_from_replicates(point, reps, n=ep_dom.size, n_frames=mask.size, alpha=alpha)
    if not n_perm:
        return est, None
    lab = permuted_labels(is_t, n_perm, gen)
    return est, null_from_replicates(point, stat(lab, 1.0 - lab), "greater")


def _half_split(ep_dom: np.ndarray, test_fraction: float, gen: np.random.Generator) -> np.ndarray:
    """Boolean ``(E,)``: the held-out trajectories, ``test_fraction`` of each domain (>= 1 each
    side of the split)."""
    test = np.zeros(ep_dom.size, dtype=bool)
    for d in (0, 1):
        cols = np.flatnonzero(ep_dom == d)
        n_test = min(max(1, round(test_fraction * cols.size)), cols.size - 1)
        test[gen.choice(cols, size=n_test, replace=False)] = True
    return test


def transition_c2st(
    source: Transitions,
    target: Transitions,
    *,
    residual: bool = True,
    model: str = "ridge",
    n_folds: int = 5,
    test_fraction: float = 0.5,
    max_iter: int = 100,
    n_boot: int = 500,
    n_perm: int = 1000,
    alpha: float = 0.05,
    rng: RngLike = 0,
    fit: CrossFit | None = None,
) -> GapMeasure:
    """Classifier two-sample test on transitions: gap = 2 * balanced accuracy - 1.

    Args:
        residual: add the cross-fitted one-step residual to ``[s, a, s' - s]`` (module
            docstring); False gives the plain transition C2ST.
        model, n_folds, fit: the one-step cross-fit behind the residual feature.
        test_fraction: share of each domain's trajectories held out for scoring.
        max_iter: boosting rounds of the classifier (``HistGradientBoostingClassifier``,
            fixed capacity: it is scored on trajectories it never saw, so overfitting only
            costs power, never validity).
        n_boot, n_perm, alpha, rng: as :func:`prediction_gap`.

    Returns:
        :class:`GapMeasure`; ``n`` = held-out trajectories (the interval resamples them);
        ``details`` the per-domain accuracies with counts k/n and the split sizes.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    check_alpha(alpha)
    n_boot = check_count(n_boot, "n_boot", minimum=0)
    n_perm = check_count(n_perm, "n_perm", minimum=0)
    max_iter = check_count(max_iter, "max_iter", minimum=1)
    if not 0 < test_fraction < 1:
        raise ConfigError(f"test_fraction: expected a share in (0, 1), got {test_fraction!r}")
    check_compatible(source, target)
    gen = as_rng(rng)
    x = np.vstack([np.hstack([d.obs, d.action, d.next_obs - d.obs]) for d in (source, target)])
    if residual:
        cf = fit or cross_fit(source, target, model=model, n_folds=n_folds, rng=gen)
        x = np.hstack([x, np.vstack([cf.resid_source, cf.resid_target])])
    codes, ep_dom = _codes(source, target)
    y = ep_dom[codes]
    test_ep = _half_split(ep_dom, test_fraction, gen)
    test = test_ep[codes]
    ytr = y[~test]
    share = ytr.mean()
    from threadpoolctl import threadpool_limits

    # OpenMP threads in HistGradientBoosting oversubscribe a shared machine badly.
    with threadpool_limits(limits=1):
        clf = HistGradientBoostingClassifier(max_iter=max_iter, early_stopping=False,
                                             random_state=int(gen.integers(2**31)))
        clf.fit(x[~test], ytr)
        says_target = np.zeros(len(y))
        # Balanced decision rule: "target" when the odds exceed the training prior's odds,
        # i.e. the Bayes rule for equal priors. The classifier has no lean to either domain,
        # so its balanced accuracy is 1/2 in expectation under H0 whatever the row counts.
        # (Same rule as class-balanced sample weights, without sklearn's slow weighted binning.)
        says_target[test] = clf.predict_proba(x[test])[:, 1] > share
    est, null = balanced_accuracy_score(says_target[test], y[test] == 1, codes[test],
                                        n_boot=n_boot, n_perm=n_perm, alpha=alpha, rng=gen)
    yt, st = y[test], says_target[test]
    k_t, n_t = int(st[yt == 1].sum()), int((yt == 1).sum())
    k_s, n_s = int((st[yt == 0] == 0).sum()), int((yt == 0).sum())
    return GapMeasure("c2st_gap", est, null, {
        "balanced_accuracy": (est.value + 1.0) / 2.0, "k_source": k_s, "n_source": n_s,
        "k_target": k_t, "n_target": n_t, "residual_feature": bool(residual),
        "n_train_trajectories": int((~test_ep).sum()),
        "n_test_trajectories": int(test_ep.sum()),
        "max_iter": max_iter})


def gap_measures(
    source: Transitions, target: Transitions, *, rng: RngLike = 0, n_boot: int = 500,
    n_perm: int = 1000, model: str = "ridge", max_iter: int = 100,
) -> dict[str, GapMeasure]:
    """Both baseline measures on one shared cross-fit:
    ``{"prediction_gap": ..., "c2st_gap": ...}`` (``max_iter``: the C2ST's boosting rounds)."""
    gen = as_rng(rng)
    cf = cross_fit(source, target, model=model, rng=gen)
    return {
        "prediction_gap": prediction_gap(source, target, n_boot=n_boot, n_perm=n_perm,
                                         rng=gen, fit=cf),
        "c2st_gap": transition_c2st(source, target, max_iter=max_iter, n_boot=n_boot,
                                    n_perm=n_perm, rng=gen, fit=cf),
    }
