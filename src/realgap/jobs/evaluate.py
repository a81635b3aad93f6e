"""The ``evaluate`` job: a factorized evaluation protocol, every condition, the same seeds,
one table.

``run_evaluate(EvaluateConfig) -> EvaluationResult`` is built from named steps:
:func:`load_spec`, :func:`resolve_policy`, :func:`plan_episodes`, the rollouts
(:func:`realgap.policy.episodes.run_episodes`), :func:`tabulate` and :func:`write_evaluation`.
:func:`evaluate_policy` is the keyword form of the same job.

:func:`evaluate_policy` plays ``trials`` episodes per condition of a
:class:`~realgap.protocol.spec.ProtocolSpec` (the base configuration, then each
one-factor variation; vla-domain-randomization-study.txt 4.1.4 and appendix 0.C.1),
with the same seeds in every condition, and reports per condition successes k out of
trials n, the rate k/n and its 95% Wilson interval, plus the pooled rate
sum k / sum n over conditions (DESIGN.md, "Success statistics").

Results go to the results database in the layout of docs/interfaces.md, "Protocol
results layout": one ``scores`` row per condition (``metric = "success_rate"``,
``grp`` = condition, ``extra`` = successes, trials, factor, task, base) and a
``grp = "pooled"`` row, plus one ``outcomes`` row per trial.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from realgap.errors import ConfigError
from realgap.jobs._steps import check_out
from realgap.policy.episodes import (
    EnvSpec,
    EpisodeOutcome,
    EpisodeSpec,
    env_spec_for,
    resolve_policy,
    run_episodes,
)
from realgap.protocol.spec import ProtocolSpec, load_protocol
from realgap.store.evaluate import ConditionRate

__all__ = ["ConditionResult", "EvaluateConfig", "EvaluationResult", "check_out",
           "conditions_of", "evaluate_policy", "format_table", "load_spec", "plan_episodes",
           "rate_row", "resolve_policy", "run_evaluate", "tabulate", "write_evaluation"]


#: One row of the protocol table: ``successes`` of ``trials``, rate, Wilson [lo, hi]: the
#: store's record, so the job returns exactly what the report reads back.
ConditionResult = ConditionRate


@dataclass(frozen=True)
class EvaluationResult:
    """A protocol evaluation of one policy on one task.

    ``pooled`` is the sum over conditions (k = sum k_c, n = sum n_c), its rate and Wilson
    interval; ``outcomes`` holds every trial in condition order.
    """

    protocol: str
    protocol_version: str
    policy: str
    task: str
    conditions: tuple[ConditionResult, ...]
    pooled: ConditionResult
    outcomes: tuple[EpisodeOutcome, ...]
    run_id: str | None = None


@dataclass(frozen=True)
class EvaluateConfig:
    """What ``realgap evaluate`` runs."""

    policy: str | Path
    """``"expert"`` (needs ``task``) or a checkpoint file or training directory."""
    protocol: str | Path | ProtocolSpec = "tabletop-v1"
    """A shipped protocol name, a JSON path or a loaded spec."""
    task: str | None = None
    """The task; defaults to the checkpoint's (a mismatch is a ConfigError)."""
    trials: int | None = None
    """Trials per condition, overriding the protocol's (>= 1)."""
    workers: int = 2
    """Rollout worker processes (or Ray actors)."""
    out: str | Path | None = None
    """Directory (or ``.duckdb`` file) of the results database; None writes nothing."""
    name: str | None = None
    """The setting label in results (default: ``expert`` or the checkpoint path)."""
    image_size: int | None = None
    """Rendered image side for the expert (learned policies use their own)."""
    max_steps: int | None = None
    """Episode cap (None: the task's own limit)."""
    progress: bool = False
    """Show a progress bar."""
    executor: Any = None
    """``"local"`` (default) or ``"ray"`` / a :class:`realgap.executors.Executor`."""


def rate_row(name: str, factor: str, value: Any, k: int, n: int) -> ConditionResult:
    """A :class:`ConditionResult` with the rate and 95% Wilson interval of k/n."""
    from realgap.stats import wilson_interval

    lo, hi = wilson_interval(k, n)
    return ConditionResult(name, factor, value, int(k), int(n), k / n if n else float("nan"),
                           float(lo), float(hi))


# -- steps ---------------------------------------------------------------------------------
def load_spec(protocol: str | Path | ProtocolSpec, trials: int | None) -> ProtocolSpec:
    """The protocol, loaded if named, with ``trials`` per condition (None: the file's)."""
    spec = protocol if isinstance(protocol, ProtocolSpec) else load_protocol(protocol)
    return spec.with_trials(trials)


