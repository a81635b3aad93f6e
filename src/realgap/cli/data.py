"""``realgap data {info,validate,convert,export,upgrade}``: inspect, check, import, export and upgrade FrameSets."""

from __future__ import annotations

import argparse
import json
import sys

from realgap.cli._common import emit, show_progress, wants_json

CONVERT_EPILOG = """source layouts (details in the realgap.data.readers module docstrings):
  folder     DIR/manifest.csv|.parquet (or the file itself): columns episode, step,
             image or image_<camera> (paths relative to the manifest), action (list,
             "[..]" or "a b c") or action_0..; optional state/state_0.., task, factors
  robomimic  FILE.hdf5: data/demo_N/{actions, obs/<camera>_image, obs/<low-dim keys>}
             (LIBERO obs/<camera>_rgb too; a raw robosuite demo.hdf5 needs robomimic's
             dataset_states_to_obs.py first)
  zarr       DIR.zarr or FILE.zarr.zip (v2 or v3): data/{img|<camera>, action, state},
             meta/episode_ends
  lerobot    DIR with meta/info.json (codebase v2.x or v3.0), parquet data, images as
             parquet image structs or mp4 videos
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="inspect, validate and convert FrameSet datasets")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION")

    def run_help(_: argparse.Namespace) -> int:
        from realgap.cli import fail

        return fail("realgap data: name an action (info, validate, convert, export, upgrade); "
                    "see `realgap data --help`")

    p.set_defaults(func=run_help)

    pi = dsub.add_parser("info", help="counts by domain, task, episode and factor value")
    pi.add_argument("path", metavar="PATH", help="FrameSet directory")
    pi.add_argument("--json", action="store_true", help="print JSON instead of text")
    pi.set_defaults(func=run_info)

    pv = dsub.add_parser("validate", help="check every file of a FrameSet; list every bad episode",
                         description="Read every file of a FrameSet and check it (structure, "
                                     "types, hashes, decodable frames). Every bad episode is "
                                     "listed, one line each; exit code 2 when any is bad.")
    pv.add_argument("path", metavar="PATH", help="FrameSet directory")
    pv.set_defaults(func=run_validate)

    pc = dsub.add_parser(
        "convert", help="convert a dataset (folder, robomimic, zarr, lerobot)",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=CONVERT_EPILOG)
    pc.add_argument("src", metavar="SRC", help="source dataset: folder, .hdf5, .zarr or LeRobot dir")
    pc.add_argument("--out", required=True, help="FrameSet directory to write")
    pc.add_argument("--format", default="auto",
                    choices=("auto", "folder", "robomimic", "zarr", "lerobot"),
                    help="source format; auto: detect from the files")
    pc.add_argument("--domain", default="real", help="domain label of the frames")
    pc.add_argument("--task", default=None, help="task name (default: from the source)")
    pc.add_argument("--camera", action="append", default=None, metavar="NAME|SRC=DST",
                    help="camera to import (NAME), or to import renamed (SRC=DST, e.g. top=head); "
                         "repeatable. Plain names select cameras (only those named are "
                         "imported); with only SRC=DST renames, the other cameras are kept "
                         "under their own names unless --only-mapped (default: all cameras)")
    pc.add_argument("--only-mapped", action="store_true",
                    help="import only the cameras named by --camera SRC=DST")
    pc.add_argument("--action-key", default=None, metavar="KEY",
                    help="source field holding the actions (default: LeRobot 'action', robomimic "
                         "'actions', zarr data/action, manifest 'action'), e.g. --action-key actions")
    pc.add_argument("--state-key", action="append", default=None, metavar="KEY",
                    help="source field holding the state; repeatable, concatenated in order "
                         "(default: LeRobot 'observation.state', robomimic all low-dim obs, zarr "
                         "data/state, manifest 'state'), e.g. --state-key state")
    pc.add_argument("--append", action="store_true",
                    help="add to an existing FrameSet at --out instead of refusing")
    pc.add_argument("--video-storage", default="copy", choices=("copy", "lossless"),
                    help="frames decoded from videos: keep the source video, checked to decode "
                         "to the same frames (copy), or store them losslessly")
    pc.set_defaults(func=run_convert)

    pe = dsub.add_parser(
        "export", help="write a FrameSet as another format (lerobot: LeRobot v3.0, PNG frames)")
    pe.add_argument("src", metavar="SRC", help="FrameSet directory")
    pe.add_argument("--format", default="lerobot", choices=("lerobot",),
                    help="output format (lerobot: codebase v3.0 as lerobot 0.4 writes it)")
    pe.add_argument("--out", required=True, help="new dataset directory to write")
    pe.add_argument("--fps", type=float, default=10.0,
                    help="frames per second recorded in info.json; timestamp = step / fps")
    pe.add_argument("--domain", default=None, help="export only this domain (default: all frames)")
    pe.set_defaults(func=run_export)

    pu = dsub.add_parser("upgrade", help="copy a FrameSet of an older format into a new one")
    pu.add_argument("path", metavar="PATH", help="FrameSet directory (left unchanged)")
    pu.add_argument("--out", required=True, help="new FrameSet directory to write")
    pu.set_defaults(func=run_upgrade)


def run_info(args: argparse.Namespace) -> int:
    from realgap.data.checks import format_info, info

    summary = info(args.path)
    print(json.dumps(summary, indent=1) if args.json else format_info(summary))
    return 0


def run_validate(args: argparse.Namespace) -> int:
    from realgap.cli import fail
    from realgap.data.checks import validate

    s = validate(args.path, all_problems=True)
    problems = s["problems"]
    if not problems:
        return emit(args, {"ok": True, **s},
                    f"ok: {s['path']}: {s['n_frames']} frames in {s['n_episodes']} episodes, "
                    f"domains {s['domains']}, hash {s['content_hash'][:12]}")
    # One bad episode: its own line is the error. More: every one is listed (stdout, or the
    # JSON document), and the error line carries the first and the count.
    total = len(problems) + s["n_episodes"]
    if wants_json(args) or len(problems) > 1:
        emit(args, {"ok": False, **s}, "\n".join(f"bad episode {p['episode']}: {p['error']}"
                                                 for p in problems))
    more = (f"; and {len(problems) - 1} more of {total} episodes are bad"
            f"{'' if wants_json(args) else ' (listed above)'}" if len(problems) > 1 else "")
    return fail(problems[0]["error"] + more)


def run_convert(args: argparse.Namespace) -> int:
    from realgap.data.conversion import convert, parse_camera_args

    plain, cmap = parse_camera_args(args.camera)
    fs = convert(args.src, args.out, fmt=args.format, domain=args.domain, task=args.task,
                 cameras=plain, camera_map=cmap, only_mapped=args.only_mapped,
                 action_key=args.action_key, state_keys=args.state_key, append=args.append,
                 progress=show_progress(args) and sys.stderr.isatty(),
                 video_storage=args.video_storage)
    return emit(args, {"frameset": fs.root, "frames": len(fs), "cameras": fs.cameras,
                       "content_hash": fs.content_hash},
                f"wrote {fs.root}: {len(fs)} frames, cameras {fs.cameras}, "
                f"hash {fs.content_hash[:12]}")


def run_export(args: argparse.Namespace) -> int:
    from realgap.data.export import export_lerobot

    out = export_lerobot(args.src, args.out, fps=args.fps, domain=args.domain)
    info = json.loads((out / "meta" / "info.json").read_text())
    return emit(args, {"dataset": out, "format": args.format,
                       "codebase_version": info["codebase_version"],
                       "frames": info["total_frames"], "episodes": info["total_episodes"]},
                f"wrote {out}: LeRobot {info['codebase_version']}, {info['total_frames']} "
                f"frames in {info['total_episodes']} episodes")


def run_upgrade(args: argparse.Namespace) -> int:
    from realgap.data.conversion import upgrade

    fs = upgrade(args.path, args.out, progress=show_progress(args) and sys.stderr.isatty())
    return emit(args, {"frameset": fs.root, "frames": len(fs),
                       "format_version": fs.meta["format_version"],
                       "content_hash": fs.content_hash},
                f"wrote {fs.root}: {len(fs)} frames, format {fs.meta['format_version']}, "
                f"hash {fs.content_hash[:12]}")
