"""`realgap protocol summarize` and `realgap correlate`: values, DB layout, one-line errors,
and the report sections built from their runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from realgap.cli import main
from realgap.protocol.stats import wilson_interval
from realgap.store import ResultsDB

COUNTS = """setting,task,condition,factor,successes,trials
BG,mug,base,base,8,10
BG,mug,light-2,LT,5,10
BG,box,base,base,3,10
all,mug,base,base,9,10
all,mug,light-2,LT,9,10
"""


def _write(tmp: Path, name: str, text: str) -> str:
    p = tmp / name
    p.write_text(text)
    return str(p)


def test_summarize_json_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "counts.csv", COUNTS)
    assert main(["protocol", "summarize", path, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["keys"] == ["task"]
    pooled = {(r["setting"], r["task"]): r for r in out["pooled"]}
    bg_mug = pooled[("BG", "mug")]
    assert (bg_mug["successes"], bg_mug["trials"]) == (13, 20) and bg_mug["rate"] == 0.65
    assert (bg_mug["lo"], bg_mug["hi"]) == pytest.approx(wilson_interval(13, 20))
    bg_all = pooled[("BG", None)]  # pooled over tasks: (8 + 5 + 3) / 30
    assert (bg_all["successes"], bg_all["trials"], bg_all["scope"]) == (16, 30, "setting")
    light = next(r for r in out["conditions"] if r["condition"] == "light-2" and r["setting"] == "BG")
    assert light["factor"] == "LT" and (light["lo"], light["hi"]) == pytest.approx(wilson_interval(5, 10))


def test_summarize_text_and_db_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "counts.csv", COUNTS)
    assert main(["protocol", "summarize", path, "--out", str(tmp_path / "res")]) == 0
    text = capsys.readouterr().out
    assert "13/20  0.650  [0.433, 0.819]" in text and "protocol-summary run" in text
    with ResultsDB(tmp_path / "res", read_only=True) as db:
        run = db.latest_run("protocol-summary")
        sc = db.scores(run)
    assert len(sc) == 5 + 5  # 5 conditions, 3 (setting, task) pooled + 2 setting pooled
    base = sc[(sc.subject == "BG") & (sc.grp == "base") & (sc.extra.str.contains('"mug"'))].iloc[0]
    extra = json.loads(base.extra)
    assert extra == {"successes": 8, "trials": 10, "factor": "base", "task": "mug", "base": True}
    assert (base.value, base.n, base.metric) == (0.8, 10, "success_rate")
    pooled = sc[(sc.grp == "pooled") & (sc.subject == "all")]
    assert sorted(json.loads(e)["task"] or "-" for e in pooled.extra) == ["-", "mug"]


@pytest.mark.parametrize("text,needle", [
    ("setting,condition,successes\nA,base,1\n", "missing column 'trials'"),
    ("setting,condition,successes,trials\nA,base,11,10\n", "line 2, column 'successes': 11 is greater than trials 10"),
    ("setting,condition,successes,trials\nA,base,1,10\nA,b,1,-3\n", "line 3, column 'trials': '-3' is negative"),
    ("setting,condition,successes,trials\nA,base,2.5,10\n", "line 2, column 'successes': '2.5' is not a whole number"),
    ("setting,condition,successes,trials\nA,base,x,10\n", "'x' is not a whole number"),
    ("setting,condition,successes,trials\nA,base,1,2\nA,base,1,2\n", "line 3 repeats setting 'A'"),
    ("setting,condition,successes,trials\n,base,1,2\n", "line 2, column 'setting' is empty"),
    ("setting,condition,successes,trials\n", "no rows"),
])
def test_summarize_bad_input_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                text: str, needle: str) -> None:
    path = _write(tmp_path, "bad.csv", text)
    assert main(["protocol", "summarize", path]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("realgap: error: ")
    assert needle in err and "bad.csv" in err


def test_summarize_reads_a_spreadsheet_bom(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbfsetting,condition,successes,trials\nA,base,1,2\n")
    assert main(["protocol", "summarize", str(path)]) == 0
    assert "1/2  0.500  [0.095, 0.905]" in capsys.readouterr().out


def test_summarize_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["protocol", "summarize", str(tmp_path / "none.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none.csv" in err


SIM = "policy,task,success_rate\np1,mug,0.1\np2,mug,0.5\np3,mug,0.3\np4,mug,0.8\np1,box,0.2\np2,box,0.4\np3,box,0.6\n"
REAL = "policy,task,success_rate\np1,mug,0.2\np2,mug,0.4\np3,mug,0.6\np4,mug,0.7\np1,box,0.1\np2,box,0.5\np3,box,0.55\n"


def test_correlate_cli_json_and_db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sim, real = _write(tmp_path, "sim.csv", SIM), _write(tmp_path, "real.csv", REAL)
    out_dir = str(tmp_path / "res")
    assert main(["correlate", "--sim", sim, "--real", real, "--json", "--out", out_dir]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "sim ranking against the real ranking" in out["convention"]
    mug = out["results"]["mug"]
    # mug: sim (0.1, 0.5, 0.3, 0.8), real (0.2, 0.4, 0.6, 0.7): only (p2, p3) is
    # misordered, real margin 0.2 -> per-policy maxima (0, .2, .2, 0) -> MMRV 0.1
    assert mug["mmrv"] == pytest.approx(0.1) and mug["n"] == 4
    assert mug["spearman_rho"] == pytest.approx(0.8)
    assert out["results"]["pooled"]["n"] == 7
    assert out["results"]["box"]["pearson_lo"] is None  # n = 3: no Fisher interval, null
    with ResultsDB(out_dir, read_only=True) as db:
        sc = db.scores(db.latest_run("correlate"))
    row = sc[(sc.metric == "pearson_r") & (sc.grp == "mug")].iloc[0]
    assert row.value == pytest.approx(mug["pearson_r"]) and row.n == 4
    assert len(sc[sc.metric == "sim_success_rate"]) == 7
    assert main(["correlate", "--sim", sim, "--real", real]) == 0
    assert "MMRV checks the sim ranking" in capsys.readouterr().out


def test_correlate_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sim = _write(tmp_path, "sim.csv", SIM)
    bad = _write(tmp_path, "real.csv", REAL.replace("0.55", "55"))
    assert main(["correlate", "--sim", sim, "--real", bad]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "real.csv: row 8, column 'success_rate': 55" in err
    assert main(["correlate", "--sim", sim, "--real", str(tmp_path / "x.csv")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["correlate", "--sim", sim, "--real", sim, "--alpha", "2"]) == 2
    assert "--alpha" in capsys.readouterr().err


def test_report_sections_render_from_the_db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from realgap.report.sections import correlation as corr_section
    from realgap.report.sections import protocol as proto_section

    out_dir = tmp_path / "res"
    path = _write(tmp_path, "counts.csv", COUNTS.replace("BG,mug,base", "<b>BG</b>,mug,base"))
    assert main(["protocol", "summarize", path, "--out", str(out_dir)]) == 0
    sim, real = _write(tmp_path, "sim.csv", SIM), _write(tmp_path, "real.csv", REAL)
    assert main(["correlate", "--sim", sim, "--real", real, "--out", str(out_dir)]) == 0
    with ResultsDB(out_dir, read_only=True) as db:
        proto = proto_section.render(db)
        corr = corr_section.render(db)
    assert proto is not None and corr is not None
    # "<b>BG</b>" is its own setting here: BG keeps light-2 (5/10) and box (3/10) -> 8/20
    assert "8/10" in proto and "8/20" in proto and "<b>BG</b>" not in proto  # escaped
    assert proto.count("<img") == 4  # one chart per (setting, task) with conditions
    assert "&lt;b&gt;BG&lt;/b&gt;" in proto
    assert "0.800 <span class='ci'>[0.490, 0.943]</span>" in proto
    assert corr.count("<img") == 1 and "MMRV checks the sim ranking" in corr
    empty = tmp_path / "empty"
    with ResultsDB(empty) as db:
        assert proto_section.render(db) is None and corr_section.render(db) is None


def test_protocol_section_reads_evaluate_runs(tmp_path: Path) -> None:
    """An `evaluate` run written in the layout realgap.protocol.runner uses."""
    from realgap.report.sections import protocol as proto_section
    from realgap.store import Score

    def score(cond: str, factor: str | None, k: int, n: int) -> Score:
        lo, hi = wilson_interval(k, n)
        return Score("expert", "success_rate", k / n, lo, hi, n, cond,
                     {"successes": k, "trials": n, "factor": factor, "task": "reach-mug",
                      "base": factor == "base"})

    with ResultsDB(tmp_path) as db:
        run = db.new_run("evaluate", {"protocol": "default"})
        db.add_scores(run, [score("base", "base", 9, 10), score("BG-unseen", "BG", 4, 10),
                            score("pooled", None, 13, 20)])
        db.finish_run(run)
    with ResultsDB(tmp_path, read_only=True) as db:
        html = proto_section.render(db)
    assert html is not None and html.count("<img") == 1
    assert "4/10" in html and "13/20" in html and "reach-mug" in html
