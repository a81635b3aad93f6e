"""Encoder sim-to-real gap: the DIS-vs-AS scatter of the reference's Fig. 4, and every score.

Built from the newest finished ``gap`` run of the results database (layout in
:mod:`realgap.jobs.records`). Two panels share the x axis, DIS (encoder-dis-as-framework.txt
III-C): the left one plots AS on real frames (III-D, the reference's y axis), the right one
the transfer AS(sim -> real) that a sim-trained policy lives by (DESIGN.md). As in Fig. 4
(section IV-A), colour = architecture family, marker = pre-training data, size = parameter
count; error bars are the run's bootstrap intervals. Random-init encoders are drawn hollow
and labelled ``[random-init]`` everywhere.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from realgap._plot import literal_text, png_bytes, subplots
from realgap.jobs.records import (
    BADGE,
    GAP_METRICS,
    METRIC_HELP,
    is_random_init,
    latest_gap_run,
    load_encoders,
    load_scores,
)
from realgap.report._html import esc, fmt, fmt_ci, png_img, table
from realgap.store import ResultsDB

ANCHOR = "gap"
TITLE = "Encoder sim-to-real gap (DIS, AS, transfer AS)"

_FAMILY_COLOURS = {"CNN": "#1f77b4", "Transformer": "#ff7f0e", "other": "#7f7f7f"}
_DATA_MARKERS = {"manipulation": "o", "general": "s", "task data (trained here)": "D", "none": "^"}


def family_of(meta: dict[str, Any]) -> str:
    """Architecture family bucket of Fig. 4: ``CNN``, ``Transformer`` or ``other``."""
    fam = str(meta.get("family", "")).lower()
    if any(w in fam for w in ("transformer", "vit", "swin")):
        return "Transformer"
    if any(w in fam for w in ("cnn", "resnet", "conv", "vgg", "efficientnet", "mobilenet")):
        return "CNN"
    return "other"


def data_kind_of(meta: dict[str, Any]) -> str:
    """Pre-training data bucket of Fig. 4 (circle = manipulation, square = general)."""
    data = str(meta.get("pretrain_data", "")).lower()
    training = str(meta.get("training", "")).lower()
    if is_random_init(meta) or data in ("", "none", "-"):
        return "none"
    if "sim" in data or "realgap" in data or "trained here" in training:
        return "task data (trained here)"
    if any(w in data for w in ("manip", "ego4d", "robot", "epic", "100doh", "something")):
        return "manipulation"
    return "general"


def display_name(name: str, meta: dict[str, Any]) -> str:
    """Encoder name with the ``[random-init]`` label when its weights are random."""
    return f"{name} [random-init]" if is_random_init(meta) else name


def _params(meta: dict[str, Any]) -> float:
    try:
        return max(float(meta.get("params_m") or 0.0), 0.0)
    except (TypeError, ValueError):
        return 0.0


def _wide(scores: pd.DataFrame) -> dict[str, dict[str, tuple[float, float, float, Any]]]:
    out: dict[str, dict[str, tuple[float, float, float, Any]]] = {}
    for r in scores.itertuples():
        out.setdefault(str(r.subject), {})[str(r.metric)] = (r.value, r.lo, r.hi, r.n)
    return out


@literal_text
def scatter_png(
    names: list[str],
    metas: dict[str, dict[str, Any]],
    wide: dict[str, dict[str, tuple[float, float, float, Any]]],
) -> bytes:
    """Two-panel PNG: DIS vs AS(real) and DIS vs AS(sim -> real), with interval error bars."""
    from matplotlib.lines import Line2D

    fig, axes = subplots(1, 2, figsize=(12.5, 5.2), sharex=True)
    panels = (("as_real", "AS on real frames (probe fit and scored on real episodes)"),
              ("as_transfer", "transfer AS(sim → real) (probe fit on sim, scored on real)"))
    for ax, (ymetric, ylabel) in zip(axes, panels):
        for i, name in enumerate(names, start=1):
            meta = metas.get(name, {})
            m = wide.get(name, {})
            if "dis" not in m or ymetric not in m:
                continue
            x, xlo, xhi, _ = m["dis"]
            y, ylo, yhi, _ = m[ymetric]
            if pd.isna(x) or pd.isna(y):
                continue
            colour = _FAMILY_COLOURS[family_of(meta)]
            marker = _DATA_MARKERS[data_kind_of(meta)]
            size = 60.0 + 6.0 * min(_params(meta), 150.0)
            xerr = None if pd.isna(xlo) or pd.isna(xhi) else [[x - xlo], [xhi - x]]
            yerr = None if pd.isna(ylo) or pd.isna(yhi) else [[y - ylo], [yhi - y]]
            ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="none", ecolor=colour, alpha=0.6,
                        capsize=3, lw=1.2, zorder=2)
            hollow = is_random_init(meta)
            ax.scatter([x], [y], s=size, marker=marker, zorder=3, linewidths=1.8,
                       facecolors="white" if hollow else colour, edgecolors=colour)
            # numbers, as in the reference's Fig. 4; the key is in the caption and table
            ax.annotate(str(i), (x, y), textcoords="offset points", xytext=(6, 5),
                        fontsize=9, fontweight="bold")
        ax.set_xlabel("DIS (domain invariance, ref. III-C) →")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].set_title("Fig. 4 of the reference: DIS vs AS")
    axes[1].set_title("DIS vs transfer AS (what a sim-trained policy lives by)")
    handles = [Line2D([], [], ls="", marker="o", color=c, label=f) for f, c in
               _FAMILY_COLOURS.items()]
    handles += [Line2D([], [], ls="", marker=mk, color="#444", mfc="none", label=f"pre-training: {d}")
                for d, mk in _DATA_MARKERS.items()]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8.5, frameon=False,
               bbox_to_anchor=(0.5, -0.08))
    fig.tight_layout()
    return png_bytes(fig)


def _left(html: str) -> str:
    # Text cells read left-aligned; the page's CSS right-aligns every cell for numbers.
    return f"<div style='text-align:left'>{html}</div>"


def _cell(est: tuple[float, float, float, Any] | None) -> str:
    if est is None:
        return "—"
    v, lo, hi, n = est
    lo = None if pd.isna(lo) else float(lo)
    hi = None if pd.isna(hi) else float(hi)
    v = float("nan") if pd.isna(v) else float(v)
    n_txt = "" if pd.isna(n) else f" <span class='ci'>n={int(n)}</span>"
    return fmt_ci(v, lo, hi) + n_txt


def render(db: ResultsDB) -> str | None:
    run_id = latest_gap_run(db)
    if run_id is None:
        return None
    metas = load_encoders(db, run_id)
    scores = load_scores(db, run_id)
    scores = scores[scores["metric"].isin(GAP_METRICS)]
    if scores.empty:
        return None
    wide = _wide(scores)
    names = [n for n in metas if n in wide] + [n for n in wide if n not in metas]

    def combined(n: str) -> float:
        v = wide[n].get("combined", (float("nan"),))[0]
        return -1.0 if pd.isna(v) else float(v)

    names.sort(key=combined, reverse=True)
    runs = db.runs("gap")
    cfg = json.loads(runs[runs.run_id == run_id]["config"].iloc[0] or "{}")
    n_boot = cfg.get("n_boot", "?")

    parts: list[str] = []
    parts.append(
        f"<p class='note'>Run <code>{esc(run_id)}</code>: {len(names)} encoder(s), sim domain "
        f"<b>{esc(cfg.get('sim_domain', 'sim'))}</b> vs real domain "
        f"<b>{esc(cfg.get('real_domain', 'real'))}</b>, camera <b>{esc(cfg.get('camera', ''))}</b>. "
        f"Intervals are 95% bootstrap intervals over episodes ({esc(n_boot)} resamples); "
        "n is the sample size behind each number.</p>"
    )
    if any(is_random_init(metas.get(n, {})) for n in names):
        parts.append("<p class='warn'>Encoders marked <b>[random-init]</b> have random weights: "
                     "they are baselines, not pretrained models.</p>")
    png = scatter_png(names, metas, wide)
    parts.append(
        "<figure id='gap-scatter'>" + png_img(png, alt="DIS vs AS scatter", cls="plot")
        + "<figcaption><b>Key:</b> " + " · ".join(
            f"{i} = {esc(display_name(n, metas.get(n, {})))}" for i, n in enumerate(names, 1))
        + ". Each point is an encoder (numbered as in the table). Colour = "
        "architecture family (CNN blue, transformer orange, other grey), marker = pre-training "
        "data (circle manipulation, square general, diamond task data trained by realgap, "
        "triangle none), size = parameter count; hollow = random-init. Error bars: 95% "
        "intervals. Top-right is best: invariant to the domain and informative about actions."
        "</figcaption></figure>"
    )
    rows = []
    for i, name in enumerate(names, start=1):
        meta = metas.get(name, {})
        badge = BADGE if is_random_init(meta) else ""
        row: dict[str, Any] = {
            "#": i,
            "encoder": _left(f"{esc(name)}{badge}"),
            "family": _left(esc(meta.get("family", ""))),
            "pre-training data": _left(esc(meta.get("pretrain_data", ""))),
            "params (M)": fmt(_params(meta), 1),
            "weights origin": _left(esc(meta.get("weights_origin", "unknown"))),
        }
        for m in GAP_METRICS:
            row[m] = _cell(wide[name].get(m))
        rows.append(row)
    df = pd.DataFrame(rows)
    raw = ["encoder", "family", "pre-training data", "params (M)", "weights origin", *GAP_METRICS]
    parts.append("<div style='overflow-x:auto'>" + table(
        df, table_id="gap-table", raw_html_columns=raw,
        caption="All scores of the run, ranked by combined score; click a header to sort. "
                "value [95% interval] n=sample size.") + "</div>")
    parts.append("<details><summary>What each column means</summary><ul>" + "".join(
        f"<li><b>{esc(m)}</b>: {esc(h)}</li>" for m, h in METRIC_HELP.items()) + "</ul></details>")
    n_runs = len(runs)
    if n_runs > 1:
        parts.append(f"<p class='note'>{n_runs} gap runs in this database; this section shows "
                     "the newest finished one (all are listed under Provenance).</p>")
    return "".join(parts)
