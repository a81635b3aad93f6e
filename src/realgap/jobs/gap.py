"""The main job: which vision encoder carries a sim-trained policy across to the real domain.

``run_gap(GapConfig) -> GapResult`` loads sim and real frames (FrameSet, ``realgap.data``),
embeds them with every requested encoder through the on-disk embedding cache
(``realgap.encoders.embed_frameset``) and computes the gap suite of each
(``realgap.metrics.gap_suite``; encoder-dis-as-framework.txt III-C/III-D and DESIGN.md):
the two-sample scores (centroid distance, DIS, calibrated DIS, MMD, Fréchet distance, C2ST)
in ONE common space whose number of components is the same for every encoder, each with a
permutation null over episodes; the paper's DIS; the cross-fitted AS per domain and the
transfer AS with their floors and ceilings; sim-fitted coverage with per-frame flags.

One resampling plan serves the whole run: the same bootstrap draws of episodes for every
encoder, so the ranking compares encoders by paired differences
(:func:`realgap.stats.rank_with_ties`: encoders whose difference interval contains 0 share
a rank). Encoders realgap trains itself (``bc-*``) are scored only on the sim episodes
they never trained on (:func:`heldout_sim_episodes`); the plan resamples those episodes as
a stratum of their own, so their replicates stay paired with the others'.

Everything goes to a new run of the results database in ``out`` (layout:
:mod:`realgap.store.gap`; nothing is overwritten): per encoder every score with its
interval, bias flag and null, the rank with ties, the spaces and warnings, the flagged real
frames, one thumbnail per episode of the flagged frames, the saliency grid; then the HTML
report is built from the database.

Frames come either from one FrameSet holding both domains (``frames`` with
``sim_domain``/``real_domain``) or from two FrameSets (``sim`` and ``real``; a file holding
several domains is narrowed to ``sim_domain``/``real_domain``).
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from realgap.errors import ConfigError, DataError, MissingFileError
from realgap.jobs.embedding_map import plan_maps, write_map_frames_of, write_maps_of
from realgap.store import ResultsDB, Score
from realgap.store.gap import (
    EXTRA_METRICS,
    GAP_METRICS,
    OUTSIDE_METRIC,
    RANK_ROW,
    RANKED_BY,
    RUN_KIND,
    encoder_meta,
    estimate_dict,
    load_flagged,
    load_ranking,
    load_scores,
    write_encoder,
    write_flagged,
    write_saliency,
    write_worst,
)

#: The metrics ``--json`` prints per encoder.
JSON_METRICS: tuple[str, ...] = GAP_METRICS + EXTRA_METRICS
#: A factor column is broken down when the real frames show at most this many levels.
MAX_FACTOR_LEVELS = 12


@dataclass(frozen=True)
class GapConfig:
    """What ``realgap gap`` measures, on which frames, and where it writes."""

    encoders: tuple[str, ...]
    """Encoder names of the registry (``realgap encoders list``) or ``pkg.module:factory``."""
    out: str
    """Output directory: ``results.duckdb`` (appended to), ``report.html``, ``cache/``."""
    frames: str | None = None
    """One FrameSet holding both domains (alternative to ``sim`` + ``real``)."""
    sim: str | None = None
    """FrameSet of the simulated frames."""
    real: str | None = None
    """FrameSet of the real (or proxy-real) frames."""
    sim_domain: str = "sim"
    """Domain label of the sim frames."""
    real_domain: str = "real-proxy"
    """Domain label of the real frames."""
    camera: str | None = None
    """Camera to embed; None takes ``head`` when present, else the first camera."""
    real_camera: str | None = None
    """The real set's camera paired with the sim camera when their names differ (a LeRobot
    set's ``top`` against sim ``head``; :func:`realgap.data.mapping.map_real_camera`);
    None: the same name in both."""
    k: int = 384
    """PCA components of the paper's DIS (``dis_paper``; DESIGN.md; cut to min(k, N-1, D))."""
    space_k: int = 32
    """Leading components of the run's common space, the same for every encoder (cut once
    to the smallest min(N-1, D) of the run, with a warning)."""
    n_boot: int = 200
    """Bootstrap resamples over episodes for every interval."""
    n_perm: int = 200
    """Permutations of the null over episodes for every two-sample score (0: no nulls)."""
    seed: int = 0
    """Seed of splits, bootstraps, BC training, saliency pair choice: same seed, same numbers."""
    cache: str | None = None
    """Cache directory for embeddings and trained BC weights (default ``<out>/cache``)."""
    weights: tuple[tuple[str, str], ...] = ()
    """``(encoder, checkpoint path)`` pairs for zoo encoders whose weights are not cached."""
    saliency_pairs: int = 3
    """Sim/real frame pairs per saliency grid (0 turns saliency off)."""
    n_worst: int = 6
    """Worst-covered real frames shown per encoder."""
    batch_size: int = 64
    """Frames per embedding batch."""
    device: str = "cpu"
    """Torch device."""
    progress: bool = True
    """Show progress bars and per-step lines on stderr."""
    maps: tuple[str, ...] = ("pca", "umap")
    """Embedding maps drawn per encoder in the report (``pca``: fitted on sim; ``umap``);
    empty: none."""
    map_frames: int = 400
    """Frames per domain shown on the embedding maps (spread over episodes)."""
    executor: str = "local"
    """Where embedding extraction runs: ``local`` or ``ray`` (one task per episode x
    encoder, rows into the same cache; :mod:`realgap.executors`). Same numbers either way."""
    ray_address: str | None = None
    """Ray cluster to join (``auto``, ``ray://host:10001``); None starts Ray on this machine."""


