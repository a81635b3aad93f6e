"""FrameSet storage (format 3): size, write and read speed, verification cost, and the memory
and size of converting a 100-episode LeRobot dataset, in one run.

Part 1, frame kinds x storage (128x128 RGB, one camera, episodes of 50 frames):

- kinds: ``sim`` (MuJoCo renders of reach-mug with background and light randomization;
  skipped without mujoco), ``camera`` (a photo panned across the frame plus sensor noise
  of sd 2 levels), ``video`` (the ``camera`` frames after H.264 at CRF 23 and decoding,
  what a LeRobot video dataset yields);
- storage: format 3 (``zstd-up``, lossless) against raw uint8 ``.npy`` (format 2), and,
  for ``video``, the H.264 file itself (what format 3 keeps for video-sourced frames);
- read: ``FrameSet.iter_images(batch_size=64)`` over the whole set (the gap job's access
  pattern), ``read1`` the first pass (it also hashes every file once), ``read`` the best
  of two more passes on freshly opened sets (decoding only), against batches of 64
  consecutive frames copied out of memory-mapped ``.npy`` files (format 2's read path
  without its checks; best of 3);
- verify: ``FrameSet.verify()`` alone, with the per-process memo cleared.

Part 2, conversion of a synthetic LeRobot v2.1 dataset (one video camera of 96x96 frames,
50 frames per episode) with 25 and 100 episodes, each in a fresh subprocess: peak Python
heap during ``convert`` (tracemalloc, numpy buffers included), peak RSS (VmHWM) after the
imports and at the end, the FrameSet's size over the source's, and time.

Usage: ``python benchmarks/bench_storage.py [--episodes 20] [--lerobot 25,100] [--skip-part1]``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from realgap.data import FrameSet, FrameSetWriter, _images

S, T_EP = 128, 50


def _camera_frames(n: int, size: int, seed: int) -> np.ndarray:
    from skimage import data
    from skimage.transform import resize

    rng = np.random.default_rng(seed)
    img = data.astronaut()
    out = []
    for t in range(n):
        y, x = 60 + (seed * 7 + t) % 150, 40 + (2 * t + seed * 11) % 200
        f = resize(img[y : y + 256, x : x + 256], (size, size), anti_aliasing=True) * 255
        out.append(np.clip(np.round(f + rng.normal(0, 2, f.shape)), 0, 255))
    return np.asarray(out, dtype=np.uint8)


def _encode_mp4(frames: np.ndarray, fps: int = 30, crf: int = 23) -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        s.options = {"crf": str(crf)}
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, fps)
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return buf.getvalue()


def _decode_mp4(blob: bytes) -> np.ndarray:
    import av

    with av.open(io.BytesIO(blob)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def _sim_frames(n: int) -> np.ndarray | None:
    try:
        from realgap import sim
    except Exception:  # noqa: BLE001 - mujoco missing: skip this kind
        return None
    env = sim.make("reach-mug", randomize=("BG", "LT"), granularity="episode", image_size=S,
                   cameras=("head",), seed=0)
    out = []
    obs, _ = env.reset(seed=0)
    expert = sim.expert_for(env)
    for t in range(n):
        if t % T_EP == 0:
            obs, _ = env.reset(seed=t)
        out.append(obs["head"])
        obs, *_ = env.step(expert(obs))
    return np.stack(out)


def _dir_size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def part1(n_eps: int, tmp: Path) -> None:
    n = n_eps * T_EP
    cam = _camera_frames(n, S, 0)
    kinds: dict[str, np.ndarray] = {}
    sim_frames = _sim_frames(n)
    if sim_frames is not None:
        kinds["sim"] = sim_frames
    kinds["camera"] = cam
    mp4s = [_encode_mp4(cam[e * T_EP : (e + 1) * T_EP]) for e in range(n_eps)]
    kinds["video"] = np.concatenate([_decode_mp4(b) for b in mp4s])
    raw = n * S * S * 3
    print(f"part 1: {n} frames ({n_eps} episodes x {T_EP}) of {S}x{S}x3 = {raw / 1e6:.1f} MB raw")
    print(f"{'kind':8s} {'stored MB':>9s} {'ratio':>6s} {'write f/s':>9s} {'read1 f/s':>9s} "
          f"{'read f/s':>9s} {'npy f/s':>9s} {'verify ms':>9s}")
    acts = np.zeros((T_EP, 2), np.float32)
    for kind, frames in kinds.items():
        root = tmp / f"fs-{kind}"
        t = time.perf_counter()
        with FrameSetWriter(root, source="bench") as w:
            for e in range(n_eps):
                w.add_episode(domain="sim", task="t", episode=e,
                              images={"head": frames[e * T_EP : (e + 1) * T_EP]}, actions=acts)
        t_write = time.perf_counter() - t
        stored = sum(f.stat().st_size for f in root.rglob("*.zst"))
        npy_dir = tmp / f"npy-{kind}"
        npy_dir.mkdir()
        for e in range(n_eps):
            np.save(npy_dir / f"{e}.npy", frames[e * T_EP : (e + 1) * T_EP])
        _images._VERIFIED.clear()
        t_read = []
        for _ in range(3):  # a new FrameSet each pass: nothing decoded is reused
            fs = FrameSet.open(root)
            t = time.perf_counter()
            for _ in fs.iter_images("head", 64):
                pass
            t_read.append(time.perf_counter() - t)
        t_npy = []
        for _ in range(3):
            t = time.perf_counter()
            maps = [np.load(npy_dir / f"{e}.npy", mmap_mode="r") for e in range(n_eps)]
            for b in range(0, n, 64):  # batches of 64 consecutive frames, as iter_images
                stop = min(b + 64, n)
                out = np.empty((stop - b, S, S, 3), np.uint8)
                for e in range(b // T_EP, (stop - 1) // T_EP + 1):
                    lo, hi = max(b, e * T_EP), min(stop, (e + 1) * T_EP)
                    out[lo - b : hi - b] = maps[e][lo - e * T_EP : hi - e * T_EP]
            t_npy.append(time.perf_counter() - t)
        _images._VERIFIED.clear()
        t = time.perf_counter()
        FrameSet.open(root).verify()
        t_verify = time.perf_counter() - t
        print(f"{kind:8s} {stored / 1e6:9.2f} {raw / stored:6.1f} {n / t_write:9.0f} "
              f"{n / t_read[0]:9.0f} {n / min(t_read[1:]):9.0f} {n / min(t_npy):9.0f} "
              f"{1e3 * t_verify:9.1f}")
    mp4_bytes = sum(len(b) for b in mp4s)
    print(f"video kept as the source H.264 (CRF 23): {mp4_bytes / 1e6:.2f} MB, ratio "
          f"{raw / mp4_bytes:.0f}x; lossless zstd-up of the decoded frames is "
          f"{sum(f.stat().st_size for f in (tmp / 'fs-video').rglob('*.zst')) / mp4_bytes:.1f}x "
          "the video's size")


def _write_lerobot(root: Path, n_eps: int, size: int = 96, fps: int = 30) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    (root / "meta").mkdir(parents=True)
    feats = {"observation.images.top": {"dtype": "video", "shape": [size, size, 3]},
             "observation.state": {"dtype": "float32", "shape": [6]},
             "action": {"dtype": "float32", "shape": [6]},
             "timestamp": {"dtype": "float32", "shape": [1]},
             "frame_index": {"dtype": "int64", "shape": [1]},
             "episode_index": {"dtype": "int64", "shape": [1]},
             "index": {"dtype": "int64", "shape": [1]},
             "task_index": {"dtype": "int64", "shape": [1]}}
    info = {"codebase_version": "v2.1", "fps": fps, "chunks_size": 1000,
            "total_episodes": n_eps, "total_frames": n_eps * T_EP,
            "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
            "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
            "features": feats}
    (root / "meta/info.json").write_text(json.dumps(info))
    (root / "meta/tasks.jsonl").write_text('{"task_index": 0, "task": "pick"}\n')
    (root / "meta/episodes.jsonl").write_text("".join(
        json.dumps({"episode_index": e, "tasks": ["pick"], "length": T_EP}) + "\n"
        for e in range(n_eps)))
    rng = np.random.default_rng(0)
    for e in range(n_eps):
        frames = _camera_frames(T_EP, size, e)
        v = root / f"videos/chunk-000/observation.images.top/episode_{e:06d}.mp4"
        v.parent.mkdir(parents=True, exist_ok=True)
        v.write_bytes(_encode_mp4(frames, fps))
        d = root / f"data/chunk-000/episode_{e:06d}.parquet"
        d.parent.mkdir(parents=True, exist_ok=True)
        vec = pa.list_(pa.float32(), 6)
        pq.write_table(pa.table({
            "observation.state": pa.array(rng.normal(size=(T_EP, 6)).tolist(), vec),
            "action": pa.array(rng.normal(size=(T_EP, 6)).tolist(), vec),
            "timestamp": pa.array(np.arange(T_EP, dtype=np.float32) / fps),
            "frame_index": pa.array(np.arange(T_EP)),
            "episode_index": pa.array(np.full(T_EP, e)),
            "index": pa.array(np.arange(T_EP) + e * T_EP),
            "task_index": pa.array(np.zeros(T_EP, np.int64)),
        }), d)


# Peak RSS from /proc (VmHWM): ru_maxrss would carry the forking parent's size over exec.
_CONVERT = """
import json, sys, time, tracemalloc
from realgap.data import convert
import av, realgap.data.readers  # imported before measuring

