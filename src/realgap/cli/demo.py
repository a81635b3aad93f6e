"""``realgap demo [--out DIR]``: generate the embedded default if absent, run the gap job on
it with the offline encoders at both real-proxy severities, write the report (see
:mod:`realgap.jobs.demo`)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from realgap.cli._common import show_progress
from realgap.cli._dataclass_options import add_dataclass_options, config_from_args


def register(sub: argparse._SubParsersAction) -> None:
    from realgap.jobs.demo import DEMO_ENCODERS, DEMO_REAL_DOMAINS, DemoConfig

    p = sub.add_parser(
        "demo", help="run the main job on the embedded default dataset and write the report",
        description="Generate the embedded default FrameSet (sim, sim-nominal and real-proxy "
                    "renders of a reach task, the proxy at two severities) unless it exists, "
                    f"compare the offline encoders ({', '.join(DEMO_ENCODERS)}) with "
                    f"`realgap gap` against {' and '.join(DEMO_REAL_DOMAINS)}, write the "
                    "report. The options are the fields of realgap.jobs.demo.DemoConfig.")
    add_dataclass_options(p, DemoConfig, skip=("dataset", "progress"), overrides={
        "encoders": {"metavar": "NAME[,NAME...]"},
        "real_domains": {"metavar": "DOMAIN[,DOMAIN]"},
    })
    p.add_argument("--json", action="store_true",
                   help="print the results as JSON: per real-proxy severity, exactly what "
                        "`realgap gap --json` prints for that run")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from realgap.jobs.demo import DemoConfig, run_demo
    from realgap.jobs.gap import ranking_table

    cfg = config_from_args(DemoConfig, args, progress=show_progress(args))
    result = run_demo(args.out, cfg)
    if args.json:
        print(json.dumps(demo_json(result), indent=1))
        return 0
    for real, run_ in result.runs.items():
        print(f"sim vs {real}:")
        print(ranking_table(run_))
        print(f"run {run_.run_id} ({run_.seconds:.0f} s)")
        print()
    print("combined = harmonic mean of DIS and transfer AS; [95% episode-bootstrap interval]; "
          "real = real-proxy renders (a proxy, not camera data)")
    print(f"dataset {result.frameset_hash[:16]}; {result.last.db_path} "
          f"({result.seconds:.0f} s in all)")
    print(f"report: {result.last.report_path}")
    return 0


def demo_json(result: Any) -> dict[str, Any]:
    """``{"dataset": hash, "seconds": s, "runs": {real_domain: <realgap gap --json>}}``."""
    from realgap.jobs.gap import result_json

    return {"dataset": result.frameset_hash, "seconds": result.seconds,
            "runs": {real: result_json(run) for real, run in result.runs.items()}}
