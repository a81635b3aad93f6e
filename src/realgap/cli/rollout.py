"""``realgap rollout``: play a policy for n episodes and record every outcome.

Example::

    realgap rollout --policy runs/bc-mug --episodes 20 --workers 2 --out results/
    realgap rollout --policy expert --task reach-box --seeds 0,1,2 --set TD=4 --set LT=dim

``--set FACTOR=VALUE`` fixes a protocol factor for every episode (values as in the
protocol files: ``BG=library:3``, ``LT=dim``, ``TD=4``, ``OBJ=1``, ``POS=0.06,0``,
``CP=0,0,0.03``, ``TH=0.03``).
"""

from __future__ import annotations

import argparse
from typing import Any

from realgap.cli._common import emit, show_progress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rollout", help="run a policy for n episodes and record the outcomes",
                       description="Play a policy (checkpoint or 'expert') in its task with given "
                       "seeds and factor settings, in parallel workers.")
    p.add_argument("--policy", required=True, help="checkpoint file, training directory, or 'expert'")
    p.add_argument("--task", default=None, help="task (required for --policy expert)")
    p.add_argument("--episodes", type=int, default=None, help="episodes (seeds 0..N-1 unless --seeds)")
    p.add_argument("--seeds", default=None, help="comma list of reset seeds")
    p.add_argument("--set", action="append", default=[], metavar="FACTOR=VALUE",
                   help="fix a protocol factor for every episode (repeatable)")
    p.add_argument("--randomize", default="", help="comma list of env factors randomized per episode")
    p.add_argument("--workers", type=int, default=2, help="worker processes")
    p.add_argument("--image-size", type=int, default=64, help="rendered image side for the expert")
    p.add_argument("--max-steps", type=int, default=None, help="cap on steps per episode")
    p.add_argument("--out", default=None, help="results directory or .duckdb file to write")
    from realgap.executors import add_executor_args

    add_executor_args(p, "the episodes (Ray: tasks of a pool of --workers actors)")
    p.set_defaults(func=run)


def parse_settings(items: list[str]) -> dict[str, Any]:
    """``["TD=4", "POS=0.06,0"]`` -> ``{"TD": 4, "POS": [0.06, 0.0]}`` (checked by the one
    protocol-factor schema, :mod:`realgap.protocol.factors`)."""
    from realgap.protocol.factors import parse_settings as parse

    return parse(items, where="--set")


def run(args: argparse.Namespace) -> int:
    from realgap.errors import ConfigError
    from realgap.executors import executor_from_args
    from realgap.policy import rollout

    seeds = None
    if args.seeds:
        try:
            seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        except ValueError:
            raise ConfigError(f"--seeds {args.seeds!r}: expected comma-separated integers") from None
    randomize = tuple(s.strip() for s in args.randomize.split(",") if s.strip())
    res = rollout(args.policy, args.task, args.episodes, seeds, parse_settings(args.set),
                  workers=args.workers, db=args.out, image_size=args.image_size,
                  randomize=randomize, max_steps=args.max_steps, progress=show_progress(args),
                  executor=executor_from_args(args))
    text = (f"{res.policy} on {res.task}: {res.successes}/{res.episodes} successes, rate "
            f"{res.rate:.3f} [95% Wilson {res.lo:.3f}, {res.hi:.3f}], "
            f"mean return {res.mean_return:.3f}")
    if res.run_id:
        text += f"\nrun {res.run_id} written to {args.out}"
    return emit(args, {"run_id": res.run_id, "out": args.out, "policy": res.policy,
                       "task": res.task, "successes": res.successes, "episodes": res.episodes,
                       "rate": res.rate, "lo": res.lo, "hi": res.hi, "interval": "95% Wilson",
                       "mean_return": res.mean_return, "outcomes": res.outcomes}, text)
