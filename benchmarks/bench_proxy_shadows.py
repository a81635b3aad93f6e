"""Does the proxy's shadow quality change the offline scores? (issue 12, section 4)

Run: ``MUJOCO_GL=egl python benchmarks/bench_proxy_shadows.py [--out DIR] [--episodes 30]``.

The proxy-real domains render the key light's shadow, which on a software rasterizer costs
most of a small proxy frame (``bench_render.py --shadows-only``); the studies therefore
render it with ``proxy_shadows="low"`` (a 256-texel map) instead of ``high`` (the
fidelity's 1024-texel map, the behaviour before the setting existed). This script measures
what that choice does to the numbers the studies read, against ``high`` as the baseline,
in one run:

1. **Same states, three shadow settings.** ``realgap.sim.generate`` (reach-mug, the same
   seed, ``record_every=3``, 64 px head camera, domains ``sim-nominal``,
   ``real-proxy-mild``, ``real-proxy-strong``) once per setting ``high``, ``low``, ``off``.
   The three FrameSets are grown together, a few episodes at a time in turn (generation
   resumes), so machine load hits the settings alike. The ``sim-nominal`` frames must be
   byte-identical across the three sets (asserted): only the proxy frames may differ.
   Every ``render_domain`` call is timed (a wrapper around the env's method, this script
   only), so the per-proxy-frame time of each setting is measured inside generation.
2. **Scores.** ``realgap.jobs.gap.run_gap`` as ``realgap study scores`` calls it
   (``sim_domain="sim-nominal"``, no maps, no saliency), for encoders ``pixels``,
   ``resnet18-random`` and ``efficientnet-lite0``, against each proxy severity and each
   shadow setting; one embedding cache for all runs (the sim-nominal frames are embedded
   once).
3. **Table.** Per encoder, severity and metric: the value at ``high`` with its interval,
   and the differences ``low - high`` and ``off - high``; a difference whose size exceeds
   the half-width of ``high``'s own interval is flagged ``*``. Both settings use the same
   seed, so their bootstraps resample the same episodes; a difference below the half-width
   is within what resampling episodes moves the score by. For scale, the last column is
   the severity effect at ``high`` (strong - mild): what the score is meant to register.

Everything runs in this one process on one BLAS and one torch thread. The numbers go to
``DIR/results.json`` as well as stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np

SETTINGS: tuple[str, ...] = ("high", "low", "off")
"""Shadow settings, baseline first."""
SIM = "sim-nominal"
PROXIES: tuple[str, ...] = ("real-proxy-mild", "real-proxy-strong")
ENCODERS: tuple[str, ...] = ("pixels", "resnet18-random", "efficientnet-lite0")
#: Metric -> label of the printed table (``realgap.store.gap`` names).
METRICS: dict[str, str] = {
    "dis_paper": "paper DIS",
    "dis_cal": "calibrated DIS",
    "as_real": "AS(real)",
    "as_transfer": "transfer AS",
    "mmd": "MMD",
    "c2st_acc": "C2ST acc",
    "outside_fraction": "outside frac",
}


@dataclass
class RenderClock:
    """Seconds and calls of ``render_domain`` per domain, for the setting being generated."""

    seconds: dict[str, float]
    calls: dict[str, int]


def _timed_render_domain(clock: dict[str, RenderClock], current: list[str]) -> Any:
    """Wrap ``TabletopEnv.render_domain`` to add each call's time to the current setting's
    clock (returns the original method, to put back)."""
    from realgap.sim.env import TabletopEnv

    orig = TabletopEnv.render_domain

    def timed(self: Any, domain: str, cameras: Any = None) -> Any:
        t = time.perf_counter()
        out = orig(self, domain, cameras)
        c = clock[current[0]]
        c.seconds[domain] = c.seconds.get(domain, 0.0) + time.perf_counter() - t
        c.calls[domain] = c.calls.get(domain, 0) + 1
        return out

    TabletopEnv.render_domain = timed  # type: ignore[method-assign]
    return orig


def generate_sets(out: Path, episodes: int, size: int, chunk: int
                  ) -> tuple[dict[str, Any], dict[str, RenderClock], dict[str, float]]:
    """The three FrameSets (setting -> FrameSet), each setting's render clock and its
    generation wall seconds (env builds and FrameSet writes included)."""
    from realgap.sim.env import TabletopEnv
    from realgap.sim.generate import GenerateConfig, generate

    clock = {s: RenderClock({}, {}) for s in SETTINGS}
    wall = dict.fromkeys(SETTINGS, 0.0)
    current = [SETTINGS[0]]
    orig = _timed_render_domain(clock, current)
    sets: dict[str, Any] = {}
    try:
        for n in range(min(chunk, episodes), episodes + chunk, chunk):
            n = min(n, episodes)
            for s in SETTINGS:  # in turn, so load drifts hit every setting alike
                current[0] = s
                cfg = GenerateConfig(out=str(out / f"frames-{s}"), tasks=("reach-mug",),
                                     episodes=n, domains=(SIM, *PROXIES), randomize=(),
                                     fidelity="low", image_size=size, cameras=("head",),
                                     seed=0, record_every=3, proxy_shadows=s)
                t = time.perf_counter()
                sets[s] = generate(cfg, progress=False)
                wall[s] += time.perf_counter() - t
            if n == episodes:
                break
    finally:
        TabletopEnv.render_domain = orig  # type: ignore[method-assign]
    return sets, clock, wall


def check_same_states(sets: dict[str, Any]) -> int:
    """Assert the sim-nominal frames, actions and states are identical across settings and
    every setting's proxy frames differ from ``high``'s; return the frames per domain."""
    base = sets[SETTINGS[0]].select(domain=SIM)
    ref = base.images("head")
    for s in SETTINGS[1:]:
        v = sets[s].select(domain=SIM)
        assert np.array_equal(v.images("head"), ref), f"sim-nominal frames differ at {s}"
        assert np.array_equal(v.actions(), base.actions()), f"actions differ at {s}"
        for d in PROXIES:
            assert not np.array_equal(sets[s].select(domain=d).images("head"),
                                      sets[SETTINGS[0]].select(domain=d).images("head")), (s, d)
    return int(ref.shape[0])


def score_all(out: Path, n_boot: int, n_perm: int
              ) -> tuple[dict[tuple[str, str], Any], dict[tuple[str, str], float]]:
    """(setting, severity) -> ``GapResult.estimates``, and each run's wall seconds."""
    from realgap.jobs.gap import GapConfig, run_gap

    est: dict[tuple[str, str], Any] = {}
    secs: dict[tuple[str, str], float] = {}
    for d in PROXIES:
        for s in SETTINGS:
            t = time.perf_counter()
            res = run_gap(GapConfig(encoders=ENCODERS, out=str(out / f"gap-{s}"),
                                    frames=str(out / f"frames-{s}"), sim_domain=SIM,
                                    real_domain=d, n_boot=n_boot, n_perm=n_perm, seed=0,
                                    cache=str(out / "cache"), saliency_pairs=0, maps=(),
                                    progress=False))
            secs[(s, d)] = time.perf_counter() - t
            est[(s, d)] = res.estimates
    return est, secs


