"""The policy network: a visual encoder plus a head, and its action normalisation.

``a = h_phi(f_theta(o), s)`` (visual-alignment-testing.txt, III-A). The encoder is
either the end-to-end ResNet18 of :mod:`realgap.encoders.e2e` (group norm, spatial
softmax; III-B2), trained with the head or frozen (VAT's pi_B'), or a registry encoder
applied frozen, whose features are computed outside the network (``embed``) and fed in.

Conventions (stated once):

- images: uint8 ``(B, H, W, 3)`` at ``image_size`` (resized by :func:`prepare_images`);
- ``feats``: float32 ``(B, T, F)``; ``states``: float32 ``(B, T, S)`` raw units;
- actions leave the network normalised (zero mean, unit variance per dimension, training
  statistics) and :meth:`PolicyNet.unnormalize` maps them back to the env's units.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from realgap._optional import require
from realgap.policy.config import PolicyConfig

torch = require("torch")
nn = torch.nn


def prepare_images(images: np.ndarray, size: int) -> Any:
    """uint8 ``(N, H, W, 3)`` -> uint8 torch tensor ``(N, 3, size, size)`` (antialiased
    bilinear resize; a no-op copy when the size already matches)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    if x.shape[-1] == size and x.shape[-2] == size:
        return x.contiguous()
    y = nn.functional.interpolate(x.float(), size=(size, size), mode="bilinear",
                                  antialias=True, align_corners=False)
    return y.round().clamp(0, 255).to(torch.uint8)


_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def to_float(images_u8: Any) -> Any:
    """uint8 ``(N, 3, H, W)`` -> float32 ImageNet-normalised, the input convention of
    :mod:`realgap.encoders.e2e`."""
    mean = torch.tensor(_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(_STD).view(1, 3, 1, 1)
    return (images_u8.float() / 255.0 - mean) / std


def build_e2e_encoder(cfg: PolicyConfig) -> tuple[Any, int]:
    """The end-to-end encoder of ``cfg`` (:func:`realgap.encoders.e2e.build_e2e`) and its
    feature width."""
    from realgap.encoders.e2e import build_e2e
    from realgap.policy.config import E2E_ENCODERS

    module = build_e2e(E2E_ENCODERS[cfg.encoder], feature_dim=cfg.feature_dim)
    return module, int(module.feature_dim)


class PolicyNet(nn.Module):
    """Encoder (optional) + head + normalisation statistics.

    Args:
        cfg: the architecture.
        feat_dim: encoder feature width ``F``.
        encoder: the trainable torch encoder for ``resnet18-e2e``; ``None`` when features
            come precomputed from a frozen registry encoder.
    """

    def __init__(self, cfg: PolicyConfig, feat_dim: int, encoder: Any | None) -> None:
        super().__init__()
        from realgap.policy.config import head_spec

        self.cfg = cfg
        self.feat_dim = feat_dim
        self.encoder = encoder
        s = cfg.state_dim if cfg.use_state else 0
        cond_dim = feat_dim + s
        self.head: nn.Module = head_spec(cfg.head).build(cond_dim, cfg)
        self.register_buffer("act_mean", torch.zeros(cfg.action_dim))
        self.register_buffer("act_std", torch.ones(cfg.action_dim))
        self.register_buffer("state_mean", torch.zeros(max(cfg.state_dim, 1)))
        self.register_buffer("state_std", torch.ones(max(cfg.state_dim, 1)))
        if encoder is not None and cfg.freeze_encoder:
            for p in encoder.parameters():
                p.requires_grad_(False)

    # -- statistics -------------------------------------------------------------------
    def set_stats(self, actions: np.ndarray, states: np.ndarray) -> None:
        """Fit the normalisation on training ``actions (N, A)`` and ``states (N, S)``."""
        a = torch.as_tensor(actions, dtype=torch.float32)
        self.act_mean.copy_(a.mean(0))
        self.act_std.copy_(a.std(0, unbiased=False).clamp_min(1e-3))
        if self.cfg.state_dim:
            s = torch.as_tensor(states, dtype=torch.float32)
            self.state_mean.copy_(s.mean(0))
            self.state_std.copy_(s.std(0, unbiased=False).clamp_min(1e-3))

    def normalize_actions(self, a: Any) -> Any:
        return (a - self.act_mean) / self.act_std

    def unnormalize(self, a: Any) -> Any:
        return a * self.act_std + self.act_mean

    # -- forward pieces ---------------------------------------------------------------
    def encode(self, images_u8: Any) -> Any:
        """uint8 ``(N, 3, H, W)`` -> ``(N, F)`` through the end-to-end encoder."""
        if self.encoder is None:
            raise RuntimeError("this policy uses precomputed registry-encoder features")
        if self.cfg.freeze_encoder:
            self.encoder.eval()
            with torch.no_grad():
                return self.encoder(to_float(images_u8))
        return self.encoder(to_float(images_u8))

    def condition(self, feats: Any, states: Any | None) -> Any:
        """``feats (B, T, F)`` and raw ``states (B, T, S)`` -> ``cond (B, T, C)``."""
        if self.cfg.use_state and self.cfg.state_dim:
            s = (states - self.state_mean) / self.state_std
            return torch.cat([feats, s], dim=-1)
        return feats

    def trainable_parameters(self) -> list[Any]:
        return [p for p in self.parameters() if p.requires_grad]
