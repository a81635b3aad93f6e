"""How a FrameSet stores its images (format version 3), and how it reads them back, verified.

Each camera of each episode is stored by one of two codecs, named in the episode record
(``episode.json`` and ``meta.json``) under ``images[<camera>]``:

``zstd-up`` (the default, lossless)
    One file ``<camera>.zst`` in the episode directory: the frames in chunks of
    ``chunk_frames`` (32), each chunk an independent zstd frame (level 3) of the chunk's
    pixels after PNG's "Up" filter (each image row minus the row above, modulo 256), laid
    out as ``(H, k, W, 3)`` so the inverse filter runs over whole contiguous rows. The
    record holds the chunks' byte ``offsets``. Measured on 128x128 frames
    (``benchmarks/bench_storage.py``, ``benchmarks/README.md``): 15-30x smaller than raw
    on rendered frames, 3-4x on decoded video, 1.4x on noisy camera frames; decoding runs
    at several thousand frames/s, far above what any encoder consumes. Zstd and PNG's
    filter rather than PNG or WebP files: PNG/WebP-lossless compress frame by frame and
    decode 5-20x slower; zstd over 32-frame chunks also removes the redundancy between
    consecutive frames (static backgrounds). The zstd codec is pyarrow's (a core
    dependency), so no new package is needed.

``video`` (frames that came from a video file, kept as that video)
    Lossless storage cannot come near the size of a lossy video (a LeRobot dataset's AV1
    videos grow ~100x when decoded to raw frames, and only ~3x shrink back losslessly).
    So frames a reader decoded from a video are stored as the source's own video bytes:
    the file is copied once into ``<root>/videos/<blake2b>.<ext>`` (content-addressed, so
    a LeRobot v3.0 file shared by many episodes is stored once), and the record lists the
    presentation timestamps (``pts``, in the stream's time base) of the episode's frames.
    The writer accepts this only after decoding those pts back with :func:`decode_video`
    (the same function every read uses) and finding them *equal, pixel for pixel*, to the
    frames the reader produced; otherwise the camera falls back to ``zstd-up``. The
    stored error against a direct decode of the source is therefore 0, and the size is at
    most the source video's. Reads decode 32-frame chunks, each from the keyframe before
    it, so their cost grows with the source's keyframe interval (LeRobot encodes with a
    keyframe every 2 frames); ``realgap data convert --video-storage lossless`` trades
    size for decode speed.

Verification (why a cache keyed on the content hash cannot go stale): every image file
has its BLAKE2b-256 in the record; the episode hash is computed from those file hashes
and the manifest's hash (:func:`realgap.data._format.episode_hash`), never read from
disk. Before any file's bytes are used, :func:`verify_file` hashes it, at most once per
process while its size, mtime and inode stay the same, and a file that no longer matches
its record is refused with a :class:`~realgap.errors.DataError` naming the file and
``realgap data validate``.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from realgap._optional import require

# File names a record may point at (checked by _format.check_record): a file of the
# episode directory, or a shared video.
from realgap.data._format import EPISODE_FILE_RE, VIDEO_CODEC, VIDEO_FILE_RE, ZSTD_CODEC  # noqa: F401
from realgap.errors import DataError

CODECS = (ZSTD_CODEC, VIDEO_CODEC)
#: Frames per independently decodable chunk (random access reads one chunk).
CHUNK_FRAMES = 32
ZSTD_LEVEL = 3
VIDEOS_DIR = "videos"
_BLOCK = 1 << 20

_VERIFIED: dict[tuple[str, int, int, int, int], str] = {}
_VERIFIED_LOCK = threading.Lock()


def file_hash(path: Path) -> str:
    """BLAKE2b-256 (hex) of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.blake2b(digest_size=32)
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
    return h.hexdigest()


def check_inside(resolved: Path, path: Path, root: Path) -> None:
    """Refuse a file that resolves outside the FrameSet (a symlink planted in a set)."""
    if not resolved.is_relative_to(root.resolve()):
        raise DataError(f"{path}: resolves to {resolved}, outside the FrameSet {root} (a "
                        "symlink?); FrameSets never read files outside their directory, copy "
                        "the file in")


