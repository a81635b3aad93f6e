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
                                 "success": ep < k, "final_distance": 0.02 if ep < k else 0.1})
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


# -- the job's pieces (no simulator) -------------------------------------------------------
def test_comparison_is_a_paired_difference_with_the_effects_draws() -> None:
    """BG/frame beats BG by 0.25 in every seed while the seeds differ by 0.5: the paired
    interval excludes 0; the same rng gives the same numbers as the effects' draws."""
    from realgap.study.dr import compare_settings, paired_replicates

    oc = _outcomes({"Clean": [0.0, 0.5, 0.0, 0.5], "BG": [0.25, 0.75, 0.25, 0.75],
                    "BG/frame": [0.5, 1.0, 0.5, 1.0]}, n_eps=8)
    (c,) = compare_settings(oc, n_boot=300, rng=1)
    assert (c["a"], c["b"]) == ("BG/frame", "BG") and c["n_seeds"] == 4
    assert c["diff"] == pytest.approx(0.25) and 0 < c["lo"] <= 0.25 <= c["hi"]
    settings, _, reps, _ = paired_replicates(oc, 300, 1)
    i, j = settings.index("BG/frame"), settings.index("BG")
    assert np.quantile(reps[i] - reps[j], 0.025) == pytest.approx(c["lo"])
    assert compare_settings(oc, n_boot=300, rng=1) == [c]


def test_every_setting_and_condition_is_well_formed() -> None:
    from realgap.protocol.spec import load_protocol
    from realgap.study.dr import COMPARISONS, DR_SETTINGS
    from realgap.study.dr_job import CONDITIONS, DR_PRESETS, PROTOCOL

    names = {c.name for c in load_protocol(PROTOCOL).conditions}
    assert all(proto in names for _, _, proto in CONDITIONS.values())
    for _, a, b in COMPARISONS:
        assert a in DR_SETTINGS and b in DR_SETTINGS
    supervised = [s for s in DR_SETTINGS.values() if s.finetune is None]
    assert len({s.data_key for s in supervised}) == len(supervised), "two recipes share data"
    assert all(DR_SETTINGS[s.base].finetune is None for s in DR_SETTINGS.values() if s.base)
    assert set(DR_PRESETS["small"]["settings"]) == set(DR_SETTINGS)


@pytest.mark.parametrize("over, match", [
    ({"settings": ("BG", "LT")}, "include Clean"),
    ({"settings": ("Clean", "All+RL-DR")}, "add All"),
    ({"settings": ("Clean", "Dirty")}, "unknown setting 'Dirty'"),
    ({"conditions": ("sim",)}, "at least one real-proxy condition"),
    ({"conditions": ("base", "moon")}, "unknown"),
    ({"seeds": (0, 0)}, "distinct"),
    ({"real_domain": "sim"}, "--real-domain"),
    ({"real_domain": "real-proxy-moon"}, "--real-domain"),
    ({"finetune_iterations": 0}, "--finetune-iterations 0"),
    ({"finetune_std": -1.0}, "std"),
])
def test_config_refuses_what_cannot_be_run(over: dict, match: str) -> None:
    from realgap.errors import ConfigError
    from realgap.study.dr_job import dr_preset_config

    with pytest.raises(ConfigError, match=match):
        dr_preset_config("tiny", "/tmp/unused", **over)


def test_statistics_keep_the_sim_check_out_of_the_real_numbers() -> None:
    from realgap.study.dr_job import dr_preset_config, statistics

    real = _outcomes({"Clean": [0.0, 0.5], "BG": [0.5, 1.0]}, conditions=("base", "TD-4"))
    sim = _outcomes({"Clean": [1.0, 1.0], "BG": [0.0, 0.0]}, conditions=("sim",))
    oc = pd.concat([real, sim], ignore_index=True)
    cfg = dr_preset_config("tiny", "/tmp/unused", settings=("Clean", "BG"), n_boot=100)
    st = statistics(cfg, oc)
    eff = {e.setting: e for e in st.effects}
    assert eff["BG"].effect == pytest.approx(0.5)      # sim's -1.0 would pull it down
    assert "sim" not in st.table.columns and list(st.sim_table["pooled"]) == ["20/20", "0/20"]
    dist = {e.setting: e for e in st.distance_effects}
    assert dist["BG"].effect == pytest.approx(-0.04)   # 0.5 x (0.02 - 0.1): closer
    assert [c["name"] for c in st.comparisons] == []   # no compared pair was played


def test_a_smaller_final_distance_ranks_first() -> None:
    """Known answer where success is rare: every policy fails, but BG ends 10 mm closer
    than Clean in every seed and episode; LT is Clean exactly. BG ranks first alone; the
    success effects are all 0 and tied."""
    rows = []
    for s, d in (("Clean", 0.10), ("BG", 0.09), ("LT", 0.10)):
        for seed, off in enumerate((0.0, 0.05, 0.0)):
            for ep in range(6):
                rows.append({"setting": s, "seed": seed, "condition": "base", "episode": ep,
                             "success": False, "final_distance": d + off + 0.001 * ep})
    oc = pd.DataFrame(rows)
    dist = factor_effects(oc, measure="final_distance", n_boot=300, rng=0)
    assert dist[0].setting == "BG" and dist[0].rank == 1 and not dist[0].tied_with
    assert dist[0].effect == pytest.approx(-0.01) and dist[0].hi < 0
    lt = next(e for e in dist if e.setting == "LT")
    assert lt.effect == 0.0 and "Clean" in lt.tied_with
    succ = factor_effects(oc, n_boot=300, rng=0)
    assert {e.rank for e in succ} == {1} and all(e.effect == 0.0 for e in succ)
    from realgap.study.dr import compare_settings

    (c,) = compare_settings(oc, [("bg vs lt", "BG", "LT")], measure="final_distance",
                            n_boot=300, rng=0)
    assert c["name"] == "bg vs lt (final distance)" and c["measure"] == "final_distance"
    assert c["diff"] == pytest.approx(-0.01) and c["hi"] < 0


def test_cli_study_dr_refuses_a_bad_setting_in_one_line(tmp_path, capsys) -> None:
    from realgap.cli import main

    assert main(["study", "dr", "--out", str(tmp_path / "o"), "--settings", "Clean,Dirty"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown setting 'Dirty'" in err[0]
    assert not (tmp_path / "o").exists()


def test_cli_study_dr_refuses_an_unknown_encoder_before_any_work(tmp_path, capsys) -> None:
    from realgap.cli import main

    out = tmp_path / "o"
    assert main(["study", "dr", "--out", str(out), "--encoder", "small-e2f"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "small-e2f" in err[0]
    assert not out.exists()
