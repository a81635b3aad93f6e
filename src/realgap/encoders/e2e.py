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

Building these modules needs torch; import the module, then call the builders.
"""

from __future__ import annotations

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
