"""The dynamics jobs behind ``realgap dynamics gap|degrade|sysid``.

Each is ``run_x(XConfig) -> XResult`` from named steps of :mod:`realgap.dynamics`
(mbrl-latent-gap.txt): measure (or train and play, or fit), record one run in
``OUT/results.duckdb``, rebuild ``OUT/report.html``. The CLI only parses, calls one of
these and prints.

- :func:`run_dynamics_gap`: the gap measures of ``target`` transitions against ``source``
  ones (files), or of the env with one factor at each scale against the nominal env.
- :func:`run_degrade`: a policy's return as one factor grows.
- :func:`run_sysid`: physics multipliers fitted to target transitions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from realgap._rng import RngLike
from realgap.errors import ConfigError

__all__ = [
    "DynamicsGapConfig",
    "DynamicsGapResult",
    "SysidConfig",
    "SysidRunResult",
    "curve_config",
    "measure_curve",
    "measure_files",
    "rebuild_report",
    "run_degrade",
    "run_dynamics_gap",
    "run_sysid",
]


def rebuild_report(out: str | Path) -> Path:
    """Rebuild ``OUT/report.html`` from the results database; returns its path."""
    from realgap.report import build_report

    return Path(build_report(Path(out)))


# -- dynamics gap ------------------------------------------------------------------------
@dataclass(frozen=True)
class DynamicsGapConfig:
    """What ``realgap dynamics gap`` measures."""

    env_id: str = "HalfCheetah-v5"
    """Gymnasium MuJoCo env id."""
    factor: str = "gravity"
    """Physics factor to scale (a name of :data:`realgap.dynamics.DYNAMICS_FACTORS`)."""
    scales: tuple[float, ...] = (1.0, 1.5, 2.0)
    """Multipliers of ``factor``; 1.0 gives the same-dynamics control."""
    source: str | None = None
    """Source transitions ``.npz`` (with ``target``; then env/factor/scales are unused)."""
    target: str | None = None
    """Target transitions ``.npz`` (with ``source``)."""
    steps: int = 3000
    """Transitions collected per domain."""
    max_episode_steps: int = 100
    """Steps per trajectory before a reset."""
    latent: bool = True
    """Also train the latent cross-domain model."""
    latent_steps: int = 600
    """Pretrain and joint steps, each, of the latent model (> 0 with ``latent``)."""
    n_boot: int = 500
    """Bootstrap resamples over trajectories."""
    seed: int = 0
    """Seed: same seed, same numbers."""
    out: str = "out/dynamics"
    """Output directory (results.duckdb, report.html)."""

    def __post_init__(self) -> None:
        if self.latent and self.latent_steps <= 0:
            # Without joint training the map stays the identity: a latent gap of exactly 0.
            raise ConfigError(f"--latent-steps: must be > 0, got {self.latent_steps}; "
                              "use --no-latent to skip the latent model")
        if (self.source is None) != (self.target is None):
            raise ConfigError("--source/--target: give both transitions files, or neither "
                              "(then --env/--factor/--scales generate them)")


@dataclass(frozen=True)
class DynamicsGapResult:
    """Every measure at every scale (``{scale: {metric: GapMeasure}}``), and the run."""

    results: dict[float, dict[str, Any]]
    env_id: str
    factor: str
    run_id: str
    out: str
    report: Path
    config: dict[str, Any] = field(default_factory=dict)


def measure_files(cfg: DynamicsGapConfig) -> tuple[dict[float, dict[str, Any]], str, str]:
    """``(results, env id, "target")``: the measures of ``cfg.target`` against ``cfg.source``
    (one row, labelled scale 1)."""
    from realgap.dynamics.gap import gap_measures
    from realgap.dynamics.latent import LatentConfig, latent_gap
    from realgap.dynamics.transitions import load

    assert cfg.source is not None and cfg.target is not None
    src, tgt = load(cfg.source), load(cfg.target)
    res = gap_measures(src, tgt, rng=cfg.seed, n_boot=cfg.n_boot)
    if cfg.latent:
        lcfg = LatentConfig(pretrain_steps=cfg.latent_steps, joint_steps=cfg.latent_steps)
        res["latent_map_distance"] = latent_gap(src, tgt, lcfg, n_boot=cfg.n_boot, rng=cfg.seed)
    return {1.0: res}, str(tgt.meta.get("env", cfg.target)), "target"


def curve_config(cfg: DynamicsGapConfig) -> Any:
    """The :class:`realgap.dynamics.runs.GapCurveConfig` of ``cfg`` (validates factor and scales)."""
    from realgap.dynamics.runs import GapCurveConfig

    return GapCurveConfig(cfg.env_id, cfg.factor, tuple(cfg.scales), cfg.steps,
                          cfg.max_episode_steps, cfg.latent, cfg.n_boot)


def measure_curve(cfg: DynamicsGapConfig, progress: Callable[[str], None] | None = None
                  ) -> dict[float, dict[str, Any]]:
    """The measures of the env with ``cfg.factor`` at each scale against the nominal env."""
    from realgap.dynamics.latent import LatentConfig
    from realgap.dynamics.runs import gap_curve

    curve = curve_config(cfg)
    lcfg = LatentConfig(pretrain_steps=cfg.latent_steps, joint_steps=cfg.latent_steps)
    return gap_curve(curve, latent_config=lcfg, rng=cfg.seed, progress=progress)


def run_dynamics_gap(cfg: DynamicsGapConfig, progress: Callable[[str], None] | None = None
                     ) -> DynamicsGapResult:
    """Measure, record a ``dynamics-gap`` run in ``cfg.out``, rebuild the report."""
    from realgap.dynamics.runs import write_gap
    from realgap.store import ResultsDB

    if cfg.source is not None:
        results, env_id, factor = measure_files(cfg)
        config: dict[str, Any] = {"source": cfg.source, "target": cfg.target,
                                  "n_boot": cfg.n_boot}
    else:
        results = measure_curve(cfg, progress)
        env_id, factor = cfg.env_id, cfg.factor
        config = {**asdict(curve_config(cfg)), "latent_steps": cfg.latent_steps, "seed": cfg.seed}
    with ResultsDB(cfg.out) as db:
        run = write_gap(db, results, env_id=env_id, factor=factor, config=config)
    return DynamicsGapResult(results, env_id, factor, run, cfg.out, rebuild_report(cfg.out), config)


# -- degradation -------------------------------------------------------------------------
def run_degrade(cfg: Any, out: str | Path, progress: Callable[[str], None] | None = None
                ) -> tuple[Any, str, Path]:
    """Train (or load) the policy, play it at every scale, record a ``degrade`` run.

    Args:
        cfg: a :class:`realgap.dynamics.degrade.DegradeConfig`.
        out: output directory (policies/, results.duckdb, report.html).

    Returns:
        ``(DegradeResult, run id, report path)``.
    """
    from realgap.dynamics.degrade import degradation_curve, write_degrade
    from realgap.store import ResultsDB

    res = degradation_curve(cfg, out_dir=out, progress=progress)
    with ResultsDB(out) as db:
        run = write_degrade(db, res)
    return res, run, rebuild_report(out)


# -- system identification ----------------------------------------------------------------
@dataclass(frozen=True)
class SysidConfig:
    """What ``realgap dynamics sysid`` fits."""

    real: str
    """Target transitions ``.npz``."""
    sim_env: str = "HalfCheetah-v5"
    """Gymnasium MuJoCo env id to fit."""
    params: tuple[str, ...] = ("gravity",)
    """Factors to identify, e.g. gravity, torso_length."""
    bounds: tuple[float, float] = (0.25, 4.0)
    """Multiplier range (low, high)."""
    n_boot: int = 20
    """Bootstrap refits over trajectories."""
    seed: int = 0
    """Seed of the bootstrap."""
    out: str = "out/dynamics"
    """Output directory (results.duckdb, report.html)."""

    def __post_init__(self) -> None:
        if len(self.bounds) != 2:
            raise ConfigError(f"--bounds: expected LOW,HIGH such as 0.25,4, got {self.bounds!r}")
        if not self.params:
            raise ConfigError("--params: name at least one factor, e.g. gravity")


@dataclass(frozen=True)
class SysidRunResult:
    """The fit (:class:`realgap.dynamics.sysid.SysIdResult`) and the run it was recorded as."""

    result: Any
    run_id: str
    report: Path


def run_sysid(cfg: SysidConfig, rng: RngLike = None) -> SysidRunResult:
    """Fit ``cfg.params`` of ``cfg.sim_env`` to ``cfg.real``, record a ``sysid`` run."""
    from realgap.dynamics.runs import write_sysid
    from realgap.dynamics.sysid import identify
    from realgap.dynamics.transitions import load
    from realgap.store import ResultsDB

    target = load(cfg.real)
    params = list(cfg.params)
    res = identify(cfg.sim_env, target, params, bounds=(cfg.bounds[0], cfg.bounds[1]),
                   n_boot=cfg.n_boot, rng=cfg.seed if rng is None else rng)
    with ResultsDB(cfg.out) as db:
        run = write_sysid(db, res, env_id=cfg.sim_env, target=target, target_path=cfg.real,
                          params=params, config={"params": params, "bounds": list(cfg.bounds),
                                                 "n_boot": cfg.n_boot, "seed": cfg.seed})
    return SysidRunResult(res, run, rebuild_report(cfg.out))
