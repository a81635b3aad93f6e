"""``realgap dynamics collect|gap|degrade|sysid``: the dynamics gap from the command line.

Each subcommand parses, calls one library function of :mod:`realgap.dynamics`, records a run
in ``OUT/results.duckdb`` (except ``collect``, which writes a transitions file), rebuilds the
report and prints a short table.
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
from collections.abc import Callable
from pathlib import Path

from realgap.cli._args import seed
from realgap.cli._common import emit, say
from realgap.cli._dataclass_options import add_dataclass_options, config_from_args, float_list
from realgap.cli._options import lazy
from realgap.errors import ConfigError

#: MuJoCo warnings that say nothing about the user's run: Gymnasium's stock MuJoCo XML
#: (HalfCheetah, Hopper, ...) uses ``settotalmass``, which MuJoCo deprecates (4.0 warns at
#: every compile); every dynamics command used to open with that line on stdout.
_MUJOCO_NOISE = ("compiler attribute 'settotalmass' is deprecated",)

_Command = Callable[[argparse.Namespace], int]


def _mujoco_warnings_to_stderr(run: _Command) -> _Command:
    """Run a command with MuJoCo's warning hook set: the known Gymnasium deprecation is
    dropped, any other MuJoCo warning goes to stderr as ``realgap: warning: mujoco: ...``
    (MuJoCo's default prints to stdout, into the command's output). The previous hook is
    restored afterwards."""

    @functools.wraps(run)
    def wrapper(args: argparse.Namespace) -> int:
        from realgap._optional import require

        mujoco = require("mujoco")

        def hook(message: str) -> None:
            if not any(noise in message for noise in _MUJOCO_NOISE):
                print(f"realgap: warning: mujoco: {message.strip()}", file=sys.stderr)

        previous = mujoco.get_mju_user_warning()
        mujoco.set_mju_user_warning(hook)
        try:
            return run(args)
        finally:
            mujoco.set_mju_user_warning(previous)

    return wrapper


def _floats(arg: str, text: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"{arg}: expected comma-separated numbers such as 1,1.5,2, got {text!r}") from None
    if not vals:
        raise ConfigError(f"{arg}: expected at least one number, got {text!r}")
    return vals


def _ints(arg: str, text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"{arg}: expected comma-separated integers such as 0,1,2, got {text!r}") from None


def _assignments(arg: str, text: str) -> dict[str, float]:
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, eq, val = part.partition("=")
        if not eq:
            raise ConfigError(f"{arg}: expected FACTOR=SCALE pairs such as gravity=1.5,torso_length=1.2, got {part!r}")
        try:
            out[name.strip()] = float(val)
        except ValueError:
            raise ConfigError(f"{arg}: scale of {name.strip()!r} must be a number, got {val!r}") from None
    return out


def _ci(e: object) -> str:
    v, lo, hi = (getattr(e, k) for k in ("value", "lo", "hi"))
    if any(isinstance(x, float) and math.isnan(x) for x in (lo, hi)):
        return f"{v:.4g}"
    out = f"{v:.4g} [{lo:.4g}, {hi:.4g}]"
    if getattr(e, "bias", False):  # never widened: a point outside its interval is said,
        # with by how much (noise-free sysid targets: ~1e-9, the optimiser's resolution)
        out += f" (point outside its interval by {max(lo - v, v - hi):.2g}: bias)"
    p = getattr(e, "p_value", float("nan"))
    return out if math.isnan(p) else f"{out} p={p:.3g}"


def _report(out: Path) -> Path:
    """Rebuild ``OUT/report.html``; returns its path."""
    from realgap.report import build_report

    return Path(build_report(out))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dynamics", help="dynamics gap: perturbations, degradation, gap measures, sysid",
                       description="The dynamics gap of Gymnasium MuJoCo envs: collect transitions "
                                   "under physics perturbations, measure how far they move, how a "
                                   "policy's return degrades, and identify the perturbation back.")
    dsub = p.add_subparsers(dest="dynamics_command", metavar="SUBCOMMAND")

    c = dsub.add_parser("collect", help="collect transitions (s, a, s') from a perturbed env",
                        description="Play random actions in a perturbed Gymnasium MuJoCo env and "
                                    "write the transitions (s, a, s') to a .npz file.")
    c.add_argument("--env", default="HalfCheetah-v5", help="Gymnasium MuJoCo env id")
    c.add_argument("--perturb", default="",
                   help="FACTOR=SCALE,... multipliers, e.g. gravity=1.5,torso_length=1.2 "
                        "(default: none, the nominal env)")
    c.add_argument("--steps", type=int, default=2000, help="transitions to collect")
    c.add_argument("--max-episode-steps", type=int, default=100,
                   help="steps per trajectory before a reset")
    c.add_argument("--seed", type=seed, default=0, help="seed of resets and actions")
    c.add_argument("--out", required=True, help="transitions .npz to write")
    c.set_defaults(func=run_collect)

    g = dsub.add_parser("gap", help="gap measures of target transitions against a source",
                        description="Measure the dynamics gap (cross-domain one-step prediction "
                                    "error, transition C2ST, latent map distance) with "
                                    "trajectory-bootstrap intervals and permutation p-values, "
                                    "either of --target against --source, or of the env with "
                                    "--factor at each of --scales against the nominal env.")
    lazy(g, _gap_options)
    g.set_defaults(func=run_gap)

    d = dsub.add_parser("degrade", help="policy return as one factor grows (SAC or a given SB3 zip)",
                        description="Train SAC in the nominal env (or load an SB3 zip), play it "
                                    "with --factor at each of --scales and report the return and "
                                    "its drop with seed-then-episode bootstrap intervals.")
    lazy(d, _degrade_options)
    d.set_defaults(func=run_degrade)

    s = dsub.add_parser("sysid", help="identify physics multipliers from target transitions",
                        description="Fit physics multipliers of --sim-env so that its one-step "
                                    "predictions match the --real transitions, with "
                                    "trajectory-bootstrap intervals.")
    lazy(s, _sysid_options)
    s.set_defaults(func=run_sysid)

    p.set_defaults(func=_no_subcommand)


# The options of gap, degrade and sysid come from their config classes, whose modules import
# realgap.dynamics (scipy.stats: seconds): added lazily, when the command is used.
def _gap_options(g: argparse.ArgumentParser) -> None:
    from realgap.jobs.dynamics import DynamicsGapConfig

    add_dataclass_options(g, DynamicsGapConfig, overrides={
        "env_id": {"flags": ("--env",), "metavar": "ENV"},
        "factor": {"help": "physics factor to scale, e.g. gravity, friction, torso_length"},
        "scales": {"metavar": "SCALE[,SCALE...]"},
        "latent": {"help": "train the latent cross-domain model (--no-latent skips it)"},
    })


def _degrade_options(d: argparse.ArgumentParser) -> None:
    from realgap.dynamics.degrade import DegradeConfig

    add_dataclass_options(d, DegradeConfig, overrides={
        "env_id": {"flags": ("--env",), "metavar": "ENV"},
        "scales": {"metavar": "SCALE[,SCALE...]"},
        "seeds": {"metavar": "SEED[,SEED...]"},
        "trust_pickle": {"action": "store_true",
                         "help": "load --policy with stable-baselines3's load(), which unpickles "
                                 "and can run code stored in the zip (default: rebuild the "
                                 "policy, read weights only)"},
    })
    d.add_argument("--out", default="out/dynamics",
                   help="output dir (policies/, results.duckdb, report.html)")


def _sysid_options(s: argparse.ArgumentParser) -> None:
    from realgap.jobs.dynamics import SysidConfig

    add_dataclass_options(s, SysidConfig, only=("sim_env", "real", "params", "bounds", "n_boot",
                                               "seed", "out"), overrides={
        "params": {"metavar": "FACTOR[,FACTOR...]"},
        "bounds": {"type": float_list, "metavar": "LOW,HIGH"},
    })


@_mujoco_warnings_to_stderr
def run_collect(args: argparse.Namespace) -> int:
    from realgap.dynamics.sysid import combine
    from realgap.dynamics.transitions import collect_perturbed, save

    pert = combine(_assignments("--perturb", args.perturb))
    tr = collect_perturbed(args.env, pert, args.steps, max_episode_steps=args.max_episode_steps,
                           rng=args.seed)
    path = save(tr, args.out)
    return emit(args, {"path": path, "env": args.env, "perturbation": pert.label(),
                       "transitions": len(tr), "trajectories": int(tr.episodes.size)},
                f"{len(tr)} transitions, {tr.episodes.size} trajectories ({pert.label()}) -> {path}")


def _scale_done(args: argparse.Namespace) -> Callable[[str], None] | None:
    """Progress of ``dynamics gap``: which scale is done, on stderr. The library's message also
    carries the values, which the final table prints; showing them here printed every result
    twice."""
    progress = say(args)
    if progress is None:
        return None
    return lambda message: progress(f"{message.partition(':')[0]} measured")


@_mujoco_warnings_to_stderr
def run_gap(args: argparse.Namespace) -> int:
    from realgap.jobs.dynamics import DynamicsGapConfig, run_dynamics_gap

    job = run_dynamics_gap(config_from_args(DynamicsGapConfig, args), progress=_scale_done(args))
    results, factor, env_id, run, report = job.results, job.factor, job.env_id, job.run_id, job.report
    lines = [f"{factor}={scale:g}  " + "  ".join(f"{k}={_ci(v)}" for k, v in res.items())
             for scale, res in results.items()]
    lines += [f"run {run} -> {Path(args.out)}", f"report: {report}"]
    return emit(args, {"run_id": run, "out": args.out, "report": report, "env": env_id,
                       "factor": factor,
                       "results": [{"scale": scale, "measures": res}
                                   for scale, res in results.items()]},
                "\n".join(lines))


@_mujoco_warnings_to_stderr
def run_degrade(args: argparse.Namespace) -> int:
    from realgap.dynamics.degrade import DegradeConfig
    from realgap.jobs.dynamics import run_degrade as run_job

    cfg = config_from_args(DegradeConfig, args)
    res, run, report = run_job(cfg, args.out, progress=say(args))
    lines = [(f"{'scale':>6}  {'mean return [95% CI]':>30}  {'normalized drop [95% CI]':>28}  "
              f"{'R(1) - R(s) [95% CI]':>28}  n")]
    lines += [f"{s:>6g}  {_ci(res.returns[s]):>30}  {_ci(res.drops[s]):>28}  "
              f"{_ci(res.return_drops[s]):>28}  {res.returns[s].n}" for s in cfg.all_scales]
    lines += [f"run {run} -> {Path(args.out)}", f"report: {report}"]
    return emit(args, {"run_id": run, "out": args.out, "report": report, "env": cfg.env_id,
                       "factor": cfg.factor, "policies": res.policies,
                       "scales": [{"scale": s, "mean_return": res.returns[s],
                                   "normalized_drop": res.drops[s],
                                   "return_drop": res.return_drops[s], "n": res.returns[s].n}
                                  for s in cfg.all_scales]},
                "\n".join(lines))


@_mujoco_warnings_to_stderr
def run_sysid(args: argparse.Namespace) -> int:
    from realgap.jobs.dynamics import SysidConfig
    from realgap.jobs.dynamics import run_sysid as run_job

    job = run_job(config_from_args(SysidConfig, args))
    res, run, report = job.result, job.run_id, job.report
    # _ci marks a point outside its own interval (Estimate.bias) instead of hiding it
    lines = [f"{name}: {_ci(e)} (n={e.n} trajectories)" for name, e in res.params.items()]
    lines += [(f"one-step error {res.objective:.4g} (nominal {res.objective_nominal:.4g}), "
               f"{res.n_evaluations} simulator evaluations; run {run} -> {Path(args.out)}"),
              f"report: {report}"]
    return emit(args, {"run_id": run, "out": args.out, "report": report, "env": args.sim_env,
                       "params": res.params, "objective": res.objective,
                       "objective_nominal": res.objective_nominal,
                       "n_evaluations": res.n_evaluations},
                "\n".join(lines))


def _no_subcommand(_: argparse.Namespace) -> int:
    """``realgap dynamics`` alone: one error line naming the choices, like every usage error."""
    from realgap.cli import fail

    return fail("realgap dynamics: name a subcommand (collect, gap, degrade, sysid); see "
                "`realgap dynamics --help`")
