"""Report section "study": do the offline scores predict closed-loop transfer?

Reads the newest ``scores-study`` run (``realgap study scores``) through
:mod:`realgap.store.study`:

- closed-loop results: per encoder and domain, successes k/n with the 95% Wilson interval
  (the trials pool seeds x episodes; the correlation intervals redraw them hierarchically
  instead), mean final distance to the target and the sim -> domain drop; k/n and the
  Wilson cell sort by the success rate;
- the score-vs-closed-loop scatter: one panel per offline score, real-proxy domain and
  closed-loop measure; x = the gap run's score with its interval (horizontal bars), y =
  the encoder's success rate in that domain with its Wilson interval, or its mean final
  distance with a bootstrap interval over the initial states (vertical bars); each encoder
  has one colour and marker, named in the figure's legend (text labels beside the points
  overlapped where encoders score alike);
- the correlation table: Pearson r, Spearman rho and MMRV of each score against each
  target, with the study's bootstrap intervals over seeds and episodes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from realgap._plot import figure, literal_text, png_bytes
from realgap.report._html import esc, fmt, fmt_ci, png_img, table
from realgap.report.sections import register_section
from realgap.store.study import RUN_KIND, SUCCESS_DROP, ScoresStudyRecord, read_scores_study

ANCHOR = "study"
TITLE = "Study: do the offline scores predict closed-loop transfer?"
#: Scores drawn in the scatter (all are in the table).
SCATTER_SCORES: tuple[str, ...] = ("dis_cal", "as_transfer", "combined", "mmd", "c2st_acc",
                                   "coverage")
#: Bootstrap replicates of the final-distance error bars.
N_BOOT = 1000


def _distance_ci(rec: ScoresStudyRecord) -> dict[tuple[str, str], tuple[float, float, float]]:
    """(encoder, domain) -> mean final distance with a 95% percentile bootstrap over the
    initial states (seeds pooled), :data:`N_BOOT` seeded replicates."""
    from realgap.stats import bootstrap_ci

    oc = rec.outcomes
    out: dict[tuple[str, str], tuple[float, float, float]] = {}
    if oc.empty:
        return out
    for (enc, dom), g in oc.groupby(["encoder", "domain"], sort=False):
        d = g["final_distance"].to_numpy(dtype=float)
        if not np.isfinite(d).all():
            continue
        e = bootstrap_ci(np.mean, d, groups=g["episode"].to_numpy(), n_boot=N_BOOT, rng=0)
        out[(str(enc), str(dom))] = (e.value, e.lo, e.hi)
    return out


@literal_text
def _scatter(rec: ScoresStudyRecord) -> bytes | None:
    summ = pd.DataFrame(list(rec.summary))
    domains = [d for d in rec.scores if d in set(summ.get("domain", []))]
    scores = [s for s in SCATTER_SCORES
              if any(s in m for by in rec.scores.values() for m in by.values())]
    if summ.empty or not domains or not scores:
        return None
    dist = _distance_ci(rec)
    rows = [(dom, target) for dom in domains for target in ("success", "final_distance")]
    # one colour and marker per encoder, named once in a legend: encoders with close scores
    # and rates made their text labels overlap into an unreadable block
    encoders = list(dict.fromkeys(str(e) for by in rec.scores.values() for e in by))
    style = {e: (f"C{i % 10}", "osD^vP*Xhp"[i % 10]) for i, e in enumerate(encoders)}
    fig = figure(figsize=(2.5 * len(scores), 2.3 * len(rows) + 0.6))
    axes = fig.subplots(len(rows), len(scores), squeeze=False)
    for i, (dom, target) in enumerate(rows):
        for j, score in enumerate(scores):
            ax = axes[i][j]
            for enc, by_metric in rec.scores[dom].items():
                est = by_metric.get(score)
                row = summ[(summ["encoder"] == enc) & (summ["domain"] == dom)]
                value = None if est is None else est.get("value")
                if est is None or value is None or row.empty:
                    continue
                x = float(value)
                if target == "success":
                    y = float(row["success_rate"].iloc[0])
                    ylo, yhi = float(row["wilson_lo"].iloc[0]), float(row["wilson_hi"].iloc[0])
                elif (enc, dom) in dist:
                    y, ylo, yhi = dist[(enc, dom)]
                else:
                    continue
                lo_v, hi_v = est.get("lo"), est.get("hi")
                xlo = x if lo_v is None else float(lo_v)
                xhi = x if hi_v is None else float(hi_v)
                color, marker = style[str(enc)]
                ax.errorbar([x], [y], xerr=[[max(x - xlo, 0)], [max(xhi - x, 0)]],
                            yerr=[[max(y - ylo, 0)], [max(yhi - y, 0)]], fmt=marker, ms=4,
                            capsize=2, lw=1, color=color, alpha=0.85)
            if target == "success":
                ax.set_ylim(-0.05, 1.05)
            ax.tick_params(labelsize=6)
            ax.set_xlabel(score, fontsize=7)
            if j == 0:
                ax.set_ylabel(("success" if target == "success" else "final distance (m)")
                              + f"\n{dom}", fontsize=7)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, marker=m, ls="", ms=5, label=e)
               for e, (c, m) in style.items()]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 8), fontsize=7,
               frameon=False)
    fig.suptitle("offline score (gap run, 95% interval) vs closed loop: success (95% Wilson) "
                 "and mean final distance (95% bootstrap over initial states)", fontsize=8)
    fig.tight_layout(rect=(0, 0.45 / fig.get_figheight(), 1, 1))
    return png_bytes(fig, dpi=100)


def _closed_loop_table(rec: ScoresStudyRecord) -> str:
    rows = []
    for s in rec.summary:
        rows.append({"encoder": esc(s["encoder"]), "domain": esc(s["domain"]),
                     "k/n": f"{s.get('successes', 0)}/{s.get('trials', 0)}",
                     "success [95% Wilson]": fmt_ci(s.get("success_rate"), s.get("wilson_lo"),
                                                    s.get("wilson_hi")),
                     "mean final distance (m)": fmt(s.get("final_distance")),
                     "drop from sim": fmt(s.get(SUCCESS_DROP))})
    df = pd.DataFrame(rows)
    # k/n and the Wilson cell sort by the success rate, not as text ("9/24" after "12/24")
    rate = [s.get("success_rate") for s in rec.summary]
    return table(df, table_id="study-closed-loop", raw_html_columns=list(df.columns),
                 sort_keys={"k/n": rate, "success [95% Wilson]": rate,
                            "mean final distance (m)": [s.get("final_distance")
                                                        for s in rec.summary],
                            "drop from sim": [s.get(SUCCESS_DROP) for s in rec.summary]},
                 caption="Each encoder's policies (all seeds) on the same initial states, "
                         "nominal settings: successes k of n episodes with the 95% Wilson "
                         "interval (seeds x episodes pooled as trials), the mean distance to "
                         "the target at the last step (m), and success(sim) - success(domain).")


def _correlation_table(rec: ScoresStudyRecord) -> str:
    by: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in rec.correlations:
        by.setdefault((r.domain, r.score, r.target), {})[r.statistic] = r
    rows = []
    for (dom, score, target), stats in by.items():
        cells = {"domain": esc(dom), "offline score": esc(score), "closed-loop target": esc(target)}
        for stat, label in (("pearson_r", "Pearson r"), ("spearman_rho", "Spearman rho"),
                            ("mmrv", "MMRV")):
            r = stats.get(stat)
            cells[f"{label} [95%]"] = "—" if r is None else fmt_ci(r.value, r.lo, r.hi)
        n = next(iter(stats.values())).n
        cells["encoders"] = str(n)
        rows.append(cells)
    df = pd.DataFrame(rows)
    n_boot = next((r.n_boot for r in rec.correlations), 0)
    return table(df, table_id="study-correlation", raw_html_columns=list(df.columns),
                 caption="Each offline score against each closed-loop target across encoders. "
                         f"Intervals: percentile, {n_boot} bootstrap replicates redrawing the "
                         "episodes (the same draw for every encoder) and each encoder's seeds; "
                         "the score is held at its point. MMRV orients the score (lower-is-"
                         "better scores negated) and the target (success up, distance and drop "
                         "down); 0 = the score orders the encoders as closed loop does. With "
                         "few encoders the intervals are wide: read them before the points.")


def render(db: Any) -> str | None:
    run_id = db.latest_run(RUN_KIND)
    if run_id is None:
        return None
    rec = read_scores_study(db, run_id)
    cfg = rec.config
    parts = [(f"<p>Run {esc(run_id)} (preset {esc(cfg.get('preset', '?'))}): "
             f"{len(set(rec.outcomes['encoder'])) if not rec.outcomes.empty else 0} "
             f"encoders x {len(cfg.get('seeds', []))} seed(s), a {esc(cfg.get('head', '?'))} head "
             f"trained on {esc(cfg.get('train_domain', '?'))} demonstrations, "
             f"{esc(cfg.get('eval_episodes', '?'))} initial states per domain; "
             f"{fmt(cfg.get('seconds'), 0)} s. Real-proxy frames are rendered by the simulator, "
             "not real data.</p>")]
    parts.append(_closed_loop_table(rec))
    png = _scatter(rec)
    if png is not None:
        parts.append(png_img(png, alt="offline score vs closed-loop success", width=1200))
    if rec.correlations:
        parts.append(_correlation_table(rec))
    if not np.isfinite([r.value for r in rec.correlations]).any():
        parts.append("<p>No correlation is defined: closed-loop performance (or the score) "
                     "did not vary across encoders.</p>")
    return "".join(parts)


register_section("study", anchor=ANCHOR, title=TITLE, kinds=(RUN_KIND,), order=58)(render)

__all__: list[Any] = ["ANCHOR", "TITLE", "render"]
