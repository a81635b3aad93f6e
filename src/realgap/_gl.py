"""The one place realgap changes the process's OpenGL setup (``os.environ``).

MuJoCo picks its OpenGL backend from ``MUJOCO_GL`` when it is first imported; its default
(GLFW) needs an X display. On a headless machine (CI, a rollout worker, a server) EGL
works, with Mesa's software renderer when there is no GPU. :func:`headless_gl` makes that
choice once, before MuJoCo is imported, and only when the user has made none: a set
``MUJOCO_GL`` (``osmesa``, ``glfw``) or an attached ``DISPLAY`` is left alone.

Callers: dataset generation (:func:`realgap.sim.generate.generate`) and the rollout
workers (:mod:`realgap.policy.episodes`), each before its first MuJoCo render.
"""

from __future__ import annotations

import os

__all__ = ["headless_gl"]


def headless_gl() -> None:
    """Choose EGL for MuJoCo when no display is attached and nothing else was chosen.

    Sets ``MUJOCO_GL=egl`` and (unless set) ``PYOPENGL_PLATFORM=egl`` in ``os.environ``;
    changes nothing otherwise. Must run before ``mujoco`` is imported to take effect.
    Idempotent.
    """
    if not os.environ.get("DISPLAY") and "MUJOCO_GL" not in os.environ:
        os.environ["MUJOCO_GL"] = "egl"
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
