"""Many processes, one result: inputs shared by rank, results merged on rank 0 in input order.

Under ``torchrun --nproc-per-node N -m gkaan_cli predict INPUTS...`` (or ``prepare``) every
process expands the same inputs in the same order and takes its share by rank
(:func:`shard_indices`: round-robin, so a folder sorted by name or class spreads evenly); rank
0 gathers every process's results (``torch.distributed`` over gloo or nccl) and is the one that
writes the merged output, in input order: the same file one process writes
(docs/predict.md#distributed). A single process (no ``torchrun``) is the case
``world_size == 1``, the same code without a collective.

Light at import (no torch), so a command can ask :func:`launch_rank` before loading the model.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from ..progress import ProgressCallback, ProgressEvent

if TYPE_CHECKING:
    from ..data.prepare import PrepareOptions, PrepareReport, RankGroup
    from ..errors import BadVideoError
    from .distributed import DistContext
    from .predict import Predictor, VideoPrediction

__all__ = [
    "SHARD_TIMEOUT",
    "ShardedPredictions",
    "launch_rank",
    "predict_sharded",
    "prepare_sharded",
    "rank_device",
    "rank_group",
    "shard_indices",
]

#: How long a process that finished its share waits for the others at the gather (the
#: default, 10 minutes with nccl, is shorter than a large share of long videos).
SHARD_TIMEOUT = timedelta(hours=24)


def launch_rank() -> int:
    """This process's rank as ``torchrun`` set it in the environment (0 without torchrun)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0
    return int(os.environ.get("RANK", "0"))


def shard_indices(total: int, rank: int, world_size: int) -> range:
    """Positions of the ``total`` inputs that process ``rank`` of ``world_size`` handles:
    ``rank, rank + world_size, ...`` (every input exactly once over all ranks)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in a world of {world_size}")
    return range(rank, total, world_size)


def rank_device(ctx: DistContext, device: str) -> str:
    """The device this process predicts on: ``device`` in one process; under torchrun the
    process's own (``cuda:LOCAL_RANK`` for ``auto``/``cuda``, else ``cpu``)."""
    return str(ctx.device) if ctx.active else device


@dataclass
class ShardedPredictions:
    """What :func:`predict_sharded` returns.

    Attributes:
        predictions: on rank 0 (and in one process) every process's predictions in input
            order; on another rank its own only.
        failed: bad videos (on rank 0: over all processes; each was reported through
            ``on_error`` by the process that met it).
        complete: whether ``predictions`` and ``failed`` cover every process (rank 0).
    """

    predictions: list[VideoPrediction]
    failed: int
    complete: bool


def predict_sharded(
    predictor: Predictor,
    paths: Sequence[str | Path],
    ctx: DistContext,
    *,
    keep_attention: bool = False,
    on_progress: ProgressCallback | None = None,
    on_error: Callable[[BadVideoError], None] | None = None,
) -> ShardedPredictions:
    """Predict this process's share of ``paths``, then gather every share on rank 0.

    Every process must call it with the same ``paths`` (same order). A bad video is handed
    to ``on_error`` by the process that met it (once) and the others go on.

    Args:
        predictor: this process's predictor (on :func:`rank_device`).
        paths: all the videos, in input order.
        ctx: this process's place (:func:`~gkaan_cli.engine.distributed.distributed_context`).
        keep_attention: as in :meth:`Predictor.predict_video`.
        on_progress: ``ProgressEvent("videos", done, share)`` before and after each video of
            this process's share, and the predictor's per-frame events.
        on_error: called with each bad video's error.
    """
    from .distributed import gather_to_main
    from .predict import VideoPrediction

    share = shard_indices(len(paths), ctx.rank, ctx.world_size)
    local: list[tuple[int, VideoPrediction]] = []
    failed = 0
    if on_progress is not None:
        on_progress(ProgressEvent("videos", 0, len(share)))
    results = predictor.predict_many(
        [paths[i] for i in share], keep_attention=keep_attention, on_progress=on_progress
    )
    for done, (index, result) in enumerate(zip(share, results, strict=True), start=1):
        if on_progress is not None:
            on_progress(ProgressEvent("videos", done, len(share)))
        if isinstance(result, VideoPrediction):
            local.append((index, result))
        else:
            failed += 1
            if on_error is not None:
                on_error(result)
    gathered = gather_to_main(ctx, (local, failed))
    if gathered is None:
        return ShardedPredictions([p for _, p in local], failed, complete=False)
    merged = sorted((pair for part, _ in gathered for pair in part), key=lambda pair: pair[0])
    return ShardedPredictions(
        [p for _, p in merged], sum(count for _, count in gathered), complete=True
    )


def rank_group(ctx: DistContext) -> RankGroup | None:
    """``ctx`` as :func:`~gkaan_cli.data.prepare.prepare` takes it (None in one process)."""
    from functools import partial

    from ..data.prepare import RankGroup
    from .distributed import barrier, gather_to_main

    if not ctx.active:
        return None
    return RankGroup(ctx.rank, ctx.world_size, partial(gather_to_main, ctx), partial(barrier, ctx))


def prepare_sharded(
    source: str | Path,
    out: str | Path,
    options: PrepareOptions | None = None,
    *,
    on_progress: ProgressCallback | None = None,
    on_findings: Callable[[list[str]], None] | None = None,
) -> PrepareReport | None:
    """:func:`~gkaan_cli.data.prepare.prepare`, shared by the ``torchrun`` processes
    (``on_progress`` and ``on_findings`` on rank 0).

    Returns:
        rank 0 (and one process): the report of the whole run; another rank: None.
    """
    from ..data.prepare import prepare
    from .distributed import distributed_context

    with distributed_context("cpu", timeout=SHARD_TIMEOUT) as ctx:
        report = prepare(
            source,
            out,
            options,
            on_progress=on_progress if ctx.is_main else None,
            on_findings=on_findings if ctx.is_main else None,
            ranks=rank_group(ctx),
        )
    return report if ctx.is_main else None
