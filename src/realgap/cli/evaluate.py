"""``realgap evaluate``: run a factorized protocol and print the per-condition table.

Example::

    realgap evaluate --policy runs/bc-mug --protocol tabletop-v1 --trials 10 --workers 2 --out results/
    realgap evaluate --policy expert --task reach-mug --protocol tabletop-v1 --trials 5

Prints successes/trials, the rate and its 95% Wilson interval for every condition and
the pooled sum k / sum n; with ``--out`` the run lands in the results database.
"""

from __future__ import annotations

import argparse

from realgap.cli._common import emit, show_progress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate a policy under a one-factor-at-a-time protocol",
                       description="Play every protocol condition with the same seeds and report "
                       "k/n, rate and 95% Wilson interval per condition plus the pooled rate.")
    p.add_argument("--policy", required=True,
                   help="checkpoint file, training directory, or 'expert' (the scripted expert)")
    p.add_argument("--protocol", default="tabletop-v1",
                   help="shipped protocol name or a protocol .json")
    p.add_argument("--task", default=None, help="task (required for --policy expert; else checked "
                   "against the checkpoint's)")
    p.add_argument("--trials", type=int, default=None, help="trials per condition (default: the protocol's)")
    p.add_argument("--workers", type=int, default=2, help="rollout worker processes")
    p.add_argument("--image-size", type=int, default=64, help="rendered image side for the expert")
    p.add_argument("--max-steps", type=int, default=None,
                   help="cap on steps per episode (default: the task's own limit)")
    p.add_argument("--name", default=None, help="label of this policy in the results")
    p.add_argument("--out", default=None, help="results directory or .duckdb file to write")
    from realgap.executors import add_executor_args

    add_executor_args(p, "the episodes (Ray: tasks of a pool of --workers actors)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from realgap.executors import executor_from_args
    from realgap.protocol.runner import evaluate_policy, format_table

    res = evaluate_policy(args.policy, args.protocol, task=args.task, trials=args.trials,
                          workers=args.workers, out=args.out, name=args.name,
                          image_size=args.image_size, max_steps=args.max_steps,
                          progress=show_progress(args),
                          executor=executor_from_args(args))
    text = format_table(res)
    if res.run_id:
        text += f"\nrun {res.run_id} written to {args.out}"
    return emit(args, {"run_id": res.run_id, "out": args.out, "protocol": res.protocol,
                       "protocol_version": res.protocol_version, "policy": res.policy,
                       "task": res.task, "interval": "95% Wilson",
                       "conditions": res.conditions, "pooled": res.pooled,
                       "outcomes": res.outcomes}, text)
