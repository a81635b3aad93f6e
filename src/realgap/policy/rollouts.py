"""``rollout()``: play a policy for n episodes and record the outcomes in the results DB.

The one-call form of :func:`realgap.policy.episodes.run_episodes` behind ``realgap
rollout``: resolve the policy (``"expert"`` or a checkpoint, whose task must match),
build the episode specs from ``n``/``seeds`` and the factor settings, play them in
parallel workers, and write a ``rollout`` run: one ``outcomes`` row per episode
(success, return, length, factor values) and a ``success_rate`` score (k/n with its
95% Wilson interval, DESIGN.md "Success statistics").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from realgap.policy.episodes import EnvSpec, EpisodeOutcome, episode_specs, run_episodes


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


def rollout(
    policy: str | Path,
    task: str | None = None,
    n: int | None = None,
    seeds: Iterable[int] | None = None,
    settings: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    *,
    workers: int = 2,
    db: str | Path | None = None,
    image_size: int | None = None,
    randomize: Sequence[str] = (),
    fidelity: str = "low",
    max_steps: int | None = None,
    name: str | None = None,
    progress: bool = False,
    executor: Any = None,
) -> RolloutResult:
    """Run ``policy`` in ``task`` for ``n`` episodes (seeds ``0..n-1``) or the given
    ``seeds``, under factor ``settings`` (one dict for all episodes, or one per episode).

    Args:
        policy: ``"expert"`` or a checkpoint file / training directory.
        task: task name; defaults to the checkpoint's, and must match it.
        workers: rollout processes (1 runs in this process), or Ray actors.
        executor: ``"local"`` (default) or ``"ray"`` / a :class:`realgap.executors.Executor`:
            the episodes become tasks of a Ray actor pool; same outcomes, same order.
        db: results database (directory or ``.duckdb``) to write a ``rollout`` run to.
        image_size: rendered image side; learned policies use their training size.
        randomize, fidelity, max_steps: environment options (see :class:`EnvSpec`).
    """
    from realgap.protocol.runner import check_out, rate_row, resolve_policy

    ref, task, pcfg = resolve_policy(policy, task)
    eps = episode_specs(n, seeds, settings)
    spec = EnvSpec(task=task, image_size=int(pcfg.get("image_size") or (64 if image_size is None else image_size)),
                   cameras=(str(pcfg.get("camera", "head")),), fidelity=fidelity,
                   max_steps=max_steps, randomize=tuple(randomize))
    if db is not None:
        check_out(db)
    outcomes = run_episodes(ref, spec, eps, workers=workers, progress=progress,
                            executor=executor)
    k = sum(o.success for o in outcomes)
    row = rate_row("all", "", None, k, len(outcomes))
    label = name or ref
    res = RolloutResult(label, task, tuple(outcomes), k, len(outcomes), row.lo, row.hi)
    if db is None:
        return res
    from dataclasses import replace

    from realgap.store import ResultsDB, Score

    with ResultsDB(db) as rdb:
        run_id = rdb.new_run("rollout", {"policy": label, "task": task, "seeds": [e.seed for e in eps],
                                         "settings": [dict(e.settings) for e in eps],
                                         "workers": workers, "env": spec.__dict__,
                                         "policy_config": pcfg}, name=f"rollout {label}")
        rdb.add_subject(run_id, label, "policy", {"task": task, **pcfg})
        rdb.add_outcomes(run_id, label, [o.row() for o in outcomes])
        rdb.add_scores(run_id, [Score(label, "success_rate", row.rate, row.lo, row.hi, row.trials,
                                      "", {"successes": k, "trials": len(outcomes), "task": task})])
        rdb.finish_run(run_id)
    return replace(res, run_id=run_id)
