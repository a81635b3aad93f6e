"""``realgap correlate --sim SIM --real REAL``: does sim success predict real success?

Each side is a CSV of rates or a results database of ``evaluate`` runs (counts k/n).
"""

from __future__ import annotations

import argparse
import json

from realgap.cli._args import seed


def register(sub: argparse._SubParsersAction) -> None:
    from realgap.protocol.correlation import N_BOOT

    p = sub.add_parser(
        "correlate",
        help="Pearson r (Fisher-z interval), Spearman rho and MMRV (bootstrap intervals) of "
             "sim vs real success rates",
        description="Each side is a CSV with columns policy, success_rate (in [0, 1]) and "
                    "optionally task (and successes, trials), or a results database (a "
                    ".duckdb file or the directory holding results.duckdb) of `realgap "
                    "evaluate` runs, read as counts k/n: each run's pooled successes over its "
                    "protocol's conditions, the newest run per (policy, task). Rows are joined "
                    "by policy (and task); numbers per task and pooled. Spearman and MMRV "
                    "intervals resample policies and, where counts are known, their trials.",
    )
    p.add_argument("--sim", required=True, metavar="SIM",
                   help="sim success rates: SIM.csv, or a results database of evaluate runs")
    p.add_argument("--real", required=True, metavar="REAL",
                   help="real success rates: REAL.csv, or a results database of evaluate runs")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="also write a correlate run to DIR/results.duckdb")
    p.add_argument("--alpha", type=float, default=0.05, help="1 - interval level")
    p.add_argument("--n-boot", type=int, default=N_BOOT,
                   help="bootstrap replicates of the Spearman and MMRV intervals (0: none)")
    p.add_argument("--seed", type=seed, default=0, help="seed of the bootstrap (same seed, "
                   "same intervals)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from realgap.protocol.correlation import (
        INTERVAL_CONVENTION,
        MMRV_CONVENTION,
        correlate_csv,
        format_correlation,
        write_correlation,
    )

    points, results = correlate_csv(args.sim, args.real, alpha=args.alpha, n_boot=args.n_boot,
                                    rng=args.seed)
    run_id = write_correlation(args.out, points, results, sim=args.sim, real=args.real,
                               alpha=args.alpha) if args.out else None
    if args.json:
        print(json.dumps({
            "convention": MMRV_CONVENTION,
            "intervals": INTERVAL_CONVENTION if args.n_boot else None,
            "results": {k: v.as_dict() for k, v in results.items()},
            "points": json.loads(points.to_json(orient="records")),
            "run_id": run_id,
        }, indent=1))
    else:
        print(format_correlation(results))
        if run_id:
            print(f"\nwrote correlate run {run_id} to {args.out}")
    return 0