def _stat_key(path: Path) -> tuple[str, int, int, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def verify_file(path: Path, expected: str, root: Path) -> None:
    """Check that ``path`` hashes to ``expected``; hash it at most once per process.

    The memo is keyed by the file's resolved path, size, mtime, ctime and inode, so a
    file rewritten in place is hashed again.

    Raises:
        MissingFileError-like DataError: the file is missing or differs from its record.
    """
    if not path.is_file():
        raise DataError(f"{path}: image file missing; the FrameSet is damaged, run "
                        f"`realgap data validate {root}` and regenerate or reconvert it")
    key = _stat_key(path)
    check_inside(Path(key[0]), path, root)
    with _VERIFIED_LOCK:
        if _VERIFIED.get(key) == expected:
            return
    got = file_hash(path)
    if got != expected:
        raise DataError(
            f"{path}: file content hash {got[:12]} differs from its record {expected[:12]}: "
            f"the file was changed after writing; refusing to use it (run `realgap data "
            f"validate {root}`, then regenerate or reconvert the episode)")
    with _VERIFIED_LOCK:
        _VERIFIED[key] = got


# -- zstd-up ---------------------------------------------------------------------------
def _codec() -> pa.Codec:
    return pa.Codec("zstd", compression_level=ZSTD_LEVEL)


def encode_chunk(frames: np.ndarray) -> bytes:
    """``uint8 (k, H, W, 3)`` -> one zstd frame of the Up-filtered ``(H, k, W, 3)`` pixels."""
    rows = np.ascontiguousarray(frames.transpose(1, 0, 2, 3))
    filtered = rows.copy()
    np.subtract(rows[1:], rows[:-1], out=filtered[1:])  # uint8 arithmetic wraps mod 256
    return _codec().compress(filtered, asbytes=True)


def decode_chunk(blob: bytes, k: int, shape: Sequence[int], where: Path) -> np.ndarray:
    """Inverse of :func:`encode_chunk`: ``uint8 (k, H, W, 3)`` (a read-only transposed view)."""
    h, w, c = (int(s) for s in shape)
    try:
        raw = _codec().decompress(blob, decompressed_size=k * h * w * c, asbytes=True)
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError, ValueError) as exc:
        raise DataError(f"{where}: compressed chunk cannot be decoded ({exc}); run "
                        "`realgap data validate` and reconvert the episode") from exc
    if len(raw) != k * h * w * c:
        raise DataError(f"{where}: chunk holds {len(raw)} bytes, expected {k * h * w * c}; "
                        "reconvert the episode")
    filtered = np.frombuffer(raw, dtype=np.uint8).reshape(h, k, w, c)
    rows = np.empty_like(filtered)
    rows[0] = filtered[0]
    for r in range(1, h):  # row by row: each add is one contiguous (k, W, 3) block
        np.add(filtered[r], rows[r - 1], out=rows[r])
    return rows.transpose(1, 0, 2, 3)


def write_zstd(path: Path, frames: np.ndarray, sync: Any) -> dict[str, Any]:
    """Write ``uint8 (T, H, W, 3)`` as a ``zstd-up`` file; return its record entry."""
    h = hashlib.blake2b(digest_size=32)
    offsets = [0]
    with open(path, "wb") as f:
        for s in range(0, frames.shape[0], CHUNK_FRAMES):
            blob = encode_chunk(frames[s : s + CHUNK_FRAMES])
            f.write(blob)
            h.update(blob)
            offsets.append(offsets[-1] + len(blob))
        sync(f)
    return {"codec": ZSTD_CODEC, "file": path.name, "chunk_frames": CHUNK_FRAMES,
            "offsets": offsets, "bytes": offsets[-1], "blake2b": h.hexdigest()}


def read_zstd_chunk(path: Path, entry: dict[str, Any], i: int, n_frames: int,
                    shape: Sequence[int]) -> np.ndarray:
    """Chunk ``i`` of a verified ``zstd-up`` file: ``uint8 (k, H, W, 3)``."""
    k = min(int(entry["chunk_frames"]), n_frames - i * int(entry["chunk_frames"]))
    start, stop = int(entry["offsets"][i]), int(entry["offsets"][i + 1])
    with open(path, "rb") as f:
        f.seek(start)
        blob = f.read(stop - start)
    if len(blob) != stop - start:
        raise DataError(f"{path}: file is truncated (chunk {i} needs bytes {start}..{stop}); "
                        "reconvert the episode")
    return decode_chunk(blob, k, shape, path)


