"""The procedural tabletop scene, built with ``mujoco.MjSpec`` and compiled once per env.

Layout (world frame, metres; +x right, +y away from the head camera, +z up):

- background: a floor plane (z = 0) and three wall planes (back at y = 1.1, sides at
  x = +-1.3), each with its own material (``floor``, ``wall``) whose RGB texture the BG
  factor swaps;
- a table whose body origin is the centre of its top surface (nominal z = TABLE_TOP_Z,
  half extents TABLE_HALF); its legs reach below the floor so that moving the table up
  or down (TH factor) never shows floating legs; material ``table``;
- two spot lights (``key`` casts shadows, ``fill`` does not) aimed at the table, plus the
  headlight;
- cameras: ``head`` (fixed, in front of and above the table, looking down at it),
  ``wrist`` (on the gripper, looking down past the fingers) and ``side``;
- task objects with free joints: ``mug`` (cylinder with a handle) and ``box`` (4 cm cube),
  always both present;
- a flat ``goal`` marker (no collision) on the table, shown only for push / pick-place;
- a pool of N_DISTRACTORS static distractor bodies (children of the table), parked out
  of sight (below the floor, behind the back wall) until the TD factor places them;
- the gantry robot of :mod:`realgap.sim.robot` (or a user's MJCF arm, ``MJCFRobot``).

Every texture any factor or domain may use (nominal, BG library, photographs for the
proxy-real domain) is built into the model here, so the renderer uploads them once and a
background swap is only a change of ``model.mat_texid`` (no recompiling, no re-upload).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from realgap._optional import require
from realgap.sim.fidelity import Fidelity
from realgap.sim.robot import MJCFRobot, RobotConfig, add_gantry, add_mjcf_robot, look_quat

TABLE_TOP_Z = 0.75
TABLE_HALF = (0.45, 0.35)
#: where distractors wait when not on the table: relative to the table, under the floor
PARK_POS = (0.0, 5.0, -5.0)
N_DISTRACTORS = 6
MUG_RADIUS, MUG_HALF_H = 0.035, 0.045
BOX_HALF = 0.02
GOAL_RADIUS = 0.05
HEAD_EYE = (0.0, -0.78, 1.42)
HEAD_TARGET = (0.0, 0.06, 0.70)
SIDE_EYE = (1.0, -0.45, 1.25)
SIDE_TARGET = (0.0, 0.05, 0.72)
CAMERAS = ("head", "wrist", "side")
#: background materials the BG factor and the proxy-real domain retexture
BG_MATERIALS = ("wall", "floor", "table")
#: distractor pool: (geom type name, size) per slot; sizes are MuJoCo geom sizes (m)
DISTRACTOR_SHAPES: tuple[tuple[str, tuple[float, float, float]], ...] = (
    ("box", (0.025, 0.035, 0.03)),
    ("cylinder", (0.03, 0.04, 0.0)),
    ("sphere", (0.03, 0.0, 0.0)),
    ("capsule", (0.02, 0.03, 0.0)),
    ("ellipsoid", (0.04, 0.025, 0.025)),
    ("box", (0.04, 0.02, 0.015)),
)


def distractor_half_height(shape: str, size: tuple[float, float, float]) -> float:
    """Height (m) of a distractor's centre above the table top when it rests upright."""
    return {"box": size[2], "cylinder": size[1], "sphere": size[0],
            "capsule": size[0] + size[1], "ellipsoid": size[2]}[shape]


def distractor_radius(shape: str, size: tuple[float, float, float]) -> float:
    """Radius (m) of the footprint disc used for collision-free placement."""
    if shape in ("box", "ellipsoid"):
        return float(np.hypot(size[0], size[1]))
    return float(size[0])


@dataclass(frozen=True)
class SceneConfig:
    """What to build; the fidelity and the texture bank decide the rest."""

    #: show the goal marker (push / pick-place)
    show_goal: bool = False
    #: the gantry's gains, or a user-supplied MJCF robot
    robot: RobotConfig | MJCFRobot = field(default_factory=RobotConfig)


