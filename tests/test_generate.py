"""Dataset generation: pairing, recorded factors, provenance, determinism, resume, labels.

Tiny episodes (6 steps, 32 px, head camera) keep this file fast.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from realgap.data import FrameSet, FrameSetWriter
from realgap.errors import ConfigError
from realgap.sim.generate import (
    DEMO_CONFIG,
    GenerateConfig,
    episode_seed,
    generate,
    validate_config,
)

BASE = GenerateConfig(
    out="", tasks=("reach-mug",), episodes=2, domains=("sim", "sim-nominal", "real-proxy"),
    randomize=("BG", "LT", "CP"), granularity="frame", fidelity="low", image_size=32,
    cameras=("head",), seed=0, max_steps=6,
)


@pytest.fixture(scope="module")
def base_set(tmp_path_factory: pytest.TempPathFactory) -> FrameSet:
    out = tmp_path_factory.mktemp("gen") / "fs"
    return generate(replace(BASE, out=str(out)), progress=False)


def _json(fs: FrameSet, col: str = "factors") -> list[dict]:
    return [json.loads(t) for t in fs.manifest[col]]


def test_every_domain_has_every_state_paired(base_set: FrameSet) -> None:
    m = base_set.manifest
    assert base_set.domains == ["real-proxy", "sim", "sim-nominal"]
    assert len(base_set) == 3 * 2 * 6  # domains x episodes x steps (capped at 6)
    by_dom = {d: g.reset_index(drop=True) for d, g in m.groupby("domain")}
    assert by_dom["sim"]["pair_id"].tolist() == by_dom["real-proxy"]["pair_id"].tolist()
    assert by_dom["sim"]["pair_id"].tolist() == by_dom["sim-nominal"]["pair_id"].tolist()
    assert by_dom["sim"]["pair_id"][7] == "reach-mug/0/1/1"  # task/seed/episode/step
    # one simulator state: the same action and state in every domain
    for d in ("sim-nominal", "real-proxy"):
        sel = base_set.select(domain=d)
        assert np.array_equal(sel.actions(), base_set.select(domain="sim").actions())
        assert np.array_equal(sel.states(), base_set.select(domain="sim").states())
    # ... rendered differently
    imgs = {d: base_set.select(domain=d).images("head") for d in base_set.domains}
    assert imgs["sim"].shape == (12, 32, 32, 3)
    for a, b in (("sim", "sim-nominal"), ("sim", "real-proxy"), ("sim-nominal", "real-proxy")):
        assert np.abs(imgs[a].astype(int) - imgs[b].astype(int)).mean() > 3.0


def test_factors_recorded_per_frame(base_set: FrameSet) -> None:
    sim = _json(base_set.select(domain="sim"))
    nominal = _json(base_set.select(domain="sim-nominal"))
    proxy = _json(base_set.select(domain="real-proxy"))
    assert {f["render_domain"] for f in sim} == {"sim"}
    assert {f["render_domain"] for f in proxy} == {"real-proxy"}
    assert set(sim[0]) >= {"BG", "LT", "CP", "TD", "TH", "PHYS"}
    # frame-wise granularity: the background and light change from step to step
    steps = sim[:6]
    assert len({json.dumps(f["BG"], sort_keys=True) for f in steps}) == 6
    assert len({json.dumps(f["LT"], sort_keys=True) for f in steps}) == 6
    # nominal frames: appearance at its defaults, identical on every frame
    assert len({json.dumps({k: f[k] for k in ("BG", "LT", "CP")}, sort_keys=True)
                for f in nominal}) == 1
    assert nominal[0]["CP"] == {"dpos": [0.0, 0.0, 0.0], "drot": [0.0, 0.0, 0.0]}
    # proxy frames: no sim appearance factor, the state factors of the same state
    assert not set(proxy[0]) & {"BG", "LT", "CP"}
    assert [f["TH"] for f in proxy] == [f["TH"] for f in sim]


def test_source_names_generator_version_task_and_seed(base_set: FrameSet) -> None:
    import realgap

    assert set(base_set.manifest["source"]) == {
        f"realgap.sim.generate {realgap.__version__} task=reach-mug seed=0"}
    rec = json.loads((base_set.root / "generate.json").read_text())
    assert rec["config"]["domains"] == ["sim", "sim-nominal", "real-proxy"]
    assert rec["real_proxy"]["real-proxy"]["stored_as"] == "real-proxy"
    assert rec["real_proxy"]["real-proxy"]["camera_model"]["k1"] == -0.06
    assert rec["real_proxy"]["real-proxy"]["shadows"] == "high"
    assert rec["last_run"]["frames_written"] == 36 and rec["last_run"]["episodes"] == 2
    eps = rec["episodes"]
    assert sorted(eps) == ["reach-mug/0", "reach-mug/1"]
    assert [e["steps"] for e in eps.values()] == [6, 6]
    assert rec["expert_success"]["reach-mug"] == {
        "success": sum(e["success"] for e in eps.values()), "episodes": 2}


def test_nominal_domain_equals_an_unrandomized_run(base_set: FrameSet, tmp_path: Path) -> None:
    # Independent route: the same seeds without any randomization must render exactly
    # the sim-nominal frames (the task layout stream does not depend on the factors).
    plain = generate(replace(BASE, out=str(tmp_path / "plain"), randomize=(),
                             domains=("sim",)), progress=False)
    assert np.array_equal(plain.images("head"),
                          base_set.select(domain="sim-nominal").images("head"))


def test_same_seed_same_hash_other_seed_differs(base_set: FrameSet, tmp_path: Path) -> None:
    again = generate(replace(BASE, out=str(tmp_path / "again")), progress=False)
    assert again.content_hash == base_set.content_hash
    other = generate(replace(BASE, out=str(tmp_path / "other"), seed=1, episodes=1),
                     progress=False)
    assert not np.array_equal(other.select(domain="sim").images("head"),
                              base_set.select(domain="sim", episode=0).images("head"))


def test_episode_seed_depends_on_seed_task_and_episode_only() -> None:
    seeds = {episode_seed(s, t, e) for s in (0, 1) for t in ("reach-mug", "reach-box")
             for e in (0, 1)}
    assert len(seeds) == 8
    assert episode_seed(0, "reach-mug", 1) == episode_seed(0, "reach-mug", 1)


def test_resume_and_interrupt_give_the_one_shot_set(
    base_set: FrameSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "resumed"
    cfg = replace(BASE, out=str(out))
    real_add = FrameSetWriter.add_episode
    calls = {"n": 0}

    def flaky_add(self: FrameSetWriter, *args: object, **kwargs: object) -> str:
        calls["n"] += 1
        if calls["n"] == 5:  # episode 1, second domain: interrupt mid-episode
            raise KeyboardInterrupt
        return real_add(self, *args, **kwargs)

    monkeypatch.setattr(FrameSetWriter, "add_episode", flaky_add)
    with pytest.raises(KeyboardInterrupt):
        generate(cfg, progress=False)
    monkeypatch.setattr(FrameSetWriter, "add_episode", real_add)
    partial = FrameSet.open(out)
    # complete episodes only: all three domains of episode 0, one domain of episode 1
    assert len(partial) == 4 * 6
    assert sorted(partial.manifest.groupby(["domain", "episode"]).size().index.tolist()) == [
        ("real-proxy", 0), ("sim", 0), ("sim", 1), ("sim-nominal", 0)]
    resumed = generate(cfg, progress=False)
    assert resumed.content_hash == base_set.content_hash
    rec = json.loads((out / "generate.json").read_text())
    assert rec["last_run"] == {"seconds": rec["last_run"]["seconds"], "episodes": 1,
                               "frames_written": 2 * 6}  # only the missing domains
    assert rec["expert_success"]["reach-mug"]["episodes"] == 2
    # rerunning a finished set writes nothing and keeps the hash
    assert generate(cfg, progress=False).content_hash == base_set.content_hash


def test_relabel_and_episode_granularity(tmp_path: Path) -> None:
    cfg = replace(BASE, out=str(tmp_path / "rl"), episodes=1, domains=("sim", "real-proxy"),
                  granularity="episode", domain_labels=(("real-proxy", "real"),))
    fs = generate(cfg, progress=False)
    assert fs.domains == ["real", "sim"]
    assert {f["render_domain"] for f in _json(fs.select(domain="real"))} == {"real-proxy"}
    rec = json.loads((fs.root / "generate.json").read_text())
    assert rec["real_proxy"]["real-proxy"]["stored_as"] == "real"
    sim = _json(fs.select(domain="sim"))
    # episode granularity: one background for the whole episode
    assert len({json.dumps(f["BG"], sort_keys=True) for f in sim}) == 1


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"tasks": ("reach-mugg",)}, "reach-mug"),
        ({"episodes": -1}, "--episodes"),
        ({"domains": ("sim", "real")}, "--domains"),
        ({"randomize": ("BG", "XX")}, "--randomize"),
        ({"granularity": "step"}, "--granularity"),
        ({"image_size": 4}, "--image-size"),
        ({"fidelity": "ultra"}, "--fidelity"),
        ({"cameras": ("head", "top")}, "unknown camera 'top'"),
        ({"domain_labels": (("sim", "real-proxy"),)}, "two domains"),
        ({"domains": ("sim",), "domain_labels": (("real-proxy", "x"),)}, "not among"),
        ({"proxy_shadows": "medium"}, "--proxy-shadows"),
    ],
)
def test_validate_config_names_the_bad_field(change: dict, match: str) -> None:
    from realgap.errors import RealgapError

    with pytest.raises(RealgapError, match=match):
        validate_config(replace(BASE, out="unused", **change))


def test_demo_config_is_the_documented_default() -> None:
    assert DEMO_CONFIG.tasks == ("reach-mug",)
    assert DEMO_CONFIG.domains == ("sim", "sim-nominal", "real-proxy-mild", "real-proxy-strong")
    # no camera-pose randomization in the probed sim domain (issue 9)
    assert DEMO_CONFIG.randomize == ("BG", "LT") and DEMO_CONFIG.granularity == "episode"
    assert DEMO_CONFIG.proxy_shadows == "low"
    validate_config(DEMO_CONFIG)


@pytest.mark.slow
def test_demo_dataset_end_to_end(tmp_path: Path) -> None:
    from realgap.sim.generate import generate_demo

    out = tmp_path / "demo"
    fs = generate_demo(out, progress=False)
    assert fs.domains == ["real-proxy-mild", "real-proxy-strong", "sim", "sim-nominal"]
    assert fs.tasks == ["reach-mug"]
    per_dom = fs.manifest.groupby("domain").size()
    assert per_dom.nunique() == 1
    assert (out / "contact_sheet.png").stat().st_size > 20_000
    stats = json.loads((out / "generate.json").read_text())["expert_success"]
    assert stats["reach-mug"]["episodes"] == DEMO_CONFIG.episodes
    assert stats["reach-mug"]["success"] >= 0.9 * DEMO_CONFIG.episodes


def test_proxy_severities_and_shadow_settings(base_set: FrameSet, tmp_path: Path) -> None:
    cfg = replace(BASE, out=str(tmp_path / "sev"), episodes=1,
                  domains=("sim-nominal", "real-proxy", "real-proxy-mild", "real-proxy-strong"))
    fs = generate(cfg, progress=False)
    img = {d: fs.select(domain=d).images("head").astype(int) for d in fs.domains}
    # real-proxy is the strong look under its old name: the very same bytes as before
    assert np.array_equal(img["real-proxy"], img["real-proxy-strong"])
    assert np.array_equal(img["real-proxy"],
                          base_set.select(domain="real-proxy", episode=0).images("head"))
    # the mild proxy sits closer to the simulator's nominal look than the strong one
    gap = {d: np.abs(img[d] - img["sim-nominal"]).mean() for d in
           ("real-proxy-mild", "real-proxy-strong")}
    assert 1.0 < gap["real-proxy-mild"] < 0.6 * gap["real-proxy-strong"], gap
    # shadow settings: each renders differently; 'high' is the default (bytes unchanged)
    by_shadow = {}
    for sh in ("off", "low"):
        f = generate(replace(cfg, out=str(tmp_path / sh), domains=("sim", "real-proxy"),
                             proxy_shadows=sh), progress=False)
        by_shadow[sh] = f.select(domain="real-proxy").images("head").astype(int)
        rec = json.loads((f.root / "generate.json").read_text())
        assert rec["real_proxy"]["real-proxy"]["shadows"] == sh
        # the sim frames never depend on the proxy's shadow setting
        assert np.array_equal(f.select(domain="sim").images("head"),
                              base_set.select(domain="sim", episode=0).images("head"))
    by_shadow["high"] = img["real-proxy"]
    for a, b in (("off", "low"), ("low", "high"), ("off", "high")):
        assert not np.array_equal(by_shadow[a], by_shadow[b]), (a, b)
    # a set is resumed only with the shadow setting it was made with
    with pytest.raises(ConfigError, match="proxy_shadows"):
        generate(replace(cfg, proxy_shadows="off"), progress=False)


def test_record_every_keeps_every_kth_state(base_set: FrameSet, tmp_path: Path) -> None:
    fs = generate(replace(BASE, out=str(tmp_path / "k2"), record_every=2), progress=False)
    for d in fs.domains:
        full = base_set.select(domain=d)
        sub = fs.select(domain=d)
        keep = np.array([int(p.rsplit("/", 1)[1]) % 2 == 0 for p in full.manifest["pair_id"]])
        assert sub.manifest["pair_id"].tolist() == full.manifest["pair_id"][keep].tolist()
        assert np.array_equal(sub.actions(), full.actions()[keep])
        assert np.array_equal(sub.images("head"), full.images("head")[keep])
    rec = json.loads((fs.root / "generate.json").read_text())
    assert [(e["steps"], e["frames"]) for e in rec["episodes"].values()] == [(6, 3), (6, 3)]


def test_kill_9_keeps_the_outcome_of_every_finished_episode(tmp_path: Path) -> None:
    """issue 10: a kill -9 during generate dropped finished episodes' expert outcomes."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from realgap.sim.generate import load_outcomes

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "realgap.cli", "generate", "--task", "reach-mug",
           "--episodes", "200", "--domains", "sim", "--randomize", "none", "--image-size", "16",
           "--max-steps", "4", "--no-contact-sheet", "--no-progress", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")})
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list((out / "episodes").glob("*"))) >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "generate finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    fs = FrameSet.open(out)
    done = sorted(int(e) for e in fs.manifest["episode"].unique())
    assert len(done) >= 3
    outcomes = load_outcomes(out)
    for ep in done:  # every complete episode has its outcome, with its real length
        o = outcomes[f"reach-mug/{ep}"]
        assert o["steps"] == o["frames"] == int((fs.manifest["episode"] == ep).sum())
    # resuming gathers them all into generate.json
    cfg = GenerateConfig(out=str(out), tasks=("reach-mug",), episodes=len(done) + 1,
                         domains=("sim",), randomize=(), image_size=16, max_steps=4)
    generate(cfg, progress=False)
    rec = json.loads((out / "generate.json").read_text())
    assert all(f"reach-mug/{ep}" in rec["episodes"] for ep in [*done, len(done)])


