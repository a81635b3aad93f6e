"""Configurations of policies and of their training, as frozen dataclasses.

A policy is a visual encoder plus a regression head (visual-alignment-testing.txt,
section III-A: ``a = h_phi(f_theta(o), s)``). :class:`PolicyConfig` fixes the
architecture and is stored in every checkpoint, so a checkpoint rebuilds its network
without any other input; :class:`TrainConfig` fixes the optimisation.

Defaults are chosen for CPU training in minutes (small images, small heads); the
reference trains for 600 epochs at batch size 128 with Adam (section IV-A2).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

from realgap._registry import Registry
from realgap.errors import ConfigError, UnknownNameError


@dataclass(frozen=True)
class HeadSpec:
    """What a policy head declares (the head registry's metadata; no torch needed).

    Training, inference and saliency read a head's windows from here instead of
    dispatching on its name.

    Attributes:
        name: registry name (``PolicyConfig.head``).
        summary: one line for ``--help`` and the docs.
        module: ``"module:Class"`` of the torch head, imported on first build.
        obs_window: observation window ``T_o`` (steps ``t-T_o+1..t``) for a config.
        action_window: action window ``T_a`` trained on for a config: actions at the
            observation steps when ``act_from_obs``, else at ``t..t+T_a-1`` (a chunk).
        act_from_obs: the action targets are the observation steps' own actions (BC-RNN).
        exec_steps: actions executed per prediction before the head predicts again.
        saliency: what the head's ``saliency_scalar`` measures (FullGrad's target).
        reference: where the head comes from.
    """

    name: str
    summary: str
    module: str
    obs_window: Callable[[PolicyConfig], int]
    action_window: Callable[[PolicyConfig], int]
    act_from_obs: bool
    exec_steps: Callable[[PolicyConfig], int]
    saliency: str
    reference: str

    def build(self, cond_dim: int, cfg: PolicyConfig) -> Any:
        """The torch head for conditioning width ``cond_dim`` (imports torch)."""
        import importlib

        mod, cls = self.module.split(":")
        return getattr(importlib.import_module(mod), cls).from_config(cond_dim, cfg)


#: The head registry: name -> :class:`HeadSpec` (each entry's factory returns its spec).
HEAD_REGISTRY: Registry[HeadSpec] = Registry("head")

#: Diffusion Policy's observation horizon (Chi et al., n_obs_steps=2) for DP-T.
DPT_OBS_STEPS = 2


def _add_head(spec: HeadSpec) -> None:
    HEAD_REGISTRY.add(spec.name, lambda: spec, spec=spec)


_add_head(HeadSpec(
    "bc", "two-layer MLP on the current observation, one action",
    "realgap.policy.heads:BCHead", obs_window=lambda c: 1, action_window=lambda c: 1,
    act_from_obs=False, exec_steps=lambda c: 1,
    saliency="norm of the predicted (normalised) action",
    reference="visual-alignment-testing.txt III-B2"))
_add_head(HeadSpec(
    "bc-rnn", "LSTM over the last `history` observations, MSE at every step",
    "realgap.policy.heads:BCRNNHead", obs_window=lambda c: c.history,
    action_window=lambda c: c.history, act_from_obs=True, exec_steps=lambda c: 1,
    saliency="norm of the last step's predicted action",
    reference="visual-alignment-testing.txt III-B2 (robomimic BC-RNN)"))
_add_head(HeadSpec(
    "dp-c", "1-D convolutional U-Net diffusion over `horizon` actions (chunked)",
    "realgap.policy.diffusion:DiffusionHead", obs_window=lambda c: 1,
    action_window=lambda c: c.horizon, act_from_obs=False,
    exec_steps=lambda c: c.n_action_steps,
    saliency="norm of the predicted noise at the first DDIM step (fixed noise)",
    reference="visual-alignment-testing.txt III-B2; Chi et al., Diffusion Policy (CNN)"))
_add_head(HeadSpec(
    "dp-t", "transformer diffusion over `horizon` actions, cross-attending to 2 observations",
    "realgap.policy.diffusion:TransformerDiffusionHead",
    obs_window=lambda c: DPT_OBS_STEPS, action_window=lambda c: c.horizon,
    act_from_obs=False, exec_steps=lambda c: c.n_action_steps,
    saliency="norm of the predicted noise at the first DDIM step (fixed noise)",
    reference="visual-alignment-testing.txt III-B2; Chi et al., Diffusion Policy (transformer)"))


def head_spec(name: str) -> HeadSpec:
    """The :class:`HeadSpec` of ``name``; an unknown name is a ConfigError with close matches."""
    try:
        return HEAD_REGISTRY.get(name).meta["spec"]
    except UnknownNameError as exc:
        raise ConfigError(f"--head: {exc}") from None


#: Heads known to :func:`realgap.policy.train_policy` (registry order of registration).
HEADS: tuple[str, ...] = ("bc", "bc-rnn", "dp-c", "dp-t")

#: End-to-end encoders of :mod:`realgap.encoders.e2e` (name -> ``build_e2e`` arch): the
#: reference's ResNet18 with group norm and spatial softmax, and the same recipe on a
#: 4-layer CNN for CPU budgets. Any other name is a registry encoder, used frozen.
E2E_ENCODERS: dict[str, str] = {"resnet18-e2e": "resnet18", "small-e2e": "small"}
E2E_ENCODER = "resnet18-e2e"

#: Largest encoder input side, in pixels. Every training frame is held resized to this
#: side (``--image-size 99999`` asked for 1.9 TB); the reference's policies see 84-128 px
#: and ImageNet encoders 224 px, so 512 leaves room without inviting a hung machine.
MAX_IMAGE_SIZE = 512

#: Seeds are 32-bit unsigned: training derives per-epoch generators from
#: ``seed * 1_000_003 + epoch``, which must stay inside torch's 64-bit seed range.
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class PolicyConfig:
    """Architecture of one visuomotor policy.

    Attributes:
        task: the task the policy was trained for (``realgap.sim.TASKS`` name); rollouts
            and evaluations refuse a checkpoint whose task differs.
        encoder: ``"resnet18-e2e"`` (ResNet18, group norm, spatial softmax, trained with
            the head), ``"small-e2e"`` (the same recipe on a 4-layer CNN) or a registry
            encoder name, used frozen.
        encoder_weights: checkpoint file of a frozen registry encoder (None: the standard
            places of :func:`realgap.encoders.create_encoder`). Stored with the policy so a
            rollout rebuilds the same encoder; its hash is checked on load.
        feature_dim: output width of an end-to-end encoder.
        head: a :data:`HEAD_REGISTRY` name: ``"bc"`` (two-layer MLP), ``"bc-rnn"`` (LSTM
            over ``history`` steps), ``"dp-c"`` (1-D convolutional U-Net diffusion over
            ``horizon`` actions) or ``"dp-t"`` (transformer diffusion over ``horizon``
            actions conditioned on the last :data:`DPT_OBS_STEPS` observations).
        camera: camera name whose image the policy sees.
        image_size: side of the square image fed to the encoder, in pixels
            (16..:data:`MAX_IMAGE_SIZE`).
        action_dim: action dimension ``A``.
        state_dim: proprioceptive state dimension ``S`` fed to the head (0: image only);
            set by training to ``min(proprio_dims, env state length)``.
        use_state: feed the proprioceptive state to the head.
        proprio_dims: how many leading entries of the env's state vector are
            proprioception (realgap's tabletop tasks: grip xyz + finger opening = 4).
            The rest (object, goal and table positions) is privileged and never fed to a
            policy: a policy that saw the target's position would not need its encoder,
            and Visual Alignment Testing would test nothing.
        hidden: width of the MLP / LSTM / U-Net conditioning.
        history: BC-RNN sequence length (the reference uses 10, section III-B2).
        horizon: predicted action horizon ``T_p`` of the chunking heads (DP-C, DP-T).
        n_action_steps: actions executed per prediction before re-planning (DP-C, DP-T).
        diffusion_train_steps: DDPM noise-schedule length used in training.
        diffusion_infer_steps: DDIM sampling steps at inference.
        freeze_encoder: keep the encoder fixed (always true for registry encoders;
            used by VAT for pi_B', which reuses pi_A's end-to-end encoder frozen).
    """

    task: str
    encoder: str = E2E_ENCODER
    encoder_weights: str | None = None
    head: str = "bc"
    feature_dim: int = 64
    camera: str = "head"
    image_size: int = 64
    action_dim: int = 3
    state_dim: int = 0
    use_state: bool = True
    proprio_dims: int = 4
    hidden: int = 128
    history: int = 10
    horizon: int = 8
    n_action_steps: int = 4
    diffusion_train_steps: int = 50
    diffusion_infer_steps: int = 8
    freeze_encoder: bool = False

    def __post_init__(self) -> None:
        head_spec(self.head)  # an unknown head fails here, naming the close matches
        for name in ("image_size", "action_dim", "hidden", "history", "horizon",
                     "n_action_steps", "diffusion_train_steps", "diffusion_infer_steps"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"policy config {name}={getattr(self, name)!r}; must be >= 1")
        if not 16 <= self.image_size <= MAX_IMAGE_SIZE:
            raise ConfigError(f"--image-size {self.image_size}: must be between 16 and "
                              f"{MAX_IMAGE_SIZE} pixels (every frame is held resized to this "
                              "side); 64-128 is typical")
        if self.encoder_weights is not None and self.is_e2e:
            raise ConfigError(f"--encoder-weights {self.encoder_weights}: the end-to-end encoder "
                              f"{self.encoder!r} is trained here, a weights file would be ignored; "
                              "drop --encoder-weights or pass a registry encoder")
        if self.n_action_steps > self.horizon:
            raise ConfigError(
                f"n_action_steps={self.n_action_steps} exceeds horizon={self.horizon}; "
                "lower n_action_steps"
            )

    @property
    def is_e2e(self) -> bool:
        """Whether the encoder is the trainable ResNet18 (possibly frozen for VAT)."""
        return self.encoder in E2E_ENCODERS

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PolicyConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation of a policy on a FrameSet.

    Attributes:
        epochs: passes over the training frames.
        batch_size: samples per Adam step.
        lr: Adam learning rate (the reference uses 1e-4 for 600 epochs, IV-A2; a larger
            rate suits the few epochs of a CPU budget).
        weight_decay: Adam(W) weight decay.
        seed: seeds weight init, batch order and diffusion noise (same seed, same weights);
            ``0..``:data:`MAX_SEED`.
        domain: FrameSet domain used for training (``None``: all domains).
        checkpoint_every: save a checkpoint every this many epochs (the last epoch is
            always saved).
        augment_shift: random-shift augmentation in pixels (0 disables it).
        threads: torch intra-op threads during training (``None`` leaves torch's default).
        val_episodes: whole episodes held out (drawn with ``seed``) to measure a held-out
            loss after every epoch; the final checkpoint then holds the weights of the best
            held-out epoch (0: no held-out set, the last weights).
        patience: stop after this many epochs without a better held-out loss (0: run every
            epoch); needs ``val_episodes``.
    """

    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-6
    seed: int = 0
    domain: str | None = "sim"
    checkpoint_every: int = 5
    augment_shift: int = 0
    threads: int | None = None
    val_episodes: int = 0
    patience: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"--epochs {self.epochs}: must be >= 1")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size {self.batch_size}: must be >= 1")
        if not 0 < self.lr < math.inf:  # inf trains to NaN weights without a word
            raise ConfigError(f"--lr {self.lr}: must be a finite number > 0")
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"--seed {self.seed}: must be in 0..{MAX_SEED}")
        if self.checkpoint_every < 1:
            raise ConfigError(f"checkpoint_every {self.checkpoint_every}: must be >= 1")
        if self.augment_shift < 0:
            raise ConfigError(f"augment_shift {self.augment_shift}: must be >= 0")
        if self.val_episodes < 0 or self.patience < 0:
            raise ConfigError(f"val_episodes {self.val_episodes}, patience {self.patience}: "
                              "must be >= 0")
        if self.patience and not self.val_episodes:
            raise ConfigError(f"patience {self.patience} needs val_episodes > 0 (a held-out "
                              "loss to watch)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
