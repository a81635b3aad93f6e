"""Old home of ``rollout()``; the job is :mod:`realgap.jobs.rollout`.

Names are resolved on first use (PEP 562), so ``policy`` does not import ``jobs`` at load
time (``jobs`` imports ``policy``).
"""

from __future__ import annotations

from realgap._optional import lazy_exports

_NAMES = ("RolloutConfig", "RolloutResult", "rollout", "run_rollout")
__all__ = list(_NAMES)


__getattr__ = lazy_exports(__name__, {n: "realgap.jobs.rollout" for n in _NAMES})
