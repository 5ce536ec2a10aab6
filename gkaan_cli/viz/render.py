"""Render attention: an overlay video, a contact sheet PNG and the raw maps (paper Figs. 1, 8).

The overlay video shows the source frames side by side with the SA and LA maps blended over
them (only the panels the model has), above a caption with the predicted label; given a
timeline's segments, the caption's first line is the label of the segment playing
(:func:`segment_at`; docs/predict.md#timeline). Every source frame is written, at the source
rate, so the video lines up with the original; a frame the model did not process shows the
map of the nearest processed frame. Frames are streamed in and out, so memory does not grow
with the video's length.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..engine.predict import VideoPrediction, rank_labels, verdict_line
from ..engine.timeline import Segment
from ..fileio import atomic_write_bytes, atomic_write_path
from ..video.reader import read_frames
from ..video.writer import VideoWriter, encode_png
from .colormap import apply_colormap
from .heatmap import Normalize, blend, map_entropy, normalize_maps, overlay, upsample_map
from .text import draw_text, fit_font_size, fit_text, line_height, text_width

__all__ = [
    "PANEL_TITLES",
    "OverlayLayout",
    "nearest_map_indices",
    "overlay_layout",
    "panel_size",
    "render_grid",
    "render_overlay_video",
    "save_maps",
    "segment_at",
]

#: Overlay panel titles of the attention maps (SA, LA), in drawing order; stream names in
#: tables are config.STREAM_TITLES.
PANEL_TITLES = {"sa": "SA (statistic attention)", "la": "LA (learned attention)"}
#: Panel heights of the overlay video: large sources are scaled down, tiny ones up.
VIDEO_PANEL_HEIGHTS = (240, 360)
#: Widest and narrowest panel (pixels, even): three panels stay within H.264's limits.
MAX_PANEL_WIDTH = 1920
MIN_PANEL_WIDTH = 32
#: Cell height of the contact sheet.
GRID_CELL_HEIGHT = 160
_BACKGROUND = 24
_GAP = 2


def nearest_map_indices(attention_frames: np.ndarray, frame_indices: np.ndarray) -> np.ndarray:
    """Position in ``attention_frames`` (increasing) of the map nearest each frame index.

    A frame half way between two processed frames takes the earlier one's map.
    """
    processed = np.asarray(attention_frames)
    wanted = np.asarray(frame_indices)
    after = np.clip(np.searchsorted(processed, wanted, side="left"), 0, len(processed) - 1)
    before = np.clip(after - 1, 0, len(processed) - 1)
    take_before = np.abs(wanted - processed[before]) <= np.abs(processed[after] - wanted)
    return np.where(take_before, before, after)


def _segment_position(starts: Sequence[float], ends: Sequence[float], time: float) -> int:
    """Position of :func:`segment_at`'s answer among segments with these starts and ends."""
    if not starts:
        raise ValueError("no segments to choose from")
    here = max(0, bisect_right(starts, time) - 1)
    if time < ends[here] or here == len(starts) - 1 or time < starts[here]:
        return here
    after = here + 1  # in a gap: the nearer segment, the earlier one half way
    return here if time - ends[here] <= starts[after] - time else after


def segment_at(segments: Sequence[Segment], time: float) -> Segment:
    """The segment playing at ``time`` seconds: the one with ``start <= time < end`` (a
    boundary belongs to the segment it starts), else the nearest one (before the first, after
    the last, e.g. the unscored tail, or in a gap; half way between two, the earlier).

    Args:
        segments: a timeline's segments in time order (``TimelinePrediction.segments``).
        time: seconds, as ``Frame.time``.

    Raises:
        ValueError: ``segments`` is empty.
    """
    starts, ends = [s.start for s in segments], [s.end for s in segments]
    return segments[_segment_position(starts, ends, time)]


