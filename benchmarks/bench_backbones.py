"""Frames/s of the conv trunks at 224 x 224: NCHW vs channels_last, fp32 vs bf16 autocast.

Run: ``python benchmarks/bench_backbones.py --threads 2``. Random weights (speed only).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from gkaan_cli.model.backbones import build_backbone

TRUNKS = ("efficientnet_lite0", "resnet34")


def frames_per_second(
    trunk: nn.Module, x: torch.Tensor, *, bf16: bool, warmup: int, iters: int
) -> float:
    """Frames processed per second over ``iters`` timed batches after ``warmup`` batches."""
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        for _ in range(warmup):
            trunk(x)
        start = time.perf_counter()
        for _ in range(iters):
            trunk(x)
        elapsed = time.perf_counter() - start
    return iters * x.shape[0] / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.rand(args.batch, 3, args.size, args.size)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, {args.size}px")
    print(f"{'trunk':<20}{'layout':<16}{'dtype':<8}{'frames/s':>10}")
    for name in TRUNKS:
        for layout in (torch.contiguous_format, torch.channels_last):
            trunk = build_backbone(name).eval().to(memory_format=layout)
            xl = x.contiguous(memory_format=layout)
            for bf16 in (False, True):
                fps = frames_per_second(trunk, xl, bf16=bf16, warmup=args.warmup, iters=args.iters)
                layout_name = "channels_last" if layout is torch.channels_last else "NCHW"
                dtype = "bf16" if bf16 else "fp32"
                print(f"{name:<20}{layout_name:<16}{dtype:<8}{fps:>10.1f}")


if __name__ == "__main__":
    main()
