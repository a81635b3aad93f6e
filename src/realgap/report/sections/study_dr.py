"""Report section "study-dr": which randomization factor matters (``realgap study dr``).

Reads the newest ``dr-study`` run through :mod:`realgap.store.study` and shows, after
vla-domain-randomization-study.txt (4.2-4.4):

- the table in the layout of the reference's Table 1: one row per data setting (what its
  training data randomized), k/n per real-proxy condition with the conditions grouped by
  their protocol factor, then the pooled k/n with its Wilson interval (seeds x conditions x
  episodes pooled as trials; the column sorts by rate) and the mean final distance to the
  target (mm), the continuous measure that still moves when successes are rare;
- a forest plot of each setting's effect (pooled rate minus Clean's) with its paired
  bootstrap interval, ordered by rank; settings sharing a rank (not told apart) share a
  shaded band; a zero line marks "no better than Clean"; the same numbers as a table;
- right after it, the same forest and table for the mean final distance to the target
  (``DrStudyRecord.distance_effects``, shown in mm; smaller is better, so the best rank is
  the closest and "better" lies left of 0). At CPU sizes nearly every setting fails the
  3 cm success test in the real proxy, so the success effects are all 0 and tied while the
  final distances still differ (issue 12, section 3); both measures get the same
  prominence. Records written before the distance effects existed show neither;
- the comparisons the job made (granularity frame vs episode, fidelity, distorted
  physics, RL fine-tuning), each on success and on the final distance: difference
  [interval] and a sentence saying whether the interval excludes 0 ("succeeds more/less
  often" for success, "ends closer/farther" for the distance, which is shown in mm);
- a caption saying what the intervals resample for both measures and how many seeds and
  episodes they rest on, naming the settings with fewer than :data:`FEW_SEEDS` seeds.

Distances are stored in metres and shown in millimetres (:data:`MM`), to 1 decimal: the
policies' final distances are tens to hundreds of mm apart, and 0.1 mm is below anything
the simulator's reach task can tell.

Everything here is a function of the stored record: no resampling is done again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from realgap._plot import figure, literal_text, png_bytes
from realgap.report._html import esc, fmt, fmt_ci, png_img
from realgap.report.sections import register_section
from realgap.stats import wilson_interval
from realgap.store.study import (
    DR_BASELINE,
    DR_RUN_KIND,
    DR_SIM_CONDITION,
    DrStudyRecord,
    read_dr_study,
)

ANCHOR = "study-dr"
TITLE = "Study: which randomization factor matters?"
#: Fewer training seeds than this and the caption says the interval rests on few seeds.
FEW_SEEDS = 3
#: Condition name of the protocol's unperturbed setting (its factor is ``base`` too).
BASE = "base"
_GROUP_STYLE = "text-align:center;font-weight:600;background:#e4e8ee;white-space:nowrap"
#: Millimetres per metre: the record holds distances in m, the section shows mm.
MM = 1000.0
#: Decimals of a distance in mm.
MM_DIGITS = 1
#: ``comparison["measure"]`` of a final-distance comparison (its name ends with
#: :data:`DISTANCE_SUFFIX` too, which older rows without the key are recognised by).
DISTANCE_MEASURE = "final_distance"
DISTANCE_SUFFIX = " (final distance)"


def _pct(alpha: float) -> str:
    return f"{100 * (1 - alpha):g}%"


def _alpha(rec: DrStudyRecord) -> float:
    try:
        a = float(rec.config.get("alpha", 0.05))
    except (TypeError, ValueError):
        return 0.05
    return a if 0 < a < 1 else 0.05


def _conditions_by_factor(oc: pd.DataFrame) -> list[tuple[str, list[str]]]:
    """``[(factor, [conditions])]``: factors in order of first appearance (base first),
    each factor's conditions in protocol order."""
    groups: dict[str, list[str]] = {}
    for cond, factor in dict.fromkeys(zip(oc["condition"], oc["factor"], strict=True)):
        groups.setdefault(str(factor), [])
        if cond not in groups[str(factor)]:
            groups[str(factor)].append(str(cond))
    order = sorted(groups, key=lambda f: f != BASE)  # stable: base first, others as met
    return [(f, groups[f]) for f in order]


