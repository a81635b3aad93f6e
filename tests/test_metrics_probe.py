"""Action Score and transfer AS: values, the episode split, and an independent sklearn route."""

from __future__ import annotations

import numpy as np
import pytest

from realgap.errors import ConfigError, DataError
from realgap.metrics import action_score, episode_split, transfer_action_score
from realgap.metrics.probe import (
    ALPHA_GRID,
    action_score_ceiling,
    action_score_crossfit,
    action_score_floor,
    episode_folds,
    shuffle_between_episodes,
    transfer_action_score_all,
)


def _episodes(n_eps: int, steps: int) -> np.ndarray:
    return np.repeat(np.arange(n_eps), steps)


def _linear_data(seed: int, n_eps: int = 30, steps: int = 20, dim: int = 24, adim: int = 3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_eps * steps, dim))
    w = rng.normal(size=(dim, adim))
    return x, x @ w, _episodes(n_eps, steps), w


def test_split_is_by_episode_and_deterministic() -> None:
    ep = _episodes(10, 7)
    tr, va = episode_split(ep, 0.2, rng=5)
    assert not set(ep[tr]) & set(ep[va])
    assert len(set(ep[va])) == 2 and (tr | va).all()
    _, va2 = episode_split(ep, 0.2, rng=5)
    assert np.array_equal(va, va2)
    with pytest.raises(DataError, match="at least 2 episodes"):
        episode_split(np.zeros(5), 0.2)


def test_linear_actions_score_near_one_and_independent_near_zero() -> None:
    x, y, ep, _ = _linear_data(0)
    assert action_score(x, y, ep).score > 0.999
    noise = np.random.default_rng(1).normal(size=y.shape)
    r = action_score(x, noise, ep)
    assert r.score < 0.1
    assert r.n_eval_episodes == 6 and r.n_train_episodes == 24


def test_matches_sklearn_ridge_on_the_same_split() -> None:
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(2)
    x, y, ep, _ = _linear_data(3)
    y = y + 2.0 * rng.normal(size=y.shape)
    r = action_score(x, y, ep, alpha=1.0, rng=11)
    tr, va = episode_split(ep, 0.2, rng=11)
    xm, xsd = x[tr].mean(0), x[tr].std(0)
    ym, ysd = y[tr].mean(0), y[tr].std(0)
    model = Ridge(alpha=1.0).fit((x[tr] - xm) / xsd, (y[tr] - ym) / ysd)
    mse = np.mean((model.predict((x[va] - xm) / xsd) - (y[va] - ym) / ysd) ** 2)
    assert r.mse == pytest.approx(mse, rel=1e-8)
    assert r.score == pytest.approx(min(max(1 - mse, 0), 1), rel=1e-8)


def test_transfer_drops_when_real_shifts_along_action_directions() -> None:
    x, y, ep, w = _linear_data(4)
    rng = np.random.default_rng(5)
    xr = rng.normal(size=x.shape)
    yr = xr @ w
    same = transfer_action_score(x, y, ep, xr, yr, ep).score
    # A shift along the action-relevant directions (columns of w) changes what the
    # sim-trained probe reads; a shift orthogonal to them does not.
    q, _ = np.linalg.qr(np.c_[w, rng.normal(size=(24, 21))])
    along = xr + 1.5 * q[:, :3].sum(1)
    ortho = xr + 1.5 * q[:, 3:].sum(1) / np.sqrt(7)
    s_along = transfer_action_score(x, y, ep, along, yr, ep).score
    s_ortho = transfer_action_score(x, y, ep, ortho, yr, ep).score
    assert same > 0.999 and s_ortho > 0.99
    assert s_along < same - 0.5


def test_bad_inputs_name_the_argument() -> None:
    x, y, ep, _ = _linear_data(6)
    with pytest.raises(DataError, match="actions: 10 rows"):
        action_score(x, y[:10], ep)
    with pytest.raises(DataError, match="episodes"):
        action_score(x, y, ep[:-1])
    with pytest.raises(DataError, match="action dims"):
        transfer_action_score(x, y, ep, x, y[:, :2], ep)


def _wide_linear_problem(seed: int = 0, n_eps: int = 20, per_ep: int = 12, dim: int = 400):
    """Fewer frames than dimensions, actions linear in 5 directions plus noise."""
    rng = np.random.default_rng(seed)
    n = n_eps * per_ep
    x = rng.normal(size=(n, dim))
    w = np.zeros((dim, 3))
    w[:5] = rng.normal(size=(5, 3))
    y = x @ w + 0.3 * rng.normal(size=(n, 3))
    return x, y, np.repeat(np.arange(n_eps), per_ep)


