"""Train a policy on a FrameSet: behaviour cloning (BC, BC-RNN) or diffusion (DP-C).

The objective is the reference's imitation loss over demonstrations (visual-alignment-
testing.txt, III-A): MSE on normalised actions for BC and BC-RNN, epsilon-prediction
MSE for DP-C. Encoder and head are updated together for the end-to-end ResNet18; with
a frozen encoder (registry encoders, or VAT's pi_B' which reuses pi_A's encoder) only
the head learns.

Samples are windows inside one episode: observations at steps ``t-T_o+1..t`` (padded at
the episode start by repeating the first frame) and actions at ``t`` (BC), at the same
steps as the observations (BC-RNN), or at ``t..t+T_p-1`` (DP-C, padded at the end by
repeating the last action), as in Diffusion Policy's sequence sampler.

Determinism and resuming: weights are initialised from ``seed``; each epoch draws its
batch order, augmentation shifts and diffusion noise from a generator seeded by
``(seed, epoch)``. Training 4 epochs at once or 2 + resume 2 gives the same weights and
the same loss history. A resume continues the optimisation the checkpoint recorded, so it
is refused when anything but ``epochs``, ``checkpoint_every`` or ``threads`` differs: the
optimizer state would keep the old learning rate while the checkpoint recorded the new one.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from realgap._optional import require
from realgap.errors import ConfigError, DataError
from realgap.policy.checkpoint import (
    checkpoint_path,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from realgap.policy.config import PolicyConfig, TrainConfig, head_spec


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train_policy` did.

    Attributes:
        out_dir: the training output directory.
        checkpoint: path of the last checkpoint written (or found, when nothing was left).
        epochs_done: epochs run by this call (0 when resuming a finished run).
        losses: mean training loss of each epoch run by this call.
        n_frames: training frames, ``n_episodes``: training episodes.
        val_losses: held-out loss of every epoch so far (``TrainConfig.val_episodes``).
        best_epoch: the epoch whose weights the final checkpoint holds (0: the last).
    """

    out_dir: Path
    checkpoint: Path
    epochs_done: int
    losses: tuple[float, ...]
    n_frames: int
    n_episodes: int
    val_losses: tuple[float, ...] = ()
    best_epoch: int = 0


@dataclass(frozen=True)
class _Windows:
    obs_idx: np.ndarray   # (N, T_o) int64 row indices
    act_idx: np.ndarray   # (N, T_a) int64 row indices


def make_windows(episode_keys: np.ndarray, steps: np.ndarray, obs_len: int, act_len: int,
                 act_from_obs: bool) -> _Windows:
    """Index windows for every frame (rows must be sorted by episode then step).

    ``episode_keys (N,)``: one label per row; ``steps (N,)``. Returns observation rows
    ``(N, obs_len)`` ending at each frame, clipped to the episode's first row, and
    action rows ``(N, act_len)``: the observation rows when ``act_from_obs``, else the
    rows ``t..t+act_len-1`` clipped to the episode's last row.
    """
    n = len(episode_keys)
    starts = np.zeros(n, np.int64)
    ends = np.zeros(n, np.int64)
    i = 0
    while i < n:
        j = i
        while j + 1 < n and episode_keys[j + 1] == episode_keys[i]:
            j += 1
        starts[i:j + 1] = i
        ends[i:j + 1] = j
        i = j + 1
    rows = np.arange(n)
    obs = np.maximum(rows[:, None] + np.arange(-obs_len + 1, 1)[None], starts[:, None])
    if act_from_obs:
        act = obs.copy()
    else:
        act = np.minimum(rows[:, None] + np.arange(act_len)[None], ends[:, None])
    return _Windows(obs, act)


