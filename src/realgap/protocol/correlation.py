"""Sim-real correlation: does a policy's simulated success rate predict its real one?

Inputs are success rates of the same policies in sim and in real, paired by policy (and
by task when there is a ``task`` column). Numbers:

- Pearson r with a ``1 - alpha`` interval from Fisher's z transform:
  ``z = atanh(r)``, ``se = 1 / sqrt(n - 3)``, ``[tanh(z - z_{1-alpha/2} se),
  tanh(z + z_{1-alpha/2} se)]`` (needs n >= 4; the same interval as
  ``scipy.stats.pearsonr(...).confidence_interval()``), and its two-sided p-value;
- Spearman rho (``scipy.stats.spearmanr``);
- MMRV, mean maximum rank violation (Li et al. 2024, "Evaluating Real-World Robot
  Manipulation Policies in Simulation" (SIMPLER), sec. 4; their
  ``simpler_env/utils/metrics.py``). Convention, stated in every output: **the sim
  ranking is checked against the real ranking, and each violation is weighted by the
  real success-rate margin**::

      RV(i, j) = |real_i - real_j| * 1[(sim_i > sim_j) != (real_i > real_j)]
      MMRV     = mean_i max_j RV(i, j)                      (in [0, 1]; 0 is best)

  Strict comparisons as in SIMPLER: a tie on one side and an order on the other is a
  violation (weighted by the real margin, so a real tie costs nothing). MMRV is not
  symmetric in its arguments and published code passes them in different orders, so
  :func:`mmrv` takes ``sim=`` and ``real=`` by keyword only.

:func:`correlate_tables` computes all three per task and pooled (all (policy, task) pairs
together).

Intervals of Spearman rho and MMRV come from resampling (:func:`bootstrap_rank_stats`): a
two-stage bootstrap (Davison & Hinkley 1997, 3.8) that draws the policies with replacement
and then, when the success rates come with their counts k/n (results databases of
``evaluate`` runs), redraws each drawn policy's sim and real successes
``k* ~ Binomial(n, k/n)``; with rates alone (a CSV) only the policies are drawn. Percentile
intervals, seeded, never widened to contain the point. Pearson r keeps its Fisher-z interval.

Inputs: a CSV of rates (:func:`read_rates`) or a results database of ``evaluate`` runs
(:func:`read_rates_db`: each run's pooled counts sum k / sum n over the protocol's
conditions; the newest run per (policy, task)).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from realgap._rng import RngLike, as_rng
from realgap.errors import ConfigError, DataError, MissingFileError

#: How the Spearman and MMRV intervals are made (stated in every output).
INTERVAL_CONVENTION = (
    "Spearman and MMRV intervals: percentile bootstrap drawing policies with replacement and, "
    "where counts k/n are known, each drawn policy's successes from Binomial(n, k/n)"
)
#: Bootstrap replicates of the Spearman and MMRV intervals unless told otherwise.
N_BOOT = 2000

MMRV_CONVENTION = (
    "MMRV checks the sim ranking against the real ranking: for each policy, the largest "
    "real success-rate margin |real_i - real_j| over the policies j that sim orders "
    "differently (strict >), averaged over policies; 0 = sim preserves the real order"
)


def _pair(sim: Any, real: Any) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(sim, dtype=np.float64).ravel()
    r = np.asarray(real, dtype=np.float64).ravel()
    if s.shape != r.shape:
        raise DataError(f"sim has {s.size} values but real has {r.size}; pass one sim and one "
                        "real success rate per policy")
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(r))):
        raise DataError("sim/real: success rates contain NaN or inf")
    return s, r


def mmrv(*, sim: Any, real: Any) -> float:
    """Mean maximum rank violation of ``sim`` rates against ``real`` rates (module
    docstring). Both ``(n_policies,)``; keyword-only because the metric is not symmetric."""
    s, r = _pair(sim, real)
    if s.size < 2:
        raise DataError(f"mmrv: needs at least 2 policies, got {s.size}")
    violated = (s[:, None] > s[None, :]) != (r[:, None] > r[None, :])
    rv = np.where(violated, np.abs(r[:, None] - r[None, :]), 0.0)
    return float(rv.max(axis=1).mean())


@dataclass(frozen=True)
class Correlation:
    """Sim-real agreement over ``n`` policies (or policy-task pairs).

    ``pearson_lo``/``pearson_hi``: Fisher-z interval (NaN when n < 4 or r undefined);
    ``pearson_p``: two-sided p-value of r = 0; ``spearman_rho``; ``mmrv`` (sim checked
    against real, see :data:`MMRV_CONVENTION`); ``spearman_lo/hi`` and ``mmrv_lo/hi``: the
    bootstrap intervals of :func:`bootstrap_rank_stats` (NaN when ``n_boot == 0``).
    """

    n: int
    pearson_r: float
    pearson_lo: float
    pearson_hi: float
    pearson_p: float
    spearman_rho: float
    mmrv: float
    alpha: float
    convention: str = MMRV_CONVENTION
    spearman_lo: float = float("nan")
    spearman_hi: float = float("nan")
    mmrv_lo: float = float("nan")
    mmrv_hi: float = float("nan")
    n_boot: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict; undefined numbers (NaN) become None."""
        return {k: (None if isinstance(v, float) and np.isnan(v) else v)
                for k, v in asdict(self).items()}


