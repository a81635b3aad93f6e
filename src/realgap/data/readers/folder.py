"""Plain image folder with a CSV or Parquet manifest.

Accepted layout::

    SRC/                         (or SRC = the manifest file itself)
      manifest.csv | manifest.parquet | frames.csv | frames.parquet
      any/relative/path.png ...  (image paths are relative to the manifest's folder)

Manifest columns, one row per frame:

- ``episode`` (int) and ``step`` (int): required; rows are ordered by (episode, step),
  and (episode, step) must be unique.
- images: ``image`` (one camera named ``image``) or ``image_<camera>`` /
  ``image.<camera>`` (one column per camera): a path to any file Pillow reads (PNG,
  JPEG, ...); converted to 8-bit RGB. Every image of a camera has the same size.
- actions: ``action`` (a Parquet list column, or in CSV a JSON list ``"[0.1, 0.2]"`` or
  space-separated numbers) or numbered columns ``action_0, action_1, ...``; required.
- states: ``state`` or ``state_0, ...`` in the same forms; optional.
- ``action_key`` / ``state_keys`` name other columns (or prefixes of numbered columns),
  e.g. ``actions`` or ``["joint_pos", "gripper"]`` (concatenated in that order).
- JPEG EXIF orientation is applied (``PIL.ImageOps.exif_transpose``), as a photo viewer
  shows the image: a phone photo taken in portrait is stored landscape with an
  orientation tag, and its camera's size is the size after rotation.
- optional ``task`` (str; overrides ``--task`` per row) and ``factors`` (JSON object).

The manifest is untrusted: an image path must stay inside the manifest's folder (no
absolute paths, no ``..`` out of it, no symlink leading out), and each fault is one
:class:`DataError` naming the manifest or the image file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from realgap.data.readers._base import (
    READERS,
    ReadEpisode,
    SourceReader,
    check_episodes,
    check_finite,
    decode_image,
    inside_root,
    pick_cameras,
)
from realgap.errors import DataError, MissingFileError

MANIFEST_NAMES = ("manifest.parquet", "manifest.csv", "frames.parquet", "frames.csv")
_IMAGE_COL = re.compile(r"^image(?:[_.](?P<cam>.+))?$")


def find_manifest(src: Path) -> Path | None:
    """The manifest file of ``src`` (itself when it is a .csv/.parquet file)."""
    if src.is_file():
        return src if src.suffix.lower() in (".csv", ".parquet") else None
    for name in MANIFEST_NAMES:
        if (src / name).is_file():
            return src / name
    return None


def _detect(src: Path) -> bool:
    return find_manifest(src) is not None


def _vector_columns(df: pd.DataFrame, prefix: str) -> list[str]:
    pat = re.compile(rf"^{re.escape(prefix)}[_.]?(\d+)$")
    numbered = sorted((int(m.group(1)), c) for c in df.columns if (m := pat.match(str(c))))
    return [c for _, c in numbered]


def _parse_vector(v: Any) -> list[float]:
    if isinstance(v, str):
        v = v.strip()
        return [float(x) for x in (json.loads(v) if v.startswith("[") else v.split())]
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return []
    return [float(x) for x in np.asarray(v, dtype=float).reshape(-1)]


def _matrix(path: Path, df: pd.DataFrame, prefix: str, required: bool) -> np.ndarray:
    cols = _vector_columns(df, prefix)
    if prefix in df.columns:
        try:
            rows = [_parse_vector(v) for v in df[prefix]]
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            raise DataError(f"{path}: column {prefix!r} holds a value that is not a list of "
                            f"numbers ({exc}); write e.g. \"[0.1, -0.2]\"") from exc
        lengths = {len(r) for r in rows}
        if len(lengths) > 1:
            raise DataError(f"{path}: column {prefix!r} has vectors of lengths {sorted(lengths)}; "
                            "every frame needs the same size")
        dim = lengths.pop() if lengths else 0
        return check_finite(path, prefix, np.asarray(rows, dtype=float).reshape(len(df), dim))
    if cols:
        return check_finite(path, f"{prefix} columns", df[cols].to_numpy())
    if required:
        raise DataError(
            f"{path}: manifest lacks the {prefix} column(s) (got {list(map(str, df.columns))}); "
            f"add '{prefix}' (a list) or '{prefix}_0', '{prefix}_1', ..."
        )
    return np.zeros((len(df), 0))


def _image_size(p: Path) -> tuple[int, int]:
    """(W, H) of an image from its header, without decoding the pixels."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # keep Pillow's notes off the one-line stderr
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                w, h = im.size
                # EXIF orientations 5-8 turn the image a quarter: width and height swap
                return (h, w) if im.getexif().get(0x0112) in (5, 6, 7, 8) else (w, h)
    except MemoryError:
        raise
    except Exception as exc:  # Pillow raises many types on bad input
        raise DataError(f"{p}: image cannot be read ({exc.__class__.__name__}: {str(exc)[:120]}); "
                        "re-export it as PNG/JPEG") from exc


