"""Rollouts: seeds fix initial states across policies, workers do not change outcomes,
conditions apply exactly one change and never leak, outcomes land in the results DB."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from realgap.cli import main

pytest.importorskip("mujoco")
torch = pytest.importorskip("torch")

from realgap.policy import EnvSpec, EpisodeSpec, rollout, run_episodes
from realgap.policy.episodes import episode_specs, make_env

SIZE = 32


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An (untrained-quality) BC policy with the env's action/state sizes, for plumbing tests."""
    from realgap.data.synthetic import write_synthetic
    from realgap.policy import PolicyConfig, TrainConfig, train_policy

    d = tmp_path_factory.mktemp("pol")
    write_synthetic(d / "fs", domains=("sim",), tasks=("reach-mug",), n_episodes=2, n_frames=6,
                    size=SIZE, action_dim=4, state_dim=14, rng=0)
    res = train_policy(d / "fs", d / "out", PolicyConfig("reach-mug", encoder="small-e2e",
                       image_size=SIZE, hidden=16), TrainConfig(epochs=1, batch_size=6),
                       progress=False)
    return res.checkpoint


def test_same_seeds_same_initial_states_for_two_policies(tiny_policy: Path) -> None:
    spec = EnvSpec("reach-mug", image_size=SIZE, max_steps=3)
    eps = episode_specs(None, [11, 12, 13])
    expert = run_episodes("expert", spec, eps, workers=1)
    learned = run_episodes(str(tiny_policy), spec, eps, workers=1)
    assert [o.init_digest for o in expert] == [o.init_digest for o in learned]
    assert len({o.init_digest for o in expert}) == 3  # different seeds, different states
    assert [o.seed for o in learned] == [11, 12, 13]
    # the two policies did act differently from those states
    assert [o.ret for o in expert] != [o.ret for o in learned]


def test_two_workers_give_the_same_outcomes_as_one() -> None:
    spec = EnvSpec("reach-box", image_size=SIZE)
    eps = episode_specs(None, [0, 1, 2, 3], {"TD": 2})
    one = run_episodes("expert", spec, eps, workers=1)
    two = run_episodes("expert", spec, eps, workers=2)
    assert one == two
    assert all(o.success for o in one) and all(0 < o.length <= 40 for o in one)


def test_conditions_change_one_thing_and_do_not_leak() -> None:
    env = make_env(EnvSpec("reach-mug", image_size=SIZE), {})
    try:
        base_obs, _ = env.reset(seed=5)
        got = {}
        for name, st in {"POS": {"POS": [0.06, -0.04]}, "TH": {"TH": 0.03},
                         "LT": {"LT": "dim"}, "OBJ": {"OBJ": 1}, "TD": {"TD": 4}}.items():
            env.set_settings(st)
            obs, info = env.reset(seed=5)
            got[name] = (obs, info)
        env.set_settings({})
        again, _ = env.reset(seed=5)
    finally:
        env.close()
    np.testing.assert_array_equal(again["head"], base_obs["head"])  # nothing leaked
    np.testing.assert_array_equal(again["state"], base_obs["state"])
    s0 = base_obs["state"].astype(np.float64)
    # state layout: grip 0:3, opening 3, mug 4:7, box 7:10, goal 10:13, table_z 13
    pos = got["POS"][0]["state"].astype(np.float64)
    np.testing.assert_allclose(pos[4:6] - s0[4:6], [0.06, -0.04], atol=1e-5)
    np.testing.assert_allclose(pos[7:9] - s0[7:9], [0.06, -0.04], atol=1e-5)
    np.testing.assert_allclose(pos[0:4], s0[0:4], atol=1e-6)  # the gripper did not move
    th = got["TH"][0]["state"].astype(np.float64)
    assert th[13] - s0[13] == pytest.approx(0.03, abs=1e-6)
    assert th[6] - s0[6] == pytest.approx(0.03, abs=1e-5)  # the mug rides with the table
    assert got["TH"][1]["factors"]["TH"] == {"dz": 0.03}
    for name in ("LT", "OBJ", "TD"):  # appearance / clutter: same state, other pixels
        obs, _ = got[name]
        np.testing.assert_array_equal(obs["state"], base_obs["state"])
        assert not np.array_equal(obs["head"], base_obs["head"]), name
    assert len(got["TD"][1]["factors"]["TD"]["objects"]) == 4
    assert got["LT"][1]["factors"]["LT"]["key"]["intensity"] == 0.45


def test_rollout_writes_outcomes_and_a_wilson_rate(tmp_path: Path) -> None:
    from realgap.protocol.stats import wilson_interval
    from realgap.store import ResultsDB

    res = rollout("expert", "reach-mug", seeds=[0, 1, 2], max_steps=4, workers=1,
                  db=tmp_path, image_size=SIZE)
    # 4 steps are too few for the reach (about 14 steps): every episode must fail
    assert (res.successes, res.episodes) == (0, 3)
    with ResultsDB(tmp_path, read_only=True) as db:
        out = db.outcomes(res.run_id)
        sc = db.scores(res.run_id)
        assert db.runs("rollout").shape[0] == 1
    assert out["seed"].tolist() == [0, 1, 2] and out["length"].tolist() == [4, 4, 4]
    assert not out["success"].any()
    lo, hi = wilson_interval(0, 3)
    assert sc["value"].iloc[0] == 0.0 and sc["n"].iloc[0] == 3
    assert (sc["lo"].iloc[0], sc["hi"].iloc[0]) == pytest.approx((lo, hi))
    assert hi == pytest.approx(1.959964**2 / (3 + 1.959964**2), abs=1e-6)  # Wilson at k=0: z^2/(n+z^2)


def test_cli_rollout_prints_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rollout", "--policy", "expert", "--task", "reach-box", "--seeds", "0,1",
                 "--workers", "1", "--image-size", str(SIZE), "--set", "OBJ=2",
                 "--no-progress"]) == 0
    assert "2/2 successes" in capsys.readouterr().out


@pytest.mark.parametrize("args, needle", [
    (["--episodes", "-3"], "--episodes -3: must be a positive integer"),
    (["--episodes", "2", "--set", "GRAVITY=2"], "unknown factor 'GRAVITY'"),
    (["--episodes", "2", "--set", "LT=disco"], "LT 'disco' is not valid; expected a lighting preset"),
    (["--episodes", "2", "--workers", "0"], "--workers 0"),
    (["--seeds", "1,x"], "--seeds '1,x'"),
    (["--episodes", "2", "--max-steps", "0"], "--max-steps 0: must be a positive integer"),
    (["--episodes", "2", "--image-size", "0"], "--image-size 0: must be a positive integer"),
    (["--episodes", "2", "--out", "/proc/realgap-not-writable"], "/proc/realgap-not-writable"),
])
def test_cli_rollout_bad_input(capsys: pytest.CaptureFixture[str], args: list[str], needle: str) -> None:
    assert main(["rollout", "--policy", "expert", "--task", "reach-mug", "--no-progress",
                 *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_rollout_checkpoint_for_another_task(tiny_policy: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rollout", "--policy", str(tiny_policy), "--task", "reach-box",
                 "--episodes", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "trained for task 'reach-mug', not 'reach-box'" in err and err.count("\n") == 1


def test_episode_spec_ids_follow_the_seeds() -> None:
    eps = episode_specs(3, None, {"TD": 2}, condition="c")
    assert [(e.seed, e.trial, e.condition, dict(e.settings)) for e in eps] == [
        (0, 0, "c", {"TD": 2}), (1, 1, "c", {"TD": 2}), (2, 2, "c", {"TD": 2})]
    assert EpisodeSpec(4).settings == {}
