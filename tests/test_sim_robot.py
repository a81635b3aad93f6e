"""A user-supplied MJCF arm replaces the gantry: attach, weld-driven control, experts, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mujoco")

from realgap import sim
from realgap.errors import ConfigError, MissingFileError
from realgap.sim.robot import MJCFRobot

#: a SCARA arm (yaw, lift, elbow, wrist) with two slide fingers, written for this test
SCARA = """<mujoco model="test_scara">
  <default><joint damping="2" armature="0.05"/>
    <geom contype="0" conaffinity="0" rgba="0.7 0.7 0.75 1"/></default>
  <worldbody>
    <body name="base" gravcomp="1">
      <geom type="cylinder" size="0.06 0.7" pos="0 0 0.7"/>
      <body name="column" pos="0 0 1.3" gravcomp="1">
        <joint name="yaw" type="hinge" axis="0 0 1"/>
        <joint name="lift" type="slide" axis="0 0 1" range="-0.6 0.2"/>
        <geom type="capsule" fromto="0 0 0 0 -0.38 0" size="0.025"/>
        <body name="fore" pos="0 -0.38 0" gravcomp="1">
          <joint name="elbow" type="hinge" axis="0 0 1"/>
          <geom type="capsule" fromto="0 0 0 0 -0.38 0" size="0.02"/>
          <body name="hand" pos="0 -0.38 -0.3" gravcomp="1">
            <joint name="wrist" type="hinge" axis="0 0 1"/>
            <geom type="capsule" fromto="0 0 0 0 0 0.3" size="0.015"/>
            <site name="ee"/>
            <body name="fl" gravcomp="1">
              <joint name="fl" type="slide" axis="1 0 0" range="0 0.05"/>
              <geom type="box" size="0.008 0.012 0.04" pos="0.008 0 0.02" contype="1"
                    conaffinity="1" mass="0.05"/></body>
            <body name="fr" gravcomp="1">
              <joint name="fr" type="slide" axis="-1 0 0" range="0 0.05"/>
              <geom type="box" size="0.008 0.012 0.04" pos="-0.008 0 0.02" contype="1"
                    conaffinity="1" mass="0.05"/></body>
          </body>
        </body>
      </body>
    </body>
  </worldbody>
  <actuator>
    <position name="fl" joint="fl" kp="300" ctrlrange="0 0.05"/>
    <position name="fr" joint="fr" kp="300" ctrlrange="0 0.05"/>
  </actuator>
</mujoco>
"""


@pytest.fixture(scope="module")
def scara(tmp_path_factory) -> MJCFRobot:
    path = tmp_path_factory.mktemp("robot") / "scara.xml"
    path.write_text(SCARA)
    return MJCFRobot(path=str(path), ee_site="ee", gripper_actuators=("fl", "fr"),
                     gripper_open=0.05, gripper_closed=0.0, finger_joints=("fl", "fr"),
                     base_pos=(0.0, 0.5, 0.0))


@pytest.mark.parametrize("task", ["reach-mug", "pick-place"])
def test_experts_drive_a_user_arm(scara, task):
    env = sim.make(task, image_size=0, seed=0, robot=scara)
    expert = sim.expert_for(env)
    u = env.unwrapped
    wins = 0
    for _ in range(10):
        obs, _ = env.reset()
        # the arm settled on its start target; the state reports the ee site
        np.testing.assert_allclose(obs["state"][:3], u.robot.target, atol=2e-3)
        assert obs["state"][3] == pytest.approx(0.05, abs=2e-3)  # fingers open
        for _t in range(u.max_steps):
            obs, _r, term, trunc, info = env.step(expert(obs))
            if term or trunc:
                break
        wins += info["success"]
    assert wins >= 9, f"{task}: {wins}/10 with the SCARA arm"
    assert u.model.nu == 2 and "gantry_x" not in [u.model.joint(i).name for i in
                                                  range(u.model.njnt)]


def test_user_arm_renders_head_and_wrist(scara):
    env = sim.make("reach-box", randomize=("BG",), image_size=32, cameras=("head", "wrist"),
                   seed=1, robot=scara)
    obs, _ = env.reset()
    assert obs["head"].shape == obs["wrist"].shape == (32, 32, 3)
    assert not np.array_equal(obs["head"], obs["wrist"])
    env.close()


@pytest.mark.parametrize("change, exc, match", [
    ({"path": "/nonexistent/arm.xml"}, MissingFileError, "does not exist"),
    ({"ee_site": "tool"}, ConfigError, "has no site 'tool'"),
    ({"gripper_actuators": ("grip",)}, ConfigError, "has no actuator 'grip'"),
    ({"finger_joints": ("f1",)}, ConfigError, "has no joint 'f1'"),
])
def test_bad_robot_config(scara, change, exc, match):
    import dataclasses

    with pytest.raises(exc, match=match) as e:
        sim.make("reach-mug", image_size=0, robot=dataclasses.replace(scara, **change))
    assert "\n" not in str(e.value)


def test_malformed_robot_file(tmp_path):
    bad = Path(tmp_path) / "bad.xml"
    bad.write_text("<mujoco><worldbody><body><geom type='box'/></worldbody></mujoco>")
    with pytest.raises(ConfigError, match="does not load") as e:
        sim.make("reach-mug", image_size=0, robot=MJCFRobot(path=str(bad), ee_site="ee"))
    assert "\n" not in str(e.value)
