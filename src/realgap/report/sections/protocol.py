"""Report section "protocol": per-condition success rates and the factor bar chart.

Reads runs of kind ``evaluate`` (``realgap evaluate``) and ``protocol-summary``
(``realgap protocol summarize``) in the layout of docs/interfaces.md, "Protocol results
layout": ``scores`` rows with ``metric = "success_rate"``, ``subject`` = setting/policy,
``grp`` = condition (``"pooled"`` for pooled rows), ``value/lo/hi`` = rate and 95% Wilson
interval, ``n`` = trials, ``extra`` = ``{"successes", "trials", "factor", "task", "base"}``.

Shown: one table of every condition with k/n, rate and interval (pooled rows = sum k /
sum n), and per (run, setting, task) a bar chart of each condition's rate with its
interval against the base condition's rate (dashed line, its interval shaded).
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from realgap._plot import figure, literal_text, png_bytes
from realgap.report._html import esc, fmt_ci, png_img, table
from realgap.store import ResultsDB

ANCHOR = "protocol"
TITLE = "Factorized evaluation: success rates"

#: At most this many bar charts (newest runs first).
MAX_CHARTS = 12


def _rows(db: ResultsDB) -> pd.DataFrame:
    runs = db.query(
        "SELECT run_id, kind, name, created FROM runs WHERE kind IN ('evaluate', 'protocol-summary') "
        "AND status = 'ok' ORDER BY created DESC, run_id DESC")
    if runs.empty:
        return pd.DataFrame()
    sc = db.query(
        "SELECT s.* FROM scores s JOIN runs r USING (run_id) WHERE r.kind IN "
        "('evaluate', 'protocol-summary') AND r.status = 'ok' AND s.metric = 'success_rate'")
    if sc.empty:
        return pd.DataFrame()
    extra = [json.loads(e or "{}") for e in sc["extra"]]
    sc = sc.assign(
        successes=[e.get("successes") for e in extra],
        trials=[e.get("trials", n) for e, n in zip(extra, sc["n"])],
        factor=[e.get("factor") for e in extra],
        task=[e.get("task") or "" for e in extra],
        base=[bool(e.get("base")) or str(g).lower() == "base" for e, g in zip(extra, sc["grp"])],
    )
    order = {r: i for i, r in enumerate(runs["run_id"])}
    kinds = dict(zip(runs["run_id"], runs["kind"]))
    return sc.assign(order=sc["run_id"].map(order), kind=sc["run_id"].map(kinds))


def _num(x: Any) -> float:
    return float("nan") if x is None else float(x)


@literal_text
def _chart(grp: pd.DataFrame, title: str) -> bytes | None:
    conds = grp[grp["grp"] != "pooled"]
    if conds.empty:
        return None
    base = conds[conds["base"]]
    labels = [str(c) for c in conds["grp"]]
    vals = [_num(v) for v in conds["value"]]
    err_lo = [max(0.0, v - _num(lo)) if not math.isnan(_num(lo)) else 0.0
              for v, lo in zip(vals, conds["lo"])]
    err_hi = [max(0.0, _num(hi) - v) if not math.isnan(_num(hi)) else 0.0
              for v, hi in zip(vals, conds["hi"])]
    fig = figure(figsize=(max(4.0, 0.6 * len(labels) + 2), 3.2))
    ax = fig.add_subplot()
    colours = ["#6b7280" if b else "#2a6fb0" for b in conds["base"]]
    ax.bar(range(len(labels)), vals, yerr=[err_lo, err_hi], color=colours, capsize=3)
    if len(base):
        b = base.iloc[0]
        ax.axhline(_num(b["value"]), color="#111827", ls="--", lw=1, label="base rate")
        if b["lo"] is not None and not math.isnan(_num(b["lo"])):
            ax.axhspan(_num(b["lo"]), _num(b["hi"]), color="#9ca3af", alpha=0.25, lw=0,
                       label="base 95% Wilson")
        ax.legend(fontsize=7, loc="upper right")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=35, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate")
    ax.set_title(title, fontsize=9)
    return png_bytes(fig, dpi=100)


def render(db: ResultsDB) -> str | None:
    sc = _rows(db)
    if sc.empty:
        return None
    sc = sc.sort_values(["order", "subject", "task", "base", "grp"],
                        ascending=[True, True, True, False, True], kind="stable")
    view = pd.DataFrame({
        "run": [f"{k} {r[:15]}" for k, r in zip(sc["kind"], sc["run_id"])],
        "setting / policy": sc["subject"].astype(str),
        "task": [t or ("all" if g == "pooled" else "") for t, g in zip(sc["task"], sc["grp"])],
        "condition": sc["grp"].astype(str),
        "factor": [("—" if f is None or (isinstance(f, float) and math.isnan(f)) else str(f)) for f in sc["factor"]],
        "k/n": [f"{'?' if k is None else int(k)}/{'?' if n is None else int(n)}"
                for k, n in zip(sc["successes"], sc["trials"])],
        "rate [95% Wilson]": [fmt_ci(_num(v), _num(lo), _num(hi))
                              for v, lo, hi in zip(sc["value"], sc["lo"], sc["hi"])],
    })
    note = ("<p class='note'>Every rate is successes k out of trials n with its 95% Wilson "
            "interval; <b>pooled</b> rows are sum k / sum n over the conditions (not the mean "
            "of the rates), as in the real-world tables of the domain-randomization study.</p>")
    parts = [
        note,
        table(view, table_id="protocol-table", raw_html_columns=["rate [95% Wilson]"],
              caption="Success rate per condition, from realgap evaluate and realgap "
                      "protocol summarize runs (newest first)."),
    ]
    charts = []
    for (run_id, subject, task), grp in sc.groupby(["run_id", "subject", "task"], sort=False):
        if len(charts) >= MAX_CHARTS:
            break
        title = f"{subject}" + (f", task {task}" if task else "") + f" ({run_id[:15]})"
        png = _chart(grp, title)
        if png:
            charts.append(
                f"<figure>{png_img(png, alt=f'success rate per condition: {title}')}"
                f"<figcaption>{esc(title)}: each condition's success rate with its 95% Wilson "
                "interval (bars), against the base condition's rate (dashed line; shaded: its "
                "interval). One factor varies per condition.</figcaption></figure>")
    return "".join(parts + charts)
