"""Saliency: where each encoder looks, on the same sim and real frames side by side.

From the newest finished ``gap`` run: one grid per encoder (artifact ``saliency``, made by
:mod:`realgap.explain`), captioned with the method and the target, which is the action
probe's prediction (an embedding has no class; encoder-dis-as-framework.txt III-E and
IV-B). Encoders without gradient saliency (``pixels``) are listed with the reason instead of
a picture.
"""

from __future__ import annotations

import json

from realgap.report._html import esc, png_img
from realgap.report.sections import register_section
from realgap.store import ResultsDB
from realgap.store.gap import RUN_KIND as GAP_KIND
from realgap.store.gap import SALIENCY_ARTIFACT, is_random_init, latest_gap_run, load_encoders

ANCHOR = "saliency"
TITLE = "Saliency: where each encoder looks"


def render(db: ResultsDB) -> str | None:
    run_id = latest_gap_run(db)
    if run_id is None:
        return None
    metas = load_encoders(db, run_id)
    arts = db.artifacts(run_id)
    arts = arts[arts["name"] == SALIENCY_ARTIFACT]
    missing = {n: m["saliency"] for n, m in metas.items() if m.get("saliency")}
    if arts.empty and not missing:
        return None
    parts = [("<p class='note'>Rows pair the same simulator state rendered in the sim and the "
             "real domain (same <code>pair_id</code>): the frame, then the saliency heatmap "
             "overlaid. Saliency maps are a qualitative check (ref. III-E), not a score.</p>")]
    for a in arts.itertuples():
        m = json.loads(a.meta or "{}")
        meta = metas.get(str(a.subject), {})
        label = esc(a.subject) + (" [random-init]" if is_random_init(meta) else "")
        caption = esc(m.get("caption", ""))
        parts.append(
            f"<figure class='saliency'><h3>{label}</h3>"
            f"{png_img(bytes(a.data), alt=f'saliency grid of {a.subject}')}"
            f"<figcaption>{caption}</figcaption></figure>"
        )
    for name, why in missing.items():
        parts.append(f"<p class='note'><b>{esc(name)}</b>: {esc(why)}</p>")
    return "".join(parts)


register_section("saliency", anchor=ANCHOR, title=TITLE, kinds=(GAP_KIND,), order=50)(render)
