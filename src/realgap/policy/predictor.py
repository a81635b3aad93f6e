"""The policy boundary: anything with ``reset(seed)`` and ``act(obs) -> action``.

Rollouts, the protocol runner and VAT talk to policies only through
:class:`PolicyPredictor` (stable-baselines3's ``PolicyPredictor`` pattern). Two
implementations:

- :class:`LearnedPolicy`: a trained :class:`~realgap.policy.model.PolicyNet` from a
  checkpoint; keeps the observation history (BC-RNN) and the queue of planned actions
  (DP-C) between steps, cleared by ``reset``.
- :class:`ExpertPolicy`: the task's scripted expert (privileged state), so that the
  protocol can be checked without training anything.

``obs`` is the environment's observation dict (``{"state": float32 (S,), camera:
uint8 (H, W, 3), ...}``); the returned action is float32 ``(A,)`` in the env's units.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from realgap._optional import require
from realgap.errors import ConfigError, DataError
from realgap.policy.checkpoint import check_task, load_checkpoint, policy_config_of
from realgap.policy.config import PolicyConfig

EXPERT = "expert"


@runtime_checkable
class PolicyPredictor(Protocol):
    """What a rollout needs from a policy."""

    name: str
    task: str | None

    def reset(self, seed: int | None = None) -> None:
        """Start a new episode (clear histories; reseed any sampling noise)."""

    def act(self, obs: Mapping[str, Any]) -> np.ndarray:
        """One action, float32 ``(A,)``, for the current observation."""


class ExpertPolicy:
    """The scripted expert of ``env``'s task (``realgap.sim.expert_for``) as a policy."""

    def __init__(self, env: Any) -> None:
        self.env = env
        self.name = EXPERT
        self.task = None
        self._expert: Any = None

    def reset(self, seed: int | None = None) -> None:
        from realgap import sim

        self._expert = sim.expert_for(self.env)  # fresh per episode: experts keep state

    def act(self, obs: Mapping[str, Any]) -> np.ndarray:
        if self._expert is None:
            self.reset()
        return np.asarray(self._expert(obs))  # unchanged dtype: same trajectory as a direct run


class LearnedPolicy:
    """A trained policy network behind the :class:`PolicyPredictor` boundary.

    Args:
        net: the :class:`~realgap.policy.model.PolicyNet` (switched to eval mode).
        cfg: its architecture.
        registry_encoder: the frozen registry encoder when ``cfg.encoder`` is not the
            end-to-end ResNet18 (its ``embed`` gives the features).
        name: label used in results (default: the checkpoint path).
        meta: checkpoint provenance (task, FrameSet hash, epoch, ...).
    """

    def __init__(self, net: Any, cfg: PolicyConfig, registry_encoder: Any | None = None,
                 name: str = "policy", meta: Mapping[str, Any] | None = None) -> None:
        self.torch = require("torch")
        self.net = net.eval()
        self.cfg = cfg
        self.registry_encoder = registry_encoder
        self.name = name
        self.task = cfg.task
        self.meta = dict(meta or {})
        from realgap.policy.config import head_spec

        self._obs_window = head_spec(cfg.head).obs_window(cfg)
        self._hist: deque[Any] = deque(maxlen=self._obs_window)
        self._queue: deque[np.ndarray] = deque()
        self._gen = self.torch.Generator().manual_seed(0)

    def reset(self, seed: int | None = None) -> None:
        self._hist.clear()
        self._queue.clear()
        self._gen = self.torch.Generator().manual_seed(0 if seed is None else int(seed) % (2**63))

    def features(self, images: np.ndarray) -> Any:
        """uint8 ``(N, H, W, 3)`` -> float32 torch ``(N, F)``."""
        torch = self.torch
        if self.registry_encoder is not None:
            return torch.from_numpy(np.asarray(self.registry_encoder.embed(images), np.float32))
        from realgap.policy.model import prepare_images

        with torch.no_grad():
            return self.net.encode(prepare_images(images, self.cfg.image_size))

    def act(self, obs: Mapping[str, Any]) -> np.ndarray:
        if self._queue:
            return self._queue.popleft()
        torch = self.torch
        cam = self.cfg.camera
        if cam not in obs:
            raise DataError(
                f"observation has no camera {cam!r} (has {sorted(k for k in obs if k != 'state')}); "
                f"make the env with cameras=({cam!r},)"
            )
        with torch.no_grad():
            feat = self.features(np.asarray(obs[cam])[None])[0]
            state = torch.as_tensor(
                np.asarray(obs.get("state", np.zeros(0)), np.float32)[: self.cfg.state_dim])
            if not self._hist:
                for _ in range(self._obs_window - 1):
                    self._hist.append((feat, state))
            self._hist.append((feat, state))
            feats = torch.stack([f for f, _ in self._hist])[None]
            states = torch.stack([s for _, s in self._hist])[None] if self.cfg.state_dim else None
            cond = self.net.condition(feats, states)
            pred = self.net.head.predict(cond, generator=self._gen)[0]
            actions = self.net.unnormalize(pred).numpy().astype(np.float32)
        self._queue.extend(actions[1:])
        return actions[0]


