"""The factorized protocol: validation, the shipped tabletop-v1, `realgap evaluate` with the
scripted expert against a direct run, the results-DB layout, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from realgap.cli import main
from realgap.errors import ConfigError, DataError
from realgap.protocol.spec import FACTORS, load_protocol, parse_protocol

SIZE = 32


def _proto(**over: object) -> dict:
    raw = json.loads(json.dumps(load_protocol("tabletop-v1").raw))
    raw.update(over)
    return raw


def _small(tmp_path: Path, conditions: list[dict], trials: int = 3) -> Path:
    p = tmp_path / "small.json"
    p.write_text(json.dumps(_proto(name="small", trials=trials, conditions=conditions)))
    return p


def test_shipped_protocol_varies_one_factor_per_condition() -> None:
    spec = load_protocol("tabletop-v1")
    assert spec.name == "tabletop-v1" and spec.conditions[0].is_base
    assert {c.factor for c in spec.conditions[1:]} == set(FACTORS)  # every factor is covered
    assert sorted(c.value for c in spec.conditions if c.factor == "TD") == [2, 4, 6]
    for c in spec.conditions[1:]:
        s = spec.settings(c)
        assert [k for k in s if s[k] != spec.base[k]] == [c.factor]
    assert spec.seeds == list(range(1000, 1010))
    assert spec.with_trials(3).seeds == [1000, 1001, 1002]


@pytest.mark.parametrize("change, exc, needle", [
    ({"conditions": [{"name": "x", "factor": "GRAVITY", "value": 1}]}, ConfigError,
     "unknown factor 'GRAVITY'"),
    ({"conditions": [{"name": "x", "factor": "TD", "value": 0}]}, DataError,
     "sets TD to its base value"),
    ({"conditions": [{"name": "x", "factor": "TD", "value": 2, "LT": "dim"}]}, DataError,
     "one factor per condition"),
    ({"trials": -2}, ConfigError, "trials must be a positive integer, got -2"),
    ({"conditions": [{"name": "x", "factor": "LT", "value": "disco"}]}, ConfigError,
     "LT 'disco' is not valid; expected a lighting preset"),
    ({"format_version": 9}, DataError, "format_version 9"),
])
def test_protocol_validation(change: dict, exc: type, needle: str) -> None:
    with pytest.raises(exc, match=needle) as info:
        parse_protocol(_proto(**change), "p.json")
    assert str(info.value).startswith("p.json") and "\n" not in str(info.value)


def test_expert_through_the_protocol_gets_its_direct_success_rate(tmp_path: Path) -> None:
    """The protocol's base condition equals a direct expert run on the same seeds, and the
    pooled row is sum k / sum n."""
    from realgap import sim
    from realgap.protocol.runner import evaluate_policy
    from realgap.store import ResultsDB

    path = _small(tmp_path, [{"name": "TD-4", "factor": "TD", "value": 4},
                             {"name": "POS-left", "factor": "POS", "value": [-0.06, 0.0]}])
    # A step cap below what some episodes need makes the known rate non-trivial.
    direct = []
    env = sim.make("push", image_size=SIZE, cameras=("head",), max_steps=30)
    try:
        for seed in (1000, 1001, 1002):
            obs, info = env.reset(seed=seed)
            expert, ok = sim.expert_for(env), False
            for _ in range(30):
                obs, _r, term, trunc, info = env.step(expert(obs))
                ok = ok or info["success"]
                if term or trunc:
                    break
            direct.append(ok)
    finally:
        env.close()
    res = evaluate_policy("expert", path, task="push", workers=2, out=tmp_path, image_size=SIZE,
                          max_steps=30)
    assert isinstance(res.run_id, str)
    base = res.conditions[0]
    assert base.name == "base" and (base.successes, base.trials) == (sum(direct), 3)
    assert [o.success for o in res.outcomes if o.condition == "base"] == direct
    k = sum(r.successes for r in res.conditions)
    assert (res.pooled.successes, res.pooled.trials) == (k, 9)
    assert res.pooled.rate == pytest.approx(k / 9)
    with ResultsDB(tmp_path, read_only=True) as db:
        sc = db.scores(res.run_id)
        assert len(db.outcomes(res.run_id)) == 9
    assert sorted(sc["grp"]) == sorted(["base", "TD-4", "POS-left", "pooled"])
    pooled = sc[sc.grp == "pooled"].iloc[0]
    extra = json.loads(pooled["extra"])
    assert (extra["successes"], extra["trials"], pooled["n"]) == (k, 9, 9)
    b = json.loads(sc[sc.grp == "base"].iloc[0]["extra"])
    assert b["base"] is True and b["factor"] == "base" and b["task"] == "push"
    td = json.loads(sc[sc.grp == "TD-4"].iloc[0]["extra"])
    assert td["factor"] == "TD" and td["base"] is False


def test_evaluate_cli_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _small(tmp_path, [{"name": "LT-dim", "factor": "LT", "value": "dim"}], trials=2)
    assert main(["evaluate", "--policy", "expert", "--task", "reach-mug", "--protocol", str(path),
                 "--workers", "1", "--image-size", str(SIZE), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "LT-dim" in out and "2/2" in out and "4/4" in out and "(sum k / sum n)" in out


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("realgap: error:") and err.count("\n") == 1 and "Traceback" not in err
    return err


def test_cli_unknown_factor_in_protocol(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _small(tmp_path, [{"name": "g", "factor": "GRAVITY", "value": 2}])
    assert main(["evaluate", "--policy", "expert", "--task", "reach-mug", "--protocol",
                 str(path)]) == 2
    err = _one_line(capsys)
    assert str(path) in err and "'GRAVITY'" in err


def test_cli_negative_trials(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--policy", "expert", "--task", "reach-mug", "--trials", "-5"]) == 2
    assert "--trials: trials must be a positive integer, got -5" in _one_line(capsys)


def test_cli_bad_out_fails_before_any_rollout(capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from realgap.jobs import evaluate as runner

    def no_rollouts(*args: object, **kwargs: object) -> None:
        raise AssertionError("rollouts ran before --out was checked")

    monkeypatch.setattr(runner, "run_episodes", no_rollouts)
    assert main(["evaluate", "--policy", "expert", "--task", "reach-mug", "--trials", "1",
                 "--out", "/proc/realgap-not-writable", "--no-progress"]) == 2
    assert "/proc/realgap-not-writable" in _one_line(capsys)


def test_cli_unknown_protocol_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--policy", "expert", "--task", "reach-mug",
                 "--protocol", "tabletop-v2"]) == 2
    assert "did you mean tabletop-v1" in _one_line(capsys)


def test_cli_expert_needs_task(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--policy", "expert"]) == 2
    assert "needs --task" in _one_line(capsys)


def test_cli_checkpoint_for_another_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    from realgap.policy.checkpoint import checkpoint_path, save_checkpoint
    from realgap.policy.config import PolicyConfig

    ck = save_checkpoint(checkpoint_path(tmp_path / "p", 1), {
        "policy_config": PolicyConfig("reach-mug").to_dict(), "task": "reach-mug",
        "frameset_hash": "x", "epoch": 1, "feat_dim": 8, "state_dict": {}})
    assert main(["evaluate", "--policy", str(tmp_path / "p"), "--task", "reach-box"]) == 2
    err = _one_line(capsys)
    assert str(ck) in err and "trained for task 'reach-mug', not 'reach-box'" in err


def test_wilson_rows_are_consistent() -> None:
    from realgap.protocol.runner import rate_row

    r = rate_row("c", "TD", 2, 7, 10)
    assert r.rate == 0.7 and r.lo < 0.7 < r.hi
    # textbook Wilson 95% for 7/10: (0.3968, 0.8922)
    assert (r.lo, r.hi) == pytest.approx((0.3968, 0.8922), abs=1e-4)
    assert np.isnan(rate_row("c", "TD", 2, 0, 0).rate)
