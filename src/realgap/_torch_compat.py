"""Make torchvision importable when its compiled operators do not load.

The torchvision wheel installed beside the CPU build of torch here is a CUDA build whose
``_C.so`` fails to load (``OSError: Could not load this library``). torchvision then
skips its compiled operators, but ``torchvision/_meta_registrations.py`` still calls
``torch.library.register_fake("torchvision::nms")`` (and ``qnms``) unconditionally, so
``import torchvision`` dies with ``RuntimeError: operator torchvision::nms does not
exist`` -- and timm, open_clip and pytorch-grad-cam with it.

:func:`ensure_torchvision` fixes exactly that, and only when needed:

1. If ``torchvision::nms`` is already registered (torchvision's own ops loaded, or this
   function ran before), it does nothing but import torchvision.
2. Otherwise it tries to load torchvision's compiled library itself; if that works it
   does nothing more.
3. Only when the compiled library fails to load does it define the two operators the
   import touches, ``torchvision::nms`` and ``torchvision::qnms``, with pure-PyTorch
   CPU kernels (the greedy algorithm of ``torchvision/csrc/ops/cpu/nms_kernel.cpp``:
   boxes sorted by descending score, a box is dropped when its IoU with a kept box is
   strictly greater than the threshold), and lets :func:`torchvision.ops.nms` call it.

Every other compiled operator (``roi_align``'s own fallback aside, which torchvision
already routes to its Python ``_roi_align`` when ops are missing) stays absent and fails
with torchvision's own "Couldn't load custom C++ ops" message: realgap needs only the
import and NMS-free model code.

Every realgap module that imports torchvision, timm, open_clip or pytorch_grad_cam
calls :func:`ensure_torchvision` first. It is idempotent and cheap after the first call.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from types import ModuleType
from typing import Any

from realgap._optional import require

_LOCK = threading.Lock()
_STATE: dict[str, Any] = {"done": False, "fallback": False, "lib": None}


def _op_exists(torch: ModuleType, name: str) -> bool:
    try:
        getattr(torch.ops.torchvision, name)
    except (AttributeError, RuntimeError):
        return False
    return True


def _compiled_ops_load(torch: ModuleType) -> bool:
    """Try to load torchvision's ``_C`` library the way ``torchvision.extension`` does."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    folder = next(iter(spec.submodule_search_locations))
    for fname in os.listdir(folder):
        if fname.startswith("_C.") and fname.endswith((".so", ".pyd", ".dylib")):
            try:
                torch.ops.load_library(os.path.join(folder, fname))
            except (OSError, RuntimeError, ImportError):
                return False
            return _op_exists(torch, "nms")
    return False


def nms_reference(boxes: Any, scores: Any, iou_threshold: float) -> Any:
    """Greedy non-maximum suppression in pure PyTorch.

    Args:
        boxes: float tensor (N, 4) in ``(x1, y1, x2, y2)`` pixel coordinates.
        scores: float tensor (N,).
        iou_threshold: a box is discarded when its IoU with an already kept box is
            strictly greater than this value.

    Returns:
        int64 tensor (K,) of kept indices into ``boxes``, by decreasing score.
    """
    torch = require("torch")
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.long, device=boxes.device)
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    order = torch.sort(scores, descending=True, stable=True).indices
    suppressed = torch.zeros(boxes.shape[0], dtype=torch.bool, device=boxes.device)
    keep: list[int] = []
    order_list = order.tolist()
    for pos, i in enumerate(order_list):
        if suppressed[i]:
            continue
        keep.append(i)
        rest = order[pos + 1 :]
        if rest.numel() == 0:
            break
        xx1 = torch.maximum(x1[i], x1[rest])
        yy1 = torch.maximum(y1[i], y1[rest])
        xx2 = torch.minimum(x2[i], x2[rest])
        yy2 = torch.minimum(y2[i], y2[rest])
        inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
        iou = inter / (areas[i] + areas[rest] - inter)
        suppressed[rest[iou > iou_threshold]] = True
    return torch.tensor(keep, dtype=torch.long, device=boxes.device)


def _register_fallbacks(torch: ModuleType) -> Any:
    lib = torch.library.Library("torchvision", "FRAGMENT")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")

    def _nms(dets: Any, scores: Any, iou_threshold: float) -> Any:
        return nms_reference(dets, scores, iou_threshold)

    def _qnms(dets: Any, scores: Any, iou_threshold: float) -> Any:
        # torchvision passes the int representation of quantized boxes/scores.
        return nms_reference(dets.float(), scores.float(), iou_threshold)

    lib.impl("nms", _nms, "CompositeExplicitAutograd")
    lib.impl("qnms", _qnms, "CompositeExplicitAutograd")
    return lib


def ensure_torchvision() -> ModuleType:
    """Import and return torchvision, registering pure-PyTorch fallbacks only if needed.

    Raises:
        realgap.errors.MissingDependencyError: torch or torchvision is not installed.
    """
    torch = require("torch")
    with _LOCK:
        if not _STATE["done"]:
            if importlib.util.find_spec("torchvision") is None:
                require("torchvision")  # raises MissingDependencyError naming the extra
            if not _op_exists(torch, "nms") and not _compiled_ops_load(torch):
                _STATE["lib"] = _register_fallbacks(torch)
                _STATE["fallback"] = True
            tv = require("torchvision")
            if _STATE["fallback"]:
                # boxes.nms asks extension._has_ops() (False: _C did not load) before
                # calling the operator; our operator exists, so let nms through only.
                import torchvision.ops.boxes as _boxes

                _boxes._assert_has_ops = lambda: None
            _STATE["done"] = True
            return tv
    return require("torchvision")


def uses_fallback() -> bool:
    """True when :func:`ensure_torchvision` had to register the pure-PyTorch operators."""
    return bool(_STATE["fallback"])
