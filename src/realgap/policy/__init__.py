"""Visuomotor policies: a visual encoder plus a head; training, checkpoints, rollouts.

Public API::

    from realgap.policy import (PolicyConfig, TrainConfig, train_policy, load_policy,
                                PolicyPredictor, ExpertPolicy, rollout, run_episodes,
                                EnvSpec, EpisodeSpec)

- encoders: ``resnet18-e2e`` (ResNet18 with group norm and spatial softmax, trained end
  to end; visual-alignment-testing.txt III-B2) or any ``realgap.encoders`` registry name,
  used frozen;
- heads: ``bc`` (two-layer MLP), ``bc-rnn`` (LSTM over a short history), ``dp-c``
  (1-D convolutional U-Net diffusion policy with ``diffusers`` DDPM/DDIM schedulers).

``import realgap.policy`` imports neither torch nor MuJoCo: the names below load their
modules on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "PolicyConfig": "realgap.policy.config",
    "TrainConfig": "realgap.policy.config",
    "HEADS": "realgap.policy.config",
    "train_policy": "realgap.policy.train",
    "TrainResult": "realgap.policy.train",
    "load_policy": "realgap.policy.predictor",
    "PolicyPredictor": "realgap.policy.predictor",
    "ExpertPolicy": "realgap.policy.predictor",
    "LearnedPolicy": "realgap.policy.predictor",
    "rollout": "realgap.policy.rollouts",
    "RolloutResult": "realgap.policy.rollouts",
    "run_episodes": "realgap.policy.episodes",
    "EnvSpec": "realgap.policy.episodes",
    "EpisodeSpec": "realgap.policy.episodes",
    "EpisodeOutcome": "realgap.policy.episodes",
    "load_checkpoint": "realgap.policy.checkpoint",
    "FinetuneConfig": "realgap.policy.finetune",
    "FinetuneResult": "realgap.policy.finetune",
    "finetune_policy": "realgap.policy.finetune",
}

__all__ = [  # noqa: RUF022 - grouped as in _EXPORTS
    "PolicyConfig",
    "TrainConfig",
    "HEADS",
    "train_policy",
    "TrainResult",
    "load_policy",
    "PolicyPredictor",
    "ExpertPolicy",
    "LearnedPolicy",
    "rollout",
    "RolloutResult",
    "run_episodes",
    "EnvSpec",
    "EpisodeSpec",
    "EpisodeOutcome",
    "load_checkpoint",
    "FinetuneConfig",
    "FinetuneResult",
    "finetune_policy",
]


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'realgap.policy' has no attribute {name!r}")
    return getattr(importlib.import_module(mod), name)
