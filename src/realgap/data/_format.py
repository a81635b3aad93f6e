"""The FrameSet on-disk layout, its version, and its content hash.

A FrameSet is a directory::

    <root>/
      meta.json                      summary: format_version, content_hash, domains, cameras,
                                     tasks, source, created, counts, and one record per episode
      episodes/
        <key>/                       one complete episode (a directory renamed into place)
          manifest.parquet           the episode's manifest rows (schema: MANIFEST_SCHEMA)
          <camera>.npy               uint8 (T, H, W, 3), one file per camera
          episode.json               the episode's record (domain, task, episode, n_frames,
                                     shapes, hash): the same record meta.json holds
      manifest.parquet               all episodes' manifest rows in canonical order, a cache
                                     rebuilt when a writer closes; used only when the content
                                     hash in its schema metadata equals the set's
      .tmp/                          episodes being written (ignored by readers)

Why per-episode ``.npy`` directories (and not one zarr array, one HDF5 file, or one file per
frame):

- *Atomic and append-only.* An episode is written into ``.tmp/<key>.<pid>`` and moved into
  ``episodes/<key>`` with one ``os.rename`` of the directory, which POSIX makes atomic: a
  crash leaves either the whole episode (manifest rows and every camera) or nothing. Nothing
  already on disk is ever rewritten, so a failing writer cannot damage earlier episodes. A
  single growing zarr/HDF5 array would need resize-then-write, leaving a torn tail on crash
  (and HDF5 can corrupt the whole file).
- *Fast sequential reads.* ``.npy`` is uncompressed and memory-mappable (``np.load(...,
  mmap_mode="r")``): a batch of consecutive frames is one contiguous slice of one file, with
  no decompression, no chunk index, and no dependency beyond numpy. Rendered frames of
  robot datasets are small (64-256 px); a few thousand of them are tens of MB, where
  compression buys little and costs CPU on every epoch of embedding.
- *Cheap incremental hashing.* Each episode's hash is computed once, when it is written;
  the set's hash combines the sorted per-episode hashes (:func:`combine_hashes`), so it does
  not depend on write order and adding an episode costs one episode's hashing.

The consolidated ``manifest.parquet`` exists because opening a set by reading one small
Parquet file per episode costs a few ms per file (seconds for a thousand episodes); with it,
opening reads one file. A crash before it is rebuilt only makes opening slower.

``meta.json`` is a cache of the episode records, rewritten (write temp, ``os.replace``)
after each episode. The ``episodes/`` directory is the truth: if a crash falls between the
rename of an episode and the rewrite of ``meta.json``, readers pick the episode up from its
own ``episode.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from realgap.errors import DataError, FormatVersionError, MissingFileError

#: Version of this on-disk layout; :func:`read_meta` refuses any other. 2: episode hashes
#: are BLAKE2b-256 (version 1, the first day of the project, used SHA-256).
FORMAT_VERSION = 2

META_NAME = "meta.json"
EPISODES_DIR = "episodes"
TMP_DIR = ".tmp"
#: the writer's lock file, holding its pid (see :mod:`realgap.data.writer`)
LOCK_NAME = ".lock"
EPISODE_MANIFEST = "manifest.parquet"
EPISODE_RECORD = "episode.json"
CONSOLIDATED_MANIFEST = "manifest.parquet"
#: Schema-metadata key of the consolidated manifest holding the set hash it was built for.
CONSOLIDATED_HASH_KEY = b"realgap.content_hash"

#: The manifest's columns, in order, with their Arrow types (docs/interfaces.md).
MANIFEST_SCHEMA = pa.schema(
    [
        pa.field("frame_id", pa.string(), nullable=False),
        pa.field("domain", pa.string(), nullable=False),
        pa.field("episode", pa.int64(), nullable=False),
        pa.field("step", pa.int32(), nullable=False),
        pa.field("task", pa.string(), nullable=False),
        pa.field("action", pa.list_(pa.float32()), nullable=False),
        pa.field("state", pa.list_(pa.float32()), nullable=False),
        pa.field("factors", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("pair_id", pa.string(), nullable=True),
    ]
)
MANIFEST_COLUMNS: tuple[str, ...] = tuple(MANIFEST_SCHEMA.names)

EpisodeId = tuple[str, str, int]


def episode_key(domain: str, task: str, episode: int) -> str:
    """Directory name of one episode: ``<domain>--<task>--<episode:09d>``.

    Domain and task are percent-encoded (``-`` included), so the ``--`` separator is
    unambiguous and any label is a safe file name; labels longer than 80 encoded
    characters are cut and suffixed with ``~`` and 16 hex digits of their SHA-256.
    """
    return f"{_label(domain)}--{_label(task)}--{int(episode):09d}"


def _label(text: str, limit: int = 80) -> str:
    """Percent-encoded ``text``; long labels keep a prefix plus a hash, to fit file names."""
    q = quote(text, safe="_.")
    if len(q) <= limit:
        return q
    return f"{q[: limit - 17]}~{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def frame_id(domain: str, task: str, episode: int, step: int) -> str:
    """Unique, human-readable id of one frame: ``domain/task/episode/step``."""
    return f"{domain}/{task}/{int(episode)}/{int(step)}"


def canonical_json(obj: Any) -> str:
    """JSON text with sorted keys and no whitespace: equal values give equal bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def hash_episode(table: pa.Table, images: Mapping[str, np.ndarray]) -> str:
    """BLAKE2b-256 of one episode: its manifest rows and the raw bytes of every camera.

    The manifest contributes each column's values in a fixed order (text as UTF-8,
    numbers as little-endian bytes), cameras contribute their name, shape and pixels in
    sorted camera order. Independent of the Parquet encoding, so re-encoding a file with
    another compression does not change the hash. BLAKE2b rather than SHA-256 because
    hashing every pixel dominates write time and BLAKE2b is ~1.7x faster in software
    here (benchmarks/README.md); both are cryptographic, so equal hashes mean equal data.
    """
    h = hashlib.blake2b(digest_size=32)
    for name in MANIFEST_COLUMNS:
        col = table.column(name).combine_chunks()
        h.update(name.encode())
        if name in ("action", "state"):
            flat = col.flatten().to_numpy(zero_copy_only=False).astype("<f4")
            offsets = col.offsets.to_numpy().astype("<i8")
            h.update(offsets.tobytes())
            h.update(flat.tobytes())
        elif name in ("episode", "step"):
            h.update(col.to_numpy().astype("<i8").tobytes())
        else:
            h.update(b"".join(b"\x00" if v is None else b"\x01" + v.encode() + b"\x1f"
                              for v in col.to_pylist()))
    for cam in sorted(images):
        arr = np.ascontiguousarray(images[cam])
        h.update(cam.encode() + b"\x1e" + canonical_json(list(arr.shape)).encode())
        h.update(memoryview(arr).cast("B"))
    return h.hexdigest()


