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

``action_key`` and ``state_keys`` name other arrays of ``data/`` (e.g. ``actions``, or
``["robot_eef_pos", "robot_eef_quat"]``, concatenated in that order).

Episode ``i`` is rows ``[episode_ends[i-1], episode_ends[i])`` (``episode_ends[-1] = 0``).
Both zarr v2 (``.zgroup``/``.zarray``) and v3 (``zarr.json``) stores are read by zarr 3,
which detects the format itself; a ``.zip`` file is read through ``zarr.storage.ZipStore``.

The store is untrusted: zip member names with ``..`` or absolute paths, and symlinks that
leave a directory store, are refused before zarr opens it; every metadata document and
chunk that zarr cannot parse or decode (bad JSON, an unknown codec, a CRC mismatch)
becomes one :class:`DataError` naming the store and the member; ``episode_ends`` must be
integers; a single read is capped at :data:`~realgap.data.readers._base.MAX_READ_BYTES`.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from realgap._optional import require
from realgap.data.readers._base import (
    READERS,
    ReadEpisode,
    SourceReader,
    check_episodes,
    check_finite,
    check_images,
    check_read_size,
    inside_root,
    pick_cameras,
)
from realgap.errors import ConfigError, DataError, RealgapError

_ZARR_MARKERS = (".zgroup", "zarr.json")
def _detect(src: Path) -> bool:
    if src.is_file():
        return src.name.lower().endswith((".zarr.zip", ".zip")) and src.stat().st_size > 0
    return src.is_dir() and (src.suffix == ".zarr" or any((src / m).is_file() for m in _ZARR_MARKERS))


@contextmanager
def _zarr_errors(src: Path, what: str) -> Iterator[None]:
    """Any failure of zarr on ``what`` becomes one DataError naming the store.

    zarr raises format- and codec-specific types for a broken store (JSONDecodeError,
    KeyError, ValueError, codec and CRC errors, zipfile.BadZipFile) and only warns, then
    skips, a member whose metadata it cannot parse: that warning is an error here, so a
    damaged camera is not silently left out.
    """
    zarr = require("zarr")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. unstable-dtype notes: not the user's concern
            warnings.simplefilter("error", zarr.errors.ZarrUserWarning)
            yield
    except (RealgapError, MemoryError):
        raise
    except Exception as exc:  # untrusted store: see the docstring
        msg = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise DataError(f"{src}: {what} cannot be read ({exc.__class__.__name__}: {msg}); the "
                        "store is truncated or corrupt, re-export the replay buffer") from exc


def _check_members(src: Path) -> None:
    """Zip member names and directory symlinks stay inside the store."""
    if src.is_file():
        try:
            with zipfile.ZipFile(src) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise DataError(f"{src}: not a readable zip file ({exc}); re-export the replay "
                            "buffer") from exc
        for name in names:
            parts = PurePosixPath(name.replace("\\", "/")).parts
            if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
                raise DataError(f"{src}: member {name!r} points outside the store; re-export the "
                                "replay buffer")
        return
    for folder, dirs, files in os.walk(src):  # does not follow symlinked folders
        for name in dirs + files:
            p = Path(folder) / name
            if p.is_symlink():
                inside_root(src, p.relative_to(src), p, "symlink")


def _stored(src: Path, member: str) -> bool:
    """Whether the store holds any file under ``member`` (a zarr node it may not parse)."""
    if src.is_dir():
        return (src / member).exists()
    with zipfile.ZipFile(src) as z:
        return any(n.startswith(f"{member}/") for n in z.namelist())


def _open_root(src: Path) -> Any:
    zarr = require("zarr")
    _check_members(src)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", zarr.errors.ZarrUserWarning)
            if src.is_file():
                store = zarr.storage.ZipStore(src, mode="r")
                return zarr.open_group(store, mode="r")
            return zarr.open_group(str(src), mode="r")
    except Exception as exc:  # zarr raises format-specific errors for a broken store
        msg = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise DataError(f"{src}: not a readable zarr group ({exc.__class__.__name__}: {msg}); "
                        "check that it is a replay buffer with data/ and meta/") from exc


def _node(src: Path, group: Any, key: str, path: str, kind: str) -> Any:
    """``group[key]`` (at ``path``), which must be a zarr ``kind`` ("group" or "array")."""
    zarr = require("zarr")
    with _zarr_errors(src, path):
        node = group[key]
    want = zarr.Group if kind == "group" else zarr.Array
    if not isinstance(node, want):
        raise DataError(f"{src}: {path} is not a zarr {kind}; expected data/{{img,action}} and "
                        "meta/episode_ends")
    return node


def _read(src: Path, arr: Any, name: str, sl: slice = slice(None)) -> np.ndarray:
    rows = len(range(*sl.indices(arr.shape[0]))) if arr.ndim else 1
    check_read_size(src, name, (rows, *arr.shape[1:]), arr.dtype.itemsize)
    with _zarr_errors(src, name):
        return np.asarray(arr[sl])


