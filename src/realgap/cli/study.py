"""``realgap study scores``: do the offline scores predict closed-loop transfer?

Example::

    realgap study scores --preset tiny --out study-tiny
    realgap study scores --preset small --out study-small --json > study.json

A preset fixes the sizes (:data:`realgap.study.config.PRESETS`); the flags below override
it one by one.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from realgap.cli._args import seed
from realgap.cli._common import emit, show_progress


def _names(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def _ints(text: str) -> tuple[int, ...]:
    from realgap.errors import ConfigError

    try:
        return tuple(int(s) for s in _names(text))
    except ValueError:
        raise ConfigError(f"--seeds {text!r}: expected comma-separated integers") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("study", help="close the loop: offline scores vs closed-loop transfer")
    ssub = p.add_subparsers(dest="study_command", metavar="STUDY")

    def run_help(_: argparse.Namespace) -> int:
        from realgap.cli import fail

        return fail("realgap study: name a study (scores, dr); see `realgap study --help`")

    p.set_defaults(func=run_help)
    ps = ssub.add_parser(
        "scores", help="train a head per frozen encoder, roll out in sim and the real proxy, "
                       "correlate each offline score with closed-loop success and drop",
        description="For each encoder: one policy head per seed on the same sim "
                    "demonstrations, rolled out on the same initial states in sim and in the "
                    "real proxy (mild, strong); each offline score of the gap runs is "
                    "correlated across encoders with closed-loop success, final distance and "
                    "the sim->real drop (Pearson, Spearman, MMRV; intervals redraw seeds and "
                    "episodes).")
    ps.add_argument("--preset", default="tiny", help="sizes: tiny (a smoke run, ~2 min on 2 "
                    "cores; policies too weak to succeed), small (6 encoders x 3 seeds, ~12 min "
                    "on 2 cores; the best policies succeed on half the sim episodes), full (a "
                    "bigger machine or a GPU)")
    ps.add_argument("--out", required=True, help="output directory (results.duckdb, report.html)")
    ps.add_argument("--encoders", default=None, help="comma list of frozen registry encoders "
                    "(default: the preset's)")
    ps.add_argument("--seeds", default=None, help="comma list of training seeds (default: the "
                    "preset's)")
    ps.add_argument("--head", default=None, help="policy head (default bc)")
    ps.add_argument("--demo-episodes", type=int, default=None, help="expert demonstrations")
    ps.add_argument("--eval-episodes", type=int, default=None,
                    help="initial states played per policy and domain")
    ps.add_argument("--epochs", type=int, default=None, help="training epochs per head")
    ps.add_argument("--n-boot", type=int, default=None, help="bootstrap replicates")
    ps.add_argument("--workers", type=int, default=None, help="rollout worker processes")
    ps.add_argument("--proxy-shadows", default=None, help="proxy shadow quality: off, low, high")
    ps.add_argument("--train-domain", default=None, help="demonstration domain of the heads "
                    "and of the gap runs' sim side: sim-nominal (default) or sim")
    ps.add_argument("--seed", type=seed, default=None, help="seed of data, gap runs, bootstrap")
    ps.add_argument("--device", default=None, help="torch device of the gap runs' embeddings "
                    "(default cpu; cuda when present: heads and rollouts stay on the CPU)")
    ps.set_defaults(func=run_scores)

    pd_ = ssub.add_parser(
        "dr", help="which randomization factor matters: one policy per data setting, each "
                   "evaluated on the same real-proxy conditions, effects vs Clean paired by seed",
        description="For each data setting (Table 1 of the randomization study: Clean, BG, LT, "
                    "TD, CP, TH, combinations, all factors; frame-wise BG/LT/CP; fidelity "
                    "medium/high; distorted physics; RL fine-tuning clean and under "
                    "randomization): expert demonstrations rendered that way, one policy per "
                    "training seed, rolled out on the same initial states in sim and in the "
                    "real-proxy conditions (base, the strong proxy look, distractors, object, "
                    "position, table height). Prints k/n per condition and pooled (Wilson), "
                    "each setting's effect against Clean with an interval paired by seed and "
                    "initial state, a ranking with ties and the granularity, fidelity, physics "
                    "and RL comparisons.")
    pd_.add_argument("--preset", default="tiny", help="sizes: tiny (a smoke run, 1-3 min on "
                     "2 cores: 4 settings), small (18 settings x 3 seeds, 19 min on 2 cores), "
                     "full (a bigger machine)")
    pd_.add_argument("--out", required=True, help="output directory (results.duckdb, report.html)")
    pd_.add_argument("--settings", default=None, help="comma list of data settings (default: "
                     "the preset's); `Clean` is required")
    pd_.add_argument("--seeds", default=None, help="comma list of training seeds")
    pd_.add_argument("--conditions", default=None, help="comma list of evaluation conditions "
                     "(sim, base, proxy-strong, TD-2, TD-4, OBJ-1, OBJ-2, POS-left, POS-right, "
                     "POS-near, POS-far, TH-up, TH-down)")
    pd_.add_argument("--demo-episodes", type=int, default=None,
                     help="expert demonstrations per data setting")
    pd_.add_argument("--trials", type=int, default=None,
                     help="initial states per condition (the same for every policy)")
    pd_.add_argument("--epochs", type=int, default=None, help="training epochs per policy")
    pd_.add_argument("--encoder", default=None, help="policy encoder (default small-e2e, "
                     "trained end to end)")
    pd_.add_argument("--head", default=None, help="policy head (default bc)")
    pd_.add_argument("--finetune-iterations", type=int, default=None,
                     help="RL fine-tuning iterations of the RL settings")
    pd_.add_argument("--real-domain", default=None, help="domain of the real-proxy conditions "
                     "(default real-proxy-mild)")
    pd_.add_argument("--n-boot", type=int, default=None, help="bootstrap replicates")
    pd_.add_argument("--workers", type=int, default=None, help="processes")
    pd_.add_argument("--proxy-shadows", default=None, help="proxy shadow quality: off, low, high")
    pd_.add_argument("--seed", type=seed, default=None, help="seed of the data and the bootstrap")
    pd_.set_defaults(func=run_dr)


def run_dr(args: argparse.Namespace) -> int:
    from realgap.study.dr_job import dr_preset_config, result_json, run_dr_study

    over: dict[str, Any] = {
        "settings": _names(args.settings) if args.settings else None,
        "seeds": _ints(args.seeds) if args.seeds else None,
        "conditions": _names(args.conditions) if args.conditions else None,
        "demo_episodes": args.demo_episodes, "trials": args.trials, "epochs": args.epochs,
        "encoder": args.encoder, "head": args.head,
        "finetune_iterations": args.finetune_iterations, "real_domain": args.real_domain,
        "n_boot": args.n_boot, "workers": args.workers, "proxy_shadows": args.proxy_shadows,
        "seed": args.seed, "progress": show_progress(args)}
    cfg = dr_preset_config(args.preset, args.out, **over)
    res = run_dr_study(cfg)
    return emit(args, result_json(res), dr_result_text(cfg, res))


def dr_result_text(cfg: Any, res: Any) -> str:
    """The lines ``realgap study dr`` prints without ``--json``."""
    n_eps = len(res.outcomes)
    head = (f"study dr ({cfg.preset}): {len(cfg.settings)} settings x {len(cfg.seeds)} "
            f"seed(s) x {len(cfg.conditions)} conditions x {cfg.trials} initial states "
            f"({n_eps} episodes), {res.seconds:.0f} s")
    legend = ("real-proxy success (pooled over seeds, conditions, initial states), effect vs "
              "Clean [paired 95% interval], rank (= tied):")
    lines = [head, legend]
    st = res.stats
    sim = ({} if st.sim_table is None
           else {r["setting"]: r["pooled"] for r in st.sim_table.to_dict(orient="records")})
    pooled = {r["setting"]: r for r in st.table.to_dict(orient="records")}
    for e in st.effects:
        r = pooled[e.setting]
        more = len(e.tied_with) - 4
        tie = (f" = {', '.join(e.tied_with[:4])}" + (f" and {more} more" if more > 0 else "")
               if e.tied_with else "")
        lines.append(f"  {e.rank:>2}. {e.setting:<24} {r['pooled']:>7} [{r['wilson_lo']:.2f}, "
                     f"{r['wilson_hi']:.2f}]  effect {e.effect:+.2f} [{e.lo:+.2f}, {e.hi:+.2f}]"
                     f"  sim {sim.get(e.setting, '-')}{tie}")
    lines.append("mean final distance in the real-proxy conditions (mm), effect vs Clean "
                 "[paired 95% interval], rank (= tied):")
    for e in st.distance_effects:
        tie = f" = {len(e.tied_with)} others" if e.tied_with else ""
        lines.append(f"  {e.rank:>2}. {e.setting:<24} {1000 * e.rate:6.1f}  effect "
                     f"{1000 * e.effect:+6.1f} [{1000 * e.lo:+6.1f}, {1000 * e.hi:+6.1f}]{tie}")
    for c in st.comparisons:
        verdict = ("excludes 0" if c["lo"] > 0 or c["hi"] < 0 else "includes 0")
        k = 1000.0 if c.get("measure") == "final_distance" else 1.0
        unit = " mm" if k != 1.0 else ""
        lines.append(f"  {c['name']}: {k * c['diff']:+.2f}{unit} [{k * c['lo']:+.2f}, "
                     f"{k * c['hi']:+.2f}] ({verdict}, {c['n_seeds']} seeds)")
    if len(cfg.seeds) < 3:
        lines.append(f"  note: the intervals rest on {len(cfg.seeds)} training seed(s) and cannot "
                     "see how much a policy varies between training runs; treat small effects "
                     "as not established (README, study dr)")
    lines.append(f"run {res.run_id} in {res.db_path}; report {res.report_path}")
    return "\n".join(lines)


def run_scores(args: argparse.Namespace) -> int:
    from realgap.study.config import preset_config
    from realgap.study.scores import result_json, run_scores_study

    over: dict[str, Any] = {
        "encoders": _names(args.encoders) if args.encoders else None,
        "seeds": _ints(args.seeds) if args.seeds else None, "head": args.head,
        "demo_episodes": args.demo_episodes, "eval_episodes": args.eval_episodes,
        "epochs": args.epochs, "n_boot": args.n_boot, "workers": args.workers,
        "proxy_shadows": args.proxy_shadows, "seed": args.seed,
        "train_domain": args.train_domain, "device": args.device,
        "progress": show_progress(args)}
    cfg = preset_config(args.preset, args.out, **over)
    res = run_scores_study(cfg)
    return emit(args, result_json(res), result_text(cfg, res))


def _signed(x: Any) -> str:
    # an interval is undefined when most resamples have a constant target (every policy
    # 0/n in a domain): say so instead of printing "+nan"
    return "undefined" if x is None or math.isnan(float(x)) else f"{x:+.2f}"


def result_text(cfg: Any, res: Any) -> str:
    """The lines ``realgap study scores`` prints without ``--json``."""
    lines = [(f"study scores ({cfg.preset}): {len(cfg.encoders)} encoders x {len(cfg.seeds)} "
             f"seed(s), {cfg.eval_episodes} episodes per domain, {res.seconds:.0f} s")]
    for s in res.summary:
        lines.append(f"  {s['encoder']:<22} {s['domain']:<18} {s['successes']}/{s['trials']} "
                     f"[{s['wilson_lo']:.2f}, {s['wilson_hi']:.2f}]  final distance "
                     f"{s['final_distance']:.3f} m  drop {s['success_drop']:+.2f}")
    for target, by_dom in res.best.items():
        for dom, b in (by_dom or {}).items():
            lines.append(f"  best predictor of {target} in {dom} (Spearman rho, oriented so "
                         f"> 0 predicts): {b['score']} {_signed(b['oriented'])} "
                         f"[{_signed(b['oriented_lo'])}, {_signed(b['oriented_hi'])}]")
    lines.append(f"run {res.run_id} in {res.db_path}; report {res.report_path}")
    return "\n".join(lines)
