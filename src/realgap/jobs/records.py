"""How a ``gap`` run is laid out in the results database (written by the job, read by the report).

One place fixes the names, so :mod:`realgap.jobs.gap` (the writer) and the report sections
``gap``, ``coverage`` and ``saliency`` (the readers) cannot drift apart.

A ``gap`` run holds (see :mod:`realgap.store.db` for the tables):

- ``subjects``: one row per encoder, ``kind="encoder"``, ``meta`` = :func:`encoder_meta`
  (family, embed_dim, params_m, training, pretrain_data, weights_origin, camera, ...).
- ``scores``: per encoder, every metric of :data:`GAP_METRICS` with ``group=""`` and its
  interval ``[lo, hi]`` and sample size ``n``; the coverage breakdown by factor as metric
  ``outside_fraction`` with ``group="<factor>=<level>"`` (``n`` = real frames at that
  level, ``extra={"k": frames outside sim support}``); the headline ``outside_fraction``
  carries ``extra={"k": ..., "n_frames": ...}`` (its ``n`` counts episodes, the bootstrap unit).
- ``artifacts``: ``saliency`` (one grid PNG per encoder, ``meta`` with ``caption``,
  ``method``, ``target``, ``pair_ids``); ``worst-covered`` (one PNG per worst-covered real
  frame: the real frame beside its nearest sim frame, ``meta`` with ``rank``, ``frame_id``,
  ``nearest_sim_frame_id``, ``score``).
- encoders without gradient saliency (``pixels``) carry ``meta["saliency"]`` in their
  subject row saying why, instead of a faked picture.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from realgap.store import ResultsDB

RUN_KIND = "gap"

#: Metrics of ``gap_suite`` that every encoder gets, in table order.
GAP_METRICS: tuple[str, ...] = (
    "combined",
    "dis",
    "centroid_distance",
    "as_sim",
    "as_real",
    "as_transfer",
    "mmd",
    "fd",
    "c2st_acc",
    "coverage",
    "outside_fraction",
)

#: Further metrics of ``gap_suite`` stored with every run (Naeem et al. 2020 density and
#: coverage of the sim manifold), not shown in the main table.
EXTRA_METRICS: tuple[str, ...] = ("density", "naeem_coverage")

#: What each metric means, for table captions and ``--help``; higher is better unless noted.
METRIC_HELP: dict[str, str] = {
    "combined": "harmonic mean of DIS and transfer AS (DESIGN.md)",
    "dis": "Domain Invariance Score, 1 - d/sqrt(k) (ref. III-C); higher = more invariant",
    "centroid_distance": "d = ||c_sim - c_real|| in the min-max PCA space (ref. III-C); lower is better",
    "as_sim": "Action Score, probe fit and scored on sim episodes (ref. III-D)",
    "as_real": "Action Score, probe fit and scored on real episodes (ref. III-D)",
    "as_transfer": "AS(sim -> real): probe fit on sim, scored on real frames",
    "mmd": "RBF-kernel MMD^2 between sim and real; lower is better",
    "fd": "Frechet distance between Gaussian fits; lower is better",
    "c2st_acc": "classifier two-sample test accuracy (0.5 = indistinguishable); lower is better",
    "coverage": "fraction of real frames inside sim support (1 - outside_fraction); higher is better",
    "outside_fraction": "fraction of real frames outside sim support (glossary); lower is better",
}

SALIENCY_ARTIFACT = "saliency"
WORST_ARTIFACT = "worst-covered"
RANDOM_INIT = "random-init"

#: Inline badge shown next to a random-init encoder's name in every report table.
BADGE = (" <span class='badge-random' style='background:#fde2e1;color:#9b1c1c;border-radius:3px;"
         "padding:0 4px;font-size:11px;white-space:nowrap'>random-init</span>")


def encoder_meta(info: dict[str, Any], weights_origin: str, **more: Any) -> dict[str, Any]:
    """The subject meta of an encoder: its registry info, weights origin and run specifics."""
    meta = {str(k): v for k, v in dict(info).items()}
    meta["weights_origin"] = weights_origin
    meta.update(more)
    return meta


def is_random_init(meta: dict[str, Any]) -> bool:
    """True when the encoder's weights are random initialisation (labelled in every view)."""
    return str(meta.get("weights_origin", "")).startswith(RANDOM_INIT)


def latest_gap_run(db: ResultsDB) -> str | None:
    """The newest finished ``gap`` run, or None."""
    return db.latest_run(RUN_KIND)


def load_encoders(db: ResultsDB, run_id: str) -> dict[str, dict[str, Any]]:
    """Encoder name -> subject meta for one run, in the order they were recorded."""
    subs = db.subjects(run_id)
    out: dict[str, dict[str, Any]] = {}
    for r in subs.itertuples():
        if r.kind != "encoder":
            continue
        try:
            out[str(r.subject)] = json.loads(r.meta or "{}")
        except json.JSONDecodeError:
            out[str(r.subject)] = {}
    return out


def load_scores(db: ResultsDB, run_id: str) -> pd.DataFrame:
    """Headline scores (``group == ""``) of one run: columns subject, metric, value, lo, hi, n."""
    s = db.scores(run_id)
    s = s[(s["grp"].fillna("") == "") & s["metric"].isin(GAP_METRICS + EXTRA_METRICS)]
    return s[["subject", "metric", "value", "lo", "hi", "n"]].reset_index(drop=True)


def estimate_dict(scores: pd.DataFrame, subject: str) -> dict[str, dict[str, float | int | None]]:
    """``{metric: {value, lo, hi, n}}`` for one encoder (what ``realgap gap --json`` prints)."""
    out: dict[str, dict[str, float | int | None]] = {}
    for r in scores[scores["subject"] == subject].itertuples():
        out[str(r.metric)] = {
            "value": _num(r.value),
            "lo": _num(r.lo),
            "hi": _num(r.hi),
            "n": None if pd.isna(r.n) else int(r.n),
        }
    return out


def _num(x: Any) -> float | None:
    if x is None or pd.isna(x):
        return None
    return float(x)
