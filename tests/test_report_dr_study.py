"""Report section "study-dr" on a hand-made ``dr-study`` run: the reference's table (its
numbers are ``realgap.study.dr.factor_table``'s), the forest plot, the comparisons'
sentences, and the caption on what the intervals rest on. No simulator: fast."""

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
