"""Benchmark of ``gkaan predict`` over many short videos (not a test; run by hand).

Prints, in one run with the default model (kth-lite0) and default batch size (32): frames/s
of ``Predictor.predict_many`` over 50 short videos (24 frames each, cut from
../shared/data/clips/arm_wrestling.mp4: fewer frames than one batch) against
``Predictor.predict_video`` over one long video (the source looped to 1,200 frames) that needs
as many frames as the 50 together, and their ratio (target >= 0.9: probing, opening and
decoding the next video must not leave the backbone idle, and batches must span videos).
For reference it also times ``predict_video`` on each short video in turn (no overlap, one
partial batch per video: what ``predict_many`` did before it was pipelined).
Every video is re-encoded the same way (H.264, yuv420p, source size), so a frame costs the
same to decode in both. Sampling is dense 30/15 without a clip limit, so the long video needs
every frame; a short video (shorter than one clip) needs every frame under any dense limit,
the default's included. Each side runs ``--repeat`` times, alternating; the best is kept.

    python benchmarks/bench_many.py                      # fp32
    python benchmarks/bench_many.py --precision bf16
    python benchmarks/bench_many.py --json many.json     # also write the figures
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import av
import numpy as np
import torch
from bench_predict import SOURCE

from gkaan_cli.config import MAX_CLIPS, SamplingConfig
from gkaan_cli.engine.predict import Predictor, VideoPrediction
from gkaan_cli.model.gkaan import GKAAN
from gkaan_cli.video.sampling import frames_needed


def source_frames(source: Path) -> list[np.ndarray]:
    """Every frame of ``source`` as RGB arrays at its own size."""
    with av.open(str(source)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def encode(path: Path, frames: list[np.ndarray], fps: int) -> Path:
    """Write ``frames`` as H.264 (yuv420p) at ``fps``."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def timed(run: Callable[[], Iterable[object]]) -> tuple[float, int]:
    """Seconds taken by ``run()`` (predictions) and the frames it processed."""
    start = time.perf_counter()
    results = list(run())
    seconds = time.perf_counter() - start
    bad = [r for r in results if not isinstance(r, VideoPrediction)]
    if bad:
        raise SystemExit(f"unexpected bad video: {bad[0]}")
    return seconds, sum(r.processed_frames for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--precision", default="auto", help="auto (default), fp32 or bf16")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--videos", type=int, default=50, help="short videos")
    parser.add_argument("--frames", type=int, default=24, help="frames per short video")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each side (best kept)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    every_frame = SamplingConfig(mode="dense", clip_len=30, stride=15, max_clips=MAX_CLIPS)
    predictor = Predictor(
        GKAAN.from_pretrained("kth-lite0"),
        device="cpu",
        precision=args.precision,
        batch_size=args.batch_size,
        sampling=every_frame,
    )
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, kth-lite0, "
        f"{predictor.precision}, batch {args.batch_size}"
    )
    frames = source_frames(SOURCE)
    fps = 28
    total = args.videos * args.frames
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        step = max(1, (len(frames) - args.frames) // args.videos)
        shorts = [
            encode(work / f"short_{k:02d}.mp4", frames[k * step : k * step + args.frames], fps)
            for k in range(args.videos)
        ]
        long = encode(work / "long.mp4", [frames[i % len(frames)] for i in range(total)], fps)
        short_needed = len(shorts) * len(frames_needed(args.frames, every_frame, train=False))
        long_needed = len(frames_needed(total, every_frame, train=False))
        print(
            f"needed frames: {args.videos} short videos x {args.frames} = {short_needed}; "
            f"one long video of {total} frames: {long_needed}"
        )
        predictor.predict_video(shorts[0])  # warm-up
        many, single, each = [], [], []
        for _ in range(args.repeat):
            many.append(timed(lambda: predictor.predict_many(shorts)))
            single.append(timed(lambda: [predictor.predict_video(long)]))
            each.append(timed(lambda: [predictor.predict_video(video) for video in shorts]))
        many_s, many_frames = min(many)
        long_s, long_frames = min(single)
        each_s, each_frames = min(each)
    many_rate, long_rate = many_frames / many_s, long_frames / long_s
    each_rate = each_frames / each_s
    print(f"predict_many, {args.videos} short: {many_rate:.1f} frames/s ({many_s:.2f} s)")
    print(f"predict, 1 long: {long_rate:.1f} frames/s ({long_s:.2f} s)")
    print(f"predict_video on each short in turn: {each_rate:.1f} frames/s ({each_s:.2f} s)")
    print(f"ratio many / long: {many_rate / long_rate:.2f} (target >= 0.9)")
    print(f"ratio one at a time / long: {each_rate / long_rate:.2f}")
    if args.json is not None:
        result = {
            "precision": predictor.precision,
            "threads": torch.get_num_threads(),
            "batch_size": args.batch_size,
            "videos": args.videos,
            "frames_per_video": args.frames,
            "many_frames": many_frames,
            "long_frames": long_frames,
            "many_frames_per_s": many_rate,
            "long_frames_per_s": long_rate,
            "one_at_a_time_frames_per_s": each_rate,
            "ratio": many_rate / long_rate,
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
