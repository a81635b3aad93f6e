"""Scripted experts reach their success rate; task success tests and rewards by hand."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mujoco")

from realgap import sim
from realgap.errors import ConfigError
from realgap.sim.tasks import TASKS, TaskState

N_EPISODES = 20


def success_count(task: str, n: int, seed: int = 0, randomize: tuple[str, ...] = ()) -> int:
    env = sim.make(task, randomize=randomize, image_size=0, seed=seed)
    expert = sim.expert_for(env)
    wins = 0
    for _ in range(n):
        obs, info = env.reset()
        for _t in range(env.unwrapped.max_steps):
            obs, _r, term, trunc, info = env.step(expert(obs))
            if term or trunc:
                break
        wins += bool(info["success"])
    return wins


@pytest.mark.parametrize("task", ["reach-mug", "reach-box", "push", "pick-place"])
def test_expert_success_on_nominal_episodes(task):
    wins = success_count(task, N_EPISODES)
    assert wins >= 18, f"{task}: expert succeeded in {wins}/{N_EPISODES} nominal episodes"


@pytest.mark.slow
@pytest.mark.parametrize("task", ["reach-mug", "reach-box", "push", "pick-place"])
def test_expert_success_under_table_factors(task):
    wins = success_count(task, 50, seed=1, randomize=("TD", "TH"))
    assert wins >= 45, f"{task}: {wins}/50 with TD and TH randomized"


def test_random_actions_rarely_succeed():
    """Guards the success test itself: a random policy must not pass it."""
    env = sim.make("pick-place", image_size=0, seed=0)
    rng = np.random.default_rng(0)
    wins = 0
    for _ in range(3):
        env.reset()
        for _t in range(env.unwrapped.max_steps):
            *_, term, trunc, info = env.step(rng.uniform(-1, 1, 4))
            if term or trunc:
                break
        wins += info["success"]
    assert wins == 0


def state(grip, opening=0.05, mug=(0.1, 0.0, 0.795), box=(-0.1, 0.0, 0.77),
          goal=(0.0, 0.1, 0.75), table_z=0.75) -> TaskState:
    return TaskState(np.array(grip, float), opening, np.array(mug, float),
                     np.array(box, float), np.array(goal, float), table_z)


def test_reach_success_and_reward_by_hand():
    t = TASKS.create("reach-mug")
    # reach point = mug + (0, 0, 0.10) = (0.1, 0, 0.895)
    assert t.success(state((0.1, 0.029, 0.895)))
    assert not t.success(state((0.1, 0.031, 0.895)))
    assert t.reward(state((0.1, 0.03, 0.855))) == pytest.approx(-0.05)
    tb = TASKS.create("reach-box")
    assert tb.success(state((-0.1, 0.0, 0.87))) and not t.success(state((-0.1, 0.0, 0.87)))


def test_push_and_pick_place_success_by_hand():
    push, pp = TASKS.create("push"), TASKS.create("pick-place")
    on_goal = {"box": (0.0, 0.139, 0.77), "goal": (0.0, 0.1, 0.75)}
    assert push.success(state((0, 0, 1), **on_goal))  # 3.9 cm from the goal centre
    assert not push.success(state((0, 0, 1), box=(0.0, 0.141, 0.77), goal=(0.0, 0.1, 0.75)))
    # reward -2 d(box, goal) - 0.5 d(grip, box): box 0.03 from goal, grip 0.1 above box
    r = push.reward(state((0.0, 0.13, 0.87), box=(0.0, 0.13, 0.77), goal=(0.0, 0.1, 0.75)))
    assert r == pytest.approx(-2 * 0.03 - 0.5 * 0.1)
    assert pp.success(state((0, 0.1, 1.0), opening=0.05, **on_goal))
    assert not pp.success(state((0, 0.1, 1.0), opening=0.02, **on_goal))  # still holding
    assert not pp.success(state((0, 0.1, 1.0), opening=0.05, box=(0.0, 0.12, 0.80),
                                goal=(0.0, 0.1, 0.75)))  # not resting on the table


def test_state_vector_round_trip():
    s = state((0.1, 0.2, 0.9), opening=0.03)
    v = s.vector()
    assert v.shape == (sim.STATE_DIM,) == (14,)
    s2 = TaskState.from_vector(v)
    np.testing.assert_allclose(s2.grip, s.grip, atol=1e-6)
    assert s2.opening == pytest.approx(0.03)


def test_expert_for_unknown_task():
    class Fake:
        task = type("T", (), {"name": "juggle"})()
    with pytest.raises(ConfigError, match="no scripted expert for task 'juggle'"):
        sim.expert_for(Fake())
