"""Tiny hand-made runs of every kind, written through the store's ``write_x`` functions, for
the store, report and golden-file tests (fast: no simulator, no torch)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np

from realgap.stats import Estimate
from realgap.store import ResultsDB, Score
from realgap.store import correlate as corr_layout
from realgap.store import dynamics as dyn_layout
from realgap.store import evaluate as eval_layout
from realgap.store import gap as gap_layout
from realgap.store import rollout as roll_layout
from realgap.store import study as study_layout
from realgap.store import vat as vat_layout
from realgap.store.common import Outcome
from realgap.store.embedding_map import MapFrame, write_encoder_maps, write_map_frames


# -- hand-made records ---------------------------------------------------------------------
def outcomes(successes: list[int], condition: str = "", seed0: int = 0) -> tuple[Outcome, ...]:
    return tuple(Outcome(condition, i, seed0 + i, bool(s), float(s) * 10.0 - 1.0, 20 + i,
                         {"BG": "plain", "init_digest": f"d{i}"})
                 for i, s in enumerate(successes))


def rollout_record(policy: str = "expert", successes: list[int] | None = None
                   ) -> roll_layout.RolloutRecord:
    from realgap.stats import wilson_interval

    succ = [1, 1, 0, 1] if successes is None else successes
    k, n = sum(succ), len(succ)
    lo, hi = wilson_interval(k, n)
    return roll_layout.RolloutRecord(policy, "reach-mug", k, n, k / n, lo, hi, outcomes(succ),
                                     {"policy": policy, "task": "reach-mug", "workers": 1},
                                     {"head": "bc"})


#: Protocol order on purpose not alphabetical: base, then BG-unseen, then CP-far, then LT-dim.
CONDITIONS = (("base", "base"), ("LT-dim", "LT"), ("BG-unseen", "BG"), ("CP-far", "CP"))


def evaluation_record(policy: str = "expert", table: dict[str, list[int]] | None = None
                      ) -> eval_layout.EvaluationRecord:
    """Four seeds replayed in every condition; ``table`` maps condition -> successes per seed."""
    from realgap.stats import wilson_interval

    table = table or {"base": [1, 1, 1, 0], "LT-dim": [1, 0, 1, 0], "BG-unseen": [0, 0, 1, 0],
                      "CP-far": [1, 1, 0, 0]}
    conds, outs = [], []
    for name, factor in CONDITIONS:
        succ = table[name]
        k, n = sum(succ), len(succ)
        lo, hi = wilson_interval(k, n)
        conds.append(eval_layout.ConditionRate(name, factor, None if factor == "base" else 1,
                                               k, n, k / n, lo, hi))
        outs += outcomes(succ, name, seed0=100)
    k, n = sum(c.successes for c in conds), sum(c.trials for c in conds)
    lo, hi = wilson_interval(k, n)
    pooled = eval_layout.ConditionRate("pooled", None, None, k, n, k / n, lo, hi)
    return eval_layout.EvaluationRecord("default", "1", policy, "reach-mug", tuple(conds), pooled,
                                        tuple(outs), {"trials": 4, "seed": 100}, {"head": "bc"})


def vat_record() -> vat_layout.VatRecord:
    test = {"t": 3.0, "critical": 1.833, "n": 10, "eps": 0.0, "alpha": 0.05, "p_value": 0.0075,
            "mean_diff": 0.5, "sd_diff": 0.527, "reject": True,
            "decision": "reject H0 (mean difference 0.500 > eps 0)", "metric": "success"}
    return vat_layout.VatRecord(
        "VAT reach-mug -> reach-box (bc)",
        {"task_a": "reach-mug", "task_b": "reach-box", "head": "bc", "encoder": "resnet18-e2e",
         "rollouts": 10, "checkpoints": 1},
        {"pi_A": {"task": "reach-mug"}, "pi_B": {"task": "reach-box"}, "pi_B'": {"task": "reach-box"}},
        {"pi_B": vat_layout.VatRate(8, 10, 0.8, 0.49, 0.94),
         "pi_B'": vat_layout.VatRate(3, 10, 0.3, 0.108, 0.603)},
        {"pi_B": Estimate(7.0, 5.0, 9.0, 10, 10, 2000), "pi_B'": Estimate(2.0, 1.0, 3.5, 10, 10, 2000)},
        test, {"pi_B": outcomes([1] * 8 + [0] * 2), "pi_B'": outcomes([1] * 3 + [0] * 7)},
        b"\x89PNG\r\n\x1a\nfake", "FullGrad grid", "deadbeef")


def degrade_record() -> dyn_layout.DynamicsRecord:
    pts = []
    for scale, ret in ((1.0, 100.0), (1.5, 80.0), (2.0, 20.0)):
        drop = 1 - ret / 100.0
        extra = {"n_seeds": 2, "perturbation": {"gravity": scale}}
        pts += [dyn_layout.CurvePoint("sac Pendulum", "mean_return", ret, ret - 5, ret + 5, 10,
                                      "gravity", scale, extra),
                dyn_layout.CurvePoint("sac Pendulum", dyn_layout.NORMALIZED_DROP, drop,
                                      drop - 0.05, drop + 0.05, 10, "gravity", scale, extra),
                dyn_layout.CurvePoint("sac Pendulum", dyn_layout.RETURN_DROP, 100 - ret,
                                      95 - ret, 105 - ret, 10, "gravity", scale, extra)]
    eps = [{"condition": "gravity=1", "trial": 0, "seed": 0, "success": False, "ret": 101.0,
            "length": 200, "factors": {"scale": 1.0}}]
    return dyn_layout.DynamicsRecord(
        dyn_layout.DEGRADE_KIND, "Pendulum gravity", "Pendulum", "gravity", {"env_id": "Pendulum"},
        (("Pendulum", "env", {"env_id": "Pendulum", "factor": "gravity"}),
         ("sac Pendulum", "policy", {"algo": "sac", "seed": 0})),
        tuple(pts), {"sac Pendulum": eps})


def dyn_gap_record() -> dyn_layout.DynamicsRecord:
    pts = tuple(dyn_layout.CurvePoint("Pendulum", m, v * s, v * s - 0.1, v * s + 0.1, 8,
                                      "gravity", s, {"n_boot": 200, "bias": False})
                for s in (1.0, 2.0) for m, v in (("prediction_gap", 0.5), ("c2st_gap", 0.2)))
    return dyn_layout.DynamicsRecord(
        dyn_layout.GAP_KIND, "Pendulum gravity", "Pendulum", "gravity", {},
        (("Pendulum", "env", {"env_id": "Pendulum", "factor": "gravity"}),), pts)


def sysid_record() -> dyn_layout.DynamicsRecord:
    pts = (dyn_layout.CurvePoint("Pendulum", "gravity", 1.2, 1.18, 1.22, 8, "", None,
                                 {"truth": 1.2, "objective": 1e-6, "objective_nominal": 0.3}),)
    return dyn_layout.DynamicsRecord(
        dyn_layout.SYSID_KIND, "Pendulum sysid", "Pendulum", "", {"target": "t.npz"},
        (("Pendulum", "env", {"env_id": "Pendulum", "target": "t.npz"}),), pts)


def correlation_record() -> corr_layout.CorrelationRecord:
    stats = (corr_layout.CorrelationStat("pooled", corr_layout.PEARSON, 0.77, -0.74, 0.99, 4,
                                         {"p_value": 0.23}),
             corr_layout.CorrelationStat("pooled", corr_layout.SPEARMAN, 0.8, -0.2, 1.0, 4,
                                         {"n_boot": 2000}),
             corr_layout.CorrelationStat("pooled", corr_layout.MMRV, 0.1, 0.0, 0.2, 4,
                                         {"n_boot": 2000}))
    pts = (corr_layout.RatePoint("p1", "mug", 0.1, 0.2, (1, 10), (2, 10)),
           corr_layout.RatePoint("p2", "mug", 0.5, 0.4, (5, 10), (4, 10)),
           corr_layout.RatePoint("p3", "mug", 0.3, 0.6),
           corr_layout.RatePoint("p4", "mug", 0.8, 0.7))
    return corr_layout.CorrelationRecord("sim.csv", "real.csv", 0.05, "MMRV convention", stats, pts,
                                         "sim.csv vs real.csv")



#: dr-study: the nominal-sim check, then protocol order (base, BG twice around LT, CP), each
#: condition with its factor.
DR_CONDITIONS = (("sim", "sim"), ("base", "base"), ("BG-lib3", "BG"), ("LT-dim", "LT"),
                 ("BG-lib5", "BG"), ("CP-far", "CP"))
#: dr-study: setting -> success probability of each of its seeds' episodes.
DR_RATES = {"Clean": 0.25, "BG": 0.5, "LT": 0.3, "TH": 0.75, "BG-frame": 0.55}


def dr_study_outcomes(n_seeds: int = 3, n_eps: int = 4, rng: int = 0):  # -> pd.DataFrame
    """A paired grid: every setting's seeds play the same episodes in every condition."""
    import pandas as pd

    gen = np.random.default_rng(rng)
    rows = []
    for setting, p in DR_RATES.items():
        for seed in range(n_seeds):
            for cond, factor in DR_CONDITIONS:
                for ep in range(n_eps):
                    ok = bool(gen.random() < p)
                    rows.append({"setting": setting, "seed": seed, "condition": cond,
                                 "factor": factor, "episode": 1000 + ep, "success": ok,
                                 "final_distance": 0.01 if ok else float(0.05 + 0.1 * gen.random()),
                                 "ret": -1.5 if not ok else 3.0, "length": 40 if not ok else 17})
    return pd.DataFrame(rows)


