"""What every reader returns, the reader registry, and format detection."""

from __future__ import annotations

import io
import json
import string
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from realgap._registry import Registry
from realgap.errors import ConfigError, DataError, MissingFileError

#: Largest magnitude a FrameSet's float32 actions/states can hold.
F32_MAX = float(np.finfo(np.float32).max)
#: Largest single array read from a source (declared shape x item size). A few bytes of
#: metadata may declare any shape (HDF5 and zarr read absent chunks as fill values), so a
#: damaged or hostile file could otherwise ask for terabytes.
MAX_READ_BYTES = 4 * 2**30
#: Characters a FrameSet camera name may use (as :class:`FrameSetWriter` checks).
CAMERA_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


@dataclass(frozen=True)
class VideoFrames:
    """Where a camera's frames were decoded from: a video file and each frame's time in it.

    A reader that decodes video sets :attr:`ReadEpisode.videos`; the writer then keeps
    the video itself instead of re-storing the frames, after checking that decoding the
    file at these times reproduces the frames exactly (:mod:`realgap.data._images`).
    """

    path: Path
    times: np.ndarray  # float64 (T,), seconds from the start of the file


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
        videos: camera -> :class:`VideoFrames` for cameras decoded from a video, or None.
    """

    task: str
    episode: int
    images: dict[str, np.ndarray]
    actions: np.ndarray
    states: np.ndarray
    source: str
    factors: list[dict[str, Any]] | None = None
    videos: dict[str, VideoFrames] | None = None


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
    odd = [c for c in available if not c or not set(c) <= CAMERA_NAME_CHARS]
    if odd:
        raise DataError(f"{path}: camera names {odd} must be letters, digits, '_', '-' or '.'; "
                        "rename them in the source")
    if wanted is None:
        return sorted(available)
    missing = [c for c in wanted if c not in available]
    if missing:
        raise ConfigError(f"{path}: cameras {missing} not in the source; available: "
                          f"{sorted(available)}")
    return list(wanted)


def check_read_size(path: Path | str, what: str, shape: Sequence[int], itemsize: int) -> None:
    """Refuse to read an array over :data:`MAX_READ_BYTES` (DataError naming ``path``)."""
    nbytes = float(np.prod([float(n) for n in shape])) * itemsize
    if nbytes > MAX_READ_BYTES:
        raise DataError(f"{path}: {what} declares shape {tuple(shape)} ({nbytes / 2**30:.3g} GiB "
                        f"in one read, over {MAX_READ_BYTES // 2**30} GiB); the metadata is "
                        "damaged, or split the data into smaller arrays")


def check_finite(path: Path | str, what: str, x: Any, where: str = "") -> np.ndarray:
    """``x`` as float64 ``(T, D)``; a ``(T,)`` vector becomes ``(T, 1)``.

    Raises:
        DataError: naming the file and position, when ``x`` is not numeric, not one vector
            per frame, holds NaN/inf, or holds values beyond float32 (the FrameSet stores
            float32, where they would silently become inf).
    """
    if getattr(x, "dtype", None) is not None and x.dtype.kind == "c":  # a cast drops the imaginary part
        raise DataError(f"{path}: {what}{where} is {x.dtype}, complex numbers; store real numbers")
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        kind = getattr(x, "dtype", type(x).__name__)
        raise DataError(f"{path}: {what}{where} is not numeric ({kind}: "
                        f"{str(exc).splitlines()[0][:120]}); store numbers") from exc
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
    big = np.abs(a) > F32_MAX
    if big.any():
        t, d = (int(i) for i in np.argwhere(big)[0])
        raise DataError(f"{path}: {what}{where} has values beyond float32 (first at step {t}, "
                        f"dim {d}: {a[t, d]:.3g}); a FrameSet stores float32, rescale them")
    return a


def check_images(path: Path | str, what: str, x: Any) -> np.ndarray:
    """``x`` as uint8 ``(T, H, W, 3)``; grayscale ``(T, H, W)`` or ``(T, H, W, 1)`` is expanded.

    Integer images must lie in [0, 255]; float images in [0, 1] are scaled by 255, others
    must lie in [0, 255]. NaN/inf pixels are refused (a cast would turn them into 0, a
    black pixel nobody asked for).
    """
    a = np.asarray(x)
    if a.dtype.kind not in "uif" and a.dtype != np.bool_:
        raise DataError(f"{path}: {what} is {a.dtype}, not numeric pixels; store 8-bit images")
    if a.dtype.kind == "f":  # before the grayscale expansion, so counts are the source's
        bad = ~np.isfinite(a)
        if bad.any():
            t = int(np.argwhere(bad)[0][0]) if a.ndim else 0
            raise DataError(f"{path}: {what} has {int(bad.sum())} NaN/inf values (first in "
                            f"frame {t}); repair or drop those frames before converting")
    if a.ndim == 3:
        a = a[..., None]
    if a.ndim == 4 and a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    if a.ndim != 4 or a.shape[-1] != 3:
        raise DataError(f"{path}: {what} has shape {a.shape}, expected (T, H, W, 3) RGB images; "
                        "store images as frames x height x width x 3")
    if a.dtype != np.uint8:
        if a.dtype.kind == "f" and a.size and float(a.max()) <= 1.0:
            a = np.clip(np.round(a * 255.0), 0, 255)
        if a.size and (float(a.min()) < 0 or float(a.max()) > 255):
            raise DataError(f"{path}: {what} is {a.dtype} with values outside [0, 255]; "
                            "store 8-bit images")
        a = a.astype(np.uint8)
    return a


def inside_root(root: Path, rel: str | Path, file: Path | str, what: str) -> Path:
    """``root / rel``, refused unless it stays inside ``root`` once symlinks are resolved.

    A dataset names its own files (path templates, image paths, store members); it may
    not make realgap read a file elsewhere on the machine (another user's data, a key),
    whose pixels would then end up in a FrameSet.

    Raises:
        DataError: naming ``file`` (where ``rel`` was found), ``what`` and ``rel``.
    """
    text = str(rel)
    full = root / text
    try:
        ok = ("\x00" not in text and not Path(text).is_absolute()
              and full.resolve().is_relative_to(root.resolve()))
    except (OSError, RuntimeError, ValueError):  # a symlink loop, an over-long name
        ok = False
    if not ok:
        raise DataError(f"{file}: {what} {text!r} points outside the dataset ({root}); a "
                        "dataset may only name files inside its own folder, copy the file in")
    return full


def format_path(template: Any, fields: dict[str, Any], file: Path | str, what: str) -> str:
    """``template.format(**fields)`` for a path template found in a dataset's metadata.

    Only plain ``{name}`` / ``{name:spec}`` fields drawn from ``fields`` are allowed:
    attribute and index lookups (``{x.__class__}``) would let a file walk Python objects.

    Raises:
        DataError: ``template`` is not a string, is malformed, or names another field.
    """
    if not isinstance(template, str):
        raise DataError(f"{file}: {what} {template!r} is not a string; restore the path template")
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise DataError(f"{file}: {what} {template!r} is not a valid path template ({exc}); "
                        "restore it from the dataset's original info.json") from exc
    for _, name, _, conv in parts:
        if name is not None and (name not in fields or conv is not None):
            raise DataError(f"{file}: {what} {template!r} has an unknown field {{{name}}}; "
                            f"a template may use only {sorted(fields)}")
    try:
        return template.format(**fields)
    except (ValueError, TypeError, KeyError, IndexError) as exc:  # e.g. a bad format spec
        raise DataError(f"{file}: {what} {template!r} is not a valid path template ({exc}); "
                        "restore it from the dataset's original info.json") from exc


def read_json(path: Path) -> Any:
    """The JSON value in ``path``; bad UTF-8 or bad JSON is a DataError naming the file."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: is not UTF-8 text ({exc}); restore the file") from exc
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise DataError(f"{path}: not valid JSON ({str(exc)[:120]}); restore the file") from exc


