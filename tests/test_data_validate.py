"""`realgap data validate|info`: each kind of bad input gives one line and exit code 2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from realgap.cli import main
from realgap.data import FrameSet, FrameSetWriter, _images
from realgap.data._format import episode_key
from realgap.data.checks import info, validate
from realgap.data.synthetic import synthetic_episode, write_synthetic
from realgap.errors import DataError


def _fs(tmp_path: Path) -> Path:
    return write_synthetic(tmp_path / "fs", domains=("sim", "real"), n_episodes=2, n_frames=4,
                           size=8, rng=3)


def _ep(root: Path, domain: str = "sim", episode: int = 1) -> Path:
    return root / "episodes" / episode_key(domain, "reach-mug", episode)


def _error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("realgap: error: "), err
    assert "Traceback" not in err
    return err.strip()


def _rewrite_manifest(path: Path, fn) -> None:
    table = pq.read_table(path)
    pq.write_table(fn(table), path)


def test_valid_set_passes_and_validate_writes_nothing(tmp_path: Path, capsys) -> None:
    root = _fs(tmp_path)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert main(["data", "validate", str(root)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"ok: {root}: 16 frames in 4 episodes, domains ['real', 'sim']")
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    assert validate(root)["n_frames"] == 16


def test_missing_path(tmp_path: Path, capsys) -> None:
    err = _error_line(capsys, ["data", "validate", str(tmp_path / "nope")])
    assert f"{tmp_path / 'nope'}: no such FrameSet directory" in err


def test_missing_manifest_columns(tmp_path: Path, capsys) -> None:
    root = _fs(tmp_path)
    part = _ep(root) / "manifest.parquet"
    _rewrite_manifest(part, lambda t: t.drop_columns(["action", "source"]))
    err = _error_line(capsys, ["data", "validate", str(root)])
    assert f"{part}: manifest lacks columns ['action', 'source']" in err


def test_nan_actions(tmp_path: Path, capsys) -> None:
    root = _fs(tmp_path)
    part = _ep(root, "real", 0) / "manifest.parquet"

    def poison(t: pa.Table) -> pa.Table:
        acts = t.column("action").to_pylist()
        acts[2][1] = float("nan")
        return t.set_column(t.schema.get_field_index("action"), "action",
                            pa.array(acts, pa.list_(pa.float32())))

    _rewrite_manifest(part, poison)
    err = _error_line(capsys, ["data", "validate", str(root)])
    assert f"{part}: action has 1 NaN/inf values (first at step 2, dim 1)" in err


def _rewrite_images(ep: Path, cam: str, frames: np.ndarray, record: bool = False) -> None:
    """Replace a camera's stored frames; with ``record``, also rewrite its record consistently."""
    entry = _images.write_zstd(ep / f"{cam}.zst", frames, lambda f: None)
    if record:
        rec = json.loads((ep / "episode.json").read_text())
        rec["images"][cam] = entry
        rec["cameras"][cam] = list(frames.shape[1:])
        (ep / "episode.json").write_text(json.dumps(rec))


def test_images_of_mixed_shapes(tmp_path: Path, capsys) -> None:
    root = _fs(tmp_path)
    ep = _ep(root, "sim", 1)
    _rewrite_images(ep, "head", np.zeros((4, 12, 12, 3), np.uint8), record=True)
    meta = json.loads((root / "meta.json").read_text())
    del meta["episodes"][ep.name]  # as if written by a crashed writer: record from episode.json
    (root / "meta.json").write_text(json.dumps(meta))
    err = _error_line(capsys, ["data", "validate", str(root)])
    assert f"{ep / 'head.zst'}: images are (12, 12, 3), other episodes' are (8, 8, 3)" in err


def test_image_file_not_matching_its_record(tmp_path: Path, capsys) -> None:
    root = _fs(tmp_path)
    ep = _ep(root, "real", 1)
    _rewrite_images(ep, "head", np.zeros((4, 12, 12, 3), np.uint8))
    err = _error_line(capsys, ["data", "validate", str(root)])
    assert f"{ep / 'head.zst'}: file content hash" in err and "differs from its record" in err
    # the reader refuses it too, naming the file and `realgap data validate`
    with pytest.raises(DataError, match=r"head\.zst: file content hash .*realgap data validate"):
        FrameSet.open(root).select(domain="real").images("head")


