"""Degradation curves: a policy trained in the nominal env, evaluated as one factor grows.

Reproduces the reference's first experiment (mbrl-latent-gap.txt, "First 3 experiments" 1 and
section 5: HalfCheetah policies evaluated under gravity / torso / thigh 1x-2x): for each scale
``s`` of a factor, the mean episode return ``R(s)`` and the normalized drop

    drop(s) = 1 - R(s) / R(1)

(0: no loss; 1: all return lost; negative: the perturbed env is easier), and the absolute
loss ``R(1) - R(s)`` (defined whatever the sign of ``R(1)``). ``R(1)`` is the
nominal scale, always evaluated. Policies: Stable-Baselines3 SAC trained in the nominal env
(one per seed), or a given SB3 ``.zip`` (then the seeds only vary the evaluation episodes).
Every zip, given or trained here, is loaded without unpickling
(:mod:`realgap.dynamics.sb3_zip`: weights through ``torch.load(weights_only=True)`` into a
policy rebuilt from the env); ``trust_pickle`` (``--trust-pickle``) opts into SB3's own
``load()`` for architectures that cannot be rebuilt that way.

Intervals: two-level bootstrap (seeds, then episodes within a seed) of the mean return; the
drop's interval pairs independent bootstrap replicates of ``R(s)`` and ``R(1)``. When
``R(1) <= 0`` the ratio has no meaning and the drop is reported as NaN with a note.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from realgap._optional import require
from realgap._rng import child_seeds
from realgap.dynamics.perturb import REFERENCE_SCALES, factor_perturbation, make_env
from realgap.errors import ConfigError, DataError, MissingFileError
from realgap.stats import Estimate, estimate_from_replicates, percentile_interval
from realgap.stats.rates import hierarchical_mean_replicates

TRAIN = "train"


@dataclass(frozen=True)
class DegradeConfig:
    """What :func:`degradation_curve` trains and evaluates."""

    env_id: str = "HalfCheetah-v5"
    """Gymnasium MuJoCo env id."""
    factor: str = "gravity"
    """Perturbed factor (``gravity``, ``friction``, ``torso_length``, ``thigh_length``, ...)."""
    scales: tuple[float, ...] = REFERENCE_SCALES
    """Multipliers evaluated; 1.0 is added when missing (it is the reference point)."""
    policy: str = TRAIN
    """``train`` (SB3 SAC in the nominal env) or the path of an SB3 ``.zip``."""
    train_steps: int = 20_000
    """SAC environment steps per seed (SAC runs ~50 steps/s on one CPU core)."""
    eval_episodes: int = 5
    """Evaluation episodes per seed and scale."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Training seeds (one policy each) or, for a given policy, evaluation streams."""
    max_episode_steps: int = 1000
    """Episode length cap during training and evaluation."""
    n_boot: int = 2000
    """Bootstrap replicates for the intervals."""
    trust_pickle: bool = False
    """Load a given zip with SB3's ``load()``, which unpickles (and can run) code stored in
    it; False rebuilds the policy from the env and reads only its weights."""

    def __post_init__(self) -> None:
        if not self.scales:
            raise ConfigError("scales: give at least one scale, e.g. --scales 1,1.5,2")
        for s in self.scales:
            factor_perturbation(self.factor, s)  # validates factor and scale
        if not self.seeds:
            raise ConfigError("seeds: give at least one seed, e.g. --seeds 0,1,2")
        for name in ("train_steps", "eval_episodes", "max_episode_steps", "n_boot"):
            if int(getattr(self, name)) <= 0:
                raise ConfigError(f"{name}: must be > 0, got {getattr(self, name)}")
        if self.policy != TRAIN and not Path(self.policy).is_file():
            raise MissingFileError(
                f"policy: no SB3 policy file at {self.policy}; pass a .zip saved by "
                "stable-baselines3 or 'train' to train SAC in the nominal env"
            )

    @property
    def all_scales(self) -> tuple[float, ...]:
        return tuple(sorted({1.0, *map(float, self.scales)}))


