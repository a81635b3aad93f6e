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


def _report(out: Path) -> None:
    from realgap.report import build_report

    print(f"report: {build_report(out)}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dynamics", help="dynamics gap: perturbations, degradation, gap measures, sysid")
    dsub = p.add_subparsers(dest="dynamics_command", metavar="SUBCOMMAND")

    c = dsub.add_parser("collect", help="collect transitions (s, a, s') from a perturbed env")
    c.add_argument("--env", default="HalfCheetah-v5")
    c.add_argument("--perturb", default="", help="FACTOR=SCALE,... e.g. gravity=1.5,torso_length=1.2")
    c.add_argument("--steps", type=int, default=2000)
    c.add_argument("--max-episode-steps", type=int, default=100)
    c.add_argument("--seed", type=seed, default=0)
    c.add_argument("--out", required=True, help="transitions .npz to write")
    c.set_defaults(func=run_collect)

    g = dsub.add_parser("gap", help="gap measures of target transitions against a source")
    g.add_argument("--env", default="HalfCheetah-v5")
    g.add_argument("--factor", default="gravity")
    g.add_argument("--scales", default="1,1.5,2")
    g.add_argument("--source", default=None, help="source transitions .npz (with --target)")
    g.add_argument("--target", default=None, help="target transitions .npz (with --source)")
    g.add_argument("--steps", type=int, default=3000)
    g.add_argument("--max-episode-steps", type=int, default=100)
    g.add_argument("--no-latent", action="store_true", help="skip the latent cross-domain model")
    g.add_argument("--latent-steps", type=int, default=600, help="pretrain and joint steps each")
    g.add_argument("--n-boot", type=int, default=500)
    g.add_argument("--seed", type=seed, default=0)
    g.add_argument("--out", default="out/dynamics")
    g.set_defaults(func=run_gap)

    d = dsub.add_parser("degrade", help="policy return as one factor grows (SAC or a given SB3 zip)")
    d.add_argument("--env", default="HalfCheetah-v5")
    d.add_argument("--factor", default="gravity")
    d.add_argument("--scales", default="1,1.05,1.25,1.5,2")
    d.add_argument("--policy", default="train", help="'train' or the path of an SB3 .zip")
    d.add_argument("--trust-pickle", action="store_true",
                   help="load --policy with stable-baselines3's load(), which unpickles and can "
                        "run code stored in the zip (default: rebuild the policy, read weights only)")
    d.add_argument("--train-steps", type=int, default=20000)
    d.add_argument("--eval-episodes", type=int, default=5)
    d.add_argument("--seeds", default="0,1,2")
    d.add_argument("--max-episode-steps", type=int, default=1000)
    d.add_argument("--n-boot", type=int, default=2000)
    d.add_argument("--out", default="out/dynamics")
    d.set_defaults(func=run_degrade)

    s = dsub.add_parser("sysid", help="identify physics multipliers from target transitions")
    s.add_argument("--sim-env", default="HalfCheetah-v5")
    s.add_argument("--real", required=True, help="target transitions .npz")
    s.add_argument("--params", default="gravity", help="comma-separated factors, e.g. gravity,torso_length")
    s.add_argument("--bounds", default="0.25,4", help="multiplier range LOW,HIGH")
    s.add_argument("--n-boot", type=int, default=20)
    s.add_argument("--seed", type=seed, default=0)
    s.add_argument("--out", default="out/dynamics")
    s.set_defaults(func=run_sysid)

    p.set_defaults(func=_no_subcommand)


@_mujoco_warnings_to_stderr
def run_collect(args: argparse.Namespace) -> int:
    from realgap.dynamics.sysid import combine
    from realgap.dynamics.transitions import collect_perturbed, save

    pert = combine(_assignments("--perturb", args.perturb))
    tr = collect_perturbed(args.env, pert, args.steps, max_episode_steps=args.max_episode_steps,
                           rng=args.seed)
    path = save(tr, args.out)
    print(f"{len(tr)} transitions, {tr.episodes.size} trajectories ({pert.label()}) -> {path}")
    return 0


