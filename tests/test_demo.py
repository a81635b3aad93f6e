"""`realgap demo`: the embedded default end to end (slow), and its wiring (fast)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from realgap.cli import main
from realgap.jobs.demo import DEMO_ENCODERS, DEMO_REAL_DOMAINS, DemoConfig, _frames_ready, run_demo
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


TINY_EPISODES = 20  # 4 stay unseen by the BC encoders: enough for coverage's neighbours


def _tiny_dataset() -> object:
    from dataclasses import replace

    from realgap.sim.generate import DEMO_CONFIG

    return replace(DEMO_CONFIG, episodes=TINY_EPISODES, max_steps=10, image_size=32)


def test_demo_dataset_is_identical_for_the_same_seed(tmp_path: Path) -> None:
    """Issue 9: the demo's dataset design gives the same FrameSet hash for the same seed
    (a tiny version of DEMO_CONFIG: every field but size), another seed another hash."""
    from dataclasses import replace

    from realgap.sim.generate import generate

    tiny = replace(_tiny_dataset(), episodes=2, max_steps=4)
    a = generate(replace(tiny, out=str(tmp_path / "a")), progress=False)
    b = generate(replace(tiny, out=str(tmp_path / "b")), progress=False)
    c = generate(replace(tiny, out=str(tmp_path / "c"), seed=1, episodes=1), progress=False)
    assert a.content_hash == b.content_hash
    assert not np.array_equal(c.select(domain="sim").images("head"),
                              a.select(domain="sim", episode=0).images("head"))
    assert a.domains == ["real-proxy-mild", "real-proxy-strong", "sim", "sim-nominal"]


@pytest.mark.slow
def test_demo_scores_are_identical_for_the_same_seed(tmp_path: Path) -> None:
    """Issue 9: same seed, same dataset hash and same scores at both severities."""
    from dataclasses import replace

    from realgap.metrics import suite

    # both BC encoders: they train side by side in two processes
    cfg = DemoConfig(n_boot=10, encoders=("pixels", "bc-sim", "bc-sim-nominal"),
                     dataset=_tiny_dataset(), progress=False)
    a = run_demo(tmp_path / "a", cfg)
    suite._PROBE_MEMO.clear()  # recompute the probes instead of reading a's
    b = run_demo(tmp_path / "b", cfg)
    assert a.frameset_hash == b.frameset_hash
    assert list(a.runs) == list(DEMO_REAL_DOMAINS)
    for real in DEMO_REAL_DOMAINS:
        assert a.runs[real].estimates == b.runs[real].estimates
    # another gap seed moves the bootstrap and the BC weights, so the comparison above
    # can fail
    c = run_demo(tmp_path / "c", replace(cfg, seed=1, real_domains=DEMO_REAL_DOMAINS[:1]))
    assert c.frameset_hash == a.frameset_hash
    assert c.runs[DEMO_REAL_DOMAINS[0]].estimates != a.runs[DEMO_REAL_DOMAINS[0]].estimates


@pytest.mark.slow
def test_demo_from_scratch_writes_a_report_that_loads(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--n-boot", "50", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "report:" in text and all(n in text for n in DEMO_ENCODERS)
    with ResultsDB(out, read_only=True) as db:
        runs = db.runs("gap")
        assert len(runs) == 2 and set(runs.status) == {"ok"}
        cfg = json.loads(runs.config.iloc[0])
        assert cfg["sim_domain"] == "sim" and cfg["real_domain"] in DEMO_REAL_DOMAINS
        subs = db.subjects(runs.run_id.iloc[0])
        assert sorted(subs.subject) == sorted(DEMO_ENCODERS)
        origins = {s: json.loads(m)["weights_origin"] for s, m in zip(subs.subject, subs.meta)}
        assert origins["resnet18-random"].startswith("random-init")
        assert origins["bc-sim"].startswith("trained")
        arts = db.artifacts(runs.run_id.iloc[0])
        assert {"resnet18-random", "bc-sim", "bc-sim-nominal"} <= set(
            arts[arts.name == "saliency"].subject)
    # a second demo reuses the frames and adds a run per severity
    assert main(["demo", "--out", str(out), "--n-boot", "20", "--quiet"]) == 0
    with ResultsDB(out, read_only=True) as db:
        assert len(db.runs("gap")) == 4
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
