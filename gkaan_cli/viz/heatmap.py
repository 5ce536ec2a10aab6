"""Attention maps -> heat images: up-sampling, normalisation, colouring, 50/50 blend.

The SA and LA maps T (h x w per frame, summing to 1; eqs. 4 and 7 of the paper,
docs/model.md#eq-4) are up-sampled bilinearly to the frame, stretched to [0, 1] and blended
half and half with the frame in a perceptual colormap, as in the paper's Fig. 1.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from ..engine.metrics import attention_peakedness
from .colormap import apply_colormap

__all__ = ["Normalize", "blend", "map_entropy", "normalize_maps", "overlay", "upsample_map"]

Normalize = Literal["frame", "global"]


def upsample_map(att: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinearly up-sample ``att`` (h, w) or (N, h, w) to ``size`` (H, W), float32.

    Uses ``align_corners=False``: each map cell covers an equal block of the frame, so a
    cell's value sits at the centre of its block.
    """
    maps = torch.as_tensor(np.asarray(att, dtype=np.float32))
    batched = maps.reshape(-1, 1, *maps.shape[-2:])
    up = F.interpolate(batched, size=size, mode="bilinear", align_corners=False)
    return up.reshape(*maps.shape[:-2], *size).numpy()


def normalize_maps(maps: np.ndarray, mode: Normalize = "frame") -> np.ndarray:
    """Min-max stretch maps (F, h, w) to [0, 1], float32.

    Args:
        maps: attention maps, one per frame.
        mode: ``frame`` stretches each map on its own (where each frame looks);
            ``global`` uses one min and max over all frames (how strongly, comparably).
            A constant map (or set of maps) becomes all zeros.
    """
    maps = np.asarray(maps, dtype=np.float32)
    if mode == "frame":
        axes: tuple[int, ...] = tuple(range(1, maps.ndim))
    elif mode == "global":
        axes = tuple(range(maps.ndim))
    else:
        raise ValueError(f"normalize must be 'frame' or 'global', got {mode!r}")
    if maps.size == 0:
        return maps.copy()
    low = maps.min(axis=axes, keepdims=True)
    span = maps.max(axis=axes, keepdims=True) - low
    return np.divide(maps - low, span, out=np.zeros_like(maps), where=span > 0)


def overlay(frame: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend ``frame`` (H, W, 3) uint8 with ``heat`` (H, W) in [0, 1] coloured (Fig. 1).

    Args:
        frame: the RGB image.
        heat: normalised attention at the frame's resolution.
        alpha: weight of the colour layer (0.5: half and half, as in the paper).
    """
    if frame.shape[:2] != heat.shape:
        raise ValueError(f"frame {frame.shape[:2]} and heat {heat.shape} sizes differ")
    return blend(frame, apply_colormap(heat), alpha)


def blend(frame: np.ndarray, colour: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``(1 - alpha) * frame + alpha * colour`` of two (H, W, 3) uint8 images, rounded."""
    mixed = (1.0 - alpha) * frame.astype(np.float32) + alpha * colour.astype(np.float32)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def map_entropy(maps: np.ndarray) -> np.ndarray:
    """Entropy in nats of each attention map (F, h, w) -> (F,) (uniform 7x7: ln 49 = 3.89).

    Shows how peaked attention is (docs/model.md#sa-peaked: the paper's SA is a near-hard argmax).
    """
    return attention_peakedness(np.asarray(maps))[0].astype(np.float32)
