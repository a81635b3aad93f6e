"""FullGrad saliency of a policy's end-to-end encoder (visual-alignment-testing.txt III-D).

The explained scalar is the one the policy's head declares (``saliency_scalar`` of the
head, described in its registry entry :class:`realgap.policy.config.HeadSpec`): for BC the
norm of the predicted normalised action, for diffusion heads the norm of the denoiser's
first-step output from fixed noise. FullGrad (pytorch-grad-cam) sums |input x
input-gradient| and |bias x gradient| of every convolution.

This module imports torch at its top; it is imported lazily (``realgap.explain``'s
``fullgrad_maps`` resolves on first use, PEP 562).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from realgap._torch_compat import ensure_torchvision
from realgap.errors import ConfigError

ensure_torchvision()
import torch  # after the torchvision fix, like every torch user in realgap

__all__ = ["PolicySaliencyScalar", "fullgrad_maps"]


class PolicySaliencyScalar(torch.nn.Module):
    """``images (N, 3, H, W) float -> (N, 1)``: the policy's saliency scalar with the
    states held fixed, so gradients flow to the encoder's input only.

    Args:
        net: the policy's network (``encoder``, ``condition``, ``head``).
        states: ``(N, S)`` float32 states (already cut to the policy's state width).
        obs_window: the head's observation window ``T_o`` (the frame is repeated over it).
        noise: fixed ``(N, T_p, A)`` noise for diffusion heads.
    """

    def __init__(self, net: Any, states: torch.Tensor, obs_window: int,
                 noise: torch.Tensor) -> None:
        super().__init__()
        self.net = net
        self.states = states
        self.obs_window = obs_window
        self.noise = noise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t_o = self.obs_window
        f = self.net.encoder(x)[:, None].expand(-1, t_o, -1)
        s = self.states[:, None].expand(-1, t_o, -1) if self.states.shape[1] else None
        cond = self.net.condition(f, s)
        return self.net.head.saliency_scalar(cond, self.noise)


def fullgrad_maps(policy: Any, images_u8: Any, states: np.ndarray) -> np.ndarray:
    """FullGrad saliency, float32 ``(N, H, W)`` in [0, 1], of ``policy``'s end-to-end
    encoder for uint8 ``images_u8 (N, 3, H, W)`` and raw ``states (N, S_full)``."""
    from pytorch_grad_cam import FullGrad

    from realgap.policy.config import head_spec
    from realgap.policy.model import to_float

    net, cfg = policy.net, policy.cfg
    if net.encoder is None:
        raise ConfigError("saliency needs an end-to-end encoder")
    st = torch.as_tensor(np.asarray(states, np.float32)[:, : cfg.state_dim])
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn((len(st), cfg.horizon, cfg.action_dim), generator=gen)
    model = PolicySaliencyScalar(net, st, head_spec(cfg.head).obs_window(cfg), noise).eval()
    x = to_float(images_u8)
    cam = FullGrad(model=model, target_layers=[])
    try:
        maps = cam(input_tensor=x, targets=[lambda o: o.sum()] * len(x))
    finally:
        cam.activations_and_grads.release()
    return np.asarray(maps, dtype=np.float32)
