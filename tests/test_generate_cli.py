"""``realgap generate`` through ``realgap.cli.main``: a tiny run and every bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from realgap.cli import main

TINY = ["--episodes", "1", "--max-steps", "3", "--image-size", "32", "--no-progress"]


def test_generate_writes_frameset_and_contact_sheet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from realgap.data import FrameSet

    out = tmp_path / "fs"
    code = main(["generate", "--task", "reach-mug", "--domains", "sim,real-proxy",
                 "--randomize", "BG,LT,CP", "--granularity", "frame", "--fidelity", "low",
                 "--seed", "0", "--domain-label", "real-proxy=real", "--out", str(out), *TINY])
    assert code == 0
    printed = capsys.readouterr().out
    fs = FrameSet.open(out)
    assert fs.domains == ["real", "sim"] and len(fs) == 2 * 3
    assert f"frameset: {out}  (6 frames" in printed
    assert "real         reach-mug       1 episodes      3 frames" in printed
    assert f"contact sheet: {out / 'contact_sheet.png'}" in printed
    assert (out / "contact_sheet.png").stat().st_size > 5000
    # a rerun resumes: nothing new, same set
    assert main(["generate", "--task", "reach-mug", "--domains", "sim,real-proxy",
                 "--domain-label", "real-proxy=real", "--out", str(out), *TINY]) == 0
    assert FrameSet.open(out).content_hash == fs.content_hash


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--task", "reach-mugg"], "unknown task 'reach-mugg'"),
        (["--task", "reach-mug", "--randomize", "BG,FOG"], "--randomize: unknown factor 'FOG'"),
        (["--task", "reach-mug", "--episodes", "-2"], "--episodes: got -2"),
        (["--task", "reach-mug", "--domains", "sim,real"], "--domains: unknown domain 'real'"),
        (["--task", "reach-mug", "--domain-label", "real-proxy"], "expected DOMAIN=LABEL"),
        (["--task", "reach-mug", "--granularity", "step"], "--granularity"),
        ([], "--task: required"),
        (["--task", "reach-mug", "--fidelity", "ultra"], "--fidelity: got 'ultra'"),
        (["--task", "reach-mug", "--cameras", "top"], "--cameras: unknown camera 'top'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    out = tmp_path / "fs"
    code = main(["generate", *TINY, "--out", str(out), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("realgap: error: ")
    assert needle in err
    assert not (out / "meta.json").exists()  # nothing written


def test_unwritable_out_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code = main(["generate", "--task", "reach-mug", "--out", str(blocker / "fs"), *TINY])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert f"--out {blocker / 'fs'}: cannot write there" in err


def test_resume_with_other_settings_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fs"
    base = ["generate", "--task", "reach-mug", "--domains", "sim", "--out", str(out), *TINY]
    assert main(base) == 0
    capsys.readouterr()
    assert main([*base, "--seed", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "was generated with seed=0, this run asks seed=1" in err
    # growing the set is a resume, not a conflict
    assert main([*base, "--episodes", "2"]) == 0
    assert "sim          reach-mug       2 episodes      6 frames" in capsys.readouterr().out


def test_foreign_frameset_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from realgap.data.synthetic import write_synthetic

    out = write_synthetic(tmp_path / "fs", domains=("sim",), n_episodes=1, size=16)
    before = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert main(["generate", "--task", "reach-mug", "--out", str(out), *TINY]) == 2
    assert "realgap generate did not write" in capsys.readouterr().err
    after = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert after == before  # nothing touched
