"""`realgap demo`: the embedded default end to end (slow), and its wiring (fast)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from realgap.cli import main
from realgap.jobs.demo import DEMO_ENCODERS, _frames_ready
from realgap.jobs.gap import check_encoder_names
from realgap.store import ResultsDB


def test_demo_encoders_are_registered_and_offline() -> None:
    check_encoder_names(DEMO_ENCODERS)  # raises UnknownNameError otherwise
    from realgap.encoders import weights_status

    assert all(weights_status(n)[0] != "missing" for n in DEMO_ENCODERS)


def test_demo_refuses_bad_n_boot_before_generating(tmp_path: Path, capsys) -> None:
    assert main(["demo", "--out", str(tmp_path / "d"), "--n-boot", "-1", "--quiet"]) == 2
    assert "--n-boot must be >= 0" in capsys.readouterr().err
    assert not (tmp_path / "d" / "frames").exists()


def test_frames_ready_is_false_for_missing_or_partial(tmp_path: Path) -> None:
    assert not _frames_ready(tmp_path / "absent")
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "meta.json").write_text("{}")
    assert not _frames_ready(tmp_path / "frames")


@pytest.mark.slow
def test_demo_from_scratch_writes_a_report_that_loads(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--n-boot", "50", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "report:" in text and all(n in text for n in DEMO_ENCODERS)
    with ResultsDB(out, read_only=True) as db:
        runs = db.runs("gap")
        assert len(runs) == 1 and runs.status.iloc[0] == "ok"
        cfg = json.loads(runs.config.iloc[0])
        assert cfg["sim_domain"] == "sim" and cfg["real_domain"] == "real-proxy"
        subs = db.subjects(runs.run_id.iloc[0])
        assert sorted(subs.subject) == sorted(DEMO_ENCODERS)
        origins = {s: json.loads(m)["weights_origin"] for s, m in zip(subs.subject, subs.meta)}
        assert origins["resnet18-random"].startswith("random-init")
        assert origins["bc-sim"].startswith("trained")
        arts = db.artifacts(runs.run_id.iloc[0])
        assert set(arts[arts.name == "saliency"].subject) == {"resnet18-random", "bc-sim",
                                                               "bc-sim-nominal"}
    # a second demo reuses the frames and adds a run
    assert main(["demo", "--out", str(out), "--n-boot", "20", "--quiet"]) == 0
    with ResultsDB(out, read_only=True) as db:
        assert len(db.runs("gap")) == 2
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium not installed (make system-deps installs it)")
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
         "--v=0", "--dump-dom", (out / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0
    assert [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln] == []
    assert 'id="gap-scatter"' in proc.stdout and 'id="gap-table"' in proc.stdout
