"""Run every benchmark in this folder, one after the other, and print what each prints.

Usage: ``python benchmarks/run_all.py [NAME ...]`` (names like ``render`` or ``bench_render``).
Each script compares realgap against a baseline in the same run; copy the numbers into
``benchmarks/README.md`` with the machine they ran on.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    known = [s.stem.removeprefix("bench_") for s in scripts]
    parser = argparse.ArgumentParser(description="Run the realgap benchmarks one after the other.")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run (default: all): {', '.join(known)}")
    wanted = {a.removeprefix("bench_").removesuffix(".py") for a in parser.parse_args(argv).names}
    if unknown := sorted(wanted - set(known)):
        parser.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(known)}")
    if wanted:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in wanted]
    failed = []
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        t0 = time.perf_counter()
        code = subprocess.call([sys.executable, str(script)])
        print(f"=== {script.name}: exit {code} in {time.perf_counter() - t0:.1f} s ===", flush=True)
        if code:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