def hwm_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

rss0 = hwm_kb()
tracemalloc.start()
t = time.perf_counter()
fs = convert(sys.argv[1], sys.argv[2], video_storage=sys.argv[3])
dt = time.perf_counter() - t
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
print(json.dumps({"frames": len(fs), "seconds": dt, "heap_peak": peak, "rss0_kb": rss0,
                  "rss_kb": hwm_kb()}))
"""


def part2(sizes: list[int], tmp: Path) -> None:
    print("part 2: convert a synthetic LeRobot v2.1 dataset (96x96 video, 50 frames/episode)")
    print(f"{'episodes':>8s} {'storage':>8s} {'source MB':>9s} {'set MB':>7s} {'ratio':>6s} "
          f"{'heap peak MB':>12s} {'RSS MB':>7s} {'(imports)':>9s} {'s':>6s}")
    for n_eps in sizes:
        src = tmp / f"lerobot-{n_eps}"
        _write_lerobot(src, n_eps)
        for storage in ("copy", "lossless"):
            out = tmp / f"fs-lerobot-{n_eps}-{storage}"
            proc = subprocess.run([sys.executable, "-c", _CONVERT, str(src), str(out), storage],
                                  capture_output=True, text=True, check=True,
                                  env={**os.environ, "OMP_NUM_THREADS": "1"})
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            s_src, s_out = _dir_size(src), _dir_size(out)
            print(f"{n_eps:8d} {storage:>8s} {s_src / 1e6:9.2f} {s_out / 1e6:7.2f} "
                  f"{s_out / s_src:6.2f} {r['heap_peak'] / 1e6:12.1f} {r['rss_kb'] / 1e3:7.0f} "
                  f"{r['rss0_kb'] / 1e3:9.0f} {r['seconds']:6.1f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--lerobot", default="25,100")
    ap.add_argument("--skip-part1", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_part1:
            part1(args.episodes, Path(tmp))
        part2([int(x) for x in args.lerobot.split(",") if x], Path(tmp))


if __name__ == "__main__":
    main()
