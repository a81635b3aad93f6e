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

Cameras are the image ``obs`` keys, named by :data:`IMAGE_KEYS` (first match wins):

    ========================  ===============  ===========================================
    ``obs`` key               camera           written by
    ========================  ===============  ===========================================
    ``<name>_image``          ``<name>``       robomimic ``dataset_states_to_obs``
                                               (``agentview_image``, ``robot0_eye_in_hand_image``)
    ``<name>_rgb``            ``<name>``       LIBERO (``agentview_rgb``, ``eye_in_hand_rgb``)
    ``image``, ``rgb``        ``image``        single-camera robomimic-style exports
    ========================  ===============  ===========================================

When two keys give one camera name (``agentview_image`` and ``agentview_rgb``), the first
row of the table wins. Depth maps (``<name>_depth``) and segmentation are not images.
Actions are ``actions`` (another dataset of the demo group with ``action_key``).
The state vector is the concatenation, in the order given by ``state_keys`` (default:
the low-dim ``obs`` keys present in every demo, sorted by name), of the per-frame vectors;
the layout is recorded in ``source``. Demos are episodes, numbered by ``N`` of
``demo_N`` and read in that order. The task defaults to LIBERO's
``problem_info["language_instruction"]`` when present, else ``env_args["env_name"]``.

A raw robosuite ``demo.hdf5`` (``data/demo_N/states`` and ``actions``, no ``obs``) holds
simulator states, not images; it is refused with the two robomimic commands that render
it (``conversion/convert_robosuite.py``, then ``dataset_states_to_obs.py``).

The file is untrusted: links to other files (``ExternalLink``), datasets whose bytes are
stored in other files (external storage, virtual datasets) are refused, as is any
member of the wrong kind (a dataset where a group belongs, text where numbers belong).
Everything except the pixels of 8-bit images is checked before the first episode is
yielded; each fault is one :class:`DataError` naming this file and the member.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from realgap._optional import require
from realgap.data.readers._base import (
    READERS,
    ReadEpisode,
    SourceReader,
    check_episodes,
    check_finite,
    check_images,
    check_read_size,
    pick_cameras,
)
from realgap.errors import ConfigError, DataError, RealgapError

_DEMO = re.compile(r"^demo_(\d+)$")
#: Recognised image ``obs`` keys: (suffix or whole key, camera name or None = key minus
#: suffix), in order of precedence. See the module docstring's table.
IMAGE_KEYS: tuple[tuple[str, str | None], ...] = (
    ("_image", None), ("_rgb", None), ("image", "image"), ("rgb", "image"))
#: What a states-only robosuite file needs before realgap can read it.
STATES_TO_OBS = (
    "python robomimic/scripts/conversion/convert_robosuite.py --dataset {src} && "
    "python robomimic/scripts/dataset_states_to_obs.py --dataset {src} --output_name "
    "image.hdf5 --done_mode 2 --camera_names agentview robot0_eye_in_hand "
    "--camera_height 84 --camera_width 84")


def image_cameras(keys: Sequence[str]) -> dict[str, str]:
    """Camera name -> ``obs`` key for the image keys among ``keys`` (:data:`IMAGE_KEYS`)."""
    out: dict[str, tuple[int, str]] = {}
    for k in keys:
        for rank, (pat, cam) in enumerate(IMAGE_KEYS):
            if cam is not None:
                name = cam if k == pat else None
            else:
                name = k[: -len(pat)] if k.endswith(pat) and len(k) > len(pat) else None
            if name is not None:
                if name not in out or rank < out[name][0]:
                    out[name] = (rank, k)
                break
    return {c: k for c, (_, k) in out.items()}
HDF5_SUFFIXES = (".hdf5", ".h5", ".hdf")


def _detect(src: Path) -> bool:
    return src.is_file() and src.suffix.lower() in HDF5_SUFFIXES


def _first_line(exc: BaseException) -> str:
    # h5py's messages span lines (a dump of its read state); keep the first one
    text = str(exc).strip()
    return text.splitlines()[0][:160] if text else type(exc).__name__


