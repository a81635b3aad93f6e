"""Embedding map: where each encoder puts the sim and the real frames (2-D, hover for the frame).

Per encoder, the newest gap run's PCA-fitted-on-sim and UMAP maps as inline SVG; real
frames flagged as outside sim support are drawn as red crosses. Hovering a point shows
its thumbnail, domain, episode, step and factors (the page's one script handles it; the
frame data travel in a JSON block, so the file stays self-contained and works offline).
"""

from __future__ import annotations

import json

import numpy as np

from realgap.report._html import esc
from realgap.report.sections import register_section
from realgap.store import ResultsDB
from realgap.store.embedding_map import RunMaps, read_run_maps
from realgap.store.gap import RUN_KIND as GAP_KIND

ANCHOR = "embedding-map"
TITLE = "Embedding map: sim and real frames"

#: Panel size in CSS pixels (two panels side by side fit a 1400 px window).
WIDTH, HEIGHT, PAD = 430, 330, 14

#: Colours for the first two domains in frame order (sim first), then a neutral one.
DOMAIN_COLOURS = ("#2f6db5", "#e08a1e", "#6b7280")
FLAG_COLOUR = "#c81e1e"

_METHOD_TITLE = {"pca": "PCA fitted on sim", "umap": "UMAP (pooled)"}


def _scale(xy: np.ndarray) -> np.ndarray:
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    unit = (xy - lo) / span
    return np.c_[PAD + unit[:, 0] * (WIDTH - 2 * PAD), HEIGHT - PAD - unit[:, 1] * (HEIGHT - 2 * PAD)]


def _panel(xy: np.ndarray, colour_of: list[str], flagged: np.ndarray, title: str, enc: str) -> str:
    pts = _scale(xy)
    marks = []
    # sim first so real frames (and flagged ones, last) are drawn on top
    order = sorted(range(len(pts)), key=lambda i: (colour_of[i] != DOMAIN_COLOURS[0], flagged[i]))
    for i in order:
        x, y = pts[i]
        if flagged[i]:
            marks.append(f'<path data-f="{i}" d="M{x - 4:.1f},{y - 4:.1f}l8,8m0,-8l-8,8" '
                         f'stroke="{FLAG_COLOUR}" stroke-width="2.2"/>')
        else:
            marks.append(f'<circle data-f="{i}" cx="{x:.1f}" cy="{y:.1f}" r="3" '
                         f'fill="{colour_of[i]}" fill-opacity="0.65"/>')
    return (f'<svg class="emap" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'role="img" aria-label="{esc(title)} of {esc(enc)}">'
            f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#fbfbfc" stroke="#dde1e7"/>'
            f'<text x="8" y="16" font-size="12" fill="#374151">{esc(title)}</text>'
            f'{"".join(marks)}</svg>')


def _legend(domains: list[str], colours: dict[str, str], any_flag: bool) -> str:
    items = [f'<span class="emap-key"><svg width="12" height="12"><circle cx="6" cy="6" r="5" '
             f'fill="{colours[d]}"/></svg> {esc(d)}</span>' for d in domains]
    if any_flag:
        items.append(f'<span class="emap-key"><svg width="12" height="12"><path d="M2,2l8,8m0,-8l-8,8" '
                     f'stroke="{FLAG_COLOUR}" stroke-width="2"/></svg> real frame outside sim '
                     "support (flagged by coverage)</span>")
    return f'<p class="emap-legend">{" ".join(items)}</p>'


def _frame_data(maps: RunMaps) -> str:
    data = {"frames": [{"id": f.frame_id, "d": f.domain, "e": f.episode, "s": f.step,
                        "f": {k: v for k, v in f.factors.items() if v is not None}}
                       for f in maps.frames],
            "thumbs": maps.thumbs}
    # '<' escaped so no frame label can close the JSON block
    return json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")


def render(db: ResultsDB) -> str | None:
    run_id = db.latest_run(GAP_KIND)
    if run_id is None:
        return None
    maps = read_run_maps(db, run_id)
    if maps is None or not maps.encoders:
        return None
    domains = list(dict.fromkeys(f.domain for f in maps.frames))
    colours = {d: DOMAIN_COLOURS[min(i, len(DOMAIN_COLOURS) - 1)] for i, d in enumerate(domains)}
    colour_of = [colours[f.domain] for f in maps.frames]
    any_flag = any(bool(e.flagged.any()) for e in maps.encoders)
    counts = {d: sum(f.domain == d for f in maps.frames) for d in domains}
    parts = [
        '<p class="note">Each point is one frame embedded by the encoder; hover a point to see '
        "the frame, its episode, step and randomization factors. Real frames that form a cluster "
        "of their own, away from the sim cloud, are frames the encoder tells apart from anything "
        "simulated. Frames shown: "
        + ", ".join(f"{counts[d]} {esc(d)}" for d in domains)
        + " (spread evenly over episodes).</p>",
        _legend(domains, colours, any_flag),
    ]
    for enc in maps.encoders:
        panels = "".join(_panel(xy, colour_of, enc.flagged, _METHOD_TITLE.get(m, m), enc.encoder)
                         for m, _, xy in enc.maps)
        notes = " ".join(esc(note) for _, note, _ in enc.maps)
        n_flag = int(enc.flagged.sum())
        parts.append(f'<figure class="emap-fig" data-encoder="{esc(enc.encoder)}">'
                     f"<h3>{esc(enc.encoder)}</h3><div class='emap-row'>{panels}</div>"
                     f"<figcaption>{n_flag} of the real frames shown are flagged. {notes}"
                     "</figcaption></figure>")
    parts.append('<div id="emap-tip" class="emap-tip" hidden></div>')
    parts.append(f'<script type="application/json" id="emap-data">{_frame_data(maps)}</script>')
    return "".join(parts)


register_section("embedding_map", anchor=ANCHOR, title=TITLE, kinds=(GAP_KIND,), order=40)(render)
