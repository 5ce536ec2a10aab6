"""gkaan: Global and Local Knowledge-Aware Attention Network for action recognition."""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

from .config import GKAANConfig, PreprocessConfig, SamplingConfig

if TYPE_CHECKING:
    from .model import GKAAN, GKAANOutput, gkaan_loss

__all__ = [
    "GKAAN",
    "GKAANConfig",
    "GKAANOutput",
    "PreprocessConfig",
    "SamplingConfig",
    "__version__",
    "gkaan_loss",
]

_LAZY = {"GKAAN", "GKAANOutput", "gkaan_loss"}


def __getattr__(name: str) -> Any:
    """Import the model (and torch) only when one of its names is first used."""
    if name in _LAZY:
        from . import model

        return getattr(model, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
