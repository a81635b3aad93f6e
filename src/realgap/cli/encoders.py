"""``realgap encoders list [--json]`` and ``realgap encoders show NAME``.

``list`` prints the registry: name, Table I metadata, and whether the weights are on
this machine (checked in the same places the loader reads). ``show`` builds one encoder
(loading its weights) and prints its identity, so a missing checkpoint surfaces as the
loader's one-line error.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("encoders", help="list the encoder zoo and where its weights are")
    esub = p.add_subparsers(dest="encoders_command", metavar="SUBCOMMAND")
    lp = esub.add_parser("list", help="print every registered encoder and its weights status")
    lp.add_argument("--json", action="store_true", help="print JSON instead of a table")
    lp.set_defaults(func=run_list)
    sp = esub.add_parser("show", help="build one encoder and print its identity")
    sp.add_argument("name", help="registered name, <name>-random, or package.module:factory")
    sp.add_argument("--weights", default=None, help="checkpoint file (default: search the caches)")
    sp.add_argument("--json", action="store_true", help="print JSON")
    sp.set_defaults(func=run_show)
    p.set_defaults(func=_no_subcommand)


def _no_subcommand(_: argparse.Namespace) -> int:
    """``realgap encoders`` alone: one error line naming the choices, like every usage error."""
    from realgap.cli import fail

    return fail("realgap encoders: name a subcommand (list, show); see `realgap encoders --help`")


def encoder_rows() -> list[dict[str, Any]]:
    """One dict per registered encoder: name, metadata, weights status and path."""
    from realgap.encoders import ENCODERS, weights_status

    rows = []
    for entry in ENCODERS:
        info = entry.meta.get("info")
        status, path = weights_status(entry.name)
        row: dict[str, Any] = {"name": entry.name, "source": entry.meta.get("source", "plugin")}
        if info is not None:
            row.update(info.as_dict())
        row["weights"] = status
        row["weights_path"] = str(path) if path else None
        rows.append(row)
    return rows


def run_list(args: argparse.Namespace) -> int:
    rows = encoder_rows()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    cols = ("name", "family", "embed_dim", "params_m", "training", "pretrain_data", "weights")
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in cols))
    missing = sum(r["weights"] == "missing" for r in rows)
    print(f"{len(rows)} encoders; {missing} need a checkpoint that is not on this machine "
          "(set REALGAP_WEIGHTS_DIR, or use <name>-random for labelled random weights)")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from realgap.encoders import create_encoder

    enc = create_encoder(args.name, weights=args.weights)
    ident = enc.identity
    if args.json:
        print(json.dumps(ident, indent=1, default=str))
    else:
        for k in ("name", "family", "embed_dim", "params_m", "weights_origin", "weights_hash"):
            print(f"{k}: {ident[k]}")
    return 0