# -- video ------------------------------------------------------------------------------
def decode_video(path: Path, pts: Sequence[int]) -> np.ndarray:
    """Frames of the first video stream of ``path`` with presentation timestamps ``pts``.

    Seeks to the keyframe at or before ``min(pts)`` and decodes forward to ``max(pts)``;
    returns ``uint8 (len(pts), H, W, 3)`` RGB in the order of ``pts`` (repeats allowed).
    Used both when a writer checks a video against the reader's frames and on every read,
    so the two agree by construction.
    """
    av = require("av")
    want = {int(p) for p in pts}
    if not want:
        raise DataError(f"{path}: no frames requested")
    lo, hi = min(want), max(want)
    got: dict[int, np.ndarray] = {}
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            container.seek(lo, stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                if frame.pts in want and frame.pts not in got:
                    got[frame.pts] = frame.to_ndarray(format="rgb24")
                if frame.pts >= hi and len(got) == len(want):
                    break
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as exc:
        raise DataError(f"{path}: video cannot be decoded ({exc}); run `realgap data "
                        "validate` and reconvert the episode") from exc
    missing = sorted(want - set(got))
    if missing:
        raise DataError(f"{path}: video has no frame at pts {missing[:3]} ({len(missing)} "
                        "missing); run `realgap data validate` and reconvert the episode")
    return np.stack([got[int(p)] for p in pts])


def video_pts_for_times(path: Path, times: np.ndarray) -> tuple[list[int], float]:
    """Pts of the packet nearest to each time in ``times`` (s), and the stream time base.

    Reads packet headers only (no decoding).
    """
    av = require("av")
    stamps: list[int] = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            tb = float(stream.time_base)
            for packet in container.demux(stream):
                if packet.pts is not None and packet.size:
                    stamps.append(int(packet.pts))
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as exc:
        raise DataError(f"{path}: video cannot be read ({exc})") from exc
    if not stamps:
        raise DataError(f"{path}: video has no frames")
    st = np.unique(np.asarray(stamps, dtype=np.int64))
    t = np.asarray(times, dtype=np.float64)
    pos = np.clip(np.searchsorted(st * tb, t), 1, len(st) - 1) if len(st) > 1 else np.zeros(
        len(t), dtype=np.int64)
    if len(st) > 1:
        left = st[pos - 1] * tb
        right = st[pos] * tb
        pos = np.where(np.abs(t - left) <= np.abs(right - t), pos - 1, pos)
    return [int(p) for p in st[pos]], tb


class ChunkCache:
    """Decoded chunks of one FrameSet, least recently used dropped beyond ``max_bytes``."""

    def __init__(self, max_bytes: int = 256 << 20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...]) -> np.ndarray | None:
        with self._lock:
            arr = self._items.get(key)
            if arr is not None:
                self._items.move_to_end(key)
            return arr

    def put(self, key: tuple[Any, ...], arr: np.ndarray) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = arr
            self._bytes += arr.nbytes
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.nbytes


def copy_hashed(src: Path, dst: Path, sync: Any) -> str:
    """Copy ``src`` to ``dst`` in 1 MiB blocks; return the BLAKE2b-256 of the bytes."""
    h = hashlib.blake2b(digest_size=32)
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        while block := fi.read(_BLOCK):
            h.update(block)
            fo.write(block)
        sync(fo)
    return h.hexdigest()


def video_suffix(path: Path) -> str:
    """A safe lowercase extension for a copied video (``mp4`` when the source has none)."""
    ext = path.suffix.lower().lstrip(".")
    return ext if re.fullmatch(r"[a-z0-9]{1,8}", ext) else "mp4"


def sync_file(f: Any) -> None:
    """Flush and fsync an open file (durability before an atomic rename)."""
    f.flush()
    os.fsync(f.fileno())
