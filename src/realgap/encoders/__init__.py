"""The encoder zoo: a registry of vision encoders with metadata, weights and preprocessing.

Public API (docs/interfaces.md, "Encoders")::

    from realgap.encoders import create_encoder, ENCODERS, embed_frameset
    enc = create_encoder("resnet18.random_native")   # or "clip-b16", "clip-b16.random", "pixels"
    enc.embed(images uint8 (N, H, W, 3)) -> float32 (N, D)
    emb = embed_frameset(enc, fs, camera="head", cache_dir=DIR, batch_size=64)

Names are listed in :mod:`realgap.encoders.registry`; Table I of
encoder-dis-as-framework.txt lives in :mod:`realgap.encoders.zoo`; trained BC encoders in
:mod:`realgap.encoders.bc`; the reusable end-to-end ResNet18 (GroupNorm, spatial softmax)
in :mod:`realgap.encoders.e2e` (imports torch).

``import realgap.encoders`` does not import torch: networks are built on demand.
"""

from __future__ import annotations

from realgap.encoders.base import Encoder, EncoderInfo, Preprocess
from realgap.encoders.bc import BCConfig, train_bc_encoder
from realgap.encoders.cache import CACHE_VERSION, cache_path, embed_frameset
from realgap.encoders.registry import (
    ENCODER_ALIASES,
    ENCODERS,
    PLUGIN_FLAG,
    RANDOM_SUFFIX,
    RANDOM_TAG,
    create_encoder,
    encoder_factory,
    encoder_info,
    plugins_allowed,
    weights_status,
)
from realgap.encoders.weights import find_weights, search_places
from realgap.encoders.zoo import ZOO

__all__ = [
    "CACHE_VERSION",
    "ENCODERS",
    "ENCODER_ALIASES",
    "PLUGIN_FLAG",
    "RANDOM_SUFFIX",
    "RANDOM_TAG",
    "ZOO",
    "BCConfig",
    "Encoder",
    "EncoderInfo",
    "Preprocess",
    "cache_path",
    "create_encoder",
    "embed_frameset",
    "encoder_factory",
    "encoder_info",
    "find_weights",
    "plugins_allowed",
    "search_places",
    "train_bc_encoder",
    "weights_status",
]
