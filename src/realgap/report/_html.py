"""Small HTML helpers shared by report sections: escaping, images, sortable tables.

Everything user-supplied (encoder names, task labels, file paths, config values) goes
through :func:`esc`. Figures are embedded as base64 PNGs so the page is self-contained.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd


def esc(value: Any) -> str:
    """HTML-escape any value (quotes included)."""
    return html.escape(str(value), quote=True)


def png_img(data: bytes, alt: str = "", width: int | None = None, cls: str = "") -> str:
    """An ``<img>`` tag embedding PNG bytes."""
    b64 = base64.b64encode(data).decode("ascii")
    w = f' width="{int(width)}"' if width else ""
    c = f' class="{esc(cls)}"' if cls else ""
    return f'<img src="data:image/png;base64,{b64}" alt="{esc(alt)}"{w}{c}>'


def fmt(x: Any, digits: int = 3) -> str:
    """Format a number for a table cell ('—' for missing)."""
    if x is None:
        return "—"
    if isinstance(x, float):
        if math.isnan(x):
            return "—"
        return f"{x:.{digits}f}"
    return esc(x)


def fmt_ci(value: Any, lo: Any, hi: Any, digits: int = 3) -> str:
    """``value [lo, hi]`` with missing parts shown as '—'."""
    if lo is None or hi is None or (isinstance(lo, float) and math.isnan(lo)):
        return fmt(value, digits)
    return f"{fmt(value, digits)} <span class='ci'>[{fmt(lo, digits)}, {fmt(hi, digits)}]</span>"


def table(
    df: pd.DataFrame,
    *,
    table_id: str,
    sortable: bool = True,
    raw_html_columns: Sequence[str] = (),
    caption: str = "",
    sort_keys: Mapping[str, Sequence[Any]] | None = None,
) -> str:
    """A ``<table>`` from a DataFrame. Cells are escaped except ``raw_html_columns``
    (which the caller has built from escaped parts). Sortable tables sort on a header click;
    each cell carries ``data-sort`` with its raw value so numbers sort numerically, or, for a
    column in ``sort_keys`` (column -> one value per row), that value (an HTML cell such as
    ``0.50 [0.29, 0.71]`` or ``12/24`` sorts by the rate it shows)."""
    cls = "sortable" if sortable else ""
    head = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
    rows = []
    for i, (_, r) in enumerate(df.iterrows()):
        cells = []
        for c in df.columns:
            v = r[c]
            shown = str(v) if c in raw_html_columns else fmt(v)
            if sort_keys is not None and c in sort_keys:
                v = sort_keys[c][i]
                v = float("nan") if v is None else v
            key = v if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)
            if isinstance(key, float) and math.isnan(key):
                key = ""
            cells.append(f'<td data-sort="{esc(key)}">{shown}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return (
        f'<table id="{esc(table_id)}" class="{cls}">{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:22px} header p{margin:4px 0 0;color:#c5cad3;font-size:13px}
nav{padding:8px 32px;background:#e9ecf1;font-size:14px} nav a{margin-right:16px;color:#2a4d8f}
main{padding:8px 32px 48px;max-width:1300px}
section{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:16px 22px;margin:18px 0}
h2{margin-top:0;font-size:19px} h3{font-size:15px;margin-bottom:6px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #dde1e7;padding:4px 8px;text-align:right}
td{max-width:240px;overflow-wrap:anywhere} table{max-width:100%}
th{background:#f0f2f5;cursor:pointer;user-select:none} td:first-child,th:first-child{text-align:left}
table.sortable th:after{content:" \\2195";color:#9aa3b1}
caption{caption-side:bottom;text-align:left;color:#5b6472;font-size:12px;padding-top:4px}
.ci{color:#6b7280;font-size:11px} .bias{color:#9a3412;font-size:11px;font-weight:600;white-space:nowrap} .note{color:#5b6472;font-size:13px}
.warn{background:#fff4e0;border-left:4px solid #e8a33d;padding:6px 10px;font-size:13px}
figure{margin:10px 0} figcaption{color:#5b6472;font-size:12px;max-width:900px}
img{max-width:100%} .thumbs img{margin:2px;border:1px solid #ccd}
.verdict-pass{color:#166534;font-weight:600} .verdict-fail{color:#9a3412;font-weight:600}
pre{background:#f0f2f5;padding:8px;font-size:12px;overflow-x:auto}
.emap-row{display:flex;flex-wrap:wrap;gap:10px} .emap-legend{font-size:13px}
.emap-key{margin-right:14px;white-space:nowrap} svg.emap [data-f]{cursor:crosshair}
.emap-tip{position:fixed;z-index:10;background:#fff;border:1px solid #9aa3b1;border-radius:4px;
 padding:6px;font-size:12px;box-shadow:0 2px 8px rgba(0,0,0,.2);pointer-events:none;max-width:260px}
.emap-tip img{display:block;width:128px;image-rendering:pixelated;margin-bottom:4px}
"""

SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th, i){
    th.addEventListener('click', function(){
      var body = t.tBodies[0]; var rows = Array.prototype.slice.call(body.rows);
      var asc = th.getAttribute('data-dir') !== 'asc'; th.setAttribute('data-dir', asc ? 'asc' : 'desc');
      rows.sort(function(a, b){
        var x = a.cells[i].getAttribute('data-sort'), y = b.cells[i].getAttribute('data-sort');
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
        return asc ? c : -c;
      });
      rows.forEach(function(r){ body.appendChild(r); });
    });
  });
});
"""

MAP_JS = """
(function(){
  var blob = document.getElementById('emap-data'), tip = document.getElementById('emap-tip');
  if (!blob || !tip) return;
  var data = JSON.parse(blob.textContent);
  function show(ev){
    var i = ev.target.getAttribute('data-f'); if (i === null) return;
    var f = data.frames[+i]; tip.textContent = '';
    var img = document.createElement('img'); img.alt = 'frame ' + f.id;
    img.src = 'data:image/jpeg;base64,' + data.thumbs[+i]; tip.appendChild(img);
    var lines = [f.d + ' \u00b7 episode ' + f.e + ' \u00b7 step ' + f.s, 'frame ' + f.id];
    Object.keys(f.f).forEach(function(k){ lines.push(k + ': ' + JSON.stringify(f.f[k])); });
    lines.forEach(function(t){ var d = document.createElement('div'); d.textContent = t; tip.appendChild(d); });
    tip.hidden = false;
    tip.style.left = Math.min(ev.clientX + 14, window.innerWidth - 280) + 'px';
    tip.style.top = Math.min(ev.clientY + 14, window.innerHeight - 240) + 'px';
  }
  document.querySelectorAll('svg.emap').forEach(function(svg){
    svg.addEventListener('mouseover', show);
    svg.addEventListener('mouseleave', function(){ tip.hidden = true; });
  });
})();
"""


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str, str]]) -> str:
    """The whole page; ``sections`` are ``(anchor, heading, body_html)``."""
    nav = "".join(f'<a href="#{esc(a)}">{esc(h)}</a>' for a, h, _ in sections)
    body = "".join(
        f'<section id="{esc(a)}"><h2>{esc(h)}</h2>{b}</section>' for a, h, b in sections
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header>"
        f"<nav>{nav}</nav><main>{body}</main><script>{SORT_JS}{MAP_JS}</script></body></html>"
    )
