"""Results layouts: one module per run kind under ``realgap.store``.

Round trips (``read_x(db, write_x(db, record).run_id) == record``) on hand-made records, the
registry of run kinds, and import rules checked on the source (ast): nothing under
``report/`` imports job code, and no layout string is spelled out in a report section or a
writer instead of imported from its store module.
"""

from __future__ import annotations

import ast
import importlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
from tiny_runs import (
    correlation_record,
    degrade_record,
    dyn_gap_record,
    evaluation_record,
    outcomes,
    rollout_record,
    sysid_record,
    vat_record,
)

import realgap
from realgap.errors import DataError
from realgap.report.sections import BUILTIN
from realgap.store import RUN_KINDS, ResultsDB
from realgap.store import correlate as corr_layout
from realgap.store import dynamics as dyn_layout
from realgap.store import evaluate as eval_layout
from realgap.store import gap as gap_layout
from realgap.store import rollout as roll_layout
from realgap.store import vat as vat_layout
from realgap.store.common import finished_runs, read_outcomes

SRC = Path(realgap.__file__).parent


# -- round trips -----------------------------------------------------------------------------
def test_rollout_round_trip(tmp_path: Path) -> None:
    rec = rollout_record()
    with ResultsDB(tmp_path) as db:
        written = roll_layout.write_rollout(db, rec)
    with ResultsDB(tmp_path, read_only=True) as db:
        back = roll_layout.read_rollout(db, str(written.run_id))
        assert [r.kind for r in finished_runs(db, [roll_layout.RUN_KIND])] == ["rollout"]
    assert back.outcomes == rec.outcomes  # order, seeds, returns and factors kept
    assert (back.policy, back.task, back.successes, back.trials) == ("expert", "reach-mug", 3, 4)
    assert (back.rate, back.lo, back.hi) == pytest.approx((rec.rate, rec.lo, rec.hi))
    assert back.policy_meta == {"task": "reach-mug", "head": "bc"}


def test_evaluation_round_trip_keeps_protocol_order(tmp_path: Path) -> None:
    rec = evaluation_record()
    with ResultsDB(tmp_path) as db:
        written = eval_layout.write_evaluation(db, rec)
    with ResultsDB(tmp_path, read_only=True) as db:
        back = eval_layout.read_evaluation(db, str(written.run_id))
    assert [c.name for c in back.conditions] == ["base", "LT-dim", "BG-unseen", "CP-far"]
    assert back.conditions == rec.conditions and back.pooled == rec.pooled
    assert back.outcomes == rec.outcomes
    assert (back.protocol, back.protocol_version, back.task) == ("default", "1", "reach-mug")
    assert back.conditions[0].base and not back.conditions[1].base
    seeds, names, mat = back.success_matrix()
    assert seeds == [100, 101, 102, 103] and names[0] == "base"
    assert mat.shape == (4, 4) and mat[:, 0].tolist() == [1, 1, 1, 0]
    assert mat.sum() == back.pooled.successes


def test_evaluation_without_pooled_row_is_a_data_error(tmp_path: Path) -> None:
    with ResultsDB(tmp_path) as db:
        run = db.new_run(eval_layout.RUN_KIND, {})
        db.finish_run(run)
    with ResultsDB(tmp_path, read_only=True) as db, pytest.raises(DataError, match="no pooled"):
        eval_layout.read_evaluation(db, run)


def test_summary_round_trip(tmp_path: Path) -> None:
    c = eval_layout.ConditionRate
    rec = eval_layout.SummaryRecord(
        "counts.csv", 0.05, ("task",),
        (eval_layout.SummaryRow("BG", c("base", "base", None, 8, 10, 0.8, 0.49, 0.94), {"task": "mug"}),
         eval_layout.SummaryRow("BG", c("light-2", "LT", None, 5, 10, 0.5, 0.24, 0.76), {"task": "mug"})),
        (eval_layout.SummaryRow("BG", c("pooled", None, None, 13, 20, 0.65, 0.43, 0.82),
                                {"task": "mug"}, "group"),))
    with ResultsDB(tmp_path) as db:
        written = eval_layout.write_summary(db, rec)
    with ResultsDB(tmp_path, read_only=True) as db:
        back = eval_layout.read_summary(db, str(written.run_id))
    assert back.conditions == rec.conditions and back.pooled == rec.pooled
    assert back.keys == ("task",) and back.source == "counts.csv"


