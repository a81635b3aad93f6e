"""``realgap study scores`` by stage: demonstrations, gap runs, policies, rollouts, correlation.

Runs one preset (default ``tiny``) into a fresh directory and prints the wall time of each
stage (the job records them) with the machine's load average before and after, since on a
shared machine the load decides the times more than the code does. Nothing here is a
pass/fail test.

    python benchmarks/bench_study.py [--preset tiny] [--out /tmp/bench-study] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--out", default="/tmp/bench-study")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    from realgap.study import preset_config, run_scores_study

    shutil.rmtree(args.out, ignore_errors=True)
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    res = run_scores_study(preset_config(args.preset, args.out, workers=args.workers,
                                         progress=False))
    wall = time.perf_counter() - t0
    print(json.dumps({"preset": args.preset, "wall_s": round(wall, 1),
                      "stages_s": {k: round(v, 1) for k, v in res.timings.items()},
                      "load_before": [round(x, 1) for x in load0],
                      "load_after": [round(x, 1) for x in os.getloadavg()],
                      "closed_loop": res.summary, "best_predictor": res.best}, indent=1))


if __name__ == "__main__":
    main()
