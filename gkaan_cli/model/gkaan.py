"""The GKAAN network: backbone, spatial poolings, one SRU + head per stream, fusion.

DESIGN.md section 1. Early fusion streams GS = [GP, SA], GL = [GP, LA] and GP (eq. 19);
late fusion streams GP, SA and LA (eq. 20); single-stream models are the paper's ablations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from ..config import GKAANConfig
from .attention import GlobalPooling, LearnedAttention, StatisticAttention
from .backbones import build_backbone
from .sru import SRU

__all__ = ["GKAAN", "GKAANOutput"]


@dataclass
class GKAANOutput:
    """What one forward pass gives.

    Attributes:
        logits: per stream, (B, K) logits averaged over time (eq. 16).
        stream_probs: per stream, (B, K) softmax probabilities.
        probs: (B, K) fused class probabilities (eq. 19 / eq. 20).
        attention: ``"sa"`` and/or ``"la"`` -> (B, T, h, w) maps, each summing to 1 per frame,
            present when the model computes that attention.
    """

    logits: dict[str, Tensor]
    stream_probs: dict[str, Tensor]
    probs: Tensor
    attention: dict[str, Tensor] = field(default_factory=dict)


class GKAAN(nn.Module):
    """Global and Local Knowledge-Aware Attention Network (Zheng et al., TNNLS 2020).

    Args:
        config: the model configuration (streams, sizes, variants).
        pretrained_backbone: ``True`` for ImageNet backbone weights, a path to a local
            weights file, or ``False`` for random weights.
    """

    def __init__(self, config: GKAANConfig, *, pretrained_backbone: bool | str | Path = False):
        super().__init__()
        self.config = config
        channels = config.feature_channels
        streams = config.streams
        self.backbone = build_backbone(config.backbone, pretrained=pretrained_backbone)
        self.gp = GlobalPooling()
        self.sa = (
            StatisticAttention(config.sa_variant)
            if any(s in ("sa", "gs") for s in streams)
            else None
        )
        self.la = (
            LearnedAttention(channels, config.la_hidden, config.la_variant)
            if any(s in ("la", "gl") for s in streams)
            else None
        )
        width = {"gp": channels, "sa": channels, "la": channels}
        width |= {"gs": 2 * channels, "gl": 2 * channels}  # fusion layer: [R_GP, R_att]
        self.srus = nn.ModuleDict(
            {
                s: SRU(width[s], config.sru_hidden, config.sru_layers, config.dropout)
                for s in streams
            }
        )
        self.heads = nn.ModuleDict(
            {s: nn.Linear(config.sru_hidden, config.num_classes) for s in streams}
        )
        weights = torch.tensor(config.stream_weights[: len(streams)], dtype=torch.float32)
        self.register_buffer("stream_weights", weights / weights.sum(), persistent=False)

    def extract_maps(self, frames: Tensor) -> Tensor:
        """Backbone only: frames (N, 3, H, W) -> conv maps (N, C, h, w)."""
        return self.backbone(frames)

    def forward(self, clips: Tensor) -> GKAANOutput:
        """Classify clips (B, T, 3, H, W)."""
        b, t = clips.shape[:2]
        maps = self.extract_maps(clips.flatten(0, 1))
        return self.forward_features(maps.unflatten(0, (b, t)))

    def forward_features(self, maps: Tensor) -> GKAANOutput:
        """Classify clips from their conv maps (B, T, C, h, w) (the backbone already ran)."""
        b, t, _, h, w = maps.shape
        flat = maps.flatten(0, 1)
        pooled = {"gp": self.gp(flat)[0]}
        attention: dict[str, Tensor] = {}
        for name, module in (("sa", self.sa), ("la", self.la)):
            if module is not None:
                pooled[name], weights = module(flat)
                attention[name] = weights.reshape(b, t, h, w)
        if "sa" in pooled:
            pooled["gs"] = torch.cat([pooled["gp"], pooled["sa"]], dim=1)
        if "la" in pooled:
            pooled["gl"] = torch.cat([pooled["gp"], pooled["la"]], dim=1)
        logits = {}
        for name in self.config.streams:
            states = self.srus[name](pooled[name].reshape(b, t, -1))
            logits[name] = self.heads[name](states).mean(dim=1)  # eq. 16
        stream_probs = {name: torch.softmax(value, dim=1) for name, value in logits.items()}
        weights = self.stream_weights.to(maps.dtype)
        if self.config.fuse == "logits":
            mixed = sum(wt * value for wt, value in zip(weights, logits.values(), strict=True))
            probs = torch.softmax(mixed, dim=1)
        else:  # eq. 19 (early fusion), eq. 20 (late fusion)
            probs = sum(
                wt * value for wt, value in zip(weights, stream_probs.values(), strict=True)
            )
        return GKAANOutput(logits, stream_probs, probs, attention)

    def save_pretrained(self, directory: str | Path, *, dtype: torch.dtype | None = None) -> Path:
        """Write ``config.json`` + ``model.safetensors`` to ``directory`` (see checkpoint.py)."""
        from ..checkpoint import save_checkpoint

        return save_checkpoint(self, directory, dtype=dtype)

    @classmethod
    def from_pretrained(cls, spec: str | Path, *, revision: str | None = None) -> GKAAN:
        """Load a checkpoint from a local directory, a training run, a Hub id or a registry name.

        Args:
            spec: a checkpoint directory, a training run directory (its ``best/``, else
                ``last/``), a Hub repo id ``org/name[@revision]`` or a registry name.
            revision: Hub revision (branch, tag or commit) to pin.
        """
        from ..checkpoint import load_checkpoint
        from ..hub import resolve_checkpoint

        return load_checkpoint(resolve_checkpoint(str(spec), revision=revision))