@dataclass(frozen=True)
class GapResult:
    """What a gap run produced.

    Attributes:
        run_id: the run's id in the results database.
        db_path: the results database.
        report_path: the HTML report.
        estimates: encoder -> metric -> ``{"value", "lo", "hi", "n", "bias", ...}`` with
            the null fields (``p_value``, ``effect``, ...) for the two-sample scores.
        ranking: encoder names, best first (by rank, then by the combined score).
        seconds: wall time of the run.
        ranks: the ranking with ties: ``{"encoder", "rank", "value", "tied_with", "score"}``.
        flagged: encoder -> the real frames coverage flagged (``episode``, ``step``,
            ``frame_id``, ``knn_distance``, ``p_value``).
        space: encoder -> the spaces its scores were computed in.
        identity: encoder -> where its weights came from (``weights_origin``,
            ``weights_hash``) and what it is (family, training, pretraining data, ...).
        warnings: run-level and per-encoder warnings (defaults cut by the sample size, ...).
    """

    run_id: str
    db_path: Path
    report_path: Path
    estimates: dict[str, dict[str, dict[str, float | int | None]]]
    ranking: tuple[str, ...]
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    ranks: list[dict[str, Any]] = field(default_factory=list)
    flagged: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    space: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    identity: dict[str, dict[str, Any]] = field(default_factory=dict)


# -- loading --------------------------------------------------------------------------
def _open(path: str, what: str) -> Any:
    from realgap.data import FrameSet

    if not Path(path).exists():
        raise MissingFileError(f"--{what} {path}: no FrameSet there; generate one with "
                               "`realgap generate` or `realgap demo`, or fix the path")
    return FrameSet.open(path)


def _narrow(fs: Any, domain: str, flag: str, path: str, *, strict: bool) -> Any:
    domains = list(fs.domains)
    if domain in domains:
        return fs.select(domain=domain)
    if not strict and len(domains) == 1:
        return fs
    raise DataError(f"{flag} {domain!r}: not a domain of the FrameSet {path} (it has "
                    f"{', '.join(domains) or 'none'}); pass one of those with {flag}")


def load_frames(cfg: GapConfig) -> tuple[Any, Any, str, Any]:
    """``(sim view, real view, frameset hash, sim source FrameSet)`` from the config's paths
    and domain labels; the BC encoders train on the source's sim domains."""
    if cfg.frames is not None:
        if cfg.sim is not None or cfg.real is not None:
            raise ConfigError("--frames and --sim/--real exclude each other; pass one FrameSet "
                              "with both domains (--frames) or two FrameSets (--sim and --real)")
        fs = _open(cfg.frames, "frames")
        sim = _narrow(fs, cfg.sim_domain, "--sim-domain", cfg.frames, strict=True)
        real = _narrow(fs, cfg.real_domain, "--real-domain", cfg.frames, strict=True)
        return sim, real, fs.content_hash, fs
    if cfg.sim is None or cfg.real is None:
        raise ConfigError("pass the frames: --frames PATH (both domains in one FrameSet) or "
                          "--sim PATH and --real PATH")
    s, r = _open(cfg.sim, "sim"), _open(cfg.real, "real")
    sim = _narrow(s, cfg.sim_domain, "--sim-domain", cfg.sim, strict=False)
    real = _narrow(r, cfg.real_domain, "--real-domain", cfg.real, strict=False)
    return sim, real, f"{s.content_hash}+{r.content_hash}", s


def pick_camera(sim: Any, real: Any, camera: str | None) -> str:
    """The camera both views hold: ``camera``, else ``head``, else the first shared one."""
    shared = [c for c in sim.cameras if c in real.cameras]
    if camera is not None:
        if camera not in shared:
            raise DataError(f"--camera {camera!r}: not recorded in both sim and real frames "
                            f"(shared cameras: {', '.join(shared) or 'none'}); pick one of those")
        return camera
    if not shared:
        raise DataError("sim and real frames share no camera; record both with one camera name")
    return "head" if "head" in shared else shared[0]


def check_encoder_names(names: tuple[str, ...]) -> None:
    """Fail early (close matches listed) on an unknown encoder name, before any heavy work."""
    from realgap.encoders import ENCODERS

    if not names:
        raise ConfigError("--encoders is empty; pass names such as pixels,resnet18.random_native "
                          "(see `realgap encoders list`)")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"--encoders lists {', '.join(dup)} more than once; name each once")
    for name in names:
        if ":" not in name:
            ENCODERS.get(name)  # raises UnknownNameError naming the close matches (aliases work)


# -- pieces of one encoder's result ---------------------------------------------------
def _say(cfg: GapConfig, msg: str) -> None:
    if cfg.progress:
        print(f"[realgap gap] {msg}", file=sys.stderr, flush=True)


def _call_gap_suite(emb_sim: np.ndarray, emb_real: np.ndarray, act_sim: np.ndarray,
                    act_real: np.ndarray, ep_sim: np.ndarray, ep_real: np.ndarray,
                    factors_real: pd.DataFrame | None, cfg: GapConfig, *, space_k: int,
                    plan: Any, sim_rows: np.ndarray | None, state_sim: np.ndarray | None,
                    state_real: np.ndarray | None) -> dict[str, Any]:
    from realgap.metrics import gap_suite

    return dict(gap_suite(emb_sim, emb_real, act_sim, act_real, ep_sim, ep_real, k=cfg.k,
                          space_k=space_k, n_perm=cfg.n_perm, rng=cfg.seed, plan=plan,
                          sim_rows=sim_rows, state_sim=state_sim, state_real=state_real,
                          factors_real=factors_real))


def trained_rows(enc: Any, sim_episode_ids: np.ndarray) -> np.ndarray | None:
    """Sim rows an encoder trained by realgap saw in training (its ``extra["train_episodes"]``,
    manifest episode ids), or None for an encoder realgap did not train."""
    ids = getattr(enc, "extra", {}).get("train_episodes")
    if ids is None:
        return None
    return np.isin(sim_episode_ids, np.asarray(list(ids)))


