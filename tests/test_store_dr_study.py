"""The ``dr-study`` layout (:mod:`realgap.store.study`): a record round-trips exactly
(outcome dtypes and order, NaNs, effects, comparisons), the stored rates are the
reference table's (``realgap.study.dr.factor_table``), and bad records are refused before
anything is written. No simulator: fast."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tiny_runs import dr_study_record

from realgap.errors import DataError
from realgap.store import ResultsDB
from realgap.store.common import extra_of, score_rows
from realgap.store.study import (
    DR_EFFECT_METRIC,
    DR_OUTCOME_DTYPES,
    DR_POOLED,
    DR_RUN_KIND,
    DR_SIM_CONDITION,
    SUCCESS_RATE,
    DrStudyRecord,
    read_dr_study,
    write_dr_study,
)
from realgap.study.dr import factor_table


def _round_trip(tmp_path: Path, rec: DrStudyRecord) -> tuple[DrStudyRecord, DrStudyRecord]:
    with ResultsDB(tmp_path) as db:
        written = write_dr_study(db, rec)
    with ResultsDB(tmp_path, read_only=True) as db:  # reopening checks every JSON column
        return written, read_dr_study(db, str(written.run_id))


def test_round_trip_is_exact(tmp_path: Path) -> None:
    rec = dr_study_record()
    written, back = _round_trip(tmp_path, rec)
    assert written.run_id and written == replace(rec, run_id=written.run_id)
    assert back == written
    expected = pd.DataFrame(columns=list(DR_OUTCOME_DTYPES)).astype(DR_OUTCOME_DTYPES).dtypes
    assert list(back.outcomes.dtypes) == list(expected)
    pd.testing.assert_frame_equal(back.outcomes, rec.outcomes[list(DR_OUTCOME_DTYPES)])
    assert back.effects == written.effects  # the store's FactorEffect both sides
    assert back.settings["Clean"]["factors"] == [] and back.settings["BG-frame"]["granularity"] == "frame"


def test_equality_sees_a_changed_outcome(tmp_path: Path) -> None:
    """The round-trip test could not fail if equality ignored the table."""
    rec = dr_study_record()
    oc = rec.outcomes.copy()
    oc.loc[3, "success"] = not oc.loc[3, "success"]
    assert replace(rec, outcomes=oc) != rec
    assert replace(rec, outcomes=rec.outcomes.astype({"seed": "int32"})) != rec
    assert replace(rec, comparisons=rec.comparisons[:1]) != rec


def test_row_order_nans_and_the_jobs_effect_type_survive(tmp_path: Path) -> None:
    """Rows interleaved across settings read back in their order; an undefined final
    distance and an undefined comparison interval read back undefined; effects given as
    ``realgap.study.dr`` objects (anything with the fields) are stored the same."""
    from realgap.study.dr import factor_effects

    rec = dr_study_record()
    oc = rec.outcomes.sample(frac=1.0, random_state=1).reset_index(drop=True)
    oc.loc[0, "final_distance"] = float("nan")
    comps = ({**rec.comparisons[0], "lo": float("nan"), "hi": float("nan"), "note": "few seeds"},)
    rec = replace(rec, outcomes=oc, comparisons=comps,
                  effects=tuple(factor_effects(oc, n_boot=100, rng=0)))
    written, back = _round_trip(tmp_path, rec)
    assert back == written
    assert back.outcomes["setting"].tolist() == oc["setting"].tolist()
    assert np.isnan(back.outcomes.loc[0, "final_distance"])
    assert np.isnan(back.comparisons[0]["lo"]) and back.comparisons[0]["note"] == "few seeds"


def test_stored_rates_are_the_reference_table(tmp_path: Path) -> None:
    """Pooled = the real-proxy conditions (the job's table); sim is stored on its own."""
    rec = dr_study_record()
    written, _ = _round_trip(tmp_path, rec)
    oc = rec.outcomes
    table = factor_table(oc[oc["condition"] != DR_SIM_CONDITION]).set_index("setting")
    sim = factor_table(oc[oc["condition"] == DR_SIM_CONDITION]).set_index("setting")
    with ResultsDB(tmp_path, read_only=True) as db:
        sc = score_rows(db, str(written.run_id))
        assert db.runs()["kind"].tolist() == [DR_RUN_KIND]
    rates = sc[sc["metric"] == SUCCESS_RATE]
    for setting, row in table.iterrows():
        pooled = rates[(rates["subject"] == setting) & (rates["grp"] == DR_POOLED)].iloc[0]
        ex = extra_of(pooled["extra"])
        assert f"{ex['successes']}/{ex['trials']}" == row["pooled"]
        assert (pooled["value"], pooled["lo"], pooled["hi"]) == pytest.approx(
            (row["rate"], row["wilson_lo"], row["wilson_hi"]))
        for cond in ("base", "BG-lib3", "LT-dim", "BG-lib5", "CP-far"):
            cell = rates[(rates["subject"] == setting) & (rates["grp"] == cond)].iloc[0]
            ex = extra_of(cell["extra"])
            assert f"{ex['successes']}/{ex['trials']}" == row[cond]
        cell = rates[(rates["subject"] == setting) & (rates["grp"] == DR_SIM_CONDITION)].iloc[0]
        ex = extra_of(cell["extra"])
        assert f"{ex['successes']}/{ex['trials']}" == sim.loc[setting, DR_SIM_CONDITION]
        assert ex["factor"] == "sim" and row["pooled"].endswith("/60")  # 3 x 5 x 4, no sim
    eff = sc[sc["metric"] == DR_EFFECT_METRIC]
    assert len(eff) == len(table) and set(eff["n"]) == {3}  # n = seeds


def test_bad_records_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    rec = dr_study_record()
    with ResultsDB(tmp_path) as db:
        with pytest.raises(DataError, match="missing columns.*factor"):
            write_dr_study(db, replace(rec, outcomes=rec.outcomes.drop(columns="factor")))
        with pytest.raises(DataError, match="no description"):
            write_dr_study(db, replace(rec, settings={k: v for k, v in rec.settings.items()
                                                      if k != "LT"}))
        bad = rec.outcomes.astype({"seed": object})
        bad.loc[0, "seed"] = "seven"
        with pytest.raises(DataError, match="wrong type"):
            write_dr_study(db, replace(rec, outcomes=bad))
        assert db.runs().empty


def test_reading_another_kind_is_one_clear_error(tmp_path: Path) -> None:
    with ResultsDB(tmp_path) as db:
        run = db.new_run("rollout", {})
        db.finish_run(run)
        with pytest.raises(DataError, match="not a 'dr-study' run"):
            read_dr_study(db, run)
        with pytest.raises(DataError, match="no run"):
            read_dr_study(db, "nope")
