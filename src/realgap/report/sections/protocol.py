"""Report section "protocol": factorized evaluations, a policy x condition grid per protocol.

Reads ``evaluate`` runs (``realgap evaluate``) and ``protocol-summary`` runs (``realgap
protocol summarize``) through :mod:`realgap.store.evaluate`.

For the evaluations of one protocol on one task (the newest run per policy; ``realgap report
--run ID`` shows another), shown:

- the grid: one row per policy, one column per condition **in protocol order** (base first,
  as the protocol file lists them), then the pooled column; each cell is k/n, the rate and
  its 95% Wilson interval;
- the aggregates per policy: pooled k/n = sum k / sum n (DESIGN.md "Success statistics") with
  its Wilson interval, which treats every trial as independent although the same seeds are
  replayed in every condition, and beside it the **seed bootstrap** interval, which resamples
  whole seeds (all conditions of a seed together: a cluster bootstrap, :mod:`realgap.stats`);
  the IQM of the condition rates (Agarwal et al. 2021) with a stratified bootstrap interval
  (trials resampled within each condition, rliable's ``StratifiedBootstrap``);
- with two or more policies, the probability of improvement P(row > column) over the
  conditions both played (per condition the Mann-Whitney ``P(x > y) + 0.5 P(x = y)`` of the
  trials' successes, averaged over conditions), with its stratified bootstrap interval;
- a bar chart per run of each condition's rate against the base condition's.

Counts summaries (no per-trial outcomes) are shown as one table of every condition and
pooled row, and a bar chart per (setting, task). All intervals are seeded (same database,
same page) and never widened to contain their point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from realgap._plot import figure, literal_text, png_bytes
from realgap._rng import as_rng
from realgap.report._html import esc, fmt, fmt_ci, png_img, table
from realgap.report.sections import register_section
from realgap.stats import (
    Estimate,
    bootstrap_counts,
    estimate_from_replicates,
    ratio_replicates,
)
from realgap.store import ResultsDB
from realgap.store.common import finished_runs
from realgap.store.evaluate import (
    POOLED,
    RUN_KIND,
    SUMMARY_KIND,
    ConditionRate,
    EvaluationRecord,
    condition_names,
    read_evaluation,
    read_summary,
)

ANCHOR = "protocol"
TITLE = "Factorized evaluation: success rates"

#: At most this many bar charts (newest runs first).
MAX_CHARTS = 12
#: Bootstrap replicates of the aggregate intervals (seeded: the page is reproducible).
N_BOOT = 2000
SEED = 0


# -- numbers -------------------------------------------------------------------------------
def seed_bootstrap_pooled(mat: np.ndarray, n_boot: int = N_BOOT, rng: int = SEED) -> Estimate:
    """The pooled rate of ``mat (n_seeds, n_conditions)`` 0/1 with a percentile interval from
    resampling whole seeds (rows): a seed's trials under every condition move together."""
    if mat.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0, 0, 0)
    counts = bootstrap_counts(np.zeros(mat.shape[0], dtype=np.int64), n_boot, rng)
    reps = ratio_replicates(counts, mat.sum(axis=1), np.full(mat.shape[0], mat.shape[1]))
    return estimate_from_replicates(float(mat.mean()), reps, n=mat.shape[0], n_frames=mat.size)


def _trimmed(v: np.ndarray) -> float:
    """IQM of a 1-D array exactly as ``scipy.stats.trim_mean(v, 0.25)`` computes it (sorted,
    ``int(0.25 n)`` cut from each end), without scipy's per-call overhead: the bootstrap calls
    it thousands of times."""
    cut = int(0.25 * v.size)
    return float(np.mean(np.sort(v)[cut:v.size - cut]))


def _iqm_of_rates(mat: np.ndarray) -> float:
    return _trimmed(mat.mean(axis=0))


