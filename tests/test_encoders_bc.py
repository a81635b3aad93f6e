"""Trained encoders: realgap.encoders.e2e modules and train_bc_encoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from realgap.data import FrameSet
from realgap.data.synthetic import write_synthetic
from realgap.encoders import (
    bc,
    create_encoder,
    train_bc_encoder,
)
from realgap.encoders.e2e import ResNet18GNSpatial, SmallConvGN, SpatialSoftmax
from realgap.errors import ConfigError

KW = {"epochs": 3, "image_size": 16, "batch_size": 16}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def fs(tmp_path_factory: pytest.TempPathFactory) -> FrameSet:
    # 3 domains x 4 episodes x 8 frames of 16x16; action[:, 0] = mean pixel / 255
    path = write_synthetic(tmp_path_factory.mktemp("bc") / "fs", domains=("sim", "sim-nominal", "real"),
                           n_episodes=4, n_frames=8, rng=3)
    return FrameSet.open(path)


def test_spatial_softmax_hand_worked() -> None:
    ss = SpatialSoftmax(1, num_kp=1)
    with torch.no_grad():
        ss.proj.weight.fill_(1.0)
        ss.proj.bias.zero_()
    peak = torch.zeros(1, 1, 4, 4)
    peak[0, 0, 0, 3] = 100.0  # top-right corner: x = +1, y = -1 on the [-1, 1] grid
    np.testing.assert_allclose(ss(peak).detach().numpy(), [[1.0, -1.0]], atol=1e-6)
    np.testing.assert_allclose(ss(torch.zeros(2, 1, 4, 5)).detach().numpy(), np.zeros((2, 2)),
                               atol=1e-6)


def test_e2e_resnet18_uses_groupnorm_and_spatial_softmax() -> None:
    m = ResNet18GNSpatial(feature_dim=64)
    kinds = {type(x).__name__ for x in m.modules()}
    assert "BatchNorm2d" not in kinds and "GroupNorm" in kinds
    assert "AdaptiveAvgPool2d" not in kinds and "SpatialSoftmax" in kinds
    gn = next(x for x in m.modules() if isinstance(x, torch.nn.GroupNorm) and x.num_channels == 512)
    assert gn.num_groups == 32  # one group per 16 channels
    with torch.inference_mode():
        assert m(torch.rand(1, 3, 32, 32)).shape == (1, 64)
    small = SmallConvGN()
    # convs 1216 + 4640 + 18496 + 36928, GroupNorms 32 + 64 + 128 + 128, keypoint 1x1 conv
    # 2080, projection 4160
    assert sum(p.numel() for p in small.parameters()) == 67_872
    assert small(torch.rand(1, 3, 32, 40)).shape == (1, 64)


def test_training_is_deterministic_and_learns(fs: FrameSet, tmp_path: Path) -> None:
    # separate cache folders: b and c are trained, not loaded from a's file
    a = train_bc_encoder(fs, "sim", rng=7, cache_dir=tmp_path / "a", **KW)
    b = train_bc_encoder(fs, "sim", rng=7, cache_dir=tmp_path / "b", **KW)
    c = train_bc_encoder(fs, "sim", rng=8, cache_dir=tmp_path / "c", **KW)
    x = fs.select(domain="real").images("head")
    np.testing.assert_array_equal(a.embed(x), b.embed(x))
    assert not np.allclose(a.embed(x), c.embed(x))
    assert a.embed(x).shape == (32, 64)
    assert a.weights_hash == b.weights_hash != c.weights_hash
    assert a.weights_origin == f"trained: BC on {fs.content_hash[:12]} domain=sim episodes=0-3"
    assert a.extra["train_frames"] == 32


def test_loss_falls_with_more_epochs(fs: FrameSet, tmp_path: Path) -> None:
    # without held-out stopping or augmentation: plain fitting of all 32 frames
    enc = train_bc_encoder(fs, "sim", rng=0, cache_dir=tmp_path, epochs=8, image_size=16,
                           batch_size=8, val_fraction=0.0, shift=0)
    # standardized actions start at MSE ~1 (measured 1.01 in epoch 1); 32 frames are
    # fitted closely in 8 epochs (measured 0.04)
    assert enc.extra["train_final_loss"] < 0.5
    assert len(enc.extra["train_loss_per_epoch"]) == 8
    assert enc.extra["train_val_loss_per_epoch"] == [] and enc.extra["train_val_episodes"] == []


def test_early_stopping_keeps_the_best_held_out_epoch(fs: FrameSet, tmp_path: Path) -> None:
    enc = train_bc_encoder(fs, "sim", rng=0, cache_dir=tmp_path, epochs=30, image_size=16,
                           batch_size=8, val_fraction=0.25, patience=3)
    val = enc.extra["train_val_loss_per_epoch"]
    best = enc.extra["train_best_epoch"]
    assert len(enc.extra["train_val_episodes"]) == 1  # 25 % of 4 episodes, whole episodes
    assert len(val) == len(enc.extra["train_loss_per_epoch"])
    assert best == int(np.argmin(val)) + 1
    # stopped `patience` epochs after the best one, or ran out of epochs
    assert len(val) == min(30, best + 3)
    # the kept weights are the best epoch's: the same run stopped right at that epoch
    # (same seed, same trajectory) ends with the very same weights
    short = train_bc_encoder(fs, "sim", rng=0, cache_dir=tmp_path, epochs=best, image_size=16,
                             batch_size=8, val_fraction=0.25, patience=3)
    assert short.extra["train_best_epoch"] == best
    assert short.weights_hash == enc.weights_hash
    if best > 1:  # and not the weights of an earlier epoch
        earlier = train_bc_encoder(fs, "sim", rng=0, cache_dir=tmp_path, epochs=best - 1,
                                   image_size=16, batch_size=8, val_fraction=0.25, patience=3)
        assert earlier.weights_hash != enc.weights_hash


def test_cached_by_key_and_restricted_to_given_episodes(fs: FrameSet, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    a = train_bc_encoder(fs, "sim-nominal", episodes=[0, 1, 3], rng=1, cache_dir=tmp_path, **KW)
    assert a.weights_origin.endswith("domain=sim-nominal episodes=0-1,3")
    assert a.extra["train_frames"] == 24 and a.name == "bc-sim-nominal"
    assert len(list((tmp_path / "bc").glob("*.pt"))) == 1

    def no_training(*args: object, **kw: object) -> None:
        raise AssertionError("cache miss: trained again")

    monkeypatch.setattr(bc, "_fit", no_training)
    again = train_bc_encoder(fs, "sim-nominal", episodes=[3, 1, 0], rng=1, cache_dir=tmp_path, **KW)
    x = fs.images("head", np.arange(5))
    np.testing.assert_array_equal(a.embed(x), again.embed(x))
    with pytest.raises(AssertionError, match="cache miss"):  # other episodes: other key
        train_bc_encoder(fs, "sim-nominal", episodes=[0, 1], rng=1, cache_dir=tmp_path, **KW)
    via_registry = create_encoder("bc-sim-nominal", frameset=fs, episodes=[0, 1, 3], seed=1,
                                  cache_dir=tmp_path, **KW)
    np.testing.assert_array_equal(via_registry.embed(x), a.embed(x))


def test_stale_cache_file_is_retrained(fs: FrameSet, tmp_path: Path) -> None:
    a = train_bc_encoder(fs, "sim", rng=2, cache_dir=tmp_path, **KW)
    (f,) = list((tmp_path / "bc").glob("*.pt"))
    f.write_bytes(b"truncated")
    b = train_bc_encoder(fs, "sim", rng=2, cache_dir=tmp_path, **KW)
    x = fs.images("head", np.arange(4))
    np.testing.assert_array_equal(a.embed(x), b.embed(x))
    assert f.stat().st_size > 1000


def test_bad_domain_camera_and_episodes(fs: FrameSet) -> None:
    with pytest.raises(ConfigError, match="domain 'sim-random' not in the FrameSet"):
        train_bc_encoder(fs, "sim-random", **KW)
    with pytest.raises(ConfigError, match="camera 'wrist'"):
        train_bc_encoder(fs, "sim", camera="wrist", **KW)
    with pytest.raises(ConfigError, match="episodes 9 not in domain 'sim'"):
        train_bc_encoder(fs, "sim", episodes=[0, 9], **KW)
    with pytest.raises(ConfigError, match="epochs"):
        train_bc_encoder(fs, "sim", epochs=0, image_size=16)
    with pytest.raises(ConfigError, match="val_fraction"):
        train_bc_encoder(fs, "sim", val_fraction=1.0, image_size=16)
    with pytest.raises(ConfigError, match="shift"):
        train_bc_encoder(fs, "sim", shift=-1, image_size=16)
    with pytest.raises(ConfigError, match="pass frameset="):
        create_encoder("bc-sim")
