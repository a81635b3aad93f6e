"""Roll a policy out in a task: n episodes, given seeds and factor settings, in parallel.

Each episode is fully described by an :class:`EpisodeSpec` (seed, factor settings,
condition label): the environment is reset with ``seed``, so two different policies
given the same specs meet the same initial states (the condition of the paired
comparisons of VAT and of the protocol, visual-alignment-testing.txt III-C).

Episodes run in worker processes (``multiprocessing`` with the ``spawn`` start method:
MuJoCo's EGL contexts and torch's thread pools do not survive ``fork``). Each worker
builds its own environments and loads the policy once, with one torch thread, then
plays the episodes it is handed; results come back in the order of the specs, so the
outcome of a spec does not depend on the number of workers.

Per-episode outcome: success (the env's ``info["success"]`` at any step), return (sum of
rewards), length (steps), the factor values (the protocol ``settings`` asked for and the
env's own factor values at reset), and a digest of the initial
observation (state vector and first camera image) that tests compare across policies.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from realgap.errors import ConfigError
from realgap.policy.predictor import EXPERT
from realgap.store.common import Outcome

#: Episode cap when the task does not define one (environment steps).
DEFAULT_MAX_STEPS = 80


@dataclass(frozen=True)
class EnvSpec:
    """How each worker builds its environments (arguments of ``realgap.sim.make``).

    Attributes:
        task: task name.
        image_size: rendered image side in pixels.
        cameras: cameras to render (the policy's camera must be among them).
        fidelity: rendering preset.
        max_steps: episode cap in steps (None: the task's own limit, else
            :data:`DEFAULT_MAX_STEPS`).
        randomize: factors randomized per episode on top of the settings (normally empty
            in evaluation: conditions fix every factor).
        domain: ``"sim"``, or ``"real-proxy"`` to evaluate in the proxy-real domain.
        proxy_shadows: shadow quality of the proxy domains (``off``, ``low``, ``high``;
            :data:`realgap.sim.domains.PROXY_SHADOWS`): ``low`` makes closed-loop studies
            in the proxy affordable (a ``high`` proxy frame costs ~5x a sim frame).
    """

    task: str
    image_size: int = 64
    cameras: tuple[str, ...] = ("head",)
    fidelity: str = "low"
    max_steps: int | None = None
    randomize: tuple[str, ...] = ()
    domain: str = "sim"
    proxy_shadows: str = "high"

    def __post_init__(self) -> None:
        # A 0 here used to mean "the default" through `or` fallbacks; refuse it instead.
        if isinstance(self.image_size, bool) or int(self.image_size) < 1:
            raise ConfigError(f"--image-size {self.image_size!r}: must be a positive integer")
        if self.max_steps is not None and (isinstance(self.max_steps, bool)
                                           or int(self.max_steps) < 1):
            raise ConfigError(f"--max-steps {self.max_steps!r}: must be a positive integer "
                              "(leave it out for the task's own limit)")


@dataclass(frozen=True)
class EpisodeSpec:
    """One episode to play: reset seed, factor settings, labels for the results."""

    seed: int
    settings: Mapping[str, Any] = field(default_factory=dict)
    condition: str = ""
    trial: int = 0
    #: a checkpoint path (or "expert") playing this episode instead of the run's policy,
    #: so one worker pool can serve several policies (VAT's pi_B and pi_B')
    policy: str | None = None
    #: the rendering domain of this episode instead of the run's ``EnvSpec.domain``, so one
    #: worker pool can serve several domains (a study's sim and real-proxy rollouts); each
    #: worker builds one environment per domain it meets
    domain: str | None = None


@dataclass(frozen=True)
class EpisodeOutcome(Outcome):
    """Result of one episode: the store's :class:`~realgap.store.common.Outcome` (``ret`` is
    the sum of rewards, ``length`` in steps) plus what only a live episode knows."""

    #: digest of the initial state (same seed and settings, same digest)
    init_digest: str = ""
    #: reward of the last step played (the reach tasks: minus the final distance to the
    #: target, m): a continuous measure where success is rare; NaN when no step was played
    final_reward: float = float("nan")

    def row(self) -> dict[str, Any]:
        """The ``outcomes``-table row of :meth:`realgap.store.ResultsDB.add_outcomes`."""
        d = asdict(self)
        d["factors"] = {**dict(self.factors), "init_digest": self.init_digest}
        d.pop("init_digest")
        return d


def resolve_policy(policy: str | Path, task: str | None) -> tuple[str, str, dict[str, Any]]:
    """``(policy reference, task, policy config dict)`` for ``"expert"`` or a checkpoint.

    A checkpoint trained for another task than ``task`` is a one-line ConfigError.
    """
    if str(policy) == EXPERT:
        if not task:
            raise ConfigError("--policy expert needs --task (the scripted expert of which task?)")
        return EXPERT, task, {}
    from realgap.policy.checkpoint import check_task, find_checkpoint, load_checkpoint

    ckpt = load_checkpoint(policy)
    if task is not None:
        check_task(ckpt, task)
    return str(find_checkpoint(policy)), str(ckpt["task"]), dict(ckpt["policy_config"])


def env_spec_for(task: str, pcfg: Mapping[str, Any], image_size: int | None = None,
                 **kwargs: Any) -> EnvSpec:
    """The :class:`EnvSpec` a policy with config ``pcfg`` is played in: its own image size
    and camera (a learned policy sees what it was trained on), else ``image_size`` (64)."""
    size = int(pcfg.get("image_size") or (64 if image_size is None else image_size))
    return EnvSpec(task=task, image_size=size, cameras=(str(pcfg.get("camera", "head")),),
                   **kwargs)


# -- environments --------------------------------------------------------------------------
def make_env(spec: EnvSpec, settings: Mapping[str, Any], seed: int = 0) -> Any:
    """Build the task's environment, wrapped so every reset applies ``settings``
    (protocol factor values, :mod:`realgap.protocol.factors`; ``{}`` = nominal)."""
    from realgap import sim

    env = sim.make(spec.task, randomize=tuple(spec.randomize), fidelity=spec.fidelity,
                   image_size=spec.image_size, cameras=tuple(spec.cameras),
                   domain=spec.domain, seed=seed, max_steps=spec.max_steps,
                   proxy_shadows=spec.proxy_shadows)
    from realgap.sim.conditions import ConditionedEnv

    return ConditionedEnv(env, settings)


def _digest(obs: Mapping[str, Any], cameras: Sequence[str]) -> str:
    h = hashlib.sha1()
    h.update(np.ascontiguousarray(np.asarray(obs.get("state", ()), np.float64)).tobytes())
    for c in cameras:
        if c in obs:
            h.update(np.ascontiguousarray(obs[c]).tobytes())
    return h.hexdigest()[:16]


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def play_episode(env: Any, policy: Any, ep: EpisodeSpec, cameras: Sequence[str],
                 max_steps: int) -> EpisodeOutcome:
    """Play one episode of ``policy`` in ``env`` from ``env.reset(seed=ep.seed)``."""
    obs, info = env.reset(seed=int(ep.seed))
    digest = _digest(obs, cameras)
    factors = {"settings": _jsonable(dict(ep.settings)), **_jsonable(info.get("factors", {}))}
    policy.reset(seed=int(ep.seed))
    ret, steps, success = 0.0, 0, bool(info.get("success", False))
    last = float("nan")
    while steps < max_steps and not success:
        obs, reward, terminated, truncated, info = env.step(policy.act(obs))
        last = float(reward)
        ret += float(reward)
        steps += 1
        success = success or bool(info.get("success", False))
        if terminated or truncated:
            break
    return EpisodeOutcome(ep.condition, int(ep.trial), int(ep.seed), success, ret, steps,
                          factors, digest, last)


class _Worker:
    """Per-process state: the policy (loaded once) and one env whose condition wrapper
    switches factor settings between episodes (building an env costs far more than an
    episode)."""

    def __init__(self, policy_ref: Any, env_spec: EnvSpec, threads: int | None) -> None:
        self.policy_ref = policy_ref
        self.spec = env_spec
        self.envs: dict[str, Any] = {}
        self.policy: Any = None
        self._loaded: dict[str, Any] = {}
        if threads:
            try:
                import torch

                torch.set_num_threads(int(threads))
            except ImportError:  # the expert needs no torch
                pass
        if policy_ref is not None and policy_ref != EXPERT and isinstance(policy_ref, (str, Path)):
            self.policy = self._load(str(policy_ref))
        elif policy_ref != EXPERT:
            self.policy = policy_ref

    def _load(self, ref: str) -> Any:
        if ref not in self._loaded:
            from realgap.policy.predictor import load_policy

            self._loaded[ref] = load_policy(ref, task=self.spec.task)
        return self._loaded[ref]

    def env_for(self, settings: Mapping[str, Any], domain: str | None = None) -> Any:
        """The worker's environment of ``domain`` (None: the spec's), set to ``settings``
        from its next reset on."""
        dom = domain or self.spec.domain
        env = self.envs.get(dom)
        if env is None:
            env = self.envs[dom] = make_env(dataclasses.replace(self.spec, domain=dom),
                                            {"BG": "nominal"})
        env.set_settings(settings)
        return env

    def run(self, ep: EpisodeSpec) -> EpisodeOutcome:
        env = self.env_for(ep.settings, ep.domain)
        ref = ep.policy if ep.policy is not None else self.policy_ref
        if ref == EXPERT:
            from realgap.policy.predictor import ExpertPolicy

            policy: Any = ExpertPolicy(env)
        elif ep.policy is not None:
            policy = self._load(ep.policy)
        else:
            policy = self.policy
        max_steps = self.spec.max_steps or int(getattr(env.unwrapped, "max_steps", 0)
                                               or getattr(env.spec, "max_episode_steps", 0)
                                               or DEFAULT_MAX_STEPS)
        return play_episode(env, policy, ep, self.spec.cameras, max_steps)

    def close(self) -> None:
        for env in self.envs.values():
            env.close()
        self.envs.clear()


_WORKER: _Worker | None = None
_WORKER_ARGS: tuple[Any, EnvSpec, int | None] | None = None


def _init_worker(policy_ref: Any, env_spec: EnvSpec, threads: int | None,
                 allow_plugins: bool = False) -> None:
    global _WORKER_ARGS
    from realgap._gl import headless_gl
    from realgap.encoders.registry import _ALLOW_PLUGINS

    _ALLOW_PLUGINS.set(allow_plugins)  # the parent's --allow-plugin, not a file's say-so
    headless_gl()
    # Workers run side by side, one per core: BLAS thread pools of their own would
    # oversubscribe the cores, and OpenBLAS's spin-waiting threads then slow a 1 s
    # texture resize to minutes (measured in CI while the parent process was busy).
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    _WORKER_ARGS = (policy_ref, env_spec, threads)


def _run_in_worker(ep: EpisodeSpec) -> EpisodeOutcome:
    # Built on the first episode, not in the initializer: an error there (a bad checkpoint)
    # then reaches the caller as itself instead of as a BrokenProcessPool.
    global _WORKER
    if _WORKER is None:
        assert _WORKER_ARGS is not None
        _WORKER = _Worker(*_WORKER_ARGS)
    return _WORKER.run(ep)


def _plugins_allowed_here() -> bool:
    from realgap.encoders.registry import _ALLOW_PLUGINS

    return _ALLOW_PLUGINS.get()


def run_episodes(
    policy: Any,
    env_spec: EnvSpec,
    episodes: Sequence[EpisodeSpec],
    *,
    workers: int = 2,
    progress: bool = False,
    desc: str = "rollout",
    executor: Any = None,
) -> list[EpisodeOutcome]:
    """Play ``episodes`` with ``policy`` (``"expert"``, a checkpoint path, or, in-process
    only, a :class:`~realgap.policy.predictor.PolicyPredictor` object; None when every
    episode names its own ``policy``) and return their outcomes in the order given.

    ``workers > 1`` spreads the episodes over that many spawned processes, each with one
    torch thread; ``workers == 1`` plays them in this process. With ``executor="ray"``
    (or a :class:`realgap.executors.Executor`) the episodes are tasks of a
    ``ray.util.ActorPool`` of ``workers`` actors, each one such worker (policy loaded and
    environment built once, one torch thread); outcomes come back in the order given, so
    they equal the local ones episode for episode.
    """
    from tqdm import tqdm

    from realgap.executors import as_executor

    ex = as_executor(executor)
    if isinstance(workers, bool) or int(workers) < 1:
        raise ConfigError(f"--workers {workers!r}: must be a positive integer")
    workers = min(int(workers), max(len(episodes), 1))
    ref = str(policy) if isinstance(policy, Path) else policy
    if (workers > 1 or ex.is_ray) and ref is not None and not isinstance(ref, str):
        raise ConfigError("parallel rollouts take a checkpoint path or 'expert', not a policy "
                          "object; save it with train_policy() or use workers=1")
    bar = tqdm(total=len(episodes), desc=desc, disable=not progress)
    if ex.is_ray:
        try:
            return _run_on_ray(ex, ref, env_spec, episodes, workers, bar)
        finally:
            bar.close()
    if workers == 1:
        from realgap._gl import headless_gl

        headless_gl()  # as the spawned workers do; without it a headless run fails in GLFW
        worker = _Worker(ref, env_spec, None)
        try:
            out = []
            for ep in episodes:
                out.append(worker.run(ep))
                bar.update()
            return out
        finally:
            worker.close()
            bar.close()
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("spawn")
    chunk = max(1, min(4, len(episodes) // (workers * 4) or 1))
    try:
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(ref, env_spec, 1, _plugins_allowed_here())) as pool:
            out = []
            for res in pool.map(_run_in_worker, episodes, chunksize=chunk):
                out.append(res)
                bar.update()
            return out
    finally:
        bar.close()


class _RayWorker:
    """A Ray actor playing episodes: the body of one spawned local worker."""

    def __init__(self, policy_ref: Any, env_spec: EnvSpec, allow_plugins: bool) -> None:
        _init_worker(policy_ref, env_spec, 1, allow_plugins)

    def run(self, ep: EpisodeSpec) -> EpisodeOutcome:
        return _run_in_worker(ep)

    def close(self) -> None:
        if _WORKER is not None:
            _WORKER.close()


def _run_on_ray(ex: Any, ref: Any, env_spec: EnvSpec, episodes: Sequence[EpisodeSpec],
                workers: int, bar: Any) -> list[EpisodeOutcome]:
    """Episodes as tasks of an ActorPool of ``workers`` actors (Ray schedules them)."""
    from realgap.executors import _unwrap, ray_module

    ray = ray_module(ex)
    actor = ray.remote(num_cpus=ex.num_cpus)(_RayWorker)
    actors = [actor.remote(ref, env_spec, _plugins_allowed_here()) for _ in range(workers)]
    pool = ray.util.ActorPool(actors)
    out: list[EpisodeOutcome] = []
    try:
        # map() yields in the order of `episodes`, whichever actor played each one
        for res in pool.map(lambda a, ep: a.run.remote(ep), list(episodes)):
            out.append(res)
            bar.update()
    except Exception as exc:  # noqa: BLE001 - a realgap error from an actor as itself
        raise _unwrap(ray, exc) from None
    finally:
        for a in actors:
            ray.kill(a)  # the actors' environments and policies go with them
    return out


def episode_specs(n: int | None, seeds: Iterable[int] | None, settings: Any = None,
                  condition: str = "") -> list[EpisodeSpec]:
    """Episode specs from ``n`` and/or ``seeds`` (``seeds`` wins; ``n`` alone uses
    seeds ``0..n-1``) and one settings dict (or one per episode)."""
    if seeds is None:
        if n is None:
            raise ConfigError("give --episodes N or --seeds")
        if isinstance(n, bool) or int(n) < 1:
            raise ConfigError(f"--episodes {n!r}: must be a positive integer")
        seeds = range(int(n))
    seeds = [int(s) for s in seeds]
    if n is not None and len(seeds) != int(n):
        raise ConfigError(f"--episodes {n} but {len(seeds)} seeds given; give one seed per episode")
    if not seeds:
        raise ConfigError("no seeds given; give at least one episode")
    if any(s < 0 for s in seeds):
        raise ConfigError(f"--seeds {seeds}: seeds must be >= 0")
    if settings is None or isinstance(settings, Mapping):
        per = [dict(settings or {})] * len(seeds)
    else:
        per = [dict(s) for s in settings]
        if len(per) != len(seeds):
            raise ConfigError(f"{len(per)} settings for {len(seeds)} episodes; give one per episode")
    return [EpisodeSpec(s, st, condition, i) for i, (s, st) in enumerate(zip(seeds, per, strict=True))]
