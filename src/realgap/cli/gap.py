"""``realgap gap``: which encoder carries a sim-trained policy across (the main job).

Parses the options into a :class:`realgap.jobs.gap.GapConfig`, calls
:func:`realgap.jobs.gap.run_gap`, prints a ranking table with intervals and the report path
(or, with ``--json``, every metric's value, lo, hi and n per encoder).
"""

from __future__ import annotations

import argparse
import json

from realgap.cli._args import seed
from realgap.errors import ConfigError


def _weights(items: list[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--weights {item!r}: expected ENCODER=PATH, e.g. "
                              "--weights r3m-resnet50=~/ckpt/r3m_50.pt")
        out.append((name, path))
    return tuple(out)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gap", help="measure each encoder's sim-to-real gap (DIS, AS, transfer AS, coverage)",
        description="Embed sim and real frames with each encoder, compute DIS, AS (sim, real, "
                    "transfer), combined score, MMD, Frechet distance, C2ST and coverage with "
                    "episode-bootstrap intervals, draw saliency grids, append a run to "
                    "OUT/results.duckdb and write OUT/report.html.")
    src = p.add_argument_group("frames (either --frames, or --sim and --real)")
    src.add_argument("--frames", default=None, help="one FrameSet holding both domains")
    src.add_argument("--sim", default=None, help="FrameSet of the simulated frames")
    src.add_argument("--real", default=None, help="FrameSet of the real frames")
    src.add_argument("--sim-domain", default="sim", help="domain label of the sim frames")
    src.add_argument("--real-domain", default="real-proxy", help="domain label of the real frames")
    p.add_argument("--encoders", required=True,
                   help="comma-separated encoder names (see `realgap encoders list`)")
    p.add_argument("--weights", action="append", default=[], metavar="ENCODER=PATH",
                   help="checkpoint of a zoo encoder (repeatable)")
    p.add_argument("--camera", default=None, help="camera to embed (default: head)")
    p.add_argument("--real-camera", default=None, metavar="NAME",
                   help="the real set's camera to compare with the sim --camera when the names "
                        "differ, e.g. --real-camera top for a LeRobot set against sim head "
                        "(default: the same name in both)")
    p.add_argument("--k", type=int, default=384, help="PCA components of the paper's DIS (dis_paper)")
    p.add_argument("--space-k", type=int, default=32,
                   help="leading components of the common space, the same for every encoder")
    p.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples over episodes")
    p.add_argument("--n-perm", type=int, default=200,
                   help="permutations of the null over episodes (0: no p-values)")
    p.add_argument("--seed", type=seed, default=0, help="seed: same seed, same numbers")
    p.add_argument("--cache", default=None, help="embedding cache dir (default OUT/cache)")
    p.add_argument("--saliency-pairs", type=int, default=3,
                   help="sim/real pairs per saliency grid (0: no saliency)")
    p.add_argument("--maps", default="pca,umap",
                   help="embedding maps in the report: pca (fitted on sim), umap, or none "
                        "(default pca,umap)")
    p.add_argument("--map-frames", type=int, default=400,
                   help="frames per domain on the embedding maps (default 400)")
    p.add_argument("--device", default="cpu", help="torch device")
    from realgap.executors import add_executor_args

    add_executor_args(p, "embedding extraction (one task per episode x encoder, into the same cache)")
    p.add_argument("--out", required=True, help="output dir (results.duckdb, report.html)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from realgap.jobs.gap import RANKING_LEGEND, GapConfig, ranking_table, result_json, run_gap

    encoders = tuple(e.strip() for e in args.encoders.split(",") if e.strip())
    cfg = GapConfig(
        encoders=encoders, out=args.out, frames=args.frames, sim=args.sim, real=args.real,
        sim_domain=args.sim_domain, real_domain=args.real_domain, camera=args.camera,
        real_camera=args.real_camera,
        k=args.k, space_k=args.space_k, n_boot=args.n_boot, n_perm=args.n_perm,
        seed=args.seed, cache=args.cache,
        weights=_weights(args.weights), saliency_pairs=args.saliency_pairs,
        device=args.device, progress=not (args.quiet or args.json),
        maps=_maps(args.maps), map_frames=args.map_frames,
        executor=args.executor, ray_address=args.ray_address,
    )
    result = run_gap(cfg)
    if args.json:
        print(json.dumps(result_json(result), indent=1))
        return 0
    print(ranking_table(result))
    print(RANKING_LEGEND)
    print(f"run {result.run_id} in {result.db_path} ({result.seconds:.0f} s)")
    print(f"report: {result.report_path}")
    return 0


def _maps(text: str) -> tuple[str, ...]:
    """``--maps``: a comma list, or ``none`` for no maps (checked by the job's config check)."""
    names = tuple(m.strip().lower() for m in text.split(",") if m.strip())
    return () if names in ((), ("none",)) else names
