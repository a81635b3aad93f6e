"""The ``realgap`` command line: thin commands that parse, call one library function, print.

Each subcommand module in :data:`COMMAND_MODULES` exposes ``register(subparsers)``, which
adds its parser(s) and sets ``func`` (a callable taking the parsed ``argparse.Namespace``
and returning an exit code or None). Any :class:`realgap.errors.RealgapError`, a usage
error (unknown option, missing or malformed argument) and a file-system error about a
user's path or a full disk all end in :func:`fail`: one line ``realgap: error: ...`` on
stderr and exit code 2; a traceback means a bug. ``--help`` stays a full usage page.

Every command (every parser without subcommands) also gets ``--json`` (one JSON document
on stdout, nothing else), ``--quiet`` (alias ``--no-progress``), ``--verbose`` (debug
logging) and ``--config FILE.toml`` (keys: the long option names; flags override them), and
``--help`` shows every default: see :mod:`realgap.cli._options`.

Exit codes: 0 success, 2 error, 130 interrupted (Ctrl-C), 141 stdout closed early (as in
``realgap data info FS | head -1``: the reader has what it wanted, so nothing is printed;
141 is 128 + SIGPIPE, what a shell reports for a C tool stopped the same way).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from realgap import __version__
from realgap.cli._options import (
    HelpFormatter,
    add_common_options,
    apply_config_file,
    configure_logging,
    is_pending,
    leaf_parsers,
    log,
    populate,
)
from realgap.errors import ConfigError, RealgapError

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
    "study",
)


_PATH_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError,
                PermissionError)
#: Write failures of the machine, not of realgap: the fix is space, quota or a writable place.
_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})
#: Exit code when stdout's reader went away (128 + SIGPIPE).
EXIT_BROKEN_PIPE = 141


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line through :func:`fail`, like every other error.

    argparse prints the whole usage block and exits; a wrong flag among a dozen options
    then scrolls the one useful line away. ``--help`` still prints the full page.
    Subparsers inherit the class (``add_subparsers`` uses ``type(self)``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{self.prog}: {message}; see `{self.prog} --help`")

    # a lazy command (realgap.cli._options.lazy) gets its options when first used
    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        populate(self)
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        populate(self)
        return super().format_help()

    def format_usage(self) -> str:
        populate(self)
        return super().format_usage()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="realgap",
        description="Measure, diagnose and help close the sim-to-real gap in robot learning.",
    )
    parser.add_argument("--version", action="version", version=f"realgap {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"realgap.cli.{name}").register(sub)
    from realgap.encoders.registry import add_plugin_flag

    add_plugin_flag(sub)  # --allow-plugin on every command that builds encoders
    # --json, --quiet, --verbose, --config and shown defaults on every command, this one's
    # modules and any added later alike (tests/test_cli_contract.py walks the same tree)
    for _, leaf in leaf_parsers(parser, populated=False):
        if not is_pending(leaf):  # a lazy one gets them when populated
            add_common_options(leaf)
    return parser


def fail(message: str) -> int:
    """Print one error line and return exit code 2.

    Messages that carry a library's multi-line text (h5py, duckdb) are folded onto one
    line here, once, rather than trimmed at each place that raises.
    """
    one_line = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
    print(f"realgap: error: {one_line}", file=sys.stderr)
    return 2


def _os_error_message(exc: OSError, args: argparse.Namespace | None) -> str:
    """One line for a file-system error: the path (or the output directory), what
    happened and, for a full or read-only disk, the fix."""
    where = exc.filename or (f"--out {args.out}" if getattr(args, "out", None) else "")
    what = exc.strerror or str(exc)
    line = f"{where}: {what}" if where else what
    if exc.errno in _DISK_ERRNOS:
        line += ("; free space (or pass an --out on another disk) and rerun the same "
                 "command: outputs already written were kept and are reused")
    return line


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (``| head``): a
    BrokenPipeError from anything else (a worker's pipe) is a bug and must surface."""
    try:
        import select

        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & select.POLLERR for _, ev in poll.poll(0))
    except (AttributeError, ValueError, OSError):  # no poll (Windows), or no real fd
        return True


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not print
    'Exception ignored ... BrokenPipeError' (the Python docs' SIGPIPE recipe)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, ValueError, OSError):  # stdout replaced (tests): nothing to do
        pass


def _run_for_json(args: argparse.Namespace) -> Any:
    """Run a ``--json`` command with its stdout held back: one JSON document is passed on as
    is; any other text (a command that has no JSON form of its own yet) is wrapped as
    ``{"command", "exit_code", "output": [lines]}``, so ``--json`` always prints exactly one
    JSON document. The text is passed on even when the command raises."""
    import contextlib
    import io
    import json

    buffer = io.StringIO()
    code: Any = 2
    try:
        with contextlib.redirect_stdout(buffer):
            code = args.func(args)
    finally:
        text = buffer.getvalue()
        try:
            json.loads(text)
        except ValueError:
            if text.strip() or code in (0, None):
                command = " ".join(["realgap", *(getattr(args, a) for a in _COMMAND_DESTS
                                                 if getattr(args, a, None))])
                text = json.dumps({"command": command, "exit_code": int(code or 0),
                                   "output": text.splitlines()}, indent=1) + "\n"
        sys.stdout.write(text)
    return code


#: Namespace attributes naming the command and its subcommand, in order.
_COMMAND_DESTS = ("command", "data_command", "dynamics_command", "encoders_command",
                  "protocol_command")


def main(argv: Sequence[str] | None = None) -> int:
    args: argparse.Namespace | None = None
    try:
        parser = build_parser()
        argv = list(sys.argv[1:] if argv is None else argv)
        apply_config_file(parser, argv)  # --config FILE: its keys become the defaults
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        configure_logging(bool(getattr(args, "verbose", False)))
        log.debug("realgap %s: %s", __version__, {k: v for k, v in vars(args).items()
                                                  if k != "func"})
        from realgap.encoders.registry import plugins_allowed

        # module:factory plugins run only when this command line says so (issue 10)
        with plugins_allowed(bool(getattr(args, "allow_plugin", False))):
            if getattr(args, "json", False):
                code = _run_for_json(args)
            else:
                code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows up here, not at interpreter exit
    except RealgapError as exc:
        return fail(str(exc))
    except BrokenPipeError:
        if not _stdout_reader_gone():
            raise
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as exc:
        # A file-system error about a path the user gave (exists, is a directory, no
        # permission) or about the machine (disk full, quota, read-only) is input, not a
        # bug; any other one without a path is a bug.
        if (exc.filename is None and not isinstance(exc, _PATH_ERRORS)
                and exc.errno not in _DISK_ERRNOS):
            raise
        return fail(_os_error_message(exc, args))
    except KeyboardInterrupt:
        print("realgap: interrupted; completed work was kept and the run can be resumed",
              file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
