"""Benchmark of ``gkaan predict --timeline`` (not a test; run by hand on a quiet machine).

Prints, in one run with the default model (kth-lite0) on ../shared/data/clips/arm_wrestling.mp4
(looped for longer inputs):

- throughput: frames/s of ``predict_timeline`` (default windows: the model's 30-frame clip
  every 15 frames) against ``predict_video`` on the same frames and clips (dense 30/15
  sampling without a clip limit, so predict also runs every frame), and their ratio (target
  >= 0.9): the median of ``--rounds`` alternating rounds, so a load that changes during the
  run slows both alike;
- memory: peak RSS of a fresh process running the timeline of a short and of a long input,
  and their ratio (target <= 1.2).

    python benchmarks/bench_timeline.py            # 60 s throughput; 1 and 20 minute RSS
    python benchmarks/bench_timeline.py --quick    # 10 s throughput; 10 s and 20 s RSS
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench_predict import SOURCE, loop_video

from gkaan_cli.config import MAX_CLIPS, SamplingConfig
from gkaan_cli.engine.predict import Predictor
from gkaan_cli.engine.timeline import predict_timeline
from gkaan_cli.model.gkaan import GKAAN


def rss_child(video: Path, precision: str) -> None:
    """Run the timeline of ``video`` in this (fresh) process; print JSON: peak RSS, seconds."""
    predictor = Predictor(GKAAN.from_pretrained("kth-lite0"), device="cpu", precision=precision)
    start = time.perf_counter()
    timeline = predict_timeline(predictor, video)
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - start,
                "frames": timeline.info.num_frames,
                "windows": len(timeline.windows),
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short inputs (a smoke run)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--precision", default="auto", help="auto (default), fp32 or bf16")
    parser.add_argument("--rounds", type=int, default=3, help="alternating throughput rounds")
    parser.add_argument("--rss-child", metavar="VIDEO", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.rss_child:
        rss_child(Path(args.rss_child), args.precision)
        return
    speed_s, short_s, long_s = (10, 10, 20) if args.quick else (60, 60, 1200)
    model = GKAAN.from_pretrained("kth-lite0")
    every_frame = SamplingConfig(mode="dense", clip_len=30, stride=15, max_clips=MAX_CLIPS)
    predictor = Predictor(model, device="cpu", precision=args.precision, sampling=every_frame)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, kth-lite0, CPU")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        video = loop_video(SOURCE, work / f"loop_{speed_s}s.mp4", speed_s)
        predictor.predict_video(video)  # warm-up
        ratios = []
        for _ in range(args.rounds):  # alternating, so a changing load slows both alike
            start = time.perf_counter()
            prediction = predictor.predict_video(video)
            predict_rate = prediction.processed_frames / (time.perf_counter() - start)
            start = time.perf_counter()
            timeline = predict_timeline(predictor, video)
            timeline_rate = timeline.processed_frames / (time.perf_counter() - start)
            ratios.append(timeline_rate / predict_rate)
            print(f"predict: {predict_rate:.1f} frames/s; timeline: {timeline_rate:.1f} frames/s")
        print(
            f"input: {prediction.info.num_frames} frames; predict {len(prediction.clips)} clips, "
            f"timeline {len(timeline.windows)} windows of "
            f"{timeline.spec.window_seconds:.2f} s every {timeline.spec.hop_seconds:.2f} s"
        )
        print(
            f"ratio timeline / predict: median {statistics.median(ratios):.2f} of "
            f"{', '.join(f'{r:.2f}' for r in ratios)} (target >= 0.9)"
        )

        peaks = []
        for seconds in (short_s, long_s):
            looped = loop_video(SOURCE, work / f"loop_{seconds}s.mp4", seconds)
            command = [sys.executable, __file__, "--rss-child", str(looped)]
            command += ["--precision", args.precision]
            if args.threads:
                command += ["--threads", str(args.threads)]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            child = json.loads(out.strip().splitlines()[-1])
            peaks.append(child["peak_rss_mib"])
            print(
                f"peak RSS, {seconds} s input ({child['frames']} frames, {child['windows']} "
                f"windows): {child['peak_rss_mib']:.0f} MiB ({child['seconds']:.1f} s)"
            )
        print(f"ratio peak RSS long / short: {peaks[1] / peaks[0]:.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
