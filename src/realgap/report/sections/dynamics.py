"""Dynamics gap: degradation curves, gap measures against perturbation size, identified
parameters, each with its interval and sample size, from the results database alone.

Reads ``degrade``, ``dynamics-gap`` and ``sysid`` runs through :mod:`realgap.store.dynamics`
(their one layout); the newest run of each (env, factor) is shown.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from realgap._plot import literal_text, png_bytes, subplots
from realgap.report._html import esc, fmt_ci, png_img, table
from realgap.report.sections import register_section
from realgap.store import ResultsDB
from realgap.store.common import finished_runs
from realgap.store.dynamics import (
    DEGRADE_KIND,
    DEGRADE_METRICS,
    GAP_KIND,
    GAP_MEASURES,
    RUN_KINDS,
    SYSID_KIND,
    DynamicsRecord,
    read_dynamics,
)

ANCHOR = "dynamics"
TITLE = "Dynamics gap"

_METRIC_LABEL = GAP_MEASURES


def _frame(recs: list[DynamicsRecord]) -> pd.DataFrame:
    """One row per stored number: run_id, name, created, subject, metric, value, lo, hi, n,
    scale, factor, extra_d."""
    rows = [{"run_id": r.run_id, "name": r.name, "created": r.created, "subject": p.subject,
             "metric": p.metric, "value": p.value, "lo": p.lo, "hi": p.hi, "n": p.n,
             "scale": p.scale, "factor": p.factor, "extra_d": dict(p.extra)}
            for r in recs for p in r.points]
    return pd.DataFrame(rows)


def _scores(db: ResultsDB, kind: str) -> pd.DataFrame:
    newest: dict[str, str] = {}
    for info in finished_runs(db, [kind]):  # oldest first: the newest run per name wins
        newest[info.name] = info.run_id
    if not newest:
        return pd.DataFrame()
    return _frame([read_dynamics(db, rid) for rid in newest.values()])


def _nan(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


@literal_text
def _curve_png(df: pd.DataFrame, metrics: list[str], xlabel: str, title: str) -> bytes | None:
    """One panel per metric that has a value; None when none has (the table and its notes
    say why, e.g. a normalized drop undefined because the nominal return is <= 0)."""
    metrics = [m for m in metrics if df.loc[df.metric == m, "value"].notna().any()]
    if not metrics:
        return None
    fig, axes = subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        d = df[df.metric == metric].sort_values("scale")
        y = d["value"].to_numpy(float)
        lo = d["lo"].to_numpy(float)
        hi = d["hi"].to_numpy(float)
        err = [[max(0.0, v - l) if not _nan(l) else 0.0 for v, l in zip(y, lo)],
               [max(0.0, h - v) if not _nan(h) else 0.0 for v, h in zip(y, hi)]]
        ax.errorbar(d["scale"].to_numpy(float), y, yerr=err, marker="o", capsize=3)
        ax.set_xlabel(xlabel)
        ax.set_title(_METRIC_LABEL.get(metric, metric).split(" (")[0], fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return png_bytes(fig)


def _view(df: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    rows = []
    for scale, d in df.sort_values("scale").groupby("scale", sort=True):
        row: dict[str, Any] = {"scale": f"{scale:g}"}
        for m in metrics:
            r = d[d.metric == m]
            if r.empty:
                row[m] = "—"
                continue
            r0 = r.iloc[0]
            lo = None if _nan(r0["lo"]) else r0["lo"]
            hi = None if _nan(r0["hi"]) else r0["hi"]
            row[m] = fmt_ci(None if _nan(r0["value"]) else float(r0["value"]), lo, hi)
            row[f"n ({m})"] = int(r0["n"]) if not _nan(r0["n"]) else "—"
        rows.append(row)
    return pd.DataFrame(rows)


def _degrade(db: ResultsDB) -> str:
    sc = _scores(db, DEGRADE_KIND)
    if sc.empty:
        return ""
    parts = [("<h3>Degradation curves</h3><p class='note'>Policy trained in the nominal "
              "environment, evaluated as one factor grows (mbrl-latent-gap.txt, section 5). "
              "Mean episode return with a 95% two-level bootstrap interval (seeds, then "
              "episodes); normalized drop = 1 - R(scale) / R(1); return drop = R(1) - R(scale). "
              "n = episodes.</p>")]
    for name, d in sc.groupby("name"):
        factor = d["factor"].iloc[0]
        metrics = [m for m in DEGRADE_METRICS if m in set(d.metric)]
        parts.append(f"<h4>{esc(name)} ({esc(d['subject'].iloc[0])})</h4>")
        png = _curve_png(d, metrics, f"{factor} scale", str(name))
        if png:
            parts.append(png_img(png, alt=f"degradation curve {name}", width=760))
        view = _view(d, metrics)
        parts.append(table(view, table_id=f"dyn-degrade-{esc(name)}",
                           raw_html_columns=metrics, caption=f"{name}: return and drop per scale"))
        notes = {e.get("note") for e in d["extra_d"] if e.get("note")}
        parts += [f"<p class='warn'>{esc(n)}</p>" for n in notes]
    return "".join(parts)


def _gap(db: ResultsDB) -> str:
    sc = _scores(db, GAP_KIND)
    if sc.empty:
        return ""
    parts = ["<h3>Gap measures against perturbation size</h3><p class='note'>Source: "
             "transitions of the nominal environment; target: the perturbed one (scale 1 is "
             "the same-dynamics control, ~0 expected). 95% bootstrap intervals over target "
             "trajectories; n = trajectories. Measures: "
             + "; ".join(f"<b>{esc(k)}</b>: {esc(v)}" for k, v in _METRIC_LABEL.items())
             + ".</p>"]
    for name, d in sc.groupby("name"):
        factor = d["factor"].iloc[0]
        metrics = [m for m in _METRIC_LABEL if m in set(d.metric)]
        parts.append(f"<h4>{esc(name)}</h4>")
        png = (_curve_png(d, metrics, f"{factor} scale", str(name))
               if d["scale"].notna().all() and d["scale"].nunique() > 1 else None)
        if png:
            parts.append(png_img(png, alt=f"gap measures {name}", width=900))
        parts.append(table(_view(d, metrics), table_id=f"dyn-gap-{esc(name)}",
                           raw_html_columns=metrics, caption=f"{name}: gap measures per scale"))
    return "".join(parts)


def _sysid(db: ResultsDB) -> str:
    runs = finished_runs(db, [SYSID_KIND])
    if not runs:
        return ""
    sc = _frame([read_dynamics(db, info.run_id) for info in runs])
    rows = []
    for r in sc.itertuples():
        extra = r.extra_d
        truth = extra.get("truth")
        rows.append({
            "run": r.run_id, "env": r.subject, "parameter": r.metric,
            "estimate [95% CI]": fmt_ci(r.value, None if _nan(r.lo) else r.lo,
                                        None if _nan(r.hi) else r.hi, 4),
            "truth": "—" if truth is None else f"{truth:g}",
            "error %": "—" if truth is None else f"{100 * (r.value - truth) / truth:+.2f}",
            "n (trajectories)": int(r.n) if not _nan(r.n) else "—",
            "one-step error (fit / nominal)":
                f"{extra.get('objective', float('nan')):.3g} / "
                f"{extra.get('objective_nominal', float('nan')):.3g}",
        })
    return ("<h3>System identification</h3><p class='note'>Multipliers that make the "
            "simulator reproduce the target's one-step transitions (replayed from the recorded "
            "states); 95% interval from a bootstrap over target trajectories.</p>"
            + table(pd.DataFrame(rows), table_id="dyn-sysid",
                    raw_html_columns=["estimate [95% CI]"],
                    caption="Identified physics multipliers (1 = the simulator's nominal value)."))


def render(db: ResultsDB) -> str | None:
    body = _degrade(db) + _gap(db) + _sysid(db)
    return body or None


register_section("dynamics", anchor=ANCHOR, title=TITLE, kinds=RUN_KINDS, order=90)(render)
