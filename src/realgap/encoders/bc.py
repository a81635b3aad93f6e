"""Encoders that realgap trains itself: end-to-end behaviour cloning on sim frames.

:func:`train_bc_encoder` fits ``encoder + linear head`` to the recorded actions of one
domain of a FrameSet (mean-squared error on actions standardized with the training
frames' mean and standard deviation, Adam) and returns the encoder part as an
:class:`~realgap.encoders.base.Encoder`. Trained on the randomized ``sim`` domain and on
the unrandomized ``sim-nominal`` domain it gives the report's "does randomization help
the encoder" comparison, with results that need no hub.

Only the episodes passed in ``episodes`` are seen in training, so a caller (the gap
command) can keep the action probe's validation episodes unseen.

Training length is chosen on held-out episodes (early stopping): ``val_fraction`` of the
given episodes (seeded, whole episodes) are kept out of the gradient steps; after each
epoch their MSE is measured, and training stops when it has not improved for
``patience`` epochs (or after ``epochs``); the weights of the best epoch are kept. The
loss curves (train and held-out, per epoch) travel with the encoder (``extra``) into the
results database. Frames are augmented by a random shift of up to ``shift`` pixels
(replicate-padded, as DrQ and Diffusion Policy's random crop do), which the
early-stopped encoders of the demo need to generalise across episodes (measured: see
README "Choices we made").

The trained weights are cached on disk under ``<cache_dir>/bc/<key>.pt``; the key hashes
the FrameSet content hash, domain, camera, episode ids, every training setting and the
seed, so a cache hit is the same training run. Files are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from realgap._optional import require
from realgap._rng import RngLike, as_rng
from realgap.encoders.base import Encoder, EncoderInfo, Preprocess
from realgap.errors import ConfigError, DataError

#: Bump when the architectures of :mod:`realgap.encoders.e2e` or the training loop change.
BC_CACHE_VERSION = 3


@dataclass(frozen=True)
class BCConfig:
    """Training settings of a BC encoder (all part of the cache key)."""

    #: Most passes over the training frames (early stopping usually ends training sooner;
    #: on the demo's 840 training frames the held-out MSE still fell at epoch 28 of 40
    #: with batches of 64, hence 60 epochs of batches of 32).
    epochs: int = 60
    #: Frames are resized (shorter side) and center-cropped to this square size, pixels.
    image_size: int = 64
    #: Frames per gradient step.
    batch_size: int = 32
    #: Adam learning rate.
    lr: float = 1e-3
    #: ``"small"`` (SmallConvGN, 67,872 params) or ``"resnet18"`` (visual-alignment-testing).
    arch: str = "small"
    #: Embedding dimension D.
    feature_dim: int = 64
    #: Fraction of the given episodes held out for early stopping (0: none, train all
    #: ``epochs``); at least one episode is held out and one trained on.
    val_fraction: float = 0.15
    #: Epochs without a better held-out MSE before training stops.
    patience: int = 6
    #: Random-shift augmentation: up to this many pixels in x and y (0: off).
    shift: int = 4

    def __post_init__(self) -> None:
        for f in ("epochs", "image_size", "batch_size", "feature_dim", "patience"):
            if int(getattr(self, f)) < 1:
                raise ConfigError(f"BCConfig.{f} must be >= 1, got {getattr(self, f)}")
        if not self.lr > 0 or not np.isfinite(self.lr):
            raise ConfigError(f"BCConfig.lr must be > 0, got {self.lr}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"BCConfig.val_fraction must be in [0, 1), got {self.val_fraction}")
        if int(self.shift) < 0:
            raise ConfigError(f"BCConfig.shift must be >= 0, got {self.shift}")


def default_cache_dir() -> Path:
    """``$REALGAP_CACHE_DIR`` or ``~/.cache/realgap``."""
    return Path(os.environ.get("REALGAP_CACHE_DIR", "~/.cache/realgap")).expanduser()


def compact_ids(ids: list[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2,5,7-8"``."""
    ids = sorted({int(i) for i in ids})
    runs: list[str] = []
    i = 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        runs.append(str(ids[i]) if i == j else f"{ids[i]}-{ids[j]}")
        i = j + 1
    return ",".join(runs)


def _seed_of(rng: RngLike) -> int:
    if isinstance(rng, (int, np.integer)):
        return int(rng)
    return int(as_rng(rng).integers(0, 2**31 - 1))