def combine_hashes(episode_hashes: Iterable[tuple[str, str]]) -> str:
    """Content hash of a set from ``(episode key, episode hash)`` pairs, order-free.

    ``sha256("realgap-frameset-v<FORMAT_VERSION>\\n" + "".join(sorted(f"{key} {hash}\\n")))``;
    the empty set has a well-defined hash too.
    """
    h = hashlib.sha256(f"realgap-frameset-v{FORMAT_VERSION}\n".encode())
    for line in sorted(f"{k} {v}\n" for k, v in episode_hashes):
        h.update(line.encode())
    return h.hexdigest()


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to ``path`` through a temp file and ``os.replace`` (never a torn file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def lock_holder(root: Path) -> int | None:
    """Pid of the live process holding ``root``'s writer lock, or None (no lock, stale lock)."""
    try:
        pid = int((root / LOCK_NAME).read_text().strip() or "0")
    except (OSError, ValueError):
        return None
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, owned by another user
        return pid
    return pid


def read_json(path: Path, what: str) -> Any:
    """Read a JSON file, turning a missing or corrupt file into a realgap error."""
    if not path.is_file() and what == "meta.json":
        raise MissingFileError(f"{path}: {what} not found; pass a FrameSet directory (one holding "
                               "meta.json), or convert other datasets with `realgap data convert`")
    if not path.is_file():
        raise MissingFileError(f"{path}: {what} not found; the episode directory is incomplete, "
                               "delete it and regenerate or reconvert the episode")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(
            f"{path}: {what} is not valid JSON ({exc.__class__.__name__}: {exc}); "
            "restore it or regenerate the FrameSet"
        ) from exc


def read_meta(root: Path) -> dict[str, Any]:
    """Read and version-check ``<root>/meta.json``.

    Raises:
        MissingFileError: ``root`` or its ``meta.json`` does not exist.
        FormatVersionError: ``format_version`` is missing or not :data:`FORMAT_VERSION`.
    """
    if not root.exists():
        raise MissingFileError(f"{root}: no such FrameSet directory; check the path")
    if not root.is_dir():
        raise DataError(f"{root}: is a file, not a FrameSet directory; pass the directory "
                        "that holds meta.json (convert other formats with `realgap data convert`)")
    meta = read_json(root / META_NAME, "meta.json")
    if not isinstance(meta, dict):
        raise DataError(f"{root / META_NAME}: expected a JSON object, got "
                        f"{type(meta).__name__}; restore it or regenerate the FrameSet")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise FormatVersionError(
            f"{root / META_NAME}: FrameSet format_version {version!r} is not supported "
            f"(this realgap reads version {FORMAT_VERSION}); convert it with a matching "
            "realgap version or regenerate it"
        )
    return meta


def list_episode_dirs(root: Path) -> list[str]:
    """Names of the complete episode directories (sorted); temp dirs are not listed."""
    ep_dir = root / EPISODES_DIR
    if not ep_dir.is_dir():
        return []
    return sorted(p.name for p in ep_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def sort_key(record: Mapping[str, Any]) -> tuple[str, str, int]:
    """Canonical episode order: by domain, task, then episode number."""
    return (str(record["domain"]), str(record["task"]), int(record["episode"]))


def load_records(root: Path, meta: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Episode records of every complete episode on disk, in canonical order.

    Records come from ``meta.json`` where it has them and from each episode's own
    ``episode.json`` otherwise (a crash between renaming an episode into place and
    rewriting ``meta.json``). Records of episodes no longer on disk are dropped.
    """
    cached: dict[str, Any] = dict(meta.get("episodes") or {})
    records = []
    for key in list_episode_dirs(root):
        rec = cached.get(key)
        if rec is None:
            rec = read_json(root / EPISODES_DIR / key / EPISODE_RECORD, "episode.json")
        records.append({**rec, "key": key})
    records.sort(key=sort_key)
    return records


def read_consolidated(root: Path, content_hash: str) -> pa.Table | None:
    """The consolidated manifest if it exists and was built for ``content_hash``, else None."""
    path = root / CONSOLIDATED_MANIFEST
    if not path.is_file():
        return None
    try:
        schema = pq.read_schema(path)
        if (schema.metadata or {}).get(CONSOLIDATED_HASH_KEY, b"").decode() != content_hash:
            return None
        return pq.read_table(path).cast(MANIFEST_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError, ValueError):
        return None  # a damaged cache is ignored: the per-episode parts are the truth


def write_consolidated(root: Path, table: pa.Table, content_hash: str) -> None:
    """Write the consolidated manifest atomically, tagged with ``content_hash``."""
    tagged = table.replace_schema_metadata({CONSOLIDATED_HASH_KEY: content_hash.encode()})
    tmp = root / f".{CONSOLIDATED_MANIFEST}.{os.getpid()}.tmp"
    pq.write_table(tagged, tmp, compression="zstd")
    os.replace(tmp, root / CONSOLIDATED_MANIFEST)
