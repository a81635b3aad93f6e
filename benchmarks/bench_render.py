"""End-to-end frame rates: realgap env steps and dataset generation vs raw MuJoCo.

Run: ``MUJOCO_GL=egl python benchmarks/bench_render.py [--frames 150] [--size 128]``.

``bench_sim.py`` compares *rendering* alone. This script measures what a user waits for,
on the same scene (``reach-mug``, fidelity ``low``) and image size, in one run:

1. **Step + frame.** Baseline: ``mj_step`` x FRAME_SKIP on its own ``MjData`` plus one
   head frame from a plain ``mujoco.Renderer`` (same scene flags). realgap:
   ``env.step(expert(obs))`` with frame-wise BG, LT and CP randomization, whose
   observation carries the head frame. The two are interleaved frame by frame so machine
   load hits both alike; medians are printed, and the ratio realgap / raw frames per
   second (goal >= 0.8, issue 2 section 6).
2. **Extra domains.** The cost of one ``render_domain`` call per extra domain of the same
   state (``sim-nominal``, ``real-proxy``), and of the proxy camera model alone.
3. **Generation.** ``realgap.sim.generate`` end to end (expert, rendering, FrameSet
   writes with fsync and hashing) in frames per second, for ``sim`` only and for the
   demo's three domains, against the raw step + frame rate of part 1.
4. **Proxy shadows.** ``render_domain`` per proxy severity (``real-proxy-mild``,
   ``real-proxy-strong``) and shadow setting (``off``, ``low``, ``high``), interleaved,
   with the ``sim-nominal`` render of the same state as the reference: the shadow map is
   rasterised at its full size whatever the frame size, so in software rendering it, not
   the frame, sets the proxy's cost.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np


def bench_step(size: int, frames: int) -> dict[str, float]:
    import mujoco

    from realgap import sim
    from realgap.sim.camera_model import REAL_PROXY_CAMERA
    from realgap.sim.env import FRAME_SKIP

    env = sim.make("reach-mug", randomize=("BG", "LT", "CP"), granularity="frame",
                   fidelity="low", image_size=size, cameras=("head",), seed=0,
                   max_steps=10**6, terminate_on_success=False)
    u = env.unwrapped
    obs, _ = env.reset(seed=0)
    expert = sim.expert_for(env)
    raw = mujoco.Renderer(u.model, size, size)
    raw.scene.flags[:] = u._renderer.renderer.scene.flags
    cam = u.h.cam["head"]
    data2 = mujoco.MjData(u.model)
    mujoco.mj_forward(u.model, data2)

    def raw_frame() -> np.ndarray:
        mujoco.mj_step(u.model, data2, nstep=FRAME_SKIP)
        raw.update_scene(data2, camera=cam)
        return raw.render()

    def realgap_frame() -> np.ndarray:
        nonlocal obs
        obs, _r, _t, _tr, _i = env.step(expert(obs))
        return obs["head"]

    for _ in range(5):
        raw_frame()
        realgap_frame()
    t_raw, t_rg, t_nom, t_proxy, t_cam = [], [], [], [], []
    img = obs["head"]
    for _ in range(frames):
        t = time.perf_counter()
        raw_frame()
        t_raw.append(time.perf_counter() - t)
        t = time.perf_counter()
        img = realgap_frame()
        t_rg.append(time.perf_counter() - t)
        t = time.perf_counter()
        u.render_domain("sim-nominal", ("head",))
        t_nom.append(time.perf_counter() - t)
        t = time.perf_counter()
        u.render_domain("real-proxy", ("head",))
        t_proxy.append(time.perf_counter() - t)
        t = time.perf_counter()
        REAL_PROXY_CAMERA.apply(img, 0)
        t_cam.append(time.perf_counter() - t)
    raw.close()
    env.close()
    med = {k: float(np.median(v)) for k, v in
           (("raw", t_raw), ("realgap", t_rg), ("nominal", t_nom), ("proxy", t_proxy),
            ("camera", t_cam))}
    return med


def bench_generate(size: int, episodes: int) -> dict[str, tuple[int, float]]:
    from realgap import sim
    from realgap.sim.generate import GenerateConfig, generate

    t = time.perf_counter()
    env = sim.make("reach-mug", randomize=("BG", "LT", "CP"), granularity="frame",
                   fidelity="low", image_size=size, cameras=("head",), seed=0)
    env.reset(seed=0)
    env.close()
    out: dict[str, tuple[int, float]] = {"env build": (0, time.perf_counter() - t)}
    base = GenerateConfig(out="", tasks=("reach-mug",), episodes=episodes, image_size=size,
                          randomize=("BG", "LT", "CP"), granularity="frame", seed=0)
    for name, domains in (("sim", ("sim",)), ("sim+nominal+proxy",
                                              ("sim", "sim-nominal", "real-proxy"))):
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            fs = generate(replace(base, out=os.path.join(tmp, "fs"), domains=domains),
                          progress=False)
            out[name] = (len(fs), time.perf_counter() - t)
    return out


def bench_proxy_shadows(size: int, frames: int) -> dict[tuple[str, str], float]:
    """Median seconds per ``render_domain`` call: ``(domain, shadows) -> s``."""
    from realgap import sim

    envs = {sh: sim.make("reach-mug", randomize=("BG", "LT"), fidelity="low", image_size=size,
                         cameras=("head",), seed=0, proxy_shadows=sh)
            for sh in ("off", "low", "high")}
    for env in envs.values():
        env.reset(seed=0)
    keys = [("sim-nominal", "high")] + [(d, sh) for d in ("real-proxy-mild", "real-proxy-strong")
                                        for sh in envs]
    times: dict[tuple[str, str], list[float]] = {k: [] for k in keys}
    for k in keys:  # warm-up: contexts and the second shadow renderer are made lazily
        envs[k[1]].unwrapped.render_domain(k[0], ("head",))
    for _ in range(frames):
        for d, sh in keys:
            t = time.perf_counter()
            envs[sh].unwrapped.render_domain(d, ("head",))
            times[(d, sh)].append(time.perf_counter() - t)
    for env in envs.values():
        env.close()
    return {k: float(np.median(v)) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--episodes", type=int, default=6)
    ap.add_argument("--shadows-only", action="store_true", help="run part 4 only")
    args = ap.parse_args()
    if args.shadows_only:
        _print_shadows(args.size, args.frames)
        return
    m = bench_step(args.size, args.frames)
    print(f"reach-mug, fidelity low, head {args.size}x{args.size}, {args.frames} interleaved "
          "frames (medians)")
    print(f"{'':<44}{'ms/frame':>9}{'frames/s':>10}")
    rows = [("raw: mj_step x25 + mujoco.Renderer", m["raw"]),
            ("realgap: env.step, frame-wise BG+LT+CP", m["realgap"]),
            ("  + render_domain('sim-nominal')", m["nominal"]),
            ("  + render_domain('real-proxy')", m["proxy"]),
            ("    of which REAL_PROXY_CAMERA.apply", m["camera"])]
    for name, sec in rows:
        print(f"{name:<44}{sec * 1e3:>9.2f}{1 / sec:>10.1f}")
    print(f"ratio realgap / raw frames/s: {m['raw'] / m['realgap']:.3f}  (goal >= 0.8)")
    g = bench_generate(args.size, args.episodes)
    print(f"\ngenerate(), reach-mug, {args.episodes} episodes, end to end incl. env build "
          "and FrameSet writes")
    _, build = g.pop("env build")
    print(f"(sim.make + first reset alone: {build:.1f} s; 'net' subtracts it once)")
    for name, (n, sec) in g.items():
        net = n / max(sec - build, 1e-9)
        print(f"{name:<20}{n:>6} frames {sec:>6.1f} s {n / sec:>6.1f} frames/s, "
              f"net {net:>6.1f} frames/s  (raw step + frame: {1 / m['raw']:.1f})")
    _print_shadows(args.size, args.frames)


def _print_shadows(size: int, frames: int) -> None:
    sh = bench_proxy_shadows(size, frames)
    print(f"\nrender_domain per proxy severity and shadow setting, head {size}x{size}, "
          f"{frames} interleaved frames (medians, ms/frame)")
    for (d, s), sec in sh.items():
        label = "sim-nominal (reference)" if d == "sim-nominal" else f"{d}, shadows {s}"
        print(f"  {label:<40}{sec * 1e3:>8.2f}")


if __name__ == "__main__":
    main()