def open_zarr_buffer(
    src: Path, *, task: str | None, cameras: Sequence[str] | None,
    action_key: str | None = None, state_keys: Sequence[str] | None = None,
) -> SourceReader:
    """Check a replay buffer (see the module docstring) and return its reader.

    Args:
        action_key: array of ``data/`` holding the actions (default ``action``).
        state_keys: arrays of ``data/`` concatenated into the state (default ``state``
            when present, else none).
    """
    akey = action_key or "action"
    want_states = list(state_keys) if state_keys is not None else ["state"]
    if akey in want_states:
        raise ConfigError(f"{src}: data/{akey} is named as both the action and a state; pass "
                          "different --action-key and --state-key")
    root = _open_root(src)
    with _zarr_errors(src, "the root group"):
        present = {g: g in root for g in ("data", "meta")}
    for grp, ok in present.items():
        if not ok:
            raise DataError(f"{src}: no '{grp}' group; expected data/{{img,action}} and "
                            "meta/episode_ends")
    data = _node(src, root, "data", "data/", "group")
    meta = _node(src, root, "meta", "meta/", "group")
    has = {}
    for grp, key, node in (("data", akey, data), ("meta", "episode_ends", meta),
                           *(("data", k, data) for k in want_states)):
        with _zarr_errors(src, f"{grp}/{key}"):
            has[key] = key in node
        if not has[key] and _stored(src, f"{grp}/{key}"):
            # zarr calls a node whose metadata it cannot parse absent: name the damage
            _node(src, node, key, f"{grp}/{key}", "array")
            has[key] = True
    if action_key is not None and not has[akey]:
        raise ConfigError(f"{src}: --action-key {akey!r}: no data/{akey} in the store; name an "
                          "array of data/")
    absent = [k for k in want_states if not has[k]] if state_keys is not None else []
    if absent:
        raise ConfigError(f"{src}: --state-key {absent}: no such arrays in data/; name arrays "
                          "of data/")
    if not (has[akey] and has["episode_ends"]):
        raise DataError(f"{src}: expected data/{akey} and meta/episode_ends; fix the replay "
                        "buffer's layout (or pass --action-key)")
    skeys = [k for k in want_states if has[k]]
    # the arrays realgap needs first, so a damaged one is named; then the cameras
    arrays = {k: _node(src, data, k, f"data/{k}", "array") for k in (akey, *skeys)}
    with _zarr_errors(src, "a member of data/"):
        data_keys = sorted(data.keys())
    zarr = require("zarr")
    for k in data_keys:
        if k not in arrays:
            with _zarr_errors(src, f"data/{k}"):
                node = data[k]
            if isinstance(node, zarr.Array):
                arrays[k] = node
    image_keys = [k for k, a in arrays.items() if k not in (akey, *skeys)
                  and a.ndim == 4 and a.shape[-1] == 3 and a.dtype == np.uint8]
    cams = pick_cameras(src, image_keys, cameras)
    action = arrays[akey]
    if action.ndim not in (1, 2) or action.shape[0] == 0:
        raise DataError(f"{src}: data/{akey} has shape {action.shape}, expected (N, A) with N > 0; "
                        "one action vector per frame")
    n = int(action.shape[0])
    ends_arr = _node(src, meta, "episode_ends", "meta/episode_ends", "array")
    if ends_arr.dtype.kind not in "iu":
        raise DataError(f"{src}: meta/episode_ends is {ends_arr.dtype}, expected integers "
                        "(exclusive end row of each episode); fix the episode boundaries")
    ends = _read(src, ends_arr, "meta/episode_ends").astype(np.int64).reshape(-1)
    if len(ends) == 0 or np.any(np.diff(np.r_[0, ends]) <= 0) or ends[-1] != n:
        raise DataError(f"{src}: meta/episode_ends {ends[:5].tolist()}... must increase strictly "
                        f"and end at the {n} rows of data/action; fix the episode boundaries")
    for k in [*cams, *skeys]:
        if arrays[k].ndim == 0 or int(arrays[k].shape[0]) != n:
            raise DataError(f"{src}: data/{k} has shape {arrays[k].shape}, data/{akey} has {n} "
                            "rows; every array needs one row per frame")
    actions = check_finite(src, f"data/{akey}", _read(src, action, f"data/{akey}"))
    parts = [check_finite(src, f"data/{k}", _read(src, arrays[k], f"data/{k}").reshape(n, -1))
             for k in skeys]
    states = np.concatenate(parts, axis=1) if parts else np.zeros((n, 0))
    starts = np.r_[0, ends[:-1]]
    task_name = task or src.name.removesuffix(".zip").removesuffix(".zarr") or "task"
    fmt = getattr(getattr(root, "metadata", None), "zarr_format", "?")

    def episodes() -> Iterator[ReadEpisode]:
        for i, (a, b) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
            imgs = {c: check_images(src, f"data/{c}", _read(src, arrays[c], f"data/{c}", slice(a, b)))
                    for c in cams}
            yield ReadEpisode(
                task=task_name, episode=i, images=imgs, actions=actions[a:b], states=states[a:b],
                source=f"zarr-v{fmt}:{src.resolve()}#rows={a}:{b}",
            )

    return SourceReader(source=f"zarr:{src.resolve()}", n_episodes=len(ends),
                        episodes=lambda: check_episodes(src, episodes()), cameras=cams)


READERS.add("zarr", open_zarr_buffer, detect=_detect)