def bc_preprocess(image_size: int) -> Preprocess:
    return Preprocess(input_size=(image_size, image_size), resize=image_size, interpolation="area")


def _resolve(frameset: Any, domain: str, camera: str | None, episodes: list[int] | None,
             rng: RngLike, cfg: BCConfig, cache_dir: str | os.PathLike[str] | None
             ) -> tuple[Any, str, list[int], int, Path]:
    """The training frames, camera, episode ids, seed and cache file of a BC encoder."""
    if domain not in frameset.domains:
        raise ConfigError(f"train_bc_encoder: domain {domain!r} not in the FrameSet; "
                          f"available: {frameset.domains}")
    camera = camera or frameset.cameras[0]
    if camera not in frameset.cameras:
        raise ConfigError(f"train_bc_encoder: camera {camera!r} not in the FrameSet; "
                          f"available: {frameset.cameras}")
    sub = frameset.select(domain=domain)
    have = sorted({int(e) for e in sub.manifest["episode"]})
    if episodes is None:
        ep_ids = have
    else:
        ep_ids = sorted({int(e) for e in episodes})
        missing = sorted(set(ep_ids) - set(have))
        if missing or not ep_ids:
            raise ConfigError(f"train_bc_encoder: episodes {compact_ids(missing) or '[]'} not in "
                              f"domain {domain!r} (it has {compact_ids(have)})")
        sub = sub.select(episode=ep_ids)
    seed = _seed_of(rng)
    key_fields = {"v": BC_CACHE_VERSION, "frameset": frameset.content_hash, "domain": domain,
                  "camera": camera, "episodes": ep_ids, "cfg": asdict(cfg), "seed": seed}
    key = hashlib.sha256(json.dumps(key_fields, sort_keys=True).encode()).hexdigest()[:24]
    path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = path / "bc" / f"{key}.pt"

    return sub, camera, ep_ids, seed, path


def bc_is_cached(frameset: Any, domain: str = "sim", camera: str | None = None,
                 episodes: list[int] | None = None, rng: RngLike = 0,
                 cache_dir: str | os.PathLike[str] | None = None, **config: Any) -> bool:
    """Whether :func:`train_bc_encoder` with these arguments would load trained weights
    from the cache instead of training (``config``: :class:`BCConfig` fields)."""
    cfg = BCConfig(**{k: v for k, v in config.items() if k in BCConfig.__dataclass_fields__})
    return _resolve(frameset, domain, camera, episodes, rng, cfg, cache_dir)[4].is_file()


