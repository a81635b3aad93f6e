"""realgap._torch_compat: torchvision imports and NMS works with or without its compiled ops."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")

from realgap._torch_compat import ensure_torchvision, nms_reference


def test_ensure_torchvision_imports_and_nms_keeps_hand_worked_indices() -> None:
    tv = ensure_torchvision()
    boxes = torch.tensor(
        [[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10]], dtype=torch.float32
    )
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    # Box 3 (0.95) is kept; box 0 is identical (IoU 1) and box 1 overlaps it with
    # IoU 81/119 = 0.68 > 0.5, so both go; box 2 is disjoint and stays.
    assert tv.ops.nms(boxes, scores, 0.5).tolist() == [3, 2]
    # At threshold 0.7 box 1 (IoU 0.68) survives; box 0 (IoU 1) still does not.
    assert tv.ops.nms(boxes, scores, 0.7).tolist() == [3, 1, 2]
    # batched_nms: classes {0, 1} = boxes {0, 1} and {2, 3}; 0.9 beats 0.8 in class 0.
    keep = tv.ops.batched_nms(boxes, scores, torch.tensor([0, 0, 1, 1]), 0.5)
    assert keep.tolist() == [3, 0, 2]


def test_ensure_torchvision_is_idempotent() -> None:
    assert ensure_torchvision() is ensure_torchvision()


def test_nms_reference_threshold_is_strict() -> None:
    boxes = torch.tensor([[0.0, 0.0, 2.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    scores = torch.tensor([0.6, 0.5])
    # intersection 1, union 2: IoU exactly 0.5, which is not > 0.5.
    assert nms_reference(boxes, scores, 0.5).tolist() == [0, 1]
    assert nms_reference(boxes, scores, 0.49).tolist() == [0]
    assert nms_reference(torch.zeros((0, 4)), torch.zeros(0), 0.5).tolist() == []


def test_fresh_interpreter_imports_timm_open_clip_and_grad_cam() -> None:
    code = textwrap.dedent(
        """
        import sys
        import realgap._torch_compat as tc
        assert "torch" not in sys.modules, "importing realgap._torch_compat must stay light"
        tv = tc.ensure_torchvision()
        import torch, timm, open_clip, pytorch_grad_cam
        b = torch.tensor([[0., 0., 4., 4.], [0., 0., 4., 3.], [10., 10., 12., 12.]])
        print(tv.ops.nms(b, torch.tensor([0.3, 0.9, 0.5]), 0.5).tolist(), tc.uses_fallback())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    # box 1 (0.9) kept; box 0 overlaps it with IoU 12/16 = 0.75 -> dropped; box 2 disjoint.
    assert out.stdout.split("]")[0] + "]" == "[1, 2]"