def test_vat_round_trip(tmp_path: Path) -> None:
    rec = vat_record()
    with ResultsDB(tmp_path) as db:
        written = vat_layout.write_vat(db, rec)
    with ResultsDB(tmp_path, read_only=True) as db:
        back = vat_layout.read_vat(db, str(written.run_id))
    assert back.rates == rec.rates and back.test == rec.test
    ret = back.returns["pi_B"]
    assert (ret.value, ret.lo, ret.hi, ret.n_boot) == (7.0, 5.0, 9.0, 2000)
    assert back.outcomes == rec.outcomes and back.saliency_png == rec.saliency_png
    assert back.saliency_caption == "FullGrad grid" and back.frameset_hash == "deadbeef"
    assert set(back.policies) == {"pi_A", "pi_B", "pi_B'"}


@pytest.mark.parametrize("make", [degrade_record, dyn_gap_record, sysid_record])
def test_dynamics_round_trip(tmp_path: Path, make) -> None:
    rec = make()
    with ResultsDB(tmp_path) as db:
        written = dyn_layout.write_dynamics(db, rec)
    with ResultsDB(tmp_path, read_only=True) as db:
        back = dyn_layout.read_dynamics(db, str(written.run_id))
        groups = set(db.scores(written.run_id)["grp"])
    assert back.points == rec.points and back.kind == rec.kind
    assert (back.env_id, back.factor) == (rec.env_id, rec.factor)
    if rec.kind == dyn_layout.SYSID_KIND:
        assert groups == {""}
    else:
        assert "gravity=1.5" in groups or "gravity=2" in groups
    if rec.outcomes:
        assert back.outcomes["sac Pendulum"][0]["ret"] == 101.0


def test_correlation_round_trip(tmp_path: Path) -> None:
    rec = correlation_record()
    with ResultsDB(tmp_path) as db:
        written = corr_layout.write_correlation(db, rec)
    with ResultsDB(tmp_path, read_only=True) as db:
        back = corr_layout.read_correlation(db, str(written.run_id))
    assert back.stats == rec.stats and back.points == rec.points
    assert back.stat("pooled", corr_layout.MMRV).hi == 0.2 and back.groups() == ["pooled"]


def test_gap_read_gives_encoders_scores_and_coverage(tmp_path: Path) -> None:
    from realgap.store import Score

    with ResultsDB(tmp_path) as db:
        run = db.new_run(gap_layout.RUN_KIND, {})
        db.add_subject(run, "enc", gap_layout.ENCODER_SUBJECT,
                       gap_layout.encoder_meta({"family": "cnn"}, "random-init"))
        db.add_scores(run, [Score("enc", "combined", 0.4, 0.3, 0.5, 12),
                            Score("enc", gap_layout.OUTSIDE_METRIC, 0.25, 0.1, 0.4, 12,
                                  extra={"k": 5, "n_frames": 20}),
                            Score("enc", gap_layout.OUTSIDE_METRIC, 0.5, None, None, 10,
                                  "BG=unseen", {"k": 5})])
        db.finish_run(run)
    with ResultsDB(tmp_path, read_only=True) as db:
        g = gap_layout.read_gap(db, run)
    assert gap_layout.is_random_init(g.encoders["enc"])
    assert g.estimates("enc")["combined"]["value"] == 0.4
    assert sorted(g.coverage["grp"]) == ["", "BG=unseen"]


