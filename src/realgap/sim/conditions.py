"""Apply a protocol condition's factor setting to a ``realgap.sim`` environment.

The values and their checks live in :mod:`realgap.protocol.factors` (the one
protocol-factor schema); this module only turns them into changes of the simulator.
It imports Gymnasium at its top, so it is itself imported lazily (by the rollout
workers), like every module of realgap that needs a heavy dependency.

The protocol speaks in evaluation terms (vla-domain-randomization-study.txt 4.1.4 and
appendix 0.C.1: background, lighting, distractors at a count, object instance, position
on a grid, camera pose, table height); :class:`ConditionedEnv` turns each value into
explicit values of the simulator's factors (:mod:`realgap.sim.factors`, through their
public ``set``) or into a change of the initial layout, right after every ``reset``:

======  =====================================  ==============================================
factor  protocol value                          what the env gets
======  =====================================  ==============================================
BG      ``"nominal"`` or ``"library:<i>"``      wall, floor and table all take texture ``i``
                                                of the env's BG library (tint 1)
LT      ``"nominal"``, ``"dim"``, ``"bright"``,  both lights: intensity x0.45 / x1.6, warm
        ``"warm"``, ``"side"``                  colour (1, .78, .5), or moved 0.35 m in +x
TD      count ``k``                             ``k`` distractors placed collision-free by the
                                                TD factor's own sampler, from a stream seeded by
                                                the trial seed (same placements for every policy)
OBJ     instance ``i``                          ``0``: nominal; ``i > 0``: the mug and box are
                                                recoloured with palette entry ``i`` (the sim has
                                                one mesh per object, so an "instance" is an
                                                appearance variant: stated, not hidden)
POS     ``[dx, dy]`` (m)                        mug, box and goal translated by the offset
TH      ``dz`` (m)                              the TH factor with ``{"dz": dz}``
CP      ``[dx, dy, dz]`` (m)                    the CP factor with ``{"dpos": [...], "drot": 0}``
======  =====================================  ==============================================

The initial observation is re-rendered after the change, so the policy's first frame
already shows the condition. Every change is undone at the next reset (factors by their
own ``restore``, object colours by this wrapper), so conditions never leak into one
another.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from realgap._optional import require
from realgap.errors import ConfigError
from realgap.protocol.factors import LT_PRESETS, NOMINAL, check_settings

gym = require("gymnasium")

__all__ = ["LT_PRESETS", "NOMINAL", "OBJ_PALETTE", "ConditionedEnv", "check_settings"]

#: Object recolouring palette of the OBJ factor (index 0 = nominal colours); one entry
#: per instance of the schema (:data:`~realgap.protocol.factors.N_OBJ_INSTANCES`).
OBJ_PALETTE: tuple[tuple[tuple[float, float, float], tuple[float, float, float]], ...] = (
    ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),        # unused: nominal
    ((0.15, 0.35, 0.85), (0.95, 0.80, 0.15)),   # blue mug, yellow box
    ((0.90, 0.90, 0.88), (0.20, 0.20, 0.22)),   # white mug, black box
    ((0.20, 0.65, 0.30), (0.80, 0.30, 0.70)),   # green mug, magenta box
)


def _body_geoms(model: Any, body: int) -> list[int]:
    start, num = int(model.body_geomadr[body]), int(model.body_geomnum[body])
    return list(range(start, start + num)) if start >= 0 else []


def _lighting(default: Mapping[str, Any], preset: str) -> dict[str, Any]:
    out = {}
    for light, v in default.items():
        v = {"pos": list(v["pos"]), "color": list(v["color"]), "intensity": float(v["intensity"])}
        if preset == "dim":
            v["intensity"] = 0.45
        elif preset == "bright":
            v["intensity"] = 1.6
        elif preset == "warm":
            v["color"] = [1.0, 0.78, 0.5]
        elif preset == "side":
            v["pos"] = [v["pos"][0] + 0.35, v["pos"][1], v["pos"][2]]
        out[light] = v
    return out


class ConditionedEnv(gym.Wrapper):  # type: ignore[misc, name-defined]
    """Wrap ``env`` (a ``realgap.sim`` env) so every reset applies ``settings``
    (protocol factor values; ``{}`` = nominal). See the module docstring for each factor.
    """

    def __init__(self, env: Any, settings: Mapping[str, Any]) -> None:
        check_settings(settings)
        super().__init__(env)
        self.settings = {**NOMINAL, **dict(settings)}
        u = env.unwrapped
        self._obj_geoms = {o: _body_geoms(u.model, u.h.body[o]) for o in ("mug", "box")}
        self._obj_rgba = {o: u.model.geom_rgba[gs].copy() for o, gs in self._obj_geoms.items()}
        self._dirty = False  # object colours changed by the last reset (OBJ)

    def set_settings(self, settings: Mapping[str, Any]) -> None:
        """Use ``settings`` from the next reset on (one env serves every condition)."""
        check_settings(settings)
        self.settings = {**NOMINAL, **dict(settings)}

    def reset(self, *, seed: int | None = None, options: Any = None) -> Any:
        obs, info = self.env.reset(seed=seed, options=options)
        u = self.env.unwrapped
        if self.settings == NOMINAL and not self._dirty:
            return obs, {**info, "condition": dict(self.settings)}
        self._dirty = self.settings["OBJ"] != 0
        self._apply(u, seed)
        obs = {"state": u.task_state().vector()}
        if u.cameras:
            obs.update(u.render_domain(u.domain, u.cameras))
        info = dict(info)
        info["factors"] = u.factor_values()
        info["condition"] = dict(self.settings)
        info["success"] = bool(u.task.success(u.task_state()))
        return obs, info

    def step(self, action: Any) -> Any:
        obs, r, term, trunc, info = self.env.step(action)
        info = dict(info)
        info["condition"] = dict(self.settings)
        return obs, r, term, trunc, info

    def _apply(self, u: Any, seed: int | None) -> None:
        mj = require("mujoco")
        s, m, d = self.settings, u.model, u.data
        for o, gs in self._obj_geoms.items():
            m.geom_rgba[gs] = self._obj_rgba[o]
        if s["OBJ"]:
            for o, col in zip(("mug", "box"), OBJ_PALETTE[int(s["OBJ"])], strict=True):
                for gid in self._obj_geoms[o]:
                    m.geom_rgba[gid, :3] = col
        dx, dy = (float(v) for v in s["POS"])
        if dx or dy:
            for o in ("mug", "box"):
                a = u.h.obj_qadr[o]
                d.qpos[a] += dx
                d.qpos[a + 1] += dy
            m.body_pos[u.h.body["goal"], :2] += (dx, dy)
            mj.mj_forward(m, d)
        if float(s["TH"]):
            u.factors["TH"].set({"dz": float(s["TH"])})
        if s["TD"]:
            td = u.factors["TD"]
            saved = td.range
            td.range = dataclasses.replace(saved, count=(int(s["TD"]), int(s["TD"])))
            try:
                rng = np.random.default_rng([int(seed or 0), zlib.crc32(b"protocol:TD")])
                td.set(td.sample(rng))
            finally:
                td.range = saved
        if s["BG"] != "nominal":
            idx = int(str(s["BG"])[8:])
            n = len(u.h.bg_tex)
            if not 0 <= idx < n:
                raise ConfigError(f"BG {s['BG']!r}: the env's BG library has {n} textures "
                                  f"(library:0 .. library:{n - 1})")
            u.factors["BG"].set({mat: {"texture": idx, "tint": [1.0, 1.0, 1.0]}
                                 for mat in u.factors["BG"].default_values()})
        if s["LT"] != "nominal":
            lt = u.factors["LT"]
            lt.set(_lighting(lt.default_values(), s["LT"]))
        cp = [float(v) for v in s["CP"]]
        if any(cp):
            u.factors["CP"].set({"dpos": cp, "drot": [0.0, 0.0, 0.0]})
        mj.mj_forward(m, d)
