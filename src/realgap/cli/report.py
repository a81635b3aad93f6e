"""``realgap report DB_OR_DIR``: write the self-contained HTML report."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write the HTML report from a results database")
    p.add_argument("db", metavar="DB_OR_DIR", help="results.duckdb or the directory holding it")
    p.add_argument("--out", default=None, help="HTML path (default: report.html beside the db)")
    p.add_argument("--run", action="append", default=[], metavar="RUN_ID",
                   help="show this run instead of the newest of its kind (repeat for other "
                        "kinds; default: the newest finished run of each kind)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from realgap.report import build_report

    path = build_report(args.db, args.out, run_ids=args.run)
    print(f"report: {path}")
    return 0
