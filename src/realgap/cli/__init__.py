"""The ``realgap`` command line: thin commands that parse, call one library function, print.

Each subcommand module in :data:`COMMAND_MODULES` exposes ``register(subparsers)``, which
adds its parser(s) and sets ``func`` (a callable taking the parsed ``argparse.Namespace``
and returning an exit code or None). Any :class:`realgap.errors.RealgapError` (and plain
file-system errors) becomes one line on stderr and exit code 2; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from realgap import __version__
from realgap.errors import RealgapError

#: Subcommand modules under ``realgap.cli``, in ``--help`` order.
COMMAND_MODULES: tuple[str, ...] = (
    "demo",
    "generate",
    "data",
    "encoders",
    "gap",
    "report",
    "train",
    "rollout",
    "evaluate",
    "protocol",
    "vat",
    "correlate",
    "dynamics",
)


_PATH_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError,
                PermissionError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="realgap",
        description="Measure, diagnose and help close the sim-to-real gap in robot learning.",
    )
    parser.add_argument("--version", action="version", version=f"realgap {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"realgap.cli.{name}").register(sub)
    from realgap.encoders.registry import add_plugin_flag

    add_plugin_flag(sub)  # --allow-plugin on every command that builds encoders
    return parser


def fail(message: str) -> int:
    """Print one error line and return exit code 2.

    Messages that carry a library's multi-line text (h5py, duckdb) are folded onto one
    line here, once, rather than trimmed at each place that raises.
    """
    one_line = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
    print(f"realgap: error: {one_line}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        from realgap.encoders.registry import plugins_allowed

        # module:factory plugins run only when this command line says so (issue 10)
        with plugins_allowed(bool(getattr(args, "allow_plugin", False))):
            code = args.func(args)
    except RealgapError as exc:
        return fail(str(exc))
    except OSError as exc:
        # A file-system error about a path the user gave (exists, is a directory, no
        # permission, disk full, ...) is input, not a bug; one without a path is a bug.
        if exc.filename is None and not isinstance(exc, _PATH_ERRORS):
            raise
        return fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))
    except KeyboardInterrupt:
        print("realgap: interrupted; completed work was kept and the run can be resumed",
              file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
