"""Tabletop tasks: initial-state sampling, success tests and dense rewards.

Tasks are pure functions of a :class:`TaskState` snapshot (no MuJoCo here), registered in
:data:`TASKS`; :func:`realgap.sim.make` builds the environment around one.

All four tasks share one scene and one visual distribution: the mug and the box are
always on the table (the reach pair ``reach-mug`` / ``reach-box`` differs only in which
object is the target, as Visual Alignment Testing needs). ``push`` and ``pick-place`` add
a visible goal marker. Positions are world coordinates in metres.

State vector (``obs["state"]``, float32, length :data:`STATE_DIM`), see :data:`STATE_LAYOUT`:
grip point xyz, finger half opening, mug xyz, box xyz, goal xyz (for the reach tasks the
point to reach), table-top z.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from realgap._registry import Registry
from realgap.sim.scene import BOX_HALF, GOAL_RADIUS, MUG_HALF_H, TABLE_HALF

STATE_LAYOUT: tuple[tuple[str, int], ...] = (
    ("grip", 3), ("opening", 1), ("mug", 3), ("box", 3), ("goal", 3), ("table_z", 1))
STATE_DIM = sum(n for _, n in STATE_LAYOUT)
#: height of the reach point above the target object's centre (m)
REACH_HEIGHT = 0.10
#: success radius of the reach tasks (m)
REACH_TOL = 0.03
#: success radius of push / pick-place: object centre to goal centre in the table plane (m)
PLACE_TOL = 0.04
#: region of the table where objects start (x, y bounds relative to the table centre, m)
OBJ_X = (-0.24, 0.24)
OBJ_Y = (-0.16, 0.14)


@dataclass(frozen=True)
class TaskState:
    """A snapshot of what the tasks look at (world frame, metres)."""

    grip: np.ndarray
    opening: float
    mug: np.ndarray
    box: np.ndarray
    goal: np.ndarray
    table_z: float

    def vector(self) -> np.ndarray:
        """The state observation, float32 (STATE_DIM,) in STATE_LAYOUT order."""
        return np.concatenate([self.grip, [self.opening], self.mug, self.box, self.goal,
                               [self.table_z]]).astype(np.float32)

    @classmethod
    def from_vector(cls, v: np.ndarray) -> TaskState:
        """Inverse of :meth:`vector`."""
        v = np.asarray(v, dtype=np.float64)
        return cls(v[0:3], float(v[3]), v[4:7], v[7:10], v[10:13], float(v[13]))


@dataclass(frozen=True)
class Layout:
    """An initial state drawn by a task: object xy (m, table-centred), yaws (rad), goal xy."""

    mug_xy: tuple[float, float]
    mug_yaw: float
    box_xy: tuple[float, float]
    box_yaw: float
    goal_xy: tuple[float, float]
    grip_start: tuple[float, float, float]  # x, y, height above the table top


class Task:
    """Base task. Subclasses set ``name``, ``max_steps``, ``show_goal`` and the tests."""

    name: str = ""
    max_steps: int = 40
    show_goal: bool = False
    #: object the task is about ("mug" or "box")
    target: str = "box"

    def sample_layout(self, rng: np.random.Generator) -> Layout:
        """Draw object positions and the goal; the same draws for every task type."""
        for _ in range(1000):
            mug = rng.uniform([OBJ_X[0], OBJ_Y[0]], [OBJ_X[1], OBJ_Y[1]])
            box = rng.uniform([OBJ_X[0], OBJ_Y[0]], [OBJ_X[1], OBJ_Y[1]])
            if np.linalg.norm(mug - box) < 0.14:
                continue
            goal = self._goal(rng, mug, box)
            if goal is None:
                continue
            return Layout(
                mug_xy=(float(mug[0]), float(mug[1])),
                mug_yaw=float(rng.uniform(-np.pi, np.pi)),
                box_xy=(float(box[0]), float(box[1])),
                box_yaw=float(rng.uniform(-0.25, 0.25)),
                goal_xy=(float(goal[0]), float(goal[1])),
                grip_start=(float(rng.uniform(-0.1, 0.1)), float(rng.uniform(0.08, 0.2)),
                            float(rng.uniform(0.28, 0.34))),
            )
        raise RuntimeError(f"task {self.name}: could not sample a layout")  # pragma: no cover

    def _goal(self, rng: np.random.Generator, mug: np.ndarray,
              box: np.ndarray) -> np.ndarray | None:
        return np.zeros(2)

    def goal_point(self, s: TaskState) -> np.ndarray:
        """The goal xyz reported in the state vector."""
        return s.goal

    def keep_clear(self, layout: Layout) -> list[tuple[float, float, float]]:
        """Discs (x, y, radius; table-centred, m) that distractors must not overlap."""
        return [(*layout.mug_xy, 0.075), (*layout.box_xy, 0.06)]

    def success(self, s: TaskState) -> bool:
        raise NotImplementedError

    def reward(self, s: TaskState) -> float:
        raise NotImplementedError


class ReachTask(Task):
    """Move the grip point to REACH_HEIGHT above the target object's centre.

    Success: ``||grip - (target + [0, 0, REACH_HEIGHT])|| < REACH_TOL``. Reward: minus that
    distance (m).
    """

    max_steps = 40

    def __init__(self, target: str) -> None:
        self.target = target
        self.name = f"reach-{target}"

    def reach_point(self, s: TaskState) -> np.ndarray:
        obj = s.mug if self.target == "mug" else s.box
        return obj + np.array([0.0, 0.0, REACH_HEIGHT])

    def goal_point(self, s: TaskState) -> np.ndarray:
        return self.reach_point(s)

    def success(self, s: TaskState) -> bool:
        return bool(np.linalg.norm(s.grip - self.reach_point(s)) < REACH_TOL)

    def reward(self, s: TaskState) -> float:
        return -float(np.linalg.norm(s.grip - self.reach_point(s)))


class PushTask(Task):
    """Push the box onto the goal marker (0.10-0.16 m away in a random direction).

    Success: box centre within PLACE_TOL of the goal centre in the table plane.
    Reward: ``-2 d(box, goal) - 0.5 d(grip, box)`` (m, table plane for the first term).
    """

    name = "push"
    max_steps = 60
    show_goal = True

    def _goal(self, rng: np.random.Generator, mug: np.ndarray,
              box: np.ndarray) -> np.ndarray | None:
        ang = rng.uniform(-np.pi, np.pi)
        u = np.array([np.cos(ang), np.sin(ang)])
        goal = box + rng.uniform(0.10, 0.16) * u
        pre = box - 0.09 * u
        hx, hy = TABLE_HALF
        if np.any(np.abs(goal) > [hx - 0.08, hy - 0.08]) or np.any(
                np.abs(pre) > [hx - 0.05, hy - 0.05]):
            return None
        # the push path (pre-push point to goal) must pass clear of the mug
        if _seg_dist(mug, pre, goal) < 0.11:
            return None
        return goal

    def keep_clear(self, layout: Layout) -> list[tuple[float, float, float]]:
        b, gl = np.array(layout.box_xy), np.array(layout.goal_xy)
        u = (gl - b) / np.linalg.norm(gl - b)
        pre = b - 0.09 * u
        mid = (b + gl) / 2
        return super().keep_clear(layout) + [
            (*layout.goal_xy, GOAL_RADIUS + 0.03), (float(pre[0]), float(pre[1]), 0.06),
            (float(mid[0]), float(mid[1]), 0.06)]

    def success(self, s: TaskState) -> bool:
        return bool(np.linalg.norm(s.box[:2] - s.goal[:2]) < PLACE_TOL)

    def reward(self, s: TaskState) -> float:
        return -2.0 * float(np.linalg.norm(s.box[:2] - s.goal[:2])) - 0.5 * float(
            np.linalg.norm(s.grip - s.box))


class PickPlaceTask(Task):
    """Pick the box up and put it down on the goal marker (0.15-0.30 m away), released.

    Success: box centre within PLACE_TOL of the goal in the table plane, resting (centre
    less than 1 cm above its resting height) and the fingers open (half opening > 3 cm).
    Reward: ``-d(grip, box) - 2 d(box, goal) + 0.5 [box lifted > 3 cm]`` (m).
    """

    name = "pick-place"
    max_steps = 80
    show_goal = True

    def _goal(self, rng: np.random.Generator, mug: np.ndarray,
              box: np.ndarray) -> np.ndarray | None:
        hx, hy = TABLE_HALF
        goal = rng.uniform([-hx + 0.1, -hy + 0.1], [hx - 0.1, hy - 0.12])
        d = np.linalg.norm(goal - box)
        if d < 0.15 or d > 0.30 or np.linalg.norm(goal - mug) < 0.13:
            return None
        return goal

    def keep_clear(self, layout: Layout) -> list[tuple[float, float, float]]:
        return super().keep_clear(layout) + [(*layout.goal_xy, GOAL_RADIUS + 0.04)]

    def success(self, s: TaskState) -> bool:
        near = np.linalg.norm(s.box[:2] - s.goal[:2]) < PLACE_TOL
        resting = s.box[2] < s.table_z + BOX_HALF + 0.01
        return bool(near and resting and s.opening > 0.03)

    def reward(self, s: TaskState) -> float:
        lifted = s.box[2] > s.table_z + BOX_HALF + 0.03
        return (-float(np.linalg.norm(s.grip - s.box))
                - 2.0 * float(np.linalg.norm(s.box[:2] - s.goal[:2])) + 0.5 * float(lifted))


def _seg_dist(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Distance from point p to segment ab (2-D)."""
    ab = b - a
    t = float(np.clip(np.dot(p - a, ab) / max(float(np.dot(ab, ab)), 1e-12), 0.0, 1.0))
    return float(np.linalg.norm(p - (a + t * ab)))


#: the task registry: ``TASKS.create(name)`` returns a :class:`Task`
TASKS: Registry[Task] = Registry("task", entry_point_group="realgap.tasks")
TASKS.add("reach-mug", lambda: ReachTask("mug"), max_steps=ReachTask.max_steps)
TASKS.add("reach-box", lambda: ReachTask("box"), max_steps=ReachTask.max_steps)
TASKS.add("push", PushTask, max_steps=PushTask.max_steps)
TASKS.add("pick-place", PickPlaceTask, max_steps=PickPlaceTask.max_steps)

#: object resting heights above the table top (m), used when placing objects
REST_HEIGHT: dict[str, float] = {"mug": MUG_HALF_H, "box": BOX_HALF}
