"""Comparison across runs of the same kind: each subject's headline number, run by run.

Shown for every run kind with at least two finished runs in the database, oldest run
first. The headline metric of a kind is fixed in :data:`HEADLINE` (the gap run's ranking
score, a rollout's or an evaluation's success rate); other kinds show their first metric
with no group. A cell is ``value [lo, hi]`` with the run's own interval: runs on different
data are compared side by side, not tested against each other.
"""

from __future__ import annotations

import pandas as pd

from realgap.report._html import esc, fmt_ci, table
from realgap.report.sections import ANY_KIND, register_section
from realgap.store import ResultsDB, correlate, evaluate, gap, rollout, vat
from realgap.store.common import SUCCESS_RATE

ANCHOR = "comparison"
TITLE = "Across runs"

#: Metric shown per run kind, in order of preference (group "" or "pooled").
HEADLINE: dict[str, tuple[str, ...]] = {
    gap.RUN_KIND: (gap.RANKED_BY,),
    rollout.RUN_KIND: (SUCCESS_RATE,),
    evaluate.RUN_KIND: (SUCCESS_RATE,),
    evaluate.SUMMARY_KIND: (SUCCESS_RATE,),
    vat.RUN_KIND: (vat.T_METRIC,),
    correlate.RUN_KIND: (correlate.PEARSON, correlate.MMRV),
}


def _headline(scores: pd.DataFrame, kind: str) -> str | None:
    for metric in HEADLINE.get(kind, ()):
        if (scores["metric"] == metric).any():
            return metric
    return None if scores.empty else str(min(scores["metric"].unique()))


def _kind_table(db: ResultsDB, kind: str, runs: pd.DataFrame) -> str | None:
    cols: dict[str, dict[str, str]] = {}
    metric_used = None
    for r in runs.itertuples():
        s = db.scores(r.run_id)
        s = s[s["grp"].fillna("").isin(["", evaluate.POOLED])]
        metric = _headline(s, kind)
        if metric is None:
            continue
        metric_used = metric_used or metric
        s = s[s["metric"] == metric]
        label = f"{r.run_id} ({str(r.created)[:16]})"
        cols[label] = {str(x.subject): fmt_ci(x.value, x.lo, x.hi) for x in s.itertuples()}
    if len(cols) < 2:
        return None
    subjects = list(dict.fromkeys(sub for c in cols.values() for sub in c))
    df = pd.DataFrame({"subject": [esc(s) for s in subjects],
                       **{k: [v.get(s, "—") for s in subjects] for k, v in cols.items()}})
    return (f"<h3>{esc(kind)}: {esc(metric_used)}</h3>"
            + table(df, table_id=f"compare-{kind}", sortable=False,
                    raw_html_columns=list(df.columns),
                    caption=f"{esc(metric_used)} per subject in each finished {esc(kind)} run "
                            "(oldest first), each with its own 95% interval."))


def render(db: ResultsDB) -> str | None:
    runs = db.runs()
    if runs.empty:
        return None
    runs = runs[runs["status"] == "ok"]
    parts = []
    for kind in dict.fromkeys(runs["kind"].astype(str)):
        of_kind = runs[runs["kind"] == kind]
        if len(of_kind) >= 2:
            part = _kind_table(db, kind, of_kind)
            if part:
                parts.append(part)
    if not parts:
        return None
    return ("<p class='note'>The same kind of run, repeated: pick one for the sections above "
            "with <code>realgap report DIR --run RUN_ID</code>.</p>" + "".join(parts))


register_section("comparison", anchor=ANCHOR, title=TITLE, kinds=(ANY_KIND,), order=100)(render)
