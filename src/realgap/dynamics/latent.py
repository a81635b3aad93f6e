"""The reference's latent cross-domain model and its gap measure (mbrl-latent-gap.txt, 4.1, 5.3).

Architecture (torch, small MLPs, CPU-friendly):

- domain encoders ``p_sim, p_real: obs (S,) -> z (d,)`` into one shared latent space,
- domain decoders ``q_sim, q_real: z -> obs``,
- shared latent dynamics ``F(z, a) = z + g([z, a])`` (residual MLP),
- a cross-domain mapping ``m: z_real -> z_sim``, affine ``m(z) = W z + b``, initialised to
  the identity.

Training (reference Algorithm 1, steps 1-2, then joint training):

1. *Single-domain initialisation*: ``p_sim, q_sim, F`` are trained on source transitions alone.
2. ``p_real, q_real`` start as copies of ``p_sim, q_sim``; ``m`` starts as the identity.
3. *Joint training* on both domains of the sum of
   - prediction: ``|q_d(F(p_d(s), a)) - s'|^2`` and latent consistency
     ``|F(p_d(s), a) - p_d(s')|^2`` for d in {sim, real},
   - auto-encoding: ``|q_d(p_d(s)) - s|^2``,
   - correspondence: ``|m(p_real(s)) - p_sim(s)|^2`` and ``|q_sim(m(p_real(s))) - s|^2`` on real
     observations (m carries a real latent to the sim latent of the same observation).

Observations are standardised with the source statistics, actions too. When the domains
share their dynamics, the real encoder has no reason to leave the sim encoder and m stays at
the identity; when they differ, the shared F forces the same observation to different latents
in the two domains, and m moves away from the identity.

Gap measure (section 5.3, Tables 4 and 5: "distance between m and the identity mapping"):

    D = mean_o |m(p_real(o)) - p_real(o)|^2 / mean_o |p_real(o) - mean(p_real)|^2

over real observations o: the squared displacement m applies, relative to the spread of the
real latents, so that D does not depend on the latent's arbitrary scale. The reference reports
the unnormalised distance (0.2189 at 1.05x gravity to 20.74 at 2x on medium-v2); only its
trend is comparable. Details also give ``|W - I|_F``. Interval: bootstrap over real
trajectories with the trained model held fixed (it does not cover retraining noise; compare
several seeds for that). No permutation null: one would retrain the model per permutation
(~10 s each); read D against the same-dynamics control (scale 1.0) of :func:`gap_curve
<realgap.dynamics.runs.gap_curve>`, or use the two calibrated measures of
:mod:`realgap.dynamics.gap`.

The reference's model is an ensemble of probabilistic networks inside MBPO; this is one
deterministic model fitted offline on transitions, which is what a gap measure needs.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from realgap._optional import require
from realgap._rng import RngLike, as_rng
from realgap.dynamics.gap import GapMeasure, check_compatible
from realgap.dynamics.transitions import Transitions
from realgap.errors import ConfigError
from realgap.stats import (
    bootstrap_counts,
    episode_codes,
    estimate_from_replicates,
    ratio_replicates,
)
from realgap.stats._checks import check_count


@dataclass(frozen=True)
class LatentConfig:
    """Size and training budget of :class:`LatentGapModel` (defaults train in ~10 s on CPU)."""

    latent_dim: int | None = None
    """Width d of the latent; None: max(8, obs dim)."""
    hidden: int = 64
    """Hidden units of every MLP (two hidden layers)."""
    pretrain_steps: int = 600
    """Gradient steps of the single-domain (source) initialisation."""
    joint_steps: int = 600
    """Gradient steps of joint training on both domains."""
    batch_size: int = 256
    """Transitions per domain per step."""
    lr: float = 1e-3
    """Adam learning rate."""
    w_pred: float = 1.0
    """Weight of the prediction and latent-consistency losses."""
    w_ae: float = 1.0
    """Weight of the auto-encoding losses."""
    w_corr: float = 1.0
    """Weight of the correspondence losses."""

    def __post_init__(self) -> None:
        for name in ("hidden", "batch_size"):
            if int(getattr(self, name)) <= 0:
                raise ConfigError(f"{name}: must be > 0, got {getattr(self, name)}")
        # 0 steps is allowed (tests inspect the untrained model); negative ones are typos.
        for name in ("pretrain_steps", "joint_steps"):
            if int(getattr(self, name)) < 0:
                raise ConfigError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if self.latent_dim is not None and self.latent_dim <= 0:
            raise ConfigError(f"latent_dim: must be > 0 or None, got {self.latent_dim}")
        if not self.lr > 0:
            raise ConfigError(f"lr: must be > 0, got {self.lr}")


def _build(s_dim: int, a_dim: int, cfg: LatentConfig) -> Any:
    from realgap.dynamics._nets import LatentGapModel

    return LatentGapModel(s_dim, a_dim, cfg.latent_dim or max(8, s_dim), cfg.hidden)


@dataclass
class LatentFit:
    """A trained latent model with the normalisation it was trained under."""

    model: Any
    obs_mean: np.ndarray
    obs_std: np.ndarray
    act_mean: np.ndarray
    act_std: np.ndarray
    config: LatentConfig
    history: dict[str, list[float]]

    def map_distance_per_row(self, obs: np.ndarray) -> tuple[np.ndarray, float]:
        """Per-observation ``|m(p_real(o)) - p_real(o)|^2`` and the real-latent variance."""
        torch = require("torch")
        x = torch.as_tensor((obs - self.obs_mean) / self.obs_std, dtype=torch.float32)
        with torch.no_grad():
            z = self.model.enc_real(x)
            dz = ((self.model.m(z) - z) ** 2).sum(dim=1).numpy().astype(np.float64)
            spread = float(((z - z.mean(dim=0)) ** 2).sum(dim=1).mean())
        return dz, spread

    def map_identity_distance(self) -> float:
        """Frobenius distance ``|W - I|_F`` of the affine map's matrix."""
        w = self.model.m.weight.detach().numpy()
        return float(np.linalg.norm(w - np.eye(w.shape[0])))


