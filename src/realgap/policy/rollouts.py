"""Old home of ``rollout()``; the job is :mod:`realgap.jobs.rollout`.

Names are resolved on first use (PEP 562), so ``policy`` does not import ``jobs`` at load
time (``jobs`` imports ``policy``).
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = ("RolloutConfig", "RolloutResult", "rollout", "run_rollout")
__all__ = list(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module("realgap.jobs.rollout"), name)
    raise AttributeError(f"module 'realgap.policy.rollouts' has no attribute {name!r}")