@contextmanager
def _h5_errors(src: Path) -> Iterator[None]:
    """Turn h5py's errors for a damaged file into one DataError naming ``src``.

    h5py maps HDF5's C errors to OSError, RuntimeError and KeyError (a bad object
    header, a broken B-tree, a checksum mismatch), raised at whatever access first
    touches the damage.
    """
    try:
        yield
    except RealgapError:
        raise
    except (OSError, RuntimeError, KeyError) as exc:
        raise DataError(f"{src}: HDF5 file is truncated or corrupt ({_first_line(exc)}); "
                        "re-export or re-download it") from exc


def _open_file(src: Path) -> Any:
    if not src.is_file():
        raise DataError(f"{src}: not a file; --format robomimic expects one .hdf5 file "
                        "(data/demo_N/...)")
    h5py = require("h5py")
    with _h5_errors(src):
        return h5py.File(src, "r")


def _member(src: Path, group: Any, key: str, kind: str) -> Any:
    """``group[key]``, which must be a ``kind`` ("group" or "dataset") held in this file."""
    h5py = require("h5py")
    name = f"{group.name.lstrip('/')}/{key}".lstrip("/")
    link = group.get(key, getlink=True)
    if link is None:
        raise DataError(f"{src}: {name} is missing; expected robomimic layout data/demo_N/"
                        "{actions, obs/<camera>_image}")
    if isinstance(link, h5py.ExternalLink):
        raise DataError(f"{src}: {name} is a link to another file ({link.filename}); realgap reads "
                        "only this file, copy the data in")
    obj = group[key]
    want = h5py.Group if kind == "group" else h5py.Dataset
    if not isinstance(obj, want):
        got = "group" if isinstance(obj, h5py.Group) else "dataset"
        raise DataError(f"{src}: {name} is a {got}, expected a {kind}; restore the robomimic "
                        "layout")
    if kind == "dataset" and (obj.external or obj.is_virtual):
        raise DataError(f"{src}: {name} has its bytes stored outside this file (external or "
                        "virtual dataset); realgap reads only this file, copy the data in")
    if kind == "dataset" and obj.dtype.kind not in "biuf":
        raise DataError(f"{src}: {name} is {obj.dtype}, not numbers; store numeric arrays")
    return obj


def _read(src: Path, ds: Any) -> np.ndarray:
    check_read_size(src, ds.name.lstrip("/"), ds.shape or (), ds.dtype.itemsize)
    with _h5_errors(src):
        return np.asarray(ds[()])


def _env_name(data: Any) -> str | None:
    """LIBERO's language instruction, else robomimic's env name, else None."""
    for attr, key in (("problem_info", "language_instruction"), ("env_args", "env_name")):
        try:
            name = json.loads(data.attrs[attr]).get(key)
        except (KeyError, OSError, json.JSONDecodeError, TypeError, AttributeError, ValueError,
                RecursionError):
            continue
        if isinstance(name, str) and name.strip():
            return name.strip()
    return None


