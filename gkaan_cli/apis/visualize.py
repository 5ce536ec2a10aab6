"""``gkaan visualize`` as a library: one video's attention overlay, contact sheet and raw
maps, with the timeline's segments as captions when asked (docs/predict.md#attention-maps)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..progress import ProgressEvent
from .options import TimelineOptions

if TYPE_CHECKING:
    from ..engine.predict import Predictor, VideoPrediction
    from ..engine.timeline import Segment
    from ..progress import ProgressCallback
    from ..video.reader import VideoInfo
    from ..viz.heatmap import Normalize

__all__ = ["Visualized", "visualize_video"]


@dataclass
class Visualized:
    """What :func:`visualize_video` made: the prediction and, with a timeline, its
    segments."""

    prediction: VideoPrediction
    segments: list[Segment] | None


def visualize_video(
    predictor: Predictor,
    video: Path,
    out: Path,
    *,
    grid: Path | None = None,
    grid_frames: int = 8,
    save_maps: Path | None = None,
    normalize: Normalize = "frame",
    timeline: TimelineOptions | None = None,
    info: VideoInfo | None = None,
    on_progress: ProgressCallback | None = None,
) -> Visualized:
    """Predict ``video`` keeping the attention, and write the overlay video ``out``, the
    contact sheet ``grid`` and the maps ``save_maps`` (each when given). With ``timeline``,
    each frame's caption is the label of the segment it falls in. ``info``: the video's
    probe when the caller has one (it is not probed again).

    Raises:
        BadVideoError: the video cannot be decoded.
        UsageError: a timeline window shorter than one clip (before any work).
    """
    from ..engine.timeline import predict_timeline, timeline_spec
    from ..video.reader import probe_video
    from ..viz import render

    if timeline is not None:  # a window shorter than a clip is refused before any work
        info = info if info is not None else probe_video(video)
        timeline_spec(predictor.sampling, info.fps, window=timeline.window, hop=timeline.hop)
    prediction = predictor.predict_video(video, keep_attention=True, on_progress=on_progress)
    segments = None
    if timeline is not None:
        segments = predict_timeline(
            predictor,
            video,
            window=timeline.window,
            hop=timeline.hop,
            on_progress=on_progress,
            **timeline.merge(),
        ).segments

    def on_frames(done: int, total: int) -> None:
        if on_progress is not None:
            on_progress(ProgressEvent("render", done, total))

    render.render_overlay_video(
        video, prediction, out, normalize=normalize, segments=segments, progress=on_frames
    )
    if grid is not None:
        render.render_grid(video, prediction, grid, n=grid_frames, normalize=normalize)
    if save_maps is not None:
        render.save_maps(prediction, save_maps)
    return Visualized(prediction, segments)
