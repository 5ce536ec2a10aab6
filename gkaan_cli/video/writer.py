"""Write H.264 MP4 videos that browsers play, at the exact source frame rate.

Output: libx264, yuv420p, ``movflags=+faststart``. yuv420p needs even dimensions: an odd width
or height is padded by repeating the last column/row (see :attr:`VideoWriter.size`). The file
appears only when writing succeeded: frames go to a hidden temp file beside the target that
is renamed over it on a clean close and deleted on error
(:func:`gkaan_cli.fileio.atomic_write_path`: the output gets the usual ``0o666 & ~umask`` mode).
"""

from __future__ import annotations

import contextlib
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from ..errors import OutputError
from ..fileio import atomic_write_path

__all__ = ["MAX_WRITE_FPS", "MIN_WRITE_FPS", "VideoWriter", "encode_png", "exact_rate"]

#: The slowest rate written: one frame per hour (FFmpeg's MP4 muxer refuses a day).
MIN_WRITE_FPS = Fraction(1, 3600)
#: The fastest rate written.
MAX_WRITE_FPS = Fraction(1000)

#: NTSC-style rates (24000/1001, 30000/1001, 60000/1001...) are recognised from floats
#: within this many frames per second.
_NTSC_TOLERANCE = 1e-3


def exact_rate(fps: float | Fraction) -> Fraction:
    """The exact rate of ``fps``: Fractions pass through, 29.97 -> 30000/1001, 25.0 -> 25,
    slower than a frame a second by its seconds per frame (1/3600 -> 1/3600)."""
    if isinstance(fps, Fraction):
        rate = fps
    elif 0 < fps < 1:
        rate = 1 / Fraction(1 / fps).limit_denominator(1001)
    else:
        ntsc = Fraction(round(fps * 1.001) * 1000, 1001)
        near_integer = abs(fps - round(fps)) < _NTSC_TOLERANCE
        if not near_integer and abs(float(ntsc) - fps) < _NTSC_TOLERANCE:
            rate = ntsc
        else:
            rate = Fraction(fps).limit_denominator(1001)
    if rate <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return rate


class VideoWriter:
    """Context manager writing RGB frames to an H.264/yuv420p MP4 atomically.

    Args:
        path: the ``.mp4`` file to create (replaced if it exists).
        fps: the source frame rate (a Fraction is kept exactly; see :func:`exact_rate`).
        size: ``(width, height)`` of the frames passed to :meth:`write`.
        crf: x264 quality (lower is better, 18-23 is visually good).

    Raises:
        OutputError: ``fps`` outside :data:`MIN_WRITE_FPS` .. :data:`MAX_WRITE_FPS`.
    """

    def __init__(
        self, path: str | Path, *, fps: float | Fraction, size: tuple[int, int], crf: int = 20
    ) -> None:
        width, height = size
        if width < 1 or height < 1:
            raise ValueError(f"size must be positive (width, height), got {size}")
        self.path = Path(path)
        self.fps = exact_rate(fps) if fps > 0 else Fraction(0)
        if not MIN_WRITE_FPS <= self.fps <= MAX_WRITE_FPS:
            raise OutputError(
                self.path,
                f"cannot write a video at {float(fps):.3g} fps (the writer takes one frame "
                f"per hour to {MAX_WRITE_FPS} fps)",
            )
        self.input_size = (width, height)
        #: (width, height) of the written video: ``size`` rounded up to even numbers.
        self.size = (width + width % 2, height + height % 2)
        self.frames_written = 0
        self._crf = crf
        self._atomic: contextlib.AbstractContextManager[Path] | None = None
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None

    def __enter__(self) -> VideoWriter:
        atomic = atomic_write_path(self.path)
        temp = atomic.__enter__()
        try:
            self._container = av.open(
                str(temp), "w", format="mp4", options={"movflags": "+faststart"}
            )
        except BaseException as error:
            atomic.__exit__(type(error), error, error.__traceback__)
            raise
        self._atomic = atomic
        stream = self._container.add_stream("libx264", rate=self.fps)
        stream.width, stream.height = self.size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(self._crf), "preset": "fast"}
        self._stream = stream
        return self

    def write(self, image: np.ndarray) -> None:
        """Append one RGB frame, an (H, W, 3) uint8 array of the declared size."""
        if self._container is None or self._stream is None:
            raise RuntimeError("VideoWriter.write called outside its `with` block")
        width, height = self.input_size
        if image.shape != (height, width, 3) or image.dtype != np.uint8:
            raise ValueError(
                f"expected a ({height}, {width}, 3) uint8 image, got {image.shape} {image.dtype}"
            )
        pad = ((0, self.size[1] - height), (0, self.size[0] - width), (0, 0))
        if any(after for _, after in pad):
            image = np.pad(image, pad, mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        self._container.mux(self._stream.encode(frame))
        self.frames_written += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        container, stream, atomic = self._container, self._stream, self._atomic
        self._container = self._stream = self._atomic = None
        if container is None or stream is None or atomic is None:
            return
        error = exc
        if exc is None and self.frames_written == 0:
            error = ValueError(f"{self.path}: no frames were written")
        if error is not None:
            with contextlib.suppress(av.error.FFmpegError, OSError):
                container.close()
            atomic.__exit__(type(error), error, error.__traceback__)
            if exc is None:
                raise error
            return
        try:
            container.mux(stream.encode())
            container.close()
        except BaseException as failure:
            atomic.__exit__(type(failure), failure, failure.__traceback__)
            raise
        atomic.__exit__(None, None, None)


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an RGB image (H, W, 3) uint8, encoded by FFmpeg's PNG encoder (PyAV).

    Args:
        image: the picture, (H, W, 3) uint8 RGB.
    """
    codec = av.CodecContext.create("png", "w")
    codec.height, codec.width = image.shape[:2]
    codec.pix_fmt = "rgb24"
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    return b"".join(bytes(packet) for packet in [*codec.encode(frame), *codec.encode(None)])
