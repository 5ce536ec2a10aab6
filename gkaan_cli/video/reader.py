"""Probe and stream-decode videos with PyAV (docs/predict.md#frames-and-times).

Frame index and time (VFR): a frame's ``index`` is its ordinal among the decoded frames in
presentation order (0, 1, 2...), also for variable-frame-rate video. Its ``time`` (seconds) is
strictly increasing and follows this rule:

- AVI stores no presentation timestamps, only decode-order chunk slots: with B-frames FFmpeg
  hands out out-of-order ``pts`` (e.g. 0.04, 0.08, 0.16, 0.12 s) and ``dts`` lagging by the
  decoder delay. AVI is constant-rate by design, so there ``time = index / fps``.
- Other containers: ``time`` is the frame's presentation timestamp (``frame.time``), which
  keeps real variable-rate spacing. A frame without one, or whose timestamp is not after the
  previous frame's time, gets the previous time plus ``1 / fps`` (``index / fps`` when no
  frame has a timestamp).

Frames come out rotated as the display matrix says, so width and height are always the
displayed size.

Frame rate: the stream's average rate, else its guessed rate, else its base rate, taking
the first within [MIN_FPS, MAX_FPS] (1/3600 to 1000 fps); when none is, frames / duration if
that is within the range; otherwise the video is refused ("implausible frame rate"). Times
that come from timestamps do not depend on this rate.

Only regular files are read (:func:`check_video_file`): a FIFO, a device, a socket, a
symbolic link loop or a dangling link is refused before anything is opened.

CUDA decoding (docs/predict.md#gpu-decode): ``read_frames(..., decode="cuda")`` opens the
file with FFmpeg's CUDA (NVDEC) hardware decoder when this process can use one
(:func:`cuda_decode_problem`) and its frames are copied back to system memory, so the rest is
the same as CPU decoding. Where it cannot be used (no CUDA device, an FFmpeg build without it,
a codec NVDEC does not decode, an open that fails) the file is decoded on the CPU and
``on_fallback`` is told why. A file that fails to open on the CPU too raises the CPU's
BadVideoError, so a bad file is reported exactly as with CPU decoding.

Truncated files: decoding stops at the first decoder/demuxer error and every frame decoded
before it is usable. ``probe_video`` counts exactly the frames ``read_frames`` yields: it
trusts the demuxed packet count only when it agrees with the count (or duration) that the
container states, and otherwise counts by decoding.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import av.container
import av.video.stream
import numpy as np
from av.codec.hwaccel import HWAccel, hwdevices_available
from av.video.reformatter import VideoReformatter

from ..errors import BadVideoError
from ..fileio import display_path, regular_file_problem

__all__ = [
    "FILE_DEMUXERS",
    "MAX_FPS",
    "MIN_FPS",
    "NOT_A_CONTAINER",
    "Frame",
    "VideoInfo",
    "check_video_file",
    "cuda_decode_problem",
    "frame_times",
    "probe_video",
    "read_frames",
    "stated_fps",
    "to_rgb",
]

#: Frame rates outside [MIN_FPS, MAX_FPS] are not believed (a stream's stated rate of 0,
#: 1/2^31 or 90000 is a broken header); see :func:`stated_fps`.
MIN_FPS = 1 / 3600
MAX_FPS = 1000.0

#: The only demuxers a video file is opened with (FFmpeg's ``format_whitelist``): containers
#: and raw streams that read the file itself. Playlists and lists of other files (hls, dash,
#: concat, image2 sequences...) are refused before FFmpeg opens anything they name; the
#: ``*_pipe`` still-image demuxers are kept so a picture is refused as "a still image".
FILE_DEMUXERS = (
    "mov,mp4,m4a,3gp,3g2,mj2",
    "matroska,webm",
    "avi",
    "asf",
    "flv",
    "mpeg",
    "mpegts",
    "mpegvideo",
    "m4v",
    "h261",
    "h263",
    "h264",
    "hevc",
    "vvc",
    "vc1",
    "obu",
    "av1",
    "ivf",
    "mjpeg",
    "mxf",
    "nut",
    "ogg",
    "rm",
    "dv",
    "gif",
    "yuv4mpegpipe",
    "png_pipe",
    "jpeg_pipe",
    "bmp_pipe",
    "webp_pipe",
    "tiff_pipe",
)
#: FFmpeg's options for opening a file: its demuxers above, and no protocol but ``file``
#: (a file can never make FFmpeg read another file, a FIFO or a network address).
_FILE_OPTIONS = {"format_whitelist": ",".join(FILE_DEMUXERS), "protocol_whitelist": "file"}

#: Why a file whose format is not one of :data:`FILE_DEMUXERS` is refused.
NOT_A_CONTAINER = (
    "not a video container gkaan opens (playlists, concat lists and image sequences are "
    "refused: a video file never opens another file or address)"
)
#: Container formats FFmpeg uses for single still images (a PNG renamed ``.avi``...).
_IMAGE_FORMATS = ("image2",)
#: Container formats whose packet timestamps are decode-order slots, not presentation times.
_NO_PTS_FORMATS = ("avi",)
#: Packets the stated duration may differ from the packet count before we decode to count.
_DURATION_SLACK_FRAMES = 2
#: ``read_frames``' ``decode`` values: the CPU, or the CUDA device (default or N).
_DECODE = re.compile(r"cpu|cuda(?::(\d+))?")
#: The codec :func:`cuda_decode_problem` asks FFmpeg to build a CUDA decoder for.
_PROBE_CODEC = "h264"
#: Errors PyAV raises when a CUDA device or decoder cannot be set up (PermissionError and the
#: other av.error classes are OSErrors or FFmpegErrors; a codec without a CUDA config raises
#: NotImplementedError, a stream PyAV refuses RuntimeError).
_HW_ERRORS = (av.error.FFmpegError, OSError, ValueError, RuntimeError, NotImplementedError)


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` learns about a video; ``width``/``height`` are as displayed."""

    path: str
    width: int
    height: int
    fps: float
    num_frames: int
    duration: float
    codec: str
    rotation: int


