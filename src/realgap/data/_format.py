"""The FrameSet on-disk layout, its version, and its content hash.

A FrameSet is a directory::

    <root>/
      meta.json                      summary: format_version, content_hash, domains, cameras,
                                     tasks, source, created, counts, and one record per episode
      episodes/
        <key>/                       one complete episode (a directory renamed into place)
          manifest.parquet           the episode's manifest rows (schema: MANIFEST_SCHEMA)
          <camera>.zst               the camera's frames, compressed losslessly (codec
                                     ``zstd-up``, see :mod:`realgap.data._images`)
          episode.json               the episode's record (domain, task, episode, n_frames,
                                     shapes, manifest hash, per-camera image entry with its
                                     file hash): the same record meta.json holds
      videos/<blake2b>.<ext>         source videos kept as they are (codec ``video``), one
                                     copy per distinct file, shared by the episodes in it
      manifest.parquet               all episodes' manifest rows in canonical order, a cache
                                     rebuilt when a writer closes; used only when the content
                                     hash in its schema metadata equals the set's
      .tmp/                          episodes being written (ignored by readers)

Version 3 (this one) stores images compressed (:mod:`realgap.data._images`); version 2
stored ``<camera>.npy`` raw arrays and hashed pixels. Version-2 sets stay readable (their
records carry no ``images`` entries; their hash is :func:`hash_episode`); writers only
write version 3, so appending to a version-2 set is refused (``realgap data upgrade``
copies it into a version-3 set).

Why per-episode directories (and not one zarr array, one HDF5 file, or one file per
frame):

- *Atomic and append-only.* An episode is written into ``.tmp/<key>.<pid>`` and moved into
  ``episodes/<key>`` with one ``os.rename`` of the directory, which POSIX makes atomic: a
  crash leaves either the whole episode (manifest rows and every camera) or nothing. Nothing
  already on disk is ever rewritten, so a failing writer cannot damage earlier episodes. A
  single growing zarr/HDF5 array would need resize-then-write, leaving a torn tail on crash
  (and HDF5 can corrupt the whole file).
- *Sequential reads in chunks.* A batch of consecutive frames is one or two compressed
  chunks of one file (the chunk offsets are in the record, so no index is parsed).
- *Cheap incremental, verifiable hashing.* Each image file's BLAKE2b and the manifest
  rows' hash (:func:`hash_manifest`) are recorded when the episode is written. The episode
  hash (:func:`episode_hash`) is *computed* from them whenever a set is opened, never read
  from disk, and the set's hash combines the sorted episode hashes (:func:`combine_hashes`),
  so it does not depend on write order. Readers verify each file against its recorded
  hash before using it (once per process), and the manifest rows against their hash when
  the set is opened: the content hash is the hash of what is actually read.

The consolidated ``manifest.parquet`` exists because opening a set by reading one small
Parquet file per episode costs a few ms per file (seconds for a thousand episodes); with it,
opening reads one file. A crash before it is rebuilt only makes opening slower. Its rows
are checked, episode by episode, against the recorded manifest hashes when a set is
opened: an edited consolidated manifest is refused, never trusted.

``meta.json`` is a cache of the episode records, rewritten (write temp, ``os.replace``)
after each episode. The ``episodes/`` directory is the truth: if a crash falls between the
rename of an episode and the rewrite of ``meta.json``, readers pick the episode up from its
own ``episode.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from realgap.errors import DataError, FormatVersionError, MissingFileError

#: Version of this on-disk layout (what writers write). 2: episode hashes are BLAKE2b-256
#: (version 1, the first day of the project, used SHA-256). 3: images compressed per
#: episode and camera, a hash per file, episode hashes computed from file and manifest
#: hashes.
FORMAT_VERSION = 3
#: Versions :func:`read_meta` accepts (version 2 is read-only).
READ_VERSIONS = (2, 3)
#: Largest episode number (the manifest stores it as int64).
MAX_EPISODE = 2**63 - 1

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
    """Version-2 episode hash: BLAKE2b-256 of the manifest rows and every camera's pixels.

    (Version 3 uses :func:`episode_hash`; this one is kept to read version-2 sets.)

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