def common_space_k(space_k: int, dims: list[int], n_frames: list[int]) -> tuple[int, list[str]]:
    """The run's common ``k``: ``space_k`` cut to the smallest ``min(N - 1, D)`` over the
    encoders (so every encoder is scored in the same number of components), and a warning
    when the cut happened."""
    cap = min(min(dims), min(n_frames) - 1)
    if cap >= space_k:
        return space_k, []
    msg = (f"common space: {space_k} components requested, {max(cap, 1)} used for every "
           f"encoder (smallest embedding dim {min(dims)}, smallest N-1 {min(n_frames) - 1}); "
           "pass --space-k to choose")
    return max(cap, 1), [msg]


def probe_split_seed(seed: int) -> int:
    """The seed ``gap_suite(rng=seed)`` splits the sim episodes with (its first child seed).

    The saliency probe and the BC encoders' training episodes use it, so the probe explained
    is the AS probe itself and the AS validation episodes stay unseen by BC training;
    ``tests/test_gap.py`` checks this against ``gap_suite``'s own ``as_sim``.
    """
    from realgap._rng import child_seeds

    return child_seeds(seed, 8)[0]


def heldout_sim_episodes(sim: Any, seed: int) -> tuple[np.ndarray, list[int]]:
    """``(val mask over sim rows, manifest episode ids safe to train BC on)``.

    A manifest ``episode`` id is safe when no frame of it (in any task) is an AS validation
    frame; BC selects by manifest id, so ids shared with a validation episode are dropped.
    """
    from realgap.metrics.probe import episode_split

    _, val = episode_split(sim.episodes(), 0.2, probe_split_seed(seed))
    ids = sim.manifest["episode"].to_numpy()
    safe = sorted({int(e) for e in ids[~val]} - {int(e) for e in ids[val]})
    return val, safe


