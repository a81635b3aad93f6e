"""Policies: heads, windows, seeded training, resume, checkpoints, and `realgap train`.

Everything here trains on tiny synthetic FrameSets (no simulator), in seconds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from realgap.cli import main
from realgap.errors import ConfigError

torch = pytest.importorskip("torch")

from realgap.data.synthetic import write_synthetic
from realgap.policy import PolicyConfig, TrainConfig, load_policy, train_policy
from realgap.policy.checkpoint import list_checkpoints, load_checkpoint
from realgap.policy.train import make_windows


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("fs") / "fs"
    write_synthetic(d, domains=("sim",), tasks=("reach-mug",), n_episodes=3, n_frames=8,
                    size=24, action_dim=3, state_dim=5, rng=0)
    return d


def _cfg(head: str = "bc", **kw: object) -> PolicyConfig:
    return PolicyConfig("reach-mug", encoder="small-e2e", head=head, image_size=24, hidden=32,
                        history=3, horizon=4, n_action_steps=2, diffusion_train_steps=20,
                        diffusion_infer_steps=3, **kw)


def _weights(ckpt: Path) -> dict[str, np.ndarray]:
    sd = load_checkpoint(ckpt)["state_dict"]
    return {k: v.numpy().copy() for k, v in sd.items()}


def test_import_policy_is_light() -> None:
    code = "import sys, realgap.policy, realgap.protocol; print('torch' in sys.modules, 'mujoco' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_windows_hand_worked() -> None:
    # two episodes: rows 0-2 (steps 0,1,2) and rows 3-4 (steps 0,1)
    keys = np.array(["a", "a", "a", "b", "b"])
    w = make_windows(keys, np.array([0, 1, 2, 0, 1]), obs_len=2, act_len=3, act_from_obs=False)
    assert w.obs_idx.tolist() == [[0, 0], [0, 1], [1, 2], [3, 3], [3, 4]]
    assert w.act_idx.tolist() == [[0, 1, 2], [1, 2, 2], [2, 2, 2], [3, 4, 4], [4, 4, 4]]
    r = make_windows(keys, np.array([0, 1, 2, 0, 1]), obs_len=3, act_len=3, act_from_obs=True)
    assert r.act_idx.tolist() == r.obs_idx.tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 2],
                                                         [3, 3, 3], [3, 3, 4]]


def test_same_seed_same_weights_other_seed_differs(frames: Path, tmp_path: Path) -> None:
    tc = TrainConfig(epochs=2, batch_size=8, seed=3)
    a = train_policy(frames, tmp_path / "a", _cfg(), tc, progress=False)
    b = train_policy(frames, tmp_path / "b", _cfg(), tc, progress=False)
    c = train_policy(frames, tmp_path / "c", _cfg(), TrainConfig(epochs=2, batch_size=8, seed=4),
                     progress=False)
    wa, wb, wc = _weights(a.checkpoint), _weights(b.checkpoint), _weights(c.checkpoint)
    assert a.losses == b.losses
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    assert not all(np.array_equal(wa[k], wc[k]) for k in wa)


def test_resume_equals_uninterrupted(frames: Path, tmp_path: Path) -> None:
    full = train_policy(frames, tmp_path / "full", _cfg(),
                        TrainConfig(epochs=2, batch_size=8, checkpoint_every=1), progress=False)
    train_policy(frames, tmp_path / "part", _cfg(),
                 TrainConfig(epochs=1, batch_size=8, checkpoint_every=1), progress=False)
    res = train_policy(frames, tmp_path / "part", _cfg(),
                       TrainConfig(epochs=2, batch_size=8, checkpoint_every=1), progress=False)
    assert res.epochs_done == 1
    assert [p.name for p in list_checkpoints(tmp_path / "part")] == [
        "epoch-0001.pt", "epoch-0002.pt"]
    wf, wp = _weights(full.checkpoint), _weights(res.checkpoint)
    assert all(np.array_equal(wf[k], wp[k]) for k in wf)
    # the loss history survives the resume whole: one entry per epoch since epoch 1
    lf, lp = load_checkpoint(full.checkpoint)["losses"], load_checkpoint(res.checkpoint)["losses"]
    assert len(lp) == 2 and lp == lf and list(res.losses) == lf[1:]
    again = train_policy(frames, tmp_path / "part", _cfg(),
                         TrainConfig(epochs=2, batch_size=8), progress=False)
    assert again.epochs_done == 0
    with pytest.raises(ConfigError, match=r"cannot resume.*--head bc-rnn \(checkpoint: bc\)"):
        train_policy(frames, tmp_path / "part", _cfg("bc-rnn"), TrainConfig(epochs=3, batch_size=8),
                     progress=False)


def test_checkpoint_carries_config_hash_and_task(frames: Path, tmp_path: Path) -> None:
    from realgap.data import FrameSet

    res = train_policy(frames, tmp_path / "p", _cfg("bc-rnn"), TrainConfig(epochs=1, batch_size=8),
                       progress=False)
    ck = load_checkpoint(tmp_path / "p")
    assert ck["task"] == "reach-mug"
    assert ck["frameset_hash"] == FrameSet.open(frames).content_hash
    assert ck["policy_config"]["head"] == "bc-rnn"
    assert ck["policy_config"]["action_dim"] == 3
    assert ck["policy_config"]["state_dim"] == 4  # proprio_dims=4 of the 5 state entries
    assert res.n_frames == 24 and res.n_episodes == 3
    with pytest.raises(ConfigError, match="trained for task 'reach-mug', not 'reach-box'"):
        load_policy(tmp_path / "p", task="reach-box")


@pytest.mark.parametrize("head", ["bc", "bc-rnn", "dp-c"])
def test_loaded_policy_acts_deterministically(frames: Path, tmp_path: Path, head: str) -> None:
    res = train_policy(frames, tmp_path / head, _cfg(head), TrainConfig(epochs=1, batch_size=8),
                       progress=False)
    pol = load_policy(res.checkpoint, task="reach-mug")
    rng = np.random.default_rng(0)
    obs = [{"head": rng.integers(0, 256, (24, 24, 3), dtype=np.uint8),
            "state": rng.normal(size=5).astype(np.float32)} for _ in range(4)]

    def play(seed: int) -> np.ndarray:
        pol.reset(seed=seed)
        return np.stack([pol.act(o) for o in obs])

    a1, a2 = play(7), play(7)
    assert a1.shape == (4, 3) and a1.dtype == np.float32 and np.isfinite(a1).all()
    np.testing.assert_array_equal(a1, a2)
    if head == "dp-c":  # sampling noise follows the episode seed
        assert not np.array_equal(a1, play(8))


def test_bc_learns_the_synthetic_signal(tmp_path: Path) -> None:
    # action[:, 0] = mean pixel / 255 (realgap.data.synthetic): a BC policy must fit it.
    d = tmp_path / "fs"
    write_synthetic(d, domains=("sim",), n_episodes=4, n_frames=8, size=24, state_dim=4, rng=1)
    res = train_policy(d, tmp_path / "bc", _cfg("bc", use_state=False),
                       TrainConfig(epochs=25, batch_size=16, lr=3e-3), progress=False)
    assert res.losses[-1] < 0.5 * res.losses[0]


def test_frozen_encoder_from_other_policy(frames: Path, tmp_path: Path) -> None:
    a = train_policy(frames, tmp_path / "a", _cfg(), TrainConfig(epochs=1, batch_size=8),
                     progress=False)
    bp = train_policy(frames, tmp_path / "bp", _cfg(), TrainConfig(epochs=2, batch_size=8, seed=9),
                      encoder_from=a.checkpoint, progress=False)
    wa, wb = _weights(a.checkpoint), _weights(bp.checkpoint)
    enc = [k for k in wa if k.startswith("encoder.")]
    assert enc and all(np.array_equal(wa[k], wb[k]) for k in enc)
    assert not all(np.array_equal(wa[k], wb[k]) for k in wa if k.startswith("head."))
    assert load_checkpoint(bp.checkpoint)["policy_config"]["freeze_encoder"] is True


def test_cli_train_then_resume(frames: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", "--task", "reach-mug", "--data", str(frames), "--encoder", "small-e2e",
            "--head", "bc", "--image-size", "24", "--epochs", "1", "--batch-size", "8",
            "--out", str(tmp_path / "o"), "--no-progress"]
    assert main(args) == 0
    assert "trained 1 epoch(s) on 24 frames (3 episodes)" in capsys.readouterr().out
    assert main(args) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert main([*args, "--no-resume"]) == 2
    err = capsys.readouterr().err
    assert "already holds checkpoints and --no-resume" in err and err.count("\n") == 1


@pytest.mark.parametrize("extra, needle", [
    (["--epochs", "0"], "--epochs 0: must be >= 1"),
    (["--head", "mlp"], "unknown head 'mlp'"),
    (["--task", "push"], "no frames of task 'push'"),
    (["--camera", "wrist"], "--camera 'wrist'"),
    (["--encoder-weights", "w.pt"], "a weights file would be ignored"),
    (["--lr", "inf"], "--lr inf: must be a finite number > 0"),
    (["--lr", "nan"], "--lr nan: must be a finite number > 0"),
    (["--encoder-from", "nope.pt"], "--encoder-from nope.pt: no such checkpoint"),
])
def test_cli_train_bad_input(frames: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                             extra: list[str], needle: str) -> None:
    args = ["train", "--task", "reach-mug", "--data", str(frames), "--encoder", "small-e2e",
            "--image-size", "24", "--out", str(tmp_path / "o"), "--no-progress", *extra]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_train_missing_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--task", "reach-mug", "--data", str(tmp_path / "nope"),
                 "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("realgap: error:") and err.count("\n") == 1


def test_frozen_registry_encoder_policy(frames: Path, tmp_path: Path) -> None:
    """A registry encoder (here the 'pixels' baseline) is used frozen: its features are
    embedded once, only the head learns, and the loaded policy embeds observations itself."""
    cfg = PolicyConfig("reach-mug", encoder="pixels", head="bc", hidden=16)
    res = train_policy(frames, tmp_path / "px", cfg, TrainConfig(epochs=2, batch_size=8),
                       progress=False)
    ck = load_checkpoint(res.checkpoint)
    assert not any(k.startswith("encoder.") for k in ck["state_dict"])
    assert ck["encoder_origin"].startswith("frozen registry encoder")
    pol = load_policy(res.checkpoint)
    pol.reset()
    a = pol.act({"head": np.zeros((24, 24, 3), np.uint8), "state": np.zeros(5, np.float32)})
    assert a.shape == (3,) and np.isfinite(a).all()


def test_frozen_pretrained_encoder_travels_with_the_policy(frames: Path, tmp_path: Path) -> None:
    """A registry encoder loaded from a weights file is rebuilt from that file on load, and
    a policy refuses weights other than those it was trained on (one-line DataError)."""
    import torch

    from realgap.encoders import create_encoder
    from realgap.errors import DataError, MissingFileError

    weights = tmp_path / "resnet18-mine.pth"
    torch.save(create_encoder("resnet18", random_init=True, seed=1).module.state_dict(), weights)
    cfg = PolicyConfig("reach-mug", encoder="resnet18", encoder_weights=str(weights),
                       head="bc", hidden=16)
    res = train_policy(frames, tmp_path / "r18", cfg, TrainConfig(epochs=1, batch_size=8),
                       progress=False)
    ck = load_checkpoint(res.checkpoint)
    assert f"file:{weights}" in ck["encoder_origin"]
    obs = {"head": np.full((24, 24, 3), 90, np.uint8), "state": np.zeros(5, np.float32)}
    pol = load_policy(res.checkpoint)
    pol.reset()
    a = pol.act(obs)
    assert a.shape == (3,) and np.isfinite(a).all()

    torch.save(create_encoder("resnet18", random_init=True, seed=2).module.state_dict(), weights)
    with pytest.raises(DataError, match="trained on encoder 'resnet18' with weights"):
        load_policy(res.checkpoint)
    weights.unlink()
    with pytest.raises(MissingFileError):
        load_policy(res.checkpoint)
