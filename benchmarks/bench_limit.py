"""Benchmark: ``predict`` end to end against its own limit, in fp32 and bf16 (run by hand).

The limit is the same Predictor's backbone (``Predictor.trunk``, in its precision) and heads
(``ClipScorer``) on tensors made beforehand (decoded, resized, cropped and normalised): what
predict would reach if decoding and the clip transform cost nothing. The ratio end to end /
limit says how much they and the hand-over cost. Both precisions and both measures run in
one process, in turn, ``--repeats`` times: each end-to-end run is followed by a limit run,
and the median of the ratios is given, so a load that changes slows both alike. The load
average is printed with the result.

    python benchmarks/bench_limit.py [--video V] [--threads N] [--repeats 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from gkaan_cli.engine.clip_scorer import ClipScorer
from gkaan_cli.engine.predict import Predictor
from gkaan_cli.model.gkaan import GKAAN
from gkaan_cli.video.reader import probe_video, read_frames
from gkaan_cli.video.sampling import sample_clips

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
VIDEO = DATA / "kth-mini" / "boxing" / "person02_boxing_d4_uncomp.avi"


def end_to_end(predictor: Predictor, video: Path) -> tuple[float, int]:
    """Seconds of ``predict_video`` and the frames it ran through the backbone."""
    start = time.perf_counter()
    prediction = predictor.predict_video(video)
    return time.perf_counter() - start, prediction.processed_frames


def limit(predictor: Predictor, video: Path, images: np.ndarray, needed: list[int]) -> float:
    """Seconds of the transform, backbone and heads of ``video``'s clips on decoded frames."""
    info = probe_video(video)
    clips = [c.frames for c in sample_clips(info.num_frames, predictor.sampling, fps=info.fps)]
    scorer = ClipScorer(predictor.model, predictor.ood, video, info.fps)
    size = predictor.batch_size
    with torch.inference_mode():  # the clip transform made beforehand too: pre-made tensors
        tensors = predictor.transform(torch.from_numpy(images).to(predictor.device))
    start = time.perf_counter()
    with torch.inference_mode():
        for first in range(0, len(needed), size):
            rows = needed[first : first + size]
            maps = predictor.trunk(tensors[first : first + size])
            scorer.add_maps(rows, [i / info.fps for i in rows], maps)
        scorer.score(clips)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--video", type=Path, default=VIDEO)
    parser.add_argument("--model", default="kth-lite0")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    model = GKAAN.from_pretrained(args.model)
    results = {}
    for precision in ("fp32", "bf16"):
        predictor = Predictor(model, device="cpu", precision=precision, threads=args.threads)
        info = probe_video(args.video)
        clips = sample_clips(info.num_frames, predictor.sampling, fps=info.fps)
        needed = sorted({i for c in clips for i in c.frames})
        height, width = predictor.config.preprocess.resize
        images = np.stack(
            [f.image for f in read_frames(args.video, size=(width, height), indices=needed)]
        )
        inputs = (args.video, images, needed)
        end_to_end(predictor, args.video)  # warm-up
        pairs = []  # one end-to-end run, then one limit run, back to back: the same load
        for _ in range(args.repeats):
            pairs.append((end_to_end(predictor, args.video)[0], limit(predictor, *inputs)))
        e2e = float(np.median([a for a, _ in pairs]))
        best = float(np.median([b for _, b in pairs]))
        results[precision] = {
            "frames": len(needed),
            "predict_frames_per_s": len(needed) / e2e,
            "limit_frames_per_s": len(needed) / best,
            "ratio": float(np.median([b / a for a, b in pairs])),
            "ratios": [b / a for a, b in pairs],
        }
        row = results[precision]
        print(
            f"{precision}: predict {row['predict_frames_per_s']:.1f} frames/s, its limit "
            f"{row['limit_frames_per_s']:.1f} frames/s, ratio {row['ratio']:.2f} "
            f"({len(needed)} frames of {args.video.name})"
        )
    load = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load {load:.2f}")
    if args.json is not None:
        args.json.write_text(json.dumps(results | {"load": load}, indent=2) + "\n")


if __name__ == "__main__":
    main()
