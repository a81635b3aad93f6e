"""robomimic / robosuite HDF5 demonstrations.

Layout (robomimic's dataset format, as written by its ``dataset_states_to_obs`` script)::

    data/                         attrs: total (int), env_args (JSON: env_name, env_kwargs, ...)
      demo_0/                     attrs: num_samples
        actions                   (T, A) float
        obs/<camera>_image        (T, H, W, 3) uint8   (e.g. agentview_image, robot0_eye_in_hand_image)
        obs/<low-dim key>         (T, d) float          (robot0_eef_pos, robot0_eef_quat, ...)
        states, rewards, dones    (ignored: simulator states are not robot states)
      demo_1/ ...
    mask/                         (ignored: train/valid filter keys)

Cameras are the ``obs`` keys ending in ``_image`` with the suffix removed (``agentview``).
The state vector is the concatenation, in the order given by ``state_keys`` (default:
the low-dim ``obs`` keys present in every demo, sorted by name), of the per-frame vectors;
the layout is recorded in ``source``. Demos are episodes, numbered by ``N`` of
``demo_N`` and read in that order. The task defaults to ``env_args["env_name"]``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from realgap._optional import require
from realgap.data.readers._base import (
    READERS,
    ReadEpisode,
    SourceReader,
    check_finite,
    check_images,
    pick_cameras,
)
from realgap.errors import DataError

_DEMO = re.compile(r"^demo_(\d+)$")
HDF5_SUFFIXES = (".hdf5", ".h5", ".hdf")


def _detect(src: Path) -> bool:
    return src.is_file() and src.suffix.lower() in HDF5_SUFFIXES


def _open_file(src: Path) -> Any:
    if not src.is_file():
        raise DataError(f"{src}: not a file; --format robomimic expects one .hdf5 file "
                        "(data/demo_N/...)")
    h5py = require("h5py")
    try:
        return h5py.File(src, "r")
    except OSError as exc:
        # h5py's messages span lines (a dump of its read state); keep the first one
        raise DataError(f"{src}: HDF5 file is truncated or corrupt "
                        f"({str(exc).splitlines()[0]}); re-export or re-download it") from exc


def open_robomimic(
    src: Path,
    *,
    task: str | None,
    cameras: Sequence[str] | None,
    state_keys: Sequence[str] | None = None,
) -> SourceReader:
    """Check a robomimic HDF5 file (see the module docstring) and return its reader."""
    with _open_file(src) as f:
        if "data" not in f:
            raise DataError(f"{src}: no 'data' group; expected robomimic layout data/demo_N/...")
        data = f["data"]
        demos = sorted((int(m.group(1)), k) for k in data if (m := _DEMO.match(k)))
        if not demos:
            raise DataError(f"{src}: 'data' holds no demo_N groups; expected data/demo_0, ...")
        env_name = None
        if "env_args" in data.attrs:
            try:
                env_name = json.loads(data.attrs["env_args"]).get("env_name")
            except (json.JSONDecodeError, TypeError, AttributeError):
                env_name = None
        image_sets, lowdim_sets = [], []
        for _, name in demos:
            g = data[name]
            for key in ("actions", "obs"):
                if key not in g:
                    raise DataError(f"{src}: data/{name} lacks '{key}'; every demo needs actions "
                                    "and obs/<camera>_image")
            obs = g["obs"]
            image_sets.append({k[: -len("_image")] for k in obs if k.endswith("_image")})
            lowdim_sets.append({k for k in obs if not k.endswith("_image")
                                and obs[k].ndim <= 2 and obs[k].dtype.kind == "f"})
            try:
                acts = g["actions"][()]
            except OSError as exc:
                raise DataError(f"{src}: data/{name}/actions cannot be read ({exc}); the file "
                                "is truncated or corrupt") from exc
            check_finite(src, "actions", acts, f" of data/{name}")
        cams_all = sorted(set.intersection(*image_sets))
        cams = pick_cameras(src, cams_all, cameras)
        common = set.intersection(*lowdim_sets)
        keys = sorted(common) if state_keys is None else list(state_keys)
        missing = [k for k in keys if k not in common]
        if missing:
            raise DataError(f"{src}: state keys {missing} are not low-dim obs of every demo; "
                            f"available: {sorted(common)}")
        shapes = {c: data[demos[0][1]]["obs"][f"{c}_image"].shape[1:] for c in cams}
        for _, name in demos:
            for c in cams:
                shp = data[name]["obs"][f"{c}_image"].shape[1:]
                if shp != shapes[c]:
                    raise DataError(f"{src}: data/{name}/obs/{c}_image frames are {shp}, "
                                    f"data/{demos[0][1]}'s are {shapes[c]}; images of mixed "
                                    "shapes: resize them to one size per camera")
            # states, like actions, are checked before anything is written
            n_steps = len(data[name]["actions"])
            for k in keys:
                try:
                    x = np.atleast_1d(np.asarray(data[name]["obs"][k][()]))
                except OSError as exc:
                    raise DataError(f"{src}: data/{name}/obs/{k} cannot be read ({exc}); the "
                                    "file is truncated or corrupt") from exc
                if len(x) != n_steps:
                    raise DataError(f"{src}: data/{name}/obs/{k} has {len(x)} rows, its actions "
                                    f"{n_steps}; one low-dim row per step is needed")
                check_finite(src, f"obs/{k}", x.reshape(n_steps, -1), f" of data/{name}")
    task_name = task or env_name or src.stem
    layout = ",".join(keys) if keys else "none"

    def episodes() -> Iterator[ReadEpisode]:
        with _open_file(src) as f:
            data = f["data"]
            for n, name in demos:
                g = data[name]
                try:
                    imgs = {c: check_images(src, f"data/{name}/obs/{c}_image",
                                            g["obs"][f"{c}_image"][()]) for c in cams}
                    acts = g["actions"][()]
                    parts = [np.asarray(g["obs"][k][()], dtype=np.float64).reshape(len(acts), -1)
                             for k in keys]
                except OSError as exc:
                    raise DataError(f"{src}: data/{name} cannot be read ({exc}); the file is "
                                    "truncated or corrupt") from exc
                states = np.concatenate(parts, axis=1) if parts else np.zeros((len(acts), 0))
                yield ReadEpisode(
                    task=task_name, episode=n, images=imgs, actions=np.asarray(acts),
                    states=check_finite(src, "states", states, f" of data/{name}"),
                    source=f"robomimic:{src.resolve()}#data/{name} state=[{layout}]",
                )

    return SourceReader(source=f"robomimic:{src.resolve()}", n_episodes=len(demos),
                        episodes=episodes, cameras=cams)


READERS.add("robomimic", open_robomimic, detect=_detect)
