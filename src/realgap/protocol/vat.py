"""Old home of Visual Alignment Testing; the job is :mod:`realgap.jobs.vat` (FullGrad:
:mod:`realgap.explain.fullgrad`).

Names are resolved on first use (PEP 562), so ``protocol`` does not import ``jobs``
(which imports ``protocol``) at load time.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = ("SALIENCY_CAPTION", "VATConfig", "VATResult", "fullgrad_maps", "paired_test",
          "play_pairs", "prepare_frames", "run_vat", "saliency_grid", "train_policies",
          "write_vat_run")
__all__ = list(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(importlib.import_module("realgap.jobs.vat"), name)
    raise AttributeError(f"module 'realgap.protocol.vat' has no attribute {name!r}")
