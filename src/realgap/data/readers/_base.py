"""What every reader returns, the reader registry, and format detection."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from realgap._registry import Registry
from realgap.errors import ConfigError, DataError, MissingFileError


@dataclass(frozen=True)
class ReadEpisode:
    """One episode read from a source, ready for :meth:`FrameSetWriter.add_episode`.

    Attributes:
        task: task name.
        episode: episode number within the task (>= 0).
        images: camera -> uint8 ``(T, H, W, 3)``.
        actions: ``(T, A)`` float.
        states: ``(T, S)`` float (``S`` may be 0).
        source: provenance of this episode (file and location inside it).
        factors: ``T`` dicts of known per-frame conditions, or None.
    """

    task: str
    episode: int
    images: dict[str, np.ndarray]
    actions: np.ndarray
    states: np.ndarray
    source: str
    factors: list[dict[str, Any]] | None = None


@dataclass
class SourceReader:
    """A checked source: its provenance string, its episode count, and a generator."""

    source: str
    n_episodes: int
    episodes: Callable[[], Iterator[ReadEpisode]]
    cameras: list[str] = field(default_factory=list)


#: Registered readers: name -> ``open(src: Path, *, task: str | None,
#: cameras: Sequence[str] | None) -> SourceReader``, with meta ``detect(src) -> bool``.
READERS: Registry[SourceReader] = Registry("dataset format", "realgap.readers")


def detect_format(src: Path) -> str:
    """Name of the first registered reader whose ``detect`` accepts ``src``.

    Raises:
        MissingFileError: ``src`` does not exist.
        ConfigError: no reader recognises it.
    """
    if not src.exists():
        raise MissingFileError(f"{src}: no such file or directory; check the source path")
    for entry in READERS:
        detect = entry.meta.get("detect")
        if detect is not None and detect(src):
            return entry.name
    raise ConfigError(
        f"{src}: cannot tell its format (expected a folder with manifest.csv/.parquet, a "
        f"robomimic .hdf5, a zarr replay buffer or a LeRobot folder with meta/info.json); "
        f"pass --format {{{','.join(READERS.names())}}}"
    )


def pick_cameras(path: Path, available: Sequence[str], wanted: Sequence[str] | None) -> list[str]:
    """``wanted`` (all when None), checked against ``available``."""
    if not available:
        raise DataError(f"{path}: no image data found; the source needs at least one camera")
    if wanted is None:
        return sorted(available)
    missing = [c for c in wanted if c not in available]
    if missing:
        raise ConfigError(f"{path}: cameras {missing} not in the source; available: "
                          f"{sorted(available)}")
    return list(wanted)


def check_finite(path: Path | str, what: str, x: np.ndarray, where: str = "") -> np.ndarray:
    """``x`` as float64 ``(T, D)``; NaN/inf raise a DataError naming the file and position."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise DataError(f"{path}: {what}{where} has shape {a.shape}, expected (T, D); "
                        "flatten it to one vector per frame")
    bad = ~np.isfinite(a)
    if bad.any():
        t, d = (int(i) for i in np.argwhere(bad)[0])
        raise DataError(f"{path}: {what}{where} has {int(bad.sum())} NaN/inf values (first at "
                        f"step {t}, dim {d}); drop or repair those frames before converting")
    return a


def check_images(path: Path | str, what: str, x: Any) -> np.ndarray:
    """``x`` as uint8 ``(T, H, W, 3)``; grayscale ``(T, H, W)`` or ``(T, H, W, 1)`` is expanded."""
    a = np.asarray(x)
    if a.ndim == 3:
        a = a[..., None]
    if a.ndim == 4 and a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    if a.ndim != 4 or a.shape[-1] != 3:
        raise DataError(f"{path}: {what} has shape {a.shape}, expected (T, H, W, 3) RGB images; "
                        "store images as frames x height x width x 3")
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating) and a.size and float(np.nanmax(a)) <= 1.0:
            a = np.clip(np.round(a * 255.0), 0, 255)
        if a.size and (float(a.min()) < 0 or float(a.max()) > 255):
            raise DataError(f"{path}: {what} is {a.dtype} with values outside [0, 255]; "
                            "store 8-bit images")
        a = a.astype(np.uint8)
    return a
