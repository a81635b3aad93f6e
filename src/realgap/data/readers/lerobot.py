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
``observation.images.`` prefix removed; actions are ``action`` (another feature with
``action_key``, e.g. ``actions``); states are ``observation.state`` when present (other
features, concatenated in the given order, with ``state_keys``, e.g. ``state``).

The dataset is untrusted: every path it names (``data_path``/``video_path`` templates,
image ``path`` fields, symlinks) must stay inside its root, templates may use only the
fields above, and every value is checked before use (``fps`` a positive number,
``chunks_size`` a positive integer, indices integers >= 0, timestamps finite, action and
state lists numeric and of one length). Each fault is one :class:`DataError` naming the
file.
"""

from __future__ import annotations

import json
import math
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
    VideoFrames,
    check_episodes,
    check_finite,
    check_images,
    decode_image,
    format_path,
    inside_root,
    pick_cameras,
    read_json,
)
from realgap.errors import ConfigError, DataError, MissingFileError

IMAGE_PREFIX = "observation.images."
V2_DATA_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
V3_DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
#: Indices are stored as int64 in a FrameSet manifest.
MAX_INDEX = 2**63 - 1
_ARROW_ERRORS = (pa.ArrowException, OSError, KeyError, ValueError, TypeError)

#: One episode before decoding: its data file, episode index and video lookup.
Episode = dict[str, Any]


def _detect(src: Path) -> bool:
    return src.is_dir() and (src / "meta" / "info.json").is_file()


def camera_name(feature_key: str) -> str:
    """``observation.images.top`` -> ``top``; ``observation.image`` -> ``observation.image``."""
    return feature_key.removeprefix(IMAGE_PREFIX)


def _json_kind(x: Any) -> str:
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             type(None): "null", int: "a number", float: "a number"}
    return kinds.get(type(x), type(x).__name__)


def _read_parquet(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    if not path.is_file():
        raise MissingFileError(f"{path}: LeRobot data file not found; the dataset copy is "
                               "incomplete, download or copy it again")
    try:
        return pq.read_table(path, columns=columns).to_pandas()
    except _ARROW_ERRORS as exc:
        raise DataError(f"{path}: Parquet file is truncated, corrupt or lacks columns "
                        f"({str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__}); "
                        "download or copy it again") from exc


def _parquet_columns(path: Path) -> list[str]:
    if not path.is_file():
        raise MissingFileError(f"{path}: LeRobot data file not found; the dataset copy is "
                               "incomplete, download or copy it again")
    try:
        return list(pq.read_schema(path).names)
    except _ARROW_ERRORS as exc:
        raise DataError(f"{path}: Parquet file is truncated or corrupt "
                        f"({str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__}); "
                        "download or copy it again") from exc


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSON-lines file."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: is not UTF-8 text ({exc}); restore the file") from exc
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise DataError(f"{path}: line {n} is not valid JSON ({str(exc)[:120]}); restore "
                            "the file") from exc
        if not isinstance(row, dict):
            raise DataError(f"{path}: line {n} is not a JSON object (it is {_json_kind(row)}); "
                            "restore the file")
        rows.append((n, row))
    return rows


def _field(path: Path, row: dict[str, Any], key: str, line: int) -> Any:
    if key not in row:
        raise DataError(f"{path}: line {line} lacks {key!r}; every line needs it, restore the file")
    return row[key]


def _index(value: Any, file: Path, what: str, where: str = "") -> int:
    """``value`` as an int in [0, 2^63); integral floats (Parquet may store them) pass."""
    integral = (isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
                or isinstance(value, (float, np.floating)) and math.isfinite(value)
                and float(value).is_integer())
    v = int(value) if integral else None
    if v is None or not 0 <= v <= MAX_INDEX:
        raise DataError(f"{file}: {what} {value!r}{where} must be an integer >= 0; restore the "
                        "dataset's metadata")
    return v


def _time(value: Any, file: Path, what: str, where: str = "") -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not math.isfinite(float(value)):
        raise DataError(f"{file}: {what} {value!r}{where} must be a finite time in seconds; "
                        "restore the dataset's metadata")
    return float(value)


def _vectors(path: Path, what: str, values: Sequence[Any], where: str) -> np.ndarray:
    """One numeric vector per frame (Parquet lists or scalars) as float64 ``(T, D)``."""
    rows = []
    for i, v in enumerate(values):
        if v is None:
            raise DataError(f"{path}: {what}{where} has an empty value at row {i}; every frame "
                            "needs one")
        try:
            rows.append(np.asarray(v, dtype=np.float64).reshape(-1))
        except (TypeError, ValueError, OverflowError) as exc:
            raise DataError(f"{path}: {what}{where} is not numeric (row {i}: {str(v)[:40]!r}); "
                            "store lists of numbers") from exc
    lengths = sorted({len(r) for r in rows})
    if len(lengths) > 1:
        raise DataError(f"{path}: {what}{where} has vectors of lengths {lengths}; every frame "
                        "needs the same size")
    return check_finite(path, what, np.stack(rows) if rows else np.zeros((0, 0)), where)


def _scalars(path: Path, what: str, values: Sequence[Any], where: str) -> np.ndarray:
    """One finite number per frame as float64 ``(T,)``."""
    x = _vectors(path, what, values, where)
    if x.shape[1] != 1:
        raise DataError(f"{path}: {what}{where} holds {x.shape[1]} numbers per frame, expected one")
    return x[:, 0]


def _episode_column(path: Path, df: pd.DataFrame) -> pd.Series:
    """The ``episode_index`` column, checked to hold integers (rows are selected by it)."""
    col = df["episode_index"]
    if not pd.api.types.is_integer_dtype(col):
        raise DataError(f"{path}: column 'episode_index' is {col.dtype}, expected integers; "
                        "download or copy the dataset again")
    return col


def _tasks(root: Path, v3: bool) -> dict[int, str]:
    rel = "meta/tasks.parquet" if v3 else "meta/tasks.jsonl"
    path = root / rel
    if not path.is_file():
        return {}
    inside_root(root, rel, path, "file")
    if v3:
        df = _read_parquet(path)
        if "task" not in df.columns:
            df = df.reset_index()
            df = df.rename(columns={df.columns[0]: "task"})
        if "task_index" not in df.columns:
            raise DataError(f"{path}: lacks 'task_index'; restore the file")
        return {_index(i, path, "task_index"): str(t)
                for i, t in zip(df["task_index"], df["task"], strict=True)}
    return {_index(_field(path, r, "task_index", n), path, "task_index", f" on line {n}"):
            str(_field(path, r, "task", n)) for n, r in _read_jsonl(path)}


def _no_repeats(path: Path, idx: list[int]) -> None:
    seen: set[int] = set()
    for e in idx:
        if e in seen:
            raise DataError(f"{path}: episode {e} is listed twice; restore the episode metadata")
        seen.add(e)


def _episodes_v2(root: Path, info_path: Path, info: dict[str, Any]) -> list[Episode]:
    chunks = info.get("chunks_size", 1000)
    if isinstance(chunks, bool) or not isinstance(chunks, int) or chunks <= 0:
        raise DataError(f"{info_path}: chunks_size {chunks!r} must be a positive integer (episodes "
                        "per chunk folder, 1000 in LeRobot); restore it")
    path = root / "meta" / "episodes.jsonl"
    if path.is_file():
        inside_root(root, "meta/episodes.jsonl", path, "file")
        idx = [_index(_field(path, r, "episode_index", n), path, "episode_index", f" on line {n}")
               for n, r in _read_jsonl(path)]
    else:
        idx = []
        for p in root.glob("data/chunk-*/episode_*.parquet"):
            digits = p.stem.rpartition("_")[2]
            if not digits.isdigit():
                raise DataError(f"{p}: file name does not end in an episode number; rename it "
                                "episode_NNNNNN.parquet or add meta/episodes.jsonl")
            idx.append(int(digits))
    _no_repeats(path, idx)
    tmpl = info.get("data_path", V2_DATA_PATH)
    eps = []
    for e in sorted(idx):
        fields = {"episode_chunk": e // chunks, "episode_index": e}
        data = inside_root(root, format_path(tmpl, fields, info_path, "data_path"), info_path,
                           "data path")

        def video(key: str, fields: dict[str, int] = fields) -> tuple[Path, float]:
            rel = format_path(info["video_path"], {**fields, "video_key": key}, info_path,
                              "video_path")
            return inside_root(root, rel, info_path, "video path"), 0.0

        eps.append({"episode_index": e, "data": data, "video": video})
    return eps


def _episodes_v3(root: Path, info_path: Path, info: dict[str, Any]) -> list[Episode]:
    meta_dir = root / "meta" / "episodes"
    files = sorted(meta_dir.glob("chunk-*/file-*.parquet"))
    if not files:
        raise DataError(f"{meta_dir}: no episode metadata files (chunk-*/file-*.parquet); the "
                        "v3.0 dataset copy is incomplete")
    need = ["episode_index", "data/chunk_index", "data/file_index"]
    records: list[tuple[int, Path, dict[str, Any]]] = []
    for p in files:
        inside_root(root, p.relative_to(root), p, "file")
        meta = _read_parquet(p)
        missing = [c for c in need if c not in meta.columns]
        if missing:
            raise DataError(f"{p}: episode metadata lacks columns {missing}; expected the "
                            "LeRobot v3.0 layout")
        records += [(_index(r["episode_index"], p, "episode_index"), p, r)
                    for r in meta.to_dict("records")]
    _no_repeats(meta_dir, [e for e, _, _ in records])
    tmpl = info.get("data_path", V3_DATA_PATH)
    eps = []
    for e, p, r in sorted(records, key=lambda x: x[0]):
        where = f" of episode {e}"
        fields = {"chunk_index": _index(r["data/chunk_index"], p, "data/chunk_index", where),
                  "file_index": _index(r["data/file_index"], p, "data/file_index", where)}
        data = inside_root(root, format_path(tmpl, fields, info_path, "data_path"), info_path,
                           "data path")

        def video(key: str, r: dict[str, Any] = r, p: Path = p, where: str = where) -> tuple[Path, float]:
            cols = [f"videos/{key}/{c}" for c in ("chunk_index", "file_index", "from_timestamp")]
            absent = [c for c in cols if c not in r]
            if absent:
                raise DataError(f"{p}: lacks {absent}{where}; the metadata is incomplete")
            fields = {"chunk_index": _index(r[cols[0]], p, cols[0], where),
                      "file_index": _index(r[cols[1]], p, cols[1], where), "video_key": key}
            rel = format_path(info["video_path"], fields, info_path, "video_path")
            return (inside_root(root, rel, info_path, "video path"),
                    _time(r[cols[2]], p, cols[2], where))

        eps.append({"episode_index": e, "data": data, "video": video})
    return eps


_VIDEO_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, EOFError, OverflowError)


def _av_message(exc: BaseException) -> str:
    """FFmpeg's reason without the file name PyAV appends (the message names it first)."""
    return str(getattr(exc, "strerror", None) or exc).splitlines()[0][:160]


