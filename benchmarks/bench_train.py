"""Training throughput: head-only (cached conv maps) vs end to end, same model, same machine.

Prints clips/s of one optimizer step (forward + loss + backward + Adam) for the two modes of
``gkaan train`` (``--frozen-backbone`` and ``--end-to-end``) on random clips, and their ratio.

    python benchmarks/bench_train.py --backbone efficientnet_lite0 --clip-len 16 --batch 4
    python benchmarks/bench_train.py --device cuda --batch 16 --json out.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch

from gkaan_cli import GKAAN, GKAANConfig, gkaan_loss
from gkaan_cli.config import SamplingConfig


def _clips_per_second(
    step: Callable[[], None], batch: int, repeats: int, device: torch.device
) -> float:
    def wait() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    step()  # warm-up
    wait()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    wait()
    return batch * repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--clip-len", type=int, default=16)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--sru-hidden", type=int, default=256)
    parser.add_argument("--sru-layers", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = GKAANConfig(
        num_classes=6,
        backbone=args.backbone,
        sru_hidden=args.sru_hidden,
        sru_layers=args.sru_layers,
        sampling=SamplingConfig(clip_len=args.clip_len),
    )
    model = GKAAN(config).train().to(device)
    target = torch.randint(0, 6, (args.batch,), device=device)
    clips = torch.randn(args.batch, args.clip_len, 3, 224, 224, device=device)
    with torch.no_grad():
        maps = model.extract_maps(clips.flatten(0, 1)).unflatten(0, clips.shape[:2])

    heads = [p for name, p in model.named_parameters() if not name.startswith("backbone.")]
    head_opt = torch.optim.Adam(heads, 1e-4)
    full_opt = torch.optim.Adam(model.parameters(), 1e-5)

    def head_step() -> None:
        head_opt.zero_grad()
        gkaan_loss(model.forward_heads(maps), target, config).total.backward()
        head_opt.step()

    def full_step() -> None:
        full_opt.zero_grad()
        gkaan_loss(model(clips), target, config).total.backward()
        full_opt.step()

    head = _clips_per_second(head_step, args.batch, args.repeats, device)
    full = _clips_per_second(full_step, args.batch, args.repeats, device)
    print(
        f"model: {args.backbone}, early fusion, SRU {args.sru_layers}x{args.sru_hidden}, "
        f"{args.clip_len}-frame clips, batch {args.batch}, {device}, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"head-only (cached maps): {head:8.2f} clips/s")
    print(f"end to end (frames):     {full:8.2f} clips/s")
    print(f"ratio head-only / end-to-end: {head / full:.1f}x")
    if args.json is not None:
        result = {
            "device": str(device),
            "backbone": args.backbone,
            "clip_len": args.clip_len,
            "batch": args.batch,
            "head_only_clips_per_s": head,
            "end_to_end_clips_per_s": full,
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
