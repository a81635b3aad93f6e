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
from realgap.errors import ConfigError

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
