"""The encoder object: metadata, preprocessing and a frozen network behind one ``embed``.

Data convention (docs/interfaces.md, "Encoders")::

    images:     uint8 (N, H, W, 3), RGB, any H, W
    embeddings: float32 (N, D), one row per image, D = info.embed_dim

Preprocessing travels with the encoder, as timm's ``PretrainedCfg`` does: a
:class:`Preprocess` says how the uint8 frames become the tensor the network was trained
on (resize, crop, pixel scale, mean/std). Every encoder also carries ``weights_origin``
(where its weights came from: ``"random-init (seed 0)"``, ``"file:/path (sha256 ab12..)"``,
``"trained: BC on ..."``, ``"none"``) and ``weights_hash``; results and caches are keyed
on both, so random weights can never pass for published ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from realgap._optional import require
from realgap.errors import ConfigError, DataError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class Preprocess:
    """How uint8 frames become the network's input tensor (timm ``PretrainedCfg`` style).

    Steps, in order: to float in [0, 1]; resize so the shorter side is ``resize``
    pixels (aspect kept; ``None`` skips); center-crop to ``input_size`` (``None`` keeps
    the resized frame); normalize with ``mean``/``std`` (``None`` skips); multiply by
    ``pixel_scale``.
    """

    #: ``(height, width)`` in pixels the network sees, or None for the native size.
    input_size: tuple[int, int] | None = (224, 224)
    #: Shorter-side length in pixels before the crop, or None for no resize (then the
    #: frame is resized straight to ``input_size`` when the two differ).
    resize: int | None = 256
    #: Interpolation for the resize: ``"bilinear"``, ``"bicubic"`` or ``"area"``.
    interpolation: str = "bilinear"
    #: Per-channel RGB mean on the [0, 1] scale, or None for no normalization.
    mean: tuple[float, float, float] | None = IMAGENET_MEAN
    #: Per-channel RGB standard deviation on the [0, 1] scale.
    std: tuple[float, float, float] | None = IMAGENET_STD
    #: Multiplier applied last: 255.0 where the original repo's network takes 0-255
    #: pixel values and normalizes inside (R3M, VIP), 1.0 otherwise.
    pixel_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.interpolation not in ("bilinear", "bicubic", "area"):
            raise ConfigError(
                f"Preprocess.interpolation={self.interpolation!r}; expected bilinear, bicubic or area"
            )
        if (self.mean is None) != (self.std is None):
            raise ConfigError("Preprocess.mean and Preprocess.std must both be set or both be None")

    def key(self) -> str:
        """A stable string naming these settings (part of the embedding cache key)."""
        return repr(sorted(asdict(self).items()))

    def __call__(self, images: np.ndarray, device: str = "cpu") -> Any:
        """``uint8 (N, H, W, 3)`` -> ``float32 torch.Tensor (N, 3, h, w)`` on ``device``."""
        torch = require("torch")
        F = torch.nn.functional
        arr = np.asarray(images)
        if arr.ndim == 3:
            arr = arr[None]
        if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
            raise DataError(
                f"images must be uint8 (N, H, W, 3), got {arr.dtype} {tuple(arr.shape)}; "
                "convert frames to 8-bit RGB first"
            )
        # Work on the 0-255 scale and fold /255, mean/std and pixel_scale into one
        # affine pass at the end (resize and crop are linear, so the order is free).
        x = torch.from_numpy(np.ascontiguousarray(arr)).to(device).permute(0, 3, 1, 2).float()
        h, w = x.shape[-2:]
        target: tuple[int, int] | None = None
        if self.resize is not None:
            s = self.resize / min(h, w)
            target = (max(1, round(h * s)), max(1, round(w * s)))
        elif self.input_size is not None and (h, w) != tuple(self.input_size):
            target = tuple(self.input_size)  # type: ignore[assignment]
        if target is not None and target != (h, w):
            if self.interpolation == "area":
                x = F.interpolate(x, size=target, mode="area")
            else:
                x = F.interpolate(
                    x, size=target, mode=self.interpolation, align_corners=False, antialias=True
                )
        if self.input_size is not None:
            th, tw = self.input_size
            h, w = x.shape[-2:]
            if h < th or w < tw:
                x = F.interpolate(x, size=(max(h, th), max(w, tw)), mode="bilinear",
                                  align_corners=False)
                h, w = x.shape[-2:]
            top, left = (h - th) // 2, (w - tw) // 2
            x = x[..., top : top + th, left : left + tw]
        # y = ((x / 255 - mean) / std) * pixel_scale = x * scale + bias, per channel
        mean = np.zeros(3) if self.mean is None else np.asarray(self.mean, dtype=np.float64)
        std = np.ones(3) if self.std is None else np.asarray(self.std, dtype=np.float64)
        scale = torch.tensor(self.pixel_scale / (255.0 * std), dtype=x.dtype, device=x.device)
        bias = torch.tensor(-self.pixel_scale * mean / std, dtype=x.dtype, device=x.device)
        out = torch.empty(x.shape, dtype=x.dtype, device=x.device)  # contiguous NCHW
        torch.addcmul(bias.view(1, 3, 1, 1), x, scale.view(1, 3, 1, 1), out=out)
        return out


@dataclass(frozen=True)
class EncoderInfo:
    """What an encoder is (Table I of encoder-dis-as-framework.txt, plus provenance).

    ``params_m`` and ``embed_dim`` describe the network realgap builds (checked by the
    conformance tests); ``paper_params_m`` and ``paper_family`` are Table I's values,
    kept verbatim where the table disagrees with the published architecture.
    """

    #: Architecture family: ``"CNN"``, ``"Transformer"`` or ``"raw"`` (pixels).
    family: str
    #: Embedding dimension D of ``embed`` output.
    embed_dim: int
    #: Parameters of the built network, in millions.
    params_m: float
    #: ``"Supervised"``, ``"Self-supervised"``, ``"Behaviour cloning"`` or ``"None"``.
    training: str
    #: Pre-training data: ``"General"``, ``"General (ImageNet)"``, ``"Manipulation"``, ...
    pretrain_data: str
    #: Library that builds the architecture (``torchvision``, ``timm``, ``open_clip``, ``realgap``).
    library: str = "realgap"
    #: Architecture name in that library.
    arch: str = ""
    #: Row number in Table I of the reference, or None for realgap's own encoders.
    table_no: int | None = None
    #: Table I's parameter count (millions), verbatim.
    paper_params_m: float | None = None
    #: Table I's architecture label, verbatim.
    paper_family: str | None = None
    #: Published checkpoint file name(s) realgap looks for.
    checkpoints: tuple[str, ...] = ()
    #: Where the user fetches the checkpoint (URL of the file or of the release page).
    origin_url: str = ""
    #: Hugging Face hub repo id holding a checkpoint, looked up in the local HF cache only.
    hf_repo: str | None = None
    #: Extra places (``~``-paths) the original repo's own loader caches the file.
    extra_paths: tuple[str, ...] = ()
    #: Free text: layout of the checkpoint, deviations from Table I.
    notes: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["checkpoints"] = list(self.checkpoints)
        d["extra_paths"] = list(self.extra_paths)
        return d


@dataclass
class Encoder:
    """A frozen image encoder: ``embed(uint8 (N,H,W,3)) -> float32 (N, D)``.

    ``module`` is a ``torch.nn.Module`` mapping the preprocessed tensor ``(N, 3, h, w)``
    to ``(N, D)``; it is kept in eval mode and run under ``torch.inference_mode``.
    """

    name: str
    info: EncoderInfo
    preprocess: Preprocess
    module: Any
    weights_origin: str
    weights_hash: str
    device: str = "cpu"
    #: Extra identity fields recorded with every result (e.g. training episodes).
    extra: dict[str, Any] = field(default_factory=dict)
    #: Optional replacement for ``module(x)`` (e.g. CLIP's ``encode_image``).
    forward_fn: Callable[[Any], Any] | None = None
    _nhwc: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.module is not None:
            self.module.eval()
            self.module.to(self.device)

    @property
    def embed_dim(self) -> int:
        return self.info.embed_dim

    @property
    def identity(self) -> dict[str, Any]:
        """What results record about this encoder (name, metadata, weights origin/hash)."""
        return {
            "name": self.name,
            "weights_origin": self.weights_origin,
            "weights_hash": self.weights_hash,
            "preprocess": asdict(self.preprocess),
            **self.info.as_dict(),
            **self.extra,
        }

    def forward(self, x: Any) -> Any:
        """Preprocessed ``float (N, 3, h, w)`` tensor -> ``float (N, D)`` tensor."""
        out = self.forward_fn(x) if self.forward_fn is not None else self.module(x)
        return out.reshape(out.shape[0], -1)

    def _channels_last(self, torch: Any) -> bool:
        """Whether CNN inference runs in channels-last layout (converting the module once).

        PyTorch's CPU convolutions, depthwise ones above all, are faster on NHWC tensors:
        EfficientNet-Lite0 at 224 px embeds 31 instead of 20 images/s on 2 cores. The
        result equals the NCHW one up to float rounding. Transformers are left alone."""
        if self.info.family != "CNN" or not isinstance(self.module, torch.nn.Module):
            return False
        if not self._nhwc:
            with torch.no_grad():
                self.module.to(memory_format=torch.channels_last)
            self._nhwc = True
        return True

    def embed(self, images: np.ndarray) -> np.ndarray:
        """``uint8 (N, H, W, 3)`` frames -> ``float32 (N, D)`` embeddings, one forward."""
        torch = require("torch")
        arr = np.asarray(images)
        if arr.ndim == 4 and arr.shape[0] == 0:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        nhwc = self._channels_last(torch)  # outside inference mode: the weights stay trainable
        with torch.inference_mode():
            x = self.preprocess(arr, self.device)
            if nhwc:
                x = x.contiguous(memory_format=torch.channels_last)
            out = self.forward(x)
        emb = out.float().cpu().numpy()
        if emb.shape[1] != self.embed_dim:
            raise DataError(
                f"encoder {self.name!r} produced dimension {emb.shape[1]}, its metadata says "
                f"{self.embed_dim}; fix the factory's EncoderInfo.embed_dim"
            )
        return emb

    def __repr__(self) -> str:
        return (f"Encoder({self.name!r}, dim={self.embed_dim}, family={self.info.family}, "
                f"weights={self.weights_origin})")
