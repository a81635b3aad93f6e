"""How a ``gap`` run is laid out in the results database (written by the job, read by the report).

One place fixes the names, so :mod:`realgap.jobs.gap` (the writer) and the report sections
``verdict``, ``gap``, ``coverage``, ``saliency`` and ``embedding_map`` (the readers) cannot
drift apart. The embedding maps of a gap run are laid out in :mod:`realgap.store.embedding_map`.
(This module was ``realgap.jobs.records``; that name still re-exports it.)

A ``gap`` run holds (see :mod:`realgap.store.db` for the tables):

- ``subjects``: one row per encoder, ``kind="encoder"``, ``meta`` = :func:`encoder_meta`
  (family, embed_dim, params_m, training, pretrain_data, weights_origin, camera, ...).
- ``scores``: per encoder, every metric of :data:`GAP_METRICS` and :data:`EXTRA_METRICS`
  with ``group=""``, its interval ``[lo, hi]`` and sample size ``n`` (episodes); ``extra``
  holds :data:`ESTIMATE_EXTRA` (``n_frames``, ``n_boot``, interval ``method``, ``bias``)
  and, for the scores of :data:`NULL_FIELDS`' nulls, ``p_value``, ``null_mean``,
  ``null_sd``, ``effect``, ``n_perm``, ``alternative``. The ranking with ties as metric
  ``rank`` (``value`` = rank, ``extra={"score": "combined", "tied_with": [...]}``); the
  coverage breakdown by factor as metric
  ``outside_fraction`` with ``group="<factor>=<level>"`` (``n`` = real frames at that
  level, ``extra={"k": frames outside sim support}``); the headline ``outside_fraction``
  carries ``extra={"k": ..., "n_frames": ...}`` (its ``n`` counts episodes, the bootstrap unit).
- subject ``meta`` also holds ``space`` (the spaces each score was computed in: components,
  retained variance) and ``warnings`` (defaults cut by the sample size, ...).
- ``artifacts``: ``flagged-frames`` (JSON, one per encoder: every real frame coverage flags,
  with ``episode``, ``step``, ``frame_id``, ``knn_distance``, ``p_value``); ``saliency`` (one grid PNG per encoder, ``meta`` with ``caption``,
  ``method``, ``target``, ``pair_ids``); ``worst-covered`` (one PNG per worst-covered real
  frame: the real frame beside its nearest sim frame, ``meta`` with ``rank``, ``frame_id``,
  ``episode``, ``step``, ``nearest_sim_frame_id``, ``knn_distance``, ``p_value``,
  ``flagged``; one frame per episode).
- encoders without gradient saliency (``pixels``) carry ``meta["saliency"]`` in their
  subject row saying why, instead of a faked picture.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from realgap.store.db import ResultsDB

RUN_KIND = "gap"
#: ``subjects.kind`` of an encoder row.
ENCODER_SUBJECT = "encoder"
#: The metric of the coverage breakdown (headline row and one row per factor level).
OUTSIDE_METRIC = "outside_fraction"

#: Metrics of ``gap_suite`` that every encoder gets, in table order.
GAP_METRICS: tuple[str, ...] = (
    "combined",
    "dis_cal",
    "dis",
    "dis_paper",
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

#: Further metrics of ``gap_suite`` stored with every run: the AS floors (actions shuffled
#: between episodes) and ceilings (probe on the recorded state), Naeem et al. 2020 density
#: and coverage of the sim manifold.
EXTRA_METRICS: tuple[str, ...] = ("as_sim_floor", "as_real_floor", "as_sim_ceiling",
                                  "as_real_ceiling", "density", "naeem_coverage")
#: Keys of a score row's ``extra`` that describe its estimate.
ESTIMATE_EXTRA: tuple[str, ...] = ("n_frames", "n_boot", "method", "bias")
#: Keys of a score row's ``extra`` that describe its permutation null.
NULL_FIELDS: tuple[str, ...] = ("p_value", "null_mean", "null_sd", "effect", "n_perm",
                                "alternative")
#: The metric row that holds an encoder's rank, and the score ranked.
RANK_ROW = "rank"
RANKED_BY = "combined"

#: What each metric means, for table captions and ``--help``; higher is better unless noted.
METRIC_HELP: dict[str, str] = {
    "combined": "harmonic mean of calibrated DIS and transfer AS; the ranking score (DESIGN.md)",
    "dis_cal": "calibrated DIS: 1 - sqrt(max(d^2 - null mean of d^2, 0))/sqrt(k) in the run's "
               "common space; 1 = no gap beyond what relabelling episodes gives",
    "dis": "DIS 1 - d/sqrt(k) in the run's common space (same k for every encoder)",
    "dis_paper": "the reference's DIS (ref. III-C): PCA to min(384, N-1, D) per encoder; shown, "
                 "not ranked (its k differs between encoders)",
    "centroid_distance": "d = ||c_sim - c_real|| in the common min-max PCA space; lower is better",
    "as_sim": "Action Score cross-fitted over sim episodes (ref. III-D); beside it its floor",
    "as_real": "Action Score cross-fitted over real episodes (ref. III-D)",
    "as_transfer": "AS(sim -> real): probe fit on all sim episodes, scored on every real episode",
    "mmd": "unbiased RBF-kernel MMD^2 between sim and real; lower is better",
    "fd": "Frechet distance between Gaussian fits; lower is better",
    "c2st_acc": "balanced accuracy of a nested-CV domain classifier (0.5 = indistinguishable)",
    "coverage": "fraction of real frames not flagged outside sim support; higher is better",
    "outside_fraction": "fraction of real frames flagged outside sim support (conformal p < alpha)",
    "as_sim_floor": "AS(sim) with actions shuffled between episodes: what no information scores",
    "as_real_floor": "AS(real) with actions shuffled between episodes",
    "as_sim_ceiling": "AS(sim) of the probe on the recorded state",
    "as_real_ceiling": "AS(real) of the probe on the recorded state",
}
FLAGGED_ARTIFACT = "flagged-frames"

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
        if r.kind != ENCODER_SUBJECT:
            continue
        try:
            out[str(r.subject)] = json.loads(r.meta or "{}")
        except json.JSONDecodeError:
            out[str(r.subject)] = {}
    return out


def load_scores(db: ResultsDB, run_id: str) -> pd.DataFrame:
    """Headline scores (``group == ""``) of one run: columns subject, metric, value, lo, hi,
    n, extra (JSON text)."""
    s = db.scores(run_id)
    s = s[(s["grp"].fillna("") == "") & s["metric"].isin(GAP_METRICS + EXTRA_METRICS)]
    return s[["subject", "metric", "value", "lo", "hi", "n", "extra"]].reset_index(drop=True)


def _extra(text: Any) -> dict[str, Any]:
    try:
        d = json.loads(text or "{}")
    except (TypeError, json.JSONDecodeError):
        return {}
    return d if isinstance(d, dict) else {}


def estimate_dict(scores: pd.DataFrame, subject: str) -> dict[str, dict[str, Any]]:
    """``{metric: {value, lo, hi, n, bias, method, n_frames, n_boot[, p_value, null_mean,
    null_sd, effect, n_perm, alternative]}}`` for one encoder (what ``--json`` prints)."""
    out: dict[str, dict[str, Any]] = {}
    for r in scores[scores["subject"] == subject].itertuples():
        ex = _extra(getattr(r, "extra", None))
        d: dict[str, Any] = {
            "value": _num(r.value),
            "lo": _num(r.lo),
            "hi": _num(r.hi),
            "n": None if pd.isna(r.n) else int(r.n),
        }
        d.update({k: ex[k] for k in ESTIMATE_EXTRA + NULL_FIELDS if k in ex})
        out[str(r.metric)] = d
    return out


def load_ranking(db: ResultsDB, run_id: str) -> list[dict[str, Any]]:
    """The run's ranking with ties, best first: ``{encoder, rank, value, tied_with, score}``."""
    s = db.scores(run_id)
    s = s[(s["metric"] == RANK_ROW) & (s["grp"].fillna("") == "")]
    rows = []
    for r in s.itertuples():
        ex = _extra(r.extra)
        rows.append({"encoder": str(r.subject), "rank": int(r.value),
                     "value": ex.get("value"), "tied_with": list(ex.get("tied_with", [])),
                     "score": ex.get("score", RANKED_BY)})
    rows.sort(key=lambda d: (d["rank"], -(d["value"] if d["value"] is not None else -1e300)))
    return rows


