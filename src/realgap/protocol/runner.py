"""Run a factorized evaluation protocol: every condition, the same seeds, one table.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from realgap.errors import ConfigError
from realgap.policy.episodes import EnvSpec, EpisodeOutcome, EpisodeSpec, run_episodes
from realgap.protocol.spec import ProtocolSpec, load_protocol

#: How protocol factor values become ``realgap.sim`` factor settings is decided by the
#: environment; this module passes the protocol's full setting of each condition.


@dataclass(frozen=True)
class ConditionResult:
    """One row of the protocol table: ``successes`` of ``trials``, rate, Wilson [lo, hi]."""

    name: str
    factor: str
    value: Any
    successes: int
    trials: int
    rate: float
    lo: float
    hi: float


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


def rate_row(name: str, factor: str, value: Any, k: int, n: int) -> ConditionResult:
    """A :class:`ConditionResult` with the rate and 95% Wilson interval of k/n."""
    from realgap.protocol.stats import wilson_interval

    lo, hi = wilson_interval(k, n)
    return ConditionResult(name, factor, value, int(k), int(n), k / n if n else float("nan"),
                           float(lo), float(hi))


def resolve_policy(policy: str | Path, task: str | None) -> tuple[str, str, dict[str, Any]]:
    """``(policy reference, task, policy config dict)`` for ``"expert"`` or a checkpoint.

    A checkpoint trained for another task than ``task`` is a one-line ConfigError.
    """
    from realgap.policy.predictor import EXPERT

    if str(policy) == EXPERT:
        if not task:
            raise ConfigError("--policy expert needs --task (the scripted expert of which task?)")
        return EXPERT, task, {}
    from realgap.policy.checkpoint import check_task, find_checkpoint, load_checkpoint

    ckpt = load_checkpoint(policy)
    if task is not None:
        check_task(ckpt, task)
    return str(find_checkpoint(policy)), str(ckpt["task"]), dict(ckpt["policy_config"])


def evaluate_policy(
    policy: str | Path,
    protocol: str | Path | ProtocolSpec = "tabletop-v1",
    *,
    task: str | None = None,
    trials: int | None = None,
    workers: int = 2,
    out: str | Path | None = None,
    name: str | None = None,
    image_size: int | None = None,
    max_steps: int | None = None,
    progress: bool = False,
    executor: Any = None,
) -> EvaluationResult:
    """Evaluate ``policy`` (``"expert"`` or a checkpoint file/dir) under ``protocol``.

    Args:
        policy: ``"expert"`` (needs ``task``) or a checkpoint file or training directory.
        protocol: a shipped protocol name, a JSON path or a loaded spec.
        task: the task; defaults to the checkpoint's (a mismatch is a ConfigError).
        trials: trials per condition, overriding the protocol's (>= 1).
        workers: rollout worker processes.
        out: directory (or ``.duckdb`` file) of the results database; None writes nothing.
        name: the setting label in results (default: ``expert`` or the checkpoint path).
        image_size: rendered image side for the expert (learned policies use their own).
        max_steps: episode cap (None: the task's own limit).
        executor: ``"local"`` (default) or ``"ray"`` / a :class:`realgap.executors.Executor`
            (episodes as tasks of a Ray actor pool of ``workers`` actors; same outcomes).
    """
    spec = protocol if isinstance(protocol, ProtocolSpec) else load_protocol(protocol)
    spec = spec.with_trials(trials)
    ref, task, pcfg = resolve_policy(policy, task)
    if spec.tasks and task not in spec.tasks:
        raise ConfigError(f"--protocol {spec.name}: written for tasks {', '.join(spec.tasks)}, "
                          f"not {task!r}; pass a protocol file that lists {task!r}")
    size = int(pcfg.get("image_size") or (64 if image_size is None else image_size))
    camera = str(pcfg.get("camera", "head"))
    env_spec = EnvSpec(task=task, image_size=size, cameras=(camera,), max_steps=max_steps)
    episodes = [
        EpisodeSpec(seed, spec.settings(c), c.name, i)
        for c in spec.conditions for i, seed in enumerate(spec.seeds)
    ]
    if out is not None:
        check_out(out)
    outcomes = run_episodes(ref, env_spec, episodes, workers=workers, progress=progress,
                            desc=f"evaluate {spec.name}", executor=executor)
    rows = []
    for c in spec.conditions:
        oc = [o for o in outcomes if o.condition == c.name]
        rows.append(rate_row(c.name, c.factor, c.value, sum(o.success for o in oc), len(oc)))
    k, n = sum(r.successes for r in rows), sum(r.trials for r in rows)
    pooled = rate_row("pooled", "", None, k, n)
    label = name or ("expert" if ref == "expert" else ref)
    result = EvaluationResult(spec.name, spec.version, label, task, tuple(rows), pooled,
                              tuple(outcomes))
    if out is not None:
        result = _write(result, spec, out, pcfg, workers)
    return result


def check_out(out: str | Path) -> None:
    """Open (creating) the results database before the rollouts: a bad ``--out`` then
    fails at once instead of after the whole protocol has been played."""
    from realgap.store import ResultsDB

    with ResultsDB(out):
        pass


def _write(res: EvaluationResult, spec: ProtocolSpec, out: str | Path,
           pcfg: Mapping[str, Any], workers: int) -> EvaluationResult:
    from dataclasses import replace

    from realgap.store import ResultsDB, Score

    config = {"protocol": spec.name, "protocol_version": spec.version, "protocol_source": spec.source,
              "task": res.task, "policy": res.policy, "trials": spec.trials, "seed": spec.seed,
              "workers": workers, "policy_config": dict(pcfg),
              "seeds": spec.seeds}
    with ResultsDB(out) as db:
        run_id = db.new_run("evaluate", config, name=f"{spec.name}: {res.policy}")
        db.add_subject(run_id, res.policy, "policy", {"task": res.task, **dict(pcfg)})
        scores = [
            Score(res.policy, "success_rate", r.rate, r.lo, r.hi, r.trials, r.name,
                  {"successes": r.successes, "trials": r.trials, "factor": r.factor,
                   "value": r.value, "task": res.task, "base": r.factor == "base"})
            for r in res.conditions
        ]
        p = res.pooled
        scores.append(Score(res.policy, "success_rate", p.rate, p.lo, p.hi, p.trials, "pooled",
                            {"successes": p.successes, "trials": p.trials, "factor": None,
                             "task": res.task, "base": False}))
        db.add_scores(run_id, scores)
        db.add_outcomes(run_id, res.policy, [o.row() for o in res.outcomes])
        db.finish_run(run_id)
    return replace(res, run_id=run_id)


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
