"""``realgap protocol summarize COUNTS.csv``: success rates with Wilson intervals from counts."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("protocol", help="factorized evaluation protocols: summarize counts")
    psub = p.add_subparsers(dest="protocol_command", metavar="SUBCOMMAND")
    s = psub.add_parser(
        "summarize",
        help="per-condition and pooled success rates (95%% Wilson) from a CSV of counts",
        description="Input columns: setting, condition, successes, trials; optional factor; "
                    "any other column (e.g. task) is a grouping key. Pooled = sum k / sum n.",
    )
    s.add_argument("counts", metavar="COUNTS.csv", help="CSV of successes/trials per condition")
    s.add_argument("--json", action="store_true", help="print the summary as JSON")
    s.add_argument("--out", default=None, metavar="DIR",
                   help="also write a protocol-summary run to DIR/results.duckdb")
    s.add_argument("--alpha", type=float, default=0.05, help="1 - interval level (default 0.05)")
    s.set_defaults(func=run_summarize)
    p.set_defaults(func=_no_subcommand)


def _no_subcommand(_: argparse.Namespace) -> int:
    """``realgap protocol`` alone: one error line naming the choices, like every usage error."""
    from realgap.cli import fail

    return fail("realgap protocol: name a subcommand (summarize); see `realgap protocol --help`")


def run_summarize(args: argparse.Namespace) -> int:
    from realgap.protocol.stats import wilson_interval
    from realgap.protocol.summarize import (
        format_summary,
        read_counts,
        summarize_counts,
        write_summary,
    )

    wilson_interval(0, 1, args.alpha)  # validates --alpha with a one-line error
    summary = summarize_counts(read_counts(args.counts), alpha=args.alpha, source=args.counts)
    run_id = write_summary(args.out, summary) if args.out else None
    if args.json:
        print(json.dumps(summary.as_dict() | {"run_id": run_id}, indent=1))
    else:
        print(format_summary(summary))
        if run_id:
            print(f"\nwrote protocol-summary run {run_id} to {args.out}")
    return 0
