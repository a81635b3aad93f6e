"""Rendering fidelity presets for the tabletop simulator.

The reference (vla-domain-randomization-study.txt, section 3.2.4 and appendix 0.B.3.1)
varies fidelity with a ray tracer (samples per pixel, path depth, denoising). MuJoCo's
OpenGL rasteriser has no ray tracing, so realgap maps the same idea (more light-transport
effects and more samples per pixel cost more time) onto the knobs MuJoCo does have:

======== ======= =========== =========== =========== ==========
preset   shadows shadow map  reflections offsamples  texture px
======== ======= =========== =========== =========== ==========
low      off     1024        off         0 (no MSAA) 64
medium   on      2048        off         4           128
high     on      4096        on          8           256
======== ======= =========== =========== =========== ==========

- ``shadows``: the ``mjRND_SHADOW`` scene flag (shadow mapping from lights that cast).
- ``shadow_size``: ``model.vis.quality.shadowsize``, the shadow-map side in texels (read
  once, when the rendering context is made). ``low`` keeps a 1024 map only so that the
  proxy-real domain, which always renders shadows, can use it; sim frames do not.
- ``reflections``: the ``mjRND_REFLECTION`` flag plus a reflectance on the table and floor
  materials (0.08 / 0.05 in ``high``, 0 otherwise).
- ``offsamples``: ``model.vis.quality.offsamples``, multi-sample anti-aliasing samples of
  the offscreen buffer.
- ``texture_size``: side in pixels of every background texture built into the model.

``low`` is the fast preset: no shadow pass, no reflection pass, no multi-sampling.
"""

from __future__ import annotations

from dataclasses import dataclass

from realgap.errors import UnknownNameError


@dataclass(frozen=True)
class Fidelity:
    """One rendering fidelity preset (see the module table)."""

    name: str
    #: render shadows (mjRND_SHADOW) in sim frames
    shadows: bool
    #: shadow map side in texels (model.vis.quality.shadowsize)
    shadow_size: int
    #: render planar reflections (mjRND_REFLECTION) and give table/floor a reflectance
    reflections: bool
    #: MSAA samples of the offscreen buffer (model.vis.quality.offsamples)
    offsamples: int
    #: side in pixels of every background / photo texture built into the model
    texture_size: int
    #: reflectance of the table material (0 without reflections)
    table_reflectance: float = 0.0
    #: reflectance of the floor material (0 without reflections)
    floor_reflectance: float = 0.0


FIDELITY: dict[str, Fidelity] = {
    "low": Fidelity("low", shadows=False, shadow_size=1024, reflections=False, offsamples=0,
                    texture_size=64),
    "medium": Fidelity("medium", shadows=True, shadow_size=2048, reflections=False,
                       offsamples=4, texture_size=128),
    "high": Fidelity("high", shadows=True, shadow_size=4096, reflections=True, offsamples=8,
                     texture_size=256, table_reflectance=0.08, floor_reflectance=0.05),
}


def get_fidelity(name: str | Fidelity) -> Fidelity:
    """The preset called ``name`` (``low``, ``medium``, ``high``), or ``name`` itself."""
    if isinstance(name, Fidelity):
        return name
    try:
        return FIDELITY[name]
    except (KeyError, TypeError):
        raise UnknownNameError(
            f"fidelity={name!r} is not a preset; use one of {', '.join(FIDELITY)}"
        ) from None
