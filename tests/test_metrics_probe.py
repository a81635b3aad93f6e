"""Action Score and transfer AS: values, the episode split, and an independent sklearn route."""

from __future__ import annotations

import numpy as np
import pytest

from realgap.errors import DataError
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