def panel_size(width: int, height: int, heights: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of a panel showing a ``width`` x ``height`` frame, both even.

    The aspect ratio is kept, except that a panel is at most :data:`MAX_PANEL_WIDTH` wide
    (a very wide frame gets a lower panel) and at least :data:`MIN_PANEL_WIDTH` wide (a
    very tall one is stretched), so every frame stays encodable as H.264.

    Args:
        width, height: the source frame as displayed.
        heights: (smallest, largest) panel height.
    """
    target = min(max(height, heights[0]), heights[1])
    panel_h = max(2, round(target / 2) * 2)
    panel_w = max(2, round(width * panel_h / height / 2) * 2)
    if panel_w > MAX_PANEL_WIDTH:  # extreme geometry (e.g. 4097 x 17): keep it encodable
        panel_w = MAX_PANEL_WIDTH
        panel_h = max(2, round(height * MAX_PANEL_WIDTH / width / 2) * 2)
    return max(panel_w, MIN_PANEL_WIDTH), panel_h


def _streams(prediction: VideoPrediction) -> list[str]:
    """Attention streams to draw: those with maps, in the order of :data:`PANEL_TITLES`."""
    if len(prediction.attention_frames) == 0:
        return []
    return [name for name in PANEL_TITLES if name in prediction.attention]


def _caption(prediction: VideoPrediction, *, timeline: bool = False) -> list[str]:
    """Caption lines: the video's verdict (:func:`~gkaan_cli.engine.predict.verdict_line`:
    the label and probability, or ``unknown (closest: ...)``; ``video: ...`` beside a
    timeline's segment line), then each stream's top-1."""
    label, prob = prediction.top_k(1)[0]
    said = verdict_line(label, prob, prediction.in_distribution)
    tops = {
        name: rank_labels(prediction.labels, p, 1)[0] for name, p in prediction.stream_probs.items()
    }
    streams = "  ".join(f"{name.upper()}: {top} {p:.0%}" for name, (top, p) in tops.items())
    return [f"{'video: ' if timeline else ''}{said}", streams]


def _segment_caption(segment: Segment, number: int, count: int) -> str:
    """A segment's caption line: ``walk 81.2%  (segment 2/3, 4.00-8.00 s)`` (its verdict,
    ``unknown (closest: walk 41%)``, when most of its windows are out of distribution)."""
    said = verdict_line(segment.label, segment.prob, segment.in_distribution)
    return f"{said}  (segment {number}/{count}, {segment.start:.2f}-{segment.end:.2f} s)"


def _titles(streams: tuple[str, ...]) -> list[str]:
    """Titles of the overlay panels: the input, then each stream."""
    return ["input", *(PANEL_TITLES[name] for name in streams)]


def _text_margin(font_size: int) -> int:
    """Margin around text of ``font_size``."""
    return max(2, font_size // 6)


def _row_width(panel_width: int, panels: int) -> int:
    """Width of ``panels`` panels side by side."""
    return panel_width * panels + _GAP * (panels - 1)


@dataclass(frozen=True)
class OverlayLayout:
    """Frame layout of the overlay video: a caption strip on top (where a browser's video
    controls, drawn over the bottom of the picture, never hide it), a title row, then the
    panels side by side.

    Attributes:
        panel: (width, height) of each panel, even.
        streams: the attention streams drawn after the input panel (``sa``, ``la``).
        caption: the caption lines.
        font_size: font size of titles and caption, in pixels per em.
        segment_captions: with a timeline, one line per segment, drawn above ``caption``
            while its segment plays; empty without one.
    """

    panel: tuple[int, int]
    streams: tuple[str, ...]
    caption: tuple[str, ...]
    font_size: int
    segment_captions: tuple[str, ...] = ()

    @property
    def pad(self) -> int:
        """Margin around text."""
        return _text_margin(self.font_size)

    @property
    def line(self) -> int:
        """Height of one text line, margin included."""
        return line_height(self.font_size) + self.pad

    @property
    def caption_height(self) -> int:
        """Height of the caption strip at the top of the frame."""
        lines = len(self.caption) + bool(self.segment_captions)
        return lines * self.line + self.pad

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the whole frame, both even."""
        width = _row_width(self.panel[0], 1 + len(self.streams))
        height = self.caption_height + self.line + self.panel[1]
        return width + width % 2, height + height % 2

    def panel_box(self, number: int) -> tuple[int, int, int, int]:
        """(x, y, width, height) of panel ``number`` (0 is the input, then the streams)."""
        return number * (self.panel[0] + _GAP), self.caption_height + self.line, *self.panel

    def background(self, segment: int | None = None) -> np.ndarray:
        """The frame without panels: titles and caption drawn on a dark background, the
        caption headed by line ``segment`` of :attr:`segment_captions` when there are some;
        text too wide for its space is shortened with "…"."""
        if (segment is None) != (not self.segment_captions):
            raise ValueError("a segment is drawn exactly when the layout has segment captions")
        caption = (
            self.caption if segment is None else (self.segment_captions[segment], *self.caption)
        )
        width, height = self.size
        image = np.full((height, width, 3), _BACKGROUND, np.uint8)
        pad, size = self.pad, self.font_size
        for number, title in enumerate(_titles(self.streams)):
            text = fit_text(title, size, self.panel[0] - 2 * pad)
            x = self.panel_box(number)[0] + pad
            draw_text(image, text, x, self.caption_height + pad // 2, size=size)
        top = pad // 2
        for row, line in enumerate(caption):
            colour = (255, 220, 80) if row == 0 else (210, 210, 210)
            text = fit_text(line, size, width - 2 * pad)
            draw_text(image, text, pad, top + row * self.line, size=size, color=colour)
        return image


def overlay_layout(
    prediction: VideoPrediction, segments: Sequence[Segment] | None = None
) -> OverlayLayout:
    """The overlay video's layout for ``prediction`` (and a timeline's ``segments``): panel
    size from the source, the streams that have maps, and the largest font (up to a twelfth
    of the panel height) at which the titles fit their panels and every caption line fits
    the frame."""
    info = prediction.info
    streams = tuple(_streams(prediction))
    panel = panel_size(info.width, info.height, VIDEO_PANEL_HEIGHTS)
    caption = tuple(_caption(prediction, timeline=segments is not None))
    count = len(segments or ())
    lines = tuple(_segment_caption(s, n, count) for n, s in enumerate(segments or (), start=1))
    largest = panel[1] // 12
    margins = 2 * _text_margin(largest)  # margins grow with the font: the largest's bound all
    width = _row_width(panel[0], 1 + len(streams))
    size = min(
        fit_font_size([*caption, *lines], width - margins, largest),
        fit_font_size(_titles(streams), panel[0] - margins, largest),
    )
    return OverlayLayout(
        panel=panel, streams=streams, caption=caption, font_size=size, segment_captions=lines
    )


class _ColourCache:
    """One stream's maps, normalised, up-sampled and coloured once per processed frame in a row."""

    def __init__(self, maps: np.ndarray, size: tuple[int, int], normalize: Normalize) -> None:
        self.maps = normalize_maps(maps, normalize)
        self.size = size
        self._position = -1
        self._colour = np.zeros((*size, 3), np.uint8)

    def colour(self, position: int) -> np.ndarray:
        if position != self._position:
            self._colour = apply_colormap(upsample_map(self.maps[position], self.size))
            self._position = position
        return self._colour


def render_overlay_video(
    video_path: str | Path,
    prediction: VideoPrediction,
    out_path: str | Path,
    *,
    normalize: Normalize = "frame",
    segments: Sequence[Segment] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write the attention overlay video: input | SA | LA panels and a caption (Fig. 1).

    Args:
        video_path: the source video (decoded again, streaming).
        prediction: ``Predictor.predict_video(..., keep_attention=True)`` of that video.
        out_path: the MP4 to write (H.264, yuv420p, faststart; written atomically).
        normalize: ``frame`` (each map stretched to [0, 1]) or ``global`` (all maps alike).
        segments: a timeline's segments (``predict_timeline(...).segments``): each frame's
            caption then starts with the label and mean probability of
            :func:`segment_at` its time, above the whole video's label.
        progress: called as ``progress(frames_done, frames_total)`` after each frame.

    Returns:
        ``out_path``; the video has the source's frame count and frame rate.

    Raises:
        BadVideoError: the source cannot be decoded.
        ValueError: ``segments`` is given but empty.
    """
    if segments is not None and not segments:
        raise ValueError("segments is empty: give a timeline's segments or None")
    info = prediction.info
    layout = overlay_layout(prediction, segments)
    width, height = layout.panel
    caches = [
        _ColourCache(prediction.attention[s], (height, width), normalize) for s in layout.streams
    ]
    boxes = [layout.panel_box(number) for number in range(1 + len(caches))]
    starts, ends = [s.start for s in segments or ()], [s.end for s in segments or ()]
    drawn = None if segments is None else 0  # the segment whose caption ``background`` has
    background = layout.background(drawn)
    out_path = Path(out_path)
    with VideoWriter(out_path, fps=info.fps, size=layout.size) as writer:
        for frame in read_frames(video_path, size=layout.panel):
            if segments is not None:  # one background at a time: segments play in order
                position = _segment_position(starts, ends, frame.time)
                if position != drawn:
                    background, drawn = layout.background(position), position
            image = background.copy()
            panels = [frame.image]
            if caches:
                position = int(nearest_map_indices(prediction.attention_frames, frame.index))
                panels += [blend(frame.image, cache.colour(position)) for cache in caches]
            for (x, y, _, _), panel in zip(boxes, panels, strict=True):
                image[y : y + height, x : x + width] = panel
            writer.write(image)
            if progress is not None:
                progress(frame.index + 1, info.num_frames)
    return out_path


def render_grid(
    video_path: str | Path,
    prediction: VideoPrediction,
    out_png: str | Path,
    *,
    n: int = 8,
    normalize: Normalize = "frame",
) -> Path:
    """Write a contact sheet PNG: ``n`` evenly spaced processed frames (columns), rows
    input / SA / LA (the paper's Fig. 8), each column headed by the frame's time.

    Args:
        video_path: the source video.
        prediction: its prediction with attention maps.
        out_png: the PNG to write (atomically).
        n: number of columns (at most the number of processed frames).
        normalize: ``frame`` or ``global`` map normalisation.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    info = prediction.info
    streams = _streams(prediction)
    count = len(prediction.attention_frames) if streams else info.num_frames
    positions = np.unique(np.linspace(0, count - 1, min(n, count)).round().astype(np.int64))
    frames = prediction.attention_frames[positions] if streams else positions
    cell = panel_size(info.width, info.height, (GRID_CELL_HEIGHT, GRID_CELL_HEIGHT))
    heats = {s: normalize_maps(prediction.attention[s], normalize)[positions] for s in streams}
    images = {f.index: f.image for f in read_frames(video_path, size=cell, indices=frames)}
    rows = ["input", *(name.upper() for name in streams)]
    titles = [f"#{index}" for index in frames]
    if streams:
        times = prediction.attention_times[positions]
        titles = [f"{title} {time:.2f}s" for title, time in zip(titles, times, strict=True)]
    size = fit_font_size(titles, cell[0] - _GAP, GRID_CELL_HEIGHT // 10)
    label_w = max(text_width(row, size) for row in rows) + 4 * _GAP
    line = line_height(size) + 2 * _GAP
    sheet = np.full(
        (line + len(rows) * (cell[1] + _GAP), label_w + len(frames) * (cell[0] + _GAP), 3),
        _BACKGROUND,
        np.uint8,
    )
    for r, row in enumerate(rows):
        draw_text(sheet, row, 2 * _GAP, line + r * (cell[1] + _GAP), size=size)
    for c, index in enumerate(frames):
        x = label_w + c * (cell[0] + _GAP)
        draw_text(sheet, fit_text(titles[c], size, cell[0] - _GAP), x, _GAP, size=size)
        raw = images.get(int(index), np.zeros((cell[1], cell[0], 3), np.uint8))
        heat_size = raw.shape[:2]
        shown = [raw, *(overlay(raw, upsample_map(heats[s][c], heat_size)) for s in streams)]
        for r, image in enumerate(shown):
            y = line + r * (cell[1] + _GAP)
            sheet[y : y + cell[1], x : x + cell[0]] = image
    out_png = Path(out_png)
    return atomic_write_bytes(out_png, encode_png(sheet))


def save_maps(prediction: VideoPrediction, out_npz: str | Path) -> Path:
    """Save the raw attention maps and their context as a compressed ``.npz`` (atomically).

    Arrays: ``sa``/``la`` (F, h, w) float32 maps (each sums to 1), ``sa_entropy``/``la_entropy``
    (F,) in nats, ``frames`` (F,) frame indices, ``times`` (F,) seconds, ``labels`` (K,),
    ``probs`` (K,) fused, ``probs_<stream>`` (K,) per stream, ``label`` and ``prob`` (top-1).
    """
    label, prob = prediction.top_k(1)[0]
    arrays: dict[str, np.ndarray] = {
        "frames": np.asarray(prediction.attention_frames, dtype=np.int64),
        "times": np.asarray(prediction.attention_times, dtype=np.float64),
        "labels": np.asarray(prediction.labels, dtype=str),
        "probs": np.asarray(prediction.probs, dtype=np.float32),
        "label": np.asarray(label, dtype=str),
        "prob": np.asarray(prob, dtype=np.float32),
    }
    for name, maps in prediction.attention.items():
        arrays[name] = np.asarray(maps, dtype=np.float32)
        arrays[f"{name}_entropy"] = map_entropy(maps)
    for name, probs in prediction.stream_probs.items():
        arrays[f"probs_{name}"] = np.asarray(probs, dtype=np.float32)
    out_npz = Path(out_npz)
    with atomic_write_path(out_npz) as temp, temp.open("wb") as handle:
        np.savez_compressed(handle, **arrays)
    return out_npz
