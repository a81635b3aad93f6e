"""Small synthetic FrameSets for tests and examples (no simulator needed).

:func:`synthetic_episode` draws one episode's arrays from a seeded generator;
:func:`write_synthetic` writes a whole set. Pixels are random but reproducible, the
actions are a known linear function of a per-frame brightness so probes have something
to find: ``action[:, 0] = mean pixel of camera 0 / 255``, ``action[:, 1:] ~ N(0, 1)``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from realgap._rng import RngLike, as_rng
from realgap.data.writer import FrameSetWriter


def synthetic_episode(
    rng: RngLike,
    n_frames: int = 6,
    cameras: Sequence[str] = ("head",),
    size: int = 16,
    action_dim: int = 3,
    state_dim: int = 2,
) -> dict[str, Any]:
    """Arrays of one episode, keyword-compatible with :meth:`FrameSetWriter.add_episode`.

    Returns ``{"images": {cam: uint8 (T, size, size, 3)}, "actions": float32 (T, A),
    "states": float32 (T, S), "factors": [{"BG": int, "LT": {"intensity": float}}] * T}``.
    """
    gen = as_rng(rng)
    images = {c: gen.integers(0, 256, (n_frames, size, size, 3), dtype=np.uint8) for c in cameras}
    actions = gen.normal(size=(n_frames, action_dim)).astype(np.float32)
    actions[:, 0] = images[cameras[0]].reshape(n_frames, -1).mean(axis=1) / 255.0
    states = gen.normal(size=(n_frames, state_dim)).astype(np.float32)
    bg = int(gen.integers(0, 10))
    light = [round(float(x), 3) for x in gen.uniform(0.3, 1.0, n_frames)]
    factors = [{"BG": bg, "LT": {"intensity": light[t]}} for t in range(n_frames)]
    return {"images": images, "actions": actions, "states": states, "factors": factors}


def write_synthetic(
    path: str | os.PathLike[str],
    domains: Sequence[str] = ("sim", "real"),
    tasks: Sequence[str] = ("reach-mug",),
    n_episodes: int = 3,
    n_frames: int = 6,
    cameras: Sequence[str] = ("head",),
    size: int = 16,
    action_dim: int = 3,
    state_dim: int = 2,
    rng: RngLike = 0,
    paired: bool = True,
) -> Path:
    """Write a synthetic FrameSet of ``len(domains) * len(tasks) * n_episodes`` episodes.

    With ``paired``, frame ``t`` of episode ``e`` of task ``k`` shares the pair id
    ``"<k>/<e>/<t>"`` across domains (as generated sim/real-proxy pairs do). Same ``rng``
    seed, same bytes and the same content hash.
    """
    gen = as_rng(rng)
    with FrameSetWriter(path, source="realgap.data.synthetic", domains=domains) as w:
        for task in tasks:
            for ep in range(n_episodes):
                for dom in domains:
                    arrays = synthetic_episode(gen, n_frames, cameras, size, action_dim, state_dim)
                    pids = [f"{task}/{ep}/{t}" for t in range(n_frames)] if paired else None
                    w.add_episode(domain=dom, task=task, episode=ep, pair_ids=pids, **arrays)
    return Path(path)
