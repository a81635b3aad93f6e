"""Simulator speed: frame-wise randomization vs a raw ``mujoco.Renderer``, per fidelity preset,
and environment step rates.

Run: ``MUJOCO_GL=egl python benchmarks/bench_sim.py [--frames 200] [--size 128]``.

1. Rendering. On the same model, data and image size, each iteration renders one head
   frame with a plain ``mujoco.Renderer`` (baseline; the same scene flags as the preset,
   so shadows/reflections are compared like for like) and one realgap frame that first
   resamples BG, LT and CP (frame-wise randomization) and then renders through the env's
   renderer. The two are interleaved so machine load hits both alike; medians are printed.
   The goal (issue 2, section 6) is a frames-per-second ratio realgap / raw >= 0.8.
2. Steps. ``env.step`` rates of the scripted expert with rendering off (physics, 25
   substeps of 2 ms per step) and with one 64 px head camera.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np


def bench_render(fidelity: str, size: int, frames: int) -> tuple[float, float]:
    import mujoco

    from realgap import sim

    env = sim.make("reach-mug", randomize=("BG", "LT", "CP"), granularity="frame",
                   fidelity=fidelity, image_size=size, cameras=("head",), seed=0)
    env.reset()
    u = env.unwrapped
    raw = mujoco.Renderer(u.model, size, size)
    raw.scene.flags[:] = u._renderer.renderer.scene.flags
    cam = u.h.cam["head"]
    factors = [u.factors[n] for n in ("BG", "LT", "CP")]

    def raw_frame() -> np.ndarray:
        raw.update_scene(u.data, camera=cam)
        return raw.render()

    def realgap_frame() -> np.ndarray:
        for f in factors:
            f.randomize()
        return u.render_domain("sim", ("head",))["head"]

    for _ in range(5):
        raw_frame()
        realgap_frame()
    t_raw, t_rg = [], []
    for _ in range(frames):
        t = time.perf_counter()
        raw_frame()
        t_raw.append(time.perf_counter() - t)
        t = time.perf_counter()
        realgap_frame()
        t_rg.append(time.perf_counter() - t)
    raw.close()
    env.close()
    return float(np.median(t_raw)), float(np.median(t_rg))


def bench_steps(task: str, image_size: int, steps: int) -> float:
    from realgap import sim

    env = sim.make(task, image_size=image_size, cameras=("head",) if image_size else (),
                   seed=0)
    expert = sim.expert_for(env)
    obs, _ = env.reset()
    n = 0
    t = time.perf_counter()
    while n < steps:
        obs, _r, term, trunc, _i = env.step(expert(obs))
        n += 1
        if term or trunc:
            obs, _ = env.reset()
    rate = n / (time.perf_counter() - t)
    env.close()
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    print(f"rendering, head camera {args.size}x{args.size}, {args.frames} interleaved frames")
    print(f"{'fidelity':<9}{'raw ms':>9}{'realgap ms':>12}{'raw fps':>9}{'realgap fps':>13}"
          f"{'ratio':>7}")
    for fid in ("low", "medium", "high"):
        r, g = bench_render(fid, args.size, args.frames)
        print(f"{fid:<9}{r * 1e3:>9.2f}{g * 1e3:>12.2f}{1 / r:>9.1f}{1 / g:>13.1f}{r / g:>7.3f}")
    print(f"\nexpert env.step rate, {args.steps} steps (steps/s)")
    print(f"{'task':<12}{'no images':>11}{'head 64px':>11}")
    for task in ("reach-mug", "push", "pick-place"):
        a = bench_steps(task, 0, args.steps)
        b = bench_steps(task, 64, args.steps)
        print(f"{task:<12}{a:>11.1f}{b:>11.1f}")


if __name__ == "__main__":
    main()
