"""gkaan: Global and Local Knowledge-Aware Attention Network for action recognition."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import GKAANConfig, PreprocessConfig, SamplingConfig
from .version import __version__

if TYPE_CHECKING:
    from .engine.predict import Predictor, VideoPrediction
    from .model import GKAAN, GKAANOutput, gkaan_loss

__all__ = [
    "GKAAN",
    "GKAANConfig",
    "GKAANOutput",
    "Predictor",
    "PreprocessConfig",
    "SamplingConfig",
    "VideoPrediction",
    "__version__",
    "gkaan_loss",
]

#: Names imported (with torch) only when first used: name -> module relative to the package.
_LAZY = {
    "GKAAN": ".model",
    "GKAANOutput": ".model",
    "gkaan_loss": ".model",
    "Predictor": ".engine.predict",
    "VideoPrediction": ".engine.predict",
}


def __getattr__(name: str) -> Any:
    """Import the model or the predictor (and torch) only when one of their names is used."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
