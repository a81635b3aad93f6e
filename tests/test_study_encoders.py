"""Learned encoders in ``realgap study scores``: a BC encoder as a policy's frozen encoder
(its weights travel in the checkpoint as plain tensors and come back, hash checked, in a
fresh rollout worker process), and a policy's end-to-end encoder as a registry encoder
whose offline embedding is the policy's own encoder output.

Synthetic FrameSets, tiny networks, 1-2 epochs: seconds (the spawned workers most of it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from realgap.data import FrameSet
from realgap.data.synthetic import write_synthetic
from realgap.encoders import create_encoder
from realgap.encoders.bc import train_bc_encoder
from realgap.errors import ConfigError, DataError
from realgap.policy import PolicyConfig, TrainConfig, load_policy, train_policy
from realgap.policy.checkpoint import load_checkpoint, save_checkpoint
from realgap.study.config import PRESETS, preset_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("fs") / "fs"
    write_synthetic(d, domains=("sim",), tasks=("reach-mug",), n_episodes=4, n_frames=8,
                    size=24, action_dim=4, state_dim=5, rng=0)
    return d


def _images(frames: Path) -> np.ndarray:
    fs = FrameSet.open(frames)
    return np.asarray(fs.images("head", np.arange(6)))


def test_bc_encoder_policy_round_trips_and_plays_in_a_fresh_worker(frames: Path,
                                                                   tmp_path: Path) -> None:
    from realgap.policy.episodes import EnvSpec, EpisodeSpec, run_episodes

    enc = train_bc_encoder(FrameSet.open(frames), domain="sim", epochs=2, image_size=24,
                           rng=0, cache_dir=tmp_path / "cache")
    res = train_policy(frames, tmp_path / "pol", PolicyConfig("reach-mug", encoder="bc-sim",
                                                              hidden=16, image_size=24),
                       TrainConfig(epochs=1, batch_size=8, domain="sim"), progress=False,
                       frozen_encoder=enc, embedding_cache=tmp_path / "cache")
    ck = load_checkpoint(res.checkpoint)  # torch.load(weights_only=True): tensors, no pickle
    stored = ck["frozen_encoder"]
    assert stored["weights_hash"] == enc.weights_hash == ck["encoder_weights_hash"]
    assert all(isinstance(v, torch.Tensor) for v in stored["state_dict"].values())

    pol = load_policy(res.checkpoint)
    back = pol.registry_encoder
    assert back.name == "bc-sim" and back.weights_hash == enc.weights_hash
    assert back.weights_origin.startswith(enc.weights_origin)
    assert f"weights stored in policy checkpoint {res.checkpoint}" in back.weights_origin
    imgs = _images(frames)
    assert np.array_equal(back.embed(imgs), enc.embed(imgs))

    # the same episodes in this process and in two spawned workers: the same actions make
    # the same returns and final distances, step for step
    spec = EnvSpec("reach-mug", image_size=24, max_steps=4)
    eps = [EpisodeSpec(seed=s) for s in (3, 4)]
    here = run_episodes(str(res.checkpoint), spec, eps, workers=1)
    there = run_episodes(str(res.checkpoint), spec, eps, workers=2)
    assert [(o.ret, o.final_reward, o.length) for o in here] == \
        [(o.ret, o.final_reward, o.length) for o in there]

    # an altered stored tensor is refused by its hash, in one line naming the file
    ck.pop("path")
    key = next(iter(ck["frozen_encoder"]["state_dict"]))
    ck["frozen_encoder"]["state_dict"][key] = ck["frozen_encoder"]["state_dict"][key] + 1.0
    bad = save_checkpoint(tmp_path / "bad.pt", ck)
    with pytest.raises(DataError, match="hash") as err:
        load_policy(bad)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


def test_bc_encoder_named_alone_trains_on_the_training_frameset(frames: Path,
                                                                 tmp_path: Path) -> None:
    """``realgap train --encoder bc-sim`` (no encoder object): the BC encoder trains on the
    policy's FrameSet, is cached, and travels in the checkpoint like the study's."""
    res = train_policy(frames, tmp_path / "p", PolicyConfig("reach-mug", encoder="bc-sim",
                                                            hidden=8, image_size=24),
                       TrainConfig(epochs=1, batch_size=8, domain="sim"), progress=False)
    ck = load_checkpoint(res.checkpoint)
    assert ck["frozen_encoder"]["domain"] == "sim"
    assert list((tmp_path / "p" / "embedding-cache" / "bc").glob("*.pt"))
    pol = load_policy(res.checkpoint)
    assert pol.registry_encoder.weights_origin.startswith("trained: BC on ")
    assert pol.registry_encoder.weights_hash == ck["encoder_weights_hash"]


def test_e2e_encoder_embedding_equals_the_policy_encoder(frames: Path, tmp_path: Path) -> None:
    res = train_policy(frames, tmp_path / "e2e", PolicyConfig("reach-mug", encoder="small-e2e",
                                                              hidden=16, image_size=16),
                       TrainConfig(epochs=1, batch_size=8, domain="sim", augment_shift=2),
                       progress=False, episodes=[0, 1, 2])
    enc = create_encoder("small-e2e", weights=res.checkpoint)
    pol = load_policy(res.checkpoint)
    imgs = _images(frames)  # 24 px frames: both resize them to the policy's 16 px
    with torch.no_grad():
        want = pol.features(imgs).numpy()
    got = enc.embed(imgs)
    assert got.shape == want.shape == (6, 64)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)  # channels-last rounding only
    assert enc.extra["train_episodes"] == [0, 1, 2]  # the gap job scores it on the others
    assert str(res.checkpoint) in enc.weights_origin and "seed 0" in enc.weights_origin
    # the hash is over the encoder's tensors: another seed's policy is another encoder
    other = train_policy(frames, tmp_path / "e2e-1", PolicyConfig(
        "reach-mug", encoder="small-e2e", hidden=16, image_size=16),
        TrainConfig(epochs=1, batch_size=8, domain="sim", seed=1), progress=False)
    assert create_encoder("small-e2e", weights=other.checkpoint).weights_hash != enc.weights_hash

    with pytest.raises(ConfigError, match="--weights small-e2e=CKPT"):
        create_encoder("small-e2e")
    px = train_policy(frames, tmp_path / "px", PolicyConfig("reach-mug", encoder="pixels", hidden=8),
                      TrainConfig(epochs=1, batch_size=8, domain="sim"), progress=False)
    with pytest.raises(ConfigError, match="not 'small-e2e'"):
        create_encoder("small-e2e", weights=px.checkpoint)
    # a training directory means its latest checkpoint
    assert create_encoder("small-e2e", weights=tmp_path / "e2e").weights_hash == enc.weights_hash


def test_policy_encoder_names_agree_across_layers() -> None:
    """The encoders layer repeats the policy layer's e2e names and checkpoint format (it may
    not import it); the two must agree."""
    from realgap.encoders.e2e import POLICY_E2E_ARCHS, POLICY_FORMAT
    from realgap.encoders.registry import POLICY_ENCODERS
    from realgap.policy.checkpoint import FORMAT
    from realgap.policy.config import E2E_ENCODERS

    assert POLICY_E2E_ARCHS == E2E_ENCODERS and set(POLICY_ENCODERS) == set(E2E_ENCODERS)
    assert POLICY_FORMAT == FORMAT


def test_training_episodes_are_recorded_and_checked(frames: Path, tmp_path: Path) -> None:
    cfg = PolicyConfig("reach-mug", encoder="pixels", hidden=8)
    tc = TrainConfig(epochs=1, batch_size=8, domain="sim")
    res = train_policy(frames, tmp_path / "p", cfg, tc, progress=False, episodes=[1, 3])
    ck = load_checkpoint(res.checkpoint)
    assert ck["train_episodes"] == [1, 3] and ck["frozen_encoder"] is None
    assert res.n_episodes == 2
    with pytest.raises(ConfigError, match="training episodes"):
        train_policy(frames, tmp_path / "p", cfg, TrainConfig(epochs=2, batch_size=8, domain="sim"),
                     progress=False, episodes=[0, 1, 3])
    with pytest.raises(ConfigError, match=r"\[9\] not among"):
        train_policy(frames, tmp_path / "q", cfg, tc, progress=False, episodes=[1, 9])


def test_config_takes_learned_encoders_and_presets_have_them() -> None:
    cfg = preset_config("tiny", "x", encoders=("pixels", "bc-sim", "bc-sim-nominal", "small-e2e"))
    assert cfg.encoders[1:] == ("bc-sim", "bc-sim-nominal", "small-e2e")
    small = PRESETS["small"]["encoders"]
    assert len(small) >= 6
    assert {"resnet18-random", "pixels", "bc-sim", "bc-sim-nominal", "small-e2e"} <= set(small)
    assert any(e.startswith("efficientnet-lite") for e in small)
    tiny = PRESETS["tiny"]["encoders"]
    assert "small-e2e" in tiny and any(e.startswith("bc-") for e in tiny)
    with pytest.raises(ConfigError, match="--augment-shift"):
        preset_config("tiny", "x", augment_shift=-1)
