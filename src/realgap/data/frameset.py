"""FrameSet: a read-only view of frames with provenance (manifest table + image store).

Data conventions (docs/interfaces.md, DESIGN.md "FrameSet"):

- rows: one per frame, in canonical order (domain, task, episode, then step); a view
  (:meth:`FrameSet.select`) keeps a subset of rows in that order, and *positional
  indices* (``images(camera, index)``, ``iter_images``) count rows of the view from 0;
- images: ``uint8 (N, H, W, 3)`` per camera, RGB;
- actions: ``float32 (N, A)``; states: ``float32 (N, S)``, ``S`` may be 0;
- factors: one JSON object per frame, flattened by :func:`flatten_factors` into columns
  named by dotted paths (``LT.intensity``, ``CP.offset.0``).

The layout on disk is described in :mod:`realgap.data._format`, image storage and its
verification in :mod:`realgap.data._images`: every image file is checked against its
recorded hash before its bytes are used (once per process), and the manifest rows
against their recorded hashes when the set is opened, so :attr:`FrameSet.content_hash`
is the hash of what is actually read. Version-2 sets (raw ``.npy``) are read too; their
episodes are verified by rehashing manifest and pixels on first use.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from realgap.data import _images
from realgap.data._format import (
    CONSOLIDATED_MANIFEST,
    EPISODE_MANIFEST,
    EPISODES_DIR,
    MANIFEST_COLUMNS,
    MANIFEST_SCHEMA,
    combine_hashes,
    hash_episode,
    hash_manifest,
    hash_manifest_slices,
    load_records,
    read_consolidated,
    read_meta,
)
from realgap.errors import ConfigError, DataError, MissingFileError

#: Memory-mapped episode arrays of version-2 sets kept open per FrameSet (LRU).
MAX_OPEN_ARRAYS = 512
#: Decoded image chunks kept per FrameSet (bytes, LRU).
CHUNK_CACHE_BYTES = 256 << 20


class _Store:
    """Everything shared by a FrameSet and its views: records, manifest, decoded chunks."""

    def __init__(self, root: Path, meta: dict[str, Any], records: list[dict[str, Any]]) -> None:
        self.root = root
        self.meta = meta
        self.version = int(meta["format_version"])
        self.records = records
        self.content_hash = combine_hashes(((r["key"], r["hash"]) for r in records), self.version)
        self.table = _read_manifest(root, records, self.content_hash, self.version)
        counts = np.array([int(r["n_frames"]) for r in records], dtype=np.int64)
        self.ep_of_row = np.repeat(np.arange(len(records), dtype=np.int64), counts)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]) if len(counts) else counts
        self.ep_start = starts
        self.offset_in_ep = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(starts, counts)
        self._arrays: dict[tuple[int, str], np.ndarray] = {}
        self._chunks = _images.ChunkCache(CHUNK_CACHE_BYTES)
        self._verified_v2: set[int] = set()
        self._manifest: pd.DataFrame | None = None
        self._matrices: dict[str, np.ndarray] = {}
        self._factors: pd.DataFrame | None = None

    # -- verification ------------------------------------------------------------------
    def file_path(self, ep: int, camera: str) -> Path:
        """Path of the file holding episode ``ep``'s frames of ``camera``."""
        rec = self.records[ep]
        if self.version < 3:
            return self.root / EPISODES_DIR / rec["key"] / f"{camera}.npy"
        entry = rec["images"][camera]
        if entry["codec"] == _images.VIDEO_CODEC:
            return self.root / entry["file"]
        return self.root / EPISODES_DIR / rec["key"] / entry["file"]

    def verify(self, ep: int, camera: str | None = None) -> None:
        """Check episode ``ep``'s image files (one camera or all) against their record.

        Version 3: each file's BLAKE2b, hashed at most once per process. Version 2: the
        episode hash over its manifest rows and every camera's pixels, once per store.
        """
        rec = self.records[ep]
        if self.version < 3:
            if ep in self._verified_v2:
                return
            n = int(rec["n_frames"])
            arrays = {c: self._load_npy(ep, c) for c in rec["cameras"]}
            part = self.table.slice(int(self.ep_start[ep]), n)
            if hash_episode(part, arrays) != rec["hash"]:
                raise DataError(f"{self.root / EPISODES_DIR / rec['key']}: episode content hash "
                                "differs from its record: files were changed after writing; "
                                f"refusing to use it (run `realgap data validate {self.root}`)")
            self._verified_v2.add(ep)
            return
        for cam in (rec["cameras"] if camera is None else [camera]):
            _images.verify_file(self.file_path(ep, cam), rec["images"][cam]["blake2b"], self.root)

    # -- frames ------------------------------------------------------------------------
    def frames(self, ep: int, camera: str, offs: np.ndarray) -> np.ndarray:
        """``uint8 (len(offs), H, W, 3)``: frames ``offs`` (positions within episode ``ep``)."""
        self.verify(ep, camera)
        if self.version < 3:
            arr = self._load_npy(ep, camera)
            if len(offs) and offs[-1] - offs[0] == len(offs) - 1 and np.all(np.diff(offs) == 1):
                return arr[offs[0] : offs[-1] + 1]
            return arr[offs]
        rec = self.records[ep]
        entry = rec["images"][camera]
        k = int(entry.get("chunk_frames", _images.CHUNK_FRAMES))
        h, w, c = rec["cameras"][camera]
        out = np.empty((len(offs), h, w, c), dtype=np.uint8)
        if len(offs) and offs[-1] - offs[0] == len(offs) - 1 and np.all(np.diff(offs) == 1):
            # consecutive frames (the usual batch): copy slices of each chunk they span
            first, last = int(offs[0]), int(offs[-1])
            for i in range(first // k, last // k + 1):
                lo, hi = max(first, i * k), min(last + 1, (i + 1) * k)
                out[lo - first : hi - first] = self.chunk(ep, camera, i)[lo - i * k : hi - i * k]
            return out
        which = offs // k
        for i in np.unique(which):
            sel = which == i
            out[sel] = self.chunk(ep, camera, int(i))[offs[sel] - int(i) * k]
        return out

    def chunk(self, ep: int, camera: str, i: int) -> np.ndarray:
        """Decoded chunk ``i`` of episode ``ep``'s ``camera`` (cached, LRU by bytes)."""
        key = (ep, camera, i)
        arr = self._chunks.get(key)
        if arr is not None:
            return arr
        rec = self.records[ep]
        entry = rec["images"][camera]
        n, shape = int(rec["n_frames"]), rec["cameras"][camera]
        path = self.file_path(ep, camera)
        if entry["codec"] == _images.ZSTD_CODEC:
            arr = _images.read_zstd_chunk(path, entry, i, n, shape)
        else:
            k = _images.CHUNK_FRAMES
            arr = _images.decode_video(path, entry["pts"][i * k : (i + 1) * k])
            want = (min(k, n - i * k), *shape)
            if arr.shape != want:
                raise DataError(f"{path}: video frames are {arr.shape[1:]}, the record says "
                                f"{tuple(shape)}; run `realgap data validate {self.root}`")
        self._chunks.put(key, arr)
        return arr

    def _load_npy(self, ep: int, camera: str) -> np.ndarray:
        """Memory-mapped ``uint8 (T, H, W, 3)`` of one version-2 episode's camera.

        At most :data:`MAX_OPEN_ARRAYS` maps stay open (least recently used dropped), so
        sets of many thousands of episodes stay below the kernel's limit on memory maps.
        """
        arr = self._arrays.pop((ep, camera), None)
        if arr is None:
            rec = self.records[ep]
            arr = load_image_array(self.file_path(ep, camera), int(rec["n_frames"]),
                                   rec["cameras"][camera])
            if len(self._arrays) >= MAX_OPEN_ARRAYS:
                self._arrays.pop(next(iter(self._arrays)))
        self._arrays[(ep, camera)] = arr  # (re)inserted last: most recently used
        return arr

    def manifest(self) -> pd.DataFrame:
        if self._manifest is None:
            self._manifest = self.table.to_pandas()
        return self._manifest

    def matrix(self, column: str) -> np.ndarray:
        """``float32 (N, dim)`` of the list column ``action`` or ``state`` (cached)."""
        if column not in self._matrices:
            dim = int(self.records[0][f"{column}_dim"]) if self.records else 0
            col = self.table.column(column).combine_chunks()
            flat = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
            self._matrices[column] = flat.reshape(len(self.table), dim)
        return self._matrices[column]

    def factors(self) -> pd.DataFrame:
        if self._factors is None:
            rows = [flatten_factors(json.loads(t)) for t in self.table.column("factors").to_pylist()]
            self._factors = pd.DataFrame.from_records(rows, index=range(len(rows)))
            self._factors = self._factors.reindex(sorted(self._factors.columns), axis=1)
        return self._factors


class FrameSet:
    """Frames with provenance, read from a FrameSet directory; see the module docstring.

    Open with :meth:`FrameSet.open`; :meth:`select` gives views that share the store.
    """

    def __init__(self, store: _Store, rows: np.ndarray | None = None) -> None:
        self._store = store
        n = len(store.table)
        self._rows = np.arange(n, dtype=np.int64) if rows is None else rows
        # A view that keeps every row is the set itself (same hash, same caches).
        self._is_full = rows is None or (
            len(rows) == n and bool(np.array_equal(rows, np.arange(n))))

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> FrameSet:
        """Open the FrameSet at ``path``.

        Raises:
            MissingFileError: no such directory or no ``meta.json``.
            FormatVersionError: an unsupported ``format_version``.
            DataError: a corrupt ``meta.json``, episode record or manifest part.
        """
        root = Path(path)
        meta = read_meta(root)
        records = load_records(root, meta)
        return cls(_Store(root, meta, records))

    # -- identity ----------------------------------------------------------------------
    @property
    def root(self) -> Path:
        return self._store.root

    @property
    def meta(self) -> dict[str, Any]:
        """``meta.json`` as a dict (``content_hash`` as recomputed from the episodes)."""
        return {**self._store.meta, "content_hash": self._store.content_hash}

    @property
    def content_hash(self) -> str:
        """Stable hash of the manifest and image bytes of this set or view.

        The full set's hash is :func:`~realgap.data._format.combine_hashes` of its episode
        hashes; a view's hash is ``sha256(set hash + the view's row positions)``, so caches
        keyed on it never mix a view with its parent.
        """
        if self._is_full:
            return self._store.content_hash
        h = hashlib.sha256(f"{self._store.content_hash}\nview\n".encode())
        h.update(self._rows.astype("<i8").tobytes())
        return h.hexdigest()

    @property
    def cameras(self) -> list[str]:
        return sorted(self._store.records[0]["cameras"]) if self._store.records else []

    @property
    def domains(self) -> list[str]:
        """Domain labels present in this set or view, sorted."""
        if self._is_full:
            return sorted({r["domain"] for r in self._store.records})
        return sorted(set(self.manifest["domain"]))

    @property
    def tasks(self) -> list[str]:
        if self._is_full:
            return sorted({r["task"] for r in self._store.records})
        return sorted(set(self.manifest["task"]))

    def image_shape(self, camera: str) -> tuple[int, int, int]:
        """``(H, W, 3)`` of ``camera``."""
        self._check_camera(camera)
        return tuple(self._store.records[0]["cameras"][camera])  # type: ignore[return-value]

    def __len__(self) -> int:
        return int(self._rows.shape[0])

    def __repr__(self) -> str:
        return (f"FrameSet({str(self.root)!r}, frames={len(self)}, domains={self.domains}, "
                f"cameras={self.cameras}, hash={self.content_hash[:12]})")

    # -- tables ------------------------------------------------------------------------
    @property
    def manifest(self) -> pd.DataFrame:
        """One row per frame of this view (columns: ``MANIFEST_COLUMNS``), index 0..N-1.

        A new DataFrame each call (pandas copy-on-write: cheap), so callers may modify it.
        """
        full = self._store.manifest()
        if self._is_full:
            return full.copy(deep=False)
        return full.iloc[self._rows].reset_index(drop=True)

    def actions(self) -> np.ndarray:
        """``float32 (N, A)``."""
        return self._store.matrix("action")[self._rows]

    def states(self) -> np.ndarray:
        """``float32 (N, S)``; ``S`` may be 0."""
        return self._store.matrix("state")[self._rows]

    def factors(self) -> pd.DataFrame:
        """Flattened factor columns (see :func:`flatten_factors`), one row per frame."""
        return self._store.factors().iloc[self._rows].reset_index(drop=True)

    def episodes(self) -> np.ndarray:
        """``int64 (N,)`` group label per frame, unique per (domain, task, episode).

        Use it for episode-level splits and bootstraps; the manifest's ``episode``
        column alone may repeat across domains and tasks.
        """
        return self._store.ep_of_row[self._rows]

    # -- views -------------------------------------------------------------------------
    def select(
        self,
        domain: str | Sequence[str] | None = None,
        task: str | Sequence[str] | None = None,
        episode: int | Sequence[int] | None = None,
        rows: Sequence[int] | np.ndarray | None = None,
    ) -> FrameSet:
        """A view over the rows matching every given filter (same store, no copy).

        ``domain``/``task``/``episode`` take one value or a sequence of values; ``rows``
        takes positional indices of this view (kept in canonical order).
        """
        mask = np.ones(len(self), dtype=bool)
        m = self.manifest
        for name, val in (("domain", domain), ("task", task), ("episode", episode)):
            if val is None:
                continue
            vals = [val] if isinstance(val, (str, int, np.integer)) else list(val)
            mask &= m[name].isin(vals).to_numpy()
        if rows is not None:
            idx = self._positions(rows)
            sel = np.zeros(len(self), dtype=bool)
            sel[idx] = True
            mask &= sel
        return FrameSet(self._store, self._rows[mask])

    # -- images ------------------------------------------------------------------------
    def images(self, camera: str, index: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """``uint8 (N, H, W, 3)`` for the view's rows, or for positional ``index``."""
        self._check_camera(camera)
        rows = self._rows if index is None else self._rows[self._positions(index)]
        h, w, c = self.image_shape(camera)
        out = np.empty((len(rows), h, w, c), dtype=np.uint8)
        if len(rows) == 0:
            return out
        eps = self._store.ep_of_row[rows]
        offs = self._store.offset_in_ep[rows]
        # Rows come in runs of one episode; read each run with one call.
        breaks = np.flatnonzero(np.diff(eps)) + 1
        for start, stop in zip(np.r_[0, breaks], np.r_[breaks, len(rows)], strict=True):
            out[start:stop] = self._store.frames(int(eps[start]), camera, offs[start:stop])
        return out

    def verify(self, camera: str | None = None) -> None:
        """Check the image files of this view's episodes (one camera or all) against their
        recorded hashes, hashing each file at most once per process.

        :meth:`images` does this for the files it reads; call it where results are reused
        without reading the frames (an embedding cache), so a changed file is refused
        there too.

        Raises:
            DataError: a file differs from its record (naming it and ``realgap data validate``).
        """
        if camera is not None:
            self._check_camera(camera)
        for ep in np.unique(self._store.ep_of_row[self._rows]):
            self._store.verify(int(ep), camera)

    def iter_images(
        self, camera: str, batch_size: int = 64
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(positional index int64 (B,), uint8 (B, H, W, 3))`` in row order."""
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self._check_camera(camera)
        for start in range(0, len(self), batch_size):
            idx = np.arange(start, min(start + batch_size, len(self)), dtype=np.int64)
            yield idx, self.images(camera, idx)

    # -- helpers -----------------------------------------------------------------------
    def _check_camera(self, camera: str) -> None:
        if camera not in self.cameras:
            raise ConfigError(
                f"{self.root}: camera {camera!r} not in this FrameSet; available: {self.cameras}"
            )

    def _positions(self, index: Sequence[int] | np.ndarray) -> np.ndarray:
        idx = np.asarray(index)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise ConfigError(f"boolean index has shape {idx.shape}, expected ({len(self)},)")
            return np.flatnonzero(idx)
        idx = idx.astype(np.int64, copy=False).reshape(-1)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise ConfigError(f"index out of range for {len(self)} frames: "
                              f"min {idx.min()}, max {idx.max()}")
        return np.where(idx < 0, idx + len(self), idx)


def open_frames(path: str | os.PathLike[str] | FrameSet) -> FrameSet:
    """A FrameSet from a path, or the FrameSet itself (for functions taking either)."""
    return path if isinstance(path, FrameSet) else FrameSet.open(path)


def flatten_factors(obj: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested factor dicts and numeric lists into dotted column names.

    >>> flatten_factors({"BG": 3, "LT": {"rgb": [1, 0.5, 0], "on": True}})
    {'BG': 3, 'LT.rgb.0': 1, 'LT.rgb.1': 0.5, 'LT.rgb.2': 0, 'LT.on': True}
    """
    out: dict[str, Any] = {}
    for k, v in obj.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten_factors(v, name + "."))
        elif isinstance(v, list) and all(not isinstance(x, (list, Mapping)) for x in v):
            out.update({f"{name}.{i}": x for i, x in enumerate(v)})
        elif isinstance(v, list):
            out.update(flatten_factors({str(i): x for i, x in enumerate(v)}, name + "."))
        else:
            out[name] = v
    return out


def load_image_array(path: Path, n_frames: int, shape: Sequence[int]) -> np.ndarray:
    """Memory-map one episode's ``.npy`` and check it holds uint8 ``(n_frames, *shape)``."""
    if not path.is_file():
        raise MissingFileError(f"{path}: image array missing; the episode is damaged, "
                               "delete its directory and regenerate it")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: image array is truncated or corrupt ({exc}); delete the "
                        "episode directory and regenerate or reconvert it") from exc
    expected = (n_frames, *[int(s) for s in shape])
    if arr.dtype != np.uint8 or arr.shape != expected:
        raise DataError(f"{path}: image array is {arr.dtype} {arr.shape}, expected uint8 "
                        f"{expected}; delete the episode directory and regenerate it")
    return arr


def _read_manifest(root: Path, records: list[dict[str, Any]], content_hash: str,
                   version: int) -> pa.Table:
    """The set's manifest rows, checked episode by episode against the recorded hashes.

    Version 3: the consolidated manifest when it is tagged with the set's hash, else the
    per-episode parts; either way each episode's rows must hash to its record's
    ``manifest_hash`` (an edited consolidated manifest or part is refused). Version 2
    records carry no manifest hash: the parts are read and checked with the pixels on
    first use (:meth:`_Store.verify`).
    """
    n = sum(int(r["n_frames"]) for r in records)
    if version >= 3:
        table = read_consolidated(root, content_hash)
        if table is not None and table.num_rows == n:
            got = hash_manifest_slices(table, [int(r["n_frames"]) for r in records])
            for r, h in zip(records, got, strict=True):
                if h != r["manifest_hash"]:
                    raise DataError(
                        f"{root / CONSOLIDATED_MANIFEST}: rows of episode {r['key']} differ from "
                        "that episode's recorded manifest hash: the consolidated manifest was "
                        "changed after writing; delete it (the next FrameSetWriter close rebuilds "
                        f"it) and run `realgap data validate {root}`")
            return table
    return read_manifest_parts(root, records, verify=version >= 3)


def read_manifest_parts(root: Path, records: list[dict[str, Any]], verify: bool = False) -> pa.Table:
    """Concatenate the per-episode manifest parts of ``records`` (in their order).

    With ``verify``, each part must hash to its record's ``manifest_hash``.
    """
    parts = []
    for rec in records:
        path = root / EPISODES_DIR / rec["key"] / EPISODE_MANIFEST
        part = read_manifest_part(path, int(rec["n_frames"]))
        if verify and hash_manifest(part) != rec["manifest_hash"]:
            raise DataError(f"{path}: manifest rows differ from the episode's recorded hash: the "
                            f"file was changed after writing; run `realgap data validate {root}`, "
                            "then delete the episode directory and reconvert it")
        parts.append(part)
    if not parts:
        return MANIFEST_SCHEMA.empty_table()
    return pa.concat_tables(parts)


def read_manifest_part(path: Path, n_frames: int | None = None) -> pa.Table:
    """Read one episode's manifest Parquet and check its columns, types and length."""
    if not path.is_file():
        raise MissingFileError(f"{path}: manifest part missing; the episode is damaged, "
                               "delete its directory and regenerate it")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, pa.ArrowIOError, OSError) as exc:
        raise DataError(f"{path}: Parquet file is truncated or corrupt "
                        f"({str(exc).splitlines()[0]}); delete the episode directory and "
                        "regenerate or reconvert it") from exc
    missing = [c for c in MANIFEST_COLUMNS if c not in table.column_names]
    if missing:
        raise DataError(f"{path}: manifest lacks columns {missing}; expected "
                        f"{list(MANIFEST_COLUMNS)}; rewrite it with FrameSetWriter")
    try:
        table = table.select(list(MANIFEST_COLUMNS)).cast(MANIFEST_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
        raise DataError(f"{path}: manifest column types differ from the FrameSet schema "
                        f"({exc}); rewrite it with FrameSetWriter") from exc
    if n_frames is not None and table.num_rows != n_frames:
        raise DataError(f"{path}: manifest has {table.num_rows} rows, episode.json says "
                        f"{n_frames}; delete the episode directory and regenerate it")
    return table
