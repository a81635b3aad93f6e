"""Old home of the protocol runner; the job is :mod:`realgap.jobs.evaluate`.

Names are resolved on first use (PEP 562), so ``protocol`` does not import ``jobs``
(which imports ``protocol``) at load time.
"""

from __future__ import annotations

from realgap._optional import lazy_exports

_NAMES = ("ConditionResult", "EvaluateConfig", "EvaluationResult", "check_out",
          "conditions_of", "evaluate_policy", "format_table", "rate_row", "resolve_policy",
          "run_episodes", "run_evaluate")
__all__ = list(_NAMES)


__getattr__ = lazy_exports(__name__, {n: "realgap.jobs.evaluate" for n in _NAMES})
