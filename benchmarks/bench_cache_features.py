"""Benchmark: ``prepare --features`` frames/s against predict's frames/s, same trunk, same
precision, same videos, one run (not a test; run by hand). Target: ratio >= 0.8.

Prepares the first ``--videos`` videos of kth-mini with EfficientNet-Lite0 features into a
temporary folder (decode, JPEG frame shard, trunk, fp16 feature shard, hashes, manifest),
then predicts the same videos with the default model (the same Lite0 trunk) and prints
frames through the trunk per second of each, their ratio, and the load average.

    python benchmarks/bench_cache_features.py [--videos 4] [--precision auto|fp32|bf16]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from gkaan_cli.data.manifest import load_manifest
from gkaan_cli.data.prepare import FeatureOptions, PrepareOptions, prepare
from gkaan_cli.engine.predict import Predictor
from gkaan_cli.model.gkaan import GKAAN
from gkaan_cli.model.locate import resolve_checkpoint

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "kth-mini"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()
    model = GKAAN.from_pretrained(resolve_checkpoint(None))
    predictor = Predictor(model, precision=args.precision)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="gkaan-bench-") as tmp:
        options = PrepareOptions(
            features=FeatureOptions("efficientnet_lite0", precision=args.precision),
            max_videos=args.videos,
        )
        report = prepare(args.data, Path(tmp) / "prep", options)
        paths = [Path(v.path) for v in load_manifest(Path(tmp) / "prep").records()]
    cache_fps = report.cached_frames / report.seconds
    predictor.predict_video(paths[0])  # warm-up
    start = time.perf_counter()
    frames = sum(predictor.predict_video(path).processed_frames for path in paths)
    predict_fps = frames / (time.perf_counter() - start)
    result = {
        "videos": len(paths),
        "precision": predictor.precision,
        "cached_frames": report.cached_frames,
        "cache_frames_per_s": cache_fps,
        "predict_frames": frames,
        "predict_frames_per_s": predict_fps,
        "ratio": cache_fps / predict_fps,
        "load_average": [load_before, os.getloadavg()[0]],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