def open_robomimic(
    src: Path,
    *,
    task: str | None,
    cameras: Sequence[str] | None,
    state_keys: Sequence[str] | None = None,
    action_key: str | None = None,
) -> SourceReader:
    """Check a robomimic HDF5 file (see the module docstring) and return its reader.

    Args:
        state_keys: low-dim ``obs`` keys concatenated into the state (default: all).
        action_key: dataset of each demo group holding the actions (default ``actions``).
    """
    akey = action_key or "actions"
    with _open_file(src) as f, _h5_errors(src):
        if "data" not in f:
            raise DataError(f"{src}: no 'data' group; expected robomimic layout data/demo_N/...")
        data = _member(src, f, "data", "group")
        demos = sorted((int(m.group(1)), k) for k in data if (m := _DEMO.match(k)))
        if not demos:
            raise DataError(f"{src}: 'data' holds no demo_N groups; expected data/demo_0, ...")
        env_name = _env_name(data)
        image_sets, lowdim_sets, n_steps, a_dims = [], [], {}, {}
        for _, name in demos:
            g = _member(src, data, name, "group")
            if g.get("obs", getlink=True) is None and g.get("states", getlink=True) is not None:
                raise DataError(f"{src}: data/{name} has simulator states but no 'obs' (a raw "
                                "robosuite demo.hdf5); render observations first: "
                                + STATES_TO_OBS.format(src=src))
            obs = _member(src, g, "obs", "group")
            if akey != "actions" and g.get(akey, getlink=True) is None:
                raise ConfigError(f"{src}: --action-key {akey!r}: data/{name} has no such dataset "
                                  f"(it has {sorted(g)}); name a dataset of the demo group")
            acts = check_finite(src, akey, _read(src, _member(src, g, akey, "dataset")),
                                f" of data/{name}")
            if len(acts) == 0:
                raise DataError(f"{src}: data/{name} has no frames (0 actions); drop the empty "
                                "demo")
            n_steps[name], a_dims[name] = len(acts), acts.shape[1]
            first = demos[0][1]
            if a_dims[name] != a_dims[first]:
                raise DataError(f"{src}: data/{name}/actions has {a_dims[name]} dims, data/"
                                f"{first}'s {a_dims[first]}; one action layout per file")
            members = {k: _member(src, obs, k, "dataset") for k in obs}
            img_keys = image_cameras(list(members))
            image_sets.append(set(img_keys.items()))
            lowdim_sets.append({k for k, d in members.items() if k not in img_keys.values()
                                and d.ndim <= 2 and d.dtype.kind == "f"})
        cam_key = dict(set.intersection(*image_sets))
        cams = pick_cameras(src, sorted(cam_key), cameras)
        common = set.intersection(*lowdim_sets)
        keys = sorted(common) if state_keys is None else list(state_keys)
        missing = [k for k in keys if k not in common]
        if missing:
            raise ConfigError(f"{src}: --state-key {missing}: not low-dim obs of every demo; "
                              f"available: {sorted(common)}")
        shapes: dict[str, tuple[int, ...]] = {}
        for _, name in demos:
            obs, n = data[name]["obs"], n_steps[name]
            for c in cams:
                ds, what = obs[cam_key[c]], f"data/{name}/obs/{cam_key[c]}"
                if ds.shape[:1] != (n,):
                    raise DataError(f"{src}: {what} has {ds.shape[0] if ds.shape else 0} frames, "
                                    f"its actions {n}; one image per step is needed")
                shp = shapes.setdefault(c, ds.shape[1:])
                if ds.shape[1:] != shp:
                    raise DataError(f"{src}: {what} frames are {ds.shape[1:]}, data/{demos[0][1]}'s "
                                    f"are {shp}; images of mixed shapes: resize them to one size "
                                    "per camera")
                if ds.dtype.kind == "f":  # float pixels: NaN/range need the values, check now
                    check_images(src, what, _read(src, ds))
                else:
                    check_images(src, what, np.zeros((1, *ds.shape[1:]), ds.dtype))  # shape only
            # states, like actions, are checked before anything is written
            for k in keys:
                x = np.atleast_1d(_read(src, obs[k]))
                if len(x) != n:
                    raise DataError(f"{src}: data/{name}/obs/{k} has {len(x)} rows, its actions "
                                    f"{n}; one low-dim row per step is needed")
                check_finite(src, f"obs/{k}", x.reshape(n, -1), f" of data/{name}")
    task_name = task or env_name or src.stem
    layout = ",".join(keys) if keys else "none"

    def episodes() -> Iterator[ReadEpisode]:
        with _open_file(src) as f:
            data = f["data"]
            for n, name in demos:
                g = data[name]
                imgs = {c: check_images(src, f"data/{name}/obs/{cam_key[c]}",
                                        _read(src, g["obs"][cam_key[c]])) for c in cams}
                acts = check_finite(src, akey, _read(src, g[akey]), f" of data/{name}")
                parts = [np.asarray(_read(src, g["obs"][k]), dtype=np.float64).reshape(len(acts), -1)
                         for k in keys]
                states = np.concatenate(parts, axis=1) if parts else np.zeros((len(acts), 0))
                yield ReadEpisode(
                    task=task_name, episode=n, images=imgs, actions=acts,
                    states=check_finite(src, "states", states, f" of data/{name}"),
                    source=f"robomimic:{src.resolve()}#data/{name} state=[{layout}]",
                )

    return SourceReader(source=f"robomimic:{src.resolve()}", n_episodes=len(demos),
                        episodes=lambda: check_episodes(src, episodes()), cameras=cams)


READERS.add("robomimic", open_robomimic, detect=_detect)
