"""Action Score (AS): how linearly recoverable the actions are from the embeddings.

encoder-dis-as-framework.txt, section III-D, with the choices fixed in DESIGN.md:

1. split the frames BY EPISODE (never by frame) into train and validation
   (:func:`episode_split`, ``val_fraction`` of the episodes, seeded);
2. standardize features and actions with the train statistics;
3. fit a multi-output ridge probe in closed form,
   ``W = (X^T X + alpha I)^{-1} X^T Y`` on the standardized train data (no intercept is
   needed: both sides are centred on train). ``alpha="cv"`` (the default) chooses the
   penalty from :data:`ALPHA_GRID` by leave-episodes-out cross-validation *inside the train
   split* (:func:`select_alpha`; validation episodes are never seen). A fixed penalty
   fails where realgap is used most: with a few hundred frames and 512-4096 dimensions,
   ``alpha = 1`` nearly interpolates the train frames and the validation MSE exceeds 1,
   so every encoder scores AS = 0. A float ``alpha`` fixes the penalty (``alpha=1.0``
   equals scikit-learn's ``Ridge(alpha=1.0)`` on the same data);
4. on validation, ``AS = clip(1 - MSE_val, 0, 1)`` with the MSE averaged over frames and
   the standardized action dimensions that vary on train. A dimension that is constant
   on train (a gripper never used in a reach task) has nothing to predict: counting it
   as a perfectly predicted dimension would inflate every encoder's AS alike, so it is
   left out (``n_action_dims`` records how many count). A probe that predicts the train
   mean scores about 0; a perfect probe scores 1.

:func:`transfer_action_score` is AS(sim -> real): the probe fitted on the sim train
episodes, scored on every real frame (actions standardized with the *sim* train
statistics). The reference does not compute it; a sim-trained policy lives by it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from realgap._rng import RngLike, as_rng
from realgap.errors import ConfigError, DataError
from realgap.metrics._validate import as_groups, as_matrix, check_prob, same_dim


def episode_split(
    episodes: np.ndarray, val_fraction: float = 0.2, rng: RngLike = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks ``(train, val)`` over frames, splitting whole episodes.

    ``round(val_fraction * E)`` episodes (at least 1, at most ``E - 1``) go to validation,
    chosen by a seeded permutation of the sorted unique episode ids.
    """
    check_prob(val_fraction, "val_fraction")
    ep = np.asarray(episodes)
    uniq = np.unique(ep)
    if uniq.size < 2:
        raise DataError(f"episodes: the action probe needs at least 2 episodes to split by "
                        f"episode, got {uniq.size}; record more episodes")
    n_val = int(min(max(1, round(val_fraction * uniq.size)), uniq.size - 1))
    val_eps = as_rng(rng).permutation(uniq)[:n_val]
    val = np.isin(ep, val_eps)
    return ~val, val


#: Ridge penalties tried by ``alpha="cv"`` (standardized features, so the scale is shared).
ALPHA_GRID: tuple[float, ...] = tuple(float(a) for a in np.logspace(-2, 5, 15))