def test_cv_penalty_rescues_the_probe_when_dimensions_exceed_frames() -> None:
    # Like image embeddings of a small demo set: 160 frames in 400 dims, saturated
    # (bang-bang) actions of 3 latent directions, 80 nuisance directions of equal scale.
    rng = np.random.default_rng(0)
    z, u = rng.normal(size=(160, 3)), rng.normal(size=(160, 80))
    x = np.hstack([z, u]) @ rng.normal(size=(83, 400)) + 0.5 * rng.normal(size=(160, 400))
    y, ep = np.clip(2 * z, -1, 1), np.repeat(np.arange(16), 10)
    fixed = action_score(x, y, ep, alpha=1.0, rng=0)
    cv = action_score(x, y, ep, rng=0)  # alpha="cv" is the default
    assert fixed.score < 0.3           # alpha = 1 fits the nuisance directions
    assert cv.score > 0.45 and cv.alpha > 1.0


def test_select_alpha_matches_sklearn_group_cv() -> None:
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GroupKFold

    from realgap.metrics.probe import ALPHA_GRID, select_alpha

    x, y, ep = _wide_linear_problem(seed=3, n_eps=10, per_ep=8, dim=50)
    xs = (x - x.mean(0)) / x.std(0)
    ys = (y - y.mean(0)) / y.std(0)
    errs = []
    for a in ALPHA_GRID:
        e = 0.0
        for tr, te in GroupKFold(n_splits=5).split(xs, ys, ep):
            pred = Ridge(alpha=a, fit_intercept=False).fit(xs[tr], ys[tr]).predict(xs[te])
            e += float(((ys[te] - pred) ** 2).sum())
        errs.append(e)
    assert select_alpha(xs, ys, ep) == pytest.approx(ALPHA_GRID[int(np.argmin(errs))])


def test_constant_action_dimension_is_not_scored() -> None:
    x, y, ep = _wide_linear_problem(seed=1, dim=30)
    with_gripper = np.column_stack([y, -np.ones(len(y))])  # a gripper that never moves
    a = action_score(x, y, ep, alpha=2.0, rng=4)
    b = action_score(x, with_gripper, ep, alpha=2.0, rng=4)
    assert b.score == pytest.approx(a.score, abs=1e-12)   # not inflated by a free 0 error
    assert a.n_action_dims == b.n_action_dims == y.shape[1]
    with pytest.raises(DataError, match="constant"):
        action_score(x, np.ones((len(x), 2)), ep, rng=0)


@pytest.mark.parametrize("alpha", ["loo", -1.0, float("nan"), float("inf")])
def test_bad_ridge_penalty_is_a_config_error(alpha: object) -> None:
    x, y, ep = _wide_linear_problem(seed=2, dim=10)
    with pytest.raises(ConfigError, match="alpha"):
        action_score(x, y, ep, alpha=alpha, rng=0)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# The ridge path: primal and dual equal scikit-learn.

@pytest.mark.parametrize("n, dim", [(150, 20), (60, 240)], ids=["D<n", "D>n"])
def test_ridge_equals_sklearn_in_both_regimes(n: int, dim: int) -> None:
    from sklearn.linear_model import Ridge

    from realgap.metrics.probe import RidgeProbe

    rng = np.random.default_rng(10)
    x = rng.normal(size=(n, dim)) * rng.uniform(0.5, 3, dim) + 2.0
    y = x[:, :4] @ rng.normal(size=(4, 3)) + rng.normal(size=(n, 3))
    xs, ys = (x - x.mean(0)) / x.std(0), (y - y.mean(0)) / y.std(0)
    for alpha in (0.05, 3.0, 400.0):
        ours = RidgeProbe.fit(x, y, alpha).coef
        theirs = Ridge(alpha=alpha, fit_intercept=False).fit(xs, ys).coef_.T
        assert np.abs(ours - theirs).max() < 1e-6 * max(1.0, np.abs(theirs).max())


