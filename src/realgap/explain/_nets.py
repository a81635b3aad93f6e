"""The torch module pytorch-grad-cam is handed (imports torch at its top; imported lazily
by :mod:`realgap.explain.cam` when a saliency map is computed)."""

from __future__ import annotations

from typing import Any

from realgap._torch_compat import ensure_torchvision

ensure_torchvision()
import torch  # after the torchvision fix, like every torch user in realgap

__all__ = ["EmbeddingModel"]


class EmbeddingModel(torch.nn.Module):
    """``encoder.forward`` (preprocessed ``(N, 3, h, w)`` -> ``(N, D)``) as an
    ``nn.Module``; the encoder's own module is a child, so Grad-CAM's hooks find its
    layers."""

    def __init__(self, encoder: Any) -> None:
        super().__init__()
        self.inner = encoder.module
        self._encoder = encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._encoder.forward(x)