def _load_training_data(data: str | Path, task: str, cfg: PolicyConfig, tcfg: TrainConfig) -> Any:
    from realgap.data import FrameSet

    fs = FrameSet.open(data)
    try:
        view = fs.select(domain=tcfg.domain, task=task) if tcfg.domain else fs.select(task=task)
    except Exception as exc:  # noqa: BLE001 - a select on absent labels may raise or be empty
        raise DataError(f"--data {data}: cannot select task {task!r}: {exc}") from None
    if len(view) == 0:
        raise DataError(
            f"--data {data}: no frames of task {task!r}"
            + (f" in domain {tcfg.domain!r}" if tcfg.domain else "")
            + f" (tasks: {sorted(set(fs.manifest['task']))}); generate demonstrations for it"
        )
    if cfg.camera not in fs.cameras:
        raise DataError(f"--camera {cfg.camera!r}: not in {data} (cameras: {fs.cameras})")
    return fs, view


#: TrainConfig fields a resume may change: how long to train, how often to save, threads.
#: Any other change (seed, lr, batch size, domain, ...) would silently mix two runs.
RESUMABLE_CHANGES = frozenset({"epochs", "checkpoint_every", "threads"})

#: CLI flag of each configuration field a user can set, for naming them in errors.
_FLAGS = {"encoder": "--encoder", "encoder_weights": "--encoder-weights", "head": "--head",
          "camera": "--camera", "image_size": "--image-size", "history": "--history",
          "horizon": "--horizon", "seed": "--seed", "lr": "--lr", "batch_size": "--batch-size",
          "domain": "--domain"}


def resume_mismatch(ckpt: dict[str, Any], policy: PolicyConfig, train: TrainConfig,
                    frameset_hash: str) -> list[str]:
    """What differs between a checkpoint and the configuration asked to resume it.

    Returns one ``"--flag NEW (checkpoint: OLD)"`` item per differing field (empty: the
    run may resume). Compares the whole :class:`PolicyConfig`, the FrameSet's content hash
    and every :class:`TrainConfig` field except :data:`RESUMABLE_CHANGES`.
    """
    diffs = []
    old_policy = dict(ckpt.get("policy_config") or {})
    old_train = dict(ckpt.get("train_config") or {})
    pairs = [(k, v, old_policy.get(k)) for k, v in policy.to_dict().items()]
    # a field added after the checkpoint was written compares as its default
    defaults = TrainConfig().to_dict()
    pairs += [(k, v, old_train.get(k, defaults[k])) for k, v in train.to_dict().items()
              if k not in RESUMABLE_CHANGES]
    for key, new, old in pairs:
        if new != old:
            show_new, show_old = (("all" if v is None else v) if key == "domain" else v
                                  for v in (new, old))
            diffs.append(f"{_FLAGS.get(key, key)} {show_new} (checkpoint: {show_old})")
    if ckpt.get("frameset_hash") != frameset_hash:
        diffs.append(f"--data with content hash {frameset_hash[:12]} (checkpoint: "
                     f"{str(ckpt.get('frameset_hash'))[:12]})")
    return diffs


def _check_image_memory(n_frames: int, size: int) -> None:
    """Refuse an image size whose resized training frames cannot fit in memory.

    The end-to-end encoder trains on every frame resized to ``size x size``, held as uint8
    plus a float32 copy while resizing: ``n_frames * 3 * size^2 * 5`` bytes at the peak.
    More than half the machine's memory is refused before anything is allocated.
    """
    need = n_frames * 3 * size * size * 5
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX: no bound known
        return
    if need > total // 2:
        raise ConfigError(
            f"--image-size {size}: the {n_frames} training frames would take {need / 1e9:.1f} GB "
            f"as {size}x{size} images, more than half of this machine's {total / 1e9:.0f} GB; "
            "lower --image-size (64-128 px is typical) or train on fewer frames")


