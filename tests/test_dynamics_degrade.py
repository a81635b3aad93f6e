"""Degradation curves end to end with tiny budgets: SAC in InvertedPendulum-v5 (reward +1 per
step, so returns are positive and the drop is defined), gravity 1x and 2x."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from realgap.cli import main
from realgap.dynamics.degrade import DegradeConfig
from realgap.errors import ConfigError, MissingFileError
from realgap.store import ResultsDB

pytest.importorskip("stable_baselines3")
pytest.importorskip("mujoco")
ENV = "InvertedPendulum-v5"
ARGS = ["--env", ENV, "--factor", "gravity", "--scales", "2", "--train-steps", "60",
        "--eval-episodes", "2", "--seeds", "0,1", "--max-episode-steps", "40", "--n-boot", "300"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("degrade")
    assert main(["dynamics", "degrade", *ARGS, "--out", str(out)]) == 0
    return out


def test_degrade_run_records_returns_drops_and_episodes(run_dir: Path) -> None:
    with ResultsDB(run_dir, read_only=True) as db:
        run = db.latest_run("degrade")
        sc = db.scores(run)
        oc = db.outcomes(run)
    assert sorted(set(oc.condition)) == ["gravity=1", "gravity=2"]
    assert len(oc) == 2 * 2 * 2  # scales x seeds x episodes
    # InvertedPendulum-v5 pays +1 per step survived (0 on the falling step).
    assert np.all((oc.ret <= oc.length) & (oc.ret >= oc.length - 1))
    r = {g: sc[(sc.metric == "mean_return") & (sc.grp == g)].iloc[0] for g in ("gravity=1", "gravity=2")}
    for g, row in r.items():
        assert row.value == pytest.approx(oc[oc.condition == g].ret.mean())
        assert row.lo <= row.value <= row.hi and row.n == 4
    drop = sc[(sc.metric == "normalized_drop") & (sc.grp == "gravity=2")].iloc[0]
    assert drop.value == pytest.approx(1 - r["gravity=2"].value / r["gravity=1"].value)
    assert drop.lo <= drop.value <= drop.hi
    absdrop = sc[(sc.metric == "return_drop") & (sc.grp == "gravity=2")].iloc[0]
    assert absdrop.value == pytest.approx(r["gravity=1"].value - r["gravity=2"].value)
    assert absdrop.lo <= absdrop.value <= absdrop.hi
    base = sc[(sc.metric == "normalized_drop") & (sc.grp == "gravity=1")].iloc[0]
    assert base.value == 0.0
    assert json.loads(drop.extra)["perturbation"]["gravity"] == 2.0
    html = (run_dir / "report.html").read_text()
    assert "Degradation curves" in html and "data:image/png;base64" in html


def test_given_policy_reproduces_the_trained_policy_evaluation(run_dir: Path, tmp_path: Path) -> None:
    zip0 = next((run_dir / "policies").glob("*seed0*.zip"))
    assert main(["dynamics", "degrade", *ARGS[:-6], "--seeds", "0", "--max-episode-steps", "40",
                 "--n-boot", "300", "--policy", str(zip0), "--out", str(tmp_path)]) == 0
    with ResultsDB(run_dir, read_only=True) as a, ResultsDB(tmp_path, read_only=True) as b:
        oa = a.outcomes(a.latest_run("degrade"))
        ob = b.outcomes(b.latest_run("degrade"))
    oa = oa[oa.seed == 0].sort_values(["condition", "trial"]).ret.to_numpy()
    ob = ob.sort_values(["condition", "trial"]).ret.to_numpy()
    assert np.array_equal(oa, ob)


def test_bad_degrade_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(MissingFileError, match="no SB3 policy"):
        DegradeConfig(policy=str(tmp_path / "none.zip"))
    with pytest.raises(ConfigError, match="eval_episodes"):
        DegradeConfig(eval_episodes=0)
    assert main(["dynamics", "degrade", "--env", "HalfCheetah-v5", "--factor", "length:torsoo",
                 "--train-steps", "10", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown body 'torsoo'; did you mean torso?" in err[0], err
    assert not (tmp_path / "policies").exists()  # failed before any training


def test_report_drops_the_undefined_drop_panel_and_keeps_the_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from realgap.dynamics.degrade import DegradeResult, write_degrade
    from realgap.report.sections import dynamics as section
    from realgap.stats import Estimate

    nan = float("nan")
    cfg = DegradeConfig(env_id=ENV, scales=(1.0, 2.0), seeds=(0,))
    ret = {1.0: Estimate(-5.0, -6.0, -4.0, 2, 2), 2.0: Estimate(-9.0, -10.0, -8.0, 2, 2)}
    result = DegradeResult(
        cfg, ret, {s: Estimate(nan, nan, nan, 2, 2) for s in ret},
        {1.0: Estimate(0.0, 0.0, 0.0, 2, 2), 2.0: Estimate(4.0, 3.0, 5.0, 2, 2)},
        policies=[{"algo": "SAC"}])
    with ResultsDB(tmp_path) as db:
        write_degrade(db, result)
    panels = []
    real_subplots = section.subplots  # figures come from realgap._plot, not pyplot

    def spy(*a: object, **k: object) -> object:
        panels.append(a[1])
        return real_subplots(*a, **k)

    monkeypatch.setattr(section, "subplots", spy)
    with ResultsDB(tmp_path, read_only=True) as db:
        html = section.render(db)
    assert panels == [2]  # mean_return and return_drop; no empty normalized_drop panel
    assert html is not None and "data:image/png;base64" in html
    assert "<p class='warn'>nominal return &lt;= 0: the drop is undefined</p>" in html
