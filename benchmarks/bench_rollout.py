"""Rollout throughput: environment steps per second with rendering and policy inference,
1 worker against 2 worker processes, in one run (issue 4, section 6; goal: >= 1.7x).

Setup: task reach-box, head camera rendered at 64 px (MuJoCo EGL), a BC policy with the
end-to-end ResNet18 (GN + spatial softmax) encoder at 64 px. Its weights come from one
epoch on a small synthetic FrameSet: throughput does not depend on what the weights
learned, and the untrained policy never succeeds, so every episode runs its full
``--max-steps`` and both settings play exactly the same number of steps.

Baseline (1 worker): the episodes run in this process with one torch thread, the same
per-process setting each worker of the parallel run gets. The 2-worker number includes
spawning the workers, loading the policy and building an env in each (reported separately
as the startup of a 2-episode run), so the speed-up is the one a user sees.

Usage: python benchmarks/bench_rollout.py [--episodes 16] [--max-steps 40] [--encoder resnet18-e2e]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=16)
    ap.add_argument("--max-steps", type=int, default=40)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--encoder", default="resnet18-e2e")
    args = ap.parse_args()

    import torch

    from realgap.data.synthetic import write_synthetic
    from realgap.policy import PolicyConfig, TrainConfig, train_policy
    from realgap.policy.episodes import EnvSpec, episode_specs, run_episodes

    tmp = Path(tempfile.mkdtemp(prefix="bench-rollout-"))
    write_synthetic(tmp / "fs", domains=("sim",), tasks=("reach-box",), n_episodes=2,
                    n_frames=8, size=args.image_size, action_dim=4, state_dim=14, rng=0)
    ck = train_policy(tmp / "fs", tmp / "pol", PolicyConfig("reach-box", encoder=args.encoder,
                      image_size=args.image_size), TrainConfig(epochs=1, batch_size=16),
                      progress=False).checkpoint
    spec = EnvSpec("reach-box", image_size=args.image_size, max_steps=args.max_steps)
    eps = episode_specs(None, range(args.episodes))
    torch.set_num_threads(1)
    print(f"rollout throughput: reach-box, {args.image_size} px head camera, BC + {args.encoder}, "
          f"{args.episodes} episodes x {args.max_steps} steps, {os.cpu_count()} CPUs")
    rows = {}
    for workers in (1, 2):
        t = time.perf_counter()
        out = run_episodes(str(ck), spec, eps, workers=workers)
        dt = time.perf_counter() - t
        steps = sum(o.length for o in out)
        rows[workers] = (steps, dt, steps / dt)
        print(f"  workers={workers}: {steps} steps in {dt:6.1f} s = {steps / dt:6.1f} steps/s")
    t = time.perf_counter()
    run_episodes(str(ck), spec, eps[:2], workers=2)
    start2 = time.perf_counter() - t
    per_ep1 = rows[1][1] / args.episodes
    print(f"  startup of the 2-worker pool (2-episode run, one episode each): {start2:.1f} s")
    speed = rows[2][2] / rows[1][2]
    print(f"  speed-up 2 vs 1 workers, end to end: {speed:.2f}x (goal >= 1.7x)")
    # Startup = spawning, importing torch/MuJoCo, loading the policy, building the env; the
    # 2-episode run holds it plus one episode per worker (about one 1-worker episode time).
    steady = rows[2][0] / max(rows[2][1] - (start2 - per_ep1), 1e-9)
    print(f"  2 workers without pool startup (estimate): {steady:.1f} steps/s = "
          f"{steady / rows[1][2]:.2f}x")


if __name__ == "__main__":
    main()
