"""Diffusion-policy style zarr replay buffer (zarr format v2 or v3, directory or .zip).

Layout (diffusion_policy ``ReplayBuffer``: all episodes concatenated along axis 0)::

    <root>.zarr/
      data/
        img | <camera>        (N, H, W, 3) uint8      every 4-D uint8 array with 3 channels
                                                       is a camera, named by its key
        action                (N, A) float
        state                 (N, S) float            optional (other low-dim arrays, e.g.
                                                       keypoint, n_contacts, are ignored)
      meta/
        episode_ends          (E,) int                exclusive end row of each episode,
                                                       increasing, last == N

Episode ``i`` is rows ``[episode_ends[i-1], episode_ends[i])`` (``episode_ends[-1] = 0``).
Both zarr v2 (``.zgroup``/``.zarray``) and v3 (``zarr.json``) stores are read by zarr 3,
which detects the format itself; a ``.zip`` file is read through ``zarr.storage.ZipStore``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from realgap._optional import require
from realgap.data.readers._base import (
    READERS,
    ReadEpisode,
    SourceReader,
    check_finite,
    check_images,
    pick_cameras,
)
from realgap.errors import DataError

_ZARR_MARKERS = (".zgroup", "zarr.json")


def _detect(src: Path) -> bool:
    if src.is_file():
        return src.name.lower().endswith((".zarr.zip", ".zip")) and src.stat().st_size > 0
    return src.is_dir() and (src.suffix == ".zarr" or any((src / m).is_file() for m in _ZARR_MARKERS))


def _open_root(src: Path) -> Any:
    zarr = require("zarr")
    try:
        if src.is_file():
            store = zarr.storage.ZipStore(src, mode="r")
            return zarr.open_group(store, mode="r")
        return zarr.open_group(str(src), mode="r")
    except Exception as exc:  # zarr raises format-specific errors for a broken store
        raise DataError(f"{src}: not a readable zarr group ({exc.__class__.__name__}: {exc}); "
                        "check that it is a replay buffer with data/ and meta/") from exc


def _read(src: Path, arr: Any, name: str, sl: slice = slice(None)) -> np.ndarray:
    try:
        return np.asarray(arr[sl])
    except Exception as exc:  # truncated/corrupt chunks surface as codec or JSON errors
        raise DataError(f"{src}: {name} cannot be read ({exc.__class__.__name__}: {exc}); a chunk "
                        "file is truncated or corrupt, re-export the replay buffer") from exc


def open_zarr_buffer(
    src: Path, *, task: str | None, cameras: Sequence[str] | None
) -> SourceReader:
    """Check a replay buffer (see the module docstring) and return its reader."""
    root = _open_root(src)
    for grp in ("data", "meta"):
        if grp not in root:
            raise DataError(f"{src}: no '{grp}' group; expected data/{{img,action}} and "
                            "meta/episode_ends")
    data, meta = root["data"], root["meta"]
    if "action" not in data or "episode_ends" not in meta:
        raise DataError(f"{src}: expected data/action and meta/episode_ends, found data/"
                        f"{sorted(data.array_keys())} and meta/{sorted(meta.array_keys())}")
    image_keys = [k for k in data.array_keys()
                  if data[k].ndim == 4 and data[k].shape[-1] == 3 and data[k].dtype == np.uint8]
    cams = pick_cameras(src, image_keys, cameras)
    n = int(data["action"].shape[0])
    ends = _read(src, meta["episode_ends"], "meta/episode_ends").astype(np.int64).reshape(-1)
    if len(ends) == 0 or np.any(np.diff(np.r_[0, ends]) <= 0) or ends[-1] != n:
        raise DataError(f"{src}: meta/episode_ends {ends[:5].tolist()}... must increase strictly "
                        f"and end at the {n} rows of data/action; fix the episode boundaries")
    for k in [*cams, "state"]:
        if k in data and int(data[k].shape[0]) != n:
            raise DataError(f"{src}: data/{k} has {data[k].shape[0]} rows, data/action has {n}; "
                            "every array needs one row per frame")
    actions = check_finite(src, "data/action", _read(src, data["action"], "data/action"))
    states = (check_finite(src, "data/state", _read(src, data["state"], "data/state"))
              if "state" in data else np.zeros((n, 0)))
    starts = np.r_[0, ends[:-1]]
    task_name = task or src.name.removesuffix(".zip").removesuffix(".zarr") or "task"
    fmt = getattr(getattr(root, "metadata", None), "zarr_format", "?")

    def episodes() -> Iterator[ReadEpisode]:
        for i, (a, b) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
            imgs = {c: check_images(src, f"data/{c}", _read(src, data[c], f"data/{c}", slice(a, b)))
                    for c in cams}
            yield ReadEpisode(
                task=task_name, episode=i, images=imgs, actions=actions[a:b], states=states[a:b],
                source=f"zarr-v{fmt}:{src.resolve()}#rows={a}:{b}",
            )

    return SourceReader(source=f"zarr:{src.resolve()}", n_episodes=len(ends), episodes=episodes,
                        cameras=cams)


READERS.add("zarr", open_zarr_buffer, detect=_detect)