@dataclass
class DegradeResult:
    """The curve: per scale the return and drop estimates, plus every episode."""

    config: DegradeConfig
    returns: dict[float, Estimate]
    drops: dict[float, Estimate]
    return_drops: dict[float, Estimate] = field(default_factory=dict)
    """Absolute loss ``R(1) - R(s)`` (defined even when ``R(1) <= 0``)."""
    episodes: list[dict[str, Any]] = field(default_factory=list)
    policies: list[dict[str, Any]] = field(default_factory=list)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _tqdm_callback(total: int, desc: str) -> Any:
    """An SB3 callback drawing a tqdm bar (stderr) over ``total`` environment steps.

    SB3's own ``progress_bar=True`` needs ``rich``, which realgap does not depend on; SAC at
    the default size runs ~18 minutes, too long behind one line.
    """
    from stable_baselines3.common.callbacks import BaseCallback
    from tqdm.auto import tqdm

    class TqdmCallback(BaseCallback):  # type: ignore[misc]
        def _on_training_start(self) -> None:
            self.bar = tqdm(total=total, desc=desc, unit="step", dynamic_ncols=True)

        def _on_step(self) -> bool:
            self.bar.update(self.training_env.num_envs)
            return True

        def _on_training_end(self) -> None:
            self.bar.close()

    return TqdmCallback()


