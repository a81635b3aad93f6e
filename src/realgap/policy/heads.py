"""Explicit regression heads: BC (two-layer MLP) and BC-RNN (LSTM over a short history).

Both map a conditioning vector ``c = [f_theta(o), s]`` (encoder features concatenated
with the normalised proprioceptive state; visual-alignment-testing.txt, III-A) to a
normalised action. Shapes, stated once:

- ``cond``: float32 ``(B, T_o, C)``: ``T_o = 1`` for BC, ``T_o = history`` for BC-RNN.
- ``actions``: float32 ``(B, T_a, A)`` normalised to zero mean / unit variance with the
  training statistics; ``T_a = 1`` for BC, ``T_a = history`` for BC-RNN (one target per
  step of the sequence, as robomimic trains BC-RNN).

Each head exposes ``from_config(cond_dim, cfg)``, ``loss(cond, actions, generator) ->
scalar``, ``predict(cond, generator) -> (B, T_exec, A)`` (the actions to execute next) and
``saliency_scalar(cond, noise) -> (B, 1)``, the differentiable scalar FullGrad explains.
Windows and the saliency target are declared in the head registry
(:data:`realgap.policy.config.HEAD_REGISTRY`), not dispatched on names.
"""

from __future__ import annotations

from typing import Any

from realgap._optional import require

torch = require("torch")
nn = torch.nn


class BCHead(nn.Module):
    """BC: a two-layer fully connected MLP (visual-alignment-testing.txt, III-B2).

    ``cond (B, 1, C) -> action (B, 1, A)``, trained with mean squared error.
    """

    def __init__(self, cond_dim: int, action_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(cond_dim, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, action_dim),
        )

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        return self.net(cond[:, -1])[:, None]

    @classmethod
    def from_config(cls, cond_dim: int, cfg: Any) -> BCHead:
        return cls(cond_dim, cfg.action_dim, cfg.hidden)

    def saliency_scalar(self, cond: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, 1)``: norm of the predicted normalised action of the last step."""
        return self(cond)[:, -1].norm(dim=1, keepdim=True)

    def loss(self, cond: torch.Tensor, actions: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        return nn.functional.mse_loss(self(cond), actions[:, -1:])

    @torch.no_grad()
    def predict(self, cond: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self(cond)


class BCRNNHead(nn.Module):
    """BC-RNN: an LSTM over the last ``history`` conditioning vectors (robomimic; the
    reference uses a horizon of 10, visual-alignment-testing.txt III-B2).

    Training: ``cond (B, T, C) -> (B, T, A)``, MSE at every step. Inference: the LSTM
    runs over the rolling window of the last ``T`` observations (zero initial state, the
    window padded at the episode start by repeating the first observation, exactly as
    the training windows are) and the last output is executed.
    """

    def __init__(self, cond_dim: int, action_dim: int, hidden: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(cond_dim, hidden, num_layers=1, batch_first=True)
        self.out = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, action_dim))

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(cond)
        return self.out(h)

    @classmethod
    def from_config(cls, cond_dim: int, cfg: Any) -> BCRNNHead:
        return cls(cond_dim, cfg.action_dim, cfg.hidden)

    def saliency_scalar(self, cond: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, 1)``: norm of the predicted normalised action of the last step."""
        return self(cond)[:, -1].norm(dim=1, keepdim=True)

    def loss(self, cond: torch.Tensor, actions: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        return nn.functional.mse_loss(self(cond), actions)

    @torch.no_grad()
    def predict(self, cond: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self(cond)[:, -1:]
