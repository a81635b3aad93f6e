"""``gymnasium.make("realgap/<task>-v0")`` works without importing ``realgap.sim.env``:
each check runs in a fresh interpreter, so no earlier import in the test session helps."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("gymnasium")
pytest.importorskip("mujoco")


def _fresh(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                         timeout=300, env={"MUJOCO_GL": "egl", "PATH": "/usr/bin:/bin",
                                           "HOME": "/tmp", "OPENBLAS_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("imports", ["gymnasium as gym, realgap.sim",
                                     "realgap.sim, gymnasium as gym"])
def test_every_task_id_after_import_realgap_sim_only(imports: str) -> None:
    """Either import order: ids registered at once when Gymnasium is already loaded, or
    when it loads after ``realgap.sim`` (which does not import it itself)."""
    res = _fresh(
        "import json, sys\n"
        f"import {imports}\n"
        "before = 'realgap.sim.env' in sys.modules\n"
        "ids = dict(realgap.sim.GYM_IDS)\n"
        "made = {}\n"
        "for task, env_id in ids.items():\n"
        "    env = gym.make(env_id, image_size=0, cameras=())\n"
        "    obs, info = env.reset(seed=0)\n"
        "    made[env_id] = info['task']\n"
        "    env.close()\n"
        "print(json.dumps({'before': before, 'made': made, 'ids': ids}))\n")
    assert res["before"] is False  # registration did not need the env module
    assert set(res["ids"]) == {"reach-mug", "reach-box", "push", "pick-place"}
    assert res["made"] == {v: k for k, v in res["ids"].items()}


def test_import_realgap_sim_does_not_load_gymnasium() -> None:
    res = _fresh("import json, sys, realgap.sim\n"
                 "print(json.dumps({'gym': 'gymnasium' in sys.modules}))\n")
    assert res == {"gym": False}


def test_module_prefixed_id_from_a_bare_interpreter() -> None:
    """Gymnasium 1.x imports the module named before the colon: nothing else is needed."""
    res = _fresh(
        "import json, sys, gymnasium as gym\n"
        "env = gym.make('realgap.sim:realgap/push-v0', image_size=0, cameras=())\n"
        "obs, info = env.reset(seed=1)\n"
        "print(json.dumps({'task': info['task'], 'state': len(obs['state'])}))\n")
    assert res["task"] == "push" and res["state"] > 0


def test_entry_point_names_the_registration_function() -> None:
    from importlib.metadata import entry_points

    eps = [e for e in entry_points(group="gymnasium.envs") if e.name == "realgap"]
    if not eps:
        pytest.skip("realgap's metadata predates the entry point: pip install --no-deps -e .")
    import realgap.sim

    assert eps[0].load() is realgap.sim.register_envs
    realgap.sim.register_envs()  # idempotent: a second call registers nothing twice