def check_episodes(path: Path | str, episodes: Iterator[ReadEpisode]) -> Iterator[ReadEpisode]:
    """Pass ``episodes`` through, checking each against what a FrameSet requires.

    The rules of :meth:`FrameSetWriter.add_episode` (at least one frame, one image per
    frame for every camera, camera names, the same cameras, image sizes, action and state
    sizes in every episode) are checked here so that a source fault is reported against
    the source ``path``, not against the FrameSet being written.
    """
    ref: ReadEpisode | None = None
    for ep in episodes:
        at = f"{path}: episode {ep.episode} ({ep.source.rpartition('#')[2]})"
        n = len(ep.actions)
        if not isinstance(ep.task, str) or not ep.task.strip():
            raise DataError(f"{at}: the task name is empty; name it in the source or pass --task")
        if n == 0:
            raise DataError(f"{at} has no frames; drop the empty episode from the source")
        for cam, img in ep.images.items():
            if not cam or not set(cam) <= CAMERA_NAME_CHARS:
                raise DataError(f"{at}: camera name {cam!r} must be letters, digits, '_', '-' or "
                                "'.'; rename the camera in the source")
            if img.shape[0] != n:
                raise DataError(f"{at}: camera {cam!r} has {img.shape[0]} frames, the actions "
                                f"{n}; the source needs one image per action")
        if len(ep.states) != n:
            raise DataError(f"{at}: {len(ep.states)} states for {n} actions; the source needs one "
                            "state per action")
        if ref is None:
            ref = ep
        else:
            got = {c: i.shape[1:] for c, i in ep.images.items()}
            want = {c: i.shape[1:] for c, i in ref.images.items()}
            if got != want:
                raise DataError(f"{at}: images {got} differ from episode {ref.episode}'s {want}; "
                                "images of mixed shapes: resize them to one size per camera")
            for what, a, b in (("actions", ep.actions, ref.actions), ("states", ep.states, ref.states)):
                if a.shape[1] != b.shape[1]:
                    raise DataError(f"{at}: {what} have {a.shape[1]} dims, episode {ref.episode}'s "
                                    f"{b.shape[1]}; one {what[:-1]} layout per dataset")
        yield ep


def decode_image(data: bytes | Path, file: Path | str, what: str, exif: bool = False) -> np.ndarray:
    """One encoded image (bytes, or a file already checked with :func:`inside_root`) as
    uint8 ``(H, W, 3)`` RGB; with ``exif``, turned upright by its EXIF orientation tag
    (``PIL.ImageOps.exif_transpose``: photos from phones and cameras). LeRobot image
    columns are decoded without it, as lerobot's own loader does.

    Pillow raises many exception types on malformed input (its own fuzzing harness catches
    ``Exception``), so any failure to decode becomes a DataError naming ``file``; images
    over Pillow's decompression-bomb limit (~89 Mpixel) are refused, not allocated.
    """
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            # Pillow's notes (palette transparency, EXIF) would break the one-line stderr
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as im:
                if exif:
                    from PIL import ImageOps

                    upright = ImageOps.exif_transpose(im)
                    return np.asarray(upright.convert("RGB"), dtype=np.uint8)
                return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except MemoryError:
        raise
    except Exception as exc:  # untrusted bytes: see the docstring
        raise DataError(f"{file}: {what} cannot be decoded ({exc.__class__.__name__}: "
                        f"{str(exc)[:120]}); re-export it as PNG/JPEG") from exc