@pytest.mark.parametrize("n, dim", [(144, 20), (72, 300)], ids=["primal", "dual"])
def test_cv_path_errors_equal_sklearn_refits(n: int, dim: int) -> None:
    from sklearn.linear_model import Ridge

    from realgap.metrics.probe import ALPHA_GRID, _path_errors

    rng = np.random.default_rng(11)
    x = rng.normal(size=(n, dim))
    y = x[:, :3] @ rng.normal(size=(3, 2)) + rng.normal(size=(n, 2))
    labels = np.repeat(np.arange(6), n // 6)
    ours = _path_errors(x, y, labels, np.asarray(ALPHA_GRID))
    ref = [sum(float(((y[labels == g] - Ridge(alpha=a, fit_intercept=False)
                       .fit(x[labels != g], y[labels != g]).predict(x[labels == g])) ** 2).sum())
               for g in range(6)) for a in ALPHA_GRID]
    assert np.allclose(ours, ref, rtol=1e-6)


def test_select_alpha_matches_sklearn_group_cv_when_dimensions_exceed_frames() -> None:
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GroupKFold

    from realgap.metrics.probe import ALPHA_GRID, select_alpha

    x, y, ep = _wide_linear_problem(seed=4, n_eps=10, per_ep=8, dim=200)
    xs = (x - x.mean(0)) / x.std(0)
    ys = (y - y.mean(0)) / y.std(0)
    errs = [sum(float(((ys[te] - Ridge(alpha=a, fit_intercept=False).fit(xs[tr], ys[tr])
                        .predict(xs[te])) ** 2).sum())
                for tr, te in GroupKFold(n_splits=5).split(xs, ys, ep)) for a in ALPHA_GRID]
    assert select_alpha(xs, ys, ep) == pytest.approx(ALPHA_GRID[int(np.argmin(errs))])


# --------------------------------------------------------------------------------------
# Cross-fitted AS.

def _plain_crossfit(x: np.ndarray, y: np.ndarray, ep: np.ndarray, n_folds: int) -> float:
    """MSE of the cross-fit by an independent port with scikit-learn: round-robin folds over
    sorted episodes, train-fold standardization, penalty by GroupKFold over the other
    folds, Ridge refits."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GroupKFold

    uniq = np.unique(ep)
    k = min(n_folds, uniq.size)
    fold = np.array([int(np.flatnonzero(uniq == e)[0]) % k for e in ep])
    errors = np.empty(len(x))
    for f in range(k):
        tr, te = fold != f, fold == f
        xm, xsd = x[tr].mean(0), x[tr].std(0)
        xsd[xsd == 0] = 1.0
        ym, ysd = y[tr].mean(0), y[tr].std(0)
        act = ysd > 1e-12
        xs, ys = (x[tr] - xm) / xsd, ((y[tr] - ym) / np.where(act, ysd, 1))[:, act]
        cv = [sum(float(((ys[b] - Ridge(alpha=a, fit_intercept=False).fit(xs[a_], ys[a_])
                          .predict(xs[b])) ** 2).sum())
                  for a_, b in GroupKFold(n_splits=k - 1).split(xs, ys, fold[tr]))
              for a in ALPHA_GRID]
        model = Ridge(alpha=ALPHA_GRID[int(np.argmin(cv))], fit_intercept=False).fit(xs, ys)
        pred = model.predict((x[te] - xm) / xsd)
        errors[te] = ((((y[te] - ym) / np.where(act, ysd, 1))[:, act] - pred) ** 2).mean(1)
    return float(errors.mean())


@pytest.mark.parametrize("dim", [12, 160], ids=["D<n", "D>n"])
def test_crossfit_equals_a_plain_sklearn_port(dim: int) -> None:
    rng = np.random.default_rng(12)
    n_eps, steps = 12, 10
    x = rng.normal(size=(n_eps * steps, dim))
    y = x[:, :3] @ rng.normal(size=(3, 2)) + 1.5 * rng.normal(size=(n_eps * steps, 2))
    ep = np.repeat(np.arange(n_eps) * 7 + 3, steps)   # ids need not be 0..E-1
    r = action_score_crossfit(x, y, ep, n_folds=4)
    assert r.mse == pytest.approx(_plain_crossfit(x, y, ep, 4), rel=1e-8)
    assert r.value == max(0.0, 1.0 - r.mse)


def test_every_episode_is_scored_once_by_a_probe_that_never_saw_it() -> None:
    # Embeddings that name the episode (one-hot) and actions constant within an episode:
    # a probe that saw an episode recalls its action; one that did not can only guess.
    rng = np.random.default_rng(13)
    n_eps, steps = 20, 6
    ep = np.repeat(np.arange(n_eps), steps)
    x = np.eye(n_eps)[ep] + 0.01 * rng.normal(size=(len(ep), n_eps))
    y = rng.normal(size=(n_eps, 2))[ep]
    r = action_score_crossfit(x, y, ep)
    assert r.value < 0.05
    assert transfer_action_score_all(x, y, ep, x, y, ep).value > 0.8  # in-sample: it recalls
    assert r.n_episodes == n_eps and r.n_frames.sum() == len(ep) and r.n_folds == 5
    assert np.array_equal(np.bincount(r.fold), [4] * 5)
    assert np.array_equal(r.fold, episode_folds(ep)[::steps])


def test_replicates_equal_a_plain_resample_even_when_scored_dims_differ_per_fold() -> None:
    from realgap.stats import bootstrap_counts, cluster_bootstrap

    rng = np.random.default_rng(14)
    n_eps, steps = 10, 8
    ep = np.repeat(np.arange(n_eps), steps)
    x = rng.normal(size=(len(ep), 6))
    y = np.c_[x[:, :2] + rng.normal(size=(len(ep), 2)), np.zeros(len(ep))]
    y[ep == 3, 2] = rng.normal(size=steps)  # varies in one episode only: unscored in its fold
    r = action_score_crossfit(x, y, ep)
    assert r.n_action_dims == 3
    assert r.value == pytest.approx(float(np.clip(1 - r.frame_error.mean(), 0, 1)), abs=1e-12)
    assert r.replicates(np.ones((1, n_eps)))[0] == pytest.approx(r.value, abs=1e-12)
    counts = bootstrap_counts(np.zeros(n_eps), 50, rng=1)
    plain = cluster_bootstrap(lambda rows: float(np.clip(1 - r.frame_error[rows].mean(), 0, 1)),
                              ep, 50, rng=1)
    assert np.allclose(r.replicates(counts), plain, atol=1e-12)


def test_interval_rests_on_all_episodes() -> None:
    x, y, ep, _ = _linear_data(15, n_eps=30, steps=10)
    est = action_score_crossfit(x, y + np.random.default_rng(0).normal(size=y.shape) * 3, ep,
                                rng=2).estimate(n_boot=100, rng=0)
    assert est.n == 30 and est.n_frames == 300 and est.n_boot == 100
    assert est.lo < est.hi


def _reach_task(seed: int, n_eps: int = 24, steps: int = 15, noise_dims: int = 30):
    """A reach: the gripper g moves toward the object o; the action is a gain times o - g.
    The oracle encoder outputs (o, g) and noise dims; the state is (o, g)."""
    rng = np.random.default_rng(seed)
    rows_o, rows_g, acts = [], [], []
    for _ in range(n_eps):
        o, g = rng.uniform(-1, 1, 2), rng.uniform(-1, 1, 2)
        for _ in range(steps):
            a = 0.3 * (o - g) + 0.01 * rng.normal(size=2)
            rows_o.append(o.copy())
            rows_g.append(g.copy())
            acts.append(a)
            g = g + a
    state = np.c_[np.asarray(rows_o), np.asarray(rows_g)]
    oracle = np.c_[state + 0.01 * rng.normal(size=state.shape),
                   rng.normal(size=(len(state), noise_dims))]
    noise = rng.normal(size=oracle.shape)
    return oracle, noise, state, np.asarray(acts), np.repeat(np.arange(n_eps), steps)


def test_known_answers_oracle_noise_floor_and_one_split_for_both_domains() -> None:
    # issue 8 (e): an encoder that outputs the action-relevant coordinates scores AS >= 0.9;
    # pure noise scores near 0, within the spread of its own floor; the floor sits well
    # below the oracle; identical inputs given as sim and as real score the same.
    oracle, noise, state, act, ep = _reach_task(0)
    as_oracle = action_score_crossfit(oracle, act, ep, rng=3)
    as_noise = action_score_crossfit(noise, act, ep, rng=3)
    floors = [action_score_floor(noise, act, ep, rng=s).value for s in range(4)]
    floor_oracle = action_score_floor(oracle, act, ep, rng=3)
    assert as_oracle.value >= 0.9
    assert as_noise.value <= max(floors) + 0.05 and as_noise.value < 0.1
    assert floor_oracle.value < as_oracle.value - 0.5
    as_real = action_score_crossfit(oracle.copy(), act.copy(), ep.copy(), rng=3)
    assert as_real.value == as_oracle.value
    assert action_score_ceiling(state, act, ep, rng=3).value >= 0.9
    assert transfer_action_score_all(oracle, act, ep, noise, act, ep).value < 0.1


def test_floor_uses_the_as_folds_and_shuffles_whole_episodes() -> None:
    oracle, _, _, act, ep = _reach_task(1, n_eps=10, steps=5)
    a = action_score_crossfit(oracle, act, ep, rng=5)
    f = action_score_floor(oracle, act, ep, rng=5)
    assert np.array_equal(a.fold, f.fold) and f.variant == "floor"
    shuffled = shuffle_between_episodes(act, ep, rng=0)
    for e in range(10):
        mine = shuffled[ep == e]
        assert not np.array_equal(mine, act[ep == e])              # no episode keeps its own
        assert any(np.array_equal(mine, act[ep == d]) for d in range(10))  # another's, whole


def test_shuffle_rescales_time_between_unequal_lengths() -> None:
    ep = np.r_[np.zeros(4), np.ones(8)]
    y = np.r_[np.arange(4), 100 + np.arange(8)][:, None].astype(float)
    out = shuffle_between_episodes(y, ep, rng=0)[:, 0]
    assert list(out[:4]) == [100, 102, 104, 106]                 # 8 steps read at 4
    assert list(out[4:]) == [0, 0, 1, 1, 2, 2, 3, 3]             # 4 steps read at 8


def test_ceiling_is_none_without_state_and_crossfit_is_seeded() -> None:
    oracle, _, _, act, ep = _reach_task(2, n_eps=8, steps=5)
    assert action_score_ceiling(None, act, ep) is None
    assert action_score_ceiling(np.zeros((len(ep), 0)), act, ep) is None
    a = action_score_crossfit(oracle, act, ep, rng=9)
    b = action_score_crossfit(oracle, act, ep, rng=9)
    assert a.sse.tobytes() == b.sse.tobytes() and a.alphas == b.alphas
    fa = action_score_floor(oracle, act, ep, rng=9)
    fb = action_score_floor(oracle, act, ep, rng=9)
    assert fa.sse.tobytes() == fb.sse.tobytes()


def test_crossfit_bad_inputs_name_the_argument() -> None:
    x, y, ep, _ = _linear_data(16)
    with pytest.raises(ConfigError, match="n_folds"):
        action_score_crossfit(x, y, ep, n_folds=1)
    with pytest.raises(DataError, match="at least 2 episodes"):
        action_score_crossfit(x, y, np.zeros(len(x)))
    with pytest.raises(DataError, match="constant"):
        action_score_crossfit(x, np.ones_like(y), ep)
    with pytest.raises(DataError, match="state"):
        action_score_ceiling(np.ones((3, 2)), y, ep)
    with pytest.raises(DataError, match="emb_real"):
        transfer_action_score_all(x, y, ep, x[:, :3], y, ep)


def test_as_with_floor_equals_the_two_separate_calls() -> None:
    from realgap.metrics.probe import action_score_with_floor

    for dim in (8, 120):  # primal and dual designs are shared alike
        oracle, _, _, act, ep = _reach_task(3, n_eps=12, steps=6, noise_dims=dim)
        both = action_score_with_floor(oracle, act, ep, rng=4)
        alone = (action_score_crossfit(oracle, act, ep, rng=4),
                 action_score_floor(oracle, act, ep, rng=4))
        for a, b in zip(both, alone):
            assert a.variant == b.variant and a.alphas == b.alphas
            assert np.allclose(a.sse, b.sse, rtol=1e-10)


def test_a_nearly_constant_feature_that_wakes_up_cannot_take_the_score() -> None:
    """Known answer: an encoder that reads the action (AS ~1) plus one dead-ReLU-like
    feature (float noise of std 1e-5) that takes 0.01 on a single held-out frame. Plain
    standardization puts that frame at z ~ 1,000 and the AS collapses; the probe's feature
    scale floor (``feature_scale``) keeps the score where the informative features put it."""
    from realgap.metrics import probe

    rng = np.random.default_rng(3)
    n_eps, steps = 40, 10
    ep = np.repeat(np.arange(n_eps), steps)
    y = rng.normal(size=(ep.size, 2))
    x = np.c_[y + 0.05 * rng.normal(size=y.shape), rng.normal(size=(ep.size, 6)),
              1e-5 * rng.normal(size=ep.size)]
    x[17, -1] = 0.01  # the dead unit fires once
    good = probe.action_score_crossfit(x[:, :-1], y, ep, rng=0).value
    got = probe.action_score_crossfit(x, y, ep, rng=0)
    assert good > 0.95
    assert got.value == pytest.approx(good, abs=0.01)
    assert got.frame_error.max() < 1.0
