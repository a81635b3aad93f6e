"""Saliency maps for encoders: where an encoder looks when its embedding predicts an action.

Public API::

    from realgap.explain import fit_action_probe, saliency_maps, explain_encoder
    probe = fit_action_probe(emb_sim, act_sim, ep_sim, rng=0)    # the AS probe (ref. III-D)
    maps, setup = saliency_maps(encoder, images, probe)           # float32 (N, H, W) in [0, 1]
    grid = explain_encoder(encoder, sim_imgs, real_imgs, pair_ids, probe)  # SaliencyGrid | None

FullGrad of a policy's end-to-end encoder (Visual Alignment Testing):
:func:`realgap.explain.fullgrad.fullgrad_maps`.

Grad-CAM (CNNs) and Grad-CAM on reshaped patch tokens (ViTs) come from pytorch-grad-cam;
the explained scalar is the action probe's prediction (an embedding has no class). See
:mod:`realgap.explain.cam` and :mod:`realgap.explain.probe`. ``import realgap.explain``
does not import torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from realgap._optional import lazy_exports
from realgap.explain.cam import (
    CamSetup,
    find_cam_setup,
    saliency_maps,
    saliency_support,
    vit_reshape,
)
from realgap.explain.grid import SaliencyGrid, caption_for, grid_png, overlay
from realgap.explain.probe import (
    TARGET_DESCRIPTION,
    ActionProbe,
    ProbeTarget,
    fit_action_probe,
    probe_from_ridge,
)


def explain_encoder(
    encoder: Any,
    sim_images: np.ndarray,
    real_images: np.ndarray,
    pair_ids: Sequence[str],
    probe: ActionProbe,
    *,
    domains: tuple[str, str] = ("sim", "real"),
    batch_size: int = 8,
) -> SaliencyGrid | None:
    """The saliency grid of ``encoder`` on paired frames, or None when it has no gradient saliency.

    Args:
        encoder: a :class:`realgap.encoders.base.Encoder`.
        sim_images, real_images: uint8 (P, H, W, 3), row i of both rendered from the same
            simulator state (``pair_ids[i]``).
        probe: the action probe fit on this encoder's sim embeddings.
    """
    if saliency_support(encoder) is not None:
        return None
    both = np.concatenate([np.asarray(sim_images), np.asarray(real_images)])
    maps, setup = saliency_maps(encoder, both, probe, batch_size=batch_size)
    p = len(pair_ids)
    layer = setup.layer_names[0]
    png = grid_png(f"{encoder.name}: {setup.method} ({layer}), target = action probe",
                   both[:p], maps[:p], both[p:], maps[p:], pair_ids, domains)
    return SaliencyGrid(png=png, caption=caption_for(encoder.name, setup.method, layer),
                        method=setup.method, layer=layer, pair_ids=tuple(str(x) for x in pair_ids))


# FullGrad imports torch at its top: resolved on first use (PEP 562).
__getattr__ = lazy_exports(__name__, {"fullgrad_maps": "realgap.explain.fullgrad"})

__all__ = [
    "TARGET_DESCRIPTION",
    "ActionProbe",
    "CamSetup",
    "ProbeTarget",
    "SaliencyGrid",
    "caption_for",
    "explain_encoder",
    "find_cam_setup",
    "fit_action_probe",
    "fullgrad_maps",
    "grid_png",
    "overlay",
    "probe_from_ridge",
    "saliency_maps",
    "saliency_support",
    "vit_reshape",
]
