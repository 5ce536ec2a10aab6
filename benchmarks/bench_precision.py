"""Benchmark: ``--precision auto`` against fp32 on every video in ../shared/data (run by hand).

Prints, in one run with the default model: top-1 agreement of auto with fp32 over all videos
(target >= 0.99), the largest gap between their fused probabilities (and which video), each
disagreement with fp32's own top-1/top-2 margin (a near-tie flips under any rounding), the
precision ``auto`` chose, and end-to-end frames/s of each with their ratio (the speed-up).
Both precisions run in the same process, video by video in turn (fp32 then auto), so a load
that changes during the run slows both alike; the load average is printed with the result.

    python benchmarks/bench_precision.py [--threads N] [--device cuda] [--fp32-blocks K]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from gkaan_cli.engine.inputs import expand_inputs
from gkaan_cli.engine.predict import Predictor, VideoPrediction
from gkaan_cli.model import precision as precision_module
from gkaan_cli.model.gkaan import GKAAN
from gkaan_cli.model.locate import resolve_checkpoint

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def timed(predictor: Predictor, path: Path) -> tuple[VideoPrediction, float]:
    """A prediction and its seconds."""
    start = time.perf_counter()
    prediction = predictor.predict_video(path)
    return prediction, time.perf_counter() - start


def margin(probs: np.ndarray) -> float:
    """Top-1 minus top-2 probability."""
    top = np.sort(probs)[-2:]
    return float(top[1] - top[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="*", default=[str(DATA)])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--fp32-blocks", type=int, default=precision_module.BF16_FP32_BLOCKS)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    precision_module.BF16_FP32_BLOCKS = args.fp32_blocks
    paths, _ = expand_inputs(args.inputs)
    model = GKAAN.from_pretrained(resolve_checkpoint(None))
    fp32 = Predictor(model, device=args.device, precision="fp32", threads=args.threads)
    auto = Predictor(model, device=args.device, precision="auto", threads=args.threads)
    timed(fp32, paths[0]), timed(auto, paths[0])  # warm-up (oneDNN kernels)
    load_before = os.getloadavg()[0]
    fp32_s = auto_s = 0.0
    pairs: list[tuple[VideoPrediction, VideoPrediction]] = []
    for path in paths:
        reference, seconds = timed(fp32, path)
        fp32_s += seconds
        candidate, seconds = timed(auto, path)
        auto_s += seconds
        pairs.append((reference, candidate))
    frames = sum(a.processed_frames for a, _ in pairs)
    agree = [a.top_k(1)[0][0] == b.top_k(1)[0][0] for a, b in pairs]
    gaps = [float(np.abs(a.probs - b.probs).max()) for a, b in pairs]
    worst = int(np.argmax(gaps))
    result = {
        "videos": len(paths),
        "frames": frames,
        "device": str(auto.device),
        "auto_precision": auto.precision,
        "fp32_blocks": args.fp32_blocks,
        "top1_agreement": sum(agree) / len(agree),
        "disagreements": [
            {"video": str(p), "fp32_margin": margin(a.probs), "gap": gap}
            for p, (a, _), ok, gap in zip(paths, pairs, agree, gaps, strict=True)
            if not ok
        ],
        "max_prob_gap": gaps[worst],
        "max_gap_video": str(paths[worst]),
        "fp32_frames_per_s": frames / fp32_s,
        "auto_frames_per_s": frames / auto_s,
        "speedup": fp32_s / auto_s,
        "threads": torch.get_num_threads(),
        "load_average": [load_before, os.getloadavg()[0]],
    }
    print(json.dumps(result, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
