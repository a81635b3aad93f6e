"""``realgap study scores``: the statistics on hand-made outcomes (known answers, same seed
same results, intervals from the paired bootstrap), the store round trip (the correlation
recomputed from the database equals the stored one), and the CLI's bad input.

No simulator, no torch: milliseconds. The end-to-end run is ``test_study_tiny.py`` (slow).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from realgap.errors import ConfigError, DataError
from realgap.study.analysis import (
    best_predictor,
    correlate_scores,
    outcome_grid,
    performance,
    summarize,
)
from realgap.study.config import preset_config

ENCODERS = ("a", "b", "c", "d")
DOMAINS = ("sim", "real-proxy-mild")


def _outcomes(rates: dict[str, tuple[float, float]], n_seeds: int = 2, n_eps: int = 10,
              rng: int = 0) -> pd.DataFrame:
    """Hand-made outcomes: encoder -> (sim rate, real rate); successes spread so that each
    seed plays exactly round(rate * n_eps) successes per domain."""
    gen = np.random.default_rng(rng)
    rows = []
    for enc, (p_sim, p_real) in rates.items():
        for seed in range(n_seeds):
            for dom, p in zip(DOMAINS, (p_sim, p_real), strict=True):
                k = round(p * n_eps)
                succ = np.zeros(n_eps, bool)
                succ[gen.permutation(n_eps)[:k]] = True
                for ep in range(n_eps):
                    rows.append({"encoder": enc, "seed": seed, "domain": dom, "episode": 100 + ep,
                                 "success": bool(succ[ep]),
                                 "final_distance": 0.02 if succ[ep] else 0.1 + 0.01 * ep,
                                 "ret": -1.0, "length": 10})
    return pd.DataFrame(rows)


RATES = {"a": (1.0, 0.9), "b": (0.9, 0.6), "c": (0.8, 0.3), "d": (0.7, 0.1)}


def _scores(values: dict[str, float], metric: str = "dis_cal") -> dict[str, dict[str, dict[str, float]]]:
    return {"real-proxy-mild": {e: {metric: v} for e, v in values.items()}}


def _row(rows: list, score: str, target: str, stat: str):
    return next(r for r in rows if r.score == score and r.target == target and r.statistic == stat)


def test_grid_and_performance_hand_worked() -> None:
    grid = outcome_grid(_outcomes(RATES))
    assert grid.domains == DOMAINS and grid.encoders == ENCODERS
    perf = performance(grid)
    assert np.allclose(perf["success"][:, 1], [0.9, 0.6, 0.3, 0.1])
    assert np.allclose(perf["success_drop"][:, 1], [0.1, 0.3, 0.5, 0.6])
    assert np.allclose(perf["success_drop"][:, 0], 0.0)
    rows = summarize(grid)
    mild_a = next(r for r in rows if r["encoder"] == "a" and r["domain"] == "real-proxy-mild")
    assert (mild_a["successes"], mild_a["trials"]) == (18, 20)
    assert mild_a["wilson_lo"] < 0.9 < mild_a["wilson_hi"]


def test_a_score_in_the_real_order_correlates_perfectly() -> None:
    oc = _outcomes(RATES)
    rows = correlate_scores(oc, _scores({"a": 0.9, "b": 0.7, "c": 0.5, "d": 0.2}),
                            n_boot=200, rng=0)
    sp = _row(rows, "dis_cal", "success", "spearman_rho")
    assert sp.value == pytest.approx(1.0) and sp.n == 4
    assert sp.lo <= sp.value <= sp.hi
    assert _row(rows, "dis_cal", "success", "mmrv").value == 0.0
    # the drop grows as the score falls: a perfect negative rank correlation, MMRV 0
    assert _row(rows, "dis_cal", "success_drop", "spearman_rho").value == pytest.approx(-1.0)
    assert _row(rows, "dis_cal", "success_drop", "mmrv").value == 0.0
    best = best_predictor(rows)["real-proxy-mild"]
    assert best["score"] == "dis_cal" and best["oriented"] == pytest.approx(1.0)
    assert best["n_encoders"] == 4 and best["tied_with"] == []


def test_lower_is_better_scores_are_oriented_for_mmrv() -> None:
    oc = _outcomes(RATES)
    # MMD falls as transfer improves: rho = -1, and MMRV (oriented) is 0
    rows = correlate_scores(oc, _scores({"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.4}, "mmd"),
                            n_boot=0)
    assert _row(rows, "mmd", "success", "spearman_rho").value == pytest.approx(-1.0)
    assert _row(rows, "mmd", "success", "mmrv").value == 0.0
    # the reverse order violates every pair: MMRV = mean of the largest margins
    rows = correlate_scores(oc, _scores({"a": 0.4, "b": 0.3, "c": 0.2, "d": 0.1}, "mmd"),
                            n_boot=0)
    assert _row(rows, "mmd", "success", "mmrv").value == pytest.approx(np.mean([0.8, 0.5, 0.6, 0.8]))
    assert np.isnan(_row(rows, "mmd", "success", "spearman_rho").lo)  # no bootstrap asked


def test_same_seed_same_results_other_seed_other_intervals() -> None:
    oc = _outcomes({"a": (0.9, 0.5), "b": (0.8, 0.6), "c": (0.6, 0.2), "d": (0.5, 0.4)})
    sc = _scores({"a": 0.9, "b": 0.7, "c": 0.5, "d": 0.2})
    one = correlate_scores(oc, sc, n_boot=300, rng=7)
    two = correlate_scores(oc, sc, n_boot=300, rng=7)
    other = correlate_scores(oc, sc, n_boot=300, rng=8)
    assert [r.as_dict() for r in one] == [r.as_dict() for r in two]
    assert [r.as_dict() for r in one] != [r.as_dict() for r in other]
    # the point does not depend on the bootstrap
    assert [r.value for r in one] == [r.value for r in other]


def test_interval_comes_from_resampling_not_from_the_point() -> None:
    """With every encoder's outcomes identical across seeds and episodes, redrawing them
    changes nothing: the interval collapses to the point (it is never widened to hold it)."""
    rows = []
    for enc, p in zip(ENCODERS, (1.0, 1.0, 0.0, 0.0), strict=True):
        for seed in range(2):
            for dom in DOMAINS:
                for ep in range(5):
                    rows.append({"encoder": enc, "seed": seed, "domain": dom, "episode": ep,
                                 "success": bool(p), "final_distance": 0.3 - 0.1 * ENCODERS.index(enc)})
    res = correlate_scores(pd.DataFrame(rows), _scores({"a": 4, "b": 3, "c": 2, "d": 1}),
                           n_boot=100, rng=0)
    r = _row(res, "dis_cal", "final_distance", "pearson_r")  # distances 0.3, 0.2, 0.1, 0.0
    assert r.value == pytest.approx(1.0) and r.lo == pytest.approx(1.0) and r.hi == pytest.approx(1.0)


def test_unpaired_outcomes_are_refused() -> None:
    oc = _outcomes(RATES)
    with pytest.raises(DataError, match="paired grid"):
        outcome_grid(oc.iloc[1:])
    dup = oc.copy()
    dup.loc[0, "episode"] = 101  # one cell twice, another missing
    with pytest.raises(DataError, match="repeated"):
        outcome_grid(dup)


def test_store_round_trip_recomputes_the_stored_correlation(tmp_path: Path) -> None:
    from realgap.store.db import ResultsDB
    from realgap.store.study import ScoresStudyRecord, read_scores_study, write_scores_study

    oc = _outcomes({"a": (0.9, 0.5), "b": (0.8, 0.6), "c": (0.6, 0.2), "d": (0.5, 0.4)})
    scores = {"real-proxy-mild": {e: {"dis_cal": {"value": v, "lo": v - 0.1, "hi": v + 0.1},
                                      "mmd": {"value": 1 - v, "lo": None, "hi": None}}
                                  for e, v in zip(ENCODERS, (0.9, 0.7, 0.5, 0.2), strict=True)}}
    points = {d: {e: {m: v["value"] for m, v in ms.items()} for e, ms in by.items()}
              for d, by in scores.items()}
    corr = correlate_scores(oc, points, n_boot=150, rng=3)
    summary = summarize(outcome_grid(oc))
    with ResultsDB(tmp_path / "results.duckdb") as db:
        rec = write_scores_study(db, ScoresStudyRecord(
            {"seed": 3, "n_boot_correlation": 150, "preset": "test"}, oc, scores, tuple(corr),
            tuple(summary)))
    with ResultsDB(tmp_path / "results.duckdb", read_only=True) as db:
        back = read_scores_study(db, str(rec.run_id))
    assert back.scores["real-proxy-mild"]["a"]["dis_cal"] == {"value": 0.9, "lo": 0.8, "hi": 1.0}
    again_points = {d: {e: {m: v["value"] for m, v in ms.items()} for e, ms in by.items()}
                    for d, by in back.scores.items()}
    again = correlate_scores(back.outcomes, again_points, n_boot=int(back.config["n_boot_correlation"]),
                             rng=int(back.config["seed"]))
    key = lambda r: (r.domain, r.score, r.target, r.statistic)
    stored = {key(r): r.as_dict() for r in back.correlations}
    assert stored == {key(r): r.as_dict() for r in again}
    assert stored == {key(r): r.as_dict() for r in corr}
    assert len(back.summary) == len(summary)


def test_presets_and_bad_config() -> None:
    tiny = preset_config("tiny", "x")
    assert len(tiny.encoders) == 5 and tiny.preset == "tiny"
    assert preset_config("tiny", "x", seeds=(0, 1)).seeds == (0, 1)
    with pytest.raises(ConfigError, match="--preset 'huge'"):
        preset_config("huge", "x")
    with pytest.raises(ConfigError, match="at least 2"):
        preset_config("tiny", "x", encoders=("pixels",))


def test_cli_bad_preset_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from realgap.cli import main

    assert main(["study", "scores", "--preset", "huge", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("realgap: error: --preset 'huge'")
    assert not (tmp_path / "s").exists()


def test_report_shows_the_study_section(tmp_path: Path) -> None:
    from realgap.report import build_report
    from realgap.store.db import ResultsDB
    from realgap.store.study import ScoresStudyRecord, write_scores_study

    oc = _outcomes(RATES)
    scores = {"real-proxy-mild": {e: {"dis_cal": {"value": v, "lo": v - 0.1, "hi": v + 0.1}}
                                  for e, v in zip(ENCODERS, (0.9, 0.7, 0.5, 0.2), strict=True)}}
    corr = correlate_scores(oc, {"real-proxy-mild": {e: {"dis_cal": s["dis_cal"]["value"]}
                                                     for e, s in scores["real-proxy-mild"].items()}},
                            n_boot=50, rng=0)
    with ResultsDB(tmp_path / "results.duckdb") as db:
        write_scores_study(db, ScoresStudyRecord({"preset": "test", "seeds": [0, 1]}, oc, scores,
                                                 tuple(corr), tuple(summarize(outcome_grid(oc)))))
    html = build_report(tmp_path).read_text()
    assert 'id="study"' in html and "study-correlation" in html and "study-closed-loop" in html
    assert "data:image/png;base64" in html
    # the k/n and Wilson cells sort by the success rate (0.9 for 18/20), not as text
    import re

    table = html[html.index('id="study-closed-loop"'):]
    table = table[:table.index("</table>")]
    cells = re.findall(r'<td data-sort="([^"]*)">([^<]*)', table)
    kn = [(key, shown) for key, shown in cells if re.fullmatch(r"\d+/\d+", shown)]
    assert kn and all(float(key) == pytest.approx(int(shown.split("/")[0]) /
                                                  int(shown.split("/")[1])) for key, shown in kn)
    assert ("0.9", "18/20") in kn

    # in a browser: the section renders without script errors and its table sorts by rate
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    playwright = pytest.importorskip("playwright.sync_api") if chromium else None
    if playwright is None:
        return
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox",
                                                                     "--disable-gpu"])
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto((tmp_path / "report.html").as_uri())
            assert page.locator("section#study h2").count() == 1
            assert page.locator("section#study img").count() >= 1
            assert page.locator("table#study-closed-loop tbody tr").count() == len(ENCODERS) * 2
            assert errors == []
        finally:
            browser.close()


def test_bad_names_fail_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from realgap.cli import main

    for args in (["--encoders", "pixels,resnet18-randm"], ["--head", "dpt"],
                 ["--encoders", "pixels,bc-sim,bc-sim"]):
        assert main(["study", "scores", "--out", str(tmp_path / "s"), *args]) == 2
        assert capsys.readouterr().err.startswith("realgap: error: ")
        assert not (tmp_path / "s").exists()


def test_no_interval_when_the_statistic_is_mostly_undefined() -> None:
    """One success among all episodes: most redraws have no success at all, so rho is
    undefined there and no interval is claimed."""
    rates = {"a": (0.0, 0.1), "b": (0.0, 0.0), "c": (0.0, 0.0), "d": (0.0, 0.0)}
    rows = correlate_scores(_outcomes(rates, n_seeds=1), _scores({"a": 4, "b": 3, "c": 2, "d": 1}),
                            n_boot=200, rng=0)
    r = _row(rows, "dis_cal", "success", "spearman_rho")
    assert np.isfinite(r.value) and np.isnan(r.lo) and np.isnan(r.hi)


def test_a_device_this_machine_lacks_fails_before_any_work(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    from realgap.cli import main

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "s"
    assert main(["study", "scores", "--preset", "tiny", "--out", str(out),
                 "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--device 'cuda'" in err[0]
    assert not out.exists()
