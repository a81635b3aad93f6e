"""FrameSet format 3 storage: lossless codec, version-2 sets still read, records checked.

Covers the issue-10 cases that live in the FrameSet: metadata of the wrong type, an
episode number of 2^64-2, an edited consolidated manifest or manifest part.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realgap.cli import main
from realgap.data import FrameSet, FrameSetWriter, _images
from realgap.data._format import (
    combine_hashes,
    episode_key,
    hash_episode,
    hash_manifest,
)
from realgap.data.checks import validate
from realgap.data.synthetic import synthetic_episode, write_synthetic
from realgap.data.writer import _episode_table
from realgap.errors import DataError, FormatVersionError


def _one_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("realgap: error: ") and "Traceback" not in err
    return err


@settings(max_examples=25, deadline=None)
@given(t=st.integers(1, 70), h=st.integers(1, 9), w=st.integers(1, 9), seed=st.integers(0, 99),
       smooth=st.booleans())
def test_zstd_chunks_round_trip_exactly(t: int, h: int, w: int, seed: int, smooth: bool) -> None:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8)
    if smooth:  # rows that wrap around mod 256 under the Up filter
        frames = np.cumsum(frames, axis=1, dtype=np.uint8)
    k = _images.CHUNK_FRAMES
    chunks = [_images.encode_chunk(frames[s : s + k]) for s in range(0, t, k)]
    back = np.concatenate([_images.decode_chunk(b, min(k, t - i * k), (h, w, 3), Path("x"))
                           for i, b in enumerate(chunks)])
    np.testing.assert_array_equal(back, frames)


def test_compressed_is_smaller_and_random_access_is_exact(tmp_path: Path) -> None:
    y, x = np.mgrid[0:32, 0:32]
    frames = np.stack([np.stack([(x + t) % 256, (y * 3) % 256, (x + y + 2 * t) % 256], -1)
                       for t in range(70)]).astype(np.uint8)  # 70 frames: 3 chunks, last partial
    with FrameSetWriter(tmp_path / "fs", source="s") as w:
        w.add_episode(domain="sim", task="t", episode=0, images={"head": frames},
                      actions=np.zeros((70, 2)))
    fs = FrameSet.open(tmp_path / "fs")
    stored = (tmp_path / "fs/episodes" / episode_key("sim", "t", 0) / "head.zst").stat().st_size
    assert stored < frames.nbytes / 10  # smooth ramps compress > 10x
    idx = [69, 0, 33, 31, 32, 64, 5]
    np.testing.assert_array_equal(fs.images("head", idx), frames[idx])
    np.testing.assert_array_equal(np.concatenate([b for _, b in fs.iter_images("head", 9)]), frames)


# -- version 2 -----------------------------------------------------------------------------
def _write_v2(root: Path, n_eps: int = 2) -> list[dict]:
    """A version-2 set by hand, as realgap wrote it before format 3 (raw .npy, pixel hash)."""
    (root / "episodes").mkdir(parents=True)
    eps, records = [], {}
    for e in range(n_eps):
        arrays = synthetic_episode(e, n_frames=4, size=8)
        n = len(arrays["actions"])
        table = _episode_table("sim", "reach", e, arrays["actions"], arrays["states"],
                               [json.dumps(f, sort_keys=True, separators=(",", ":"))
                                for f in arrays["factors"]], "old 0.1", [None] * n)
        key = episode_key("sim", "reach", e)
        d = root / "episodes" / key
        d.mkdir()
        pq.write_table(table, d / "manifest.parquet")
        np.save(d / "head.npy", arrays["images"]["head"])
        rec = {"domain": "sim", "task": "reach", "episode": e, "n_frames": n,
               "cameras": {"head": [8, 8, 3]}, "action_dim": 3, "state_dim": 2,
               "source": "old 0.1", "hash": hash_episode(table, arrays["images"])}
        (d / "episode.json").write_text(json.dumps(rec))
        records[key] = rec
        eps.append(arrays)
    meta = {"format_version": 2, "declared_domains": ["sim"], "domains": ["sim"],
            "episodes": records, "n_episodes": n_eps, "source": "old 0.1",
            "content_hash": combine_hashes(((k, r["hash"]) for k, r in records.items()), 2)}
    (root / "meta.json").write_text(json.dumps(meta))
    return eps


def test_version_2_sets_are_read_verified_and_upgraded(tmp_path: Path, capsys) -> None:
    eps = _write_v2(tmp_path / "v2")
    fs = FrameSet.open(tmp_path / "v2")
    assert fs.meta["format_version"] == 2
    assert fs.content_hash == json.loads((tmp_path / "v2/meta.json").read_text())["content_hash"]
    np.testing.assert_array_equal(fs.images("head"), np.concatenate([e["images"]["head"] for e in eps]))
    np.testing.assert_array_equal(fs.actions(), np.concatenate([e["actions"] for e in eps]))
    assert validate(tmp_path / "v2")["n_episodes"] == 2
    # read-only: appending is refused with the fix
    with pytest.raises(FormatVersionError, match="is read-only in this realgap.*realgap data upgrade"):
        FrameSetWriter(tmp_path / "v2", source="s", resume=True)
    # upgrade copies everything into a version-3 set and leaves the old one alone
    before = {p: p.read_bytes() for p in (tmp_path / "v2").rglob("*") if p.is_file()}
    assert main(["data", "upgrade", str(tmp_path / "v2"), "--out", str(tmp_path / "v3")]) == 0
    assert {p: p.read_bytes() for p in (tmp_path / "v2").rglob("*") if p.is_file()} == before
    new = FrameSet.open(tmp_path / "v3")
    assert new.meta["format_version"] == 3
    np.testing.assert_array_equal(new.images("head"), fs.images("head"))
    assert new.manifest.equals(fs.manifest)
    # changed pixels in a version-2 array are refused when read
    arr = tmp_path / "v2/episodes" / episode_key("sim", "reach", 1) / "head.npy"
    img = np.load(arr)
    img[...] = 0
    np.save(arr, img)
    with pytest.raises(DataError, match="episode content hash differs from its record"):
        FrameSet.open(tmp_path / "v2").images("head")
    capsys.readouterr()


# -- records and metadata of the wrong type ------------------------------------------------
def _fs(tmp_path: Path) -> Path:
    return write_synthetic(tmp_path / "fs", domains=("sim", "real"), n_episodes=2, n_frames=4,
                           size=8, rng=3)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("episodes", [1, 2], "field 'episodes' is list"),
    ("n_frames", "many", "field 'n_frames' is str"),
    ("declared_domains", "sim", "field 'declared_domains' is str"),
    ("domains", [1], "'domains' must list strings"),
    ("format_version", True, "format_version True is not supported"),
    ("format_version", "3", "format_version '3' is not supported"),
])
def test_meta_json_fields_of_the_wrong_type(tmp_path: Path, capsys, field, value, message) -> None:
    root = _fs(tmp_path)
    meta = json.loads((root / "meta.json").read_text())
    meta[field] = value
    (root / "meta.json").write_text(json.dumps(meta))
    for cmd in ("info", "validate"):
        err = _one_line(capsys, ["data", cmd, str(root)])
        assert f"{root / 'meta.json'}: " in err and message in err


@pytest.mark.parametrize(("edit", "message"), [
    (lambda r: r.update(n_frames="4"), "field 'n_frames' is '4'"),
    (lambda r: r.update(n_frames=True), "field 'n_frames' is True"),
    (lambda r: r.update(episode=2**64 - 2), "field 'episode' is 18446744073709551614"),
    (lambda r: r.update(cameras={"head": "8x8"}), "camera 'head' has shape '8x8'"),
    (lambda r: r.update(cameras=["head"]), "field 'cameras' is ['head']"),
    (lambda r: r["images"]["head"].update(file="../../../etc/passwd.zst"),
     "images['head'].file is '../../../etc/passwd.zst'"),
    (lambda r: r["images"]["head"].update(codec="npy"), "images['head'].codec is 'npy'"),
    (lambda r: r["images"]["head"].update(offsets="0,1"), "images['head'].offsets is '0,1'"),
    (lambda r: r["images"]["head"].update(blake2b=None), "images['head'].blake2b is None"),
    (lambda r: r.update(manifest_hash=7), "field 'manifest_hash' is 7"),
    (lambda r: r.clear(), "field 'domain' is None"),
])
def test_episode_records_of_the_wrong_type(tmp_path: Path, capsys, edit, message) -> None:
    root = _fs(tmp_path)
    key = episode_key("sim", "reach-mug", 1)
    meta = json.loads((root / "meta.json").read_text())
    rec = json.loads((root / "episodes" / key / "episode.json").read_text())
    edit(rec)
    # the same record in both places a reader may take it from
    (root / "episodes" / key / "episode.json").write_text(json.dumps(rec))
    meta["episodes"][key] = rec
    (root / "meta.json").write_text(json.dumps(meta))
    err = _one_line(capsys, ["data", "info", str(root)])
    assert f"{root / 'meta.json'}: episode record {message}" in err
    err = _one_line(capsys, ["data", "validate", str(root)])
    assert f"{root / 'episodes' / key / 'episode.json'}: episode record {message}" in err


def test_episode_number_out_of_int64_range(tmp_path: Path) -> None:
    with FrameSetWriter(tmp_path / "fs", source="s") as w:
        for bad in (2**64 - 2, 2**63, -1):
            with pytest.raises(DataError, match=r"episode must be an integer in 0\.\.9223372036854775807"):
                w.add_episode(domain="sim", task="t", episode=bad, **synthetic_episode(0, size=4))
        w.add_episode(domain="sim", task="t", episode=2**63 - 1, **synthetic_episode(0, size=4))
    fs = FrameSet.open(tmp_path / "fs")
    assert fs.manifest["episode"].tolist() == [2**63 - 1] * 6


# -- manifests edited after writing --------------------------------------------------------
def _edit_actions(table: pa.Table) -> pa.Table:
    acts = table.column("action").to_pylist()
    acts[2][0] += 1.0
    return table.set_column(table.schema.get_field_index("action"), "action",
                            pa.array(acts, pa.list_(pa.float32())))


def test_edited_consolidated_manifest_is_refused_not_trusted(tmp_path: Path, capsys) -> None:
    root = _fs(tmp_path)
    cons = root / "manifest.parquet"
    table = pq.read_table(cons)
    # edited values, the tag (the set hash it was built for) kept: gap and train used to
    # read these actions as the set's
    pq.write_table(_edit_actions(table).replace_schema_metadata(table.schema.metadata), cons)
    with pytest.raises(DataError, match=r"manifest\.parquet: rows of episode .* differ from that "
                                        "episode's recorded manifest hash"):
        FrameSet.open(root)
    err = _one_line(capsys, ["data", "info", str(root)])
    assert f"{cons}: rows of episode" in err
    cons.unlink()  # the parts are the truth: without the edited cache the set opens again
    assert len(FrameSet.open(root)) == 16
    FrameSetWriter(root, source="s", resume=True).close()  # rebuilt from the verified parts
    assert pq.read_table(cons).equals(table)


def test_edited_manifest_part_is_refused(tmp_path: Path, capsys) -> None:
    root = _fs(tmp_path)
    (root / "manifest.parquet").unlink()
    part = root / "episodes" / episode_key("real", "reach-mug", 0) / "manifest.parquet"
    pq.write_table(_edit_actions(pq.read_table(part)), part)
    err = _one_line(capsys, ["data", "info", str(root)])
    assert f"{part}: manifest rows differ from the episode's recorded hash" in err
    err = _one_line(capsys, ["data", "validate", str(root)])
    assert f"{part}: manifest rows differ from the record's manifest_hash" in err


def test_manifest_hash_of_a_slice_equals_the_part_written_alone(tmp_path: Path) -> None:
    root = _fs(tmp_path)
    fs = FrameSet.open(root)
    recs = fs._store.records
    start = 0
    for r in recs:
        assert hash_manifest(fs._store.table.slice(start, r["n_frames"])) == r["manifest_hash"]
        start += r["n_frames"]
    assert os.path.exists(root / "manifest.parquet")


def test_image_file_symlinked_outside_the_set_is_refused(tmp_path: Path) -> None:
    root = _fs(tmp_path)
    ep = root / "episodes" / episode_key("sim", "reach-mug", 0)
    outside = tmp_path / "outside.zst"
    (ep / "head.zst").rename(outside)
    (ep / "head.zst").symlink_to(outside)  # same bytes, same hash: still refused
    with pytest.raises(DataError, match="outside the FrameSet"):
        FrameSet.open(root).select(domain="sim", episode=0).images("head")
    with pytest.raises(DataError, match="outside the FrameSet"):
        validate(root)