def _num(e: dict[str, Any], key: str) -> float:
    v = e.get(key)
    return float("nan") if v is None else float(v)


def table(est: dict[tuple[str, str], Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """Printed lines and rows: per encoder, severity and metric, high's value [lo, hi] and
    the differences of the other settings, flagged when larger than high's half-width."""
    base = SETTINGS[0]
    head = (f"{'encoder':<19}{'severity':<9}{'metric':<15}{'high [interval]':>28}"
            + "".join(f"{s + ' - ' + base:>14}" for s in SETTINGS[1:])
            + f"{'strong - mild':>15}")
    lines, rows = [head], []
    for enc in ENCODERS:
        for d in PROXIES:
            for m, label in METRICS.items():
                e = est[(base, d)][enc].get(m, {})
                v, lo, hi = _num(e, "value"), _num(e, "lo"), _num(e, "hi")
                half = (hi - lo) / 2
                row: dict[str, Any] = {"encoder": enc, "severity": d, "metric": m,
                                       "high": v, "lo": lo, "hi": hi, "half_width": half}
                cells = ""
                for s in SETTINGS[1:]:
                    diff = _num(est[(s, d)][enc].get(m, {}), "value") - v
                    flag = bool(abs(diff) > half) if np.isfinite(half) else False
                    row[f"{s}-{base}"], row[f"{s}_flag"] = diff, flag
                    cells += f"{diff:>+13.4f}{'*' if flag else ' '}"
                # the severity effect at high, for scale: what the score is meant to see
                sev = (_num(est[(base, PROXIES[1])][enc].get(m, {}), "value")
                       - _num(est[(base, PROXIES[0])][enc].get(m, {}), "value"))
                row["strong-mild"] = sev
                rows.append(row)
                lines.append(f"{enc:<19}{d.removeprefix('real-proxy-'):<9}{label:<15}"
                             f"{v:>9.4f} [{lo:>7.4f}, {hi:>7.4f}]   {cells}{sev:>+14.4f}")
    return lines, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/bench-proxy-shadows",
                    help="work directory (emptied first)")
    ap.add_argument("--episodes", type=int, default=30)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--n-boot", type=int, default=100)
    ap.add_argument("--n-perm", type=int, default=20)
    ap.add_argument("--chunk", type=int, default=5,
                    help="episodes generated per setting before the next setting's turn")
    args = ap.parse_args()

    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    load0 = os.getloadavg()
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average "
          f"{load0[0]:.1f} / {load0[1]:.1f} / {load0[2]:.1f} (1/5/15 min), {os.cpu_count()} CPUs")
    with threadpool_limits(1):
        t0 = time.perf_counter()
        sets, clock, wall = generate_sets(out, args.episodes, args.size, args.chunk)
        n = check_same_states(sets)
        print(f"\ngeneration: reach-mug, {args.episodes} episodes, record_every 3, head "
              f"{args.size}x{args.size}, {n} frames per domain; sim-nominal frames "
              "byte-identical across settings (asserted)")
        print(f"{'shadows':<9}{'ms/frame mild':>15}{'ms/frame strong':>17}"
              f"{'ms/frame sim-nominal':>22}{'generate s':>12}{'proxy / nominal':>17}")
        timing: dict[str, dict[str, float]] = {}
        for s in SETTINGS:
            c = clock[s]
            ms = {d: 1e3 * c.seconds[d] / c.calls[d] for d in (SIM, *PROXIES)}
            ratio = (ms[PROXIES[0]] + ms[PROXIES[1]]) / 2 / ms[SIM]
            timing[s] = {**ms, "generate_s": wall[s], "proxy_over_nominal": ratio}
            print(f"{s:<9}{ms[PROXIES[0]]:>15.1f}{ms[PROXIES[1]]:>17.1f}{ms[SIM]:>22.1f}"
                  f"{wall[s]:>12.1f}{ratio:>17.2f}")
        t_gen = time.perf_counter() - t0
        est, secs = score_all(out, args.n_boot, args.n_perm)
    print(f"\nscores: run_gap, sim-nominal vs each proxy, n_boot {args.n_boot}, n_perm "
          f"{args.n_perm}, seed 0; '*': |difference| > half-width of high's interval")
    lines, rows = table(est)
    print("\n".join(lines))
    flagged = [r for r in rows if any(r[f"{s}_flag"] for s in SETTINGS[1:])]
    by: dict[str, int] = defaultdict(int)
    for r in rows:
        for s in SETTINGS[1:]:
            by[s] += int(r[f"{s}_flag"])
    load1 = os.getloadavg()
    # A score at a bound (AS clipped at 0, C2ST at 1, every real frame outside) has a
    # zero-width interval: any difference there is flagged, and none can be judged.
    bound = [r for r in rows if not r["half_width"] > 0]
    print("\nflagged differences: " + ", ".join(f"{s} - high {by[s]} of {len(rows)}"
                                                 for s in SETTINGS[1:])
          + f"; {len(bound)} rows have a zero-width interval at high (score at a bound), "
          "of them flagged: " + ", ".join(
              f"{s} - high {sum(r[f'{s}_flag'] for r in bound)}" for s in SETTINGS[1:]))
    print(f"wall: generation {t_gen:.0f} s, gap runs "
          + ", ".join(f"{s}/{d.removeprefix('real-proxy-')} {v:.0f} s"
                      for (s, d), v in secs.items())
          + f"; load average after {load1[0]:.1f} / {load1[1]:.1f} / {load1[2]:.1f}")
    (out / "results.json").write_text(json.dumps(
        {"episodes": args.episodes, "frames_per_domain": n, "size": args.size,
         "n_boot": args.n_boot, "n_perm": args.n_perm, "load_before": load0,
         "load_after": load1, "timing_ms": timing, "rows": rows,
         "flagged": len(flagged)}, indent=1, default=float))


if __name__ == "__main__":
    main()
