"""Check a FrameSet on disk (:func:`validate`) and summarise it (:func:`info`).

:func:`validate` reads every file of the set and raises on the first problem (or, with
``all_problems=True``, lists every bad episode), with a
one-line message ``<file>: <problem>; <fix>``. Checks, in order (structure first, so a
tampered file is reported by what is wrong with it rather than by a hash mismatch):

1. ``meta.json`` exists, parses, has a readable ``format_version`` (3, or the read-only
   2) and fields of the right JSON types;
2. per episode: ``episode.json`` parses and its fields have the right types and ranges
   (and equal ``meta.json``'s cached copy); ``manifest.parquet`` reads (not truncated),
   has every manifest column with the schema's types, one row per frame,
   domain/task/episode equal to the record's, steps ``0..T-1``, a domain among
   ``meta.json``'s declared ``domains``, finite actions and states of one dimension per
   set, factors that parse as JSON objects, and rows that hash to the recorded
   ``manifest_hash``;
3. per episode and camera: the image file hashes to its record, and every frame decodes
   to uint8 ``(T, H, W, 3)`` (version 2: the ``.npy`` array loads), with the same
   cameras and ``(H, W)`` in every episode;
4. frame ids are unique across the set;
5. the consolidated ``manifest.parquet``, when tagged with the set's hash (so readers
   would use it), equals the concatenated episode parts;
6. the episode hashes (version 2: recomputed over manifest and pixels) combine to the
   set's hash, and ``meta.json``'s ``content_hash`` equals it (a stale ``meta.json`` is
   refreshed by opening the set with ``FrameSetWriter(path, resume=True)`` and closing
   it).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from realgap.data import _images
from realgap.data._format import (
    CONSOLIDATED_MANIFEST,
    EPISODE_MANIFEST,
    EPISODE_RECORD,
    EPISODES_DIR,
    META_NAME,
    check_record,
    combine_hashes,
    episode_hash,
    episode_key,
    hash_episode,
    hash_manifest,
    list_episode_dirs,
    lock_holder,
    read_consolidated,
    read_json,
    read_meta,
    sort_key,
)
from realgap.data.frameset import FrameSet, load_image_array, read_manifest_part
from realgap.errors import DataError, MissingFileError

_REGEN = "delete that episode directory and regenerate or reconvert it"


def _check_episode(root: Path, key: str, version: int, cached: dict[str, Any],
                   declared: set[str], ref: dict[str, Any] | None
                   ) -> tuple[dict[str, Any], dict[str, Any], pa.Table, str]:
    """Checks 2 and 3 of the module docstring on one episode directory; returns its layout
    (compared with the first good episode's, ``ref``), record, manifest part and hash."""
    ep_dir = root / EPISODES_DIR / key
    rec = check_record(read_json(ep_dir / EPISODE_RECORD, "episode.json"),
                       ep_dir / EPISODE_RECORD, version)
    if episode_key(rec["domain"], rec["task"], rec["episode"]) != key:
        raise DataError(f"{ep_dir / EPISODE_RECORD}: record names {rec['domain']!r}/"
                        f"{rec['task']!r}/{rec['episode']}, not the directory's episode; "
                        f"{_REGEN}")
    if key in cached and cached[key] != rec:
        raise DataError(f"{root / META_NAME}: cached record of episode {key} differs from "
                        f"{ep_dir / EPISODE_RECORD}; refresh meta.json by opening the set with "
                        "FrameSetWriter(path, source=..., resume=True) and closing it")
    n = int(rec["n_frames"])
    cams = {str(c): [int(v) for v in shp] for c, shp in rec["cameras"].items()}
    table = read_manifest_part(ep_dir / EPISODE_MANIFEST, n)
    _check_manifest(ep_dir / EPISODE_MANIFEST, table, rec, declared, root)
    a_dim = _check_matrix(ep_dir / EPISODE_MANIFEST, table, "action")
    s_dim = _check_matrix(ep_dir / EPISODE_MANIFEST, table, "state")
    files = {c: (root / e["file"] if e["codec"] == _images.VIDEO_CODEC else ep_dir / e["file"])
             for c, e in rec["images"].items()} if version >= 3 else {
                 c: ep_dir / f"{c}.npy" for c in cams}
    current = {"cameras": cams, "action_dim": a_dim, "state_dim": s_dim, "where": ep_dir,
               "files": files}
    if ref is not None:
        _check_same_layout(ref, current)
    if version >= 3:
        if hash_manifest(table) != rec["manifest_hash"]:
            raise DataError(f"{ep_dir / EPISODE_MANIFEST}: manifest rows differ from the "
                            "record's manifest_hash: the file was changed after writing; "
                            f"{_REGEN}")
        for cam, shape in sorted(cams.items()):
            _check_images_v3(root, ep_dir, rec, cam, shape)
        got = episode_hash(rec["manifest_hash"], rec["images"])
    else:
        images = {cam: load_image_array(ep_dir / f"{cam}.npy", n, shape)
                  for cam, shape in sorted(cams.items())}
        got = hash_episode(table, images)
        if got != rec["hash"]:
            raise DataError(f"{ep_dir}: episode content hash {got[:12]} differs from its "
                            f"record {rec['hash'][:12]}: files were changed after writing; "
                            f"{_REGEN}")
    return current, rec, table, got


def validate(path: str | os.PathLike[str], *, all_problems: bool = False) -> dict[str, Any]:
    """Check every file of the FrameSet at ``path``; see the module docstring.

    Args:
        all_problems: check every episode and return their problems (``realgap data
            validate`` lists them all) instead of raising on the first. Problems of the set
            as a whole (``meta.json``, duplicated ids) still raise; the set's hash checks
            (5, 6) are skipped when an episode is bad, since they cannot pass.

    Returns:
        ``{"path", "content_hash", "n_frames", "n_episodes", "domains", "cameras"}``, with
        ``all_problems`` also ``"problems": [{"episode": key, "error": message}, ...]``
        (empty when the set is valid; then ``content_hash`` is None if any is bad, and the
        counts are those of the good episodes).

    Raises:
        MissingFileError: ``path`` or a required file does not exist.
        FormatVersionError: unsupported ``format_version``.
        DataError: any other problem, naming the file, the problem and the fix.
    """
    root = Path(path)
    meta = read_meta(root)
    version = int(meta["format_version"])
    cached = meta.get("episodes") or {}
    declared = set(meta.get("domains") or []) | set(meta.get("declared_domains") or [])
    ref: dict[str, Any] | None = None
    hashes: list[tuple[str, str]] = []
    parts: dict[str, tuple[dict[str, Any], pa.Table]] = {}
    frame_ids: list[str] = []
    n_frames = 0
    problems: list[dict[str, str]] = []
    for key in list_episode_dirs(root):
        try:
            current, rec, table, got = _check_episode(root, key, version, cached, declared, ref)
        except (DataError, MissingFileError) as exc:
            if not all_problems:
                raise
            problems.append({"episode": key, "error": str(exc)})
            continue
        ref = ref or current
        hashes.append((key, got))
        parts[key] = (rec, table)
        frame_ids.extend(table.column("frame_id").to_pylist())
        n_frames += int(rec["n_frames"])
    dup = [f for f, c in Counter(frame_ids).items() if c > 1]
    if dup:
        raise DataError(f"{root}: frame_id {dup[0]!r} occurs more than once ({len(dup)} "
                        "duplicated ids); give every frame a unique id")
    if problems:
        return {"path": str(root), "content_hash": None, "n_frames": n_frames,
                "n_episodes": len(hashes), "domains": sorted(declared),
                "cameras": ref["cameras"] if ref else {}, "problems": problems}
    total = combine_hashes(hashes, version)
    if meta.get("content_hash") != total:
        writer = lock_holder(root)
        if writer:
            raise DataError(f"{root}: a FrameSetWriter (pid {writer}) is still writing this set; "
                            "validate it after the writer finishes")
        raise DataError(
            f"{root / META_NAME}: content_hash {str(meta.get('content_hash'))[:12]} is stale "
            f"(episodes hash to {total[:12]}); refresh it by opening the set with "
            "FrameSetWriter(path, source=..., resume=True) and closing it"
        )
    cons = read_consolidated(root, total)
    if cons is not None:
        order = sorted(parts, key=lambda k: sort_key(parts[k][0]))
        expected = pa.concat_tables([parts[k][1] for k in order]) if order else None
        if expected is None or not cons.equals(expected):
            raise DataError(
                f"{root / CONSOLIDATED_MANIFEST}: consolidated manifest differs from the episode "
                "parts; delete it (the next FrameSetWriter close rebuilds it)"
            )
    return {
        "path": str(root), "content_hash": total, "n_frames": n_frames,
        "n_episodes": len(hashes), "domains": sorted(declared),
        "cameras": ref["cameras"] if ref else {},
    } | ({"problems": []} if all_problems else {})


def _check_images_v3(root: Path, ep_dir: Path, rec: dict[str, Any], cam: str,
                     shape: list[int]) -> None:
    """The camera's file matches its hash and every frame decodes to the record's shape."""
    entry = rec["images"][cam]
    video = entry["codec"] == _images.VIDEO_CODEC
    path = root / entry["file"] if video else ep_dir / entry["file"]
    if not path.is_file():
        raise MissingFileError(f"{path}: image file missing; {_REGEN}")
    _images.check_inside(path.resolve(), path, root)
    got = _images.file_hash(path)
    if got != entry["blake2b"]:
        raise DataError(f"{path}: file content hash {got[:12]} differs from its record "
                        f"{entry['blake2b'][:12]}: the file was changed after writing; {_REGEN}")
    n = int(rec["n_frames"])
    k = int(entry.get("chunk_frames", _images.CHUNK_FRAMES))
    for i in range(-(-n // k)):
        if video:
            arr = _images.decode_video(path, entry["pts"][i * k : (i + 1) * k])
        else:
            arr = _images.read_zstd_chunk(path, entry, i, n, shape)
        if arr.shape != (min(k, n - i * k), *shape):
            raise DataError(f"{path}: frames of chunk {i} are {arr.shape}, expected "
                            f"{(min(k, n - i * k), *shape)}; images of mixed shapes: {_REGEN}")


def _check_manifest(
    path: Path, table: pa.Table, rec: dict[str, Any], declared: set[str], root: Path
) -> None:
    for col in ("domain", "task", "episode"):
        vals = set(table.column(col).to_pylist())
        if vals != {rec.get(col)}:
            bad = sorted(map(str, vals - {rec.get(col)}))
            if col == "domain" and any(v not in declared for v in vals):
                unknown = sorted(str(v) for v in vals if v not in declared)
                raise DataError(
                    f"{path}: domain label {unknown[0]!r} is not among the domains declared in "
                    f"{root / META_NAME} {sorted(declared)}; fix the label or declare the domain"
                )
            raise DataError(f"{path}: {col} values {bad} differ from episode.json's "
                            f"{rec.get(col)!r}; {_REGEN}")
    if rec["domain"] not in declared:
        raise DataError(
            f"{path}: domain label {rec['domain']!r} is not among the domains declared in "
            f"{root / META_NAME} {sorted(declared)}; fix the label or declare the domain"
        )
    steps = table.column("step").to_numpy()
    if not np.array_equal(steps, np.arange(len(steps))):
        raise DataError(f"{path}: steps are not 0..{len(steps) - 1} in order; {_REGEN}")
    for i, txt in enumerate(table.column("factors").to_pylist()):
        try:
            ok = isinstance(json.loads(txt), dict)
        except (TypeError, json.JSONDecodeError):
            ok = False
        if not ok:
            raise DataError(f"{path}: factors of step {i} is not a JSON object ({str(txt)[:40]!r}); "
                            f"{_REGEN}")


def _check_matrix(path: Path, table: pa.Table, column: str) -> int:
    col = table.column(column).combine_chunks()
    lengths = set(col.value_lengths().to_pylist()) if len(col) else {0}
    if None in lengths or len(lengths) != 1:
        raise DataError(f"{path}: {column} vectors have lengths {sorted(map(str, lengths))}; "
                        f"every frame needs the same {column} size; {_REGEN}")
    dim = lengths.pop()
    flat = col.flatten().to_numpy(zero_copy_only=False).astype(np.float64)
    bad = ~np.isfinite(flat)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        step, d = divmod(first, max(dim, 1))
        raise DataError(
            f"{path}: {column} has {int(bad.sum())} NaN/inf values (first at step {step}, "
            f"dim {d}); drop or repair those frames and reconvert"
        )
    return int(dim)


def _check_same_layout(ref: dict[str, Any], cur: dict[str, Any]) -> None:
    where = cur["where"]
    if sorted(ref["cameras"]) != sorted(cur["cameras"]):
        raise DataError(f"{where}: cameras {sorted(cur['cameras'])} differ from "
                        f"{sorted(ref['cameras'])} in {ref['where'].name}; every episode needs "
                        "the same cameras")
    for cam, shp in cur["cameras"].items():
        if shp != ref["cameras"][cam]:
            raise DataError(f"{cur['files'][cam]}: images are {tuple(shp)}, other episodes' "
                            f"are {tuple(ref['cameras'][cam])}; images of mixed shapes: resize "
                            "them to one shape per camera and reconvert")
    for dim in ("action_dim", "state_dim"):
        if cur[dim] != ref[dim]:
            raise DataError(f"{where}: {dim} {cur[dim]} differs from {ref[dim]} in "
                            f"{ref['where'].name}; use one layout per FrameSet")


#: Factor columns with at most this many distinct values get value counts in :func:`info`;
#: others get min/mean/max.
MAX_LEVELS = 20


def info(path: str | os.PathLike[str] | FrameSet) -> dict[str, Any]:
    """Counts by domain, task, episode and factor value (JSON-serialisable dict).

    Keys: ``path, content_hash, format_version, n_frames, n_episodes, cameras,
    action_dim, state_dim, sources, by_domain`` (domain -> frames, episodes),
    ``by_task`` (task -> frames, episodes), ``by_domain_task`` (``"domain/task"`` ->
    frames, episodes), ``episode_length`` (min, median, max frames per episode),
    ``pairs`` (frames with a pair id), ``factors`` (column -> ``{"counts": {value:
    frames}}`` for at most :data:`MAX_LEVELS` distinct values, else ``{"min", "mean",
    "max", "n"}``).
    """
    fs = path if isinstance(path, FrameSet) else FrameSet.open(path)
    m = fs.manifest
    ep_label = fs.episodes()

    def group(cols: list[str]) -> dict[str, dict[str, int]]:
        keys = m[cols[0]].astype(str)
        for c in cols[1:]:
            keys = keys + "/" + m[c].astype(str)
        g = pd.DataFrame({"key": keys, "ep": ep_label}).groupby("key", sort=True)["ep"]
        counts = g.agg(["size", "nunique"])
        return {str(k): {"frames": int(r["size"]), "episodes": int(r["nunique"])}
                for k, r in counts.iterrows()}

    lengths = np.bincount(ep_label) if len(ep_label) else np.zeros(0, int)
    factors: dict[str, Any] = {}
    fac = fs.factors()
    for col in fac.columns:
        vals = fac[col].dropna()
        levels = vals.astype(str).value_counts()
        numeric = vals.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool))
        if len(levels) <= MAX_LEVELS or not numeric.all():
            factors[col] = {"counts": {str(k): int(v) for k, v in sorted(levels.items())}}
        else:
            x = vals.to_numpy(dtype=float)
            factors[col] = {"min": float(x.min()), "mean": float(x.mean()),
                            "max": float(x.max()), "n": int(x.size)}
    return {
        "path": str(fs.root),
        "content_hash": fs.content_hash,
        "format_version": fs.meta.get("format_version"),
        "n_frames": len(fs),
        "n_episodes": len(lengths),
        "cameras": {c: list(fs.image_shape(c)) for c in fs.cameras},
        "action_dim": int(fs.actions().shape[1]),
        "state_dim": int(fs.states().shape[1]),
        "sources": sorted(set(m["source"])),
        "by_domain": group(["domain"]),
        "by_task": group(["task"]),
        "by_domain_task": group(["domain", "task"]),
        "episode_length": {
            "min": int(lengths.min()) if len(lengths) else 0,
            "median": float(np.median(lengths)) if len(lengths) else 0.0,
            "max": int(lengths.max()) if len(lengths) else 0,
        },
        "pairs": int(m["pair_id"].notna().sum()),
        "factors": factors,
    }


def format_info(summary: dict[str, Any]) -> str:
    """Human-readable text of an :func:`info` dict."""
    lines = [
        f"FrameSet {summary['path']}",
        f"  content hash  {summary['content_hash']}",
        (f"  frames        {summary['n_frames']} in {summary['n_episodes']} episodes "
        f"(length min {summary['episode_length']['min']}, median "
        f"{summary['episode_length']['median']:g}, max {summary['episode_length']['max']})"),
        "  cameras       " + ", ".join(f"{c} {h}x{w}" for c, (h, w, _) in summary["cameras"].items()),
        f"  action/state  {summary['action_dim']} / {summary['state_dim']} dims",
        f"  paired frames {summary['pairs']}",
        "  sources       " + "; ".join(summary["sources"]),
    ]
    for title, key in (("domain", "by_domain"), ("task", "by_task"),
                       ("domain/task", "by_domain_task")):
        lines.append(f"  by {title}:")
        for name, c in summary[key].items():
            lines.append(f"    {name:<30} {c['frames']:>8} frames {c['episodes']:>6} episodes")
    if summary["factors"]:
        lines.append("  factors:")
    for col, s in summary["factors"].items():
        if "counts" in s:
            vals = ", ".join(f"{k}: {v}" for k, v in s["counts"].items())
            lines.append(f"    {col:<30} {vals}")
        else:
            lines.append(f"    {col:<30} min {s['min']:.4g}, mean {s['mean']:.4g}, "
                         f"max {s['max']:.4g} (n={s['n']})")
    return "\n".join(lines)
