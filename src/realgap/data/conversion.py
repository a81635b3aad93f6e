"""Convert another dataset format into a FrameSet: ``convert(src, out, fmt="auto", ...)``.

The reader (:mod:`realgap.data.readers`) checks the whole source before the first
episode is written, then episodes are appended one at a time through
:class:`~realgap.data.writer.FrameSetWriter`, so:

- a bad source fails with a one-line error and writes nothing;
- converting into an existing FrameSet (``append=True``) never touches the episodes
  already there: each new episode lands atomically, and an episode that already exists
  is refused before anything is written;
- an interrupted conversion leaves a readable FrameSet of the complete episodes, and
  rerunning with ``append=True`` skips them (``skip_existing``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from realgap.data.frameset import FrameSet
from realgap.data.readers import READERS, detect_format
from realgap.data.writer import FrameSetWriter
from realgap.errors import ConfigError, DataError, MissingFileError

FORMATS = ("auto", "folder", "robomimic", "zarr", "lerobot")


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
    name = detect_format(src_p) if fmt == "auto" else fmt
    if name not in READERS:
        raise ConfigError(f"--format: unknown format {fmt!r}; choose one of {list(FORMATS)}")
    reader = READERS.create(name, src=src_p, task=task, cameras=cameras)
    with FrameSetWriter(out_p, source=reader.source, resume=append) as w:
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
                w.add_episode(domain=domain, task=ep.task, episode=ep.episode, images=ep.images,
                              actions=ep.actions, states=ep.states, factors=ep.factors,
                              source=ep.source)
        finally:
            bar.close()
    return FrameSet.open(out_p)
