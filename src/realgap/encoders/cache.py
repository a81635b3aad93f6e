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

With the Ray executor (``executor="ray"``, :mod:`realgap.executors`) the missing chunks
are grouped into one task per episode (a chunk belongs to the episode of its first row)
and per encoder; workers reopen the FrameSet from its path, check its content hash, and
compute the same chunks batch for batch; the driver writes every returned chunk into
this same cache, so a cache filled by Ray is read by a local run and vice versa.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from collections.abc import Sequence
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
                   progress: bool = True, executor: Any = None) -> np.ndarray:
    """Embeddings of every frame of ``frameset`` seen by ``camera``.

    Args:
        encoder: an :class:`Encoder` (``create_encoder(...)``).
        frameset: a :class:`realgap.data.FrameSet` or view.
        camera: camera name.
        cache_dir: cache root; None disables caching (everything is recomputed).
        batch_size: frames per forward pass and per cache chunk (a resumed cache keeps
            the chunk size it was started with).
        progress: show a tqdm bar.
        executor: ``None``/``"local"`` computes here; ``"ray"`` or a
            :class:`realgap.executors.Executor` sends one task per episode to Ray
            (:func:`embed_framesets`); the result and the cache are the same.

    Returns:
        ``float32 (len(frameset), encoder.embed_dim)``, row ``i`` = manifest row ``i``.
    """
    return embed_framesets([(encoder, frameset)], camera, cache_dir, batch_size, progress,
                           executor)[0]


class _Job:
    """One encoder x FrameSet: its output, cache folder and the chunks still to compute."""

    def __init__(self, encoder: Encoder, frameset: Any, camera: str,
                 cache_dir: str | os.PathLike[str] | None, batch_size: int) -> None:
        if camera not in frameset.cameras:
            raise ConfigError(f"camera {camera!r} not in the FrameSet; available: {frameset.cameras}")
        self.encoder, self.frameset = encoder, frameset
        n, dim = len(frameset), encoder.embed_dim
        self.n, self.dim = n, dim
        self.out = np.empty((n, dim), dtype=np.float32)
        self.folder: Path | None = None
        rows_per = batch_size
        verify = getattr(frameset, "verify", None)
        if cache_dir is not None and verify is not None and n:
            verify(camera)  # cached rows are only as good as the files they were computed from
        if cache_dir is not None and n:
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
            self.folder = folder
        self.bounds = [(s, min(n, s + rows_per)) for s in range(0, n, rows_per)]
        self.todo: list[int] = []
        for i, (s, e) in enumerate(self.bounds):
            if self.folder is not None and _chunk_ok(self.folder / f"chunk_{i:06d}.npy", e - s, dim):
                self.out[s:e] = np.load(self.folder / f"chunk_{i:06d}.npy", allow_pickle=False)
            else:
                self.todo.append(i)

    @property
    def todo_rows(self) -> int:
        return sum(self.bounds[i][1] - self.bounds[i][0] for i in self.todo)

    def store(self, i: int, emb: np.ndarray) -> None:
        """Check chunk ``i``'s rows, place them and write them into the cache."""
        s, e = self.bounds[i]
        if emb.shape != (e - s, self.dim):
            raise DataError(f"encoder {self.encoder.name!r} returned {emb.shape} for "
                            f"{e - s} frames; expected ({e - s}, {self.dim})")
        self.out[s:e] = emb
        if self.folder is not None:
            _save_chunk(self.folder / f"chunk_{i:06d}.npy", np.ascontiguousarray(emb, np.float32))

    def episode_groups(self) -> list[list[int]]:
        """The missing chunks grouped into one task per episode: a chunk belongs to the
        episode of its first row, so every chunk is computed exactly once and with the
        same rows (hence the same batch and the same bytes) as the local loop."""
        eps = self.frameset.episodes()
        groups: dict[int, list[int]] = {}
        for i in self.todo:
            groups.setdefault(int(eps[self.bounds[i][0]]), []).append(i)
        return list(groups.values())


def embed_framesets(jobs: Sequence[tuple[Encoder, Any]], camera: str = "head",
                    cache_dir: str | os.PathLike[str] | None = None, batch_size: int = 64,
                    progress: bool = True, executor: Any = None) -> list[np.ndarray]:
    """:func:`embed_frameset` for several ``(encoder, frameset)`` pairs at once.

    Locally the pairs run one after the other. With the Ray executor every missing
    chunk of every pair is submitted before any result is awaited (tasks = episodes x
    encoders x framesets), so Ray keeps every worker busy across encoders; each result is
    written into the cache as soon as it arrives, so an interrupted run keeps what
    finished. Returns one ``float32 (len(frameset), encoder.embed_dim)`` per pair.
    """
    from realgap.executors import as_executor

    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    ex = as_executor(executor)
    tqdm = require("tqdm").tqdm
    planned = [_Job(enc, fs, camera, cache_dir, batch_size) for enc, fs in jobs]
    if ex.is_ray and any(j.todo for j in planned):
        _embed_ray(planned, camera, progress, ex)
        return [j.out for j in planned]
    for job in planned:
        if not job.todo:
            continue
        bar = tqdm(total=job.n, initial=job.n - job.todo_rows,
                   desc=f"embed {job.encoder.name}/{camera}", unit="frame", disable=not progress)
        try:
            _embed_local(job, camera, bar)
        finally:
            bar.close()
    return [j.out for j in planned]


