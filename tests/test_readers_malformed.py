"""Malformed and hostile sources through `realgap data convert` (issue 10).

Every case must end in exit code 2 and ONE stderr line that names the faulty source file
(never the ``--out`` set), and the FrameSet already at ``--out`` must be byte-identical
afterwards. Paths a dataset names must stay inside the dataset: a file outside it is
refused, and its pixels never reach a FrameSet. The fixtures are the published layouts
built by ``test_data_readers``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from test_data_readers import (
    _episodes,
    _lerobot_eps,
    _write_folder,
    _write_lerobot_v21,
    _write_lerobot_v30,
    _write_robomimic,
    _write_zarr,
)

from realgap.cli import main
from realgap.data import FrameSet
from realgap.data.synthetic import write_synthetic


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def existing(tmp_path: Path) -> Path:
    """An existing FrameSet that every failed conversion appends to and must leave alone."""
    return write_synthetic(tmp_path / "existing", domains=("real",), tasks=("t",), n_episodes=1,
                           n_frames=2, size=8, rng=0)


def _fails(capsys: pytest.CaptureFixture[str], src: Path, out: Path, *names: str,
           fmt: str | None = None) -> str:
    """Convert ``src`` into ``out`` (append); assert exit 2, one line naming ``names``, and
    ``out`` unchanged; return the line."""
    before = _snapshot(out)
    argv = ["data", "convert", str(src), "--out", str(out), "--append", "--no-progress"]
    code = main(argv + (["--format", fmt] if fmt else []))
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("realgap: error: "), err
    assert str(out) not in err, err  # a source fault never blames the output set
    for name in names:
        assert name in err, err
    assert _snapshot(out) == before
    return err.strip()


def _info(src: Path) -> dict:
    return json.loads((src / "meta/info.json").read_text())


def _set_info(src: Path, info: object) -> None:
    (src / "meta/info.json").write_text(json.dumps(info))


@pytest.fixture
def lerobot(tmp_path: Path) -> Path:
    return _write_lerobot_v21(tmp_path / "ds", _lerobot_eps([3, 3]))


# -- LeRobot metadata -------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value", "phrase"), [
    ("chunks_size", 0, "chunks_size 0 must be a positive integer"),
    ("fps", "thirty", "fps 'thirty' must be a positive number"),
    ("fps", float("nan"), "fps nan must be a positive number"),
    ("data_path", "data/{foo}/episode_{episode_index:06d}.parquet", "unknown field {foo}"),
    ("video_path", "videos/{video_key/episode.mp4", "is not a valid path template"),
    ("data_path", "data/{episode_index.__class__}.parquet", "unknown field {episode_index.__class__}"),
    ("features", {"action": {"dtype": "float32"}, "observation.images.top": "video"},
     "feature 'observation.images.top' is not an object"),
    ("features", [1, 2], "features is not an object"),
    ("codebase_version", 2.1, "codebase_version 2.1 is not supported"),
])
def test_lerobot_bad_info_field(lerobot: Path, existing: Path, capsys, field: str, value: object,
                                phrase: str) -> None:
    info = _info(lerobot)
    info[field] = value
    _set_info(lerobot, info)
    _fails(capsys, lerobot, existing, str(lerobot / "meta/info.json"), phrase)


def test_lerobot_info_not_an_object_or_not_utf8(lerobot: Path, existing: Path, capsys) -> None:
    info_path = lerobot / "meta/info.json"
    _set_info(lerobot, [_info(lerobot)])
    _fails(capsys, lerobot, existing, str(info_path), "holds a list, expected a JSON object")
    info_path.write_bytes(b'{"fps": 10, "name": "caf\xe9"}')  # Latin-1, not UTF-8
    _fails(capsys, lerobot, existing, str(info_path), "is not UTF-8")


def test_lerobot_bad_episodes_jsonl(lerobot: Path, existing: Path, capsys) -> None:
    path = lerobot / "meta/episodes.jsonl"
    path.write_text('{"episode_index": 0}\n{"length": 3}\n')
    _fails(capsys, lerobot, existing, str(path), "line 2 lacks 'episode_index'")
    path.write_text('{"episode_index": 0}\n{"episode_index": "one"}\n')
    _fails(capsys, lerobot, existing, str(path), "episode_index 'one' on line 2 must be an integer >= 0")
    path.write_text('{"episode_index": 0}\n[1]\n')
    _fails(capsys, lerobot, existing, str(path), "line 2 is not a JSON object")
    path.write_bytes(b'{"episode_index": 0}\n\xff\n')
    _fails(capsys, lerobot, existing, str(path), "is not UTF-8")
    tasks = lerobot / "meta/tasks.jsonl"
    path.write_text('{"episode_index": 0}\n{"episode_index": 1}\n')
    tasks.write_text('{"task": "pick"}\n')
    _fails(capsys, lerobot, existing, str(tasks), "lacks 'task_index'")


def test_lerobot_ragged_actions(lerobot: Path, existing: Path, capsys) -> None:
    part = lerobot / "data/chunk-000/episode_000001.parquet"
    t = pq.read_table(part)
    acts = t.column("action").to_pylist()
    acts[1] = acts[1][:4]
    t = t.set_column(t.schema.get_field_index("action"), "action", pa.array(acts, pa.list_(pa.float32())))
    pq.write_table(t, part)
    _fails(capsys, lerobot, existing, str(part), "action of episode 1 has vectors of lengths [4, 6]")
    acts[1] = None
    t = t.set_column(t.schema.get_field_index("action"), "action", pa.array(acts, pa.list_(pa.float32())))
    pq.write_table(t, part)
    _fails(capsys, lerobot, existing, str(part), "action of episode 1 has an empty value at row 1")


def test_lerobot_string_actions(lerobot: Path, existing: Path, capsys) -> None:
    part = lerobot / "data/chunk-000/episode_000001.parquet"
    t = pq.read_table(part)
    t = t.set_column(t.schema.get_field_index("action"), "action",
                     pa.array(["a", "b", "c"], pa.string()))
    pq.write_table(t, part)
    _fails(capsys, lerobot, existing, str(part), "action of episode 1 is not numeric")


def test_lerobot_nan_chunk_index(tmp_path: Path, existing: Path, capsys) -> None:
    src = _write_lerobot_v30(tmp_path / "v3", _lerobot_eps([3, 2, 2]))
    meta = src / "meta/episodes/chunk-000/file-000.parquet"
    df = pd.read_parquet(meta)
    df["data/chunk_index"] = df["data/chunk_index"].astype(float)
    df.loc[1, "data/chunk_index"] = np.nan
    df.to_parquet(meta)
    _fails(capsys, src, existing, str(meta), "data/chunk_index nan of episode 1 must be an "
                                             "integer >= 0")
    df.loc[1, "data/chunk_index"] = 0
    key = "videos/observation.images.top/from_timestamp"
    df.loc[1, key] = np.nan
    df.to_parquet(meta)
    _fails(capsys, src, existing, str(meta), f"{key} nan of episode 1 must be a finite time")


def test_lerobot_corrupt_mp4(lerobot: Path, existing: Path, capsys) -> None:
    vid = lerobot / "videos/chunk-000/observation.images.top/episode_000001.mp4"
    vid.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    _fails(capsys, lerobot, existing, str(vid), "video cannot be decoded")
    vid.write_bytes(b"")
    _fails(capsys, lerobot, existing, str(vid), "video cannot be decoded")


def test_lerobot_nan_timestamps_are_refused(lerobot: Path, existing: Path, capsys) -> None:
    # NaN timestamps used to import every frame as the video's first frame, silently.
    part = lerobot / "data/chunk-000/episode_000000.parquet"
    t = pq.read_table(part)
    ts = t.column("timestamp").to_numpy().copy()
    ts[1] = np.nan
    t = t.set_column(t.schema.get_field_index("timestamp"), "timestamp", pa.array(ts, pa.float32()))
    pq.write_table(t, part)
    _fails(capsys, lerobot, existing, str(part), "timestamp of episode 0 has 1 NaN/inf values")


# -- LeRobot paths leaving the dataset ----------------------------------------------------


def _outside_video(tmp_path: Path, lerobot: Path) -> Path:
    """A decodable video outside the dataset, with frames unlike the dataset's."""
    from test_data_readers import _write_mp4

    out = tmp_path / "secret" / "videos/chunk-000/observation.images.top/episode_000000.mp4"
    _write_mp4(out, np.full((3, 32, 32, 3), 255, np.uint8), 10)
    shutil.copy(out, out.with_name("episode_000001.mp4"))
    return out


