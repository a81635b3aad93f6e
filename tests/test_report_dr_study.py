"""Report section "study-dr" on a hand-made ``dr-study`` run: the reference's table (its
numbers are ``realgap.study.dr.factor_table``'s), the success and final-distance forest
plots and tables, the comparisons' sentences (success and distance), and the caption on
what the intervals rest on. No simulator: fast."""

from __future__ import annotations

import base64
import io
import re
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from tiny_runs import DR_CONDITIONS, dr_study_record

from realgap.report import build_report
from realgap.report.sections import study_dr
from realgap.report.sections.study_dr import comparison_sentence
from realgap.store import ResultsDB
from realgap.store.study import DR_SIM_CONDITION, DrStudyRecord, write_dr_study
from realgap.study.dr import factor_table


def _html(tmp_path: Path, rec: DrStudyRecord | None = None) -> str:
    with ResultsDB(tmp_path) as db:
        write_dr_study(db, rec or dr_study_record())
    with ResultsDB(tmp_path, read_only=True) as db:
        html = study_dr.render(db)
    assert html is not None
    return html


def _table(html: str, table_id: str) -> str:
    m = re.search(rf'<table id="{table_id}".*?</table>', html, re.DOTALL)
    assert m is not None, f"no table {table_id}"
    return m.group(0)


def _rows(table: str) -> list[list[str]]:
    body = table.split("<tbody>")[1]
    return [re.findall(r"<td[^>]*>(.*?)</td>", r, re.DOTALL)
            for r in re.findall(r"<tr>(.*?)</tr>", body, re.DOTALL)]


def test_section_shows_table_forest_plot_and_comparisons(tmp_path: Path) -> None:
    html = _html(tmp_path)
    assert _table(html, "study-dr-table") and _table(html, "study-dr-effects")
    img = re.search(r'<img src="data:image/png;base64,([^"]+)" alt="forest plot', html)
    assert img is not None
    from PIL import Image

    png = Image.open(io.BytesIO(base64.b64decode(img.group(1))))
    assert png.format == "PNG" and png.width > 400 and png.height > 200
    comps = _rows(_table(html, "study-dr-comparisons"))
    assert [r[0] for r in comps] == ["granularity: BG frame vs episode", "spatial: TH vs Clean"]
    assert "BG-frame and BG are not told apart" in comps[0][-1] and "contains 0" in comps[0][-1]
    assert "TH succeeds more often than Clean" in comps[1][-1] and "excludes 0" in comps[1][-1]


def _real(oc: pd.DataFrame) -> pd.DataFrame:
    return oc[oc["condition"] != DR_SIM_CONDITION]


def test_pooled_and_condition_cells_equal_the_reference_table(tmp_path: Path) -> None:
    """Pooled over the real-proxy conditions, as the job's table; the sim check apart."""
    rec = dr_study_record()
    rows = _rows(_table(_html(tmp_path, rec), "study-dr-table"))
    ref = factor_table(_real(rec.outcomes)).set_index("setting")
    sim = factor_table(rec.outcomes[rec.outcomes["condition"] == DR_SIM_CONDITION])
    assert [r[0] for r in rows] == list(ref.index)  # the settings in the record's order
    conditions = ["base", "BG-lib3", "BG-lib5", "LT-dim", "CP-far"]  # grouped by factor
    for r, sim_kn in zip(rows, sim["pooled"], strict=True):
        want = ref.loc[r[0]]
        assert r[2] == "8/8"  # the expert's demonstrations
        assert r[3] == sim_kn and r[4:9] == [want[c] for c in conditions]
        assert r[9] == (f"{want['pooled']}<br>{want['rate']:.3f} <span class='ci'>"
                        f"[{want['wilson_lo']:.3f}, {want['wilson_hi']:.3f}]</span>")
        assert want["pooled"].endswith("/60")  # 3 seeds x 5 conditions x 4 episodes, no sim


