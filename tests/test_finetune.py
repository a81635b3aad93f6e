"""RL fine-tuning (GRPO): the pure pieces on hand-worked values, a toy bandit whose answer
is known, and a fine-tuned checkpoint played through the ordinary rollout path.

The SFT checkpoints here train for one epoch on a tiny synthetic FrameSet (no simulator);
the fine-tuning itself runs a few 5-step episodes of ``reach-mug`` at 24 px.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from realgap.errors import ConfigError

torch = pytest.importorskip("torch")

from realgap.data.synthetic import write_synthetic
from realgap.policy import PolicyConfig, TrainConfig, load_policy, train_policy
from realgap.policy.checkpoint import load_checkpoint
from realgap.policy.finetune import (
    FinetuneConfig,
    accuracy_filter,
    clipped_objective,
    episode_reward,
    finetune_policy,
    gaussian_log_prob,
    group_advantages,
    run_grpo,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY: dict[str, Any] = {"iterations": 2, "groups": 2, "group_size": 2, "max_steps": 5}


# -- hand-worked values ----------------------------------------------------------------------
def test_group_advantages_hand_values() -> None:
    adv = group_advantages(np.array([[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]]))
    # group 1: mean 0.5, sample std sqrt(4 * 0.25 / 3) = 1/sqrt(3)
    s = 1 / math.sqrt(3) + 1e-6
    np.testing.assert_allclose(adv[0], [0.5 / s, -0.5 / s, -0.5 / s, 0.5 / s], rtol=1e-12)
    np.testing.assert_array_equal(adv[1], 0.0)  # equal rewards: no preference
    np.testing.assert_allclose(group_advantages(np.array([[1.0, 2.0, 3.0]])),
                               [[-1 / (1 + 1e-6), 0.0, 1 / (1 + 1e-6)]], rtol=1e-12)
    with pytest.raises(ConfigError, match="G >= 2"):
        group_advantages(np.array([[1.0], [2.0]]))


def test_accuracy_filter_hand_values() -> None:
    rewards = np.array([[1.0, 0.0, 0.0, 1.0], [0.3, 0.3, 0.3, 0.3],
                        [-0.1, -0.2, -0.1, -0.3], [1.0, 1.0, 1.0, 1.0]])
    succ = np.array([[1, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]], bool)
    assert accuracy_filter(rewards, succ, "equal").tolist() == [True, False, True, False]
    # the reference's filter: both successes and failures, whatever the dense reward says
    assert accuracy_filter(rewards, succ, "success").tolist() == [True, False, False, False]
    assert accuracy_filter(rewards, succ, "none").tolist() == [True] * 4
    with pytest.raises(ConfigError, match="accuracy filter"):
        accuracy_filter(rewards, succ, "median")


def test_clipped_objective_hand_values() -> None:
    ratios = torch.tensor([1.5, 0.5, 1.1, 0.7])
    logp_new = ratios.log().requires_grad_(True)
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0])
    loss, frac = clipped_objective(logp_new, torch.zeros(4), adv, 0.2)
    # min(r A, clip(r) A): 1.2 (clipped), 0.5, -1.1, -0.8 (clipped)
    assert float(loss.detach()) == pytest.approx(-(1.2 + 0.5 - 1.1 - 0.8) / 4, abs=1e-6)
    assert float(frac) == pytest.approx(0.5)
    loss.backward()
    # clipped steps pass no gradient; the others -r A / N
    np.testing.assert_allclose(logp_new.grad.numpy(), [0.0, -0.5 / 4, 1.1 / 4, 0.0], atol=1e-6)
    # the reference's asymmetric upper threshold: 1.5 clips to 1.28
    loss_hi, _ = clipped_objective(ratios.log(), torch.zeros(4), adv, 0.2, 0.28)
    assert float(loss_hi) == pytest.approx(-(1.28 + 0.5 - 1.1 - 0.8) / 4, abs=1e-6)


def test_gaussian_log_prob_and_reward_hand_values() -> None:
    lp = gaussian_log_prob(torch.zeros(1, 2), torch.log(torch.tensor([0.5, 1.0])),
                           torch.tensor([[0.5, 0.0]]))
    want = (-0.5 - math.log(0.5)) + 0.0 - math.log(2 * math.pi)
    assert float(lp[0]) == pytest.approx(want, abs=1e-6)
    assert episode_reward(True, -0.02, "success") == 1.0
    assert episode_reward(False, -0.02, "distance") == -0.02
    assert episode_reward(True, -0.02, "success+distance") == pytest.approx(0.98)
    assert episode_reward(True, float("nan"), "success+distance") == 1.0  # success at reset


@pytest.mark.parametrize(("field", "value"), [
    ("group_size", 1), ("iterations", 0), ("lr", float("inf")), ("clip", 1.5), ("std", 0.0),
    ("reward", "return"), ("accuracy_filter", "mean"), ("randomize", ("BG", "XX")),
    ("seed", -1), ("max_grad_norm", -1.0), ("fidelity", "ultra")])
def test_config_refuses_bad_values_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=field if field != "randomize" else "XX"):
        FinetuneConfig(**{field: value})


def test_config_splits_a_factor_string() -> None:
    assert FinetuneConfig(randomize="BG, LT").randomize == ("BG", "LT")


# -- a toy bandit with a known answer -------------------------------------------------------
class _Bandit:
    """One-step episodes, one constant observation; reward = -|a_x - target| (so the best
    mean action is the target), success when within 0.05 of it."""

    def __init__(self, target: float, size: int = 16) -> None:
        self.target = target
        self.obs = {"head": np.full((size, size, 3), 90, np.uint8),
                    "state": np.zeros(4, np.float32)}

    def reset(self, *, seed: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.obs, {"success": False}

    def step(self, action: np.ndarray) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        d = abs(float(action[0]) - self.target)
        return self.obs, -d, True, False, {"success": d < 0.05}


def _net(head: str = "bc") -> Any:
    from realgap.policy.model import PolicyNet, build_e2e_encoder

    cfg = PolicyConfig("reach-mug", encoder="small-e2e", head=head, image_size=16, hidden=16,
                       action_dim=4, state_dim=4, history=2, horizon=4, n_action_steps=2)
    torch.manual_seed(0)
    enc, fd = build_e2e_encoder(cfg)
    return PolicyNet(cfg, fd, enc)


def _mean_x(net: Any, env: _Bandit) -> float:
    from realgap.policy.predictor import LearnedPolicy

    pol = LearnedPolicy(net, net.cfg)
    pol.reset(seed=0)
    return float(pol.act(env.obs)[0])


@pytest.mark.parametrize("direction", [1.0, -1.0])
def test_update_moves_the_mean_action_toward_higher_reward(direction: float) -> None:
    net = _net()
    probe = _Bandit(0.0)
    m0 = _mean_x(net, probe)
    env = _Bandit(m0 + 0.3 * direction)
    cfg = FinetuneConfig(iterations=12, groups=2, group_size=8, lr=3e-3, std=0.2,
                         reward="distance", minibatches=1)
    hist, _ = run_grpo(net, env, cfg, max_steps=1)
    m1 = _mean_x(net, probe)
    # a flipped advantage sign would move the mean away from the target
    assert (m1 - m0) * direction > 0.15, (m0, m1)
    assert abs(m1 - env.target) < 0.5 * abs(m0 - env.target)
    assert all(h["kept_groups"] == 2 for h in hist)
    assert hist[-1]["mean_reward"] > hist[0]["mean_reward"]


def test_filtered_out_groups_leave_the_weights_alone() -> None:
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    env = _Bandit(100.0)  # unreachable: every rollout fails, every success reward is 0
    hist, _ = run_grpo(net, env, FinetuneConfig(iterations=2, groups=2, group_size=2,
                                                reward="success"), max_steps=1)
    assert [h["kept_groups"] for h in hist] == [0, 0] and hist[0]["loss"] is None
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("train_encoder", [True, False])
def test_train_encoder_decides_whether_the_encoder_moves(train_encoder: bool) -> None:
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    run_grpo(net, _Bandit(0.0), FinetuneConfig(iterations=1, groups=1, group_size=4,
                                               reward="distance", train_encoder=train_encoder),
             max_steps=1)
    moved = {k for k, v in net.state_dict().items() if not torch.equal(v, before[k])}
    assert any(k.startswith("head.") for k in moved)
    assert any(k.startswith("encoder.") for k in moved) == train_encoder
    assert not any(k.startswith(("act_", "state_")) for k in moved)


def test_learned_std_moves_and_is_returned() -> None:
    net = _net("bc-rnn")  # a windowed head takes the same path
    env = _Bandit(0.0)
    hist, std = run_grpo(net, env, FinetuneConfig(iterations=2, groups=2, group_size=4,
                                                  reward="distance", learn_std=True, lr=1e-2,
                                                  std=0.3), max_steps=2)
    assert len(std) == 4 and std != [pytest.approx(0.3)] * 4
    assert hist[-1]["std"] == pytest.approx(float(np.mean(std)))


def test_diffusion_head_is_refused() -> None:
    with pytest.raises(ConfigError, match="regression head"):
        run_grpo(_net("dp-c"), _Bandit(0.0), FinetuneConfig(), max_steps=1)


# -- checkpoint to checkpoint ---------------------------------------------------------------
@pytest.fixture(scope="module")
def sft(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("ft")
    write_synthetic(d / "fs", domains=("sim",), tasks=("reach-mug",), n_episodes=2, n_frames=6,
                    size=24, action_dim=4, state_dim=4, rng=0)
    res = train_policy(d / "fs", d / "sft", PolicyConfig("reach-mug", encoder="small-e2e",
                                                         head="bc", image_size=24, hidden=16),
                       TrainConfig(epochs=1, batch_size=8), progress=False)
    return res.checkpoint


def _state(path: Path) -> dict[str, np.ndarray]:
    return {k: v.numpy().copy() for k, v in load_checkpoint(path)["state_dict"].items()}


def test_finetuned_checkpoint_plays_through_run_episodes(sft: Path, tmp_path: Path) -> None:
    from realgap.policy.episodes import EpisodeSpec, env_spec_for, resolve_policy, run_episodes

    cfg = FinetuneConfig(**TINY, randomize=("BG", "LT"), threads=2)
    threads = torch.get_num_threads()
    res = finetune_policy(sft, tmp_path / "ft", cfg)
    assert torch.get_num_threads() == threads  # process state as it was
    assert res.checkpoint.parent == tmp_path / "ft" / "checkpoints"
    assert len(res.history) == 2 and res.seconds > 0
    ck = load_checkpoint(tmp_path / "ft")
    assert ck["finetune"]["reward"] == "success+distance"
    assert ck["finetune"]["randomize"] == ["BG", "LT"]
    assert ck["finetune"]["std"] == [pytest.approx(0.1)] * 4
    assert set(ck["state_dict"]) == set(_state(sft))
    assert any(not np.array_equal(a, _state(sft)[k]) for k, a in _state(res.checkpoint).items())
    load_policy(tmp_path / "ft", task="reach-mug")
    ref, task, pcfg = resolve_policy(tmp_path / "ft", "reach-mug")
    outs = run_episodes(ref, env_spec_for(task, pcfg, max_steps=3),
                        [EpisodeSpec(100_000), EpisodeSpec(100_001)], workers=1)
    assert [o.length for o in outs] == [3, 3] or any(o.success for o in outs)
    # a rerun finds the finished fine-tuning; other settings refuse to overwrite it
    again = finetune_policy(sft, tmp_path / "ft", FinetuneConfig(**TINY, randomize=("BG", "LT")))
    assert again.checkpoint == res.checkpoint and again.seconds == 0.0
    assert again.history == ck["finetune"]["history"]
    with pytest.raises(ConfigError, match="already holds"):
        finetune_policy(sft, tmp_path / "ft", FinetuneConfig(**TINY, seed=1))


def test_same_seed_same_weights(sft: Path, tmp_path: Path) -> None:
    a = finetune_policy(sft, tmp_path / "a.pt", FinetuneConfig(**TINY))
    b = finetune_policy(sft, tmp_path / "b.pt", FinetuneConfig(**TINY))
    c = finetune_policy(sft, tmp_path / "c.pt", FinetuneConfig(**TINY, seed=3))
    wa, wb, wc = _state(a.checkpoint), _state(b.checkpoint), _state(c.checkpoint)
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k], err_msg=k)
    assert any(not np.array_equal(wa[k], wc[k]) for k in wa)
    assert [h["mean_reward"] for h in a.history] == [h["mean_reward"] for h in b.history]


def test_source_is_never_overwritten(sft: Path) -> None:
    before = sft.read_bytes()
    with pytest.raises(ConfigError, match="source checkpoint"):
        finetune_policy(sft, sft, FinetuneConfig(**TINY))
    assert sft.read_bytes() == before


def test_frozen_registry_encoder_policy_finetunes_its_head(sft: Path, tmp_path: Path) -> None:
    """A head on a frozen registry encoder ('pixels') learns from the features the rollouts
    embedded; the checkpoint keeps its encoder fields, so it loads and acts as before."""
    fs = sft.parents[2] / "fs"
    res = train_policy(fs, tmp_path / "px", PolicyConfig("reach-mug", encoder="pixels", head="bc",
                                                         image_size=24, hidden=16),
                       TrainConfig(epochs=1, batch_size=8), progress=False)
    ft = finetune_policy(res.checkpoint, tmp_path / "ft",
                         FinetuneConfig(**{**TINY, "max_steps": 3}))
    before, after = _state(res.checkpoint), _state(ft.checkpoint)
    assert not any(k.startswith("encoder.") for k in after)
    assert any(not np.array_equal(after[k], before[k]) for k in after if k.startswith("head."))
    src, out = load_checkpoint(res.checkpoint), load_checkpoint(ft.checkpoint)
    assert out["encoder_weights_hash"] == src["encoder_weights_hash"]
    pol = load_policy(ft.checkpoint, task="reach-mug")
    pol.reset(seed=0)
    a = pol.act({"head": np.zeros((24, 24, 3), np.uint8), "state": np.zeros(4, np.float32)})
    assert a.shape == (4,) and np.isfinite(a).all()