def test_lerobot_video_path_outside_root(tmp_path: Path, lerobot: Path, existing: Path, capsys) -> None:
    outside = _outside_video(tmp_path, lerobot)
    info = _info(lerobot)
    info["video_path"] = "../secret/" + info["video_path"]
    _set_info(lerobot, info)
    err = _fails(capsys, lerobot, existing, str(lerobot / "meta/info.json"),
                 "video path '../secret/videos/", "outside the dataset")
    assert "episode_000000.mp4" in err
    info["video_path"] = str(tmp_path / "secret") + "/" + info["video_path"].removeprefix("../secret/")
    _set_info(lerobot, info)
    _fails(capsys, lerobot, existing, str(lerobot / "meta/info.json"), str(outside),
           "outside the dataset")
    # a symlink inside the dataset that points out of it is the same escape
    info["video_path"] = "links/" + info["video_path"].removeprefix(str(tmp_path / "secret") + "/")
    _set_info(lerobot, info)
    (lerobot / "links").symlink_to(tmp_path / "secret")
    _fails(capsys, lerobot, existing, "outside the dataset")
    # and nothing from the outside file reached any FrameSet: a fresh --out stays empty
    code = main(["data", "convert", str(lerobot), "--out", str(tmp_path / "fresh"), "--no-progress"])
    assert code == 2
    assert not (tmp_path / "fresh" / "episodes").exists() or not any((tmp_path / "fresh" / "episodes").iterdir())


