"""The tabletop robot: a Cartesian gantry arm with a two-finger parallel gripper.

Why a gantry: a Cartesian robot has no inverse kinematics, no singularities and no
self-collisions, so scripted experts are reliable (>= 90 % success) and an action maps
one-to-one onto a displacement of the gripper. Every link is visible (rear rail, posts,
a beam that slides in x, a carriage that slides in y, a vertical rod that slides in z and
a palm with two fingers), so a camera sees the robot move the way it would see an arm.

Kinematics (world frame, metres; +x right, +y away from the head camera, +z up): the
grip point (between the finger tips, site ``grip``) is at
``(q_x, q_y, GRIP_Z0 + q_z)`` where ``q_*`` are the slide joints ``gantry_x/y/z``. Each
finger slides along x by ``q_f`` in [0, FINGER_OPEN] metres; the inner finger faces are
at ``grip_x +- q_f`` (``q_f`` is the half opening).

Control: position actuators (critically damped) on all five joints, gravity compensated.
The action is ``(dx, dy, dz, g)`` in [-1, 1]: the Cartesian position target moves by
``MAX_STEP * (dx, dy, dz)`` metres per environment step (clipped to the joint ranges) and
``g`` sets the finger target absolutely: -1 fully open, +1 fully closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from realgap._optional import require

#: z of the grip point when q_z = 0 (m)
GRIP_Z0 = 1.0
#: joint ranges of the gantry (m): grip x, y, and z offset from GRIP_Z0
X_RANGE = (-0.42, 0.42)
Y_RANGE = (-0.32, 0.32)
Z_RANGE = (-0.32, 0.40)
#: half opening of the fingers when fully open (m)
FINGER_OPEN = 0.05
#: largest Cartesian target displacement per environment step (m), i.e. |action| = 1
MAX_STEP = 0.02
#: finger geometry: half thickness (x), half width (y), half length (z), centre offset (z)
FINGER_HALF = (0.008, 0.012, 0.04)
FINGER_Z = 0.02
JOINTS = ("gantry_x", "gantry_y", "gantry_z", "finger_l", "finger_r")


@dataclass(frozen=True)
class RobotConfig:
    """Robot gains; the defaults are tuned for a 2 ms physics step."""

    #: stiffness of the Cartesian position actuators (N/m)
    kp_xyz: float = 3000.0
    #: stiffness of the finger position actuators (N/m)
    kp_finger: float = 400.0
    #: finger force limit (N); sets the grasp force
    finger_force: float = 25.0
    #: Cartesian force limit (N)
    xyz_force: float = 80.0


def add_gantry(spec: Any, cfg: RobotConfig = RobotConfig()) -> None:
    """Add the gantry, its gripper, the ``grip`` site, the ``wrist`` camera and actuators.

    Args:
        spec: a ``mujoco.MjSpec`` being built (modified in place).
        cfg: actuator gains.
    """
    mj = require("mujoco")
    g = mj.mjtGeom
    wb = spec.worldbody
    metal = [0.55, 0.57, 0.6, 1.0]
    dark = [0.15, 0.15, 0.17, 1.0]
    # static frame: rear rail on two posts (visual only)
    wb.add_geom(name="rail", type=g.mjGEOM_BOX, pos=[0, 0.5, 1.45], size=[0.62, 0.03, 0.03],
                rgba=metal, contype=0, conaffinity=0)
    for sx in (-1.0, 1.0):
        wb.add_geom(name=f"post_{'l' if sx < 0 else 'r'}", type=g.mjGEOM_BOX,
                    pos=[0.62 * sx, 0.5, 0.725], size=[0.03, 0.03, 0.725], rgba=metal,
                    contype=0, conaffinity=0)
    bx = wb.add_body(name="gantry_x", gravcomp=1.0)
    bx.add_joint(name="gantry_x", type=mj.mjtJoint.mjJNT_SLIDE, axis=[1, 0, 0],
                 range=list(X_RANGE), damping=5.0, armature=0.1)
    bx.add_geom(type=g.mjGEOM_BOX, pos=[0, 0.1, 1.45], size=[0.025, 0.42, 0.02], rgba=dark,
                contype=0, conaffinity=0, mass=2.0)
    by = bx.add_body(name="gantry_y", gravcomp=1.0)
    by.add_joint(name="gantry_y", type=mj.mjtJoint.mjJNT_SLIDE, axis=[0, 1, 0],
                 range=list(Y_RANGE), damping=5.0, armature=0.1)
    by.add_geom(type=g.mjGEOM_BOX, pos=[0, 0, 1.43], size=[0.045, 0.045, 0.04], rgba=metal,
                contype=0, conaffinity=0, mass=1.0)
    bz = by.add_body(name="gantry_z", pos=[0, 0, GRIP_Z0], gravcomp=1.0)
    bz.add_joint(name="gantry_z", type=mj.mjtJoint.mjJNT_SLIDE, axis=[0, 0, 1],
                 range=list(Z_RANGE), damping=5.0, armature=0.1)
    bz.add_geom(type=g.mjGEOM_CAPSULE, fromto=[0, 0, 0.08, 0, 0, 0.6], size=[0.015, 0, 0],
                rgba=metal, contype=0, conaffinity=0, mass=0.5)
    bz.add_geom(name="palm", type=g.mjGEOM_BOX, pos=[0, 0, 0.07],
                size=[FINGER_OPEN + 0.02, 0.02, 0.012], rgba=dark, contype=0, conaffinity=0,
                mass=0.3)
    bz.add_site(name="grip", pos=[0, 0, 0], size=[0.006, 0, 0], rgba=[1, 1, 0, 0])
    wrist_eye = np.array([0.0, -0.09, 0.03])
    bz.add_camera(name="wrist", pos=list(wrist_eye), quat=_look_quat(
        wrist_eye, np.array([0.0, 0.04, -0.12])), fovy=75.0)
    fx, fy, fz = FINGER_HALF
    for side, sgn in (("l", 1.0), ("r", -1.0)):
        bf = bz.add_body(name=f"finger_{side}", gravcomp=1.0)
        bf.add_joint(name=f"finger_{side}", type=mj.mjtJoint.mjJNT_SLIDE,
                     axis=[sgn, 0, 0], range=[0.0, FINGER_OPEN], damping=2.0, armature=0.01)
        bf.add_geom(name=f"finger_{side}", type=g.mjGEOM_BOX, pos=[sgn * fx, 0, FINGER_Z],
                    size=[fx, fy, fz], rgba=[0.8, 0.8, 0.82, 1], mass=0.05, condim=4,
                    friction=[1.5, 0.02, 0.002], solref=[0.01, 1.0])
    for name, rng, kp, frc in (
        ("gantry_x", X_RANGE, cfg.kp_xyz, cfg.xyz_force),
        ("gantry_y", Y_RANGE, cfg.kp_xyz, cfg.xyz_force),
        ("gantry_z", Z_RANGE, cfg.kp_xyz, cfg.xyz_force),
        ("finger_l", (0.0, FINGER_OPEN), cfg.kp_finger, cfg.finger_force),
        ("finger_r", (0.0, FINGER_OPEN), cfg.kp_finger, cfg.finger_force),
    ):
        act = spec.add_actuator(name=name, target=name, trntype=mj.mjtTrn.mjTRN_JOINT)
        act.set_to_position(kp=kp, dampratio=1.0)
        act.ctrlrange = list(rng)
        act.ctrllimited = 1
        act.forcerange = [-frc, frc]
        act.forcelimited = 1


def _look_quat(eye: np.ndarray, target: np.ndarray, up: np.ndarray | None = None) -> list[float]:
    """Quaternion (w, x, y, z) of a MuJoCo camera at ``eye`` looking at ``target``.

    A MuJoCo camera looks along its local -z axis with +y up (MuJoCo docs, "camera").
    """
    mj = require("mujoco")
    up = np.array([0.0, 0.0, 1.0]) if up is None else up
    f = (target - eye) / np.linalg.norm(target - eye)
    if abs(float(np.dot(f, up))) > 0.999:  # looking straight down: use +y as up
        up = np.array([0.0, 1.0, 0.0])
    right = np.cross(f, up)
    right /= np.linalg.norm(right)
    cam_up = np.cross(right, f)
    mat = np.stack([right, cam_up, -f], axis=1)  # columns: camera x, y, z in parent frame
    quat = np.zeros(4)
    mj.mju_mat2Quat(quat, mat.reshape(-1))
    return [float(v) for v in quat]


def look_quat(eye: np.ndarray, target: np.ndarray) -> list[float]:
    """Public alias of the camera look-at helper (w, x, y, z)."""
    return _look_quat(np.asarray(eye, float), np.asarray(target, float))


class GantryController:
    """Turns actions into actuator targets; keeps the Cartesian target between steps.

    Args:
        model, data: the compiled MuJoCo model and its data.
    """

    def __init__(self, model: Any, data: Any) -> None:
        mj = require("mujoco")
        self.model, self.data = model, data
        jid = [mj.mj_name2id(model, mj.mjtObj.mjOBJ_JOINT, j) for j in JOINTS]
        self.qadr = np.array([model.jnt_qposadr[j] for j in jid])
        self.vadr = np.array([model.jnt_dofadr[j] for j in jid])
        self.act = np.array([mj.mj_name2id(model, mj.mjtObj.mjOBJ_ACTUATOR, j) for j in JOINTS])
        self.lo = np.array([X_RANGE[0], Y_RANGE[0], Z_RANGE[0]])
        self.hi = np.array([X_RANGE[1], Y_RANGE[1], Z_RANGE[1]])
        self.target = np.zeros(3)

    def set_grip(self, pos: np.ndarray, opening: float) -> None:
        """Teleport the grip point to ``pos`` (world, m) with half opening ``opening``."""
        q = np.clip(np.asarray(pos, float) - [0.0, 0.0, GRIP_Z0], self.lo, self.hi)
        self.data.qpos[self.qadr[:3]] = q
        self.data.qpos[self.qadr[3:]] = opening
        self.data.qvel[self.vadr] = 0.0
        self.target = q.copy()
        self.data.ctrl[self.act[:3]] = q
        self.data.ctrl[self.act[3:]] = opening

    def apply(self, action: np.ndarray) -> None:
        """Set actuator targets from ``action`` (4,) in [-1, 1] (see module docstring)."""
        a = np.clip(np.asarray(action, float).reshape(-1), -1.0, 1.0)
        self.target = np.clip(self.target + MAX_STEP * a[:3], self.lo, self.hi)
        self.data.ctrl[self.act[:3]] = self.target
        self.data.ctrl[self.act[3:]] = FINGER_OPEN * (1.0 - a[3]) / 2.0

    def grip_pos(self) -> np.ndarray:
        """World position of the grip point (3,), metres."""
        return self.data.qpos[self.qadr[:3]] + np.array([0.0, 0.0, GRIP_Z0])

    def opening(self) -> float:
        """Mean half opening of the fingers (m): 0 closed, FINGER_OPEN open."""
        return float(np.mean(self.data.qpos[self.qadr[3:]]))
