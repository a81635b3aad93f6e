"""Coverage: which real frames land where the simulated data never goes.

From the newest finished ``gap`` run (layout in :mod:`realgap.store.gap`): per encoder,
the fraction of real frames flagged outside the sim support (the glossary's "real samples
that land where simulated data never goes") with its interval and counts; the same fraction
broken down by recorded factor level; a table of EVERY flagged real frame (``episode``,
``step``, ``frame_id``, k-NN distance, conformal p-value); and thumbnails, one per episode,
of the flagged (else least covered) real frames beside their nearest sim frame.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from realgap.report._html import esc, fmt, fmt_ci, png_img, table
from realgap.report.sections import register_section
from realgap.store import ResultsDB
from realgap.store.gap import (
    BADGE,
    OUTSIDE_METRIC,
    WORST_ARTIFACT,
    is_random_init,
    latest_gap_run,
    load_encoders,
    load_flagged,
)
from realgap.store.gap import RUN_KIND as GAP_KIND

ANCHOR = "coverage"
TITLE = "Coverage: real frames outside sim support"


def _extra(extra: Any) -> dict[str, Any]:
    try:
        d = json.loads(extra or "{}")
    except json.JSONDecodeError:
        return {}
    return d if isinstance(d, dict) else {}


def _counts(value: Any, n: Any, extra: Any) -> str:
    """``k/n`` real frames outside support: counts from ``extra`` (``k``, ``n_frames``) when
    recorded, else the row's ``n`` (frames) and ``round(value * n)``."""
    ex = _extra(extra)
    k = None if ex.get("k") is None else int(ex["k"])
    if ex.get("n_frames") is not None:
        n = int(ex["n_frames"])
    if k is None and not pd.isna(n) and not pd.isna(value):
        k = round(float(value) * int(n))
    if k is None or pd.isna(n):
        return ""
    return f" <span class='ci'>{k}/{int(n)}</span>"


def render(db: ResultsDB) -> str | None:
    run_id = latest_gap_run(db)
    if run_id is None:
        return None
    metas = load_encoders(db, run_id)
    s = db.scores(run_id)
    cov = s[s["metric"] == OUTSIDE_METRIC].copy()
    if cov.empty:
        return None
    cov["grp"] = cov["grp"].fillna("")
    head = cov[cov["grp"] == ""]
    parts: list[str] = [(
        "<p class='note'>A real frame is <i>flagged outside sim support</i> when its distance to "
        "its k-th nearest sim frame is larger than held-out sim frames' distances to the rest of "
        "sim at the run's level (a conformal p-value below alpha; the space is fitted on sim "
        "frames only, so a real outlier cannot stretch it). Lower is better; counts are "
        "flagged/total real frames, intervals are 95% bootstrap intervals over episodes.</p>"
    )]
    rows = []
    for r in head.itertuples():
        meta = metas.get(str(r.subject), {})
        label = esc(r.subject) + (BADGE
                                  if is_random_init(meta) else "")
        rows.append({
            "encoder": label,
            "outside sim support": fmt_ci(r.value, None if pd.isna(r.lo) else r.lo,
                                          None if pd.isna(r.hi) else r.hi)
            + _counts(r.value, r.n, r.extra),
        })
    parts.append(table(pd.DataFrame(rows), table_id="coverage-table",
                       raw_html_columns=["encoder", "outside sim support"],
                       caption="Fraction of real frames outside sim support per encoder."))

    by = cov[cov["grp"] != ""]
    if by.empty:
        parts.append("<p class='note'>No breakdown by factor: the real frames record no factor "
                     "(or task) with 2 to 12 distinct levels.</p>")
    else:
        by = by.assign(factor=by["grp"].str.split("=", n=1).str[0],
                       level=by["grp"].str.split("=", n=1).str[1])
        subjects = list(dict.fromkeys(by["subject"]))
        frows = []
        for (factor, level), g in by.groupby(["factor", "level"], sort=True):
            row: dict[str, Any] = {"factor": esc(factor), "level": esc(level)}
            for subj in subjects:
                gg = g[g["subject"] == subj]
                row[subj] = ("—" if gg.empty else
                             fmt(float(gg["value"].iloc[0]))
                             + _counts(gg["value"].iloc[0], gg["n"].iloc[0], gg["extra"].iloc[0]))
            frows.append(row)
        parts.append("<h3>By factor</h3>" + table(
            pd.DataFrame(frows), table_id="coverage-factor-table",
            raw_html_columns=["factor", "level", *subjects],
            caption="Fraction (outside/total) of real frames outside sim support at each "
                    "recorded factor level of the real frames."))

    flagged = load_flagged(db, run_id)
    if flagged:
        parts.append("<h3>Flagged real frames</h3>")
        for subj, frames in flagged.items():
            if not frames:
                parts.append(f"<p class='note'><b>{esc(subj)}</b>: no real frame flagged.</p>")
                continue
            df = pd.DataFrame([{"episode": f.get("episode"), "step": f.get("step"),
                                "frame_id": f.get("frame_id"),
                                "k-NN distance": fmt(f.get("knn_distance")),
                                "p-value": fmt(f.get("p_value"), 4)} for f in frames])
            parts.append(f"<details><summary><b>{esc(subj)}</b>: {len(frames)} flagged frame(s) "
                         f"in {df['episode'].nunique()} episode(s)</summary>"
                         + table(df, table_id=f"flagged-{esc(subj)}",
                                 caption="Every flagged real frame, lowest p-value first.")
                         + "</details>")

    arts = db.artifacts(run_id)
    arts = arts[arts["name"] == WORST_ARTIFACT]
    if not arts.empty:
        parts.append("<h3>Flagged real frames, one per episode</h3><p class='note'>Each "
                     "thumbnail: the real frame (left) and its nearest sim frame in the encoder's "
                     "space (right); one frame per episode (its lowest p-value), flagged frames "
                     "when there are any, else the least covered frames (marked 'not flagged')."
                     "</p>")
        for subj, g in arts.groupby("subject", sort=False):
            thumbs = []
            for a in g.itertuples():
                m = json.loads(a.meta or "{}")
                flag = "" if m.get("flagged", True) else " · not flagged"
                score = (f"p={fmt(m.get('p_value'), 4)}" if "p_value" in m
                         else f"score {fmt(m.get('score'))}")
                cap = (f"#{esc(m.get('rank', '?'))} real <code>{esc(m.get('frame_id', '?'))}</code>"
                       f" (episode {esc(m.get('episode', '?'))}, step {esc(m.get('step', '?'))})"
                       f" · nearest sim <code>{esc(m.get('nearest_sim_frame_id', '?'))}</code>"
                       f" · {score}{flag}")
                thumbs.append(f"<figure style='display:inline-block;margin:4px'>"
                              f"{png_img(bytes(a.data), alt='real vs nearest sim frame')}"
                              f"<figcaption>{cap}</figcaption></figure>")
            parts.append(f"<h4>{esc(subj)}</h4><div class='thumbs'>{''.join(thumbs)}</div>")
    return "".join(parts)


register_section("coverage", anchor=ANCHOR, title=TITLE, kinds=(GAP_KIND,), order=30)(render)