def test_lerobot_data_path_outside_root(tmp_path: Path, lerobot: Path, existing: Path, capsys) -> None:
    shutil.copytree(lerobot / "data", tmp_path / "elsewhere" / "data")
    info = _info(lerobot)
    info["data_path"] = "../elsewhere/" + info["data_path"]
    _set_info(lerobot, info)
    _fails(capsys, lerobot, existing, str(lerobot / "meta/info.json"), "data path '../elsewhere/data/",
           "outside the dataset")


def test_lerobot_image_path_outside_root(tmp_path: Path, lerobot: Path, existing: Path, capsys) -> None:
    Image.fromarray(np.full((32, 32, 3), 255, np.uint8)).save(tmp_path / "secret.png")
    part = lerobot / "data/chunk-000/episode_000000.parquet"
    t = pq.read_table(part)
    col = t.column("observation.images.wrist").to_pylist()
    col[0] = {"bytes": None, "path": "../secret.png"}
    col[1] = {"bytes": None, "path": str(tmp_path / "secret.png")}
    img_t = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    t = t.set_column(t.schema.get_field_index("observation.images.wrist"),
                     "observation.images.wrist", pa.array(col, img_t))
    pq.write_table(t, part)
    _fails(capsys, lerobot, existing, str(part), "image path '../secret.png'", "outside the dataset")
    # an image path inside the dataset is still read
    Image.fromarray(np.full((32, 32, 3), 7, np.uint8)).save(lerobot / "inside.png")
    col[0] = col[1] = {"bytes": None, "path": "inside.png"}
    t = t.set_column(t.schema.get_field_index("observation.images.wrist"),
                     "observation.images.wrist", pa.array(col, img_t))
    pq.write_table(t, part)
    assert main(["data", "convert", str(lerobot), "--out", str(tmp_path / "ok"), "--no-progress"]) == 0
    wrist = FrameSet.open(tmp_path / "ok").select(episode=0).images("wrist")
    assert (wrist[:2] == 7).all()


