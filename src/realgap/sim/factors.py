"""Domain-randomization factors: independent, seeded, exactly undoable.

The factor decomposition follows vla-domain-randomization-study.txt, section 3.2.3
("Domain Randomization Factors") and appendix 0.B.2: background (BG), lighting (LT),
table distractors (TD), camera pose (CP), table height (TH), plus the physics parameters
of section 3.2.4 / appendix 0.B.3.2 (PHYS: gravity, friction, restitution, masses).

Each factor is its own class with its own range (a frozen dataclass), its own generator
stream (``reseed(seed)``, derived by the env from its seed and the factor's name, so
adding a factor never changes another's draws) and the robosuite-modder protocol without
its flaws (no shared mutable defaults, no global RNG, no bare exceptions):

- ``save_defaults()``: copy every model array the factor may touch;
- ``randomize(rng=None) -> values``: draw values (from ``rng`` or the factor's stream),
  apply them with ``set`` and return them;
- ``set(values)``: apply explicit values (the JSON-serialisable dict ``randomize``
  returns);
- ``restore()``: write the saved copies back, bit for bit;
- ``values``: the current values (the defaults after ``restore``).

Granularity (section 3.2.3, "Randomization Granularity"): ``episode`` (sampled at reset)
or ``frame`` (resampled every step). TD, TH and PHYS change what the robot can do (an
obstacle, the table it works on, the dynamics), so, as in the reference, they stay
episode-wise: asking for them frame-wise *explicitly* (a per-factor mapping) raises
:class:`~realgap.errors.ConfigError`; a single granularity string given for all factors
is coerced to ``episode`` for them, and ``env.unwrapped.granularity`` records what was used
(the rules live in :mod:`realgap.sim.factor_config`).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from realgap._optional import require
from realgap._registry import Registry
from realgap._rng import RngLike, as_rng
from realgap.errors import ConfigError
from realgap.sim import physics
from realgap.sim.scene import (
    BG_MATERIALS,
    DISTRACTOR_SHAPES,
    PARK_POS,
    TABLE_HALF,
    SceneHandles,
    distractor_half_height,
    distractor_radius,
)

FACTOR_NAMES: tuple[str, ...] = ("BG", "LT", "TD", "CP", "TH", "PHYS")


def _f(x: Any) -> Any:
    """Plain JSON-serialisable Python values from numpy scalars/arrays."""
    if isinstance(x, np.ndarray):
        return [_f(v) for v in x.tolist()]
    if isinstance(x, (list, tuple)):
        return [_f(v) for v in x]
    if isinstance(x, dict):
        return {k: _f(v) for k, v in x.items()}
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        return float(x)
    return x


def stream_seed(seed: int, name: str) -> np.random.SeedSequence:
    """The seed sequence of one named stream (factor or task) under an env seed."""
    return np.random.SeedSequence([int(seed) & (2**63 - 1), zlib.crc32(name.encode())])


class Factor:
    """Base class: the modder protocol (see the module docstring).

    Args:
        model, data: the compiled ``mujoco.MjModel`` / ``MjData``.
        handles: ids of the scene's parts.
    """

    name: ClassVar[str] = ""
    #: True for factors that must stay episode-wise (TD, TH, PHYS)
    episode_only: ClassVar[bool] = False
    #: True for factors that only change appearance (rendering), not dynamics
    visual: ClassVar[bool] = True

    def __init__(self, model: Any, data: Any, handles: SceneHandles) -> None:
        self.model, self.data, self.h = model, data, handles
        self.rng = np.random.default_rng(stream_seed(0, self.name))
        self._saved: dict[str, np.ndarray] = {}
        self.values: dict[str, Any] = {}
        self.save_defaults()
        self.values = self.default_values()

    # -- protocol ---------------------------------------------------------------------
    def reseed(self, seed: int) -> None:
        """Restart this factor's own generator stream from the env seed."""
        self.rng = np.random.default_rng(stream_seed(seed, self.name))

    def save_defaults(self) -> None:
        """Copy the model arrays this factor touches (whole arrays, for indexing by id)."""
        self._saved = {k: np.array(v, copy=True) for k, (v, _) in self._arrays().items()}

    def restore(self) -> None:
        """Write the saved rows back (bit-exact) and reset ``values`` to the defaults.

        Only the rows this factor owns are written, so factors sharing an array (TH and
        TD both own rows of ``body_pos``) restore independently.
        """
        for k, (v, rows) in self._arrays().items():
            if rows is None:
                v[...] = self._saved[k]
            else:
                v[rows] = self._saved[k][rows]
        self.values = self.default_values()
        self._after_change()

    def randomize(self, rng: RngLike = None) -> dict[str, Any]:
        """Draw values from ``rng`` (default: the factor's own stream), apply, return them."""
        gen = self.rng if rng is None else as_rng(rng)
        values = self.sample(gen)
        self.set(values)
        return self.values

    def set(self, values: Mapping[str, Any]) -> None:
        """Apply explicit values (the dict :meth:`randomize` returns)."""
        self._apply(values)
        self.values = _f(dict(values))
        self._after_change()

    def saved(self, key: str) -> np.ndarray:
        """The saved default copy of one array (read-only view)."""
        arr = self._saved[key].view()
        arr.flags.writeable = False
        return arr

    # -- for subclasses ---------------------------------------------------------------
    def _arrays(self) -> dict[str, tuple[np.ndarray, Any]]:
        """Live model arrays this factor writes, with the rows it owns (None: all)."""
        raise NotImplementedError

    def default_values(self) -> dict[str, Any]:
        raise NotImplementedError

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        raise NotImplementedError

    def _apply(self, values: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def _after_change(self) -> None:
        """Recompute derived data (camera/light frames) after model arrays changed."""
        return

    def _camlight(self) -> None:
        require("mujoco").mj_camlight(self.model, self.data)


@dataclass(frozen=True)
class BGRange:
    """Background factor range."""

    #: per-channel multiplicative colour tint of each background material, uniform
    tint: tuple[float, float] = (0.7, 1.0)


class Background(Factor):
    """BG: wall, floor and table textures drawn from the pre-built library, plus a tint.

    A swap writes ``model.mat_texid[material, RGB]`` (textures are already on the GPU)
    and ``model.mat_rgba[material, :3]``; it costs nothing per frame.
    Values: ``{material: {"texture": library index or -1 (nominal), "tint": [r, g, b]}}``.
    """

    name = "BG"

    def __init__(self, model: Any, data: Any, handles: SceneHandles,
                 rng_range: BGRange = BGRange()) -> None:
        self.range = rng_range
        self._role = int(require("mujoco").mjtTextureRole.mjTEXROLE_RGB)
        self._mats = [handles.mat[m] for m in BG_MATERIALS]
        super().__init__(model, data, handles)

    def _arrays(self) -> dict[str, tuple[np.ndarray, Any]]:
        return {"mat_texid": (self.model.mat_texid, self._mats),
                "mat_rgba": (self.model.mat_rgba, self._mats)}

    def default_values(self) -> dict[str, Any]:
        return {m: {"texture": -1, "tint": [1.0, 1.0, 1.0]} for m in BG_MATERIALS}

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        n = len(self.h.bg_tex)
        if n == 0:
            raise ConfigError("randomize includes 'BG' but the scene has no background "
                              "texture library; build the env with bg_textures > 0")
        lo, hi = self.range.tint
        return {m: {"texture": int(rng.integers(n)), "tint": rng.uniform(lo, hi, 3).tolist()}
                for m in BG_MATERIALS}

    def _apply(self, values: Mapping[str, Any]) -> None:
        for m, mid in zip(BG_MATERIALS, self._mats, strict=True):
            v = values[m]
            idx = int(v["texture"])
            if not -1 <= idx < len(self.h.bg_tex):
                raise ConfigError(f"BG texture index {idx} for {m!r} is out of range "
                                  f"[-1, {len(self.h.bg_tex)})")
            tex = self.h.nominal_tex[m] if idx < 0 else self.h.bg_tex[idx]
            self.model.mat_texid[mid, self._role] = tex
            self.model.mat_rgba[mid, :3] = self._saved["mat_rgba"][mid, :3] * np.asarray(
                v["tint"], dtype=np.float64)


@dataclass(frozen=True)
class LTRange:
    """Lighting factor range."""

    #: offset of each light's position from its default, per axis (m)
    pos_offset: tuple[float, float, float] = (0.4, 0.4, 0.25)
    #: per-channel light colour, uniform (1 = white)
    color: tuple[float, float] = (0.55, 1.0)
    #: multiplier of the default diffuse/specular intensity, uniform
    intensity: tuple[float, float] = (0.5, 1.6)


class Lighting(Factor):
    """LT: colour, position and intensity of the ``key`` and ``fill`` lights.

    ``light_diffuse = default_diffuse * color * intensity``; specular scales with the
    intensity. Lights aim at the table (target-body mode), so a moved light still lights
    the workspace. Values: ``{light: {"pos": [x, y, z] (m, world), "color": [r, g, b],
    "intensity": float}}``.
    """

    name = "LT"
    LIGHTS = ("key", "fill")

    def __init__(self, model: Any, data: Any, handles: SceneHandles,
                 rng_range: LTRange = LTRange()) -> None:
        self.range = rng_range
        self._ids = [handles.light[n] for n in self.LIGHTS]
        super().__init__(model, data, handles)

    def _arrays(self) -> dict[str, tuple[np.ndarray, Any]]:
        m, r = self.model, self._ids
        return {"light_pos": (m.light_pos, r), "light_diffuse": (m.light_diffuse, r),
                "light_specular": (m.light_specular, r)}

    def default_values(self) -> dict[str, Any]:
        return {n: {"pos": _f(self._saved["light_pos"][i]), "color": [1.0, 1.0, 1.0],
                    "intensity": 1.0} for n, i in zip(self.LIGHTS, self._ids, strict=True)}

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        off = np.asarray(self.range.pos_offset)
        out = {}
        for n, i in zip(self.LIGHTS, self._ids, strict=True):
            out[n] = {"pos": (self._saved["light_pos"][i] + rng.uniform(-off, off)).tolist(),
                      "color": rng.uniform(*self.range.color, 3).tolist(),
                      "intensity": float(rng.uniform(*self.range.intensity))}
        return out

    def _apply(self, values: Mapping[str, Any]) -> None:
        for n, i in zip(self.LIGHTS, self._ids, strict=True):
            v = values[n]
            self.model.light_pos[i] = v["pos"]
            k = float(v["intensity"])
            self.model.light_diffuse[i] = self._saved["light_diffuse"][i] * np.asarray(
                v["color"], dtype=np.float64) * k
            self.model.light_specular[i] = self._saved["light_specular"][i] * k

    def _after_change(self) -> None:
        self._camlight()


@dataclass(frozen=True)
class CPRange:
    """Camera-pose factor range."""

    #: translation offset of the head camera per axis, uniform in [-v, v] (m)
    pos_offset: tuple[float, float, float] = (0.04, 0.04, 0.04)
    #: rotation offset about the camera's own x, y, z axes, uniform in [-v, v] (rad)
    rot_offset: tuple[float, float, float] = (0.05, 0.05, 0.03)


def small_rotation_quat(r: Sequence[float]) -> np.ndarray:
    """Quaternion (w, x, y, z) of the rotation vector ``r`` (rad), via ``mju_axisAngle2Quat``."""
    mj = require("mujoco")
    rv = np.asarray(r, dtype=np.float64)
    ang = float(np.linalg.norm(rv))
    q = np.array([1.0, 0.0, 0.0, 0.0])
    if ang > 0:
        mj.mju_axisAngle2Quat(q, rv / ang, ang)
    return q


class CameraPose(Factor):
    """CP: offset of the head camera's pose from its mounting (reference: "random
    displacement ... from nominal mounting position"), plus a small rotation.

    ``cam_pos = default + dpos`` (world, m); ``cam_quat = default * quat(drot)`` (``drot``
    a rotation vector in the camera frame, rad). Values: ``{"dpos": [3], "drot": [3]}``.
    """

    name = "CP"
    CAMERA = "head"

    def __init__(self, model: Any, data: Any, handles: SceneHandles,
                 rng_range: CPRange = CPRange()) -> None:
        self.range = rng_range
        self._cam = handles.cam[self.CAMERA]
        super().__init__(model, data, handles)

    def _arrays(self) -> dict[str, tuple[np.ndarray, Any]]:
        r = [self._cam]
        return {"cam_pos": (self.model.cam_pos, r), "cam_quat": (self.model.cam_quat, r)}

    def default_values(self) -> dict[str, Any]:
        return {"dpos": [0.0, 0.0, 0.0], "drot": [0.0, 0.0, 0.0]}

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        p, r = np.asarray(self.range.pos_offset), np.asarray(self.range.rot_offset)
        return {"dpos": rng.uniform(-p, p).tolist(), "drot": rng.uniform(-r, r).tolist()}

    def _apply(self, values: Mapping[str, Any]) -> None:
        mj = require("mujoco")
        c = self._cam
        self.model.cam_pos[c] = self._saved["cam_pos"][c] + np.asarray(values["dpos"], float)
        q = np.zeros(4)
        mj.mju_mulQuat(q, self._saved["cam_quat"][c], small_rotation_quat(values["drot"]))
        self.model.cam_quat[c] = q

    def _after_change(self) -> None:
        self._camlight()


@dataclass(frozen=True)
class THRange:
    """Table-height factor range."""

    #: table top offset from its nominal height, uniform (m)
    dz: tuple[float, float] = (-0.05, 0.05)


class TableHeight(Factor):
    """TH: the table's height (reference: "table height from a predefined range").

    Moves the table body (with the goal marker and distractors, its children) and every
    free object resting on it by the same amount, so the scene stays consistent.
    Episode-wise only. Values: ``{"dz": float}`` (m, from the nominal height).
    """

    name = "TH"
    episode_only = True
    visual = False
    OBJECTS = ("mug", "box")

    def __init__(self, model: Any, data: Any, handles: SceneHandles,
                 rng_range: THRange = THRange()) -> None:
        self.range = rng_range
        self._table = handles.body["table"]
        super().__init__(model, data, handles)

    def _arrays(self) -> dict[str, tuple[np.ndarray, Any]]:
        return {"body_pos": (self.model.body_pos, [self._table])}

    def default_values(self) -> dict[str, Any]:
        return {"dz": 0.0}

    def _shift_objects(self, delta: float) -> None:
        if delta != 0.0:
            for o in self.OBJECTS:
                self.data.qpos[self.h.obj_qadr[o] + 2] += delta

    def restore(self) -> None:
        delta = float(self._saved["body_pos"][self._table, 2] - self.model.body_pos[self._table, 2])
        super().restore()
        if delta != 0.0:
            self._shift_objects(delta)
            self._after_change()

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {"dz": float(rng.uniform(*self.range.dz))}

    def _apply(self, values: Mapping[str, Any]) -> None:
        z = float(self._saved["body_pos"][self._table, 2] + float(values["dz"]))
        delta = z - float(self.model.body_pos[self._table, 2])
        self.model.body_pos[self._table, 2] = z
        self._shift_objects(delta)

    def _after_change(self) -> None:
        require("mujoco").mj_forward(self.model, self.data)


@dataclass(frozen=True)
class TDRange:
    """Table-distractor factor range."""

    #: number of distractors on the table, uniform integer in [lo, hi]
    count: tuple[int, int] = (1, 4)
    #: distance kept from table edges (m)
    margin: float = 0.05
    #: extra clearance between footprints (m)
    clearance: float = 0.015


class TableDistractors(Factor):
    """TD: k task-irrelevant objects placed collision-free on the table.

    Draws k slots of the distractor pool (shapes of :data:`DISTRACTOR_SHAPES`), each with
    a position (rejection-sampled so its footprint disc clears the table edge, the other
    distractors and the task's keep-clear discs: objects, goal, push path), a yaw and a
    colour. Unused slots stay parked out of sight. Episode-wise only.
    Values: ``{"objects": [{"slot": int, "shape": str, "xy": [x, y] (m, table-centred),
    "yaw": rad, "rgba": [4]}]}``.
    """

    name = "TD"
    episode_only = True
    visual = False

    def __init__(self, model: Any, data: Any, handles: SceneHandles,
                 rng_range: TDRange = TDRange(),
                 keep_clear: Callable[[], list[tuple[float, float, float]]] | None = None) -> None:
        self.range = rng_range
        #: returns the discs (x, y, r; table-centred, m) to keep clear; set by the env
        self.keep_clear = keep_clear or (list)
        super().__init__(model, data, handles)

    def _arrays(self) -> dict[str, tuple[np.ndarray, Any]]:
        m, b, g = self.model, self.h.distractor_bodies, self.h.distractor_geoms
        return {"body_pos": (m.body_pos, b), "body_quat": (m.body_quat, b),
                "geom_rgba": (m.geom_rgba, g)}

    def default_values(self) -> dict[str, Any]:
        return {"objects": []}

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        lo, hi = self.range.count
        k = int(rng.integers(lo, hi + 1))
        slots = rng.permutation(len(DISTRACTOR_SHAPES))[:k]
        discs = [tuple(d) for d in self.keep_clear()]
        hx, hy = TABLE_HALF
        objs = []
        for s in slots:
            shape, size = DISTRACTOR_SHAPES[int(s)]
            r = distractor_radius(shape, size)
            bx, by = hx - self.range.margin - r, hy - self.range.margin - r
            for _ in range(200):
                xy = rng.uniform([-bx, -by], [bx, by])
                if all(np.hypot(xy[0] - x, xy[1] - y) > r + rr + self.range.clearance
                       for x, y, rr in discs):
                    discs.append((float(xy[0]), float(xy[1]), r))
                    objs.append({"slot": int(s), "shape": shape, "xy": xy.tolist(),
                                 "yaw": float(rng.uniform(-np.pi, np.pi)),
                                 "rgba": [*rng.uniform(0.1, 0.95, 3).tolist(), 1.0]})
                    break
        return {"objects": objs}

    def _apply(self, values: Mapping[str, Any]) -> None:
        m = self.model
        for b, gid in zip(self.h.distractor_bodies, self.h.distractor_geoms, strict=True):
            m.body_pos[b] = PARK_POS
            m.body_quat[b] = self._saved["body_quat"][b]
            m.geom_rgba[gid] = self._saved["geom_rgba"][gid]
        for o in values["objects"]:
            s = int(o["slot"])
            if not 0 <= s < len(DISTRACTOR_SHAPES):
                raise ConfigError(f"TD slot {s} is out of range [0, {len(DISTRACTOR_SHAPES)})")
            shape, size = DISTRACTOR_SHAPES[s]
            b, gid = self.h.distractor_bodies[s], self.h.distractor_geoms[s]
            m.body_pos[b] = [o["xy"][0], o["xy"][1], distractor_half_height(shape, size)]
            yaw = float(o["yaw"])
            m.body_quat[b] = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
            m.geom_rgba[gid] = o["rgba"]

    def _after_change(self) -> None:
        require("mujoco").mj_forward(self.model, self.data)


@dataclass(frozen=True)
class PHYSRange:
    """Physics factor range (defaults: mild; the reference's stress test is far wider).

    Every draw is a :class:`~realgap.sim.physics.PhysicsSetting` (the one physics schema
    ``dynamics`` also uses).
    """

    #: multiplier of gravity's magnitude, uniform (9.81 m/s^2 x 0.9..1.1 = 8.8..10.8)
    gravity: tuple[float, float] = (0.9, 1.1)
    #: multiplier of every geom's sliding friction, uniform
    friction: tuple[float, float] = (0.6, 1.4)
    #: contact damping ratio of the task objects (solref[1]); below 1 they bounce
    #: (MuJoCo's soft-contact restitution), uniform, one draw for all objects
    dampratio: tuple[float, float] = (0.3, 1.0)
    #: multiplier of each task object's mass and inertia, uniform
    mass: tuple[float, float] = (0.7, 1.4)


class Physics(Factor):
    """PHYS: gravity, friction, restitution (through solref) and object masses.

    Values: a :class:`~realgap.sim.physics.PhysicsSetting` as a dict,
    ``{"gravity": x, "friction": x, "body_length": {}, "mass": {"box": x, "mug": x},
    "dampratio": {"box": r, "mug": r}}`` (multipliers of the defaults; ``dampratio``
    absolute), applied by :func:`realgap.sim.physics.apply_physics` exactly as
    :func:`realgap.dynamics.perturb` applies it. ``set`` also reads the factor's earlier
    record (``gravity`` vector, ``friction_scale``, ``mass_scale``). Episode-wise only.
    """

    name = "PHYS"
    episode_only = True
    visual = False
    OBJECTS = ("mug", "box")
    #: constants derived from masses (:data:`realgap.sim.physics.DERIVED`), saved and
    #: restored with the rest
    DERIVED = physics.DERIVED
    #: reference poses kept across mass changes (:data:`realgap.sim.physics.KEEP`)
    KEEP = physics.KEEP

    def __init__(self, model: Any, data: Any, handles: SceneHandles,
                 rng_range: PHYSRange = PHYSRange()) -> None:
        self.range = rng_range
        super().__init__(model, data, handles)

    def _arrays(self) -> dict[str, tuple[np.ndarray, Any]]:
        m = self.model
        out = {k: (m.opt.gravity if k == "gravity" else getattr(m, k), None)
               for k in physics.BASE_ARRAYS}
        out.update({k: (getattr(m, k), None) for k in self.DERIVED})
        return out

    def default_values(self) -> dict[str, Any]:
        return physics.PhysicsSetting(mass={o: 1.0 for o in self.OBJECTS}).as_dict()

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        r = self.range
        g, f, d = (float(rng.uniform(*r.gravity)), float(rng.uniform(*r.friction)),
                   float(rng.uniform(*r.dampratio)))
        mass = {o: float(rng.uniform(*r.mass)) for o in self.OBJECTS}
        return physics.PhysicsSetting(gravity=g, friction=f, mass=mass,
                                      dampratio={o: d for o in self.OBJECTS}).as_dict()

    def setting(self, values: Mapping[str, Any]) -> physics.PhysicsSetting:
        """``values`` (either record form) as a checked setting; lengths are refused."""
        base_g = float(np.linalg.norm(self._saved["gravity"])) or 1.0
        st = physics.PhysicsSetting.from_dict(values, gravity_base=base_g)
        if any(s != 1.0 for _, s in st.body_length):
            raise ConfigError("PHYS: body_length needs a recompiled model; the tabletop factor "
                              "does not change lengths (use realgap.dynamics.perturb)")
        return st

    def set(self, values: Mapping[str, Any]) -> None:
        st = self.setting(values)
        physics.apply_physics(self.model, st, base=self._saved, data=self.data)
        self.values = st.as_dict()
        self._after_change()

    def _apply(self, values: Mapping[str, Any]) -> None:
        physics.apply_physics(self.model, self.setting(values), base=self._saved, data=self.data)


#: factor classes by name
FACTOR_CLASSES: dict[str, type[Factor]] = {
    "BG": Background, "LT": Lighting, "TD": TableDistractors, "CP": CameraPose,
    "TH": TableHeight, "PHYS": Physics}

#: range dataclass of each factor
RANGE_CLASSES: dict[str, type] = {
    "BG": BGRange, "LT": LTRange, "TD": TDRange, "CP": CPRange, "TH": THRange,
    "PHYS": PHYSRange}

#: the same classes in realgap's generic registry (metadata: episode_only, visual, range)
FACTORS: Registry[type[Factor]] = Registry("randomization factor")
for _name, _cls in FACTOR_CLASSES.items():
    FACTORS.add(_name, lambda c=_cls: c, episode_only=_cls.episode_only, visual=_cls.visual,
                doc=(_cls.__doc__ or "").strip().splitlines()[0])