def _av_errors() -> tuple[type[BaseException], ...]:
    av = require("av")
    return (av.error.FFmpegError, *_VIDEO_ERRORS)


def probe_video(path: Path) -> None:
    """Check that ``path`` opens and its first video frame decodes (a cheap up-front check)."""
    av = require("av")
    if not path.is_file():
        raise MissingFileError(f"{path}: video file not found; the dataset copy is incomplete")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(f"{path}: video cannot be decoded (no video stream); copy it again")
            next(iter(container.decode(container.streams.video[0])), None)
    except _av_errors() as exc:
        raise DataError(f"{path}: video cannot be decoded ({_av_message(exc)}); the file is "
                        "truncated or corrupt, copy it again") from exc


def decode_video(path: Path, times: np.ndarray, fps: float) -> np.ndarray:
    """Frames of ``path`` at ``times`` (seconds, finite): uint8 ``(len(times), H, W, 3)``.

    Seeks to the first time and decodes forward; each requested time takes the decoded
    frame nearest to it, which must lie within half a frame period (``0.5 / fps`` s).
    """
    av = require("av")
    if not path.is_file():
        raise MissingFileError(f"{path}: video file not found; the dataset copy is incomplete")
    if not np.isfinite(times).all():  # NaN compares false everywhere: every frame would match
        raise DataError(f"{path}: frame times include NaN/inf; check the episode's timestamps")
    tol = 0.5 / fps + 1e-4
    frames: list[np.ndarray] = []
    stamps: list[float] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(f"{path}: video cannot be decoded (no video stream); copy it again")
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
    except _av_errors() as exc:
        raise DataError(f"{path}: video cannot be decoded ({_av_message(exc)}); the file is "
                        "truncated or corrupt, copy it again") from exc
    if not frames:
        raise DataError(f"{path}: no video frames between {times.min():.3f}s and "
                        f"{times.max():.3f}s; check the episode's timestamps")
    if len({f.shape for f in frames}) > 1:
        raise DataError(f"{path}: the video changes frame size mid-stream "
                        f"({sorted({f.shape[:2] for f in frames})}); re-encode it at one size")
    st = np.asarray(stamps)
    nearest = np.abs(st[None, :] - times[:, None]).argmin(axis=1)
    err = np.abs(st[nearest] - times)
    if not err.max() <= tol:
        k = int(np.nanargmax(err)) if np.isfinite(err).any() else 0
        raise DataError(f"{path}: no frame within {tol:.4f}s of t={times[k]:.4f}s (nearest "
                        f"{st[nearest[k]]:.4f}s); timestamps and video disagree")
    return np.stack([frames[i] for i in nearest])


