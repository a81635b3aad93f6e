"""``embed_frameset``: batched embeddings of a FrameSet camera, cached and resumable.

Cache layout (``CACHE_VERSION`` 1)::

    <cache_dir>/embeddings/<encoder name>/<key>/
        meta.json            format_version, key fields, n_frames, dim, chunk_rows
        chunk_000000.npy     float32 (chunk_rows, dim): rows [0, chunk_rows) of the view
        chunk_000001.npy     ...

``key`` hashes the encoder name, its ``weights_hash``, its preprocessing, the FrameSet
(view) content hash and the camera, so any change to weights, data or preprocessing
misses the cache. The content hash is computed from the recorded hashes of the image
files and manifest rows (:mod:`realgap.data._format`), and before a single cached row is
returned the view's image files for the camera are checked against those hashes
(``FrameSet.verify``, each file hashed at most once per process; the frames read for
missing chunks are checked the same way). So the cache is keyed by the content actually
on disk: pixels changed in place, without a new record, are refused with a one-line
``DataError`` naming the file and ``realgap data validate``, never answered from the
cache; a set rewritten with new records has a new hash and misses it. Every chunk is written to a temporary file and renamed into place
(atomic on POSIX), so an interrupted run leaves only complete chunks; the next run
recomputes only the missing ones. A chunk or ``meta.json`` with the wrong version,
shape or dtype, or that fails to read, is discarded and recomputed.

The loop is DataLoader-free: a single background thread reads the next chunk's frames
from the store while the current chunk runs through the network under
``torch.inference_mode`` (the encoder is in eval mode).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from realgap._optional import require
from realgap.encoders.base import Encoder
from realgap.errors import ConfigError, DataError

CACHE_VERSION = 1


def cache_key(encoder: Encoder, frameset: Any, camera: str) -> dict[str, Any]:
    """The fields that identify one cached embedding matrix."""
    return {
        "format_version": CACHE_VERSION,
        "encoder": encoder.name,
        "weights_hash": encoder.weights_hash,
        "preprocess": encoder.preprocess.key(),
        "frameset_hash": frameset.content_hash,
        "camera": camera,
    }


def cache_path(encoder: Encoder, frameset: Any, camera: str, cache_dir: str | os.PathLike[str]) -> Path:
    """Directory holding the chunks of ``encoder`` x ``frameset`` x ``camera``."""
    fields = cache_key(encoder, frameset, camera)
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:32]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in encoder.name)
    return Path(cache_dir) / "embeddings" / safe / digest


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk leaves no partial temporary file behind
        raise


def _save_chunk(path: Path, arr: np.ndarray) -> None:
    # Through bytes: numpy's tofile() reports a full disk as a bare OSError with no errno
    # ("13824 requested and 9184 written"); a file write says ENOSPC.
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    _atomic_write_bytes(path, buf.getvalue())


def _chunk_ok(path: Path, rows: int, dim: int) -> bool:
    if not path.is_file():
        return False
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError):
        return False
    return arr.dtype == np.float32 and arr.shape == (rows, dim)


def _read_meta(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def embed_frameset(encoder: Encoder, frameset: Any, camera: str = "head",
                   cache_dir: str | os.PathLike[str] | None = None, batch_size: int = 64,
                   progress: bool = True) -> np.ndarray:
    """Embeddings of every frame of ``frameset`` seen by ``camera``.

    Args:
        encoder: an :class:`Encoder` (``create_encoder(...)``).
        frameset: a :class:`realgap.data.FrameSet` or view.
        camera: camera name.
        cache_dir: cache root; None disables caching (everything is recomputed).
        batch_size: frames per forward pass and per cache chunk (a resumed cache keeps
            the chunk size it was started with).
        progress: show a tqdm bar.

    Returns:
        ``float32 (len(frameset), encoder.embed_dim)``, row ``i`` = manifest row ``i``.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if camera not in frameset.cameras:
        raise ConfigError(f"camera {camera!r} not in the FrameSet; available: {frameset.cameras}")
    tqdm = require("tqdm").tqdm
    n, dim = len(frameset), encoder.embed_dim
    out = np.empty((n, dim), dtype=np.float32)
    if n == 0:
        return out

    folder: Path | None = None
    rows_per = batch_size
    verify = getattr(frameset, "verify", None)
    if cache_dir is not None and verify is not None:
        verify(camera)  # cached rows are only as good as the files they were computed from
    if cache_dir is not None:
        folder = cache_path(encoder, frameset, camera, cache_dir)
        fields = cache_key(encoder, frameset, camera)
        meta = _read_meta(folder / "meta.json") if folder.is_dir() else None
        if meta is not None and all(meta.get(k) == v for k, v in fields.items()) \
                and meta.get("n_frames") == n and meta.get("dim") == dim \
                and isinstance(meta.get("chunk_rows"), int) and meta["chunk_rows"] >= 1:
            rows_per = int(meta["chunk_rows"])
        else:
            if folder.exists():
                shutil.rmtree(folder)  # wrong version/shape/key: recompute from scratch
            folder.mkdir(parents=True, exist_ok=True)
            meta = {**fields, "n_frames": n, "dim": dim, "chunk_rows": rows_per,
                    "weights_origin": encoder.weights_origin}
            _atomic_write_bytes(folder / "meta.json", json.dumps(meta, indent=1).encode())

    bounds = [(s, min(n, s + rows_per)) for s in range(0, n, rows_per)]
    todo: list[int] = []
    for i, (s, e) in enumerate(bounds):
        if folder is not None and _chunk_ok(folder / f"chunk_{i:06d}.npy", e - s, dim):
            out[s:e] = np.load(folder / f"chunk_{i:06d}.npy", allow_pickle=False)
        else:
            todo.append(i)

    done_rows = n - sum(bounds[i][1] - bounds[i][0] for i in todo)
    bar = tqdm(total=n, initial=done_rows, desc=f"embed {encoder.name}/{camera}",
               unit="frame", disable=not progress)

    def load(i: int) -> np.ndarray:
        s, e = bounds[i]
        return frameset.images(camera, np.arange(s, e))

    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            nxt: Future[np.ndarray] | None = pool.submit(load, todo[0]) if todo else None
            for j, i in enumerate(todo):
                assert nxt is not None
                images = nxt.result()
                nxt = pool.submit(load, todo[j + 1]) if j + 1 < len(todo) else None
                emb = encoder.embed(images)
                s, e = bounds[i]
                if emb.shape != (e - s, dim):
                    raise DataError(f"encoder {encoder.name!r} returned {emb.shape} for "
                                    f"{e - s} frames; expected ({e - s}, {dim})")
                out[s:e] = emb
                if folder is not None:
                    _save_chunk(folder / f"chunk_{i:06d}.npy", np.ascontiguousarray(emb, np.float32))
                bar.update(e - s)
    finally:
        bar.close()
    return out
