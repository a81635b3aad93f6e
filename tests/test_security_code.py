"""No code from a user's file ever runs (issue 10, "Code runs from user files", items 1-3).

Every test builds a file that *would* create a marker file if realgap unpickled,
imported or scripted it (and, where cheap, proves that by letting the unsafe loader
create the marker), then checks that realgap's loader leaves the marker absent and ends
in a one-line typed error -- or, for the SB3 zip, evaluates the policy without reading
the poisoned entry at all.
"""

from __future__ import annotations

import base64
import io
import json
import os
import pickle
import shlex
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from realgap.cli import main
from realgap.errors import ConfigError, DataError

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _Touch:
    """Pickles to ``os.system("touch MARKER")``: unpickling it runs a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("realgap: error: "), err
    return err[0]


# --- 1. stable-baselines3 zips -----------------------------------------------------------

ENV = "InvertedPendulum-v5"


@pytest.fixture(scope="module")
def sb3_zips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An untrained SAC and PPO for InvertedPendulum (saving needs no training)."""
    sb3 = pytest.importorskip("stable_baselines3")
    pytest.importorskip("mujoco")
    gym = pytest.importorskip("gymnasium")
    out = tmp_path_factory.mktemp("sb3")
    env = gym.make(ENV)
    paths = {}
    for algo, kw in (("SAC", {"buffer_size": 10}), ("PPO", {"n_steps": 8, "batch_size": 8}),
                     ("TD3", {"buffer_size": 10})):
        model = getattr(sb3, algo)("MlpPolicy", env, seed=0, device="cpu", **kw)
        paths[algo] = out / f"{algo.lower()}.zip"
        model.save(str(paths[algo]))
    env.close()
    return paths


def _rewrite_zip(src: Path, dst: Path, **entries: bytes) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            zout.writestr(item, entries.pop(item.filename, None) or zin.read(item.filename))
        for name, data in entries.items():
            zout.writestr(name, data)
    return dst


def _evil_data(src: Path, marker: Path) -> bytes:
    """``data`` whose cloudpickled ``policy_class`` and ``observation_space`` run a command."""
    data = json.loads(zipfile.ZipFile(src).read("data"))
    payload = base64.b64encode(pickle.dumps(_Touch(marker))).decode()
    for key in ("policy_class", "observation_space", "lr_schedule"):
        if isinstance(data.get(key), dict):
            data[key][":serialized:"] = payload
    return json.dumps(data).encode()


def test_evil_sb3_zip_is_evaluated_without_unpickling(sb3_zips: dict[str, Path], tmp_path: Path) -> None:
    sb3 = pytest.importorskip("stable_baselines3")
    marker = tmp_path / "PWNED"
    evil = _rewrite_zip(sb3_zips["SAC"], tmp_path / "EVIL.zip", data=_evil_data(sb3_zips["SAC"], marker))
    # the crafted file is really malicious: SB3's own loader runs its command
    probe = tmp_path / "probe"
    _rewrite_zip(sb3_zips["SAC"], probe.with_suffix(".zip"), data=_evil_data(sb3_zips["SAC"], probe))
    with pytest.raises(Exception):  # noqa: B017 - the payload returns an int, not a class
        sb3.SAC.load(str(probe.with_suffix(".zip")), device="cpu")
    assert probe.exists()
    # realgap evaluates the same policy end to end and never runs it
    out = tmp_path / "out"
    assert main(["dynamics", "degrade", "--env", ENV, "--scales", "2", "--eval-episodes", "1",
                 "--seeds", "0", "--max-episode-steps", "20", "--n-boot", "50",
                 "--policy", str(evil), "--out", str(out)]) == 0
    assert not marker.exists()
    from realgap.store import ResultsDB

    with ResultsDB(out, read_only=True) as db:
        subjects = db.subjects(db.latest_run("degrade"))
    assert "weights only" in subjects.to_string()


@pytest.mark.parametrize("algo", ["SAC", "PPO", "TD3"])
def test_safe_sb3_loader_acts_exactly_like_sb3_load(sb3_zips: dict[str, Path], algo: str) -> None:
    sb3 = pytest.importorskip("stable_baselines3")
    from realgap.dynamics.degrade import load_policy

    safe = load_policy(sb3_zips[algo], ENV)
    ref = getattr(sb3, algo).load(str(sb3_zips[algo]), device="cpu")  # our own file: trusted
    assert safe.algo == algo
    obs = np.random.default_rng(0).normal(size=(40, 4))
    for o in obs:
        np.testing.assert_array_equal(safe.predict(o, deterministic=True)[0],
                                      ref.predict(o, deterministic=True)[0])


def test_evil_policy_pth_is_refused(sb3_zips: dict[str, Path], tmp_path: Path) -> None:
    from realgap.dynamics.degrade import load_policy

    marker = tmp_path / "PWNED"
    buf = io.BytesIO()
    torch.save({"actor.latent_pi.0.weight": _Touch(marker)}, buf)
    evil = _rewrite_zip(sb3_zips["SAC"], tmp_path / "EVIL.zip", **{"policy.pth": buf.getvalue()})
    with pytest.raises(DataError, match="policy.pth is not a plain state dict.*posix.system"):
        load_policy(evil, ENV)
    assert not marker.exists()


