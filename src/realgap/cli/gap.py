"""``realgap gap``: which encoder carries a sim-trained policy across (the main job).

Options generated from :class:`realgap.jobs.gap.GapConfig` (one per field, its docstring
as help, its default shown) are parsed back into one, then the command calls
:func:`realgap.jobs.gap.run_gap`, prints a ranking table with intervals and the report path
(or, with ``--json``, every metric's value, lo, hi and n per encoder).
"""

from __future__ import annotations

import argparse
import json

from realgap.cli._common import show_progress
from realgap.cli._dataclass_options import add_dataclass_options, config_from_args, csv_or_none
from realgap.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    from realgap.executors import add_executor_args
    from realgap.jobs.gap import GapConfig

    p = sub.add_parser(
        "gap", help="measure each encoder's sim-to-real gap (DIS, AS, transfer AS, coverage)",
        description="Embed sim and real frames with each encoder, compute DIS, AS (sim, real, "
                    "transfer), combined score, MMD, Frechet distance, C2ST and coverage with "
                    "episode-bootstrap intervals, draw saliency grids, append a run to "
                    "OUT/results.duckdb and write OUT/report.html. The options are the fields "
                    "of realgap.jobs.gap.GapConfig.")
    src = p.add_argument_group("frames (either --frames, or --sim and --real)")
    add_dataclass_options(src, GapConfig, only=FRAME_FIELDS)
    add_dataclass_options(p, GapConfig, skip=(*FRAME_FIELDS, *_NOT_OPTIONS), overrides={
        "encoders": {"metavar": "NAME[,NAME...]",
                     "help": "comma-separated encoder names (see `realgap encoders list`) or "
                             "pkg.module:factory"},
        "weights": {"action": "append", "type": _weight, "default": None,
                    "metavar": "ENCODER=PATH",
                    "help": "checkpoint of a zoo encoder whose weights are not cached "
                            "(repeatable)"},
        "real_camera": {"metavar": "NAME"},
        "maps": {"type": csv_or_none, "metavar": "MAP[,MAP]"},
    })
    add_executor_args(p, "embedding extraction (one task per episode x encoder, into the same cache)")
    p.add_argument("--json", action="store_true",
                   help="print the results as JSON: every metric's value, lo, hi and n per "
                        "encoder, the ranking, run id and paths")
    p.set_defaults(func=run)


#: GapConfig fields in the "frames" group of ``--help``.
FRAME_FIELDS = ("frames", "sim", "real", "sim_domain", "real_domain")
#: GapConfig fields set by other options: --quiet, and --executor/--ray-address (shared with
#: rollout and evaluate through realgap.executors.add_executor_args).
_NOT_OPTIONS = ("progress", "executor", "ray_address")


def _weight(item: str) -> tuple[str, str]:
    """``--weights ENCODER=PATH`` -> ``(encoder, path)``."""
    name, sep, path = item.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected ENCODER=PATH, e.g. --weights "
                                         f"r3m-resnet50=~/ckpt/r3m_50.pt, got {item!r}")
    return name, path


def run(args: argparse.Namespace) -> int:
    from realgap.jobs.gap import RANKING_LEGEND, GapConfig, ranking_table, result_json, run_gap

    cfg = config_from_args(GapConfig, args, progress=show_progress(args))
    result = run_gap(cfg)
    if args.json:
        print(json.dumps(result_json(result), indent=1))
        return 0
    print(ranking_table(result))
    print(RANKING_LEGEND)
    print(f"run {result.run_id} in {result.db_path} ({result.seconds:.0f} s)")
    print(f"report: {result.report_path}")
    return 0



#: Old names, kept for code that imported them.
_maps = csv_or_none


def _weights(items: list[str]) -> tuple[tuple[str, str], ...]:
    """``--weights`` items -> ``((encoder, path), ...)`` (old helper; argparse now parses each)."""
    try:
        return tuple(_weight(item) for item in items)
    except argparse.ArgumentTypeError as exc:
        raise ConfigError(f"--weights: {exc}") from None
