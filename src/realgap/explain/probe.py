"""The action probe as a saliency target: an embedding has no class, so we explain its action.

Saliency methods such as Grad-CAM explain a scalar. For a classifier that is the class
logit; an encoder's embedding has no class. encoder-dis-as-framework.txt (III-E) says
encoders with a high Action Score "should focus sharply on manipulators and objects", so
the scalar we explain is the *action the linear action probe reads from the embedding*
(the probe of the Action Score, III-D; DESIGN.md "Action Score"):

    a_hat(z) = ((z - mu_z) / sd_z) @ W + b          (standardized action units)
    target(z) = || a_hat(z) ||_2

Its gradient with respect to ``z`` equals that of the projection of ``a_hat`` on its own
(detached) direction, so the map shows what moves the predicted action along the direction
it already points to. The probe is a closed-form ridge regression on standardized
embeddings and standardized actions, fit on sim train episodes, exactly as the AS probe is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from realgap._rng import RngLike
from realgap.errors import DataError

#: What the figure captions say the target is.
TARGET_DESCRIPTION = (
    "target = ||a_hat(z)||, the norm of the action that the linear action probe (ridge, fit "
    "on sim train episodes, standardized action units) predicts from the embedding z"
)


@dataclass(frozen=True)
class ActionProbe:
    """A fitted linear action probe ``a_hat = ((z - mean) / scale) @ coef + intercept``.

    Attributes:
        mean: float64 (D,) embedding mean of the fit set.
        scale: float64 (D,) embedding standard deviation (1 where a feature is constant).
        coef: float64 (D, A) ridge weights on standardized embeddings.
        intercept: float64 (A,) (0 for standardized actions, kept for generality).
        alpha: the ridge penalty used.
    """

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    alpha: float

    def predict(self, emb: np.ndarray) -> np.ndarray:
        """Standardized predicted actions, float64 (N, A), for embeddings (N, D)."""
        z = (np.asarray(emb, dtype=np.float64) - self.mean) / self.scale
        return z @ self.coef + self.intercept

    def target_value(self, emb: np.ndarray) -> np.ndarray:
        """``||a_hat(z)||_2`` per row, float64 (N,): the scalar the saliency maps explain."""
        return np.linalg.norm(self.predict(emb), axis=1)

    def torch_target(self) -> ProbeTarget:
        """The pytorch-grad-cam target callable for this probe."""
        return ProbeTarget(self)


def probe_from_ridge(ridge: Any) -> ActionProbe:
    """The saliency target of a fitted :class:`realgap.metrics.probe.RidgeProbe` (same weights)."""
    return ActionProbe(mean=np.asarray(ridge.x_mean, dtype=np.float64),
                       scale=np.asarray(ridge.x_std, dtype=np.float64),
                       coef=np.asarray(ridge.coef, dtype=np.float64),
                       intercept=np.zeros(np.asarray(ridge.coef).shape[1]),
                       alpha=float(ridge.alpha))


def fit_action_probe(
    emb: np.ndarray,
    actions: np.ndarray,
    episodes: np.ndarray | None = None,
    *,
    val_fraction: float = 0.2,
    alpha: float | str = "cv",
    rng: RngLike = 0,
) -> ActionProbe:
    """The Action Score's probe (DESIGN.md; ref. III-D) fit on embeddings (N, D) -> actions (N, A).

    With ``episodes``, the fit uses the train episodes of
    :func:`realgap.metrics.probe.episode_split` with the same ``val_fraction`` and ``rng``
    as :func:`realgap.metrics.transfer_action_score`, so the saliency target is the very
    probe whose transfer AS the report shows. Without ``episodes`` all frames are used.
    The ridge itself is :class:`realgap.metrics.probe.RidgeProbe` (closed form on
    train-standardized embeddings and actions; ``alpha="cv"`` picks the penalty by
    leave-episodes-out cross-validation exactly as the Action Score does).
    """
    from realgap.metrics.probe import RidgeProbe, episode_split

    z = np.asarray(emb, dtype=np.float64)
    y = np.asarray(actions, dtype=np.float64)
    if z.ndim != 2 or y.ndim != 2 or len(z) != len(y) or len(z) < 2:
        raise DataError(
            f"action probe: embeddings {z.shape} and actions {y.shape} must be (N, D) and "
            "(N, A) with the same N >= 2; pass the frames' embeddings and their actions"
        )
    if not (np.isfinite(z).all() and np.isfinite(y).all()):
        raise DataError("action probe: embeddings or actions contain NaN/inf; clean the frames")
    groups = np.arange(len(z)) if episodes is None else np.asarray(episodes)
    if episodes is not None:
        train, _ = episode_split(groups, val_fraction, rng)
        z, y, groups = z[train], y[train], groups[train]
    return probe_from_ridge(RidgeProbe.fit(z, y, alpha, groups=groups))


class ProbeTarget:
    """pytorch-grad-cam target: maps one embedding (D,) to ``||a_hat(z)||`` (a 0-d tensor).

    pytorch-grad-cam calls ``target(output)`` on each sample's model output; here the model
    output is the embedding. Tensors are created lazily on the output's device and dtype.
    """

    def __init__(self, probe: ActionProbe) -> None:
        self.probe = probe
        self._cache: dict[Any, tuple[Any, Any, Any, Any]] = {}

    def _params(self, like: Any) -> tuple[Any, Any, Any, Any]:
        import torch

        key = (like.device, like.dtype)
        if key not in self._cache:
            p = self.probe
            self._cache[key] = tuple(  # type: ignore[assignment]
                torch.as_tensor(a, dtype=like.dtype, device=like.device)
                for a in (p.mean, p.scale, p.coef, p.intercept)
            )
        return self._cache[key]

    def __call__(self, output: Any) -> Any:
        mean, scale, coef, intercept = self._params(output)
        if output.ndim != 1 or output.shape[0] != mean.shape[0]:
            raise DataError(
                f"saliency target: the encoder output has shape {tuple(output.shape)}, the "
                f"action probe expects embeddings of dim {mean.shape[0]}; fit the probe on "
                "this encoder's embeddings"
            )
        a_hat = ((output - mean) / scale) @ coef + intercept
        return a_hat.norm()
