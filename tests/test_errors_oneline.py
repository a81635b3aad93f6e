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
