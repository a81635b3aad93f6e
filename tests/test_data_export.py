"""`realgap data export --format lerobot`: the LeRobot v3.0 layout, and export then
convert gives the same frames (PNG: exact), actions, states and tasks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from realgap.cli import main
from realgap.data import FrameSet
from realgap.data.synthetic import write_synthetic


def test_export_lerobot_round_trip(tmp_path: Path, capsys) -> None:
    src = write_synthetic(tmp_path / "fs", domains=("sim",), tasks=("reach-mug", "push"),
                          n_episodes=2, n_frames=4, cameras=("head", "wrist"), size=16,
                          action_dim=3, state_dim=2)
    out = tmp_path / "lerobot"
    assert main(["data", "export", str(src), "--format", "lerobot", "--out", str(out),
                 "--fps", "15"]) == 0
    assert "LeRobot v3.0, 16 frames in 4 episodes" in capsys.readouterr().out
    info = json.loads((out / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 15 and info["total_tasks"] == 2
    for p in ("meta/stats.json", "meta/tasks.parquet", "meta/episodes/chunk-000/file-000.parquet",
              "data/chunk-000/file-000.parquet"):
        assert (out / p).is_file(), p
    data = pq.read_table(out / "data/chunk-000/file-000.parquet")
    assert set(data.column_names) == {"observation.images.head", "observation.images.wrist",
                                      "observation.state", "action", "timestamp", "frame_index",
                                      "episode_index", "index", "task_index"}
    eps = pd.read_parquet(out / "meta/episodes/chunk-000/file-000.parquet")
    assert eps["length"].tolist() == [4, 4, 4, 4]
    assert eps["dataset_to_index"].tolist() == [4, 8, 12, 16]
    stats = json.loads((out / "meta/stats.json").read_text())
    assert np.asarray(stats["observation.images.head"]["mean"]).shape == (3, 1, 1)
    # back in: same frames, actions, states and tasks
    assert main(["data", "convert", str(out), "--out", str(tmp_path / "back"), "--domain", "sim",
                 "--no-progress"]) == 0
    a, b = FrameSet.open(src), FrameSet.open(tmp_path / "back")
    assert b.cameras == a.cameras and len(b) == len(a) and b.tasks == a.tasks
    for cam in a.cameras:
        np.testing.assert_array_equal(b.images(cam), a.images(cam))
    np.testing.assert_array_equal(b.actions(), a.actions())
    np.testing.assert_array_equal(b.states(), a.states())
    assert b.manifest["task"].tolist() == a.manifest["task"].tolist()
    assert b.manifest["step"].tolist() == a.manifest["step"].tolist()


def test_export_refuses_a_non_empty_out(tmp_path: Path, capsys) -> None:
    src = write_synthetic(tmp_path / "fs", domains=("sim",), n_episodes=2, n_frames=2)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("keep")
    code = main(["data", "export", str(src), "--out", str(tmp_path / "busy")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("realgap: error: ") and "not an empty directory" in err
    assert (tmp_path / "busy" / "x").read_text() == "keep"
