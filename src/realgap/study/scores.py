"""``realgap study scores``: do the offline scores predict closed-loop transfer?

encoder-dis-as-framework.txt (V-A) proposes DIS and AS as predictors of how a policy on a
frozen encoder transfers, and admits they were never checked against deployments. This
job checks them in realgap's own sim-to-real-proxy world, in named steps:

1. ``demonstrations``: expert episodes of the task, rendered in ``sim`` (background and
   lights randomized per episode), ``sim-nominal`` and the real-proxy domains, the same
   states in each (:func:`realgap.sim.generate.generate`). Heads train on
   ``train_domain`` (``sim-nominal`` by default: see :class:`ScoresStudyConfig`).
2. ``end-to-end policies``: for an end-to-end encoder (``small-e2e``), one policy per
   training seed whose encoder trains with the head (:data:`realgap.policy.config.E2E_ENCODERS`).
   They train on the demonstration episodes outside the gap runs' AS-validation split (the
   episodes the BC encoders train on, :func:`realgap.jobs.gap.heldout_sim_episodes`), so
   their encoder is scored offline on episodes it never saw.
3. ``offline scores``: one gap run per real-proxy domain (:func:`realgap.jobs.gap.run_gap`)
   of the training domain against it, into the study's results database. The BC encoders
   (``bc-sim``, ``bc-sim-nominal``) train there, on demand; the end-to-end encoder is
   built from the first training seed's policy checkpoint (``--weights small-e2e=CKPT``:
   :func:`realgap.encoders.e2e.policy_encoder`). One seed, not an average: the offline
   score is a property of one encoder, and averaging scores of different encoders would
   describe none of them; the closed-loop side of that point still pools every seed's
   policy, so its x-value carries one encoder's gap and its y-value the seeds' spread.
4. ``policies``: one head per frozen encoder and training seed, on the same sim
   demonstrations and budget (:func:`realgap.policy.train_policy`). A BC encoder is the
   one its gap runs trained (same weights, hash checked); its weights travel inside the
   policy checkpoint, so a rollout worker rebuilds it without the FrameSet.
5. ``rollouts``: every policy plays the same initial states (nominal settings) in ``sim``
   and in each real-proxy domain, through the rollout worker pool
   (:func:`realgap.policy.episodes.run_episodes`; one pool serves every policy and
   domain, each episode naming its checkpoint and its domain).
6. ``correlation``: :func:`realgap.study.analysis.correlate_scores` across encoders.

Outcomes, scores and correlations go to one ``scores-study`` run
(:mod:`realgap.store.study`); the report shows the scatter and the table.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from realgap.study._steps import timed, write_report
from realgap.study.analysis import (
    N_BOOT,
    SCORES,
    CorrelationRow,
    best_predictor,
    correlate_scores,
    outcome_grid,
    summarize,
)
from realgap.study.config import ScoresStudyConfig

SIM = "sim"


@dataclass(frozen=True)
class ScoresStudyResult:
    """What a scores study produced (``outcomes``: :mod:`realgap.study.analysis` table;
    ``best``: closed-loop target -> real domain -> the score that predicts it best, by
    oriented Spearman rho, with its interval; None where no score's rho is defined)."""

    run_id: str
    db_path: Path
    report_path: Path | None
    outcomes: pd.DataFrame
    scores: dict[str, dict[str, dict[str, dict[str, float | None]]]]
    correlations: list[CorrelationRow]
    summary: list[dict[str, Any]]
    best: dict[str, Any]
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    gap_runs: dict[str, str] = field(default_factory=dict)


def _say(cfg: ScoresStudyConfig, msg: str) -> None:
    if cfg.progress:
        print(f"[study] {msg}", file=sys.stderr, flush=True)


def demonstrations(cfg: ScoresStudyConfig) -> Any:
    """Step 1: the expert FrameSet at ``out/frames`` (resumable)."""
    from realgap.sim.generate import GenerateConfig, generate

    gcfg = GenerateConfig(out=str(Path(cfg.out) / "frames"), tasks=(cfg.task,),
                          episodes=cfg.demo_episodes,
                          domains=(SIM, "sim-nominal", *cfg.real_domains),
                          randomize=("BG", "LT"), granularity="episode", fidelity="low",
                          image_size=cfg.image_size, cameras=("head",), seed=cfg.seed,
                          record_every=cfg.record_every, proxy_shadows=cfg.proxy_shadows)
    return generate(gcfg, progress=cfg.progress)


def e2e_encoders(cfg: ScoresStudyConfig) -> tuple[str, ...]:
    """The study's end-to-end encoders (trained with the head), in config order."""
    from realgap.policy.config import E2E_ENCODERS

    return tuple(e for e in cfg.encoders if e in E2E_ENCODERS)


def bc_training_episodes(cfg: ScoresStudyConfig) -> list[int]:
    """Demonstration episode ids outside the gap runs' AS-validation split: what the BC
    encoders and the end-to-end policies train on (the gap job's own choice, same seed)."""
    from realgap.data import FrameSet
    from realgap.jobs.gap import heldout_sim_episodes

    sim = FrameSet.open(Path(cfg.out) / "frames").select(domain=cfg.train_domain)
    return heldout_sim_episodes(sim, cfg.seed)[1]


def offline_scores(cfg: ScoresStudyConfig, ckpts: dict[tuple[str, int], str] | None = None
                   ) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """Step 3: real domain -> encoder -> metric -> ``{value, lo, hi}``, the gap run ids, and
    each encoder's weights hash (the same in every gap run; checked).

    ``ckpts``: the end-to-end policies' checkpoints; each end-to-end encoder is scored on
    the first training seed's checkpoint."""
    from realgap.errors import DataError
    from realgap.jobs.gap import GapConfig, run_gap

    weights = tuple((e, (ckpts or {})[(e, cfg.seeds[0])]) for e in e2e_encoders(cfg))
    out: dict[str, Any] = {}
    runs = {}
    hashes: dict[str, str] = {}
    for dom in cfg.real_domains:
        res = run_gap(GapConfig(encoders=tuple(cfg.encoders), out=cfg.out,
                                frames=str(Path(cfg.out) / "frames"),
                                sim_domain=cfg.train_domain,
                                real_domain=dom, n_boot=cfg.n_boot, n_perm=cfg.n_perm,
                                seed=cfg.seed, cache=str(Path(cfg.out) / "cache"),
                                weights=weights, saliency_pairs=0, maps=(),
                                device=cfg.device, progress=cfg.progress))
        runs[dom] = res.run_id
        out[dom] = {enc: {m: {k: est.get(k) for k in ("value", "lo", "hi")}
                          for m, est in by_metric.items() if m in SCORES}
                    for enc, by_metric in res.estimates.items()}
        for enc, ident in res.identity.items():
            h = str(ident.get("weights_hash", ""))
            if hashes.setdefault(enc, h) != h:
                raise DataError(f"study {cfg.out}: encoder {enc!r} had weights {hashes[enc][:19]} "
                                f"in one gap run and {h[:19]} in another; delete {cfg.out}/cache "
                                "and rerun")
    return out, runs, hashes


def policy_dir(cfg: ScoresStudyConfig, encoder: str, seed: int) -> Path:
    """Where the policy of ``encoder`` and training ``seed`` is trained."""
    return Path(cfg.out) / "policies" / f"{encoder}" / f"seed-{seed}"


def _bc_encoder(cfg: ScoresStudyConfig, name: str, episodes: list[int],
                expect_hash: str | None) -> Any:
    """The BC encoder ``name`` as the gap runs built it (same FrameSet, camera, episodes,
    seed and cache: a cache hit), its weights hash checked against theirs."""
    from realgap.data import FrameSet
    from realgap.encoders import create_encoder
    from realgap.errors import DataError

    enc = create_encoder(name, seed=cfg.seed, frameset=FrameSet.open(Path(cfg.out) / "frames"),
                         camera="head", episodes=episodes, cache_dir=Path(cfg.out) / "cache")
    if expect_hash and enc.weights_hash != expect_hash:
        raise DataError(f"study {cfg.out}: encoder {name!r} rebuilt with weights "
                        f"{enc.weights_hash[:19]}, the gap runs scored {expect_hash[:19]}; "
                        f"delete {cfg.out}/cache and rerun")
    return enc


def train_policies(cfg: ScoresStudyConfig, encoders: tuple[str, ...] | None = None,
                   hashes: dict[str, str] | None = None,
                   episodes: list[int] | None = None) -> dict[tuple[str, int], str]:
    """Steps 2 and 4: (encoder, seed) -> checkpoint path for ``encoders`` (default all);
    resumes finished trainings.

    Every policy has the same head, budget and held-out early stopping. Frozen heads train
    on every demonstration episode; end-to-end policies on ``episodes`` (the ones outside
    the gap runs' AS-validation split, :func:`bc_training_episodes`), with random-shift
    augmentation of ``augment_shift`` px (as the BC encoders). ``hashes``: the gap runs'
    weights hash of each encoder (a BC encoder must match it)."""
    from realgap.encoders.registry import BC_DOMAINS
    from realgap.policy import PolicyConfig, TrainConfig, train_policy

    frames = Path(cfg.out) / "frames"
    e2e = set(e2e_encoders(cfg))
    need_eps = [e for e in (encoders or cfg.encoders) if e in e2e or e in BC_DOMAINS]
    if need_eps and episodes is None:
        episodes = bc_training_episodes(cfg)
    ckpts = {}
    for enc in encoders or cfg.encoders:
        frozen = None
        if enc in BC_DOMAINS:
            frozen = _bc_encoder(cfg, enc, list(episodes or []), (hashes or {}).get(enc))
        for seed in cfg.seeds:
            how = "end to end" if enc in e2e else "frozen"
            _say(cfg, f"training a {cfg.head} head on {how} {enc}, seed {seed}")
            n_eps = len(episodes or []) if enc in e2e else cfg.demo_episodes
            res = train_policy(frames, policy_dir(cfg, enc, seed),
                               PolicyConfig(cfg.task, encoder=enc, head=cfg.head,
                                            image_size=cfg.image_size),
                               TrainConfig(epochs=cfg.epochs, batch_size=cfg.batch_size,
                                           lr=cfg.lr, seed=seed, domain=cfg.train_domain,
                                           threads=1, val_episodes=max(1, n_eps // 8),
                                           patience=cfg.patience,
                                           augment_shift=cfg.augment_shift if enc in e2e else 0),
                               progress=cfg.progress,
                               embedding_cache=Path(cfg.out) / "cache",
                               frozen_encoder=frozen,
                               episodes=episodes if enc in e2e else None)
            ckpts[(enc, seed)] = str(res.checkpoint)
    return ckpts


def rollouts(cfg: ScoresStudyConfig, ckpts: dict[tuple[str, int], str]) -> pd.DataFrame:
    """Step 4: every policy on the same initial states in sim and each real-proxy domain;
    the :mod:`realgap.study.analysis` outcome table. One worker pool serves every policy
    and every domain (each episode names its checkpoint and its domain), so the pool
    starts once per study instead of once per domain."""
    from realgap.policy.episodes import EnvSpec, EpisodeSpec, run_episodes

    episodes = [cfg.eval_seed0 + i for i in range(cfg.eval_episodes)]
    spec = EnvSpec(cfg.task, image_size=cfg.image_size, cameras=("head",), domain=SIM,
                   proxy_shadows=cfg.proxy_shadows)
    keys = list(ckpts)
    eps, meta = [], []
    for dom in (SIM, *cfg.real_domains):
        for k in keys:
            for t, s in enumerate(episodes):
                eps.append(EpisodeSpec(seed=s, condition=dom, trial=t, policy=ckpts[k],
                                       domain=dom))
                meta.append((k, dom))
    _say(cfg, f"rollouts: {len(keys)} policies x {len(episodes)} episodes x "
              f"{1 + len(cfg.real_domains)} domains")
    outs = run_episodes(None, spec, eps, workers=cfg.workers, progress=cfg.progress,
                        desc="rollouts")
    rows = []
    for ((enc, seed), dom), o in zip(meta, outs, strict=True):
        rows.append({"encoder": enc, "seed": int(seed), "domain": dom, "episode": int(o.seed),
                     "success": bool(o.success), "final_distance": -float(o.final_reward),
                     "ret": float(o.ret), "length": int(o.length)})
    return pd.DataFrame(rows)


def run_scores_study(cfg: ScoresStudyConfig) -> ScoresStudyResult:
    """Run the study (module docstring) and return what it found and where it went."""
    from realgap.jobs.gap import check_device, check_encoder_names
    from realgap.policy.config import head_spec
    from realgap.sim.domains import check_proxy_shadows
    from realgap.store.db import ResultsDB
    from realgap.store.study import ScoresStudyRecord, write_scores_study

    # names are checked before minutes of generation, not after
    check_encoder_names(tuple(cfg.encoders))
    check_device(cfg.device)
    head_spec(cfg.head)
    check_proxy_shadows(cfg.proxy_shadows)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)

    with timed(timings, "demonstrations"):
        _say(cfg, f"demonstrations: {cfg.demo_episodes} expert episodes of {cfg.task}")
        fs = demonstrations(cfg)
    with timed(timings, "policies_e2e"):
        episodes = bc_training_episodes(cfg)
        e2e = e2e_encoders(cfg)
        ckpts = train_policies(cfg, e2e, episodes=episodes) if e2e else {}
    with timed(timings, "offline_scores"):
        scores, gap_runs, hashes = offline_scores(cfg, ckpts)
    with timed(timings, "policies"):
        frozen = tuple(e for e in cfg.encoders if e not in e2e)
        ckpts.update(train_policies(cfg, frozen, hashes, episodes))
        ckpts = {(e, s): ckpts[(e, s)] for e in cfg.encoders for s in cfg.seeds}  # config order
    with timed(timings, "rollouts"):
        outcomes = rollouts(cfg, ckpts)
    with timed(timings, "correlation"):
        n_boot = cfg.n_boot if cfg.n_boot else N_BOOT
        points = {d: {e: {m: v["value"] for m, v in ms.items()} for e, ms in by.items()}
                  for d, by in scores.items()}
        corr = correlate_scores(outcomes, points, n_boot=n_boot, rng=cfg.seed)
        summary = summarize(outcome_grid(outcomes))
        best = {t: best_predictor(corr, target=t) for t in ("success", "final_distance")}
    seconds = time.perf_counter() - t0

    db_path = out / "results.duckdb"
    with ResultsDB(db_path) as db:
        rec = write_scores_study(db, ScoresStudyRecord(
            config={**cfg.to_dict(), "n_boot_correlation": n_boot, "gap_runs": gap_runs,
                    "seconds": seconds, "timings": timings, "weights_hashes": hashes,
                    "e2e_scored_seed": cfg.seeds[0] if e2e else None},
            outcomes=outcomes, scores=scores, correlations=tuple(corr), summary=tuple(summary),
            frameset_hash=fs.content_hash))
    report_path = write_report(db_path, out, str(rec.run_id), lambda m: _say(cfg, m))
    return ScoresStudyResult(str(rec.run_id), db_path, report_path, outcomes, scores, corr,
                             summary, best, seconds, timings, gap_runs)


def result_json(res: ScoresStudyResult) -> dict[str, Any]:
    """What ``--json`` prints."""
    return {"run_id": res.run_id, "db": str(res.db_path),
            "report": None if res.report_path is None else str(res.report_path),
            "seconds": round(res.seconds, 1), "timings": {k: round(v, 1) for k, v in res.timings.items()},
            "closed_loop": res.summary, "offline_scores": res.scores,
            "correlations": [r.as_dict() for r in res.correlations], "best_predictor": res.best,
            "gap_runs": res.gap_runs}