def _decode_image_column(root: Path, path: Path, values: Sequence[Any], key: str) -> np.ndarray:
    out = []
    for i, v in enumerate(values):
        what = f"image {key!r} of row {i}"
        if isinstance(v, dict) and isinstance(v.get("bytes"), bytes) and v["bytes"]:
            out.append(decode_image(v["bytes"], path, what))
        elif isinstance(v, dict) and isinstance(v.get("path"), str) and v["path"]:
            p = inside_root(root, v["path"], path, "image path")
            if not p.is_file():
                raise MissingFileError(f"{path}: {what} names {v['path']!r}, which is not a file "
                                       "in the dataset; copy the dataset again")
            out.append(decode_image(p, path, what))
        else:
            raise DataError(f"{path}: {what} holds no image bytes or path; copy the dataset again")
        if out[-1].shape != out[0].shape:
            raise DataError(f"{path}: {what} is {out[-1].shape[:2]}, row 0 is {out[0].shape[:2]}; "
                            "images of mixed shapes: resize them to one size per camera")
    if not out:
        return np.zeros((0, 1, 1, 3), np.uint8)
    return check_images(path, key, np.stack(out))


def _check_image_paths(root: Path, path: Path, key: str) -> None:
    """Every ``path`` field of the image column ``key`` names a file inside ``root``.

    Reads only that leaf of the struct column (not the image bytes), so the up-front pass
    stays cheap.
    """
    import pyarrow.compute as pc
    import pyarrow.dataset as pads

    try:
        field = pq.read_schema(path).field(key).type
        if not (pa.types.is_struct(field) and field.get_field_index("path") >= 0):
            return
        names = pads.dataset(path, format="parquet").to_table(
            columns={"p": pc.field(key, "path")}).column("p").to_pylist()
    except _ARROW_ERRORS as exc:
        raise DataError(f"{path}: image column {key!r} cannot be read "
                        f"({str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__}); "
                        "download or copy it again") from exc
    for i, rel in enumerate(names):
        if rel:
            p = inside_root(root, rel, path, "image path")
            if not p.is_file():
                raise MissingFileError(f"{path}: image {key!r} of row {i} names {rel!r}, which is "
                                       "not a file in the dataset; copy the dataset again")


