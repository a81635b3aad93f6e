"""Import optional heavy dependencies through one helper that names the extra to install.

``import realgap`` stays fast and light: torch, mujoco, h5py, zarr and friends are imported
inside the functions that need them, via :func:`require`.

The one pattern for a heavy module: it imports its dependency (torch, Gymnasium) at its
top and defines its classes at module level (``encoders/_nets.py``,
``explain/fullgrad.py``, ``sim/conditions.py``); nothing imports it at load time. Where a
light module must offer its names, it exports them lazily with PEP 562:
``__getattr__ = lazy_exports(__name__, {"Name": "realgap.pkg.heavy_module"})``. Old
module paths re-export moved names the same way, so a shim never imports across the
package layering at load time.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

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


def lazy_exports(module: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A PEP 562 module ``__getattr__``: ``name`` is imported from ``exports[name]`` (a
    module path) on first use; other names raise :class:`AttributeError` as usual.

    >>> __getattr__ = lazy_exports(__name__, {"run_vat": "realgap.jobs.vat"})
    """
    table = dict(exports)

    def __getattr__(name: str) -> Any:
        target = table.get(name)
        if target is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        return getattr(importlib.import_module(target), name)

    return __getattr__
