"""``realgap demo [--out DIR]``: generate the embedded default if absent, run the gap job on
it with the offline encoders, write the report (see :mod:`realgap.jobs.demo`)."""

from __future__ import annotations

import argparse

from realgap.cli._args import seed


def register(sub: argparse._SubParsersAction) -> None:
    from realgap.jobs.demo import DEFAULT_OUT, DEMO_ENCODERS

    p = sub.add_parser(
        "demo", help="run the main job on the embedded default dataset and write the report",
        description="Generate the embedded default FrameSet (sim, sim-nominal and real-proxy "
                    "renders of two reach tasks) unless it exists, compare the offline encoders "
                    f"({', '.join(DEMO_ENCODERS)}) with `realgap gap`, write the report.")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    p.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples over episodes")
    p.add_argument("--seed", type=seed, default=0, help="seed of the gap job")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from realgap.jobs.demo import DemoConfig, run_demo
    from realgap.jobs.gap import RANKING_LEGEND, ranking_table

    cfg = DemoConfig(out=args.out, n_boot=args.n_boot, seed=args.seed, progress=not args.quiet)
    result = run_demo(args.out, cfg)
    print(ranking_table(result))
    print(RANKING_LEGEND + "; "
          "real = real-proxy renders (a proxy, not camera data)")
    print(f"run {result.run_id} in {result.db_path} ({result.seconds:.0f} s)")
    print(f"report: {result.report_path}")
    return 0
