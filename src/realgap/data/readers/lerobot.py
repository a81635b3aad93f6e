"""LeRobot dataset folders, codebase versions v2.0/v2.1 and v3.0 (local copies).

Common to both (``meta/info.json``)::

    {"codebase_version": "v2.1" | "v3.0", "fps": 30, "chunks_size": 1000,
     "data_path": ..., "video_path": ...,
     "features": {"observation.images.top": {"dtype": "video" | "image", "shape": [H, W, 3]},
                  "observation.state": {"dtype": "float32", "shape": [S]},
                  "action": {"dtype": "float32", "shape": [A]},
                  "episode_index", "frame_index", "timestamp", "index", "task_index": ...}}

v2.x: one Parquet file per episode, ``data_path`` =
``data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet``; one mp4 per
episode and camera, ``video_path`` =
``videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4``, frame
time = ``timestamp``; episodes listed in ``meta/episodes.jsonl``, tasks in
``meta/tasks.jsonl`` (``{"task_index", "task"}``).

v3.0: episodes concatenated in files, ``data_path`` =
``data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet`` and ``video_path`` =
``videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4``; episode metadata
in ``meta/episodes/chunk-*/file-*.parquet`` with ``episode_index``, ``data/chunk_index``,
``data/file_index``, ``videos/<key>/chunk_index``, ``videos/<key>/file_index``,
``videos/<key>/from_timestamp``; a frame lives at ``from_timestamp + timestamp`` in its
video; tasks in ``meta/tasks.parquet`` (task string as index or column, ``task_index``).

Images with ``dtype: "image"`` are Parquet structs ``{bytes, path}`` (PNG/JPEG bytes, or a
path relative to the dataset root); ``dtype: "video"`` frames are decoded with PyAV and
matched to timestamps within half a frame period. Cameras are the feature keys with the
``observation.images.`` prefix removed; actions are ``action``; states are
``observation.state`` when present.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from realgap._optional import require
from realgap.data.readers._base import (
    READERS,
    ReadEpisode,
    SourceReader,
    check_finite,
    check_images,
    pick_cameras,
)
from realgap.errors import DataError, MissingFileError

IMAGE_PREFIX = "observation.images."


def _detect(src: Path) -> bool:
    return src.is_dir() and (src / "meta" / "info.json").is_file()


def camera_name(feature_key: str) -> str:
    """``observation.images.top`` -> ``top``; ``observation.image`` -> ``observation.image``."""
    return feature_key.removeprefix(IMAGE_PREFIX)


def _read_parquet(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    if not path.is_file():
        raise MissingFileError(f"{path}: LeRobot data file not found; the dataset copy is "
                               "incomplete, download or copy it again")
    try:
        return pq.read_table(path, columns=columns).to_pandas()
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError, KeyError) as exc:
        raise DataError(f"{path}: Parquet file is truncated, corrupt or lacks columns "
                        f"({str(exc).splitlines()[0]}); download or copy it again") from exc


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON lines ({exc}); restore the file") from exc


def _tasks(root: Path, v3: bool) -> dict[int, str]:
    if v3:
        path = root / "meta" / "tasks.parquet"
        if not path.is_file():
            return {}
        df = _read_parquet(path)
        if "task" not in df.columns:
            df = df.reset_index()
            df = df.rename(columns={df.columns[0]: "task"})
        return {int(i): str(t) for i, t in zip(df["task_index"], df["task"], strict=True)}
    path = root / "meta" / "tasks.jsonl"
    return {int(r["task_index"]): str(r["task"]) for r in _read_jsonl(path)} if path.is_file() else {}


def _episodes_v2(root: Path, info: dict[str, Any]) -> list[dict[str, Any]]:
    chunks = int(info.get("chunks_size", 1000))
    path = root / "meta" / "episodes.jsonl"
    if path.is_file():
        idx = sorted(int(r["episode_index"]) for r in _read_jsonl(path))
    else:
        idx = sorted(int(p.stem.split("_")[-1]) for p in root.glob("data/chunk-*/episode_*.parquet"))
    tmpl = info.get("data_path", "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet")
    vtmpl = info.get("video_path") or ""
    eps = []
    for e in idx:
        fmt = {"episode_chunk": e // chunks, "episode_index": e}
        eps.append({"episode_index": e, "data": root / tmpl.format(**fmt),
                    "video": lambda key, fmt=fmt: (root / vtmpl.format(video_key=key, **fmt), 0.0)})
    return eps


def _episodes_v3(root: Path, info: dict[str, Any]) -> list[dict[str, Any]]:
    files = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    if not files:
        raise DataError(f"{root / 'meta' / 'episodes'}: no episode metadata files "
                        "(chunk-*/file-*.parquet); the v3.0 dataset copy is incomplete")
    meta = pd.concat([_read_parquet(p) for p in files], ignore_index=True)
    need = ["episode_index", "data/chunk_index", "data/file_index"]
    missing = [c for c in need if c not in meta.columns]
    if missing:
        raise DataError(f"{files[0]}: episode metadata lacks columns {missing}; expected the "
                        "LeRobot v3.0 layout")
    tmpl = info.get("data_path", "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet")
    vtmpl = info.get("video_path") or ""
    eps = []
    for r in meta.sort_values("episode_index").to_dict("records"):
        def video(key: str, r: dict[str, Any] = r) -> tuple[Path, float]:
            try:
                fmt = {"chunk_index": int(r[f"videos/{key}/chunk_index"]),
                       "file_index": int(r[f"videos/{key}/file_index"])}
                t0 = float(r[f"videos/{key}/from_timestamp"])
            except KeyError as exc:
                raise DataError(f"{root / 'meta' / 'episodes'}: episode {r['episode_index']} lacks "
                                f"{exc} for video {key!r}; the metadata is incomplete") from exc
            return root / vtmpl.format(video_key=key, **fmt), t0

        data = root / tmpl.format(chunk_index=int(r["data/chunk_index"]),
                                  file_index=int(r["data/file_index"]))
        eps.append({"episode_index": int(r["episode_index"]), "data": data, "video": video})
    return eps


def decode_video(path: Path, times: np.ndarray, fps: float) -> np.ndarray:
    """Frames of ``path`` at ``times`` (seconds): uint8 ``(len(times), H, W, 3)``.

    Seeks to the first time and decodes forward; each requested time takes the decoded
    frame nearest to it, which must lie within half a frame period (``0.5 / fps`` s).
    """
    av = require("av")
    if not path.is_file():
        raise MissingFileError(f"{path}: video file not found; the dataset copy is incomplete")
    tol = 0.5 / fps + 1e-4
    frames: list[np.ndarray] = []
    stamps: list[float] = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            t0, t1 = float(times.min()), float(times.max())
            if t0 > tol and stream.time_base is not None:
                container.seek(int(max(t0 - 1.0, 0.0) / stream.time_base), stream=stream)
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else len(stamps) / fps
                if t < t0 - tol:
                    continue
                if t > t1 + tol:
                    break
                frames.append(frame.to_ndarray(format="rgb24"))
                stamps.append(t)
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise DataError(f"{path}: video cannot be decoded ({exc}); the file is truncated or "
                        "corrupt, copy it again") from exc
    if not frames:
        raise DataError(f"{path}: no video frames between {times.min():.3f}s and "
                        f"{times.max():.3f}s; check the episode's timestamps")
    st = np.asarray(stamps)
    nearest = np.abs(st[None, :] - times[:, None]).argmin(axis=1)
    err = np.abs(st[nearest] - times)
    if err.max() > tol:
        k = int(err.argmax())
        raise DataError(f"{path}: no frame within {tol:.4f}s of t={times[k]:.4f}s (nearest "
                        f"{st[nearest[k]]:.4f}s); timestamps and video disagree")
    return np.stack([frames[i] for i in nearest])


def _decode_image_column(root: Path, path: Path, values: Sequence[Any], key: str) -> np.ndarray:
    from PIL import Image

    out = []
    for i, v in enumerate(values):
        try:
            if isinstance(v, dict) and v.get("bytes") is not None:
                im = Image.open(io.BytesIO(v["bytes"]))
            elif isinstance(v, dict) and v.get("path"):
                im = Image.open(root / v["path"])
            else:
                raise OSError(f"row {i} holds no image bytes or path")
            out.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
        except OSError as exc:
            raise DataError(f"{path}: image {key!r} of row {i} cannot be decoded ({exc}); "
                            "copy the dataset again") from exc
    return check_images(path, key, np.stack(out))


def open_lerobot(src: Path, *, task: str | None, cameras: Sequence[str] | None) -> SourceReader:
    """Check a LeRobot dataset folder (see the module docstring) and return its reader."""
    info_path = src / "meta" / "info.json"
    try:
        info = json.loads(info_path.read_text())
    except FileNotFoundError as exc:
        raise MissingFileError(f"{info_path}: not found; a LeRobot dataset needs meta/info.json") from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"{info_path}: not valid JSON ({exc}); restore the file") from exc
    version = str(info.get("codebase_version", ""))
    if not version.startswith(("v2", "v3")):
        raise DataError(f"{info_path}: codebase_version {version!r} is not supported (v2.x or "
                        "v3.0); convert it with LeRobot's conversion script first")
    v3 = version.startswith("v3")
    feats: dict[str, Any] = info.get("features") or {}
    if "action" not in feats:
        raise DataError(f"{info_path}: features lack 'action' (got {sorted(feats)}); realgap "
                        "needs actions")
    visual = {camera_name(k): k for k, f in feats.items() if f.get("dtype") in ("video", "image")}
    cams = pick_cameras(info_path, list(visual), cameras)
    fps = float(info.get("fps") or 0) or 30.0
    tasks = _tasks(src, v3)
    eps = _episodes_v3(src, info) if v3 else _episodes_v2(src, info)
    has_state = "observation.state" in feats
    cols = ["episode_index", "frame_index", "timestamp", "action"]
    cols += ["observation.state"] * has_state + ["task_index"] * ("task_index" in feats)
    # Up-front pass over the low-dim columns: files present and readable, no NaN actions
    # or states.
    tables: dict[Path, pd.DataFrame] = {}
    for ep in eps:
        if ep["data"] not in tables:
            tables[ep["data"]] = _read_parquet(ep["data"], cols)
        df = tables[ep["data"]]
        rows = df[df["episode_index"] == ep["episode_index"]]
        if rows.empty:
            raise DataError(f"{ep['data']}: no rows of episode {ep['episode_index']}; the data "
                            "and episode metadata disagree")
        check_finite(ep["data"], "action", np.stack(rows["action"].to_numpy()),
                     f" of episode {ep['episode_index']}")
        if has_state:
            check_finite(ep["data"], "observation.state",
                         np.stack(rows["observation.state"].to_numpy()),
                         f" of episode {ep['episode_index']}")
        for c in cams:
            if feats[visual[c]]["dtype"] == "video" and not ep["video"](visual[c])[0].is_file():
                raise MissingFileError(f"{ep['video'](visual[c])[0]}: video file not found; the "
                                       "dataset copy is incomplete")

    def episodes() -> Iterator[ReadEpisode]:
        image_tables: dict[str, tuple[Path, pd.DataFrame]] = {}
        for ep in eps:
            e = ep["episode_index"]
            df = tables[ep["data"]]
            rows = df[df["episode_index"] == e].sort_values("frame_index")
            imgs: dict[str, np.ndarray] = {}
            for c in cams:
                key = visual[c]
                if feats[key]["dtype"] == "video":
                    vpath, t0 = ep["video"](key)
                    ts = rows["timestamp"].to_numpy(dtype=float) + t0
                    imgs[c] = check_images(vpath, key, decode_video(vpath, ts, fps))
                else:
                    if image_tables.get(key, (None,))[0] != ep["data"]:  # one file at a time
                        image_tables[key] = (ep["data"], _read_parquet(
                            ep["data"], ["episode_index", "frame_index", key]))
                    full = image_tables[key][1]
                    sel = full[full["episode_index"] == e].sort_values("frame_index")
                    imgs[c] = _decode_image_column(src, ep["data"], sel[key].tolist(), key)
            acts = np.stack(rows["action"].to_numpy()).astype(np.float64)
            states = (np.stack(rows["observation.state"].to_numpy()).astype(np.float64)
                      if has_state else np.zeros((len(rows), 0)))
            tname = task
            if tname is None and "task_index" in rows.columns:
                tname = tasks.get(int(rows["task_index"].iloc[0]))
            yield ReadEpisode(
                task=tname or src.name, episode=e, images=imgs, actions=acts,
                states=check_finite(ep["data"], "observation.state", states, f" of episode {e}"),
                source=f"lerobot-{version}:{src.resolve()}#episode_index={e}",
            )

    return SourceReader(source=f"lerobot-{version}:{src.resolve()}", n_episodes=len(eps),
                        episodes=episodes, cameras=cams)


READERS.add("lerobot", open_lerobot, detect=_detect)
