"""What every ``realgap`` command shares: ``--json`` output, ``--quiet``, progress callbacks.

A command prints through :func:`emit`: with ``--json`` one JSON document on stdout (what the
command computed or wrote: run id, paths, scores, counts) and nothing else; otherwise its
text. Progress goes to stderr, never into stdout, so ``realgap X --json | jq`` always parses.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def wants_json(args: argparse.Namespace) -> bool:
    """Whether the command line asked for ``--json``."""
    return bool(getattr(args, "json", False))


def show_progress(args: argparse.Namespace) -> bool:
    """Progress bars and lines are shown unless ``--quiet`` (alias ``--no-progress``) or
    ``--json`` (a JSON reader wants a quiet stderr too)."""
    return not (getattr(args, "quiet", False) or wants_json(args))


def say(args: argparse.Namespace) -> Callable[[str], None] | None:
    """A progress callback writing ``realgap: MESSAGE`` lines to stderr, or None when quiet."""
    if not show_progress(args):
        return None

    def _say(message: str) -> None:
        print(f"realgap: {message}", file=sys.stderr, flush=True)

    return _say


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: dataclasses and objects with ``as_dict`` become dicts,
    paths strings, numpy scalars and arrays Python numbers and lists, NaN/inf ``null``
    (strict JSON has no NaN: ``jq`` and browsers refuse it), dict keys strings."""
    if hasattr(value, "as_dict") and callable(value.as_dict):
        return jsonable(value.as_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {(k if isinstance(k, str) else _key(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "tolist"):  # numpy scalar or array
        return jsonable(value.tolist())
    return str(value)


def _key(key: Any) -> str:
    """A dict key as JSON text: floats as ``%g`` (``1.5``, not ``1.5000000001``)."""
    return f"{key:g}" if isinstance(key, float) else str(key)


def emit(args: argparse.Namespace, payload: Mapping[str, Any], text: str | None = None) -> int:
    """Print the command's result: ``payload`` as one JSON document with ``--json``, else
    ``text`` (nothing when None). Returns exit code 0."""
    if wants_json(args):
        print(json.dumps(jsonable(payload), indent=1, allow_nan=False))
    elif text is not None:
        print(text)
    return 0