def test_importing_generation_modules_stays_light() -> None:
    import subprocess
    import sys

    code = ("import sys, realgap.sim.generate, realgap.sim.contact_sheet, "
            "realgap.sim.camera_model, realgap.sim.textures, realgap.cli.generate; "
            "print(sorted(m for m in ('mujoco', 'torch', 'gymnasium', 'matplotlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_distorted_physics_is_a_fixed_recorded_setting(tmp_path: Path) -> None:
    """``physics="distorted"`` fixes gravity, friction and object damping for every episode
    (recorded in each frame's PHYS factor); a wrong name or PHYS also randomized is refused."""
    from realgap.sim.generate import PHYSICS_PRESETS, GenerateConfig, generate

    fs = generate(GenerateConfig(out=str(tmp_path / "d"), episodes=2, domains=("sim",),
                                 randomize=(), image_size=16, max_steps=3, physics="distorted"),
                  progress=False)
    phys = [json.loads(f)["PHYS"] for f in fs.manifest["factors"]]
    want = PHYSICS_PRESETS["distorted"]
    assert all(p["gravity"] == want["gravity"][0] and p["friction"] == want["friction"][0]
               and set(p["dampratio"].values()) == {want["dampratio"][0]} for p in phys)
    with pytest.raises(ConfigError, match="--physics: got 'moon'"):
        generate(GenerateConfig(out=str(tmp_path / "m"), physics="moon"), progress=False)
    with pytest.raises(ConfigError, match="leave PHYS out"):
        generate(GenerateConfig(out=str(tmp_path / "p"), randomize=("PHYS",),
                                physics="distorted"), progress=False)
