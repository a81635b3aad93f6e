"""Export a FrameSet as a LeRobot dataset: ``export_lerobot(src, out, fps=...)``.

Layout written: LeRobot **codebase v3.0** as written by lerobot 0.4 (``LeRobotDataset``
with ``codebase_version = "v3.0"``, ``lerobot/datasets/utils.py`` path constants)::

    OUT/
      meta/info.json        codebase_version "v3.0", fps, chunks_size 1000, total_*,
                            data_path "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
                            video_path null (frames are images), features
      meta/stats.json       per feature: min, max, mean, std, count (images: per channel,
                            shape (3, 1, 1), in [0, 1] as lerobot normalises them)
      meta/tasks.parquet    index "task" (the task string), column task_index
      meta/episodes/chunk-000/file-000.parquet
                            episode_index, tasks, length, data/chunk_index, data/file_index,
                            dataset_from_index, dataset_to_index, meta/episodes/chunk_index,
                            meta/episodes/file_index
      data/chunk-000/file-000.parquet
                            observation.images.<camera> (struct {bytes: PNG, path: null}),
                            observation.state (when the set has states), action,
                            timestamp (step / fps), frame_index, episode_index, index,
                            task_index

Frames are stored as PNG images (``dtype: "image"``), so exporting then converting back
gives the same pixels exactly; actions and states are float32 as in the FrameSet. Every
episode of the set (each domain, task, episode in canonical order) becomes one LeRobot
episode numbered 0, 1, ... in that order; the task string is the FrameSet task. One
data file holds all frames, one Parquet row group per episode written as it is encoded
(memory: one episode's frames), (LeRobot splits files at ``data_files_size_in_mb``; a reader
follows the episodes' ``data/file_index`` either way). Domain labels and factors have
no place in LeRobot's schema and are not exported (select a domain with ``domain``).

Not checked against lerobot's own loader here (lerobot is not installed in this
environment): the layout follows lerobot 0.4's source and realgap's v3.0 reader reads it.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from realgap.data.frameset import FrameSet
from realgap.errors import ConfigError

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"


def _png(frame: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="PNG")
    return buf.getvalue()


def _vector_stats(x: np.ndarray) -> dict[str, Any]:
    return {"min": x.min(0).tolist(), "max": x.max(0).tolist(), "mean": x.mean(0).tolist(),
            "std": x.std(0).tolist(), "count": [len(x)]}


def export_lerobot(src: str | os.PathLike[str] | FrameSet, out: str | os.PathLike[str],
                   fps: float = 10.0, domain: str | None = None,
                   robot_type: str | None = None) -> Path:
    """Write the FrameSet ``src`` (or its ``domain``) as a LeRobot v3.0 dataset at ``out``.

    Args:
        src: FrameSet directory or an open FrameSet.
        out: new, empty or absent directory.
        fps: frames per second written to ``info.json``; ``timestamp = step / fps``.
        domain: export only this domain (default: every frame).
        robot_type: ``info.json`` ``robot_type`` (default null).

    Returns:
        ``out``.

    Raises:
        ConfigError: ``out`` is not empty, ``fps`` not positive, or ``domain`` absent.
    """
    fs = src if isinstance(src, FrameSet) else FrameSet.open(src)
    out_p = Path(out)
    if out_p.exists() and (not out_p.is_dir() or any(out_p.iterdir())):
        raise ConfigError(f"{out_p}: --out exists and is not an empty directory; choose a new one")
    if not (np.isfinite(fps) and fps > 0):
        raise ConfigError(f"--fps: got {fps}; pass a positive number of frames per second")
    if domain is not None:
        if domain not in fs.domains:
            raise ConfigError(f"--domain {domain!r}: not in {fs.root} (domains: {fs.domains})")
        fs = fs.select(domain=domain)
    if len(fs) == 0:
        raise ConfigError(f"{fs.root}: no frames to export; pick a set or --domain with frames")
    m = fs.manifest
    groups = fs.episodes()
    ep_ids = list(dict.fromkeys(groups.tolist()))  # canonical order
    ep_of = {g: i for i, g in enumerate(ep_ids)}
    tasks = list(dict.fromkeys(m["task"].astype(str)))
    task_of = {t: i for i, t in enumerate(tasks)}
    actions, states = fs.actions().astype(np.float32), fs.states().astype(np.float32)
    n, a_dim, s_dim = len(fs), actions.shape[1], states.shape[1]
    ep_index = np.array([ep_of[g] for g in groups.tolist()], dtype=np.int64)
    frame_index = m["step"].to_numpy(dtype=np.int64)
    task_index = np.array([task_of[t] for t in m["task"].astype(str)], dtype=np.int64)

    img_t = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    features: dict[str, Any] = {}
    stats: dict[str, Any] = {}
    cams = fs.cameras
    for cam in cams:
        h, w, c = fs.image_shape(cam)
        features[f"observation.images.{cam}"] = {"dtype": "image", "shape": [h, w, c],
                                                 "names": ["height", "width", "channels"]}
    if s_dim:
        features["observation.state"] = {"dtype": "float32", "shape": [s_dim],
                                         "names": [f"state_{i}" for i in range(s_dim)]}
        stats["observation.state"] = _vector_stats(states.astype(np.float64))
    features["action"] = {"dtype": "float32", "shape": [a_dim],
                          "names": [f"action_{i}" for i in range(a_dim)]}
    stats["action"] = _vector_stats(actions.astype(np.float64))
    timestamp = (frame_index / fps).astype(np.float32)
    features["timestamp"] = {"dtype": "float32", "shape": [1], "names": None}
    index = np.arange(n, dtype=np.int64)
    for k, v in (("frame_index", frame_index), ("episode_index", ep_index), ("index", index),
                 ("task_index", task_index)):
        features[k] = {"dtype": "int64", "shape": [1], "names": None}
        stats[k] = _vector_stats(v.astype(np.float64)[:, None])
    stats["timestamp"] = _vector_stats(timestamp.astype(np.float64)[:, None])

    (out_p / "meta" / "episodes" / "chunk-000").mkdir(parents=True, exist_ok=True)
    (out_p / "data" / "chunk-000").mkdir(parents=True, exist_ok=True)
    # One row group per episode, written as it is encoded: memory holds one episode's
    # frames, independent of the set's size.
    acc = {cam: [np.zeros(3), np.zeros(3), np.full(3, 255.0), np.zeros(3)] for cam in cams}
    writer: pq.ParquetWriter | None = None
    try:
        for e in range(len(ep_ids)):
            idx = np.flatnonzero(ep_index == e)
            cols: dict[str, pa.Array] = {}
            for cam in cams:
                frames = fs.images(cam, idx)
                cols[f"observation.images.{cam}"] = pa.array(
                    [{"bytes": _png(f), "path": None} for f in frames], img_t)
                x = frames.reshape(-1, 3).astype(np.float64)
                a = acc[cam]
                a[0] += x.sum(0)
                a[1] += (x * x).sum(0)
                a[2], a[3] = np.minimum(a[2], x.min(0)), np.maximum(a[3], x.max(0))
            if s_dim:
                cols["observation.state"] = pa.array(list(states[idx]), pa.list_(pa.float32(), s_dim))
            cols["action"] = pa.array(list(actions[idx]), pa.list_(pa.float32(), a_dim))
            cols["timestamp"] = pa.array(timestamp[idx], pa.float32())
            for k, v in (("frame_index", frame_index), ("episode_index", ep_index),
                         ("index", index), ("task_index", task_index)):
                cols[k] = pa.array(v[idx], pa.int64())
            table = pa.table(cols)
            if writer is None:
                writer = pq.ParquetWriter(out_p / DATA_PATH.format(chunk_index=0, file_index=0),
                                          table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    for cam in cams:
        s1, s2, lo, hi = acc[cam]
        h, w, _ = fs.image_shape(cam)
        count = n * h * w
        mean = s1 / count
        std = np.sqrt(np.maximum(s2 / count - mean**2, 0.0))
        key = f"observation.images.{cam}"
        stats[key] = {k: (v / 255.0).reshape(3, 1, 1).tolist() for k, v in
                      (("min", lo), ("max", hi), ("mean", mean), ("std", std))}
        stats[key]["count"] = [int(n)]
    rows = []
    for e in range(len(ep_ids)):
        idx = np.flatnonzero(ep_index == e)
        rows.append({"episode_index": e, "tasks": [tasks[int(task_index[idx[0]])]],
                     "length": len(idx), "data/chunk_index": 0, "data/file_index": 0,
                     "dataset_from_index": int(idx[0]), "dataset_to_index": int(idx[-1]) + 1,
                     "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
    pd.DataFrame(rows).to_parquet(out_p / "meta/episodes/chunk-000/file-000.parquet", index=False)
    pd.DataFrame({"task_index": np.arange(len(tasks), dtype=np.int64)},
                 index=pd.Index(tasks, name="task")).to_parquet(out_p / "meta/tasks.parquet")
    info = {"codebase_version": CODEBASE_VERSION, "robot_type": robot_type,
            "total_episodes": len(ep_ids), "total_frames": int(n), "total_tasks": len(tasks),
            "chunks_size": 1000, "data_files_size_in_mb": 100, "video_files_size_in_mb": 500,
            "fps": int(fps) if float(fps).is_integer() else fps, "splits": {"train": f"0:{len(ep_ids)}"}, "data_path": DATA_PATH,
            "video_path": None, "features": features}
    (out_p / "meta" / "info.json").write_text(json.dumps(info, indent=4))
    (out_p / "meta" / "stats.json").write_text(json.dumps(stats, indent=4))
    return out_p