def dr_study_record(n_seeds: int = 3, n_eps: int = 4) -> study_layout.DrStudyRecord:
    """A dr-study record whose effects are :func:`realgap.study.dr.factor_effects` of its
    real-proxy outcomes (as the job computes them); the comparisons are hand-made (one
    interval excludes 0, one does not)."""
    from realgap.study.dr import factor_effects

    oc = dr_study_outcomes(n_seeds, n_eps)
    real = oc[oc["condition"] != study_layout.DR_SIM_CONDITION]
    effects = tuple(study_layout.FactorEffect(**{**e.as_dict(), "tied_with": tuple(e.tied_with)})
                    for e in factor_effects(real, n_boot=200, rng=0))
    settings = {s: {"factors": [] if s == "Clean" else [s.split("-")[0]],
                    "granularity": "frame" if s.endswith("-frame") else "episode",
                    "fidelity": "low", "physics": "nominal", "finetune": None,
                    "frameset_hash": f"hash-{s}", "demo_success": "8/8"} for s in DR_RATES}
    rate = real.groupby("setting")["success"].mean()
    d_bg, d_th = float(rate["BG-frame"] - rate["BG"]), float(rate["TH"] - rate["Clean"])
    assert d_th > 0.1  # TH plays at 0.75, Clean at 0.25
    comparisons = (  # the first interval contains 0, the second does not
        {"name": "granularity: BG frame vs episode", "a": "BG-frame", "b": "BG",
         "rate_a": float(rate["BG-frame"]), "rate_b": float(rate["BG"]), "diff": d_bg,
         "lo": min(d_bg, 0.0) - 0.1, "hi": max(d_bg, 0.0) + 0.1, "n_seeds": n_seeds},
        {"name": "spatial: TH vs Clean", "a": "TH", "b": "Clean", "rate_a": float(rate["TH"]),
         "rate_b": float(rate["Clean"]), "diff": d_th, "lo": d_th - 0.1, "hi": d_th + 0.1,
         "n_seeds": n_seeds})
    distance = tuple(study_layout.FactorEffect(**{**e.as_dict(), "tied_with": tuple(e.tied_with)})
                     for e in factor_effects(real, n_boot=200, rng=0, measure="final_distance"))
    return study_layout.DrStudyRecord(
        {"preset": "tiny", "seeds": list(range(n_seeds)), "episodes": n_eps, "alpha": 0.05,
         "n_boot": 200, "protocol": "tabletop-v1", "seconds": 12.5}, oc, settings, effects,
        comparisons, distance_effects=distance)




