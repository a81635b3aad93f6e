"""MuJoCo tabletop tasks with factorized domain randomization and a proxy-real domain.

``import realgap.sim`` is light: MuJoCo and Gymnasium load when an env is made. The task
ids are registered with Gymnasium as soon as Gymnasium is imported (or at once if it
already is), so ``gymnasium.make("realgap/reach-mug-v0")`` works after
``import realgap.sim`` (:func:`register_envs`).

>>> import realgap.sim as sim
>>> env = sim.make("reach-mug", randomize=("BG", "LT", "CP"), granularity="frame",
...                fidelity="low", image_size=64, cameras=("head",), seed=0)
>>> obs, info = env.reset(seed=0)
>>> obs, reward, terminated, truncated, info = env.step(sim.expert_for(env)(obs))

Modules: :mod:`~realgap.sim.scene` (the MjSpec scene), :mod:`~realgap.sim.robot` (the
gantry arm), :mod:`~realgap.sim.tasks` (tasks, success tests, rewards; :data:`TASKS`),
:mod:`~realgap.sim.factors` (BG, LT, TD, CP, TH, PHYS),
:mod:`~realgap.sim.factor_config` (names, granularity and range checks), :mod:`~realgap.sim.fidelity`
(low / medium / high), :mod:`~realgap.sim.domains` (sim, sim-nominal, real-proxy
rendering), :mod:`~realgap.sim.env` (the Gymnasium env), :mod:`~realgap.sim.experts`
(scripted experts).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from realgap.sim.domains import DOMAINS
from realgap.sim.factor_config import GRANULARITIES
from realgap.sim.factors import FACTOR_NAMES, FACTORS
from realgap.sim.fidelity import FIDELITY, Fidelity
from realgap.sim.tasks import STATE_DIM, STATE_LAYOUT, TASKS

__all__ = ["DOMAINS", "FACTORS", "FACTOR_NAMES", "FIDELITY", "GRANULARITIES", "GYM_IDS",
           "STATE_DIM", "STATE_LAYOUT", "TASKS", "Fidelity", "expert_for", "make", "register_envs"]

#: Gymnasium ids of the tasks: ``gymnasium.make("realgap/reach-mug-v0", image_size=64)``.
GYM_IDS: dict[str, str] = {t: f"realgap/{t}-v0" for t in TASKS.names()}


def register_envs() -> None:
    """Register every task with Gymnasium under :data:`GYM_IDS` (idempotent).

    ``import realgap.sim`` arranges it (:func:`_register_when_gymnasium_loads`), so after
    ``import realgap.sim`` every id works with ``gymnasium.make``, as does
    ``gymnasium.make("realgap.sim:realgap/reach-mug-v0")`` from a bare interpreter
    (Gymnasium imports the module named before the colon). It is also the package's
    ``gymnasium.envs`` entry point, the plugin group Gymnasium 0.26-0.29 scanned at
    import; Gymnasium 1.x (which realgap requires) scans no entry points.
    """
    import gymnasium as gym

    for task, env_id in GYM_IDS.items():
        if env_id not in gym.registry:
            # the entry point is a string: the env module (MuJoCo) loads at make() only
            gym.register(id=env_id, entry_point="realgap.sim.env:TabletopEnv",
                         kwargs={"task": task}, max_episode_steps=None)


class _AfterGymnasium(importlib.abc.MetaPathFinder):
    """Finds nothing itself: when ``gymnasium`` is first imported, it wraps that module's
    loader so :func:`register_envs` runs right after Gymnasium has loaded, then removes
    itself. So ``import realgap.sim`` does not import Gymnasium (~0.1 s, and nothing in
    ``realgap.dynamics`` or the CLI's light commands needs it), yet every
    ``gymnasium.make("realgap/...")`` finds the ids."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "gymnasium":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module: Any) -> None:
            run(module)
            register_envs()

        loader.exec_module = exec_module
        return spec


def _register_when_gymnasium_loads() -> None:
    if "gymnasium" in sys.modules:
        register_envs()
    elif importlib.util.find_spec("gymnasium") is not None and not any(
            isinstance(f, _AfterGymnasium) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterGymnasium())


def make(
    name: str,
    randomize: Sequence[str] | str | None = (),
    granularity: str | Mapping[str, str] = "episode",
    fidelity: str | Fidelity = "low",
    image_size: int = 128,
    cameras: Sequence[str] = ("head", "wrist"),
    domain: str = "sim",
    seed: int | None = None,
    **kwargs: Any,
) -> Any:
    """Make the Gymnasium env of task ``name`` (one of ``TASKS.names()``).

    Args:
        name: task name: ``reach-mug``, ``reach-box``, ``push``, ``pick-place``.
        randomize: factors to randomize (``("BG", "LT")`` or ``"BG,LT"``); others stay
            at their defaults. See :mod:`realgap.sim.factors`.
        granularity: ``"episode"`` or ``"frame"`` for all factors (TD, TH, PHYS are
            coerced to episode), or a mapping factor -> granularity (asking TD, TH or
            PHYS for ``"frame"`` there is a ConfigError).
        fidelity: ``low``, ``medium`` or ``high`` (:mod:`realgap.sim.fidelity`).
        image_size: square image side in px; 0 renders nothing.
        cameras: any of ``head``, ``wrist``, ``side``; ``()`` renders nothing.
        domain: the domain observations are rendered in (``sim``, ``sim-nominal``,
            ``real-proxy``).
        seed: seed of every random stream (None: fresh OS entropy at the first reset).
        **kwargs: ``max_steps`` (episode cap), ``terminate_on_success`` (default True),
            ``n_bg_textures`` (size of the BG library, default 16), ``bg_library_seed``
            (another seed gives unseen, Sim-OOD backgrounds), ``factor_ranges`` (factor
            name -> its range dataclass or a dict of its fields, e.g.
            ``{"CP": {"pos_offset": [0.08, 0.08, 0.08]}}``, see
            :mod:`realgap.sim.factors`), ``robot`` (a
            :class:`realgap.sim.robot.MJCFRobot` to use a user's MJCF arm instead of the
            gantry), ``proxy_shadows`` (``off``, ``low`` or ``high``: shadow quality of
            the proxy-real domains, see :mod:`realgap.sim.domains`).

    Returns:
        a :class:`realgap.sim.env.TabletopEnv` (a ``gymnasium.Env``).
    """
    TASKS.get(name)  # unknown names fail here, listing the known ones
    from realgap.sim.env import TabletopEnv

    return TabletopEnv(name, randomize=randomize, granularity=granularity, fidelity=fidelity,
                       image_size=image_size, cameras=cameras, domain=domain, seed=seed,
                       **kwargs)


def expert_for(env: Any) -> Callable[[dict[str, Any]], np.ndarray]:
    """The scripted expert of ``env``'s task: a callable ``obs -> action`` (float32 (4,)).

    It reads the privileged state (``obs["state"]``) only, so it works with rendering off.
    """
    from realgap.sim.experts import expert_for as _expert_for

    return _expert_for(env)


_register_when_gymnasium_loads()