def _read_info(src: Path) -> tuple[Path, dict[str, Any]]:
    info_path = src / "meta" / "info.json"
    if not info_path.is_file():
        raise MissingFileError(f"{info_path}: not found; a LeRobot dataset needs meta/info.json")
    inside_root(src, "meta/info.json", info_path, "file")
    info = read_json(info_path)
    if not isinstance(info, dict):
        raise DataError(f"{info_path}: holds {_json_kind(info)}, expected a JSON object "
                        "with codebase_version, fps and features; restore the file")
    version = info.get("codebase_version")
    if not isinstance(version, str) or not version.startswith(("v2", "v3")):
        raise DataError(f"{info_path}: codebase_version {version!r} is not supported (v2.x or "
                        "v3.0); convert it with LeRobot's conversion script first")
    feats = info.get("features")
    if not isinstance(feats, dict):
        raise DataError(f"{info_path}: features is not an object (it is {_json_kind(feats)}); "
                        "restore the file")
    for k, f in feats.items():
        if not isinstance(f, dict):
            raise DataError(f"{info_path}: feature {k!r} is not an object ({_json_kind(f)}); "
                            "each feature needs {\"dtype\": ..., \"shape\": [...]}")
    fps = info.get("fps")
    if (isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps)
            or fps <= 0):
        raise DataError(f"{info_path}: fps {fps!r} must be a positive number of frames per "
                        "second; restore it")
    return info_path, info


