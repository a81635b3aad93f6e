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
- ``real-proxy`` (= ``real-proxy-strong``): the stand-in for a real camera (the
  proxy-real domain of DESIGN.md), fixed, never randomized: photographs from scikit-image on the table, walls
  and floor (:func:`realgap.sim.textures.photo_textures`), a warmer key light and a cooler
  fill light from other positions, an offset head camera (3 cm, about 2 degrees), shadows,
  then the sensor model :data:`realgap.sim.camera_model.REAL_PROXY_CAMERA` (noise, blur,
  colour response, lens distortion).
- ``real-proxy-mild``: a smaller gap in the same directions: the simulator's own nominal
  textures (no photographs), lights moved and tinted about half as far, half the camera
  offset, shadows, and the half-strength sensor
  :data:`realgap.sim.camera_model.MILD_PROXY_CAMERA`. Mild and strong differ in exactly
  these fields of :class:`ProxyLook` (:data:`PROXY_LOOKS`), so a score that moves between
  them moves with the size of the gap.

Proxy sensor noise is drawn from a stream keyed by (seed, episode, step, camera), so a
frame is the same however often and in whatever order it is rendered.

Shadows (``proxy_shadows``, :data:`PROXY_SHADOWS`): the proxy domains render the key
light's shadow, and with MuJoCo's software OpenGL (EGL on Mesa llvmpipe, no GPU) the
shadow pass dominates a small frame's cost, because the shadow map is rasterised at its
full size whatever the image size. Measured at 64 px on 2 cores: no shadow 4.2 ms, a
256-texel map 15 ms, 1024 texels 74 ms per frame (``benchmarks/bench_render.py``).

- ``high``: the model's own shadow map (``Fidelity.shadow_size``: 1024 texels at ``low``
  fidelity), the behaviour before the setting existed (same bytes);
- ``low``: a 256-texel map (a second rendering context; softer, blockier shadow edges);
- ``off``: no shadow pass (the proxy then differs from sim by no shadow at all).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from realgap._optional import require
from realgap.errors import ConfigError, MissingDependencyError
from realgap.sim.camera_model import MILD_PROXY_CAMERA, REAL_PROXY_CAMERA, CameraModel
from realgap.sim.factors import small_rotation_quat
from realgap.sim.fidelity import Fidelity
from realgap.sim.scene import BG_MATERIALS, CAMERAS, SceneHandles

DOMAINS: tuple[str, ...] = ("sim", "sim-nominal", "real-proxy", "real-proxy-mild",
                             "real-proxy-strong")
#: Shadow settings of the proxy domains (see the module docstring): name -> shadow-map
#: side in texels (None: the model's own, ``Fidelity.shadow_size``; 0: no shadow pass).
PROXY_SHADOWS: dict[str, int | None] = {"off": 0, "low": 256, "high": None}
#: preferred photographs per material (first available wins), from scikit-image's data
PHOTO_PREFERENCE: dict[str, tuple[str, ...]] = {
    "table": ("gravel", "grass"),
    "wall": ("brick", "grass"),
    "floor": ("moon", "grass"),
}


LightSpec = tuple[tuple[float, float, float], tuple[float, float, float],
                  tuple[float, float, float]]


@dataclass(frozen=True)
class ProxyLook:
    """The fixed appearance of a proxy-real domain (before and including the sensor)."""

    #: light -> (position (m, world), diffuse rgb, specular rgb); a light not named keeps
    #: its nominal values
    lights: dict[str, LightSpec] = field(default_factory=lambda: {
        "key": ((0.35, -0.95, 2.4), (0.78, 0.7, 0.58), (0.25, 0.22, 0.18)),
        "fill": ((-0.7, 0.6, 2.0), (0.28, 0.31, 0.36), (0.03, 0.03, 0.04)),
    })
    #: head camera offset: translation (m, world) and rotation vector (rad, camera frame)
    head_dpos: tuple[float, float, float] = (0.03, -0.025, 0.03)
    head_drot: tuple[float, float, float] = (0.025, -0.02, 0.012)
    #: tint multiplying each photographed material's colour
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    #: photographs (:data:`PHOTO_PREFERENCE`) on table, walls and floor; False keeps the
    #: nominal simulator textures
    photographs: bool = True
    #: sensor model applied to every render
    camera: CameraModel = REAL_PROXY_CAMERA


#: The mild proxy: nominal textures; lights, camera offset and sensor about half-way
#: between the simulator's nominal look (key (0.7, -0.6, 2.2) grey 0.55; fill
#: (-0.9, 0.2, 1.9) grey 0.3; no offset; identity sensor) and the strong proxy.
MILD_LOOK = ProxyLook(
    lights={
        "key": ((0.52, -0.78, 2.3), (0.66, 0.62, 0.56), (0.15, 0.14, 0.12)),
        "fill": ((-0.8, 0.4, 1.95), (0.29, 0.3, 0.33), (0.03, 0.03, 0.035)),
    },
    head_dpos=(0.015, -0.0125, 0.015),
    head_drot=(0.0125, -0.01, 0.006),
    photographs=False,
    camera=MILD_PROXY_CAMERA,
)
STRONG_LOOK = ProxyLook()
#: proxy domain -> its look; ``real-proxy`` is the strong look under its original name
PROXY_LOOKS: dict[str, ProxyLook] = {"real-proxy": STRONG_LOOK,
                                     "real-proxy-strong": STRONG_LOOK,
                                     "real-proxy-mild": MILD_LOOK}


