"""Saliency (realgap.explain): the action-probe target, layer choice, Grad-CAM maps, grids."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from realgap.encoders.base import Encoder, EncoderInfo, Preprocess
from realgap.errors import DataError
from realgap.explain import (
    ActionProbe,
    explain_encoder,
    fit_action_probe,
    saliency_maps,
    saliency_support,
    vit_reshape,
)
from realgap.explain.cam import _crop_box

NATIVE = Preprocess(input_size=None, resize=None, mean=None, std=None)


class QuadrantNet(torch.nn.Module):
    """Conv features, then a fixed mask that keeps only the top-left quadrant, then pooling:
    the embedding cannot depend on anything outside the top-left quadrant."""

    def __init__(self, size: int = 16, dim: int = 6) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv = torch.nn.Conv2d(3, dim, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g))
        self.mask = MaskLayer(size)
        self.pool = torch.nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.mask(torch.relu(self.conv(x)))).flatten(1)


class MaskLayer(torch.nn.Module):
    def __init__(self, size: int) -> None:
        super().__init__()
        m = torch.zeros(1, 1, size, size)
        m[..., : size // 2, : size // 2] = 1.0
        self.register_buffer("m", m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.m


def _encoder(module: torch.nn.Module | None, dim: int, name: str = "quad") -> Encoder:
    info = EncoderInfo(family="CNN", embed_dim=dim, params_m=0.0, training="None",
                       pretrain_data="None")
    return Encoder(name=name, info=info, preprocess=NATIVE, module=module,
                   weights_origin="random-init (seed 0)", weights_hash="0")


def _images(n: int, size: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _probe_for(enc: Encoder, imgs: np.ndarray) -> ActionProbe:
    emb = enc.embed(imgs)
    actions = emb[:, :2] * np.array([2.0, -1.0]) + 0.1 * emb[:, 2:4]
    return fit_action_probe(emb, actions)


def test_probe_target_value_by_hand() -> None:
    probe = ActionProbe(mean=np.array([1.0, 0.0]), scale=np.array([2.0, 1.0]),
                        coef=np.array([[1.0, 0.0], [0.0, 2.0]]), intercept=np.zeros(2), alpha=1.0)
    # z = (3, 1.5): standardized (1, 1.5) -> a_hat = (1, 3) -> ||a_hat|| = sqrt(10)
    z = torch.tensor([3.0, 1.5], dtype=torch.float64, requires_grad=True)
    val = probe.torch_target()(z)
    assert float(val.detach()) == pytest.approx(np.sqrt(10.0))
    assert probe.target_value(np.array([[3.0, 1.5]]))[0] == pytest.approx(np.sqrt(10.0))
    val.backward()
    # d||a||/dz = W a/||a|| / scale = ((1, 6) / sqrt(10)) / (2, 1)
    np.testing.assert_allclose(z.grad.numpy(), np.array([0.5, 6.0]) / np.sqrt(10.0))


def test_probe_matches_sklearn_ridge_and_metrics_split() -> None:
    from sklearn.linear_model import Ridge

    from realgap.metrics.probe import episode_split

    rng = np.random.default_rng(1)
    emb = rng.normal(size=(60, 5))
    act = emb @ rng.normal(size=(5, 2)) + 0.05 * rng.normal(size=(60, 2))
    eps = np.repeat(np.arange(6), 10)
    probe = fit_action_probe(emb, act, eps, rng=3, alpha=2.0)
    train, _ = episode_split(eps, 0.2, 3)
    x, y = emb[train], act[train]
    xs = (x - x.mean(0)) / x.std(0)
    ys = (y - y.mean(0)) / y.std(0)
    ref = Ridge(alpha=2.0, fit_intercept=False).fit(xs, ys)
    np.testing.assert_allclose(probe.coef, ref.coef_.T, rtol=1e-8, atol=1e-10)
    assert train.sum() == 50  # 1 of 6 episodes held out


def test_probe_rejects_mismatched_shapes() -> None:
    with pytest.raises(DataError, match="same N"):
        fit_action_probe(np.zeros((4, 3)), np.zeros((5, 2)))


def test_vit_reshape_by_hand() -> None:
    tokens = torch.tensor([9.0, 0.0, 1.0, 2.0, 3.0]).reshape(1, 5, 1)  # class token + 2x2 grid
    out = vit_reshape(tokens)
    assert out.shape == (1, 1, 2, 2)
    np.testing.assert_array_equal(out[0, 0].numpy(), [[0.0, 1.0], [2.0, 3.0]])


def test_crop_box_by_hand() -> None:
    # 40x32 frame, shorter side -> 16 (s = 0.5, resized 20x16), center crop 16x16 drops 2 rows
    # top and bottom of the resized frame = 4 original rows each side.
    pre = Preprocess(input_size=(16, 16), resize=16, mean=None, std=None)
    assert _crop_box(pre, 40, 32) == (4.0, 0.0, 32.0, 32.0)
    assert _crop_box(NATIVE, 40, 32) == (0.0, 0.0, 40.0, 32.0)


def test_gradcam_sees_only_the_region_the_embedding_depends_on() -> None:
    enc = _encoder(QuadrantNet(), 6)
    imgs = _images(3)
    maps, setup = saliency_maps(enc, imgs, _probe_for(enc, imgs))
    assert setup.method == "gradcam" and setup.layer_names == ("mask",)
    assert maps.shape == (3, 16, 16) and maps.dtype == np.float32
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    # nothing outside the top-left quadrant (bilinear resize is the identity at native size)
    assert np.abs(maps[:, 8:, :]).max() < 1e-6 and np.abs(maps[:, :, 8:]).max() < 1e-6
    assert (maps[:, :8, :8].max(axis=(1, 2)) > 0.99).all()


def test_saliency_is_deterministic() -> None:
    enc = _encoder(QuadrantNet(), 6)
    imgs = _images(2, seed=5)
    probe = _probe_for(enc, _images(8, seed=6))
    a, _ = saliency_maps(enc, imgs, probe)
    b, _ = saliency_maps(enc, imgs, probe)
    np.testing.assert_array_equal(a, b)


def test_vit_uses_token_reshape_and_last_block_norm1() -> None:
    from realgap._torch_compat import ensure_torchvision

    ensure_torchvision()
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    vit = VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2,
                            num_classes=0)
    enc = _encoder(vit, 32, name="tiny-vit")
    imgs = _images(4, size=32, seed=2)
    maps, setup = saliency_maps(enc, imgs, _probe_for(enc, _images(12, size=32, seed=3)))
    assert setup.method == "gradcam-vit" and setup.layer_names == ("blocks.1.norm1",)
    assert maps.shape == (4, 32, 32) and np.isfinite(maps).all()
    assert maps.max() > 0.5 and maps.min() >= 0.0
    # a 4x4 patch grid upsampled: every map varies over the frame, not a constant
    assert (maps.reshape(4, -1).std(axis=1) > 0.01).all()


def test_pixels_has_no_gradient_saliency_and_grid_shape() -> None:
    pixels = _encoder(None, 12, name="pixels")
    assert "no gradient-based saliency" in (saliency_support(pixels) or "")
    assert explain_encoder(pixels, _images(1), _images(1), ["p0"], None) is None  # type: ignore[arg-type]
    with pytest.raises(DataError, match="raw pixels"):
        saliency_maps(pixels, _images(1), None)  # type: ignore[arg-type]

    enc = _encoder(QuadrantNet(), 6)
    probe = _probe_for(enc, _images(8))
    heights = []
    for p in (1, 3):
        grid = explain_encoder(enc, _images(p, seed=1), _images(p, seed=2),
                               [f"pair-{i}" for i in range(p)], probe)
        assert grid is not None and grid.method == "gradcam" and grid.layer == "mask"
        assert "action probe" in grid.caption and "no class" in grid.caption
        heights.append(Image.open(io.BytesIO(grid.png)).height)
    assert heights[1] > 2 * heights[0] * 0.9  # one row per pair


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "method", "layer"),
    [
        ("resnet18", "gradcam", "layer4"),
        ("vit-b16", "gradcam-vit", "encoder.layers.encoder_layer_11.ln_1"),
        ("clip-b16", "gradcam-vit", "transformer.resblocks.11.ln_1"),
        ("dinov2-b", "gradcam-vit", "blocks.11.norm1"),
        ("r3m-resnet18", "gradcam", "convnet.layer4"),
    ],
)
def test_zoo_encoders_get_the_documented_cam_layer(name: str, method: str, layer: str) -> None:
    from realgap.encoders import create_encoder

    enc = create_encoder(f"{name}-random")
    imgs = _images(4, size=64, seed=9)
    probe = fit_action_probe(enc.embed(imgs), np.random.default_rng(0).normal(size=(4, 2)))
    maps, setup = saliency_maps(enc, imgs[:2], probe)
    assert (setup.method, setup.layer_names[0]) == (method, layer)
    assert maps.shape == (2, 64, 64) and np.isfinite(maps).all() and maps.max() > 0.5
