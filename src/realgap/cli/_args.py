"""argparse value types shared by the commands, so one flag means one thing everywhere."""

from __future__ import annotations

import argparse

#: Seeds are 32-bit unsigned integers: numpy's legacy range, which every generator realgap
#: seeds accepts (torch's ``manual_seed`` takes 64 bits, but training derives per-epoch
#: seeds as ``seed * 1_000_003 + epoch``, which must stay below 2**64).
SEED_MAX = 2**32 - 1


def seed(text: str) -> int:
    """``--seed``: an integer in ``0..SEED_MAX`` (argparse reports the flag name)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer in 0..{SEED_MAX}, got {text!r}") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(
            f"must be in 0..{SEED_MAX} (same seed, same numbers), got {value}")
    return value
