"""Import optional heavy dependencies through one helper that names the extra to install.

``import realgap`` stays fast and light: torch, mujoco, h5py, zarr and friends are imported
inside the functions that need them, via :func:`require`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from realgap.errors import MissingDependencyError

#: Which extra of ``pyproject.toml`` brings each optional top-level module.
EXTRA_OF: dict[str, str] = {
    "mujoco": "sim",
    "gymnasium": "sim",
    "skimage": "sim",
    "h5py": "formats",
    "zarr": "formats",
    "av": "formats",
    "imageio": "formats",
    "torch": "torch",
    "torchvision": "torch",
    "timm": "torch",
    "open_clip": "torch",
    "pytorch_grad_cam": "torch",
    "diffusers": "torch",
    "safetensors": "torch",
    "stable_baselines3": "dynamics",
    "ray": "ray",
}


def require(module: str, extra: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra.

    >>> np = require("numpy")
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = extra or EXTRA_OF.get(top, "all")
        raise MissingDependencyError(
            f"optional dependency {module!r} is not available ({exc}); "
            f"install it with: pip install 'realgap[{extra}]'"
        ) from exc