@_mujoco_warnings_to_stderr
def run_gap(args: argparse.Namespace) -> int:
    from realgap.dynamics.latent import LatentConfig, latent_gap
    from realgap.dynamics.runs import GapCurveConfig, gap_curve, write_gap
    from realgap.store import ResultsDB

    if args.latent_steps <= 0 and not args.no_latent:
        # Without joint training the map stays the identity: a latent gap of exactly 0.
        raise ConfigError(f"--latent-steps: must be > 0, got {args.latent_steps}; "
                          "use --no-latent to skip the latent model")
    lcfg = LatentConfig(pretrain_steps=args.latent_steps, joint_steps=args.latent_steps)
    if (args.source is None) != (args.target is None):
        raise ConfigError("--source/--target: give both transitions files, or neither "
                          "(then --env/--factor/--scales generate them)")
    if args.source:
        from realgap.dynamics.gap import gap_measures
        from realgap.dynamics.transitions import load

        src, tgt = load(args.source), load(args.target)
        res = gap_measures(src, tgt, rng=args.seed, n_boot=args.n_boot)
        if not args.no_latent:
            res["latent_map_distance"] = latent_gap(src, tgt, lcfg, n_boot=args.n_boot,
                                                    rng=args.seed)
        results, env_id, factor = {1.0: res}, str(tgt.meta.get("env", args.target)), "target"
        config = {"source": args.source, "target": args.target, "n_boot": args.n_boot}
    else:
        cfg = GapCurveConfig(args.env, args.factor, _floats("--scales", args.scales),
                             args.steps, args.max_episode_steps, not args.no_latent, args.n_boot)
        results = gap_curve(cfg, latent_config=lcfg, rng=args.seed, progress=print)
        env_id, factor = args.env, args.factor
        config = {**cfg.__dict__, "latent_steps": args.latent_steps, "seed": args.seed}
    with ResultsDB(args.out) as db:
        run = write_gap(db, results, env_id=env_id, factor=factor, config=config)
    for scale, res in results.items():
        print(f"{factor}={scale:g}  " + "  ".join(f"{k}={_ci(v)}" for k, v in res.items()))
    print(f"run {run} -> {Path(args.out)}")
    _report(Path(args.out))
    return 0


@_mujoco_warnings_to_stderr
def run_degrade(args: argparse.Namespace) -> int:
    from realgap.dynamics.degrade import DegradeConfig, degradation_curve, write_degrade
    from realgap.store import ResultsDB

    cfg = DegradeConfig(args.env, args.factor, _floats("--scales", args.scales), args.policy,
                        args.train_steps, args.eval_episodes, _ints("--seeds", args.seeds),
                        args.max_episode_steps, args.n_boot, trust_pickle=args.trust_pickle)
    res = degradation_curve(cfg, out_dir=args.out, progress=print)
    with ResultsDB(args.out) as db:
        run = write_degrade(db, res)
    print(f"{'scale':>6}  {'mean return [95% CI]':>30}  {'normalized drop [95% CI]':>28}  "
          f"{'R(1) - R(s) [95% CI]':>28}  n")
    for s in cfg.all_scales:
        print(f"{s:>6g}  {_ci(res.returns[s]):>30}  {_ci(res.drops[s]):>28}  "
              f"{_ci(res.return_drops[s]):>28}  {res.returns[s].n}")
    print(f"run {run} -> {Path(args.out)}")
    _report(Path(args.out))
    return 0


@_mujoco_warnings_to_stderr
def run_sysid(args: argparse.Namespace) -> int:
    from realgap.dynamics.runs import write_sysid
    from realgap.dynamics.sysid import identify
    from realgap.dynamics.transitions import load
    from realgap.store import ResultsDB

    bounds = _floats("--bounds", args.bounds)
    if len(bounds) != 2:
        raise ConfigError(f"--bounds: expected LOW,HIGH such as 0.25,4, got {args.bounds!r}")
    params = [p.strip() for p in args.params.split(",") if p.strip()]
    target = load(args.real)
    res = identify(args.sim_env, target, params, bounds=(bounds[0], bounds[1]),
                   n_boot=args.n_boot, rng=args.seed)
    with ResultsDB(args.out) as db:
        run = write_sysid(db, res, env_id=args.sim_env, target=target, target_path=args.real,
                          params=params, config={"params": params, "bounds": list(bounds),
                                                 "n_boot": args.n_boot, "seed": args.seed})
    for name, e in res.params.items():
        print(f"{name}: {_ci(e)} (n={e.n} trajectories)")
    print(f"one-step error {res.objective:.4g} (nominal {res.objective_nominal:.4g}), "
          f"{res.n_evaluations} simulator evaluations; run {run} -> {Path(args.out)}")
    _report(Path(args.out))
    return 0


def _no_subcommand(_: argparse.Namespace) -> int:
    """``realgap dynamics`` alone: one error line naming the choices, like every usage error."""
    from realgap.cli import fail

    return fail("realgap dynamics: name a subcommand (collect, gap, degrade, sysid); see "
                "`realgap dynamics --help`")
