"""Convert another dataset format into a FrameSet: ``convert(src, out, fmt="auto", ...)``.

The reader (:mod:`realgap.data.readers`) checks the whole source before the first
episode is written; then episodes stream through one at a time (the reader yields one
decoded episode, the writer compresses and stages it, and it is dropped), so memory is
bounded by one episode, independent of the number of episodes. All new episodes are
staged (:class:`~realgap.data.writer.FrameSetWriter` with ``staged=True``) and published
together only when the whole source converted, so:

- a bad source fails with a one-line error and writes nothing, also when the fault is
  found only while decoding episode 57 of 100 (a corrupt video frame) or the disk fills
  up: an existing FrameSet at ``out`` is left byte-identical, a new one is not created;
- converting into an existing FrameSet (``append=True``) never touches the episodes
  already there, and an episode that already exists is refused before anything is
  published;
- rerunning with ``append=True`` skips the episodes already in the set
  (``skip_existing``).

Frames a reader decoded from a video are kept as that video (``video_storage="copy"``,
the default; zero error against a direct decode of the source, size at most the
source's), see :mod:`realgap.data._images`; ``video_storage="lossless"`` stores the
decoded frames compressed losslessly instead.

Mapping on the way in: ``camera_map`` renames cameras (``{"top": "head"}``: the source's
``top`` frames become the FrameSet's ``head``), ``action_key``/``state_keys`` name the
source's action and state fields when they are not the format's defaults (LeRobot
``actions``/``state``, a robomimic dataset, zarr arrays, manifest columns). Cameras the
map does not name are kept under their own names, unless ``only_mapped`` or a plain
camera selection (``cameras``) says otherwise; ``--append`` compares the cameras after
renaming, so a real set converted with ``--camera top=head`` can grow from more sources
mapped the same way.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from realgap.data.frameset import FrameSet
from realgap.data.readers import READERS, detect_format
from realgap.data.readers._base import CAMERA_NAME_CHARS
from realgap.data.writer import FrameSetWriter
from realgap.errors import ConfigError, DataError, MissingFileError

FORMATS = ("auto", "folder", "robomimic", "zarr", "lerobot")
VIDEO_STORAGE = ("copy", "lossless")


def convert(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    fmt: str = "auto",
    domain: str = "real",
    task: str | None = None,
    cameras: Sequence[str] | None = None,
    append: bool = False,
    skip_existing: bool = True,
    progress: bool = False,
    video_storage: str = "copy",
    camera_map: Mapping[str, str] | None = None,
    only_mapped: bool = False,
    action_key: str | None = None,
    state_keys: Sequence[str] | None = None,
) -> FrameSet:
    """Read ``src`` (format ``fmt`` or detected) and write its episodes to the FrameSet ``out``.

    Args:
        src: source dataset path (see each reader's docstring for its layout).
        out: FrameSet directory; must be new or empty unless ``append``.
        fmt: ``"auto"`` or a registered reader name (``folder``, ``robomimic``, ``zarr``,
            ``lerobot``).
        domain: domain label of every converted frame (``"real"``, ``"sim"``, ...).
        task: task name; default: the source's own (robomimic env name, LeRobot task,
            manifest ``task`` column) or the source's file name.
        cameras: cameras to import (default: all the source has).
        append: add to an existing FrameSet at ``out``.
        skip_existing: with ``append``, skip source episodes already in ``out`` (resume
            an interrupted conversion) instead of failing on them.
        progress: show a tqdm progress bar.
        video_storage: ``"copy"`` keeps video-sourced frames as the source video (checked
            to decode to exactly the reader's frames, else stored losslessly);
            ``"lossless"`` always stores decoded frames losslessly.
        camera_map: source camera -> FrameSet camera name (see the module docstring).
        only_mapped: import only the cameras ``camera_map`` names (and ``cameras``).
        action_key: the source's action field (default: the format's, e.g. ``action``).
        state_keys: the source's state fields, concatenated in this order (default: the
            format's, e.g. LeRobot ``observation.state``).

    Returns:
        The FrameSet at ``out``.
    """
    src_p, out_p = Path(src), Path(out)
    if not src_p.exists():
        raise MissingFileError(f"{src_p}: source not found; check the path")
    if not domain:
        raise ConfigError("--domain: got an empty label; pass e.g. --domain real")
    if out_p.resolve() == src_p.resolve() or out_p.resolve() in src_p.resolve().parents:
        raise ConfigError(f"{out_p}: --out must not be the source or contain it; choose "
                          "another output directory")
    if video_storage not in VIDEO_STORAGE:
        raise ConfigError(f"--video-storage: got {video_storage!r}; choose one of {list(VIDEO_STORAGE)}")
    name = detect_format(src_p) if fmt == "auto" else fmt
    if name not in READERS:
        raise ConfigError(f"--format: unknown format {fmt!r}; choose one of {list(FORMATS)}")
    cmap = dict(camera_map or {})
    select: list[str] | None = None
    if cameras is not None or only_mapped:
        select = list(dict.fromkeys([*(cameras or []), *cmap]))
    reader = READERS.create(name, src=src_p, task=task, cameras=select, action_key=action_key,
                            state_keys=None if state_keys is None else list(state_keys))
    rename = _camera_names(src_p, reader.cameras, cmap)
    with FrameSetWriter(out_p, source=reader.source, resume=append, staged=True) as w:
        done = w.completed_episodes()
        bar = tqdm(total=reader.n_episodes, disable=not progress, unit="episode",
                   desc=f"convert {name}", leave=False)
        try:
            for ep in reader.episodes():
                bar.update(1)
                if (domain, ep.task, ep.episode) in done:
                    if skip_existing:
                        continue
                    raise DataError(f"{out_p}: episode {domain}/{ep.task}/{ep.episode} is "
                                    "already in the FrameSet; convert into a new directory or "
                                    "use another --domain/--task")
                videos = ep.videos if video_storage == "copy" else None
                images = {rename[c]: v for c, v in ep.images.items()}
                if videos is not None:
                    videos = {rename[c]: v for c, v in videos.items()}
                w.add_episode(domain=domain, task=ep.task, episode=ep.episode, images=images,
                              actions=ep.actions, states=ep.states, factors=ep.factors,
                              source=ep.source, videos=videos)
                del ep  # the episode's frames are on disk now; keep memory to one episode
        finally:
            bar.close()
    return FrameSet.open(out_p)


def parse_camera_args(items: Sequence[str] | None, flag: str = "--camera"
                      ) -> tuple[list[str] | None, dict[str, str]]:
    """Split repeated ``--camera`` values into plain names and ``SRC=DST`` renames.

    Returns:
        (plain names, or None when none were given; ``{SRC: DST}``).

    Raises:
        ConfigError: an empty side, a source named twice, or two sources mapped to one name.
    """
    plain: list[str] = []
    cmap: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            plain.append(item)
            continue
        a, _, b = (x.strip() for x in item.partition("="))
        if not a or not b or "=" in b:
            raise ConfigError(f"{flag} {item!r}: expected SRC=DST with both names, e.g. "
                              f"{flag} top=head")
        if a in cmap and cmap[a] != b:
            raise ConfigError(f"{flag}: camera {a!r} is mapped twice ({cmap[a]!r} and {b!r}); "
                              "map it once")
        cmap[a] = b
    return (plain or None), cmap


def _camera_names(src: Path, have: Sequence[str], cmap: Mapping[str, str]) -> dict[str, str]:
    """Source camera -> FrameSet camera for the cameras the reader will yield."""
    missing = [c for c in cmap if c not in have]
    if missing:
        raise ConfigError(f"{src}: --camera maps {missing}, which the source does not have; "
                          f"its cameras: {sorted(have)}")
    rename = {c: cmap.get(c, c) for c in have}
    bad = [d for d in rename.values() if not d or not set(d) <= CAMERA_NAME_CHARS]
    if bad:
        raise ConfigError(f"--camera: new names {bad} must be letters, digits, '_', '-' or '.'")
    seen: dict[str, str] = {}
    for c, d in rename.items():
        if d in seen:
            raise ConfigError(f"--camera: cameras {seen[d]!r} and {c!r} would both be named {d!r}; "
                              "map them to different names or pass --only-mapped")
        seen[d] = c
    return rename


def upgrade(src: str | os.PathLike[str], out: str | os.PathLike[str], progress: bool = False) -> FrameSet:
    """Copy the FrameSet ``src`` (any readable version, e.g. a read-only version 2) into a
    new set ``out`` in the current format, episode by episode; ``src`` is not modified.

    Frames, manifest rows (actions, states, factors, pair ids, sources) and the
    declared domains are copied exactly; the content hash changes because the format's
    hash covers the stored files. Staged like :func:`convert`: a failure publishes
    nothing.
    """
    fs = FrameSet.open(src)
    out_p = Path(out)
    if out_p.resolve() == fs.root.resolve():
        raise ConfigError(f"{out_p}: --out must differ from the set being upgraded")
    recs = fs._store.records
    declared = fs.meta.get("declared_domains") or fs.domains
    with FrameSetWriter(out_p, source=str(fs.meta.get("source") or "realgap upgrade"),
                        domains=declared, staged=True) as w:
        for i in tqdm(range(len(recs)), disable=not progress, unit="episode", desc="upgrade"):
            rec = recs[i]
            view = fs.select(rows=np.flatnonzero(fs.episodes() == i))
            m = view.manifest
            w.add_episode(domain=rec["domain"], task=rec["task"], episode=int(rec["episode"]),
                          images={c: view.images(c) for c in fs.cameras},
                          actions=view.actions(), states=view.states(),
                          factors=[json.loads(f) for f in m["factors"]],
                          pair_ids=[None if p is None or pd.isna(p) else str(p) for p in m["pair_id"]],
                          source=str(m["source"].iloc[0]))
    return FrameSet.open(out_p)
