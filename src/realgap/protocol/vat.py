"""Old home of Visual Alignment Testing; the job is :mod:`realgap.jobs.vat` (FullGrad:
:mod:`realgap.explain.fullgrad`).

Names are resolved on first use (PEP 562), so ``protocol`` does not import ``jobs``
(which imports ``protocol``) at load time.
"""

from __future__ import annotations

from realgap._optional import lazy_exports

_NAMES = ("SALIENCY_CAPTION", "VATConfig", "VATResult", "fullgrad_maps", "paired_test",
          "play_pairs", "prepare_frames", "run_vat", "saliency_grid", "train_policies",
          "write_vat_run")
__all__ = list(_NAMES)


__getattr__ = lazy_exports(__name__, {n: "realgap.jobs.vat" for n in _NAMES})
