"""Action Score (AS): how linearly recoverable the actions are from the embeddings.

encoder-dis-as-framework.txt, section III-D, with the choices fixed in DESIGN.md
("Definitions fixed here"). Two estimators share one ridge probe:

**Cross-fitted AS** (:func:`action_score_crossfit`, what realgap reports). The episodes are
dealt into ``K`` folds (:func:`episode_folds`); each fold is scored once by a probe fitted
on the other ``K - 1`` folds, so every episode is scored by a probe that never saw it and
the score (and its interval) rests on all episodes. For each training fold:

1. features and actions are standardized with that fold's statistics;
2. a multi-output ridge probe is fitted in closed form on the standardized data (no
   intercept: both sides are centred on the training fold); the penalty is chosen from
   :data:`ALPHA_GRID` by episode-grouped CV *inside the training fold*, whose inner folds
   are the other outer folds (so no inner fold splits an episode);
3. the held-out frames' squared errors are averaged over the standardized action dims
   that vary on the training fold (a gripper that never moves has nothing to predict and
   counting it as a free zero error would inflate every encoder's AS alike).

``AS = clip(1 - MSE, 0, 1)`` with the MSE over all scored frames. A probe that predicts the
training mean scores about 0; a perfect probe scores 1. :class:`CrossFitAS` keeps the
per-episode error sums, so an episode bootstrap is a matrix product
(:meth:`CrossFitAS.replicates`).

Beside it, two reference levels, so a reader sees where an AS of 0.1 sits:

- **floor** (:func:`action_score_floor`): the same cross-fitted probe on actions shuffled
  *between* episodes (:func:`shuffle_between_episodes`): what an encoder scores from the
  phase of an episode alone, with no information about the episode's own actions;
- **ceiling** (:func:`action_score_ceiling`): the probe on the recorded low-dimensional
  state, where the data carries one.

**Transfer AS** (:func:`transfer_action_score_all`): the probe fitted on *all* sim episodes
(penalty by grouped CV on sim), scored on every real frame with actions standardized by the
*sim* statistics. The reference does not compute it; a sim-trained policy lives by it.

**Single-split AS** (:func:`action_score` / :func:`action_score_single_split`,
:func:`transfer_action_score` / :func:`transfer_action_score_single_split`): the paper's
estimator, one seeded train/validation split of the episodes (:func:`episode_split`), kept
as a named variant. It rests on the few validation episodes only.

Speed: when there are more dimensions than training frames (raw pixels: 12,288 dims on a
few thousand frames) the probe works in the dual form: the penalty search of a training
fold costs one eigendecomposition of its Gram matrix ``X X^T`` (``n x n``), shared by every
inner fold and penalty through ridge's leave-block-out identity, and by the final fit; no
``D x D`` matrix and no SVD of ``n x D``. Otherwise the primal form works on ``X^T X``
(``D x D``), one eigendecomposition per inner fold. :func:`action_score_with_floor` fits
the AS and its floor on the same decompositions.

Folds: with ``rng=None`` the sorted episode ids are dealt round-robin into the folds; with a
seed, in a seeded random order. Either way identical inputs get identical folds, so the
same frames given as sim and as real score the same AS.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from realgap._rng import RngLike, as_rng
from realgap.errors import ConfigError, DataError
from realgap.metrics._validate import as_groups, as_matrix, check_positive_int, check_prob, same_dim

if TYPE_CHECKING:
    from realgap.stats import Estimate

#: Ridge penalties tried by ``alpha="cv"`` (standardized features, so the scale is shared).
ALPHA_GRID: tuple[float, ...] = tuple(float(a) for a in np.logspace(-2, 5, 15))

#: Folds of the cross-fitted AS when the caller does not say.
DEFAULT_FOLDS = 5

# An action dim whose training std is below this is constant (nothing to predict).
_CONSTANT_STD = 1e-12

#: A feature's standardizing scale is at least this fraction of the median feature std.
FEATURE_STD_FLOOR = 1e-2


def feature_scale(std: np.ndarray) -> np.ndarray:
    """The per-feature divisor of the probe's standardization: the training std, floored
    at :data:`FEATURE_STD_FLOOR` x the median positive std (1 where every std is 0).

    Plain standardization divides a nearly constant feature (a dead ReLU's float noise,
    std 1.5e-5 against a median of 0.05) by its tiny std, so the ridge sees amplified noise
    with unit variance, and a held-out frame where that feature wakes up (0.011) lands at
    z = 734 and takes the prediction with it: one such frame of the demo's
    ``resnet18-random`` gave AS(real) an interval [0, 0.73]. With the floor such features
    keep a tiny variance after scaling, so the ridge leaves them alone."""
    std = np.asarray(std, dtype=np.float64)
    pos = std[std > 0]
    floor = FEATURE_STD_FLOOR * float(np.median(pos)) if pos.size else 0.0
    return np.where(std > floor, std, floor if floor > 0 else 1.0)


def episode_split(
    episodes: np.ndarray, val_fraction: float = 0.2, rng: RngLike = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks ``(train, val)`` over frames, splitting whole episodes.

    ``round(val_fraction * E)`` episodes (at least 1, at most ``E - 1``) go to validation,
    chosen by a seeded permutation of the sorted unique episode ids. Used by the paper's
    single-split AS only; the cross-fitted AS uses :func:`episode_folds`.
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


def _fold_of_episode(n_episodes: int, n_folds: int, order: np.ndarray | None) -> np.ndarray:
    """``(E,)`` fold of each episode code: dealt round-robin in sorted order, or in ``order``
    (a permutation of the codes), so fold sizes differ by at most one episode."""
    if order is None:
        order = np.arange(n_episodes)
    fold = np.empty(n_episodes, dtype=np.int64)
    fold[order] = np.arange(n_episodes) % n_folds
    return fold


def episode_folds(episodes: np.ndarray, n_folds: int = DEFAULT_FOLDS, rng: RngLike = None) -> np.ndarray:
    """``(n_frames,)`` fold id in ``[0, K)`` of each frame, whole episodes per fold.

    ``K = min(n_folds, E)``. With ``rng=None`` the sorted episode ids are dealt round-robin
    (deterministic: two calls on the same episodes -- identical sim and real inputs, say --
    get one split); with a seed, in the order of a seeded permutation.
    """
    ep = np.asarray(episodes)
    _, codes = np.unique(ep, return_inverse=True)
    n_eps = int(codes.max()) + 1 if codes.size else 0
    k = _check_folds(n_folds, n_eps)
    return _fold_of_episode(n_eps, k, _fold_order(n_eps, rng))[codes.ravel()]


def _fold_order(n_episodes: int, rng: RngLike) -> np.ndarray | None:
    """The dealing order of the episodes: None (sorted) without a seed, else a permutation."""
    return None if rng is None else as_rng(rng).permutation(n_episodes)


def _n_episodes(episodes: np.ndarray) -> int:
    return int(np.unique(episodes).size)


def _check_folds(n_folds: int, n_episodes: int) -> int:
    n_folds = check_positive_int(n_folds, "n_folds", minimum=2)
    if n_episodes < 2:
        raise DataError(f"episodes: the cross-fitted action probe needs at least 2 episodes, "
                        f"got {n_episodes}; record more episodes")
    return min(n_folds, n_episodes)


# --------------------------------------------------------------------------------------
# The ridge probe: a path over penalties from one eigendecomposition (primal or dual).


def _inv_shift(s2: np.ndarray, alpha: float) -> np.ndarray:
    """``1 / (s2 + alpha)`` with the pseudo-inverse's 0 where ``s2 + alpha`` is numerically 0
    (``alpha = 0`` on a rank-deficient design gives the minimum-norm solution)."""
    den = s2 + alpha
    tol = max(float(s2.max(initial=0.0)), 1.0) * 1e-12 * s2.size
    out = np.zeros_like(den)
    np.divide(1.0, den, out=out, where=den > tol)
    return out


class _RidgeDesign:
    """Standardized training features and the decompositions every penalty reuses.

    One per training set, shared by every action target fitted on it (the AS and its floor
    see the same frames, so they share the Gram matrix and its eigendecomposition).
    ``xs = (x - x_mean) / x_std`` ``(n, D)``; the dual form is used when ``D > n``.
    """

    def __init__(self, xs: np.ndarray, x_mean: np.ndarray, x_std: np.ndarray) -> None:
        self.xs, self.x_mean, self.x_std = xs, x_mean, x_std
        self.dual = xs.shape[1] > xs.shape[0]
        self._gram: np.ndarray | None = None
        self._eig: tuple[np.ndarray, np.ndarray] | None = None
        self._cov: np.ndarray | None = None
        self._peig: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def standardize(cls, x: np.ndarray) -> _RidgeDesign:
        """Features standardized with their own statistics (a constant feature keeps std 1)."""
        x_mean, x_std = x.mean(axis=0), x.std(axis=0)
        return cls((x - x_mean) / (x_std := feature_scale(x_std)), x_mean, x_std)

    def gram(self) -> np.ndarray:
        """``xs xs^T`` ``(n, n)``."""
        if self._gram is None:
            self._gram = self.xs @ self.xs.T
        return self._gram

    def eig(self) -> tuple[np.ndarray, np.ndarray]:
        """Eigenvalues (clipped at 0) and eigenvectors of the Gram matrix."""
        if self._eig is None:
            s2, u = np.linalg.eigh(self.gram())
            self._eig = (np.clip(s2, 0.0, None), u)
        return self._eig

    def cov(self) -> np.ndarray:
        """``xs^T xs`` ``(D, D)`` (primal form)."""
        if self._cov is None:
            self._cov = self.xs.T @ self.xs
        return self._cov

    def primal_eig(self) -> tuple[np.ndarray, np.ndarray]:
        """Eigenvalues (clipped at 0) and eigenvectors of :meth:`cov`."""
        if self._peig is None:
            s2, v = np.linalg.eigh(self.cov())
            self._peig = (np.clip(s2, 0.0, None), v)
        return self._peig

    def path_errors(self, ys: np.ndarray, labels: np.ndarray, alphas: np.ndarray) -> np.ndarray:
        """Summed squared held-out error ``(len(alphas),)`` of ridge (no intercept) on
        ``(xs, ys)``, each label of ``labels`` held out once; ``alphas > 0``.

        Dual: one eigendecomposition of ``G = xs xs^T`` serves every held-out block and
        penalty through ridge's leave-block-out identity: with ``M = (G + a I)^{-1}``, the
        residuals on block ``B`` of the fit without ``B`` are ``M_BB^{-1} (M y)_B``
        (Woodbury; exact). Primal: one eigendecomposition of ``C = xs^T xs`` and the same
        identity in feature space, ``(I - H_BB)^{-1} (y_B - yhat_B)`` with
        ``H_BB = X_B (C + a I)^{-1} X_B^T`` (kept for further targets).
        """
        err = np.zeros(alphas.size)
        blocks = [labels == lab for lab in np.unique(labels)]
        if self.dual:
            from scipy.linalg import cho_factor, cho_solve

            s2, u = self.eig()
            uty = u.T @ ys
            for i, alpha in enumerate(alphas):
                w = 1.0 / (s2 + float(alpha))
                my = u @ (uty * w[:, None])                  # M y, (n, A)
                for te in blocks:
                    ub = u[te]
                    m_bb = (ub * w) @ ub.T                   # M_BB, positive definite
                    try:
                        resid = cho_solve(cho_factor(m_bb), my[te])
                    except np.linalg.LinAlgError:  # round-off broke definiteness
                        resid = np.linalg.lstsq(m_bb, my[te], rcond=None)[0]
                    err[i] += float((resid * resid).sum())
            return err
        # Primal: one eigendecomposition of C = xs^T xs serves every block and penalty
        # through the leave-block-out identity for ridge: with H = X (C + a I)^{-1} X^T, the
        # residuals on block B of the fit without B are (I - H_BB)^{-1} (y_B - yhat_B),
        # yhat the fit on all rows (Sherman-Morrison-Woodbury; exact for a > 0). One D x D
        # eigh per design instead of one per block.
        s2, v = self.primal_eig()
        vr = v.T @ (self.xs.T @ ys)                           # (D, A)
        for te in blocks:
            z, yt = self.xs[te] @ v, ys[te]                   # (n_te, D), (n_te, A)
            eye = np.eye(z.shape[0])
            for i, alpha in enumerate(alphas):
                inv = 1.0 / (s2 + float(alpha))
                h_bb = (z * inv) @ z.T
                resid = np.linalg.solve(eye - h_bb, yt - z @ (vr * inv[:, None]))
                err[i] += float((resid * resid).sum())
        return err

    def coef(self, ys: np.ndarray, alpha: float) -> np.ndarray:
        """Ridge weights ``(D, A)`` without intercept: primal ``(X^T X + a I)^{-1} X^T Y``, or
        dual ``X^T (X X^T + a I)^{-1} Y`` from the Gram eigendecomposition (equal for
        ``a > 0``; at ``a = 0`` both give the minimum-norm least-squares solution)."""
        if self.dual:
            s2, u = self.eig()
            return self.xs.T @ (u @ ((u.T @ ys) * _inv_shift(s2, alpha)[:, None]))
        c = self.cov().copy()
        c[np.diag_indices_from(c)] += alpha
        rhs = self.xs.T @ ys
        if alpha == 0:
            return np.linalg.lstsq(c, rhs, rcond=None)[0]
        from scipy.linalg import solve

        return solve(c, rhs, assume_a="pos")


def _path_errors(xs: np.ndarray, ys: np.ndarray, labels: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """:meth:`_RidgeDesign.path_errors` on already standardized ``xs``."""
    return _RidgeDesign(xs, np.zeros(xs.shape[1]), np.ones(xs.shape[1])).path_errors(ys, labels, alphas)


def _labels_of_split(groups: np.ndarray, n_folds: int) -> np.ndarray | None:
    """Inner-fold label per row: ``GroupKFold(min(n_folds, n_groups))`` over ``groups``;
    None when there are fewer than 2 groups (nothing to cross-validate)."""
    from sklearn.model_selection import GroupKFold

    uniq = np.unique(groups)
    if uniq.size < 2:
        return None
    labels = np.empty(len(groups), dtype=np.int64)
    splitter = GroupKFold(n_splits=int(min(n_folds, uniq.size)))
    for i, (_, te) in enumerate(splitter.split(groups, groups, groups)):
        labels[te] = i
    return labels


def select_alpha(
    xs: np.ndarray,
    ys: np.ndarray,
    groups: np.ndarray,
    alphas: tuple[float, ...] = ALPHA_GRID,
    n_folds: int = 5,
) -> float:
    """The penalty with the lowest leave-episodes-out MSE on standardized ``(xs, ys)``.

    ``groups`` are episode (or fold) ids; inner folds hold out whole groups
    (``GroupKFold`` with ``min(n_folds, n_groups)`` folds). Features and actions are
    standardized once with the statistics of all of ``xs`` (a small, documented leak inside
    the training data; held-out episodes of an outer split are never here). With fewer
    than 2 groups there is nothing to cross-validate and the geometric middle of
    ``alphas`` is returned.
    """
    design = _RidgeDesign(xs, np.zeros(xs.shape[1]), np.ones(xs.shape[1]))
    return _select(design, ys, np.asarray(groups), alphas, n_folds)


def _select(design: _RidgeDesign, ys: np.ndarray, groups: np.ndarray,
            alphas: tuple[float, ...], n_folds: int) -> float:
    a = np.asarray(alphas, dtype=np.float64)
    if a.size == 0 or not np.all(np.isfinite(a) & (a > 0)):
        raise ConfigError(f"alphas: a penalty grid needs finite penalties > 0, got {alphas}")
    labels = _labels_of_split(groups, n_folds)
    if labels is None:
        return float(a[len(a) // 2])
    return float(a[int(np.argmin(design.path_errors(ys, labels, a)))])


@dataclass(frozen=True, eq=False)
class RidgeProbe:
    """A fitted multi-output ridge probe on train-standardized features and actions.

    Attributes (D = embedding dim, A = action dim):
        x_mean, x_std: ``(D,)`` train feature means and scales (:func:`feature_scale`).
        y_mean, y_std: ``(A,)`` train action statistics.
        coef: ``(D, A)`` weights in standardized units (0 for dims that are not scored).
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
        n_folds: int = 5,
    ) -> RidgeProbe:
        """Closed-form ridge on standardized ``x (n, D)`` and ``y (n, A)``.

        ``alpha="cv"`` picks the penalty by grouped CV over ``groups`` (episode or fold id
        of each row; required then) with :func:`select_alpha` and ``n_folds`` inner folds.
        """
        if isinstance(alpha, str):
            if alpha != "cv":
                raise ConfigError(f"alpha: expected a ridge penalty >= 0 or 'cv', got {alpha!r}")
            if groups is None:
                raise ConfigError("alpha='cv' needs the episode id of each train frame (groups)")
        elif not (np.isfinite(alpha) and alpha >= 0):  # NaN slipped through as a NaN score
            raise ConfigError(f"alpha: expected a finite ridge penalty >= 0 or 'cv', got {alpha}")
        return cls._fit(_RidgeDesign.standardize(x), y, alpha, groups, n_folds)

    @classmethod
    def _fit(cls, design: _RidgeDesign, y: np.ndarray, alpha: float | str,
             groups: np.ndarray | None, n_folds: int) -> RidgeProbe:
        """The fit on a design already standardized (shared by several targets)."""
        y_mean, y_std = y.mean(axis=0), y.std(axis=0)
        active = y_std > _CONSTANT_STD
        if not active.any():
            raise DataError("actions: every action dimension is constant on the train episodes; "
                            "the Action Score needs actions that vary")
        y_std = np.where(active, y_std, 1.0)
        ys = ((y - y_mean) / y_std)[:, active]
        if isinstance(alpha, str):
            alpha = _select(design, ys, np.asarray(groups), ALPHA_GRID, n_folds)
        coef = np.zeros((design.xs.shape[1], y.shape[1]))
        coef[:, active] = design.coef(ys, float(alpha))
        return cls(design.x_mean, design.x_std, y_mean, y_std, coef, float(alpha), active)

    def frame_errors(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``(n,)`` squared error per frame, averaged over the scored standardized action dims."""
        pred = ((x - self.x_mean) / self.x_std) @ self.coef
        resid = ((y - self.y_mean) / self.y_std - pred)[:, self.active]
        return (resid * resid).mean(axis=1)


def score_from_mse(mse: float | np.ndarray) -> float | np.ndarray:
    """``AS = clip(1 - MSE, 0, 1)`` (DESIGN.md)."""
    out = np.clip(1.0 - np.asarray(mse, dtype=np.float64), 0.0, 1.0)
    return float(out) if out.ndim == 0 else out


def _inputs(emb: Any, actions: Any, episodes: Any, tag: str,
            emb_name: str = "emb") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = as_matrix(emb, f"{emb_name}{tag}")
    y = as_matrix(actions, f"actions{tag}")
    if y.shape[0] != x.shape[0]:
        raise DataError(f"actions{tag}: {y.shape[0]} rows but {emb_name}{tag} has {x.shape[0]}; "
                        "pass one action per frame")
    ep = as_groups(episodes, x.shape[0], f"episodes{tag}")
    return x, y, ep


def _check_transfer(xs: np.ndarray, ys: np.ndarray, xr: np.ndarray, yr: np.ndarray) -> None:
    same_dim(xs, xr, "emb_sim", "emb_real")
    if ys.shape[1] != yr.shape[1]:
        raise DataError(f"act_real has {yr.shape[1]} action dims but act_sim has {ys.shape[1]}; "
                        "sim and real must share the action space")


# --------------------------------------------------------------------------------------
# Cross-fitted AS (what realgap reports).


@dataclass(frozen=True, eq=False)
class CrossFitAS:
    """An Action Score whose every scored episode was held out from its probe.

    Attributes (E = scored episodes):
        value: ``clip(1 - MSE, 0, 1)``, MSE over all scored frames and action dims.
        mse: that MSE, unclipped.
        variant: ``"crossfit"``, ``"floor"``, ``"ceiling"`` or ``"transfer"``.
        episode_ids: ``(E,)`` the scored episodes' ids, sorted (``np.unique`` order, the
            order of :func:`realgap.stats.episode_codes`).
        sse: ``(E,)`` per-episode sum of squared standardized errors. A frame's squared
            errors are averaged over the dims its fold scored and multiplied by
            ``n_action_dims``, so that ``sse.sum() / (n_frames.sum() * n_action_dims)`` is
            the MSE exactly even when a dim is constant on some training fold.
        n_frames: ``(E,)`` frames per episode.
        n_action_dims: action dims that vary over the fitted data.
        alphas: ``(n_folds,)`` ridge penalty chosen per fold (one for transfer).
        n_folds: outer folds (transfer: the folds of its penalty search).
        fold: ``(E,)`` fold that scored each episode (all 0 for transfer).
        frame_error: ``(n_frames_total,)`` per-frame squared error averaged over the scored
            dims, in the row order of the scored input.
    """

    value: float
    mse: float
    variant: str
    episode_ids: np.ndarray = field(repr=False)
    sse: np.ndarray = field(repr=False)
    n_frames: np.ndarray = field(repr=False)
    n_action_dims: int = 0
    alphas: tuple[float, ...] = ()
    n_folds: int = 0
    fold: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)
    frame_error: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    @property
    def n_episodes(self) -> int:
        """Scored episodes: the unit an interval resamples."""
        return int(self.episode_ids.size)

    def replicates(self, counts: np.ndarray) -> np.ndarray:
        """``(n_boot,)`` AS over resampled episodes: ``counts (n_boot, E)`` says how often each
        episode (in :attr:`episode_ids` order) is drawn;
        ``clip(1 - (c @ sse) / ((c @ n_frames) * n_action_dims), 0, 1)`` (NaN for an empty draw)."""
        c = np.atleast_2d(np.asarray(counts, dtype=np.float64))
        if c.shape[1] != self.sse.size:
            raise DataError(f"counts: expected {self.sse.size} columns (one per scored episode), "
                            f"got {c.shape[1]}")
        with np.errstate(invalid="ignore", divide="ignore"):
            mse = (c @ self.sse) / ((c @ self.n_frames) * self.n_action_dims)
        return np.clip(1.0 - mse, 0.0, 1.0)

    def estimate(self, n_boot: int = 200, rng: RngLike = None, alpha: float = 0.05,
                 method: str = "percentile") -> Estimate:
        """:class:`realgap.stats.Estimate` over all scored episodes (``n = E``): ``n_boot``
        replicates of :meth:`replicates` on episodes resampled with ``rng``."""
        from realgap.stats import bootstrap_counts, estimate_from_replicates

        counts = bootstrap_counts(np.zeros(self.n_episodes, dtype=np.int64), n_boot, rng)
        reps = self.replicates(counts) if n_boot else None
        return estimate_from_replicates(self.value, reps, n=self.n_episodes,
                                        n_frames=int(self.n_frames.sum()), alpha=alpha,
                                        method=method)

    def as_dict(self) -> dict[str, Any]:
        """Scalars (JSON-ready); per-episode arrays left out."""
        return {"value": self.value, "mse": self.mse, "variant": self.variant,
                "n_episodes": self.n_episodes, "n_frames": int(self.n_frames.sum()),
                "n_action_dims": self.n_action_dims, "alphas": list(self.alphas),
                "n_folds": self.n_folds}


def _crossfit_result(frame_err: np.ndarray, ep: np.ndarray, n_dims: int, alphas: list[float],
                     n_folds: int, fold_of_frame: np.ndarray, variant: str) -> CrossFitAS:
    uniq, codes = np.unique(ep, return_inverse=True)
    codes = codes.ravel()
    sse = np.bincount(codes, weights=frame_err * n_dims, minlength=uniq.size)
    n_frames = np.bincount(codes, minlength=uniq.size).astype(np.int64)
    fold = np.zeros(uniq.size, dtype=np.int64)
    fold[codes] = fold_of_frame
    mse = float(frame_err.mean())
    return CrossFitAS(value=float(score_from_mse(mse)), mse=mse, variant=variant,
                      episode_ids=uniq, sse=sse, n_frames=n_frames, n_action_dims=int(n_dims),
                      alphas=tuple(alphas), n_folds=int(n_folds), fold=fold, frame_error=frame_err)


def _crossfit(x: np.ndarray, targets: list[tuple[np.ndarray, str]], ep: np.ndarray,
              n_folds: int, order: np.ndarray | None) -> list[CrossFitAS]:
    """The cross-fit shared by AS, its floor and its ceiling (module docstring), for one or
    more action targets ``(y, variant)`` on the same frames and folds: each training fold's
    standardized features and their decomposition are built once for all targets; each
    target gets its own penalty. ``order``: the dealing order of the episode codes into
    folds (:func:`_fold_order`)."""
    _, codes = np.unique(ep, return_inverse=True)
    codes = codes.ravel()
    n_eps = int(codes.max()) + 1
    k = _check_folds(n_folds, n_eps)
    fold = _fold_of_episode(n_eps, k, order)[codes]
    n_dims = [int((y.std(axis=0) > _CONSTANT_STD).sum()) for y, _ in targets]
    if min(n_dims) == 0:
        raise DataError("actions: every action dimension is constant; "
                        "the Action Score needs actions that vary")
    frame_err = [np.empty(len(x)) for _ in targets]
    alphas: list[list[float]] = [[] for _ in targets]
    for f in range(k):
        te = fold == f
        tr = ~te
        design = _RidgeDesign.standardize(x[tr])
        # Inner CV folds: the other outer folds (whole episodes); with K = 2 the training
        # fold is one fold, so its own episodes are the inner groups.
        inner = fold[tr] if k > 2 else codes[tr]
        for t, (y, _) in enumerate(targets):
            probe = RidgeProbe._fit(design, y[tr], "cv", inner, max(k - 1, 2))
            # Per-frame mean over this fold's scored dims; sse scales back by n_dims (exact MSE).
            frame_err[t][te] = probe.frame_errors(x[te], y[te])
            alphas[t].append(probe.alpha)
    return [_crossfit_result(frame_err[t], ep, n_dims[t], alphas[t], k, fold, variant)
            for t, (_, variant) in enumerate(targets)]


def action_score_crossfit(
    emb: np.ndarray,
    actions: np.ndarray,
    episodes: np.ndarray,
    *,
    n_folds: int = DEFAULT_FOLDS,
    rng: RngLike = None,
) -> CrossFitAS:
    """Cross-fitted Action Score within one domain (module docstring; DESIGN.md).

    Args:
        emb: ``(n, D)`` embeddings.
        actions: ``(n, A)`` actions (any units; standardized per training fold).
        episodes: ``(n,)`` episode id of each frame.
        n_folds: outer folds ``K`` (reduced to the number of episodes).
        rng: seed of the fold assignment; None deals the sorted episodes round-robin
            (deterministic). The same seed on the same episodes gives the same folds, so
            identical sim and real inputs score the same.

    Returns:
        :class:`CrossFitAS` over every episode.
    """
    x, y, ep = _inputs(emb, actions, episodes, "")
    return _crossfit(x, [(y, "crossfit")], ep, n_folds, _fold_order(_n_episodes(ep), rng))[0]


def shuffle_between_episodes(actions: np.ndarray, episodes: np.ndarray, rng: RngLike = None) -> np.ndarray:
    """Actions ``(n, A)`` with whole episodes' action sequences swapped between episodes.

    Each episode receives the sequence of another episode (a random cyclic permutation of
    the episodes: no episode keeps its own). Lengths are matched by rescaling time: step
    ``t`` of an episode of length ``L`` takes step ``floor(t * L' / L)`` of the donor of
    length ``L'``. So the shuffled actions keep their marginal distribution and their
    course over an episode's phase, and lose only the pairing with the episode's frames.
    Rows of an episode are taken in the order given (time order).
    """
    y = np.asarray(actions)
    _, codes = np.unique(np.asarray(episodes), return_inverse=True)
    codes = codes.ravel()
    n_eps = int(codes.max()) + 1
    if n_eps < 2:
        raise DataError("episodes: shuffling actions between episodes needs at least 2 episodes")
    order = as_rng(rng).permutation(n_eps)
    donor = np.empty(n_eps, dtype=np.int64)
    donor[order] = np.roll(order, -1)
    rows = [np.flatnonzero(codes == e) for e in range(n_eps)]
    out = np.empty_like(y)
    for e in range(n_eps):
        mine, theirs = rows[e], rows[donor[e]]
        out[mine] = y[theirs[(np.arange(mine.size) * theirs.size) // mine.size]]
    return out


def action_score_floor(
    emb: np.ndarray,
    actions: np.ndarray,
    episodes: np.ndarray,
    *,
    n_folds: int = DEFAULT_FOLDS,
    rng: RngLike = None,
) -> CrossFitAS:
    """The AS floor: :func:`action_score_crossfit` on actions shuffled between episodes
    (:func:`shuffle_between_episodes`). An AS at or below it carries no information about an
    episode's own actions beyond its phase.

    ``rng``: the folds are drawn first, exactly as :func:`action_score_crossfit` draws them
    with the same ``rng`` (so an int seed gives both the same folds), then the shuffle.
    With None the folds are the deterministic ones and the shuffle is unseeded.
    """
    x, y, ep = _inputs(emb, actions, episodes, "")
    gen = as_rng(rng)
    order = _fold_order(_n_episodes(ep), None if rng is None else gen)  # the AS's draw first
    return _crossfit(x, [(shuffle_between_episodes(y, ep, gen), "floor")], ep, n_folds, order)[0]


def action_score_with_floor(
    emb: np.ndarray,
    actions: np.ndarray,
    episodes: np.ndarray,
    *,
    n_folds: int = DEFAULT_FOLDS,
    rng: RngLike = None,
) -> tuple[CrossFitAS, CrossFitAS]:
    """``(AS, floor)``, equal to :func:`action_score_crossfit` and :func:`action_score_floor`
    with the same arguments, at about the cost of one: both fit the same frames in the same
    folds, so each fold's Gram matrix and its eigendecomposition serve both."""
    x, y, ep = _inputs(emb, actions, episodes, "")
    gen = as_rng(rng)
    order = _fold_order(_n_episodes(ep), None if rng is None else gen)
    shuffled = shuffle_between_episodes(y, ep, gen)
    as_, floor = _crossfit(x, [(y, "crossfit"), (shuffled, "floor")], ep, n_folds, order)
    return as_, floor


def action_score_ceiling(
    state: np.ndarray | None,
    actions: np.ndarray,
    episodes: np.ndarray,
    *,
    n_folds: int = DEFAULT_FOLDS,
    rng: RngLike = None,
) -> CrossFitAS | None:
    """The AS ceiling: :func:`action_score_crossfit` on the recorded low-dimensional state
    ``(n, S)`` instead of the embeddings; None when the data carries no state (``None`` or
    ``S = 0``). What a linear probe reads from the simulator's own variables."""
    if state is None:
        return None
    s = np.asarray(state, dtype=np.float64)
    if s.ndim == 2 and s.shape[1] == 0 or s.size == 0:
        return None
    x, y, ep = _inputs(s, actions, episodes, "", emb_name="state")
    return _crossfit(x, [(y, "ceiling")], ep, n_folds, _fold_order(_n_episodes(ep), rng))[0]


def transfer_action_score_all(
    emb_sim: np.ndarray,
    act_sim: np.ndarray,
    ep_sim: np.ndarray,
    emb_real: np.ndarray,
    act_real: np.ndarray,
    ep_real: np.ndarray,
    *,
    n_folds: int = DEFAULT_FOLDS,
    rng: RngLike = None,
) -> CrossFitAS:
    """AS(sim -> real): the probe fitted on all sim episodes, scored on every real episode.

    Features and actions are standardized with the sim statistics; the penalty is chosen by
    grouped CV over the sim episodes, whose folds are :func:`episode_folds` with
    ``n_folds`` and ``rng`` (the cross-fit's outer folds). ``fold`` is all 0 in the result.
    """
    xs, ys, es = _inputs(emb_sim, act_sim, ep_sim, "_sim", "emb")
    xr, yr, er = _inputs(emb_real, act_real, ep_real, "_real", "emb")
    _check_transfer(xs, ys, xr, yr)
    folds = episode_folds(es, n_folds, rng)
    k = int(folds.max()) + 1
    probe = RidgeProbe.fit(xs, ys, "cv", groups=folds, n_folds=k)
    err = probe.frame_errors(xr, yr)
    return _crossfit_result(err, er, int(probe.active.sum()), [probe.alpha], k,
                            np.zeros(len(err), dtype=np.int64), "transfer")


# --------------------------------------------------------------------------------------
# The paper's single-split AS, kept as a named variant.


@dataclass(frozen=True, eq=False)
class ASResult:
    """A single-split Action Score (the paper's variant) with its split.

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
    """The paper's single-split Action Score (encoder-dis-as-framework.txt III-D), a named
    variant: one seeded episode split, scored on the validation episodes only. realgap
    reports :func:`action_score_crossfit`, which scores every episode.

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
    """Single-split AS(sim -> real), the variant beside the paper's AS: the probe fitted on
    the sim train episodes (the split of :func:`action_score` with the same ``rng``),
    scored on all real frames. realgap reports :func:`transfer_action_score_all`."""
    xs, ys, es = _inputs(emb_sim, act_sim, ep_sim, "_sim")
    xr, yr, er = _inputs(emb_real, act_real, ep_real, "_real")
    _check_transfer(xs, ys, xr, yr)
    train, _ = episode_split(es, val_fraction, rng)
    probe = RidgeProbe.fit(xs[train], ys[train], alpha, groups=es[train])
    return _result(probe, xr, yr, er, int(train.sum()), int(np.unique(es[train]).size))


#: The paper's estimators under names that say so.
action_score_single_split = action_score
transfer_action_score_single_split = transfer_action_score
