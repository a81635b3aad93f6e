"""End-to-end visual encoders for behaviour cloning (reusable ``torch.nn.Module`` s).

:func:`resnet18_gn_spatial` is the encoder of visual-alignment-testing.txt, section IV
("The encoder design follows that of Diffusion Policy"): a randomly initialised ResNet18
whose batch normalization is replaced by group normalization (Wu & He 2018; one group
per 16 channels, as Diffusion Policy's ``replace_bn_with_gn``) and whose average pooling
is replaced by a spatial softmax (Levine/Finn et al.; robomimic's ``SpatialSoftmax``
with 32 keypoints), followed by a linear projection.

:class:`SmallConvGN` is the same recipe on a 4-layer CNN (67,872 parameters) so
that realgap can train the demo's BC encoders on CPU in about a minute; it is what
``bc-sim`` / ``bc-sim-nominal`` use by default.

Shapes: input ``float (N, 3, H, W)`` (ImageNet-normalized), output ``float (N, feature_dim)``.
Both modules accept any ``H, W`` (the keypoint grid is built for the feature map seen).

:func:`policy_encoder` turns the end-to-end encoder of a trained realgap policy checkpoint
into a frozen :class:`~realgap.encoders.base.Encoder` (registry names ``small-e2e`` and
``resnet18-e2e`` with ``weights=CKPT``), so offline scores can be computed on the encoder a
closed-loop policy actually used.

Building these modules needs torch; import the module, then call the builders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from realgap._optional import require

torch = require("torch")
nn = torch.nn


class SpatialSoftmax(nn.Module):
    """Expected 2-D keypoint per channel: ``(N, C, H, W)`` -> ``(N, 2 K)``.

    A 1x1 convolution maps ``C`` channels to ``K = num_kp`` keypoint maps; each map is
    soft-maxed over its ``H W`` positions (temperature 1) and the expected ``(x, y)``
    position on a ``[-1, 1]`` grid is returned, interleaved ``x_0, y_0, x_1, y_1, ...``
    (robomimic ``SpatialSoftmax``; Levine et al. 2016, section 4.2).
    """

    def __init__(self, in_channels: int, num_kp: int = 32, temperature: float = 1.0) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, num_kp, kernel_size=1)
        self.num_kp = num_kp
        self.register_buffer("temperature", torch.tensor(float(temperature)), persistent=False)

    def forward(self, x: Any) -> Any:
        x = self.proj(x)
        n, k, h, w = x.shape
        ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype)
        xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        att = torch.softmax(x.reshape(n, k, h * w) / self.temperature, dim=-1)
        ex = (att * gx.reshape(1, 1, -1)).sum(-1)
        ey = (att * gy.reshape(1, 1, -1)).sum(-1)
        return torch.stack([ex, ey], dim=-1).reshape(n, 2 * k)


def group_norm(channels: int) -> Any:
    """GroupNorm with one group per 16 channels (at least one group)."""
    return nn.GroupNorm(max(1, channels // 16), channels)


class SmallConvGN(nn.Module):
    """4 conv layers (16-32-64-64 channels, strides 2-2-2-1), GroupNorm, ReLU, spatial
    softmax (32 keypoints) over the ``H/8 x W/8`` map, linear to ``feature_dim``.
    ``(N, 3, H, W)`` -> ``(N, feature_dim)``; about 6 M multiply-adds per 64x64 frame.
    """

    def __init__(self, feature_dim: int = 64, num_kp: int = 32) -> None:
        super().__init__()
        layers: list[Any] = []
        for cin, cout, k, s in ((3, 16, 5, 2), (16, 32, 3, 2), (32, 64, 3, 2), (64, 64, 3, 1)):
            layers += [nn.Conv2d(cin, cout, k, stride=s, padding=k // 2), group_norm(cout), nn.ReLU()]
        self.trunk = nn.Sequential(*layers)
        self.pool = SpatialSoftmax(64, num_kp)
        self.proj = nn.Linear(2 * num_kp, feature_dim)
        self.feature_dim = feature_dim

    def forward(self, x: Any) -> Any:
        return self.proj(self.pool(self.trunk(x)))


class ResNet18GNSpatial(nn.Module):
    """ResNet18 (random init) with GroupNorm and spatial softmax, as in
    visual-alignment-testing.txt section IV. ``(N, 3, H, W)`` -> ``(N, feature_dim)``.
    """

    def __init__(self, feature_dim: int = 64, num_kp: int = 32) -> None:
        super().__init__()
        from realgap._torch_compat import ensure_torchvision

        tv = ensure_torchvision()
        base = tv.models.resnet18(weights=None, norm_layer=group_norm)
        self.trunk = nn.Sequential(*list(base.children())[:-2])  # drop avgpool and fc
        self.pool = SpatialSoftmax(512, num_kp)
        self.proj = nn.Linear(2 * num_kp, feature_dim)
        self.feature_dim = feature_dim

    def forward(self, x: Any) -> Any:
        return self.proj(self.pool(self.trunk(x)))


ARCHS = {"small": SmallConvGN, "resnet18": ResNet18GNSpatial}


def resnet18_gn_spatial(feature_dim: int = 64, num_kp: int = 32) -> ResNet18GNSpatial:
    """The visual-alignment-testing encoder (see the module docstring)."""
    return ResNet18GNSpatial(feature_dim, num_kp)


def build_e2e(arch: str = "small", feature_dim: int = 64) -> Any:
    """``"small"`` (:class:`SmallConvGN`) or ``"resnet18"`` (:class:`ResNet18GNSpatial`)."""
    if arch not in ARCHS:
        from realgap.errors import ConfigError

        raise ConfigError(f"e2e arch {arch!r} unknown; expected one of {sorted(ARCHS)}")
    return ARCHS[arch](feature_dim)


# -- a policy's end-to-end encoder as a frozen registry encoder -----------------------------
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class PolicyImageEncoder(nn.Module):
    """A policy's end-to-end encoder behind :class:`~realgap.encoders.base.Encoder`:
    ``float (N, 3, H, W)`` on the 0-255 scale -> ``(N, feature_dim)``.

    It repeats the policy's own pipeline op for op (:func:`realgap.policy.model.prepare_images`:
    antialiased bilinear resize to ``image_size`` rounded to whole pixel values, no-op when
    the size already matches; then :func:`realgap.policy.model.to_float`: /255 and ImageNet
    mean/std), so ``embed`` equals the policy's ``net.encode`` on the same frames.
    """

    def __init__(self, encoder: Any, image_size: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.image_size = int(image_size)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Any) -> Any:
        s = self.image_size
        if x.shape[-2] != s or x.shape[-1] != s:
            x = nn.functional.interpolate(x, size=(s, s), mode="bilinear", antialias=True,
                                          align_corners=False).round().clamp(0, 255)
        return self.encoder((x / 255.0 - self.mean) / self.std)


#: Policy encoder name -> :func:`build_e2e` arch; the same names and archs as
#: ``realgap.policy.config.E2E_ENCODERS`` (the encoders layer does not import policy; a
#: test checks the two agree).
POLICY_E2E_ARCHS: dict[str, str] = {"resnet18-e2e": "resnet18", "small-e2e": "small"}
#: ``format`` field of a realgap policy checkpoint (``realgap.policy.checkpoint.FORMAT``).
POLICY_FORMAT = "realgap-policy"


def _read_policy_checkpoint(name: str, weights: Any) -> tuple[Path, dict[str, Any]]:
    """A policy checkpoint file (or a training directory's latest one) as its dict, read
    with ``torch.load(weights_only=True)``: tensors and plain types, nothing unpickled."""
    import re

    from realgap.errors import DataError, MissingFileError

    flag = f"--weights {name}={weights}"
    p = Path(weights)
    if p.is_dir():
        found = sorted((int(m.group(1)), c) for c in (p / "checkpoints").glob("epoch-*.pt")
                       if (m := re.search(r"epoch-(\d+)\.pt$", c.name)))
        if not found:
            raise MissingFileError(f"{flag}: no checkpoints/epoch-*.pt in this directory; "
                                   "pass a policy checkpoint file")
        p = found[-1][1]
    elif not p.is_file():
        raise MissingFileError(f"{flag}: no such policy checkpoint file or training directory")
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types on corrupt files
        raise DataError(f"{flag}: not a readable policy checkpoint ({type(exc).__name__}); "
                        "pass the .pt file `realgap train` wrote") from None
    if not isinstance(data, dict) or data.get("format") != POLICY_FORMAT:
        raise DataError(f"{flag}: not a realgap policy checkpoint; pass the .pt file "
                        "`realgap train` wrote")
    return p, data


def policy_encoder(name: str, weights: Any, device: str = "cpu") -> Any:
    """The end-to-end encoder of a realgap policy checkpoint as a frozen
    :class:`~realgap.encoders.base.Encoder` (registry names ``small-e2e``, ``resnet18-e2e``,
    built with ``weights=CKPT``; the gap job takes ``--weights small-e2e=CKPT``).

    The checkpoint is read with ``torch.load(weights_only=True)``; only its ``encoder.*``
    tensors are used, on the architecture its ``policy_config`` names (which must be
    ``name``). ``weights_origin`` names the checkpoint, its task, epoch and training seed;
    ``weights_hash`` hashes the encoder's tensors; ``extra["train_episodes"]`` lists the
    demonstration episodes the policy trained on, so the gap job scores the encoder only on
    sim episodes it never saw (:func:`realgap.jobs.gap.trained_rows`).

    Args:
        name: ``"small-e2e"`` or ``"resnet18-e2e"``.
        weights: a policy checkpoint file or training directory (its latest checkpoint).
        device: torch device string.
    """
    from realgap.encoders.base import Encoder, EncoderInfo, Preprocess
    from realgap.encoders.bc import compact_ids, weights_hash_of
    from realgap.errors import ConfigError, DataError

    if weights is None:
        raise ConfigError(
            f"encoder {name!r} is the end-to-end encoder of a trained realgap policy: pass its "
            f"checkpoint (weights=CKPT in Python, --weights {name}=CKPT to realgap gap)")
    path, ckpt = _read_policy_checkpoint(name, weights)
    pcfg = dict(ckpt.get("policy_config") or {})
    if pcfg.get("encoder") != name:
        raise ConfigError(f"--weights {name}={weights}: that policy's encoder is "
                          f"{pcfg.get('encoder')!r}, not {name!r}; pass a checkpoint trained "
                          f"with --encoder {name}")
    feature_dim, image_size = int(pcfg.get("feature_dim", 64)), int(pcfg.get("image_size", 64))
    module = build_e2e(POLICY_E2E_ARCHS[name], feature_dim)
    state = {k[len("encoder."):]: v for k, v in dict(ckpt.get("state_dict") or {}).items()
             if k.startswith("encoder.")}
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise DataError(f"{path}: its encoder weights do not fit {name!r} "
                        f"({str(exc).splitlines()[0]}); retrain the policy") from None
    module.eval()
    eps = [int(e) for e in (ckpt.get("train_episodes") or [])]
    tcfg = dict(ckpt.get("train_config") or {})
    origin = (f"trained end-to-end with a {pcfg.get('head')} policy head: {path} (task "
              f"{ckpt.get('task')}, epoch {ckpt.get('best_epoch') or ckpt.get('epoch')}, seed "
              f"{tcfg.get('seed')}, FrameSet {str(ckpt.get('frameset_hash'))[:12]} domain="
              f"{tcfg.get('domain')} episodes={compact_ids(eps) if eps else 'all'})")
    info = EncoderInfo(
        family="CNN", embed_dim=feature_dim,
        params_m=round(sum(p.numel() for p in module.parameters()) / 1e6, 3),
        training="Behaviour cloning (end-to-end with the policy head)",
        pretrain_data=f"This FrameSet ({tcfg.get('domain')} domain)", library="realgap",
        arch=type(module).__name__, notes=f"encoder of policy checkpoint {path.name}")
    # 0-255 floats in; PolicyImageEncoder resizes and normalizes as the policy does
    pre = Preprocess(input_size=None, resize=None, mean=None, std=None, pixel_scale=255.0)
    extra: dict[str, Any] = {"policy_checkpoint": str(path), "train_seed": tcfg.get("seed"),
                             "train_domain": tcfg.get("domain")}
    if eps:
        extra["train_episodes"] = eps
    return Encoder(name, info, pre, PolicyImageEncoder(module, image_size),
                   weights_origin=origin, weights_hash=weights_hash_of(module), device=device,
                   extra=extra)
