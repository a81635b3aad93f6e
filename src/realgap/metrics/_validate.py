"""Input checks shared by the metric functions: shapes, finiteness, group labels.

Every check raises :class:`realgap.errors.DataError` (or :class:`ConfigError` for a bad
option) with a one-line message naming the argument, what was received and the fix.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from realgap.errors import ConfigError, DataError


def as_matrix(x: Any, name: str, *, min_rows: int = 2, dtype: Any = np.float64) -> np.ndarray:
    """``x`` as a finite 2-D array ``(n_rows, dim)``; a 1-D array becomes one column."""
    arr = np.asarray(x, dtype=dtype)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise DataError(f"{name}: expected a 2-D array (n_frames, dim), got shape {arr.shape}; "
                        "pass one row per frame")
    if arr.shape[0] < min_rows:
        raise DataError(f"{name}: needs at least {min_rows} rows, got {arr.shape[0]}; "
                        "pass more frames")
    if arr.shape[1] < 1:
        raise DataError(f"{name}: has 0 columns; pass at least one feature per frame")
    if not np.all(np.isfinite(arr)):
        bad = int(np.argwhere(~np.isfinite(arr))[0, 0])
        raise DataError(f"{name}: contains NaN or inf (first at row {bad}); "
                        "drop or repair those frames before computing metrics")
    return arr


def as_groups(groups: Any, n: int, name: str) -> np.ndarray:
    """Group labels (episodes) as a 1-D array of length ``n``."""
    g = np.asarray(groups)
    if g.ndim != 1 or g.shape[0] != n:
        raise DataError(f"{name}: expected one label per frame, shape ({n},), got {g.shape}; "
                        "pass the episode id of every frame")
    return g


def same_dim(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Raise unless ``a`` and ``b`` have the same number of columns."""
    if a.shape[1] != b.shape[1]:
        raise DataError(f"{name_a} has {a.shape[1]} columns but {name_b} has {b.shape[1]}; "
                        "both must come from the same encoder (same embedding dimension)")


def check_prob(value: float, name: str, *, open_low: bool = True) -> float:
    """A probability in (0, 1) (or [0, 1) when ``open_low`` is False)."""
    v = float(value)
    low_ok = v > 0 if open_low else v >= 0
    if not (low_ok and v < 1):
        raise ConfigError(f"{name}: expected a number in (0, 1), got {value!r}")
    return v


def check_positive_int(value: int, name: str, *, minimum: int = 1) -> int:
    """An integer >= ``minimum``."""
    if isinstance(value, bool) or int(value) != value or int(value) < minimum:
        raise ConfigError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)
