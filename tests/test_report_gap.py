"""The gap / coverage / saliency report sections, on a results DB filled with known numbers,
and the built page in headless Chromium (no console errors, plot and table present)."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from realgap.cli import main
from realgap.jobs.records import (
    FLAGGED_ARTIFACT,
    GAP_METRICS,
    RANK_ROW,
    SALIENCY_ARTIFACT,
    WORST_ARTIFACT,
    encoder_meta,
)
from realgap.report import build_report
from realgap.report.sections import coverage as coverage_section
from realgap.report.sections import gap as gap_section
from realgap.store import ResultsDB, Score

EVIL = "<script>alert(1)</script>"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _png(colour: tuple[int, int, int], size: tuple[int, int] = (64, 32)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


ENCODERS = {
    "resnet18-random": (
        {"family": "cnn", "embed_dim": 512, "params_m": 11.7, "training": "none",
         "pretrain_data": "none"}, "random-init"),
    "bc-randomized": (
        {"family": "cnn", "embed_dim": 64, "params_m": 0.2, "training": "behaviour cloning",
         "pretrain_data": "realgap sim (randomized)"}, "trained:abc123"),
    EVIL: ({"family": "transformer", "embed_dim": 768, "params_m": 86, "training": "supervised",
            "pretrain_data": "ImageNet $x$"}, "file:/tmp/w.pt (sha256 ab12)"),
}
# combined scores: bc-randomized (0.8) > EVIL (0.5) > resnet18-random (0.3); the ranking
# with ties puts bc-randomized first and the other two at a shared rank 2
COMBINED = {"resnet18-random": 0.3, "bc-randomized": 0.8, EVIL: 0.5}
RANKS = {"bc-randomized": (1, []), EVIL: (2, ["resnet18-random"]),
         "resnet18-random": (2, [EVIL])}
NULL = {"p_value": 0.0099, "null_mean": 0.02, "null_sd": 0.01, "effect": 12.5, "n_perm": 100,
        "alternative": "greater"}
FLAGGED = [{"episode": 3, "step": 4, "frame_id": f"real-{EVIL}", "knn_distance": 2.5,
            "p_value": 0.004}, {"episode": 5, "step": 0, "frame_id": "real-5-0",
                                "knn_distance": 1.5, "p_value": 0.03}]


def fill_db(path: Path, *, n_runs: int = 1) -> list[str]:
    """Write ``n_runs`` gap runs with known scores, coverage breakdown and artifacts."""
    run_ids = []
    with ResultsDB(path) as db:
        for r in range(n_runs):
            run = db.new_run("gap", {"n_boot": 50, "camera": "head", "sim_domain": "sim",
                                     "real_domain": "real-proxy", "run": r},
                             frameset_hash="deadbeef")
            scores = []
            for i, (name, (info, origin)) in enumerate(ENCODERS.items()):
                db.add_subject(run, name, "encoder", encoder_meta(info, origin, camera="head"))
                for j, m in enumerate(GAP_METRICS):
                    v = COMBINED[name] if m == "combined" else 0.1 * (i + 1) + 0.01 * j
                    extra = {"bias": m == "fd", **(NULL if m in ("mmd", "c2st_acc") else {})}
                    scores.append(Score(name, m, v, v - 0.05, v + 0.05, n=40 + j, extra=extra))
                rank, tied = RANKS[name]
                scores.append(Score(name, RANK_ROW, rank, n=40,
                                    extra={"score": "combined", "value": COMBINED[name],
                                           "tied_with": tied}))
                db.add_artifact(run, FLAGGED_ARTIFACT, json.dumps(FLAGGED).encode(),
                                mime="application/json", subject=name)
                scores.append(Score(name, "outside_fraction", 0.25, n=8, group="BG=1",
                                    extra={"k": 2}))
                scores.append(Score(name, "outside_fraction", 0.5, n=4, group="BG=2",
                                    extra={"k": 2}))
                db.add_artifact(run, SALIENCY_ARTIFACT, _png((200, 30, 30)), subject=name,
                                meta={"caption": f"Grad-CAM of {name}; target: action probe",
                                      "method": "gradcam"})
                db.add_artifact(run, WORST_ARTIFACT, _png((30, 30, 200)), subject=name,
                                meta={"rank": 1, "frame_id": f"real-{EVIL}",
                                      "nearest_sim_frame_id": "sim-7", "score": 3.5})
            db.add_scores(run, scores)
            db.finish_run(run)
            run_ids.append(run)
    return run_ids


def test_gap_section_ranks_by_combined_and_labels_random_init(tmp_path: Path) -> None:
    fill_db(tmp_path / "results.duckdb")
    with ResultsDB(tmp_path / "results.duckdb", read_only=True) as db:
        html = gap_section.render(db)
    assert html is not None
    body = html.split("<tbody>")[1].split("</tbody>")[0]
    order = [body.find("bc-randomized"), body.find("&lt;script&gt;"), body.find("resnet18-random")]
    assert -1 not in order and order == sorted(order)
    rows = body.split("<tr>")[1:]
    # shared ranks are marked and each tied row names the other
    assert ">1<" in rows[0] and ">=2<" in rows[1] and ">=2<" in rows[2]
    assert "resnet18-random" in rows[1].split("&lt;/script&gt;", 1)[1]
    assert "badge-random" in html and "[random-init]" in html
    # an interval cell shows value [lo, hi] and n: dis_cal of encoder 0 is 0.1 + 0.01*1 = 0.110
    assert "0.110 <span class='ci'>[0.060, 0.160]</span> <span class='ci'>n=41</span>" in html
    # the null table shows p-values and effects; a point outside its interval says bias
    assert 'id="gap-null-table"' in html and "p=0.0099" in html and "effect +12.5 sd" in html
    assert ">bias</span>" in html
    assert "<script>" not in html


def test_fig4_buckets() -> None:
    assert gap_section.family_of({"family": "ViT-B/16"}) == "Transformer"
    assert gap_section.family_of({"family": "cnn"}) == "CNN"
    assert gap_section.family_of({"family": "pixels"}) == "other"
    assert gap_section.data_kind_of({"pretrain_data": "Ego4D"}) == "manipulation"
    assert gap_section.data_kind_of({"pretrain_data": "ImageNet"}) == "general"
    assert gap_section.data_kind_of({"pretrain_data": "ImageNet",
                                     "weights_origin": "random-init"}) == "none"


def test_coverage_section_shows_counts_and_factor_breakdown(tmp_path: Path) -> None:
    fill_db(tmp_path / "results.duckdb")
    with ResultsDB(tmp_path / "results.duckdb", read_only=True) as db:
        html = coverage_section.render(db)
    assert html is not None
    assert "coverage-factor-table" in html
    assert "0.250 <span class='ci'>2/8</span>" in html and "0.500 <span class='ci'>2/4</span>" in html
    # headline outside_fraction is metric index 12: 0.1*(i+1)+0.12, n=52 -> k = round(0.22*52)
    assert "<span class='ci'>11/52</span>" in html
    # every flagged frame is listed with episode, step and frame_id (escaped)
    assert html.count(">real-5-0</td>") == len(ENCODERS) and "real-&lt;script&gt;" in html
    assert "real-&lt;script&gt;" in html and "<script>" not in html


def test_sections_absent_without_gap_run(tmp_path: Path) -> None:
    with ResultsDB(tmp_path / "results.duckdb") as db:
        db.finish_run(db.new_run("evaluate", {}))
    with ResultsDB(tmp_path / "results.duckdb", read_only=True) as db:
        assert gap_section.render(db) is None and coverage_section.render(db) is None


def test_report_escapes_malicious_encoder_name(tmp_path: Path) -> None:
    fill_db(tmp_path / "results.duckdb", n_runs=2)
    out = build_report(tmp_path)
    html = out.read_text()
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # the only <script> element is the report's own sort script
    assert len(re.findall(r"<script>", html)) == 1
    assert "2 gap runs in this database" in html


def test_report_cli_on_gap_db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fill_db(tmp_path / "results.duckdb")
    assert main(["report", str(tmp_path)]) == 0
    assert "report.html" in capsys.readouterr().out


def _chromium(args: list[str], url: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp / 'chrome-profile'}",
           "--enable-logging=stderr", "--v=0", *args, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make system-deps installs it)")
def test_report_loads_in_headless_chromium(tmp_path: Path) -> None:
    fill_db(tmp_path / "results.duckdb")
    out = build_report(tmp_path)
    proc = _chromium(["--dump-dom"], out.as_uri(), tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln]
    assert console == [], console
    dom = proc.stdout
    # the scatter is a decoded PNG image inside the gap figure, and the table has one row per encoder
    fig = re.search(r'<figure id="gap-scatter"><img src="data:image/png;base64,([^"]+)"', dom)
    assert fig is not None
    img = Image.open(io.BytesIO(__import__("base64").b64decode(fig.group(1))))
    assert img.width > 600 and img.height > 200
    tbody = re.search(r'<table id="gap-table".*?<tbody>(.*?)</tbody>', dom, re.DOTALL)
    assert tbody is not None and tbody.group(1).count("<tr>") == len(ENCODERS)
    assert 'id="coverage-table"' in dom and 'class="saliency"' in dom
    # the malicious name was rendered as text: no alert script element made it into the DOM
    assert "<script>alert(1)</script>" not in dom


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make system-deps installs it)")
def test_report_screenshot_is_not_blank(tmp_path: Path) -> None:
    fill_db(tmp_path / "results.duckdb")
    out = build_report(tmp_path)
    shot = tmp_path / "shot.png"
    proc = _chromium([f"--screenshot={shot}", "--window-size=1400,1600",
                      "--hide-scrollbars"], out.as_uri(), tmp_path)
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    arr = np.asarray(Image.open(shot).convert("RGB"))
    assert arr.shape[:2] == (1600, 1400)
    assert arr.std() > 10  # a page with header, plot and table, not a blank canvas