# -- robomimic ---------------------------------------------------------------------------


def _h5(tmp_path: Path, name: str = "lift.hdf5") -> Path:
    return _write_robomimic(tmp_path / name, _episodes([3, 3]), [0, 1])


def test_robomimic_empty_demo(tmp_path: Path, existing: Path, capsys) -> None:
    eps = _episodes([3, 0])
    src = _write_robomimic(tmp_path / "empty.hdf5", eps, [0, 1])
    _fails(capsys, src, existing, str(src), "data/demo_1 has no frames")


def test_robomimic_string_actions_and_data_as_dataset(tmp_path: Path, existing: Path, capsys) -> None:
    import h5py

    src = _h5(tmp_path)
    with h5py.File(src, "a") as f:
        del f["data/demo_1/actions"]
        f["data/demo_1/actions"] = np.array([b"up", b"down", b"left"])
    _fails(capsys, src, existing, str(src), "data/demo_1/actions is |S4, not numbers")
    with h5py.File(src, "a") as f:
        del f["data"]
        f["data"] = np.zeros(3)
    _fails(capsys, src, existing, str(src), "data is a dataset, expected a group")
    with h5py.File(src, "a") as f:
        del f["data"]
        f.create_group("data/demo_0/obs")
        f["data/demo_0/actions"] = np.zeros((2, 2))
        f["data/demo_0/obs/agentview_image"] = np.zeros((2, 4, 4, 3), np.uint8)
        f.create_group("data/demo_0/obs/robot0_eef_pos")  # a group where an array belongs
    _fails(capsys, src, existing, str(src), "data/demo_0/obs/robot0_eef_pos is a group")


