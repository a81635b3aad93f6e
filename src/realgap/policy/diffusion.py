"""Diffusion policy heads: DP-C (convolutional) and DP-T (transformer) (Chi et al.,
Diffusion Policy; the reference's DP-C and DP-T, visual-alignment-testing.txt III-B2).

DP-T (:class:`TransformerDiffusionHead`) shares the schedulers, the loss and the sampler
of DP-C and swaps the U-Net for Diffusion Policy's transformer denoiser: one token per
action of the chunk, a causal self-attention decoder that cross-attends to conditioning
tokens (the diffusion step, then one token per observation of the last
:data:`realgap.policy.config.DPT_OBS_STEPS` steps), at a CPU-sized width.

A 1-D temporal U-Net denoises an action sequence ``(B, T_p, A)`` conditioned by FiLM on
the observation features and the diffusion step. The noise schedule, the forward
noising and the reverse sampling come from ``diffusers`` (``DDPMScheduler`` for
training, ``DDIMScheduler`` with few steps for inference); only the small U-Net, which
``diffusers`` does not ship in its conditional 1-D form, is written here, following
the Diffusion Policy reference implementation (Conv1d-GroupNorm-Mish blocks, FiLM
residual blocks, stride-2 down/up sampling), at a much smaller width.

Shapes: ``cond (B, T_o, C)`` (DP-C uses the last observation, DP-T all ``T_o``),
``actions (B, T_p, A)`` normalised.
``predict`` returns the first ``n_action_steps`` actions of the sampled sequence.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from realgap._optional import require

torch = require("torch")
nn = torch.nn


class _StepEmbedding(nn.Module):
    """Sinusoidal embedding of the diffusion step (Vaswani et al. positional code)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / max(half - 1, 1))
        ang = t.float()[:, None] * freqs[None]
        return torch.cat([ang.sin(), ang.cos()], dim=-1)


class _ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int, k: int = 3, groups: int = 8) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv1d(cin, cout, k, padding=k // 2), nn.GroupNorm(min(groups, cout), cout), nn.Mish()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class _FiLMResBlock(nn.Module):
    """Two conv blocks; the conditioning predicts a per-channel scale and bias (FiLM)."""

    def __init__(self, cin: int, cout: int, cond_dim: int) -> None:
        super().__init__()
        self.b1 = _ConvBlock(cin, cout)
        self.b2 = _ConvBlock(cout, cout)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * cout))
        self.skip = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.b1(x)
        scale, bias = self.film(cond)[..., None].chunk(2, dim=1)
        h = scale * h + bias
        return self.b2(h) + self.skip(x)


