"""Compute precision of the frozen trunk at inference: which one ``auto`` means on this
hardware, and the trunk that runs in it (docs/predict.md#determinism).

Shared by prediction and ``prepare --features``, so both run the trunk the same way: bf16
where the hardware runs it natively, fp32 elsewhere, and always fp32 after the trunk.
"""

from __future__ import annotations

from typing import get_args

import torch
from torch import Tensor, nn

from ..config import Precision
from ..errors import UsageError

__all__ = [
    "AUTOCAST_DTYPES",
    "InferenceTrunk",
    "checked_precision",
    "inference_trunk",
    "native_bf16",
    "resolve_precision",
]

#: Leading stages (stem, then MBConv blocks) of the fused bf16 EfficientNet-Lite0 trunk kept
#: in fp32: the stem and the first block (112x112, 32 channels, depthwise) drift most in bf16
#: and cost little in fp32 (benchmarks/bench_precision.py --fp32-blocks measures the trade-off).
BF16_FP32_BLOCKS = 2

#: torch dtype of each reduced precision name (``bf16``, ``fp16``) for ``torch.autocast``;
#: any other name (``fp32``, ``none``) runs without autocast.
AUTOCAST_DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` runs bf16 matrix products natively: a CPU with avx512_bf16 or AMX,
    a CUDA GPU with bf16 support. Elsewhere bf16 would be emulated (slower than fp32)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        cpu = torch.cpu
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` where the hardware runs it natively, else ``fp32``; other names
    are returned as they are (docs/predict.md#determinism)."""
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device) else "fp32"


def checked_precision(precision: str, device: torch.device) -> str:
    """:func:`resolve_precision`, refusing a name that is not a :data:`Precision` and fp16
    off CUDA.

    Raises:
        UsageError: an unknown precision, or fp16 on a device that is not CUDA.
    """
    resolved = resolve_precision(precision, device)
    names = get_args(Precision)
    if resolved not in names:
        raise UsageError(f"precision must be one of {sorted(names)}, got {resolved!r}")
    if resolved == "fp16" and device.type != "cuda":
        raise UsageError("fp16 needs a CUDA device; use --precision bf16 or fp32 on CPU")
    return resolved


class InferenceTrunk(nn.Module):
    """A frozen trunk run in one precision: (N, 3, H, W) float -> (N, C, h, w) maps.

    ``fused`` (a module built for this precision, e.g. with batch norm folded into the
    convolutions) runs as it is; otherwise ``trunk`` runs under autocast for a reduced
    precision. The maps come back in the compute dtype; callers cast them to fp32 (heads)
    or fp16 (feature shards) themselves.
    """

    def __init__(
        self, trunk: nn.Module, precision: str, device: torch.device, fused: nn.Module | None
    ) -> None:
        super().__init__()
        self.trunk = trunk
        self.fused = fused
        self.precision = precision
        self.device_type = device.type

    def forward(self, frames: Tensor) -> Tensor:
        frames = frames.contiguous(memory_format=torch.channels_last)
        if self.fused is not None:
            return self.fused(frames)
        dtype = AUTOCAST_DTYPES.get(self.precision)
        if dtype is None:
            return self.trunk(frames)
        with torch.autocast(self.device_type, dtype=dtype):
            return self.trunk(frames)


def inference_trunk(trunk: nn.Module, precision: str, device: torch.device) -> InferenceTrunk:
    """``trunk`` (in eval mode, on ``device``) prepared to run in ``precision`` (already
    resolved, not ``auto``): channels_last, and for bf16 on a CPU the EfficientNet-Lite0
    trunk with batch norm folded into bf16 weights once (fp32 biases, fused ReLU6;
    :func:`~gkaan_cli.model.efficientnet_lite.fused_bf16_trunk`); other trunks use autocast."""
    from .efficientnet_lite import EfficientNetLite0Trunk, fused_bf16_trunk

    trunk = trunk.eval().to(device=device, memory_format=torch.channels_last)
    fused = None
    if precision == "bf16" and device.type == "cpu" and isinstance(trunk, EfficientNetLite0Trunk):
        fused = fused_bf16_trunk(trunk, BF16_FP32_BLOCKS)
    return InferenceTrunk(trunk, precision, device, fused)
