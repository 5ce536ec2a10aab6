"""Benchmark of ``gkaan predict`` on a real video (not a test; run by hand).

Prints, in one run on ../shared/data/clips/arm_wrestling.mp4 (looped for longer inputs):
end-to-end predict frames/s; backbone-only frames/s on pre-decoded tensors (the compute
limit); their ratio (target >= 0.9 on CPU fp32); the speedup against a naive pipeline that
decodes and runs each clip on its own; peak RSS of a fresh process predicting a 1-minute and
a 10-minute input. Paper configuration: ResNet-34 early fusion, 3-layer SRU 1024, dense
30/15 sampling, at most 20 clips (random weights: speed does not depend on them).

    python benchmarks/bench_predict.py            # full (ResNet-34, 1 and 10 minutes)
    python benchmarks/bench_predict.py --quick    # ResNet-18, 20 s and 2 minutes
    python benchmarks/bench_predict.py --device cuda --precision fp16 --json out.json
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from gkaan_cli.config import GKAANConfig, SamplingConfig
from gkaan_cli.engine.predict import Predictor
from gkaan_cli.model.gkaan import GKAAN
from gkaan_cli.video.reader import probe_video, read_frames
from gkaan_cli.video.sampling import sample_clips
from gkaan_cli.video.transforms import ClipTransform

SOURCE = Path(__file__).resolve().parents[1].parent / "shared/data/clips/arm_wrestling.mp4"


def loop_video(source: Path, target: Path, seconds: float) -> Path:
    """Write ``source`` repeated to ``seconds`` long by re-muxing its packets (no re-encode)."""
    with av.open(str(source)) as src:
        stream = src.streams.video[0]
        packets = [p for p in src.demux(stream) if p.size]
        stamps = [(p.pts, p.dts) for p in packets]
        span = max(int(p.pts) for p in packets) + int(packets[-1].duration or 1)
        loops = max(1, round(seconds / float(span * stream.time_base)))
        with av.open(str(target), "w", format="mp4") as out:
            copy = out.add_stream_from_template(stream)
            for loop in range(loops):
                for packet, (pts, dts) in zip(packets, stamps, strict=True):
                    packet.pts = pts + loop * span
                    packet.dts = None if dts is None else dts + loop * span
                    packet.time_base = stream.time_base
                    packet.stream = copy
                    out.mux(packet)
    return target


def paper_config(backbone: str, max_clips: int) -> GKAANConfig:
    """Early fusion, SRU 3 x 1024, dense 30/15 (docs/model.md, docs/protocol.md#sampling)."""
    sampling = SamplingConfig(clip_len=30, stride=15, max_clips=max_clips)
    return GKAANConfig(num_classes=101, backbone=backbone, sampling=sampling)  # type: ignore[arg-type]


def synchronize(device: torch.device) -> None:
    """Wait for the GPU's queued work (timings on CUDA), nothing on CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def backbone_only(predictor: Predictor, frames: torch.Tensor, batch_size: int) -> float:
    """Frames/s of ``extract_maps`` on pre-decoded, pre-normalised frames (channels_last),
    already on the predictor's device, in its precision."""
    synchronize(predictor.device)
    start = time.perf_counter()
    with torch.inference_mode():
        for first in range(0, len(frames), batch_size):
            predictor.trunk(frames[first : first + batch_size])
    synchronize(predictor.device)
    return len(frames) / (time.perf_counter() - start)


def naive(model: GKAAN, path: Path, device: torch.device) -> float:
    """Seconds for the naive pipeline: decode each clip separately, ``model(clip)`` per clip."""
    info = probe_video(path)
    model = model.eval().to(device)
    transform = ClipTransform(model.config.preprocess, train=False)
    height, width = model.config.preprocess.resize
    start = time.perf_counter()
    with torch.inference_mode():
        for clip in sample_clips(info.num_frames, model.config.sampling, fps=info.fps):
            images = [f.image for f in read_frames(path, size=(width, height), indices=clip.frames)]
            model(transform(torch.from_numpy(np.stack(images)).to(device))[None])
    synchronize(device)
    return time.perf_counter() - start


def rss_child(checkpoint: Path, video: Path, device: str, precision: str) -> None:
    """Predict ``video`` in this (fresh) process and print JSON with peak RSS and seconds."""
    model = GKAAN.from_pretrained(checkpoint)
    predictor = Predictor(model, device=device, precision=precision)
    start = time.perf_counter()
    prediction = predictor.predict_video(video)
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - start,
                "frames": prediction.info.num_frames,
                "clips": len(prediction.clips),
                "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="ResNet-18, 20 s and 2 min inputs")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-clips", type=int, default=20, help="clips per video (paper: 20)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--precision", default="fp32", help="fp32, bf16, fp16 (CUDA) or auto")
    parser.add_argument("--video", type=Path, default=SOURCE, help="the input to loop")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument(
        "--rss-child", nargs=2, metavar=("CHECKPOINT", "VIDEO"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.rss_child:
        rss_child(Path(args.rss_child[0]), Path(args.rss_child[1]), args.device, args.precision)
        return
    source: Path = args.video
    backbone = "resnet18" if args.quick else "resnet34"
    short_s, long_s = (20, 120) if args.quick else (60, 600)
    torch.manual_seed(0)
    model = GKAAN(paper_config(backbone, args.max_clips)).eval()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        checkpoint = model.save_pretrained(work / "model")
        info = probe_video(source)
        predictor = Predictor(
            model, device=args.device, precision=args.precision, batch_size=args.batch_size
        )
        device = predictor.device
        print(
            f"torch {torch.__version__}, {torch.get_num_threads()} threads, {backbone}, "
            f"{predictor.precision}, {device}"
        )
        predictor.predict_video(source)  # warm-up
        start = time.perf_counter()
        prediction = predictor.predict_video(source)
        predict_s = time.perf_counter() - start
        processed = len({i for c in prediction.clips for i in c.frames})
        fed = sum(len(c.frames) for c in prediction.clips)
        print(f"input: {source.name}, {info.num_frames} frames, {len(prediction.clips)} clips")
        print(f"predict end to end: {processed / predict_s:.1f} frames/s ({predict_s:.2f} s)")

        height, width = model.config.preprocess.resize
        images = [f.image for f in read_frames(source, size=(width, height))]
        frames = ClipTransform(model.config.preprocess, train=False)(
            torch.from_numpy(np.stack(images)).to(device)
        )[:processed]
        limit = backbone_only(predictor, frames, args.batch_size)
        print(f"backbone only (pre-decoded): {limit:.1f} frames/s")
        print(f"ratio predict / backbone limit: {processed / predict_s / limit:.2f}")

        naive_s = naive(GKAAN.from_pretrained(checkpoint), source, device)
        print(
            f"naive per-clip pipeline: {naive_s:.2f} s ({fed} backbone frames); "
            f"speedup {naive_s / predict_s:.2f}x"
        )
        result = {
            "device": str(device),
            "precision": predictor.precision,
            "backbone": backbone,
            "threads": torch.get_num_threads(),
            "input": source.name,
            "frames": processed,
            "predict_frames_per_s": processed / predict_s,
            "backbone_frames_per_s": limit,
            "ratio": processed / predict_s / limit,
            "naive_speedup": naive_s / predict_s,
            "peak_rss": [],
        }

        for seconds in (short_s, long_s):
            video = loop_video(source, work / f"loop_{seconds}s.mp4", seconds)
            command = [sys.executable, __file__, "--rss-child", str(checkpoint), str(video)]
            command += ["--device", args.device, "--precision", args.precision]
            if args.threads:
                command += ["--threads", str(args.threads)]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            child = json.loads(out.strip().splitlines()[-1])
            result["peak_rss"].append(child | {"input_s": seconds})
            print(
                f"peak RSS, {seconds} s input ({child['frames']} frames, {child['clips']} clips): "
                f"{child['peak_rss_mib']:.0f} MiB ({child['seconds']:.1f} s)"
            )
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
