"""Shared test setup: headless rendering, small thread counts, tmp output dirs."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One intra-op torch thread for a module (opt in with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``): on a shared 2-core
    machine two threads spin against each other (measured 30x slower per small step under
    load); results do not depend on it."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