def test_gap_pieces_round_trip(tmp_path: Path) -> None:
    from tiny_runs import GAP_ENCODERS, write_gap_run

    with ResultsDB(tmp_path) as db:
        run = write_gap_run(db)
    with ResultsDB(tmp_path, read_only=True) as db:
        g = gap_layout.read_gap(db, run)
    assert list(g.encoders) == list(GAP_ENCODERS)
    assert g.flagged["enc-a"] == [{"episode": 1, "step": 2, "frame_id": "real-1-2",
                                   "knn_distance": 2.0, "p_value": 0.01}]
    assert [r["encoder"] for r in g.ranking] == ["enc-a", "enc-b"]
    names = g.artifacts.groupby("name").size().to_dict()
    assert names[gap_layout.SALIENCY_ARTIFACT] == names[gap_layout.WORST_ARTIFACT] == 2
    sal = g.artifacts[g.artifacts["name"] == gap_layout.SALIENCY_ARTIFACT].iloc[0]
    assert json.loads(sal["meta"])["target"] == "action probe"


def test_outcomes_keep_their_written_order(tmp_path: Path) -> None:
    succ = [1, 0, 0, 1, 1, 0, 1]
    rows = outcomes(succ)[::-1]  # written in reverse seed order
    with ResultsDB(tmp_path) as db:
        run = db.new_run("rollout", {})
        db.add_outcomes(run, "p", [o.row() for o in rows])
    with ResultsDB(tmp_path, read_only=True) as db:
        assert read_outcomes(db, run)["p"] == rows


# -- the registry of run kinds -----------------------------------------------------------------
def test_every_run_kind_names_a_module_that_declares_it() -> None:
    for kind, module in RUN_KINDS.items():
        mod = importlib.import_module(module)
        declared = {v for k, v in vars(mod).items()
                    if k.isupper() and k.endswith("KIND") and isinstance(v, str)}
        declared |= set(getattr(mod, "RUN_KINDS", ()))
        assert kind in declared, f"{module} does not declare run kind {kind!r}"


# -- import and layout rules (read on the source) ----------------------------------------------
def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


#: What the report may import of realgap: the store, stats, plotting, its own modules.
REPORT_MAY_IMPORT = ("realgap.store", "realgap.stats", "realgap._plot", "realgap.report",
                     "realgap.errors", "realgap._registry", "realgap._rng")


def test_report_imports_only_the_store() -> None:
    files = sorted((SRC / "report").rglob("*.py"))
    assert len(files) >= 10
    for f in files:
        for name in _imports(f):
            if not name.startswith("realgap"):
                continue
            assert not name.startswith("realgap.jobs"), f"{f.name} imports {name}"
            assert name.startswith(REPORT_MAY_IMPORT), (
                f"{f.relative_to(SRC)} imports {name}; the report reads only realgap.store "
                "(and stats, _plot)")


def test_import_rule_catches_a_jobs_import(tmp_path: Path) -> None:
    """The walker above sees both import forms (a rule that cannot fail is no rule)."""
    bad = tmp_path / "bad.py"
    bad.write_text("import realgap.jobs.gap\nfrom realgap.jobs import records\n")
    assert {"realgap.jobs.gap", "realgap.jobs", "realgap.jobs.records"} <= _imports(bad)


#: Constants that name a piece of layout (kinds, metrics, artifacts), by name.
_LAYOUT_CONSTANT_SUFFIXES = ("KIND", "ARTIFACT", "METRIC", "RATE", "RETURN", "DROP")
_LAYOUT_CONSTANTS = {"PEARSON", "SPEARMAN", "MMRV"}


def _layout_strings() -> dict[str, str]:
    """Layout names that must be imported, not spelled: value -> the store constant.

    Kinds, metrics and artifacts; subject labels and kinds (``"policy"``, ``"pi_B"``) are
    left out: they are also plain words of the jobs that choose them."""
    out: dict[str, str] = {}
    for mod in {*RUN_KINDS.values(), "realgap.store.common", "realgap.store.embedding_map"}:
        m = importlib.import_module(mod)
        for k, v in vars(m).items():
            if not (isinstance(v, str) and k.isupper()) or k.endswith("SUBJECT") or k == "SUBJECT_KIND":
                continue
            # one-word names ("rank", "t", "saliency") are also plain words of tables and
            # dicts; the rule holds for names no one would spell by chance
            distinctive = "_" in v or "-" in v or k.endswith("KIND")
            if distinctive and (k.endswith(_LAYOUT_CONSTANT_SUFFIXES) or k in _LAYOUT_CONSTANTS):
                out.setdefault(v, f"{mod}.{k}")
    return out


