"""A report section for every run kind, tested from the registries.

The run kinds come from :data:`realgap.store.RUN_KINDS`, the sections from
:func:`realgap.report.sections.sections`; each kind has a tiny database written through its
store module (``tests/tiny_runs.py``). Also: the evaluate grid's protocol order and numbers,
and (in headless Chromium) that the report of each kind's database shows that kind's section.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from tiny_runs import MAKERS, evaluation_record, tiny_db

from realgap.cli import main
from realgap.report import build_report
from realgap.report.html import rendered_sections
from realgap.report.sections import ANY_KIND, SECTIONS, Section, register_section, sections
from realgap.stats import iqm, probability_of_improvement, wilson_interval
from realgap.store import RUN_KINDS, ResultsDB
from realgap.store import evaluate as eval_layout

#: Kinds whose tiny database is made elsewhere (by their own tests).
MADE_ELSEWHERE = {"scores-study": "tests/test_study.py writes a study run end to end"}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _kinds_of(sec: Section) -> list[str]:
    return [k for k in sec.kinds if k != ANY_KIND]


def test_every_run_kind_has_a_section_and_a_tiny_database() -> None:
    secs = sections()
    for kind in RUN_KINDS:
        assert any(kind in s.kinds for s in secs), f"no report section renders {kind!r} runs"
        assert kind in MAKERS or kind in MADE_ELSEWHERE, f"no tiny {kind!r} database to test on"


def test_every_section_declares_known_kinds() -> None:
    for sec in sections():
        assert sec.kinds, f"section {sec.name} declares no run kind"
        for kind in _kinds_of(sec):
            assert kind in RUN_KINDS, f"section {sec.name} renders unknown kind {kind!r}"
    anchors = [s.anchor for s in sections()]
    assert len(anchors) == len(set(anchors)), "two sections share an anchor"


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_sections_render_on_a_tiny_database_of_their_kind(tmp_path: Path, kind: str) -> None:
    tiny_db(tmp_path, kind)
    with ResultsDB(tmp_path, read_only=True) as db:
        shown = {s.name for s in rendered_sections(db)}
        for sec in sections():
            body = sec.render(db)
            if kind in sec.kinds:
                assert sec.name in shown
                assert body, f"section {sec.name} shows nothing for a {kind} run"
            elif ANY_KIND not in sec.kinds:
                assert sec.name not in shown
                assert body is None, f"section {sec.name} renders a {kind} database"


def test_report_has_the_kind_sections_and_provenance(tmp_path: Path) -> None:
    for kind in ("evaluate", "rollout"):
        tiny_db(tmp_path / kind, kind)
        html = build_report(tmp_path / kind).read_text(encoding="utf-8")
        assert '<section id="provenance">' in html
        for sec in sections():
            if kind in sec.kinds:
                assert f'<section id="{sec.anchor}">' in html


def test_a_registered_plugin_section_is_rendered_for_its_kind(tmp_path: Path) -> None:
    calls: list[str] = []

    def render(db: object) -> str:
        calls.append("x")
        return "<p id='plugin-body'>plugin</p>"

    register_section("test-plugin", anchor="test-plugin", title="Plugin", kinds=("rollout",),
                     order=999)(render)
    try:
        tiny_db(tmp_path / "r", "rollout")
        tiny_db(tmp_path / "v", "vat")
        assert "plugin-body" in build_report(tmp_path / "r").read_text(encoding="utf-8")
        assert "plugin-body" not in build_report(tmp_path / "v").read_text(encoding="utf-8")
        assert calls == ["x"]
    finally:
        SECTIONS._entries.pop("test-plugin")


# -- the evaluate section's numbers ----------------------------------------------------------
def _evaluate_html(tmp_path: Path) -> str:
    tiny_db(tmp_path, "evaluate")
    with ResultsDB(tmp_path, read_only=True) as db:
        from realgap.report.sections import protocol

        html = protocol.render(db)
    assert html is not None
    return html


def test_evaluate_grid_is_in_protocol_order_with_counts_and_wilson(tmp_path: Path) -> None:
    html = _evaluate_html(tmp_path)
    grid = re.search(r'<table id="protocol-grid-0".*?</table>', html, re.DOTALL)
    assert grid is not None
    heads = re.findall(r"<th(?:\s[^>]*)?>(.*?)</th>", grid.group(0))
    assert heads == ["policy", "base", "LT-dim", "BG-unseen", "CP-far", "pooled"]  # not sorted
    rows = re.findall(r"<tr>(.*?)</tr>", grid.group(0).split("<tbody>")[1], re.DOTALL)
    assert [re.search(r"<td[^>]*>(.*?)</td>", r).group(1) for r in rows] == ["expert", "bc-policy"]
    lo, hi = wilson_interval(3, 4)
    assert f"3/4<br>0.750 <span class='ci'>[{lo:.3f}, {hi:.3f}]</span>" in rows[0]  # expert base
    plo, phi = wilson_interval(8, 16)  # 3 + 2 + 1 + 2 successes of 4 seeds x 4 conditions
    assert f"8/16<br>0.500 <span class='ci'>[{plo:.3f}, {phi:.3f}]</span>" in rows[0]  # pooled


def test_evaluate_aggregates_match_hand_computed_values(tmp_path: Path) -> None:
    html = _evaluate_html(tmp_path)
    agg = re.search(r'<table id="protocol-aggregates-0".*?</table>', html, re.DOTALL).group(0)
    assert "trials independent" in html and "seed bootstrap" in agg
    # expert's condition rates 0.75, 0.5, 0.25, 0.5 -> IQM = mean of the middle two = 0.5
    assert iqm(np.array([[0.75, 0.5, 0.25, 0.5]])) == pytest.approx(0.5)
    assert "0.500 <span class='ci'>" in agg
    imp = re.search(r'<table id="protocol-improvement-0".*?</table>', html, re.DOTALL).group(0)
    a = evaluation_record("expert").success_matrix()[2]
    b = np.array([[1, 0, 0, 1], [0, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]], dtype=float)
    p = probability_of_improvement(a, b)
    assert p > 0.5 and f"{p:.3f} <span class='ci'>" in imp
    assert f"{1 - p:.3f} <span class='ci'>" in imp  # P(Y > X) = 1 - P(X > Y)


def test_evaluate_section_is_seeded(tmp_path: Path) -> None:
    def tables(html: str) -> list[str]:
        return re.findall(r'<table id="protocol-(?:aggregates|improvement)-0".*?</table>', html,
                          re.DOTALL)

    a, b = tables(_evaluate_html(tmp_path / "a")), tables(_evaluate_html(tmp_path / "b"))
    assert len(a) == 2 and a == b


def test_aggregate_intervals_are_the_stats_librarys() -> None:
    """The section's fast bootstrap draws what realgap.stats.stratified_bootstrap_ci draws,
    and its statistics equal the library's IQM and probability of improvement."""
    from realgap.report.sections.protocol import improvement, iqm_of_conditions
    from realgap.stats import stratified_bootstrap_ci

    rng = np.random.default_rng(3)
    x = (rng.random((7, 5)) < 0.6).astype(float)
    y = (rng.random((7, 5)) < 0.4).astype(float)
    ours = iqm_of_conditions(x, n_boot=300, rng=11)
    lib = stratified_bootstrap_ci(lambda m: iqm(m.mean(axis=0)), x, n_boot=300, rng=11)
    assert (ours.value, ours.lo, ours.hi, ours.n) == pytest.approx((lib.value, lib.lo, lib.hi, lib.n))
    ours = improvement(x, y, n_boot=300, rng=11)
    lib = stratified_bootstrap_ci(probability_of_improvement, x, y, n_boot=300, rng=11)
    assert (ours.value, ours.lo, ours.hi) == pytest.approx((lib.value, lib.lo, lib.hi))
    assert ours.lo <= ours.value <= ours.hi