@dataclass
class SceneHandles:
    """Ids into the compiled model, looked up once."""

    model: Any
    body: dict[str, int]
    geom: dict[str, int]
    mat: dict[str, int]
    cam: dict[str, int]
    light: dict[str, int]
    #: texture ids of the BG library, in library order
    bg_tex: list[int]
    #: texture ids of the photographs, by name
    photo_tex: dict[str, int]
    #: nominal texture id per background material
    nominal_tex: dict[str, int]
    #: qpos address of each free object's joint
    obj_qadr: dict[str, int]
    #: dof address of each free object's joint
    obj_vadr: dict[str, int]
    distractor_bodies: list[int]
    distractor_geoms: list[int]

    def table_top(self) -> float:
        """Current z (m) of the table top (moves with the TH factor)."""
        return float(self.model.body_pos[self.body["table"], 2])


def _add_rgb_texture(spec: Any, name: str, img: np.ndarray) -> None:
    mj = require("mujoco")
    img = np.ascontiguousarray(np.asarray(img, dtype=np.uint8))
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"texture {name!r} must be uint8 (H, W, 3), got shape {img.shape}")
    tex = spec.add_texture(name=name, type=mj.mjtTexture.mjTEXTURE_2D,
                           width=img.shape[1], height=img.shape[0], nchannel=3)
    tex.data = img.tobytes()


