"""Success rates from counts alone: ``realgap protocol summarize COUNTS.csv``.

This is how outcomes gathered elsewhere (a real robot, another simulator) enter realgap.
Input: a CSV with columns ``setting, condition, successes, trials``; an optional
``factor`` column names the factor a condition varies; any other column (``task``, ...)
is a grouping key. A condition named ``base`` (any case) is the base condition.

Output, per setting and per combination of grouping keys: the per-condition rows
(k, n, rate k/n, 95% Wilson interval) and the pooled row sum k / sum n with its Wilson
interval (DESIGN.md "Success statistics"; vla-domain-randomization-study.txt 4.2 and
appendix 0.C); with grouping keys, also one pooled row per setting over all of them.
:func:`write_summary` stores it as a ``protocol-summary`` run in the layout of
:mod:`realgap.store.evaluate`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from realgap.errors import DataError, MissingFileError
from realgap.protocol.stats import success_rate

REQUIRED: tuple[str, ...] = ("setting", "condition", "successes", "trials")
_INT = re.compile(r"^\+?\d+(\.0*)?$")


@dataclass(frozen=True)
class CountsSummary:
    """Per-condition and pooled success rates.

    Attributes:
        conditions: one row per input row: ``setting, <keys>, condition, factor, base,
            successes, trials, rate, lo, hi``.
        pooled: ``setting, scope, <keys>, successes, trials, rate, lo, hi, n_conditions``;
            ``scope`` is ``"group"`` for a (setting, key values) row and ``"setting"`` for
            the row over all key values (keys are null there).
        keys: the grouping-key columns.
        alpha: 1 - interval coverage.
        source: where the counts came from.
    """

    conditions: pd.DataFrame
    pooled: pd.DataFrame
    keys: tuple[str, ...]
    alpha: float
    source: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        def records(df: pd.DataFrame) -> list[dict[str, Any]]:
            return json.loads(df.to_json(orient="records"))

        return {"source": self.source, "alpha": self.alpha, "keys": list(self.keys),
                "convention": "rate = k/n with its Wilson interval; pooled = sum k / sum n",
                "pooled": records(self.pooled), "conditions": records(self.conditions)}


def _count(raw: str, src: str, line: int, col: str) -> int:
    text = raw.strip()
    if text.startswith("-") and _INT.match(text[1:]):
        raise DataError(f"{src}: line {line}, column {col!r}: {raw!r} is negative; "
                        "counts must be >= 0")
    if not _INT.match(text):
        raise DataError(f"{src}: line {line}, column {col!r}: {raw!r} is not a whole number; "
                        "write integer counts (e.g. 7)")
    return int(float(text))


def read_counts(path: str | Path) -> pd.DataFrame:
    """Read and validate a counts CSV (module docstring); returns the raw table with
    ``successes``/``trials`` as int64. Errors name the file, the line and the column."""
    p = Path(path)
    if not p.is_file():
        raise MissingFileError(f"{p}: counts file not found; pass a CSV with columns "
                               f"{', '.join(REQUIRED)}")
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False, skipinitialspace=True,
                         encoding="utf-8-sig")  # spreadsheets often write a BOM
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{p}: not a readable CSV ({str(exc).splitlines()[0]}); "
                        f"expected columns {', '.join(REQUIRED)}") from None
    return validate_counts(df, str(p))


def validate_counts(df: pd.DataFrame, source: str = "counts") -> pd.DataFrame:
    """Validate a counts table (strings or numbers); see :func:`read_counts`."""
    df = df.rename(columns=lambda c: str(c).strip())
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise DataError(f"{source}: missing column {missing[0]!r} (has {', '.join(df.columns)}); "
                        f"expected columns {', '.join(REQUIRED)} plus optional grouping keys")
    if df.empty:
        raise DataError(f"{source}: has a header but no rows; add one row per (setting, condition)")
    out = df.copy()
    for col in ("setting", "condition"):
        vals = out[col].astype(str).str.strip()
        empty = np.flatnonzero((vals == "").to_numpy() | out[col].isna().to_numpy())
        if empty.size:
            raise DataError(f"{source}: line {int(empty[0]) + 2}, column {col!r} is empty; "
                            f"name the {col} of every row")
        out[col] = vals
    ks, ns = [], []
    for i, (k_raw, n_raw) in enumerate(zip(out["successes"], out["trials"])):
        k = _count(str(k_raw), source, i + 2, "successes")
        n = _count(str(n_raw), source, i + 2, "trials")
        if k > n:
            raise DataError(f"{source}: line {i + 2}, column 'successes': {k} is greater than "
                            f"trials {n}; successes must be <= trials")
        ks.append(k)
        ns.append(n)
    out["successes"] = np.asarray(ks, dtype=np.int64)
    out["trials"] = np.asarray(ns, dtype=np.int64)
    keys = grouping_keys(out)
    dup = out.duplicated(["setting", *keys, "condition"])
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(f"{source}: line {i + 2} repeats setting {out['setting'].iloc[i]!r}, "
                        f"condition {out['condition'].iloc[i]!r}"
                        + (f" for the same {', '.join(keys)}" if keys else "")
                        + "; add the counts into one row")
    return out


def grouping_keys(df: pd.DataFrame) -> list[str]:
    """Columns other than the required ones and ``factor``, in file order."""
    return [c for c in df.columns if c not in REQUIRED and c != "factor"]


def summarize_counts(df: pd.DataFrame, *, alpha: float = 0.05, source: str = "counts") -> CountsSummary:
    """Per-condition and pooled rates of a validated counts table."""
    df = validate_counts(df, source) if df["successes"].dtype != np.int64 else df
    keys = grouping_keys(df)
    rows = []
    for r in df.to_dict(orient="records"):
        sr = success_rate(r["successes"], r["trials"], alpha)
        base = str(r["condition"]).lower() == "base"
        factor = str(r.get("factor") or "") or ("base" if base else None)
        rows.append({"setting": r["setting"], **{k: r[k] for k in keys},
                     "condition": r["condition"], "factor": factor, "base": base,
                     "successes": sr.successes, "trials": sr.trials, "rate": sr.rate,
                     "lo": sr.lo, "hi": sr.hi})
    conditions = pd.DataFrame(rows)
    pooled_rows = []
    levels = [["setting", *keys], ["setting"]] if keys else [["setting"]]
    for by in levels:
        for name, grp in conditions.groupby(by, sort=False):
            name = name if isinstance(name, tuple) else (name,)
            sr = success_rate(int(grp["successes"].sum()), int(grp["trials"].sum()), alpha)
            key_vals = dict(zip(by, name))
            pooled_rows.append({"setting": key_vals["setting"],
                                "scope": "group" if len(by) > 1 else "setting",
                                **{k: key_vals.get(k) for k in keys},
                                "successes": sr.successes, "trials": sr.trials, "rate": sr.rate,
                                "lo": sr.lo, "hi": sr.hi, "n_conditions": len(grp)})
    return CountsSummary(conditions, pd.DataFrame(pooled_rows), tuple(keys), float(alpha), source)


def write_summary(out: str | Path, summary: CountsSummary) -> str:
    """Store ``summary`` as a ``protocol-summary`` run (layout: :mod:`realgap.store.evaluate`)."""
    from realgap.store import ResultsDB
    from realgap.store.evaluate import ConditionRate, SummaryRecord, SummaryRow
    from realgap.store.evaluate import write_summary as store_summary

    def clean(v: Any) -> Any:
        return None if v is None or (isinstance(v, float) and np.isnan(v)) else v

    def rate(r: dict[str, Any], name: str, factor: Any) -> ConditionRate:
        return ConditionRate(name, clean(factor), None, int(r["successes"]), int(r["trials"]),
                             r["rate"], r["lo"], r["hi"])

    def keys(r: dict[str, Any]) -> dict[str, Any]:
        return {k: clean(r.get(k)) for k in summary.keys}

    conds = tuple(SummaryRow(str(r["setting"]), rate(r, str(r["condition"]), r["factor"]), keys(r))
                  for r in summary.conditions.to_dict(orient="records"))
    pooled = tuple(SummaryRow(str(r["setting"]), rate(r, "pooled", None), keys(r), str(r["scope"]))
                   for r in summary.pooled.to_dict(orient="records"))
    rec = SummaryRecord(summary.source, summary.alpha, summary.keys, conds, pooled)
    with ResultsDB(out) as db:
        written = store_summary(db, rec, name=f"summary of {Path(summary.source).name}")
    return str(written.run_id)


def format_summary(summary: CountsSummary) -> str:
    """Aligned text: per setting (and key values), the conditions then the pooled row."""
    keys = list(summary.keys)
    level = f"{100 * (1 - summary.alpha):g}%"
    title = (f"success rates from {summary.source}  (k/n, rate, {level} Wilson interval; "
             "pooled = sum k / sum n)")
    lines = [title]
    head = f"  {'condition':<20} {'k/n':>11} {'rate':>6}  interval"
    for r in summary.pooled.to_dict(orient="records"):
        if keys and r["scope"] == "setting":
            continue
        label = "  ".join([f"setting {r['setting']}"] + [f"{k} {r[k]}" for k in keys])
        lines += ["", label, head]
        sel = summary.conditions["setting"] == r["setting"]
        for k in keys:
            sel &= summary.conditions[k] == r[k]
        for c in summary.conditions[sel].to_dict(orient="records"):
            lines.append(_line(str(c["condition"]), c))
        lines.append(_line("pooled", r))
    if keys:
        lines += ["", "pooled over " + ", ".join(keys), head.replace("condition", "setting  ")]
        for r in summary.pooled.to_dict(orient="records"):
            if r["scope"] == "setting":
                lines.append(_line(str(r["setting"]), r))
    return "\n".join(lines)


def _line(name: str, r: dict[str, Any]) -> str:
    kn = f"{r['successes']}/{r['trials']}"
    if not r["trials"]:
        return f"  {name:<20} {kn:>11} {'—':>6}  —"
    return f"  {name:<20} {kn:>11} {r['rate']:6.3f}  [{r['lo']:.3f}, {r['hi']:.3f}]"
