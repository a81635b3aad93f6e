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

from realgap.cli._args import seed


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("vat", help="Visual Alignment Testing: does the e2e encoder take part in decisions?",
                       description="Train pi_A, pi_B and pi_B' (pi_A's frozen encoder), compare pi_B "
                       "and pi_B' on paired initial states with a one-sided dependent t-test.")
    p.add_argument("--task-a", default="reach-mug", help="task A (default reach-mug)")
    p.add_argument("--task-b", default="reach-box", help="task B (default reach-box)")
    p.add_argument("--head", default="bc", help="bc, bc-rnn or dp-c (default bc)")
    p.add_argument("--encoder", default="resnet18-e2e",
                   help="end-to-end encoder: resnet18-e2e (default) or small-e2e")
    p.add_argument("--data", default=None, help="FrameSet with both tasks (default: generate)")
    p.add_argument("--episodes", type=int, default=20, help="demonstrations per task (default 20)")
    p.add_argument("--epochs", type=int, default=15, help="training epochs per policy (default 15)")
    p.add_argument("--image-size", type=int, default=64, help="image side in px (default 64)")
    p.add_argument("--rollouts", type=int, default=20, help="paired initial states per checkpoint (default 20)")
    p.add_argument("--checkpoints", type=int, default=1, help="final checkpoints evaluated (default 1)")
    p.add_argument("--eps", type=float, default=0.0, help="H0 threshold on mean(D) (default 0)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.add_argument("--metric", default="success",
                   help="paired measure r: success (0/1, default) or return (summed dense reward)")
    p.add_argument("--seed", type=seed, default=0, help="seed of data and training (default 0)")
    p.add_argument("--workers", type=int, default=2, help="rollout workers (default 2)")
    p.add_argument("--batch-size", type=int, default=32, help="batch size (default 32)")
    p.add_argument("--out", required=True, help="output directory (policies, frames, results.duckdb)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
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

    cfg = VATConfig(task_a=args.task_a, task_b=args.task_b, head=args.head, encoder=args.encoder,
                    episodes=args.episodes, epochs=args.epochs, image_size=args.image_size,
                    rollouts=args.rollouts, checkpoints=args.checkpoints, eps=args.eps,
                    alpha=args.alpha, seed=args.seed, workers=args.workers, data=args.data,
                    batch_size=args.batch_size, metric=args.metric)
    res = run_vat(cfg, args.out, progress=not args.no_progress)
    print(format_result(res))
    print(f"run {res.run_id} written to {args.out}; `realgap report {args.out}` shows it")
    return 0
