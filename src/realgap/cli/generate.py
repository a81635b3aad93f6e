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

from realgap.cli._common import emit, show_progress
from realgap.cli._dataclass_options import add_dataclass_options, config_from_args, csv, csv_or_none

#: Old name, kept for code that imported it.
_csv = csv


def register(sub: argparse._SubParsersAction) -> None:
    from realgap.sim.generate import GenerateConfig

    p = sub.add_parser(
        "generate",
        help="generate a paired sim / proxy-real FrameSet with the scripted experts",
        description="Run the scripted expert of each task, render every step in each "
        "domain from the same simulator state, and write a FrameSet plus "
        "contact_sheet.png. Resumable: rerun the same command to finish an interrupted run. "
        "The options are the fields of realgap.sim.generate.GenerateConfig.",
    )
    p.add_argument("--demo", action="store_true",
                   help="write the embedded demo dataset (reach-mug, 100 episodes; sim, "
                        "sim-nominal, real-proxy-mild, real-proxy-strong); other options except "
                        "--out are ignored")
    add_dataclass_options(p, GenerateConfig, overrides={
        "out": {"required": False, "default": None,
                "help": "output FrameSet directory, created; an existing FrameSet there is "
                        "resumed (required unless --demo; default for --demo: realgap-demo/frames)"},
        "tasks": {"flags": ("--task", "--tasks"), "action": "append", "type": csv,
                  "default": None, "metavar": "NAME[,NAME]",
                  "help": "task name(s): reach-mug, reach-box, push, pick-place (repeatable; "
                          "default: reach-mug)"},
        "domains": {"metavar": "DOMAIN[,DOMAIN]",
                    "help": "comma list of sim, sim-nominal, real-proxy (= real-proxy-strong), "
                            "real-proxy-mild, real-proxy-strong"},
        "randomize": {"type": csv_or_none, "metavar": "FACTOR[,FACTOR]",
                      "help": "randomization factors of the sim domain: comma list of BG, LT, "
                              "TD, CP, TH, PHYS, or none"},
        "cameras": {"metavar": "CAMERA[,CAMERA]"},
        "domain_labels": {"flags": ("--domain-label",), "action": "append", "type": _label,
                          "default": None, "metavar": "DOMAIN=LABEL",
                          "help": "store DOMAIN's frames under LABEL, e.g. real-proxy=real "
                                  "(repeatable)"},
    })
    p.add_argument("--no-contact-sheet", action="store_true", help="skip contact_sheet.png")
    p.set_defaults(func=run)


def _label(item: str) -> tuple[str, str]:
    """``--domain-label DOMAIN=LABEL`` -> ``(domain, label)``."""
    src, sep, dst = item.partition("=")
    if not sep or not src.strip() or not dst.strip():
        raise argparse.ArgumentTypeError(f"expected DOMAIN=LABEL, e.g. real-proxy=real, got {item!r}")
    return src.strip(), dst.strip()


def _labels(items: list[str]) -> tuple[tuple[str, str], ...]:
    """Old helper: ``["a=b", ...]`` -> ``(("a", "b"), ...)``."""
    from realgap.errors import ConfigError

    try:
        return tuple(_label(item) for item in items)
    except argparse.ArgumentTypeError as exc:
        raise ConfigError(f"--domain-label: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from realgap.errors import ConfigError
    from realgap.sim.contact_sheet import contact_sheet
    from realgap.sim.generate import DEFAULT_DEMO_OUT, GenerateConfig, generate, generate_demo

    t0 = time.perf_counter()
    progress = show_progress(args)
    if args.demo:
        out = args.out or DEFAULT_DEMO_OUT
        fs = generate_demo(out, progress=progress)
        sheet: Path | None = Path(out) / "contact_sheet.png"
    else:
        if not args.tasks:
            raise ConfigError("--task: required (or pass --demo); e.g. --task reach-mug")
        if not args.out:
            raise ConfigError("--out: required (or pass --demo); e.g. --out frames/reach-mug")
        tasks = tuple(t for item in args.tasks for t in item)
        cfg = config_from_args(GenerateConfig, args, tasks=tasks)
        fs = generate(cfg, progress=progress)
        sheet = None if args.no_contact_sheet else contact_sheet(
            fs, Path(args.out) / "contact_sheet.png")
    return _print_summary(args, fs, sheet, time.perf_counter() - t0)


def _print_summary(args: argparse.Namespace, fs: object, sheet: Path | None,
                   seconds: float) -> int:
    import json

    man = fs.manifest  # type: ignore[attr-defined]
    counts = man.groupby(["domain", "task"]).agg(
        episodes=("episode", "nunique"), frames=("frame_id", "size"))
    rows = [{"domain": dom, "task": task, "episodes": int(row.episodes),
             "frames": int(row.frames)} for (dom, task), row in counts.iterrows()]
    rec_path = Path(fs.root) / "generate.json"  # type: ignore[attr-defined]
    stats = (json.loads(rec_path.read_text()).get("expert_success", {})
             if rec_path.is_file() else {})
    lines = [f"frameset: {fs.root}  ({len(man)} frames, hash {fs.content_hash[:16]})"]  # type: ignore[attr-defined]
    lines += [f"  {r['domain']:<12} {r['task']:<12} {r['episodes']:>4} episodes "
              f"{r['frames']:>6} frames" for r in rows]
    lines += [f"  expert success {task}: {st['success']}/{st['episodes']} episodes"
              for task, st in stats.items()]
    if sheet is not None:
        lines.append(f"contact sheet: {sheet}")
    lines.append(f"done in {seconds:.1f} s")
    return emit(args, {"frameset": fs.root, "frames": len(man),  # type: ignore[attr-defined]
                       "content_hash": fs.content_hash,  # type: ignore[attr-defined]
                       "counts": rows, "expert_success": stats, "contact_sheet": sheet,
                       "seconds": seconds}, "\n".join(lines))
