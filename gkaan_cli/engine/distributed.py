"""One code path for single-process and ``torchrun`` (DDP) training (docs/protocol.md#recipes).

Under ``torchrun --nproc-per-node N`` the environment holds ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``: :func:`setup` then joins the process group (gloo on CPU, nccl on CUDA).
Otherwise everything runs in one process and the collectives below are identities. Device
names are resolved here for training and prediction alike; autocast precisions in
:mod:`gkaan_cli.model.precision` (re-exported).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from ..errors import UsageError
from ..model.precision import AUTOCAST_DTYPES, native_bf16, resolve_precision

__all__ = [
    "AUTOCAST_DTYPES",
    "DistContext",
    "all_gather",
    "all_reduce_sum",
    "barrier",
    "distributed_context",
    "gather_to_main",
    "native_bf16",
    "resolve_device",
    "resolve_precision",
]

T = TypeVar("T")


@dataclass(frozen=True)
class DistContext:
    """This process's place in the run: ``rank`` of ``world_size``, and its device."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 writes logs and checkpoints."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def resolve_device(device: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA when available else CPU; ``cuda`` -> this process's GPU."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"device {device!r} asked for, but CUDA is not available here")
    if device == "cuda":
        return torch.device("cuda", local_rank)
    try:
        return torch.device(device)
    except RuntimeError as error:
        raise UsageError(f"unknown device {device!r} (use auto, cpu, cuda or cuda:N)") from error


@contextmanager
def distributed_context(device: str, *, timeout: timedelta | None = None) -> Iterator[DistContext]:
    """Join the ``torchrun`` process group for the duration (when launched by torchrun).

    ``timeout``: how long a collective waits for the slowest process (default: torch's,
    10 minutes with nccl); a sharded predict or prepare waits for the largest share.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        yield DistContext(0, 1, resolve_device(device))
        return
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    resolved = resolve_device(device, local_rank)
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
    owned = not dist.is_initialized()
    if owned:
        backend = "nccl" if resolved.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=timeout)
    try:
        yield DistContext(dist.get_rank(), dist.get_world_size(), resolved)
    finally:
        if owned:
            dist.destroy_process_group()


def all_reduce_sum(ctx: DistContext, values: list[float]) -> list[float]:
    """Element-wise sum of ``values`` over all processes (float64)."""
    if not ctx.active:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def all_gather(ctx: DistContext, value: T) -> list[T]:
    """Every process's ``value`` (picklable), in rank order."""
    if not ctx.active:
        return [value]
    gathered: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def gather_to_main(ctx: DistContext, value: T) -> list[T] | None:
    """Every process's ``value`` (picklable) on rank 0, in rank order; None on other ranks."""
    if not ctx.active:
        return [value]
    gathered: list[Any] | None = [None] * ctx.world_size if ctx.is_main else None
    dist.gather_object(value, gathered, dst=0)
    return gathered


def barrier(ctx: DistContext) -> None:
    """Wait until every process got here (nothing to wait for in one process)."""
    if ctx.active:
        dist.barrier()
