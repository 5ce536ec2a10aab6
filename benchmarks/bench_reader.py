"""Decode throughput: raw PyAV (rgb24, native size) vs ``read_frames(size=(256, 256))``,
then ``prepare`` throughput on the kth-mini folder.

Run: ``python benchmarks/bench_reader.py [VIDEO ...]`` (defaults to two videos of
../shared/data). Both decoders are measured on the same file in the same run; prints
frames/s and their ratio, then videos/s and frames/s of a fresh ``prepare`` (frame cache only).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av

from gkaan_cli.data.prepare import prepare
from gkaan_cli.video.reader import read_frames

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEFAULT_VIDEOS = [
    DATA / "clips" / "drink_water_1080p.avi",
    DATA / "kth-mini" / "walking" / "person09_walking_d1_uncomp.avi",
]


def raw_pyav(path: Path) -> int:
    """Decode every frame with threaded PyAV and convert it to rgb24 at native size."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for frame in container.decode(stream) if frame.to_ndarray(format="rgb24").size)


def ours(path: Path) -> int:
    """Decode every frame with ``read_frames`` scaled to 256 x 256."""
    return sum(1 for _ in read_frames(path, size=(256, 256)))


def frames_per_second(decode: Callable[[Path], int], path: Path, repeats: int = 5) -> float:
    """Best-of-``repeats`` throughput of ``decode`` on ``path``."""
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        count = decode(path)
        best = max(best, count / (time.perf_counter() - start))
    return best


def main(paths: list[Path]) -> None:
    for path in paths:
        raw = frames_per_second(raw_pyav, path)
        scaled = frames_per_second(ours, path)
        print(
            f"{path.name}: raw PyAV rgb24 native {raw:8.1f} frames/s | "
            f"read_frames 256x256 {scaled:8.1f} frames/s | ratio {scaled / raw:.2f}"
        )
    with tempfile.TemporaryDirectory() as out:
        report = prepare(DATA / "kth-mini", out)
    print(
        f"prepare kth-mini: {report.ok} videos, {report.frames} frames in {report.seconds:.1f} s: "
        f"{report.videos_per_s:.2f} videos/s, {report.frames / report.seconds:.0f} frames/s, "
        f"{report.disk_bytes / report.cached_frames:.0f} bytes per cached frame"
    )


if __name__ == "__main__":
    main([Path(p) for p in sys.argv[1:]] or DEFAULT_VIDEOS)
