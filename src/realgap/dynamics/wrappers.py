"""The Gymnasium wrapper of a perturbed env (imports Gymnasium at its top; imported lazily
by :func:`realgap.dynamics.perturb.make_env`)."""

from __future__ import annotations

from typing import Any

from realgap._optional import require
from realgap.sim.physics import PhysicsSetting

gym = require("gymnasium")

__all__ = ["PerturbedEnv"]


class PerturbedEnv(gym.Wrapper):  # type: ignore[misc, name-defined]
    """Adds the perturbation to ``info["factors"]`` (``{"PHYS": {...}}``) on every
    ``reset`` and ``step``, like the visual factors of realgap's tabletop tasks.

    Attributes:
        perturbation: the physics setting in force.
        applied_perturbation: the :class:`~realgap.dynamics.perturb.AppliedPerturbation`
            (None for the identity, which is not applied).
    """

    def __init__(self, env: Any, perturbation: PhysicsSetting, applied: Any = None) -> None:
        super().__init__(env)
        self.perturbation = perturbation
        self.applied_perturbation = applied

    def reset(self, **kw: Any) -> Any:
        obs, info = self.env.reset(**kw)
        info.setdefault("factors", {}).update(self.perturbation.factors())
        return obs, info

    def step(self, action: Any) -> Any:
        obs, r, term, trunc, info = self.env.step(action)
        info.setdefault("factors", {}).update(self.perturbation.factors())
        return obs, r, term, trunc, info
