"""Frames/s of the conv trunks at 224 x 224: NCHW vs channels_last, fp32 vs bf16 autocast
(and fp16 on CUDA).

Run: ``python benchmarks/bench_backbones.py --threads 2 [--device cuda] [--json out.json]``.
Random weights (speed only).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch import nn

from gkaan_cli.model.backbones import build_backbone

TRUNKS = ("efficientnet_lite0", "resnet34")


DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def frames_per_second(
    trunk: nn.Module, x: torch.Tensor, *, dtype: torch.dtype | None, warmup: int, iters: int
) -> float:
    """Frames processed per second over ``iters`` timed batches after ``warmup`` batches."""
    device = x.device
    autocast = torch.autocast(device.type, dtype or torch.float32, enabled=dtype is not None)
    with torch.inference_mode(), autocast:
        for _ in range(warmup):
            trunk(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(iters):
            trunk(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed = time.perf_counter() - start
    return iters * x.shape[0] / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    x = torch.rand(args.batch, 3, args.size, args.size, device=device)
    dtypes = ["fp32", "bf16"] + (["fp16"] if device.type == "cuda" else [])
    print(
        f"torch {torch.__version__}, {device}, {args.threads} threads, batch {args.batch}, "
        f"{args.size}px"
    )
    print(f"{'trunk':<20}{'layout':<16}{'dtype':<8}{'frames/s':>10}")
    rows = []
    for name in TRUNKS:
        for layout in (torch.contiguous_format, torch.channels_last):
            trunk = build_backbone(name).eval().to(device, memory_format=layout)
            xl = x.contiguous(memory_format=layout)
            for dtype in dtypes:
                fps = frames_per_second(
                    trunk, xl, dtype=DTYPES[dtype], warmup=args.warmup, iters=args.iters
                )
                layout_name = "channels_last" if layout is torch.channels_last else "NCHW"
                print(f"{name:<20}{layout_name:<16}{dtype:<8}{fps:>10.1f}")
                rows.append(
                    {"trunk": name, "layout": layout_name, "dtype": dtype, "frames_per_s": fps}
                )
    if args.json is not None:
        result = {"device": str(device), "batch": args.batch, "size": args.size, "rows": rows}
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