def hash_manifest(table: pa.Table) -> str:
    """BLAKE2b-256 of manifest rows (an episode's part, or its slice of a larger table).

    Each column contributes its name and its values in a normalised byte form: numbers
    as little-endian int64/float32, text as UTF-8 bytes with offsets rebased to 0, a
    validity mask for the nullable ``pair_id``. Works on Arrow buffers (no Python objects
    per row), and a slice hashes like the same rows written on their own; see
    :func:`hash_manifest_slices` for many episodes of one table at once.
    """
    return hash_manifest_slices(table, [table.num_rows])[0]


def hash_manifest_slices(table: pa.Table, counts: Sequence[int]) -> list[str]:
    """:func:`hash_manifest` of consecutive row slices of ``table`` (``counts`` rows each).

    The columns are normalised once for the whole table, then each slice costs a few
    buffer views, so checking the consolidated manifest of a set with thousands of
    episodes takes milliseconds, not seconds.
    """
    cols: list[tuple[bytes, str, tuple[Any, ...]]] = []
    for name in MANIFEST_COLUMNS:
        col = table.column(name).combine_chunks()
        tag = name.encode() + b"\x1d"
        if pa.types.is_list(col.type):
            offs = col.offsets.to_numpy().astype("<i8")
            vals = col.flatten().to_numpy(zero_copy_only=False).astype("<f4")
            cols.append((tag, "list", (offs, offs[0] if len(offs) else 0, vals)))
        elif pa.types.is_integer(col.type):
            cols.append((tag, "int", (col.to_numpy(zero_copy_only=False).astype("<i8"),)))
        else:
            bufs = col.buffers()
            offs = np.frombuffer(bufs[1], dtype=np.int32)[col.offset : col.offset + len(col) + 1]
            valid = np.asarray(col.is_valid()).astype(np.uint8)
            data = memoryview(bufs[2]) if bufs[2] is not None else memoryview(b"")
            cols.append((tag, "str", (offs.astype("<i8"), valid, data)))
    out = []
    a = 0
    for n in counts:
        b = a + int(n)
        h = hashlib.blake2b(digest_size=32)
        h.update(f"rows {b - a}\n".encode())
        for tag, kind, arrs in cols:
            h.update(tag)
            if b == a:
                continue
            if kind == "list":
                offs, base, vals = arrs
                h.update((offs[a : b + 1] - offs[a]).tobytes())
                h.update(vals[offs[a] - base : offs[b] - base].tobytes())
            elif kind == "int":
                h.update(arrs[0][a:b].tobytes())
            else:
                offs, valid, data = arrs
                h.update(valid[a:b].tobytes())
                h.update((offs[a : b + 1] - offs[a]).tobytes())
                h.update(data[int(offs[a]) : int(offs[b])])
        out.append(h.hexdigest())
        a = b
    return out


def episode_hash(manifest_hash: str, images: Mapping[str, Mapping[str, Any]]) -> str:
    """Version-3 episode hash: BLAKE2b-256 of the manifest hash and the image entries.

    The image entries hold each file's BLAKE2b and how its bytes map to frames (codec,
    chunk offsets or video pts), so the hash changes with any stored byte, and it is
    recomputed from the record on every open rather than read from disk.
    """
    text = canonical_json({"manifest": manifest_hash, "images": dict(images)})
    return hashlib.blake2b(text.encode(), digest_size=32).hexdigest()


