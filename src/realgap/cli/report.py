"""``realgap report DB_OR_DIR``: write the self-contained HTML report."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="write the HTML report from a results database",
        description="Renders, for every kind of run in the database, the report sections "
                    "registered for that kind (rollout and evaluate runs: the outcomes; gap: "
                    "the encoder scores; ...), then the comparison across runs and provenance.")
    p.add_argument("db", metavar="DB_OR_DIR", help="results.duckdb or the directory holding it")
    p.add_argument("--out", default=None,
                   help="HTML path (default: report.html beside the database)")
    p.add_argument("--run", action="append", default=[], metavar="RUN_ID",
                   help="show this run instead of the newest of its kind (repeat for other "
                        "kinds; default: the newest finished run of each kind)")
    p.add_argument("--json", action="store_true",
                   help="print the report's path, its sections and the runs as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from realgap.report import build_report
    from realgap.report.html import rendered_sections
    from realgap.store import ResultsDB

    path = build_report(args.db, args.out, run_ids=args.run)
    if args.json:
        with ResultsDB(args.db, read_only=True) as db:
            runs = db.runs()
            shown = [s.anchor for s in rendered_sections(db)]
        print(json.dumps({
            "report": str(path),
            "sections": [a for a in shown if f'<section id="{a}">' in path.read_text("utf-8")],
            "runs": [{"run_id": str(r.run_id), "kind": str(r.kind), "status": str(r.status)}
                     for r in runs.itertuples()],
        }, indent=1))
    else:
        print(f"report: {path}")
    return 0
