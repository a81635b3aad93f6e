"""Sim-real correlation: MMRV and Pearson on hand-worked examples, the table join."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr, spearmanr

from realgap.errors import DataError
from realgap.protocol.correlation import correlate_tables, correlation, mmrv


def test_mmrv_hand_worked() -> None:
    # sim orders p1 < p3 < p2, real orders p1 < p2 < p3: only the pair (2, 3) is
    # violated, weighted by the real margin |0.4 - 0.6| = 0.2. Per-policy maxima
    # (0, 0.2, 0.2) -> MMRV = 0.4 / 3.
    assert mmrv(sim=[0.1, 0.5, 0.3], real=[0.2, 0.4, 0.6]) == pytest.approx(0.4 / 3)
    # Swapping the roles weighs by the other margin |0.5 - 0.3| = 0.2 here too, but in
    # general it differs: the function is keyword-only for that reason.
    assert mmrv(sim=[0.0, 0.9, 0.1], real=[0.5, 0.4, 0.45]) == pytest.approx((0.1 + 0.1 + 0.05) / 3)
    assert mmrv(sim=[0.5, 0.4, 0.45], real=[0.0, 0.9, 0.1]) == pytest.approx((0.9 + 0.9 + 0.8) / 3)
    assert mmrv(sim=[0.1, 0.2, 0.3], real=[0.3, 0.5, 0.9]) == 0.0
    with pytest.raises(TypeError):
        mmrv([0.1, 0.2], [0.2, 0.1])  # type: ignore[misc]


def test_mmrv_tie_convention_follows_simpler() -> None:
    # a real tie costs nothing; a sim tie against a real order costs the real margin.
    assert mmrv(sim=[0.2, 0.3], real=[0.5, 0.5]) == 0.0
    # policy 1: (F != F) no violation; policy 2: (F != T) costs 0.4 -> mean 0.2
    assert mmrv(sim=[0.3, 0.3], real=[0.2, 0.6]) == pytest.approx(0.2)


def test_pearson_hand_worked_and_fisher_interval() -> None:
    # sim = [0, 1, 2, 3, 4], real = [0, 2, 1, 4, 3]: cov 2.0 / 2.0 -> r = 0.8 exactly.
    c = correlation(sim=[0, 1, 2, 3, 4], real=[0, 2, 1, 4, 3])
    assert c.pearson_r == pytest.approx(0.8)
    z, half = math.atanh(0.8), 1.959963984540054 / math.sqrt(2)
    assert (c.pearson_lo, c.pearson_hi) == pytest.approx((math.tanh(z - half), math.tanh(z + half)))
    ci = pearsonr([0, 1, 2, 3, 4], [0, 2, 1, 4, 3]).confidence_interval()
    assert (c.pearson_lo, c.pearson_hi) == pytest.approx((ci.low, ci.high))
    assert c.spearman_rho == pytest.approx(0.8) and c.n == 5
    small = correlation(sim=[0.1, 0.2, 0.4], real=[0.2, 0.1, 0.5])
    assert math.isnan(small.pearson_lo)  # n < 4: no Fisher interval
    flat = correlation(sim=[0.3, 0.3, 0.3, 0.3], real=[0.1, 0.2, 0.3, 0.4])
    # all-tied sim: policy i is violated by every j with a lower real rate
    assert math.isnan(flat.pearson_r) and flat.mmrv == pytest.approx((0 + 0.1 + 0.2 + 0.3) / 4)


def test_tables_per_task_and_pooled() -> None:
    rng = np.random.default_rng(0)
    pol = [f"p{i}" for i in range(6)]
    sim = pd.DataFrame({"policy": pol * 2, "task": ["a"] * 6 + ["b"] * 6, "success_rate": rng.random(12)})
    real = sim.assign(success_rate=np.clip(sim.success_rate + 0.1 * rng.normal(size=12), 0, 1))
    real = real.iloc[::-1]  # order does not matter: rows are joined by key
    points, res = correlate_tables(sim, real)
    assert set(res) == {"a", "b", "pooled"} and res["pooled"].n == 12
    a = points[points.task == "a"]
    assert res["a"].pearson_r == pytest.approx(pearsonr(a.sim, a.real).statistic)
    assert res["pooled"].spearman_rho == pytest.approx(spearmanr(points.sim, points.real).statistic)


def test_tables_bad_input() -> None:
    sim = pd.DataFrame({"policy": ["a", "b", "c"], "success_rate": [0.1, 0.2, 0.3]})
    with pytest.raises(DataError, match="missing column 'success_rate'"):
        correlate_tables(sim, sim.rename(columns={"success_rate": "rate"}), real_name="real.csv")
    with pytest.raises(DataError, match=r"row 3, column 'success_rate': 45.0 is not a rate"):
        correlate_tables(sim, sim.assign(success_rate=[0.1, 45, 0.3]))
    with pytest.raises(DataError, match="^real: no success rate for policy 'c', which"):
        correlate_tables(sim, sim.iloc[:2])
    with pytest.raises(DataError, match="^sim: row 5 repeats policy 'a'; give one rate per policy$"):
        correlate_tables(pd.concat([sim, sim.iloc[:1]]), sim)
