"""Join the first seconds of several videos into one H.264 MP4 (a test timeline of actions).

``python benchmarks/join_videos.py OUT.mp4 VIDEO... [--seconds 16]`` writes OUT.mp4 at the
first video's frame rate and size (the others resized to it), each input's first
``--seconds`` seconds in turn, and prints where each part starts.
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import av


def join(out: Path, videos: list[Path], seconds: float) -> list[float]:
    """Write ``out``; returns the start time (s) of each part."""
    starts: list[float] = []
    with av.open(str(videos[0])) as first:
        stream = first.streams.video[0]
        rate = Fraction(stream.average_rate or 25)
        width, height = stream.width, stream.height
    frames = 0
    with av.open(str(out), "w") as container:
        video = container.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        for path in videos:
            starts.append(frames / float(rate))
            with av.open(str(path)) as source:
                for n, frame in enumerate(source.decode(video=0)):
                    if n >= round(seconds * rate):
                        break
                    image = frame.reformat(width=width, height=height, format="yuv420p")
                    image.pts = None
                    container.mux(video.encode(image))
                    frames += 1
        container.mux(video.encode(None))
    return starts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("videos", type=Path, nargs="+")
    parser.add_argument("--seconds", type=float, default=16.0)
    args = parser.parse_args()
    starts = join(args.out, args.videos, args.seconds)
    for path, start in zip(args.videos, starts, strict=True):
        print(f"{start:7.2f} s  {path.name}")


if __name__ == "__main__":
    main()