class ConditionalUnet1D(nn.Module):
    """Temporal U-Net ``(B, T, A) x step (B,) x cond (B, C) -> noise (B, T, A)``.

    ``T`` must be divisible by ``2 ** (len(dims) - 1)``.
    """

    def __init__(self, action_dim: int, cond_dim: int, dims: tuple[int, ...] = (64, 128),
                 step_dim: int = 64) -> None:
        super().__init__()
        self.step_emb = nn.Sequential(
            _StepEmbedding(step_dim), nn.Linear(step_dim, 4 * step_dim), nn.Mish(),
            nn.Linear(4 * step_dim, step_dim),
        )
        cdim = step_dim + cond_dim
        chans = (action_dim, *dims)
        self.down = nn.ModuleList()
        for i, (ci, co) in enumerate(itertools.pairwise(chans)):
            last = i == len(dims) - 1
            self.down.append(nn.ModuleList([
                _FiLMResBlock(ci, co, cdim), _FiLMResBlock(co, co, cdim),
                nn.Identity() if last else nn.Conv1d(co, co, 3, stride=2, padding=1),
            ]))
        self.mid = nn.ModuleList([_FiLMResBlock(dims[-1], dims[-1], cdim),
                                  _FiLMResBlock(dims[-1], dims[-1], cdim)])
        self.up = nn.ModuleList()
        rev = list(reversed(dims))
        for i, (ci, co) in enumerate(itertools.pairwise(rev)):
            self.up.append(nn.ModuleList([
                _FiLMResBlock(2 * ci, co, cdim), _FiLMResBlock(co, co, cdim),
                nn.ConvTranspose1d(co, co, 4, stride=2, padding=1),
            ]))
        self.final = nn.Sequential(_ConvBlock(dims[0], dims[0]), nn.Conv1d(dims[0], action_dim, 1))

    def forward(self, sample: torch.Tensor, step: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = sample.transpose(1, 2)
        c = torch.cat([self.step_emb(step), cond], dim=-1)
        skips = []
        for r1, r2, down in self.down:
            x = r2(r1(x, c), c)
            skips.append(x)
            x = down(x)
        for r in self.mid:
            x = r(x, c)
        for r1, r2, up in self.up:
            x = torch.cat([x, skips.pop()], dim=1)
            x = up(r2(r1(x, c), c))
        return self.final(x).transpose(1, 2)


class DiffusionHead(nn.Module):
    """DP-C head: epsilon-prediction DDPM training, DDIM sampling (diffusers schedulers).

    Args:
        cond_dim: conditioning width ``C``.
        action_dim: ``A``.
        horizon: predicted sequence length ``T_p`` (rounded up to the U-Net's multiple
            by the caller; 8 by default).
        n_action_steps: how many of the sampled actions ``predict`` returns.
        train_steps: DDPM schedule length (squared-cosine betas, as Diffusion Policy).
        infer_steps: DDIM steps at inference.
        hidden: U-Net base width.
    """

    def __init__(self, cond_dim: int, action_dim: int, horizon: int, n_action_steps: int,
                 train_steps: int, infer_steps: int, hidden: int) -> None:
        super().__init__()
        diffusers = require("diffusers")
        self.action_dim = action_dim
        self.horizon = horizon
        self.n_action_steps = n_action_steps
        self.infer_steps = infer_steps
        self.unet = self._network(cond_dim, action_dim, horizon, hidden)
        kw = {"num_train_timesteps": train_steps, "beta_schedule": "squaredcos_cap_v2",
              "clip_sample": True, "clip_sample_range": 5.0, "prediction_type": "epsilon"}
        self.train_sched = diffusers.DDPMScheduler(**kw)
        self.infer_sched = diffusers.DDIMScheduler(**kw)

    @classmethod
    def from_config(cls, cond_dim: int, cfg: Any) -> DiffusionHead:
        return cls(cond_dim, cfg.action_dim, cfg.horizon, cfg.n_action_steps,
                   cfg.diffusion_train_steps, cfg.diffusion_infer_steps, cfg.hidden)

    def _network(self, cond_dim: int, action_dim: int, horizon: int, hidden: int) -> nn.Module:
        base = max(32, hidden // 2)
        return ConditionalUnet1D(action_dim, cond_dim, dims=(base, 2 * base))

    def denoise(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Predicted noise ``(B, T_p, A)`` of ``x (B, T_p, A)`` at steps ``t (B,)`` given
        ``cond (B, T_o, C)`` (DP-C conditions on the last observation)."""
        return self.unet(x, t, cond[:, -1])

    def saliency_scalar(self, cond: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``(B, 1)``: norm of the noise predicted for the fixed ``noise (B, T_p, A)`` at
        the first DDIM step, a differentiable function of the observation."""
        self.infer_sched.set_timesteps(self.infer_steps)
        step = self.infer_sched.timesteps[0]
        return self.denoise(noise, step.expand(len(cond)), cond).flatten(1).norm(dim=1, keepdim=True)

    def loss(self, cond: torch.Tensor, actions: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        b = actions.shape[0]
        noise = torch.randn(actions.shape, generator=generator)
        t = torch.randint(0, self.train_sched.config.num_train_timesteps, (b,), generator=generator)
        noisy = self.train_sched.add_noise(actions, noise, t)
        pred = self.denoise(noisy, t, cond)
        return nn.functional.mse_loss(pred, noise)

    @torch.no_grad()
    def predict(self, cond: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        b = cond.shape[0]
        x = torch.randn((b, self.horizon, self.action_dim), generator=generator)
        sched = self.infer_sched
        sched.set_timesteps(self.infer_steps)
        for t in sched.timesteps:
            eps = self.denoise(x, t.expand(b), cond)
            x = sched.step(eps, t, x, generator=generator).prev_sample
        return x[:, : self.n_action_steps]


class TransformerDenoiser(nn.Module):
    """Diffusion Policy's transformer denoiser, small:
    ``(B, T, A) x step (B,) x cond (B, T_o, C) -> noise (B, T, A)``.

    Action tokens (linear embedding plus a learned position) pass through a causal
    self-attention decoder (``norm_first``, GELU) that cross-attends to the conditioning
    tokens: the sinusoidal step embedding and one projected token per observation, with
    learned positions, mixed by an MLP (Diffusion Policy's ``n_cond_layers=0`` form).
    """

    def __init__(self, action_dim: int, cond_dim: int, horizon: int, n_obs: int,
                 d_model: int = 64, n_layers: int = 2, n_heads: int = 4) -> None:
        super().__init__()
        self.horizon = horizon
        self.in_proj = nn.Linear(action_dim, d_model)
        self.pos = nn.Parameter(torch.randn(1, horizon, d_model) * 0.02)
        self.step_emb = _StepEmbedding(d_model)
        self.cond_proj = nn.Linear(cond_dim, d_model)
        self.cond_pos = nn.Parameter(torch.randn(1, 1 + n_obs, d_model) * 0.02)
        self.cond_mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.Mish(),
                                      nn.Linear(4 * d_model, d_model))
        layer = nn.TransformerDecoderLayer(d_model, n_heads, 4 * d_model, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, n_layers)
        self.ln = nn.LayerNorm(d_model)
        self.out = nn.Linear(d_model, action_dim)
        # each action token sees itself and the earlier ones (Diffusion Policy's causal_attn)
        self.register_buffer("causal", torch.triu(torch.full((horizon, horizon), float("-inf")),
                                                  diagonal=1), persistent=False)

    def forward(self, sample: torch.Tensor, step: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        t = sample.shape[1]
        x = self.in_proj(sample) + self.pos[:, :t]
        tokens = torch.cat([self.step_emb(step)[:, None], self.cond_proj(cond)], dim=1)
        mem = self.cond_mlp(tokens + self.cond_pos[:, : tokens.shape[1]])
        h = self.decoder(x, mem, tgt_mask=self.causal[:t, :t])
        return self.out(self.ln(h))


class TransformerDiffusionHead(DiffusionHead):
    """DP-T: :class:`DiffusionHead`'s schedulers, loss and sampler around a
    :class:`TransformerDenoiser` conditioned on every observation of the window
    (``cond (B, T_o, C)``, ``T_o`` = :data:`realgap.policy.config.DPT_OBS_STEPS`)."""

    def _network(self, cond_dim: int, action_dim: int, horizon: int, hidden: int) -> nn.Module:
        from realgap.policy.config import DPT_OBS_STEPS

        return TransformerDenoiser(action_dim, cond_dim, horizon, DPT_OBS_STEPS,
                                   d_model=max(32, hidden // 2))

    @classmethod
    def from_config(cls, cond_dim: int, cfg: Any) -> TransformerDiffusionHead:
        return cls(cond_dim, cfg.action_dim, cfg.horizon, cfg.n_action_steps,
                   cfg.diffusion_train_steps, cfg.diffusion_infer_steps, cfg.hidden)

    def denoise(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.unet(x, t, cond)