def test_robomimic_corrupt_hdf5(tmp_path: Path, existing: Path, capsys) -> None:
    src = _h5(tmp_path)
    data = bytearray(src.read_bytes())
    data[: len(data) // 2] = bytes(len(data) // 2)  # the superblock and tree nodes zeroed
    src.write_bytes(bytes(data))
    _fails(capsys, src, existing, str(src), "HDF5 file is truncated or corrupt")


def test_robomimic_blames_the_source_not_the_out_set(tmp_path: Path, existing: Path, capsys) -> None:
    import h5py

    src = _h5(tmp_path)
    with h5py.File(src, "a") as f:  # 2 images for 3 actions
        del f["data/demo_1/obs/agentview_image"]
        f["data/demo_1/obs/agentview_image"] = np.zeros((2, 16, 16, 3), np.uint8)
    _fails(capsys, src, existing, str(src), "data/demo_1/obs/agentview_image has 2 frames, its "
                                            "actions 3")
    src = _h5(tmp_path, "dims.hdf5")
    with h5py.File(src, "a") as f:  # another action size than demo_0
        del f["data/demo_1/actions"]
        f["data/demo_1/actions"] = np.zeros((3, 7))
    _fails(capsys, src, existing, str(src), "data/demo_1/actions has 7 dims, data/demo_0's 4")


def test_robomimic_nan_float_images_are_refused(tmp_path: Path, existing: Path, capsys) -> None:
    # NaN in float images used to become 0 (black pixels), silently.
    import h5py

    src = _h5(tmp_path)
    with h5py.File(src, "a") as f:
        img = f["data/demo_1/obs/agentview_image"][()].astype(np.float32) / 255
        img[2, 3, 4, 1] = np.nan
        del f["data/demo_1/obs/agentview_image"]
        f["data/demo_1/obs/agentview_image"] = img
    _fails(capsys, src, existing, str(src), "data/demo_1/obs/agentview_image has 1 NaN/inf values")


def test_robomimic_external_storage_is_refused(tmp_path: Path, existing: Path, capsys) -> None:
    import h5py

    secret = tmp_path / "secret.bin"
    secret.write_bytes(bytes([255]) * (3 * 16 * 16 * 3))
    src = _h5(tmp_path)
    with h5py.File(src, "a") as f:  # raw image bytes stored in a file outside the HDF5
        del f["data/demo_1/obs/agentview_image"]
        f.create_dataset("data/demo_1/obs/agentview_image", shape=(3, 16, 16, 3), dtype=np.uint8,
                         external=[(str(secret), 0, h5py.h5f.UNLIMITED)])
    _fails(capsys, src, existing, str(src), "data/demo_1/obs/agentview_image", "stored outside")
    with h5py.File(src, "a") as f:
        del f["data/demo_1/obs/agentview_image"]
        f["data/demo_1/obs/agentview_image"] = h5py.ExternalLink(str(tmp_path / "other.hdf5"), "/x")
    _fails(capsys, src, existing, str(src), "data/demo_1/obs/agentview_image", "link to another file")


# -- zarr --------------------------------------------------------------------------------


def _zarr(tmp_path: Path, fmt: int = 3, zip_file: bool = False) -> Path:
    name = "buf.zarr.zip" if zip_file else "buf.zarr"
    return _write_zarr(tmp_path / name, _episodes([3, 2], cams=("head",)), fmt, zip_file)


def test_zarr_corrupt_metadata(tmp_path: Path, existing: Path, capsys) -> None:
    src = _zarr(tmp_path)
    (src / "zarr.json").write_text('{"zarr_format": 3, "node_type": ')
    _fails(capsys, src, existing, str(src), "not a readable zarr group")
    src = _zarr(tmp_path / "b")
    (src / "data/action/zarr.json").write_text('{"zarr_format": 3, "node_type": "array", "shape": "x"}')
    _fails(capsys, src, existing, str(src), "data/action cannot be read")
    src = _zarr(tmp_path / "c", fmt=2)
    (src / "meta/episode_ends/.zarray").write_bytes(b"\xff\xfe")
    _fails(capsys, src, existing, str(src), "meta/episode_ends")


def test_zarr_bad_crc(tmp_path: Path, existing: Path, capsys) -> None:
    import zipfile

    src = _zarr(tmp_path, zip_file=True)
    with zipfile.ZipFile(src) as z:
        info = z.getinfo("data/action/c/0/0")
    data = bytearray(src.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0xFF
    src.write_bytes(bytes(data))
    _fails(capsys, src, existing, str(src), "data/action cannot be read", "CRC")


def test_zarr_dotdot_members_and_escaping_links(tmp_path: Path, existing: Path, capsys) -> None:
    import zipfile

    src = _zarr(tmp_path, zip_file=True)
    with zipfile.ZipFile(src, "a") as z:
        z.writestr("data/../../evil/zarr.json", "{}")
    _fails(capsys, src, existing, str(src), "member 'data/../../evil/zarr.json'", "outside")
    src = _zarr(tmp_path / "d")
    shutil.copytree(src / "data/img", tmp_path / "secret_img")
    shutil.rmtree(src / "data/img")
    (src / "data/img").symlink_to(tmp_path / "secret_img")
    _fails(capsys, src, existing, str(src / "data/img"), "outside the dataset")


def test_zarr_bad_episode_ends(tmp_path: Path, existing: Path, capsys) -> None:
    import zarr

    src = _zarr(tmp_path)
    root = zarr.open_group(str(src), mode="a")
    del root["meta/episode_ends"]
    root.create_array("meta/episode_ends", data=np.array([3.0, 5.5]))
    _fails(capsys, src, existing, str(src), "meta/episode_ends is float64, expected integers")
    del root["data/action"]
    root.create_array("data/action", data=np.float64(3.0))
    _fails(capsys, src, existing, str(src), "data/action has shape ()")


# -- folder + manifest -------------------------------------------------------------------


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink"])
def test_folder_image_path_outside_root(tmp_path: Path, existing: Path, capsys, how: str) -> None:
    src = _write_folder(tmp_path / "src", _episodes([2, 2], cams=("head",)))
    secret = tmp_path / "secret.png"
    Image.fromarray(np.full((16, 16, 3), 255, np.uint8)).save(secret)
    df = pd.read_csv(src / "manifest.csv")
    if how == "symlink":
        os.remove(src / df.loc[0, "image_head"])
        (src / df.loc[0, "image_head"]).symlink_to(secret)
        bad = df.loc[0, "image_head"]
    else:
        bad = "../secret.png" if how == "dotdot" else str(secret)
        df.loc[0, "image_head"] = bad
        df.to_csv(src / "manifest.csv", index=False)
    _fails(capsys, src, existing, str(src / "manifest.csv"), f"image path {bad!r}",
           "outside the dataset")


# -- sizes a FrameSet cannot hold, and sizes nobody should allocate ----------------------


def test_values_beyond_float32_are_refused(tmp_path: Path, existing: Path, capsys) -> None:
    # float64 1e39 passed the finite check and became inf in the float32 FrameSet
    eps = _episodes([3, 2], cams=("head",))
    acts = [e["actions"].astype(np.float64) for e in eps]
    acts[1][1, 0] = 1e39
    for e, a in zip(eps, acts, strict=True):
        e["actions"] = a
    src = _write_zarr(tmp_path / "big.zarr", eps, 3)
    _fails(capsys, src, existing, str(src), "data/action has values beyond float32 (first at step "
                                            "4, dim 0: 1e+39)")


def test_huge_declared_shape_is_not_allocated(tmp_path: Path, existing: Path, capsys) -> None:
    import h5py

    src = _h5(tmp_path)
    with h5py.File(src, "a") as f:  # 64 GiB declared in a few bytes of metadata, no chunks
        del f["data/demo_1/actions"]
        f.create_dataset("data/demo_1/actions", shape=(2**32, 2), dtype="f8", chunks=(1024, 2))
    assert src.stat().st_size < 1e6
    _fails(capsys, src, existing, str(src), "data/demo_1/actions declares shape (4294967296, 2) "
                                            "(64 GiB in one read")


def test_folder_empty_task_cell(tmp_path: Path, existing: Path, capsys) -> None:
    # found by fuzzing: a null in a float task column was a TypeError traceback, and an
    # empty cell in a text column would have become the task "nan"
    src = _write_folder(tmp_path / "src", _episodes([2, 2], cams=("head",)), "parquet")
    df = pd.read_parquet(src / "manifest.parquet")
    df.loc[(df["episode"] == 1) & (df["step"] == 0), "task"] = None
    df.to_parquet(src / "manifest.parquet")
    _fails(capsys, src, existing, str(src / "manifest.parquet"),
           "the task of episode 1, step 0 is empty")
    df["task"] = [0.0, 0.0, 0.0, None]
    df.to_parquet(src / "manifest.parquet")
    _fails(capsys, src, existing, str(src / "manifest.parquet"), "is empty")


def test_faults_found_by_fuzzing(tmp_path: Path, lerobot: Path, existing: Path, capsys) -> None:
    # numbered state columns holding text or lists were ValueError tracebacks from pandas
    src = _write_folder(tmp_path / "src", _episodes([2, 2], cams=("head",)))
    df = pd.read_csv(src / "manifest.csv")
    for value in ("../secret.png", "[1.0, 2.0]"):
        bad = df.astype({"state_0": object})
        bad.loc[0, "state_0"] = value
        bad.to_csv(src / "manifest.csv", index=False)
        _fails(capsys, src, existing, str(src / "manifest.csv"), "state columns is not numeric")
    # LeRobot episode_index of lists (ambiguous truth value) and frame_index of empty lists
    # (IndexError)
    part = lerobot / "data/chunk-000/episode_000001.parquet"
    good = pq.read_table(part)
    for col, phrase in (("episode_index", "column 'episode_index' is object, expected integers"),
                        ("frame_index", "frame_index of episode 1 holds 0 numbers per frame")):
        t = good.set_column(good.schema.get_field_index(col), col,
                            pa.array([[]] * good.num_rows, pa.list_(pa.float64())))
        pq.write_table(t, part)
        _fails(capsys, lerobot, existing, str(part), phrase)
