"""Contact sheet: a PNG grid that shows what a generated FrameSet looks like, at a glance.

Each cell is one simulator state (one ``pair_id``): its frames in every domain side by
side (``sim | sim-nominal | real-proxy`` for the demo), a header naming the task, episode
and step, and a caption with the randomization values that produced the ``sim`` frame
(background id, light intensity and colour, camera offset, ...). Cells are picked evenly
over tasks and episodes, and within an episode at different steps, so the sheet shows the
variety of the set, not one episode's neighbouring frames.

Sets without pair ids (converted real datasets) get one row of frames per domain instead.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from realgap._plot import figure, literal_text, save_png
from realgap.errors import ConfigError, DataError

__all__ = ["contact_sheet", "format_factors", "pick_pairs", "varying_factors"]

#: Preferred left-to-right order of domains in a cell; others follow alphabetically.
_DOMAIN_ORDER = ("sim", "sim-nominal", "real-proxy", "real")
#: Keys of a frame's factors that are bookkeeping, not randomization values.
_HIDDEN_KEYS = ("render_domain",)


def _ordered_domains(domains: Sequence[str]) -> list[str]:
    rank = {d: i for i, d in enumerate(_DOMAIN_ORDER)}
    return sorted(domains, key=lambda d: (rank.get(d, len(rank)), d))


def _fmt_value(v: Any) -> str:
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.2f}"
    if isinstance(v, (list, tuple)):
        if all(isinstance(x, (int, float, np.number)) and not isinstance(x, bool) for x in v):
            return "(" + ",".join(f"{float(x):.2f}".rstrip("0").rstrip(".") or "0"
                                  for x in v) + ")"
        return "[" + ",".join(_fmt_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return " ".join(f"{k}={_fmt_value(x)}" for k, x in v.items())
    return str(v)


def _num(x: Any, scale: float = 1.0, nd: int = 2) -> str:
    text = f"{float(x) * scale:.{nd}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _vec(v: Any, scale: float = 1.0, nd: int = 1) -> str:
    return "(" + ",".join(_num(x, scale, nd) for x in v) + ")"


def _summary(key: str, val: Any) -> str:
    """One short line for a known factor (raises on an unexpected layout)."""
    if key == "BG":
        return "tex " + " ".join(f"{m}={int(v['texture'])}" for m, v in val.items())
    if key == "LT":
        return "intensity " + " ".join(f"{n}={float(v['intensity']):.2f}" for n, v in val.items())
    if key == "CP":
        return f"dpos {_vec(val['dpos'], 100)} cm  drot {_vec(val['drot'], 57.29578)} deg"
    if key == "TH":
        return f"dz {float(val['dz']) * 100:+.1f} cm"
    if key == "TD":
        return f"{len(val['objects'])} objects"
    if key == "PHYS":
        from realgap.sim.physics import PhysicsSetting

        return PhysicsSetting.from_dict(val).label()
    raise KeyError(key)


def format_factors(factors: dict[str, Any], keys: Sequence[str] | None = None,
                   width: int = 64) -> str:
    """Human-readable factor values, one factor per line, wrapped at ``width`` chars.

    Known factors get a short summary (BG texture ids, LT intensities, CP offsets in cm
    and degrees, TH in cm, TD object count, PHYS scales); others are printed flat.
    ``keys`` restricts the lines to those factors (e.g. the ones that vary in the set).

    >>> format_factors({"BG": {"wall": {"texture": 3, "tint": [1, 1, 1]}}, "X": 0.7123})
    'BG: tex wall=3\nX: 0.71'
    """
    lines: list[str] = []
    for key, val in factors.items():
        if key in _HIDDEN_KEYS or (keys is not None and key not in keys):
            continue
        try:
            body = _summary(key, val)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            body = _fmt_value(val)
        text = f"{key}: {body}"
        lines.extend(textwrap.wrap(text, width=width, subsequent_indent="    ") or [text])
    return "\n".join(lines) if lines else "(nominal: no factor varies)"


def varying_factors(frames: Any) -> list[str]:
    """Top-level factor names whose values are not constant over ``frames``' rows."""
    table = frames.factors()
    if table.empty:
        return []
    out: list[str] = []
    for col in table.columns:
        top = col.split(".")[0]
        if top in out or top in _HIDDEN_KEYS:
            continue
        if table[col].astype(str).nunique(dropna=False) > 1:
            out.append(top)
    return out


