"""``realgap correlate --sim SIM.csv --real REAL.csv``: does sim success predict real success?"""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "correlate",
        help="Pearson r (Fisher-z interval), Spearman rho and MMRV of sim vs real success rates",
        description="Both CSVs have columns policy, success_rate (in [0, 1]) and optionally "
                    "task; rows are joined by policy (and task). Numbers per task and pooled.",
    )
    p.add_argument("--sim", required=True, metavar="SIM.csv", help="sim success rates")
    p.add_argument("--real", required=True, metavar="REAL.csv", help="real success rates")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="also write a correlate run to DIR/results.duckdb")
    p.add_argument("--alpha", type=float, default=0.05, help="1 - interval level (default 0.05)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from realgap.protocol.correlation import (
        MMRV_CONVENTION,
        correlate_csv,
        format_correlation,
        write_correlation,
    )

    points, results = correlate_csv(args.sim, args.real, alpha=args.alpha)
    run_id = write_correlation(args.out, points, results, sim=args.sim, real=args.real,
                               alpha=args.alpha) if args.out else None
    if args.json:
        print(json.dumps({
            "convention": MMRV_CONVENTION,
            "results": {k: v.as_dict() for k, v in results.items()},
            "points": json.loads(points.to_json(orient="records")),
            "run_id": run_id,
        }, indent=1))
    else:
        print(format_correlation(results))
        if run_id:
            print(f"\nwrote correlate run {run_id} to {args.out}")
    return 0
