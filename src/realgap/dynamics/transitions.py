"""Transitions (s, a, s'): the on-disk format, validation and a collector for MuJoCo envs.

File format (``.npz``, ``numpy.savez_compressed``), ``format_version`` 1. Arrays, N rows:

=============  ==============  ==========================================================
key            shape / dtype   meaning
=============  ==============  ==========================================================
obs            (N, S) float    observation before the action
action         (N, A) float    action applied
next_obs       (N, S) float    observation after the action
episode        (N,) int        trajectory id (splits and bootstraps are by trajectory)
qpos           (N, nq) float   optional: full MuJoCo ``qpos`` before the action
qvel           (N, nv) float   optional: full MuJoCo ``qvel`` before the action
next_qpos      (N, nq) float   optional: ``qpos`` after the action
next_qvel      (N, nv) float   optional: ``qvel`` after the action
format_version ()  int         1
meta           () str          JSON: env id, perturbation (``{"PHYS": ...}``), policy, seed
=============  ==============  ==========================================================

The MuJoCo state columns let system identification replay states exactly: Gymnasium's
HalfCheetah observation drops the x position (``exclude_current_positions_from_observation``),
so ``obs`` alone cannot set ``qpos``. Logged real data without them still works for the gap
measures; :mod:`realgap.dynamics.sysid` then rebuilds the state from ``obs``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from realgap._rng import RngLike, as_rng
from realgap.errors import ConfigError, DataError, FormatVersionError, MissingFileError

FORMAT_VERSION = 1
_REQUIRED = ("obs", "action", "next_obs", "episode")
_STATE = ("qpos", "qvel", "next_qpos", "next_qvel")

#: ``policy(obs (S,)) -> action (A,)``; the collector's default draws uniform random actions.
Policy = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Transitions:
    """N transitions (s, a, s') with trajectory ids and optional full MuJoCo states.

    Shapes as in the module docstring. Construct through :meth:`validated` (or :func:`load`)
    to get shape checks.
    """

    obs: np.ndarray
    action: np.ndarray
    next_obs: np.ndarray
    episode: np.ndarray
    qpos: np.ndarray | None = None
    qvel: np.ndarray | None = None
    next_qpos: np.ndarray | None = None
    next_qvel: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def validated(cls, source: str = "transitions", **arrays: Any) -> Transitions:
        """Build from arrays, checking dimensions; ``source`` names the file in errors."""
        meta = dict(arrays.pop("meta", None) or {})
        for k in _REQUIRED:
            if arrays.get(k) is None:
                raise DataError(
                    f"{source}: missing array {k!r}; a transitions file needs "
                    f"{', '.join(_REQUIRED)} (see realgap.dynamics.transitions)"
                )
        obs = np.asarray(arrays["obs"], dtype=np.float64)
        act = np.asarray(arrays["action"], dtype=np.float64)
        nxt = np.asarray(arrays["next_obs"], dtype=np.float64)
        ep = np.asarray(arrays["episode"])
        if act.ndim == 1:
            act = act[:, None]
        if obs.ndim != 2 or nxt.ndim != 2 or act.ndim != 2 or ep.ndim != 1:
            raise DataError(
                f"{source}: expected obs/next_obs (N, S), action (N, A), episode (N,), got "
                f"obs {obs.shape}, action {act.shape}, next_obs {nxt.shape}, episode {ep.shape}"
            )
        n = obs.shape[0]
        if not (act.shape[0] == nxt.shape[0] == ep.shape[0] == n):
            raise DataError(
                f"{source}: row counts differ: obs {n}, action {act.shape[0]}, next_obs "
                f"{nxt.shape[0]}, episode {ep.shape[0]}; every array needs one row per transition"
            )
        if nxt.shape[1] != obs.shape[1]:
            raise DataError(
                f"{source}: obs has {obs.shape[1]} columns but next_obs has {nxt.shape[1]}; "
                "both must be the same observation"
            )
        if n == 0:
            raise DataError(f"{source}: no transitions (0 rows)")
        for k, a in (("obs", obs), ("action", act), ("next_obs", nxt)):
            if not np.all(np.isfinite(a)):
                raise DataError(f"{source}: {k} holds NaN or inf values; drop those rows")
        if not np.issubdtype(ep.dtype, np.integer):
            raise DataError(f"{source}: episode must be integer ids, got dtype {ep.dtype}")
        state = {}
        present = [k for k in _STATE if arrays.get(k) is not None]
        if present and len(present) != len(_STATE):
            raise DataError(
                f"{source}: has {present} but not all of {list(_STATE)}; give all four or none"
            )
        for k in present:
            a = np.asarray(arrays[k], dtype=np.float64)
            if a.ndim != 2 or a.shape[0] != n:
                raise DataError(f"{source}: {k} must be ({n}, dim), got {a.shape}")
            state[k] = a
        if state and (state["qpos"].shape != state["next_qpos"].shape
                      or state["qvel"].shape != state["next_qvel"].shape):
            raise DataError(f"{source}: qpos/next_qpos or qvel/next_qvel shapes differ")
        return cls(obs, act, nxt, ep.astype(np.int64), meta=meta, **state)

    def __len__(self) -> int:
        return int(self.obs.shape[0])

    @property
    def has_state(self) -> bool:
        """True when full MuJoCo ``qpos``/``qvel`` are recorded."""
        return self.qpos is not None

    @property
    def episodes(self) -> np.ndarray:
        """Sorted unique trajectory ids."""
        return np.unique(self.episode)

    def subset(self, rows: np.ndarray) -> Transitions:
        """The transitions at integer positions (or boolean mask) ``rows``."""
        pick = {k: (None if getattr(self, k) is None else getattr(self, k)[rows])
                for k in (*_REQUIRED, *_STATE)}
        return Transitions(**pick, meta=dict(self.meta))  # type: ignore[arg-type]

    def features(self) -> tuple[np.ndarray, np.ndarray]:
        """``(X, Y)``: X = [s, a] (N, S+A), Y = s' - s (N, S): the one-step regression pair."""
        return np.hstack([self.obs, self.action]), self.next_obs - self.obs


def save(tr: Transitions, path: str | Path) -> Path:
    """Write ``tr`` as a compressed ``.npz`` (format above); returns the path."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{p}: is a directory; give the transitions file to write, e.g. {p / 'transitions.npz'}")
    p.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: getattr(tr, k) for k in (*_REQUIRED, *_STATE) if getattr(tr, k) is not None}
    tmp = p.with_name(p.name + ".tmp.npz")
    np.savez_compressed(tmp, format_version=np.int64(FORMAT_VERSION),
                        meta=np.array(json.dumps(tr.meta, sort_keys=True)), **arrays)
    tmp.replace(p)
    return p


def load(path: str | Path) -> Transitions:
    """Read a transitions ``.npz``; checks ``format_version`` and every dimension."""
    p = Path(path)
    if not p.is_file():
        raise MissingFileError(
            f"{p}: no transitions file here; write one with `realgap dynamics collect` or "
            "numpy.savez(obs=..., action=..., next_obs=..., episode=...)"
        )
    try:
        z = np.load(p, allow_pickle=False)
        arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # noqa: BLE001 - numpy raises several kinds for bad zips
        raise DataError(f"{p}: not a readable .npz transitions file ({exc})") from None
    version = int(arrays.pop("format_version", FORMAT_VERSION))
    if version != FORMAT_VERSION:
        raise FormatVersionError(
            f"{p}: transitions format_version {version}, this realgap reads {FORMAT_VERSION}"
        )
    meta = json.loads(str(arrays.pop("meta"))) if "meta" in arrays else {}
    return Transitions.validated(source=str(p), meta=meta, **arrays)


def collect(
    env: Any,
    n_steps: int,
    *,
    policy: Policy | None = None,
    max_episode_steps: int = 200,
    rng: RngLike = 0,
    meta: dict[str, Any] | None = None,
) -> Transitions:
    """Roll out ``policy`` (uniform random actions by default) in ``env`` for ``n_steps``.

    Args:
        env: a Gymnasium env with a Box action space; when ``env.unwrapped`` has MuJoCo
            ``data``, full ``qpos``/``qvel`` are recorded too. Apply a perturbation first with
            :func:`realgap.dynamics.perturb` or build it with :func:`make_env`.
        n_steps: number of transitions.
        max_episode_steps: episodes are cut here (and at termination/truncation).
        rng: seeds the resets and the random actions; same rng, same transitions.

    Returns:
        :class:`Transitions` with ``meta`` holding ``meta``, the policy kind and the seed.
    """
    if n_steps <= 0 or max_episode_steps <= 0:
        raise DataError(f"collect: n_steps and max_episode_steps must be > 0, got {n_steps}, "
                        f"{max_episode_steps}")
    gen = as_rng(rng)
    u = env.unwrapped
    data = getattr(u, "data", None)
    low = np.asarray(env.action_space.low, dtype=np.float64)
    high = np.asarray(env.action_space.high, dtype=np.float64)
    cols: dict[str, list[np.ndarray]] = {k: [] for k in (*_REQUIRED, *_STATE)}
    episode, t = 0, 0
    obs, _ = env.reset(seed=int(gen.integers(2**31)))
    for _ in range(n_steps):
        if policy is None:
            a = gen.uniform(low, high)
        else:
            a = np.asarray(policy(np.asarray(obs)), dtype=np.float64).reshape(low.shape)
        if data is not None:
            cols["qpos"].append(data.qpos.copy())
            cols["qvel"].append(data.qvel.copy())
        nxt, _, term, trunc, _ = env.step(a)
        if data is not None:
            cols["next_qpos"].append(data.qpos.copy())
            cols["next_qvel"].append(data.qvel.copy())
        cols["obs"].append(np.asarray(obs, dtype=np.float64))
        cols["action"].append(a)
        cols["next_obs"].append(np.asarray(nxt, dtype=np.float64))
        cols["episode"].append(np.asarray(episode, dtype=np.int64))
        obs = nxt
        t += 1
        if term or trunc or t >= max_episode_steps:
            episode += 1
            t = 0
            obs, _ = env.reset(seed=int(gen.integers(2**31)))
    arrays = {k: (np.array(v) if v else None) for k, v in cols.items()}
    info = {"policy": "random-uniform" if policy is None else getattr(policy, "__name__", "given"),
            "n_steps": n_steps, "max_episode_steps": max_episode_steps}
    p = getattr(env, "perturbation", None)
    if p is not None:
        info["factors"] = p.factors()
    spec = getattr(env, "spec", None)
    if spec is not None and getattr(spec, "id", None):
        info["env"] = spec.id
    info.update(meta or {})
    return Transitions.validated(source="collect", meta=info, **arrays)


def collect_perturbed(
    env_id: str,
    perturbation: Any,
    n_steps: int,
    *,
    max_episode_steps: int = 200,
    rng: RngLike = 0,
    policy: Policy | None = None,
) -> Transitions:
    """Make ``env_id`` with ``perturbation`` (a :class:`Perturbation` or None) and collect."""
    from realgap.dynamics.perturb import make_env

    env = make_env(env_id, perturbation)
    try:
        return collect(env, n_steps, policy=policy, max_episode_steps=max_episode_steps,
                       rng=rng, meta={"env": env_id})
    finally:
        env.close()
