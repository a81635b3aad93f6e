"""Camera names mapped between two FrameSets: ``realgap gap --real-camera``.

A real LeRobot set names its cameras ``top``/``front``, realgap's sim renders
``head``/``wrist``. :func:`map_real_camera` shows the real view's camera ``top`` under the
sim's name, so everything downstream (embedding, cache, saliency, report) reads one camera
name for both domains, without copying or rewriting the real set. (``data convert --camera
top=head`` renames once and for all when the set is converted; this is the same mapping at
run time for a set already converted.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from realgap.errors import DataError


class RenamedCamera:
    """A FrameSet (or view) whose camera ``stored`` is seen as ``shown``; all else delegated.

    Only the camera-taking methods (``cameras``, ``images``, ``iter_images``, ``verify``,
    ``image_shape``) translate the name; ``select`` keeps the renaming on the new view.
    The embedding cache keys on (content hash, camera): :func:`map_real_camera` refuses a
    ``shown`` name the set already stores, so a key never means two cameras' frames.
    """

    def __init__(self, fs: Any, shown: str, stored: str) -> None:
        self._fs, self._shown, self._stored = fs, shown, stored

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_fs", "_shown", "_stored"):  # unpickling
            raise AttributeError(name)
        return getattr(self._fs, name)

    def __len__(self) -> int:
        return len(self._fs)

    def __repr__(self) -> str:
        return f"RenamedCamera({self._fs!r}, {self._stored!r} as {self._shown!r})"

    def _c(self, camera: str) -> str:
        return self._stored if camera == self._shown else camera

    @property
    def cameras(self) -> list[str]:
        return sorted(self._shown if c == self._stored else c for c in self._fs.cameras)

    def image_shape(self, camera: str) -> tuple[int, int, int]:
        return self._fs.image_shape(self._c(camera))  # type: ignore[no-any-return]

    def images(self, camera: str, index: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        return self._fs.images(self._c(camera), index)  # type: ignore[no-any-return]

    def iter_images(self, camera: str, batch_size: int = 64) -> Any:
        return self._fs.iter_images(self._c(camera), batch_size)

    def verify(self, camera: str | None = None) -> None:
        self._fs.verify(None if camera is None else self._c(camera))

    def select(self, *args: Any, **kwargs: Any) -> RenamedCamera:
        return RenamedCamera(self._fs.select(*args, **kwargs), self._shown, self._stored)


def map_real_camera(sim: Any, real: Any, camera: str | None, real_camera: str | None) -> Any:
    """``real`` with its camera ``real_camera`` shown as the sim camera (``camera``, else
    ``head`` when sim has it, else sim's first camera); ``real`` itself when
    ``real_camera`` is None.

    Raises:
        DataError: ``real_camera`` not in the real set, the sim camera not in the sim set,
            or the real set already has a camera of the sim camera's name (ambiguous).
    """
    if real_camera is None:
        return real
    if real_camera not in real.cameras:
        raise DataError(f"--real-camera {real_camera!r}: not in the real frames (cameras: "
                        f"{', '.join(real.cameras) or 'none'}); pick one of those")
    shown = camera if camera is not None else ("head" if "head" in sim.cameras
                                               else (sim.cameras or [""])[0])
    if shown not in sim.cameras:
        raise DataError(f"--camera {shown!r}: not in the sim frames (cameras: "
                        f"{', '.join(sim.cameras) or 'none'}); pick one of those")
    if shown == real_camera:
        return real
    if shown in real.cameras:
        raise DataError(f"--real-camera {real_camera!r}: the real frames already have a camera "
                        f"{shown!r}; drop --real-camera to use it, or pass --camera with another "
                        "sim camera")
    return RenamedCamera(real, shown=shown, stored=real_camera)
