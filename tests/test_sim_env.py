"""The Gymnasium env: spaces, per-frame factor records, granularity, determinism, domains."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("mujoco")

from realgap import sim
from realgap.errors import ConfigError, UnknownNameError
from realgap.sim.robot import GRIP_Z0, MAX_STEP
from realgap.sim.tasks import STATE_DIM

SIZE = 40


def rollout(env, n: int, seed: int | None = 0):
    """Reset (with ``seed``) and take ``n`` expert steps; returns per-frame obs and infos."""
    obs, info = env.reset(seed=seed)
    expert = sim.expert_for(env)
    frames, infos = [obs], [info]
    for _ in range(n):
        obs, _r, term, trunc, info = env.step(expert(obs))
        frames.append(obs)
        infos.append(info)
        if term or trunc:
            break
    return frames, infos


def test_import_is_light():
    """MuJoCo, Gymnasium and torch load only when needed (the task ids are registered when
    Gymnasium is imported: tests/test_gym_registration.py)."""
    code = ("import sys, realgap.sim; "
            "print(sorted(m for m in ('mujoco', 'gymnasium', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_spaces_and_observation():
    env = sim.make("reach-box", image_size=SIZE, cameras=("head", "wrist"), seed=0)
    obs, info = env.reset()
    assert set(obs) == {"state", "head", "wrist"}
    assert obs["state"].shape == (STATE_DIM,) and obs["state"].dtype == np.float32
    assert obs["head"].shape == (SIZE, SIZE, 3) and obs["head"].dtype == np.uint8
    assert env.observation_space.contains(obs)
    assert np.array_equal(env.render(), obs["head"])  # gymnasium's rgb_array render
    assert env.action_space.shape == (4,)
    assert sim.TASKS.names() == ["pick-place", "push", "reach-box", "reach-mug"]
    assert set(info["factors"]) == set(sim.FACTOR_NAMES)
    json.dumps(info["factors"])
    # the state's grip point is the gantry joints offset by GRIP_Z0 (robot module docstring)
    u = env.unwrapped
    q = u.data.qpos[u.robot.qadr[:3]]
    np.testing.assert_allclose(obs["state"][:3], q + [0, 0, GRIP_Z0], atol=1e-6)
    # one step of action (1, 0, -1, -1) moves the position target by MAX_STEP in x and -z
    t0 = u.robot.target.copy()
    env.step(np.array([1.0, 0.0, -1.0, -1.0]))
    np.testing.assert_allclose(u.robot.target - t0, [MAX_STEP, 0, -MAX_STEP], atol=1e-12)
    env.close()


def test_frame_and_episode_granularity_recorded_per_frame():
    env = sim.make("push", randomize=("BG", "LT", "CP", "TD", "TH"),
                   granularity={"BG": "frame", "LT": "frame", "CP": "episode"},
                   image_size=SIZE, cameras=("head",), seed=3)
    _, infos = rollout(env, 4)
    assert len(infos) == 5
    for a, b in itertools.pairwise(infos):
        assert a["factors"]["BG"] != b["factors"]["BG"]  # frame-wise: new values each step
        assert a["factors"]["LT"] != b["factors"]["LT"]
        for name in ("CP", "TD", "TH", "PHYS"):  # episode-wise (PHYS: not randomized)
            assert a["factors"][name] == b["factors"][name]
    # the record is the frame's: the model's current texture is the recorded one
    u = env.unwrapped
    rec = infos[-1]["factors"]["BG"]["table"]["texture"]
    assert u.h.bg_tex[rec] == u.model.mat_texid[u.h.mat["table"], 1]
    assert infos[0]["factors"]["CP"]["dpos"] != [0.0, 0.0, 0.0]
    assert infos[0]["factors"]["PHYS"]["friction"] == 1.0
    # a new episode draws new episode-wise values
    _, info2 = env.reset()
    for name in ("CP", "TD", "TH"):
        assert info2["factors"][name] != infos[0]["factors"][name]
    env.close()


def test_same_seed_same_frames_different_seed_different():
    kw = {"randomize": ("BG", "LT", "CP", "TD"), "granularity": "frame", "image_size": SIZE,
          "cameras": ("head", "wrist")}
    a = sim.make("pick-place", seed=7, **kw)
    b = sim.make("pick-place", seed=7, **kw)
    fa, ia = rollout(a, 3, seed=None)
    fb, ib = rollout(b, 3, seed=None)
    for x, y in zip(fa, fb, strict=True):
        for k in x:
            assert np.array_equal(x[k], y[k])
    assert [i["factors"] for i in ia] == [i["factors"] for i in ib]
    # reseeding the same env replays the episode exactly
    fa2, _ = rollout(a, 3, seed=7)
    assert all(np.array_equal(x["head"], y["head"]) for x, y in zip(fa, fa2, strict=True))
    fc, ic = rollout(b, 3, seed=8)
    assert not np.array_equal(fa[0]["head"], fc[0]["head"])
    assert not np.array_equal(fa[0]["state"], fc[0]["state"])
    assert ia[0]["factors"]["BG"] != ic[0]["factors"]["BG"]
    a.close()
    b.close()


def test_render_domains_pair_and_restore_exactly():
    rnd = sim.make("reach-mug", randomize=("BG", "LT", "CP"), granularity="frame",
                   image_size=SIZE, cameras=("head", "wrist"), seed=1)
    plain = sim.make("reach-mug", image_size=SIZE, cameras=("head", "wrist"), seed=1)
    obs, _ = rnd.reset()
    obs_plain, _ = plain.reset()
    u = rnd.unwrapped
    np.testing.assert_array_equal(obs["state"], obs_plain["state"])  # same state streams
    arrays = {k: getattr(u.model, k).copy() for k in u._renderer.APPEARANCE}
    nominal = u.render_domain("sim-nominal")
    proxy = u.render_domain("real-proxy")
    # sim-nominal = the unrandomized env's frame of the same state
    for cam in ("head", "wrist"):
        assert np.array_equal(nominal[cam], obs_plain[cam])
        assert not np.array_equal(nominal[cam], obs[cam])
        assert proxy[cam].shape == (SIZE, SIZE, 3) and proxy[cam].dtype == np.uint8
        assert not np.array_equal(proxy[cam], nominal[cam])
    # the sim appearance is back, bit for bit
    for k, v in arrays.items():
        assert np.array_equal(getattr(u.model, k), v), k
    again = u.render_domain("sim")
    assert all(np.array_equal(again[c], obs[c]) for c in ("head", "wrist"))
    # proxy frames are reproducible (noise keyed by seed, episode, step, camera)
    assert np.array_equal(u.render_domain("real-proxy", ("head",))["head"], proxy["head"])
    rnd.step(np.zeros(4))
    assert not np.array_equal(u.render_domain("real-proxy")["head"], proxy["head"])
    # an env rendering in the proxy domain observes exactly those frames
    envp = sim.make("reach-mug", image_size=SIZE, cameras=("head",), domain="real-proxy",
                    seed=1)
    obs_p, _ = envp.reset()
    assert np.array_equal(obs_p["head"], proxy["head"])
    for e in (rnd, plain, envp):
        e.close()


def test_fidelity_presets():
    lo = sim.make("reach-mug", fidelity="low", image_size=SIZE, cameras=("head",), seed=0)
    hi = sim.make("reach-mug", fidelity="high", image_size=SIZE, cameras=("head",), seed=0)
    ol, _ = lo.reset()
    oh, _ = hi.reset()
    fl = lo.unwrapped._renderer.renderer.scene.flags
    fh = hi.unwrapped._renderer.renderer.scene.flags
    import mujoco

    sh, rf = mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION
    assert (fl[sh], fl[rf]) == (0, 0) and (fh[sh], fh[rf]) == (1, 1)
    assert lo.unwrapped.model.vis.quality.offsamples == 0
    assert hi.unwrapped.model.vis.quality.offsamples == 8
    assert hi.unwrapped.model.tex_width[hi.unwrapped.h.bg_tex[0]] == 256
    assert lo.unwrapped.model.tex_width[lo.unwrapped.h.bg_tex[0]] == 64
    np.testing.assert_array_equal(ol["state"], oh["state"])
    assert not np.array_equal(ol["head"], oh["head"])
    lo.close()
    hi.close()


def test_rendering_off():
    env = sim.make("push", image_size=0, seed=0)
    obs, _ = env.reset()
    assert set(obs) == {"state"}
    with pytest.raises(ConfigError, match="image_size=0"):
        env.unwrapped.render_domain("sim")
    env2 = sim.make("push", image_size=SIZE, cameras=(), seed=0)
    assert set(env2.reset()[0]) == {"state"}


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"name": "reach-cup"}, UnknownNameError, "did you mean reach-mug"),
    ({"cameras": ("head", "top")}, ConfigError, "unknown camera 'top'"),
    ({"domain": "real"}, ConfigError, "domain='real'"),
    ({"image_size": -1}, ConfigError, "image_size=-1"),
    ({"fidelity": "ultra"}, UnknownNameError, "fidelity='ultra'"),
])
def test_bad_env_arguments(kwargs, exc, match):
    kw = {"name": "reach-mug", "image_size": 0, **kwargs}
    with pytest.raises(exc, match=match) as e:
        sim.make(kw.pop("name"), **kw)
    assert "\n" not in str(e.value)


def test_bad_step_and_domain():
    env = sim.make("reach-mug", image_size=16, cameras=("head",), seed=0)
    with pytest.raises(ConfigError, match="before reset"):
        env.step(np.zeros(4))
    env.reset()
    with pytest.raises(ConfigError, match="got shape \\(3,\\)"):
        env.step(np.zeros(3))
    with pytest.raises(ConfigError, match="domain='photo'"):
        env.unwrapped.render_domain("photo")
    env.close()


def test_gymnasium_registration_and_factor_registry():
    import gymnasium

    import realgap.sim.env  # noqa: F401  (registers the ids)

    env = gymnasium.make("realgap/pick-place-v0", image_size=0, seed=4)
    obs, _ = env.reset()
    direct = sim.make("pick-place", image_size=0, seed=4)
    np.testing.assert_array_equal(obs["state"], direct.reset()[0]["state"])
    assert env.unwrapped.max_steps == 80
    assert sim.FACTORS.names() == sorted(sim.FACTOR_NAMES)
    assert [n for n in sim.FACTOR_NAMES if sim.FACTORS.get(n).meta["episode_only"]] == [
        "TD", "TH", "PHYS"]


def test_recorded_factors_reproduce_the_frame():
    """The per-frame record is complete: applying it to an unrandomized env in the same
    state renders the very same pixels (for frame-wise and episode-wise factors)."""
    rnd = sim.make("push", randomize=("BG", "LT", "CP", "TD"), granularity="frame",
                   image_size=SIZE, cameras=("head", "wrist"), seed=5)
    plain = sim.make("push", image_size=SIZE, cameras=("head", "wrist"), seed=5)
    rnd.reset()
    plain.reset()
    rnd_obs, *_, rnd_info = rnd.step(np.array([0.3, 0.2, -0.5, 1.0]))
    plain.step(np.array([0.3, 0.2, -0.5, 1.0]))
    recorded = json.loads(json.dumps(rnd_info["factors"]))  # as stored in a FrameSet
    plain.unwrapped.set_factors(recorded)
    again = plain.unwrapped.render_domain("sim")
    for cam in ("head", "wrist"):
        assert np.array_equal(again[cam], rnd_obs[cam])
    with pytest.raises(ConfigError, match="set_factors: unknown factor 'XX'"):
        plain.unwrapped.set_factors({"XX": {}})
    rnd.close()
    plain.close()