def _improvement_binary(x: np.ndarray, y: np.ndarray) -> float:
    """P(X > Y) of 0/1 successes: per condition ``p_x (1 - p_y) + 0.5 P(x = y)``, which for
    0/1 values is ``0.5 + 0.5 (p_x - p_y)``, averaged over conditions (equals
    :func:`realgap.stats.probability_of_improvement` on 0/1 matrices)."""
    return float(np.mean(0.5 + 0.5 * (x.mean(axis=0) - y.mean(axis=0))))


def _stratified(statistic: Any, mats: Sequence[np.ndarray], n_boot: int, rng: int) -> Estimate:
    """:func:`realgap.stats.stratified_bootstrap_ci` with the same draws (rows resampled
    within each column, matrix after matrix, replicate after replicate), for a statistic
    cheap enough that the loop is numpy only."""
    gen = as_rng(rng)
    cols = [np.arange(m.shape[1])[None, :] for m in mats]
    reps = np.empty(n_boot)
    for b in range(n_boot):
        reps[b] = statistic(*[m[gen.integers(0, m.shape[0], size=m.shape), c]
                              for m, c in zip(mats, cols, strict=True)])
    return estimate_from_replicates(float(statistic(*mats)), reps,
                                    n=sum(m.shape[0] for m in mats),
                                    n_frames=sum(m.size for m in mats))


def iqm_of_conditions(mat: np.ndarray, n_boot: int = N_BOOT, rng: int = SEED) -> Estimate:
    """IQM over conditions of the condition rates of ``mat (trials, conditions)`` 0/1, with a
    stratified bootstrap interval (trials resampled within each condition)."""
    return _stratified(_iqm_of_rates, [mat], n_boot, rng)


def improvement(x: np.ndarray, y: np.ndarray, n_boot: int = N_BOOT, rng: int = SEED) -> Estimate:
    """P(X > Y) of two ``(trials, conditions)`` 0/1 matrices, stratified bootstrap interval."""
    return _stratified(_improvement_binary, [x, y], n_boot, rng)


# -- evaluate runs ---------------------------------------------------------------------------
def _newest_per_policy(db: Any) -> list[list[EvaluationRecord]]:
    """Evaluations grouped by (protocol, version, task), the newest (or pinned) run per
    policy, groups and policies in the order they first appear."""
    pinned = getattr(db, "pinned", {}).get(RUN_KIND)
    chosen: dict[tuple[str, str, str], dict[str, EvaluationRecord]] = {}
    for info in finished_runs(db, [RUN_KIND]):  # oldest first
        rec = read_evaluation(db, info.run_id)
        group = chosen.setdefault((rec.protocol, rec.protocol_version, rec.task), {})
        if pinned and group.get(rec.policy) is not None and group[rec.policy].run_id == pinned:
            continue
        group[rec.policy] = rec
    return [list(g.values()) for g in chosen.values()]


def _cell(c: ConditionRate | None) -> str:
    if c is None:
        return "—"
    if not c.trials:
        return f"{c.successes}/{c.trials}"
    return f"{c.successes}/{c.trials}<br>{fmt_ci(c.rate, c.lo, c.hi)}"


def _grid(recs: list[EvaluationRecord], conds: list[str], key: str) -> str:
    rows = []
    for rec in recs:
        by = {c.name: c for c in rec.conditions}
        rows.append({"policy": esc(rec.policy),
                     **{esc(c): _cell(by.get(c)) for c in conds},
                     "pooled": _cell(rec.pooled)})
    df = pd.DataFrame(rows)
    return table(df, table_id=f"protocol-grid-{key}", sortable=False,
                 raw_html_columns=list(df.columns),
                 caption="k/n, success rate and 95% Wilson interval per policy and condition, "
                         "conditions in protocol order; pooled = sum k / sum n.")


