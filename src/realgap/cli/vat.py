"""``realgap vat``: Visual Alignment Testing end to end (visual-alignment-testing.txt III-C).

Example (a CPU-sized run of a few minutes)::

    realgap vat --task-a reach-mug --task-b reach-box --head bc --episodes 20 --epochs 15 \\
        --rollouts 20 --checkpoints 1 --eps 0.0 --alpha 0.05 --out runs/vat

Generates (or takes ``--data``) demonstrations of both tasks, trains pi_A, pi_B and pi_B'
(task B on pi_A's frozen encoder), rolls pi_B and pi_B' out from the same initial states,
runs the one-sided dependent t-test and prints t, the critical value, n, eps, the
decision and both success rates with Wilson intervals; the run, with a FullGrad saliency
grid, goes to ``OUT/results.duckdb`` (``realgap report OUT`` shows it).
"""

from __future__ import annotations

import argparse

from realgap.cli._common import emit, show_progress
from realgap.cli._dataclass_options import add_dataclass_options, config_from_args, csv_or_none


def register(sub: argparse._SubParsersAction) -> None:
    from realgap.protocol.vat import VATConfig

    p = sub.add_parser("vat", help="Visual Alignment Testing: does the e2e encoder take part in decisions?",
                       description="Train pi_A, pi_B and pi_B' (pi_A's frozen encoder), compare pi_B "
                       "and pi_B' on paired initial states with a one-sided dependent t-test. "
                       "The options are the fields of realgap.protocol.vat.VATConfig.")
    add_dataclass_options(p, VATConfig, overrides={
        "task_a": {"help": "task A, whose encoder pi_B' reuses frozen"},
        "task_b": {"help": "task B, learned by pi_B (end to end) and pi_B'"},
        "data": {"help": "FrameSet with both tasks (default: generate one in OUT/frames)"},
        "randomize": {"type": csv_or_none, "metavar": "FACTOR[,FACTOR]",
                      "help": "factors randomized in the generated demonstrations (comma list "
                              "of BG, LT, TD, CP, TH, PHYS, or none)"},
        "batch_size": {"help": "training batch size"},
        "lr": {"help": "Adam learning rate"},
    })
    p.add_argument("--out", required=True, help="output directory (policies, frames, results.duckdb)")
    p.set_defaults(func=run)


def format_result(res: object) -> str:
    """The verdict block ``realgap vat`` prints."""
    import numpy as np

    from realgap.protocol.vat import VATResult

    assert isinstance(res, VATResult)
    t, c = res.test, res.config
    b, bp = res.rate_b, res.rate_b_prime
    return "\n".join([
        f"VAT {c.task_a} -> {c.task_b}, head {c.head}, encoder {c.encoder}",
        (f"pi_B  (e2e on {c.task_b}):              {b.successes}/{b.trials} = {b.rate:.3f} "
         f"[95% Wilson {b.lo:.3f}, {b.hi:.3f}]"),
        (f"pi_B' ({c.task_b} on frozen pi_A encoder): {bp.successes}/{bp.trials} = {bp.rate:.3f} "
         f"[95% Wilson {bp.lo:.3f}, {bp.hi:.3f}]"),
        f"mean return: pi_B {np.mean(res.returns_b):.3f}, pi_B' {np.mean(res.returns_b_prime):.3f}",
        (f"D = r(pi_B) - r(pi_B') with r = {c.metric}: mean {t.mean_diff:.3f}, "
         f"sd {t.sd_diff:.3f}, n {t.n} pairs"),
        (f"t = {t.t:.3f}, critical t_(1-{t.alpha:g}, {t.n - 1}) = {t.critical:.3f}, "
         f"eps = {t.eps:g}, one-sided p = {t.p_value:.4f}"),
        f"decision: {t.decision}",
        f"took {res.seconds:.0f} s (" + ", ".join(f"{k} {v:.0f} s" for k, v in res.timings.items()) + ")",
    ])


def run(args: argparse.Namespace) -> int:
    from realgap.protocol.vat import VATConfig, run_vat

    cfg = config_from_args(VATConfig, args)
    res = run_vat(cfg, args.out, progress=show_progress(args))
    return emit(args, {"run_id": res.run_id, "out": args.out, "config": res.config,
                       "test": res.test, "rate_b": res.rate_b, "rate_b_prime": res.rate_b_prime,
                       "r_b": res.r_b, "r_b_prime": res.r_b_prime,
                       "returns_b": res.returns_b, "returns_b_prime": res.returns_b_prime,
                       "policies": res.policies, "seconds": res.seconds,
                       "timings": res.timings},
                f"{format_result(res)}\nrun {res.run_id} written to {args.out}; "
                f"`realgap report {args.out}` shows it")
