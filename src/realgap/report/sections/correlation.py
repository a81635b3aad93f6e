"""Report section "correlation": sim-vs-real success-rate scatter with its numbers.

Reads runs of kind ``correlate`` (``realgap correlate``) in the layout of
docs/interfaces.md, "Protocol results layout": ``subject = "sim-vs-real"`` rows with
``metric`` in ``pearson_r`` (``lo``/``hi`` = Fisher-z interval), ``spearman_rho``,
``mmrv``, ``grp`` = task or ``"pooled"``, ``n`` = policies, ``extra.convention``; and one
``sim_success_rate`` / ``real_success_rate`` row per (policy, task) for the scatter.
"""

from __future__ import annotations

import json

import pandas as pd

from realgap._plot import figure, literal_text, png_bytes
from realgap.report._html import esc, fmt, fmt_ci, png_img, table
from realgap.store import ResultsDB

ANCHOR = "correlation"
TITLE = "Sim-real correlation"


@literal_text
def _scatter(points: pd.DataFrame, title: str) -> bytes:
    fig = figure(figsize=(4.2, 4.0))
    ax = fig.add_subplot()
    for task, grp in points.groupby("task", sort=True):
        ax.scatter(grp["sim"], grp["real"], s=28, label=str(task) or "all", alpha=0.85)
        for _, r in grp.iterrows():
            ax.annotate(str(r["policy"]), (r["sim"], r["real"]), fontsize=6,
                        xytext=(3, 2), textcoords="offset points")
    ax.plot([0, 1], [0, 1], color="#9ca3af", ls="--", lw=1)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("sim success rate")
    ax.set_ylabel("real success rate")
    ax.set_title(title, fontsize=9)
    if points["task"].nunique() > 1 or (points["task"] != "").any():
        ax.legend(fontsize=7, title="task", title_fontsize=7)
    return png_bytes(fig, dpi=100)


def render(db: ResultsDB) -> str | None:
    runs = db.query("SELECT run_id, name FROM runs WHERE kind = 'correlate' AND status = 'ok' "
                    "ORDER BY created DESC, run_id DESC")
    if runs.empty:
        return None
    parts = []
    for run_id, name in zip(runs["run_id"], runs["name"]):
        sc = db.scores(run_id)
        stats = sc[sc["subject"] == "sim-vs-real"]
        if stats.empty:
            continue
        convention = json.loads(stats["extra"].iloc[0] or "{}").get("convention", "")
        groups = list(dict.fromkeys(stats["grp"]))
        rows = []
        for g in groups:
            s = stats[stats["grp"] == g].set_index("metric")
            pr = s.loc["pearson_r"] if "pearson_r" in s.index else None
            rows.append({
                "task": g,
                "n policies": int(s["n"].iloc[0]) if s["n"].iloc[0] is not None else "—",
                "Pearson r [95% Fisher z]": "—" if pr is None else fmt_ci(pr["value"], pr["lo"], pr["hi"]),
                "Spearman rho": fmt(s["value"].get("spearman_rho")),
                "MMRV": fmt(s["value"].get("mmrv")),
            })
        nums = table(pd.DataFrame(rows), table_id=f"correlation-{run_id}",
                     raw_html_columns=["Pearson r [95% Fisher z]"],
                     caption="Per task and pooled over all (policy, task) pairs.")
        pts = sc[sc["metric"].isin(["sim_success_rate", "real_success_rate"])]
        wide = pts.pivot_table(index=["subject", "grp"], columns="metric", values="value",
                               aggfunc="first").reset_index()
        fig = ""
        if {"sim_success_rate", "real_success_rate"} <= set(wide.columns):
            points = pd.DataFrame({"policy": wide["subject"], "task": wide["grp"],
                                   "sim": wide["sim_success_rate"],
                                   "real": wide["real_success_rate"]})
            png = _scatter(points, str(name or run_id))
            fig = (f"<figure>{png_img(png, alt='sim vs real success rate')}"
                   "<figcaption>Each point is one policy (per task): its success rate in "
                   "simulation against the real one; dashed: real = sim.</figcaption></figure>")
        parts.append(f"<h3>{esc(name or run_id)}</h3>{fig}{nums}"
                     f"<p class='note'>{esc(convention)}.</p>")
    return "".join(parts) or None
