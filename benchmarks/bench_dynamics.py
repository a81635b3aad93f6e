"""Dynamics benchmark: data collection, latent-model training and system identification.

Prints, in one run (so the baseline shares the machine's load):

1. transitions/s of random-policy collection in HalfCheetah-v5, unperturbed (baseline) vs.
   perturbed (gravity 2x + torso 1.5x: a spec-recompiled model);
2. the cost of applying + undoing a length perturbation (spec recompile + in-place copy);
3. latent cross-domain model: gradient steps/s (batch 256 per domain) of joint training;
4. one system identification (gravity, bootstrap off and n_boot=5) on a fixed dataset
   (HalfCheetah, 400 transitions at 1.5x gravity), with the recovered value.

Usage: ``python benchmarks/bench_dynamics.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

os.environ.setdefault("MUJOCO_GL", "egl")
warnings.filterwarnings("ignore")


def _rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}/s ({n} in {seconds:.2f} s)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sizes")
    args = ap.parse_args()
    n = 2000 if args.quick else 10_000

    from realgap.dynamics import Perturbation, collect_perturbed, make_env, perturb
    from realgap.dynamics.latent import LatentConfig, fit_latent
    from realgap.dynamics.sysid import identify

    pert = Perturbation(gravity=2.0, body_length={"torso": 1.5})
    collect_perturbed("HalfCheetah-v5", None, 200, rng=0)  # warm imports
    t_base = t_pert = float("inf")
    for _ in range(3):  # interleaved, best of 3: the machine is shared
        t = time.perf_counter()
        base = collect_perturbed("HalfCheetah-v5", None, n, max_episode_steps=200, rng=0)
        t_base = min(t_base, time.perf_counter() - t)
        t = time.perf_counter()
        tgt = collect_perturbed("HalfCheetah-v5", pert, n, max_episode_steps=200, rng=1)
        t_pert = min(t_pert, time.perf_counter() - t)
    print("collection, HalfCheetah-v5, random policy, incl. env construction (best of 3)")
    print(f"  unperturbed (baseline): {_rate(n, t_base)}")
    print(f"  perturbed {pert.label()}: {_rate(n, t_pert)}  (ratio {t_base / t_pert:.2f})")

    env = make_env("HalfCheetah-v5")
    reps = 20
    t = time.perf_counter()
    for _ in range(reps):
        perturb(env, body_length={"torso": 1.5}).undo()
    print(f"apply+undo torso 1.5x (recompile + copy): {1000 * (time.perf_counter() - t) / reps:.1f} ms")
    t = time.perf_counter()
    for _ in range(reps):
        perturb(env, gravity=2.0).undo()
    print(f"apply+undo gravity 2x (in place): {1000 * (time.perf_counter() - t) / reps:.2f} ms")
    env.close()

    steps = 100 if args.quick else 300
    fit = fit_latent(base, tgt, LatentConfig(pretrain_steps=steps, joint_steps=steps), rng=0)
    t0, t1 = fit.history["seconds"]
    print("latent model (obs 17, act 6, hidden 64, batch 256/domain, 1 thread)")
    print(f"  single-domain pretraining: {steps / t0:,.1f} steps/s "
          f"({steps * 256 / t0:,.0f} transitions/s)")
    print(f"  joint training (both domains): {steps / t1:,.1f} steps/s "
          f"({steps * 256 * 2 / t1:,.0f} transitions/s)")

    data = collect_perturbed("HalfCheetah-v5", Perturbation(gravity=1.5), 400,
                             max_episode_steps=50, rng=3)
    for n_boot in (0, 5):
        t = time.perf_counter()
        res = identify("HalfCheetah-v5", data, ["gravity"], n_boot=n_boot, rng=0)
        g = res.params["gravity"]
        print(f"sysid gravity (400 transitions, n_boot={n_boot}): {time.perf_counter() - t:.2f} s, "
              f"{res.n_evaluations} evaluations, estimate {g.value:.5f} [{g.lo:.5f}, {g.hi:.5f}] "
              "(truth 1.5)")


if __name__ == "__main__":
    main()
