"""The main job: which vision encoder carries a sim-trained policy across to the real domain.

``run_gap(GapConfig) -> GapResult`` loads sim and real frames (FrameSet, ``realgap.data``),
embeds them with every requested encoder through the on-disk embedding cache
(``realgap.encoders.embed_frameset``), computes the gap suite with intervals bootstrapped
over episodes (``realgap.metrics.gap_suite``: DIS and centroid distance, AS per domain,
transfer AS, combined score, MMD, Fréchet distance, C2ST accuracy, coverage;
encoder-dis-as-framework.txt III-C/III-D and DESIGN.md), draws a saliency grid per encoder
(``realgap.explain``, ref. III-E) and thumbnails of the worst-covered real frames, writes
all of it to a new run of the results database in ``out`` (nothing is overwritten) and
builds the HTML report. The database layout is :mod:`realgap.jobs.records`.

Frames come either from one FrameSet holding both domains (``frames`` with
``sim_domain``/``real_domain``) or from two FrameSets (``sim`` and ``real``; a file holding
several domains is narrowed to ``sim_domain``/``real_domain``).
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from realgap.errors import ConfigError, DataError, MissingFileError
from realgap.jobs.records import (
    EXTRA_METRICS,
    GAP_METRICS,
    RUN_KIND,
    SALIENCY_ARTIFACT,
    WORST_ARTIFACT,
    encoder_meta,
    estimate_dict,
    load_scores,
)
from realgap.store import ResultsDB, Score

#: The metrics ``--json`` prints per encoder (issue 3, section 5).
JSON_METRICS: tuple[str, ...] = ("dis", "centroid_distance", "as_sim", "as_real", "as_transfer",
                                 "mmd", "fd", "c2st_acc", "coverage", "outside_fraction",
                                 "combined")
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
    k: int = 384
    """PCA components of the comparison space (DESIGN.md; reduced to min(k, N-1, D))."""
    n_boot: int = 200
    """Bootstrap resamples over episodes for every interval."""
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


@dataclass(frozen=True)
class GapResult:
    """What a gap run produced.

    Attributes:
        run_id: the run's id in the results database.
        db_path: the results database.
        report_path: the HTML report.
        estimates: encoder -> metric -> ``{"value", "lo", "hi", "n"}``.
        ranking: encoder names, best combined score first.
        seconds: wall time of the run.
    """

    run_id: str
    db_path: Path
    report_path: Path
    estimates: dict[str, dict[str, dict[str, float | int | None]]]
    ranking: tuple[str, ...]
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)


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
    from realgap.encoders.registry import RANDOM_SUFFIX, ZOO

    if not names:
        raise ConfigError("--encoders is empty; pass names such as pixels,resnet18-random "
                          "(see `realgap encoders list`)")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"--encoders lists {', '.join(dup)} more than once; name each once")
    for name in names:
        if ":" in name or name in ENCODERS:
            continue
        if name.endswith(RANDOM_SUFFIX) and name[: -len(RANDOM_SUFFIX)] in ZOO:
            continue
        ENCODERS.get(name)  # raises UnknownNameError naming the close matches


# -- pieces of one encoder's result ---------------------------------------------------
def _say(cfg: GapConfig, msg: str) -> None:
    if cfg.progress:
        print(f"[realgap gap] {msg}", file=sys.stderr, flush=True)


def _call_gap_suite(emb_sim: np.ndarray, emb_real: np.ndarray, act_sim: np.ndarray,
                    act_real: np.ndarray, ep_sim: np.ndarray, ep_real: np.ndarray,
                    factors_real: pd.DataFrame | None, cfg: GapConfig) -> dict[str, Any]:
    from realgap.metrics import gap_suite

    return dict(gap_suite(emb_sim, emb_real, act_sim, act_real, ep_sim, ep_real, k=cfg.k,
                          n_boot=cfg.n_boot, rng=cfg.seed, factors_real=factors_real,
                          n_worst=max(cfg.n_worst, 1)))


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
    out = []
    for m in GAP_METRICS + EXTRA_METRICS:
        est = suite.get(m)
        if est is None or not hasattr(est, "value"):
            continue
        extra = {"n_frames": int(getattr(est, "n_frames", 0)), "n_boot": int(getattr(est, "n_boot", 0))}
        out.append(Score(name, m, float(est.value), _f(est.lo), _f(est.hi), int(est.n),
                         extra=extra))
    return out


def _f(x: Any) -> float | None:
    return None if x is None else float(x)


def coverage_details(suite: Mapping[str, Any]) -> Any:
    """The suite's :class:`realgap.metrics.CoverageReport` (per real frame: outside, worst)."""
    cov = dict(suite.get("details", {}) or {}).get("coverage_report")
    if cov is None:
        raise DataError("gap_suite returned no coverage report; update realgap.metrics")
    return cov


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
        out.append(Score(name, "outside_fraction", float(r.fraction_outside), n=int(r.n_frames),
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
    check_encoder_names(cfg.encoders)
    _check_device(cfg.device)


def _check_device(device: str) -> None:
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


def run_gap(cfg: GapConfig) -> GapResult:
    """Run the whole job (see module docstring) and return where its results went."""
    from realgap.encoders import create_encoder, embed_frameset
    from realgap.explain import explain_encoder, fit_action_probe, saliency_support
    from realgap.report import build_report

    t0 = time.perf_counter()
    check_config(cfg)
    sim, real, fs_hash, bc_source = load_frames(cfg)
    for view, flag in ((sim, "--sim-domain"), (real, "--real-domain")):
        if len(view) < 4 or np.unique(view.episodes()).size < 2:
            raise DataError(f"{flag}: {len(view)} frames in {np.unique(view.episodes()).size} "
                            "episode(s); the gap suite needs at least 2 episodes per domain")
    camera = pick_camera(sim, real, cfg.camera)
    cache = Path(cfg.cache) if cfg.cache else Path(cfg.out) / "cache"
    weights = dict(cfg.weights)
    unknown_w = [n for n in weights if n not in cfg.encoders]
    if unknown_w:
        raise ConfigError(f"--weights names {', '.join(unknown_w)}, which is not in --encoders")
    act_sim, act_real = sim.actions().astype(np.float64), real.actions().astype(np.float64)
    ep_sim, ep_real = sim.episodes(), real.episodes()
    factors_real = level_factors(real.factors().reset_index(drop=True).assign(
        task=real.manifest["task"].astype(str).to_numpy()))
    _, bc_episodes = heldout_sim_episodes(sim, cfg.seed)
    rows_sim, rows_real, pair_ids = saliency_pairs(sim, real, cfg.saliency_pairs, cfg.seed)

    encoders = []
    timings: dict[str, float] = {}
    for name in cfg.encoders:
        t = time.perf_counter()
        _say(cfg, f"building encoder {name}")
        enc = create_encoder(name, weights=weights.get(name), device=cfg.device, seed=cfg.seed,
                             frameset=bc_source, camera=camera, episodes=bc_episodes,
                             cache_dir=cache, progress=cfg.progress)
        timings[f"build:{name}"] = time.perf_counter() - t
        encoders.append(enc)

    db_path = Path(cfg.out) / "results.duckdb"
    with ResultsDB(db_path) as db:
        run_id = db.new_run(RUN_KIND, _config_record(cfg, camera, sim, real),
                            name=",".join(cfg.encoders), frameset_hash=fs_hash)
        try:
            for enc in encoders:
                t = time.perf_counter()
                _say(cfg, f"embedding with {enc.name} ({len(sim)} sim + {len(real)} real frames)")
                emb_sim = embed_frameset(enc, sim, camera=camera, cache_dir=cache,
                                         batch_size=cfg.batch_size, progress=cfg.progress)
                emb_real = embed_frameset(enc, real, camera=camera, cache_dir=cache,
                                          batch_size=cfg.batch_size, progress=cfg.progress)
                timings[f"embed:{enc.name}"] = time.perf_counter() - t
                t = time.perf_counter()
                _say(cfg, f"gap suite for {enc.name} ({cfg.n_boot} bootstrap resamples)")
                suite = _call_gap_suite(emb_sim, emb_real, act_sim, act_real, ep_sim, ep_real,
                                        factors_real, cfg)
                scores = _estimate_scores(enc.name, suite)
                cov = coverage_details(suite)
                outside = np.asarray(cov.outside, dtype=bool)
                scores = [Score(s.subject, s.metric, s.value, s.lo, s.hi, s.n, s.group,
                                {**s.extra, "k": int(outside.sum())})
                          if s.metric == "outside_fraction" else s for s in scores]
                scores += factor_breakdown(enc.name, cov.by_factor)
                db.add_scores(run_id, scores)
                timings[f"metrics:{enc.name}"] = time.perf_counter() - t
                meta = encoder_meta(
                    enc.info.as_dict() if hasattr(enc.info, "as_dict") else dict(enc.info),
                    enc.weights_origin, weights_hash=getattr(enc, "weights_hash", ""),
                    camera=camera, n_sim=len(sim), n_real=len(real),
                    **{k: v for k, v in getattr(enc, "extra", {}).items() if _jsonable(v)})
                why = saliency_support(enc)
                if why is None and cfg.saliency_pairs > 0 and not pair_ids:
                    why = ("no saliency grid: no sim and real frames share a pair_id, so there "
                           "is no same-state pair to show side by side")

                worst = np.asarray(cov.worst, dtype=np.int64)[: cfg.n_worst]
                if worst.size:
                    near = _nearest_sim(emb_sim, emb_real[worst])
                    fid_r = real.manifest["frame_id"].to_numpy()
                    fid_s = sim.manifest["frame_id"].to_numpy()
                    imgs_r = real.images(camera, worst)
                    imgs_s = sim.images(camera, near)
                    ratio = np.asarray(getattr(cov, "ratio", cov.real_distance))
                    for rank, (i, j) in enumerate(zip(worst, near, strict=True), start=1):
                        db.add_artifact(run_id, WORST_ARTIFACT,
                                        thumbnail_pair(imgs_r[rank - 1], imgs_s[rank - 1]),
                                        subject=enc.name,
                                        meta={"rank": rank, "frame_id": str(fid_r[i]),
                                              "nearest_sim_frame_id": str(fid_s[j]),
                                              "score": float(ratio[i])})
                if why is None and len(pair_ids):
                    t = time.perf_counter()
                    _say(cfg, f"saliency for {enc.name} on {len(pair_ids)} sim/real pairs")
                    probe = fit_action_probe(emb_sim, act_sim, ep_sim,
                                             rng=probe_split_seed(cfg.seed))
                    try:
                        grid = explain_encoder(enc, sim.images(camera, rows_sim),
                                               real.images(camera, rows_real), pair_ids, probe,
                                               domains=(cfg.sim_domain, cfg.real_domain))
                    except DataError as exc:  # an architecture Grad-CAM cannot read
                        grid, why = None, str(exc)
                        _say(cfg, f"no saliency for {enc.name}: {exc}")
                    if grid is not None:
                        db.add_artifact(run_id, SALIENCY_ARTIFACT, grid.png, subject=enc.name,
                                        meta={"caption": grid.caption, "method": grid.method,
                                              "layer": grid.layer, "pair_ids": list(grid.pair_ids),
                                              "target": "action probe"})
                    timings[f"saliency:{enc.name}"] = time.perf_counter() - t
                if why is not None:
                    meta["saliency"] = why
                db.add_subject(run_id, enc.name, "encoder", meta)
            db.finish_run(run_id, "ok")
        except KeyboardInterrupt:
            db.finish_run(run_id, "interrupted")
            raise
        except BaseException:
            db.finish_run(run_id, "failed")
            raise
        table = load_scores(db, run_id)
        estimates = {enc.name: estimate_dict(table, enc.name) for enc in encoders}
    report = build_report(db_path)

    def key(n: str) -> float:
        v = estimates[n].get("combined", {}).get("value")
        return -1.0 if v is None else float(v)

    ranking = tuple(sorted(estimates, key=key, reverse=True))
    return GapResult(run_id=run_id, db_path=db_path, report_path=report, estimates=estimates,
                     ranking=ranking, seconds=time.perf_counter() - t0, timings=timings)


def _jsonable(v: Any) -> bool:
    try:
        json.dumps(v)
    except (TypeError, ValueError):
        return False
    return True


def ranking_table(result: GapResult) -> str:
    """The short ranking table the CLI prints: combined, DIS, transfer AS with intervals."""

    def cell(name: str, metric: str) -> str:
        e = result.estimates[name].get(metric)
        if not e or e.get("value") is None:
            return "—"
        if e.get("lo") is None or e.get("hi") is None:
            return f"{e['value']:.3f}"
        return f"{e['value']:.3f} [{e['lo']:.3f}, {e['hi']:.3f}]"

    cols = ("combined", "dis", "as_transfer", "outside_fraction")
    header = ["rank", "encoder", *cols]
    rows = [[str(i), n, *(cell(n, m) for m in cols)] for i, n in enumerate(result.ranking, 1)]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    lines = ["  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    return "\n".join(lines)


def result_json(result: GapResult) -> dict[str, Any]:
    """What ``--json`` prints: run id, paths and per encoder each metric's value, lo, hi, n."""
    return {
        "run_id": result.run_id,
        "db": str(result.db_path),
        "report": str(result.report_path),
        "ranking": list(result.ranking),
        "encoders": {n: {m: e[m] for m in JSON_METRICS if m in e}
                     for n, e in result.estimates.items()},
    }
