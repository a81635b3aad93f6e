"""realgap.encoders.embed_frameset: batched, cached, resumable, never corrupted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from realgap.data import FrameSet
from realgap.data.synthetic import write_synthetic
from realgap.encoders import (
    Encoder,
    EncoderInfo,
    Preprocess,
    cache_path,
    create_encoder,
    embed_frameset,
)
from realgap.errors import ConfigError, DataError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def fs(tmp_path_factory: pytest.TempPathFactory) -> FrameSet:
    # 2 domains x 3 episodes x 7 frames = 42 frames, 16x16
    path = write_synthetic(tmp_path_factory.mktemp("fs") / "fs", n_episodes=3, n_frames=7,
                           cameras=("head", "wrist"), rng=0)
    return FrameSet.open(path)


class Boom(RuntimeError):
    pass


class CountingEncoder(Encoder):
    """Mean colour per frame, counting calls; raises after ``fail_after`` calls."""

    def __init__(self, fail_after: int | None = None) -> None:
        super().__init__("counting", EncoderInfo("raw", 3, 0.0, "None", "None"),
                         Preprocess(input_size=None, resize=None, mean=None, std=None),
                         module=None, weights_origin="none", weights_hash="none:counting")
        self.calls: list[int] = []
        self.fail_after = fail_after

    def embed(self, images: np.ndarray) -> np.ndarray:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise Boom("interrupted")
        self.calls.append(len(images))
        return images.reshape(len(images), -1, 3).mean(axis=1).astype(np.float32) / 255.0


def test_matches_direct_embedding_and_row_order(fs: FrameSet, tmp_path: Path) -> None:
    enc = create_encoder("pixels")
    got = embed_frameset(enc, fs, camera="head", cache_dir=tmp_path, batch_size=8, progress=False)
    want = enc.embed(fs.images("head"))
    assert got.shape == (42, 768) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    # a view embeds its own rows, under its own key
    view = fs.select(domain="real")
    v = embed_frameset(enc, view, camera="head", cache_dir=tmp_path, batch_size=8, progress=False)
    np.testing.assert_allclose(v, want[fs.manifest["domain"].to_numpy() == "real"], rtol=1e-6)
    assert cache_path(enc, view, "head", tmp_path) != cache_path(enc, fs, "head", tmp_path)
    assert cache_path(enc, fs, "wrist", tmp_path) != cache_path(enc, fs, "head", tmp_path)


def test_interrupted_run_resumes_recomputing_only_missing_chunks(fs: FrameSet, tmp_path: Path) -> None:
    full = embed_frameset(CountingEncoder(), fs, "head", cache_dir=None, batch_size=5, progress=False)
    broken = CountingEncoder(fail_after=3)
    with pytest.raises(Boom):
        embed_frameset(broken, fs, "head", cache_dir=tmp_path, batch_size=5, progress=False)
    folder = cache_path(broken, fs, "head", tmp_path)
    chunks = sorted(p.name for p in folder.iterdir() if p.name.startswith("chunk_"))
    assert chunks == ["chunk_000000.npy", "chunk_000001.npy", "chunk_000002.npy"]
    assert not [p for p in folder.iterdir() if ".tmp" in p.name]
    resumed = CountingEncoder()
    out = embed_frameset(resumed, fs, "head", cache_dir=tmp_path, batch_size=5, progress=False)
    np.testing.assert_array_equal(out, full)
    # 42 frames in chunks of 5: 9 chunks (last has 2); 3 done, so 6 recomputed (5,5,5,5,5,2)
    assert resumed.calls == [5, 5, 5, 5, 5, 2]
    again = CountingEncoder()
    np.testing.assert_array_equal(
        embed_frameset(again, fs, "head", cache_dir=tmp_path, batch_size=7, progress=False), full)
    assert again.calls == []  # a different batch size reuses the cache's chunking


def test_corrupt_chunk_and_wrong_version_are_recomputed(fs: FrameSet, tmp_path: Path) -> None:
    enc = CountingEncoder()
    full = embed_frameset(enc, fs, "head", cache_dir=tmp_path, batch_size=10, progress=False)
    folder = cache_path(enc, fs, "head", tmp_path)
    (folder / "chunk_000001.npy").write_bytes(b"garbage")          # unreadable
    np.save(folder / "chunk_000002.npy", np.zeros((3, 3), np.float32))  # wrong shape
    again = CountingEncoder()
    np.testing.assert_array_equal(
        embed_frameset(again, fs, "head", cache_dir=tmp_path, batch_size=10, progress=False), full)
    assert again.calls == [10, 10]
    meta = json.loads((folder / "meta.json").read_text())
    meta["format_version"] = 999
    (folder / "meta.json").write_text(json.dumps(meta))
    third = CountingEncoder()
    np.testing.assert_array_equal(
        embed_frameset(third, fs, "head", cache_dir=tmp_path, batch_size=10, progress=False), full)
    assert third.calls == [10, 10, 10, 10, 2]
    assert json.loads((folder / "meta.json").read_text())["format_version"] == 1


def test_key_changes_with_weights_and_preprocessing(fs: FrameSet, tmp_path: Path) -> None:
    a = create_encoder("resnet18-random", seed=0)
    b = create_encoder("resnet18-random", seed=1)
    assert cache_path(a, fs, "head", tmp_path) != cache_path(b, fs, "head", tmp_path)
    c = create_encoder("resnet18-random", seed=0)
    c.preprocess = Preprocess(input_size=(8, 8), resize=8)
    assert cache_path(a, fs, "head", tmp_path) != cache_path(c, fs, "head", tmp_path)
    ea = embed_frameset(a, fs, "head", cache_dir=tmp_path, batch_size=16, progress=False)
    assert ea.shape == (42, 512) and np.isfinite(ea).all()
    # deterministic: same seed, same embeddings, also through the cache
    np.testing.assert_array_equal(
        ea, embed_frameset(create_encoder("resnet18-random"), fs, "head", cache_dir=None,
                           batch_size=16, progress=False))


def test_bad_arguments(fs: FrameSet, tmp_path: Path) -> None:
    enc = CountingEncoder()
    with pytest.raises(ConfigError, match="camera 'top' not in the FrameSet"):
        embed_frameset(enc, fs, "top", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="batch_size"):
        embed_frameset(enc, fs, "head", batch_size=0)


# -- a cache that cannot lie (issue 8 item 8) ----------------------------------------------
def _zero_real_frames(root: Path, rerecord: bool) -> None:
    """Set every real frame's pixels to 0 by rewriting the image files in place.

    ``rerecord=False``: only the files change (an edit behind realgap's back).
    ``rerecord=True``: the records get the new files' hashes too (what a tool that edits
    FrameSets properly would do), so the set has a new content hash.
    """
    from realgap.data import _images
    from realgap.data._format import combine_hashes, episode_hash

    meta = json.loads((root / "meta.json").read_text())
    for key, rec in meta["episodes"].items():
        if rec["domain"] != "real":
            continue
        for cam, entry in rec["images"].items():
            zeros = np.zeros((rec["n_frames"], *rec["cameras"][cam]), np.uint8)
            new = _images.write_zstd(root / "episodes" / key / entry["file"], zeros, lambda f: None)
            if rerecord:
                rec["images"][cam] = new
        rec["hash"] = episode_hash(rec["manifest_hash"], rec["images"])
        if rerecord:
            (root / "episodes" / key / "episode.json").write_text(json.dumps(rec))
    if rerecord:
        meta["content_hash"] = combine_hashes((k, r["hash"]) for k, r in meta["episodes"].items())
        (root / "meta.json").write_text(json.dumps(meta))


def test_cache_refuses_changed_frames_and_misses_rerecorded_ones(tmp_path: Path) -> None:
    root = write_synthetic(tmp_path / "fs", n_episodes=3, n_frames=7, rng=0)
    fs = FrameSet.open(root)
    first = embed_frameset(CountingEncoder(), fs, "head", cache_dir=tmp_path / "c", progress=False)
    real_rows = fs.manifest["domain"].to_numpy() == "real"
    assert first[real_rows].max() > 0
    _zero_real_frames(root, rerecord=False)
    fresh = FrameSet.open(root)  # opens fine: the manifest is untouched
    assert fresh.content_hash == fs.content_hash
    hit = CountingEncoder()
    with pytest.raises(DataError, match=r"head\.zst: file content hash .* differs from its record.*"
                                        r"realgap data validate"):
        embed_frameset(hit, fresh, "head", cache_dir=tmp_path / "c", progress=False)
    assert hit.calls == []  # refused before a single cached row was returned
    # the same refusal in this process for the old FrameSet object, whose files changed
    with pytest.raises(DataError, match="file content hash"):
        embed_frameset(CountingEncoder(), fs.select(domain="real"), "head",
                       cache_dir=tmp_path / "c", progress=False)
    _zero_real_frames(root, rerecord=True)
    rerecorded = FrameSet.open(root)
    assert rerecorded.content_hash != fs.content_hash
    enc = CountingEncoder()
    new = embed_frameset(enc, rerecorded, "head", cache_dir=tmp_path / "c", progress=False)
    assert sum(enc.calls) == len(rerecorded)  # a miss: everything recomputed
    np.testing.assert_array_equal(new[real_rows], 0.0)
    np.testing.assert_array_equal(new[~real_rows], first[~real_rows])


def test_gap_into_the_same_out_never_returns_the_old_numbers(tmp_path: Path, capsys) -> None:
    from realgap.cli import main

    root = write_synthetic(tmp_path / "fs", n_episodes=3, n_frames=6, size=16, rng=0)
    argv = ["gap", "--frames", str(root), "--real-domain", "real", "--encoders", "pixels",
            "--n-boot", "10", "--n-perm", "0", "--saliency-pairs", "0", "--out",
            str(tmp_path / "out"), "--json", "--quiet"]
    assert main(argv) == 0
    before = json.loads(capsys.readouterr().out)["encoders"]["pixels"]
    _zero_real_frames(root, rerecord=False)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "file content hash" in err and "realgap data validate" in err
    _zero_real_frames(root, rerecord=True)
    assert main(argv) == 0
    after = json.loads(capsys.readouterr().out)["encoders"]["pixels"]
    assert after["dis"]["value"] != before["dis"]["value"]
    assert after["centroid_distance"]["value"] != before["centroid_distance"]["value"]
