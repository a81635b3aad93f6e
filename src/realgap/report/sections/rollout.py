"""Report section "rollout": what each ``realgap rollout`` run played and how it went.

Reads ``rollout`` runs through :mod:`realgap.store.rollout`. One row per run (newest first):
the policy, its task, successes k out of n episodes with the rate's 95% Wilson interval, the
mean return with a 95% percentile bootstrap interval over episodes, and the mean episode
length. When two or more policies were rolled out on the same task, the probability of
improvement P(row > column) of their episode successes (Agarwal et al. 2021; the per-task
Mann-Whitney statistic) with a stratified bootstrap interval. Episodes are independent here
(one per seed), so the Wilson interval needs no correction.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from realgap.report._html import esc, fmt, fmt_ci, table
from realgap.report.sections import register_section
from realgap.report.sections.protocol import improvement
from realgap.stats import bootstrap_ci
from realgap.store import ResultsDB
from realgap.store.common import finished_runs
from realgap.store.rollout import RUN_KIND, RolloutRecord, read_rollout

ANCHOR = "rollout"
TITLE = "Rollouts: success and return per policy"

#: At most this many rollout runs are listed (newest first).
MAX_RUNS = 30
N_BOOT = 2000
SEED = 0


def _return_cell(rec: RolloutRecord) -> str:
    rets = np.array([o.ret for o in rec.outcomes], dtype=np.float64)
    rets = rets[np.isfinite(rets)]
    if rets.size == 0:
        return "—"
    if rets.size == 1:
        return fmt(float(rets[0]))
    e = bootstrap_ci(np.mean, rets, groups=np.arange(rets.size), n_boot=N_BOOT, rng=SEED)
    return fmt_ci(e.value, e.lo, e.hi)


def _improvement(recs: list[RolloutRecord], task: str) -> str:
    mats = {r.policy: np.array([[float(o.success)] for o in r.outcomes]) for r in recs}
    rows = []
    for a in recs:
        row = {"P(row > column)": esc(a.policy)}
        for b in recs:
            if a is b:
                row[esc(b.policy)] = "—"
                continue
            e = improvement(mats[a.policy], mats[b.policy], n_boot=N_BOOT, rng=SEED)
            row[esc(b.policy)] = fmt_ci(e.value, e.lo, e.hi)
        rows.append(row)
    df = pd.DataFrame(rows)
    return table(df, table_id=f"rollout-improvement-{esc(task)}", sortable=False,
                 raw_html_columns=list(df.columns)[1:],
                 caption=f"Task {esc(task)}: probability that an episode of the row policy "
                         "succeeds where one of the column policy fails, plus half the ties; "
                         "95% bootstrap over episodes. 0.5 = no difference.")


def render(db: ResultsDB) -> str | None:
    runs = list(reversed(finished_runs(db, [RUN_KIND])))[:MAX_RUNS]
    if not runs:
        return None
    recs = [read_rollout(db, r.run_id) for r in runs]
    rows = []
    for info, rec in zip(runs, recs):
        lengths = [o.length for o in rec.outcomes]
        rows.append({
            "policy": esc(rec.policy), "task": esc(rec.task),
            "k/n": f"{rec.successes}/{rec.trials}",
            "success rate [95% Wilson]": fmt_ci(rec.rate, rec.lo, rec.hi),
            "mean return [95% bootstrap]": _return_cell(rec),
            "mean length (steps)": fmt(float(np.mean(lengths)), 1) if lengths else "—",
            "run": esc(f"{info.run_id} ({info.created[:16]})"),
        })
    df = pd.DataFrame(rows)
    parts = [table(df, table_id="rollout-table", raw_html_columns=list(df.columns),
                   caption="Each rollout run, newest first: k successes of n episodes with the "
                           "95% Wilson interval of k/n; mean return with a 95% percentile "
                           f"bootstrap over episodes ({N_BOOT} seeded replicates).")]
    by_task: dict[str, dict[str, RolloutRecord]] = {}
    for rec in recs:  # newest first: keep the newest run of each policy per task
        if rec.outcomes:
            by_task.setdefault(rec.task, {}).setdefault(rec.policy, rec)
    for task, per_policy in by_task.items():
        if len(per_policy) >= 2:
            parts.append(_improvement(list(per_policy.values()), task))
    return "".join(parts)


register_section("rollout", anchor=ANCHOR, title=TITLE, kinds=(RUN_KIND,), order=55)(render)

__all__: list[Any] = ["ANCHOR", "TITLE", "render"]