def _nominal_textures(size: int) -> dict[str, np.ndarray]:
    """The clean simulator look: flat light wall, grey checker floor, plain wood-brown table."""
    s = max(int(size), 8)
    yy, xx = np.mgrid[0:s, 0:s]
    checker = ((xx * 8 // s + yy * 8 // s) % 2).astype(np.float64)
    floor = np.stack([110 + 40 * checker] * 3, axis=-1)
    wall = np.broadcast_to(np.array([200.0, 203.0, 208.0]), (s, s, 3))
    table = np.broadcast_to(np.array([150.0, 112.0, 78.0]), (s, s, 3))
    return {k: np.asarray(v, dtype=np.uint8) for k, v in
            (("wall", wall), ("floor", floor), ("table", table))}


def build_scene(
    fidelity: Fidelity,
    cfg: SceneConfig = SceneConfig(),
    bg_textures: list[np.ndarray] | None = None,
    photo_textures: dict[str, np.ndarray] | None = None,
    image_size: int = 128,
) -> tuple[Any, SceneHandles]:
    """Build and compile the scene.

    Args:
        fidelity: rendering preset (shadow map, MSAA, reflectance, texture size).
        cfg: scene options.
        bg_textures: the BG factor's library, uint8 (S, S, 3) each; may be empty.
        photo_textures: photographs for the proxy-real domain, name -> uint8 (S, S, 3).
        image_size: rendered image side (px); sets the offscreen buffer size.

    Returns:
        ``(model, handles)``: the compiled ``mujoco.MjModel`` and the ids of its parts.
    """
    mj = require("mujoco")
    g = mj.mjtGeom
    spec = mj.MjSpec()
    spec.modelname = "realgap_tabletop"
    spec.compiler.fusestatic = False  # distractors and the goal stay separate, movable bodies
    spec.option.timestep = 0.002
    spec.option.integrator = mj.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.cone = mj.mjtCone.mjCONE_ELLIPTIC
    vis = spec.visual
    vis.global_.offwidth = max(int(image_size), 16)
    vis.global_.offheight = max(int(image_size), 16)
    vis.quality.shadowsize = fidelity.shadow_size
    vis.quality.offsamples = fidelity.offsamples
    vis.headlight.ambient = [0.25, 0.25, 0.25]
    vis.headlight.diffuse = [0.25, 0.25, 0.25]
    vis.headlight.specular = [0.05, 0.05, 0.05]

    nominal = _nominal_textures(fidelity.texture_size)
    for k, img in nominal.items():
        _add_rgb_texture(spec, f"nominal_{k}", img)
    bg_textures = list(bg_textures or [])
    for i, img in enumerate(bg_textures):
        _add_rgb_texture(spec, f"bg_{i}", img)
    photo_textures = dict(photo_textures or {})
    for k, img in photo_textures.items():
        _add_rgb_texture(spec, f"photo_{k}", img)
    rgb_role = int(mj.mjtTextureRole.mjTEXROLE_RGB)
    refl = {"wall": 0.0, "floor": fidelity.floor_reflectance, "table": fidelity.table_reflectance}
    repeat = {"wall": [3.0, 3.0], "floor": [4.0, 4.0], "table": [2.0, 2.0]}
    for k in BG_MATERIALS:
        mat = spec.add_material(name=k, texrepeat=repeat[k], texuniform=True,
                                reflectance=refl[k], specular=0.2, shininess=0.2)
        mat.textures[rgb_role] = f"nominal_{k}"

    wb = spec.worldbody
    wb.add_geom(name="floor", type=g.mjGEOM_PLANE, size=[3.0, 3.0, 0.05], material="floor")
    wall_size = [3.0, 1.5, 0.05]
    wb.add_geom(name="wall_back", type=g.mjGEOM_PLANE, pos=[0, 1.1, 1.5], size=wall_size,
                euler=[90, 0, 0], material="wall", contype=0, conaffinity=0)
    wb.add_geom(name="wall_left", type=g.mjGEOM_PLANE, pos=[-1.3, 0, 1.5], size=wall_size,
                euler=[0, 90, 0], material="wall", contype=0, conaffinity=0)
    wb.add_geom(name="wall_right", type=g.mjGEOM_PLANE, pos=[1.3, 0, 1.5], size=wall_size,
                euler=[0, -90, 0], material="wall", contype=0, conaffinity=0)

    table = wb.add_body(name="table", pos=[0, 0, TABLE_TOP_Z])
    hx, hy = TABLE_HALF
    table.add_geom(name="table_top", type=g.mjGEOM_BOX, pos=[0, 0, -0.02],
                   size=[hx, hy, 0.02], material="table", friction=[0.8, 0.01, 0.001])
    leg_half = (TABLE_TOP_Z + 0.12) / 2
    for i, (sx, sy) in enumerate(((-1, -1), (-1, 1), (1, -1), (1, 1))):
        table.add_geom(name=f"leg_{i}", type=g.mjGEOM_BOX,
                       pos=[sx * (hx - 0.04), sy * (hy - 0.04), -0.04 - leg_half],
                       size=[0.025, 0.025, leg_half], rgba=[0.3, 0.25, 0.2, 1],
                       contype=0, conaffinity=0)
    goal = table.add_body(name="goal", pos=[0.0, 0.0, 0.0005])
    goal.add_geom(name="goal", type=g.mjGEOM_CYLINDER, size=[GOAL_RADIUS, 0.0005, 0],
                  rgba=[0.1, 0.8, 0.2, 0.8 if cfg.show_goal else 0.0], contype=0,
                  conaffinity=0)
    gtypes = {"box": g.mjGEOM_BOX, "cylinder": g.mjGEOM_CYLINDER, "sphere": g.mjGEOM_SPHERE,
              "capsule": g.mjGEOM_CAPSULE, "ellipsoid": g.mjGEOM_ELLIPSOID}
    for i, (shape, size) in enumerate(DISTRACTOR_SHAPES):
        d = table.add_body(name=f"distractor_{i}", pos=list(PARK_POS))
        d.add_geom(name=f"distractor_{i}", type=gtypes[shape], size=list(size),
                   rgba=[0.6, 0.6, 0.6, 1.0])

    mug = wb.add_body(name="mug", pos=[0.1, 0.0, TABLE_TOP_Z + MUG_HALF_H])
    mug.add_freejoint(name="mug")
    mug_rgba = [0.82, 0.22, 0.2, 1.0]
    mug.add_geom(name="mug", type=g.mjGEOM_CYLINDER, size=[MUG_RADIUS, MUG_HALF_H, 0],
                 rgba=mug_rgba, mass=0.2, condim=4, friction=[1.0, 0.01, 0.001])
    mug.add_geom(name="mug_handle", type=g.mjGEOM_BOX, pos=[MUG_RADIUS + 0.012, 0, 0.005],
                 size=[0.012, 0.006, 0.025], rgba=mug_rgba, mass=0.02)
    box = wb.add_body(name="box", pos=[-0.1, 0.0, TABLE_TOP_Z + BOX_HALF])
    box.add_freejoint(name="box")
    box.add_geom(name="box", type=g.mjGEOM_BOX, size=[BOX_HALF] * 3,
                 rgba=[0.2, 0.35, 0.85, 1.0], mass=0.1, condim=4, friction=[1.0, 0.01, 0.001])

    wb.add_light(name="key", pos=[0.7, -0.6, 2.2], dir=[0, 0, -1], diffuse=[0.55, 0.55, 0.55],
                 specular=[0.2, 0.2, 0.2], castshadow=True, cutoff=60.0, exponent=2,
                 mode=mj.mjtCamLight.mjCAMLIGHT_TARGETBODY, targetbody="table")
    wb.add_light(name="fill", pos=[-0.9, 0.2, 1.9], dir=[0, 0, -1], diffuse=[0.3, 0.3, 0.3],
                 specular=[0.05, 0.05, 0.05], castshadow=False, cutoff=70.0, exponent=1,
                 mode=mj.mjtCamLight.mjCAMLIGHT_TARGETBODY, targetbody="table")
    wb.add_camera(name="head", pos=list(HEAD_EYE),
                  quat=look_quat(np.array(HEAD_EYE), np.array(HEAD_TARGET)), fovy=55.0)
    wb.add_camera(name="side", pos=list(SIDE_EYE),
                  quat=look_quat(np.array(SIDE_EYE), np.array(SIDE_TARGET)), fovy=55.0)
    if isinstance(cfg.robot, MJCFRobot):
        add_mjcf_robot(spec, cfg.robot)
    else:
        add_gantry(spec, cfg.robot)

    model = spec.compile()
    return model, _handles(model, len(bg_textures), list(photo_textures))


def _handles(model: Any, n_bg: int, photo_names: list[str]) -> SceneHandles:
    mj = require("mujoco")
    o = mj.mjtObj

    def ids(kind: Any, names: list[str]) -> dict[str, int]:
        out = {}
        for n in names:
            i = mj.mj_name2id(model, kind, n)
            if i < 0:
                raise RuntimeError(f"scene has no {kind} named {n!r}")
            out[n] = int(i)
        return out

    bodies = ["table", "goal", "mug", "box"] + [
        f"distractor_{i}" for i in range(N_DISTRACTORS)]
    body = ids(o.mjOBJ_BODY, bodies)
    geom = ids(o.mjOBJ_GEOM, ["table_top", "goal", "mug", "mug_handle", "box",
                              "floor"] + [f"distractor_{i}" for i in
                                                      range(N_DISTRACTORS)])
    tex = ids(o.mjOBJ_TEXTURE, [f"nominal_{k}" for k in BG_MATERIALS]
              + [f"bg_{i}" for i in range(n_bg)] + [f"photo_{k}" for k in photo_names])
    joints = ids(o.mjOBJ_JOINT, ["mug", "box"])
    return SceneHandles(
        model=model,
        body=body,
        geom=geom,
        mat=ids(o.mjOBJ_MATERIAL, list(BG_MATERIALS)),
        cam=ids(o.mjOBJ_CAMERA, list(CAMERAS)),
        light=ids(o.mjOBJ_LIGHT, ["key", "fill"]),
        bg_tex=[tex[f"bg_{i}"] for i in range(n_bg)],
        photo_tex={k: tex[f"photo_{k}"] for k in photo_names},
        nominal_tex={k: tex[f"nominal_{k}"] for k in BG_MATERIALS},
        obj_qadr={k: int(model.jnt_qposadr[j]) for k, j in joints.items()},
        obj_vadr={k: int(model.jnt_dofadr[j]) for k, j in joints.items()},
        distractor_bodies=[body[f"distractor_{i}"] for i in range(N_DISTRACTORS)],
        distractor_geoms=[geom[f"distractor_{i}"] for i in range(N_DISTRACTORS)],
    )
