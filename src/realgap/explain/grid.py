"""The saliency grid of one encoder: the same sim and real frames side by side.

Rows are pairs of frames rendered from the same simulator state in the two domains
(``pair_id`` of the FrameSet); columns: sim frame, sim frame with its heatmap, real frame,
real frame with its heatmap (encoder-dis-as-framework.txt IV-B shows such grids, Fig. 2-3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from realgap._plot import literal_text, png_bytes, subplots
from realgap.errors import DataError
from realgap.explain.probe import TARGET_DESCRIPTION


@dataclass(frozen=True)
class SaliencyGrid:
    """One encoder's grid: the PNG and what the report says about it.

    Attributes:
        png: the figure, PNG bytes.
        caption: names the method, the layer and the target (the action probe).
        method: ``"gradcam"`` or ``"gradcam-vit"``.
        layer: the explained layer's dotted name.
        pair_ids: the pairs shown, top to bottom.
    """

    png: bytes
    caption: str
    method: str
    layer: str
    pair_ids: tuple[str, ...]


def caption_for(encoder_name: str, method: str, layer: str) -> str:
    """The figure caption: method, layer and target, stated plainly."""
    what = ("Grad-CAM on the patch tokens (ViT reshape)" if method == "gradcam-vit"
            else "Grad-CAM")
    return (f"{encoder_name}: {what} at layer '{layer}'. An embedding has no class, so the "
            f"explained scalar is the action probe's prediction: {TARGET_DESCRIPTION}. "
            "Red = regions that raise it most; a panel marked 'zero map' has no region that "
            "raises it (Grad-CAM keeps positive evidence only). Each row: the same simulator "
            "state in sim (left pair) and real (right pair).")


def overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """uint8 (H, W, 3) image blended with the jet colour map of ``cam`` float (H, W) in [0, 1]."""
    from matplotlib import colormaps

    if image.shape[:2] != cam.shape:
        raise DataError(f"overlay: image {image.shape[:2]} and map {cam.shape} differ in size")
    heat = colormaps["jet"](np.clip(cam, 0.0, 1.0))[..., :3]
    out = (1.0 - alpha) * image.astype(np.float64) / 255.0 + alpha * heat
    return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


@literal_text
def grid_png(
    title: str,
    sim_images: np.ndarray,
    sim_maps: np.ndarray,
    real_images: np.ndarray,
    real_maps: np.ndarray,
    pair_ids: Sequence[str],
    domains: tuple[str, str] = ("sim", "real"),
) -> bytes:
    """PNG of the grid; all arrays have one row per pair (images uint8 (P, H, W, 3), maps (P, H, W))."""
    p = len(pair_ids)
    if not (len(sim_images) == len(sim_maps) == len(real_images) == len(real_maps) == p) or p == 0:
        raise DataError(f"saliency grid: need the same number (>0) of sim/real frames and maps "
                        f"as pair_ids, got {len(sim_images)}, {len(real_images)}, {p}")
    fig, axes = subplots(p, 4, figsize=(8.0, 2.05 * p + 0.4), squeeze=False)
    heads = (f"{domains[0]}", f"{domains[0]} + saliency", f"{domains[1]}",
             f"{domains[1]} + saliency")
    for r in range(p):
        cells = (sim_images[r], overlay(sim_images[r], sim_maps[r]),
                 real_images[r], overlay(real_images[r], real_maps[r]))
        for c, img in enumerate(cells):
            ax = axes[r][c]
            ax.imshow(img)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(heads[c], fontsize=9)
            cam = (sim_maps, real_maps)[c // 2][r] if c % 2 else None
            if cam is not None and not np.any(cam > 1e-6):
                # Grad-CAM's ReLU leaves nothing when no region raises the target: say so,
                # rather than show a flat overlay that reads as a rendering bug.
                ax.text(0.5, 0.5, "zero map:\nno region raises\nthe target", color="white",
                        ha="center", va="center", fontsize=7, transform=ax.transAxes,
                        bbox={"facecolor": "black", "alpha": 0.6, "pad": 2})
        axes[r][0].set_ylabel(str(pair_ids[r])[:18], fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return png_bytes(fig, dpi=90)
