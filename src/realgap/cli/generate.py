"""``realgap generate``: write a paired sim / proxy-real FrameSet and its contact sheet.

Examples::

    realgap generate --task reach-mug --episodes 20 --domains sim,real-proxy \\
        --randomize BG,LT,CP --granularity frame --fidelity low --image-size 128 \\
        --seed 0 --out DIR
    realgap generate --demo [--out DIR]       # the embedded default dataset

Rerunning the same command resumes: completed episodes are skipped. The proxy-real
domain is stored as ``real-proxy``; ``--domain-label real-proxy=real`` stores it under
another label (its frames still record ``render_domain: real-proxy`` in their factors).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from realgap.cli._args import seed


def _csv(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="generate a paired sim / proxy-real FrameSet with the scripted experts",
        description="Run the scripted expert of each task, render every step in each "
        "domain from the same simulator state, and write a FrameSet plus "
        "contact_sheet.png. Resumable: rerun the same command to finish an interrupted run.",
    )
    p.add_argument("--demo", action="store_true",
                   help="write the embedded demo dataset (reach-mug, 100 episodes; sim, "
                        "sim-nominal, real-proxy-mild, real-proxy-strong); other options except "
                        "--out are ignored")
    p.add_argument("--task", action="append", default=None, metavar="NAME[,NAME]",
                   help="task name(s): reach-mug, reach-box, push, pick-place (repeatable)")
    p.add_argument("--episodes", type=int, default=20, help="episodes per task (default 20)")
    p.add_argument("--domains", default="sim,real-proxy",
                   help="comma list of sim, sim-nominal, real-proxy (= real-proxy-strong), "
                        "real-proxy-mild, real-proxy-strong (default sim,real-proxy)")
    p.add_argument("--randomize", default="BG,LT,CP",
                   help="comma list of factors BG, LT, TD, CP, TH, PHYS, or 'none' "
                        "(default BG,LT,CP)")
    p.add_argument("--granularity", default="frame", help="frame or episode (default frame)")
    p.add_argument("--fidelity", default="low", help="low, medium or high (default low)")
    p.add_argument("--image-size", type=int, default=128, help="image side in px (default 128)")
    p.add_argument("--cameras", default="head", help="comma list: head, wrist (default head)")
    p.add_argument("--seed", type=seed, default=0, help="master seed (default 0)")
    p.add_argument("--max-steps", type=int, default=None, help="cap on steps per episode")
    p.add_argument("--record-every", type=int, default=1,
                   help="record every k-th control step (default 1: every step)")
    p.add_argument("--proxy-shadows", default="high",
                   help="shadow quality of the real-proxy domains: off, low (256-texel map, "
                        "~5x cheaper than high in software rendering) or high (default)")
    p.add_argument("--domain-label", action="append", default=[], metavar="DOMAIN=LABEL",
                   help="store DOMAIN's frames under LABEL, e.g. real-proxy=real (repeatable)")
    p.add_argument("--out", default=None,
                   help="output FrameSet directory (required unless --demo; "
                        "default for --demo: realgap-demo/frames)")
    p.add_argument("--no-contact-sheet", action="store_true", help="skip contact_sheet.png")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def _labels(items: list[str]) -> tuple[tuple[str, str], ...]:
    from realgap.errors import ConfigError

    out = []
    for item in items:
        src, sep, dst = item.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise ConfigError(f"--domain-label {item!r}: expected DOMAIN=LABEL, e.g. real-proxy=real")
        out.append((src.strip(), dst.strip()))
    return tuple(out)


def run(args: argparse.Namespace) -> int:
    from realgap.errors import ConfigError
    from realgap.sim.contact_sheet import contact_sheet
    from realgap.sim.generate import DEFAULT_DEMO_OUT, GenerateConfig, generate, generate_demo

    t0 = time.perf_counter()
    progress = not args.no_progress
    if args.demo:
        out = args.out or DEFAULT_DEMO_OUT
        fs = generate_demo(out, progress=progress)
        sheet: Path | None = Path(out) / "contact_sheet.png"
    else:
        if not args.task:
            raise ConfigError("--task: required (or pass --demo); e.g. --task reach-mug")
        if not args.out:
            raise ConfigError("--out: required (or pass --demo); e.g. --out frames/reach-mug")
        tasks = tuple(t for item in args.task for t in _csv(item))
        randomize = () if args.randomize.strip().lower() in ("", "none") else _csv(args.randomize)
        cfg = GenerateConfig(
            out=args.out, tasks=tasks, episodes=args.episodes, domains=_csv(args.domains),
            randomize=randomize, granularity=args.granularity, fidelity=args.fidelity,
            image_size=args.image_size, cameras=_csv(args.cameras), seed=args.seed,
            domain_labels=_labels(args.domain_label), max_steps=args.max_steps,
            proxy_shadows=args.proxy_shadows, record_every=args.record_every,
        )
        fs = generate(cfg, progress=progress)
        sheet = None if args.no_contact_sheet else contact_sheet(
            fs, Path(args.out) / "contact_sheet.png")
    _print_summary(fs, sheet, time.perf_counter() - t0)
    return 0


def _print_summary(fs: object, sheet: Path | None, seconds: float) -> None:
    import json

    man = fs.manifest  # type: ignore[attr-defined]
    print(f"frameset: {fs.root}  ({len(man)} frames, hash {fs.content_hash[:16]})")  # type: ignore[attr-defined]
    counts = man.groupby(["domain", "task"]).agg(
        episodes=("episode", "nunique"), frames=("frame_id", "size"))
    for (dom, task), row in counts.iterrows():
        print(f"  {dom:<12} {task:<12} {int(row.episodes):>4} episodes {int(row.frames):>6} frames")
    rec_path = Path(fs.root) / "generate.json"  # type: ignore[attr-defined]
    if rec_path.is_file():
        stats = json.loads(rec_path.read_text()).get("expert_success", {})
        for task, st in stats.items():
            print(f"  expert success {task}: {st['success']}/{st['episodes']} episodes")
    if sheet is not None:
        print(f"contact sheet: {sheet}")
    print(f"done in {seconds:.1f} s")