def fit_latent(
    source: Transitions,
    target: Transitions,
    config: LatentConfig = LatentConfig(),
    *,
    rng: RngLike = 0,
) -> LatentFit:
    """Train the latent cross-domain model (initialisation on source, then joint training).

    Deterministic for a given ``rng`` (torch's global generator is forked and seeded inside).
    """
    torch = require("torch")
    check_compatible(source, target)
    gen = as_rng(rng)
    seed = int(gen.integers(2**31))
    om, os_ = source.obs.mean(0), source.obs.std(0) + 1e-6
    am, as_ = source.action.mean(0), source.action.std(0) + 1e-6

    def f(x: np.ndarray) -> Any:
        return torch.as_tensor(x, dtype=torch.float32)

    def tens(t: Transitions) -> tuple[Any, Any, Any]:
        return f((t.obs - om) / os_), f((t.action - am) / as_), f((t.next_obs - om) / os_)

    src, tgt = tens(source), tens(target)
    hist: dict[str, list[float]] = {"pretrain": [], "joint": [], "seconds": []}
    threads = torch.get_num_threads()
    # Tiny MLPs: one thread is fastest and keeps results independent of the core count.
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            model = _train(torch, src, tgt, source, config, seed, hist)
    finally:
        torch.set_num_threads(threads)
    model.eval()
    return LatentFit(model, om, os_, am, as_, config, hist)


def _train(torch: Any, src: Any, tgt: Any, source: Transitions, config: LatentConfig,
           seed: int, hist: dict[str, list[float]]) -> Any:
    torch.manual_seed(seed)
    model = _build(source.obs.shape[1], source.action.shape[1], config)
    g = torch.Generator().manual_seed(seed)

    def batch(d: tuple[Any, Any, Any]) -> tuple[Any, Any, Any]:
        i = torch.randint(0, d[0].shape[0], (config.batch_size,), generator=g)
        return d[0][i], d[1][i], d[2][i]

    sim_params = [*model.enc_sim.parameters(), *model.dec_sim.parameters(),
                  *model.dyn.parameters()]
    opt = torch.optim.Adam(sim_params, lr=config.lr)
    t0 = time.perf_counter()
    for _ in range(config.pretrain_steps):
        s, a, s2 = batch(src)
        pred, ae = model.domain_losses(model.enc_sim, model.dec_sim, s, a, s2)
        loss = config.w_pred * pred + config.w_ae * ae
        opt.zero_grad()
        loss.backward()
        opt.step()
        hist["pretrain"].append(float(loss.detach()))
    model.enc_real.load_state_dict(model.enc_sim.state_dict())
    model.dec_real.load_state_dict(model.dec_sim.state_dict())
    hist["seconds"].append(time.perf_counter() - t0)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    t0 = time.perf_counter()
    for _ in range(config.joint_steps):
        s, a, s2 = batch(src)
        r, ra, r2 = batch(tgt)
        p_s, ae_s = model.domain_losses(model.enc_sim, model.dec_sim, s, a, s2)
        p_r, ae_r = model.domain_losses(model.enc_real, model.dec_real, r, ra, r2)
        zr = model.enc_real(r)
        mz = model.m(zr)
        corr = ((mz - model.enc_sim(r)) ** 2).mean() + ((model.dec_sim(mz) - r) ** 2).mean()
        loss = (config.w_pred * (p_s + p_r) + config.w_ae * (ae_s + ae_r)
                + config.w_corr * corr)
        opt.zero_grad()
        loss.backward()
        opt.step()
        hist["joint"].append(float(loss.detach()))
    hist["seconds"].append(time.perf_counter() - t0)  # [pretrain, joint] wall seconds
    return model


def latent_gap(
    source: Transitions,
    target: Transitions,
    config: LatentConfig = LatentConfig(),
    *,
    n_boot: int = 500,
    alpha: float = 0.05,
    rng: RngLike = 0,
) -> GapMeasure:
    """Train :func:`fit_latent` and return the normalised map distance D (module docstring).

    ``n`` = target trajectories (the interval resamples them); no permutation null.
    """
    n_boot = check_count(n_boot, "n_boot", minimum=0)
    gen = as_rng(rng)
    fit = fit_latent(source, target, config, rng=gen)
    dz, spread = fit.map_distance_per_row(target.obs)
    codes, ep = episode_codes(target.episode)
    sums, sizes = np.bincount(codes, weights=dz), np.bincount(codes)
    reps = (ratio_replicates(bootstrap_counts(ep, n_boot, gen), sums, sizes) / spread
            if n_boot else None)
    est = estimate_from_replicates(float(dz.mean() / spread), reps, n=ep.size,
                                   n_frames=dz.size, alpha=alpha)
    return GapMeasure("latent_map_distance", est, None, {
        "raw_distance": float(dz.mean()), "latent_spread": spread,
        "w_minus_i_fro": fit.map_identity_distance(),
        "final_joint_loss": fit.history["joint"][-1] if fit.history["joint"] else None,
        "config": asdict(config)})