def _ridge_path(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigenbasis ``V``, eigenvalues ``s2`` of ``xs^T xs`` and ``b = V^T xs^T ys``, so that
    the ridge weights for any penalty are ``V @ (b / (s2 + alpha)[:, None])``.
    Uses the thin SVD of ``xs`` when it has fewer rows than columns (cheaper)."""
    if xs.shape[0] < xs.shape[1]:
        u, s, vt = np.linalg.svd(xs, full_matrices=False)
        return vt.T, s * s, (s[:, None] * (u.T @ ys))
    s2, v = np.linalg.eigh(xs.T @ xs)
    s2 = np.clip(s2, 0.0, None)
    return v, s2, v.T @ (xs.T @ ys)


def select_alpha(
    xs: np.ndarray,
    ys: np.ndarray,
    groups: np.ndarray,
    alphas: tuple[float, ...] = ALPHA_GRID,
    n_folds: int = 5,
) -> float:
    """The penalty with the lowest leave-episodes-out MSE on standardized ``(xs, ys)``.

    ``groups`` are episode ids; folds hold out whole episodes (``GroupKFold`` with
    ``min(n_folds, n_episodes)`` folds). Features and actions are standardized once with
    the statistics of the whole train split (a small, documented leak inside the train
    split; the validation episodes are untouched). With fewer than 2 episodes there is
    nothing to cross-validate and the geometric middle of ``alphas`` is returned.
    """
    from sklearn.model_selection import GroupKFold

    uniq = np.unique(groups)
    if uniq.size < 2:
        return float(alphas[len(alphas) // 2])
    a = np.asarray(alphas, dtype=np.float64)
    err = np.zeros(a.size)
    for tr, te in GroupKFold(n_splits=int(min(n_folds, uniq.size))).split(xs, ys, groups):
        v, s2, b = _ridge_path(xs[tr], ys[tr])
        xv = xs[te] @ v                                   # (n_te, r)
        for i, alpha in enumerate(a):
            pred = xv @ (b / (s2 + alpha)[:, None])
            err[i] += float(((ys[te] - pred) ** 2).sum())
    return float(a[int(np.argmin(err))])


@dataclass(frozen=True, eq=False)
class RidgeProbe:
    """A fitted multi-output ridge probe on train-standardized features and actions.

    Attributes (D = embedding dim, A = action dim):
        x_mean, x_std: ``(D,)`` train feature statistics.
        y_mean, y_std: ``(A,)`` train action statistics.
        coef: ``(D, A)`` weights in standardized units.
        alpha: ridge penalty (chosen by cross-validation when fitted with ``"cv"``).
        active: ``(A,)`` bool, the action dims that vary on train (the ones scored).
    """

    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: np.ndarray
    y_std: np.ndarray
    coef: np.ndarray
    alpha: float
    active: np.ndarray

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        alpha: float | str = "cv",
        groups: np.ndarray | None = None,
    ) -> RidgeProbe:
        """Closed-form ridge on standardized ``x (n, D)`` and ``y (n, A)``.

        ``alpha="cv"`` picks the penalty by leave-episodes-out CV over ``groups``
        (episode ids of the rows; required then) with :func:`select_alpha`.
        """
        if isinstance(alpha, str):
            if alpha != "cv":
                raise ConfigError(f"alpha: expected a ridge penalty >= 0 or 'cv', got {alpha!r}")
            if groups is None:
                raise ConfigError("alpha='cv' needs the episode id of each train frame (groups)")
        elif not (np.isfinite(alpha) and alpha >= 0):  # NaN slipped through as a NaN score
            raise ConfigError(f"alpha: expected a finite ridge penalty >= 0 or 'cv', got {alpha}")
        x_mean, x_std = x.mean(axis=0), x.std(axis=0)
        y_mean, y_std = y.mean(axis=0), y.std(axis=0)
        active = y_std > 1e-12
        if not active.any():
            raise DataError("actions: every action dimension is constant on the train episodes; "
                            "the Action Score needs actions that vary")
        x_std = np.where(x_std > 0, x_std, 1.0)
        y_std = np.where(active, y_std, 1.0)
        xs = (x - x_mean) / x_std
        ys = (y - y_mean) / y_std
        if isinstance(alpha, str):
            alpha = select_alpha(xs, ys[:, active], np.asarray(groups))
        gram = xs.T @ xs
        gram[np.diag_indices_from(gram)] += alpha
        coef = np.linalg.lstsq(gram, xs.T @ ys, rcond=None)[0] if alpha == 0 else \
            np.linalg.solve(gram, xs.T @ ys)
        return cls(x_mean, x_std, y_mean, y_std, coef, float(alpha), active)

    def frame_errors(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``(n,)`` squared error per frame, averaged over standardized action dims."""
        pred = ((x - self.x_mean) / self.x_std) @ self.coef
        resid = ((y - self.y_mean) / self.y_std - pred)[:, self.active]
        return (resid * resid).mean(axis=1)


@dataclass(frozen=True, eq=False)
class ASResult:
    """An Action Score with its split.

    Attributes:
        score: AS in [0, 1].
        mse: validation MSE over standardized action dims (unclipped).
        n_train_frames, n_eval_frames: frames used to fit / score the probe.
        n_train_episodes, n_eval_episodes: the same in episodes.
        alpha: ridge penalty.
        n_action_dims: action dimensions scored (those that vary on the train frames).
        frame_errors: ``(n_eval_frames,)`` per-frame errors (for episode bootstraps).
        eval_episodes: ``(n_eval_frames,)`` episode of each scored frame.
    """

    score: float
    mse: float
    n_train_frames: int
    n_eval_frames: int
    n_train_episodes: int
    n_eval_episodes: int
    alpha: float
    n_action_dims: int
    frame_errors: np.ndarray = field(repr=False)
    eval_episodes: np.ndarray = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("frame_errors")
        d.pop("eval_episodes")
        return d


def score_from_mse(mse: float | np.ndarray) -> float | np.ndarray:
    """``AS = clip(1 - MSE, 0, 1)`` (DESIGN.md)."""
    out = np.clip(1.0 - np.asarray(mse, dtype=np.float64), 0.0, 1.0)
    return float(out) if out.ndim == 0 else out


def _inputs(emb: Any, actions: Any, episodes: Any, tag: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = as_matrix(emb, f"emb{tag}")
    y = as_matrix(actions, f"actions{tag}")
    if y.shape[0] != x.shape[0]:
        raise DataError(f"actions{tag}: {y.shape[0]} rows but emb{tag} has {x.shape[0]}; "
                        "pass one action per frame")
    ep = as_groups(episodes, x.shape[0], f"episodes{tag}")
    return x, y, ep


def _result(probe: RidgeProbe, x: np.ndarray, y: np.ndarray, ep: np.ndarray,
            n_train: int, n_train_eps: int) -> ASResult:
    err = probe.frame_errors(x, y)
    mse = float(err.mean())
    return ASResult(
        score=float(score_from_mse(mse)), mse=mse, n_train_frames=n_train, n_eval_frames=len(err),
        n_train_episodes=n_train_eps, n_eval_episodes=int(np.unique(ep).size),
        alpha=probe.alpha, n_action_dims=int(probe.active.sum()), frame_errors=err,
        eval_episodes=ep,
    )


def action_score(
    emb: np.ndarray,
    actions: np.ndarray,
    episodes: np.ndarray,
    *,
    val_fraction: float = 0.2,
    alpha: float | str = "cv",
    rng: RngLike = 0,
) -> ASResult:
    """Action Score within one domain.

    Args:
        emb: ``(n, D)`` embeddings.
        actions: ``(n, A)`` actions (any units; they are standardized with train stats).
        episodes: ``(n,)`` episode id of each frame.
        val_fraction: share of episodes held out.
        alpha: ridge penalty on standardized features, or ``"cv"`` (leave-episodes-out
            cross-validation inside the train split).
        rng: seed of the episode split.
    """
    x, y, ep = _inputs(emb, actions, episodes, "")
    train, val = episode_split(ep, val_fraction, rng)
    probe = RidgeProbe.fit(x[train], y[train], alpha, groups=ep[train])
    return _result(probe, x[val], y[val], ep[val], int(train.sum()), int(np.unique(ep[train]).size))


def transfer_action_score(
    emb_sim: np.ndarray,
    act_sim: np.ndarray,
    ep_sim: np.ndarray,
    emb_real: np.ndarray,
    act_real: np.ndarray,
    ep_real: np.ndarray,
    *,
    val_fraction: float = 0.2,
    alpha: float | str = "cv",
    rng: RngLike = 0,
) -> ASResult:
    """AS(sim -> real): the probe fitted on the sim train episodes (the same split as
    :func:`action_score` with the same ``rng``), scored on all real frames."""
    xs, ys, es = _inputs(emb_sim, act_sim, ep_sim, "_sim")
    xr, yr, er = _inputs(emb_real, act_real, ep_real, "_real")
    same_dim(xs, xr, "emb_sim", "emb_real")
    if ys.shape[1] != yr.shape[1]:
        raise DataError(f"act_real has {yr.shape[1]} action dims but act_sim has {ys.shape[1]}; "
                        "sim and real must share the action space")
    train, _ = episode_split(es, val_fraction, rng)
    probe = RidgeProbe.fit(xs[train], ys[train], alpha, groups=es[train])
    return _result(probe, xr, yr, er, int(train.sum()), int(np.unique(es[train]).size))