def test_evaluate_section_shows_a_pinned_older_run(tmp_path: Path) -> None:
    with ResultsDB(tmp_path) as db:
        old = eval_layout.write_evaluation(db, evaluation_record("expert", {
            "base": [0, 0, 0, 0], "LT-dim": [0, 0, 0, 0], "BG-unseen": [0, 0, 0, 0],
            "CP-far": [0, 0, 0, 0]}))
        eval_layout.write_evaluation(db, evaluation_record("expert"))
    new_html = build_report(tmp_path).read_text(encoding="utf-8")
    old_html = build_report(tmp_path, run_ids=[str(old.run_id)]).read_text(encoding="utf-8")
    assert "8/16" in new_html and "0/16" not in new_html
    assert "0/16" in old_html and "8/16" not in old_html


def test_report_cli_json_lists_sections(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tiny_db(tmp_path, "rollout")
    assert main(["report", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sections"] == ["rollout", "comparison", "provenance"]
    assert [r["kind"] for r in out["runs"]] == ["rollout", "rollout"]
    assert Path(out["report"]).is_file()


def test_correlate_reads_evaluate_databases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Counts k/n from two results databases: the rates are pooled k/n, the intervals come
    from the bootstrap, and the run stores the counts."""
    for side, tables in (("sim", ([1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 1])),
                         ("real", ([1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]))):
        with ResultsDB(tmp_path / side) as db:
            for name, succ in zip(("p1", "p2", "p3"), tables, strict=True):
                eval_layout.write_evaluation(db, evaluation_record(name, dict.fromkeys(
                    ("base", "LT-dim", "BG-unseen", "CP-far"), succ)))
    assert main(["correlate", "--sim", str(tmp_path / "sim"), "--real", str(tmp_path / "real"),
                 "--n-boot", "300", "--json", "--out", str(tmp_path / "out")]) == 0
    out = json.loads(capsys.readouterr().out)
    pooled = out["results"]["pooled"]
    # sim rates 1, .5, .25 and real .75, .25, 0: same order -> Spearman 1, MMRV 0
    assert pooled["spearman_rho"] == pytest.approx(1.0) and pooled["mmrv"] == 0.0
    assert pooled["n_boot"] == 300 and pooled["mmrv_lo"] == 0.0 <= pooled["mmrv_hi"]
    assert pooled["spearman_lo"] <= pooled["spearman_rho"]
    pts = {p["policy"]: p for p in out["points"]}
    assert (pts["p1"]["sim_k"], pts["p1"]["sim_n"], pts["p1"]["real_k"]) == (16, 16, 12)
    assert main(["correlate", "--sim", str(tmp_path / "sim"), "--real", str(tmp_path / "real"),
                 "--n-boot", "300", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"] == out["results"]  # seeded
    html = build_report(tmp_path / "out").read_text(encoding="utf-8")
    assert "Spearman rho [95% bootstrap]" in html


def test_correlate_db_without_evaluate_runs_is_one_line(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    tiny_db(tmp_path / "r", "rollout")
    csv = tmp_path / "real.csv"
    csv.write_text("policy,success_rate\na,0.1\nb,0.2\n")
    assert main(["correlate", "--sim", str(tmp_path / "r"), "--real", str(csv)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no finished evaluate run" in err


# -- in Chromium -------------------------------------------------------------------------------
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make system-deps installs it)")
def test_each_kind_report_shows_its_section_in_chromium(tmp_path: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    pages = {}
    for kind in sorted(MAKERS):
        tiny_db(tmp_path / kind, kind)
        pages[kind] = build_report(tmp_path / kind)
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            for kind, path in pages.items():
                page.goto(path.as_uri())
                for sec in sections():
                    if kind in sec.kinds:
                        loc = page.locator(f"section#{sec.anchor} h2")
                        assert loc.count() == 1, f"{kind}: no section {sec.anchor}"
                        assert loc.inner_text() == sec.title
                        assert page.locator(f"nav a[href='#{sec.anchor}']").count() == 1
                assert page.locator("section#provenance table#runs-table tbody tr").count() >= 1
            assert errors == []
        finally:
            browser.close()


def test_end_to_end_evaluate_and_rollout_reports_show_outcomes(tmp_path: Path) -> None:
    """A real (tiny) `realgap evaluate` and `realgap rollout` of the scripted expert, then the
    report: the grid lists the protocol's conditions in the file's order, not sorted; the
    rollout's 4-step cap is too short for the reach, so it fails both episodes."""
    from realgap.protocol.spec import load_protocol

    raw = json.loads(json.dumps(load_protocol("tabletop-v1").raw))
    raw.update(name="tiny", trials=2, conditions=[{"name": "TD-4", "factor": "TD", "value": 4},
                                                   {"name": "LT-dim", "factor": "LT", "value": "dim"}])
    proto = tmp_path / "tiny.json"
    proto.write_text(json.dumps(raw))
    out = tmp_path / "res"
    common = ["--workers", "1", "--image-size", "32", "--no-progress", "--out", str(out)]
    assert main(["evaluate", "--policy", "expert", "--task", "reach-mug", "--protocol",
                 str(proto), *common]) == 0
    assert main(["rollout", "--policy", "expert", "--task", "reach-mug", "--seeds", "0,1",
                 "--max-steps", "4", *common]) == 0
    html = build_report(out).read_text(encoding="utf-8")
    assert '<section id="protocol">' in html and '<section id="rollout">' in html
    grid = re.search(r'<table id="protocol-grid-0".*?</table>', html, re.DOTALL).group(0)
    heads = re.findall(r"<th(?:\s[^>]*)?>(.*?)</th>", grid)
    assert heads[:4] == ["policy", "base", "TD-4", "LT-dim"]
    assert re.search(r">\d/6<br>", grid)  # pooled: 3 conditions x 2 trials
    assert "0/2" in re.search(r'<table id="rollout-table".*?</table>', html, re.DOTALL).group(0)
