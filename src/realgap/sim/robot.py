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


@dataclass(frozen=True)
class MJCFRobot:
    """A user-supplied arm (MJCF file) instead of the gantry, driven through its end effector.

    The file is attached under the prefix ``robot/`` with its base at ``base_pos``; a
    mocap body ``ee_target`` is welded (equality constraint, MuJoCo's standard way to
    drive an arm in Cartesian space without inverse kinematics) to ``ee_site``, so the
    action moves ``ee_target`` exactly as it moves the gantry's target and the
    constraint solver moves the arm's joints. The site's orientation at ``qpos0`` is held
    (``torquescale`` 1) or ignored (0). A ``wrist`` camera is added to the site's body.

    ``obs["state"]`` reports the grip point as the site position and the "opening" as the
    mean position of ``finger_joints`` (or, without them, the commanded opening mapped
    onto [0, FINGER_OPEN]). The reach and push experts work with any arm that reaches the
    table; the pick-place expert needs slide fingers like the gantry's (half opening in
    metres, closing on the 4 cm box at about 2 cm).
    """

    #: path of the robot's MJCF file (meshes relative to it)
    path: str
    #: site at the grip point (name in the robot's file)
    ee_site: str
    #: position actuators of the gripper (names in the robot's file)
    gripper_actuators: tuple[str, ...] = ()
    #: actuator control values for a fully open and a fully closed gripper
    gripper_open: float = 0.0
    gripper_closed: float = 0.0
    #: slide joints of the fingers (names in the robot's file): when given, the state's
    #: opening is their mean position (m, the half opening, as for the gantry) instead of
    #: the commanded opening
    finger_joints: tuple[str, ...] = ()
    #: where the robot's world origin goes in the scene (m)
    base_pos: tuple[float, float, float] = (0.0, 0.45, 0.0)
    #: weld torque scale: 1 holds the site's orientation, 0 controls position only
    torquescale: float = 1.0


def add_mjcf_robot(spec: Any, cfg: MJCFRobot) -> None:
    """Attach the user's robot, the ``ee_target`` mocap body, the weld and the wrist camera."""
    from pathlib import Path

    from realgap.errors import ConfigError, MissingFileError

    mj = require("mujoco")
    path = Path(cfg.path)
    if not path.is_file():
        raise MissingFileError(f"robot MJCF {str(path)!r} does not exist; pass the path of "
                               "the robot's .xml file")
    try:
        child = mj.MjSpec.from_file(str(path))
    except ValueError as exc:  # MuJoCo reports parse errors as a multi-line ValueError
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigError(f"robot MJCF {str(path)!r} does not load: {detail}") from None
    site = child.site(cfg.ee_site)
    if site is None:
        raise ConfigError(f"robot MJCF {str(path)!r} has no site {cfg.ee_site!r} (ee_site); "
                          "name the site at the grip point")
    for act in cfg.gripper_actuators:
        if child.actuator(act) is None:
            raise ConfigError(f"robot MJCF {str(path)!r} has no actuator {act!r} "
                              "(gripper_actuators)")
    for jnt in cfg.finger_joints:
        if child.joint(jnt) is None:
            raise ConfigError(f"robot MJCF {str(path)!r} has no joint {jnt!r} (finger_joints)")
    site.parent.add_camera(name="wrist_cam_tmp", pos=[0.0, -0.09, 0.03], quat=_look_quat(
        np.array([0.0, -0.09, 0.03]), np.array([0.0, 0.04, -0.12])), fovy=75.0)
    frame = spec.worldbody.add_frame(pos=list(cfg.base_pos))
    spec.attach(child, frame=frame, prefix="robot/")
    spec.camera("robot/wrist_cam_tmp").name = "wrist"
    target = spec.worldbody.add_body(name="ee_target", mocap=True)
    target.add_site(name="ee_target", size=[0.005, 0, 0], rgba=[0, 0, 0, 0])
    spec.add_equality(type=mj.mjtEq.mjEQ_WELD, objtype=mj.mjtObj.mjOBJ_SITE,
                      name1="ee_target", name2=f"robot/{cfg.ee_site}",
                      data=[0, 0, 0, 0, 0, 0, 1, 0, 0, 0, float(cfg.torquescale), 0],
                      solref=[0.02, 1.0])


class MocapController:
    """Drives an :class:`MJCFRobot` by moving its welded ``ee_target`` (same action
    convention and step size as :class:`GantryController`)."""

    SETTLE_STEPS = 400  # physics steps (0.8 s) to let the arm reach a teleported target

    def __init__(self, model: Any, data: Any, cfg: MJCFRobot) -> None:
        mj = require("mujoco")
        self.mj, self.model, self.data, self.cfg = mj, model, data, cfg
        body = mj.mj_name2id(model, mj.mjtObj.mjOBJ_BODY, "ee_target")
        self.mocap = int(model.body_mocapid[body])
        self.site = mj.mj_name2id(model, mj.mjtObj.mjOBJ_SITE, f"robot/{cfg.ee_site}")
        self.act = np.array([mj.mj_name2id(model, mj.mjtObj.mjOBJ_ACTUATOR, f"robot/{a}")
                             for a in cfg.gripper_actuators], dtype=int)
        self.lo = np.array([X_RANGE[0], Y_RANGE[0], GRIP_Z0 + Z_RANGE[0]])
        self.hi = np.array([X_RANGE[1], Y_RANGE[1], GRIP_Z0 + Z_RANGE[1]])
        self.finger_qadr = np.array([model.jnt_qposadr[mj.mj_name2id(
            model, mj.mjtObj.mjOBJ_JOINT, f"robot/{j}")] for j in cfg.finger_joints], dtype=int)
        mj.mj_forward(model, data)
        q = np.zeros(4)
        mj.mju_mat2Quat(q, data.site_xmat[self.site])
        self.quat0 = q
        self.target = np.zeros(3)
        self._g = -1.0

    def _gripper(self, g: float) -> None:
        self._g = float(np.clip(g, -1.0, 1.0))
        if self.act.size:
            c = self.cfg.gripper_open + (self.cfg.gripper_closed - self.cfg.gripper_open) * (
                self._g + 1.0) / 2.0
            self.data.ctrl[self.act] = c

    def set_grip(self, pos: np.ndarray, opening: float) -> None:
        """Move the target to ``pos`` and let the arm settle there (gripper open)."""
        self.target = np.clip(np.asarray(pos, float), self.lo, self.hi)
        self.data.mocap_pos[self.mocap] = self.target
        self.data.mocap_quat[self.mocap] = self.quat0
        self._gripper(1.0 - 2.0 * float(opening) / FINGER_OPEN)
        self.mj.mj_step(self.model, self.data, nstep=self.SETTLE_STEPS)
        self.data.time = 0.0

    def apply(self, action: np.ndarray) -> None:
        a = np.clip(np.asarray(action, float).reshape(-1), -1.0, 1.0)
        self.target = np.clip(self.target + MAX_STEP * a[:3], self.lo, self.hi)
        self.data.mocap_pos[self.mocap] = self.target
        self._gripper(float(a[3]))

    def grip_pos(self) -> np.ndarray:
        return self.data.site_xpos[self.site].copy()

    def opening(self) -> float:
        """Mean finger joint position (m), or the commanded opening on [0, FINGER_OPEN]."""
        if self.finger_qadr.size:
            return float(np.mean(self.data.qpos[self.finger_qadr]))
        return FINGER_OPEN * (1.0 - self._g) / 2.0
