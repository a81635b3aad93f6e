"""``gap_suite``: every gap score of one encoder, with intervals, permutation nulls and the
replicates a ranking pairs across encoders.

Spaces (each stated in the result's ``space``):

- the **paper's DIS space** (``dis_paper``): pooled, standardized, PCA to
  ``k_paper = min(k, N - 1, D)`` (default ``k = 384``), min-max to [0, 1]
  (encoder-dis-as-framework.txt III-C, DESIGN.md), exactly as the reference defines it. Its
  ``k`` differs between encoders of different dimension, so ``dis_paper`` is shown, never
  ranked;
- the run's **common space**: the leading ``space_k`` components of the same fit (default
  32; min-max is per component, so the leading components are a fit with ``k = space_k``).
  The job passes the same ``space_k`` for every encoder (cut once to the smallest
  ``min(N - 1, D)`` of the run), so centroid distance, DIS, calibrated DIS, MMD, Fréchet
  distance and C2ST are comparable across encoders. The pooled fit is label-free, so the
  permutation null only relabels episodes (:mod:`realgap.metrics.twosample`);
- **coverage** is fitted on sim frames only (:mod:`realgap.metrics.coverage`, its own
  stated space): a real outlier never stretches the space it is judged in;
- the **action probes** read the raw embeddings (III-D), cross-fitted over episodes
  (:mod:`realgap.metrics.probe`): every episode scored once by a probe that never saw it.

Intervals resample whole episodes within strata (sim, real; and, for an encoder trained by
realgap, its held-out sim episodes apart from the rest) through one counts matrix
(:class:`ResamplePlan`) that the job builds once per run, so every encoder's replicates come
from the same draws and paired differences between encoders are meaningful
(:func:`realgap.stats.rank_with_ties`). What each interval holds fixed: the PCA space, the
kernel subsample and bandwidth, the C2ST's out-of-fold correctness, the probes and the
coverage flags; episodes are what varies. Intervals are never widened; a point outside its
interval is flagged (``Estimate.bias``): distance-type scores are biased upward, and a
bootstrap adds more of the same bias.

The ranking score is ``combined``: the harmonic mean of the null-calibrated DIS
(``dis_cal``) and the transfer AS(sim -> real) (DESIGN.md "Combined score", with the
calibrated DIS the design asks rankings to use).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from realgap._rng import RngLike, as_rng, child_seeds
from realgap.errors import DataError
from realgap.metrics._validate import as_groups, as_matrix, check_positive_int, check_prob
from realgap.metrics.space import fit_gap_space
from realgap.metrics.twosample import (
    ALTERNATIVE,
    Design,
    centroid_distances,
    two_sample_scores,
)
from realgap.stats import (
    Estimate,
    NullResult,
    bootstrap_counts,
    episode_codes,
    estimate_from_replicates,
    null_from_replicates,
    permuted_labels,
)

#: Every Estimate ``gap_suite`` returns, in table order.
METRICS: tuple[str, ...] = (
    "combined", "dis_cal", "dis", "dis_paper", "centroid_distance",
    "as_sim", "as_real", "as_transfer",
    "as_sim_floor", "as_real_floor", "as_sim_ceiling", "as_real_ceiling",
    "mmd", "fd", "c2st_acc", "coverage", "outside_fraction", "density", "naeem_coverage",
)
#: Scores read against a permutation null over episodes.
NULL_METRICS: tuple[str, ...] = ("centroid_distance", "dis", "dis_cal", "dis_paper", "mmd", "fd",
                                 "c2st_acc")
#: The score rankings use (higher is better).
RANK_METRIC = "combined"
#: Default number of leading components of the common space.
SPACE_K = 32
#: Default PCA components of the paper's DIS (DESIGN.md).
PAPER_K = 384


def harmonic_mean(a: float | np.ndarray, b: float | np.ndarray) -> float | np.ndarray:
    """``2ab / (a + b)``, 0 where ``a + b == 0``: the combined score of DIS and AS(sim->real)."""
    a_, b_ = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(a_ + b_ > 0, 2 * a_ * b_ / (a_ + b_), 0.0)
    out = np.where(np.isnan(a_) | np.isnan(b_), np.nan, out)
    return float(out) if out.ndim == 0 else out


# -- one resampling plan per run --------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ResamplePlan:
    """The run's episode design and bootstrap draws, shared by every encoder.

    Built exactly as :func:`realgap.stats.bootstrap_ci` builds its draws (``episode_codes``
    of the pooled episode ids with strata, then ``bootstrap_counts``), so the fast
    per-episode-sums route and the plain resample see the same episodes.

    Attributes:
        codes_sim, codes_real: ``(n_sim,)``, ``(n_real,)`` episode code of each frame.
        ep_real: ``(E,)`` bool, True for a real episode.
        counts: ``(n_boot, E)`` how often each episode is drawn in each replicate.
        strata: ``(n_sim + n_real,)`` the stratum label of each pooled frame.
    """

    codes_sim: np.ndarray
    codes_real: np.ndarray
    ep_real: np.ndarray
    counts: np.ndarray
    strata: np.ndarray

    @property
    def n_boot(self) -> int:
        return int(self.counts.shape[0])


def pooled_strata(n_sim: int, n_real: int, sim_strata: Any = None) -> np.ndarray:
    """Stratum of each pooled frame (sim rows first): ``"sim"`` or ``"sim:<label>"`` for sim
    frames, ``"~real"`` for real ones (sorted last, so real episodes get the last codes)."""
    sim = (np.full(n_sim, "sim", dtype=object) if sim_strata is None else
           np.array([f"sim:{s}" for s in np.asarray(sim_strata)], dtype=object))
    return np.r_[sim, np.full(n_real, "~real", dtype=object)].astype(str)


def resample_plan(ep_sim: Any, ep_real: Any, n_boot: int, rng: RngLike,
                  sim_strata: Any = None) -> ResamplePlan:
    """The run's :class:`ResamplePlan`: sim and real episodes resampled separately (and sim
    episodes within ``sim_strata``, e.g. trained-on vs held-out)."""
    es, er = np.asarray(ep_sim), np.asarray(ep_real)
    if sim_strata is not None and np.shape(sim_strata) != es.shape:
        raise DataError(f"sim_strata: expected one label per sim frame {es.shape}, got "
                        f"{np.shape(sim_strata)}")
    strata = pooled_strata(es.size, er.size, sim_strata)
    groups = np.r_[es.astype(str), er.astype(str)]
    codes, ep_stratum = episode_codes(groups, strata)
    real_code = int(np.unique(strata).size) - 1
    counts = bootstrap_counts(ep_stratum, n_boot, rng)
    return ResamplePlan(codes[:es.size], codes[es.size:], ep_stratum == real_code, counts, strata)


# -- pieces -------------------------------------------------------------------------------
def _as_estimate(cf: Any, code_of: dict[Any, int], counts: np.ndarray, *, alpha: float,
                 method: str) -> tuple[Estimate, np.ndarray | None]:
    """A cross-fitted AS (``realgap.metrics.probe.CrossFitAS``) with replicates on the plan's
    columns."""
    cols = np.array([code_of[e] for e in cf.episode_ids.tolist()], dtype=np.int64)
    reps = cf.replicates(counts[:, cols]) if len(counts) else None
    est = estimate_from_replicates(cf.value, reps, n=cf.n_episodes,
                                   n_frames=int(np.sum(cf.n_frames)), alpha=alpha, method=method)
    return est, reps


def _code_map(ids: np.ndarray, codes: np.ndarray) -> dict[Any, int]:
    return {k: int(v) for k, v in zip(ids.tolist(), codes.tolist(), strict=True)}


def _frame_mean(values: np.ndarray, codes: np.ndarray, counts: np.ndarray, n_eps_total: int,
                *, alpha: float, method: str) -> tuple[Estimate, np.ndarray | None]:
    sums = np.bincount(codes, weights=values.astype(np.float64), minlength=n_eps_total)
    sizes = np.bincount(codes, minlength=n_eps_total).astype(np.float64)
    reps = None
    if len(counts):
        with np.errstate(invalid="ignore", divide="ignore"):
            reps = (counts @ sums) / (counts @ sizes)
    est = estimate_from_replicates(float(values.mean()), reps, n=int(np.count_nonzero(sizes)),
                                   n_frames=len(values), alpha=alpha, method=method)
    return est, reps


def two_sample_gap(emb_sim: np.ndarray, emb_real: np.ndarray, ep_sim: np.ndarray,
                   ep_real: np.ndarray, *, space_k: int = SPACE_K, n_boot: int = 200,
                   n_perm: int = 200, alpha: float = 0.05, rng: RngLike = 0,
                   mmd_max_samples: int = 1500) -> Any:
    """The two-sample scores alone (no probes, no coverage): centroid distance, DIS,
    calibrated DIS, MMD, Fréchet distance and C2ST in the common space of ``space_k``
    components, with intervals and permutation nulls
    (:class:`realgap.metrics.twosample.TwoSampleResult`). Same seeds as :func:`gap_suite`,
    so its two-sample numbers are these up to the PCA solver."""
    n_perm = check_positive_int(n_perm, "n_perm", minimum=0)
    xs, xr = as_matrix(emb_sim, "emb_sim"), as_matrix(emb_real, "emb_real")
    es, er = as_groups(ep_sim, len(xs), "ep_sim"), as_groups(ep_real, len(xr), "ep_real")
    s_boot, s_perm, s_pca, s_two = child_seeds(rng, 8)[:4]
    plan = resample_plan(es, er, check_positive_int(n_boot, "n_boot", minimum=0), s_boot)
    space = fit_gap_space(xs, xr, k=space_k, rng=s_pca)
    design = Design(np.r_[plan.codes_sim, plan.codes_real], plan.ep_real,
                    np.ones(plan.ep_real.shape[0], bool))
    perms = permuted_labels(plan.ep_real, n_perm, s_perm) if n_perm else None
    return two_sample_scores(space.z, design, counts=plan.counts, perms=perms, alpha=alpha,
                             mmd_max_samples=mmd_max_samples, rng=as_rng(s_two))


# -- the suite ---------------------------------------------------------------------------------
#: In-process memo of :func:`_probe_side` (the demo scores one sim side against two real
#: severities: the sim probes are the same fits). Keyed by the bytes of the inputs.
_PROBE_MEMO: dict[str, dict[str, Any]] = {}
_PROBE_MEMO_SIZE = 16


def _probe_side(x: np.ndarray, y: np.ndarray, ep: np.ndarray, state: np.ndarray | None,
                n_folds: int, seed: Any, side: str) -> dict[str, Any]:
    """``as_<side>``, ``as_<side>_floor`` and ``as_<side>_ceiling`` (None without state) of
    one domain: the AS and its floor share each fold's design
    (:func:`realgap.metrics.probe.action_score_with_floor`). Memoized on the inputs when
    ``seed`` is an int (a generator's draws cannot be replayed)."""
    import hashlib

    from realgap.metrics.probe import action_score_ceiling, action_score_with_floor

    key = None
    if isinstance(seed, (int, np.integer)):
        h = hashlib.sha256(f"{side}|{n_folds}|{int(seed)}".encode())
        for a in (x, y, ep, state):
            if a is None:
                h.update(b"none")
            else:
                a = np.ascontiguousarray(a)
                h.update(f"{a.dtype}{a.shape}".encode())
                h.update(a.tobytes())
        key = h.hexdigest()
        if key in _PROBE_MEMO:
            return dict(_PROBE_MEMO[key])
    as_, floor = action_score_with_floor(x, y, ep, n_folds=n_folds, rng=seed)
    out = {f"as_{side}": as_, f"as_{side}_floor": floor}
    if state is not None:
        out[f"as_{side}_ceiling"] = action_score_ceiling(state, y, ep, n_folds=n_folds, rng=seed)
    if key is not None:
        while len(_PROBE_MEMO) >= _PROBE_MEMO_SIZE:
            _PROBE_MEMO.pop(next(iter(_PROBE_MEMO)))
        _PROBE_MEMO[key] = out
    return dict(out)


def _one_blas_thread(fn: Any) -> Any:
    """Run ``fn`` on one BLAS thread.

    The suite's linear algebra is many mid-sized products and decompositions (ridge CV,
    PCA, kernels, Fréchet moments) that gain little from a second thread, while on a busy
    machine OpenBLAS's spin-waiting threads made them up to 10x slower (measured: a
    cross-fitted AS at 807 x 512 took 113 s multithreaded, 10 s on one thread)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from realgap.metrics.distribution import _single_thread

        with _single_thread():
            return fn(*args, **kwargs)

    return wrapper


@_one_blas_thread
def gap_suite(
    emb_sim: np.ndarray,
    emb_real: np.ndarray,
    act_sim: np.ndarray,
    act_real: np.ndarray,
    ep_sim: np.ndarray,
    ep_real: np.ndarray,
    *,
    state_sim: np.ndarray | None = None,
    state_real: np.ndarray | None = None,
    space_k: int = SPACE_K,
    k: int = PAPER_K,
    n_boot: int = 200,
    n_perm: int = 200,
    alpha: float = 0.05,
    interval_method: str = "percentile",
    rng: RngLike = 0,
    plan: ResamplePlan | None = None,
    sim_rows: np.ndarray | None = None,
    n_folds: int = 5,
    factors_real: Any = None,
    mmd_max_samples: int = 1500,
    coverage_k: int = 5,
    coverage_alpha: float = 0.05,
) -> dict[str, Any]:
    """Every gap score of one encoder (module docstring).

    Args:
        emb_sim, emb_real: ``(n_sim, D)``, ``(n_real, D)`` embeddings, same encoder.
        act_sim, act_real: ``(n_sim, A)``, ``(n_real, A)`` actions.
        ep_sim, ep_real: ``(n_sim,)``, ``(n_real,)`` episode ids (separate id spaces).
        state_sim, state_real: optional recorded states ``(n, S)`` for the AS ceilings.
        space_k: leading components of the common space (cut to ``min(N - 1, D)``; a cut
            is reported in ``warnings``). Pass the same value for every encoder of a run.
        k: PCA components of the paper's DIS (``dis_paper``; cut to ``min(k, N - 1, D)``).
        n_boot: bootstrap replicates when no ``plan`` is given (0: no intervals).
        n_perm: permutations of the null (0: no nulls, no ``dis_cal``).
        alpha, interval_method: ``1 - alpha`` intervals, ``"percentile"`` or ``"bc"``.
        rng: one int seed for everything; the same seed gives the same bytes.
        plan: the run's :class:`ResamplePlan` over ALL sim and real frames given here
            (default: :func:`resample_plan` from ``rng``).
        sim_rows: optional ``(n_sim,)`` bool, the sim frames this encoder is scored on
            (an encoder trained by realgap: the episodes it never trained on); the plan
            keeps the run's episode codes, so replicates stay paired with other encoders.
        n_folds: episode-grouped folds of the cross-fitted probes.
        factors_real: per-real-frame factor table for the coverage breakdown.
        mmd_max_samples: kernel subsample per side.
        coverage_k, coverage_alpha: k-NN size and flag level of coverage.

    Returns:
        ``{metric: Estimate}`` for :data:`METRICS` (AS ceilings only when states are given),
        plus ``"nulls"`` (metric -> :class:`~realgap.stats.NullResult`), ``"replicates"``
        (metric -> ``(n_boot,)``), ``"space"`` (the spaces used), ``"warnings"`` (list of
        str), ``"flagged"`` (real rows flagged by coverage with ``knn_distance`` and
        ``p_value``), ``"coverage_report"`` and ``"details"``.
    """
    check_prob(alpha, "alpha")
    n_perm = check_positive_int(n_perm, "n_perm", minimum=0)
    space_k = check_positive_int(space_k, "space_k")
    seeds = child_seeds(rng, 8)
    s_boot, s_perm, s_pca, s_two, s_as, s_cov, _, _ = seeds
    inp = _suite_inputs(emb_sim, emb_real, act_sim, act_real, ep_sim, ep_real, plan, n_boot,
                        s_boot, sim_rows)
    iv = {"alpha": alpha, "method": interval_method}
    warnings: list[str] = []
    paper, common = _spaces(inp, k, space_k, s_pca, warnings)
    design, perms = _design(inp, n_perm, s_perm)
    two = two_sample_scores(common.z, design, counts=inp.plan.counts, perms=perms, alpha=alpha,
                            method=interval_method, mmd_max_samples=mmd_max_samples,
                            rng=as_rng(s_two))
    out: dict[str, Any] = dict(two.estimates)
    nulls: dict[str, NullResult] = dict(two.nulls)
    reps: dict[str, np.ndarray | None] = dict(two.replicates)
    _paper_dis(inp, paper, design, perms, out, reps, nulls, iv)
    ests = _action_scores(inp, state_sim, state_real, n_folds, s_as, out, reps, iv)
    dis_key = _combined(inp, design, out, reps, warnings, iv)
    cov = _coverage_scores(inp, coverage_k, coverage_alpha, factors_real, s_cov, out, reps, iv)
    flagged_rows = np.flatnonzero(cov.flagged)
    out.update({
        "nulls": nulls,
        "replicates": reps,
        "space": _space_record(paper, common, cov, k, space_k, n_folds, list(ests),
                               inp.xs.shape[1]),
        "warnings": warnings,
        "flagged": {"row": flagged_rows,
                    "knn_distance": np.asarray(cov.knn_distance, float)[flagged_rows],
                    "p_value": np.asarray(cov.p_value, float)[flagged_rows]},
        "coverage_report": cov,
        "details": {
            **two.details, "n_sim_frames": len(inp.xs), "n_real_frames": len(inp.xr),
            "n_sim_episodes": int(np.unique(inp.es).size),
            "n_real_episodes": int(np.unique(inp.er).size),
            "n_boot": inp.plan.n_boot, "n_perm": n_perm, "alpha": alpha,
            "interval_method": interval_method, "combined_uses": dis_key,
            "as": {m: cf.as_dict() for m, cf in ests.items() if cf is not None},
            "as_fits": {m: cf for m, cf in ests.items() if cf is not None},
        },
    })
    return out


@dataclass(frozen=True)
class _SuiteInputs:
    """The checked arrays of one encoder's suite: the scored sim rows (``xs``, ``ys``,
    ``es``, their plan codes ``cs``), all real rows, the plan and the rows mask."""

    xs: np.ndarray
    ys: np.ndarray
    es: np.ndarray
    cs: np.ndarray
    xr: np.ndarray
    yr: np.ndarray
    er: np.ndarray
    rows: np.ndarray
    plan: ResamplePlan

    @property
    def n_eps(self) -> int:
        return int(self.plan.ep_real.shape[0])

    @property
    def n_frames(self) -> int:
        return len(self.xs) + len(self.xr)


def _suite_inputs(emb_sim: Any, emb_real: Any, act_sim: Any, act_real: Any, ep_sim: Any,
                  ep_real: Any, plan: ResamplePlan | None, n_boot: int, s_boot: Any,
                  sim_rows: Any) -> _SuiteInputs:
    """Validate the arrays (one action per frame, one action space) and the plan."""
    xs_all, xr = as_matrix(emb_sim, "emb_sim"), as_matrix(emb_real, "emb_real")
    ys_all, yr = as_matrix(act_sim, "act_sim"), as_matrix(act_real, "act_real")
    for y, x, tag in ((ys_all, xs_all, "sim"), (yr, xr, "real")):
        if len(y) != len(x):
            raise DataError(f"act_{tag}: {len(y)} rows but emb_{tag} has {len(x)}; "
                            "pass one action per frame")
    if ys_all.shape[1] != yr.shape[1]:
        raise DataError(f"act_real has {yr.shape[1]} action dims but act_sim has "
                        f"{ys_all.shape[1]}; sim and real must share the action space")
    es_all = as_groups(ep_sim, len(xs_all), "ep_sim")
    er = as_groups(ep_real, len(xr), "ep_real")
    if plan is None:
        plan = resample_plan(es_all, er, check_positive_int(n_boot, "n_boot", minimum=0), s_boot)
    if plan.codes_sim.shape[0] != len(xs_all) or plan.codes_real.shape[0] != len(xr):
        raise DataError("plan: built for other frames; build it from these ep_sim/ep_real")
    rows = np.ones(len(xs_all), bool) if sim_rows is None else np.asarray(sim_rows, bool)
    if rows.shape != (len(xs_all),) or rows.sum() < 2:
        raise DataError("sim_rows: expected a bool mask over the sim frames keeping at least "
                        "2 frames")
    return _SuiteInputs(xs_all[rows], ys_all[rows], es_all[rows], plan.codes_sim[rows],
                        xr, yr, er, rows, plan)


def _spaces(inp: _SuiteInputs, k: int, space_k: int, s_pca: Any,
            warnings: list[str]) -> tuple[Any, Any]:
    """One pooled PCA fit: the paper's space (``k`` components) and the common space (its
    leading ``space_k``); cuts are reported in ``warnings``."""
    n, d = inp.n_frames, inp.xs.shape[1]
    paper = fit_gap_space(inp.xs, inp.xr, k=k, rng=s_pca)
    if paper.k < k:
        warnings.append(f"dis_paper: k cut from {k} to {paper.k} = min(k, N-1, D) with N={n}, "
                        f"D={d}; DIS of encoders with different k are not comparable")
    common = paper.leading(space_k)
    if common.k < space_k:
        warnings.append(f"common space: {space_k} components requested, {common.k} used "
                        f"(N-1={n - 1}, D={d}); pass a smaller --space-k for every encoder")
    return paper, common


def _design(inp: _SuiteInputs, n_perm: int, s_perm: Any) -> tuple[Design, np.ndarray | None]:
    """The episode design over the plan's codes, and ``n_perm`` domain-label permutations
    of whole episodes (None when ``n_perm`` is 0)."""
    codes = np.r_[inp.cs, inp.plan.codes_real]
    used = np.zeros(inp.n_eps, bool)
    used[codes] = True
    design = Design(codes, inp.plan.ep_real, used)
    if not n_perm:
        return design, None
    perms = np.zeros((n_perm, inp.n_eps), bool)
    perms[:, used] = permuted_labels(inp.plan.ep_real[used], n_perm, s_perm)
    return design, perms


def _paper_dis(inp: _SuiteInputs, paper: Any, design: Design, perms: np.ndarray | None,
               out: dict[str, Any], reps: dict[str, np.ndarray | None],
               nulls: dict[str, NullResult], iv: dict[str, Any]) -> None:
    """The paper's DIS in its own k (encoder-dis-as-framework.txt III-C), with its
    bootstrap and null from the same draws as the other scores."""
    s1p = design.ep_sums(paper.z)
    sizes = design.sizes
    sqk = np.sqrt(paper.k)

    def dis_p(ws: np.ndarray, wr: np.ndarray) -> np.ndarray:
        return 1.0 - centroid_distances(s1p, sizes, ws, wr) / sqk

    counts = inp.plan.counts
    pt = float(dis_p(*design.observed_weights())[0])
    reps["dis_paper"] = dis_p(*design.boot_weights(counts)) if len(counts) else None
    out["dis_paper"] = estimate_from_replicates(pt, reps["dis_paper"],
                                                n=int(design.used.sum()),
                                                n_frames=inp.n_frames, **iv)
    if perms is not None:
        nulls["dis_paper"] = null_from_replicates(pt, dis_p(*design.perm_weights(perms)),
                                                  ALTERNATIVE["dis"])


def _action_scores(inp: _SuiteInputs, state_sim: Any, state_real: Any, n_folds: int,
                   s_as: Any, out: dict[str, Any], reps: dict[str, np.ndarray | None],
                   iv: dict[str, Any]) -> dict[str, Any]:
    """The action probes (AS per domain, floors, ceilings, transfer; section III-D),
    cross-fitted over episodes on one BLAS thread (see ``_single_thread``); returns the fits."""
    from realgap.metrics.distribution import _single_thread
    from realgap.metrics.probe import transfer_action_score_all

    code_s, code_r = _code_map(inp.es, inp.cs), _code_map(inp.er, inp.plan.codes_real)
    with _single_thread():
        state_s = None if state_sim is None else np.asarray(state_sim)[inp.rows]
        ests = dict(_probe_side(inp.xs, inp.ys, inp.es, state_s, n_folds, s_as, "sim"))
        ests.update(_probe_side(inp.xr, inp.yr, inp.er, state_real, n_folds, s_as, "real"))
        ests["as_transfer"] = transfer_action_score_all(inp.xs, inp.ys, inp.es, inp.xr,
                                                        inp.yr, inp.er, n_folds=n_folds,
                                                        rng=s_as)
    for name, cf in ests.items():
        if cf is None:
            continue
        cmap = code_r if name in ("as_real", "as_transfer", "as_real_floor",
                                  "as_real_ceiling") else code_s
        out[name], reps[name] = _as_estimate(cf, cmap, inp.plan.counts, **iv)
    return ests


def _combined(inp: _SuiteInputs, design: Design, out: dict[str, Any],
              reps: dict[str, np.ndarray | None], warnings: list[str],
              iv: dict[str, Any]) -> str:
    """The ranking score: harmonic mean of the calibrated DIS (plain DIS without a null)
    and AS(sim -> real), replicate by replicate; returns which DIS it used."""
    dis_key = "dis_cal" if "dis_cal" in out else "dis"
    if dis_key == "dis":
        warnings.append("combined: no permutation null (n_perm=0), so it uses the uncalibrated DIS")
    comb_pt = float(harmonic_mean(out[dis_key].value, out["as_transfer"].value))
    comb_reps = (None if reps.get(dis_key) is None or reps.get("as_transfer") is None
                 else harmonic_mean(reps[dis_key], reps["as_transfer"]))
    reps["combined"] = comb_reps
    out["combined"] = estimate_from_replicates(comb_pt, comb_reps, n=int(design.used.sum()),
                                               n_frames=inp.n_frames, **iv)
    return dis_key


def _coverage_scores(inp: _SuiteInputs, coverage_k: int, coverage_alpha: float,
                     factors_real: Any, s_cov: Any, out: dict[str, Any],
                     reps: dict[str, np.ndarray | None], iv: dict[str, Any]) -> Any:
    """Coverage fitted on sim only: outside fraction and coverage over real frames,
    Naeem et al.'s density (over real frames) and coverage (over sim frames)."""
    from realgap.metrics.coverage import coverage_report

    plan, counts, n_eps = inp.plan, inp.plan.counts, inp.n_eps
    cov = coverage_report(inp.xs, inp.es, inp.xr, inp.er, k=coverage_k, alpha=coverage_alpha,
                          factors=factors_real, rng=s_cov)
    flagged = np.asarray(cov.flagged, dtype=np.float64)
    out["outside_fraction"], reps["outside_fraction"] = _frame_mean(
        flagged, plan.codes_real, counts, n_eps, **iv)
    out["coverage"], reps["coverage"] = _frame_mean(
        1.0 - flagged, plan.codes_real, counts, n_eps, **iv)
    out["density"], reps["density"] = _frame_mean(
        np.asarray(cov.density_count, np.float64) / cov.k, plan.codes_real, counts, n_eps, **iv)
    out["naeem_coverage"], reps["naeem_coverage"] = _frame_mean(
        np.asarray(cov.sim_reached, np.float64), inp.cs, counts, n_eps, **iv)
    return cov


def _space_record(paper: Any, common: Any, cov: Any, k: int, space_k: int, n_folds: int,
                  probes: list[str], dim: int) -> dict[str, Any]:
    """The spaces every score was computed in (the result's ``space``)."""
    return {
        "common": {"name": "pooled PCA, leading components, min-max", "k": common.k,
                   "k_requested": space_k, "retained_variance": common.explained_variance_ratio,
                   "dim": dim, "pca_method": paper.method,
                   "used_by": ["centroid_distance", "dis", "dis_cal", "mmd", "fd", "c2st_acc"]},
        "paper": {"name": "pooled PCA, min-max (ref. III-C)", "k": paper.k, "k_requested": k,
                  "retained_variance": paper.explained_variance_ratio, "used_by": ["dis_paper"]},
        "coverage": dict(cov.space) | {"used_by": ["coverage", "outside_fraction", "density",
                                                   "naeem_coverage"]},
        "probe": {"name": "raw embeddings, ridge probe cross-fitted over episodes",
                  "dim": dim, "n_folds": n_folds, "used_by": probes},
    }
