"""The options every ``realgap`` command shares, help that shows defaults, and ``--config``.

* :class:`HelpFormatter` appends ``(default: X)`` to every option that takes a value and has
  a default, unless its help already says ``default X``; so ``--help`` shows every default
  without each command copying it into its help by hand.
* :func:`add_common_options` gives every leaf command (a parser without subcommands) the
  same ``--json``, ``--quiet`` (alias ``--no-progress``), ``--verbose`` and ``--config``;
  :func:`leaf_parsers` walks the parser tree, so a new command gets them too.
* :func:`lazy` defers a command's options until the command is used (its config class's
  module is slow to import).
* :func:`apply_config_file` reads ``--config run.toml`` (``tomllib``): its keys are the
  command's long option names (``n-boot = 500``, ``scales = [1, 1.5, 2]``) and become the
  parser's defaults, so flags on the command line override the file.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import re
import sys
import tomllib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from realgap.errors import ConfigError

log = logging.getLogger("realgap.cli")

#: Options that take no value: their default (False, a constant) is not worth a line.
_FLAG_ACTIONS = (argparse._StoreTrueAction, argparse._StoreFalseAction,
                 argparse._StoreConstAction, argparse._CountAction, argparse._HelpAction,
                 argparse._VersionAction, argparse.BooleanOptionalAction)


def show_default(default: Any) -> str:
    """How ``--help`` writes a default: comma lists as typed on the command line, an empty
    value as ``none``."""
    if isinstance(default, (list, tuple)):
        return ",".join(show_default(x) for x in default) if default else "none"
    if isinstance(default, str) and not default:
        return "none"
    if isinstance(default, float):
        return f"{default:g}"
    return str(default)


def shows_default(help_text: str, shown: str) -> bool:
    """Whether ``help_text`` already says ``default X`` / ``default: X`` for ``shown``."""
    return re.search(r"default:?\s+" + re.escape(shown) + r"(?![\w.])", help_text,
                     re.IGNORECASE) is not None


def has_default(action: argparse.Action) -> bool:
    """Whether ``--help`` must show ``action``'s default: an option taking a value, with a
    default other than None or SUPPRESS."""
    return (bool(action.option_strings) and not isinstance(action, _FLAG_ACTIONS)
            and action.default is not None and action.default is not argparse.SUPPRESS)


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, with every option's default shown (see the module docstring)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not has_default(action) or "%(default)" in text:
            return text
        shown = show_default(action.default)
        if shows_default(text, shown):
            return text
        # argparse %-formats help strings: a literal % in a default must be doubled
        return f"{text} (default: {shown.replace('%', '%%')})".lstrip()

    def _format_action(self, action: argparse.Action) -> str:
        # argparse prints no help line for an option without help, so it would hide the
        # default too: give it an empty one to hang the default on.
        if action.option_strings and not (action.help or "").strip() and has_default(action):
            action.help = f"(default: {show_default(action.default).replace('%', '%%')})"
        return super()._format_action(action)


class RawDescriptionHelpFormatter(argparse.RawDescriptionHelpFormatter, HelpFormatter):
    """:class:`HelpFormatter` that keeps the description and epilog's line breaks."""


def subparser_actions(parser: argparse.ArgumentParser) -> list[argparse._SubParsersAction]:
    return [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]


#: Attribute of a parser whose options are added when first needed (:func:`lazy`).
_PENDING = "_realgap_add_options"


def lazy(parser: argparse.ArgumentParser,
         add_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``parser``'s options only when it is used (parsing, help, a ``--config`` file, a
    walk with ``populate``), then the common options. For options generated from a config
    class whose module is slow to import (``realgap.dynamics`` imports scipy.stats): every
    other command, and ``realgap --help``, starts without it."""
    setattr(parser, _PENDING, add_options)


def populate(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Run a :func:`lazy` parser's pending option adder (once); returns the parser."""
    add_options = getattr(parser, _PENDING, None)
    if add_options is not None:
        setattr(parser, _PENDING, None)
        add_options(parser)
        add_common_options(parser)
    return parser


def is_pending(parser: argparse.ArgumentParser) -> bool:
    """Whether ``parser`` is :func:`lazy` and not yet populated."""
    return getattr(parser, _PENDING, None) is not None


