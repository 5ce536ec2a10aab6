"""The GKAAN network: backbones, attention, SRU, streams and fusion, loss; checkpoint files,
the model registry and the Hub client.

The names below are imported (with torch) when first used, so the torch-free modules of this
package (``checkpoint``, ``registry``, ``locate``, ``hub_client``) stay light to import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

#: Public name -> the submodule that defines it.
_LAZY = {
    "GlobalPooling": ".attention",
    "LearnedAttention": ".attention",
    "StatisticAttention": ".attention",
    "BACKBONES": ".backbones",
    "BackboneSpec": ".backbones",
    "build_backbone": ".backbones",
    "GKAAN": ".gkaan",
    "GKAANOutput": ".gkaan",
    "LossParts": ".loss",
    "ga_term": ".loss",
    "gkaan_loss": ".loss",
    "SRU": ".sru",
    "SRULayer": ".sru",
}


def __getattr__(name: str) -> Any:
    """Import the submodule defining ``name`` when it is first used."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
