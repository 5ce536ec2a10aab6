"""Frame cache format benchmark: raw uint8 ``.npy`` (mmap) against per-frame JPEG q90 shards.

Decodes real KTH videos at 256x256 (the reader's scaler), stores every frame in both formats,
then reads random 30-frame clips as a training loop does (random video, random start) and
prints bytes per frame, write frames/s and read frames/s for each. Not a test.

    python benchmarks/bench_cache.py [--data ../shared/data/kth-mini] [--videos 6] [--clips 200]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from gkaan_cli.data.frame_cache import read_frame_shard, write_frame_shard
from gkaan_cli.data.sources import discover
from gkaan_cli.video.reader import read_frames

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "kth-mini"


def _read_raw(path: Path, positions: list[int]) -> torch.Tensor:
    frames = np.load(path, mmap_mode="r")
    return torch.from_numpy(np.array(frames[positions[0] : positions[-1] + 1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--videos", type=int, default=6, help="videos to use (one per class)")
    parser.add_argument("--clips", type=int, default=200, help="random clips to read")
    parser.add_argument("--clip-len", type=int, default=30)
    args = parser.parse_args()

    entries = discover(args.data).entries
    by_label = {e.label: e for e in entries}
    chosen = list(by_label.values())[: args.videos]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        videos = [
            np.stack([f.image for f in read_frames(entry.path, size=(256, 256))])
            for entry in chosen
        ]
        counts = [len(frames) for frames in videos]
        total = sum(counts)
        raw_files = [root / f"{i}.npy" for i in range(len(videos))]
        jpeg_files = [root / f"{i}.jpgs" for i in range(len(videos))]
        write_seconds = {}
        for name, files, writer in (
            ("raw", raw_files, np.save),
            ("jpeg", jpeg_files, write_frame_shard),
        ):
            start = time.perf_counter()
            for path, frames in zip(files, videos, strict=True):
                writer(path, frames)
            write_seconds[name] = time.perf_counter() - start
        rng = np.random.default_rng(0)
        plan = []
        for _ in range(args.clips):
            video = int(rng.integers(len(chosen)))
            start = int(rng.integers(counts[video] - args.clip_len + 1))
            plan.append((video, list(range(start, start + args.clip_len))))
        print(f"{len(chosen)} KTH videos, {total} frames at 256x256, {args.clips} random clips")
        for name, key, files, reader in (
            ("raw uint8 .npy (mmap)", "raw", raw_files, _read_raw),
            ("JPEG q90 shard", "jpeg", jpeg_files, read_frame_shard),
        ):
            size = sum(f.stat().st_size for f in files)
            reader(files[plan[0][0]], plan[0][1])  # warm-up
            start = time.perf_counter()
            checksum = 0
            for video, positions in plan:
                checksum += int(reader(files[video], positions)[:, 0, 0, 0].sum())
            elapsed = time.perf_counter() - start
            rate = args.clips * args.clip_len / elapsed
            written = total / write_seconds[key]
            print(
                f"{name:24s} {size / total:10.0f} bytes/frame {written:10.0f} frames/s (write)"
                f" {rate:10.0f} frames/s (read)"
            )


if __name__ == "__main__":
    main()
