"""Benchmark: ``--precision auto`` against fp32 on every video in ../shared/data (run by hand).

Prints, in one run with the default model: top-1 agreement of auto with fp32 over all videos
(target >= 0.99), the largest gap between their fused probabilities (and which video), the
precision ``auto`` chose, and end-to-end frames/s of each with their ratio (the speed-up).
Each precision runs over the same videos in the same process, so the ratio is fair.

    python benchmarks/bench_precision.py [--threads N] [--device cuda] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from gkaan_cli.engine.inputs import expand_inputs
from gkaan_cli.engine.predict import Predictor, VideoPrediction
from gkaan_cli.model.gkaan import GKAAN
from gkaan_cli.model.locate import resolve_checkpoint

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def run(predictor: Predictor, paths: list[Path]) -> tuple[list[VideoPrediction], float, int]:
    """Predictions, seconds and frames processed over ``paths``."""
    start = time.perf_counter()
    predictions = [predictor.predict_video(path) for path in paths]
    seconds = time.perf_counter() - start
    return predictions, seconds, sum(p.processed_frames for p in predictions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    paths, _ = expand_inputs([str(args.data)])
    model = GKAAN.from_pretrained(resolve_checkpoint(None))
    fp32 = Predictor(model, device=args.device, precision="fp32", threads=args.threads)
    auto = Predictor(model, device=args.device, precision="auto", threads=args.threads)
    run(auto, paths[:1])  # warm-up (oneDNN kernels)
    reference, fp32_s, frames = run(fp32, paths)
    candidate, auto_s, _ = run(auto, paths)
    pairs = list(zip(reference, candidate, strict=True))
    agree = [a.top_k(1)[0][0] == b.top_k(1)[0][0] for a, b in pairs]
    gaps = [float(np.abs(a.probs - b.probs).max()) for a, b in pairs]
    worst = int(np.argmax(gaps))
    result = {
        "videos": len(paths),
        "frames": frames,
        "device": str(auto.device),
        "auto_precision": auto.precision,
        "top1_agreement": sum(agree) / len(agree),
        "disagreements": [str(p) for p, ok in zip(paths, agree, strict=True) if not ok],
        "max_prob_gap": gaps[worst],
        "max_gap_video": str(paths[worst]),
        "fp32_frames_per_s": frames / fp32_s,
        "auto_frames_per_s": frames / auto_s,
        "speedup": fp32_s / auto_s,
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(result, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
