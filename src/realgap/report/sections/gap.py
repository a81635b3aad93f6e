"""Encoder sim-to-real gap: the DIS-vs-AS scatter of the reference's Fig. 4, and every score.

Built from the newest finished ``gap`` run of the results database (layout in
:mod:`realgap.store.gap`). Two panels share the x axis, DIS (encoder-dis-as-framework.txt
III-C): the left one plots AS on real frames (III-D, the reference's y axis), the right one
the transfer AS(sim -> real) that a sim-trained policy lives by (DESIGN.md). As in Fig. 4
(section IV-A), colour = architecture family, marker = pre-training data, size = parameter
count; error bars are the run's bootstrap intervals (drawn as segments: never widened
around the point). Random-init encoders are drawn hollow and labelled ``[random-init]``
everywhere.

Below the figure: the ranking with ties (shared ranks ``=k``, the encoders each one cannot
be told apart from), the null-calibration table (each two-sample score's permutation p-value
and null-standardized effect), the spaces the scores were computed in with their retained
variance, the run's warnings, and every score with its interval and bias flag.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from realgap._plot import literal_text, png_bytes, subplots
from realgap.report._html import esc, fmt, fmt_ci, png_img, table
from realgap.report.sections import register_section
from realgap.store import ResultsDB
from realgap.store.gap import (
    BADGE,
    EXTRA_METRICS,
    GAP_METRICS,
    METRIC_HELP,
    OUTSIDE_METRIC,
    is_random_init,
    latest_gap_run,
    load_encoders,
    load_ranking,
    load_scores,
)
from realgap.store.gap import RUN_KIND as GAP_KIND

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
            # Intervals are drawn as segments, not as errors around the point: they are never
            # widened to contain it, and a point outside its interval (bias) must show as such.
            if not (pd.isna(xlo) or pd.isna(xhi)):
                ax.hlines(y, xlo, xhi, colors=colour, alpha=0.6, lw=1.2, zorder=2)
            if not (pd.isna(ylo) or pd.isna(yhi)):
                ax.vlines(x, ylo, yhi, colors=colour, alpha=0.6, lw=1.2, zorder=2)
            hollow = is_random_init(meta)
            ax.scatter([x], [y], s=size, marker=marker, zorder=3, linewidths=1.8,
                       facecolors="white" if hollow else colour, edgecolors=colour)
            # numbers, as in the reference's Fig. 4; the key is in the caption and table
            ax.annotate(str(i), (x, y), textcoords="offset points", xytext=(6, 5),
                        fontsize=9, fontweight="bold")
        ax.set_xlabel("DIS (domain invariance, ref. III-C) →")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].set_title("DIS vs AS, as in Fig. 4 of \"Bridging the Sim2Real Gap\"", fontsize=10)
    axes[1].set_title("DIS vs transfer AS (what a sim-trained policy lives by)")
    handles = [Line2D([], [], ls="", marker="o", color=c, label=f) for f, c in
               _FAMILY_COLOURS.items()]
    handles += [Line2D([], [], ls="", marker=mk, color="#444", mfc="none", label=f"pre-training: {d}")
                for d, mk in _DATA_MARKERS.items()]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8.5, frameon=False,
               bbox_to_anchor=(0.5, -0.08))
    fig.tight_layout()
    return png_bytes(fig)


def _origin(text: str, limit: int = 80) -> str:
    """The weights origin as a table cell: a long one (a BC encoder lists every training
    episode) is cut at ``episodes=`` or ``limit`` characters, whole text on hover."""
    if len(text) <= limit:
        return esc(text)
    head = text.split(" episodes=")[0] if " episodes=" in text else text[:limit]
    return f"<span title='{esc(text)}'>{esc(head)} …</span>"


def _left(html: str) -> str:
    # Text cells read left-aligned; the page's CSS right-aligns every cell for numbers.
    return f"<div style='text-align:left'>{html}</div>"


def _cell(est: tuple[float, float, float, Any] | None, extra: dict[str, Any] | None = None) -> str:
    if est is None:
        return "—"
    v_raw, lo_raw, hi_raw, n = est
    lo = None if pd.isna(lo_raw) else float(lo_raw)
    hi = None if pd.isna(hi_raw) else float(hi_raw)
    v = float("nan") if pd.isna(v_raw) else float(v_raw)
    n_txt = "" if pd.isna(n) else f" <span class='ci'>n={int(n)}</span>"
    bias = ""
    if extra and extra.get("bias"):
        bias = (" <span class='bias' title='the point lies outside its bootstrap interval: "
                "the statistic is biased at this sample size (reported, not hidden)'>bias</span>")
    return fmt_ci(v, lo, hi) + n_txt + bias


def _extras(scores: pd.DataFrame) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for r in scores.itertuples():
        try:
            d = json.loads(getattr(r, "extra", None) or "{}")
        except (TypeError, json.JSONDecodeError):
            d = {}
        out[(str(r.subject), str(r.metric))] = d if isinstance(d, dict) else {}
    return out


def _p_cell(ex: dict[str, Any]) -> str:
    if ex.get("p_value") is None:
        return "—"
    eff = ex.get("effect")
    eff_txt = "" if eff is None else f" <span class='ci'>effect {float(eff):+.1f} sd</span>"
    return f"p={float(ex['p_value']):.3g}{eff_txt}"


#: Columns of the ranking table (the rest of the scores are in the null table and details).
RANK_COLUMNS: tuple[str, ...] = ("combined", "dis_cal", "as_transfer", "as_sim", "as_real",
                                 "dis_paper", "c2st_acc", OUTSIDE_METRIC)


def render(db: ResultsDB) -> str | None:
    run_id = latest_gap_run(db)
    if run_id is None:
        return None
    metas = load_encoders(db, run_id)
    all_scores = load_scores(db, run_id)
    scores = all_scores[all_scores["metric"].isin(GAP_METRICS)]
    if scores.empty:
        return None
    wide = _wide(all_scores)
    extras = _extras(all_scores)
    ranking = load_ranking(db, run_id)
    ranked = [r["encoder"] for r in ranking if r["encoder"] in wide]
    names = ranked + [n for n in metas if n in wide and n not in ranked] + \
        [n for n in wide if n not in metas and n not in ranked]
    rank_of = {r["encoder"]: r for r in ranking}
    runs = db.runs(GAP_KIND)
    cfg = json.loads(runs[runs.run_id == run_id]["config"].iloc[0] or "{}")
    n_boot = cfg.get("n_boot", "?")
    n_perm = cfg.get("n_perm", "?")

    parts: list[str] = []
    parts.append(
        f"<p class='note'>Run <code>{esc(run_id)}</code>: {len(names)} encoder(s), sim domain "
        f"<b>{esc(cfg.get('sim_domain', 'sim'))}</b> vs real domain "
        f"<b>{esc(cfg.get('real_domain', 'real'))}</b>, camera <b>{esc(cfg.get('camera', ''))}</b>. "
        f"Intervals are 95% bootstrap intervals over episodes ({esc(n_boot)} resamples, the same "
        "draws for every encoder); n is the number of episodes behind each number. p-values come "
        f"from a permutation null ({esc(n_perm)} relabellings of whole episodes).</p>"
    )
    space = next((metas[n].get("space") for n in names if metas.get(n, {}).get("space")), None)
    if space:
        common = space.get("common", {})
        parts.append(
            "<p class='note'>Spaces: the two-sample scores (centroid distance, DIS, calibrated DIS, "
            f"MMD, Fréchet, C2ST) of every encoder use the same common space: the leading "
            f"<b>{esc(common.get('k', '?'))}</b> components of a pooled PCA, min-max scaled. "
            "Retained variance per encoder: " + ", ".join(
                f"{esc(n)} {fmt(metas.get(n, {}).get('space', {}).get('common', {}).get('retained_variance'))}"
                for n in names) + ". <code>dis_paper</code> is the reference's DIS (PCA to "
            "min(384, N-1, D) per encoder; shown, not ranked). Coverage is fitted on sim frames "
            "only; the action probes read the raw embeddings, cross-fitted over episodes.</p>")
    warns = sorted({w for n in names for w in metas.get(n, {}).get("warnings", [])})
    if warns:
        parts.append("<p class='warn'>" + "<br>".join(esc(w) for w in warns) + "</p>")
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
        "intervals. x = DIS in the run's common space. Top-right is best: invariant to the "
        "domain and informative about actions.</figcaption></figure>"
    )
    ranks = [rank_of[n]["rank"] if n in rank_of else None for n in names]
    rows = []
    for i, name in enumerate(names, start=1):
        meta = metas.get(name, {})
        badge = BADGE if is_random_init(meta) else ""
        rk = ranks[i - 1]
        shared = rk is not None and ranks.count(rk) > 1
        tied = rank_of.get(name, {}).get("tied_with", [])
        row: dict[str, Any] = {
            "rank": "—" if rk is None else (f"={rk}" if shared else str(rk)),
            "#": i,
            "encoder": _left(f"{esc(name)}{badge}"),
            "tied with": _left(esc(", ".join(tied)) or "—"),
        }
        for m in RANK_COLUMNS:
            row[m] = _cell(wide[name].get(m), extras.get((name, m)))
        floor = wide[name].get("as_sim_floor")
        ceil = wide[name].get("as_sim_ceiling")
        row["as_sim floor / ceiling"] = (fmt(None if floor is None else float(floor[0])) + " / "
                                         + fmt(None if ceil is None else float(ceil[0])))
        row["family"] = _left(esc(meta.get("family", "")))
        row["weights origin"] = _left(_origin(str(meta.get("weights_origin", "unknown"))))
        row["scored sim"] = _left(esc(meta.get("scored_sim", "all sim episodes")))
        rows.append(row)
    df = pd.DataFrame(rows)
    raw = ["encoder", "tied with", *RANK_COLUMNS, "family", "weights origin", "scored sim"]
    parts.append("<div style='overflow-x:auto'>" + table(
        df, table_id="gap-table", raw_html_columns=raw,
        caption="Ranking by the combined score (harmonic mean of calibrated DIS and transfer AS). "
                "Encoders whose paired bootstrap difference interval (same resampled episodes) "
                "contains 0 share a rank (=k) and are listed under 'tied with'. "
                "value [95% interval] n=episodes; 'bias' = point outside its interval.") + "</div>")

    nrows = []
    for name in names:
        row = {"encoder": _left(esc(name))}
        for m in NULL_COLUMNS:
            est = wide[name].get(m)
            row[m] = "—" if est is None else (fmt(None if pd.isna(est[0]) else float(est[0]))
                                              + " " + _p_cell(extras.get((name, m), {})))
        nrows.append(row)
    parts.append("<h3>Null calibration</h3>" + table(
        pd.DataFrame(nrows), table_id="gap-null-table", raw_html_columns=["encoder", *NULL_COLUMNS],
        caption="Each two-sample score against its permutation null (domain labels shuffled "
                "between whole episodes): p-value and the null-standardized effect "
                "(score - null mean) / null sd. A small p means sim and real differ beyond what "
                "relabelling episodes gives; DIS-type scores test for small values."))
    drows = []
    for name in names:
        row = {"encoder": _left(esc(name))}
        for m in DETAIL_COLUMNS:
            row[m] = _cell(wide[name].get(m), extras.get((name, m)))
        drows.append(row)
    parts.append("<details><summary>All scores</summary>" + table(
        pd.DataFrame(drows), table_id="gap-detail-table",
        raw_html_columns=["encoder", *DETAIL_COLUMNS],
        caption="Every score of the run: value [95% interval] n=episodes.") + "</details>")
    parts.append("<details><summary>What each column means</summary><ul>" + "".join(
        f"<li><b>{esc(m)}</b>: {esc(h)}</li>" for m, h in METRIC_HELP.items()) + "</ul></details>")
    n_runs = len(runs)
    if n_runs > 1:
        parts.append(f"<p class='note'>{n_runs} gap runs in this database; this section shows "
                     "the newest finished one (all are listed under Provenance).</p>")
    return "".join(parts)


#: Scores shown with their permutation null.
NULL_COLUMNS: tuple[str, ...] = ("centroid_distance", "dis", "dis_cal", "dis_paper", "mmd", "fd",
                                 "c2st_acc")
#: Every score, for the details table.
DETAIL_COLUMNS: tuple[str, ...] = GAP_METRICS + EXTRA_METRICS


register_section("gap", anchor=ANCHOR, title=TITLE, kinds=(GAP_KIND,), order=20)(render)