def combine_hashes(episode_hashes: Iterable[tuple[str, str]], version: int = FORMAT_VERSION) -> str:
    """Content hash of a set from ``(episode key, episode hash)`` pairs, order-free.

    ``sha256("realgap-frameset-v<version>\\n" + "".join(sorted(f"{key} {hash}\\n")))``;
    the empty set has a well-defined hash too.
    """
    h = hashlib.sha256(f"realgap-frameset-v{int(version)}\n".encode())
    for line in sorted(f"{k} {v}\n" for k, v in episode_hashes):
        h.update(line.encode())
    return h.hexdigest()


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to ``path`` through a temp file and ``os.replace`` (never a torn file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk must not leave a partial temp file
        raise


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
    if isinstance(version, bool) or version not in READ_VERSIONS:
        raise FormatVersionError(
            f"{root / META_NAME}: FrameSet format_version {version!r} is not supported "
            f"(this realgap reads versions {', '.join(map(str, READ_VERSIONS))}); convert it "
            "with a matching realgap version or regenerate it"
        )
    _check_meta_types(root / META_NAME, meta)
    return meta


#: meta.json fields a reader uses, and the JSON types they must have.
_META_TYPES: dict[str, tuple[type, ...]] = {
    "episodes": (dict,), "declared_domains": (list,), "domains": (list,), "tasks": (list,),
    "cameras": (dict,), "n_episodes": (int,), "n_frames": (int,), "sources": (list,),
    "content_hash": (str,), "source": (str,), "created": (str,), "updated": (str,),
}


def _check_meta_types(path: Path, meta: Mapping[str, Any]) -> None:
    for name, types in _META_TYPES.items():
        if name in meta and meta[name] is not None and (
                not isinstance(meta[name], types) or isinstance(meta[name], bool)):
            raise DataError(f"{path}: field {name!r} is {type(meta[name]).__name__} "
                            f"{str(meta[name])[:40]!r}, expected {types[0].__name__}; restore "
                            "meta.json or regenerate the FrameSet")
    for name in ("declared_domains", "domains"):
        if any(not isinstance(d, str) for d in meta.get(name) or []):
            raise DataError(f"{path}: {name!r} must list strings, got {meta[name]!r:.60}; "
                            "restore meta.json or regenerate the FrameSet")


_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CAMERA_RE = re.compile(r"[A-Za-z0-9_.-]{1,100}")
# Codec names and file-name patterns of records (the codecs live in realgap.data._images).
ZSTD_CODEC = "zstd-up"
VIDEO_CODEC = "video"
EPISODE_FILE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,120}\.zst$")
VIDEO_FILE_RE = re.compile(r"^videos/[0-9a-f]{64}\.[a-z0-9]{1,8}$")


def _is_int(x: Any, lo: int = 0, hi: int = MAX_EPISODE) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and lo <= x <= hi


def check_record(rec: Any, where: Path, version: int) -> dict[str, Any]:
    """Check the types and ranges of one episode record (from meta.json or episode.json).

    Records are data from disk: every field a reader uses is checked here, once, so a
    wrong type ends in one :class:`DataError` naming the file instead of a traceback
    deep inside a reader. Returns the record (unchanged).
    """
    def bad(what: str) -> DataError:
        return DataError(f"{where}: episode record {what}; restore the file, or delete the "
                         "episode directory and regenerate or reconvert it")

    if not isinstance(rec, dict):
        raise bad(f"is {type(rec).__name__}, expected a JSON object")
    for name in ("domain", "task", "source"):
        if not isinstance(rec.get(name), str) or not rec[name]:
            raise bad(f"field {name!r} is {rec.get(name)!r:.40}, expected a non-empty string")
    if not _is_int(rec.get("episode")):
        raise bad(f"field 'episode' is {rec.get('episode')!r:.40}, expected an integer in "
                  f"0..{MAX_EPISODE}")
    if not _is_int(rec.get("n_frames"), 1):
        raise bad(f"field 'n_frames' is {rec.get('n_frames')!r:.40}, expected an integer >= 1")
    for name in ("action_dim", "state_dim"):
        if not _is_int(rec.get(name), 0, 1 << 20):
            raise bad(f"field {name!r} is {rec.get(name)!r:.40}, expected an integer >= 0")
    cams = rec.get("cameras")
    if not isinstance(cams, dict) or not cams:
        raise bad(f"field 'cameras' is {cams!r:.40}, expected {{camera: [H, W, 3]}}")
    for cam, shp in cams.items():
        if (not _CAMERA_RE.fullmatch(cam) or not isinstance(shp, list)
                or len(shp) != 3 or not all(_is_int(v, 1, 1 << 16) for v in shp) or shp[2] != 3):
            raise bad(f"camera {cam!r:.40} has shape {shp!r:.40}, expected [H, W, 3]")
    if version < 3:
        if not isinstance(rec.get("hash"), str):
            raise bad(f"field 'hash' is {rec.get('hash')!r:.40}, expected a string")
        return rec
    if not isinstance(rec.get("manifest_hash"), str) or not _HEX64.match(rec["manifest_hash"]):
        raise bad(f"field 'manifest_hash' is {rec.get('manifest_hash')!r:.40}, expected 64 hex digits")
    images = rec.get("images")
    if not isinstance(images, dict) or sorted(images) != sorted(cams):
        raise bad(f"field 'images' is {images!r:.60}, expected one entry per camera {sorted(cams)}")
    n = rec["n_frames"]
    for cam, e in images.items():
        _check_image_entry(e, cam, n, bad)
    return rec