def _embed_local(job: _Job, camera: str, bar: Any) -> None:
    """The job's missing chunks in this process: a background thread reads the next
    chunk's frames while the current one runs through the network."""
    def load(i: int) -> np.ndarray:
        s, e = job.bounds[i]
        return job.frameset.images(camera, np.arange(s, e))

    with ThreadPoolExecutor(max_workers=1) as pool:
        todo = job.todo
        nxt: Future[np.ndarray] | None = pool.submit(load, todo[0])
        for j, i in enumerate(todo):
            assert nxt is not None
            images = nxt.result()
            nxt = pool.submit(load, todo[j + 1]) if j + 1 < len(todo) else None
            job.store(i, job.encoder.embed(images))
            bar.update(job.bounds[i][1] - job.bounds[i][0])


# -- Ray ------------------------------------------------------------------------------
#: FrameSets opened by this (worker) process, by (root, content hash): opened once.
_OPENED: dict[tuple[str, str], Any] = {}


def frameset_handle(frameset: Any) -> dict[str, Any]:
    """What a worker needs to reopen ``frameset`` (a FrameSet or view) from disk: its
    root, the view's row positions in the set, and both content hashes to check."""
    rows = getattr(frameset, "_rows", None)
    store = getattr(frameset, "_store", None)
    if rows is None or store is None:
        raise ConfigError("the Ray executor embeds FrameSets opened from disk "
                          "(realgap.data.FrameSet.open); got "
                          f"{type(frameset).__name__}; use the local executor")
    return {"root": str(frameset.root), "set_hash": store.content_hash,
            "rows": np.asarray(rows, dtype=np.int64), "view_hash": frameset.content_hash}


def open_handle(handle: dict[str, Any]) -> Any:
    """The FrameSet view named by :func:`frameset_handle`, refused if it changed."""
    from realgap.data.frameset import FrameSet

    key = (handle["root"], handle["set_hash"])
    full = _OPENED.get(key)
    if full is None:
        full = FrameSet.open(handle["root"])
        if full.content_hash != handle["set_hash"]:
            raise DataError(f"{handle['root']}: the FrameSet on this worker differs from the "
                            "driver's (content hash); Ray workers must read the same files "
                            "(shared storage, same path)")
        _OPENED[key] = full
    view = FrameSet(full._store, handle["rows"])
    if view.content_hash != handle["view_hash"]:
        raise DataError(f"{handle['root']}: the view sent to this worker does not match the "
                        "driver's (content hash)")
    return view


#: Encoders this (worker) process has unpacked, by object reference: once per worker.
_ENCODERS: dict[str, Encoder] = {}


def _worker_encoder(box: list[Any]) -> Encoder:
    """The encoder inside ``box`` (a one-element list holding its ``ray.put`` reference).

    Boxed so that Ray does not unpickle it before the task body runs: unpickling imports
    torchvision, which must go through :func:`realgap._torch_compat.ensure_torchvision`
    first (the installed torchvision's compiled ops do not load beside torch's CPU build;
    a bare ``import torchvision`` in a Ray worker died with "operator torchvision::nms
    does not exist").
    """
    import ray

    key = box[0].hex()
    if key not in _ENCODERS:
        try:
            from realgap._torch_compat import ensure_torchvision

            ensure_torchvision()
        except ImportError:  # an encoder without torchvision (pixels) needs no fix
            pass
        _ENCODERS[key] = ray.get(box[0])
    return _ENCODERS[key]


def _embed_task(encoder_box: list[Any], handle: dict[str, Any], camera: str,
                chunks: list[tuple[int, int, int]]) -> list[tuple[int, np.ndarray]]:
    """Ray task: ``(chunk, rows)`` for one episode's chunks, batch for batch as the local
    loop computes them (frames read and hash-checked on the worker)."""
    encoder = _worker_encoder(encoder_box)
    fs = open_handle(handle)
    return [(i, encoder.embed(fs.images(camera, np.arange(s, e)))) for i, s, e in chunks]


def _embed_ray(planned: list[_Job], camera: str, progress: bool, ex: Any) -> None:
    from realgap.executors import ray_map, ray_module

    ray = ray_module(ex)
    tqdm = require("tqdm").tqdm
    args: list[tuple[Any, ...]] = []
    owner: list[_Job] = []
    for job in planned:
        if not job.todo:
            continue
        enc_ref = ray.put(job.encoder)  # shipped once per encoder, not once per task
        fs_ref = ray.put(frameset_handle(job.frameset))
        for group in job.episode_groups():
            args.append(([enc_ref], fs_ref, camera, [(i, *job.bounds[i]) for i in group]))
            owner.append(job)
    total = sum(j.todo_rows for j in planned)
    names = ",".join(dict.fromkeys(j.encoder.name for j in planned if j.todo))
    bar = tqdm(total=total, desc=f"embed {names}/{camera} on ray ({len(args)} tasks)",
               unit="frame", disable=not progress)

    def on_result(k: int, chunks: list[tuple[int, np.ndarray]]) -> None:
        for i, emb in chunks:
            owner[k].store(i, emb)
            bar.update(emb.shape[0])

    try:
        gpus = ex.num_gpus if any(str(j.encoder.device).startswith("cuda") for j in planned) else 0.0
        ray_map(ex, _embed_task, args, num_gpus=gpus, on_result=on_result)
    finally:
        bar.close()