def test_conditions_are_grouped_under_their_factor(tmp_path: Path) -> None:
    """The protocol lists LT-dim between the two BG conditions; the table groups by factor."""
    assert [c for c, _ in DR_CONDITIONS][1:] == ["base", "BG-lib3", "LT-dim", "BG-lib5", "CP-far"]
    table = _table(_html(tmp_path), "study-dr-table")
    heads = re.findall(r"<th[^>]*>(.*?)</th>", table)
    assert heads[3:9] == ["sim (nominal)", "base", "BG-lib3", "BG-lib5", "LT-dim", "CP-far"]
    groups = re.findall(r'<td colspan="(\d+)"[^>]*>(.*?)</td>', table)
    assert groups == [("1", "simulator"), ("1", "base"), ("2", "BG"), ("1", "LT"), ("1", "CP"),
                      ("2", "real proxy, all conditions")]


def test_pooled_column_sorts_by_rate(tmp_path: Path) -> None:
    table = _table(_html(tmp_path), "study-dr-table")
    keys = [re.findall(r'data-sort="([^"]*)"', row)[9] for row in re.findall(r"<tr>(.*?)</tr>",
                                                                            table.split("<tbody>")[1])]
    rates = factor_table(_real(dr_study_record().outcomes))["rate"].tolist()
    assert [float(k) for k in keys] == pytest.approx(rates)


def test_effects_are_listed_by_rank_with_their_ties(tmp_path: Path) -> None:
    rec = dr_study_record()
    rows = _rows(_table(_html(tmp_path, rec), "study-dr-effects"))
    ranks = [int(r[0]) for r in rows]
    assert ranks == sorted(ranks)
    by = {e.setting: e for e in rec.effects}
    for r in rows:
        e = by[r[1]]
        assert r[3].startswith(f"{e.effect:.3f} <span class='ci'>[{e.lo:.3f}, {e.hi:.3f}]")
        assert r[4] == (", ".join(e.tied_with) or "—")


def test_a_long_tie_list_is_cut_with_every_name_on_hover() -> None:
    from realgap.report.sections.study_dr import _tied_cell

    cell = _tied_cell(["A", "B", "C", "D", "E", "F"])
    assert ">A, B, C, D and 2 more</td>" in cell and 'title="A, B, C, D, E, F"' in cell
    assert ">—</td>" in _tied_cell(())


def test_caption_says_what_the_intervals_rest_on(tmp_path: Path) -> None:
    html = _html(tmp_path / "three")
    cap = re.search(r'<p class="note" id="study-dr-caption">(.*?)</p>', html, re.DOTALL).group(1)
    assert "training seeds and the initial states" in cap and "paired across settings" in cap
    assert "3 training seed(s)" in cap and "4 initial states" in cap and "5 real-proxy" in cap
    assert "200 bootstrap replicates" in cap and "few seeds" not in cap.lower()
    two = _html(tmp_path / "two", dr_study_record(n_seeds=2))
    cap = re.search(r'id="study-dr-caption">(.*?)</p>', two, re.DOTALL).group(1)
    assert "every setting has fewer than 3 training seeds" in cap and "rests on few seeds" in cap
    rec = dr_study_record(n_seeds=3)
    one = rec.outcomes[(rec.outcomes["setting"] != "LT") | (rec.outcomes["seed"] < 2)]
    cap = re.search(r'id="study-dr-caption">(.*?)</p>',
                    _html(tmp_path / "one", replace(rec, outcomes=one)), re.DOTALL).group(1)
    assert "Few seeds: LT has fewer than 3" in cap


@pytest.mark.parametrize(("lo", "hi", "words"), [
    (0.1, 0.3, "a succeeds more often than b: the 95% interval [+0.100, +0.300] excludes 0."),
    (-0.3, -0.1, "a succeeds less often than b: the 95% interval [-0.300, -0.100] excludes 0."),
    (-0.1, 0.3, "a and b are not told apart: the 95% interval [-0.100, +0.300] contains 0"),
    (0.0, 0.3, "a and b are not told apart"),  # an interval touching 0 does not exclude it
    (float("nan"), float("nan"), "No interval could be drawn for a - b"),
])
def test_comparison_sentence(lo: float, hi: float, words: str) -> None:
    assert words in comparison_sentence({"a": "a", "b": "b", "diff": 0.1, "lo": lo, "hi": hi})


