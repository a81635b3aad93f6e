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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from realgap.errors import ConfigError, DataError, MissingFileError

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
    against real, see :data:`MMRV_CONVENTION`).
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


def correlation(*, sim: Any, real: Any, alpha: float = 0.05) -> Correlation:
    """Pearson (with interval), Spearman and MMRV of paired ``sim``/``real`` rates."""
    from scipy.stats import spearmanr

    if not 0 < float(alpha) < 1:
        raise ConfigError(f"alpha: expected a level in (0, 1), got {alpha!r}")
    s, r = _pair(sim, real)
    pr, lo, hi, p = pearson_fisher(s, r, alpha)
    rho = float("nan") if np.ptp(s) == 0 or np.ptp(r) == 0 else float(spearmanr(s, r).statistic)
    return Correlation(int(s.size), pr, lo, hi, p, rho, mmrv(sim=s, real=r), float(alpha))


def _key_text(keys: list[str], row: Any) -> str:
    """``policy 'a', task 'push'`` for error messages."""
    return ", ".join(f"{k} {row[k]!r}" for k in keys)


def correlate_tables(
    sim: pd.DataFrame, real: pd.DataFrame, *, alpha: float = 0.05,
    sim_name: str = "sim", real_name: str = "real",
) -> tuple[pd.DataFrame, dict[str, Correlation]]:
    """Join sim and real success rates and correlate them per task and pooled.

    Args:
        sim, real: tables with columns ``policy, success_rate`` and optionally ``task``
            (rates in [0, 1]; one row per (policy, task)).
        sim_name, real_name: names used in error messages (the CSV paths).

    Returns:
        ``(points, results)``: the joined table ``policy, task, sim, real`` and a dict
        ``{task or "pooled": Correlation}`` (tasks with fewer than 2 policies are left
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
        frames.append(df[keys].astype(str).assign(rate=rates.to_numpy()))
    points = frames[0].merge(frames[1], on=keys, how="outer", suffixes=("_sim", "_real"),
                             indicator=True)
    missing = points[points["_merge"] != "both"]
    if len(missing):
        row = missing.iloc[0]
        where = sim_name if row["_merge"] == "right_only" else real_name
        raise DataError(f"{where}: no success rate for {_key_text(keys, row)}, "
                        "which the other file has; "
                        "sim and real must list the same policies")
    points = points.drop(columns="_merge").rename(columns={"rate_sim": "sim", "rate_real": "real"})
    if "task" not in points.columns:
        points.insert(1, "task", "")
    results: dict[str, Correlation] = {}
    if "task" in keys:
        for task, grp in points.groupby("task", sort=True):
            if len(grp) >= 2:
                results[str(task)] = correlation(sim=grp["sim"], real=grp["real"], alpha=alpha)
    if len(points) < 2:
        raise DataError(f"{sim_name}: needs at least 2 policies to correlate, got {len(points)}")
    results["pooled"] = correlation(sim=points["sim"], real=points["real"], alpha=alpha)
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


def correlate_csv(sim: str | Path, real: str | Path, *, alpha: float = 0.05
                  ) -> tuple[pd.DataFrame, dict[str, Correlation]]:
    """:func:`correlate_tables` on two CSV files (errors name the file)."""
    if not 0 < float(alpha) < 1:
        raise ConfigError(f"--alpha: expected a level in (0, 1), got {alpha!r}")
    return correlate_tables(read_rates(sim), read_rates(real), alpha=alpha,
                            sim_name=str(sim), real_name=str(real))


def format_correlation(results: dict[str, Correlation]) -> str:
    """Aligned text table, one row per task and the pooled row, then the convention."""
    lvl = next(iter(results.values())).alpha
    head = (f"{'task':<16} {'n':>3}  {'Pearson r':>9}  {100 * (1 - lvl):g}% interval (Fisher z)"
            f"   {'Spearman':>8}  {'MMRV':>6}")
    lines = [head, "-" * len(head)]
    for task, c in results.items():
        ci = "—" if np.isnan(c.pearson_lo) else f"[{c.pearson_lo:+.3f}, {c.pearson_hi:+.3f}]"
        lines.append(f"{task:<16} {c.n:>3}  {c.pearson_r:>+9.3f}  {ci:<27}   "
                     f"{c.spearman_rho:>+8.3f}  {c.mmrv:>6.3f}")
    lines += ["", MMRV_CONVENTION + "."]
    return "\n".join(lines)


def write_correlation(out: str | Path, points: pd.DataFrame, results: dict[str, Correlation], *,
                      sim: str, real: str, alpha: float) -> str:
    """Store a ``correlate`` run (docs/interfaces.md, "Protocol results layout")."""
    from realgap.store import ResultsDB, Score

    with ResultsDB(out) as db:
        run_id = db.new_run("correlate", {"sim": str(sim), "real": str(real), "alpha": alpha,
                                          "convention": MMRV_CONVENTION},
                            name=f"{Path(sim).name} vs {Path(real).name}")
        db.add_subject(run_id, "sim-vs-real", "correlation", {"sim": str(sim), "real": str(real)})
        scores = []
        for grp, c in results.items():
            extra = {"convention": MMRV_CONVENTION, "p_value": c.pearson_p, "alpha": c.alpha}
            scores += [Score("sim-vs-real", "pearson_r", c.pearson_r, c.pearson_lo, c.pearson_hi,
                             c.n, grp, extra),
                       Score("sim-vs-real", "spearman_rho", c.spearman_rho, None, None, c.n, grp, extra),
                       Score("sim-vs-real", "mmrv", c.mmrv, None, None, c.n, grp, extra)]
        for r in points.to_dict(orient="records"):
            scores += [Score(str(r["policy"]), "sim_success_rate", float(r["sim"]), group=str(r["task"])),
                       Score(str(r["policy"]), "real_success_rate", float(r["real"]), group=str(r["task"]))]
        db.add_scores(run_id, scores)
        db.finish_run(run_id)
    return run_id