#: Writers of runs and the report: they import layout names from realgap.store.
LAYOUT_USERS = (*(f"report/sections/{m}.py" for m in BUILTIN), "report/html.py", "jobs/rollout.py",
                "jobs/evaluate.py", "jobs/vat.py", "jobs/gap.py", "protocol/summarize.py",
                "protocol/correlation.py", "dynamics/runs.py", "dynamics/degrade.py")
#: Same spelling, another format: (file, string) -> why it is not the store's name.
NOT_LAYOUT = {
    ("protocol/correlation.py", "success_rate"): "the column of the user's rates CSV",
    ("protocol/correlation.py", "pooled"): "the key of the pooled result (a dict of this module)",
    ("protocol/summarize.py", "pooled"): "the key and row label of the counts summary",
    ("jobs/evaluate.py", "pooled"): "the name of the job's pooled row",
    # keys of the dicts realgap.store.study's record hands the study section
    ("report/sections/study.py", "success_rate"): "a key of store.study's record",
    ("report/sections/study.py", "pearson_r"): "a key of store.study's record",
    ("report/sections/study.py", "spearman_rho"): "a key of store.study's record",
}


def _string_constants(path: Path) -> set[str]:
    """String literals of a module, except docstrings and names that are not layout: a
    section's ``ANCHOR``, its registered name, ``__all__`` and ``BUILTIN`` entries."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for n in ast.walk(tree):
        if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body and \
                isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant):
            skip.add(id(n.body[0].value))
        targets = n.targets if isinstance(n, ast.Assign) else [n.target] if isinstance(n, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id in ("ANCHOR", "__all__", "BUILTIN") for t in targets):
            skip |= {id(c) for c in ast.walk(n) if isinstance(c, ast.Constant)}
        if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "register_section" and n.args:
            skip.add(id(n.args[0]))
    return {n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip}


def test_no_layout_string_is_spelled_outside_the_store() -> None:
    layout = _layout_strings()
    assert {"vat_saliency", "mean_return", "success_rate", "outside_fraction", "protocol-summary",
            "rollout", "evaluate"} <= set(layout)
    files = sorted({f for pat in LAYOUT_USERS for f in SRC.glob(pat)})
    assert len(files) > 12
    found = [(str(f.relative_to(SRC)), s, layout[s]) for f in files
             for s in _string_constants(f)
             if s in layout and (str(f.relative_to(SRC)), s) not in NOT_LAYOUT]
    assert not found, f"spell these through their store constant: {found}"


def test_layout_rule_sees_a_spelled_string(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('"""doc mentions vat_saliency"""\nANCHOR = "rollout"\nART = "vat_saliency"\n'
                   'rows = db.query("x")["mean_return"]\n')
    assert _string_constants(bad) & set(_layout_strings()) == {"vat_saliency", "mean_return"}


def test_seed_bootstrap_resamples_whole_seeds() -> None:
    """The pooled rate's seed bootstrap: a matrix whose seeds all succeed or all fail
    (perfectly correlated conditions) gets a wider interval than independent trials do."""
    from realgap.report.sections.protocol import seed_bootstrap_pooled
    from realgap.stats import wilson_interval

    mat = np.repeat(np.array([[1.0], [0.0]] * 10), 8, axis=1)  # 20 seeds x 8 conditions
    e = seed_bootstrap_pooled(mat)
    lo, hi = wilson_interval(80, 160)
    assert e.value == 0.5 and e.n == 20
    assert e.lo <= 0.5 <= e.hi and (e.hi - e.lo) > 1.5 * (hi - lo)
    assert seed_bootstrap_pooled(mat) == e  # seeded
    assert math.isnan(seed_bootstrap_pooled(np.zeros((0, 3))).value)