def _encoder_state(ckpt: dict[str, Any]) -> dict[str, Any]:
    return {k[len("encoder."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("encoder.")}


def train_policy(
    data: str | Path,
    out: str | Path,
    policy: PolicyConfig,
    train: TrainConfig | None = None,
    *,
    resume: bool = True,
    encoder_from: str | Path | None = None,
    progress: bool = True,
    embedding_cache: str | Path | None = None,
    frozen_encoder: Any = None,
    episodes: Sequence[int] | None = None,
) -> TrainResult:
    """Train ``policy`` on the frames of ``policy.task`` in FrameSet ``data``.

    Args:
        data: FrameSet directory.
        out: output directory; checkpoints go to ``out/checkpoints/epoch-XXXX.pt``.
        policy: architecture; ``action_dim``/``state_dim`` are taken from the data.
        train: optimisation settings (None: :class:`TrainConfig` defaults).
        resume: continue from the latest checkpoint in ``out`` when its configuration
            and FrameSet hash match (a mismatch is a :class:`ConfigError`); ``False``
            refuses (ConfigError) an ``out`` that already holds checkpoints instead of
            overwriting them.

    Torch's thread count and global random state are restored on return.
        encoder_from: a checkpoint whose end-to-end encoder is copied in and frozen (VAT's
            pi_B' uses pi_A's encoder).
        progress: show a tqdm bar over epochs.
        embedding_cache: cache directory of a frozen registry encoder's embeddings
            (default ``out/embedding-cache``); a study passes the one its gap runs filled,
            so the frames are embedded once. A BC encoder (``bc-*``) named without
            ``frozen_encoder`` is trained on this FrameSet and cached there too.
        frozen_encoder: an already built :class:`realgap.encoders.Encoder` named
            ``policy.encoder`` to use frozen (a study passes the BC encoder its gap runs
            trained). When its registry name cannot rebuild it (``bc-*``), the checkpoint
            stores its architecture settings and weights as plain tensors
            (``frozen_encoder`` key, :func:`realgap.encoders.registry.encoder_state`) and
            :func:`realgap.policy.load_policy` rebuilds it from them, hash checked.
        episodes: manifest episode ids of the training domain to train on (None: all);
            the held-out episodes are drawn among them. Recorded as ``train_episodes``.
    """
    torch = require("torch")

    train = train or TrainConfig()
    out = Path(out)
    fs, view = _load_training_data(data, policy.task, policy, train)
    if episodes is not None:
        want = sorted({int(e) for e in episodes})
        have = {int(e) for e in view.manifest["episode"]}
        missing = sorted(set(want) - have)
        if missing or not want:
            raise ConfigError(f"train_policy episodes: {missing or '[]'} not among the training "
                              f"frames' episodes ({len(have)} episodes); pass ids of the data")
        view = view.select(episode=want)
    if frozen_encoder is not None and (policy.is_e2e or frozen_encoder.name != policy.encoder):
        raise ConfigError(f"frozen_encoder {frozen_encoder.name!r} does not match the policy's "
                          f"encoder {policy.encoder!r}; pass the encoder the config names")
    man = view.manifest.reset_index(drop=True)
    order = np.lexsort((man["step"].to_numpy(), man["episode"].to_numpy(),
                        man["domain"].astype(str).to_numpy()))
    man = man.iloc[order].reset_index(drop=True)
    ep_keys = (man["domain"].astype(str) + "/" + man["episode"].astype(str)).to_numpy()
    actions = view.actions()[order].astype(np.float32)
    states = view.states()[order].astype(np.float32)[:, : policy.proprio_dims]
    if not np.isfinite(actions).all():
        raise DataError(f"--data {data}: actions contain NaN or inf; regenerate the dataset")
    cfg = dataclasses.replace(policy, action_dim=int(actions.shape[1]),
                              state_dim=int(states.shape[1]) if policy.use_state else 0)
    encoder_origin = "random-init (trained end-to-end)" if cfg.is_e2e else ""
    enc_ckpt = None
    if encoder_from is not None:
        enc_ckpt = load_checkpoint(encoder_from, "--encoder-from")
        src_cfg = PolicyConfig.from_dict(dict(enc_ckpt["policy_config"]))
        if not src_cfg.is_e2e:
            raise ConfigError(f"--encoder-from {encoder_from}: its encoder {src_cfg.encoder!r} "
                              "is not end-to-end; pass a checkpoint trained with an e2e encoder")
        # The copied encoder fixes the image pipeline: same encoder, width, size and camera.
        cfg = dataclasses.replace(cfg, encoder=src_cfg.encoder, feature_dim=src_cfg.feature_dim,
                                  image_size=src_cfg.image_size, camera=src_cfg.camera,
                                  freeze_encoder=True)
        encoder_origin = (f"frozen from {enc_ckpt['path']} (task {enc_ckpt['task']}, "
                          f"epoch {enc_ckpt['epoch']})")

    # Resume checks come before the images are resized or embedded (minutes on big sets).
    cks = list_checkpoints(out)
    if cks and not resume:
        raise ConfigError(f"--out {out}: already holds checkpoints ({cks[-1].name}) and "
                          "resume=False (--no-resume) was asked; pass a new --out, delete "
                          f"{out / 'checkpoints'}, or resume")
    last = load_checkpoint(cks[-1], "--out") if cks else None
    if last is not None:
        diffs = resume_mismatch(last, cfg, train, fs.content_hash)
        old_eps, new_eps = last.get("train_episodes"), sorted({int(e) for e in man["episode"]})
        if old_eps is not None and [int(e) for e in old_eps] != new_eps:
            diffs.append(f"training episodes ({len(new_eps)} given, checkpoint: {len(old_eps)})")
        if diffs:
            raise ConfigError(
                f"--out {out}: cannot resume: its checkpoints were trained with other settings "
                f"({'; '.join(diffs)}); rerun with the checkpoint's values to resume, or pass "
                "a new --out to train from scratch")
    if cfg.is_e2e:
        _check_image_memory(len(man), cfg.image_size)

    spec = head_spec(cfg.head)
    w = make_windows(ep_keys, man["step"].to_numpy(), spec.obs_window(cfg),
                     spec.action_window(cfg), act_from_obs=spec.act_from_obs)

    # torch's thread count and global generator are process state: restore them on the
    # way out, so a caller (a study training many policies) sees what it had before.
    threads_before = torch.get_num_threads()
    try:
        with torch.random.fork_rng(devices=[]):
            if train.threads:
                torch.set_num_threads(int(train.threads))
            return _fit(torch, data, out, cfg, train, fs, view, man, order, ep_keys, actions,
                        states, w, cks, last, enc_ckpt, encoder_origin, progress,
                        Path(embedding_cache) if embedding_cache else out / "embedding-cache",
                        frozen_encoder)
    finally:
        torch.set_num_threads(threads_before)


def _fit(torch: Any, data: str | Path, out: Path, cfg: PolicyConfig, train: TrainConfig,
         fs: Any, view: Any, man: Any, order: np.ndarray, ep_keys: np.ndarray,
         actions: np.ndarray, states: np.ndarray, w: _Windows, cks: list[Path],
         last: dict[str, Any] | None, enc_ckpt: dict[str, Any] | None, encoder_origin: str,
         progress: bool, cache_dir: Path, frozen_encoder: Any = None) -> TrainResult:
    """The optimisation of :func:`train_policy` once data and checks are in place."""
    from tqdm import tqdm

    from realgap.policy.model import PolicyNet, build_e2e_encoder, prepare_images
    from realgap.policy.predictor import load_weights

    torch.manual_seed(train.seed)
    registry_encoder = None
    if cfg.is_e2e:
        encoder, feat_dim = build_e2e_encoder(cfg)
        images = prepare_images(view.images(cfg.camera)[order], cfg.image_size)
        feats = None
    else:
        from realgap.encoders import create_encoder, embed_frameset
        from realgap.encoders.registry import BC_DOMAINS

        if frozen_encoder is not None:
            registry_encoder = frozen_encoder
        elif cfg.encoder in BC_DOMAINS:  # trained on demand: on this FrameSet, cached
            registry_encoder = create_encoder(cfg.encoder, device="cpu", frameset=fs,
                                              camera=cfg.camera, cache_dir=cache_dir)
        else:
            registry_encoder = create_encoder(cfg.encoder, weights=cfg.encoder_weights,
                                              device="cpu")
        trained_with = (last or {}).get("encoder_weights_hash")
        if trained_with and trained_with != registry_encoder.weights_hash:
            raise ConfigError(f"--out {out}: cannot resume: its checkpoints were trained on "
                              f"encoder weights {trained_with[:19]}, this encoder has "
                              f"{registry_encoder.weights_hash[:19]}; pass a new --out")
        encoder_origin = f"frozen registry encoder ({registry_encoder.weights_origin})"
        emb = embed_frameset(registry_encoder, view, camera=cfg.camera,
                             cache_dir=cache_dir, progress=progress)
        feats = torch.from_numpy(np.asarray(emb, np.float32)[order])
        encoder, feat_dim, images = None, int(feats.shape[1]), None
    from realgap.encoders.registry import encoder_state

    stored_encoder = None if registry_encoder is None else encoder_state(registry_encoder)
    train_episodes = sorted({int(e) for e in man["episode"]})
    torch.manual_seed(train.seed)
    net = PolicyNet(cfg, feat_dim, encoder)
    net.set_stats(actions, states)
    if enc_ckpt is not None:
        net.encoder.load_state_dict(_encoder_state(enc_ckpt))
    opt = torch.optim.AdamW(net.trainable_parameters(), lr=train.lr, weight_decay=train.weight_decay)

    start_epoch = 0
    history: list[float] = []  # the loss of every epoch since epoch 1, resumes included
    if last is not None:
        load_weights(net, last)
        opt.load_state_dict(last["optimizer"])
        start_epoch = int(last["epoch"])
        history = [float(x) for x in (last.get("losses") or [])][:start_epoch]
        # checkpoints written before the history was kept whole hold only their own call's
        # epochs: keep the list aligned (losses[i] is epoch i + 1) with NaN for the gap
        history = [math.nan] * (start_epoch - len(history)) + history
    if start_epoch >= train.epochs:
        return TrainResult(out, cks[-1], 0, (), len(man), len(set(ep_keys)))

    acts_t = net.normalize_actions(torch.from_numpy(actions))
    states_t = torch.from_numpy(states)
    obs_idx = torch.from_numpy(w.obs_idx)
    act_idx = torch.from_numpy(w.act_idx)
    train_rows, val_rows = _split_rows(ep_keys, train.val_episodes, train.seed)
    n = len(train_rows)
    losses: list[float] = []
    val_hist = [float(x) for x in ((last or {}).get("val_losses") or [])][:start_epoch]
    best_state = (last or {}).get("best_state_dict")
    best_epoch = int((last or {}).get("best_epoch") or 0)
    best_val = min((v for v in val_hist if math.isfinite(v)), default=math.inf)
    ck = cks[-1] if cks else checkpoint_path(out, 0)

    def batch_loss(rows: Any, gen: Any, augment: bool) -> Any:
        oi, ai = obs_idx[rows], act_idx[rows]
        b, t_o = oi.shape
        if images is not None:
            imgs = images[oi.reshape(-1)]
            if augment and train.augment_shift:
                imgs = _random_shift(imgs, train.augment_shift, gen)
            f = net.encode(imgs).reshape(b, t_o, -1)
        else:
            f = feats[oi]
        cond = net.condition(f, states_t[oi] if cfg.state_dim else None)
        return net.head.loss(cond, acts_t[ai], generator=gen)

    def payload(epoch: int, state: Any) -> dict[str, Any]:
        return {
            "policy_config": cfg.to_dict(), "train_config": train.to_dict(),
            "task": cfg.task, "frameset_hash": fs.content_hash, "data": str(data),
            "encoder_origin": encoder_origin,
            "encoder_weights_hash": None if registry_encoder is None
            else registry_encoder.weights_hash, "frozen_encoder": stored_encoder,
            "train_episodes": train_episodes, "epoch": epoch, "feat_dim": feat_dim,
            "state_dict": state, "optimizer": opt.state_dict(),
            "losses": history + [float(x) for x in losses], "n_frames": len(man),
            "val_losses": val_hist, "best_epoch": best_epoch,
            "best_state_dict": best_state if val_rows.size else None,
            "val_episodes": int(train.val_episodes),
        }

    bar = tqdm(range(start_epoch, train.epochs), desc=f"train {cfg.head}", disable=not progress,
               initial=start_epoch, total=train.epochs)
    for epoch in bar:
        gen = torch.Generator().manual_seed(train.seed * 1_000_003 + epoch)
        net.train()
        if cfg.freeze_encoder and net.encoder is not None:
            net.encoder.eval()
        perm = train_rows[torch.randperm(n, generator=gen)]
        total, count = 0.0, 0
        for b0 in range(0, n, train.batch_size):
            rows = perm[b0:b0 + train.batch_size]
            loss = batch_loss(rows, gen, augment=True)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(rows)
            count += len(rows)
        losses.append(total / max(count, 1))
        stop = False
        if val_rows.size:
            val_hist.append(_val_loss(net, val_rows, batch_loss, train))
            if val_hist[-1] < best_val:
                best_val, best_epoch = val_hist[-1], epoch + 1
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            stop = bool(train.patience) and epoch + 1 - best_epoch >= train.patience
            bar.set_postfix(loss=f"{losses[-1]:.4f}", val=f"{val_hist[-1]:.4f}")
        else:
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        if stop or epoch + 1 == train.epochs:
            # the run is finished: its last checkpoint (numbered train.epochs, so a rerun
            # finds it done) holds the best held-out weights when there is a validation set
            state = best_state if val_rows.size and best_state is not None else net.state_dict()
            ck = save_checkpoint(checkpoint_path(out, train.epochs),
                                 {**payload(train.epochs, state), "stopped_at": epoch + 1})
            break
        if (epoch + 1) % train.checkpoint_every == 0:
            ck = save_checkpoint(checkpoint_path(out, epoch + 1),
                                 payload(epoch + 1, net.state_dict()))
    return TrainResult(out, ck, len(losses), tuple(losses), len(man), len(set(ep_keys)),
                       tuple(val_hist), best_epoch)


def _split_rows(ep_keys: np.ndarray, val_episodes: int, seed: int) -> tuple[Any, np.ndarray]:
    """Training rows (torch int64) and held-out rows (numpy) of ``val_episodes`` whole
    episodes drawn with ``seed`` (none when 0; at least one episode always trains)."""
    torch = require("torch")
    rows = np.arange(len(ep_keys))
    if not val_episodes:
        return torch.from_numpy(rows), rows[:0]
    uniq = np.array(sorted(set(ep_keys)))
    if val_episodes >= uniq.size:
        raise ConfigError(f"val_episodes {val_episodes}: the data has {uniq.size} episodes; "
                          "hold out fewer so that some remain to train on")
    held = np.random.default_rng(seed).choice(uniq, size=int(val_episodes), replace=False)
    mask = np.isin(ep_keys, held)
    return torch.from_numpy(rows[~mask]), rows[mask]


def _val_loss(net: Any, val_rows: np.ndarray, batch_loss: Any, train: TrainConfig) -> float:
    """Mean held-out loss (no augmentation; diffusion noise from a fixed generator, so
    the numbers of two epochs compare the weights, not the draws)."""
    torch = require("torch")
    net.eval()
    gen = torch.Generator().manual_seed(train.seed)
    total, count = 0.0, 0
    with torch.no_grad():
        for b0 in range(0, val_rows.size, train.batch_size):
            rows = torch.from_numpy(val_rows[b0:b0 + train.batch_size])
            total += float(batch_loss(rows, gen, augment=False)) * len(rows)
            count += len(rows)
    return total / max(count, 1)


def _random_shift(imgs: Any, pad: int, gen: Any) -> Any:
    """Random-shift augmentation (DrQ): replicate-pad by ``pad`` px and crop back,
    one integer offset per image drawn from ``gen``. uint8 ``(N, 3, H, W)`` in and out."""
    torch = require("torch")
    n, _, h, w = imgs.shape
    padded = torch.nn.functional.pad(imgs.float(), (pad, pad, pad, pad), mode="replicate")
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    # one gather instead of a Python loop over images (the same crops, ~10x faster)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :]
    out = padded[torch.arange(n)[:, None, None, None], torch.arange(3)[None, :, None, None],
                 rows, cols]
    return out.to(torch.uint8)
