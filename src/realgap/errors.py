"""One exception family for realgap.

Every class subclasses both :class:`RealgapError` and the built-in it resembles, so
callers can catch either. A message says what was received, what was expected and how
to fix it, on one line: the CLI prints ``realgap: error: <message>`` and exits with 2.
A traceback from the CLI therefore always means a bug in realgap.
"""

from __future__ import annotations


class RealgapError(Exception):
    """Base of every error realgap raises on purpose."""


class ConfigError(RealgapError, ValueError):
    """An argument, option or configuration value is invalid."""


class UnknownNameError(RealgapError, KeyError):
    """A name was looked up in a registry that does not hold it."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the sentence.
        return str(self.args[0]) if self.args else ""


class DataError(RealgapError, ValueError):
    """A dataset, table or file has the wrong content (columns, NaNs, shapes, labels)."""


class MissingFileError(RealgapError, FileNotFoundError):
    """A required file (dataset, checkpoint, weights) does not exist where looked for."""


class MissingDependencyError(RealgapError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class FormatVersionError(DataError):
    """An on-disk format (FrameSet, cache, results database) has an unsupported version."""
