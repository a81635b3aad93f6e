"""FrameSetWriter: append episodes to a FrameSet, each one atomically.

Layout, atomicity and hashing are described in :mod:`realgap.data._format`, image storage
in :mod:`realgap.data._images`. One writer per directory at a time (a ``.lock`` file
holding the writer's pid enforces it; a lock left by a dead process is taken over).

Two ways to land episodes:

- *one at a time* (default; generation): each episode is renamed into ``episodes/`` as
  soon as it is written, so an interrupted run keeps every finished episode and resumes;
- *staged* (``staged=True``; conversion): episodes are written complete into
  ``.tmp/stage/`` and published together by :meth:`FrameSetWriter.publish` (or a clean
  ``close``). If anything fails first (a bad frame half-way through a source, a full
  disk), :meth:`FrameSetWriter.abort` drops them and the existing set is left
  byte-identical: "a bad source writes nothing". Publishing is one ``os.rename`` per
  episode and no data copy; a crash inside it leaves complete episodes only, which a
  rerun with ``--append`` skips.

Example::

    with FrameSetWriter(out, source="realgap.sim 0.1.0", resume=True) as w:
        for ep in range(20):
            if ("sim", "reach-mug", ep) in w.completed_episodes():
                continue
            w.add_episode(domain="sim", task="reach-mug", episode=ep,
                          images={"head": frames}, actions=acts, states=states,
                          factors=[{"BG": 3, "LT": {"intensity": 0.7}}] * len(acts))
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from realgap.data import _images
from realgap.data._format import (
    CONSOLIDATED_MANIFEST,
    EPISODE_MANIFEST,
    EPISODE_RECORD,
    EPISODES_DIR,
    FORMAT_VERSION,
    LOCK_NAME,
    MANIFEST_SCHEMA,
    MAX_EPISODE,
    META_NAME,
    TMP_DIR,
    EpisodeId,
    canonical_json,
    combine_hashes,
    episode_hash,
    episode_key,
    frame_id,
    hash_manifest,
    load_records,
    lock_holder,
    read_consolidated,
    read_meta,
    sort_key,
    write_consolidated,
    write_json_atomic,
)
from realgap.errors import ConfigError, DataError, FormatVersionError

#: meta.json is rewritten after an episode at most this often (and always on close);
#: readers take episodes newer than meta.json from their own episode.json.
META_REFRESH_S = 2.0
#: Subdirectory of ``.tmp`` holding a staged writer's complete, unpublished episodes.
_STAGE = "stage"
#: Resolved FrameSet paths with an open writer in this process (the pid lock cannot tell).
_OPEN_IN_PROCESS: set[Path] = set()
_CAMERA_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


class FrameSetWriter:
    """Append episodes to the FrameSet at ``path`` (created if missing).

    Args:
        path: FrameSet directory.
        source: provenance of the frames: generator or file and its version
            (``"realgap.sim 0.1.0"``, ``"robomimic:/data/lift.hdf5"``); stored per frame
            unless :meth:`add_episode` overrides it.
        resume: open an existing FrameSet and append to it (a generator then skips
            :meth:`completed_episodes`). Without it an existing non-empty directory is
            refused, so nothing is mixed by accident.
        domains: labels declared up front (``("sim", "real-proxy")``); when given, an
            episode with another domain is refused. Declared labels are recorded in
            ``meta.json`` even before any episode of them is written.
        staged: hold every new episode in ``.tmp/stage/`` until :meth:`publish` (or a
            clean ``close``); on an exception inside ``with``, nothing is published and
            an existing set stays byte-identical (see the module docstring).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        source: str,
        resume: bool = False,
        domains: Sequence[str] | None = None,
        staged: bool = False,
    ) -> None:
        self.root = Path(path)
        self.source = str(source)
        self.resume = resume
        self.staged = staged
        self.declared_domains = tuple(domains) if domains is not None else None
        self._meta: dict[str, Any] = {}
        self._records: dict[str, dict[str, Any]] = {}
        self._new_tables: dict[str, pa.Table] = {}
        self._staged: dict[str, tuple[dict[str, Any], pa.Table]] = {}
        self._staged_videos: dict[str, Path] = {}
        self._video_memo: dict[tuple[str, int, int], tuple[str, str]] = {}
        #: cameras whose video could not be kept as video (decoded frames differed), by
        #: episode key: they were stored losslessly instead
        self.video_fallbacks: dict[str, list[str]] = {}
        self._last_meta_write = 0.0
        self._created_root = not self.root.exists()
        self._fresh = False
        self._lock_path = self.root / LOCK_NAME
        self._open()

    # -- lifecycle ---------------------------------------------------------------------
    def _open(self) -> None:
        root = self.root
        if root.exists() and not root.is_dir():
            raise ConfigError(f"{root}: exists and is a file; choose a directory for the FrameSet")
        has_meta = (root / META_NAME).is_file()
        if root.exists() and not has_meta and any(root.iterdir()):
            raise ConfigError(
                f"{root}: directory is not empty and holds no FrameSet (no meta.json); "
                "choose a new or empty output directory"
            )
        if has_meta and not self.resume:
            meta = read_meta(root)
            if meta.get("n_episodes", 0) or any((root / EPISODES_DIR).glob("*")):
                raise ConfigError(
                    f"{root}: a FrameSet already exists here; pass resume=True "
                    "(CLI: --resume/--append) to add episodes to it, or choose another output"
                )
        existing = read_meta(root) if has_meta else None
        if existing is not None and existing.get("format_version") != FORMAT_VERSION:
            raise FormatVersionError(
                f"{root / META_NAME}: FrameSet format_version {existing.get('format_version')} "
                f"is read-only in this realgap (it writes version {FORMAT_VERSION}); copy it into "
                f"a new set with `realgap data upgrade {root} --out NEW` and append to that")
        self._fresh = existing is None
        root.mkdir(parents=True, exist_ok=True)
        self._acquire_lock()
        try:
            self._prepare(existing)
        except BaseException:
            self._release_lock()
            raise

    def _prepare(self, existing: dict[str, Any] | None) -> None:
        root = self.root
        (root / EPISODES_DIR).mkdir(exist_ok=True)
        tmp = root / TMP_DIR
        if tmp.exists():  # leftovers of an interrupted writer: never complete episodes
            shutil.rmtree(tmp)
        tmp.mkdir()
        now = datetime.now(UTC).isoformat(timespec="seconds")
        if existing is not None:
            self._meta = existing
            for rec in load_records(root, self._meta):
                key = rec.pop("key")
                self._records[key] = rec
        else:
            self._meta = {"format_version": FORMAT_VERSION, "created": now, "source": self.source}
        declared = set(self._meta.get("declared_domains") or [])
        if self.declared_domains is not None:
            declared |= set(self.declared_domains)
        changed = sorted(declared) != self._meta.get("declared_domains")
        self._meta["declared_domains"] = sorted(declared)
        if existing is None or (changed and not self.staged):
            # A staged writer leaves an existing set's files alone until it publishes.
            self._write_meta()

    def _acquire_lock(self) -> None:
        resolved = self.root.resolve()
        if resolved in _OPEN_IN_PROCESS:
            raise ConfigError(f"{self.root}: this process already has a FrameSetWriter open on "
                              "it; close that writer first (use `with FrameSetWriter(...)`)")
        try:
            fd = os.open(self._lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pid = lock_holder(self.root)
            if pid and pid != os.getpid():
                raise ConfigError(
                    f"{self._lock_path}: another writer (pid {pid}) is writing this FrameSet; "
                    "wait for it to finish or write to another directory"
                ) from None
            self._lock_path.unlink(missing_ok=True)
            fd = os.open(self._lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        _OPEN_IN_PROCESS.add(resolved)

    def _release_lock(self) -> None:
        _OPEN_IN_PROCESS.discard(self.root.resolve())
        if self._lock_path is not None:
            self._lock_path.unlink(missing_ok=True)
            self._lock_path = None  # type: ignore[assignment]

    def close(self) -> None:
        """Publish staged episodes, write ``meta.json`` and the consolidated manifest,
        remove temp files, unlock."""
        if self._lock_path is None:
            return
        if self._staged:
            self.publish()
        self._drop_unused_videos()
        if self._new_tables or not self.staged or not (self.root / CONSOLIDATED_MANIFEST).is_file():
            self._write_meta()
        if self._new_tables or not (self.root / CONSOLIDATED_MANIFEST).is_file():
            self._write_consolidated()
        shutil.rmtree(self.root / TMP_DIR, ignore_errors=True)
        self._release_lock()

    def _drop_unused_videos(self) -> None:
        """Remove copied videos no episode uses (their frames fell back to lossless)."""
        d = self.root / _images.VIDEOS_DIR
        if not self._video_memo or not d.is_dir():
            return
        used = {e["file"] for r in self._records.values() for e in r["images"].values()
                if e["codec"] == _images.VIDEO_CODEC}
        for name, _ in self._video_memo.values():
            if f"{_images.VIDEOS_DIR}/{name}" not in used:
                (d / name).unlink(missing_ok=True)

    def abort(self) -> None:
        """Drop staged episodes and unlock, publishing nothing.

        An existing set is left byte-identical; a set this writer created (no episode
        published) is removed again, with the directory if the writer made it.
        """
        if self._lock_path is None:
            return
        self._staged.clear()
        self._staged_videos.clear()
        shutil.rmtree(self.root / TMP_DIR, ignore_errors=True)
        if self._fresh and not self._records:
            for name in (META_NAME, CONSOLIDATED_MANIFEST):
                (self.root / name).unlink(missing_ok=True)
            for name in (EPISODES_DIR, _images.VIDEOS_DIR):
                d = self.root / name
                if d.is_dir() and not any(d.iterdir()):
                    d.rmdir()
        self._release_lock()
        if self._fresh and not self._records and self._created_root:
            try:
                self.root.rmdir()
            except OSError:
                pass

    def publish(self) -> list[str]:
        """Move every staged episode (and the videos they use) into the set; return keys."""
        if self._lock_path is None:
            raise ConfigError(f"{self.root}: writer is closed; open a new FrameSetWriter")
        stage = self.root / TMP_DIR / _STAGE
        if self._staged_videos:
            (self.root / _images.VIDEOS_DIR).mkdir(exist_ok=True)
        for name, path in list(self._staged_videos.items()):
            dst = self.root / _images.VIDEOS_DIR / name
            if not dst.exists():
                os.rename(path, dst)
            del self._staged_videos[name]
        published = []
        for key in sorted(self._staged):
            record, table = self._staged.pop(key)
            os.rename(stage / key, self.root / EPISODES_DIR / key)
            self._records[key] = record
            self._new_tables[key] = table
            published.append(key)
        if published:
            self._write_meta()
        return published

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None and self.staged:
            self.abort()
        else:
            self.close()

    # -- queries -----------------------------------------------------------------------
    def completed_episodes(self) -> set[EpisodeId]:
        """``(domain, task, episode)`` of every episode already on disk (or staged)."""
        recs = [*self._records.values(), *(r for r, _ in self._staged.values())]
        return {(r["domain"], r["task"], int(r["episode"])) for r in recs}

    @property
    def content_hash(self) -> str:
        """Hash of everything written so far (see :func:`realgap.data._format.combine_hashes`)."""
        return combine_hashes((k, r["hash"]) for k, r in self._records.items())



    # -- writing -----------------------------------------------------------------------
    def add_episode(
        self,
        domain: str,
        task: str,
        episode: int,
        images: Mapping[str, np.ndarray],
        actions: np.ndarray | Sequence[Sequence[float]],
        states: np.ndarray | Sequence[Sequence[float]] | None = None,
        factors: Sequence[Mapping[str, Any]] | None = None,
        pair_ids: Sequence[str | None] | None = None,
        source: str | None = None,
        videos: Mapping[str, Any] | None = None,
    ) -> str:
        """Write one episode of ``T`` frames atomically; return its key.

        Args:
            domain: domain label (``"sim"``, ``"real"``, ``"real-proxy"``, ...).
            task: task name.
            episode: episode number (int >= 0), unique within (domain, task).
            images: camera name -> uint8 ``(T, H, W, 3)``; every episode of a set has the
                same cameras with the same ``(H, W)``.
            actions: ``(T, A)`` finite floats, stored as float32; ``A`` fixed per set.
            states: ``(T, S)`` finite floats or None (``S = 0``); ``S`` fixed per set.
            factors: ``T`` JSON-serialisable dicts of the randomization values that
                produced each frame, or None (empty dicts).
            pair_ids: ``T`` ids shared by frames rendered from the same simulator state in
                different domains, or None.
            source: overrides the writer's ``source`` for this episode.
            videos: camera -> the video the camera's frames were decoded from, as an
                object with ``path`` (the video file) and ``times`` (``(T,)`` seconds of
                each frame in it), e.g. :class:`realgap.data.readers.VideoFrames`. Such
                a camera is stored as that video (``codec: video``) when decoding the
                file at the matching timestamps gives exactly ``images[camera]``;
                otherwise losslessly (listed in :attr:`video_fallbacks`).

        Raises:
            DataError: wrong shapes/dtypes, NaN or inf values, a camera set or image
                size or action size that differs from the episodes already written, an
                undeclared domain, or an episode that is already on disk.
        """
        if self._lock_path is None:
            raise ConfigError(f"{self.root}: writer is closed; open a new FrameSetWriter")
        where = f"{self.root}: episode {domain!r}/{task!r}/{episode!r}"
        if not isinstance(domain, str) or not domain:
            raise DataError(f"{where}: domain must be a non-empty string; pass e.g. 'sim'")
        if not isinstance(task, str) or not task:
            raise DataError(f"{where}: task must be a non-empty string; pass the task name")
        if (isinstance(episode, bool) or not isinstance(episode, (int, np.integer))
                or not 0 <= int(episode) <= MAX_EPISODE):
            raise DataError(f"{where}: episode must be an integer in 0..{MAX_EPISODE} (stored as "
                            f"int64), got {episode!r}; renumber the episodes")
        episode = int(episode)
        if self.declared_domains is not None and domain not in self._meta["declared_domains"]:
            raise DataError(
                f"{where}: domain {domain!r} is not among the declared domains "
                f"{self._meta['declared_domains']}; declare it or fix the label"
            )
        key = episode_key(domain, task, episode)
        if key in self._records or key in self._staged or (self.root / EPISODES_DIR / key).exists():
            raise DataError(
                f"{where}: this episode is already written; skip it (see "
                "completed_episodes()) or use another episode number"
            )
        imgs, shapes, n = self._check_images(where, images)
        act = _as_matrix(where, "actions", actions, n)
        st = _as_matrix(where, "states", np.zeros((n, 0)) if states is None else states, n)
        self._check_consistent(where, shapes, act.shape[1], st.shape[1])
        fac = [{}] * n if factors is None else list(factors)
        if len(fac) != n:
            raise DataError(f"{where}: factors has {len(fac)} entries for {n} frames; "
                            "pass one dict per frame")
        try:
            fac_txt = [canonical_json(dict(f)) for f in fac]
        except (TypeError, ValueError) as exc:
            raise DataError(f"{where}: factors are not JSON-serialisable ({exc}); "
                            "use numbers, strings, lists and dicts") from exc
        pids = [None] * n if pair_ids is None else [None if p is None else str(p) for p in pair_ids]
        if len(pids) != n:
            raise DataError(f"{where}: pair_ids has {len(pids)} entries for {n} frames")
        src = self.source if source is None else str(source)
        vids = dict(videos or {})
        unknown = sorted(set(vids) - set(imgs))
        if unknown:
            raise DataError(f"{where}: videos given for cameras {unknown} that have no images")
        table = _episode_table(domain, task, episode, act, st, fac_txt, src, pids)
        record = {
            "domain": domain, "task": task, "episode": episode, "n_frames": n,
            "cameras": shapes, "action_dim": int(act.shape[1]), "state_dim": int(st.shape[1]),
            "source": src, "manifest_hash": hash_manifest(table),
        }
        try:
            self._write_episode(key, table, imgs, vids, record)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise DataError(
                    f"{self.root}: no space left on the device while writing episode {key} "
                    f"({exc.strerror}); that episode was not written"
                    + (" and nothing of this conversion was published" if self.staged else "")
                    + "; free disk space and run again (with --append/--resume to keep "
                    "what is already in the set)") from exc
            raise
        if self.staged:
            self._staged[key] = (record, table)
            return key
        self._records[key] = record
        self._new_tables[key] = table
        if time.monotonic() - self._last_meta_write >= META_REFRESH_S:
            self._write_meta()
        return key

    def _check_images(
        self, where: str, images: Mapping[str, np.ndarray]
    ) -> tuple[dict[str, np.ndarray], dict[str, list[int]], int]:
        if not isinstance(images, Mapping) or not images:
            raise DataError(f"{where}: images must be a non-empty dict camera -> uint8 (T,H,W,3)")
        out: dict[str, np.ndarray] = {}
        shapes: dict[str, list[int]] = {}
        n: int | None = None
        for cam, arr in images.items():
            if not isinstance(cam, str) or not cam or not set(cam) <= _CAMERA_NAME_CHARS:
                raise DataError(f"{where}: camera name {cam!r} must be non-empty letters, digits, "
                                "'_', '-' or '.'; rename the camera")
            a = np.asarray(arr)
            if a.dtype != np.uint8 or a.ndim != 4 or a.shape[3] != 3:
                raise DataError(
                    f"{where}: images[{cam!r}] is {a.dtype} {a.shape}, expected uint8 (T, H, W, 3); "
                    "convert to 8-bit RGB first"
                )
            if n is None:
                n = a.shape[0]
            elif a.shape[0] != n:
                raise DataError(f"{where}: images[{cam!r}] has {a.shape[0]} frames, another "
                                f"camera has {n}; every camera needs one image per frame")
            out[cam] = np.ascontiguousarray(a)
            shapes[cam] = [int(a.shape[1]), int(a.shape[2]), 3]
        assert n is not None
        if n == 0:
            raise DataError(f"{where}: episode has no frames; skip empty episodes")
        return out, shapes, n

    def _check_consistent(
        self, where: str, shapes: dict[str, list[int]], a_dim: int, s_dim: int
    ) -> None:
        if not self._records:
            return
        ref = next(iter(self._records.values()))
        if sorted(shapes) != sorted(ref["cameras"]):
            raise DataError(f"{where}: cameras {sorted(shapes)} differ from the set's "
                            f"{sorted(ref['cameras'])}; every episode needs the same cameras")
        for cam, shp in shapes.items():
            if list(shp) != list(ref["cameras"][cam]):
                raise DataError(
                    f"{where}: images[{cam!r}] are {tuple(shp)}, the set's are "
                    f"{tuple(ref['cameras'][cam])}; resize images to one shape per camera"
                )
        if a_dim != ref["action_dim"]:
            raise DataError(f"{where}: actions have {a_dim} dims, the set's have "
                            f"{ref['action_dim']}; use one action layout per FrameSet")
        if s_dim != ref["state_dim"]:
            raise DataError(f"{where}: states have {s_dim} dims, the set's have "
                            f"{ref['state_dim']}; use one state layout per FrameSet")

    def _write_episode(
        self,
        key: str,
        table: pa.Table,
        images: Mapping[str, np.ndarray],
        videos: Mapping[str, Any],
        record: dict[str, Any],
    ) -> None:
        """Write the episode complete into the temp area, then rename it into place."""
        tmp = self.root / TMP_DIR / f"{key}.{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        try:
            with open(tmp / EPISODE_MANIFEST, "wb") as f:
                pq.write_table(table, f, compression="zstd")
                _sync(f)
            entries: dict[str, dict[str, Any]] = {}
            for cam, arr in sorted(images.items()):
                entry = self._keep_video(key, cam, arr, videos[cam]) if cam in videos else None
                if entry is None:
                    entry = _images.write_zstd(tmp / f"{cam}.zst", arr, _sync)
                entries[cam] = entry
            record["images"] = entries
            record["hash"] = episode_hash(record["manifest_hash"], entries)
            with open(tmp / EPISODE_RECORD, "w", encoding="utf-8") as f:
                json.dump(record, f, indent=1, sort_keys=True)
                _sync(f)
            if self.staged:
                stage = self.root / TMP_DIR / _STAGE
                stage.mkdir(exist_ok=True)
                os.rename(tmp, stage / key)
            else:
                os.rename(tmp, self.root / EPISODES_DIR / key)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _keep_video(self, key: str, cam: str, frames: np.ndarray, video: Any) -> dict[str, Any] | None:
        """The ``video`` entry for ``frames`` if the source video reproduces them exactly."""
        src = Path(video.path)
        times = np.asarray(video.times, dtype=np.float64)
        if times.shape != (frames.shape[0],) or not np.isfinite(times).all():
            raise DataError(f"{src}: {times.shape} frame times for {frames.shape[0]} frames "
                            "(or non-finite times); the reader must give one time per frame")
        st = src.stat()
        memo_key = (str(src.resolve()), st.st_size, st.st_mtime_ns)
        if memo_key not in self._video_memo:
            part = self.root / TMP_DIR / f"video.{os.getpid()}.part"
            digest = _images.copy_hashed(src, part, _sync)
            name = f"{digest}.{_images.video_suffix(src)}"
            final = self.root / _images.VIDEOS_DIR / name
            if final.exists() or name in self._staged_videos:
                part.unlink()
            elif self.staged:
                (self.root / TMP_DIR / "videos").mkdir(exist_ok=True)
                staged = self.root / TMP_DIR / "videos" / name
                os.rename(part, staged)
                self._staged_videos[name] = staged
            else:
                final.parent.mkdir(exist_ok=True)
                os.rename(part, final)
            self._video_memo[memo_key] = (name, digest)
        name, digest = self._video_memo[memo_key]
        path = self._staged_videos.get(name, self.root / _images.VIDEOS_DIR / name)
        pts, _ = _images.video_pts_for_times(path, times)
        try:
            decoded = _images.decode_video(path, pts)
        except DataError:
            decoded = None
        if decoded is None or decoded.shape != frames.shape or not np.array_equal(decoded, frames):
            self.video_fallbacks.setdefault(key, []).append(cam)
            return None
        return {"codec": _images.VIDEO_CODEC, "file": f"{_images.VIDEOS_DIR}/{name}",
                "pts": pts, "bytes": path.stat().st_size, "blake2b": digest}

    def _write_consolidated(self) -> None:
        """Rebuild ``manifest.parquet`` from the previous one (if current) plus new episodes."""
        old_records = [{**r, "key": k} for k, r in self._records.items()
                       if k not in self._new_tables]
        old_records.sort(key=sort_key)
        tables: dict[str, pa.Table] = dict(self._new_tables)
        old_hash = combine_hashes((r["key"], r["hash"]) for r in old_records)
        previous = read_consolidated(self.root, old_hash) if old_records else None
        reused = False
        if previous is not None and previous.num_rows == sum(r["n_frames"] for r in old_records):
            slices, start = {}, 0
            for r in old_records:
                slices[r["key"]] = previous.slice(start, r["n_frames"])
                start += r["n_frames"]
            # reuse the old consolidated rows only where they still hash to their record
            reused = all(r.get("manifest_hash") == hash_manifest(slices[r["key"]])
                         for r in old_records)
            if reused:
                tables.update(slices)
        if not reused:
            from realgap.data.frameset import read_manifest_parts

            for r, t in zip(old_records, _split(read_manifest_parts(self.root, old_records, True),
                                                old_records), strict=True):
                tables[r["key"]] = t
        order = sorted(self._records, key=lambda k: sort_key(self._records[k]))
        table = (pa.concat_tables([tables[k] for k in order]) if order
                 else MANIFEST_SCHEMA.empty_table())
        write_consolidated(self.root, table, self.content_hash)
        self._new_tables.clear()

    def _write_meta(self) -> None:
        recs = [self._records[k] for k in sorted(self._records)]
        first = recs[0] if recs else None
        domains = set(self._meta.get("declared_domains") or []) | {r["domain"] for r in recs}
        self._meta.update(
            {
                "format_version": FORMAT_VERSION,
                "content_hash": self.content_hash,
                "domains": sorted(domains),
                "tasks": sorted({r["task"] for r in recs}),
                "cameras": dict(first["cameras"]) if first else {},
                "action_dim": first["action_dim"] if first else None,
                "state_dim": first["state_dim"] if first else None,
                "n_episodes": len(recs),
                "n_frames": int(sum(r["n_frames"] for r in recs)),
                "sources": sorted({r["source"] for r in recs}),
                "updated": datetime.now(UTC).isoformat(timespec="seconds"),
                "episodes": {k: self._records[k] for k in sorted(self._records)},
            }
        )
        write_json_atomic(self.root / META_NAME, self._meta)
        self._last_meta_write = time.monotonic()


def _episode_table(
    domain: str,
    task: str,
    episode: int,
    actions: np.ndarray,
    states: np.ndarray,
    factors: list[str],
    source: str,
    pair_ids: list[str | None],
) -> pa.Table:
    n = actions.shape[0]
    return pa.table(
        {
            "frame_id": pa.array([frame_id(domain, task, episode, s) for s in range(n)]),
            "domain": pa.array([domain] * n),
            "episode": pa.array(np.full(n, episode, np.int64)),
            "step": pa.array(np.arange(n, dtype=np.int32)),
            "task": pa.array([task] * n),
            "action": _list_array(actions),
            "state": _list_array(states),
            "factors": pa.array(factors, pa.string()),
            "source": pa.array([source] * n),
            "pair_id": pa.array(pair_ids, pa.string()),
        },
        schema=MANIFEST_SCHEMA,
    )


def _split(table: pa.Table, records: list[dict[str, Any]]) -> list[pa.Table]:
    out, start = [], 0
    for r in records:
        out.append(table.slice(start, r["n_frames"]))
        start += r["n_frames"]
    return out


def _list_array(mat: np.ndarray) -> pa.ListArray:
    n, d = mat.shape
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * d)
    return pa.ListArray.from_arrays(offsets, pa.array(mat.reshape(-1), pa.float32()))


def _as_matrix(where: str, name: str, x: Any, n: int) -> np.ndarray:
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{where}: {name} is not numeric ({exc}); pass a (T, D) float array") from exc
    if a.ndim == 1 and name == "actions":
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] != n:
        raise DataError(f"{where}: {name} has shape {a.shape}, expected ({n}, D) for {n} frames")
    bad = ~np.isfinite(a)
    if bad.any():
        t, d = (int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            f"{where}: {name} has {int(bad.sum())} non-finite values (first at step {t}, "
            f"dim {d}: {a[t, d]}); clean or drop those frames before writing"
        )
    return a.astype(np.float32)


def _sync(f: Any) -> None:
    f.flush()
    os.fsync(f.fileno())

