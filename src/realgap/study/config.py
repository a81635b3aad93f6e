"""What ``realgap study scores`` runs: a frozen config and its size presets.

The presets fix the sizes; every field can still be set on its own (the CLI's flags
override the preset's values). Measured on the 2 cores (2 rollout workers, proxy shadows
``low``):

* ``tiny``, the slow test's smoke run, with 5 encoders (``pixels``, ``resnet18-random``,
  Lite0, ``bc-sim``, ``small-e2e``): 214 s wall through the CLI at load ~6 (other jobs
  sharing the cores): demonstrations 6 s, the end-to-end policy 5 s, gap runs 54 s (the BC
  encoder's training included), frozen heads 3 s, rollouts 144 s, correlation 2 s; the
  slow test (the same run plus its checks) took 157 s at load ~5. With 3
  frozen encoders it measured 121 s at load ~2. At 12 demonstrations and 15 epochs no
  policy succeeds (0/3 everywhere), so it checks the machinery, not the finding.
* ``small``: measured 698 s wall from scratch at load ~1-2 with its former 6 frozen
  encoders (demonstrations 31 s; gap runs 374 s, most of it embedding 1,076 frames per
  domain at 224-240 px through four ImageNet-sized networks; policies 24 s; rollouts 259 s
  for 18 policies x 8 states x 3 domains), when the Lite0 and Lite1 policies succeeded on
  12/24 and 11/24 sim episodes. The two random-init ImageNet controls
  (``mobilenet-v3.random``, ``efficientnet-b0.random``, whose policies were constant) made
  way for ``bc-sim``, ``bc-sim-nominal`` and ``small-e2e``; the new set is not yet timed
  here. Expected from its parts: the end-to-end policies cost ~1.4 ms per frame and epoch
  on one thread (about 2-3 min for 3 seeds x <= 40 epochs of ~860 frames), the BC encoders
  train side by side in about a minute, and their 64-px policies roll out far faster than
  the 224-px ones they replace. Demonstrations are recorded every 2nd step: the embedding
  of 224-px frames dominates the time, and consecutive frames add little that the 100
  episodes' initial states do not.
* ``full`` is the issue's design for a bigger machine or a GPU.

Encoders of three kinds take part (:mod:`realgap.study.scores` says how each is trained):
registry encoders used frozen (``pixels``, ``resnet18-random``, the Lite encoders), the BC
encoders realgap trains on the study's demonstrations (``bc-sim`` on the randomized
``sim`` frames, ``bc-sim-nominal`` on the nominal ones; used frozen, their weights stored
in each policy checkpoint so that a rollout worker rebuilds them without the FrameSet),
and an end-to-end encoder (``small-e2e``: trained with the head, one per seed; the first
seed's encoder gives the offline scores).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from realgap.errors import ConfigError

#: Real-proxy severities the policies are rolled out in (and the gap runs compare).
REAL_DOMAINS: tuple[str, ...] = ("real-proxy-mild", "real-proxy-strong")


@dataclass(frozen=True)
class ScoresStudyConfig:
    """Offline scores against closed-loop transfer (issue: `realgap study scores`)."""

    out: str
    """Output directory: ``frames/``, ``policies/``, ``results.duckdb``, ``report.html``."""
    encoders: tuple[str, ...] = ("pixels", "resnet18-random", "efficientnet-lite0")
    """Encoders, one policy per encoder and seed: registry encoders and the BC encoders
    (``bc-sim``, ``bc-sim-nominal``) used frozen; ``small-e2e`` / ``resnet18-e2e`` trained
    end to end with the head."""
    seeds: tuple[int, ...] = (0,)
    """Training seeds of each policy (the correlation intervals redraw them)."""
    task: str = "reach-mug"
    """Task of the demonstrations and the rollouts."""
    demo_episodes: int = 16
    """Expert demonstrations generated (sim, sim-nominal and both proxies share the states)."""
    record_every: int = 2
    """Record every k-th control step of the demonstrations."""
    eval_episodes: int = 4
    """Initial states played by every policy in every domain (the same ones for all)."""
    eval_seed0: int = 100_000
    """Reset seed of the first evaluation episode (far from the demonstrations' seeds)."""
    real_domains: tuple[str, ...] = REAL_DOMAINS
    """Real-proxy domains of the rollouts and of the gap runs."""
    train_domain: str = "sim-nominal"
    """Demonstration domain the heads train on and the gap runs take as sim. Measured: an
    end-to-end BC policy trained on 100 ``sim`` episodes with background and lights
    randomized per episode succeeded 0/10 on nominal sim (it memorised the episodes' looks),
    trained on the same states in ``sim-nominal`` 10/10; ``sim`` is kept as a choice."""
    augment_shift: int = 4
    """Random-shift augmentation (px) of the end-to-end policies' training, as the BC
    encoders train with; a frozen encoder's features are computed once, so it does not
    apply to the frozen heads."""
    head: str = "bc"
    """Policy head (``realgap.policy.config.HEAD_REGISTRY``)."""
    epochs: int = 30
    """Training epochs of each head (the held-out early stopping keeps the best)."""
    batch_size: int = 64
    """Samples per step."""
    patience: int = 8
    """Early stopping: epochs without a better held-out loss (1 in 8 demonstration
    episodes is held out; the head keeps its best held-out epoch)."""
    lr: float = 1e-3
    """Adam learning rate."""
    image_size: int = 64
    """Rendered and policy image side (px)."""
    proxy_shadows: str = "low"
    """Shadow quality of the proxy domains, in the demonstrations and the rollouts."""
    n_boot: int = 200
    """Bootstrap replicates of the gap scores and of the correlation intervals."""
    n_perm: int = 50
    """Permutations of the gap scores' nulls."""
    seed: int = 0
    """Seed of the demonstrations, the gap runs and the correlation bootstrap."""
    workers: int = 2
    """Rollout worker processes (one pool serves every policy and domain)."""
    device: str = "cpu"
    """Torch device of the gap runs' embeddings (``cuda`` when present and asked: the
    embedding of 224-px frames is most of a study's time). Heads train and rollouts play on
    the CPU: the simulator, not the network, bounds a rollout."""
    preset: str = "custom"
    """Name of the preset the sizes came from (recorded)."""
    progress: bool = True
    """Progress on stderr."""

    def __post_init__(self) -> None:
        for name in ("demo_episodes", "eval_episodes", "epochs", "batch_size", "workers",
                     "record_every", "image_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or int(v) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} {v!r}: must be a positive integer")
        if len(self.encoders) < 2:
            raise ConfigError(f"--encoders {','.join(self.encoders)}: a correlation across "
                              "encoders needs at least 2 (3 or more for a rank correlation)")
        if len(set(self.encoders)) != len(self.encoders):
            raise ConfigError(f"--encoders {','.join(self.encoders)}: an encoder is repeated")
        if isinstance(self.augment_shift, bool) or int(self.augment_shift) < 0:
            raise ConfigError(f"--augment-shift {self.augment_shift!r}: must be >= 0 (pixels)")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"--seeds {self.seeds}: give distinct training seeds")
        if self.demo_episodes < 4:
            raise ConfigError(f"--demo-episodes {self.demo_episodes}: at least 4 (the gap "
                              "scores and the held-out split resample episodes)")
        if self.train_domain not in ("sim", "sim-nominal"):
            raise ConfigError(f"--train-domain {self.train_domain!r}: expected sim or sim-nominal")
        if self.n_boot < 0 or self.n_perm < 0:
            raise ConfigError("--n-boot/--n-perm: must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Sizes of each preset (fields of :class:`ScoresStudyConfig`).
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"encoders": ("pixels", "resnet18-random", "efficientnet-lite0", "bc-sim",
                          "small-e2e"), "seeds": (0,),
             "demo_episodes": 12, "record_every": 2, "eval_episodes": 3, "epochs": 15,
             "n_boot": 100, "n_perm": 20},
    "small": {"encoders": ("pixels", "resnet18-random", "efficientnet-lite0",
                           "efficientnet-lite1", "bc-sim", "bc-sim-nominal", "small-e2e"),
              "seeds": (0, 1, 2),
              "demo_episodes": 100, "record_every": 2, "eval_episodes": 8, "epochs": 40,
              "n_boot": 200, "n_perm": 20},
    "full": {"encoders": ("pixels", "resnet18-random", "efficientnet-lite0",
                          "efficientnet-lite1", "efficientnet-lite2", "bc-sim",
                          "bc-sim-nominal", "small-e2e", "resnet18-e2e"), "seeds": (0, 1, 2),
             "demo_episodes": 200, "record_every": 1, "eval_episodes": 40, "epochs": 100,
             "n_boot": 1000, "n_perm": 200},
}


def preset_config(preset: str, out: str, **overrides: Any) -> ScoresStudyConfig:
    """The :class:`ScoresStudyConfig` of ``preset`` with ``overrides`` (None: keep)."""
    if preset not in PRESETS:
        raise ConfigError(f"--preset {preset!r}: expected one of {', '.join(PRESETS)}")
    known = {f.name for f in fields(ScoresStudyConfig)}
    bad = sorted(set(overrides) - known)
    if bad:
        raise ConfigError(f"study config: unknown fields {bad}")
    cfg = ScoresStudyConfig(out=out, preset=preset, **PRESETS[preset])
    return replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
