"""Action Score and transfer AS: values, the episode split, and an independent sklearn route."""

from __future__ import annotations

import numpy as np
import pytest

from realgap.errors import ConfigError, DataError
from realgap.metrics import action_score, episode_split, transfer_action_score


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