def train_sac(env_id: str, steps: int, seed: int, max_episode_steps: int, path: Path,
              progress_bar: bool = False) -> Path:
    """Train SB3 SAC (default hyper-parameters, CPU) in the nominal env and save it;
    ``progress_bar`` draws a tqdm bar over the ``steps`` on stderr."""
    sb3 = require("stable_baselines3")
    torch = require("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        env = make_env(env_id, max_episode_steps=max_episode_steps)
        model = sb3.SAC("MlpPolicy", env, seed=seed, device="cpu", verbose=0,
                        learning_starts=min(1000, max(1, steps // 4)))
        callback = _tqdm_callback(steps, f"SAC seed {seed}") if progress_bar else None
        model.learn(total_timesteps=steps, callback=callback)
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save(str(path))
        env.close()
    finally:
        torch.set_num_threads(threads)
    return path


def load_policy(path: str | Path, env_id: str = "HalfCheetah-v5", trust_pickle: bool = False) -> Any:
    """Load an SB3 SAC/TD3/DDPG/PPO/A2C zip for ``env_id`` without running code from it.

    The policy network is rebuilt from ``env_id``'s spaces and its ``policy.pth`` read with
    ``torch.load(weights_only=True)`` (:func:`realgap.dynamics.sb3_zip.load_sb3_policy`);
    ``trust_pickle=True`` uses SB3's ``load()`` instead, which unpickles the zip.
    """
    from realgap.dynamics.sb3_zip import load_sb3_policy

    env = make_env(env_id)
    try:
        return load_sb3_policy(path, env.observation_space, env.action_space, trust_pickle)
    finally:
        env.close()


def evaluate(
    policy: Any, env_id: str, scale: float, factor: str, episodes: int, seeds: list[int],
    max_episode_steps: int,
) -> list[tuple[float, int]]:
    """(return, length) of ``episodes`` deterministic episodes reset with ``seeds``."""
    p = factor_perturbation(factor, scale)
    env = make_env(env_id, p, max_episode_steps=max_episode_steps)
    space = getattr(policy, "observation_space", None)
    if space is not None and tuple(space.shape) != tuple(env.observation_space.shape):
        raise DataError(
            f"policy: observation shape {space.shape} does not match {env_id}'s "
            f"{env.observation_space.shape}; the policy was trained on another env"
        )
    out = []
    for j in range(episodes):
        obs, _ = env.reset(seed=seeds[j])
        total, n, done = 0.0, 0, False
        while not done:
            a, _ = policy.predict(obs, deterministic=True)
            obs, r, term, trunc, _ = env.step(a)
            total += float(r)
            n += 1
            done = term or trunc
        out.append((total, n))
    env.close()
    return out


def degradation_curve(
    config: DegradeConfig,
    *,
    out_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> DegradeResult:
    """Train (or load) the policies, evaluate every scale and seed, estimate the curve."""
    say = progress or (lambda _msg: None)
    out = Path(out_dir) if out_dir else Path(".")
    # Unknown env ids and body names fail now, before minutes of training.
    make_env(config.env_id, factor_perturbation(config.factor, max(config.all_scales))).close()
    policies, infos = [], []
    for seed in config.seeds:
        if config.policy == TRAIN:
            path = out / "policies" / f"sac-{config.env_id}-seed{seed}-{config.train_steps}.zip"
            if not path.is_file():
                say(f"training SAC seed {seed} for {config.train_steps} steps")
                train_sac(config.env_id, config.train_steps, seed, config.max_episode_steps, path,
                          progress_bar=progress is not None)
            else:
                say(f"reusing {path}")
        else:
            path = Path(config.policy)
        # realgap's own zips load safely too: a file in OUT/policies may have been swapped
        trust = config.trust_pickle and config.policy != TRAIN
        policies.append(load_policy(path, config.env_id, trust_pickle=trust))
        infos.append({"path": str(path), "sha256": _sha256(path), "seed": seed,
                      "algo": getattr(policies[-1], "algo", type(policies[-1]).__name__),
                      "loader": "sb3 load (trusted pickle)" if trust else "weights only",
                      "train_steps": config.train_steps if config.policy == TRAIN else None})
    per_scale: dict[float, list[np.ndarray]] = {}
    episodes: list[dict[str, Any]] = []
    for scale in config.all_scales:
        p = factor_perturbation(config.factor, scale)
        per_scale[scale] = []
        for k, (seed, pol) in enumerate(zip(config.seeds, policies)):
            resets = child_seeds(10_000 + seed, config.eval_episodes)
            res = evaluate(pol, config.env_id, scale, config.factor, config.eval_episodes,
                           resets, config.max_episode_steps)
            per_scale[scale].append(np.array([r for r, _ in res]))
            for j, (ret, length) in enumerate(res):
                episodes.append({"condition": f"{config.factor}={scale:g}", "trial": j,
                                 "seed": seed, "ret": ret, "length": length,
                                 "policy": k, "factors": p.factors()})
        say(f"{config.factor}={scale:g}: mean return {np.mean(np.concatenate(per_scale[scale])):.1f}")
    returns, reps = {}, {}
    for i, scale in enumerate(config.all_scales):
        m, r = hierarchical_mean_replicates(per_scale[scale], config.n_boot, rng=1000 + i)
        n = int(sum(a.size for a in per_scale[scale]))
        # n and n_frames: episodes (a return has no frames); replicates from seeds, then episodes
        returns[scale] = estimate_from_replicates(m, r if config.n_boot else None, n=n, n_frames=n)
        reps[scale] = r
    base = returns[1.0].value
    abs_drops = {}
    for scale in config.all_scales:
        lo, hi = percentile_interval(reps[1.0] - reps[scale])
        if scale == 1.0:
            lo = hi = 0.0
        abs_drops[scale] = Estimate(base - returns[scale].value, lo, hi, returns[scale].n,
                                    returns[scale].n, config.n_boot)
    drops = {}
    for scale in config.all_scales:
        if base <= 0:
            # NaN value: write_degrade records the note UNDEFINED_DROP
            drops[scale] = Estimate(float("nan"), float("nan"), float("nan"), returns[scale].n,
                                    returns[scale].n, 0)
            continue
        value = 1.0 - returns[scale].value / base
        with np.errstate(divide="ignore", invalid="ignore"):
            boot = 1.0 - reps[scale] / reps[1.0]
        lo, hi = percentile_interval(boot)
        if scale == 1.0:
            lo = hi = 0.0
        drops[scale] = Estimate(value, lo, hi, returns[scale].n, returns[scale].n, config.n_boot)
    return DegradeResult(config, returns, drops, abs_drops, episodes, infos)


UNDEFINED_DROP = "nominal return <= 0: the drop is undefined"


def write_degrade(db: Any, result: DegradeResult) -> str:
    """Record a ``degrade`` run in a :class:`realgap.store.ResultsDB` (layout:
    :mod:`realgap.store.dynamics`); returns its id."""
    from realgap.store.common import ENV_SUBJECT, MEAN_RETURN, POLICY_SUBJECT
    from realgap.store.dynamics import (
        DEGRADE_KIND,
        NORMALIZED_DROP,
        RETURN_DROP,
        CurvePoint,
        DynamicsRecord,
        write_dynamics,
    )

    c = result.config
    subject = f"{result.policies[0]['algo']} {c.env_id}"
    subjects = ((c.env_id, ENV_SUBJECT, {"env_id": c.env_id, "factor": c.factor}),
                *((subject, POLICY_SUBJECT, info) for info in result.policies))
    points = []
    for scale in c.all_scales:
        extra = {"n_seeds": len(c.seeds),
                 "perturbation": factor_perturbation(c.factor, scale).as_dict()}
        r, d, a = result.returns[scale], result.drops[scale], result.return_drops[scale]
        points += [
            CurvePoint(subject, MEAN_RETURN, r.value, r.lo, r.hi, r.n, c.factor, scale, extra),
            CurvePoint(subject, NORMALIZED_DROP, d.value, d.lo, d.hi, d.n, c.factor, scale,
                       {**extra, **({"note": UNDEFINED_DROP} if np.isnan(d.value) else {})}),
            CurvePoint(subject, RETURN_DROP, a.value, a.lo, a.hi, a.n, c.factor, scale, extra)]
    rec = DynamicsRecord(DEGRADE_KIND, f"{c.env_id} {c.factor}", c.env_id, c.factor, asdict(c),
                         subjects, tuple(points), {subject: result.episodes})
    return str(write_dynamics(db, rec).run_id)
