"""Small torch modules of the encoder zoo (imports torch at its top; imported lazily by
:mod:`realgap.encoders.registry` and :mod:`realgap.encoders.zoo` when a network is built)."""

from __future__ import annotations

from typing import Any

from realgap._torch_compat import ensure_torchvision

ensure_torchvision()
import torch  # after the torchvision fix, like every torch user in realgap
from torch import nn

from realgap.encoders.base import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["Pixels", "ScaledImageNet"]


class Pixels(nn.Module):
    """``(N, 3, H, W) -> (N, size * size * 3)``: the frame area-averaged to ``size x size``,
    flattened in ``(y, x, channel)`` order."""

    def __init__(self, size: int = 16) -> None:
        super().__init__()
        self.size = int(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.adaptive_avg_pool2d(x, self.size)
        return y.permute(0, 2, 3, 1).reshape(x.shape[0], -1)


class ScaledImageNet(nn.Module):
    """Takes 0-255 input and normalizes inside, as R3M and VIP do (``obs / 255.0`` then
    ImageNet ``Normalize`` in ``forward``); the wrapped network's keys live under
    ``convnet.``."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, net: Any) -> None:
        super().__init__()
        self.convnet = net
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convnet(((x / 255.0) - self.mean) / self.std)
