"""The latent cross-domain model's network (imports torch at its top; imported lazily by
:mod:`realgap.dynamics.latent` when a model is fitted)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["LatentGapModel", "mlp"]


def mlp(i: int, h: int, o: int) -> nn.Sequential:
    """Two hidden ELU layers: ``(.., i) -> (.., o)``."""
    return nn.Sequential(nn.Linear(i, h), nn.ELU(), nn.Linear(h, h), nn.ELU(), nn.Linear(h, o))


class LatentGapModel(nn.Module):
    """Per-domain encoders/decoders of states (``s_dim``) into a ``latent_dim`` space, a
    shared residual latent dynamics ``z' = z + f(z, a)`` and the linear map ``m`` from the
    sim latent to the real one (initialised to the identity), mbrl-latent-gap.txt."""

    def __init__(self, s_dim: int, a_dim: int, latent_dim: int, hidden: int) -> None:
        super().__init__()
        d = latent_dim
        self.enc_sim = mlp(s_dim, hidden, d)
        self.dec_sim = mlp(d, hidden, s_dim)
        self.enc_real = mlp(s_dim, hidden, d)
        self.dec_real = mlp(d, hidden, s_dim)
        self.dyn = mlp(d + a_dim, hidden, d)
        self.m = nn.Linear(d, d)
        with torch.no_grad():
            self.m.weight.copy_(torch.eye(d))
            self.m.bias.zero_()

    def step(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return z + self.dyn(torch.cat([z, a], dim=-1))

    def domain_losses(self, enc: Any, dec: Any, s: torch.Tensor, a: torch.Tensor,
                      s2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z, z2 = enc(s), enc(s2)
        zp = self.step(z, a)
        pred = ((dec(zp) - s2) ** 2).mean() + ((zp - z2) ** 2).mean()
        ae = ((dec(z) - s) ** 2).mean()
        return pred, ae
