"""Policy checkpoints: weights + architecture config + training config + provenance.

One checkpoint is one ``torch.save`` file ``DIR/checkpoints/epoch-XXXX.pt`` holding a
plain dict (loadable with ``weights_only=True``):

- ``format``: ``"realgap-policy"``, ``format_version``: :data:`FORMAT_VERSION`;
- ``policy_config`` (:class:`PolicyConfig` as a dict), ``train_config`` (dict);
- ``task``, ``frameset_hash`` (the training FrameSet's content hash), ``encoder_origin``,
  ``encoder_weights_hash`` (a frozen registry encoder's weights, checked on load; None for
  end-to-end encoders);
- ``frozen_encoder``: for a frozen encoder its registry name cannot rebuild (``bc-*``,
  trained on a FrameSet), its architecture settings and weights as plain tensors
  (:func:`realgap.encoders.registry.encoder_state`; None otherwise); the loader rebuilds
  it and checks the hash against ``encoder_weights_hash``;
- ``train_episodes``: manifest episode ids of the training domain the policy trained on
  (held-out ones included);
- ``epoch``, ``feat_dim``, ``state_dict``, and for resuming ``optimizer`` and ``rng``.

Files are written atomically (temporary file, then rename), so an interrupted save never
leaves a truncated checkpoint that resuming would trip on.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from realgap._optional import require
from realgap.errors import ConfigError, DataError, FormatVersionError, MissingFileError
from realgap.policy.config import PolicyConfig

FORMAT = "realgap-policy"
FORMAT_VERSION = 1
_EPOCH_RE = re.compile(r"epoch-(\d+)\.pt$")


def checkpoint_path(out_dir: str | Path, epoch: int) -> Path:
    """``OUT/checkpoints/epoch-XXXX.pt``."""
    return Path(out_dir) / "checkpoints" / f"epoch-{epoch:04d}.pt"


def list_checkpoints(out_dir: str | Path) -> list[Path]:
    """Checkpoints under ``OUT/checkpoints``, oldest epoch first."""
    d = Path(out_dir) / "checkpoints"
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _EPOCH_RE.search(p.name))]
    return [p for _, p in sorted(found)]


def find_checkpoint(path: str | Path, flag: str = "--policy") -> Path:
    """A checkpoint file as given, or the latest one in a training output directory
    (``flag``: the option that named it, for the error message)."""
    p = Path(path)
    if p.is_file():
        return p
    if p.is_dir():
        cks = list_checkpoints(p)
        if cks:
            return cks[-1]
        raise MissingFileError(
            f"{flag} {p}: no checkpoints/epoch-*.pt in this directory; "
            "train one with `realgap train --out DIR` or pass a .pt file"
        )
    raise MissingFileError(f"{flag} {p}: no such checkpoint file or training directory")


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (with format fields added) atomically to ``path``."""
    torch = require("torch")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    tmp = p.with_suffix(".pt.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(data, f)
        os.replace(tmp, p)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)  # a failed save leaves no epoch-XXXX.pt.tmp behind
        # A full disk shows up as torch's "unexpected pos" RuntimeError raised while
        # handling the OSError(ENOSPC): surface that OSError, naming the checkpoint.
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, OSError):
            cause = cause.__context__
        if isinstance(cause, OSError) and cause.filename is None:
            raise OSError(cause.errno, cause.strerror, str(p)) from exc
        raise
    return p


def load_checkpoint(path: str | Path, flag: str = "--policy") -> dict[str, Any]:
    """Read and check a checkpoint (file or training directory) into its dict."""
    torch = require("torch")
    p = find_checkpoint(path, flag)
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types on corrupt files
        raise DataError(f"{p}: not a readable policy checkpoint ({type(exc).__name__}); "
                        "retrain or pass another file") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DataError(f"{p}: not a realgap policy checkpoint (format {data.get('format')!r})"
                        if isinstance(data, dict) else f"{p}: not a realgap policy checkpoint")
    if int(data.get("format_version", -1)) != FORMAT_VERSION:
        raise FormatVersionError(
            f"{p}: checkpoint format_version {data.get('format_version')!r}, this realgap reads "
            f"{FORMAT_VERSION}; retrain the policy"
        )
    data["path"] = str(p)
    return data


def check_task(ckpt: dict[str, Any], task: str) -> None:
    """Refuse a checkpoint trained for another task than ``task``."""
    trained = ckpt.get("task")
    if trained != task:
        raise ConfigError(
            f"--policy {ckpt.get('path', '?')}: checkpoint was trained for task {trained!r}, "
            f"not {task!r}; pass a policy trained on {task!r} or use --task {trained}"
        )


def policy_config_of(ckpt: dict[str, Any]) -> PolicyConfig:
    """The :class:`PolicyConfig` stored in a checkpoint dict."""
    return PolicyConfig.from_dict(dict(ckpt["policy_config"]))
