"""``study dr`` statistics on hand-made outcomes: the reference's table layout, effects
against Clean paired by seed, ranking with ties, determinism. No simulator: fast."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from realgap.errors import DataError
from realgap.study.dr import factor_effects, factor_table


def _outcomes(rates: dict[str, list[float]], n_eps: int = 10,
              conditions: tuple[str, ...] = ("BG-lib3", "LT-dim")) -> pd.DataFrame:
    """setting -> one success rate per seed (the same in every condition)."""
    rows = []
    for s, per_seed in rates.items():
        for seed, p in enumerate(per_seed):
            for c in conditions:
                k = round(p * n_eps)
                for ep in range(n_eps):
                    rows.append({"setting": s, "seed": seed, "condition": c, "episode": ep,
                                 "success": ep < k})
    return pd.DataFrame(rows)


def test_table_in_the_reference_layout() -> None:
    t = factor_table(_outcomes({"Clean": [0.2, 0.4], "BG": [0.6, 0.8]}))
    clean = t[t["setting"] == "Clean"].iloc[0]
    assert clean["BG-lib3"] == "6/20" and clean["pooled"] == "12/40"
    assert clean["wilson_lo"] < 0.3 < clean["wilson_hi"]


def test_effect_is_paired_by_seed() -> None:
    """Seeds differ as much as the settings (0.0 vs 0.5) but BG beats Clean by 0.5 within
    every seed: the paired interval excludes 0."""
    oc = _outcomes({"Clean": [0.0, 0.5, 0.0, 0.5], "BG": [0.5, 1.0, 0.5, 1.0],
                    "LT": [0.0, 0.5, 0.0, 0.5]})
    eff = {e.setting: e for e in factor_effects(oc, n_boot=300, rng=0)}
    assert eff["BG"].effect == pytest.approx(0.5)
    assert 0 < eff["BG"].lo <= 0.5 <= eff["BG"].hi
    assert eff["LT"].effect == 0.0 and eff["LT"].lo == 0.0 == eff["LT"].hi
    assert eff["BG"].rank == 1 and eff["Clean"].rank == eff["LT"].rank == 2
    assert "LT" in eff["Clean"].tied_with
    again = factor_effects(oc, n_boot=300, rng=0)
    assert [e.as_dict() for e in again] == [e.as_dict() for e in factor_effects(oc, n_boot=300, rng=0)]


def test_unpaired_or_baseline_free_outcomes_are_refused() -> None:
    oc = _outcomes({"Clean": [0.5, 0.5], "BG": [0.5, 0.5]})
    with pytest.raises(DataError, match="paired grid"):
        factor_effects(oc.iloc[1:])
    with pytest.raises(DataError, match="no 'Clean'"):
        factor_effects(oc[oc["setting"] == "BG"])
    assert np.isfinite(factor_table(oc)["rate"]).all()