def _describe(desc: dict[str, Any], usual_fidelity: str | None = None) -> str:
    """What a setting's training data randomized, in a few words; its fidelity only when it
    is not ``usual_fidelity`` (the one most settings share), its physics only when not
    nominal."""
    factors = desc.get("factors") or []
    parts = ["+".join(str(f) for f in factors) if factors else "no randomization"]
    if factors and desc.get("granularity"):
        parts[0] += f", {desc['granularity']}-wise"
    if desc.get("fidelity") and str(desc["fidelity"]) != usual_fidelity:
        parts.append(f"{desc['fidelity']} fidelity")
    if desc.get("physics") and desc.get("physics") != "nominal":
        parts.append(f"{desc['physics']} physics")
    if desc.get("finetune"):
        parts.append(f"RL fine-tuned ({desc['finetune']})"
                     + (f" from {desc['base']}" if desc.get("base") else ""))
    return "; ".join(parts)


def _usual_fidelity(rec: DrStudyRecord) -> str | None:
    """The fidelity most settings were rendered at (named once, in the caption)."""
    found = [str(d["fidelity"]) for d in rec.settings.values() if d.get("fidelity")]
    return max(dict.fromkeys(found), key=found.count) if found else None


def _th(label: str, *, text: bool = False) -> str:
    """A header cell; over a column of words it aligns left like its cells."""
    return f'<th style="text-align:left">{esc(label)}</th>' if text else f"<th>{esc(label)}</th>"


def _cell(inner: str, sort: float | str, title: str = "", *, text: bool = False) -> str:
    """A ``<td>`` sorting on ``sort``; ``text`` cells (words, not numbers) align left."""
    t = f' title="{esc(title)}"' if title else ""
    a = ' style="text-align:left"' if text else ""
    key = "" if isinstance(sort, float) and math.isnan(sort) else sort
    return f'<td data-sort="{esc(key)}"{t}{a}>{inner}</td>'


def _fraction(text: str) -> float:
    """``"k/n"`` as k/n (NaN when it is not one)."""
    k, _, n = text.partition("/")
    try:
        return int(k) / int(n)
    except (ValueError, ZeroDivisionError):
        return float("nan")


def _kn_cell(g: pd.DataFrame) -> str:
    k, n = int(g["success"].sum()), len(g)
    return _cell(f"{k}/{n}", k / n if n else float("nan"), f"{k / n:.3f}" if n else "")


