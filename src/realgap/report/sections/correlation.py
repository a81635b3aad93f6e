"""Report section "correlation": sim-vs-real success-rate scatter with its numbers.

Reads ``correlate`` runs (``realgap correlate``) through :mod:`realgap.store.correlate`: per
task and pooled, Pearson r with its Fisher-z interval, Spearman rho and MMRV with their
bootstrap intervals (when the run computed them), and one point per (policy, task) for the
scatter, with its counts k/n when the rates came from results databases.
"""

from __future__ import annotations

import pandas as pd

from realgap._plot import figure, literal_text, png_bytes
from realgap.report._html import esc, fmt_ci, png_img, table
from realgap.report.sections import register_section
from realgap.store import ResultsDB
from realgap.store.common import finished_runs
from realgap.store.correlate import MMRV, PEARSON, RUN_KIND, SPEARMAN, read_correlation

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
    runs = list(reversed(finished_runs(db, [RUN_KIND])))
    if not runs:
        return None
    parts = []
    for info in runs:
        rec = read_correlation(db, info.run_id)
        if not rec.stats:
            continue
        rows = []
        for g in rec.groups():
            pr, sp, mm = (rec.stat(g, m) for m in (PEARSON, SPEARMAN, MMRV))
            n = next((s.n for s in (pr, sp, mm) if s is not None), None)
            rows.append({
                "task": esc(g),
                "n policies": "—" if n is None else str(n),
                "Pearson r [95% Fisher z]": "—" if pr is None else fmt_ci(pr.value, pr.lo, pr.hi),
                "Spearman rho [95% bootstrap]": "—" if sp is None else fmt_ci(sp.value, sp.lo, sp.hi),
                "MMRV [95% bootstrap]": "—" if mm is None else fmt_ci(mm.value, mm.lo, mm.hi),
            })
        nums = table(pd.DataFrame(rows), table_id=f"correlation-{info.run_id}",
                     raw_html_columns=["task", "Pearson r [95% Fisher z]",
                                       "Spearman rho [95% bootstrap]", "MMRV [95% bootstrap]"],
                     caption="Per task and pooled over all (policy, task) pairs. Spearman and "
                             "MMRV intervals resample policies (and their trials where counts "
                             "k/n are known); '—' where the run computed none.")
        fig = ""
        if rec.points:
            points = pd.DataFrame({"policy": [p.policy for p in rec.points],
                                   "task": [p.task for p in rec.points],
                                   "sim": [p.sim for p in rec.points],
                                   "real": [p.real for p in rec.points]})
            png = _scatter(points, str(info.name or info.run_id))
            fig = (f"<figure>{png_img(png, alt='sim vs real success rate')}"
                   "<figcaption>Each point is one policy (per task): its success rate in "
                   "simulation against the real one; dashed: real = sim.</figcaption></figure>")
        parts.append(f"<h3>{esc(info.name or info.run_id)}</h3>{fig}{nums}"
                     f"<p class='note'>{esc(rec.convention)}.</p>")
    return "".join(parts) or None


register_section("correlation", anchor=ANCHOR, title=TITLE, kinds=(RUN_KIND,), order=80)(render)