def _aggregates(recs: list[EvaluationRecord], conds: list[str], key: str) -> str:
    mats = {rec.policy: rec.success_matrix(conds)[2] for rec in recs}
    rows = []
    for rec in recs:
        p, mat = rec.pooled, mats[rec.policy]
        boot = seed_bootstrap_pooled(mat) if mat.shape[0] >= 1 else None
        iq = iqm_of_conditions(mat) if mat.shape[0] >= 1 else None
        rows.append({
            "policy": esc(rec.policy),
            "pooled k/n": f"{p.successes}/{p.trials}",
            "pooled rate [95% Wilson, trials independent]": fmt_ci(p.rate, p.lo, p.hi),
            "[95% seed bootstrap]": "—" if boot is None else
            f"<span class='ci'>[{fmt(boot.lo)}, {fmt(boot.hi)}]</span>",
            "IQM of condition rates [95% stratified bootstrap]": "—" if iq is None else
            fmt_ci(iq.value, iq.lo, iq.hi),
            "seeds x conditions": f"{mat.shape[0]} x {mat.shape[1]}" if mat.size else "no outcomes",
        })
    df = pd.DataFrame(rows)
    parts = [table(df, table_id=f"protocol-aggregates-{key}", sortable=False,
                   raw_html_columns=list(df.columns)[2:5],
                   caption="Aggregates over the conditions. The Wilson interval of the pooled "
                           "rate counts every trial as independent, but each seed is replayed "
                           "in every condition, so trials of one seed are not independent; the "
                           "seed bootstrap resamples whole seeds and is the one to read. "
                           f"{N_BOOT} seeded replicates.")]
    ready = [r for r in recs if mats[r.policy].shape[0] >= 1]
    if len(ready) >= 2:
        grid = []
        for a in ready:
            row: dict[str, str] = {"P(row > column)": esc(a.policy)}
            for b in ready:
                if a is b:
                    row[esc(b.policy)] = "—"
                    continue
                e = improvement(mats[a.policy], mats[b.policy])
                row[esc(b.policy)] = fmt_ci(e.value, e.lo, e.hi)
            grid.append(row)
        pdf = pd.DataFrame(grid)
        parts.append(table(pdf, table_id=f"protocol-improvement-{key}", sortable=False,
                           raw_html_columns=list(pdf.columns)[1:],
                           caption="Probability of improvement (Agarwal et al. 2021): per "
                                   "condition P(success of row > success of column) + half the "
                                   "ties over all trial pairs, averaged over conditions; 95% "
                                   "stratified bootstrap (trials resampled within each "
                                   "condition). 0.5 = no difference."))
    return "".join(parts)


def _rates_of(frame: pd.DataFrame) -> list[ConditionRate]:
    """Condition rates from a table with columns ``grp, base, value, lo, hi`` (the chart's
    input before the store records existed; kept for callers that still pass one)."""
    return [ConditionRate(str(r["grp"]), "base" if r["base"] else None, None, 0, 1,
                          float(r["value"]), float(r["lo"]), float(r["hi"]))
            for r in frame.to_dict(orient="records") if r["grp"] != POOLED]


