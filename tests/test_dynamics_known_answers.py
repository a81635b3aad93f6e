"""Known answers for the dynamics gap (issue 8, Done-when (g)).

With identical dynamics on both sides neither the prediction gap nor the transition C2ST may
reject "no gap" in more than 3 of 20 seeds -- by its permutation p-value or by an interval
that excludes 0 -- and a graded ladder of dynamics shifts must give monotone gaps.

Fast cases use synthetic linear dynamics ``s' = A s + B a + noise`` (the right answer is known
by construction: the target differs from the source only through the scaled coupling
``A[0, 1]``), plus one real MuJoCo pair; the 20-seed MuJoCo version is marked slow.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

from realgap.dynamics import Transitions
from realgap.dynamics.gap import GapMeasure, gap_measures

A = np.array([[1.0, 0.05, 0.0, 0.0], [-0.3, 0.98, 0.0, 0.02], [0.0, 0.0, 0.95, 0.05],
              [0.0, 0.01, -0.2, 0.97]])
B = np.array([[0.0], [0.05], [0.0], [0.04]])


def linear(coupling: float, n_traj: int, length: int, seed: int) -> Transitions:
    """Trajectories of the linear system with ``A[1, 0]`` scaled by ``coupling``; random
    actions, lengths 1..``length``, process noise sd 0.01."""
    g = np.random.default_rng(seed)
    a_mat = A.copy()
    a_mat[1, 0] *= coupling
    obs, act, nxt, ep = [], [], [], []
    for e in range(n_traj):
        s = g.normal(0, 1, 4)
        for _ in range(int(g.integers(1, length + 1))):
            a = g.uniform(-1, 1, 1)
            s2 = a_mat @ s + B @ a + g.normal(0, 0.01, 4)
            obs.append(s), act.append(a), nxt.append(s2), ep.append(e)
            s = s2
    return Transitions.validated(obs=np.array(obs), action=np.array(act),
                                 next_obs=np.array(nxt), episode=np.array(ep))


def rejects(m: GapMeasure) -> tuple[bool, bool]:
    """(p-value below 5%, interval excluding 0)."""
    return m.p_value < 0.05, not (m.lo <= 0.0 <= m.hi)


def _null_counts(pairs: list[tuple[Transitions, Transitions]], max_iter: int) -> dict[str, list[int]]:
    counts = {"prediction_gap": [0, 0], "c2st_gap": [0, 0]}
    for seed, (src, tgt) in enumerate(pairs):
        res = gap_measures(src, tgt, rng=seed, n_boot=200, n_perm=200, max_iter=max_iter)
        for name, m in res.items():
            by_p, by_ci = rejects(m)
            counts[name][0] += by_p
            counts[name][1] += by_ci
    return counts


def test_identical_linear_dynamics_rejects_in_at_most_3_of_20_seeds() -> None:
    pairs = [(linear(1.0, 40, 12, 2 * s), linear(1.0, 40, 12, 2 * s + 1)) for s in range(20)]
    counts = _null_counts(pairs, max_iter=30)
    for name, (by_p, by_ci) in counts.items():
        assert by_p <= 3 and by_ci <= 3, (name, counts)


def test_linear_ladder_is_monotone_and_detected() -> None:
    src = linear(1.0, 60, 12, 100)
    res = {c: gap_measures(src, linear(c, 60, 12, 101), rng=0, n_boot=200, n_perm=200,
                           max_iter=30) for c in (1.0, 1.1, 1.3, 1.6)}
    for name in ("prediction_gap", "c2st_gap"):
        v = [res[c][name].value for c in (1.0, 1.1, 1.3, 1.6)]
        assert v == sorted(v) and v[0] < v[1] < v[2] < v[3], (name, v)
        assert res[1.0][name].p_value > 0.05 and res[1.3][name].p_value < 0.01, name
        assert res[1.6][name].lo > res[1.0][name].hi, name
    # same seed, same bytes (estimates, nulls and details)
    assert gap_measures(src, linear(1.3, 60, 12, 101), rng=0, n_boot=200, n_perm=200,
                        max_iter=30) == res[1.3]


def _pendulum(g: float, steps: int, seed: int) -> Transitions:
    from realgap.dynamics import collect_perturbed, factor_perturbation

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return collect_perturbed("InvertedPendulum-v5", factor_perturbation("gravity", g), steps,
                                 max_episode_steps=100, rng=seed)


def test_identical_mujoco_dynamics_does_not_reject() -> None:
    pytest.importorskip("mujoco")
    # issue 8 measured seed 0 of this case at C2ST -0.042 [-0.077, -0.010]
    res = gap_measures(_pendulum(1.0, 2000, 1000), _pendulum(1.0, 2000, 2000), rng=0,
                       n_boot=200, n_perm=500)
    for name, m in res.items():
        assert rejects(m) == (False, False), (name, m.as_dict())
        assert abs(m.null.effect) < 2.5, name


@pytest.mark.slow
def test_identical_mujoco_dynamics_rejects_in_at_most_3_of_20_seeds() -> None:
    pytest.importorskip("mujoco")
    pairs = [(_pendulum(1.0, 2000, 1000 + s), _pendulum(1.0, 2000, 2000 + s)) for s in range(20)]
    counts = _null_counts(pairs, max_iter=100)
    for name, (by_p, by_ci) in counts.items():
        assert by_p <= 3 and by_ci <= 3, (name, counts)


@pytest.mark.slow
def test_mujoco_gravity_ladder_is_monotone() -> None:
    pytest.importorskip("mujoco")
    src = _pendulum(1.0, 2000, 1000)
    scales = (1.0, 1.1, 1.2, 1.5, 2.0)
    res = {s: gap_measures(src, _pendulum(s, 2000, 2000), rng=0, n_boot=200, n_perm=200)
           for s in scales}
    for name in ("prediction_gap", "c2st_gap"):
        v = [res[s][name].value for s in scales]
        assert all(a < b for a, b in itertools.pairwise(v)), (name, v)
        assert all(res[s][name].p_value < 0.01 for s in scales[1:]), name
