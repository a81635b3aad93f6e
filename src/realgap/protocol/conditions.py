"""Old home of the condition wrapper; kept so old imports work.

The protocol-factor schema is :mod:`realgap.protocol.factors`; the wrapper that applies
it to an environment is :class:`realgap.sim.conditions.ConditionedEnv`. The wrapper is
resolved on first use (PEP 562) so that ``protocol`` never imports ``sim`` at load time
(``sim`` depends on ``protocol.factors``, not the other way round).
"""

from __future__ import annotations

from realgap._optional import lazy_exports
from realgap.protocol.factors import LT_PRESETS, NOMINAL, check_settings

_MOVED = ("ConditionedEnv", "OBJ_PALETTE")
__all__ = ["LT_PRESETS", "NOMINAL", "check_settings"]  # and the moved names, on first use


__getattr__ = lazy_exports(__name__, {n: "realgap.sim.conditions" for n in _MOVED})