# -- a tiny gap run (the job writes it in pieces; this writes the same layout) ---------------
def _png(colour: tuple[int, int, int], size: tuple[int, int] = (48, 24), fmt: str = "PNG") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format=fmt)
    return buf.getvalue()


GAP_ENCODERS = {"enc-a": ({"family": "cnn", "embed_dim": 64, "params_m": 1.0,
                           "pretrain_data": "ImageNet", "training": "supervised"}, "file:a.pt"),
                "enc-b": ({"family": "vit", "embed_dim": 32, "params_m": 5.0,
                           "pretrain_data": "none", "training": "none"}, "random-init")}


def write_gap_run(db: ResultsDB) -> str:
    """Two encoders, every gap metric with an interval, a ranking, coverage rows, flagged
    frames, saliency grids, worst-covered thumbnails and embedding maps."""
    run = db.new_run(gap_layout.RUN_KIND, {"n_boot": 20, "camera": "head"}, frameset_hash="f00d")
    flagged = [{"episode": 1, "step": 2, "frame_id": "real-1-2", "knn_distance": 2.0,
                "p_value": 0.01}]
    scores: list[Score] = []
    for i, (name, (info, origin)) in enumerate(GAP_ENCODERS.items()):
        gap_layout.write_encoder(db, run, name,
                                 gap_layout.encoder_meta(info, origin, camera="head", n_real=8))
        for j, m in enumerate(gap_layout.GAP_METRICS + gap_layout.EXTRA_METRICS):
            v = 0.2 + 0.3 * i + 0.01 * j
            null = {"p_value": 0.01, "null_mean": 0.0, "null_sd": 0.1, "effect": 3.0,
                    "n_perm": 50, "alternative": "greater"} if m in ("mmd", "c2st_acc") else {}
            scores.append(Score(name, m, v, v - 0.05, v + 0.05, 6,
                                extra={"n_frames": 48, "n_boot": 20, "bias": False, **null}))
        scores.append(Score(name, gap_layout.RANK_ROW, i + 1, n=6,
                            extra={"score": gap_layout.RANKED_BY, "value": 0.2 + 0.3 * i,
                                   "tied_with": []}))
        scores.append(Score(name, gap_layout.OUTSIDE_METRIC, 0.25, n=4, group="BG=1", extra={"k": 1}))
        gap_layout.write_flagged(db, run, name, flagged, n_real=8, alpha=0.05)
        gap_layout.write_saliency(db, run, name, _png((200, 30, 30)), caption=f"Grad-CAM of {name}",
                                  method="gradcam", layer="layer4", pair_ids=[0, 1])
        gap_layout.write_worst(db, run, name, _png((30, 30, 200)),
                               {"rank": 1, "frame_id": "real-1-2", "episode": 1, "step": 2,
                                "nearest_sim_frame_id": "sim-0-0", "knn_distance": 2.0,
                                "p_value": 0.01, "flagged": True})
    db.add_scores(run, scores)
    frames = [MapFrame(f"{d}-{e}-0", d, e, 0, {"BG": e}) for d in ("sim", "real") for e in range(3)]
    write_map_frames(db, run, frames, [_png((i * 30, 90, 90), (8, 8), "JPEG") for i in range(6)])
    rng = np.random.default_rng(0)
    for name in GAP_ENCODERS:
        write_encoder_maps(db, run, name, [("pca", "fitted on sim", rng.normal(size=(6, 2)))],
                           [False, False, False, True, False, False])
    db.finish_run(run)
    return run


