"""Mapping on the way in (issue 13 item 2): camera renames, action/state keys, LIBERO
and robosuite files, EXIF orientation; and the camera mapping of `realgap gap`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image
from test_data_readers import (
    _assert_round_trip,
    _episodes,
    _lerobot_eps,
    _one_line_error,
    _write_lerobot_v21,
    _write_lerobot_v30,
)

from realgap.cli import main
from realgap.data import FrameSet
from realgap.data.conversion import parse_camera_args
from realgap.data.readers.robomimic import image_cameras
from realgap.data.synthetic import write_synthetic
from realgap.errors import ConfigError


def _rename_lerobot_keys(root: Path, ren: dict[str, str]) -> Path:
    """Rename features in info.json and in every data Parquet file (LeRobot datasets in the
    wild use e.g. ``actions``/``state`` instead of ``action``/``observation.state``)."""
    info = json.loads((root / "meta/info.json").read_text())
    info["features"] = {ren.get(k, k): v for k, v in info["features"].items()}
    (root / "meta/info.json").write_text(json.dumps(info))
    for p in (root / "data").rglob("*.parquet"):
        t = pq.read_table(p)
        pq.write_table(t.rename_columns([ren.get(c, c) for c in t.column_names]), p)
    return root


def _convert(src: Path, out: Path, *args: str) -> int:
    return main(["data", "convert", str(src), "--out", str(out), "--no-progress", *args])


def test_parse_camera_args() -> None:
    assert parse_camera_args(None) == (None, {})
    assert parse_camera_args(["wrist", "top=head"]) == (["wrist"], {"top": "head"})
    for bad in (["=head"], ["top="], ["top=a=b"], ["top=a", "top=b"]):
        with pytest.raises(ConfigError):
            parse_camera_args(bad)


def test_lerobot_keys_and_camera_map_then_append(tmp_path: Path, capsys) -> None:
    eps = _lerobot_eps([4, 3, 3])
    src = _rename_lerobot_keys(_write_lerobot_v30(tmp_path / "v3", eps),
                               {"action": "actions", "observation.state": "state"})
    out = tmp_path / "fs"
    # the defaults are not there: the message names the flag and the candidates
    err = _one_line_error(capsys, ["data", "convert", str(src), "--out", str(out), "--no-progress"])
    assert "features lack 'action'" in err and "--action-key KEY" in err and "'actions'" in err
    err = _one_line_error(capsys, ["data", "convert", str(src), "--out", str(out), "--no-progress",
                                   "--action-key", "actions", "--state-key", "nope"])
    assert "'nope'" in err and "--state-key" in err
    assert not out.exists()
    # renaming onto another kept camera's name is refused before anything is written
    err = _one_line_error(capsys, ["data", "convert", str(src), "--out", str(out), "--no-progress",
                                   "--action-key", "actions", "--camera", "top=wrist"])
    assert "would both be named 'wrist'" in err and not out.exists()
    err = _one_line_error(capsys, ["data", "convert", str(src), "--out", str(out), "--no-progress",
                                   "--action-key", "actions", "--camera", "left=head"])
    assert "['left']" in err and "'top'" in err
    assert _convert(src, out, "--action-key", "actions", "--state-key", "state",
                    "--camera", "top=head") == 0
    fs = FrameSet.open(out)
    assert fs.cameras == ["head", "wrist"]  # unnamed cameras are kept under their own names
    order = [0, 2, 1]  # canonical order: task "pick" (episodes 0, 2), then "place" (1)
    exact = [{**eps[i], "images": {"wrist": eps[i]["images"]["wrist"]}} for i in order]
    _assert_round_trip(fs, exact, {"wrist": "wrist"}, order)
    _assert_round_trip(fs, [eps[i] for i in order], {"top": "head"}, order, atol=4.0)
    n = len(fs)
    # --append from a v2.1 source (default keys) works once its cameras are mapped the same way
    more = _lerobot_eps([2, 2])
    src2 = _write_lerobot_v21(tmp_path / "v21", more)
    err = _one_line_error(capsys, ["data", "convert", str(src2), "--out", str(out), "--no-progress",
                                   "--append", "--task", "extra"])
    assert len(FrameSet.open(out)) == n  # refused (cameras top/wrist vs head/wrist); set intact
    assert _convert(src2, out, "--append", "--task", "extra", "--camera", "top=head") == 0
    fs = FrameSet.open(out)
    assert len(fs) == n + 4 and fs.cameras == ["head", "wrist"]
    np.testing.assert_array_equal(fs.select(task="extra").actions(),
                                  np.concatenate([e["actions"] for e in more]))


def test_only_mapped_and_plain_selection(tmp_path: Path) -> None:
    eps = _lerobot_eps([3, 2])
    src = _write_lerobot_v21(tmp_path / "v21", eps)
    assert _convert(src, tmp_path / "a", "--camera", "wrist=gripper", "--only-mapped") == 0
    assert FrameSet.open(tmp_path / "a").cameras == ["gripper"]
    # a plain name selects, as before: only the named cameras, the mapped one renamed
    assert _convert(src, tmp_path / "b", "--camera", "wrist", "--camera", "top=head") == 0
    assert FrameSet.open(tmp_path / "b").cameras == ["head", "wrist"]


def _write_libero(path: Path, eps: list[dict]) -> Path:
    """LIBERO's layout: obs/agentview_rgb, obs/eye_in_hand_rgb, ee_states, gripper_states,
    joint_states; the language instruction in data.attrs['problem_info']."""
    import h5py

    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": "Libero_Tabletop_Manipulation", "type": 1})
        data.attrs["problem_info"] = json.dumps({"problem_name": "libero_tabletop_manipulation",
                                                 "language_instruction": "put the bowl on the plate"})
        for n, e in enumerate(eps):
            g = data.create_group(f"demo_{n}")
            g.create_dataset("actions", data=e["actions"].astype(np.float64))
            g.create_dataset("states", data=np.zeros((len(e["actions"]), 9)))
            obs = g.create_group("obs")
            obs.create_dataset("agentview_rgb", data=e["images"]["head"])
            obs.create_dataset("eye_in_hand_rgb", data=e["images"]["wrist"])
            obs.create_dataset("ee_states", data=e["states"][:, :2])
            obs.create_dataset("gripper_states", data=e["states"][:, 2:3])
            obs.create_dataset("joint_states", data=e["states"][:, 3:])
    return path


def test_libero_robomimic_names(tmp_path: Path) -> None:
    eps = _episodes([3, 2], s_dim=5)
    src = _write_libero(tmp_path / "libero_demo.hdf5", eps)
    assert _convert(src, tmp_path / "fs", "--camera", "agentview=head",
                    "--camera", "eye_in_hand=wrist") == 0
    fs = FrameSet.open(tmp_path / "fs")
    assert fs.cameras == ["head", "wrist"] and fs.tasks == ["put the bowl on the plate"]
    _assert_round_trip(fs, eps, {"head": "head", "wrist": "wrist"}, [0, 1])  # states: sorted keys
    # --state-key picks and orders the low-dim keys
    assert _convert(src, tmp_path / "fs2", "--state-key", "joint_states",
                    "--state-key", "ee_states") == 0
    fs2 = FrameSet.open(tmp_path / "fs2")
    assert fs2.cameras == ["agentview", "eye_in_hand"]
    want = np.concatenate([np.concatenate([e["states"][:, 3:], e["states"][:, :2]], 1) for e in eps])
    np.testing.assert_array_equal(fs2.states(), want)


def test_image_key_table() -> None:
    keys = ["agentview_image", "agentview_rgb", "eye_in_hand_rgb", "image", "rgb", "wrist_depth",
            "robot0_eef_pos", "_rgb"]
    assert image_cameras(keys) == {"agentview": "agentview_image", "eye_in_hand": "eye_in_hand_rgb",
                                   "image": "image"}


def test_robosuite_states_only_names_the_script(tmp_path: Path, capsys) -> None:
    import h5py

    src = tmp_path / "demo.hdf5"
    with h5py.File(src, "w") as f:
        g = f.create_group("data").create_group("demo_1")
        g.create_dataset("states", data=np.zeros((5, 40)))
        g.create_dataset("actions", data=np.zeros((5, 7)))
    err = _one_line_error(capsys, ["data", "convert", str(src), "--out", str(tmp_path / "fs")])
    assert "raw robosuite demo.hdf5" in err
    assert f"robomimic/scripts/conversion/convert_robosuite.py --dataset {src}" in err
    assert f"robomimic/scripts/dataset_states_to_obs.py --dataset {src}" in err
    assert "--camera_names agentview robot0_eye_in_hand" in err


def test_folder_applies_exif_orientation(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    rng = np.random.default_rng(0)
    stored = np.kron(rng.integers(0, 256, (3, 5, 3)), np.ones((8, 8, 1))).astype(np.uint8)  # 24x40
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": a phone photo held upright
    for t in range(2):
        Image.fromarray(stored).save(root / f"{t}.jpg", quality=95, exif=exif)
    pd.DataFrame({"episode": [0, 0], "step": [0, 1], "image": ["0.jpg", "1.jpg"],
                  "action": ["[0.0]", "[1.0]"]}).to_csv(root / "manifest.csv", index=False)
    assert _convert(root, tmp_path / "fs") == 0
    fs = FrameSet.open(tmp_path / "fs")
    raw = np.asarray(Image.open(root / "0.jpg").convert("RGB"))  # as stored, 24 high x 40 wide
    assert raw.shape == (24, 40, 3) and fs.image_shape("image") == (40, 24, 3)
    np.testing.assert_array_equal(fs.images("image")[0], np.rot90(raw, k=-1))  # turned clockwise


def test_gap_real_camera_maps_lerobot_top_onto_sim_head(tmp_path: Path, capsys) -> None:
    sim = write_synthetic(tmp_path / "sim", domains=("sim",), n_episodes=3, n_frames=6,
                          cameras=("head",), size=32, action_dim=6, state_dim=6)
    src = _write_lerobot_v30(tmp_path / "so100", _lerobot_eps([6, 5, 6]))
    real = tmp_path / "real"
    assert _convert(src, real) == 0
    assert FrameSet.open(real).cameras == ["top", "wrist"]
    base = ["gap", "--sim", str(sim), "--real", str(real), "--real-domain", "real", "--encoders",
            "pixels", "--maps", "none", "--n-perm", "0", "--n-boot", "20", "--k", "8",
            "--space-k", "4", "--saliency-pairs", "0", "--quiet"]
    err = _one_line_error(capsys, [*base, "--out", str(tmp_path / "o0")])
    assert "share no camera" in err
    err = _one_line_error(capsys, [*base, "--out", str(tmp_path / "o1"), "--real-camera", "front"])
    assert "--real-camera 'front'" in err and "top, wrist" in err
    assert main([*base, "--out", str(tmp_path / "o2"), "--real-camera", "top", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    est = out["encoders"]["pixels"]
    assert np.isfinite(est["dis"]["value"]) and est["dis"]["n"] > 0
    # the real frames embedded are the `top` frames: the same run on a set renamed at
    # conversion (--camera top=head) gives the same numbers
    assert _convert(src, tmp_path / "real_head", "--camera", "top=head") == 0
    capsys.readouterr()
    base[4] = str(tmp_path / "real_head")
    assert main([*base, "--out", str(tmp_path / "o3"), "--json"]) == 0
    same = json.loads(capsys.readouterr().out)["encoders"]["pixels"]
    for m in ("dis", "mmd", "as_transfer", "coverage"):
        assert same[m]["value"] == est[m]["value"], m


def test_zarr_and_folder_keys(tmp_path: Path, capsys) -> None:
    import zarr

    eps = _episodes([3, 2], cams=("head",), s_dim=3)
    src = tmp_path / "buf.zarr"
    root = zarr.open_group(str(src), mode="w", zarr_format=3)
    root.create_array("data/img", data=np.concatenate([e["images"]["head"] for e in eps]))
    root.create_array("data/actions", data=np.concatenate([e["actions"] for e in eps]))
    root.create_array("data/eef", data=np.concatenate([e["states"][:, :2] for e in eps]))
    root.create_array("data/grip", data=np.concatenate([e["states"][:, 2] for e in eps]))
    root.create_array("meta/episode_ends", data=np.array([3, 5], dtype=np.int64))
    err = _one_line_error(capsys, ["data", "convert", str(src), "--out", str(tmp_path / "x")])
    assert "data/action" in err and "--action-key" in err
    err = _one_line_error(capsys, ["data", "convert", str(src), "--out", str(tmp_path / "x"),
                                   "--action-key", "actions", "--state-key", "nope"])
    assert "--state-key ['nope']" in err
    assert _convert(src, tmp_path / "fs", "--action-key", "actions", "--state-key", "eef",
                    "--state-key", "grip", "--camera", "img=head") == 0
    _assert_round_trip(FrameSet.open(tmp_path / "fs"), eps, {"head": "head"}, [0, 1])
    # folder: another action column, states from two column groups in the given order
    folder = tmp_path / "folder"
    folder.mkdir()
    rows = []
    for e_i, e in enumerate(eps):
        for t in range(len(e["actions"])):
            Image.fromarray(e["images"]["head"][t]).save(folder / f"{e_i}_{t}.png")
            rows.append({"episode": e_i, "step": t, "image": f"{e_i}_{t}.png",
                         "cmd": json.dumps(e["actions"][t].tolist()),
                         "eef": json.dumps(e["states"][t, :2].tolist()),
                         "grip": float(e["states"][t, 2])})
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    assert _convert(folder, tmp_path / "fs2", "--action-key", "cmd", "--state-key", "eef",
                    "--state-key", "grip", "--camera", "image=head") == 0
    _assert_round_trip(FrameSet.open(tmp_path / "fs2"), eps, {"head": "head"}, [0, 1])