def test_unknown_domain_label(tmp_path: Path, capsys) -> None:
    root = _fs(tmp_path)
    part = _ep(root, "sim", 0) / "manifest.parquet"

    def relabel(t: pa.Table) -> pa.Table:
        dom = pc.if_else(pc.equal(t.column("step"), 3), "simm", t.column("domain"))
        return t.set_column(t.schema.get_field_index("domain"), "domain", dom)

    _rewrite_manifest(part, relabel)
    err = _error_line(capsys, ["data", "validate", str(root)])
    assert (f"{part}: domain label 'simm' is not among the domains declared in "
            f"{root / 'meta.json'} ['real', 'sim']") in err


def test_truncated_parquet(tmp_path: Path, capsys) -> None:
    root = _fs(tmp_path)
    part = _ep(root) / "manifest.parquet"
    data = part.read_bytes()
    part.write_bytes(data[: len(data) // 2])
    err = _error_line(capsys, ["data", "validate", str(root)])
    assert f"{part}: Parquet file is truncated or corrupt" in err
    # opening uses the consolidated manifest; without it, open and info name the same file
    (root / "manifest.parquet").unlink()
    err = _error_line(capsys, ["data", "info", str(root)])
    assert f"{part}: Parquet file is truncated or corrupt" in err


def test_truncated_image_file(tmp_path: Path, capsys) -> None:
    root = _fs(tmp_path)
    arr = _ep(root) / "head.zst"
    data = arr.read_bytes()
    arr.write_bytes(data[: len(data) - 10])
    err = _error_line(capsys, ["data", "validate", str(root)])
    assert f"{arr}: file content hash" in err and "changed after writing" in err


def test_changed_pixels_fail_the_hash_and_stale_meta(tmp_path: Path, capsys, monkeypatch) -> None:
    root = _fs(tmp_path)
    fs = FrameSet.open(root)
    img = fs.select(domain="sim", episode=1).images("head")
    original = (_ep(root) / "head.zst").read_bytes()
    img[0, 0, 0, 0] ^= 0xFF
    _rewrite_images(_ep(root), "head", img)
    err = _error_line(capsys, ["data", "validate", str(root)])
    assert f"{_ep(root) / 'head.zst'}: file content hash" in err and "changed after writing" in err
    (_ep(root) / "head.zst").write_bytes(original)
    assert main(["data", "validate", str(root)]) == 0  # restored bytes validate again
    capsys.readouterr()
    meta = json.loads((root / "meta.json").read_text())
    (root / "meta.json").write_text(json.dumps({**meta, "content_hash": "0" * 64}))
    err = _error_line(capsys, ["data", "validate", str(root)])
    assert f"{root / 'meta.json'}: content_hash 000000000000 is stale" in err
    monkeypatch.setattr("realgap.data.writer.META_REFRESH_S", 1e9)  # meta.json lags the episodes
    with FrameSetWriter(root, source="s", resume=True) as w:  # a live writer holds the lock
        w.add_episode(domain="sim", task="reach-mug", episode=9,
                      **synthetic_episode(9, n_frames=4, size=8))
        assert json.loads((root / "meta.json").read_text())["n_episodes"] == 4  # not refreshed
        err = _error_line(capsys, ["data", "validate", str(root)])
        assert f"{root}: a FrameSetWriter (pid {os.getpid()}) is still writing this set" in err
    assert main(["data", "validate", str(root)]) == 0


def test_format_version(tmp_path: Path, capsys) -> None:
    root = _fs(tmp_path)
    meta = json.loads((root / "meta.json").read_text())
    (root / "meta.json").write_text(json.dumps({**meta, "format_version": 0}))
    err = _error_line(capsys, ["data", "validate", str(root)])
    assert f"{root / 'meta.json'}: FrameSet format_version 0 is not supported" in err
    (root / "meta.json").write_text("{not json")
    err = _error_line(capsys, ["data", "info", str(root)])
    assert f"{root / 'meta.json'}: meta.json is not valid JSON" in err


def _known_set(path: Path) -> Path:
    img = lambda n: np.zeros((n, 4, 6, 3), np.uint8)
    with FrameSetWriter(path, source="hand") as w:
        w.add_episode(domain="sim", task="a", episode=0, images={"c": img(2)},
                      actions=np.zeros((2, 2)), factors=[{"BG": 1}] * 2, pair_ids=["x", "y"])
        w.add_episode(domain="sim", task="b", episode=1, images={"c": img(3)},
                      actions=np.zeros((3, 2)), factors=[{"BG": 2}] * 3)
        w.add_episode(domain="real", task="a", episode=0, images={"c": img(25)},
                      actions=np.zeros((25, 2)),
                      factors=[{"BG": 1, "LT": {"intensity": t / 100}} for t in range(25)])
    return path


def test_info_counts_by_hand(tmp_path: Path, capsys) -> None:
    root = _known_set(tmp_path / "k")
    s = info(root)
    assert s["n_frames"] == 30 and s["n_episodes"] == 3
    assert s["by_domain"] == {"real": {"frames": 25, "episodes": 1},
                              "sim": {"frames": 5, "episodes": 2}}
    assert s["by_task"] == {"a": {"frames": 27, "episodes": 2}, "b": {"frames": 3, "episodes": 1}}
    assert s["by_domain_task"]["sim/a"] == {"frames": 2, "episodes": 1}
    assert s["episode_length"] == {"min": 2, "median": 3.0, "max": 25}
    assert s["pairs"] == 2
    assert s["cameras"] == {"c": [4, 6, 3]} and s["action_dim"] == 2 and s["state_dim"] == 0
    assert s["factors"]["BG"] == {"counts": {"1": 27, "2": 3}}
    lt = s["factors"]["LT.intensity"]  # 25 distinct values 0.00..0.24: summarised
    assert lt["n"] == 25 and lt["min"] == 0.0 and lt["max"] == 0.24
    assert lt["mean"] == pytest.approx(0.12)
    assert main(["data", "info", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(s))
    assert main(["data", "info", str(root)]) == 0
    text = capsys.readouterr().out
    assert "30 in 3 episodes" in text and "BG" in text and "1: 27, 2: 3" in text


def test_consolidated_manifest_is_checked_and_rebuilt(tmp_path: Path, capsys) -> None:
    root = _fs(tmp_path)
    cons = root / "manifest.parquet"
    table = pq.read_table(cons)
    assert table.schema.metadata[b"realgap.content_hash"].decode() == validate(root)["content_hash"]
    assert table.num_rows == 16
    # tampered cache with a current hash tag: validate names it
    acts = table.column("action").to_pylist()
    acts[0][0] += 1.0
    pq.write_table(table.set_column(table.schema.get_field_index("action"), "action",
                                    pa.array(acts, pa.list_(pa.float32()))), cons)
    err = _error_line(capsys, ["data", "validate", str(root)])
    assert f"{cons}: consolidated manifest differs from the episode parts" in err
    # a stale or missing cache is never used, and the next writer close rebuilds it
    cons.unlink()
    assert main(["data", "validate", str(root)]) == 0
    FrameSetWriter(root, source="s", resume=True).close()
    assert pq.read_table(cons).num_rows == 16
    assert main(["data", "validate", str(root)]) == 0


def test_data_without_action_and_info_on_a_file(tmp_path: Path, capsys) -> None:
    assert main(["data"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("realgap: error: realgap data: name an action") and err.count("\n") == 1
    f = tmp_path / "demo.hdf5"
    f.write_bytes(b"x")
    err = _error_line(capsys, ["data", "info", str(f)])
    assert f"{f}: is a file, not a FrameSet directory" in err and "realgap data convert" in err
    root = _fs(tmp_path)
    ep = _ep(root)
    (ep / "episode.json").unlink()
    err = _error_line(capsys, ["data", "validate", str(root)])
    assert f"{ep / 'episode.json'}: episode.json not found; the episode directory is incomplete" in err
