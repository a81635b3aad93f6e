"""Saliency maps of an encoder with pytorch-grad-cam, explaining the action probe's output.

Method (encoder-dis-as-framework.txt III-E uses Grad-CAM, Selvaraju et al. 2017):

- CNNs: :class:`pytorch_grad_cam.GradCAM` on the last module that outputs a spatial
  feature map ``(N, C, h, w)`` with ``h * w > 1`` (for a torchvision ResNet that is
  ``layer4``), found by running one forward pass with hooks.
- Vision transformers: Grad-CAM on the token activations of the last block's first
  LayerNorm (timm ``blocks[-1].norm1``, open_clip ``resblocks[-1].ln_1``, torchvision
  ``encoder.layers[-1].ln_1``), with a
  ``reshape_transform`` that drops the class/register tokens and lays the patch tokens
  out on their grid: the ViT recipe of pytorch-grad-cam's documentation. (The final norm
  would not do: with class-token pooling only that token gets a gradient.)
- Encoders without learned layers (``pixels``) have no gradient-based saliency;
  :func:`saliency_support` says so and nothing is faked.

The target is :class:`realgap.explain.probe.ProbeTarget`: the norm of the action the
linear action probe predicts from the embedding. Maps are float32 in [0, 1] (pytorch-grad-cam
min-max scales each map), mapped back onto the original frame through the encoder's
resize and center crop (pixels the crop removed get 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from realgap._optional import require
from realgap.errors import DataError
from realgap.explain.probe import ActionProbe


@dataclass(frozen=True)
class CamSetup:
    """How to run Grad-CAM on one encoder.

    Attributes:
        method: ``"gradcam"`` (CNN feature map) or ``"gradcam-vit"`` (tokens reshaped).
        target_layers: the ``torch.nn.Module`` s whose activations and gradients are used.
        layer_names: their dotted names inside the encoder's module (for captions).
        reshape_transform: tokens ``(N, L, C)`` -> ``(N, C, g, g)``, or None for CNNs.
    """

    method: str
    target_layers: tuple[Any, ...]
    layer_names: tuple[str, ...]
    reshape_transform: Callable[[Any], Any] | None


def saliency_support(encoder: Any) -> str | None:
    """None when the encoder supports gradient saliency, else the one-line reason it does not."""
    module = getattr(encoder, "module", None)
    if module is None or not any(True for _ in module.parameters()):
        return (f"{encoder.name} has no learned layers (raw pixels), so it has no gradient-based "
                "saliency; no map is shown rather than a made-up one")
    return None


def vit_reshape(tokens: Any, grid: tuple[int, int] | None = None) -> Any:
    """Patch tokens ``(N, L, C)`` -> ``(N, C, gh, gw)``, dropping the leading prefix tokens.

    With ``grid=None`` the grid is square: ``g = floor(sqrt(L))`` and the ``L - g*g`` leading
    tokens (class token, registers) are dropped.
    """
    if tokens.ndim != 3:
        raise DataError(f"ViT saliency: expected token activations (N, L, C), got {tuple(tokens.shape)}")
    n, length, c = tokens.shape
    if grid is None:
        g = math.isqrt(length)
        grid = (g, g)
    gh, gw = grid
    prefix = length - gh * gw
    if prefix < 0:
        raise DataError(f"ViT saliency: {length} tokens cannot fill a {gh}x{gw} patch grid")
    x = tokens[:, prefix:, :].reshape(n, gh, gw, c)
    return x.permute(0, 3, 1, 2)


def _named(module: Any, target: Any) -> str:
    for name, m in module.named_modules():
        if m is target:
            return name or "<root>"
    return type(target).__name__


def _vit_layer(module: Any) -> tuple[Any, Callable[[Any], Any]] | None:
    blocks = getattr(module, "blocks", None)
    if blocks is not None and hasattr(module, "patch_embed") and hasattr(blocks[-1], "norm1"):
        grid = getattr(module.patch_embed, "grid_size", None)
        grid_t = (int(grid[0]), int(grid[1])) if grid is not None else None

        def reshape(t: Any) -> Any:
            return vit_reshape(t, grid_t if grid_t and grid_t[0] * grid_t[1] <= t.shape[1] else None)

        return blocks[-1].norm1, reshape
    enc = getattr(module, "encoder", None)
    layers = getattr(enc, "layers", None)
    if hasattr(module, "conv_proj") and layers is not None and hasattr(layers[-1], "ln_1"):
        return layers[-1].ln_1, vit_reshape  # torchvision VisionTransformer: (N, 1 + g*g, C)
    for _, m in module.named_modules():
        res = getattr(m, "resblocks", None)
        if res is not None and hasattr(res[-1], "ln_1"):
            batch_first = getattr(m, "batch_first", True)

            def reshape_clip(t: Any, bf: bool = batch_first) -> Any:
                return vit_reshape(t if bf else t.permute(1, 0, 2))

            return res[-1].ln_1, reshape_clip
    return None


def find_cam_setup(encoder: Any, example: Any) -> CamSetup:
    """Pick the Grad-CAM layer of ``encoder`` (see module docstring).

    Args:
        encoder: a :class:`realgap.encoders.base.Encoder` with a torch ``module``.
        example: a preprocessed input tensor ``(n, 3, h, w)`` for the hook probe.
    """
    torch = require("torch")
    module = encoder.module
    vit = _vit_layer(module)
    if vit is not None:
        layer, reshape = vit
        return CamSetup("gradcam-vit", (layer,), (_named(module, layer),), reshape)
    finished: list[Any] = []
    hooks = []

    def hook(m: Any, _inp: Any, out: Any) -> None:
        if isinstance(out, torch.Tensor) and out.ndim == 4 and out.shape[-1] * out.shape[-2] > 1:
            finished.append(m)

    for _, m in module.named_modules():
        hooks.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            encoder.forward(example[:1])
    finally:
        for h in hooks:
            h.remove()
    finished = [m for m in finished if m is not module]
    if not finished:
        raise DataError(
            f"saliency: encoder {encoder.name!r} has no spatial feature map (N, C, h, w) and is "
            "not a recognised ViT; Grad-CAM needs one (pass --saliency-pairs 0 to skip saliency)"
        )
    layer = finished[-1]
    return CamSetup("gradcam", (layer,), (_named(module, layer),), None)


def _crop_box(pre: Any, h: int, w: int) -> tuple[float, float, float, float]:
    """(top, left, height, width) in original pixels of the region the network sees."""
    resize = getattr(pre, "resize", None)
    size = getattr(pre, "input_size", None)
    if resize is None or size is None:
        return 0.0, 0.0, float(h), float(w)
    s = resize / min(h, w)
    rh, rw = max(1, round(h * s)), max(1, round(w * s))
    th, tw = size
    if rh < th or rw < tw:
        return 0.0, 0.0, float(h), float(w)
    top, left = (rh - th) // 2, (rw - tw) // 2
    return top / s, left / s, th / s, tw / s


def _to_frame(cam: np.ndarray, box: tuple[float, float, float, float], h: int, w: int) -> np.ndarray:
    from PIL import Image

    top, left, bh, bw = box
    ph, pw = max(1, round(bh)), max(1, round(bw))
    patch = np.asarray(Image.fromarray(cam.astype(np.float32), mode="F").resize((pw, ph),
                                                                                Image.Resampling.BILINEAR))
    out = np.zeros((h, w), dtype=np.float32)
    t, lft = round(top), round(left)
    hh, ww = min(ph, h - t), min(pw, w - lft)
    out[t:t + hh, lft:lft + ww] = patch[:hh, :ww]
    return np.clip(out, 0.0, 1.0)


def saliency_maps(
    encoder: Any,
    images: np.ndarray,
    probe: ActionProbe,
    *,
    batch_size: int = 8,
    setup: CamSetup | None = None,
) -> tuple[np.ndarray, CamSetup]:
    """Grad-CAM maps of ``encoder`` for ``images``, explaining the action probe's output.

    Args:
        encoder: a :class:`realgap.encoders.base.Encoder` with a torch module.
        images: uint8 (N, H, W, 3) frames.
        probe: the action probe fit on this encoder's embeddings (its dim must match).
        batch_size: frames per Grad-CAM pass.
        setup: a precomputed :class:`CamSetup` (default: :func:`find_cam_setup`).

    Returns:
        ``(maps, setup)``: maps float32 (N, H, W) in [0, 1] on the original frames.
    """
    reason = saliency_support(encoder)
    if reason is not None:
        raise DataError(reason)
    torch = require("torch")
    from realgap._torch_compat import ensure_torchvision

    ensure_torchvision()
    GradCAM = require("pytorch_grad_cam").GradCAM
    imgs = np.asarray(images)
    if imgs.ndim != 4 or imgs.shape[-1] != 3 or imgs.dtype != np.uint8:
        raise DataError(f"saliency: images must be uint8 (N, H, W, 3), got {imgs.dtype} "
                        f"{tuple(imgs.shape)}")
    n, h, w = imgs.shape[:3]
    x_all = encoder.preprocess(imgs[: max(1, min(n, 1))], encoder.device)
    setup = setup or find_cam_setup(encoder, x_all)
    target = probe.torch_target()
    box = _crop_box(encoder.preprocess, h, w)
    from realgap.explain._nets import EmbeddingModel

    model = EmbeddingModel(encoder)
    maps = np.zeros((n, h, w), dtype=np.float32)
    with GradCAM(model=model, target_layers=list(setup.target_layers),
                 reshape_transform=setup.reshape_transform) as cam:
        for start in range(0, n, batch_size):
            chunk = imgs[start:start + batch_size]
            x = encoder.preprocess(chunk, encoder.device).detach().requires_grad_(True)
            with torch.enable_grad():
                grayscale = cam(input_tensor=x, targets=[target] * len(chunk))
            for i, g in enumerate(np.asarray(grayscale, dtype=np.float32)):
                maps[start + i] = _to_frame(np.nan_to_num(g), box, h, w)
    return maps, setup