def _vector_features(info_path: Path, feats: dict[str, dict[str, Any]], what: str,
                     keys: Sequence[str], flag: str) -> list[str]:
    """``keys`` checked to be non-visual features of the dataset (DataError/ConfigError)."""
    plain = sorted(k for k, f in feats.items() if f.get("dtype") not in ("video", "image")
                   and k not in _BOOKKEEPING)
    missing = [k for k in keys if k not in feats]
    if missing:
        hint = f"pass {flag} KEY (one of {plain})"
        cls = DataError if keys == ["action"] else ConfigError  # the default, or a user's typo
        raise cls(f"{info_path}: features lack {', '.join(map(repr, missing))} (got "
                  f"{sorted(feats)}); realgap needs {what}: {hint}")
    return list(keys)


#: Per-frame bookkeeping columns every LeRobot dataset has; never actions or states.
_BOOKKEEPING = frozenset({"episode_index", "frame_index", "timestamp", "index", "task_index"})


def open_lerobot(src: Path, *, task: str | None, cameras: Sequence[str] | None,
                 action_key: str | None = None,
                 state_keys: Sequence[str] | None = None) -> SourceReader:
    """Check a LeRobot dataset folder (see the module docstring) and return its reader.

    Args:
        action_key: feature holding the actions (default ``action``; e.g. ``actions``).
        state_keys: features concatenated, in this order, into the state vector (default
            ``observation.state`` when present, else no state; e.g. ``["state"]``).
    """
    info_path, info = _read_info(src)
    version: str = info["codebase_version"]
    v3 = version.startswith("v3")
    feats: dict[str, dict[str, Any]] = info["features"]
    akey = _vector_features(info_path, feats, "actions", [action_key or "action"],
                            "--action-key")[0]
    if state_keys is None:
        skeys = ["observation.state"] if "observation.state" in feats else []
    else:
        skeys = _vector_features(info_path, feats, "the state features", list(state_keys),
                                 "--state-key")
    if akey in skeys:
        raise ConfigError(f"{info_path}: {akey!r} is named as both the action and a state "
                          "feature; pass different --action-key and --state-key")
    fps = float(info["fps"])
    visual = {camera_name(k): k for k, f in feats.items() if f.get("dtype") in ("video", "image")}
    cams = pick_cameras(info_path, list(visual), cameras)
    is_video = {c: feats[visual[c]]["dtype"] == "video" for c in cams}
    if any(is_video.values()) and "video_path" not in info:
        raise DataError(f"{info_path}: lacks video_path, needed for the video features; restore it")
    tasks = _tasks(src, v3)
    eps = _episodes_v3(src, info_path, info) if v3 else _episodes_v2(src, info_path, info)
    cols = ["episode_index", "frame_index", "timestamp", akey, *skeys]
    cols += ["task_index"] * ("task_index" in feats)
    # Up-front pass over the low-dim columns, image columns present, videos open: a bad
    # source fails before the first episode is written.
    tables: dict[Path, pd.DataFrame] = {}
    probed: set[Path] = set()
    for ep in eps:
        e, path = ep["episode_index"], ep["data"]
        where = f" of episode {e}"
        if path not in tables:
            tables[path] = _read_parquet(path, cols)
            absent = [visual[c] for c in cams if not is_video[c]
                      and visual[c] not in _parquet_columns(path)]
            if absent:
                raise DataError(f"{path}: lacks the image columns {absent}; the data and "
                                "info.json disagree")
            for c in cams:
                if not is_video[c]:
                    _check_image_paths(src, path, visual[c])
        df = tables[path]
        rows = df[_episode_column(path, df) == e]
        if rows.empty:
            raise DataError(f"{path}: no rows of episode {e}; the data and episode metadata "
                            "disagree")
        order = np.argsort(_scalars(path, "frame_index", rows["frame_index"], where), kind="stable")
        rows = rows.iloc[order]
        ep["actions"] = _vectors(path, akey, rows[akey], where)
        parts = [_vectors(path, k, rows[k], where) for k in skeys]
        ep["states"] = np.concatenate(parts, axis=1) if parts else np.zeros((len(rows), 0))
        ep["timestamps"] = _scalars(path, "timestamp", rows["timestamp"], where)
        ep["frame_order"] = order
        ep["task"] = task
        if task is None and "task_index" in rows.columns:
            ep["task"] = tasks.get(_index(rows["task_index"].iloc[0], path, "task_index", where))
        for c in cams:
            if is_video[c]:
                vpath, _ = ep["video"](visual[c])
                if vpath not in probed:
                    probe_video(vpath)
                    probed.add(vpath)

    def episodes() -> Iterator[ReadEpisode]:
        image_tables: dict[str, tuple[Path, pd.DataFrame]] = {}
        for ep in eps:
            e = ep["episode_index"]
            imgs: dict[str, np.ndarray] = {}
            videos: dict[str, VideoFrames] = {}
            for c in cams:
                key = visual[c]
                if is_video[c]:
                    vpath, t0 = ep["video"](key)
                    imgs[c] = check_images(vpath, key, decode_video(vpath, ep["timestamps"] + t0, fps))
                    videos[c] = VideoFrames(vpath, ep["timestamps"] + t0)
                else:
                    if image_tables.get(key, (None,))[0] != ep["data"]:  # one file at a time
                        image_tables[key] = (ep["data"], _read_parquet(
                            ep["data"], ["episode_index", key]))
                    full = image_tables[key][1]
                    sel = full[_episode_column(ep["data"], full) == e].iloc[ep["frame_order"]]
                    imgs[c] = _decode_image_column(src, ep["data"], sel[key].tolist(), key)
            yield ReadEpisode(
                task=ep["task"] or src.name, episode=e, images=imgs, actions=ep["actions"],
                states=ep["states"], source=f"lerobot-{version}:{src.resolve()}#episode_index={e}",
                videos=videos or None,
            )

    return SourceReader(source=f"lerobot-{version}:{src.resolve()}", n_episodes=len(eps),
                        episodes=lambda: check_episodes(src, episodes()), cameras=cams)


READERS.add("lerobot", open_lerobot, detect=_detect)
