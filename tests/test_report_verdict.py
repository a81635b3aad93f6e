"""The report's verdict: each sentence follows from the numbers (hand-made rankings/estimates)."""

from __future__ import annotations

from realgap.report.sections.verdict import (
    coverage_sentence,
    domain_sentence,
    floor_sentence,
    pretrained_sentence,
    ranking_sentence,
)


def _est(v: float, lo: float, hi: float, **more: float) -> dict[str, float]:
    return {"value": v, "lo": lo, "hi": hi, **more}


def _rank(name: str, rank: int, value: float, *tied: str) -> dict[str, object]:
    return {"encoder": name, "rank": rank, "value": value, "tied_with": list(tied),
            "score": "combined"}


def test_clear_winner_is_named_with_its_margin() -> None:
    ranking = [_rank("oracle", 1, 0.9), _rank("a", 2, 0.5, "b"), _rank("b", 2, 0.48, "a"),
               _rank("noise", 4, 0.0)]
    est = {"oracle": {"combined": _est(0.9, 0.85, 0.95)}}
    s = ranking_sentence(ranking, est)
    assert "Best: <b>oracle</b>" in s and "0.400 ahead of the next (<b>a</b>)" in s
    assert "beyond noise" in s


def test_tied_top_and_all_tied() -> None:
    tied = [_rank("a", 1, 0.5, "b"), _rank("b", 1, 0.49, "a"), _rank("c", 3, 0.1)]
    s = ranking_sentence(tied, {})
    assert "cannot be told apart from <b>b</b>" in s and "share rank 1" in s
    every = [_rank("a", 1, 0.5, "b"), _rank("b", 1, 0.49, "a")]
    assert "No encoder can be told apart" in ranking_sentence(every, {})
    assert ranking_sentence([], {}) == "No ranking was recorded for this run."


def test_floor_sentence_splits_encoders_by_their_floor() -> None:
    est = {"good": {"as_sim": _est(0.7, 0.6, 0.8), "as_sim_floor": _est(0.02, 0.0, 0.05)},
           "bad": {"as_sim": _est(0.06, 0.0, 0.12), "as_sim_floor": _est(0.03, 0.0, 0.08)}}
    s = floor_sentence(est)
    assert s is not None
    assert "<b>good</b> lies above" in s and "<b>bad</b> cannot be told from the floor" in s
    assert floor_sentence({"x": {}}) is None


def test_domain_sentence_reads_the_permutation_p_value() -> None:
    sep = {"a": {"c2st_acc": _est(0.99, 0.97, 1.0, p_value=0.005)},
           "b": {"c2st_acc": _est(0.52, 0.45, 0.6, p_value=0.4)}}
    s = domain_sentence(sep)
    assert s is not None and "<b>a</b> tell sim from real" in s and "<b>b</b> do not" in s
    assert "every encoder" in (domain_sentence({"a": sep["a"]}) or "")
    assert "no encoder" in (domain_sentence({"b": sep["b"]}) or "")


def test_coverage_and_pretrained_sentences() -> None:
    meta = {"lite": {"n_real": 200, "training": "Supervised", "weights_origin": "package"},
            "rand": {"n_real": 200, "training": None, "weights_origin": "random-init (seed 0)"}}
    s = coverage_sentence({"lite": {}, "rand": {}}, {"lite": [{}] * 30, "rand": []}, meta)
    assert s is not None and "<b>lite</b> 30/200" in s and "<b>rand</b> 0/200" in s
    ranking = [_rank("lite", 1, 0.6), _rank("rand", 2, 0.2)]
    assert "Trained weights matter" in (pretrained_sentence(ranking, meta) or "")
    tied = [_rank("lite", 1, 0.6, "rand"), _rank("rand", 1, 0.5, "lite")]
    assert "No trained encoder separates" in (pretrained_sentence(tied, meta) or "")


def _db_with_two_gap_runs(tmp_path):
    from realgap.store import ResultsDB, Score

    ids = []
    with ResultsDB(tmp_path / "results.duckdb") as db:
        for i, v in enumerate((0.3, 0.6)):
            run = db.new_run("gap", {"encoders": ["a", "b"]}, name=f"run{i}")
            db.add_subject(run, "a", "encoder", {"weights_origin": "x"})
            db.add_subject(run, "b", "encoder", {"weights_origin": "random-init (seed 0)"})
            db.add_scores(run, [Score("a", "combined", v, v - 0.1, v + 0.1, 10),
                                Score("b", "combined", 0.1, 0.0, 0.2, 10),
                                Score("a", "rank", 1, None, None, 10, "",
                                      {"score": "combined", "value": v, "tied_with": []}),
                                Score("b", "rank", 2, None, None, 10, "",
                                      {"score": "combined", "value": 0.1, "tied_with": []})])
            db.finish_run(run, "ok")
            ids.append(run)
    return ids


def test_report_run_pick_and_comparison(tmp_path) -> None:
    from realgap.cli import main
    from realgap.report import build_report

    first, second = _db_with_two_gap_runs(tmp_path)
    html = build_report(tmp_path).read_text()
    assert f"Generated from run {second}" in html            # newest by default
    assert 'id="compare-gap"' in html and "0.300" in html and "0.600" in html
    html = build_report(tmp_path, run_ids=[first]).read_text()
    assert f"Generated from run {first}" in html and f"showing run(s) {first}" in html
    assert main(["report", str(tmp_path), "--run", first]) == 0
    assert main(["report", str(tmp_path), "--run", "nope"]) == 2
    assert main(["report", str(tmp_path), "--run", first, "--run", second]) == 2  # one per kind


def test_demo_json_is_gap_json_per_severity(tmp_path, monkeypatch, capsys) -> None:
    """`realgap demo --json` prints, per severity, exactly what `realgap gap --json` prints."""
    import json
    from pathlib import Path

    from realgap.cli import main
    from realgap.jobs import demo
    from realgap.jobs.gap import GapResult, result_json

    runs = {real: GapResult(run_id=f"r-{real}", db_path=Path(tmp_path / "results.duckdb"),
                            report_path=Path(tmp_path / "report.html"),
                            estimates={"pixels": {"combined": {"value": 0.1, "lo": 0.0,
                                                               "hi": 0.2, "n": 10}}},
                            ranking=("pixels",), seconds=1.0, timings={},
                            ranks=[{"encoder": "pixels", "rank": 1, "value": 0.1,
                                    "tied_with": [], "score": "combined"}],
                            flagged={"pixels": []}, space={"pixels": {}}, warnings=[])
            for real in ("real-proxy-mild", "real-proxy-strong")}
    fake = demo.DemoResult(runs=runs, frameset_hash="abc", seconds=2.0, timings={})
    monkeypatch.setattr(demo, "run_demo", lambda out, cfg: fake)
    assert main(["demo", "--out", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dataset"] == "abc" and list(out["runs"]) == list(runs)
    for real, run in runs.items():
        assert out["runs"][real] == json.loads(json.dumps(result_json(run)))
