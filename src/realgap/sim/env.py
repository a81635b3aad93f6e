"""The Gymnasium environment around one tabletop task (``realgap.sim.make``).

Observation (``gymnasium.spaces.Dict``): ``"state"`` float32 (STATE_DIM,) laid out as
:data:`realgap.sim.tasks.STATE_LAYOUT`, and one uint8 (H, W, 3) image per camera
(``image_size`` px square) rendered in the env's ``domain``. ``image_size=0`` or
``cameras=()`` turns rendering off (fast expert rollouts, state-only policies).

Action: float32 (4,) in [-1, 1]: ``(dx, dy, dz, gripper)``, see
:mod:`realgap.sim.robot`. One env step is ``FRAME_SKIP`` physics steps of 2 ms (50 ms,
20 Hz control).

Info: ``success`` (bool), ``factors`` (every factor's current values, a JSON-serialisable
dict, recorded for this very frame), ``episode`` (index since the last seeding), ``step``,
``seed``.

Seeding: ``seed`` (``make``) or ``reset(seed=...)`` restarts every stream: one per factor
and one for the task's initial states, each derived from the seed and the stream's name.
``reset()`` without a seed continues the streams (the next episode). Same seed, same
frames.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np

from realgap._optional import require
from realgap.errors import ConfigError

# Gymnasium ids and their registration live in realgap.sim (registered on its import,
# which importing this module implies); the old names stay importable from here.
from realgap.sim import GYM_IDS  # noqa: F401
from realgap.sim import register_envs as register_gymnasium  # noqa: F401
from realgap.sim.domains import DOMAINS, PHOTO_PREFERENCE, DomainRenderer
from realgap.sim.factor_config import (
    check_factor_names,
    check_factor_ranges,
    resolve_granularity,
)
from realgap.sim.factors import (
    FACTOR_CLASSES,
    FACTOR_NAMES,
    Factor,
    TableDistractors,
    stream_seed,
)
from realgap.sim.fidelity import Fidelity, get_fidelity
from realgap.sim.robot import (
    FINGER_OPEN,
    GantryController,
    MJCFRobot,
    MocapController,
    RobotConfig,
)
from realgap.sim.scene import CAMERAS, SceneConfig, build_scene
from realgap.sim.tasks import REST_HEIGHT, STATE_DIM, TASKS, Layout, Task, TaskState

gym = require("gymnasium")

FRAME_SKIP = 25
#: number of textures in the BG library and the seed that draws them (fixed: the library
#: is part of the simulator's design, the same for every env seed)
N_BG_TEXTURES = 16
BG_LIBRARY_SEED = 20240611


@lru_cache(maxsize=8)
def texture_bank(
    size: int, n_bg: int, library_seed: int = BG_LIBRARY_SEED
) -> tuple[tuple[np.ndarray, ...], tuple[tuple[str, np.ndarray], ...]]:
    """The BG library and the proxy-real photographs at ``size`` px (cached per process).

    Comes from :mod:`realgap.sim.textures` (procedural textures and scikit-image photos).
    Another ``library_seed`` gives textures the default library never shows (Sim-OOD
    backgrounds, vla-domain-randomization-study.txt section 4.1.3).
    """
    from realgap.sim import textures

    bg = tuple(textures.procedural_textures(n_bg, size, library_seed)) if n_bg else ()
    wanted = {p for prefs in PHOTO_PREFERENCE.values() for p in prefs}
    photos = tuple(sorted((k, v) for k, v in textures.photo_textures(size).items()
                          if k in wanted))
    return bg, photos


def _xy(v: Sequence[float]) -> tuple[float, float]:
    return float(v[0]), float(v[1])


class TabletopEnv(gym.Env):  # type: ignore[misc, name-defined]
    """A randomized tabletop task (see the module docstring and :func:`make`)."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        task: str | Task = "reach-mug",
        randomize: Sequence[str] | str | None = (),
        granularity: str | Mapping[str, str] = "episode",
        fidelity: str | Fidelity = "low",
        image_size: int = 128,
        cameras: Sequence[str] = ("head", "wrist"),
        domain: str = "sim",
        seed: int | None = None,
        max_steps: int | None = None,
        terminate_on_success: bool = True,
        n_bg_textures: int = N_BG_TEXTURES,
        bg_library_seed: int = BG_LIBRARY_SEED,
        factor_ranges: Mapping[str, Any] | None = None,
        robot: RobotConfig | MJCFRobot | None = None,
        render_mode: str | None = "rgb_array",
        proxy_shadows: str = "high",
    ) -> None:
        mj = require("mujoco")
        self.mj = mj
        self.task: Task = TASKS.create(task) if isinstance(task, str) else task
        self.randomize = check_factor_names(randomize)
        self.granularity = resolve_granularity(self.randomize, granularity)
        self.fidelity = get_fidelity(fidelity)
        if not isinstance(image_size, (int, np.integer)) or isinstance(image_size, bool) \
                or image_size < 0:
            raise ConfigError(f"image_size={image_size!r} must be an int >= 0 (0: no images)")
        if isinstance(cameras, str):
            cameras = tuple(c.strip() for c in cameras.split(",") if c.strip())
        bad = [c for c in cameras if c not in CAMERAS]
        if bad:
            raise ConfigError(f"cameras: unknown camera {bad[0]!r}; known: {', '.join(CAMERAS)}")
        if domain not in DOMAINS:
            raise ConfigError(f"domain={domain!r} is not a render domain; use one of "
                              f"{', '.join(DOMAINS)}")
        self.image_size = int(image_size)
        self.cameras = tuple(cameras) if self.image_size > 0 else ()
        self.domain = domain
        self.max_steps = int(max_steps or self.task.max_steps)
        self.terminate_on_success = terminate_on_success
        self.render_mode = render_mode

        ranges = check_factor_ranges(factor_ranges)
        if not isinstance(n_bg_textures, (int, np.integer)) or n_bg_textures < 0:
            raise ConfigError(f"n_bg_textures={n_bg_textures!r} must be an int >= 0")
        if "BG" in self.randomize and n_bg_textures == 0:
            raise ConfigError("randomize includes 'BG' but n_bg_textures=0; give the BG "
                              "library at least one texture or drop BG")
        bg, photos = texture_bank(self.fidelity.texture_size, int(n_bg_textures),
                                  int(bg_library_seed))
        self.model, self.h = build_scene(
            self.fidelity, SceneConfig(show_goal=self.task.show_goal, robot=robot or RobotConfig()), list(bg), dict(photos),
            image_size=max(self.image_size, 16))
        self.data = mj.MjData(self.model)
        mj.mj_forward(self.model, self.data)
        self.robot: GantryController | MocapController = (
            MocapController(self.model, self.data, robot) if isinstance(robot, MJCFRobot)
            else GantryController(self.model, self.data))
        self.factors: dict[str, Factor] = {}
        for name in FACTOR_NAMES:
            cls: Any = FACTOR_CLASSES[name]
            f = (cls(self.model, self.data, self.h, ranges[name]) if name in ranges
                 else cls(self.model, self.data, self.h))
            self.factors[name] = f
        td = self.factors["TD"]
        assert isinstance(td, TableDistractors)
        td.keep_clear = self._keep_clear
        self._renderer: DomainRenderer | None = None
        if self.image_size > 0:
            self._renderer = DomainRenderer(self.model, self.data, self.h, self.fidelity,
                                            self.image_size, proxy_shadows=proxy_shadows)

        s = self.image_size
        spaces: dict[str, Any] = {"state": gym.spaces.Box(-np.inf, np.inf, (STATE_DIM,),
                                                          np.float32)}
        for c in self.cameras:
            spaces[c] = gym.spaces.Box(0, 255, (s, s, 3), np.uint8)
        self.observation_space = gym.spaces.Dict(spaces)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)

        self._seed = int(seed) if seed is not None else None
        self._layout: Layout | None = None
        self._episode = -1
        self._step = 0
        self._task_rng = np.random.default_rng(0)
        self._needs_seed = True

    # -- seeding ----------------------------------------------------------------------
    def _reseed(self, seed: int) -> None:
        self._seed = int(seed)
        self._episode = -1
        self._task_rng = np.random.default_rng(stream_seed(seed, "task:" + self.task.name))
        for f in self.factors.values():
            f.reseed(seed)

    # -- gymnasium API ----------------------------------------------------------------
    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self._reseed(seed)
        elif self._needs_seed:
            entropy = np.random.SeedSequence().entropy  # an int when drawn from the OS
            self._reseed(self._seed if self._seed is not None
                         else int(entropy) % (2**63))  # type: ignore[arg-type]
        self._needs_seed = False
        self._episode += 1
        self._step = 0
        mj, m, d = self.mj, self.model, self.data
        for f in self.factors.values():
            f.restore()
        mj.mj_resetData(m, d)
        if "TH" in self.randomize:
            self.factors["TH"].randomize()
        self._layout = lay = self.task.sample_layout(self._task_rng)
        top = self.h.table_top()
        for obj, xy, yaw in (("mug", lay.mug_xy, lay.mug_yaw), ("box", lay.box_xy, lay.box_yaw)):
            a = self.h.obj_qadr[obj]
            d.qpos[a:a + 3] = [xy[0], xy[1], top + REST_HEIGHT[obj]]
            d.qpos[a + 3:a + 7] = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        m.body_pos[self.h.body["goal"], :2] = lay.goal_xy
        gx, gy, gz = lay.grip_start
        self.robot.set_grip(np.array([gx, gy, top + gz]), FINGER_OPEN)
        for name in ("TD", "PHYS"):
            if name in self.randomize:
                self.factors[name].randomize()
        mj.mj_forward(m, d)
        for name in ("BG", "LT", "CP"):
            if name in self.randomize:
                self.factors[name].randomize()
        return self._observe(), self._info()

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (4,) or not np.all(np.isfinite(a)):
            raise ConfigError(f"action must be 4 finite floats (dx, dy, dz, gripper) in "
                              f"[-1, 1], got shape {a.shape}")
        if self._layout is None:
            raise ConfigError("step() called before reset(); call env.reset() first")
        self.robot.apply(a)
        self.mj.mj_step(self.model, self.data, nstep=FRAME_SKIP)
        self.mj.mj_forward(self.model, self.data)
        self._step += 1
        for name, gr in self.granularity.items():
            if gr == "frame":
                self.factors[name].randomize()
        s = self.task_state()
        success = self.task.success(s)
        terminated = bool(success and self.terminate_on_success)
        truncated = bool(self._step >= self.max_steps and not terminated)
        return self._observe(s), float(self.task.reward(s)), terminated, truncated, \
            self._info(success)

    def render(self) -> np.ndarray | None:
        """The head (or first) camera in the env's domain, uint8 (H, W, 3)."""
        if self._renderer is None:
            return None
        cam = "head" if "head" in self.cameras else (self.cameras or ("head",))[0]
        return self.render_domain(self.domain, (cam,))[cam]

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # -- realgap API ------------------------------------------------------------------
    def render_domain(self, domain: str,
                      cameras: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Images of the current state in ``domain`` (``sim``, ``sim-nominal``,
        ``real-proxy``, ``real-proxy-mild``, ``real-proxy-strong``), uint8 (H, W, 3) per camera; the sim appearance is left exactly
        as it was. ``cameras`` defaults to the env's cameras."""
        if self._renderer is None:
            raise ConfigError("this env was built with image_size=0 (no rendering); build "
                              "it with image_size > 0 to render domains")
        cams = tuple(self.cameras if cameras is None else cameras)
        bad = [c for c in cams if c not in CAMERAS]
        if bad:
            raise ConfigError(f"cameras: unknown camera {bad[0]!r}; known: {', '.join(CAMERAS)}")
        key = (self._seed or 0, self._episode, self._step)
        return self._renderer.render_domain(domain, cams, noise_key=key)

    def task_state(self) -> TaskState:
        """Privileged state snapshot (world frame, metres)."""
        d, h = self.data, self.h
        mug = d.xpos[h.body["mug"]].copy()
        box = d.xpos[h.body["box"]].copy()
        goal = d.xpos[h.body["goal"]].copy()
        goal[2] = h.table_top()
        s = TaskState(self.robot.grip_pos(), self.robot.opening(), mug, box, goal,
                      h.table_top())
        g = self.task.goal_point(s)
        return TaskState(s.grip, s.opening, s.mug, s.box, np.asarray(g, float), s.table_z)

    def set_factors(self, values: Mapping[str, Mapping[str, Any]]) -> None:
        """Apply recorded factor values (``info["factors"]`` or a FrameSet's ``factors``
        column, parsed): ``{factor: values}``; factors not named keep their values.

        With the same seed and episode (so the same state), this reproduces the frame the
        values were recorded with, which makes the per-frame record a complete recipe.
        """
        # "render_domain" is the one non-factor key realgap.sim.generate adds to a record
        names = check_factor_names([k for k in values if k != "render_domain"],
                                   arg="set_factors")
        for n in names:
            self.factors[n].set(values[n])
        self.mj.mj_forward(self.model, self.data)

    def _keep_clear(self) -> list[tuple[float, float, float]]:
        """Discs the TD factor must keep clear, from where the objects and goal are now
        (so a wrapper that moved them after reset is respected)."""
        if self._layout is None:
            return []
        q, h = self.data.qpos, self.h
        here = dataclasses.replace(
            self._layout,
            mug_xy=_xy(q[h.obj_qadr["mug"]:h.obj_qadr["mug"] + 2]),
            box_xy=_xy(q[h.obj_qadr["box"]:h.obj_qadr["box"] + 2]),
            goal_xy=_xy(self.model.body_pos[h.body["goal"], :2]))
        return self.task.keep_clear(here)

    def factor_values(self) -> dict[str, Any]:
        """Every factor's current values (JSON-serialisable; a copy)."""
        return {n: copy.deepcopy(f.values) for n, f in self.factors.items()}

    @property
    def seed_value(self) -> int | None:
        """The seed the streams were last started from."""
        return self._seed

    def _observe(self, s: TaskState | None = None) -> dict[str, Any]:
        s = s or self.task_state()
        obs: dict[str, Any] = {"state": s.vector()}
        if self._renderer is not None and self.cameras:
            obs.update(self.render_domain(self.domain, self.cameras))
        return obs

    def _info(self, success: bool | None = None) -> dict[str, Any]:
        if success is None:
            success = self.task.success(self.task_state())
        return {"success": bool(success), "factors": self.factor_values(),
                "episode": self._episode, "step": self._step, "seed": self._seed,
                "task": self.task.name, "domain": self.domain}
