"""The ``rollout`` job: play a policy for n episodes and record the outcomes.

``run_rollout(RolloutConfig) -> RolloutResult`` behind ``realgap rollout``, built from
named steps: resolve the policy (``"expert"`` or a checkpoint, whose task must match,
:func:`realgap.policy.episodes.resolve_policy`), build the episode specs from
``n``/``seeds`` and the factor settings, play them in parallel workers
(:func:`realgap.policy.episodes.run_episodes`), count successes, and write a ``rollout``
run: one ``outcomes`` row per episode (success, return, length, factor values) and a
``success_rate`` score (k/n with its 95% Wilson interval, DESIGN.md "Success
statistics"). :func:`rollout` is the positional/keyword form of the same job.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from realgap.jobs._steps import check_out
from realgap.policy.episodes import (
    EnvSpec,
    EpisodeOutcome,
    EpisodeSpec,
    env_spec_for,
    episode_specs,
    resolve_policy,
    run_episodes,
)

__all__ = ["RolloutConfig", "RolloutResult", "count_successes", "rollout", "run_rollout",
           "write_rollout_run"]


@dataclass(frozen=True)
class RolloutResult:
    """Outcomes of a rollout, the success count and its Wilson interval."""

    policy: str
    task: str
    outcomes: tuple[EpisodeOutcome, ...]
    successes: int
    episodes: int
    lo: float
    hi: float
    run_id: str | None = None

    @property
    def rate(self) -> float:
        return self.successes / self.episodes

    @property
    def mean_return(self) -> float:
        return sum(o.ret for o in self.outcomes) / len(self.outcomes)


@dataclass(frozen=True)
class RolloutConfig:
    """What ``realgap rollout`` runs."""

    policy: str | Path
    """``"expert"`` or a checkpoint file / training directory."""
    task: str | None = None
    """Task name; defaults to the checkpoint's, and must match it."""
    n: int | None = None
    """Episodes (seeds ``0..n-1`` unless ``seeds``)."""
    seeds: Iterable[int] | None = None
    """Reset seeds, one per episode."""
    settings: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None
    """Protocol factor values (:mod:`realgap.protocol.factors`): one dict for all
    episodes, or one per episode."""
    workers: int = 2
    """Rollout processes (1 runs in this process), or Ray actors."""
    db: str | Path | None = None
    """Results database (directory or ``.duckdb``) to write a ``rollout`` run to."""
    image_size: int | None = None
    """Rendered image side; learned policies use their training size."""
    randomize: Sequence[str] = ()
    """Environment factors randomized per episode (see :class:`EnvSpec`)."""
    fidelity: str = "low"
    """Rendering preset."""
    max_steps: int | None = None
    """Episode cap (None: the task's own limit)."""
    name: str | None = None
    """The policy's label in results (default: its reference)."""
    progress: bool = False
    """Show a progress bar."""
    executor: Any = None
    """``"local"`` (default) or ``"ray"`` / a :class:`realgap.executors.Executor`: the
    episodes become tasks of a Ray actor pool; same outcomes, same order."""


# -- steps ---------------------------------------------------------------------------------
def count_successes(label: str, task: str, outcomes: Sequence[EpisodeOutcome]) -> RolloutResult:
    """k successes of n episodes and the 95% Wilson interval of k/n."""
    from realgap.stats import wilson_interval

    k = sum(o.success for o in outcomes)
    lo, hi = wilson_interval(k, len(outcomes))
    return RolloutResult(label, task, tuple(outcomes), int(k), len(outcomes), float(lo), float(hi))


def write_rollout_run(res: RolloutResult, db: str | Path, eps: Sequence[EpisodeSpec],
                      spec: EnvSpec, pcfg: Mapping[str, Any], workers: int) -> RolloutResult:
    """Store ``res`` as a ``rollout`` run (layout: :mod:`realgap.store.rollout`)."""
    from realgap.store import ResultsDB
    from realgap.store.common import Outcome
    from realgap.store.rollout import RolloutRecord, write_rollout

    rec = RolloutRecord(res.policy, res.task, res.successes, res.episodes, res.rate, res.lo, res.hi,
                        tuple(Outcome.from_row(o.row()) for o in res.outcomes),
                        {"policy": res.policy, "task": res.task, "seeds": [e.seed for e in eps],
                         "settings": [dict(e.settings) for e in eps], "workers": workers,
                         "env": spec.__dict__, "policy_config": dict(pcfg)}, dict(pcfg))
    with ResultsDB(db) as rdb:
        run_id = write_rollout(rdb, rec).run_id
    return replace(res, run_id=run_id)


# -- the job -------------------------------------------------------------------------------
def run_rollout(cfg: RolloutConfig) -> RolloutResult:
    """Play ``cfg.policy`` for the configured episodes (see :class:`RolloutConfig`)."""
    ref, task, pcfg = resolve_policy(cfg.policy, cfg.task)
    eps = episode_specs(cfg.n, cfg.seeds, cfg.settings)
    spec = env_spec_for(task, pcfg, cfg.image_size, fidelity=cfg.fidelity,
                        max_steps=cfg.max_steps, randomize=tuple(cfg.randomize))
    if cfg.db is not None:
        check_out(cfg.db)
    outcomes = run_episodes(ref, spec, eps, workers=cfg.workers, progress=cfg.progress,
                            executor=cfg.executor)
    res = count_successes(cfg.name or ref, task, outcomes)
    if cfg.db is not None:
        res = write_rollout_run(res, cfg.db, eps, spec, pcfg, cfg.workers)
    return res


def rollout(
    policy: str | Path,
    task: str | None = None,
    n: int | None = None,
    seeds: Iterable[int] | None = None,
    settings: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    **kwargs: Any,
) -> RolloutResult:
    """Run ``policy`` in ``task`` for ``n`` episodes (seeds ``0..n-1``) or the given
    ``seeds``, under factor ``settings``; the keywords are the fields of
    :class:`RolloutConfig`."""
    return run_rollout(RolloutConfig(policy, task, n, seeds, settings, **kwargs))
