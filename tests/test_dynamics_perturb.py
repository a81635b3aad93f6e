"""Perturbations change the physics by the stated amounts and undo exactly."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from realgap.cli import main
from realgap.dynamics import (
    Perturbation,
    factor_perturbation,
    halfcheetah_cases,
    make_env,
    perturb,
)
from realgap.errors import ConfigError, UnknownNameError

mujoco = pytest.importorskip("mujoco")
gym = pytest.importorskip("gymnasium")

DT = 0.001
FALL_XML = f"""
<mujoco><option timestep="{DT}" gravity="0 0 -9.81" integrator="Euler"/>
<worldbody><body name="ball" pos="0 0 10"><freejoint/>
<geom type="sphere" size="0.1" mass="1"/></body></worldbody></mujoco>
"""


def _fall(model: object, n: int) -> tuple[np.ndarray, np.ndarray]:
    data = mujoco.MjData(model)
    z, vz = [], []
    for _ in range(n):
        mujoco.mj_step(model, data)
        z.append(data.qpos[2])
        vz.append(data.qvel[2])
    return np.array(z), np.array(vz)


def test_falling_body_under_2g_matches_the_analytic_trajectory() -> None:
    model = mujoco.MjModel.from_xml_string(FALL_XML)
    n = 500
    with perturb(model, gravity=2.0):
        np.testing.assert_allclose(model.opt.gravity, [0, 0, -19.62])
        z, vz = _fall(model, n)
    k = np.arange(1, n + 1)
    g = 2 * 9.81
    # Semi-implicit Euler: v_k = -g k dt, z_k = z0 - g dt^2 k (k + 1) / 2 (worked by hand).
    np.testing.assert_allclose(vz, -g * k * DT, rtol=1e-10)
    np.testing.assert_allclose(z, 10 - g * DT**2 * k * (k + 1) / 2, rtol=1e-10)
    # And the continuous law z = z0 - g t^2 / 2 to within the O(dt) discretisation error.
    t = k * DT
    assert np.max(np.abs(z - (10 - g * t**2 / 2))) < g * DT * t[-1]
    # After undo, 1 g again: the ball has fallen half as far.
    z1, _ = _fall(model, n)
    np.testing.assert_allclose(10 - z1, (10 - z) / 2, rtol=1e-10)


def _half_cheetah() -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gym.make("HalfCheetah-v5")


def _gid(model: object, name: str, obj: object) -> int:
    return mujoco.mj_name2id(model, obj, name)


def test_longer_torso_changes_geometry_and_collision_bounds() -> None:
    env = _half_cheetah()
    m = env.unwrapped.model
    G, B = mujoco.mjtObj.mjOBJ_GEOM, mujoco.mjtObj.mjOBJ_BODY
    torso, head = _gid(m, "torso", G), _gid(m, "head", G)
    bthigh = _gid(m, "bthigh", B)
    assert m.geom_size[torso, 1] == pytest.approx(0.5)  # fromto -.5 .. .5: half-length 0.5
    with perturb(env, body_length={"torso": 1.5}):
        assert m.geom_size[torso, 1] == pytest.approx(0.75)
        assert m.geom_size[torso, 0] == pytest.approx(0.046)  # radius kept
        assert m.geom_rbound[torso] == pytest.approx(0.75 + 0.046)
        assert m.geom_aabb[torso, 5] == pytest.approx(0.75 + 0.046)  # x half-extent, capsule on x
        assert m.geom_pos[head, 0] == pytest.approx(0.9)
        assert m.geom_size[head, 1] == pytest.approx(0.225)
        assert m.body_pos[bthigh, 0] == pytest.approx(-0.75)
        # Independent route: edit the MJCF by hand and compile it.
        spec = mujoco.MjSpec.from_file(env.unwrapped.fullpath)
        spec.geom("torso").fromto = [-0.75, 0, 0, 0.75, 0, 0]
        spec.geom("head").pos = [0.9, 0, 0.15]
        spec.geom("head").size = [0.046, 0.225, 0]
        spec.body("bthigh").pos = [-0.75, 0, 0]
        spec.body("fthigh").pos = [0.75, 0, 0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = spec.compile()
        np.testing.assert_allclose(m.geom_aabb, ref.geom_aabb)
        np.testing.assert_allclose(m.geom_rbound, ref.geom_rbound)
        np.testing.assert_allclose(m.body_mass, ref.body_mass)
    assert m.geom_size[torso, 1] == pytest.approx(0.5)
    assert m.geom_rbound[torso] == pytest.approx(0.546)


def _trajectory(env: object, steps: int = 60) -> np.ndarray:
    obs, _ = env.reset(seed=3)
    rng = np.random.default_rng(5)
    out = [obs]
    for _ in range(steps):
        out.append(env.step(rng.uniform(-1, 1, env.action_space.shape))[0])
    return np.array(out)


def test_undo_restores_the_original_trajectory_exactly() -> None:
    env = _half_cheetah()
    before = _trajectory(env)
    with perturb(env, gravity=2.0, friction=0.5, body_length={"torso": 1.5, "bthigh": 2.0},
                 mass={"ffoot": 3.0}) as applied:
        changed = _trajectory(env)
        assert applied.perturbation.factors() == {"PHYS": {
            "gravity": 2.0, "friction": 0.5, "body_length": {"bthigh": 2.0, "torso": 1.5},
            "mass": {"ffoot": 3.0}, "dampratio": {}}}
    assert np.abs(changed - before).max() > 0.1
    after = _trajectory(env)
    assert np.array_equal(before, after)
    fresh = _half_cheetah().unwrapped.model
    m = env.unwrapped.model
    for name in ("geom_size", "geom_aabb", "body_pos", "body_mass", "body_inertia",
                 "geom_friction", "body_subtreemass"):
        assert np.array_equal(getattr(m, name), getattr(fresh, name)), name


def test_mass_and_friction_scale_by_the_stated_factor() -> None:
    env = _half_cheetah()
    m = env.unwrapped.model
    b = _gid(m, "ffoot", mujoco.mjtObj.mjOBJ_BODY)
    mass0, inertia0, fr0 = m.body_mass[b], m.body_inertia[b].copy(), m.geom_friction.copy()
    total0 = m.body_subtreemass[0]
    with perturb(env, mass={"ffoot": 3.0}, friction=0.5):
        assert m.body_mass[b] == pytest.approx(3 * mass0)
        np.testing.assert_allclose(m.body_inertia[b], 3 * inertia0)
        assert m.body_subtreemass[0] == pytest.approx(total0 + 2 * mass0)
        np.testing.assert_allclose(m.geom_friction[:, 0], 0.5 * fr0[:, 0])
        np.testing.assert_allclose(m.geom_friction[:, 1:], fr0[:, 1:])


def test_perturbed_rollouts_are_deterministic_and_report_factors() -> None:
    p = factor_perturbation("thigh_length", 1.5)
    assert dict(p.body_length) == {"bthigh": 1.5, "fthigh": 1.5}
    a, b = make_env("HalfCheetah-v5", p), make_env("HalfCheetah-v5", p)
    assert np.array_equal(_trajectory(a), _trajectory(b))
    _, info = a.reset(seed=0)
    assert info["factors"]["PHYS"]["body_length"] == {"bthigh": 1.5, "fthigh": 1.5}


def test_perturbation_json_roundtrip_and_reference_cases() -> None:
    p = Perturbation(gravity=1.5, body_length={"torso": 2.0})
    assert Perturbation.from_dict(json.loads(json.dumps(p.factors()))) == p
    cases = halfcheetah_cases()
    assert len(cases) == 15
    assert cases["gravity-2x"].gravity == 2.0
    assert dict(cases["torso_length-1.5x"].body_length) == {"torso": 1.5}
    assert cases["gravity-1x"].is_identity


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), "x"])
def test_non_positive_scales_are_rejected(bad: object) -> None:
    with pytest.raises(ConfigError, match="gravity"):
        Perturbation(gravity=bad)  # type: ignore[arg-type]


def test_unknown_body_lists_close_matches() -> None:
    env = _half_cheetah()
    with pytest.raises(UnknownNameError, match="did you mean torso"):
        perturb(env, body_length={"torsoo": 1.5})
    with pytest.raises(UnknownNameError, match="known: gravity"):
        factor_perturbation("gravty_scale", 2.0)


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str], needle: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("realgap: error: ") and needle in err[0], err


def test_cli_bad_body_and_scale_exit_2(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path) + "/t.npz"  # type: ignore[operator]
    _one_line_error(capsys, ["dynamics", "collect", "--perturb", "length:torsoo=1.5",
                             "--steps", "5", "--out", out], "did you mean torso")
    _one_line_error(capsys, ["dynamics", "collect", "--perturb", "gravity=-1",
                             "--steps", "5", "--out", out], "positive")
    _one_line_error(capsys, ["dynamics", "degrade", "--scales", "1,0", "--out", out],
                    "positive")


def test_same_api_serves_the_tabletop_tasks() -> None:
    sim = pytest.importorskip("realgap.sim")
    env = sim.make("push", image_size=0, seed=0)
    m = env.unwrapped.model
    g0 = m.opt.gravity.copy()

    def states() -> np.ndarray:
        obs, _ = env.reset(seed=3)
        rng = np.random.default_rng(5)
        out = [obs["state"]]
        for _ in range(20):
            out.append(env.step(rng.uniform(-1, 1, env.action_space.shape))[0]["state"])
        return np.array(out)

    before = states()
    with perturb(env, gravity=2.0, friction=0.5, mass={"table": 2.0}):
        np.testing.assert_allclose(m.opt.gravity, 2 * g0)
    assert np.array_equal(states(), before)
    assert np.array_equal(m.opt.gravity, g0)


def test_perturbation_dict_roundtrip_property() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    scale = st.floats(min_value=0.01, max_value=100, allow_nan=False)
    bodies = st.dictionaries(st.sampled_from(["torso", "bthigh", "ffoot"]), scale, max_size=3)

    @settings(max_examples=50, deadline=None)
    @given(scale, scale, bodies, bodies)
    def roundtrip(g: float, f: float, lengths: dict, masses: dict) -> None:
        p = Perturbation(gravity=g, friction=f, body_length=lengths, mass=masses)
        assert Perturbation.from_dict(json.loads(json.dumps(p.factors()))) == p
        assert p.is_identity == (g == f == 1.0 and all(v == 1.0 for v in
                                                        [*lengths.values(), *masses.values()]))

    roundtrip()
