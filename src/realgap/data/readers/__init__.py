"""Readers that turn other robot-learning dataset formats into FrameSet episodes.

Each reader is registered in :data:`READERS` under its format name with a ``detect``
predicate; its factory ``open(src, *, task, cameras) -> SourceReader`` checks the source
up front (columns, shapes, NaNs, truncation) so a bad source fails before anything is
written, then yields one :class:`ReadEpisode` at a time.

Formats (the layouts each accepts are in the module docstrings):

- ``folder``    :mod:`realgap.data.readers.folder`    image files + CSV/Parquet manifest
- ``robomimic`` :mod:`realgap.data.readers.robomimic` robomimic / robosuite HDF5
- ``zarr``      :mod:`realgap.data.readers.zarr_buffer` diffusion-policy replay buffer
- ``lerobot``   :mod:`realgap.data.readers.lerobot`   LeRobot v2.x / v3.0 dataset folder
"""

from __future__ import annotations

from realgap.data.readers._base import (
    READERS,
    ReadEpisode,
    SourceReader,
    VideoFrames,
    detect_format,
)

# Importing the modules registers the readers (their heavy imports stay inside functions).
from realgap.data.readers import folder, lerobot, robomimic, zarr_buffer  # noqa: F401  isort: skip

__all__ = ["READERS", "ReadEpisode", "SourceReader", "VideoFrames", "detect_format"]
