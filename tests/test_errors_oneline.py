"""Issue 10, the CLI side: every bad input ends in one line, nothing is half-written, and
no run is silently wrong.

Each case runs through :func:`realgap.cli.main` (or the library function the CLI calls)
and checks: exit code 2, exactly one stderr line ``realgap: error: ...`` naming the
argument or file and the fix, no traceback, and existing outputs byte-identical.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from realgap.cli import main

SRC = Path(__file__).resolve().parents[1] / "src" / "realgap"
#: A label matplotlib's mathtext parser cannot parse: it used to end ``realgap report``
#: (and the last step of ``gap`` and ``generate``) in a ParseFatalException traceback.
BAD_MATH = r"$\foo{$"


def error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run the CLI, assert exit 2 and one ``realgap: error:`` line; return that line."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("realgap: error: "), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


def digest(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (to show an output is byte-identical)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# -- case 1: a $...$ label in any figure ------------------------------------------------

def test_every_figure_function_draws_dollar_labels_literally(tmp_path: Path) -> None:
    from realgap.data.synthetic import write_synthetic
    from realgap.explain.grid import grid_png
    from realgap.report.sections import correlation, dynamics, gap, protocol
    from realgap.sim.contact_sheet import contact_sheet

    pngs = []
    cond = pd.DataFrame({"grp": [BAD_MATH, "$x$"], "base": [True, False], "value": [0.5, 0.6],
                         "lo": [0.3, 0.4], "hi": [0.7, 0.8]})
    pngs.append(protocol._chart(cond, BAD_MATH))
    pts = pd.DataFrame({"task": [BAD_MATH], "policy": [BAD_MATH], "sim": [0.3], "real": [0.4]})
    pngs.append(correlation._scatter(pts, BAD_MATH))
    curve = pd.DataFrame({"metric": ["prediction_gap"] * 2, "scale": [0.0, 1.0],
                          "value": [0.1, 0.2], "lo": [0.0, 0.1], "hi": [0.2, 0.3]})
    pngs.append(dynamics._curve_png(curve, ["prediction_gap"], BAD_MATH, BAD_MATH))
    wide = {BAD_MATH: {"dis": (0.5, 0.4, 0.6, 10), "as_real": (0.5, 0.4, 0.6, 10),
                       "as_transfer": (0.5, 0.4, 0.6, 10)}}
    pngs.append(gap.scatter_png([BAD_MATH], {BAD_MATH: {}}, wide))
    img = np.zeros((1, 8, 8, 3), np.uint8)
    cam = np.ones((1, 8, 8), np.float32)
    pngs.append(grid_png(BAD_MATH, img, cam, img, cam, [BAD_MATH], (BAD_MATH, "$r$")))
    fs = tmp_path / BAD_MATH.replace("\\", "_")  # a run directory named with $...$
    write_synthetic(fs, domains=(BAD_MATH, "sim"), n_episodes=1, n_frames=2, size=16)
    sheet = contact_sheet(fs, tmp_path / "sheet.png", n_pairs=1, dpi=30)
    pngs.append(sheet.read_bytes())
    assert all(p and p.startswith(b"\x89PNG") for p in pngs)


def test_dollar_text_is_drawn_verbatim_and_rc_is_restored() -> None:
    import matplotlib

    from realgap._plot import literal_text, png_bytes, subplots

    @literal_text
    def draw(title: str, explicit: bool) -> bytes:
        fig, ax = subplots(figsize=(2, 1))
        ax.set_axis_off()
        ax.set_title(title, **({"parse_math": False} if explicit else {}))
        return png_bytes(fig, dpi=40, tight=False)

    before = matplotlib.rcParams["text.parse_math"]
    # "$x^2$" through the helper is the five characters, not a superscript
    assert draw("$x^2$", False) == draw("$x^2$", True)
    assert draw("$x^2$", False) != draw("x2", True)
    assert matplotlib.rcParams["text.parse_math"] == before


def _figure_functions() -> list[tuple[str, str, bool]]:
    """(module, function, decorated) for each function that builds a figure via _plot."""
    found = []
    for path in SRC.rglob("*.py"):
        if path.name == "_plot.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef):
                continue
            calls = {c.func.id for c in ast.walk(node)
                     if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
            if calls & {"subplots", "figure"}:
                decorated = any(isinstance(d, ast.Name) and d.id == "literal_text"
                                for d in node.decorator_list)
                found.append((str(path.relative_to(SRC)), node.name, decorated))
    return found


def test_all_figures_go_through_the_one_plotting_helper() -> None:
    funcs = _figure_functions()
    # the six figure makers (report sections, saliency grids, VAT, contact sheet)
    assert len(funcs) >= 6, funcs
    assert all(decorated for _, _, decorated in funcs), funcs
    for path in SRC.rglob("*.py"):
        if path.name == "_plot.py":
            continue
        text = path.read_text()
        for banned in ("pyplot", "matplotlib.use(", "matplotlib.figure", "savefig("):
            assert banned not in text, f"{path}: {banned} outside realgap._plot"


def test_report_with_dollar_labels_is_written(tmp_path: Path, capsys) -> None:
    from realgap.store import ResultsDB, Score

    with ResultsDB(tmp_path) as db:
        run = db.new_run("correlate", {}, name=BAD_MATH)
        db.add_scores(run, [
            Score("sim-vs-real", "pearson_r", 0.5, 0.1, 0.8, n=3, group=BAD_MATH),
            Score(BAD_MATH, "sim_success_rate", 0.3, n=10, group=BAD_MATH),
            Score(BAD_MATH, "real_success_rate", 0.2, n=10, group=BAD_MATH),
        ])
        db.finish_run(run)
    assert main(["report", str(tmp_path)]) == 0, capsys.readouterr().err
    html = (tmp_path / "report.html").read_text()
    assert "<img src=\"data:image/png;base64" in html and "sim vs real success rate" in html


# -- shared tiny inputs --------------------------------------------------------------------

@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from realgap.data.synthetic import write_synthetic

    d = tmp_path_factory.mktemp("fs") / "fs"
    write_synthetic(d, domains=("sim", "real-proxy"), tasks=("reach-mug",), n_episodes=3,
                    n_frames=6, size=24, action_dim=3, state_dim=5, rng=0)
    return d


def gap_args(frames: Path, out: Path, *extra: str) -> list[str]:
    return ["gap", "--frames", str(frames), "--encoders", "pixels", "--k", "4", "--n-boot", "5",
            "--n-perm", "0", "--saliency-pairs", "0", "--maps", "none", "--out", str(out),
            "--quiet", *extra]


def train_args(frames: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--task", "reach-mug", "--data", str(frames), "--encoder", "small-e2e",
            "--image-size", "24", "--epochs", "1", "--batch-size", "8", "--checkpoint-every", "1",
            "--out", str(out), "--no-progress", *extra]


# -- case 2: usage errors, bad numbers, disk full, broken pipe, MuJoCo noise ----------------

@pytest.mark.parametrize(("argv", "needles"), [
    (["gap"], ["realgap gap: the following arguments are required: --encoders, --out",
               "see `realgap gap --help`"]),
    (["gap", "--encoders", "pixels", "--out", "o", "--seed", "-1"],
     ["argument --seed: must be in 0..4294967295", "got -1"]),
    (["train", "--task", "t", "--data", "d", "--out", "o", "--seed", "2e3"],
     ["realgap train: argument --seed: expected an integer"]),
    (["gap", "--encoders", "pixels", "--out", "o", "--k", "many"],
     ["argument --k: invalid int value: 'many'"]),
    (["report", "x", "--bogus"], ["realgap: unrecognized arguments: --bogus"]),
    (["data", "info"], ["realgap data info: the following arguments are required: PATH"]),
    (["bogus-command"], ["argument COMMAND: invalid choice: 'bogus-command'"]),
])
def test_usage_errors_are_one_line(capsys, argv: list[str], needles: list[str]) -> None:
    line = error_line(capsys, argv)
    assert "usage:" not in line
    for needle in needles:
        assert needle in line, line


def test_help_is_still_the_full_page(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["gap", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: realgap gap") and "--saliency-pairs" in out


def _earlier_results(out: Path) -> None:
    """A results database with one finished run and its report, as an earlier run leaves."""
    from realgap.store import ResultsDB

    with ResultsDB(out) as db:
        db.finish_run(db.new_run("gap", {"note": "earlier"}))
    assert main(["report", str(out)]) == 0


def test_negative_seed_writes_nothing(frames: Path, tmp_path: Path, capsys) -> None:
    _earlier_results(tmp_path)
    capsys.readouterr()
    before = digest(tmp_path)
    line = error_line(capsys, gap_args(frames, tmp_path, "--seed", "-1"))
    assert "--seed" in line
    assert digest(tmp_path) == before


def test_train_image_size_is_bounded(frames: Path, tmp_path: Path, capsys) -> None:
    from realgap.errors import ConfigError
    from realgap.policy.train import _check_image_memory

    line = error_line(capsys, train_args(frames, tmp_path / "o", "--image-size", "99999"))
    assert "--image-size 99999: must be between 16 and 512 pixels" in line
    assert not (tmp_path / "o").exists()
    _check_image_memory(1000, 512)  # 3.9 GB: fine on any machine that runs the tests
    with pytest.raises(ConfigError, match=r"--image-size 512: the 10000000 training frames "
                                          r"would take 39321\.6 GB"):
        _check_image_memory(10_000_000, 512)


def test_seed_range_in_train_config() -> None:
    from realgap.errors import ConfigError
    from realgap.policy import TrainConfig

    TrainConfig(seed=2**32 - 1)
    for bad in (-1, 2**32):
        with pytest.raises(ConfigError, match=f"--seed {bad}: must be in 0..4294967295"):
            TrainConfig(seed=bad)


def _enospc_after_some_bytes(real_write):
    """A write that puts part of the data on disk and then finds the disk full."""
    import errno

    def write(self, data, *args, **kwargs):
        real_write(self, data[: len(data) // 2], *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    return write


def test_disk_full_in_train_leaves_no_tmp_and_keeps_checkpoints(
        frames: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import torch

    out = tmp_path / "run"
    assert main(train_args(frames, out)) == 0
    capsys.readouterr()
    before = digest(out)
    def full_disk_save(obj, f, *args, **kwargs):
        # what torch does on a full disk (measured on a 300 kB tmpfs): part of the bytes
        # reach the file, the write fails with ENOSPC, and closing the zip raises
        # "unexpected pos" while that OSError is being handled
        f.write(b"PK\x03\x04" + bytes(1000))
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        finally:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos")

    monkeypatch.setattr(torch, "save", full_disk_save)
    line = error_line(capsys, train_args(frames, out, "--epochs", "2"))
    assert f"{out}/checkpoints/epoch-0002.pt: No space left on device; free space" in line
    assert "rerun the same command" in line
    assert digest(out) == before  # epoch-0001.pt intact, no epoch-0002.pt(.tmp)
    monkeypatch.undo()
    assert main(train_args(frames, out, "--epochs", "2")) == 0  # the rerun resumes


def test_disk_full_in_gap_keeps_the_previous_report(
        frames: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    from realgap.store import ResultsDB

    _earlier_results(tmp_path)
    capsys.readouterr()
    report = tmp_path / "report.html"
    old_report = report.read_bytes()
    real_write_text = Path.write_text

    def write_text(self, data, *args, **kwargs):
        if self.name.endswith(".html.tmp"):
            return _enospc_after_some_bytes(real_write_text)(self, data, *args, **kwargs)
        return real_write_text(self, data, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    line = error_line(capsys, gap_args(frames, tmp_path))
    assert f"{report}: No space left on device; free space" in line
    assert report.read_bytes() == old_report
    assert not list(tmp_path.glob("*.tmp"))
    with ResultsDB(tmp_path, read_only=True) as db:  # the new run's numbers were kept
        assert db.runs()["status"].tolist() == ["ok", "ok"]
        assert len(db.scores()) > 0


def test_disk_full_in_the_embedding_cache_is_one_line(
        frames: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins
    import errno

    import realgap.encoders.cache as cache_mod

    class FullFile:
        def __init__(self, f):
            self._f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._f.close()

        def __getattr__(self, name):
            return getattr(self._f, name)

        def write(self, data):
            self._f.write(bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

    def full_open(path, mode="r", *args, **kwargs):
        f = builtins.open(path, mode, *args, **kwargs)  # noqa: SIM115 - returned, closed by the caller
        return FullFile(f) if "w" in mode else f

    monkeypatch.setattr(cache_mod, "open", full_open, raising=False)
    line = error_line(capsys, gap_args(frames, tmp_path))
    assert f"--out {tmp_path}: No space left on device; free space" in line
    assert not [p for p in (tmp_path / "cache").rglob("*") if ".tmp" in p.name]


def test_disk_full_in_the_results_database_is_an_os_error(tmp_path: Path) -> None:
    import errno

    import duckdb

    from realgap.store import ResultsDB, Score

    class FullDisk:
        def __init__(self, con):
            self._con = con

        def __getattr__(self, name):
            return getattr(self._con, name)

        def execute(self, sql, *args):
            if sql.lstrip().upper().startswith(("INSERT", "UPDATE")):
                raise duckdb.TransactionException(
                    'TransactionContext Error: Failed to commit: Could not write file '
                    f'"{tmp_path}/results.duckdb.wal": No space left on device')
            return self._con.execute(sql, *args)

        executemany = execute

    db = ResultsDB(tmp_path)
    run = db.new_run("gap", {})
    db.con = FullDisk(db.con)
    with pytest.raises(OSError) as exc:
        db.add_scores(run, [Score("e", "dis", 0.5)])
    assert exc.value.errno == errno.ENOSPC and exc.value.filename == str(db.path)
    db.close()


def test_broken_pipe_exits_quietly(frames: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "realgap.cli", "data", "info", str(frames)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first line (`| head -0`)
    err = proc.stderr.read().decode()
    assert proc.wait() == 141
    assert err == ""


def test_dynamics_commands_do_not_print_mujoco_deprecations(tmp_path: Path, capfd) -> None:
    mujoco = pytest.importorskip("mujoco")
    pytest.importorskip("gymnasium")
    out = tmp_path / "t.npz"
    assert main(["dynamics", "collect", "--steps", "10", "--max-episode-steps", "5",
                 "--perturb", "gravity=1.5", "--out", str(out)]) == 0
    captured = capfd.readouterr()
    assert "settotalmass" not in captured.out + captured.err
    assert captured.out.splitlines()[0].startswith("10 transitions")
    assert mujoco.get_mju_user_warning() is None  # the previous hook is back


def test_other_mujoco_warnings_go_to_stderr(capsys) -> None:
    mujoco = pytest.importorskip("mujoco")
    from realgap.cli.dynamics import _mujoco_warnings_to_stderr

    @_mujoco_warnings_to_stderr
    def run(_args) -> int:
        hook = mujoco.get_mju_user_warning()
        hook("compiler attribute 'settotalmass' is deprecated and will be removed")
        hook("Nan, Inf or huge value in QACC at DOF 0. The simulation is unstable.")
        return 0

    assert run(None) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ("realgap: warning: mujoco: Nan, Inf or huge value in QACC at DOF 0. "
                            "The simulation is unstable.\n")


# -- case 3: wrong results without an error -----------------------------------------------

def test_resume_with_changed_settings_is_refused(frames: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(train_args(frames, out)) == 0
    capsys.readouterr()
    before = digest(out)
    line = error_line(capsys, train_args(
        frames, out, "--epochs", "2", "--lr", "0.01", "--seed", "3", "--batch-size", "4",
        "--domain", "all"))
    assert f"--out {out}: cannot resume" in line
    for item in ("--seed 3 (checkpoint: 0)", "--lr 0.01 (checkpoint: 0.001)",
                 "--batch-size 4 (checkpoint: 8)", "--domain all (checkpoint: sim)"):
        assert item in line, line
    assert "rerun with the checkpoint's values to resume, or pass a new --out" in line
    assert digest(out) == before
    # more epochs and another checkpoint interval are what resuming is for
    assert main(train_args(frames, out, "--epochs", "2", "--checkpoint-every", "2")) == 0


def test_resume_mismatch_names_policy_and_data_fields() -> None:
    from realgap.policy import PolicyConfig, TrainConfig
    from realgap.policy.train import resume_mismatch

    pol, tr = PolicyConfig("reach-mug"), TrainConfig()
    ckpt = {"policy_config": pol.to_dict(), "train_config": tr.to_dict(), "frameset_hash": "a" * 64}
    assert resume_mismatch(ckpt, pol, TrainConfig(epochs=99, checkpoint_every=7, threads=1),
                           "a" * 64) == []
    diffs = resume_mismatch(ckpt, PolicyConfig("reach-mug", head="bc-rnn"),
                            TrainConfig(weight_decay=0.5), "b" * 64)
    assert diffs == ["--head bc-rnn (checkpoint: bc)", "weight_decay 0.5 (checkpoint: 1e-06)",
                     "--data with content hash bbbbbbbbbbbb (checkpoint: aaaaaaaaaaaa)"]


def _foreign_duckdb(path: Path) -> None:
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE sales (id INTEGER, amount DOUBLE)")
    con.execute("INSERT INTO sales VALUES (1, 9.5)")
    con.close()


def test_foreign_duckdb_is_refused_before_writing(frames: Path, tmp_path: Path, capsys) -> None:
    db = tmp_path / "results.duckdb"
    _foreign_duckdb(db)
    before = digest(tmp_path)
    line = error_line(capsys, gap_args(frames, tmp_path))
    assert f"{db}: a DuckDB file that is not a realgap results database (tables: sales)" in line
    assert "realgap writes nothing to it" in line
    after = digest(tmp_path)
    assert after["results.duckdb"] == before["results.duckdb"]
    # at most the embedding cache was filled (reusable, not a result)
    assert all(k in before or k.startswith("cache/") for k in after)
    line = error_line(capsys, ["report", str(db)])
    assert "not a realgap results database" in line


def test_tampered_json_is_one_line_naming_table_and_column(tmp_path: Path, capsys) -> None:
    import duckdb

    from realgap.store import ResultsDB, Score

    with ResultsDB(tmp_path) as db:
        run = db.new_run("gap", {"n_boot": 5})
        db.add_scores(run, [Score("enc", "dis", 0.5, extra={"k": 1})])
        db.finish_run(run)
    assert main(["report", str(tmp_path)]) == 0
    capsys.readouterr()
    for table, column, bad in (("runs", "config", "{not json"), ("scores", "extra", "[1, 2]"),
                               ("runs", "config", "null")):
        con = duckdb.connect(str(tmp_path / "results.duckdb"))
        con.execute(f"UPDATE {table} SET {column} = ?", [bad])
        con.close()
        before = digest(tmp_path)
        line = error_line(capsys, ["report", str(tmp_path)])
        assert (f"{tmp_path / 'results.duckdb'}: table {table}, column {column} of run {run} "
                f"holds {bad!r}, not a JSON object") in line
        assert "restore it from a copy, or write new results with a new --out" in line
        assert digest(tmp_path) == before  # the last good report.html is kept
        con = duckdb.connect(str(tmp_path / "results.duckdb"))
        con.execute(f"UPDATE {table} SET {column} = '{{}}'")
        con.close()


def test_tampered_format_version_is_one_line(tmp_path: Path, capsys) -> None:
    import duckdb

    from realgap.store import ResultsDB

    ResultsDB(tmp_path).close()
    con = duckdb.connect(str(tmp_path / "results.duckdb"))
    con.execute("UPDATE meta SET value = 'one' WHERE key = 'format_version'")
    con.close()
    assert "results database format_version 'one'" in error_line(capsys, ["report", str(tmp_path)])


KILLED_RUN = """
import os, signal, sys
from realgap.store import ResultsDB
db = ResultsDB(sys.argv[1])
print(db.new_run("gap", {"note": "killed"}), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_killed_run_is_shown_and_marked_interrupted(tmp_path: Path, capsys) -> None:
    import subprocess
    import sys

    from realgap.store import ResultsDB

    proc = subprocess.run([sys.executable, "-c", KILLED_RUN, str(tmp_path)],
                          check=False, capture_output=True, text=True)
    assert proc.returncode == -9
    killed = proc.stdout.strip()
    with ResultsDB(tmp_path) as db:
        alive = db.new_run("gap", {"note": "this process, still going"})
    with ResultsDB(tmp_path, read_only=True) as db:
        status = dict(zip(db.runs()["run_id"], db.runs()["status"]))
        # the file itself says so: it was updated when opened for writing above
        stored = dict(db.con.execute("SELECT run_id, status FROM runs").fetchall())
    assert status == {killed: "interrupted", alive: "running"}
    assert stored[killed] == "interrupted"
    assert main(["report", str(tmp_path)]) == 0
    html = (tmp_path / "report.html").read_text()
    assert "interrupted" in html


def test_process_gone_checks_host_pid_and_start_time() -> None:
    import os
    import socket
    import subprocess
    import sys

    from realgap.store.db import _process_token, process_gone

    me, host = os.getpid(), socket.gethostname()
    token = _process_token(me)
    assert not process_gone(host, me, token)
    assert not process_gone("another-host", 1, None)  # cannot tell: stays running
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          check=True, capture_output=True, text=True).stdout.strip()
    assert process_gone(host, int(done), None)
    if token is not None:  # Linux: a reused pid has another start time
        assert process_gone(host, me, token + "0")


def test_report_on_a_tampered_value_inside_valid_json_is_one_line(tmp_path: Path, capsys) -> None:
    import duckdb
    from test_report_gap import fill_db  # a gap run with known numbers (tests/ is on sys.path)

    fill_db(tmp_path / "results.duckdb")
    assert main(["report", str(tmp_path)]) == 0
    capsys.readouterr()
    con = duckdb.connect(str(tmp_path / "results.duckdb"))
    con.execute("""UPDATE scores SET extra = '{"k": "x"}'""")  # valid JSON, wrong type
    con.close()
    before = digest(tmp_path)
    line = error_line(capsys, ["report", str(tmp_path)])
    assert f"{tmp_path / 'results.duckdb'}: the report's" in line
    assert "cannot read the stored results (ValueError" in line
    assert digest(tmp_path) == before
