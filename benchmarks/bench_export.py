"""Trunk frames/s of an export under ONNX Runtime (fp32, and int8 when the export has it)
against the PyTorch model's trunk in fp32 and bf16, in one run, as ratios to torch fp32;
and how far each one's maps are from torch fp32 on the same frames.

Run: ``nice python benchmarks/bench_export.py EXPORT_DIR [--model kth-lite0] [--threads 2]
[--batch 16] [--iters 5] [--json out.json]``. Random frames (speed only; the top-1
agreement on real videos is in the export's export.json and benchmarks/export_parity.py).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch

from gkaan_cli.engine.export import INT8_TRUNK_FILE
from gkaan_cli.model.gkaan import GKAAN
from gkaan_cli.model.onnx_runtime import load_export
from gkaan_cli.model.precision import inference_trunk


def frames_per_second(
    run: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, warmup: int, iters: int
) -> float:
    with torch.inference_mode():
        for _ in range(warmup):
            run(x)
        start = time.perf_counter()
        for _ in range(iters):
            run(x)
    return iters * x.shape[0] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", type=Path)
    parser.add_argument("--model", default="kth-lite0")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = GKAAN.from_pretrained(args.model).eval()
    crop = model.config.preprocess.crop
    x = torch.randn(args.batch, 3, crop, crop, generator=torch.Generator().manual_seed(0))
    cpu = torch.device("cpu")
    runs: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "torch fp32": inference_trunk(model.backbone, "fp32", cpu),
        "torch bf16": inference_trunk(model.backbone, "bf16", cpu),
    }
    fp32 = load_export(args.export)
    fp32.manifest = fp32.manifest | {"trunk": "trunk.onnx"}
    fp32.set_threads(args.threads)
    runs["ort fp32"] = fp32.extract_maps
    if (args.export / INT8_TRUNK_FILE).is_file():
        int8 = load_export(args.export)
        int8.manifest = int8.manifest | {"trunk": INT8_TRUNK_FILE}
        int8.set_threads(args.threads)
        runs["ort int8"] = int8.extract_maps
    with torch.inference_mode():
        reference = runs["torch fp32"](x).float()
    results = {}
    for name, run in runs.items():
        fps = frames_per_second(run, x, warmup=args.warmup, iters=args.iters)
        with torch.inference_mode():
            diff = float((run(x).float() - reference).abs().max())
        results[name] = {"frames_per_s": fps, "max_abs_diff_vs_torch_fp32": diff}
    base = results["torch fp32"]["frames_per_s"]
    print(
        f"trunk {model.config.backbone} {crop}x{crop}, batch {args.batch}, {args.threads} threads"
    )
    for name, r in results.items():
        r["ratio_vs_torch_fp32"] = r["frames_per_s"] / base
        print(
            f"{name:11s} {r['frames_per_s']:7.1f} frames/s  x{r['ratio_vs_torch_fp32']:.2f}  "
            f"max |maps - torch fp32| {r['max_abs_diff_vs_torch_fp32']:.2e}"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