def _check_image_entry(e: Any, cam: str, n: int, bad: Any) -> None:
    if not isinstance(e, dict):
        raise bad(f"images[{cam!r}] is {e!r:.40}, expected an object")
    if not isinstance(e.get("blake2b"), str) or not _HEX64.match(e["blake2b"]):
        raise bad(f"images[{cam!r}].blake2b is {e.get('blake2b')!r:.40}, expected 64 hex digits")
    if not _is_int(e.get("bytes"), 0, 1 << 62):
        raise bad(f"images[{cam!r}].bytes is {e.get('bytes')!r:.40}, expected an integer >= 0")
    codec, file = e.get("codec"), e.get("file")
    if codec == ZSTD_CODEC:
        if not isinstance(file, str) or not EPISODE_FILE_RE.match(file):
            raise bad(f"images[{cam!r}].file is {file!r:.60}, expected a file name in the "
                      "episode directory")
        k, offs = e.get("chunk_frames"), e.get("offsets")
        if not _is_int(k, 1, 1 << 20):
            raise bad(f"images[{cam!r}].chunk_frames is {k!r:.40}, expected an integer >= 1")
        if (not isinstance(offs, list) or len(offs) != -(-n // k) + 1
                or not all(_is_int(o, 0, 1 << 62) for o in offs) or offs[0] != 0
                or any(b < a for a, b in pairwise(offs))
                or offs[-1] != e["bytes"]):
            raise bad(f"images[{cam!r}].offsets is {offs!r:.60}, expected "
                      f"{-(-n // k) + 1} increasing byte offsets from 0 to 'bytes'")
    elif codec == VIDEO_CODEC:
        if not isinstance(file, str) or not VIDEO_FILE_RE.match(file):
            raise bad(f"images[{cam!r}].file is {file!r:.60}, expected videos/<blake2b>.<ext>")
        pts = e.get("pts")
        if (not isinstance(pts, list) or len(pts) != n
                or not all(_is_int(p, -(1 << 62), 1 << 62) for p in pts)):
            raise bad(f"images[{cam!r}].pts is {pts!r:.60}, expected {n} integer timestamps")
    else:
        raise bad(f"images[{cam!r}].codec is {codec!r:.40}, expected one of "
                  "'zstd-up', 'video'")


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
    version = int(meta["format_version"])
    records = []
    for key in list_episode_dirs(root):
        rec = cached.get(key)
        where = root / META_NAME
        if rec is None:
            where = root / EPISODES_DIR / key / EPISODE_RECORD
            rec = read_json(where, "episode.json")
        check_record(rec, where, version)
        if episode_key(rec["domain"], rec["task"], rec["episode"]) != key:
            raise DataError(f"{where}: record of episode directory {key!r} names "
                            f"{rec['domain']!r}/{rec['task']!r}/{rec['episode']}; restore the "
                            "file, or delete the episode directory and reconvert it")
        rec = {**rec, "key": key}
        if version >= 3:
            rec["hash"] = episode_hash(rec["manifest_hash"], rec["images"])
        records.append(rec)
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
    try:
        pq.write_table(tagged, tmp, compression="zstd")
        os.replace(tmp, root / CONSOLIDATED_MANIFEST)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