def pearson_fisher(sim: Any, real: Any, alpha: float = 0.05) -> tuple[float, float, float, float]:
    """``(r, lo, hi, p)``: Pearson r, its Fisher-z interval and two-sided p-value."""
    from scipy.stats import norm, pearsonr

    s, r = _pair(sim, real)
    n = s.size
    if n < 2:
        raise DataError(f"pearson: needs at least 2 policies, got {n}")
    if np.ptp(s) == 0 or np.ptp(r) == 0:
        return float("nan"), float("nan"), float("nan"), float("nan")
    if n == 2:  # r = +-1 by construction; no interval, no test
        return float(np.sign(np.corrcoef(s, r)[0, 1])), float("nan"), float("nan"), float("nan")
    res = pearsonr(s, r)
    rho = float(np.clip(res.statistic, -1.0, 1.0))
    if n < 4:
        return rho, float("nan"), float("nan"), float(res.pvalue)
    if abs(rho) == 1.0:
        return rho, rho, rho, float(res.pvalue)
    z = np.arctanh(rho)
    half = float(norm.ppf(1 - alpha / 2)) / np.sqrt(n - 3)
    return rho, float(np.tanh(z - half)), float(np.tanh(z + half)), float(res.pvalue)


def _spearman(s: np.ndarray, r: np.ndarray) -> float:
    """Spearman rho as Pearson r of average ranks (scipy's definition); NaN for a constant side."""
    from scipy.stats import rankdata

    if np.ptp(s) == 0 or np.ptp(r) == 0:
        return float("nan")
    return float(np.corrcoef(rankdata(s), rankdata(r))[0, 1])