def train_bc_encoder(frameset: Any, domain: str = "sim", camera: str | None = None,
                     episodes: list[int] | None = None, epochs: int = BCConfig.epochs,
                     image_size: int = 64, rng: RngLike = 0, *, arch: str = "small",
                     batch_size: int = BCConfig.batch_size, lr: float = 1e-3,
                     feature_dim: int = 64,
                     val_fraction: float = BCConfig.val_fraction,
                     patience: int = BCConfig.patience, shift: int = BCConfig.shift,
                     cache_dir: str | os.PathLike[str] | None = None, device: str = "cpu",
                     progress: bool = False) -> Encoder:
    """Train (or load from cache) a BC encoder on ``domain`` frames of ``frameset``.

    Args:
        frameset: a :class:`realgap.data.FrameSet` (or view).
        domain: the manifest ``domain`` to train on (``"sim"``, ``"sim-nominal"``, ...).
        camera: camera name; default the first camera.
        episodes: manifest ``episode`` ids of that domain to train on (default all);
            pass the TRAIN episodes only when a probe will be scored on the others.
        epochs, image_size, batch_size, lr, arch, feature_dim, val_fraction, patience,
            shift: see :class:`BCConfig`.
        rng: seed (int) or Generator for initialisation and shuffling; same seed, same weights.
        cache_dir: where trained weights are kept (default :func:`default_cache_dir`).

    Returns:
        An :class:`Encoder` named ``bc-<domain>`` with ``weights_origin``
        ``"trained: BC on <frameset hash> domain=<d> episodes=<ids>"``;
        ``embed`` gives ``float32 (N, feature_dim)``.
    """
    torch = require("torch")
    from realgap.encoders.e2e import build_e2e
    from realgap.encoders.zoo import seeded_torch

    cfg = BCConfig(epochs=epochs, image_size=image_size, batch_size=batch_size, lr=lr,
                   arch=arch, feature_dim=feature_dim, val_fraction=val_fraction,
                   patience=patience, shift=shift)
    sub, camera, ep_ids, seed, path = _resolve(frameset, domain, camera, episodes, rng, cfg,
                                               cache_dir)
    with seeded_torch(seed):
        module = build_e2e(cfg.arch, cfg.feature_dim)
    pre = bc_preprocess(cfg.image_size)
    meta: dict[str, Any] | None = None
    if path.is_file():
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            module.load_state_dict(blob["state_dict"])
            meta = dict(blob["meta"])
        except Exception:  # noqa: BLE001 -- any unreadable/stale cache file: retrain, overwrite
            with seeded_torch(seed):
                module = build_e2e(cfg.arch, cfg.feature_dim)
            meta = None
    if meta is None:
        meta = _fit(module, sub, camera, cfg, pre, seed, device, progress)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save({"state_dict": module.state_dict(), "meta": meta}, tmp)
        os.replace(tmp, path)
    info = EncoderInfo(
        family="CNN", embed_dim=cfg.feature_dim,
        params_m=round(sum(p.numel() for p in module.parameters()) / 1e6, 3),
        training="Behaviour cloning", pretrain_data=f"This FrameSet ({domain} domain)",
        library="realgap", arch=type(module).__name__,
        notes=f"BC on {len(sub)} frames, best of {len(meta['loss_per_epoch'])} epochs "
              f"(epoch {meta['best_epoch']}), train MSE {meta['final_loss']:.4f}, held-out "
              f"MSE {_fmt(meta['best_val_loss'])} (standardized actions)")
    origin = (f"trained: BC on {frameset.content_hash[:12]} domain={domain} "
              f"episodes={compact_ids(ep_ids)}")
    return Encoder(f"bc-{domain}", info, pre, module, weights_origin=origin,
                   weights_hash=weights_hash_of(module), device=device,
                   extra={"train_domain": domain, "train_episodes": ep_ids, "train_seed": seed,
                          "train_frames": len(sub), "train_config": asdict(cfg),
                          "train_final_loss": meta["final_loss"],
                          "train_loss_per_epoch": meta["loss_per_epoch"],
                          "train_val_loss_per_epoch": meta["val_loss_per_epoch"],
                          "train_best_epoch": meta["best_epoch"],
                          "train_val_episodes": meta["val_episodes"]})


#: ``format`` of the dict :func:`bc_encoder_state` returns.
BC_STATE_FORMAT = "realgap-bc-encoder"
#: Identity fields (``Encoder.extra``) a stored BC encoder keeps; the loss curves stay in
#: the gap run's results, not in every policy checkpoint.
_STORED_EXTRA = ("train_domain", "train_episodes", "train_seed", "train_frames",
                 "train_config", "train_best_epoch")


def weights_hash_of(module: Any) -> str:
    """``"sha256:<hex>"`` over a module's state dict (names and raw tensor bytes, in order)."""
    h = hashlib.sha256()
    for k, v in module.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return "sha256:" + h.hexdigest()


def bc_encoder_state(enc: Encoder) -> dict[str, Any]:
    """What a policy checkpoint stores so that a BC encoder can be rebuilt without the
    FrameSet it was trained on: plain types and tensors only (``torch.load(weights_only=True)``
    reads it back; nothing is unpickled).

    Keys: ``format`` (:data:`BC_STATE_FORMAT`), ``name``, ``domain``, ``config`` (the
    :class:`BCConfig` as a dict: the architecture and the preprocessing size),
    ``state_dict`` (CPU tensors), ``weights_hash``, ``weights_origin``, ``notes`` and
    ``extra`` (training episodes, seed, frames).
    """
    cfg = enc.extra.get("train_config")
    domain = enc.extra.get("train_domain")
    if cfg is None or domain is None:
        raise ConfigError(f"encoder {enc.name!r} is not a BC encoder trained by realgap "
                          "(no train_config/train_domain); only those can be stored this way")
    return {"format": BC_STATE_FORMAT, "name": enc.name, "domain": str(domain),
            "config": dict(cfg),
            "state_dict": {k: v.detach().cpu().clone() for k, v in enc.module.state_dict().items()},
            "weights_hash": enc.weights_hash, "weights_origin": enc.weights_origin,
            "notes": enc.info.notes,
            "extra": {k: enc.extra[k] for k in _STORED_EXTRA if k in enc.extra}}


