"""Attention visualisation: heat overlays (paper Fig. 1), contact sheets (Fig. 8), raw maps."""

from __future__ import annotations

from .colormap import TURBO, apply_colormap
from .heatmap import blend, map_entropy, normalize_maps, overlay, upsample_map
from .render import nearest_map_indices, render_grid, render_overlay_video, save_maps

__all__ = [
    "TURBO",
    "apply_colormap",
    "blend",
    "map_entropy",
    "nearest_map_indices",
    "normalize_maps",
    "overlay",
    "render_grid",
    "render_overlay_video",
    "save_maps",
    "upsample_map",
]