def load_weights(net: Any, ckpt: dict[str, Any]) -> None:
    """Load a checkpoint's weights; an architecture mismatch is a one-line DataError."""
    try:
        net.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else first[0] if first else ""
        raise DataError(f"{ckpt.get('path', 'checkpoint')}: weights do not fit this realgap's "
                        f"network ({detail}); retrain the policy") from None


def load_policy(path: str | Path, task: str | None = None, name: str | None = None,
                allow_plugins: bool | None = None) -> LearnedPolicy:
    """Load a checkpoint (file or training directory) as a :class:`LearnedPolicy`.

    ``task``, when given, must equal the checkpoint's task (else a one-line
    :class:`~realgap.errors.ConfigError`).

    A checkpoint is data: its weights are read with ``torch.load(weights_only=True)`` and
    its ``policy_config.encoder`` is a *name* resolved against the encoder registry (a BC
    encoder, which its name cannot rebuild, comes back from the tensors the checkpoint
    stores under ``frozen_encoder``, its hash checked; its ``weights_origin`` names the
    checkpoint). A
    ``module:factory`` name there is imported only when the user allowed plugins for this
    run (``allow_plugins=True``, or ``--allow-plugin`` on the command line, read by
    :func:`realgap.encoders.plugins_allowed`), never because the file asks for it.
    """
    from realgap.policy.model import PolicyNet, build_e2e_encoder

    ckpt = load_checkpoint(path)
    if task is not None:
        check_task(ckpt, task)
    cfg = policy_config_of(ckpt)
    registry_encoder = None
    encoder = None
    if cfg.is_e2e:
        encoder, _ = build_e2e_encoder(cfg)
    else:
        from realgap.encoders import create_encoder

        stored = ckpt.get("frozen_encoder")
        try:
            if stored is not None:
                # a BC encoder: its architecture from the registry, its weights (plain
                # tensors) from this checkpoint, their hash checked against the stored one
                from realgap.encoders import ENCODERS

                if ENCODERS.get(cfg.encoder).meta.get("source") != "trained":
                    raise DataError(f"{ckpt.get('path', 'checkpoint')}: stores the weights of "
                                    f"a frozen encoder, but {cfg.encoder!r} is not one realgap "
                                    "trains; retrain the policy")
                registry_encoder = create_encoder(cfg.encoder, device="cpu", state=stored,
                                                  stored_in=str(ckpt.get("path", "")))
            else:
                registry_encoder = create_encoder(cfg.encoder, weights=cfg.encoder_weights,
                                                  device="cpu", allow_plugins=allow_plugins)
        except ConfigError as exc:  # name the file that asked for this encoder
            raise ConfigError(f"{ckpt.get('path', 'checkpoint')}: policy_config.encoder: "
                              f"{exc}") from None
        trained_with = ckpt.get("encoder_weights_hash")
        if trained_with and trained_with != registry_encoder.weights_hash:
            raise DataError(
                f"{ckpt.get('path', 'checkpoint')}: the policy was trained on encoder "
                f"{cfg.encoder!r} with weights {trained_with[:12]}, but "
                f"{registry_encoder.weights_origin} has {registry_encoder.weights_hash[:12]}; "
                "restore the original weights file or retrain the policy"
            )
    net = PolicyNet(cfg, int(ckpt["feat_dim"]), encoder)
    load_weights(net, ckpt)
    meta = {k: ckpt.get(k) for k in ("task", "frameset_hash", "epoch", "encoder_origin", "path")}
    return LearnedPolicy(net, cfg, registry_encoder, name=name or str(ckpt["path"]), meta=meta)