def test_names_are_escaped(tmp_path: Path) -> None:
    rec = dr_study_record()
    bad = "<b>BG</b>"
    oc = rec.outcomes.replace({"setting": {"BG": bad}})
    settings = {bad if k == "BG" else k: v for k, v in rec.settings.items()}
    comps = ({**rec.comparisons[0], "b": bad},)
    html = _html(tmp_path, replace(rec, outcomes=oc, settings=settings, comparisons=comps,
                                   effects=()))
    assert bad not in html and "&lt;b&gt;BG&lt;/b&gt;" in html


def test_report_of_a_dr_run_has_the_section_and_no_other_study(tmp_path: Path) -> None:
    with ResultsDB(tmp_path) as db:
        write_dr_study(db, dr_study_record())
    page = build_report(tmp_path).read_text(encoding="utf-8")
    assert '<section id="study-dr">' in page and '<section id="study">' not in page


# -- the final distance (mm) -------------------------------------------------------------------
def _distance_comparison(lo: float, hi: float, diff: float = -0.02) -> dict[str, object]:
    """A final-distance comparison as the job writes it (m), BG-frame vs BG."""
    return {"name": "granularity: BG frame vs episode (final distance)", "a": "BG-frame",
            "b": "BG", "rate_a": 0.0498, "rate_b": 0.0623, "diff": diff, "lo": lo, "hi": hi,
            "n_seeds": 3, "measure": "final_distance"}


def _pngs(html: str) -> dict[str, bytes]:
    return {alt: base64.b64decode(b) for b, alt in
            re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="([^"]*)"', html)}


def test_distance_forest_and_table_show_the_outcomes_mean_distances_in_mm(
        tmp_path: Path) -> None:
    """The table's means are the real-proxy outcomes' mean final distances x 1000, and each
    effect is that mean minus Clean's: both known from the outcomes, not only the record."""
    rec = dr_study_record()
    html = _html(tmp_path, rec)
    mean_mm = 1000 * _real(rec.outcomes).groupby("setting")["final_distance"].mean()
    rows = _rows(_table(html, "study-dr-distance-effects"))
    assert [r[1] for r in rows] == [e.setting for e in rec.distance_effects]
    assert rows[0][1] == mean_mm.idxmin() and rows[-1][1] == "Clean"  # closest first
    assert [int(r[0]) for r in rows] == sorted(int(r[0]) for r in rows)
    by = {e.setting: e for e in rec.distance_effects}
    for r in rows:
        e = by[r[1]]
        assert r[2] == f"{mean_mm[r[1]]:.1f}"
        effect = mean_mm[r[1]] - mean_mm["Clean"]
        assert 1000 * e.effect == pytest.approx(effect)
        assert r[3].startswith(f"{round(effect, 1) + 0.0:.1f} <span class='ci'>"
                               f"[{1000 * e.lo:.1f}, {1000 * e.hi:.1f}]")
        assert r[4] == (", ".join(e.tied_with) or "—")
    cells = {r[1]: r[3].split()[0] for r in rows}
    assert float(cells["TH"]) < -10  # TH ends centimetres closer than Clean here
    assert cells["LT"] == "0.0"  # LT's -0.05 mm is shown as 0.0, not "-0.0"
    from PIL import Image

    png = _pngs(html)["forest plot: effect on the mean final distance vs Clean"]
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.width > 400 and img.height > 200
    # right after the success forest and its table, before the comparisons
    order = [html.index(k) for k in ('alt="forest plot: effect vs Clean"', 'id="study-dr-effects"',
                                     'alt="forest plot: effect on the mean final distance',
                                     'id="study-dr-distance-effects"', 'id="study-dr-comparisons"')]
    assert order == sorted(order)
    assert "mean final distance (mm)" in html and "left of 0 = closer than Clean" in html