def load_flagged(db: ResultsDB, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """Encoder -> the real frames coverage flagged (``episode, step, frame_id,
    knn_distance, p_value``), in the order recorded (lowest p-value first)."""
    arts = db.artifacts(run_id)
    arts = arts[arts["name"] == FLAGGED_ARTIFACT]
    out: dict[str, list[dict[str, Any]]] = {}
    for a in arts.itertuples():
        try:
            rows = json.loads(bytes(a.data).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            rows = []
        out[str(a.subject)] = rows if isinstance(rows, list) else []
    return out


def _num(x: Any) -> float | None:
    if x is None or pd.isna(x):
        return None
    return float(x)


# -- writing the pieces of a gap run (the job records them encoder by encoder) ---------------
def write_encoder(db: ResultsDB, run_id: str, encoder: str, meta: dict[str, Any]) -> None:
    """The encoder's subject row (``meta`` from :func:`encoder_meta`, plus ``space``,
    ``warnings`` and, without gradient saliency, ``saliency`` saying why)."""
    db.add_subject(run_id, encoder, ENCODER_SUBJECT, meta)


def write_flagged(db: ResultsDB, run_id: str, encoder: str, rows: list[dict[str, Any]], *,
                  n_real: int, alpha: float) -> None:
    """Every real frame coverage flags for ``encoder`` (``episode, step, frame_id,
    knn_distance, p_value``), lowest p-value first; read back by :func:`load_flagged`."""
    db.add_artifact(run_id, FLAGGED_ARTIFACT, json.dumps(rows).encode("utf-8"),
                    mime="application/json", subject=encoder,
                    meta={"n_flagged": len(rows), "n_real": int(n_real), "alpha": float(alpha)})


def write_saliency(db: ResultsDB, run_id: str, encoder: str, png: bytes, *, caption: str,
                   method: str, layer: Any, pair_ids: list[Any],
                   target: str = "action probe") -> None:
    """The encoder's saliency grid (PNG) with its caption, method, layer, pairs and target."""
    db.add_artifact(run_id, SALIENCY_ARTIFACT, png, subject=encoder,
                    meta={"caption": caption, "method": method, "layer": layer,
                          "pair_ids": list(pair_ids), "target": target})


def write_worst(db: ResultsDB, run_id: str, encoder: str, png: bytes, meta: dict[str, Any]) -> None:
    """One worst-covered real frame beside its nearest sim frame (``meta``: ``rank``,
    ``frame_id``, ``episode``, ``step``, ``nearest_sim_frame_id``, ``knn_distance``,
    ``p_value``, ``flagged``)."""
    db.add_artifact(run_id, WORST_ARTIFACT, png, subject=encoder, meta=meta)


@dataclass(frozen=True)
class GapRun:
    """Everything the report reads of one ``gap`` run.

    ``encoders``: name -> subject meta, in recorded order; ``scores``: headline score rows
    (:func:`load_scores`); ``ranking``: :func:`load_ranking`; ``flagged``: :func:`load_flagged`;
    ``coverage``: the ``outside_fraction`` rows with their group (``""`` = headline,
    ``"<factor>=<level>"`` = breakdown), columns subject, grp, value, lo, hi, n, extra;
    ``artifacts``: name, subject, mime, data, meta (JSON text) of every artifact.
    """

    run_id: str
    encoders: dict[str, dict[str, Any]]
    scores: pd.DataFrame
    ranking: list[dict[str, Any]]
    flagged: dict[str, list[dict[str, Any]]]
    coverage: pd.DataFrame
    artifacts: pd.DataFrame

    def estimates(self, subject: str) -> dict[str, dict[str, Any]]:
        """:func:`estimate_dict` of one encoder."""
        return estimate_dict(self.scores, subject)


def read_gap(db: ResultsDB, run_id: str) -> GapRun:
    """Read one ``gap`` run (the report's only way in)."""
    s = db.scores(run_id)
    cov = s[s["metric"] == OUTSIDE_METRIC].copy()
    cov["grp"] = cov["grp"].fillna("")
    arts = db.artifacts(run_id)
    return GapRun(run_id, load_encoders(db, run_id), load_scores(db, run_id),
                  load_ranking(db, run_id), load_flagged(db, run_id),
                  cov[["subject", "grp", "value", "lo", "hi", "n", "extra"]].reset_index(drop=True),
                  arts)


__all__ = [
    "BADGE", "ENCODER_SUBJECT", "ESTIMATE_EXTRA", "EXTRA_METRICS", "FLAGGED_ARTIFACT",
    "GAP_METRICS", "METRIC_HELP", "NULL_FIELDS", "OUTSIDE_METRIC", "RANDOM_INIT", "RANKED_BY",
    "RANK_ROW", "RUN_KIND", "SALIENCY_ARTIFACT", "WORST_ARTIFACT", "GapRun", "encoder_meta",
    "estimate_dict", "is_random_init", "latest_gap_run", "load_encoders", "load_flagged",
    "load_ranking", "load_scores", "read_gap", "write_encoder", "write_flagged", "write_saliency",
    "write_worst",
]
