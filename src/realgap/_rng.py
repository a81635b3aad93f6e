"""Explicit randomness: every stochastic function takes ``rng`` and normalises it here."""

from __future__ import annotations

import numpy as np

RngLike = np.random.Generator | int | np.integer | None


def as_rng(rng: RngLike) -> np.random.Generator:
    """Return a :class:`numpy.random.Generator` from a Generator, an int seed or None.

    None gives a fresh OS-seeded generator (non-deterministic on purpose); an int gives
    ``np.random.default_rng(int)``; a Generator is returned unchanged (shared state).
    Nothing in realgap draws from numpy's global generator.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(None if rng is None else int(rng))
    raise TypeError(f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")


def child_seeds(rng: RngLike, n: int) -> list[int]:
    """Draw ``n`` independent 63-bit seeds from ``rng`` (for per-factor or per-worker streams)."""
    gen = as_rng(rng)
    return [int(s) for s in gen.integers(0, 2**63 - 1, size=n)]