# -- one tiny database per run kind -----------------------------------------------------------
def _write(fn: Callable[[ResultsDB], object]) -> Callable[[ResultsDB], None]:
    def run(db: ResultsDB) -> None:
        fn(db)
    return run


def _two_evaluations(db: ResultsDB) -> None:
    eval_layout.write_evaluation(db, evaluation_record("expert"))
    eval_layout.write_evaluation(db, evaluation_record("bc-policy", {
        "base": [1, 0, 1, 0], "LT-dim": [0, 0, 1, 0], "BG-unseen": [0, 0, 0, 0],
        "CP-far": [1, 0, 0, 0]}))


def _two_rollouts(db: ResultsDB) -> None:
    roll_layout.write_rollout(db, rollout_record("expert", [1, 1, 1, 0]))
    roll_layout.write_rollout(db, rollout_record("bc-policy", [0, 1, 0, 0]))


def _summary(db: ResultsDB) -> None:
    c = eval_layout.ConditionRate
    eval_layout.write_summary(db, eval_layout.SummaryRecord(
        "counts.csv", 0.05, ("task",),
        (eval_layout.SummaryRow("BG", c("base", "base", None, 8, 10, 0.8, 0.49, 0.94), {"task": "mug"}),
         eval_layout.SummaryRow("BG", c("light-2", "LT", None, 5, 10, 0.5, 0.24, 0.76),
                                {"task": "mug"})),
        (eval_layout.SummaryRow("BG", c("pooled", None, None, 13, 20, 0.65, 0.43, 0.82),
                                {"task": "mug"}, "group"),)))


#: Run kind -> a function writing a tiny run of that kind (every kind of realgap.store.RUN_KINDS).
MAKERS: dict[str, Callable[[ResultsDB], None]] = {
    gap_layout.RUN_KIND: _write(write_gap_run),
    roll_layout.RUN_KIND: _two_rollouts,
    eval_layout.RUN_KIND: _two_evaluations,
    eval_layout.SUMMARY_KIND: _summary,
    vat_layout.RUN_KIND: _write(lambda db: vat_layout.write_vat(db, vat_record())),
    dyn_layout.DEGRADE_KIND: _write(lambda db: dyn_layout.write_dynamics(db, degrade_record())),
    dyn_layout.GAP_KIND: _write(lambda db: dyn_layout.write_dynamics(db, dyn_gap_record())),
    dyn_layout.SYSID_KIND: _write(lambda db: dyn_layout.write_dynamics(db, sysid_record())),
    corr_layout.RUN_KIND: _write(lambda db: corr_layout.write_correlation(db, correlation_record())),
    study_layout.DR_RUN_KIND: _write(lambda db: study_layout.write_dr_study(db, dr_study_record())),
}


def tiny_db(path: Path, kind: str) -> Path:
    """A results database at ``path`` (a directory) holding tiny runs of ``kind``."""
    with ResultsDB(path) as db:
        MAKERS[kind](db)
    return path