def pick_pairs(manifest: Any, n: int) -> list[str]:
    """``n`` pair ids present in every domain, spread over tasks, episodes and steps.

    Deterministic: sorts the candidates by (task, episode, step); keeps, per task, at most
    ``ceil(n / n_tasks)`` episodes evenly spaced over the task's episodes; then walks them
    round-robin over (task, episode) groups, taking a different step position (middle,
    first, last, quarters) in each round.
    """
    m = manifest[manifest["pair_id"].notna()]
    if m.empty:
        return []
    n_domains = manifest["domain"].nunique()
    counts = m.groupby("pair_id")["domain"].nunique()
    full = set(counts[counts == n_domains].index)
    m = m[m["pair_id"].isin(full)].drop_duplicates("pair_id")
    m = m.sort_values(["task", "episode", "step"], kind="stable")
    # Interleave tasks: order groups as task0-ep0, task1-ep0, task0-ep1, ...
    by_task: dict[str, list[list[str]]] = {}
    for (task, _ep), g in m.groupby(["task", "episode"], sort=True):
        by_task.setdefault(str(task), []).append(g["pair_id"].tolist())
    # With more episodes than cells, take episodes evenly spaced over each task's run.
    per_task = -(-n // len(by_task))
    for t, grps in by_task.items():
        if len(grps) > per_task:
            keep = np.unique(np.round(np.linspace(0, len(grps) - 1, per_task)).astype(int))
            by_task[t] = [grps[i] for i in keep]
    groups = [grp for i in range(max(len(v) for v in by_task.values()))
              for t in sorted(by_task) if i < len(by_task[t]) for grp in [by_task[t][i]]]
    picked: list[str] = []
    fractions = [0.5, 0.0, 1.0, 0.25, 0.75]
    round_ = 0
    while len(picked) < n and round_ < 64:
        frac = fractions[round_ % len(fractions)]
        for g in groups:
            if len(picked) >= n:
                break
            pid = g[round(frac * (len(g) - 1))]
            if pid not in picked:
                picked.append(pid)
        round_ += 1
    return picked


@literal_text
def contact_sheet(
    frames: Any,
    out: str | os.PathLike[str],
    camera: str | None = None,
    n_pairs: int = 8,
    pairs_per_row: int = 2,
    dpi: int = 110,
) -> Path:
    """Write a PNG contact sheet of ``frames`` (a FrameSet or its path) to ``out``.

    Args:
        frames: :class:`realgap.data.FrameSet` or a path to one.
        out: PNG path (parent directories are created).
        camera: camera to show (default: ``head`` if present, else the first).
        n_pairs: number of simulator states (cells) to show (1..64).
        pairs_per_row: cells per row of the grid.
        dpi: resolution of the PNG.

    Returns:
        ``out`` as a :class:`~pathlib.Path`.
    """
    from realgap.data import open_frames

    fs = open_frames(frames)
    if len(fs) == 0:
        raise DataError(f"{fs.root}: FrameSet is empty; nothing to put on a contact sheet")
    if not 1 <= int(n_pairs) <= 64:
        raise ConfigError(f"contact_sheet: n_pairs must be in 1..64, got {n_pairs!r}")
    cams = fs.cameras
    cam = camera or ("head" if "head" in cams else cams[0])
    if cam not in cams:
        raise ConfigError(f"contact_sheet: camera {cam!r} not in {fs.root}; available: {cams}")
    man = fs.manifest
    domains = _ordered_domains(fs.domains)
    pids = pick_pairs(man, int(n_pairs))
    cells: list[tuple[str, list[int | None]]] = []
    if pids:
        index = {(d, p): i for i, (d, p) in enumerate(zip(man["domain"], man["pair_id"]))}
        for pid in pids:
            cells.append((pid, [index.get((d, pid)) for d in domains]))
    else:  # no pairing: one cell per domain position, frames spread over the set
        dom_col = man["domain"].to_numpy()
        positions = [np.flatnonzero(dom_col == d) for d in domains]
        for k in range(int(n_pairs)):
            rows: list[int | None] = [
                int(pos[round(k * (len(pos) - 1) / max(n_pairs - 1, 1))]) for pos in positions]
            cells.append((f"sample {k}", rows))

    shown = varying_factors(fs.select(domain=domains[0]))
    captions = [format_factors(_factors_of(man, rows), shown) for _, rows in cells]
    per_row = max(1, min(int(pairs_per_row), len(cells)))
    n_rows = -(-len(cells) // per_row)
    nd = len(domains)
    img_in = 1.55  # inches per image
    cap_lines = max(c.count("\n") + 1 for c in captions)
    cap_in = 0.125 * cap_lines + 0.3
    fig_w = per_row * nd * img_in + (per_row - 1) * 0.35 + 0.3
    row_h = 0.32 + img_in + cap_in
    fig_h = n_rows * row_h + 0.55
    fig = figure(figsize=(fig_w, fig_h), dpi=dpi, facecolor="white")
    title = (f"{fs.root.name}: {len(fs)} frames, {len(fs.tasks)} task(s), "
             f"domains {' | '.join(domains)}, camera '{cam}'")
    fig.text(0.5, 1 - 0.18 / fig_h, title, ha="center", va="top", fontsize=10, weight="bold")
    images = fs.images(cam, [r for _, rows in cells for r in rows if r is not None])
    it = iter(images)
    for k, (pid, rows) in enumerate(cells):
        r, c = divmod(k, per_row)
        top = fig_h - 0.55 - r * row_h
        x0 = 0.15 + c * (nd * img_in + 0.35)
        row0 = next((x for x in rows if x is not None), None)
        head = _cell_header(man, row0, pid)
        fig.text((x0 + nd * img_in / 2) / fig_w, (top - 0.02) / fig_h, head, ha="center",
                 va="top", fontsize=8, weight="bold")
        for j, (dom, row) in enumerate(zip(domains, rows)):
            ax = fig.add_axes([(x0 + j * img_in + 0.03) / fig_w,
                               (top - 0.3 - img_in + 0.03) / fig_h,
                               (img_in - 0.06) / fig_w, (img_in - 0.06) / fig_h])
            ax.set_xticks([])
            ax.set_yticks([])
            if row is None:
                ax.text(0.5, 0.5, "missing", ha="center", va="center", fontsize=8)
            else:
                ax.imshow(next(it), interpolation="nearest")
            ax.set_title(dom, fontsize=7.5, pad=2)
        caption = captions[k]
        fig.text((x0 + 0.03) / fig_w, (top - 0.32 - img_in) / fig_h, caption, ha="left",
                 va="top", fontsize=6.5, family="monospace", linespacing=1.25)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_png(fig, path, dpi=dpi, facecolor="white")
    return path


def _factors_of(man: Any, rows: list[int | None]) -> dict[str, Any]:
    """Factors of the cell's first domain frame (the randomized ``sim`` one when present)."""
    for row in rows:
        if row is not None:
            try:
                return dict(json.loads(man["factors"].iat[row] or "{}"))
            except (TypeError, ValueError):
                return {}
    return {}


def _cell_header(man: Any, row: int | None, pid: str) -> str:
    if row is None:
        return pid
    return f"{man['task'].iat[row]}  ep {int(man['episode'].iat[row])}  step {int(man['step'].iat[row])}"
