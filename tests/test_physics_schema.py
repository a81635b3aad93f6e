"""One physics schema, one implementation: the same setting through the tabletop PHYS
factor and through ``realgap.dynamics.perturb`` gives identical model parameters, and the
camera state survives mass scaling."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mujoco")

from realgap import sim
from realgap.dynamics import Perturbation, perturb
from realgap.errors import ConfigError, UnknownNameError
from realgap.sim.physics import KEEP, PhysicsSetting

SETTING = PhysicsSetting(gravity=1.08, friction=0.7, mass={"box": 1.3, "mug": 0.8},
                         dampratio={"box": 0.4, "mug": 0.6})
COMPARED = ("body_mass", "body_inertia", "geom_friction", "geom_solref", "body_subtreemass",
            "body_invweight0", "dof_M0", "dof_invweight0", *KEEP)


def _env():
    return sim.make("push", image_size=0, cameras=(), seed=0)


def test_one_schema_under_both_names() -> None:
    assert Perturbation is PhysicsSetting
    assert PhysicsSetting.from_dict(SETTING.as_dict()) == SETTING
    assert PhysicsSetting.from_dict(SETTING.factors()) == SETTING


def test_sim_and_dynamics_give_identical_parameters() -> None:
    a, b = _env(), _env()
    a.reset(seed=3)
    b.reset(seed=3)
    a.unwrapped.factors["PHYS"].set(SETTING.as_dict())
    perturb(b, SETTING)
    ma, mb = a.unwrapped.model, b.unwrapped.model
    np.testing.assert_array_equal(ma.opt.gravity, mb.opt.gravity)
    for name in COMPARED:
        np.testing.assert_array_equal(getattr(ma, name), getattr(mb, name), err_msg=name)
    # and the values are the stated ones, worked by hand from the defaults
    fresh = _env().unwrapped.model
    box = a.unwrapped.h.body["box"]
    np.testing.assert_allclose(ma.opt.gravity, [0.0, 0.0, -9.81 * 1.08])
    assert ma.body_mass[box] == pytest.approx(1.3 * fresh.body_mass[box])
    np.testing.assert_allclose(ma.geom_friction[:, 0], 0.7 * fresh.geom_friction[:, 0])
    assert ma.geom_solref[a.unwrapped.h.geom["mug_handle"], 1] == 0.6
    assert ma.body_invweight0[box, 0] < fresh.body_invweight0[box, 0]  # recomputed, heavier


def test_camera_and_state_survive_mass_scaling() -> None:
    env = _env()
    env.reset(seed=1)
    u = env.unwrapped
    for _ in range(5):
        env.step(np.array([0.5, 0.2, -0.3, 0.0], np.float32))
    keep = {k: np.array(getattr(u.model, k), copy=True) for k in KEEP}
    qpos, qvel = u.data.qpos.copy(), u.data.qvel.copy()
    u.factors["PHYS"].set(PhysicsSetting(mass={"box": 1.4}).as_dict())
    for k, v in keep.items():
        np.testing.assert_array_equal(getattr(u.model, k), v, err_msg=k)
    np.testing.assert_array_equal(u.data.qpos, qpos)  # mj_setConst ran at qpos0 and back
    np.testing.assert_array_equal(u.data.qvel, qvel)
    # the dynamics path keeps the camera state too
    with perturb(env, mass={"mug": 2.0}):
        for k, v in keep.items():
            np.testing.assert_array_equal(getattr(u.model, k), v, err_msg=k)
        np.testing.assert_array_equal(u.data.qpos, qpos)


def test_restore_and_undo_are_exact() -> None:
    env = _env()
    u = env.unwrapped
    before = {k: np.array(getattr(u.model, k), copy=True) for k in COMPARED}
    u.factors["PHYS"].set(SETTING.as_dict())
    u.factors["PHYS"].restore()
    for k, v in before.items():
        np.testing.assert_array_equal(getattr(u.model, k), v, err_msg=k)
    with perturb(env, SETTING):
        pass
    for k, v in before.items():
        np.testing.assert_array_equal(getattr(u.model, k), v, err_msg=k)


def test_bad_settings_fail_naming_the_field() -> None:
    with pytest.raises(ConfigError, match=r"dampratio\['box'\]"):
        PhysicsSetting(dampratio={"box": -1})
    with pytest.raises(ConfigError, match="unknown keys"):
        PhysicsSetting.from_dict({"gravity": 1.0, "viscosity": 2.0})
    env = _env()
    with pytest.raises(UnknownNameError, match="did you mean box"):
        env.unwrapped.factors["PHYS"].set({"mass": {"boxx": 2.0}})
    with pytest.raises(ConfigError, match="body_length"):
        env.unwrapped.factors["PHYS"].set({"body_length": {"box": 2.0}})


def test_sampled_values_are_settings_and_deterministic() -> None:
    a = sim.make("push", image_size=0, cameras=(), randomize=("PHYS",), seed=7)
    b = sim.make("push", image_size=0, cameras=(), randomize=("PHYS",), seed=7)
    va = a.reset(seed=7)[1]["factors"]["PHYS"]
    vb = b.reset(seed=7)[1]["factors"]["PHYS"]
    assert va == vb
    st = PhysicsSetting.from_dict(va)
    assert 0.9 <= st.gravity <= 1.1 and dict(st.mass).keys() == {"box", "mug"}