def _estimate_scores(name: str, suite: Mapping[str, Any]) -> list[Score]:
    """Score rows of every metric, each with its estimate fields and, where it has one, its
    permutation null in ``extra`` (layout: :mod:`realgap.store.gap`)."""
    out = []
    nulls = suite.get("nulls", {}) or {}
    for m in GAP_METRICS + EXTRA_METRICS:
        est = suite.get(m)
        if est is None or not hasattr(est, "value"):
            continue
        extra: dict[str, Any] = {"n_frames": int(est.n_frames), "n_boot": int(est.n_boot),
                                 "method": est.method, "bias": bool(est.bias)}
        if m in nulls:
            extra.update({k: _plain(v) for k, v in nulls[m].as_dict().items() if k != "observed"})
        out.append(Score(name, m, float(est.value), _f(est.lo), _f(est.hi), int(est.n),
                         extra=extra))
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return None if not np.isfinite(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def _f(x: Any) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def flagged_records(suite: Mapping[str, Any], real: Any) -> list[dict[str, Any]]:
    """Every real frame coverage flagged: ``episode, step, frame_id, knn_distance, p_value``,
    lowest p-value first (ties: larger distance first)."""
    fl = suite.get("flagged") or {}
    rows = np.asarray(fl.get("row", []), dtype=np.int64)
    if rows.size == 0:
        return []
    man = real.manifest.reset_index(drop=True)
    dist = np.asarray(fl["knn_distance"], float)
    pval = np.asarray(fl["p_value"], float)
    order = np.lexsort((-dist, pval))
    return [{"episode": _plain(man["episode"].iloc[rows[i]]),
             "step": _plain(man["step"].iloc[rows[i]]),
             "frame_id": str(man["frame_id"].iloc[rows[i]]),
             "knn_distance": float(dist[i]), "p_value": float(pval[i]),
             "row": int(rows[i])} for i in order]


def thumbnail_rows(cov: Any, real_episodes: np.ndarray, n: int) -> tuple[np.ndarray, bool]:
    """Real rows to show as thumbnails: one per episode (its lowest p-value frame, ties by
    distance), the flagged ones when any, else the least covered; and whether they are flagged."""
    flagged = np.asarray(cov.flagged, dtype=bool)
    pval = np.asarray(cov.p_value, float)
    dist = np.asarray(cov.knn_distance, float)
    cand = np.flatnonzero(flagged) if flagged.any() else np.arange(flagged.size)
    order = cand[np.lexsort((-dist[cand], pval[cand]))]
    seen: set[Any] = set()
    keep = []
    for i in order:
        e = real_episodes[i]
        if e in seen:
            continue
        seen.add(e)
        keep.append(i)
        if len(keep) == n:
            break
    return np.asarray(keep, dtype=np.int64), bool(flagged.any())


def level_factors(factors: pd.DataFrame) -> pd.DataFrame | None:
    """The factor columns (plus ``task``) worth a breakdown: 2..:data:`MAX_FACTOR_LEVELS` distinct values
    among the real frames (continuous values such as light intensities are not levels)."""
    if factors is None or factors.empty:
        return None
    keep = [c for c in factors.columns
            if 2 <= factors[c].astype(str).nunique() <= MAX_FACTOR_LEVELS]
    return factors[keep].reset_index(drop=True) if keep else None


def factor_breakdown(name: str, by_factor: pd.DataFrame) -> list[Score]:
    """``outside_fraction`` per factor level from the coverage report's ``by_factor`` table."""
    out: list[Score] = []
    if by_factor is None or by_factor.empty:
        return out
    for r in by_factor.itertuples():
        out.append(Score(name, OUTSIDE_METRIC, float(r.fraction_outside), n=int(r.n_frames),
                         group=f"{r.factor}={r.level}", extra={"k": int(r.n_outside)}))
    return out


def _nearest_sim(emb_sim: np.ndarray, emb_real_rows: np.ndarray) -> np.ndarray:
    """Index of the nearest sim frame to each given real row, in the encoder's embedding
    space standardized with the sim statistics (the thumbnail's right-hand frame)."""
    mu, sd = emb_sim.mean(0), emb_sim.std(0)
    sd[sd == 0] = 1.0
    a = (emb_sim - mu) / sd
    b = (emb_real_rows - mu) / sd
    d2 = (b * b).sum(1)[:, None] - 2 * b @ a.T + (a * a).sum(1)[None, :]
    return np.argmin(d2, axis=1)


def thumbnail_pair(real_img: np.ndarray, sim_img: np.ndarray, size: int = 112) -> bytes:
    """PNG: the real frame (left) beside a sim frame (right), each ``size`` px high."""
    from PIL import Image

    tiles = [Image.fromarray(np.asarray(x, dtype=np.uint8)).resize((size, size)) for x in
             (real_img, sim_img)]
    canvas = Image.new("RGB", (2 * size + 4, size), (255, 255, 255))
    canvas.paste(tiles[0], (0, 0))
    canvas.paste(tiles[1], (size + 4, 0))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue()


def saliency_pairs(sim: Any, real: Any, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Positional rows (sim, real) of ``n`` frame pairs sharing a ``pair_id``, spread over
    episodes (seeded), and their pair ids."""
    from realgap._rng import as_rng

    ms = sim.manifest.reset_index(drop=True)
    mr = real.manifest.reset_index(drop=True)
    if n <= 0 or "pair_id" not in ms or "pair_id" not in mr:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), []
    rs = pd.Series(np.arange(len(ms)), index=ms["pair_id"].astype("string"))
    rr = pd.Series(np.arange(len(mr)), index=mr["pair_id"].astype("string"))
    rs = rs[rs.index.notna() & ~rs.index.duplicated()]
    rr = rr[rr.index.notna() & ~rr.index.duplicated()]
    common = sorted(set(rs.index) & set(rr.index))
    if not common:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), []
    chosen = as_rng(seed).choice(len(common), size=min(n, len(common)), replace=False)
    ids = [common[i] for i in sorted(chosen)]
    return rs[ids].to_numpy(np.int64), rr[ids].to_numpy(np.int64), [str(i) for i in ids]


# -- the job --------------------------------------------------------------------------
def check_config(cfg: GapConfig) -> None:
    """The checks that need no frames (sizes, encoder names): callers that do heavy work
    before :func:`run_gap` (the demo generates its dataset) run them first."""
    if cfg.n_boot < 0 or cfg.k < 1:
        raise ConfigError(f"--n-boot must be >= 0 and --k >= 1, got {cfg.n_boot} and {cfg.k}")
    if cfg.n_perm < 0 or cfg.space_k < 1:
        raise ConfigError(f"--n-perm must be >= 0 and --space-k >= 1, got {cfg.n_perm} and "
                          f"{cfg.space_k}")
    check_encoder_names(cfg.encoders)
    from realgap.explain.embedding_map import MAP_METHODS

    unknown_maps = [m for m in cfg.maps if m not in MAP_METHODS]
    if unknown_maps or cfg.map_frames < 1:
        raise ConfigError(f"--maps: expected a comma list of {', '.join(MAP_METHODS)} (or none) "
                          f"and --map-frames >= 1, got {','.join(cfg.maps)!r} and {cfg.map_frames}")
    check_device(cfg.device)
    from realgap.executors import Executor

    Executor(cfg.executor, cfg.ray_address)  # a bad --executor fails before any work


def check_device(device: str) -> None:
    """A device torch cannot parse or this machine lacks is a one-line ConfigError, not a
    torch traceback in the middle of the first embedding."""
    from realgap._optional import require

    torch = require("torch")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"--device {device!r}: not a torch device (e.g. cpu, cuda, "
                          "cuda:0)") from exc
    if dev.type == "cuda" and (not torch.cuda.is_available()
                               or (dev.index or 0) >= torch.cuda.device_count()):
        raise ConfigError(f"--device {device!r}: no such CUDA device on this machine "
                          f"({torch.cuda.device_count()} visible); use --device cpu")


def _config_record(cfg: GapConfig, camera: str, sim: Any, real: Any) -> dict[str, Any]:
    d = asdict(cfg)
    d["weights"] = dict(cfg.weights)
    d["camera"] = camera
    d["n_sim_frames"], d["n_real_frames"] = len(sim), len(real)
    d["n_sim_episodes"] = int(np.unique(sim.episodes()).size)
    d["n_real_episodes"] = int(np.unique(real.episodes()).size)
    return d


@dataclass
class GapInputs:
    """The checked frames of a run and what every encoder's scoring shares.

    ``act_*``: (n_frames, action_dim) float64; ``ep_*``: (n_frames,) episode ids;
    ``state_*``: (n_frames, state_dim) or None; ``rows_*``/``pair_ids``: the same-state
    sim/real pairs the saliency grid shows.
    """

    sim: Any
    real: Any
    fs_hash: str
    bc_source: Any
    camera: str
    cache: Path
    act_sim: np.ndarray
    act_real: np.ndarray
    ep_sim: np.ndarray
    ep_real: np.ndarray
    factors_real: pd.DataFrame | None
    bc_episodes: list[int]
    rows_sim: np.ndarray
    rows_real: np.ndarray
    pair_ids: list[str]
    state_sim: np.ndarray | None
    state_real: np.ndarray | None


@dataclass
class ScoringPlan:
    """How every encoder is scored: the rows each trained on, one resampling plan, the
    common space's size, and the run's warnings."""

    trained: dict[str, np.ndarray | None]
    plan: Any
    space_k: int
    warnings: list[str]


# -- the steps of run_gap ------------------------------------------------------------
def prepare_inputs(cfg: GapConfig) -> GapInputs:
    """Load both domains, map the real camera, check there is enough to resample, and
    gather the arrays every encoder's scoring shares."""
    from realgap.data.mapping import map_real_camera

    sim, real, fs_hash, bc_source = load_frames(cfg)
    for view, flag in ((sim, "--sim-domain"), (real, "--real-domain")):
        if len(view) < 4 or np.unique(view.episodes()).size < 2:
            raise DataError(f"{flag}: {len(view)} frames in {np.unique(view.episodes()).size} "
                            "episode(s); the gap suite needs at least 2 episodes per domain")
    real = map_real_camera(sim, real, cfg.camera, cfg.real_camera)
    camera = pick_camera(sim, real, cfg.camera)
    unknown_w = [n for n in dict(cfg.weights) if n not in cfg.encoders]
    if unknown_w:
        raise ConfigError(f"--weights names {', '.join(unknown_w)}, which is not in --encoders")
    factors_real = level_factors(real.factors().reset_index(drop=True).assign(
        task=real.manifest["task"].astype(str).to_numpy()))
    _, bc_episodes = heldout_sim_episodes(sim, cfg.seed)
    rows_sim, rows_real, pair_ids = saliency_pairs(sim, real, cfg.saliency_pairs, cfg.seed)
    return GapInputs(sim, real, fs_hash, bc_source, camera,
                     Path(cfg.cache) if cfg.cache else Path(cfg.out) / "cache",
                     sim.actions().astype(np.float64), real.actions().astype(np.float64),
                     sim.episodes(), real.episodes(), factors_real, bc_episodes,
                     rows_sim, rows_real, pair_ids, _states(sim), _states(real))


def _train_bc_worker(root: str, domain: str, camera: str, episodes: list[int], seed: int,
                     cache: str | None, device: str) -> None:
    from realgap.data import FrameSet
    from realgap.encoders.bc import train_bc_encoder

    train_bc_encoder(FrameSet.open(root), domain=domain, camera=camera, episodes=episodes,
                     rng=seed, cache_dir=cache, device=device)


def _train_bc_in_parallel(cfg: GapConfig, inp: GapInputs, timings: dict[str, float]) -> None:
    """Train the requested BC encoders that are not cached side by side, one process each.

    Each trains on one thread (``realgap.encoders.bc``), so two on 2 cores take the time
    of one; the weights are the same as a sequential run's (seeded, one thread each) and
    land in the cache, where :func:`build_encoders` then loads them. Nothing happens for
    fewer than two, on a GPU, or when the FrameSet has no directory to reopen."""
    from realgap.encoders.bc import bc_is_cached
    from realgap.encoders.registry import BC_DOMAINS
    from realgap.errors import RealgapError

    root = getattr(inp.bc_source, "root", None)
    if cfg.device != "cpu" or root is None:
        return
    todo = [d for n, d in BC_DOMAINS.items()
            if n in cfg.encoders and not bc_is_cached(inp.bc_source, d, inp.camera,
                                                       inp.bc_episodes, cfg.seed, inp.cache)]
    workers = min(len(todo), os.cpu_count() or 1)
    if workers < 2:
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    t = time.perf_counter()
    _say(cfg, f"training {len(todo)} BC encoders side by side ({', '.join(todo)})")
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(_train_bc_worker, str(root), d, inp.camera, list(inp.bc_episodes),
                               cfg.seed, None if inp.cache is None else str(inp.cache),
                               cfg.device) for d in todo]
        for f in futures:
            try:
                f.result()
            except RealgapError:
                pass  # build_encoders trains it again here and reports the error itself
    timings["build:bc-parallel"] = time.perf_counter() - t


def build_encoders(cfg: GapConfig, inp: GapInputs, timings: dict[str, float]) -> list[Any]:
    """Every requested encoder (BC encoders train here on the sim episodes they may see)."""
    from realgap.encoders import create_encoder

    weights = dict(cfg.weights)
    _train_bc_in_parallel(cfg, inp, timings)
    encoders = []
    for name in cfg.encoders:
        t = time.perf_counter()
        _say(cfg, f"building encoder {name}")
        encoders.append(create_encoder(
            name, weights=weights.get(name), device=cfg.device, seed=cfg.seed,
            frameset=inp.bc_source, camera=inp.camera, episodes=inp.bc_episodes,
            cache_dir=inp.cache, progress=cfg.progress))
        timings[f"build:{name}"] = time.perf_counter() - t
    return encoders


def embed_all(cfg: GapConfig, inp: GapInputs, encoders: list[Any],
              timings: dict[str, float]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{encoder: (sim embeddings, real embeddings)}`` through the embedding cache."""
    from realgap.encoders import embed_frameset

    sim, real = inp.sim, inp.real
    if cfg.executor == "ray":
        # every encoder x domain x episode is submitted at once: Ray keeps all workers busy
        from realgap.encoders.cache import embed_framesets
        from realgap.executors import Executor

        t = time.perf_counter()
        _say(cfg, f"embedding with {len(encoders)} encoder(s) on ray ({len(sim)} sim + "
                  f"{len(real)} real frames each)")
        embs = embed_framesets([(e, v) for e in encoders for v in (sim, real)], inp.camera,
                               inp.cache, cfg.batch_size, cfg.progress,
                               Executor("ray", cfg.ray_address))
        timings["embed:ray"] = time.perf_counter() - t
        return {e.name: (embs[2 * i], embs[2 * i + 1]) for i, e in enumerate(encoders)}
    embedded = {}
    for enc in encoders:
        t = time.perf_counter()
        _say(cfg, f"embedding with {enc.name} ({len(sim)} sim + {len(real)} real frames)")
        embedded[enc.name] = tuple(
            embed_frameset(enc, view, camera=inp.camera, cache_dir=inp.cache,
                           batch_size=cfg.batch_size, progress=cfg.progress)
            for view in (sim, real))
        timings[f"embed:{enc.name}"] = time.perf_counter() - t
    return embedded  # type: ignore[return-value]


def plan_scoring(cfg: GapConfig, inp: GapInputs, encoders: list[Any]) -> ScoringPlan:
    """One resampling plan for every encoder (the common space's size is set once the
    embeddings are known, by :func:`fit_common_space`).

    Encoders trained here are scored on the sim episodes they never trained on; the plan
    keeps those apart (a stratum), so that every encoder's replicates come from the same
    draws and can be paired for the ranking.
    """
    from realgap.metrics import resample_plan

    sim_ids = inp.sim.manifest["episode"].to_numpy()
    trained = {enc.name: trained_rows(enc, sim_ids) for enc in encoders}
    seen = [m for m in trained.values() if m is not None]
    sim_strata = None
    if seen:
        union = np.logical_or.reduce(seen)
        sim_strata = np.where(union, "trained-on", "held-out")
        if (~union).sum() < 2 or np.unique(inp.ep_sim[~union]).size < 2:
            raise DataError("the encoders trained by realgap saw all but "
                            f"{np.unique(inp.ep_sim[~union]).size} sim episode(s); at least 2 "
                            "must stay unseen to score them: record more sim episodes")
    plan = resample_plan(inp.ep_sim, inp.ep_real, cfg.n_boot, cfg.seed, sim_strata=sim_strata)
    return ScoringPlan(trained, plan, 0, [])


def fit_common_space(cfg: GapConfig, inp: GapInputs, encoders: list[Any],
                     embedded: Mapping[str, tuple[np.ndarray, np.ndarray]],
                     sp: ScoringPlan) -> ScoringPlan:
    """``sp`` with the number of components of the one space every encoder is scored in,
    and the warnings of having to cut it."""
    n_used = []
    for e in encoders:
        seen = sp.trained[e.name]
        n_used.append(int(len(inp.sim) if seen is None else (~seen).sum()) + len(inp.real))
    space_k, warnings = common_space_k(cfg.space_k, [embedded[e.name][0].shape[1]
                                                     for e in encoders], n_used)
    return ScoringPlan(sp.trained, sp.plan, space_k, warnings)


def score_encoder(db: ResultsDB, run_id: str, cfg: GapConfig, inp: GapInputs, enc: Any,
                  emb: tuple[np.ndarray, np.ndarray], sp: ScoringPlan, map_plan: Any,
                  timings: dict[str, float]) -> tuple[float, np.ndarray]:
    """One encoder's gap suite, scores, flagged frames, maps, thumbnails and saliency,
    written to run ``run_id``; returns its ranked score and that score's replicates."""
    emb_sim, emb_real = emb
    seen = sp.trained[enc.name]
    rows = None if seen is None else ~seen
    t = time.perf_counter()
    _say(cfg, f"gap suite for {enc.name} ({cfg.n_boot} bootstrap resamples, "
              f"{cfg.n_perm} permutations)")
    suite = _call_gap_suite(emb_sim, emb_real, inp.act_sim, inp.act_real, inp.ep_sim,
                            inp.ep_real, inp.factors_real, cfg, space_k=sp.space_k,
                            plan=sp.plan, sim_rows=rows, state_sim=inp.state_sim,
                            state_real=inp.state_real)
    reps = suite["replicates"].get(RANKED_BY)
    cov = suite["coverage_report"]
    write_suite(db, run_id, enc.name, suite, inp.real)
    timings[f"metrics:{enc.name}"] = time.perf_counter() - t
    if map_plan is not None:
        t = time.perf_counter()
        _say(cfg, f"embedding maps ({', '.join(cfg.maps)}) for {enc.name}")
        write_maps_of(db, run_id, map_plan, enc.name, emb_sim, emb_real,
                      np.asarray(cov.flagged, dtype=bool))
        timings[f"maps:{enc.name}"] = time.perf_counter() - t
    meta = encoder_meta(
        enc.info.as_dict() if hasattr(enc.info, "as_dict") else dict(enc.info),
        enc.weights_origin, weights_hash=getattr(enc, "weights_hash", ""),
        camera=inp.camera, n_sim=int(len(inp.sim) if rows is None else rows.sum()),
        n_real=len(inp.real), space=_plain_tree(suite["space"]),
        warnings=sp.warnings + list(suite["warnings"]),
        scored_sim="all sim episodes" if rows is None else
        "held-out sim episodes only (never trained on)",
        **{k: v for k, v in getattr(enc, "extra", {}).items() if _jsonable(v)})
    _add_thumbnails(db, run_id, enc.name, cov, inp.sim, inp.real, emb_sim, emb_real,
                    inp.camera, cfg.n_worst)
    why = add_saliency(db, run_id, cfg, inp, enc, emb_sim, timings)
    if why is not None:
        meta["saliency"] = why
    write_encoder(db, run_id, enc.name, meta)
    return (suite[RANKED_BY].value,
            np.full(sp.plan.n_boot, np.nan) if reps is None else reps)


def write_suite(db: ResultsDB, run_id: str, name: str, suite: Mapping[str, Any], real: Any) -> None:
    """An encoder's scores (with the coverage count and factor breakdown) and its flagged
    real frames."""
    cov = suite["coverage_report"]
    scores = [Score(s.subject, s.metric, s.value, s.lo, s.hi, s.n, s.group,
                    {**s.extra, "k": int(np.sum(cov.flagged))})
              if s.metric == OUTSIDE_METRIC else s for s in _estimate_scores(name, suite)]
    scores += factor_breakdown(name, getattr(cov, "by_factor", None))
    db.add_scores(run_id, scores)
    flagged = flagged_records(suite, real)
    write_flagged(db, run_id, name, [{k: v for k, v in f.items() if k != "row"} for f in flagged],
                  n_real=len(real), alpha=float(getattr(cov, "alpha", 0.05)))


def add_saliency(db: ResultsDB, run_id: str, cfg: GapConfig, inp: GapInputs, enc: Any,
                 emb_sim: np.ndarray, timings: dict[str, float]) -> str | None:
    """The encoder's saliency grid on the sim/real pairs (target: an action probe);
    returns why there is none, or None."""
    from realgap.explain import explain_encoder, fit_action_probe, saliency_support

    why = saliency_support(enc)
    if why is None and cfg.saliency_pairs > 0 and not inp.pair_ids:
        why = ("no saliency grid: no sim and real frames share a pair_id, so there "
               "is no same-state pair to show side by side")
    if why is not None or not len(inp.pair_ids):
        return why
    t = time.perf_counter()
    _say(cfg, f"saliency for {enc.name} on {len(inp.pair_ids)} sim/real pairs")
    probe = fit_action_probe(emb_sim, inp.act_sim, inp.ep_sim, rng=probe_split_seed(cfg.seed))
    try:
        grid = explain_encoder(enc, inp.sim.images(inp.camera, inp.rows_sim),
                               inp.real.images(inp.camera, inp.rows_real), inp.pair_ids, probe,
                               domains=(cfg.sim_domain, cfg.real_domain))
    except DataError as exc:  # an architecture Grad-CAM cannot read
        _say(cfg, f"no saliency for {enc.name}: {exc}")
        return str(exc)
    finally:
        timings[f"saliency:{enc.name}"] = time.perf_counter() - t
    if grid is None:  # the encoder has no gradient saliency after all: nothing to store
        return None
    write_saliency(db, run_id, enc.name, grid.png, caption=grid.caption, method=grid.method,
                   layer=grid.layer, pair_ids=list(grid.pair_ids))
    return None


def record_run(cfg: GapConfig, inp: GapInputs, encoders: list[Any],
               embedded: Mapping[str, tuple[np.ndarray, np.ndarray]], sp: ScoringPlan,
               timings: dict[str, float]) -> tuple[Path, str]:
    """A new run in ``OUT/results.duckdb``: every encoder scored, then the ranking. The run
    is marked failed (or interrupted) if anything stops it."""
    db_path = Path(cfg.out) / "results.duckdb"
    points, replicates = [], []
    with ResultsDB(db_path) as db:
        run_id = db.new_run(RUN_KIND, _config_record(cfg, inp.camera, inp.sim, inp.real),
                            name=",".join(cfg.encoders), frameset_hash=inp.fs_hash)
        try:
            map_plan = None
            if cfg.maps:
                map_plan = plan_maps(inp.sim, inp.real, max_per_domain=cfg.map_frames,
                                     methods=cfg.maps, seed=cfg.seed)
                write_map_frames_of(db, run_id, map_plan, inp.sim, inp.real, inp.camera)
            for enc in encoders:
                point, reps = score_encoder(db, run_id, cfg, inp, enc, embedded[enc.name], sp,
                                            map_plan, timings)
                points.append(point)
                replicates.append(reps)
            db.add_scores(run_id, rank_scores([e.name for e in encoders], points, replicates,
                                              n=int(sp.plan.counts.shape[1])))
            db.finish_run(run_id, "ok")
        except KeyboardInterrupt:
            db.finish_run(run_id, "interrupted")
            raise
        except BaseException:
            db.finish_run(run_id, "failed")
            raise
    return db_path, run_id


#: Encoder metadata ``--json`` repeats per encoder: where the weights came from and what
#: the encoder is (the rest of the subject meta is the report's).
IDENTITY_FIELDS: tuple[str, ...] = ("weights_origin", "weights_hash", "family", "embed_dim",
                                    "params_m", "training", "pretrain_data", "library", "arch",
                                    "scored_sim")


def read_result(db_path: Path, run_id: str, names: list[str], sp: ScoringPlan,
                timings: dict[str, float], t0: float) -> GapResult:
    """The run as the caller sees it, read back from the database; builds the report."""
    from realgap.report import build_report

    with ResultsDB(db_path) as db:
        table = load_scores(db, run_id)
        estimates = {n: estimate_dict(table, n) for n in names}
        ranks = load_ranking(db, run_id)
        flagged_all = load_flagged(db, run_id)
        metas = {str(r.subject): json.loads(r.meta or "{}")
                 for r in db.subjects(run_id).itertuples()}
    report = build_report(db_path)
    per_encoder = sorted({w for n in estimates for w in metas.get(n, {}).get("warnings", [])
                          if w not in sp.warnings})
    return GapResult(run_id=run_id, db_path=db_path, report_path=report, estimates=estimates,
                     ranking=tuple(r["encoder"] for r in ranks),
                     seconds=time.perf_counter() - t0, timings=timings, ranks=ranks,
                     flagged=flagged_all,
                     space={n: metas.get(n, {}).get("space", {}) for n in estimates},
                     warnings=sp.warnings + per_encoder,
                     identity={n: {k: v for k, v in metas.get(n, {}).items()
                                   if k in IDENTITY_FIELDS} for n in estimates})


def run_gap(cfg: GapConfig) -> GapResult:
    """Run the whole job (see module docstring) and return where its results went."""
    t0 = time.perf_counter()
    check_config(cfg)
    inp = prepare_inputs(cfg)
    timings: dict[str, float] = {}
    encoders = build_encoders(cfg, inp, timings)
    sp = plan_scoring(cfg, inp, encoders)  # before embedding: its refusals cost nothing
    embedded = embed_all(cfg, inp, encoders, timings)
    # Scoring, maps and probes on one BLAS thread: mid-sized products gain little from a
    # second one, and on a busy machine OpenBLAS's spin-waiting threads made this stage up
    # to 10x slower (realgap.metrics.suite._one_blas_thread). Torch keeps its own threads.
    from realgap.metrics.distribution import _single_thread

    with _single_thread():
        sp = fit_common_space(cfg, inp, encoders, embedded, sp)
        db_path, run_id = record_run(cfg, inp, encoders, embedded, sp, timings)
    return read_result(db_path, run_id, [e.name for e in encoders], sp, timings, t0)


def _states(view: Any) -> np.ndarray | None:
    """The recorded low-dimensional states ``(n, S)``, or None when the frames carry none."""
    try:
        st = np.asarray(view.states(), dtype=np.float64)
    except (DataError, KeyError, ValueError):
        return None
    if st.ndim != 2 or st.shape[1] == 0 or not np.all(np.isfinite(st)):
        return None
    return st


def _plain_tree(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain_tree(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain_tree(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain_tree(obj.tolist())
    return _plain(obj)


def rank_scores(names: list[str], points: list[float], replicates: list[np.ndarray],
                *, n: int) -> list[Score]:
    """The ranking with ties as score rows (:func:`realgap.stats.rank_with_ties` on the
    encoders' paired replicates of :data:`RANKED_BY`)."""
    from realgap.stats import rank_with_ties

    entries = rank_with_ties(names, points, np.vstack(replicates) if replicates else
                             np.zeros((0, 0)))
    return [Score(e.name, RANK_ROW, float(e.rank), n=n,
                  extra={"score": RANKED_BY, "value": _plain(e.value),
                         "tied_with": list(e.tied_with)}) for e in entries]


def _add_thumbnails(db: ResultsDB, run_id: str, name: str, cov: Any, sim: Any, real: Any,
                    emb_sim: np.ndarray, emb_real: np.ndarray, camera: str, n: int) -> None:
    """Real frame beside its nearest sim frame, one per episode (flagged frames first)."""
    if n <= 0:
        return
    man = real.manifest.reset_index(drop=True)
    rows, any_flagged = thumbnail_rows(cov, man["episode"].to_numpy(), n)
    if rows.size == 0:
        return
    near = _nearest_sim(emb_sim, emb_real[rows])
    fid_s = sim.manifest["frame_id"].to_numpy()
    imgs_r = real.images(camera, rows)
    imgs_s = sim.images(camera, near)
    flagged = np.asarray(cov.flagged, bool)
    for rank, (i, j) in enumerate(zip(rows, near, strict=True), start=1):
        write_worst(db, run_id, name, thumbnail_pair(imgs_r[rank - 1], imgs_s[rank - 1]),
                    {"rank": rank, "frame_id": str(man["frame_id"].iloc[i]),
                     "episode": _plain(man["episode"].iloc[i]),
                     "step": _plain(man["step"].iloc[i]),
                     "nearest_sim_frame_id": str(fid_s[j]),
                     "knn_distance": float(cov.knn_distance[i]),
                     "p_value": float(cov.p_value[i]), "flagged": bool(flagged[i]),
                     "any_flagged": any_flagged})


def _jsonable(v: Any) -> bool:
    try:
        json.dumps(v)
    except (TypeError, ValueError):
        return False
    return True


def ranking_table(result: GapResult) -> str:
    """The ranking table the CLI prints: rank (shared ranks marked ``=``), the combined score,
    calibrated DIS, transfer AS beside its floor, C2ST with its p-value, outside fraction."""

    def cell(name: str, metric: str, p: bool = False) -> str:
        e = result.estimates[name].get(metric)
        if not e or e.get("value") is None:
            return "—"
        txt = f"{e['value']:.3f}"
        if e.get("lo") is not None and e.get("hi") is not None:
            txt += f" [{e['lo']:.3f}, {e['hi']:.3f}]"
        if e.get("bias"):
            txt += "*"
        if p and e.get("p_value") is not None:
            txt += f" p={e['p_value']:.3g}"
        return txt

    by_name = {r["encoder"]: r for r in result.ranks}
    ranks = [by_name[n]["rank"] if n in by_name else None for n in result.ranking]
    header = ["rank", "encoder", "combined", "dis_cal", "as_transfer", "as_sim (floor)",
              "c2st_acc", OUTSIDE_METRIC, "tied with"]
    rows = []
    for n, rk in zip(result.ranking, ranks, strict=True):
        shared = rk is not None and ranks.count(rk) > 1
        floor = result.estimates[n].get("as_sim_floor", {}).get("value")
        rows.append([
            "?" if rk is None else f"{'=' if shared else ''}{rk}", n, cell(n, "combined"),
            cell(n, "dis_cal", p=True), cell(n, "as_transfer"),
            cell(n, "as_sim") + ("" if floor is None else f" ({floor:.3f})"),
            cell(n, "c2st_acc", p=True), cell(n, OUTSIDE_METRIC),
            ", ".join(by_name.get(n, {}).get("tied_with", [])) or "—"])
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    lines = ["  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    return "\n".join(lines)


#: The legend printed under :func:`ranking_table`.
RANKING_LEGEND = ("combined = harmonic mean of calibrated DIS and transfer AS; [95% episode-"
                  "bootstrap interval], * = point outside its interval (bias); rank shared (=) "
                  "when a paired bootstrap difference interval contains 0; p = permutation "
                  "p-value over episodes")


def result_json(result: GapResult) -> dict[str, Any]:
    """What ``--json`` prints.

    ``{"run_id", "db", "report", "ranking": [{"encoder", "rank", "value", "tied_with",
    "score"}], "warnings": [...], "encoders": {name: {metric: {"value", "lo", "hi", "n",
    "bias", "method", "n_frames", "n_boot"[, "p_value", "null_mean", "null_sd", "effect",
    "n_perm", "alternative"]}}}, "flagged_frames": {name: [{"episode", "step", "frame_id",
    "knn_distance", "p_value"}]}, "space": {name: {...}}, "identity": {name: {"weights_origin",
    "weights_hash", "family", "training", "pretrain_data", ...}}}``
    """
    return {
        "run_id": result.run_id,
        "db": str(result.db_path),
        "report": str(result.report_path),
        "ranking": list(result.ranks),
        "warnings": list(result.warnings),
        "encoders": {n: {m: e[m] for m in JSON_METRICS if m in e}
                     for n, e in result.estimates.items()},
        "flagged_frames": {n: list(result.flagged.get(n, [])) for n in result.estimates},
        "space": dict(result.space),
        "identity": dict(result.identity),
    }
