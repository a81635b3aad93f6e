"""``realgap study dr``: which randomization factor matters, measured end to end.

vla-domain-randomization-study.txt trains one policy per data setting (Table 1: Clean,
one factor, combinations, all factors; Table 2: frame- vs episode-wise; 4.3: rendering
and physics fidelity; 4.4: RL fine-tuning) and evaluates every policy on the same
one-factor-at-a-time real protocol. This job does the same in realgap's world, in named
steps:

1. ``demonstrations``: expert episodes of the task rendered in ``sim`` with each
   setting's randomization, granularity, fidelity and physics (one FrameSet per distinct
   data recipe, :func:`realgap.sim.generate.generate`); every setting's experts start from
   the same initial states (same generation seed), so settings differ only in what the
   data randomizes.
2. ``policies``: one policy per supervised setting and training seed, same architecture,
   data size and budget (:func:`realgap.policy.train_policy`; held-out early stopping).
3. ``fine-tuning``: the RL settings fine-tune their base setting's policy per seed in
   simulation (:func:`realgap.policy.finetune.finetune_policy`), clean or under the base
   setting's randomization.
4. ``evaluation``: every policy plays the same initial states in every condition of
   :data:`CONDITIONS` (one rollout worker pool for all policies and domains).
5. ``statistics``: :func:`realgap.study.dr.factor_effects`, :func:`factor_table`,
   :func:`compare_settings` on the real-proxy conditions, for success and for the final
   distance to the target (success is rare at CPU sizes; the distance shows what success
   hides); the ``sim`` condition is reported apart (does the policy work at all?).

Why the real conditions are not ``tabletop-v1`` verbatim: the proxy-real domains impose
their own look (textures, lights, camera offset; :mod:`realgap.sim.domains`), so the
protocol's BG, LT and CP conditions render identical frames to its base there (measured:
mean absolute pixel difference 0.0). The study keeps the protocol's state conditions
(distractors, object instance, position, table height) in the real-proxy domain and
replaces the appearance conditions by the other proxy look (``proxy-strong``:
photographs on table, walls and floor, other lights, a larger camera offset and a
stronger sensor: the BG + LT + CP change of the real world, bundled).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import pandas as pd

from realgap.errors import ConfigError
from realgap.study._steps import timed, write_report
from realgap.study.dr import (
    BASELINE,
    DR_SETTINGS,
    TINY_SETTINGS,
    DrSetting,
    FactorEffect,
    compare_settings,
    dr_setting,
    factor_effects,
    factor_table,
)

#: Evaluation conditions: name -> (factor, domain, tabletop-v1 condition whose settings
#: are applied). ``domain`` None = the study's ``real_domain``. ``sim`` is the nominal
#: simulator (in-distribution check, kept out of the real-proxy statistics).
CONDITIONS: dict[str, tuple[str, str | None, str]] = {
    "sim": ("sim", "sim", "base"),
    "base": ("base", None, "base"),
    "proxy-strong": ("BG+LT+CP", "real-proxy-strong", "base"),
    "TD-2": ("TD", None, "TD-2"),
    "TD-4": ("TD", None, "TD-4"),
    "OBJ-1": ("OBJ", None, "OBJ-1"),
    "OBJ-2": ("OBJ", None, "OBJ-2"),
    "POS-left": ("POS", None, "POS-left"),
    "POS-right": ("POS", None, "POS-right"),
    "POS-near": ("POS", None, "POS-near"),
    "POS-far": ("POS", None, "POS-far"),
    "TH-up": ("TH", None, "TH-up"),
    "TH-down": ("TH", None, "TH-down"),
}
SIM_CONDITION = "sim"
PROTOCOL = "tabletop-v1"


@dataclass(frozen=True)
class DrStudyConfig:
    """What ``realgap study dr`` runs (sizes: :data:`DR_PRESETS`)."""

    out: str
    """Output directory: ``frames/``, ``policies/``, ``results.duckdb``, ``report.html``."""
    settings: tuple[str, ...] = TINY_SETTINGS
    """Data settings (:data:`realgap.study.dr.DR_SETTINGS`); ``Clean`` is required (the
    baseline of every effect); an RL setting needs its base setting."""
    seeds: tuple[int, ...] = (0, 1)
    """Training seeds: every setting trains one policy per seed (the intervals redraw
    them, paired across settings)."""
    task: str = "reach-mug"
    """Task of the demonstrations and the evaluation."""
    demo_episodes: int = 60
    """Expert demonstrations per data setting (same initial states in every setting)."""
    record_every: int = 1
    """Record every k-th control step of the demonstrations."""
    conditions: tuple[str, ...] = ("sim", "base", "proxy-strong", "TD-4", "OBJ-1", "POS-left",
                                   "POS-far", "TH-up")
    """Evaluation conditions (:data:`CONDITIONS`); ``sim`` is reported apart."""
    trials: int = 3
    """Initial states per condition (tabletop-v1's seeds; the same for every policy)."""
    real_domain: str = "real-proxy-mild"
    """Domain of the real-proxy conditions (``proxy-strong`` always renders strong)."""
    encoder: str = "small-e2e"
    """Policy encoder, trained end to end (as the reference's VLAs are) or a frozen
    registry encoder."""
    head: str = "bc"
    """Policy head (``realgap.policy.config.HEAD_REGISTRY``)."""
    epochs: int = 30
    """Training epochs."""
    batch_size: int = 64
    """Samples per step."""
    patience: int = 0
    """Early stopping patience in epochs, with 1 in 8 demonstration episodes held out; 0
    trains every epoch on every episode. Measured on 60 Clean episodes (8 nominal sim
    states): 30 epochs with random-shift augmentation, no held-out set, 7/8 and 7/8 at 64
    and 48 px; 25 epochs, early stopping (patience 8) and no augmentation 1/6."""
    augment_shift: int = 4
    """Random-shift augmentation of the training images, px (0: none)."""
    lr: float = 1e-3
    """Adam learning rate."""
    image_size: int = 64
    """Rendered and policy image side (px)."""
    proxy_shadows: str = "low"
    """Shadow quality of the proxy domains in the evaluation."""
    finetune_iterations: int = 15
    """RL fine-tuning iterations of the RL settings (16 rollouts each, ~3.7 s per
    iteration on one core)."""
    finetune_std: float = 0.3
    """Exploration std of the RL fine-tuning (normalised action units). Measured on a
    40-episode SFT policy (24 states): std 0.1, lr 1e-4, 10 iterations moved the final
    distance by -1.2 mm [-5.6, +3.0]; std 0.3, lr 3e-4, 30 iterations by -7.1 mm
    [-13.2, -1.6] (:mod:`realgap.policy.finetune`)."""
    finetune_lr: float = 3e-4
    """Adam learning rate of the RL fine-tuning."""
    n_boot: int = 1000
    """Bootstrap replicates of the effects and comparisons."""
    seed: int = 0
    """Seed of the demonstrations and the bootstrap."""
    workers: int = 2
    """Processes for generation, training and rollouts."""
    preset: str = "custom"
    """Name of the preset the sizes came from (recorded)."""
    progress: bool = True
    """Progress on stderr."""

    def __post_init__(self) -> None:
        for name in ("demo_episodes", "trials", "epochs", "batch_size", "workers",
                     "record_every", "image_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or int(v) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} {v!r}: must be a positive integer")
        if self.patience < 0 or self.augment_shift < 0:
            raise ConfigError("--patience and --augment-shift must be >= 0")
        if self.finetune_iterations < 1 or self.n_boot < 1:
            raise ConfigError(f"--finetune-iterations {self.finetune_iterations}, --n-boot "
                              f"{self.n_boot}: both must be >= 1")
        if len(set(self.settings)) != len(self.settings):
            raise ConfigError(f"--settings {','.join(self.settings)}: a setting is repeated")
        specs = [dr_setting(s) for s in self.settings]
        if BASELINE not in self.settings:
            raise ConfigError(f"--settings {','.join(self.settings)}: include {BASELINE} "
                              "(every effect is a difference from it)")
        for sp in specs:
            if sp.base is not None and sp.base not in self.settings:
                raise ConfigError(f"--settings: {sp.name} fine-tunes the policy of {sp.base}; "
                                  f"add {sp.base}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"--seeds {self.seeds}: give distinct training seeds")
        if any(sp.finetune for sp in specs):
            self.finetune_config(0, ())  # the fine-tuning's own checks, before any work
        unknown = [c for c in self.conditions if c not in CONDITIONS]
        if unknown:
            raise ConfigError(f"--conditions: unknown {unknown}; choose from "
                              f"{', '.join(CONDITIONS)}")
        if not [c for c in self.conditions if c != SIM_CONDITION]:
            raise ConfigError("--conditions: give at least one real-proxy condition")
        if self.demo_episodes < 4:
            raise ConfigError(f"--demo-episodes {self.demo_episodes}: at least 4 (one in 8 "
                              "episodes is held out for early stopping)")
        if self.real_domain not in ("real-proxy", "real-proxy-mild", "real-proxy-strong"):
            raise ConfigError(f"--real-domain {self.real_domain!r}: expected real-proxy-mild, "
                              "real-proxy-strong or real-proxy")

    def finetune_config(self, seed: int, randomize: tuple[str, ...]) -> Any:
        """The :class:`realgap.policy.finetune.FinetuneConfig` of an RL setting's seed."""
        from realgap.policy.finetune import FinetuneConfig

        return FinetuneConfig(iterations=self.finetune_iterations,
                              std=self.finetune_std, lr=self.finetune_lr,
                              randomize=randomize, seed=seed, threads=1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Sizes of each preset (fields of :class:`DrStudyConfig`).
DR_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"settings": ("Clean", "BG", "LT", "Clean+RL"), "seeds": (0, 1),
             "demo_episodes": 12, "record_every": 2, "epochs": 6, "trials": 2,
             "conditions": ("sim", "base", "proxy-strong", "TD-4"),
             "finetune_iterations": 2, "n_boot": 200},
    "small": {"settings": tuple(DR_SETTINGS), "seeds": (0, 1, 2), "demo_episodes": 60,
              "record_every": 2, "epochs": 30, "trials": 3, "finetune_iterations": 15,
              "n_boot": 1000},
    "full": {"settings": tuple(DR_SETTINGS), "seeds": (0, 1, 2, 3, 4), "demo_episodes": 200,
             "record_every": 1, "epochs": 100, "trials": 10,
             "conditions": tuple(CONDITIONS), "finetune_iterations": 50, "n_boot": 2000},
}


def dr_preset_config(preset: str, out: str, **overrides: Any) -> DrStudyConfig:
    """The :class:`DrStudyConfig` of ``preset`` with ``overrides`` (None: keep)."""
    if preset not in DR_PRESETS:
        raise ConfigError(f"--preset {preset!r}: expected one of {', '.join(DR_PRESETS)}")
    known = {f.name for f in fields(DrStudyConfig)}
    bad = sorted(set(overrides) - known)
    if bad:
        raise ConfigError(f"study config: unknown fields {bad}")
    cfg = DrStudyConfig(out=out, preset=preset, **DR_PRESETS[preset])
    return replace(cfg, **{k: v for k, v in overrides.items() if v is not None})




def _say(cfg: DrStudyConfig, msg: str) -> None:
    if cfg.progress:
        print(f"[study dr] {msg}", file=sys.stderr, flush=True)


def _safe(name: str) -> str:
    return name.replace("/", "_").replace("+", "plus")


def frames_dir(cfg: DrStudyConfig, s: DrSetting) -> Path:
    """The FrameSet of a setting's data recipe (shared by settings with the same recipe)."""
    return Path(cfg.out) / "frames" / s.data_key


def policy_dir(cfg: DrStudyConfig, setting: str, seed: int) -> Path:
    """Where the policy of ``setting`` and training ``seed`` is trained."""
    return Path(cfg.out) / "policies" / _safe(setting) / f"seed-{seed}"


# -- process pool --------------------------------------------------------------------------
def _init_process() -> None:
    # one BLAS and torch thread per process: the processes run side by side, one per core
    # (OpenBLAS threads spin-wait on oversubscribed cores; see realgap.policy.episodes)
    from threadpoolctl import threadpool_limits

    from realgap._gl import headless_gl

    headless_gl()
    threadpool_limits(limits=1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a core dependency of policies
        pass


def _pool_map(fn: Callable[[Any], Any], items: Sequence[Any], workers: int) -> list[Any]:
    """``[fn(x) for x in items]``, in ``workers`` spawned processes when > 1."""
    if workers <= 1 or len(items) <= 1:
        # in this process: the same one-thread limits, restored afterwards (the steps
        # themselves restore torch's thread count; see train_policy / finetune_policy)
        from threadpoolctl import threadpool_limits

        from realgap._gl import headless_gl

        headless_gl()
        with threadpool_limits(limits=1):
            return [fn(x) for x in items]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(min(workers, len(items)), mp_context=mp.get_context("spawn"),
                             initializer=_init_process) as pool:
        return list(pool.map(fn, items))


# -- steps ---------------------------------------------------------------------------------
def _generate_one(item: tuple[DrStudyConfig, DrSetting]) -> tuple[str, str, str]:
    from realgap.sim.generate import GenerateConfig, expert_success, generate

    cfg, s = item
    out = frames_dir(cfg, s)
    fs = generate(GenerateConfig(
        out=str(out), tasks=(cfg.task,), episodes=cfg.demo_episodes, domains=("sim",),
        randomize=s.factors, granularity=s.granularity, fidelity=s.fidelity,
        image_size=cfg.image_size, cameras=("head",), seed=cfg.seed,
        record_every=cfg.record_every, physics=s.physics), progress=False)
    rec = json.loads((out / "generate.json").read_text())
    k_n = expert_success(rec).get(cfg.task, {})
    return s.data_key, fs.content_hash, f"{k_n.get('success', '?')}/{k_n.get('episodes', '?')}"


def demonstrations(cfg: DrStudyConfig) -> dict[str, tuple[str, str]]:
    """Step 1: data key -> (FrameSet content hash, expert successes "k/n"); resumable."""
    recipes: dict[str, DrSetting] = {}
    for name in cfg.settings:
        s = dr_setting(name)
        if s.finetune is None:
            recipes.setdefault(s.data_key, s)
    _say(cfg, f"demonstrations: {len(recipes)} data recipes x {cfg.demo_episodes} episodes")
    # slowest first (high fidelity renders ~5x, medium ~3x a low frame: measured 131 s and
    # 80 s against 7-28 s for 60 episodes), so the long ones overlap the many short ones
    cost = {"high": 0, "medium": 1}
    order = sorted(recipes.values(), key=lambda s: cost.get(s.fidelity, 2))
    res = _pool_map(_generate_one, [(cfg, s) for s in order], cfg.workers)
    return {k: (h, kn) for k, h, kn in res}


def _train_one(item: tuple[DrStudyConfig, str, int]) -> tuple[str, int, str]:
    from realgap.policy import PolicyConfig, TrainConfig, train_policy

    cfg, name, seed = item
    s = dr_setting(name)
    res = train_policy(frames_dir(cfg, s), policy_dir(cfg, name, seed),
                       PolicyConfig(cfg.task, encoder=cfg.encoder, head=cfg.head,
                                    image_size=cfg.image_size),
                       TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                                   seed=seed, domain="sim", threads=1,
                                   val_episodes=(max(1, cfg.demo_episodes // 8)
                                                 if cfg.patience else 0),
                                   patience=cfg.patience, augment_shift=cfg.augment_shift),
                       progress=False)
    return name, seed, str(res.checkpoint)


def train_policies(cfg: DrStudyConfig) -> dict[tuple[str, int], str]:
    """Step 2: (supervised setting, seed) -> checkpoint; resumes finished trainings."""
    items = [(cfg, n, seed) for n in cfg.settings if dr_setting(n).finetune is None
             for seed in cfg.seeds]
    _say(cfg, f"policies: {len(items)} ({cfg.encoder} + {cfg.head}, {cfg.epochs} epochs)")
    return {(n, seed): ck for n, seed, ck in _pool_map(_train_one, items, cfg.workers)}


def _finetune_one(item: tuple[DrStudyConfig, str, int, str]) -> tuple[str, int, str]:
    from realgap.policy.finetune import finetune_policy

    cfg, name, seed, base_ckpt = item
    s = dr_setting(name)
    randomize = tuple(s.factors) if s.finetune == "randomized" else ()
    res = finetune_policy(base_ckpt, policy_dir(cfg, name, seed),
                          cfg.finetune_config(seed, randomize))
    return name, seed, str(res.checkpoint)


def finetune_policies(cfg: DrStudyConfig, ckpts: dict[tuple[str, int], str]
                      ) -> dict[tuple[str, int], str]:
    """Step 3: (RL setting, seed) -> fine-tuned checkpoint of its base setting's policy."""
    items = [(cfg, n, seed, ckpts[(dr_setting(n).base or BASELINE, seed)])
             for n in cfg.settings if dr_setting(n).finetune is not None for seed in cfg.seeds]
    if not items:
        return {}
    _say(cfg, f"RL fine-tuning: {len(items)} policies x {cfg.finetune_iterations} iterations")
    return {(n, seed): ck for n, seed, ck in _pool_map(_finetune_one, items, cfg.workers)}


def evaluation(cfg: DrStudyConfig, ckpts: dict[tuple[str, int], str]) -> pd.DataFrame:
    """Step 4: every policy on the same initial states in every condition; one row per
    episode (columns of :data:`realgap.study.dr.COLUMNS` plus factor, final_distance, ret,
    length)."""
    from realgap.policy.episodes import EnvSpec, EpisodeSpec, run_episodes
    from realgap.protocol.spec import load_protocol

    spec = load_protocol(PROTOCOL).with_trials(cfg.trials)
    by_name = {c.name: c for c in spec.conditions}
    env = EnvSpec(cfg.task, image_size=cfg.image_size, cameras=("head",),
                  domain=cfg.real_domain, proxy_shadows=cfg.proxy_shadows)
    keys = [(n, seed) for n in cfg.settings for seed in cfg.seeds]
    eps, meta = [], []
    for n, seed in keys:
        for c in cfg.conditions:
            factor, dom, proto = CONDITIONS[c]
            settings = spec.settings(by_name[proto])
            for t, ep_seed in enumerate(spec.seeds):
                eps.append(EpisodeSpec(seed=int(ep_seed), settings=settings, condition=c,
                                       trial=t, policy=ckpts[(n, seed)],
                                       domain=dom or cfg.real_domain))
                meta.append((n, seed, factor))
    _say(cfg, f"evaluation: {len(keys)} policies x {len(cfg.conditions)} conditions x "
              f"{cfg.trials} initial states = {len(eps)} episodes")
    outs = run_episodes(None, env, eps, workers=cfg.workers, progress=cfg.progress,
                        desc="study dr rollouts")
    rows = []
    for (n, seed, factor), o in zip(meta, outs, strict=True):
        rows.append({"setting": n, "seed": int(seed), "condition": o.condition, "factor": factor,
                     "episode": int(o.seed), "success": bool(o.success),
                     "final_distance": -float(o.final_reward), "ret": float(o.ret),
                     "length": int(o.length)})
    return pd.DataFrame(rows)


def real_outcomes(outcomes: pd.DataFrame) -> pd.DataFrame:
    """The rows of the real-proxy conditions (the ``sim`` check left out)."""
    return outcomes[outcomes["condition"] != SIM_CONDITION].reset_index(drop=True)


@dataclass(frozen=True)
class DrStatistics:
    """Step 5's numbers (real-proxy conditions only; ``sim_table``: the sim check)."""

    effects: list[FactorEffect]
    distance_effects: list[FactorEffect]
    comparisons: list[dict[str, Any]]
    table: pd.DataFrame
    sim_table: pd.DataFrame | None


@dataclass(frozen=True)
class DrStudyResult:
    """What a DR study produced and where it went (``stats``: step 5's numbers)."""

    run_id: str
    db_path: Path
    report_path: Path | None
    outcomes: pd.DataFrame
    stats: DrStatistics
    settings: dict[str, dict[str, Any]]
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)


def statistics(cfg: DrStudyConfig, outcomes: pd.DataFrame) -> DrStatistics:
    """Step 5: effects on success and on the final distance, comparisons of both
    (success first), the real table and the sim table. Both measures use the same
    bootstrap draws (same ``cfg.seed``)."""
    real = real_outcomes(outcomes)
    kw: dict[str, Any] = {"n_boot": cfg.n_boot, "rng": cfg.seed}
    sim = outcomes[outcomes["condition"] == SIM_CONDITION]
    return DrStatistics(
        factor_effects(real, **kw), factor_effects(real, measure="final_distance", **kw),
        compare_settings(real, **kw) + compare_settings(real, measure="final_distance", **kw),
        factor_table(real), factor_table(sim) if len(sim) else None)


def run_dr_study(cfg: DrStudyConfig) -> DrStudyResult:
    """Run the study (module docstring) and return what it found and where it went."""
    from realgap.jobs.gap import check_encoder_names
    from realgap.policy.config import head_spec
    from realgap.sim.domains import check_proxy_shadows
    from realgap.store.db import ResultsDB
    from realgap.store.study import DrStudyRecord, write_dr_study

    # names are checked before minutes of generation and training, not inside a worker
    check_encoder_names((cfg.encoder,))
    head_spec(cfg.head)
    check_proxy_shadows(cfg.proxy_shadows)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)

    with timed(timings, "demonstrations"):
        data = demonstrations(cfg)
    with timed(timings, "policies"):
        ckpts = train_policies(cfg)
    with timed(timings, "finetuning"):
        ckpts.update(finetune_policies(cfg, ckpts))
    with timed(timings, "evaluation"):
        outcomes = evaluation(cfg, ckpts)
    with timed(timings, "statistics"):
        st = statistics(cfg, outcomes)
    seconds = time.perf_counter() - t0

    settings: dict[str, dict[str, Any]] = {}
    for name in cfg.settings:
        s = dr_setting(name)
        src = dr_setting(s.base) if s.base else s
        h, kn = data[src.data_key]
        settings[name] = {**s.as_dict(), "frameset_hash": h, "demo_success": kn}
    db_path = out / "results.duckdb"
    with ResultsDB(db_path) as db:
        rec = write_dr_study(db, DrStudyRecord(
            config={**cfg.to_dict(), "seconds": seconds, "timings": timings,
                    "conditions_meta": {c: list(CONDITIONS[c]) for c in cfg.conditions},
                    "protocol": PROTOCOL},
            outcomes=outcomes, settings=settings, effects=tuple(st.effects),
            comparisons=tuple(st.comparisons), distance_effects=tuple(st.distance_effects)))
    report_path = write_report(db_path, out, str(rec.run_id), lambda m: _say(cfg, m))
    return DrStudyResult(str(rec.run_id), db_path, report_path, outcomes, st, settings,
                         seconds, timings)


def result_json(res: DrStudyResult) -> dict[str, Any]:
    """What ``--json`` prints."""
    def records(df: pd.DataFrame | None) -> list[dict[str, Any]] | None:
        return None if df is None else df.to_dict(orient="records")

    st = res.stats
    return {"run_id": res.run_id, "db": str(res.db_path),
            "report": None if res.report_path is None else str(res.report_path),
            "seconds": round(res.seconds, 1),
            "timings": {k: round(v, 1) for k, v in res.timings.items()},
            "settings": res.settings, "table": records(st.table),
            "sim_table": records(st.sim_table),
            "effects": [e.as_dict() for e in st.effects],
            "final_distance_effects": [e.as_dict() for e in st.distance_effects],
            "comparisons": st.comparisons}
