"""Old home of the protocol runner; the job is :mod:`realgap.jobs.evaluate`.

Names are resolved on first use (PEP 562), so ``protocol`` does not import ``jobs``
(which imports ``protocol``) at load time.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = ("ConditionResult", "EvaluateConfig", "EvaluationResult", "check_out",
          "conditions_of", "evaluate_policy", "format_table", "rate_row", "resolve_policy",
          "run_episodes", "run_evaluate")
__all__ = list(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module("realgap.jobs.evaluate"), name)
    raise AttributeError(f"module 'realgap.protocol.runner' has no attribute {name!r}")
