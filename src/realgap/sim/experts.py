"""Scripted experts: stateless feedback controllers over the privileged state vector.

Each expert maps ``obs["state"]`` (layout :data:`realgap.sim.tasks.STATE_LAYOUT`) to an
action ``(dx, dy, dz, gripper)`` in [-1, 1]. Being stateless (the phase of a pick or a
push is read off the state, not remembered), an expert can take over mid-episode and
recovers from slips: if the box leaves the fingers, the pick starts again.

A Cartesian target ``p`` becomes the action ``clip(gain * (p - grip) / MAX_STEP, -1, 1)``:
the commanded displacement is ``gain`` of the remaining distance per step.

The reach expert is a *proportional* controller that almost never saturates
(:data:`REACH_GAIN` = 0.1: the per-axis command exceeds 1 only while an axis is more than
0.2 m from the reach point). Its action is then a linear function of what the head camera
sees (where the target and the gripper are), which is what makes an encoder's Action Score
(encoder-dis-as-framework.txt III-D) readable: with the old saturating gain (0.8) 71% of
the action entries of ``reach-mug`` sat at +-1, and a ridge probe on the true state reached
AS 0.56 only; with 0.1, 4% saturate and the state probe reaches AS 0.98 (60 episodes,
5 episode folds; measured when the demo dataset was designed). Every episode still succeeds within the 40-step
limit (mean 21 steps). Push and pick-place keep the fast gain (:data:`GAIN`): their
phases are switched on thresholds anyway, so their actions are not smooth in the state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from realgap.errors import ConfigError
from realgap.sim.robot import MAX_STEP
from realgap.sim.scene import BOX_HALF
from realgap.sim.tasks import TaskState

#: Gain of the push and pick-place phases (fraction of the remaining distance per step,
#: before clipping to one MAX_STEP).
GAIN = 0.8
#: Gain of the reach expert: proportional and rarely saturating (see the module docstring).
REACH_GAIN = 0.1
Expert = Callable[[dict[str, Any]], np.ndarray]


def _toward(grip: np.ndarray, target: np.ndarray, gripper: float,
            limit: float = 1.0, gain: float = GAIN) -> np.ndarray:
    d = np.clip(gain * (np.asarray(target) - grip) / MAX_STEP, -limit, limit)
    return np.array([*d, gripper], dtype=np.float32)


def reach_expert(obs: dict[str, Any]) -> np.ndarray:
    """Fly straight to the reach point (reported as the goal), fingers open; proportional
    with :data:`REACH_GAIN`, so the action is ``REACH_GAIN / MAX_STEP * (goal - grip)``
    except within 0.2 m-per-axis saturation."""
    s = TaskState.from_vector(obs["state"])
    return _toward(s.grip, s.goal, -1.0, gain=REACH_GAIN)


#: push geometry (m): pre-push standoff behind the box centre and the pushing height
PUSH_STANDOFF = 0.075
PUSH_HEIGHT = 0.025
HOVER = 0.11


def push_expert(obs: dict[str, Any]) -> np.ndarray:
    """Go behind the box (opposite the goal) at a safe height, descend, push along the
    box-goal line while correcting sideways drift; closed fingers are the pusher."""
    s = TaskState.from_vector(obs["state"])
    b, g, grip, top = s.box[:2], s.goal[:2], s.grip, s.table_z
    d = float(np.linalg.norm(g - b))
    u = (g - b) / max(d, 1e-9)
    perp = np.array([-u[1], u[0]])
    rel = grip[:2] - b
    along, lat = float(rel @ u), float(rel @ perp)
    low = grip[2] < top + PUSH_HEIGHT + 0.015
    if low and along < -0.025 and abs(lat) < 0.02:
        # pushing: advance along u at a speed that shrinks near the goal, cancel drift
        step = min(d, 0.02)
        xy = grip[:2] + step * u - 0.8 * lat * perp
        return _toward(grip, np.array([*xy, top + PUSH_HEIGHT]), 1.0)
    pre = b - PUSH_STANDOFF * u
    if float(np.linalg.norm(grip[:2] - pre)) > 0.015:
        if grip[2] < top + 0.07:  # too low to travel: straight up first
            return _toward(grip, np.array([*grip[:2], top + HOVER]), 1.0)
        return _toward(grip, np.array([*pre, top + HOVER]), 1.0)
    return _toward(grip, np.array([*pre, top + PUSH_HEIGHT]), 1.0)


def pick_place_expert(obs: dict[str, Any]) -> np.ndarray:
    """Hover over the box, descend, close, lift, carry over the goal, lower, release."""
    s = TaskState.from_vector(obs["state"])
    b, g, grip, top, q = s.box, s.goal[:2], s.grip, s.table_z, s.opening
    hover = top + HOVER + 0.02
    grasp_z = b[2] + 0.008
    resting = b[2] < top + BOX_HALF + 0.006
    at_goal = float(np.linalg.norm(b[:2] - g)) < 0.02
    holding = (0.012 < q < 0.027 and float(np.linalg.norm(grip[:2] - b[:2])) < 0.02
               and abs(grip[2] - b[2]) < 0.03)
    if at_goal and resting:  # placed: let go and back off upwards
        return np.array([0.0, 0.0, 1.0 if q > 0.03 else 0.0, -1.0], dtype=np.float32)
    if holding:
        if float(np.linalg.norm(b[:2] - g)) > 0.008:
            if grip[2] < top + 0.08:
                return _toward(grip, np.array([*grip[:2], hover]), 1.0)
            return _toward(grip, np.array([*(grip[:2] + g - b[:2]), hover]), 1.0)
        return _toward(grip, np.array([*(grip[:2] + g - b[:2]),
                                       top + BOX_HALF + 0.012]), 1.0, limit=0.6)
    if float(np.linalg.norm(grip[:2] - b[:2])) > 0.01:
        if grip[2] < top + 0.07:
            return _toward(grip, np.array([*grip[:2], hover]), -1.0)
        return _toward(grip, np.array([*b[:2], hover]), -1.0)
    if grip[2] > grasp_z + 0.008:
        return _toward(grip, np.array([*b[:2], grasp_z]), -1.0)
    return _toward(grip, np.array([*b[:2], grasp_z]), 1.0)


EXPERTS: dict[str, Expert] = {
    "reach-mug": reach_expert,
    "reach-box": reach_expert,
    "push": push_expert,
    "pick-place": pick_place_expert,
}


def expert_for(env: Any) -> Expert:
    """The scripted expert for ``env``'s task (``env`` may be wrapped)."""
    task = getattr(getattr(env, "unwrapped", env), "task", None)
    name = getattr(task, "name", None)
    if name not in EXPERTS:
        raise ConfigError(f"no scripted expert for task {name!r}; experts exist for "
                          f"{', '.join(sorted(EXPERTS))}")
    return EXPERTS[name]
