"""The head registry: every registered head is built, trained, saved, loaded and asked for
its saliency scalar by tests generated from the registry; training leaves torch's process
state as it found it; ``resume=False`` refuses to overwrite checkpoints in the library.

Tiny synthetic FrameSets (no simulator), seconds per head.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from realgap.errors import ConfigError

torch = pytest.importorskip("torch")

from realgap.data.synthetic import write_synthetic
from realgap.policy import PolicyConfig, TrainConfig, load_policy, train_policy
from realgap.policy.config import HEAD_REGISTRY, HEADS, head_spec

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HEAD_NAMES = HEAD_REGISTRY.names()


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("fs") / "fs"
    write_synthetic(d, domains=("sim",), tasks=("reach-mug",), n_episodes=3, n_frames=8,
                    size=24, action_dim=3, state_dim=5, rng=0)
    return d


def _cfg(head: str, **kw: object) -> PolicyConfig:
    return PolicyConfig("reach-mug", encoder="small-e2e", head=head, image_size=24, hidden=32,
                        history=3, horizon=4, n_action_steps=2, diffusion_train_steps=20,
                        diffusion_infer_steps=3, **kw)


def test_registry_lists_every_head_and_dp_t() -> None:
    assert set(HEADS) == set(HEAD_NAMES)
    assert "dp-t" in HEAD_NAMES
    with pytest.raises(ConfigError, match="did you mean dp-t"):
        PolicyConfig("reach-mug", head="dpt")


@pytest.mark.parametrize("head", HEAD_NAMES)
def test_head_declares_windows_and_builds(head: str) -> None:
    spec = head_spec(head)
    cfg = _cfg(head, state_dim=4)
    t_o, t_a, k = spec.obs_window(cfg), spec.action_window(cfg), spec.exec_steps(cfg)
    assert t_o >= 1 and t_a >= 1 and 1 <= k <= max(t_a, 1)
    if spec.act_from_obs:
        assert t_a == t_o
    torch.manual_seed(0)
    net = spec.build(10, cfg)
    cond = torch.randn(5, t_o, 10, requires_grad=True)
    actions = torch.randn(5, t_a, cfg.action_dim)
    loss = net.loss(cond, actions, generator=torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)
    pred = net.predict(cond.detach(), generator=torch.Generator().manual_seed(1))
    assert pred.shape == (5, k, cfg.action_dim) and torch.isfinite(pred).all()
    # the saliency scalar is one number per sample and depends on the observation
    noise = torch.randn(5, cfg.horizon, cfg.action_dim, generator=torch.Generator().manual_seed(2))
    cond.grad = None
    sal = net.saliency_scalar(cond, noise)
    assert sal.shape == (5, 1)
    sal.sum().backward()
    assert cond.grad is not None and float(cond.grad.abs().sum()) > 0


@pytest.mark.parametrize("head", HEAD_NAMES)
def test_head_trains_saves_loads_and_acts(head: str, frames: Path, tmp_path: Path) -> None:
    res = train_policy(frames, tmp_path / head, _cfg(head), TrainConfig(epochs=1, batch_size=8),
                       progress=False)
    assert np.isfinite(res.losses).all()
    pol = load_policy(res.checkpoint)
    rng = np.random.default_rng(0)
    obs = {"head": rng.integers(0, 255, (24, 24, 3), dtype=np.uint8),
           "state": rng.normal(size=5).astype(np.float32)}
    k = head_spec(head).exec_steps(pol.cfg)
    pol.reset(seed=3)
    first = [pol.act(obs) for _ in range(2 * k)]
    pol.reset(seed=3)
    again = [pol.act(obs) for _ in range(2 * k)]
    assert all(a.shape == (3,) and np.isfinite(a).all() for a in first)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert len(pol._hist) == head_spec(head).obs_window(pol.cfg)


def test_dp_t_attends_to_both_observations() -> None:
    """DP-T's denoiser reads every observation token of its window, not only the last."""
    cfg = _cfg("dp-t")
    torch.manual_seed(0)
    net = head_spec("dp-t").build(6, cfg)
    x = torch.randn(2, cfg.horizon, cfg.action_dim)
    t = torch.tensor([3, 3])
    cond = torch.randn(2, 2, 6)
    other = cond.clone()
    other[:, 0] += 1.0  # change only the older observation
    assert not torch.allclose(net.denoise(x, t, cond), net.denoise(x, t, other))
    # causal: the first action token does not see later action tokens
    x2 = x.clone()
    x2[:, -1] += 1.0
    assert torch.allclose(net.denoise(x, t, cond)[:, 0], net.denoise(x2, t, cond)[:, 0], atol=1e-6)


def test_training_restores_torch_threads_and_rng(frames: Path, tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    train_policy(frames, tmp_path / "p", _cfg("bc"),
                 TrainConfig(epochs=1, batch_size=8, threads=threads + 1), progress=False)
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.rand(3), expected)


def test_no_resume_refuses_existing_checkpoints(frames: Path, tmp_path: Path) -> None:
    tc = TrainConfig(epochs=1, batch_size=8)
    res = train_policy(frames, tmp_path / "p", _cfg("bc"), tc, progress=False)
    before = res.checkpoint.read_bytes()
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        train_policy(frames, tmp_path / "p", _cfg("bc"), tc, resume=False, progress=False)
    assert res.checkpoint.read_bytes() == before


def test_held_out_early_stopping_keeps_the_best_epoch(frames: Path, tmp_path: Path) -> None:
    from realgap.policy.checkpoint import list_checkpoints, load_checkpoint

    tc = TrainConfig(epochs=6, batch_size=8, lr=0.05, val_episodes=1, patience=2,
                     checkpoint_every=1)
    res = train_policy(frames, tmp_path / "p", _cfg("bc"), tc, progress=False)
    assert len(res.val_losses) == res.epochs_done >= 1
    best = int(np.argmin(res.val_losses)) + 1
    assert res.best_epoch == best
    # stopped `patience` epochs after the best one, or ran out of epochs
    assert res.epochs_done == min(6, best + 2)
    ck = load_checkpoint(res.checkpoint)
    assert ck["epoch"] == 6 and ck["stopped_at"] == res.epochs_done
    # the final checkpoint holds the best epoch's weights, which a rerun finds finished
    assert all(torch.equal(ck["state_dict"][k], ck["best_state_dict"][k]) for k in ck["state_dict"])
    assert list_checkpoints(tmp_path / "p")[-1] == res.checkpoint
    again = train_policy(frames, tmp_path / "p", _cfg("bc"), tc, progress=False)
    assert again.epochs_done == 0


def test_patience_needs_a_held_out_set() -> None:
    with pytest.raises(ConfigError, match="needs val_episodes"):
        TrainConfig(patience=3)
