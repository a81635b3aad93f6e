"""FrameSet I/O speed against baselines, in one run on the same frames.

Prints, for N frames of 128x128 RGB in episodes of 50:

- write: FrameSetWriter (Parquet manifest, per-episode .npy, BLAKE2b of every byte, fsync,
  atomic rename) vs a bare ``np.save`` per episode (no manifest, no hash, no fsync) and
  ``np.save`` + ``fsync`` (the durable part of the cost without manifest and hash);
- open: FrameSet.open for the same set, and for 1000 episodes of 10 frames with the
  consolidated manifest vs from the per-episode parts;
- sequential read (what embedding an encoder does): ``iter_images(batch_size=64)`` vs one
  contiguous memory-mapped array (the upper bound), vs a zarr v3 array chunked by 64
  frames with its default compressor (the main alternative layout);
- random batches of 64 frames: ``images(camera, idx)`` vs the contiguous array.

Usage: ``python benchmarks/bench_frameset.py [--frames 2000]``. Files go to a temp dir, so
reads are mostly served from the page cache on both sides.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from realgap.data import FrameSet, FrameSetWriter


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--episode-len", type=int, default=50)
    args = ap.parse_args()
    n, s, t_ep = args.frames, args.size, args.episode_len
    n_ep = n // t_ep
    rng = np.random.default_rng(0)
    # Smooth-ish images (not white noise) so a compressor has something to work with.
    base = rng.integers(0, 256, (t_ep, s // 8, s // 8, 3), dtype=np.uint8)
    ep_imgs = np.repeat(np.repeat(base, 8, axis=1), 8, axis=2)
    acts = rng.normal(size=(t_ep, 7)).astype(np.float32)
    mb = n * s * s * 3 / 1e6
    print(f"frames {n} ({n_ep} episodes x {t_ep}), {s}x{s}x3 uint8 = {mb:.0f} MB")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)

        def write_fs() -> None:
            with FrameSetWriter(root / "fs", source="bench") as w:
                for e in range(n_ep):
                    w.add_episode(domain="sim", task="t", episode=e, images={"head": ep_imgs},
                                  actions=acts, factors=[{"BG": e}] * t_ep)

        def write_npy() -> None:
            (root / "npy").mkdir()
            for e in range(n_ep):
                np.save(root / "npy" / f"{e}.npy", ep_imgs)

        def write_npy_sync() -> None:
            (root / "npy_sync").mkdir()
            for e in range(n_ep):
                with open(root / "npy_sync" / f"{e}.npy", "wb") as f:
                    np.save(f, ep_imgs)
                    f.flush()
                    os.fsync(f.fileno())

        tw_fs, tw_np, tw_sync = _timed(write_fs), _timed(write_npy), _timed(write_npy_sync)
        print(f"write  FrameSetWriter      {n / tw_fs:9.0f} frames/s  ({mb / tw_fs:6.0f} MB/s)")
        print(f"write  bare np.save        {n / tw_np:9.0f} frames/s  ({mb / tw_np:6.0f} MB/s)"
              f"   ratio realgap/bare {tw_np / tw_fs:.2f}")
        print(f"write  np.save + fsync     {n / tw_sync:9.0f} frames/s  ({mb / tw_sync:6.0f} MB/s)"
              f"   ratio realgap/(save+fsync) {tw_sync / tw_fs:.2f}")

        t_open = _timed(lambda: FrameSet.open(root / "fs"))
        fs = FrameSet.open(root / "fs")
        print(f"open   FrameSet.open       {t_open * 1000:9.0f} ms for {n_ep} episodes")

        flat = np.lib.format.open_memmap(root / "flat.npy", "w+", np.uint8, (n, s, s, 3))
        for e in range(n_ep):
            flat[e * t_ep : (e + 1) * t_ep] = ep_imgs
        flat.flush()
        del flat
        import zarr

        z = zarr.create_array(str(root / "z.zarr"), shape=(n, s, s, 3), chunks=(64, s, s, 3),
                              dtype="uint8")
        for e in range(n_ep):
            z[e * t_ep : (e + 1) * t_ep] = ep_imgs

        def read_fs() -> None:
            for _, b in fs.iter_images("head", 64):
                b.sum(dtype=np.uint64)

        def read_flat() -> None:
            arr = np.load(root / "flat.npy", mmap_mode="r")
            for i in range(0, n, 64):
                np.array(arr[i : i + 64]).sum(dtype=np.uint64)

        def read_zarr() -> None:
            zz = zarr.open_array(str(root / "z.zarr"), mode="r")
            for i in range(0, n, 64):
                zz[i : i + 64].sum(dtype=np.uint64)

        for name, fn in (("FrameSet.iter_images", read_fs), ("contiguous memmap", read_flat),
                         ("zarr chunks=64 zstd", read_zarr)):
            fn()  # warm the page cache / imports
            t = min(_timed(fn) for _ in range(3))
            print(f"read   {name:<20} {n / t:9.0f} frames/s  ({mb / t:6.0f} MB/s)")

        many = root / "many"
        with FrameSetWriter(many, source="bench") as w:
            for e in range(1000):
                w.add_episode(domain="sim", task="t", episode=e, images={"head": ep_imgs[:10, :8, :8]},
                              actions=acts[:10])
        t_cons = min(_timed(lambda: FrameSet.open(many).actions()) for _ in range(3))
        (many / "manifest.parquet").unlink()
        t_parts = _timed(lambda: FrameSet.open(many).actions())
        print(f"open   1000 episodes       {t_cons * 1000:9.0f} ms with the consolidated manifest, "
              f"{t_parts * 1000:.0f} ms from per-episode parts")

        idx = [np.sort(rng.choice(n, 64, replace=False)) for _ in range(50)]
        arr = np.load(root / "flat.npy", mmap_mode="r")
        t_fs = min(_timed(lambda: [fs.images("head", i) for i in idx]) for _ in range(3))
        t_flat = min(_timed(lambda: [np.array(arr[i]) for i in idx]) for _ in range(3))
        print(f"random FrameSet.images     {50 * 64 / t_fs:9.0f} frames/s")
        print(f"random contiguous memmap   {50 * 64 / t_flat:9.0f} frames/s"
              f"   ratio realgap/memmap {t_flat / t_fs:.2f}")


if __name__ == "__main__":
    main()
