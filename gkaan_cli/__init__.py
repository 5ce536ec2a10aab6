"""gkaan: Global and Local Knowledge-Aware Attention Network for action recognition."""

from __future__ import annotations

__version__ = "0.1.0"

from .config import GKAANConfig, PreprocessConfig, SamplingConfig  # noqa: E402

__all__ = [
    "GKAANConfig",
    "PreprocessConfig",
    "SamplingConfig",
    "__version__",
]
