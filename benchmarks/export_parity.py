"""Does an exported model answer as the PyTorch model? Every video under the given folders
through both, with the same sampling, decoding and OOD verdict.

Run: ``nice python benchmarks/export_parity.py EXPORT_DIR [--model kth-lite0]
[--data ../shared/data] [--threads 2] [--json out.json]``.

Prints, per video, the top-1 of each runtime and the largest probability gap (fused, every
stream, every clip), then the totals: top-1 and in/out verdict agreement, the largest gap.
PyTorch runs in fp32 (``--precision fp32``), ONNX Runtime as exported.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from gkaan_cli.engine.inputs import expand_inputs
from gkaan_cli.engine.predict import Predictor, VideoPrediction
from gkaan_cli.errors import BadVideoError
from gkaan_cli.model.gkaan import GKAAN
from gkaan_cli.model.onnx_runtime import load_export


def gap(a: VideoPrediction, b: VideoPrediction) -> float:
    """Largest absolute difference over the video's fused and per-stream probabilities and
    every clip's."""
    pairs = [(a.probs, b.probs)] + [(a.stream_probs[k], b.stream_probs[k]) for k in a.stream_probs]
    for ca, cb in zip(a.clips, b.clips, strict=True):
        pairs.append((ca.probs, cb.probs))
        pairs += [(ca.stream_probs[k], cb.stream_probs[k]) for k in ca.stream_probs]
    return max(float(np.abs(x - y).max()) for x, y in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", type=Path)
    parser.add_argument("--model", default="kth-lite0")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    paths, _ = expand_inputs([str(args.data)])
    torch_run = Predictor(
        GKAAN.from_pretrained(args.model), device="cpu", precision="fp32", threads=args.threads
    )
    ort_run = Predictor(load_export(args.export), device="cpu", threads=args.threads)
    rows = []
    seconds = {"torch": 0.0, "onnx": 0.0}
    for path in paths:  # one video at a time through both, so a partial run reports
        start = time.perf_counter()
        (a,) = torch_run.predict_many([path])
        mid = time.perf_counter()
        (b,) = ort_run.predict_many([path])
        seconds["torch"] += mid - start
        seconds["onnx"] += time.perf_counter() - mid
        if isinstance(a, BadVideoError) or isinstance(b, BadVideoError):
            row: dict[str, Any] = {
                "video": str(path),
                "error": str(a if isinstance(a, Exception) else b),
            }
            print(f"{path}: error {row['error']}", flush=True)
        else:
            row = {
                "video": str(path),
                "top1_torch": a.top_k(1)[0][0],
                "top1_onnx": b.top_k(1)[0][0],
                "in_torch": a.in_distribution,
                "in_onnx": b.in_distribution,
                "ood_gap": None
                if a.ood_score is None or b.ood_score is None
                else abs(a.ood_score - b.ood_score),
                "max_gap": gap(a, b),
            }
            print(
                f"{Path(row['video']).name:45s} {row['top1_torch']:>16s} {row['top1_onnx']:>16s} "
                f"in {row['in_torch']!s:5s} {row['in_onnx']!s:5s} gap {row['max_gap']:.2e}",
                flush=True,
            )
        rows.append(row)
    good = [r for r in rows if "error" not in r]
    summary = {
        "videos": len(good),
        "errors": len(rows) - len(good),
        "top1_same": sum(r["top1_torch"] == r["top1_onnx"] for r in good),
        "verdict_same": sum(r["in_torch"] == r["in_onnx"] for r in good),
        "max_prob_gap": max(r["max_gap"] for r in good),
        "max_ood_score_gap": max((r["ood_gap"] or 0.0) for r in good),
        "torch_seconds": seconds["torch"],
        "onnx_seconds": seconds["onnx"],
    }
    print(json.dumps(summary, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps({"summary": summary, "videos": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
