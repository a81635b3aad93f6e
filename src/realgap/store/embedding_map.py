"""Database layout of the embedding maps of a gap run: written by the gap job, read by the report.

Two kinds of artifact (JSON, ``mime = application/json``) in the ``artifacts`` table:

- ``embedding_map_frames`` (subject ``""``, one per run): the frames shown on every map of
  the run, in one order: ``{"frames": [{"frame_id", "domain", "episode", "step",
  "factors"}, ...], "thumbs": [base64 JPEG, ...]}``. Every encoder's map shows the same
  frames, so a thumbnail is stored once per run, not once per encoder.
- ``embedding_map`` (subject = encoder, one per encoder): ``{"maps": [{"method", "note",
  "xy": [[x, y], ...]}], "flagged": [bool, ...]}``, ``xy`` and ``flagged`` aligned with the
  run's frame list (``flagged``: the real frame is outside sim support for this encoder;
  always false for sim frames).

Validated when read: a tampered or foreign artifact is a one-line ``DataError``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from realgap.errors import DataError
from realgap.store.db import ResultsDB

FRAMES_ARTIFACT = "embedding_map_frames"
MAP_ARTIFACT = "embedding_map"
MIME = "application/json"


@dataclass(frozen=True)
class MapFrame:
    """One frame shown on the maps."""

    frame_id: str
    domain: str
    episode: int
    step: int
    factors: Mapping[str, Any]


@dataclass(frozen=True)
class EncoderMaps:
    """One encoder's maps: ``maps`` is a list of ``(method, note, xy (n_frames, 2))``."""

    encoder: str
    maps: list[tuple[str, str, np.ndarray]]
    flagged: np.ndarray


@dataclass(frozen=True)
class RunMaps:
    """All maps of one run: the shared frame list, its thumbnails and every encoder's maps."""

    frames: list[MapFrame]
    thumbs: list[str]
    encoders: list[EncoderMaps]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def write_map_frames(db: ResultsDB, run_id: str, frames: Sequence[MapFrame],
                     thumbs_jpeg: Sequence[bytes]) -> None:
    """Store the run's map frames and one JPEG thumbnail per frame (same order)."""
    if len(frames) != len(thumbs_jpeg):
        raise DataError(f"embedding map: {len(frames)} frames but {len(thumbs_jpeg)} thumbnails")
    payload = {
        "frames": [{"frame_id": f.frame_id, "domain": f.domain, "episode": int(f.episode),
                    "step": int(f.step), "factors": _jsonable(dict(f.factors))} for f in frames],
        "thumbs": [base64.b64encode(t).decode("ascii") for t in thumbs_jpeg],
    }
    db.add_artifact(run_id, FRAMES_ARTIFACT, json.dumps(payload).encode("utf-8"), mime=MIME)


def write_encoder_maps(db: ResultsDB, run_id: str, encoder: str,
                       maps: Sequence[tuple[str, str, np.ndarray]], flagged: Any) -> None:
    """Store one encoder's maps (``(method, note, xy)`` with ``xy`` aligned to the frames)."""
    flags = np.asarray(flagged, dtype=bool).ravel()
    payload = {
        "maps": [{"method": m, "note": note,
                  "xy": np.round(np.asarray(xy, dtype=np.float64), 4).tolist()}
                 for m, note, xy in maps],
        "flagged": flags.tolist(),
    }
    db.add_artifact(run_id, MAP_ARTIFACT, json.dumps(payload).encode("utf-8"), mime=MIME,
                    subject=encoder)


def _load(blob: Any, what: str, db: ResultsDB) -> dict[str, Any]:
    try:
        obj = json.loads(bytes(blob).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError) as exc:
        raise DataError(f"{db.path}: the {what} artifact is not valid JSON ({exc}); "
                        "rerun `realgap gap` into a new --out") from None
    if not isinstance(obj, dict):
        raise DataError(f"{db.path}: the {what} artifact is not a JSON object; "
                        "rerun `realgap gap` into a new --out")
    return obj


def read_run_maps(db: ResultsDB, run_id: str) -> RunMaps | None:
    """The run's maps, or None when the run has none (older runs, maps switched off)."""
    arts = db.artifacts(run_id)
    if arts.empty:
        return None
    fr = arts[arts["name"] == FRAMES_ARTIFACT]
    if fr.empty:
        return None
    head = _load(fr.iloc[0]["data"], FRAMES_ARTIFACT, db)
    try:
        frames = [MapFrame(str(f["frame_id"]), str(f["domain"]), int(f["episode"]),
                           int(f["step"]), dict(f.get("factors") or {}))
                  for f in head["frames"]]
        thumbs = [str(t) for t in head["thumbs"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{db.path}: the {FRAMES_ARTIFACT} artifact lacks a field ({exc}); "
                        "rerun `realgap gap` into a new --out") from None
    if len(thumbs) != len(frames):
        raise DataError(f"{db.path}: {len(frames)} map frames but {len(thumbs)} thumbnails")
    encoders = []
    for _, row in arts[arts["name"] == MAP_ARTIFACT].iterrows():
        obj = _load(row["data"], MAP_ARTIFACT, db)
        try:
            maps = [(str(m["method"]), str(m["note"]), np.asarray(m["xy"], dtype=np.float64))
                    for m in obj["maps"]]
            flagged = np.asarray(obj["flagged"], dtype=bool)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{db.path}: an {MAP_ARTIFACT} artifact of {row['subject']!r} is "
                            f"malformed ({exc}); rerun `realgap gap` into a new --out") from None
        if any(xy.shape != (len(frames), 2) for _, _, xy in maps) or flagged.shape != (len(frames),):
            raise DataError(f"{db.path}: the {MAP_ARTIFACT} of {row['subject']!r} does not match "
                            f"the run's {len(frames)} map frames")
        encoders.append(EncoderMaps(str(row["subject"]), maps, flagged))
    return RunMaps(frames, thumbs, encoders)