@dataclass(frozen=True)
class Frame:
    """One decoded frame: ordinal ``index``, ``time`` in seconds, RGB ``image`` (H, W, 3) uint8."""

    index: int
    time: float
    image: np.ndarray


def check_video_file(path: str | Path) -> Path:
    """``path`` when it is a non-empty regular file (links resolved), else BadVideoError.

    Never opens the file, so a FIFO, a device or a socket is refused at once instead of
    blocking or reading forever.
    """
    path = Path(path)
    problem = regular_file_problem(path)
    if problem == "is a directory":
        problem = "is a directory, not a video file"
    if problem is not None:
        raise BadVideoError(display_path(path), problem)
    if path.stat().st_size == 0:
        raise BadVideoError(display_path(path), "empty file (0 bytes)")
    return path


def _open(
    path: Path, hwaccel: HWAccel | None = None
) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    """Open ``path`` and return its container and first video stream, or raise BadVideoError.

    ``hwaccel``: decode on that hardware device; its set-up errors are raised as they come
    (:func:`_open_for` falls back on them), not as BadVideoError.
    """
    check_video_file(path)
    try:
        # metadata in another encoding than UTF-8 (or garbled) must not stop the video
        container = av.open(
            f"file:{path}", metadata_errors="replace", hwaccel=hwaccel, options=_FILE_OPTIONS
        )
    except av.error.ArgumentError:  # EINVAL: a format or protocol outside the whitelists
        if hwaccel is not None:
            raise
        raise BadVideoError(display_path(path), NOT_A_CONTAINER) from None
    except av.error.InvalidDataError:
        if hwaccel is not None:
            raise
        raise BadVideoError(display_path(path), "not a video file (invalid data)") from None
    except (av.error.FFmpegError, OSError, ValueError) as error:
        if hwaccel is not None:
            raise
        reason = f"cannot open ({_strerror(error)})"
        raise BadVideoError(display_path(path), reason) from None
    name = container.format.name
    if name in _IMAGE_FORMATS or name.endswith("_pipe"):
        container.close()
        raise BadVideoError(path, f"a still image ({name}), not a video")
    if not container.streams.video:
        container.close()
        raise BadVideoError(path, "no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container, stream


def _strerror(error: BaseException) -> str:
    """An FFmpeg/OS error's own words (``Operation not permitted``), else its text."""
    return str(getattr(error, "strerror", None) or error)


def _cuda_index(decode: str) -> int | None:
    """The CUDA device index ``decode`` names (None: the default device), for ``cuda[:N]``.

    Raises:
        ValueError: ``decode`` is not ``cpu``, ``cuda`` or ``cuda:N``.
    """
    match = _DECODE.fullmatch(decode)
    if match is None:
        raise ValueError(f"decode must be cpu, cuda or cuda:N, got {decode!r}")
    return int(match.group(1)) if match.group(1) is not None else None


def _cuda_hwaccel(index: int | None) -> HWAccel:
    """FFmpeg's CUDA (NVDEC) decoding on device ``index``: frames are copied back to system
    memory (``is_hw_owned=False``), a stream NVDEC cannot decode is decoded in software, and
    the device's primary CUDA context is used (the one torch uses), not one more per file."""
    return HWAccel(
        device_type="cuda",
        device=None if index is None else str(index),
        allow_software_fallback=True,
        options={"primary_ctx": "1"},
    )


@functools.cache
def cuda_decode_problem(device: int | None = None) -> str | None:
    """Why this process cannot decode video with CUDA (NVDEC) on ``device``, or None if it can.

    Asks once per device and process (the answer is cached): whether this FFmpeg build has
    CUDA support and an NVDEC decoder for H.264, and whether it can create the CUDA device.

    Args:
        device: the CUDA device index; None for the default device.
    """
    if "cuda" not in hwdevices_available():
        return "this FFmpeg build has no CUDA support"
    try:
        _cuda_hwaccel(device).create(av.codec.Codec(_PROBE_CODEC, "r"))
    except NotImplementedError:
        return f"this FFmpeg build has no CUDA decoder for {_PROBE_CODEC}"
    except _HW_ERRORS as error:
        return f"cannot create the CUDA device ({_strerror(error)})"
    return None


def _open_for(
    path: Path, decode: str, on_fallback: Callable[[str], object] | None
) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    """:func:`_open` with ``decode``'s decoder; a CUDA decode that cannot be used falls back
    to the CPU and tells ``on_fallback`` why."""
    index = _cuda_index(decode)
    if decode == "cpu":
        return _open(path)
    problem = cuda_decode_problem(index)
    if problem is None:
        try:
            container, stream = _open(path, _cuda_hwaccel(index))
        except BadVideoError:
            raise  # missing, a still image, no video stream: the same on the CPU
        except _HW_ERRORS as error:
            problem = f"{display_path(path)}: cannot open on the CUDA device ({_strerror(error)})"
        else:
            if not stream.codec_context.is_hwaccel:  # PyAV decodes it in software
                problem = f"{display_path(path)}: no CUDA decoder for {stream.codec_context.name}"
                if on_fallback is not None:
                    on_fallback(problem)
            return container, stream
    opened = _open(path)  # a bad file raises its CPU error here, not a fallback
    if on_fallback is not None:
        on_fallback(problem)
    return opened


def _decode(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> Iterator[av.VideoFrame]:
    """Decoded frames in presentation order, ending quietly at the first FFmpeg error."""
    try:
        yield from container.decode(stream)
    except av.error.FFmpegError:
        return


def stated_fps(stream: av.video.stream.VideoStream) -> float:
    """The first plausible stated rate (average, guessed, base), else 0.0 (unknown)."""
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and MIN_FPS <= float(rate) <= MAX_FPS:
            return float(rate)
    return 0.0


def _stream_duration(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _count_packets(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> tuple[int, bool]:
    """Number of non-empty video packets, and whether demuxing went cleanly from a keyframe."""
    count, clean = 0, True
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            if count == 0 and not packet.is_keyframe:
                clean = False
            clean = clean and not packet.is_corrupt
            count += 1
    except av.error.FFmpegError:
        clean = False
    return count, clean


def probe_video(path: str | Path) -> VideoInfo:
    """Describe a video: displayed size, fps, exact frame count, duration, codec, rotation.

    Args:
        path: any file FFmpeg can demux and decode.

    Raises:
        BadVideoError: missing/empty file, not a video, no video stream, nothing decodable.
    """
    path = Path(path)
    container, stream = _open(path)
    with container:
        first = next(_decode(container, stream), None)
        if first is None:
            raise BadVideoError(display_path(path), "no decodable frames")
        rotation = _quarter_turns(first) * 90
        fps = stated_fps(stream)
        codec = stream.codec_context.name
        coded_w, coded_h = first.width, first.height
        stated = stream.frames
        stated_duration = _stream_duration(container, stream)
    container, stream = _open(path)
    with container:
        packets, clean = _count_packets(container, stream)
    if stated > 0:
        trusted = clean and packets == stated
    else:
        trusted = (
            clean
            and stated_duration is not None
            and abs(packets - stated_duration * fps) <= _DURATION_SLACK_FRAMES
        )
    if trusted:
        num_frames = packets
    else:
        container, stream = _open(path)
        with container:
            num_frames = sum(1 for _ in _decode(container, stream))
    if fps <= 0:
        fps = num_frames / stated_duration if stated_duration else 0.0
        if not MIN_FPS <= fps <= MAX_FPS:
            raise BadVideoError(
                display_path(path),
                f"unknown or implausible frame rate (stated rates and frames/duration are "
                f"outside {MIN_FPS:.6g}-{MAX_FPS:g} fps)",
            )
    duration = stated_duration if trusted and stated > 0 and stated_duration else num_frames / fps
    if not 0 < duration <= num_frames / MIN_FPS:
        duration = num_frames / fps
    width, height = (coded_h, coded_w) if rotation in (90, 270) else (coded_w, coded_h)
    return VideoInfo(
        path=str(path),
        width=width,
        height=height,
        fps=fps,
        num_frames=num_frames,
        duration=float(duration),
        codec=codec,
        rotation=rotation,
    )


def frame_times(
    container: av.container.InputContainer, frames: Iterable[av.VideoFrame], fps: float
) -> Iterator[tuple[av.VideoFrame, float]]:
    """Pair each frame (presentation order) with its time by the module's VFR rule."""
    period = 1.0 / fps if fps > 0 else 0.0
    trust_pts = container.format.name not in _NO_PTS_FORMATS
    previous: float | None = None
    for index, frame in enumerate(frames):
        stamp = frame.time if trust_pts else None
        if stamp is not None and (previous is None or stamp > previous):
            time = float(stamp)
        elif previous is None or not trust_pts:
            time = index * period
        else:
            time = previous + period
        previous = time
        yield frame, time


def _quarter_turns(frame: av.VideoFrame) -> int:
    """Counter-clockwise quarter turns (0-3) that display ``frame`` upright (display matrix)."""
    return round(frame.rotation / 90.0) % 4


def to_rgb(
    frame: av.VideoFrame, size: tuple[int, int] | None, reformatter: VideoReformatter
) -> np.ndarray:
    """RGB array of ``frame`` as displayed, scaled by FFmpeg to ``size`` (W, H) if given.

    ``reformatter`` is reused across frames so FFmpeg keeps one scaler context per video.
    """
    turns = _quarter_turns(frame)
    if size is None:
        image = frame.to_ndarray(format="rgb24")
    else:
        width, height = size if turns % 2 == 0 else (size[1], size[0])
        image = reformatter.reformat(
            frame, width=width, height=height, format="rgb24", interpolation="BILINEAR"
        ).to_ndarray()
    if turns:
        image = np.ascontiguousarray(np.rot90(image, k=turns))
    return image


def read_frames(
    path: str | Path,
    *,
    size: tuple[int, int] | None = None,
    indices: Iterable[int] | None = None,
    decode: str = "cpu",
    on_fallback: Callable[[str], object] | None = None,
) -> Iterator[Frame]:
    """Stream decoded frames (threaded decoding), never holding the whole video.

    Args:
        path: the video file.
        size: ``(width, height)`` to scale every yielded frame to (FFmpeg's bilinear scaler).
        indices: only yield these frame indices (increasing, each once); decoding stops after
            the last one and other frames are not colour-converted.
        decode: ``cpu``, or ``cuda``/``cuda:N`` for FFmpeg's CUDA (NVDEC) decoder where
            this process can use it, else the CPU (docs/predict.md#gpu-decode).
        on_fallback: called with the reason when ``decode`` asked for CUDA and the file is
            decoded on the CPU instead (before the first frame is yielded).

    Raises:
        BadVideoError: the file cannot be opened as a video or decodes no frame (the CPU
            decoder's error, whatever ``decode`` says).
        ValueError: an unknown ``decode``, negative indices or a size below 1.
    """
    path = Path(path)
    wanted = None if indices is None else sorted(set(indices))
    if wanted and wanted[0] < 0:
        raise ValueError(f"frame indices must be >= 0, got {wanted[0]}")
    if size is not None and (size[0] < 1 or size[1] < 1):
        raise ValueError(f"size must be positive (width, height), got {size}")
    container, stream = _open_for(path, decode, on_fallback)
    with container:
        fps = stated_fps(stream)
        reformatter = VideoReformatter()
        remaining = None if wanted is None else iter(wanted)
        target = None if remaining is None else next(remaining, None)
        decoded = 0
        for index, (frame, time) in enumerate(
            frame_times(container, _decode(container, stream), fps)
        ):
            decoded += 1
            if remaining is not None:
                if target is None:
                    break
                if index != target:
                    continue
                target = next(remaining, None)
            yield Frame(index=index, time=time, image=to_rgb(frame, size, reformatter))
            if remaining is not None and target is None:
                break
        if decoded == 0:
            raise BadVideoError(display_path(path), "no decodable frames")
