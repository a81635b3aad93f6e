"""Render one simulator state in several visual domains (sim, sim-nominal, real-proxy).

A domain is an appearance, not a state: :class:`DomainRenderer` snapshots the appearance
arrays of the model (material textures and tints, lights, camera poses), writes the
domain's appearance, renders, and writes the snapshot back bit for bit, so frames of one
trajectory rendered in several domains pair up exactly (same state, same ``pair_id``).

Domains:

- ``sim``: the current appearance, randomization included (what the policy trains on).
- ``sim-nominal``: the default, unrandomized appearance of BG, LT and CP (the values saved
  when the env was built). Table height, distractors and physics are state, not
  appearance, and stay as they are.
- ``real-proxy``: the stand-in for a real camera (issue 2, section 4), fixed, never
  randomized: photographs from scikit-image on the table, walls and floor
  (:func:`realgap.sim.textures.photo_textures`), warmer key light and cooler fill light
  from other positions, shadows always on, an offset head camera, then the sensor model
  :data:`realgap.sim.camera_model.REAL_PROXY_CAMERA` (noise, blur, colour response, lens
  distortion). Its noise is drawn from a stream keyed by (seed, episode, step, camera),
  so a frame is the same however often and in whatever order it is rendered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from realgap._optional import require
from realgap.errors import ConfigError, MissingDependencyError
from realgap.sim.camera_model import REAL_PROXY_CAMERA
from realgap.sim.factors import small_rotation_quat
from realgap.sim.fidelity import Fidelity
from realgap.sim.scene import BG_MATERIALS, CAMERAS, SceneHandles

DOMAINS: tuple[str, ...] = ("sim", "sim-nominal", "real-proxy")
#: preferred photographs per material (first available wins), from scikit-image's data
PHOTO_PREFERENCE: dict[str, tuple[str, ...]] = {
    "table": ("gravel", "grass"),
    "wall": ("brick", "grass"),
    "floor": ("moon", "grass"),
}


@dataclass(frozen=True)
class ProxyLook:
    """The fixed appearance of the proxy-real domain (before the sensor model)."""

    #: light -> (position (m, world), diffuse rgb, specular rgb)
    lights: dict[str, tuple[tuple[float, float, float], tuple[float, float, float],
                            tuple[float, float, float]]] = field(default_factory=lambda: {
        "key": ((0.35, -0.95, 2.4), (0.78, 0.7, 0.58), (0.25, 0.22, 0.18)),
        "fill": ((-0.7, 0.6, 2.0), (0.28, 0.31, 0.36), (0.03, 0.03, 0.04)),
    })
    #: head camera offset: translation (m, world) and rotation vector (rad, camera frame)
    head_dpos: tuple[float, float, float] = (0.03, -0.025, 0.03)
    head_drot: tuple[float, float, float] = (0.025, -0.02, 0.012)
    #: tint multiplying each photographed material's colour
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)


class DomainRenderer:
    """One ``mujoco.Renderer`` reused for every camera and domain of an env.

    Args:
        model, data: compiled model and its data.
        handles: scene ids.
        fidelity: sets the shadow / reflection flags of sim frames.
        image_size: image side (px).
        nominal: saved default appearance arrays (from the factors' ``save_defaults``).
    """

    APPEARANCE = ("mat_texid", "mat_rgba", "light_pos", "light_diffuse", "light_specular",
                  "cam_pos", "cam_quat")

    def __init__(self, model: Any, data: Any, handles: SceneHandles, fidelity: Fidelity,
                 image_size: int, look: ProxyLook = ProxyLook()) -> None:
        mj = require("mujoco")
        self.mj, self.model, self.data, self.h = mj, model, data, handles
        self.fidelity, self.look = fidelity, look
        self.renderer = mj.Renderer(model, height=image_size, width=image_size)
        flags = self.renderer.scene.flags
        flags[mj.mjtRndFlag.mjRND_SHADOW] = int(fidelity.shadows)
        flags[mj.mjtRndFlag.mjRND_REFLECTION] = int(fidelity.reflections)
        flags[mj.mjtRndFlag.mjRND_SKYBOX] = 0
        self.nominal = self.snapshot()

    def snapshot(self) -> dict[str, np.ndarray]:
        """Copies of the appearance arrays."""
        return {k: np.array(getattr(self.model, k), copy=True) for k in self.APPEARANCE}

    def write(self, snap: dict[str, np.ndarray]) -> None:
        """Write appearance arrays back and recompute camera/light frames."""
        for k, v in snap.items():
            getattr(self.model, k)[...] = v
        self.mj.mj_camlight(self.model, self.data)

    def render(self, cameras: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Render ``cameras`` with the current appearance: uint8 (H, W, 3) each."""
        out = {}
        for c in cameras:
            self.renderer.update_scene(self.data, camera=self.h.cam[c])
            out[c] = self.renderer.render()
        return out

    def render_domain(self, domain: str, cameras: tuple[str, ...],
                      noise_key: tuple[int, ...] = (0,)) -> dict[str, np.ndarray]:
        """Render ``cameras`` in ``domain`` and leave the model's appearance as it was.

        Args:
            domain: one of :data:`DOMAINS`.
            cameras: camera names.
            noise_key: integers keying the proxy-real sensor noise (seed, episode, step).
        """
        if domain == "sim":
            return self.render(cameras)
        if domain not in DOMAINS:
            raise ConfigError(f"domain={domain!r} is not a render domain; use one of "
                              f"{', '.join(DOMAINS)} (relabel frames when writing them)")
        snap = self.snapshot()
        try:
            if domain == "sim-nominal":
                self.write(self.nominal)
                return self.render(cameras)
            return self._render_proxy(cameras, noise_key)
        finally:
            self.write(snap)

    def _proxy_textures(self) -> dict[str, int]:
        photos = self.h.photo_tex
        if not photos:
            raise MissingDependencyError(
                "the real-proxy domain needs photographs (realgap.sim.textures.photo_textures"
                " from scikit-image data); install it with: pip install 'realgap[sim]'")
        out = {}
        for mat in BG_MATERIALS:
            pref = [p for p in PHOTO_PREFERENCE[mat] if p in photos]
            out[mat] = photos[pref[0] if pref else min(photos)]
        return out

    def _render_proxy(self, cameras: tuple[str, ...],
                      noise_key: tuple[int, ...]) -> dict[str, np.ndarray]:
        mj, m, look = self.mj, self.model, self.look
        role = int(mj.mjtTextureRole.mjTEXROLE_RGB)
        for mat, tex in self._proxy_textures().items():
            mid = self.h.mat[mat]
            m.mat_texid[mid, role] = tex
            m.mat_rgba[mid, :3] = look.tint
        for name, (pos, diffuse, specular) in look.lights.items():
            i = self.h.light[name]
            m.light_pos[i] = pos
            m.light_diffuse[i] = diffuse
            m.light_specular[i] = specular
        cam = self.h.cam["head"]
        m.cam_pos[cam] = self.nominal["cam_pos"][cam] + np.asarray(look.head_dpos)
        q = np.zeros(4)
        mj.mju_mulQuat(q, self.nominal["cam_quat"][cam], small_rotation_quat(look.head_drot))
        m.cam_quat[cam] = q
        mj.mj_camlight(m, self.data)
        flags = self.renderer.scene.flags
        shadow = int(flags[mj.mjtRndFlag.mjRND_SHADOW])
        flags[mj.mjtRndFlag.mjRND_SHADOW] = 1
        try:
            imgs = self.render(cameras)
        finally:
            flags[mj.mjtRndFlag.mjRND_SHADOW] = shadow
        return {c: REAL_PROXY_CAMERA.apply(img, np.random.default_rng(
            [*(int(k) & (2**63 - 1) for k in noise_key), CAMERAS.index(c)]))
            for c, img in imgs.items()}

    def close(self) -> None:
        self.renderer.close()
