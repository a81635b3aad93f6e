"""``realgap study dr --preset tiny`` end to end (slow: a few minutes on 2 cores).

Demonstrations per data setting, one end-to-end policy per setting and seed, RL
fine-tuning of the Clean policy, every policy on the same initial states in sim and the
real-proxy conditions through one worker pool, the statistics, the database, ``--json``
and the report; then the stored effects are recomputed from the stored outcomes, and a
second study from scratch with the same seed gives the same outcomes and numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("mujoco")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900),
              pytest.mark.usefixtures("one_torch_thread")]


def test_study_dr_tiny_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from realgap.cli import main
    from realgap.store.db import ResultsDB
    from realgap.store.study import DR_RUN_KIND, read_dr_study
    from realgap.study.dr import compare_settings, factor_effects
    from realgap.study.dr_job import DR_PRESETS, real_outcomes

    out = tmp_path / "dr"
    assert main(["study", "dr", "--preset", "tiny", "--out", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    tiny = DR_PRESETS["tiny"]
    n_real = len(tiny["conditions"]) - 1
    assert [r["setting"] for r in doc["table"]] == list(tiny["settings"])
    per_setting = len(tiny["seeds"]) * n_real * tiny["trials"]
    assert all(r["pooled"].endswith(f"/{per_setting}") for r in doc["table"])
    assert {e["setting"] for e in doc["effects"]} == set(tiny["settings"])
    assert [(c["a"], c.get("measure")) for c in doc["comparisons"]] == [
        ("Clean+RL", None), ("Clean+RL", "final_distance")]
    assert doc["settings"]["Clean+RL"]["finetune"] == "clean"
    assert doc["settings"]["Clean+RL"]["frameset_hash"] == doc["settings"]["Clean"]["frameset_hash"]

    with ResultsDB(out / "results.duckdb", read_only=True) as db:
        rec = read_dr_study(db, db.latest_run(DR_RUN_KIND))
    real = real_outcomes(rec.outcomes)
    n_boot, seed = int(rec.config["n_boot"]), int(rec.config["seed"])
    assert [e.as_dict() for e in factor_effects(real, n_boot=n_boot, rng=seed)] == doc["effects"]
    dist = factor_effects(real, n_boot=n_boot, rng=seed, measure="final_distance")
    assert [e.as_dict() for e in dist] == doc["final_distance_effects"]
    assert [e.as_dict() for e in rec.distance_effects] == doc["final_distance_effects"]
    assert (compare_settings(real, n_boot=n_boot, rng=seed)
            + compare_settings(real, n_boot=n_boot, rng=seed, measure="final_distance")
            == doc["comparisons"])
    html = (out / "report.html").read_text()
    assert 'id="study-dr"' in html

    # same seed, same study (from scratch: data, training, fine-tuning, rollouts)
    assert main(["study", "dr", "--preset", "tiny", "--out", str(tmp_path / "again"),
                 "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    for key in ("table", "sim_table", "effects", "final_distance_effects", "comparisons",
                "settings"):
        assert again[key] == doc[key], key
    with ResultsDB(tmp_path / "again" / "results.duckdb", read_only=True) as db:
        rec2 = read_dr_study(db, db.latest_run(DR_RUN_KIND))
    assert rec2.outcomes.equals(rec.outcomes)
