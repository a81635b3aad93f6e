"""System identification: the physics multipliers that make the simulator reproduce target data.

Replays every target transition in the simulator from the recorded state with the recorded
action (``mujoco.rollout``: ``frame_skip`` physics steps with the control held, as Gymnasium's
``do_simulation``) and minimises the one-step error over the parameters (system
identification: the counterpart of mbrl-latent-gap.txt's perturbed-HalfCheetah setting):

    J(theta) = mean_rows mean_dims ((x'_sim(theta) - x'_target) / sigma)^2

where ``x`` stacks ``qpos`` and ``qvel`` and ``sigma`` is the per-dimension standard deviation
of the target's one-step change ``x' - x`` (so every coordinate weighs alike). Parameters are
multipliers of :mod:`realgap.dynamics.perturb` factors (``gravity``, ``friction``,
``torso_length``, ``thigh_length``, ``length:BODY``, ``mass:BODY``), searched in log-scale
inside ``bounds`` (deterministic; no CMA-ES dependency needed at these dimensions):

- one parameter: the objective on a grid of ``GRID`` log-spaced multipliers over the bounds,
  then scipy's bounded Brent method inside the bracket of the best grid point (contacts make
  the objective rugged away from the optimum: Brent alone over the whole range can stop in a
  local dip);
- several: bounded Powell from the nominal multipliers, restarted from its own result until
  the objective stops improving (one Powell pass stops at its loose tolerance).

Interval: bootstrap over target trajectories, percentile, ``n`` = trajectories. Every
replicate is identified by the *same* procedure as the point estimate, on the rows of the
resampled trajectories (one parameter: the per-row errors on the grid are computed once and
reweighted by the draw counts). The interval is reported as it comes out, never widened:
with noise-free simulated targets every resample identifies the true multiplier and the
interval is as narrow as the optimiser's tolerance; a point outside it (an optimiser that
stopped early on all rows) shows as ``Estimate.bias``. An earlier version printed ``gravity: 1.501
[1.5, 1.5]``: the point came from one loose Powell/Brent pass from the nominal value while
the replicates, started at the point, converged to the truth.

States: the transitions' ``qpos/qvel`` columns when recorded (HalfCheetah's observation
omits the x position, so ``obs`` alone cannot set ``qpos``). Without them, the state is
rebuilt from ``obs`` under Gymnasium's layout ``obs = [qpos[k:], qvel]`` with the ``k``
leading (excluded) coordinates set to the env's initial values; this is exact for envs whose
dynamics do not depend on those coordinates (HalfCheetah, Hopper, Walker2d: the x position).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from realgap._optional import require
from realgap._rng import RngLike, as_rng
from realgap.dynamics.perturb import Perturbation, _check_bodies, factor_perturbation, perturb
from realgap.dynamics.transitions import Transitions
from realgap.errors import ConfigError, DataError
from realgap.stats import Estimate, bootstrap_counts, episode_codes, estimate_from_replicates

#: Log-spaced grid points of the one-parameter search (bracket, then Brent).
GRID = 41


def combine(params: dict[str, float]) -> Perturbation:
    """One :class:`Perturbation` from ``{factor: scale}`` (factors as in ``factor_perturbation``)."""
    g, f, lengths, masses = 1.0, 1.0, {}, {}
    for name, s in params.items():
        p = factor_perturbation(name, s)
        g *= p.gravity
        f *= p.friction
        lengths.update(dict(p.body_length))
        masses.update(dict(p.mass))
    return Perturbation(gravity=g, friction=f, body_length=lengths, mass=masses)


@dataclass
class Replayer:
    """Replays transitions in a Gymnasium MuJoCo env under candidate perturbations."""

    env_id: str
    target: Transitions
    env: Any = field(init=False, repr=False)
    _x0: np.ndarray = field(init=False, repr=False)
    _x1: np.ndarray = field(init=False, repr=False)
    _obs_cols: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        from realgap.dynamics.perturb import make_env

        self.env = make_env(self.env_id)
        u = self.env.unwrapped
        m = u.model
        self.frame_skip = int(getattr(u, "frame_skip", 1))
        if self.target.action.shape[1] != m.nu:
            raise DataError(
                f"transitions: action has {self.target.action.shape[1]} columns but "
                f"{self.env_id} has {m.nu} actuators; the data must come from this robot"
            )
        nq, nv = m.nq, m.nv
        if self.target.has_state:
            qpos, qvel = np.asarray(self.target.qpos), np.asarray(self.target.qvel)
            if qpos.shape[1] != nq or qvel.shape[1] != nv:
                raise DataError(
                    f"transitions: qpos/qvel widths {qpos.shape[1]}/"
                    f"{qvel.shape[1]} but {self.env_id} has nq={nq}, nv={nv}"
                )
            q0, v0, q1, v1 = (np.asarray(a) for a in (self.target.qpos, self.target.qvel,
                                                       self.target.next_qpos,
                                                       self.target.next_qvel))
            cols = np.arange(nq + nv)
        else:
            s = self.target.obs.shape[1]
            k = nq + nv - s
            if k < 0 or k > nq:
                raise DataError(
                    f"transitions: obs has {s} columns, which is not [qpos[k:], qvel] for "
                    f"{self.env_id} (nq={nq}, nv={nv}); record qpos/qvel with the transitions"
                )
            pad = np.broadcast_to(u.init_qpos[:k], (len(self.target), k))
            q0 = np.hstack([pad, self.target.obs[:, : nq - k]])
            v0 = self.target.obs[:, nq - k:]
            q1 = np.hstack([pad, self.target.next_obs[:, : nq - k]])
            v1 = self.target.next_obs[:, nq - k:]
            cols = np.arange(k, nq + nv)
        self._x0 = np.hstack([q0, v0])
        self._x1 = np.hstack([q1, v1])
        self._obs_cols = cols
        self._state0 = self._initial_states(q0, v0)
        delta = (self._x1 - self._x0)[:, cols]
        sd = delta.std(axis=0)
        self._sigma = np.where(sd > 1e-9, sd, 1.0)
        self._ctrl = np.repeat(self.target.action[:, None, :], self.frame_skip, axis=1)

    def _initial_states(self, q: np.ndarray, v: np.ndarray) -> np.ndarray:
        mujoco = require("mujoco")
        u = self.env.unwrapped
        m, d = u.model, mujoco.MjData(u.model)
        spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
        out = np.empty((q.shape[0], mujoco.mj_stateSize(m, spec)))
        for i in range(q.shape[0]):
            d.qpos[:] = q[i]
            d.qvel[:] = v[i]
            mujoco.mj_getState(m, d, out[i], spec)
        return out

    def errors(self, p: Perturbation) -> np.ndarray:
        """Per-row mean squared standardised one-step error under ``p``: (N,)."""
        mujoco = require("mujoco")
        from mujoco import rollout

        u = self.env.unwrapped
        with perturb(self.env, p):
            m = u.model
            states, _ = rollout.rollout(m, mujoco.MjData(m), self._state0, self._ctrl)
        last = states[:, -1, 1: 1 + m.nq + m.nv]  # FULLPHYSICS: time, qpos, qvel, ...
        diff = (last[:, self._obs_cols] - self._x1[:, self._obs_cols]) / self._sigma
        return np.mean(diff**2, axis=1)

    def close(self) -> None:
        self.env.close()


@dataclass(frozen=True)
class SysIdResult:
    """Identified multipliers with trajectory-bootstrap intervals, and the fit's diagnostics.

    Attributes:
        params: one :class:`~realgap.stats.Estimate` per parameter (``n`` = trajectories,
            ``n_frames`` = transitions); ``bias`` flags a point outside its interval.
        objective, objective_nominal: ``J`` at the estimate and at multipliers 1.
        n_evaluations: simulator replays of all rows.
        bounds: the multiplier range searched.
        at_bound: per parameter, True when the estimate sits at a bound (the range is too
            narrow or the data do not identify it).
    """

    params: dict[str, Estimate]
    objective: float
    objective_nominal: float
    n_evaluations: int
    bounds: tuple[float, float] = (0.25, 4.0)
    at_bound: dict[str, bool] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"params": {k: {**v.as_dict(), "at_bound": self.at_bound.get(k, False)}
                           for k, v in self.params.items()},
                "objective": self.objective, "objective_nominal": self.objective_nominal,
                "n_evaluations": self.n_evaluations, "bounds": list(self.bounds)}


def _brent(fun: Any, lo: float, hi: float) -> float:
    from scipy.optimize import minimize_scalar

    r = minimize_scalar(fun, bounds=(lo, hi), method="bounded", options={"xatol": 1e-9})
    return float(r.x)


def _powell(fun: Any, n: int, lo: float, hi: float, x0: np.ndarray) -> np.ndarray:
    from scipy.optimize import minimize

    x, best = np.asarray(x0, dtype=float), float(fun(x0))
    for _ in range(4):  # restarts: one pass stops at Powell's loose line-search tolerance
        r = minimize(fun, x, method="Powell", bounds=[(lo, hi)] * n,
                     options={"xtol": 1e-6, "ftol": 1e-12})
        if not r.fun < best - 1e-12 * max(1.0, abs(best)):
            if r.fun <= best:
                x = np.asarray(r.x)
            break
        x, best = np.asarray(r.x), float(r.fun)
    return x


def identify(
    env_id: str,
    target: Transitions,
    params: Sequence[str],
    *,
    bounds: tuple[float, float] = (0.25, 4.0),
    n_boot: int = 20,
    rng: RngLike = 0,
    level: float = 0.95,
) -> SysIdResult:
    """Estimate ``params`` (factor multipliers) of ``env_id`` from ``target`` transitions.

    Args:
        env_id: the Gymnasium MuJoCo env that plays the simulator (e.g. ``HalfCheetah-v5``).
        target: the "real" transitions; with ``qpos/qvel`` when the observation omits state.
        params: factor names such as ``("gravity", "torso_length")``.
        bounds: multiplier range searched for every parameter.
        n_boot: bootstrap replicates over trajectories for the intervals (0: no interval).

    Returns:
        :class:`SysIdResult`; each parameter an :class:`Estimate` with ``n`` trajectories.
    """
    params = list(dict.fromkeys(params))
    if not params:
        raise ConfigError("params: give at least one parameter, e.g. --params gravity")
    if n_boot < 0:
        raise ConfigError(f"n_boot: bootstrap replicates must be >= 0 (0: no interval), got {n_boot}")
    lo_b, hi_b = bounds
    if not (0 < lo_b < 1.0 < hi_b):
        raise ConfigError(f"bounds: need 0 < low < 1 < high, got {bounds}")
    combine({p: 1.0 for p in params})  # validates names before any simulation
    rep = Replayer(env_id, target)
    n_eval = 0
    try:
        # A body typo fails here, before any optimisation.
        p_all = combine({p: 1.5 for p in params})
        _check_bodies(rep.env.unwrapped.model, "params", p_all.body_length)
        _check_bodies(rep.env.unwrapped.model, "params", p_all.mass)
        lo, hi = np.log(lo_b), np.log(hi_b)

        def make_fun(w: np.ndarray) -> Any:
            """J under row weights ``w`` (N,), summing to 1 (a bootstrap draw's counts)."""
            def fun(z: np.ndarray) -> float:
                nonlocal n_eval
                n_eval += 1
                e = rep.errors(combine(dict(zip(params, np.exp(z).tolist()))))
                return float(e @ w)
            return fun

        gen = as_rng(rng)
        codes, ep = episode_codes(target.episode)
        counts = bootstrap_counts(ep, n_boot, gen)
        if len(params) == 1:
            # Per-row errors on the grid, once; each replicate reweights them by its counts.
            z_grid = np.linspace(lo, hi, GRID)
            grid_err = np.stack([rep.errors(combine({params[0]: float(np.exp(z))}))
                                 for z in z_grid])
            n_eval += GRID

            def solve(w: np.ndarray, x0: np.ndarray) -> np.ndarray:  # x0 unused: a grid
                i = int(np.argmin(grid_err @ w))
                zl, zh = z_grid[max(i - 1, 0)], z_grid[min(i + 1, GRID - 1)]
                return np.array([_brent(lambda z: make_fun(w)(np.array([z])), zl, zh)])
        else:
            def solve(w: np.ndarray, x0: np.ndarray) -> np.ndarray:  # type: ignore[misc]
                return _powell(make_fun(w), len(params), lo, hi, x0)

        all_rows = np.full(len(target), 1.0 / len(target))
        z_hat = solve(all_rows, np.zeros(len(params)))
        obj = make_fun(all_rows)(z_hat)
        obj0 = make_fun(all_rows)(np.zeros(len(params)))
        boots = np.empty((n_boot, len(params)))
        for b in range(n_boot):
            w = counts[b][codes].astype(np.float64)
            boots[b] = solve(w / w.sum(), z_hat)
    finally:
        rep.close()
    est, at_bound = {}, {}
    for j, name in enumerate(params):
        est[name] = estimate_from_replicates(float(np.exp(z_hat[j])),
                                             np.exp(boots[:, j]) if n_boot else None,
                                             n=int(ep.size), n_frames=len(target),
                                             alpha=1.0 - level)
        at_bound[name] = bool(min(abs(z_hat[j] - lo), abs(z_hat[j] - hi)) < 1e-3)
    return SysIdResult(est, obj, obj0, n_eval, (float(lo_b), float(hi_b)), at_bound)
