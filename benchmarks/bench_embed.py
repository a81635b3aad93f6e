"""Embedding throughput: realgap's pipeline vs the bare forward on the same tensors.

Pipeline = ``embed_frameset`` with a fresh cache: read frames from the FrameSet store,
preprocess, forward under ``torch.inference_mode``, write cache chunks atomically.
Baseline = ``model(x)`` on tensors preprocessed beforehand, in the same batch size.
Goal (issue 3, section 6): pipeline throughput >= 0.9 x baseline.

    python benchmarks/bench_embed.py [--frames 512] [--size 128] [--batch 64] [--reps 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=512)
    ap.add_argument("--size", type=int, default=128, help="frame side, pixels")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--encoders", default="resnet18-random,pixels")
    args = ap.parse_args()

    import torch

    from realgap.data import FrameSet
    from realgap.data.synthetic import write_synthetic
    from realgap.encoders import create_encoder

    tmp = Path(tempfile.mkdtemp(prefix="bench_embed_"))
    per_ep = 32
    n_eps = max(1, args.frames // (2 * per_ep))
    fs = FrameSet.open(write_synthetic(tmp / "fs", n_episodes=n_eps, n_frames=per_ep,
                                       size=args.size, rng=0))
    n = len(fs)
    print(f"frames={n} size={args.size}x{args.size} batch={args.batch} reps={args.reps} "
          f"torch_threads={torch.get_num_threads()}")
    for name in args.encoders.split(","):
        bench_one(create_encoder(name), fs, tmp / f"cache_{name}", args.batch, args.reps)


def bench_one(enc: object, fs: object, cache: Path, batch: int, reps: int) -> None:
    """Print bare-forward vs pipeline throughput of one encoder."""
    import torch

    from realgap.encoders import embed_frameset

    n = len(fs)
    images = fs.images("head")
    with torch.inference_mode():
        tensors = [enc.preprocess(images[s : s + batch]) for s in range(0, n, batch)]

    def bare() -> None:
        with torch.inference_mode():
            for x in tensors:
                enc.forward(x)

    def pipeline(rep: int) -> np.ndarray:
        return embed_frameset(enc, fs, "head", cache_dir=cache / str(rep), batch_size=batch,
                              progress=False)

    bare()
    pipeline(-1)  # warm-up
    t_bare, t_pipe = [], []
    for rep in range(reps):  # interleaved so machine load hits both alike
        t0 = time.perf_counter()
        bare()
        t_bare.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        pipeline(rep)
        t_pipe.append(time.perf_counter() - t0)
    tb, tp = statistics.median(t_bare), statistics.median(t_pipe)
    t0 = time.perf_counter()
    pipeline(0)  # everything cached now
    t_hit = time.perf_counter() - t0
    print(f"{enc.name:16s} bare forward {n / tb:8.1f} frames/s | pipeline {n / tp:8.1f} frames/s "
          f"| ratio {tb / tp:.3f} (goal >= 0.9) | cached reload {n / t_hit:9.1f} frames/s")

if __name__ == "__main__":
    main()