@literal_text
def _chart(conds: Sequence[ConditionRate] | pd.DataFrame, title: str) -> bytes | None:
    if isinstance(conds, pd.DataFrame):
        conds = _rates_of(conds)
    conds = [c for c in conds if c.trials]
    if not conds:
        return None
    base = [c for c in conds if c.base]
    vals = [c.rate for c in conds]
    err_lo = [0.0 if math.isnan(c.lo) else max(0.0, c.rate - c.lo) for c in conds]
    err_hi = [0.0 if math.isnan(c.hi) else max(0.0, c.hi - c.rate) for c in conds]
    fig = figure(figsize=(max(4.0, 0.6 * len(conds) + 2), 3.2))
    ax = fig.add_subplot()
    colours = ["#6b7280" if c.base else "#2a6fb0" for c in conds]
    ax.bar(range(len(conds)), vals, yerr=[err_lo, err_hi], color=colours, capsize=3)
    if base:
        b = base[0]
        ax.axhline(b.rate, color="#111827", ls="--", lw=1, label="base rate")
        if not math.isnan(b.lo):
            ax.axhspan(b.lo, b.hi, color="#9ca3af", alpha=0.25, lw=0, label="base 95% Wilson")
        ax.legend(fontsize=7, loc="upper right")
    ax.set_xticks(range(len(conds)))
    ax.set_xticklabels([c.name for c in conds], rotation=35, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate")
    ax.set_title(title, fontsize=9)
    return png_bytes(fig, dpi=100)


def _figure(png: bytes | None, title: str) -> str:
    if not png:
        return ""
    return (f"<figure>{png_img(png, alt=f'success rate per condition: {title}')}"
            f"<figcaption>{esc(title)}: each condition's success rate with its 95% Wilson "
            "interval (bars), against the base condition's rate (dashed line; shaded: its "
            "interval). One factor varies per condition.</figcaption></figure>")


def _evaluations(db: Any) -> tuple[str, list[str]]:
    parts: list[str] = []
    charts: list[str] = []
    for i, recs in enumerate(_newest_per_policy(db)):
        first = recs[0]
        conds = condition_names(recs)
        head = (f"<h3>protocol {esc(first.protocol or '?')} {esc(first.protocol_version)}"
                f"{', task ' + esc(first.task) if first.task else ''}</h3>")
        parts += [head, _grid(recs, conds, str(i)), _aggregates(recs, conds, str(i))]
        for rec in recs:
            if len(charts) < MAX_CHARTS:
                title = f"{rec.policy}" + (f", task {rec.task}" if rec.task else "") + \
                    f" ({str(rec.run_id)[:15]})"
                charts.append(_figure(_chart(rec.conditions, title), title))
    return "".join(parts), charts


# -- counts summaries ------------------------------------------------------------------------
def _summaries(db: Any, n_charts: int) -> tuple[str, list[str]]:
    parts: list[str] = []
    charts: list[str] = []
    for info in reversed(finished_runs(db, [SUMMARY_KIND])):  # newest first
        rec = read_summary(db, info.run_id)
        rows = []
        for r in (*rec.conditions, *rec.pooled):
            c = r.rate
            rows.append({
                "setting": esc(r.setting),
                **{esc(k): esc("all" if v is None and r.scope == "setting" else ("" if v is None else v))
                   for k, v in r.keys.items()},
                "condition": esc(c.name),
                "factor": esc(c.factor or "—"),
                "k/n": f"{c.successes}/{c.trials}",
                "rate [95% Wilson]": fmt_ci(c.rate, c.lo, c.hi),
            })
        df = pd.DataFrame(rows)
        parts.append(f"<h3>{esc(info.name or info.run_id)}</h3>" + table(
            df, table_id=f"protocol-summary-{info.run_id}", raw_html_columns=list(df.columns),
            caption=f"Counts from {esc(rec.source)}: every condition's k/n, rate and Wilson "
                    f"interval, then the pooled rows (sum k / sum n{', per ' + ', '.join(map(esc, rec.keys)) if rec.keys else ''})."))
        groups: dict[tuple[str, str], list[ConditionRate]] = {}
        for r in rec.conditions:
            groups.setdefault((r.setting, str(r.keys.get("task") or "")), []).append(r.rate)
        for (setting, task), rates in groups.items():
            if len(charts) + n_charts >= MAX_CHARTS:
                break
            title = setting + (f", task {task}" if task else "") + f" ({info.run_id[:15]})"
            charts.append(_figure(_chart(rates, title), title))
    return "".join(parts), charts


def render(db: ResultsDB) -> str | None:
    evals, eval_charts = _evaluations(db)
    sums, sum_charts = _summaries(db, len(eval_charts))
    if not evals and not sums:
        return None
    note = ("<p class='note'>Every rate is successes k out of trials n with its 95% Wilson "
            "interval; <b>pooled</b> is sum k / sum n over the conditions (not the mean of the "
            "rates), as in the real-world tables of the domain-randomization study.</p>")
    return note + evals + sums + "".join(c for c in eval_charts + sum_charts if c)


register_section("protocol", anchor=ANCHOR, title=TITLE, kinds=(RUN_KIND, SUMMARY_KIND),
                 order=60)(render)

__all__ = ["ANCHOR", "POOLED", "TITLE", "improvement", "iqm_of_conditions", "render",
           "seed_bootstrap_pooled"]
