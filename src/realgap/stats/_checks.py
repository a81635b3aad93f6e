"""Argument checks for :mod:`realgap.stats` (a leaf package: it imports nothing else of realgap
but the error family and the rng helper)."""

from __future__ import annotations

from typing import Any

from realgap.errors import ConfigError


def check_alpha(alpha: Any) -> float:
    """``alpha`` in (0, 1): ``1 - alpha`` is an interval's coverage or a test's level."""
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise ConfigError(f"alpha: expected a number in (0, 1), got {alpha!r}") from None
    if not 0 < a < 1:
        raise ConfigError(f"alpha: expected a number in (0, 1), got {alpha!r}")
    return a


def check_count(value: Any, name: str, *, minimum: int = 1) -> int:
    """An integer >= ``minimum`` (bools refused: ``True`` is not a replicate count)."""
    if isinstance(value, bool) or not isinstance(value, int) and not hasattr(value, "__index__"):
        raise ConfigError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    v = int(value)
    if v < minimum:
        raise ConfigError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return v