def _factor_table(rec: DrStudyRecord) -> str:
    """The reference's Table 1 layout, a header row of factors above the conditions."""
    oc, alpha = rec.outcomes, _alpha(rec)
    is_sim = oc["condition"] == DR_SIM_CONDITION
    real_oc = oc[~is_sim]
    groups = _conditions_by_factor(real_oc)
    has_sim = bool(is_sim.any())
    pct = _pct(alpha)
    top = ['<td style="background:#fff;border:0"></td>' * 3]
    if has_sim:
        top.append(f'<td colspan="1" style="{_GROUP_STYLE}">simulator</td>')
    top += [f'<td colspan="{len(cs)}" style="{_GROUP_STYLE}">{esc(f)}</td>' for f, cs in groups]
    top.append(f'<td colspan="2" style="{_GROUP_STYLE}">real proxy, all conditions</td>')
    heads = ["setting", "training data", "expert demos solved",
             *([f"{DR_SIM_CONDITION} (nominal)"] if has_sim else []),
             *(c for _, cs in groups for c in cs), f"pooled k/n, rate [{pct} Wilson]",
             "mean final distance (mm)"]
    rows = []
    fidelity = _usual_fidelity(rec)
    for setting in dict.fromkeys([*rec.settings, *oc["setting"]]):
        sub, real = oc[oc["setting"] == setting], real_oc[real_oc["setting"] == setting]
        if sub.empty:
            continue
        meta = rec.settings.get(setting, {})
        desc, demos = _describe(meta, fidelity), str(meta.get("demo_success") or "—")
        cells = [_cell(esc(setting), setting, text=True), _cell(esc(desc), desc, text=True),
                 _cell(esc(demos), _fraction(demos))]
        if has_sim:
            cells.append(_kn_cell(sub[sub["condition"] == DR_SIM_CONDITION]))
        cells += [_kn_cell(real[real["condition"] == c]) for _, cs in groups for c in cs]
        k, n = int(real["success"].sum()), len(real)
        if n:
            lo, hi = wilson_interval(k, n, alpha)
            cells.append(_cell(f"{k}/{n}<br>{fmt_ci(k / n, lo, hi)}", k / n))
        else:
            cells.append(_cell("—", float("nan")))
        d = real["final_distance"].to_numpy(dtype=float)
        d = d[np.isfinite(d)]
        mean_d = MM * float(d.mean()) if d.size else float("nan")
        cells.append(_cell(fmt(mean_d, MM_DIGITS), mean_d))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(_th(h, text=i < 2) for i, h in enumerate(heads))
    cap = (("The sim column is the nominal simulator, the training domain: an in-distribution "
            "check, pooled with nothing. " if has_sim else "")
           + "Training data: the factors randomized in the demonstrations, episode-wise "
           "(drawn once per episode) or frame-wise (redrawn every frame)"
           + (f", rendered at {fidelity} fidelity unless said otherwise" if fidelity else "")
           + "; expert demos solved: demonstrations in which the scripted expert reached "
           "the target. Successes k of n episodes per real-proxy condition (one factor at a time, "
           "grouped by factor), every seed of the setting pooled; pooled: every real-proxy "
           f"condition, with the {pct} Wilson interval, which treats each episode as an "
           "independent trial (the paired intervals below redraw seeds and initial states "
           "instead). Mean final distance: end-effector to target at the last step (mm), "
           "over the same real-proxy episodes. Layout of the reference's Table 1; real-proxy frames are "
           "rendered by the simulator, not taken by a real robot's camera.")
    return (f'<table id="study-dr-table" class="sortable"><caption>{esc(cap)}</caption>'
            f'<thead><tr>{"".join(top)}</tr><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


@dataclass(frozen=True)
class _Measure:
    """How one closed-loop measure's effects read: ``scale`` turns the stored unit into the
    shown one (m -> mm for the distance), ``higher_is_better`` picks the good side of 0."""

    key: str
    scale: float
    digits: int
    higher_is_better: bool
    table_id: str
    alt: str


SUCCESS = _Measure("success", 1.0, 3, True, "study-dr-effects",
                   f"forest plot: effect vs {DR_BASELINE}")
DISTANCE = _Measure(DISTANCE_MEASURE, MM, MM_DIGITS, False, "study-dr-distance-effects",
                    f"forest plot: effect on the mean final distance vs {DR_BASELINE}")


def _effects_of(rec: DrStudyRecord, measure: _Measure) -> tuple[Any, ...]:
    return tuple(rec.distance_effects) if measure is DISTANCE else tuple(rec.effects)


def _ranked(rec: DrStudyRecord, measure: _Measure = SUCCESS) -> list[Any]:
    """The measure's effects best rank first; within a rank the better mean first."""
    sign = -1.0 if measure.higher_is_better else 1.0
    return sorted(_effects_of(rec, measure), key=lambda e: (e.rank, sign * e.rate, e.setting))


def _z(x: float, digits: int) -> float:
    """``x`` rounded to the shown ``digits``, a rounded-away negative zero made 0 (a
    difference of -0.00005 m reads "0.0 mm", not "-0.0")."""
    return round(x, digits) + 0.0 if math.isfinite(x) else x


def _interval(e: Any) -> tuple[float, float]:
    """``(lo, hi)`` of an effect, the point where an end is undefined."""
    lo = e.effect if not np.isfinite(e.lo) else e.lo
    hi = e.effect if not np.isfinite(e.hi) else e.hi
    return float(lo), float(hi)


#: A point's colour by the side of 0 its interval lies on (the baseline is grey).
_COLOURS = {"better": "#166534", "worse": "#9a3412", "unclear": "#2a4d8f"}


def _side(lo: float, hi: float, higher_is_better: bool) -> str:
    """``"better"`` / ``"worse"`` when the interval ``[lo, hi]`` of an effect vs Clean lies
    wholly on that side of 0 (above 0 for success, below 0 for the distance), else
    ``"unclear"`` (an interval touching 0 does not exclude it)."""
    if lo > 0:
        return "better" if higher_is_better else "worse"
    if hi < 0:
        return "worse" if higher_is_better else "better"
    return "unclear"


@literal_text
def _forest(rec: DrStudyRecord, measure: _Measure = SUCCESS) -> bytes | None:
    """The forest plot of ``measure``'s effects vs Clean (PNG), best rank at the top; for
    the distance in mm, where left of 0 is closer, i.e. better."""
    effects = _ranked(rec, measure)
    if not effects:
        return None
    pct = _pct(_alpha(rec))
    n, k = len(effects), measure.scale
    fig = figure(figsize=(7.0, 1.45 + 0.34 * n))
    ax = fig.subplots()
    y = np.arange(n)[::-1]  # best at the top
    ranks = [e.rank for e in effects]
    band, shade = 0, False
    while band < n:  # one band per rank: settings in a band are not told apart
        end = band
        while end + 1 < n and ranks[end + 1] == ranks[band]:
            end += 1
        if shade:
            ax.axhspan(y[end] - 0.5, y[band] + 0.5, color="#eef1f5", lw=0, zorder=0)
        if end > band:  # a bracket right of the axes joins the tied settings
            ax.plot([1.012, 1.012], [y[end] - 0.3, y[band] + 0.3], color="#6b7280", lw=1.4,
                    transform=ax.get_yaxis_transform(), clip_on=False)
            ax.text(1.02, (y[end] + y[band]) / 2, f"rank {ranks[band]}", fontsize=7,
                    color="#6b7280", va="center", transform=ax.get_yaxis_transform())
        shade = not shade
        band = end + 1
    for yi, e in zip(y, effects, strict=True):
        base = e.setting == DR_BASELINE
        lo, hi = _interval(e)
        eff, lo, hi = k * e.effect, k * lo, k * hi
        colour = "#6b7280" if base else _COLOURS[_side(lo, hi, measure.higher_is_better)]
        ax.errorbar([eff], [yi], xerr=[[max(eff - lo, 0)], [max(hi - eff, 0)]],
                    fmt="D" if base else "o", ms=5, capsize=3, lw=1.4, color=colour, zorder=3)
    ax.axvline(0.0, color="#1d2330", lw=0.9, ls="--", zorder=1)
    ax.set_yticks(y)
    ax.set_yticklabels([f"{e.rank}. {e.setting}" + ("  (baseline)" if e.setting == DR_BASELINE
                                                     else "") for e in effects], fontsize=8)
    ax.set_ylim(-0.5, n - 0.5)
    ax.tick_params(axis="x", labelsize=8)
    ties = "a band or bracket = same rank (not told apart)"
    if measure is DISTANCE:
        ax.set_xlabel(f"mean final distance minus {DR_BASELINE}'s (mm, pooled real-proxy "
                      f"episodes), {pct} paired bootstrap interval", fontsize=8)
        ax.set_title(f"Effect on the mean final distance vs {DR_BASELINE} (mm; left = closer "
                     f"= better)\nclosest rank first; {ties}", fontsize=9)
    else:
        ax.set_xlabel(f"success rate minus {DR_BASELINE}'s (pooled), {pct} paired bootstrap "
                      "interval", fontsize=8)
        ax.set_title(f"Effect of each data setting vs {DR_BASELINE}, best rank first; {ties}",
                     fontsize=9)
    ax.grid(axis="x", color="#e5e7eb", lw=0.6, zorder=0)
    fig.tight_layout()
    return png_bytes(fig, dpi=100)


def _tied_cell(tied: Any, shown: int = 4) -> str:
    """The settings an entry is not told apart from: the first ``shown``, the rest counted
    (every name on hover)."""
    names = [str(t) for t in tied]
    if not names:
        return _cell("—", 0.0, text=True)
    text = ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown
                                       else "")
    return _cell(esc(text), float(len(names)), ", ".join(names), text=True)


