"""The Ray executor on this machine: 1 vs 2 Ray workers against the local executor.

Embedding extraction (``embed_framesets``, cold cache, tasks = episodes x encoders) and
rollouts (``run_episodes``, the expert, tasks = episodes of an actor pool), each in a
fresh subprocess per setting so no Ray session or warm cache carries over. A Ray setting
is ``ray.init(num_cpus=k)`` and k tasks at a time (one CPU, one torch thread each); the
start of Ray itself is timed apart. Every Ray result is checked equal to the local one.

    python benchmarks/bench_ray.py [--frames 512] [--size 64] [--episodes 8]

Nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENCODERS = ("resnet18-random", "pixels")


def phase(kind: str, workers: int, fs_path: Path, cache: Path, episodes: int) -> dict[str, object]:
    import hashlib

    import numpy as np
    import torch

    out: dict[str, object] = {}
    ex = "local"
    if kind == "ray":
        import ray

        t = time.perf_counter()
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
        out["ray_start_s"] = time.perf_counter() - t
        ex = "ray"
    else:
        torch.set_num_threads(1)  # the local path with one thread, as each Ray task has

    from realgap.data import FrameSet
    from realgap.encoders import create_encoder
    from realgap.encoders.cache import embed_framesets
    from realgap.policy import EnvSpec, run_episodes
    from realgap.policy.episodes import episode_specs

    fs = FrameSet.open(fs_path)
    jobs = [(create_encoder(n), fs) for n in ENCODERS]
    t = time.perf_counter()
    embs = embed_framesets(jobs, "head", cache, 64, False, ex)
    out["embed_s"] = time.perf_counter() - t
    out["embed_digest"] = hashlib.sha256(b"".join(np.ascontiguousarray(e).tobytes() for e in embs)).hexdigest()

    spec = EnvSpec("reach-box", image_size=64, max_steps=40)
    eps = episode_specs(episodes, None)
    t = time.perf_counter()
    res = run_episodes("expert", spec, eps, workers=workers if kind == "ray" else 1, executor=ex)
    out["rollout_s"] = time.perf_counter() - t
    out["rollout_digest"] = hashlib.sha256(json.dumps([o.row() for o in res], sort_keys=True,
                                                      default=str).encode()).hexdigest()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=512)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--episodes", type=int, default=8, help="rollout episodes")
    ap.add_argument("--phase", nargs=5, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        kind, w, fs, cache, eps = args.phase
        print(json.dumps(phase(kind, int(w), Path(fs), Path(cache), int(eps))))
        return

    from realgap.data.synthetic import write_synthetic

    tmp = Path(tempfile.mkdtemp(prefix="bench_ray_"))
    per_ep = 32
    fs = write_synthetic(tmp / "fs", domains=("sim",), n_episodes=max(1, args.frames // per_ep),
                         n_frames=per_ep, size=args.size, rng=0)
    print(f"machine: {os.cpu_count()} cores shared with other users, load average "
          f"{os.getloadavg()[0]:.1f}; {args.frames} frames of {args.size} px x "
          f"{', '.join(ENCODERS)} ({args.frames // per_ep} episodes of {per_ep}); "
          f"{args.episodes} expert rollouts of reach-box")
    results = {}
    for kind, w in (("local", 1), ("ray", 1), ("ray", 2)):
        env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
        r = subprocess.run([sys.executable, __file__, "--phase", kind, str(w), str(fs),
                            str(tmp / f"cache_{kind}{w}"), str(args.episodes)],
                           capture_output=True, text=True, env=env, check=False)
        if r.returncode:
            sys.exit(f"{kind} x{w} failed:\n{r.stderr[-3000:]}")
        res = json.loads(r.stdout.strip().splitlines()[-1])
        results[(kind, w)] = res
        start = f" (ray start {res['ray_start_s']:.1f} s, not included)" if "ray_start_s" in res else ""
        print(f"{kind:5s} x{w}: embedding {res['embed_s']:7.1f} s | rollouts {res['rollout_s']:7.1f} s{start}")
    base = results[("local", 1)]
    same = all(r["embed_digest"] == base["embed_digest"] and r["rollout_digest"] == base["rollout_digest"]
               for r in results.values())
    one, two = results[("ray", 1)], results[("ray", 2)]
    print(f"speed-up 2 vs 1 Ray workers: embedding {float(one['embed_s']) / float(two['embed_s']):.2f}x, "
          f"rollouts {float(one['rollout_s']) / float(two['rollout_s']):.2f}x; "
          f"Ray x1 vs local: embedding {float(base['embed_s']) / float(one['embed_s']):.2f}x, "
          f"rollouts {float(base['rollout_s']) / float(one['rollout_s']):.2f}x; "
          f"results identical to local: {same}")


if __name__ == "__main__":
    main()