def test_unrebuildable_sb3_zip_names_the_trust_flag(sb3_zips: dict[str, Path], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    data = json.loads(zipfile.ZipFile(sb3_zips["SAC"]).read("data"))
    harmless = base64.b64encode(pickle.dumps({})).decode()  # what the trusted load will read
    data["policy_kwargs"] = {":type:": "<class 'dict'>", ":serialized:": harmless,
                             "features_extractor_class": "<class 'evil.Extractor'>"}
    odd = _rewrite_zip(sb3_zips["SAC"], tmp_path / "custom.zip", data=json.dumps(data).encode())
    assert main(["dynamics", "degrade", "--env", ENV, "--scales", "2", "--seeds", "0",
                 "--policy", str(odd), "--out", str(tmp_path / "o")]) == 2
    line = _one_error_line(capsys)
    assert "--trust-pickle" in line and "custom.zip" in line and "features_extractor_class" in line
    # with the flag the user accepts SB3's own loader (the file here is harmless)
    from realgap.dynamics.degrade import load_policy

    assert type(load_policy(odd, ENV, trust_pickle=True)).__name__ == "SAC"
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a stable-baselines3 .zip"):
        load_policy(junk, ENV)


def test_sb3_zip_for_another_env_is_a_one_line_error(sb3_zips: dict[str, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dynamics", "degrade", "--env", "Hopper-v5", "--scales", "2", "--seeds", "0",
                 "--policy", str(sb3_zips["SAC"]), "--out", str(tmp_path / "o")]) == 2
    assert "observation_space shape (4,) does not match the env's (11,)" in _one_error_line(capsys)


# --- 2. names inside checkpoints, and --encoders ----------------------------------------

def _policy_checkpoint(tmp_path: Path, encoder: str) -> Path:
    from realgap.policy.checkpoint import save_checkpoint
    from realgap.policy.config import PolicyConfig

    cfg = PolicyConfig(task="reach").to_dict()
    cfg["encoder"] = encoder  # what an attacker writes into the file
    return save_checkpoint(tmp_path / f"ck-{encoder.replace(':', '_')}.pt",
                           {"policy_config": cfg, "task": "reach", "feat_dim": 4,
                            "state_dict": {}, "epoch": 1})


@pytest.mark.parametrize("name", ["os:abort", "code:interact", "os:system"])
def test_checkpoint_encoder_name_never_imports_or_calls(name: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import code

    from realgap.policy.predictor import load_policy

    called: list[str] = []
    marker = tmp_path / "PWNED"
    monkeypatch.setattr(os, "abort", lambda: called.append("abort"))
    monkeypatch.setattr(os, "system", lambda *a: (called.append("system"), marker.touch())[0])
    monkeypatch.setattr(code, "interact", lambda *a, **k: called.append("interact"))
    ck = _policy_checkpoint(tmp_path, name)
    with pytest.raises(ConfigError, match=rf"{ck}: policy_config.encoder: .*--allow-plugin"):
        load_policy(ck)
    # even when the user allows plugins, a stdlib callable is not an encoder factory
    with pytest.raises(ConfigError, match="not an encoder factory"):
        load_policy(ck, allow_plugins=True)
    assert called == [] and not marker.exists()


def test_cli_encoders_plugin_needs_the_flag_and_a_factory(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    called: list[Any] = []
    monkeypatch.setattr(os, "system", lambda *a: called.append(a))
    assert main(["encoders", "show", "os:system"]) == 2
    assert "add --allow-plugin" in _one_error_line(capsys)
    assert main(["encoders", "show", "os:system", "--allow-plugin"]) == 2
    assert "not an encoder factory" in _one_error_line(capsys)
    ck = _policy_checkpoint(tmp_path, "os:system")
    assert main(["rollout", "--policy", str(ck), "--episodes", "1", "--workers", "1",
                 "--no-progress"]) == 2
    line = _one_error_line(capsys)
    assert str(ck) in line and "--allow-plugin" in line
    assert called == []
    # the permission is scoped to one command: nothing leaks into the next call
    from realgap.encoders import create_encoder

    with pytest.raises(ConfigError, match="--allow-plugin"):
        create_encoder("os:system")


# --- 3. weights files: weights only, never TorchScript -----------------------------------

def test_pickled_code_in_weights_file_is_refused(tmp_path: Path) -> None:
    from realgap.encoders import create_encoder

    marker = tmp_path / "PWNED"
    evil = tmp_path / "resnet18-f37072fd.pth"
    torch.save({"conv1.weight": _Touch(marker)}, evil)
    with pytest.raises(DataError, match="not a readable checkpoint .*posix.system"):
        create_encoder("resnet18", weights=evil)
    assert not marker.exists()


def test_torchscript_weights_are_never_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A TorchScript archive as --weights / a zoo file: refused by name, jit.load never called."""
    from realgap.encoders import create_encoder

    lin = torch.jit.script(torch.nn.Linear(3, 2))
    ts = tmp_path / "ViT-B-16.pt"
    torch.jit.save(lin, ts)
    marker = tmp_path / "PWNED"
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: marker.touch())
    with pytest.raises(DataError, match=r"ViT-B-16.pt: a TorchScript archive.*state_dict"):
        create_encoder("clip-b16", weights=ts)
    assert main(["encoders", "show", "clip-b16", "--weights", str(ts)]) == 2
    line = _one_error_line(capsys)
    assert "TorchScript archive" in line and str(ts) in line
    assert not marker.exists()
