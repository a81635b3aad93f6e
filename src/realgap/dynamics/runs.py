"""Whole dynamics studies and their records in the results database.

- :func:`gap_curve`: source transitions from the nominal env, target transitions at each
  scale of one factor, every gap measure per scale (the reference's Tables 4/5 layout).
- :func:`write_gap` / :func:`write_sysid`: ``dynamics-gap`` and ``sysid`` runs in a
  :class:`realgap.store.ResultsDB` (``degrade`` runs: :func:`realgap.dynamics.degrade.write_degrade`).

Score conventions (read by the report section ``dynamics``): ``grp = "<factor>=<scale>"``,
``extra = {"factor", "scale", ...}``; sysid scores have ``metric = <parameter>`` and
``extra = {"truth": <known multiplier or null>}``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from realgap._rng import RngLike, child_seeds
from realgap.dynamics.gap import GapMeasure, gap_measures
from realgap.dynamics.latent import LatentConfig, latent_gap
from realgap.dynamics.perturb import factor_perturbation, make_env
from realgap.dynamics.transitions import Transitions, collect_perturbed
from realgap.errors import ConfigError


@dataclass(frozen=True)
class GapCurveConfig:
    """A gap-versus-perturbation study."""

    env_id: str = "HalfCheetah-v5"
    """Gymnasium MuJoCo env id."""
    factor: str = "gravity"
    """Perturbed factor."""
    scales: tuple[float, ...] = (1.0, 1.5, 2.0)
    """Target scales; 1.0 gives the same-dynamics control (measures should be ~0)."""
    steps: int = 3000
    """Transitions per domain (random policy)."""
    max_episode_steps: int = 100
    """Trajectory length cap."""
    latent: bool = True
    """Also train the latent cross-domain model (slower: ~10 s per scale on a free core)."""
    n_boot: int = 500
    """Bootstrap replicates."""
    n_perm: int = 1000
    """Permutations of the null of the prediction and C2ST gaps (cheap: models held fixed)."""

    def __post_init__(self) -> None:
        if not self.scales:
            raise ConfigError("scales: give at least one scale, e.g. --scales 1,1.5,2")
        for s in self.scales:
            factor_perturbation(self.factor, s)  # validates factor and scale
        for name in ("steps", "max_episode_steps"):
            if int(getattr(self, name)) <= 0:
                raise ConfigError(f"{name}: must be > 0, got {getattr(self, name)}")
        if self.n_boot < 0:
            raise ConfigError(f"n_boot: must be >= 0 (0: no interval), got {self.n_boot}")
        if self.n_perm < 0:
            raise ConfigError(f"n_perm: must be >= 0 (0: no null), got {self.n_perm}")


def gap_curve(
    config: GapCurveConfig,
    *,
    latent_config: LatentConfig | None = None,
    rng: RngLike = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[float, dict[str, GapMeasure]]:
    """Every gap measure at every scale: ``{scale: {metric: GapMeasure}}``.

    Source and target transitions use different seeds, so the 1.0 row measures sampling
    noise only.
    """
    say = progress or (lambda _m: None)
    # Unknown env ids and body names fail now, before the source collection.
    make_env(config.env_id, factor_perturbation(config.factor, max(config.scales))).close()
    seeds = child_seeds(rng, 2 + 2 * len(config.scales))
    src = collect_perturbed(config.env_id, None, config.steps,
                            max_episode_steps=config.max_episode_steps, rng=seeds[0])
    out: dict[float, dict[str, GapMeasure]] = {}
    for i, s in enumerate(config.scales):
        p = factor_perturbation(config.factor, s)
        tgt = collect_perturbed(config.env_id, p, config.steps,
                                max_episode_steps=config.max_episode_steps, rng=seeds[2 + 2 * i])
        res: dict[str, GapMeasure] = gap_measures(src, tgt, rng=seeds[3 + 2 * i],
                                                  n_boot=config.n_boot, n_perm=config.n_perm)
        if config.latent:
            res["latent_map_distance"] = latent_gap(src, tgt, latent_config or LatentConfig(),
                                                    n_boot=config.n_boot, rng=seeds[1])
        out[float(s)] = res
        say(f"{config.factor}={s:g}: " + ", ".join(f"{k} {v.value:.3f}" for k, v in res.items()))
    return out


def write_gap(
    db: Any,
    results: dict[float, dict[str, GapMeasure]],
    *,
    env_id: str,
    factor: str,
    config: dict[str, Any],
) -> str:
    """Record a ``dynamics-gap`` run (layout: :mod:`realgap.store.dynamics`); returns its id."""
    from realgap.store.common import ENV_SUBJECT
    from realgap.store.dynamics import GAP_KIND, CurvePoint, DynamicsRecord, write_dynamics

    # every field of the measure but the ones a point holds itself: the interval's
    # n_frames/n_boot/bias, the null's p-value and effect, the details
    points = tuple(
        CurvePoint(env_id, metric, e.value, e.lo, e.hi, e.n, factor, float(scale),
                   {k: v for k, v in e.as_dict().items()
                    if k not in ("metric", "value", "lo", "hi", "n", "config")})
        for scale, measures in results.items() for metric, e in measures.items())
    rec = DynamicsRecord(GAP_KIND, f"{env_id} {factor}", env_id, factor, config,
                         ((env_id, ENV_SUBJECT, {"env_id": env_id, "factor": factor}),), points)
    return str(write_dynamics(db, rec).run_id)


def write_sysid(
    db: Any,
    result: Any,
    *,
    env_id: str,
    target: Transitions,
    target_path: str,
    params: Sequence[str],
    config: dict[str, Any],
) -> str:
    """Record a ``sysid`` run (one score per identified multiplier); returns its id.

    When the target file's ``meta`` carries the perturbation that generated it (files from
    ``realgap dynamics collect``), each score's ``extra["truth"]`` holds the true multiplier.
    """
    from realgap.dynamics.perturb import Perturbation

    truth: dict[str, float | None] = {p: None for p in params}
    phys = target.meta.get("factors")
    if phys:
        tp = Perturbation.from_dict(phys)
        for p in params:
            ref = factor_perturbation(p, 2.0)
            if ref.gravity != 1.0:
                truth[p] = tp.gravity
            elif ref.friction != 1.0:
                truth[p] = tp.friction
            elif ref.body_length:
                truth[p] = dict(tp.body_length).get(ref.body_length[0][0], 1.0)
            elif ref.mass:
                truth[p] = dict(tp.mass).get(ref.mass[0][0], 1.0)
    from realgap.store.common import ENV_SUBJECT
    from realgap.store.dynamics import SYSID_KIND, CurvePoint, DynamicsRecord, write_dynamics

    points = tuple(
        CurvePoint(env_id, name, e.value, e.lo, e.hi, e.n, "", None,
                   {"truth": truth.get(name), "objective": result.objective,
                    "objective_nominal": result.objective_nominal, "n_boot": e.n_boot,
                    "n_frames": e.n_frames, "bias": e.bias, "bounds": list(result.bounds),
                    "at_bound": result.at_bound.get(name, False)})
        for name, e in result.params.items())
    rec = DynamicsRecord(SYSID_KIND, f"{env_id} sysid", env_id, "", {**config, "target": target_path},
                         ((env_id, ENV_SUBJECT, {"env_id": env_id, "target": target_path,
                                                 "target_meta": target.meta}),), points)
    return str(write_dynamics(db, rec).run_id)


__all__ = ["GapCurveConfig", "gap_curve", "write_gap", "write_sysid"]
