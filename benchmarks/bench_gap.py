"""Benchmark of the main job: `realgap demo` from scratch, stage by stage, and the cost of a
saliency map against its floor (one bare forward + backward of the same network).

    python benchmarks/bench_gap.py [--keep DIR]

Prints wall times; nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def bench_demo(out: Path) -> None:
    from realgap.jobs.demo import DemoConfig, run_demo

    t = time.perf_counter()
    res = run_demo(out, DemoConfig(progress=False))
    total = time.perf_counter() - t
    print(f"demo from scratch         {total:7.1f} s  (goal < 600 s)")
    for stage, sec in sorted(res.timings.items(), key=lambda kv: -kv[1]):
        print(f"  {stage:32s} {sec:7.1f} s")
    t = time.perf_counter()
    run_demo(out, DemoConfig(progress=False))
    print(f"demo rerun (frames, BC weights and embeddings cached) {time.perf_counter() - t:7.1f} s")


def bench_saliency(n: int = 16, reps: int = 3) -> None:
    import torch

    from realgap.encoders import create_encoder
    from realgap.explain import fit_action_probe, saliency_maps

    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (n, 96, 96, 3), dtype=np.uint8)
    enc = create_encoder("resnet18-random")
    emb = enc.embed(imgs)
    probe = fit_action_probe(emb, rng.normal(size=(n, 3)))
    saliency_maps(enc, imgs[:2], probe)  # warm-up: imports, layer discovery

    def bare() -> None:
        x = enc.preprocess(imgs).requires_grad_(True)
        with torch.enable_grad():
            enc.forward(x).norm(dim=1).sum().backward()

    bare()
    tb = min(_timed(bare) for _ in range(reps))
    ts = min(_timed(lambda: saliency_maps(enc, imgs, probe, batch_size=n)) for _ in range(reps))
    print(f"saliency resnet18 {n} frames 96 px: grad-cam {ts * 1e3:7.0f} ms, "
          f"bare forward+backward {tb * 1e3:7.0f} ms, ratio {ts / tb:4.2f}")


def _timed(fn: object) -> float:
    t = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--keep", default=None, help="write the demo here instead of a temp dir")
    args = ap.parse_args()
    bench_saliency()
    if args.keep:
        bench_demo(Path(args.keep))
    else:
        with tempfile.TemporaryDirectory() as d:
            bench_demo(Path(d) / "demo")


if __name__ == "__main__":
    main()