def plan_episodes(spec: ProtocolSpec, task: str) -> list[EpisodeSpec]:
    """One episode per condition and seed, conditions in protocol order; a protocol
    written for other tasks is refused."""
    if spec.tasks and task not in spec.tasks:
        raise ConfigError(f"--protocol {spec.name}: written for tasks {', '.join(spec.tasks)}, "
                          f"not {task!r}; pass a protocol file that lists {task!r}")
    return [EpisodeSpec(seed, spec.settings(c), c.name, i)
            for c in spec.conditions for i, seed in enumerate(spec.seeds)]


def tabulate(spec: ProtocolSpec, outcomes: Sequence[EpisodeOutcome], label: str,
             task: str) -> EvaluationResult:
    """Per-condition k/n with Wilson intervals, and the pooled row sum k / sum n."""
    rows = []
    for c in spec.conditions:
        oc = [o for o in outcomes if o.condition == c.name]
        rows.append(rate_row(c.name, c.factor, c.value, sum(o.success for o in oc), len(oc)))
    k, n = sum(r.successes for r in rows), sum(r.trials for r in rows)
    pooled = rate_row("pooled", "", None, k, n)
    return EvaluationResult(spec.name, spec.version, label, task, tuple(rows), pooled,
                            tuple(outcomes))


def write_evaluation(res: EvaluationResult, spec: ProtocolSpec, out: str | Path,
                     pcfg: Mapping[str, Any], workers: int) -> EvaluationResult:
    """Store ``res`` as an ``evaluate`` run (layout: :mod:`realgap.store.evaluate`)."""
    from realgap.store import ResultsDB
    from realgap.store.common import Outcome
    from realgap.store.evaluate import ConditionRate, EvaluationRecord
    from realgap.store.evaluate import write_evaluation as store_evaluation

    def rate(r: ConditionResult) -> ConditionRate:
        return ConditionRate(r.name, r.factor or None, r.value, r.successes, r.trials, r.rate,
                             r.lo, r.hi)

    config = {"protocol_source": spec.source, "trials": spec.trials, "seed": spec.seed,
              "workers": workers, "policy_config": dict(pcfg), "seeds": spec.seeds}
    rec = EvaluationRecord(spec.name, spec.version, res.policy, res.task,
                           tuple(rate(r) for r in res.conditions), rate(res.pooled),
                           tuple(Outcome.from_row(o.row()) for o in res.outcomes), config, dict(pcfg))
    with ResultsDB(out) as db:
        run_id = store_evaluation(db, rec).run_id
    return replace(res, run_id=run_id)


# -- the job -------------------------------------------------------------------------------
def run_evaluate(cfg: EvaluateConfig) -> EvaluationResult:
    """Evaluate ``cfg.policy`` under ``cfg.protocol`` (see :class:`EvaluateConfig`)."""
    spec = load_spec(cfg.protocol, cfg.trials)
    ref, task, pcfg = resolve_policy(cfg.policy, cfg.task)
    episodes = plan_episodes(spec, task)
    env_spec: EnvSpec = env_spec_for(task, pcfg, cfg.image_size, max_steps=cfg.max_steps)
    if cfg.out is not None:
        check_out(cfg.out)
    outcomes = run_episodes(ref, env_spec, episodes, workers=cfg.workers, progress=cfg.progress,
                            desc=f"evaluate {spec.name}", executor=cfg.executor)
    label = cfg.name or ("expert" if ref == "expert" else ref)
    result = tabulate(spec, outcomes, label, task)
    if cfg.out is not None:
        result = write_evaluation(result, spec, cfg.out, pcfg, cfg.workers)
    return result


def evaluate_policy(
    policy: str | Path,
    protocol: str | Path | ProtocolSpec = "tabletop-v1",
    **kwargs: Any,
) -> EvaluationResult:
    """Keyword form of :func:`run_evaluate`: ``evaluate_policy("expert", task="push")``;
    the keywords are the fields of :class:`EvaluateConfig`."""
    return run_evaluate(EvaluateConfig(policy, protocol, **kwargs))


def format_table(res: EvaluationResult) -> str:
    """The per-condition table as aligned text (what ``realgap evaluate`` prints)."""
    head = f"{'condition':<16} {'factor':<6} {'k/n':>8} {'rate':>6}  95% Wilson"
    lines = [f"protocol {res.protocol} {res.protocol_version}  policy {res.policy}  task {res.task}",
             head, "-" * len(head)]

    def line(r: ConditionResult) -> str:
        return (f"{r.name:<16} {r.factor:<6} {f'{r.successes}/{r.trials}':>8} {r.rate:>6.3f}  "
                f"[{r.lo:.3f}, {r.hi:.3f}]")

    lines += [line(r) for r in res.conditions]
    lines += ["-" * len(head), line(res.pooled) + "   (sum k / sum n)"]
    return "\n".join(lines)


def conditions_of(res: EvaluationResult) -> Sequence[str]:
    """Condition names in protocol order."""
    return [r.name for r in res.conditions]
