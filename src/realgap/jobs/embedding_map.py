"""The gap job's embedding-map step: pick the frames once per run, map them per encoder.

Composition only: frame selection and projections live in
:mod:`realgap.explain.embedding_map`, the database layout in
:mod:`realgap.store.embedding_map`. The same frames (at most ``max_per_domain`` per
domain, spread over episodes) appear on every encoder's map, so the thumbnails are
stored once per run.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from realgap.explain.embedding_map import MAP_METHODS, embedding_maps, select_frames
from realgap.store import ResultsDB
from realgap.store.embedding_map import MapFrame, write_encoder_maps, write_map_frames

#: Frames per domain shown on the maps by default (keeps the report a few MB at most).
DEFAULT_MAX_PER_DOMAIN = 400
#: Thumbnail edge in pixels (JPEG) shown when hovering a point.
THUMB_SIZE = 64


@dataclass(frozen=True)
class MapPlan:
    """Which frames the run's maps show: positional rows of the sim and real views."""

    rows_sim: np.ndarray
    rows_real: np.ndarray
    methods: tuple[str, ...]
    seed: int


def thumbnail_jpeg(img: np.ndarray, size: int = THUMB_SIZE) -> bytes:
    """``uint8 (H, W, 3)`` -> a ``size`` x ``size`` JPEG (quality 85)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).resize((size, size), Image.Resampling.BILINEAR).save(
        buf, format="JPEG", quality=85)
    return buf.getvalue()


def _frames(view: Any, rows: np.ndarray) -> list[MapFrame]:
    man = view.manifest.iloc[rows]
    fac = view.factors().iloc[rows]
    out = []
    for (_, m), (_, f) in zip(man.iterrows(), fac.iterrows(), strict=True):
        factors = {k: v for k, v in f.items() if not (isinstance(v, float) and np.isnan(v))}
        out.append(MapFrame(str(m["frame_id"]), str(m["domain"]), int(m["episode"]),
                            int(m["step"]), factors))
    return out


def plan_maps(sim: Any, real: Any, *, max_per_domain: int = DEFAULT_MAX_PER_DOMAIN,
              methods: tuple[str, ...] = MAP_METHODS, seed: int = 0) -> MapPlan:
    """Choose the frames to map (seeded; the same for every encoder)."""
    return MapPlan(select_frames(sim.episodes(), max_per_domain, rng=seed),
                   select_frames(real.episodes(), max_per_domain, rng=seed + 1),
                   tuple(methods), int(seed))


def write_map_frames_of(db: ResultsDB, run_id: str, plan: MapPlan, sim: Any, real: Any,
                        camera: str) -> None:
    """Store the planned frames' provenance and thumbnails (once per run)."""
    frames = _frames(sim, plan.rows_sim) + _frames(real, plan.rows_real)
    imgs = np.concatenate([sim.images(camera, plan.rows_sim), real.images(camera, plan.rows_real)])
    write_map_frames(db, run_id, frames, [thumbnail_jpeg(im) for im in imgs])


def write_maps_of(db: ResultsDB, run_id: str, plan: MapPlan, encoder: str, emb_sim: np.ndarray,
                  emb_real: np.ndarray, flagged_real: np.ndarray | None) -> None:
    """Project one encoder's embeddings of the planned frames and store its maps.

    ``flagged_real``: ``(n_real,)`` coverage flags of ALL real frames of the view (or None).
    """
    maps = embedding_maps(emb_sim[plan.rows_sim], emb_real[plan.rows_real],
                          methods=plan.methods, rng=plan.seed)
    flags = np.zeros(plan.rows_sim.size + plan.rows_real.size, dtype=bool)
    if flagged_real is not None:
        flags[plan.rows_sim.size:] = np.asarray(flagged_real, dtype=bool)[plan.rows_real]
    write_encoder_maps(db, run_id, encoder,
                       [(m.method, m.note, np.concatenate([m.sim, m.real])) for m in maps], flags)
