"""The GKAAN network: backbones, attention, SRU, streams and fusion, loss (DESIGN.md 1-2)."""

from __future__ import annotations

from .attention import GlobalPooling, LearnedAttention, StatisticAttention
from .backbones import BACKBONES, BackboneSpec, build_backbone
from .gkaan import GKAAN, GKAANOutput
from .loss import LossParts, ga_term, gkaan_loss
from .sru import SRU, SRULayer

__all__ = [
    "BACKBONES",
    "GKAAN",
    "SRU",
    "BackboneSpec",
    "GKAANOutput",
    "GlobalPooling",
    "LearnedAttention",
    "LossParts",
    "SRULayer",
    "StatisticAttention",
    "build_backbone",
    "ga_term",
    "gkaan_loss",
]