def check_proxy_shadows(shadows: str) -> str:
    """``shadows`` if it names a :data:`PROXY_SHADOWS` setting, else a ConfigError."""
    if shadows not in PROXY_SHADOWS:
        raise ConfigError(f"proxy shadows {shadows!r}: expected one of "
                          f"{', '.join(PROXY_SHADOWS)}")
    return shadows


class DomainRenderer:
    """One ``mujoco.Renderer`` reused for every camera and domain of an env.

    Args:
        model, data: compiled model and its data.
        handles: scene ids.
        fidelity: sets the shadow / reflection flags of sim frames.
        image_size: image side (px).
        proxy_shadows: shadow setting of the proxy domains (:data:`PROXY_SHADOWS`).
        looks: proxy domain -> look (default :data:`PROXY_LOOKS`).

    The nominal appearance (what ``sim-nominal`` renders) is the model's appearance when
    the renderer is made, before any factor randomizes it.
    """

    APPEARANCE = ("mat_texid", "mat_rgba", "light_pos", "light_diffuse", "light_specular",
                  "cam_pos", "cam_quat")

    def __init__(self, model: Any, data: Any, handles: SceneHandles, fidelity: Fidelity,
                 image_size: int, proxy_shadows: str = "high",
                 looks: dict[str, ProxyLook] | None = None) -> None:
        mj = require("mujoco")
        self.mj, self.model, self.data, self.h = mj, model, data, handles
        self.fidelity = fidelity
        self.looks = dict(PROXY_LOOKS if looks is None else looks)
        self.proxy_shadows = check_proxy_shadows(proxy_shadows)
        self.image_size = image_size
        self.renderer = mj.Renderer(model, height=image_size, width=image_size)
        self._proxy_renderer: Any = None  # made on first use when the map size differs
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

    def render(self, cameras: tuple[str, ...], renderer: Any = None) -> dict[str, np.ndarray]:
        """Render ``cameras`` with the current appearance: uint8 (H, W, 3) each."""
        r = renderer or self.renderer
        out = {}
        for c in cameras:
            r.update_scene(self.data, camera=self.h.cam[c])
            out[c] = r.render()
        return out

    def _shadow_renderer(self) -> Any:
        """The renderer of proxy frames: the main one unless the shadow map differs.

        MuJoCo reads the shadow-map size once, when a rendering context is made, so a
        smaller map needs a context of its own (made once, with the model's size restored
        at once so sim frames are untouched)."""
        size = PROXY_SHADOWS[self.proxy_shadows]
        if size is None or size == 0 or size == int(self.model.vis.quality.shadowsize):
            return self.renderer
        if self._proxy_renderer is None:
            q = self.model.vis.quality
            own = int(q.shadowsize)
            q.shadowsize = size
            try:
                self._proxy_renderer = self.mj.Renderer(self.model, height=self.image_size,
                                                        width=self.image_size)
            finally:
                q.shadowsize = own
            flags = self._proxy_renderer.scene.flags
            flags[self.mj.mjtRndFlag.mjRND_REFLECTION] = int(self.fidelity.reflections)
            flags[self.mj.mjtRndFlag.mjRND_SKYBOX] = 0
        return self._proxy_renderer

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
            return self._render_proxy(self.looks[domain], cameras, noise_key)
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

    def _render_proxy(self, look: ProxyLook, cameras: tuple[str, ...],
                      noise_key: tuple[int, ...]) -> dict[str, np.ndarray]:
        # Start from the nominal look: a proxy is a fixed appearance, never the sim's
        # randomized one (a randomized texture or light must not leak into "real").
        self.write(self.nominal)
        mj, m = self.mj, self.model
        if look.photographs:
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
        renderer = self._shadow_renderer()
        flags = renderer.scene.flags
        shadow = int(flags[mj.mjtRndFlag.mjRND_SHADOW])
        flags[mj.mjtRndFlag.mjRND_SHADOW] = int(PROXY_SHADOWS[self.proxy_shadows] != 0)
        try:
            imgs = self.render(cameras, renderer)
        finally:
            flags[mj.mjtRndFlag.mjRND_SHADOW] = shadow
        return {c: look.camera.apply(img, np.random.default_rng(
            [*(int(k) & (2**63 - 1) for k in noise_key), CAMERAS.index(c)]))
            for c, img in imgs.items()}

    def close(self) -> None:
        self.renderer.close()
        if self._proxy_renderer is not None:
            self._proxy_renderer.close()
            self._proxy_renderer = None
