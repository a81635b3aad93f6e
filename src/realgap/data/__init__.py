"""FrameSet: frames with provenance (manifest table + image store), readers, validation.

Public API (docs/interfaces.md)::

    from realgap.data import FrameSet, FrameSetWriter, open_frames, validate, info, convert, upgrade

``import realgap.data`` imports numpy, pandas and pyarrow only; the readers import h5py,
zarr and av inside the functions that need them.
"""

from __future__ import annotations

from realgap.data._format import FORMAT_VERSION, MANIFEST_COLUMNS
from realgap.data.checks import info, validate
from realgap.data.conversion import convert, upgrade
from realgap.data.frameset import FrameSet, flatten_factors, open_frames
from realgap.data.writer import FrameSetWriter

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_COLUMNS",
    "FrameSet",
    "FrameSetWriter",
    "convert",
    "flatten_factors",
    "info",
    "open_frames",
    "upgrade",
    "validate",
]