def bc_encoder_from_state(state: Any, domain: str, device: str = "cpu",
                          stored_in: str | None = None) -> Encoder:
    """Rebuild a BC encoder from :func:`bc_encoder_state`'s dict (read from a policy
    checkpoint): the architecture from its :class:`BCConfig`, the weights from its tensors.

    The weights' hash is recomputed and must equal the stored one, and the encoder must be
    trained on ``domain`` (the registry name asked for); else a :class:`DataError`. The
    rebuilt encoder's ``weights_origin`` is the original one plus where the weights were
    read (``stored_in``), so results say both how and where.
    """
    from realgap.encoders.e2e import build_e2e

    where = stored_in or "the stored encoder"
    if not isinstance(state, dict) or state.get("format") != BC_STATE_FORMAT:
        raise DataError(f"{where}: frozen_encoder is not a stored BC encoder (format "
                        f"{state.get('format') if isinstance(state, dict) else type(state).__name__!r}); "
                        "retrain the policy")
    if state.get("domain") != domain:
        raise DataError(f"{where}: the stored encoder was trained on domain "
                        f"{state.get('domain')!r}, but the policy names bc-{domain}; retrain the policy")
    try:
        cfg = BCConfig(**{k: v for k, v in dict(state["config"]).items()
                          if k in BCConfig.__dataclass_fields__})
        module = build_e2e(cfg.arch, cfg.feature_dim)
        module.load_state_dict(dict(state["state_dict"]))
    except (KeyError, TypeError, RuntimeError) as exc:
        raise DataError(f"{where}: the stored BC encoder does not fit this realgap's network "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                        "retrain the policy") from None
    got = weights_hash_of(module)
    if got != state.get("weights_hash"):
        raise DataError(f"{where}: the stored BC encoder's weights hash {got[:19]} differs from "
                        f"the recorded {str(state.get('weights_hash'))[:19]}; the file was "
                        "altered: retrain the policy")
    module.eval()
    info = EncoderInfo(
        family="CNN", embed_dim=cfg.feature_dim,
        params_m=round(sum(p.numel() for p in module.parameters()) / 1e6, 3),
        training="Behaviour cloning", pretrain_data=f"This FrameSet ({domain} domain)",
        library="realgap", arch=type(module).__name__, notes=str(state.get("notes", "")))
    origin = str(state.get("weights_origin", f"trained: BC domain={domain}"))
    if stored_in:
        origin = f"{origin}; weights stored in policy checkpoint {stored_in}"
    return Encoder(str(state.get("name") or f"bc-{domain}"), info, bc_preprocess(cfg.image_size),
                   module, weights_origin=origin, weights_hash=got, device=device,
                   extra=dict(state.get("extra") or {}))


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def _fit(module: Any, sub: Any, camera: str, cfg: BCConfig, pre: Preprocess, seed: int,
         device: str, progress: bool) -> dict[str, Any]:
    """Adam on MSE of standardized actions with held-out early stopping.

    Returns ``{"final_loss", "loss_per_epoch", "val_loss_per_epoch", "best_epoch",
    "best_val_loss", "val_episodes", ...}``; ``module`` holds the best epoch's weights.
    """
    torch = require("torch")
    from realgap.encoders.zoo import seeded_torch

    n = len(sub)
    if n < 2:
        raise DataError(f"train_bc_encoder: {n} frame(s) to train on; need at least 2")
    actions = np.asarray(sub.actions(), dtype=np.float32)
    if actions.ndim != 2 or actions.shape[1] == 0:
        raise DataError(f"train_bc_encoder: actions have shape {actions.shape}; need (N, A>=1)")
    ep = sub.manifest["episode"].to_numpy()
    val = _heldout_mask(ep, cfg.val_fraction, seed)
    fit = ~val
    # Standardize with the frames the gradient sees (the held-out ones stay unseen).
    mu, sd = actions[fit].mean(0), actions[fit].std(0)
    y = torch.from_numpy((actions - mu) / np.maximum(sd, 1e-6))
    chunks = []
    for start in range(0, n, 512):
        idx = np.arange(start, min(n, start + 512))
        with torch.no_grad():
            chunks.append(pre(sub.images(camera, idx), "cpu"))
    x = torch.cat(chunks)
    with seeded_torch(seed):
        head = torch.nn.Linear(cfg.feature_dim, actions.shape[1])
    module.to(device).train()
    head.to(device).train()
    # Small convolutions gain nothing from intra-op threads and lose a lot when cores are
    # shared (measured here: 0.02 s vs 0.6 s per step of 8 frames at 16 px with 2 threads
    # on a loaded 2-core machine), so the small network trains on one thread.
    old_threads = torch.get_num_threads()
    if cfg.arch == "small" and device == "cpu":
        torch.set_num_threads(1)
    try:
        fit_idx = torch.from_numpy(np.flatnonzero(fit))
        val_idx = torch.from_numpy(np.flatnonzero(val))
        curves = _epochs(module, head, x, y, fit_idx, val_idx, cfg, seed, device, progress)
    finally:
        torch.set_num_threads(old_threads)
    module.eval()
    return {**curves, "n_frames": n, "n_fit_frames": int(fit.sum()),
            "val_episodes": sorted({int(e) for e in ep[val]}),
            "action_mean": mu.tolist(), "action_std": sd.tolist()}