def _effects_table(rec: DrStudyRecord, measure: _Measure = SUCCESS) -> str:
    """The forest's numbers: rank, setting, the setting's mean, its effect [interval]."""
    pct = _pct(_alpha(rec))
    k, dg = measure.scale, measure.digits
    if measure is DISTANCE:
        head = ["rank", "setting", "mean final distance (mm)",
                f"effect vs {DR_BASELINE} (mm) [{pct} paired]", "not told apart from"]
    else:
        head = ["rank", "setting", "pooled rate", f"effect vs {DR_BASELINE} [{pct} paired]",
                "not told apart from"]
    rows = []
    for e in _ranked(rec, measure):
        eff, lo, hi = (_z(k * v, dg) for v in (e.effect, e.lo, e.hi))
        rows.append("<tr>" + "".join([
            _cell(str(e.rank), float(e.rank)), _cell(esc(e.setting), e.setting, text=True),
            _cell(fmt(_z(k * e.rate, dg), dg), k * e.rate),
            _cell(fmt_ci(eff, lo, hi, dg), k * e.effect),
            _tied_cell(e.tied_with)]) + "</tr>")
    return (f'<table id="{measure.table_id}" class="sortable"><thead><tr>'
            f'{"".join(_th(h, text=h in ("setting", "not told apart from")) for h in head)}'
            f'</tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _is_distance(c: dict[str, Any]) -> bool:
    """Whether a comparison is on the final distance (m) rather than on success."""
    return (c.get("measure") == DISTANCE_MEASURE
            or str(c.get("name", "")).endswith(DISTANCE_SUFFIX))


def comparison_sentence(c: dict[str, Any], pct: str = "95%") -> str:
    """One plain sentence: does the paired interval of ``a - b`` exclude 0?

    On success "succeeds more/less often"; on the final distance (stored in m, said in mm)
    "ends closer to / farther from the target"."""
    a, b = esc(c.get("a", "a")), esc(c.get("b", "b"))
    lo, hi, diff = (_num(c.get(k)) for k in ("lo", "hi", "diff"))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return (f"No interval could be drawn for {a} - {b} (too few seeds or episodes); the "
                "difference is not established.")
    if _is_distance(c):
        lo_mm, hi_mm, diff_mm = (_z(MM * v, MM_DIGITS) for v in (lo, hi, diff))
        span = f"[{lo_mm:+.{MM_DIGITS}f}, {hi_mm:+.{MM_DIGITS}f}] mm"
        if hi < 0:
            return (f"{a} ends closer to the target than {b}: the {pct} interval {span} "
                    "excludes 0.")
        if lo > 0:
            return (f"{a} ends farther from the target than {b}: the {pct} interval {span} "
                    "excludes 0.")
        return (f"{a} and {b} are not told apart on the final distance: the {pct} interval "
                f"{span} contains 0 (difference {diff_mm:+.{MM_DIGITS}f} mm).")
    span = f"[{lo:+.3f}, {hi:+.3f}]"
    if lo > 0:
        return f"{a} succeeds more often than {b}: the {pct} interval {span} excludes 0."
    if hi < 0:
        return f"{a} succeeds less often than {b}: the {pct} interval {span} excludes 0."
    return (f"{a} and {b} are not told apart: the {pct} interval {span} contains 0 "
            f"(difference {diff:+.3f}).")


def _num(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def _comparison_order(comps: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """Each question's final-distance row right after its success row (the job writes all
    success rows, then all distance rows); otherwise the record's order."""
    def base(c: dict[str, Any]) -> str:
        return str(c.get("name", "")).removesuffix(DISTANCE_SUFFIX)

    first = {n: i for i, n in reversed(list(enumerate(base(c) for c in comps)))}
    return sorted(comps, key=lambda c: (first[base(c)], _is_distance(c)))


def _mm_ci(value: float, lo: float, hi: float) -> str:
    """``value mm [lo, hi]``: the unit beside the number, so a narrow cell wraps before the
    interval, not between the interval and its unit."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{fmt(value, MM_DIGITS)} mm"
    return (f"{fmt(value, MM_DIGITS)} mm <span class='ci'>[{fmt(lo, MM_DIGITS)}, "
            f"{fmt(hi, MM_DIGITS)}]</span>")


def _comparisons_table(rec: DrStudyRecord) -> str:
    pct = _pct(_alpha(rec))
    has_distance = any(_is_distance(c) for c in rec.comparisons)
    value = (lambda side: f"{side} (rate or mm)") if has_distance else (lambda side: f"rate {side}")
    head = ["comparison", "a", "b", value("a"), value("b"), f"a - b [{pct} paired]", "seeds",
            "reading"]
    rows = []
    for c in _comparison_order(rec.comparisons):
        diff, lo, hi = _num(c.get("diff")), _num(c.get("lo")), _num(c.get("hi"))
        ra, rb = _num(c.get("rate_a")), _num(c.get("rate_b"))
        if _is_distance(c):  # m -> mm, the unit in every cell beside the numbers of rates
            diff, lo, hi, ra, rb = (_z(MM * v, MM_DIGITS) for v in (diff, lo, hi, ra, rb))
            values = [fmt(ra, MM_DIGITS) + " mm", fmt(rb, MM_DIGITS) + " mm",
                      _mm_ci(diff, lo, hi)]
        else:
            values = [fmt(ra), fmt(rb), fmt_ci(_z(diff, 3), _z(lo, 3), _z(hi, 3))]
        rows.append("<tr>" + "".join([
            _cell(esc(c.get("name", "")), str(c.get("name", "")), text=True),
            _cell(esc(c.get("a", "")), str(c.get("a", "")), text=True),
            _cell(esc(c.get("b", "")), str(c.get("b", "")), text=True),
            _cell(values[0], ra), _cell(values[1], rb), _cell(values[2], diff),
            _cell(esc(c.get("n_seeds", "")), _num(c.get("n_seeds"))),
            _cell(comparison_sentence(c, pct), "", text=True)]) + "</tr>")
    measures = ("the difference of pooled success rates and, in the rows marked "
                f"\u201c{DISTANCE_SUFFIX.strip()}\u201d, of mean final distances (mm; "
                "negative = a ends closer to the target)" if has_distance
                else "the difference of pooled success rates")
    return (f'<table id="study-dr-comparisons" class="sortable"><caption>The reference\'s '
            "further questions (granularity: frame-wise vs episode-wise; fidelity; distorted "
            f"physics; RL fine-tuning): {esc(measures)}, with its paired bootstrap "
            f"interval.</caption><thead><tr>"
            f'{"".join(_th(h, text=h in ("comparison", "a", "b", "reading")) for h in head)}'
            f'</tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _caption(rec: DrStudyRecord) -> str:
    oc = rec.outcomes
    pct = _pct(_alpha(rec))
    seeds = oc.groupby("setting", sort=False)["seed"].nunique()
    n_seeds = sorted({int(s) for s in seeds})
    real = oc[oc["condition"] != DR_SIM_CONDITION]
    n_eps, n_cond = real["episode"].nunique(), real["condition"].nunique()
    n_boot = rec.config.get("n_boot")
    boot = f"{esc(n_boot)} bootstrap replicates" if n_boot else "bootstrap replicates"
    seed_text = " or ".join(str(s) for s in n_seeds) if n_seeds else "0"
    per = (n_seeds[-1] if n_seeds else 0) * n_eps * n_cond
    both = bool(rec.distance_effects) or any(_is_distance(c) for c in rec.comparisons)
    measures = (", on success and on the mean final distance alike," if both else "")
    order = (" (success: the higher rate first; final distance: the closer first)"
             if both else "")
    text = (f"The {pct} intervals of the effects and comparisons{measures} resample the "
            "training seeds and the initial states: each of "
            f"{boot} draws the seeds once and the episodes "
            "(reset seeds) once, the same draw for every setting"
            + (" and both measures" if both else "")
            + ", so each difference is "
            f"paired across settings by seed and by initial state; {DR_BASELINE}'s own effect "
            f"is 0 by construction. They rest on {seed_text} training seed(s) per setting x "
            f"{n_eps} initial states x {n_cond} real-proxy conditions (up to {per} episodes "
            f"per setting). The ranking{order} ties two settings whenever their paired "
            "difference's interval contains 0.")
    few = [str(s) for s, k in seeds.items() if k < FEW_SEEDS]
    if few and len(few) == len(seeds):
        text += (f" Few seeds: every setting has fewer than {FEW_SEEDS} training seeds, so "
                 "every interval rests on few seeds and understates how much another seed "
                 "could change the result.")
    elif few:
        text += (f" Few seeds: {', '.join(esc(s) for s in few)} "
                 f"{'has' if len(few) == 1 else 'have'} fewer than {FEW_SEEDS} "
                 "training seeds, so their intervals rest on few seeds and understate how "
                 "much another seed could change the result.")
    return f'<p class="note" id="study-dr-caption">{text}</p>'


def _forest_figure(rec: DrStudyRecord, measure: _Measure) -> str:
    """The measure's forest plot and its table ("" when the record holds no such effects)."""
    png = _forest(rec, measure)
    if png is None:
        return ""
    b = esc(DR_BASELINE)
    if measure is DISTANCE:
        words = (f"Each setting's mean final distance to the target minus {b}'s, in mm, with "
                 "its paired interval; left of 0 = closer than "
                 f"{b} = better. Green: the interval is below 0 (closer), red: above "
                 "(farther), blue: contains 0.")
    else:
        words = (f"Each setting's pooled success rate minus {b}'s, with its paired interval; "
                 "green: the interval is above 0, red: below, blue: contains 0.")
    return ("<figure>" + png_img(png, alt=measure.alt, width=700)
            + f"<figcaption>{words}</figcaption></figure>" + _effects_table(rec, measure))


def render(db: Any) -> str | None:
    run_id = db.latest_run(DR_RUN_KIND)
    if run_id is None:
        return None
    rec = read_dr_study(db, run_id)
    cfg, oc = rec.config, rec.outcomes
    secs = cfg.get("seconds")
    real = oc[oc["condition"] != DR_SIM_CONDITION]
    sim = " and in the nominal simulator" if len(real) < len(oc) else ""
    policy = (f"{esc(cfg['head'])} head on the {esc(cfg.get('encoder', '?'))} encoder, "
              if cfg.get("head") else "")
    parts = [f"<p>Run {esc(run_id)} (preset {esc(cfg.get('preset', '?'))}, protocol "
             f"{esc(cfg.get('protocol', '?'))}, task {esc(cfg.get('task', '?'))}): "
             f"{len(rec.settings)} data settings; per setting and training seed one policy "
             f"({policy}trained on {esc(cfg.get('demo_episodes', '?'))} expert demonstrations "
             f"of that setting), played on the same {real['episode'].nunique()} initial states "
             f"in {real['condition'].nunique()} real-proxy conditions{sim}"
             + (f"; {fmt(_num(secs), 0)} s" if secs is not None else "") + "."
             + (" Two measures: success, and the mean final distance to the target, which "
                "still tells settings apart when few episodes succeed."
                if rec.distance_effects else "") + "</p>"]
    if oc.empty:
        parts.append("<p class='warn'>The run holds no played episodes.</p>")
        return "".join(parts)
    parts.append(_factor_table(rec))
    parts.append(_forest_figure(rec, SUCCESS))
    parts.append(_forest_figure(rec, DISTANCE))  # "" for records older than the distance
    if rec.comparisons:
        parts.append(_comparisons_table(rec))
    parts.append(_caption(rec))
    return "".join(parts)


register_section("study_dr", anchor=ANCHOR, title=TITLE, kinds=(DR_RUN_KIND,), order=59)(render)

__all__: list[Any] = ["ANCHOR", "TITLE", "comparison_sentence", "render"]