def open_folder(src: Path, *, task: str | None, cameras: Sequence[str] | None,
                action_key: str | None = None,
                state_keys: Sequence[str] | None = None) -> SourceReader:
    """Check a manifest folder (see the module docstring) and return its reader.

    Args:
        action_key: column (or numbered-column prefix) of the actions (default ``action``).
        state_keys: columns concatenated into the state (default ``state`` when present).
    """
    manifest = find_manifest(src)
    if manifest is None:
        raise MissingFileError(f"{src}: no manifest found (looked for {', '.join(MANIFEST_NAMES)}); "
                               "add a manifest listing image, episode, step and action")
    base = manifest.parent
    try:
        if manifest.suffix.lower() == ".parquet":
            df = pd.read_parquet(manifest)
        else:
            df = pd.read_csv(manifest)
    except Exception as exc:  # pandas/pyarrow raise many types for a bad file
        raise DataError(f"{manifest}: manifest cannot be read ({exc.__class__.__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}); fix or re-export it") from exc
    image_cols = {(m.group("cam") or "image"): c for c in df.columns if (m := _IMAGE_COL.match(str(c)))}
    missing = [c for c in ("episode", "step") if c not in df.columns]
    if not image_cols:
        missing.append("image")
    if missing:
        raise DataError(f"{manifest}: manifest lacks columns {missing} (got "
                        f"{list(map(str, df.columns))}); add them (see `realgap data convert --help`)")
    cams = pick_cameras(manifest, list(image_cols), cameras)
    for col in ("episode", "step"):
        if df[col].isna().any() or not pd.api.types.is_integer_dtype(df[col]):
            raise DataError(f"{manifest}: column {col!r} must hold integers, got {df[col].dtype}; "
                            "number episodes and steps 0, 1, 2, ...")
    df = df.sort_values(["episode", "step"], kind="stable").reset_index(drop=True)
    dup = df.duplicated(["episode", "step"])
    if dup.any():
        r = df[dup].iloc[0]
        raise DataError(f"{manifest}: (episode {r['episode']}, step {r['step']}) appears twice; "
                        "give each frame a unique step")
    actions = _matrix(manifest, df, action_key or "action", required=True)
    if state_keys is None:
        states = _matrix(manifest, df, "state", required=False)
    else:
        parts = [_matrix(manifest, df, k, required=True) for k in state_keys]
        states = np.concatenate(parts, axis=1) if parts else np.zeros((len(df), 0))
    if task is None and "task" not in df.columns:
        task = manifest.parent.name or "task"
    factors = None
    if "factors" in df.columns:
        factors = []
        for i, txt in enumerate(df["factors"]):
            try:
                f = json.loads(txt) if isinstance(txt, str) and txt else {}
                f = f if isinstance(f, dict) else {"value": f}
                json.dumps(f, allow_nan=False)  # the FrameSet stores strict JSON
            except (ValueError, RecursionError) as exc:
                raise DataError(f"{manifest}: factors of row {i} is not a finite JSON object "
                                f"({str(exc)[:120]}); write a JSON object or leave it empty") from exc
            factors.append(f)
    # Header-only pass: every image exists, decodes and has its camera's size, before any
    # episode is written.
    sizes: dict[str, tuple[tuple[int, int], Path]] = {}
    for cam in cams:
        for rel in df[image_cols[cam]]:
            p = inside_root(base, str(rel), manifest, "image path")
            if not p.is_file():
                raise MissingFileError(f"{p}: image listed in {manifest.name} not found; fix the "
                                       "path (relative to the manifest) or drop the row")
            size = _image_size(p)
            ref = sizes.setdefault(cam, (size, p))
            if size != ref[0]:
                raise DataError(
                    f"{p}: image is {size[0]}x{size[1]} (WxH), camera {cam!r} images such as "
                    f"{ref[1].name} are {ref[0][0]}x{ref[0][1]}; images of mixed shapes: resize "
                    "them to one size per camera"
                )

    groups = [(int(ep), idx.to_numpy()) for ep, idx in df.groupby("episode", sort=True).groups.items()]
    if any(not 0 <= ep < 2**63 for ep, _ in groups):
        raise DataError(f"{manifest}: episode numbers must be in [0, 2^63); renumber the episodes")
    # The manifest's task column, when present, wins over ``task``; one task per episode,
    # checked before anything is written.
    ep_task: dict[int, str] = {ep: str(task) for ep, _ in groups}
    if "task" in df.columns:
        empty = [i for i, v in enumerate(df["task"])
                 if (pd.api.types.is_scalar(v) and pd.isna(v)) or not str(v).strip()]
        if empty:  # pandas keeps NaN through astype(str): it would become a task "nan"
            raise DataError(f"{manifest}: the task of episode {df['episode'].iloc[empty[0]]}, step "
                            f"{df['step'].iloc[empty[0]]} is empty; name a task in every row or "
                            "drop the column and pass --task")
        col = df["task"].map(str)
        for ep, rows in groups:
            names = sorted(set(col.iloc[rows]))
            if len(names) != 1:
                raise DataError(f"{manifest}: episode {ep} mixes tasks {names}; one task per "
                                "episode")
            ep_task[ep] = names[0]

    def episodes() -> Iterator[ReadEpisode]:
        for ep, rows in groups:
            imgs = {}
            for cam in cams:
                frames = []
                for rel in df[image_cols[cam]].iloc[rows]:
                    p = inside_root(base, str(rel), manifest, "image path")
                    frames.append(decode_image(p, p, "image", exif=True))
                    if frames[-1].shape != frames[0].shape:  # the header pass saw another size
                        raise DataError(f"{p}: image changed size while converting; convert "
                                        "again from a source nobody is writing to")
                imgs[cam] = np.stack(frames)
            yield ReadEpisode(
                task=ep_task[ep], episode=ep, images=imgs, actions=actions[rows],
                states=states[rows], source=f"folder:{manifest.resolve()}#episode={ep}",
                factors=[factors[i] for i in rows] if factors is not None else None,
            )

    return SourceReader(source=f"folder:{manifest.resolve()}", n_episodes=len(groups),
                        episodes=lambda: check_episodes(manifest, episodes()), cameras=cams)


READERS.add("folder", open_folder, detect=_detect)