def _heldout_mask(episodes: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Frames of ``round(fraction * E)`` whole episodes (at least 1 when fraction > 0 and
    E >= 2, never all), chosen by a seeded permutation; all False when none is held out."""
    uniq = np.unique(episodes)
    if fraction <= 0 or uniq.size < 2:
        return np.zeros(len(episodes), dtype=bool)
    k = int(min(max(1, round(fraction * uniq.size)), uniq.size - 1))
    held = np.random.default_rng([seed, 0x5EED]).permutation(uniq)[:k]
    return np.isin(episodes, held)


def _shift(xb: Any, pad: int, gen: np.random.Generator) -> Any:
    """Random shift of each image by up to ``pad`` px (replicate padding, then crop)."""
    torch = require("torch")
    if pad <= 0:
        return xb
    n, _, h, w = xb.shape
    padded = torch.nn.functional.pad(xb, (pad, pad, pad, pad), mode="replicate")
    dx, dy = gen.integers(0, 2 * pad + 1, size=(2, n))
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


def _epochs(module: Any, head: Any, x: Any, y: Any, fit_idx: Any, val_idx: Any,
            cfg: BCConfig, seed: int, device: str, progress: bool) -> dict[str, Any]:
    import copy

    torch = require("torch")
    tqdm = require("tqdm").tqdm
    n = int(fit_idx.shape[0])
    opt = torch.optim.Adam(list(module.parameters()) + list(head.parameters()), lr=cfg.lr)
    gen = np.random.default_rng(seed)
    losses: list[float] = []
    val_losses: list[float] = []
    best: tuple[float, int, dict[str, Any]] | None = None
    bar = tqdm(total=cfg.epochs, desc="train bc encoder", disable=not progress, unit="epoch")
    for epoch in range(1, cfg.epochs + 1):
        module.train()
        perm = fit_idx[torch.from_numpy(gen.permutation(n))]
        total = 0.0
        for start in range(0, n, cfg.batch_size):
            b = perm[start : start + cfg.batch_size]
            xb, yb = _shift(x[b], cfg.shift, gen).to(device), y[b].to(device)
            loss = torch.nn.functional.mse_loss(head(module(xb)), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(b)
        losses.append(total / n)
        if len(val_idx):
            module.eval()
            with torch.no_grad():
                err = sum(float(torch.nn.functional.mse_loss(
                    head(module(x[val_idx[i:i + 256]].to(device))),
                    y[val_idx[i:i + 256]].to(device), reduction="sum"))
                    for i in range(0, len(val_idx), 256))
            val_losses.append(err / (len(val_idx) * y.shape[1]))
            if best is None or val_losses[-1] < best[0]:
                best = (val_losses[-1], epoch, copy.deepcopy(module.state_dict()))
        bar.set_postfix(mse=f"{losses[-1]:.4f}",
                        val=f"{val_losses[-1]:.4f}" if val_losses else "-")
        bar.update(1)
        if best is not None and epoch - best[1] >= cfg.patience:
            break
    bar.close()
    if best is not None:
        module.load_state_dict(best[2])
        return {"final_loss": losses[best[1] - 1], "loss_per_epoch": losses,
                "val_loss_per_epoch": val_losses, "best_epoch": best[1],
                "best_val_loss": best[0]}
    return {"final_loss": losses[-1], "loss_per_epoch": losses, "val_loss_per_epoch": [],
            "best_epoch": len(losses), "best_val_loss": None}