def bootstrap_rank_stats(
    *, sim: Any, real: Any, sim_counts: Any = None, real_counts: Any = None,
    n_boot: int = N_BOOT, rng: RngLike = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap replicates ``(spearman (n_boot,), mmrv (n_boot,))`` of paired rates.

    Each replicate draws the n policies with replacement; a side with counts (``(n, 2)``
    rows ``(k, trials)``) then has each drawn policy's rate redrawn as
    ``Binomial(trials, k/trials) / trials`` (a policy with 0 trials keeps its rate). A
    replicate whose ranks are undefined (a constant side) gives NaN for Spearman, which the
    interval leaves out. Same ``rng``, same replicates.
    """
    s, r = _pair(sim, real)
    gen = as_rng(rng)
    counts: list[np.ndarray | None] = []
    for c, rates in ((sim_counts, s), (real_counts, r)):
        if c is None:
            counts.append(None)
            continue
        arr = np.asarray(c, dtype=np.int64).reshape(-1, 2)
        if arr.shape[0] != rates.size:
            raise DataError(f"counts: {arr.shape[0]} rows for {rates.size} policies")
        counts.append(arr[:, 1])
    sp, mm = np.full(n_boot, np.nan), np.full(n_boot, np.nan)
    n = s.size
    for b in range(n_boot):
        idx = gen.integers(0, n, size=n)
        drawn = []
        for rates, trials in ((s, counts[0]), (r, counts[1])):
            x = rates[idx]
            if trials is not None:
                t = trials[idx]
                k = gen.binomial(np.maximum(t, 1), x)
                x = np.where(t > 0, k / np.maximum(t, 1), x)
            drawn.append(x)
        sp[b] = _spearman(drawn[0], drawn[1])
        mm[b] = mmrv(sim=drawn[0], real=drawn[1])
    return sp, mm


def correlation(*, sim: Any, real: Any, alpha: float = 0.05, n_boot: int = 0,
                rng: RngLike = 0, sim_counts: Any = None, real_counts: Any = None) -> Correlation:
    """Pearson (Fisher-z interval), Spearman and MMRV of paired ``sim``/``real`` rates, with
    bootstrap intervals of Spearman and MMRV when ``n_boot > 0`` (module docstring)."""
    from realgap.stats import percentile_interval

    if not 0 < float(alpha) < 1:
        raise ConfigError(f"alpha: expected a level in (0, 1), got {alpha!r}")
    if isinstance(n_boot, bool) or int(n_boot) < 0:
        raise ConfigError(f"n_boot: expected a count >= 0, got {n_boot!r}")
    s, r = _pair(sim, real)
    pr, lo, hi, p = pearson_fisher(s, r, alpha)
    rho = _spearman(s, r)
    point_mmrv = mmrv(sim=s, real=r)
    nan = float("nan")
    sp_ci, mm_ci = (nan, nan), (nan, nan)
    if n_boot:
        sp, mm = bootstrap_rank_stats(sim=s, real=r, sim_counts=sim_counts,
                                      real_counts=real_counts, n_boot=int(n_boot), rng=rng)
        sp_ci, mm_ci = percentile_interval(sp, alpha), percentile_interval(mm, alpha)
    return Correlation(int(s.size), pr, lo, hi, p, rho, point_mmrv, float(alpha),
                       spearman_lo=sp_ci[0], spearman_hi=sp_ci[1], mmrv_lo=mm_ci[0],
                       mmrv_hi=mm_ci[1], n_boot=int(n_boot))


def _key_text(keys: list[str], row: Any) -> str:
    """``policy 'a', task 'push'`` for error messages."""
    return ", ".join(f"{k} {row[k]!r}" for k in keys)


def correlate_tables(
    sim: pd.DataFrame, real: pd.DataFrame, *, alpha: float = 0.05,
    sim_name: str = "sim", real_name: str = "real", n_boot: int = 0, rng: RngLike = 0,
) -> tuple[pd.DataFrame, dict[str, Correlation]]:
    """Join sim and real success rates and correlate them per task and pooled.

    Args:
        sim, real: tables with columns ``policy, success_rate`` and optionally ``task``
            (rates in [0, 1]; one row per (policy, task)) and ``successes``/``trials``
            (the counts behind each rate, which the bootstrap then redraws).
        sim_name, real_name: names used in error messages (the CSV paths).
        n_boot, rng: bootstrap replicates of the Spearman/MMRV intervals (0: none), seed.

    Returns:
        ``(points, results)``: the joined table ``policy, task, sim, real`` (plus
        ``sim_k, sim_n, real_k, real_n`` when a side has counts; ``<NA>`` otherwise) and a
        dict ``{task or "pooled": Correlation}`` (tasks with fewer than 2 policies are left
        out of the per-task results but stay in the pooled one).
    """
    keys = ["policy", "task"] if ("task" in sim.columns or "task" in real.columns) else ["policy"]
    frames = []
    for df, name in ((sim, sim_name), (real, real_name)):
        for col in keys + ["success_rate"]:
            if col not in df.columns:
                raise DataError(f"{name}: missing column {col!r} (has {', '.join(map(str, df.columns))}); "
                                "expected columns policy, success_rate and optionally task")
        rates = pd.to_numeric(df["success_rate"], errors="coerce")
        bad = np.flatnonzero(~((rates >= 0) & (rates <= 1)).to_numpy())
        if bad.size:
            i = int(bad[0])
            raise DataError(f"{name}: row {i + 2}, column 'success_rate': {df['success_rate'].iloc[i]} "
                            "is not a rate in [0, 1]; write rates as fractions, e.g. 0.45")
        dup = df.duplicated(keys)
        if dup.any():
            i = int(np.flatnonzero(dup.to_numpy())[0])
            raise DataError(f"{name}: row {i + 2} repeats {_key_text(keys, df.iloc[i])}; "
                            "give one rate per policy"
                            + (" and task" if "task" in keys else ""))
        frame = df[keys].astype(str).assign(rate=rates.to_numpy())
        has_counts = {"successes", "trials"} <= set(df.columns)
        frame = frame.assign(k=df["successes"].to_numpy() if has_counts else pd.NA,
                             n=df["trials"].to_numpy() if has_counts else pd.NA)
        frames.append(frame)
    points = frames[0].merge(frames[1], on=keys, how="outer", suffixes=("_sim", "_real"),
                             indicator=True)
    missing = points[points["_merge"] != "both"]
    if len(missing):
        row = missing.iloc[0]
        where = sim_name if row["_merge"] == "right_only" else real_name
        raise DataError(f"{where}: no success rate for {_key_text(keys, row)}, "
                        "which the other file has; "
                        "sim and real must list the same policies")
    points = points.drop(columns="_merge").rename(columns={
        "rate_sim": "sim", "rate_real": "real", "k_sim": "sim_k", "n_sim": "sim_n",
        "k_real": "real_k", "n_real": "real_n"})
    if "task" not in points.columns:
        points.insert(1, "task", "")

    def corr(grp: pd.DataFrame) -> Correlation:
        counts = {f"{side}_counts": (grp[[f"{side}_k", f"{side}_n"]].to_numpy(dtype=np.int64)
                                     if grp[f"{side}_n"].notna().all() else None)
                  for side in ("sim", "real")}
        return correlation(sim=grp["sim"], real=grp["real"], alpha=alpha, n_boot=n_boot,
                           rng=rng, **counts)

    results: dict[str, Correlation] = {}
    if "task" in keys:
        for task, grp in points.groupby("task", sort=True):
            if len(grp) >= 2:
                results[str(task)] = corr(grp)
    if len(points) < 2:
        raise DataError(f"{sim_name}: needs at least 2 policies to correlate, got {len(points)}")
    results["pooled"] = corr(points)
    return points.reset_index(drop=True), results


def read_rates(path: str | Path) -> pd.DataFrame:
    """Read a success-rate CSV (``policy, success_rate[, task]``) as strings + numbers."""
    p = Path(path)
    if not p.is_file():
        raise MissingFileError(f"{p}: success-rate file not found; pass a CSV with columns "
                               "policy, success_rate and optionally task")
    try:
        df = pd.read_csv(p, dtype={"policy": str, "task": str}, skipinitialspace=True,
                         encoding="utf-8-sig")
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{p}: not a readable CSV ({str(exc).splitlines()[0]}); "
                        "expected columns policy, success_rate and optionally task") from None
    return df.rename(columns=lambda c: str(c).strip())


def is_results_db(path: str | Path) -> bool:
    """Whether ``path`` names a results database (a ``.duckdb`` file or a directory holding
    ``results.duckdb``) rather than a CSV."""
    p = Path(path)
    return p.suffix == ".duckdb" or p.is_dir()


def read_rates_db(path: str | Path) -> pd.DataFrame:
    """Success counts of every finished ``evaluate`` run in a results database: columns
    ``policy, task, success_rate, successes, trials, run_id`` (the run's pooled counts,
    sum k / sum n over its protocol's conditions); the newest run per (policy, task)."""
    from realgap.store import ResultsDB
    from realgap.store.common import finished_runs
    from realgap.store.evaluate import RUN_KIND, read_evaluation

    with ResultsDB(path, read_only=True) as db:
        runs = finished_runs(db, [RUN_KIND])
        if not runs:
            raise DataError(f"{path}: no finished evaluate run in this results database; run "
                            "`realgap evaluate POLICY --protocol P --out DIR` first, or pass a CSV")
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for info in runs:  # oldest first: a newer run of the same policy and task replaces it
            rec = read_evaluation(db, info.run_id)
            p = rec.pooled
            rows[(rec.policy, rec.task)] = {
                "policy": rec.policy, "task": rec.task, "successes": p.successes,
                "trials": p.trials, "success_rate": p.successes / p.trials if p.trials else np.nan,
                "run_id": info.run_id}
    return pd.DataFrame(list(rows.values()))


def read_source(path: str | Path) -> pd.DataFrame:
    """A rates CSV (:func:`read_rates`) or a results database (:func:`read_rates_db`)."""
    return read_rates_db(path) if is_results_db(path) else read_rates(path)


def correlate_csv(sim: str | Path, real: str | Path, *, alpha: float = 0.05, n_boot: int = 0,
                  rng: RngLike = 0) -> tuple[pd.DataFrame, dict[str, Correlation]]:
    """:func:`correlate_tables` on two sources, each a CSV of rates or a results database of
    ``evaluate`` runs (errors name the file)."""
    if not 0 < float(alpha) < 1:
        raise ConfigError(f"--alpha: expected a level in (0, 1), got {alpha!r}")
    if isinstance(n_boot, bool) or int(n_boot) < 0:
        raise ConfigError(f"--n-boot: expected a count >= 0, got {n_boot!r}")
    return correlate_tables(read_source(sim), read_source(real), alpha=alpha,
                            sim_name=str(sim), real_name=str(real), n_boot=n_boot, rng=rng)


#: The name under which :func:`correlate_csv` is meant when the sources are databases too.
correlate_sources = correlate_csv


def format_correlation(results: dict[str, Correlation]) -> str:
    """Aligned text table, one row per task and the pooled row, then the convention."""
    lvl = next(iter(results.values())).alpha
    level = f"{100 * (1 - lvl):g}%"
    head = (f"{'task':<16} {'n':>3}  {'Pearson r':>9}  {level + ' (Fisher z)':<18}  "
            f"{'Spearman':>8}  {level + ' (bootstrap)':<19}  {'MMRV':>6}  {level + ' (bootstrap)'}")
    lines = [head, "-" * len(head)]

    def ci(lo: float, hi: float, sign: str = "+") -> str:
        return "—" if np.isnan(lo) else f"[{lo:{sign}.3f}, {hi:{sign}.3f}]"

    for task, c in results.items():
        lines.append(f"{task:<16} {c.n:>3}  {c.pearson_r:>+9.3f}  {ci(c.pearson_lo, c.pearson_hi):<18}  "
                     f"{c.spearman_rho:>+8.3f}  {ci(c.spearman_lo, c.spearman_hi):<19}  "
                     f"{c.mmrv:>6.3f}  {ci(c.mmrv_lo, c.mmrv_hi, '')}")
    lines += ["", MMRV_CONVENTION + "."]
    n_boot = next(iter(results.values())).n_boot
    if n_boot:
        lines.append(f"{INTERVAL_CONVENTION}; {n_boot} replicates.")
    return "\n".join(lines)


def write_correlation(out: str | Path, points: pd.DataFrame, results: dict[str, Correlation], *,
                      sim: str, real: str, alpha: float) -> str:
    """Store a ``correlate`` run (layout: :mod:`realgap.store.correlate`); returns its id."""
    from realgap.store import ResultsDB
    from realgap.store import correlate as layout

    def counts(r: dict[str, Any], side: str) -> tuple[int, int] | None:
        k, n = r.get(f"{side}_k"), r.get(f"{side}_n")
        return None if n is None or pd.isna(n) or k is None else (int(k), int(n))

    stats = []
    for grp, c in results.items():
        boot = {"interval": INTERVAL_CONVENTION, "n_boot": c.n_boot} if c.n_boot else {}
        stats += [
            layout.CorrelationStat(grp, layout.PEARSON, c.pearson_r, c.pearson_lo, c.pearson_hi,
                                   c.n, {"p_value": c.pearson_p, "interval": "Fisher z"}),
            layout.CorrelationStat(grp, layout.SPEARMAN, c.spearman_rho, c.spearman_lo,
                                   c.spearman_hi, c.n, boot),
            layout.CorrelationStat(grp, layout.MMRV, c.mmrv, c.mmrv_lo, c.mmrv_hi, c.n, boot)]
    pts = tuple(layout.RatePoint(str(r["policy"]), str(r["task"]), float(r["sim"]), float(r["real"]),
                                 counts(r, "sim"), counts(r, "real"))
                for r in points.to_dict(orient="records"))
    rec = layout.CorrelationRecord(str(sim), str(real), float(alpha), MMRV_CONVENTION,
                                   tuple(stats), pts, name=f"{Path(sim).name} vs {Path(real).name}")
    with ResultsDB(out) as db:
        return str(layout.write_correlation(db, rec).run_id)