def walk_parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = (), *,
                 populated: bool = True
                 ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser of the tree with its command path, ``()`` for the top level; lazy ones
    populated unless ``populated=False``."""
    yield path, populate(parser) if populated else parser
    for action in subparser_actions(parser):
        for name, child in action.choices.items():
            yield from walk_parsers(child, (*path, name), populated=populated)


def leaf_parsers(parser: argparse.ArgumentParser, *, populated: bool = True
                 ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """The commands that run something: parsers without subcommands, with their path
    (``("data", "validate")``)."""
    for path, p in walk_parsers(parser, populated=populated):
        if path and not subparser_actions(p):
            yield path, p


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """``--json``, ``--quiet``/``--no-progress``, ``--verbose``, ``--config`` on one leaf
    command, each unless the command defines it itself."""
    have = parser._option_string_actions
    if "--json" not in have:
        parser.add_argument("--json", action="store_true",
                            help="print one JSON document on stdout (what the command computed "
                                 "and wrote: run id, paths, counts, scores) and nothing else")
    quiet = [s for s in ("-q", "--quiet", "--no-progress") if s not in have]
    if "--quiet" in quiet:
        parser.add_argument(*quiet, dest="quiet", action="store_true",
                            help="no progress bars or progress lines (warnings and errors still "
                                 "go to stderr)")
    if "--verbose" not in have:
        parser.add_argument("-v", "--verbose", action="store_true",
                            help="debug logging on stderr (Python logging at DEBUG)")
    if "--config" not in have:
        parser.add_argument("--config", default=None, metavar="FILE.toml",
                            help="TOML file whose keys are this command's long option names, "
                                 "e.g. n-boot = 500 or scales = [1, 1.5, 2]; options given on "
                                 "the command line override it")
    if parser.formatter_class is argparse.RawDescriptionHelpFormatter:
        parser.formatter_class = RawDescriptionHelpFormatter
    elif parser.formatter_class is argparse.HelpFormatter:
        parser.formatter_class = HelpFormatter


def find_leaf(parser: argparse.ArgumentParser, argv: Sequence[str]
              ) -> tuple[tuple[str, ...], argparse.ArgumentParser]:
    """The command ``argv`` names (the deepest parser its leading words reach)."""
    path: tuple[str, ...] = ()
    current = parser
    for token in argv:
        if token.startswith("-"):
            continue
        subs = subparser_actions(current)
        if not subs or token not in subs[0].choices:
            break
        path, current = (*path, token), subs[0].choices[token]
    return path, populate(current)


def config_path(argv: Sequence[str]) -> str | None:
    """The value of ``--config`` in ``argv`` (last one wins, as for any option), or None."""
    found = None
    for i, token in enumerate(argv):
        if token == "--":
            break
        if token == "--config" and i + 1 < len(argv):
            found = argv[i + 1]
        elif token.startswith("--config="):
            found = token.partition("=")[2]
    return found


def _option_for(parser: argparse.ArgumentParser, key: str) -> argparse.Action | None:
    flag = "--" + key.replace("_", "-")
    return parser._option_string_actions.get(flag)


def _as_text(value: Any, where: str) -> str:
    """A TOML scalar or list as the text the option would take on the command line."""
    if isinstance(value, list):
        return ",".join(_as_text(v, where) for v in value)
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a value, got {str(value).lower()}")
    if isinstance(value, (int, float, str)):
        return str(value)
    raise ConfigError(f"{where}: expected a string, number or list, got {type(value).__name__}")


def _convert(parser: argparse.ArgumentParser, action: argparse.Action, text: str,
             where: str) -> Any:
    try:
        value = parser._get_value(action, text)
        parser._check_value(action, value)
    except argparse.ArgumentError as exc:
        raise ConfigError(f"{where}: {exc.message}") from None
    return value


def config_defaults(parser: argparse.ArgumentParser, path: str, command: str
                    ) -> dict[str, Any]:
    """``{dest: value}`` from the TOML file ``path`` for the command ``parser`` (checked).

    Raises:
        ConfigError: unreadable TOML, a key that is not a long option of the command (with
            the close matches), a value of the wrong kind; each naming the file and key.
    """
    try:
        with open(path, "rb") as fh:
            table = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"--config {path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"--config {path}: is a directory; give a .toml file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config {path}: not valid TOML ({exc})") from None
    known = sorted(s[2:] for s in parser._option_string_actions
                   if s.startswith("--") and s not in ("--help", "--config"))
    out: dict[str, Any] = {}
    for key, value in table.items():
        where = f"--config {path}: key {key!r}"
        action = _option_for(parser, key)
        if action is None or key in ("help", "config") or isinstance(
                action, (argparse._HelpAction, argparse._VersionAction)):
            close = difflib.get_close_matches(key.replace("_", "-"), known, n=3)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise ConfigError(f"{where} is not an option of `{command}`; {hint}"
                              f"keys are the long option names: {', '.join(known)}")
        if isinstance(action, argparse.BooleanOptionalAction | argparse._StoreTrueAction
                      | argparse._StoreFalseAction):
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: expected true or false, got {value!r}")
            if isinstance(action, argparse._StoreFalseAction) or (
                    isinstance(action, argparse.BooleanOptionalAction)
                    and key.replace("_", "-").startswith("no-")):
                value = not value  # no-latent = true means latent False
            out[action.dest] = value
        elif isinstance(action, argparse._AppendAction):
            items = value if isinstance(value, list) else [value]
            out[action.dest] = [_convert(parser, action, _as_text(v, where), where) for v in items]
        elif isinstance(action, argparse._StoreAction):
            out[action.dest] = _convert(parser, action, _as_text(value, where), where)
        else:
            raise ConfigError(f"{where}: this option cannot be set from a file; give it on "
                              "the command line")
    return out


def apply_config_file(parser: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    """Make the ``--config`` file of ``argv`` (if any) the defaults of the command it names;
    an option the file sets is no longer required on the command line."""
    path = config_path(argv)
    if path is None:
        return
    names, leaf = find_leaf(parser, argv)
    if not names or subparser_actions(leaf):
        return  # no command named yet: parsing will say so
    command = " ".join(("realgap", *names))
    defaults = config_defaults(leaf, path, command)
    for action in leaf._actions:
        if action.dest in defaults:
            action.required = False
    leaf.set_defaults(**defaults)
    log.debug("%s: defaults from %s: %s", command, path, defaults)


def configure_logging(verbose: bool) -> None:
    """realgap's loggers to stderr: DEBUG with ``--verbose``, else WARNING. Idempotent
    (``main`` runs many times in one test process)."""
    logger = logging.getLogger("realgap")
    for handler in list(logger.handlers):
        if getattr(handler, "_realgap_cli", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._realgap_cli = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("realgap: %(levelname)s: %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING)
    logger.propagate = False

