"""Visual Alignment Testing: the report section on known numbers, a minimal end-to-end
smoke run, bad input through the CLI, and (slow) the CPU-sized run under 15 minutes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from realgap.cli import main
from realgap.store import ResultsDB, Score


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("realgap: error:") and err.count("\n") == 1 and "Traceback" not in err
    return err


def test_report_section_shows_known_verdict(tmp_path: Path) -> None:
    from scipy import stats

    from realgap.protocol.stats import vat_ttest
    from realgap.report.sections import vat as section

    r_b = [1, 1, 1, 0, 1, 1, 1, 1, 0, 1]
    r_bp = [0, 1, 0, 0, 0, 1, 0, 0, 0, 1]
    test = vat_ttest(r_b, r_bp, eps=0.0, alpha=0.05)
    ref = stats.ttest_rel(r_b, r_bp, alternative="greater")
    assert test.t == pytest.approx(ref.statistic) and test.p_value == pytest.approx(ref.pvalue)
    # D = five 1s, five 0s: mean 0.5, sd = sqrt(2.5 / 9) = 0.527, t = 0.5 / (0.527 / sqrt(10)) = 3.000
    assert test.reject and test.t == pytest.approx(3.0) and test.critical == pytest.approx(1.833, abs=1e-3)
    with ResultsDB(tmp_path) as db:
        run = db.new_run("vat", {"task_a": "reach-mug", "task_b": "reach-box", "head": "bc",
                                 "encoder": "resnet18-e2e", "rollouts": 10, "checkpoints": 1},
                         name="VAT reach-mug -> reach-box (bc)")
        db.add_scores(run, [
            Score("pi_B", "success_rate", 0.8, 0.49, 0.94, 10, "vat", {"successes": 8, "trials": 10}),
            Score("pi_B'", "success_rate", 0.3, 0.108, 0.603, 10, "vat", {"successes": 3, "trials": 10}),
            Score("vat", "t", test.t, None, None, test.n, "vat", test.as_dict()),
        ])
        db.add_artifact(run, "vat_saliency", b"\x89PNG\r\n\x1a\nfake", subject="vat",
                        meta={"caption": "FullGrad grid"})
        db.finish_run(run)
    with ResultsDB(tmp_path, read_only=True) as db:
        html = section.render(db)
    assert html is not None
    assert "reject H0 (mean difference 0.500 &gt; eps 0" in html
    assert "3.000" in html and "1.833" in html
    assert "8/10" in html and "3/10" in html and "[0.490, 0.940]" in html
    assert "FullGrad grid" in html and "data:image/png;base64," in html


def test_report_section_absent_without_vat_runs(tmp_path: Path) -> None:
    from realgap.report.sections import vat as section

    with ResultsDB(tmp_path) as db:
        db.finish_run(db.new_run("gap", {}))
    with ResultsDB(tmp_path, read_only=True) as db:
        assert section.render(db) is None


def test_vat_smoke_end_to_end(tmp_path: Path) -> None:
    """Minimal settings: every stage runs and lands in the DB and the report."""
    pytest.importorskip("torch")
    pytest.importorskip("mujoco")
    from realgap.policy.checkpoint import load_checkpoint
    from realgap.protocol.vat import VATConfig, run_vat
    from realgap.report import build_report

    cfg = VATConfig(encoder="small-e2e", episodes=2, epochs=1, image_size=32, rollouts=2,
                    workers=1, saliency_frames=2, batch_size=16)
    res = run_vat(cfg, tmp_path, progress=False)
    assert len(res.r_b) == len(res.r_b_prime) == 2
    assert res.rate_b.trials == 2 and res.rate_b.successes == sum(res.r_b)
    assert res.saliency_png and res.saliency_png[:8] == b"\x89PNG\r\n\x1a\n"
    bp = load_checkpoint(res.policies["pi_B'"])
    a = load_checkpoint(res.policies["pi_A"])
    assert bp["policy_config"]["freeze_encoder"] is True and bp["task"] == "reach-box"
    enc = [k for k in a["state_dict"] if k.startswith("encoder.")]
    assert all((a["state_dict"][k] == bp["state_dict"][k]).all() for k in enc)
    with ResultsDB(tmp_path, read_only=True) as db:
        sc = db.scores(res.run_id)
        oc = db.outcomes(res.run_id)
        assert db.runs("vat").iloc[0]["status"] == "ok"
        assert len(db.artifacts(res.run_id)) == 1
    t_row = sc[(sc.subject == "vat") & (sc.metric == "t")].iloc[0]
    extra = json.loads(t_row["extra"])
    assert extra["n"] == 2 and extra["eps"] == 0.0 and "decision" in extra
    # the same initial states for pi_B and pi_B'
    seeds = {s: sorted(oc[oc.subject == s]["seed"]) for s in ("pi_B", "pi_B'")}
    assert seeds["pi_B"] == seeds["pi_B'"] == [50_000, 50_001]
    # mean return: the rollouts' mean with its rollout-bootstrap interval from realgap.stats
    from realgap.stats import bootstrap_ci

    for s, rets in (("pi_B", res.returns_b), ("pi_B'", res.returns_b_prime)):
        row = sc[(sc.subject == s) & (sc.metric == "mean_return")].iloc[0]
        ref = bootstrap_ci(np.mean, np.array(rets), groups=np.arange(len(rets)), n_boot=2000, rng=0)
        assert (row["value"], row["lo"], row["hi"], row["n"]) == pytest.approx(
            (ref.value, ref.lo, ref.hi, 2))
    html = build_report(tmp_path).read_text()
    assert 'id="vat"' in html and extra["decision"].split(" (")[0] in html


@pytest.mark.parametrize("args, needle", [
    (["--task-b", "reach-mug"], "VAT needs two tasks"),
    (["--rollouts", "0"], "--rollouts 0: must be a positive integer"),
    (["--rollouts", "1"], "at least 2 pairs"),
    (["--alpha", "1.5"], "--alpha 1.5"),
    (["--head", "transformer"], "unknown head 'transformer'"),
    (["--metric", "loss"], "--metric 'loss'"),
    (["--workers", "0"], "--workers 0: must be a positive integer"),
    (["--eps", "nan"], "--eps nan: must be a finite number"),
])
def test_cli_vat_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                           args: list[str], needle: str) -> None:
    assert main(["vat", "--out", str(tmp_path), "--no-progress", *args]) == 2
    assert needle in _one_line(capsys)


def test_cli_vat_data_without_task_b(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from realgap.data.synthetic import write_synthetic

    write_synthetic(tmp_path / "fs", domains=("sim",), tasks=("reach-mug",), n_episodes=1)
    assert main(["vat", "--data", str(tmp_path / "fs"), "--out", str(tmp_path / "o"),
                 "--no-progress"]) == 2
    assert "no frames of task(s) reach-box" in _one_line(capsys)


@pytest.mark.slow
def test_vat_small_settings_under_15_minutes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t0 = time.perf_counter()
    # "small settings": the CPU-sized e2e encoder (GN + spatial softmax on 4 conv layers),
    # 10 demos per task, 10 epochs, 10 paired rollouts, the return as paired measure.
    assert main(["vat", "--task-a", "reach-mug", "--task-b", "reach-box", "--head", "bc",
                 "--encoder", "small-e2e", "--episodes", "10", "--epochs", "10",
                 "--rollouts", "10", "--metric", "return", "--out", str(tmp_path),
                 "--no-progress"]) == 0
    seconds = time.perf_counter() - t0
    out = capsys.readouterr().out
    assert "decision:" in out and "critical t_(1-0.05, 9) = 1.833" in out
    assert seconds < 15 * 60, f"VAT took {seconds:.0f} s"
    assert main(["report", str(tmp_path)]) == 0
    assert "Visual Alignment Testing" in (tmp_path / "report.html").read_text()
