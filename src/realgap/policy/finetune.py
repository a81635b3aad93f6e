"""RL fine-tuning of a supervised (SFT) policy in simulation: a group-relative update (GRPO).

vla-domain-randomization-study.txt trains an SFT policy, then fine-tunes it with Group
Relative Policy Optimization in simulation, in a clean scene or under domain
randomization (section 3.2.2; section 4.4 and lesson 5: RL makes the policy more robust
to distribution shifts, more so under randomization). The recipe, with the reference's
choices where it states them (section 3.2.2 and appendix 0.A.2, after SimpleVLA-RL):

- a *group* of ``G`` rollouts starts from one initial state (``env.reset(seed=s)`` with the
  same ``s``; under randomization the seed also fixes the factor draws, so the rewards of a
  group differ only through the policy's sampled actions);
- each rollout's advantage is its reward minus the group's mean reward, divided by the
  group's standard deviation (:func:`group_advantages`); every step of the rollout gets it;
- the *accuracy filter* drops groups that cannot teach anything relative
  (:func:`accuracy_filter`: by default groups whose rewards are all equal; the reference
  keeps only groups with both successes and failures);
- the PPO clipped objective on the per-step likelihood ratio, averaged over the kept steps
  (:func:`clipped_objective`), with the reference's lower/upper thresholds, zero KL
  regularization, no value network, gradient-norm clipping at 1.

realgap's policies regress a deterministic action, and RL needs a stochastic one: during
fine-tuning an action is drawn from a Gaussian around the head's (normalised) action,
``a ~ N(mu_phi(o), sigma^2)`` per action dimension, with ``sigma`` fixed (``std``) or a
learned log-std. The deployed policy stays the mean action: the fine-tuned checkpoint has
the SFT checkpoint's format and keys, so ``realgap rollout``/``evaluate`` and
:func:`realgap.policy.episodes.run_episodes` play it unchanged; ``sigma`` is recorded in
its ``finetune`` entry, which playing ignores.

Reward (:data:`REWARDS`): the reference's binary success, or success plus a dense term,
the task's reward at the last step played (the reach tasks: minus the final distance to
the reach point, metres), because success may be rare at CPU sizes; which one was used is
recorded in the checkpoint.

Shapes, stated once: ``rewards``/``successes`` are ``(n_groups, G)``; per-step tensors are
``(N,)`` (log-probabilities, advantages) or ``(N, A)`` (normalised actions, ``A`` the
action dimension).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from realgap._rng import as_rng, child_seeds
from realgap.errors import ConfigError, DataError

__all__ = ["FILTERS", "REWARDS", "FinetuneConfig", "FinetuneResult", "accuracy_filter",
           "clipped_objective", "episode_reward", "finetune_policy", "gaussian_log_prob",
           "group_advantages", "run_grpo"]

#: Reward choices of :class:`FinetuneConfig` (``reward``): ``success`` is 1/0 (the
#: reference's binary reward); ``distance`` is the task's reward at the last step played
#: (reach tasks: minus the final distance to the reach point, m); ``success+distance`` is
#: their sum (success still dominates: a reach success ends within 3 cm).
REWARDS: tuple[str, ...] = ("success", "distance", "success+distance")

#: Accuracy filters (``accuracy_filter``): ``equal`` drops groups whose rewards are all
#: equal (with the binary reward, exactly the reference's "both successful and
#: unsuccessful rollouts"); ``success`` keeps only groups with both successes and failures
#: whatever the reward; ``none`` keeps every group (a group of equal rewards then has zero
#: advantage and only dilutes the step average).
FILTERS: tuple[str, ...] = ("equal", "success", "none")

#: Reset seeds of the fine-tuning rollouts are drawn in ``[TRAIN_SEED_LOW, 2**31)``, away
#: from the small seeds evaluations use (``realgap rollout`` seeds ``0..n-1``; the studies
#: start at 100,000), so a fine-tuned policy is not evaluated on its training states.
TRAIN_SEED_LOW = 2**30
TRAIN_SEED_HIGH = 2**31

#: Added to the group's standard deviation before dividing (all-equal groups give 0).
ADV_EPS = 1e-6

_MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class FinetuneConfig:
    """How to fine-tune an SFT policy with the group-relative update.

    Attributes:
        iterations: rollout-then-update rounds.
        groups: initial states per iteration (each a group).
        group_size: rollouts per group ``G`` (>= 2: a group needs a spread).
        lr: Adam learning rate (the reference fine-tunes a 7B model with LoRA at a far
            smaller rate; a small end-to-end policy needs larger steps in a few iterations).
        clip: PPO clipping threshold ``eps_low``: the ratio is clipped to
            ``[1 - clip, 1 + clip_high]``.
        clip_high: upper threshold ``eps_high`` (None: ``clip``). The reference sets the two
            apart (appendix 0.A.2); a larger upper one lets unlikely good actions grow
            faster (SimpleVLA-RL's scripts: 0.2 and 0.28).
        std: standard deviation of the exploration Gaussian, in normalised action units
            (1 = one standard deviation of the demonstrations' actions per dimension).
        learn_std: learn a per-dimension log-std, starting at ``log(std)`` (recorded in the
            checkpoint's ``finetune`` entry); False keeps ``std`` fixed.
        reward: one of :data:`REWARDS`.
        accuracy_filter: one of :data:`FILTERS`.
        randomize: factors randomized per episode during fine-tuning (e.g.
            ``("BG", "LT", "TD", "CP", "TH")``); ``()``: clean simulation.
        seed: seeds the initial states, the action noise and the minibatch order (same
            seed, same fine-tuned weights); ``0..2**32-1``.
        threads: torch intra-op threads while fine-tuning (None: torch's default);
            restored on return.
        update_epochs: passes over an iteration's rollouts (PPO epochs).
        minibatches: optimizer steps per pass (the steps are shuffled and split; after the
            first step the ratio leaves 1 and the clipping acts).
        max_grad_norm: gradient-norm clipping (the reference: 1, appendix 0.A.2; 0 disables
            it).
        train_encoder: update an end-to-end encoder too (False: the head and, if learned,
            the log-std only; cheaper). A frozen encoder always stays frozen.
        max_steps: episode cap in steps (None: the task's own limit).
        fidelity: rendering fidelity preset of the fine-tuning environment.
    """

    iterations: int = 10
    groups: int = 4
    group_size: int = 4
    lr: float = 1e-4
    clip: float = 0.2
    std: float = 0.1
    reward: str = "success+distance"
    randomize: tuple[str, ...] = ()
    seed: int = 0
    threads: int | None = 1
    clip_high: float | None = None
    learn_std: bool = False
    accuracy_filter: str = "equal"
    update_epochs: int = 1
    minibatches: int = 2
    max_grad_norm: float = 1.0
    train_encoder: bool = True
    max_steps: int | None = None
    fidelity: str = "low"

    def __post_init__(self) -> None:
        rnd = self.randomize
        if isinstance(rnd, str):  # "BG,LT" from a caller that did not split
            rnd = tuple(s.strip() for s in rnd.split(",") if s.strip())
        object.__setattr__(self, "randomize", tuple(rnd))
        for name in ("iterations", "groups", "group_size", "update_epochs", "minibatches"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ConfigError(f"finetune {name}={v!r}: must be an integer >= 1")
        if self.group_size < 2:
            raise ConfigError(f"finetune group_size={self.group_size}: must be >= 2 (advantages "
                              "are relative to the group; one rollout has nothing to compare)")
        if not 0 < self.lr < math.inf:
            raise ConfigError(f"finetune lr={self.lr!r}: must be a finite number > 0")
        if not 0 < self.clip < 1:
            raise ConfigError(f"finetune clip={self.clip!r}: must be in (0, 1) (0.2 is usual)")
        if self.clip_high is not None and not 0 < self.clip_high < math.inf:
            raise ConfigError(f"finetune clip_high={self.clip_high!r}: must be a finite number "
                              "> 0, or None for the same as clip")
        if not 0 < self.std < math.inf:
            raise ConfigError(f"finetune std={self.std!r}: must be a finite number > 0 "
                              "(normalised action units; 0.1 is typical)")
        if self.reward not in REWARDS:
            raise ConfigError(f"finetune reward={self.reward!r}: expected one of "
                              f"{', '.join(REWARDS)}")
        if self.accuracy_filter not in FILTERS:
            raise ConfigError(f"finetune accuracy_filter={self.accuracy_filter!r}: expected one "
                              f"of {', '.join(FILTERS)}")
        if isinstance(self.seed, bool) or not 0 <= int(self.seed) <= _MAX_SEED:
            raise ConfigError(f"finetune seed={self.seed!r}: must be in 0..{_MAX_SEED}")
        if self.threads is not None and (isinstance(self.threads, bool) or int(self.threads) < 1):
            raise ConfigError(f"finetune threads={self.threads!r}: must be >= 1 or None")
        if not 0 <= self.max_grad_norm < math.inf:
            raise ConfigError(f"finetune max_grad_norm={self.max_grad_norm!r}: must be >= 0 "
                              "(0 disables the clipping)")
        if self.max_steps is not None and (isinstance(self.max_steps, bool)
                                           or int(self.max_steps) < 1):
            raise ConfigError(f"finetune max_steps={self.max_steps!r}: must be >= 1 or None")
        from realgap.sim.factor_config import check_factor_names
        from realgap.sim.fidelity import FIDELITY

        check_factor_names(self.randomize, arg="finetune randomize")
        if self.fidelity not in FIDELITY:
            raise ConfigError(f"finetune fidelity={self.fidelity!r}: expected one of "
                              f"{', '.join(FIDELITY)}")

    @property
    def upper_clip(self) -> float:
        """``eps_high``: ``clip_high`` or, when None, ``clip``."""
        return self.clip if self.clip_high is None else float(self.clip_high)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["randomize"] = list(self.randomize)
        return d


@dataclass(frozen=True)
class FinetuneResult:
    """What :func:`finetune_policy` did.

    Attributes:
        checkpoint: the fine-tuned checkpoint (the SFT checkpoint's format).
        history: one dict per iteration: ``iteration``, ``mean_reward``, ``success_rate``
            (of the iteration's rollouts, with exploration noise), ``final_reward`` (mean
            task reward at the last step: reach tasks, minus the final distance in m),
            ``kept_groups`` (after the accuracy filter), ``groups``, ``loss`` (mean clipped
            objective of the updates, None when every group was filtered out),
            ``clip_fraction``, ``std`` (mean exploration std), ``steps``, ``seconds``.
        seconds: wall time of the fine-tuning (0 when an existing result was found).
    """

    checkpoint: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


# -- the pure pieces ------------------------------------------------------------------------
def episode_reward(success: bool, final_reward: float, kind: str) -> float:
    """The scalar reward of one rollout (``kind`` one of :data:`REWARDS`).

    ``final_reward`` is the task's reward at the last step played (NaN when no step was
    played, i.e. the state was a success at reset: the dense term then counts 0).
    """
    dense = 0.0 if not math.isfinite(final_reward) else float(final_reward)
    if kind == "success":
        return float(bool(success))
    if kind == "distance":
        return dense
    if kind == "success+distance":
        return float(bool(success)) + dense
    raise ConfigError(f"reward {kind!r}: expected one of {', '.join(REWARDS)}")


def group_advantages(rewards: np.ndarray, eps: float = ADV_EPS) -> np.ndarray:
    """GRPO's advantages: ``(r - mean_g) / (std_g + eps)`` within each group.

    ``rewards``: float ``(n_groups, G)``. Returns float64 ``(n_groups, G)``. The standard
    deviation is the sample one (``ddof=1``), as verl's GRPO estimator (which SimpleVLA-RL,
    the reference's RL recipe, runs on) and TRL compute it; a group of equal rewards gets
    zero advantages. (vla-domain-randomization-study.txt, section 3.2.2.)
    """
    r = np.asarray(rewards, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] < 2:
        raise ConfigError(f"rewards of shape {r.shape}: expected (n_groups, G) with G >= 2")
    mean = r.mean(axis=1, keepdims=True)
    std = r.std(axis=1, ddof=1, keepdims=True)
    return (r - mean) / (std + eps)


def accuracy_filter(rewards: np.ndarray, successes: np.ndarray, mode: str = "equal") -> np.ndarray:
    """Which groups the update keeps: bool ``(n_groups,)``.

    ``rewards``, ``successes``: ``(n_groups, G)``. ``mode`` (:data:`FILTERS`): ``equal``
    drops groups whose rewards are all exactly equal; ``success`` keeps the groups with at
    least one success and one failure (the reference's filter: "only trajectory groups
    containing both successful and unsuccessful rollouts are used", section 3.2.2); ``none``
    keeps all.
    """
    r = np.asarray(rewards, dtype=np.float64)
    s = np.asarray(successes, dtype=bool)
    if mode == "equal":
        return np.asarray(~np.all(r == r[:, :1], axis=1))
    if mode == "success":
        return np.asarray(s.any(axis=1) & ~s.all(axis=1))
    if mode == "none":
        return np.ones(r.shape[0], dtype=bool)
    raise ConfigError(f"accuracy filter {mode!r}: expected one of {', '.join(FILTERS)}")


def clipped_objective(logp_new: Any, logp_old: Any, advantages: Any, clip_low: float,
                      clip_high: float | None = None) -> tuple[Any, Any]:
    """PPO's clipped surrogate as a loss to minimise, and the fraction of clipped steps.

    ``loss = -mean_t min(rho_t A_t, clip(rho_t, 1 - eps_low, 1 + eps_high) A_t)`` with
    ``rho_t = exp(logp_new - logp_old)``; all inputs are torch ``(N,)`` (``logp_old`` and
    ``advantages`` carry no gradient). The mean runs over steps (verl's token mean).
    (vla-domain-randomization-study.txt, section 3.2.2, the clipped objective.)
    """
    torch = _torch()
    hi = clip_low if clip_high is None else clip_high
    ratio = torch.exp(logp_new - logp_old)
    clipped = torch.clamp(ratio, 1.0 - clip_low, 1.0 + hi)
    surrogate = torch.minimum(ratio * advantages, clipped * advantages)
    frac = ((ratio * advantages) > (clipped * advantages)).float().mean()
    return -surrogate.mean(), frac.detach()


def gaussian_log_prob(mean: Any, log_std: Any, actions: Any) -> Any:
    """Log-density of ``actions (N, A)`` under ``N(mean (N, A), exp(log_std (A,))^2)``,
    summed over the action dimensions: ``(N,)``."""
    z = (actions - mean) * (-log_std).exp()
    return (-0.5 * z.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


def _torch() -> Any:
    from realgap._optional import require

    return require("torch")


# -- rollouts ------------------------------------------------------------------------------
class _Actor:
    """The policy network with Gaussian exploration, and the buffer of an iteration's steps.

    Per step it keeps what the update needs to recompute the action's log-likelihood with
    gradients: the resized uint8 image (end-to-end encoder being trained) or the frozen
    features, the proprioceptive state, the observation window (rows of this buffer, padded
    at the episode start by repeating the first observation as the policy does when
    deployed) and the sampled normalised action.
    """

    def __init__(self, net: Any, registry_encoder: Any | None, cfg: FinetuneConfig) -> None:
        torch = _torch()
        from realgap.policy.config import head_spec

        self.torch = torch
        self.net = net.eval()  # no dropout or batch norm: rollout and update see one network
        self.pcfg = net.cfg
        self.registry_encoder = registry_encoder
        self.window = int(head_spec(self.pcfg.head).obs_window(self.pcfg))
        self.reencode = bool(net.encoder is not None and cfg.train_encoder
                             and not self.pcfg.freeze_encoder)
        self.log_std = torch.nn.Parameter(
            torch.full((self.pcfg.action_dim,), math.log(cfg.std)), requires_grad=cfg.learn_std)
        self.clear()

    def clear(self) -> None:
        self.images: list[Any] = []
        self.feats: list[Any] = []
        self.states: list[Any] = []
        self.windows: list[list[int]] = []
        self.actions: list[Any] = []

    def parameters(self) -> list[Any]:
        head = list(self.net.head.parameters())
        enc = list(self.net.encoder.parameters()) if self.reencode else []
        return [p for p in head + enc if p.requires_grad] + (
            [self.log_std] if self.log_std.requires_grad else [])

    def _features(self, img_u8: Any, raw: np.ndarray) -> Any:
        if self.registry_encoder is not None:
            return self.torch.from_numpy(
                np.asarray(self.registry_encoder.embed(raw[None]), np.float32))[0]
        return self.net.encode(img_u8)[0]

    def mean(self, feats: Any, states: Any | None) -> Any:
        """Normalised mean action ``(B, A)`` from ``feats (B, T, F)``, ``states (B, T, S)``:
        the action the deployed policy executes (the regression head's output)."""
        cond = self.net.condition(feats, states)
        return self.net.head(cond)[:, -1]

    def act(self, obs: Any, episode_rows: list[int], gen: Any) -> np.ndarray:
        """Record the observation, sample a normalised action; return it in env units."""
        torch = self.torch
        from realgap.policy.model import prepare_images

        cam = self.pcfg.camera
        if cam not in obs:
            raise DataError(f"observation has no camera {cam!r}; the fine-tuning env renders "
                            f"{sorted(k for k in obs if k != 'state')}")
        raw = np.asarray(obs[cam])
        with torch.no_grad():
            img = prepare_images(raw[None], self.pcfg.image_size) if self.registry_encoder is None \
                else None
            feat = self._features(img, raw)
            state = torch.as_tensor(
                np.asarray(obs.get("state", np.zeros(0)), np.float32)[: self.pcfg.state_dim])
            row = len(self.feats)
            self.images.append(img[0] if img is not None else None)
            self.feats.append(feat)
            self.states.append(state)
            episode_rows.append(row)
            win = episode_rows[-self.window:]
            win = [win[0]] * (self.window - len(win)) + win
            self.windows.append(win)
            feats = torch.stack([self.feats[i] for i in win])[None]
            states = torch.stack([self.states[i] for i in win])[None] if self.pcfg.state_dim \
                else None
            mu = self.mean(feats, states)[0]
            noise = torch.randn(mu.shape, generator=gen)
            a = mu + torch.exp(self.log_std.detach()) * noise
            self.actions.append(a)
            return self.net.unnormalize(a).numpy().astype(np.float32)

    def means_of(self, rows: Any) -> Any:
        """Mean actions ``(B, A)`` of buffer ``rows`` (torch int64 ``(B,)``), with gradients
        through the head (and the encoder, re-encoding the window's images, if trained)."""
        torch = self.torch
        win = self._win[rows]  # (B, T)
        if self.reencode:
            uniq, inv = torch.unique(win, return_inverse=True)
            f = self.net.encode(self._img[uniq])
            feats = f[inv]
        else:
            feats = self._feat[win]
        states = self._state[win] if self.pcfg.state_dim else None
        return self.mean(feats, states)

    def freeze_buffer(self) -> None:
        """Stack the iteration's steps into tensors for the update."""
        torch = self.torch
        self._win = torch.tensor(self.windows, dtype=torch.int64)
        self._feat = torch.stack(self.feats)
        self._state = torch.stack(self.states)
        self._act = torch.stack(self.actions)
        self._img: Any = torch.stack(self.images) if self.reencode else None


def _play(env: Any, actor: _Actor, seed: int, gen: Any, max_steps: int) -> tuple[bool, float, int]:
    """One exploring rollout from ``env.reset(seed=seed)`` (the loop of
    :func:`realgap.policy.episodes.play_episode`): ``(success, last reward, steps)``."""
    obs, info = env.reset(seed=int(seed))
    rows: list[int] = []
    success, steps, last = bool(info.get("success", False)), 0, float("nan")
    while steps < max_steps and not success:
        obs, reward, terminated, truncated, info = env.step(actor.act(obs, rows, gen))
        last = float(reward)
        steps += 1
        success = success or bool(info.get("success", False))
        if terminated or truncated:
            break
    return success, last, steps


def _update(actor: _Actor, opt: Any, step_rows: Any, step_adv: Any, cfg: FinetuneConfig,
            gen: Any) -> tuple[float, float]:
    """PPO epochs of clipped updates over the kept steps: (mean loss, clip fraction)."""
    torch = actor.torch
    with torch.no_grad():
        old = gaussian_log_prob(actor.means_of(step_rows), actor.log_std, actor._act[step_rows])
    params = actor.parameters()
    losses, fracs = [], []
    n = len(step_rows)
    for _ in range(cfg.update_epochs):
        perm = torch.randperm(n, generator=gen)
        for chunk in torch.tensor_split(perm, min(cfg.minibatches, n)):
            rows = step_rows[chunk]
            logp = gaussian_log_prob(actor.means_of(rows), actor.log_std, actor._act[rows])
            loss, frac = clipped_objective(logp, old[chunk], step_adv[chunk], cfg.clip,
                                           cfg.upper_clip)
            if not torch.isfinite(loss):
                raise ConfigError(f"finetune: the loss became {float(loss)}; lower lr "
                                  f"(now {cfg.lr}) or raise std (now {cfg.std})")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            opt.step()
            losses.append(float(loss.detach()))
            fracs.append(float(frac))
    return float(np.mean(losses)), float(np.mean(fracs))


def run_grpo(net: Any, env: Any, cfg: FinetuneConfig, *, max_steps: int,
             registry_encoder: Any | None = None,
             progress: bool = False) -> tuple[list[dict[str, Any]], list[float]]:
    """Fine-tune ``net`` (a :class:`~realgap.policy.model.PolicyNet`, updated in place) in
    ``env`` (a Gymnasium env with ``reset(seed=)``/``step``, observations as the policy's
    ``{"state", camera}``, ``info["success"]``).

    Returns ``(history, std)``: the per-iteration records of :class:`FinetuneResult` and the
    final exploration std per action dimension. Torch's thread count and global random
    state are the caller's business (:func:`finetune_policy` restores them).
    """
    torch = _torch()
    from tqdm import tqdm

    from realgap.policy.heads import BCHead, BCRNNHead

    if not isinstance(net.head, (BCHead, BCRNNHead)):
        raise ConfigError(f"finetune: head {net.cfg.head!r} is not a regression head; RL "
                          "fine-tuning needs a deterministic action to put a Gaussian around "
                          "(heads bc, bc-rnn)")
    rng = as_rng(int(cfg.seed))
    gen = torch.Generator().manual_seed(child_seeds(rng, 1)[0])
    actor = _Actor(net, registry_encoder, cfg)
    opt = torch.optim.Adam(actor.parameters(), lr=cfg.lr)
    history: list[dict[str, Any]] = []
    g = cfg.group_size
    bar = tqdm(range(cfg.iterations), desc="finetune", disable=not progress)
    for it in bar:
        t0 = time.perf_counter()
        seeds = rng.integers(TRAIN_SEED_LOW, TRAIN_SEED_HIGH, size=cfg.groups)
        actor.clear()
        rewards = np.zeros((cfg.groups, g))
        succ = np.zeros((cfg.groups, g), dtype=bool)
        finals = np.zeros((cfg.groups, g))
        spans = []  # (first row, last row + 1) of each rollout, group-major
        for gi, s in enumerate(seeds):
            for k in range(g):
                start = len(actor.feats)
                ok, last, _ = _play(env, actor, int(s), gen, max_steps)
                spans.append((start, len(actor.feats)))
                succ[gi, k] = ok
                finals[gi, k] = last
                rewards[gi, k] = episode_reward(ok, last, cfg.reward)
        keep = accuracy_filter(rewards, succ, cfg.accuracy_filter)
        adv = group_advantages(rewards)
        rows: list[int] = []
        step_adv: list[float] = []
        for j, (a, b) in enumerate(spans):
            gi, k = divmod(j, g)
            if keep[gi]:
                rows.extend(range(a, b))
                step_adv.extend([adv[gi, k]] * (b - a))
        loss = clip_frac = None
        if rows:
            actor.freeze_buffer()
            loss, clip_frac = _update(actor, opt, torch.tensor(rows, dtype=torch.int64),
                                      torch.tensor(step_adv, dtype=torch.float32), cfg, gen)
        fin = finals[np.isfinite(finals)]
        rec = {"iteration": it + 1, "mean_reward": float(rewards.mean()),
               "success_rate": float(succ.mean()),
               "final_reward": float(fin.mean()) if fin.size else None,
               "kept_groups": int(keep.sum()), "groups": int(cfg.groups), "loss": loss,
               "clip_fraction": clip_frac,
               "std": float(torch.exp(actor.log_std.detach()).mean()),
               "steps": len(actor.feats), "seconds": time.perf_counter() - t0}
        history.append(rec)
        bar.set_postfix(reward=f"{rec['mean_reward']:.3f}", success=f"{rec['success_rate']:.2f}",
                        kept=rec["kept_groups"])
    actor.clear()
    return history, [float(x) for x in torch.exp(actor.log_std.detach())]


# -- the checkpoint-to-checkpoint API ------------------------------------------------------
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _plain(x: Any) -> Any:
    return json.loads(json.dumps(x))


def _same_run(old: Any, new: dict[str, Any]) -> bool:
    """Whether a recorded config asks for the same fine-tuning (threads change nothing)."""
    if not isinstance(old, dict):
        return False
    return ({k: v for k, v in old.items() if k != "threads"}
            == {k: v for k, v in new.items() if k != "threads"})


def _out_path(out: str | Path, epoch: int) -> Path:
    from realgap.policy.checkpoint import checkpoint_path

    p = Path(out)
    return p if p.suffix == ".pt" else checkpoint_path(p, epoch)


def finetune_policy(checkpoint: str | Path, out: str | Path, cfg: FinetuneConfig, *,
                    progress: bool = False) -> FinetuneResult:
    """Fine-tune the SFT policy ``checkpoint`` with the group-relative update in simulation.

    Args:
        checkpoint: a policy checkpoint file or training directory (its latest checkpoint);
            its head must be a regression head (``bc``, ``bc-rnn``).
        out: a directory (the checkpoint goes to ``out/checkpoints/epoch-XXXX.pt``, XXXX the
            SFT epoch, so ``load_policy(out)`` finds it) or a ``.pt`` file path.
        cfg: the fine-tuning settings.
        progress: a tqdm bar over iterations.

    The environment is the policy's task in the ``sim`` domain at the policy's image size
    and camera, with ``cfg.randomize`` factors randomized per episode. The written
    checkpoint has the SFT checkpoint's fields with the fine-tuned weights, no optimizer
    state (it is not an SFT run to resume), and a ``finetune`` entry: the config, the
    source checkpoint and its SHA-256, the reward used, the final exploration std, the
    history and the seconds. A rerun with the same source and config returns the existing
    checkpoint; an ``out`` holding a different fine-tuning is a ConfigError (nothing is
    overwritten). Torch's thread count and global random state are restored on return.
    """
    torch = _torch()
    from realgap.policy.checkpoint import find_checkpoint, load_checkpoint, save_checkpoint
    from realgap.policy.predictor import load_policy

    src = find_checkpoint(checkpoint, "--policy")
    ckpt = load_checkpoint(src, "--policy")
    sha = _sha256(src)
    target = _out_path(out, int(ckpt.get("epoch") or 0))
    if target.resolve() == src.resolve():
        raise ConfigError(f"--out {out}: is the source checkpoint {src}; pass another --out")
    record = {"config": _plain(cfg.to_dict()), "source": str(src), "source_sha256": sha}
    if target.exists():
        done = load_checkpoint(target, "--out")
        prev = done.get("finetune") or {}
        if _same_run(prev.get("config"), record["config"]) and prev.get("source_sha256") == sha:
            return FinetuneResult(target, list(prev.get("history") or []), 0.0)
        raise ConfigError(f"--out {out}: already holds {target.name}, not a fine-tuning of "
                          f"{src} with these settings; pass a new --out or delete {target}")
    policy = load_policy(src)
    net = policy.net
    pcfg = policy.cfg
    env = _make_env(pcfg, cfg)
    try:
        act_dim = int(env.action_space.shape[0])
        if pcfg.action_dim != act_dim:
            raise ConfigError(f"--policy {src}: predicts {pcfg.action_dim}-D actions, the "
                              f"{pcfg.task} env takes {act_dim}; retrain on data of this env")
        max_steps = int(cfg.max_steps or env.unwrapped.max_steps)
        threads_before = torch.get_num_threads()
        t0 = time.perf_counter()
        try:
            with torch.random.fork_rng(devices=[]):
                if cfg.threads:
                    torch.set_num_threads(int(cfg.threads))
                history, std = run_grpo(net, env, cfg, max_steps=max_steps,
                                        registry_encoder=policy.registry_encoder,
                                        progress=progress)
        finally:
            torch.set_num_threads(threads_before)
        seconds = time.perf_counter() - t0
    finally:
        env.close()
    payload = {k: v for k, v in ckpt.items()
               if k not in ("path", "format", "format_version", "optimizer", "best_state_dict")}
    payload["state_dict"] = {k: v.detach().clone() for k, v in net.state_dict().items()}
    payload["best_state_dict"] = None
    payload["finetune"] = {**record, "method": "grpo", "reward": cfg.reward,
                           "randomize": list(cfg.randomize), "std": std,
                           "iterations": int(cfg.iterations), "history": _plain(history),
                           "seconds": seconds}
    save_checkpoint(target, payload)
    return FinetuneResult(target, history, seconds)


def _make_env(pcfg: Any, cfg: FinetuneConfig) -> Any:
    """The policy's task in ``sim`` as the rollouts see it (:func:`make_env`)."""
    from realgap._gl import headless_gl
    from realgap.policy.episodes import env_spec_for, make_env

    headless_gl()
    spec = env_spec_for(pcfg.task, pcfg.to_dict(), randomize=tuple(cfg.randomize),
                        fidelity=cfg.fidelity, max_steps=cfg.max_steps)
    return make_env(spec, {})
