"""Live video sources: standard input (``-``) or an explicit stream URL (docs/predict.md#live).

A live source is only ever named explicitly: ``-`` for standard input (e.g. a camera piped
through ``ffmpeg ... -f mpegts -``) or an ``http(s)://``, ``rtsp://`` or ``udp://`` URL. A path
is never treated as one (a FIFO found in a folder stays refused by
:func:`~gkaan_cli.video.reader.check_video_file`).

Frames follow the reader's conventions (docs/predict.md#frames-and-times) except that times
are counted from the first decoded frame (a stream's timestamps rarely start at 0), and the
frame count is not known in advance. A packet that does not decode is skipped; a demuxer or
network error ends the stream, and :attr:`LiveVideo.dropped` says why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import av
import av.container
import av.video.stream
from av.video.reformatter import VideoReformatter

from ..errors import BadVideoError
from .formats import STDIN, is_live_source
from .reader import Frame, frame_times, stated_fps, to_rgb

__all__ = ["DEFAULT_TIMEOUT", "LIVE_PROTOCOLS", "LiveInfo", "LiveVideo", "live_protocols"]

#: Seconds to wait for the stream to open, and for data once it runs.
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class LiveInfo:
    """What is known when a live source opens: its name, displayed size, rate and codec."""

    source: str
    width: int
    height: int
    fps: float
    codec: str


#: The FFmpeg protocols each live scheme may use (``protocol_whitelist``): the one the user
#: named and what it runs on, never ``file`` (a stream's playlist cannot make FFmpeg read a
#: local file or another kind of address).
LIVE_PROTOCOLS = {
    "http": ("http", "tcp"),
    "https": ("https", "tls", "tcp"),
    "rtsp": ("rtsp", "rtp", "udp", "tcp"),
    "udp": ("udp",),
}


def live_protocols(source: str) -> str:
    """The ``protocol_whitelist`` of a live source: ``pipe`` for ``-``, else its scheme's."""
    if source == STDIN:
        return "pipe"
    return ",".join(LIVE_PROTOCOLS[source.partition("://")[0].lower()])


class LiveVideo:
    """An open live source; :meth:`frames` decodes it until it ends, drops or is closed.

    Args:
        source: ``-`` (standard input) or a URL (see :data:`~gkaan_cli.video.formats.LIVE_SCHEMES`).
        timeout: seconds to wait for the source to open and, later, for data.

    Raises:
        BadVideoError: the source cannot be opened, has no video stream or no usable rate.
    """

    def __init__(self, source: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        if not is_live_source(source):
            raise BadVideoError(source, "not a live source (give - or an http(s)/rtsp/udp URL)")
        self.source = source
        #: Why the stream ended early (a demuxer or network error), None for a clean end.
        self.dropped: str | None = None
        #: Frames decoded so far.
        self.decoded = 0
        url = "pipe:0" if source == STDIN else source
        options = {"protocol_whitelist": live_protocols(source)}
        try:
            self._container: av.container.InputContainer = av.open(
                url, metadata_errors="replace", timeout=(timeout, timeout), options=options
            )
        except (av.error.FFmpegError, OSError, ValueError) as error:
            reason = f"cannot open ({getattr(error, 'strerror', None) or error})"
            raise BadVideoError(source, reason) from None
        if not self._container.streams.video:
            self._container.close()
            raise BadVideoError(source, "no video stream")
        self._stream: av.video.stream.VideoStream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        fps = stated_fps(self._stream)
        if fps <= 0:
            self._container.close()
            raise BadVideoError(source, "unknown frame rate (the stream states none)")
        context = self._stream.codec_context
        self.info = LiveInfo(
            source=source,
            width=context.width,
            height=context.height,
            fps=fps,
            codec=context.name,
        )

    def __enter__(self) -> LiveVideo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the source (idempotent)."""
        self._container.close()

    def frames(
        self,
        *,
        size: tuple[int, int] | None = None,
        wanted: Callable[[int], bool] | None = None,
    ) -> Iterator[Frame]:
        """Decoded frames in presentation order, times from the first frame (seconds).

        Args:
            size: ``(width, height)`` to scale each yielded frame to (FFmpeg's scaler).
            wanted: yield only frames whose index it accepts (others are decoded, not
                converted); None yields every frame.
        """
        reformatter = VideoReformatter()
        origin: float | None = None
        for index, (frame, time) in enumerate(
            frame_times(self._container, self._decoded(), self.info.fps)
        ):
            origin = time if origin is None else origin
            self.decoded = index + 1
            if wanted is None or wanted(index):
                image = to_rgb(frame, size, reformatter)
                yield Frame(index=index, time=time - origin, image=image)

    def _decoded(self) -> Iterator[av.VideoFrame]:
        """Frames until the end of the stream; a packet that fails to decode is skipped."""
        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.error.FFmpegError as error:
                self.dropped = getattr(error, "strerror", None) or str(error)
                return
            try:
                yield from packet.decode()
            except av.error.InvalidDataError:
                continue