def test_main_table_distance_column_is_in_mm(tmp_path: Path) -> None:
    rec = dr_study_record()
    rows = _rows(_table(_html(tmp_path, rec), "study-dr-table"))
    mean_mm = 1000 * _real(rec.outcomes).groupby("setting")["final_distance"].mean()
    assert {r[0]: r[10] for r in rows} == {s: f"{v:.1f}" for s, v in mean_mm.items()}


def test_a_record_without_distance_effects_renders_without_them(tmp_path: Path) -> None:
    html = _html(tmp_path, replace(dr_study_record(), distance_effects=()))
    assert 'id="study-dr-distance-effects"' not in html
    assert list(_pngs(html)) == ["forest plot: effect vs Clean"]
    assert _table(html, "study-dr-effects") and _table(html, "study-dr-comparisons")
    cap = re.search(r'id="study-dr-caption">(.*?)</p>', html, re.DOTALL).group(1)
    assert "final distance" not in cap and "Two measures" not in html


@pytest.mark.parametrize(("lo", "hi", "diff", "words"), [
    (-0.030, -0.004, -0.02, ("a ends closer to the target than b: the 95% interval "
                             "[-30.0, -4.0] mm excludes 0.")),
    (0.004, 0.030, 0.02, ("a ends farther from the target than b: the 95% interval "
                          "[+4.0, +30.0] mm excludes 0.")),
    (-0.030, 0.004, -0.01, ("a and b are not told apart on the final distance: the 95% "
                            "interval [-30.0, +4.0] mm contains 0 (difference -10.0 mm).")),
    (-0.030, 0.0, -0.01, "not told apart on the final distance"),  # touching 0
    (-0.001, 0.001, -0.00004, "(difference +0.0 mm)"),  # no "-0.0" after rounding
])
def test_distance_comparison_sentence(lo: float, hi: float, diff: float, words: str) -> None:
    c = {**_distance_comparison(lo, hi, diff), "a": "a", "b": "b"}
    assert words in comparison_sentence(c)
    assert "succeeds" not in comparison_sentence(c)
    old = {k: v for k, v in c.items() if k != "measure"}  # recognised by its name too
    assert comparison_sentence(old) == comparison_sentence(c)


def test_distance_comparison_row_says_closer_in_mm_after_its_success_row(
        tmp_path: Path) -> None:
    rec = dr_study_record()
    comps = (*rec.comparisons, _distance_comparison(-0.030, -0.004, -0.0125))
    rows = _rows(_table(_html(tmp_path, replace(rec, comparisons=comps)), "study-dr-comparisons"))
    assert [r[0] for r in rows] == ["granularity: BG frame vs episode",
                                    "granularity: BG frame vs episode (final distance)",
                                    "spatial: TH vs Clean"]
    dist = rows[1]
    assert dist[3:5] == ["49.8 mm", "62.3 mm"]
    assert dist[5] == "-12.5 mm <span class='ci'>[-30.0, -4.0]</span>"
    assert "BG-frame ends closer to the target than BG" in dist[-1]
    assert "excludes 0" in dist[-1] and "succeeds" not in dist[-1]
    # the success rows keep their rates and wording
    assert rows[0][3] == f"{rec.comparisons[0]['rate_a']:.3f}"
    assert "TH succeeds more often than Clean" in rows[2][-1]


@pytest.mark.parametrize(("lo", "hi", "higher", "side"), [
    (0.1, 0.3, True, "better"), (-0.3, -0.1, True, "worse"),
    (-0.03, -0.01, False, "better"),  # closer than Clean: green in the distance forest
    (0.01, 0.03, False, "worse"), (-0.01, 0.02, False, "unclear"), (0.0, 0.02, False, "unclear"),
])
def test_forest_colours_follow_the_measures_good_side(lo: float, hi: float, higher: bool,
                                                     side: str) -> None:
    from realgap.report.sections.study_dr import _side

    assert _side(lo, hi, higher) == side
