"""The shared foundation: registry, RNG helper, optional imports, results DB, CLI errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from realgap._optional import require
from realgap._registry import Registry
from realgap._rng import as_rng, child_seeds
from realgap.cli import main
from realgap.errors import (
    ConfigError,
    DataError,
    FormatVersionError,
    MissingDependencyError,
    MissingFileError,
    RealgapError,
    UnknownNameError,
)
from realgap.store import ResultsDB, Score


def test_registry_create_and_close_matches() -> None:
    reg: Registry[int] = Registry("widget")

    @reg.register("resnet18", family="cnn")
    def _make(scale: int = 1) -> int:
        return 18 * scale

    assert reg.create("resnet18", scale=2) == 36
    assert reg.get("resnet18").meta == {"family": "cnn"}
    assert reg.names() == ["resnet18"] and "resnet18" in reg and len(reg) == 1
    with pytest.raises(UnknownNameError, match=r"unknown widget 'resnet19'; did you mean resnet18\?"):
        reg.create("resnet19")
    with pytest.raises(ConfigError, match="already registered"):
        reg.add("resnet18", _make)


def test_errors_subclass_builtins() -> None:
    assert issubclass(ConfigError, ValueError) and issubclass(ConfigError, RealgapError)
    assert issubclass(MissingFileError, FileNotFoundError)
    assert issubclass(MissingDependencyError, ImportError)
    assert str(UnknownNameError("unknown x")) == "unknown x"  # no KeyError quoting


def test_rng_is_explicit_and_deterministic() -> None:
    assert as_rng(3).integers(0, 1000, 5).tolist() == as_rng(3).integers(0, 1000, 5).tolist()
    g = np.random.default_rng(0)
    assert as_rng(g) is g
    assert child_seeds(1, 3) == child_seeds(1, 3) and child_seeds(1, 3) != child_seeds(2, 3)
    with pytest.raises(TypeError):
        as_rng("seed")  # type: ignore[arg-type]


def test_require_names_the_extra() -> None:
    assert require("json") is json
    with pytest.raises(MissingDependencyError, match=r"pip install 'realgap\[torch\]'"):
        require("torch.definitely_not_a_module", extra="torch")


def test_import_realgap_stays_light() -> None:
    code = (
        "import sys, realgap, realgap.store, realgap.report, realgap.cli, realgap.dynamics;"
        "import realgap.dynamics.runs, realgap.dynamics.degrade, realgap.dynamics.sysid;"
        "heavy = [m for m in ('torch', 'mujoco', 'gymnasium', 'timm') if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_results_db_appends_and_roundtrips(tmp_path) -> None:
    with ResultsDB(tmp_path) as db:
        run = db.new_run("gap", {"encoders": ["pixels"], "k": 384}, frameset_hash="abc")
        db.add_subject(run, "pixels", "encoder", {"weights_origin": "none"})
        db.add_scores(run, [Score("pixels", "dis", 0.9, 0.85, 0.95, n=12),
                            Score("pixels", "mmd", 0.1, float("nan"), float("nan"), n=12)])
        db.add_outcomes(run, "expert", [{"condition": "base", "trial": 0, "seed": 7,
                                         "success": True, "ret": 1.5, "length": 40,
                                         "factors": {"BG": 2}}])
        db.add_artifact(run, "grid", b"\x89PNG", subject="pixels")
        db.finish_run(run)
    with ResultsDB(tmp_path) as db:  # reopening adds, never overwrites
        run2 = db.new_run("gap", {})
    with ResultsDB(tmp_path / "results.duckdb", read_only=True) as db:
        runs = db.runs()
        assert list(runs.run_id) == [run, run2] and runs.status.tolist() == ["ok", "running"]
        assert db.latest_run("gap") == run
        s = db.scores(run).set_index("metric")
        assert s.loc["dis", "value"] == 0.9 and s.loc["dis", "lo"] == 0.85 and s.loc["dis", "n"] == 12
        assert np.isnan(s.loc["mmd", "lo"])  # NaN stored as NULL
        o = db.outcomes(run).iloc[0]
        assert bool(o.success) and o.seed == 7 and json.loads(o.factors) == {"BG": 2}
        assert bytes(db.artifacts(run).iloc[0].data) == b"\x89PNG"
        assert json.loads(db.runs().iloc[0].config) == {"encoders": ["pixels"], "k": 384}


def test_results_db_rejects_other_versions(tmp_path) -> None:
    with ResultsDB(tmp_path) as db:
        db.con.execute("UPDATE meta SET value = '999' WHERE key = 'format_version'")
    with pytest.raises(FormatVersionError, match="format_version '999'"):
        ResultsDB(tmp_path)
    with pytest.raises(MissingFileError, match="no results database here"):
        ResultsDB(tmp_path / "nowhere", read_only=True)
    (tmp_path / "text.duckdb").write_text("not a database")
    for read_only in (True, False):
        with pytest.raises(DataError, match="cannot open the results database"):
            ResultsDB(tmp_path / "text.duckdb", read_only=read_only)


def test_cli_turns_errors_into_one_line_and_exit_2(tmp_path, capsys) -> None:
    code = main(["report", str(tmp_path / "missing")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("realgap: error: ") and err.count("\n") == 1 and "Traceback" not in err
    (tmp_path / "text.duckdb").write_text("not a database")
    assert main(["report", str(tmp_path / "text.duckdb")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("realgap: error: ") and err.count("\n") == 1, err


def test_report_builds_from_db_alone(tmp_path, capsys) -> None:
    with ResultsDB(tmp_path) as db:
        run = db.new_run("gap", {"note": "<b>user</b>"})
        db.finish_run(run)
    assert main(["report", str(tmp_path)]) == 0
    html = (tmp_path / "report.html").read_text()
    assert "Provenance" in html and run in html
    assert "<b>user</b>" not in html and "&lt;b&gt;user&lt;/b&gt;" in html


def test_cli_folds_multiline_messages_onto_one_line(capsys) -> None:
    from realgap.cli import fail

    assert fail("x.h5: unable to open\n  file state: closed\n\n  hint") == 2
    err = capsys.readouterr().err
    assert err == "realgap: error: x.h5: unable to open file state: closed hint\n"
