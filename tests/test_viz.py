"""Attention visualisation: heat maps, the overlay video, the contact sheet, the raw maps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch
import typer
from conftest import write_video
from typer.testing import CliRunner

from gkaan_cli.cli import guarded
from gkaan_cli.commands.visualize import visualize
from gkaan_cli.config import GKAANConfig, SamplingConfig
from gkaan_cli.engine import timeline as timeline_module
from gkaan_cli.engine.predict import Predictor, VideoPrediction
from gkaan_cli.engine.timeline import Segment, WindowPrediction, merge_segments
from gkaan_cli.errors import BadVideoError
from gkaan_cli.model.gkaan import GKAAN
from gkaan_cli.video.reader import probe_video
from gkaan_cli.viz.colormap import TURBO, apply_colormap
from gkaan_cli.viz.heatmap import map_entropy, normalize_maps, overlay, upsample_map
from gkaan_cli.viz.render import (
    OverlayLayout,
    nearest_map_indices,
    overlay_layout,
    render_grid,
    render_overlay_video,
    save_maps,
    segment_at,
)
from gkaan_cli.viz.text import (
    MIN_FONT_SIZE,
    draw_text,
    fit_font_size,
    fit_text,
    line_height,
    text_width,
)

LABELS = ["box", "walk", "wave"]


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny early-fusion checkpoint (resnet18, 3 classes, 3 clips of 4 frames)."""
    torch.manual_seed(0)
    config = GKAANConfig(
        num_classes=3,
        class_names=LABELS,
        backbone="resnet18",
        sru_hidden=16,
        sru_layers=1,
        sampling=SamplingConfig(clip_len=4, stride=4, max_clips=3),
    )
    directory = tmp_path_factory.mktemp("tiny") / "model"
    GKAAN(config).save_pretrained(directory)
    return directory


def one_hot_maps(cells: list[tuple[int, int]], size: int = 7) -> np.ndarray:
    """(F, size, size) attention maps, map f puts all its weight on ``cells[f]``."""
    maps = np.zeros((len(cells), size, size), np.float32)
    for f, (row, col) in enumerate(cells):
        maps[f, row, col] = 1.0
    return maps


def hand_prediction(
    video: Path, attention: dict[str, np.ndarray], frames: list[int]
) -> VideoPrediction:
    """A VideoPrediction with given maps at given frames (the engine's contract)."""
    info = probe_video(video)
    probs = np.array([0.7, 0.2, 0.1], np.float32)
    return VideoPrediction(
        path=str(video),
        info=info,
        labels=LABELS,
        probs=probs,
        stream_probs={"gs": probs, "gl": probs[::-1].copy(), "gp": probs},
        clips=[],
        attention=attention,
        attention_frames=np.asarray(frames, np.int64),
        attention_times=np.asarray(frames, np.float64) / info.fps,
    )


def decode(path: Path) -> tuple[av.video.stream.VideoStream, list[np.ndarray]]:
    """The first video stream's description and every decoded frame (RGB)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    return stream, frames


def hottest_cell(colour: np.ndarray, grid: int = 7) -> tuple[int, int]:
    """The grid cell whose pixels map to the highest colormap values on average."""
    distances = ((colour[:, :, None, :].astype(np.int32) - TURBO.astype(np.int32)) ** 2).sum(-1)
    values = distances.argmin(-1).astype(np.float64)
    rows = np.array_split(np.arange(values.shape[0]), grid)
    cols = np.array_split(np.arange(values.shape[1]), grid)
    means = np.array([[values[np.ix_(r, c)].mean() for c in cols] for r in rows])
    row, col = np.unravel_index(means.argmax(), means.shape)
    return int(row), int(col)


def panel_colour(image: np.ndarray, prediction: VideoPrediction, number: int) -> np.ndarray:
    """The colormap layer of overlay panel ``number``: 2 * panel - input (50/50 blend)."""
    layout = overlay_layout(prediction)
    crops = []
    for n in (0, number):
        x, y, w, h = layout.panel_box(n)
        crops.append(image[y : y + h, x : x + w].astype(np.int32))
    return np.clip(2 * crops[1] - crops[0], 0, 255).astype(np.uint8)


# ---- colormap, heat maps, text -----------------------------------------------------------


def test_colormap_runs_dark_blue_green_dark_red_and_clips() -> None:
    assert TURBO.shape == (256, 3) and TURBO.dtype == np.uint8
    cold, hot = apply_colormap(np.array([-1.0, 2.0]))
    assert cold.tolist() == TURBO[0].tolist() and cold.astype(int).sum() < 120  # dark
    assert hot.tolist() == TURBO[255].tolist() and hot[0] > 4 * max(hot[1], hot[2])  # red
    assert TURBO[40].argmax() == 2 and TURBO[128].argmax() == 1  # blue, then green


def test_upsample_keeps_the_peak_in_its_cell() -> None:
    heat = upsample_map(one_hot_maps([(2, 5)])[0], (70, 140))
    assert heat.shape == (70, 140) and heat.dtype == np.float32
    row, col = np.unravel_index(heat.argmax(), heat.shape)
    assert (row // 10, col // 20) == (2, 5)
    assert upsample_map(np.full((7, 7), 0.3), (14, 21)) == pytest.approx(np.full((14, 21), 0.3))


def test_upsample_accepts_a_stack_of_maps() -> None:
    assert upsample_map(one_hot_maps([(0, 0), (6, 6)]), (28, 28)).shape == (2, 28, 28)


def test_frame_normalisation_stretches_every_map_to_full_range() -> None:
    maps = np.stack([np.linspace(0, 1, 49).reshape(7, 7), np.linspace(0.2, 0.3, 49).reshape(7, 7)])
    normed = normalize_maps(maps, "frame")
    assert normed.min(axis=(1, 2)).tolist() == [0.0, 0.0]
    assert normed.max(axis=(1, 2)) == pytest.approx([1.0, 1.0])


def test_global_normalisation_keeps_maps_comparable() -> None:
    maps = np.stack([np.linspace(0, 1, 49).reshape(7, 7), np.linspace(0.2, 0.3, 49).reshape(7, 7)])
    normed = normalize_maps(maps, "global")
    assert normed[0].max() == pytest.approx(1.0)
    assert normed[1].min() == pytest.approx(0.2) and normed[1].max() == pytest.approx(0.3)


def test_normalising_a_uniform_map_gives_zeros_not_nan() -> None:
    normed = normalize_maps(np.full((2, 7, 7), 1 / 49), "frame")
    assert np.array_equal(normed, np.zeros((2, 7, 7), np.float32))


def test_unknown_normalisation_is_refused() -> None:
    with pytest.raises(ValueError, match="frame' or 'global"):
        normalize_maps(np.zeros((1, 7, 7)), "video")  # type: ignore[arg-type]


def test_overlay_blends_frame_and_colour_half_and_half() -> None:
    frame = np.full((4, 6, 3), 100, np.uint8)
    heat = np.zeros((4, 6))
    heat[1, 2] = 1.0
    blended = overlay(frame, heat)
    assert blended.dtype == np.uint8
    assert blended[0, 0].tolist() == np.rint((100 + TURBO[0].astype(float)) / 2).tolist()
    assert blended[1, 2].tolist() == np.rint((100 + TURBO[255].astype(float)) / 2).tolist()


def test_overlay_refuses_a_heat_map_of_another_size() -> None:
    with pytest.raises(ValueError, match="sizes differ"):
        overlay(np.zeros((4, 6, 3), np.uint8), np.zeros((6, 4)))


def test_map_entropy_is_zero_when_peaked_and_ln49_when_uniform() -> None:
    maps = np.concatenate([one_hot_maps([(3, 3)]), np.full((1, 7, 7), 1 / 49)])
    assert map_entropy(maps) == pytest.approx([0.0, np.log(49)], abs=1e-5)


def test_text_is_drawn_in_place_and_clipped_at_the_border() -> None:
    image = np.zeros((40, 80, 3), np.uint8)
    draw_text(image, "A1", 2, 2, size=20, color=(255, 0, 0))
    ink = np.argwhere(image[..., 0] > 0)
    assert len(ink) > 20
    assert ink.min(axis=0).tolist() >= [2, 2]
    assert ink.max(axis=0).tolist() < [2 + line_height(20), 2 + text_width("A1", 20)]
    assert image[..., 1:].max() == 0
    draw_text(image, "clipped text", 60, 30, size=30)  # mostly outside: no error
    draw_text(image, "outside", 100, 100, size=10)
    assert text_width("abc", 28) > text_width("abc", 14) > text_width("ab", 14) > 0
    assert line_height(28) > line_height(14) > 0


def test_text_keeps_its_case_and_draws_any_character() -> None:
    def drawn(text: str) -> np.ndarray:
        image = np.zeros((20, 80, 3), np.uint8)
        draw_text(image, text, 1, 1, size=14)
        return image

    assert not np.array_equal(drawn("box#1"), drawn("BOX#1"))
    assert drawn("Ärm wrestling 中~").max() > 0
    assert not np.array_equal(drawn("A"), drawn("?"))


def test_fitting_shrinks_the_font_then_shortens_the_text() -> None:
    lines = ["a short line", "a much longer line of caption text"]
    size = fit_font_size(lines, 200, 40)
    assert MIN_FONT_SIZE < size < 40
    assert max(text_width(line, size) for line in lines) <= 200
    assert text_width(lines[1], size + 1) > 200
    assert fit_font_size(lines, 10_000, 40) == 40
    assert fit_font_size(lines, 20, 40) == MIN_FONT_SIZE
    assert fit_text(lines[0], 14, 10_000) == lines[0]
    short = fit_text(lines[1], 14, 100)
    assert short.endswith("…") and lines[1].startswith(short[:-1].rstrip())
    assert text_width(short, 14) <= 100


# ---- nearest map, overlay video --------------------------------------------------------------


def test_frames_between_processed_ones_take_the_nearest_map() -> None:
    processed = np.array([0, 10, 20])
    frames = np.array([0, 4, 5, 6, 14, 16, 20, 25])
    assert nearest_map_indices(processed, frames).tolist() == [0, 0, 0, 1, 1, 2, 2, 2]


def test_overlay_video_is_browser_ready_h264_with_source_frame_count_and_rate(
    make_video: Callable[..., Path], tmp_path: Path
) -> None:
    source = make_video("ntsc.mp4", num_frames=20, fps=Fraction(30000, 1001))
    prediction = hand_prediction(
        source, {"sa": one_hot_maps([(0, 0)] * 2), "la": one_hot_maps([(6, 6)] * 2)}, [3, 12]
    )
    out = render_overlay_video(source, prediction, tmp_path / "out" / "ntsc.gkaan.mp4")
    stream, frames = decode(out)
    assert stream.codec_context.name == "h264" and stream.pix_fmt == "yuv420p"
    assert stream.average_rate == Fraction(30000, 1001)
    assert len(frames) == 20
    assert (stream.width, stream.height) == overlay_layout(prediction).size
    assert stream.width % 2 == 0 and stream.height % 2 == 0
    with open(out, "rb") as handle:  # faststart: the index (moov) precedes the media (mdat)
        head = handle.read(4096)
    assert b"moov" in head
    assert not list((tmp_path / "out").glob(".*"))  # no temp file left behind


@pytest.mark.slow
def test_rendered_overlay_is_hottest_where_each_map_peaks(
    make_video: Callable[..., Path], tmp_path: Path
) -> None:
    source = make_video("peaks.mp4", num_frames=12, size=(224, 168))
    prediction = hand_prediction(
        source,
        {"sa": one_hot_maps([(2, 5), (6, 0)]), "la": one_hot_maps([(5, 1), (0, 3)])},
        [0, 10],
    )
    _, frames = decode(render_overlay_video(source, prediction, tmp_path / "peaks.mp4"))
    # frame 4 is nearest processed frame 0, frame 6 nearest processed frame 10
    assert hottest_cell(panel_colour(frames[4], prediction, 1)) == (2, 5)
    assert hottest_cell(panel_colour(frames[4], prediction, 2)) == (5, 1)
    assert hottest_cell(panel_colour(frames[6], prediction, 1)) == (6, 0)
    assert hottest_cell(panel_colour(frames[6], prediction, 2)) == (0, 3)


def test_overlay_shows_only_the_attention_panels_the_model_has(
    make_video: Callable[..., Path], tmp_path: Path
) -> None:
    source = make_video("la_only.mp4", num_frames=6)
    prediction = hand_prediction(source, {"la": one_hot_maps([(1, 1)])}, [2])
    layout = overlay_layout(prediction)
    assert layout.streams == ("la",)
    stream, frames = decode(render_overlay_video(source, prediction, tmp_path / "la.mp4"))
    assert len(frames) == 6 and stream.width == layout.size[0]
    assert layout.size[0] < 2 * layout.panel[0] + 8


def test_a_model_without_attention_gets_the_input_panel_and_row_only(
    make_video: Callable[..., Path], tmp_path: Path
) -> None:
    source = make_video("gp.mp4", num_frames=5, size=(64, 48))
    prediction = hand_prediction(source, {}, [])
    stream, frames = decode(render_overlay_video(source, prediction, tmp_path / "gp.mp4"))
    assert len(frames) == 5 and stream.width == overlay_layout(prediction).panel[0]
    _, (sheet,) = decode(render_grid(source, prediction, tmp_path / "gp.png", n=3))
    assert 160 < sheet.shape[0] < 200  # one row of 160-pixel cells under the time labels


def test_caption_names_the_prediction_and_each_streams_top1(
    make_video: Callable[..., Path],
) -> None:
    source = make_video("caption.mp4", num_frames=2)
    layout = overlay_layout(hand_prediction(source, {"sa": one_hot_maps([(0, 0)])}, [0]))
    assert layout.caption == ("box 70.0%", "GS: box 70%  GL: wave 70%  GP: box 70%")
    frame_width = layout.size[0]
    assert all(text_width(line, layout.font_size) <= frame_width for line in layout.caption)


def test_large_sources_are_scaled_down_to_360_rows_per_panel(
    make_video: Callable[..., Path],
) -> None:
    source = make_video("hd.mp4", num_frames=2, size=(1280, 720))
    layout = overlay_layout(hand_prediction(source, {"sa": one_hot_maps([(0, 0)])}, [0]))
    assert layout.panel == (640, 360)


def test_overlay_of_a_vanished_source_raises_bad_video_naming_it(
    make_video: Callable[..., Path], tmp_path: Path
) -> None:
    source = make_video("gone.mp4", num_frames=4)
    prediction = hand_prediction(source, {"sa": one_hot_maps([(0, 0)])}, [0])
    source.unlink()
    with pytest.raises(BadVideoError, match=r"gone\.mp4: file not found"):
        render_overlay_video(source, prediction, tmp_path / "gone.gkaan.mp4")
    assert not (tmp_path / "gone.gkaan.mp4").exists()


# ---- end to end with a real (tiny, random) model ------------------------------------------


@pytest.fixture(scope="module")
def predicted(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, VideoPrediction]:
    """A 30-frame synthetic video and the tiny model's prediction with attention."""
    video = write_video(tmp_path_factory.mktemp("e2e") / "e2e.mp4", 30, size=(96, 72))
    predictor = Predictor(GKAAN.from_pretrained(tiny_model_dir), device="cpu", threads=1)
    return video, predictor.predict_video(video, keep_attention=True)


def test_saved_maps_sum_to_one_per_frame_with_indices_times_and_entropy(
    predicted: tuple[Path, VideoPrediction], tmp_path: Path
) -> None:
    _, prediction = predicted
    out = save_maps(prediction, tmp_path / "maps" / "e2e.npz")
    with np.load(out) as saved:
        for name in ("sa", "la"):
            assert saved[name].shape == (12, 7, 7)
            assert saved[name].sum(axis=(1, 2)) == pytest.approx(np.ones(12), abs=1e-4)
            assert saved[f"{name}_entropy"] == pytest.approx(map_entropy(saved[name]))
        processed = sorted({i for clip in prediction.clips for i in clip.frames})
        assert saved["frames"].tolist() == processed
        assert saved["times"] == pytest.approx(saved["frames"] / 25)
        assert saved["labels"].tolist() == LABELS
        assert str(saved["label"]) == prediction.top_k(1)[0][0]
        assert float(saved["prob"]) == pytest.approx(prediction.top_k(1)[0][1])
        assert saved["probs"].sum() == pytest.approx(1.0, abs=1e-5)
        assert sorted(k for k in saved.files if k.startswith("probs_")) == [
            "probs_gl",
            "probs_gp",
            "probs_gs",
        ]


def test_contact_sheet_has_a_row_per_panel_and_a_column_per_frame(
    predicted: tuple[Path, VideoPrediction], tmp_path: Path
) -> None:
    video, prediction = predicted
    out = render_grid(video, prediction, tmp_path / "sheet.png", n=5)
    _, (sheet,) = decode(out)
    cell_w, cell_h = 214, 160  # 96x72 scaled to 160 rows, even width
    assert 3 * cell_h < sheet.shape[0] < 3 * cell_h + 40
    assert 5 * cell_w < sheet.shape[1] < 5 * cell_w + 80


def run_cli(*args: str) -> tuple[int, str]:
    """Run ``visualize`` behind the CLI's error boundary; (exit code, stdout + stderr)."""
    app = typer.Typer()
    app.command()(guarded(visualize))
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_visualize_command_writes_video_grid_and_maps_and_says_where(
    tiny_model_dir: Path,
    make_video: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = make_video("walk.mp4", num_frames=16, fps=Fraction(30000, 1001))
    monkeypatch.chdir(tmp_path)
    code, output = run_cli(
        str(source), "--model", str(tiny_model_dir), "--grid", "g.png", "--save-maps", "m.npz"
    )
    assert code == 0, output
    stream, frames = decode(tmp_path / "walk.gkaan.mp4")
    assert len(frames) == 16 and stream.average_rate == Fraction(30000, 1001)
    assert (tmp_path / "g.png").is_file() and (tmp_path / "m.npz").is_file()
    assert "walk.gkaan.mp4" in output and "g.png" in output and "m.npz" in output


@pytest.mark.parametrize("case", ["missing", "text"])
def test_visualize_command_reports_a_bad_video_in_one_line(
    case: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    video = tmp_path / "bad.mp4"
    if case == "text":
        video.write_text("not a video\n")
    code, output = run_cli(
        str(video), "--model", str(tiny_model_dir), "-o", str(tmp_path / "o.mp4")
    )
    reason = "file not found" if case == "missing" else "not a video file"
    lines = output.strip().splitlines()
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith(f"error: {video}: {reason}")
    assert not (tmp_path / "o.mp4").exists()


def test_visualize_command_reports_a_missing_video_before_the_model(tmp_path: Path) -> None:
    video = tmp_path / "gone.mp4"
    code, output = run_cli(str(video), "--model", str(tmp_path / "no-model"))
    lines = output.strip().splitlines()
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith(f"error: {video}: file not found")


def test_visualize_refuses_cuda_decode_on_a_cpu_device_in_one_line(
    make_video: Callable[..., Path], tiny_model_dir: Path, tmp_path: Path
) -> None:
    source = make_video("v.mp4", num_frames=4)
    out = tmp_path / "o.mp4"
    args = ["--model", str(tiny_model_dir), "--device", "cpu", "--decode", "cuda", "-o", str(out)]
    code, output = run_cli(str(source), *args)
    assert code == 2
    assert (
        output.strip()
        == "error: --decode cuda needs a CUDA device, not cpu; use --decode auto or cpu"
    )
    assert not out.exists()


def test_visualize_command_refuses_to_overwrite_its_input(
    make_video: Callable[..., Path], tiny_model_dir: Path
) -> None:
    source = make_video("self.mp4", num_frames=4)
    code, output = run_cli(str(source), "--model", str(tiny_model_dir), "--output", str(source))
    assert code == 2 and "would overwrite the input video" in output


@pytest.mark.slow
@pytest.mark.data
def test_real_29_97_fps_avi_gives_a_matching_overlay(
    data_dir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    source = data_dir / "ps7-arms" / "one_arm_raise"
    video = min(source.glob("*.avi"), key=lambda p: probe_video(p).num_frames)
    info = probe_video(video)
    predictor = Predictor(GKAAN.from_pretrained(tiny_model_dir), device="cpu", threads=1)
    prediction = predictor.predict_video(video, keep_attention=True)
    stream, frames = decode(render_overlay_video(video, prediction, tmp_path / "real.mp4"))
    assert len(frames) == info.num_frames
    assert stream.average_rate == Fraction(30000, 1001)
    assert overlay_layout(prediction).panel == (480, 360)


# ---- timeline: the caption follows the segment playing ------------------------------------


def segment(start: float, end: float, label: str, prob: float = 0.5) -> Segment:
    return Segment(start=start, end=end, label=label, prob=prob, first_window=0, last_window=0)


def test_segment_at_gives_a_boundary_to_the_segment_it_starts_and_gaps_to_the_nearest() -> None:
    contiguous = [segment(0.0, 1.0, "box"), segment(1.0, 2.0, "walk")]
    assert segment_at(contiguous, 0.0).label == "box"
    assert segment_at(contiguous, 0.999).label == "box"
    assert segment_at(contiguous, 1.0).label == "walk"
    assert segment_at(contiguous, -0.5).label == "box"  # before the first
    assert segment_at(contiguous, 2.0).label == "walk"  # the unscored tail
    assert segment_at(contiguous, 60.0).label == "walk"
    gapped = [segment(0.0, 1.0, "box"), segment(2.0, 3.0, "wave")]
    assert segment_at(gapped, 1.0).label == "box"
    assert segment_at(gapped, 1.25).label == "box"
    assert segment_at(gapped, 1.5).label == "box"  # half way: the earlier
    assert segment_at(gapped, 1.75).label == "wave"
    assert segment_at([segment(5.0, 6.0, "one")], 0.0).label == "one"
    with pytest.raises(ValueError, match="no segments"):
        segment_at([], 1.0)


def caption_positions(frames: list[np.ndarray], layout: OverlayLayout) -> list[int]:
    """Per decoded frame, the segment whose caption strip (``layout.background``) it shows."""
    top, bottom = 0, layout.caption_height  # the strip at the top, above the titles
    strips = [
        layout.background(n)[top:bottom].astype(np.int32)
        for n in range(len(layout.segment_captions))
    ]
    return [
        int(np.argmin([np.abs(frame[top:bottom].astype(np.int32) - s).mean() for s in strips]))
        for frame in frames
    ]


def test_overlay_captions_each_frame_with_the_segment_playing(
    make_video: Callable[..., Path], tmp_path: Path
) -> None:
    source = make_video("segments.mp4", num_frames=20)  # 25 fps: frame i at i * 0.04 s
    prediction = hand_prediction(source, {"sa": one_hot_maps([(0, 0)])}, [0])
    segments = [segment(0.0, 0.2, "box", 0.9), segment(0.2, 0.4, "walk", 0.8)]
    segments.append(segment(0.5, 0.6, "wave", 0.7))  # a gap before it, the tail after it
    layout = overlay_layout(prediction, segments)
    assert layout.segment_captions == (
        "box 90.0%  (segment 1/3, 0.00-0.20 s)",
        "walk 80.0%  (segment 2/3, 0.20-0.40 s)",
        "wave 70.0%  (segment 3/3, 0.50-0.60 s)",
    )
    assert layout.caption[0] == "video: box 70.0%"  # the whole video's label stays beside
    stream, frames = decode(
        render_overlay_video(source, prediction, tmp_path / "seg.mp4", segments=segments)
    )
    assert len(frames) == 20 and (stream.width, stream.height) == layout.size
    assert caption_positions(frames, layout) == [0] * 5 + [1] * 7 + [2] * 8
    with pytest.raises(ValueError, match="segments is empty"):
        render_overlay_video(source, prediction, tmp_path / "none.mp4", segments=[])


@pytest.mark.slow
def test_visualize_timeline_captions_follow_the_segments_it_prints(
    predicted: tuple[Path, VideoPrediction],
    tiny_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The random tiny model gives one label throughout: reversing the probabilities of the
    # second half of the windows gives the timeline a second segment (no switch cost: six
    # windows each side are too few to outweigh one).
    merged: list[list[Segment]] = []

    def two_halves(windows: list[WindowPrediction], labels: list[str], **options: Any) -> Any:
        half = len(windows) // 2
        flipped = [
            replace(w, probs=w.probs[::-1].copy()) if w.index >= half else w for w in windows
        ]
        merged.append(merge_segments(flipped, labels, **options))
        return merged[-1]

    monkeypatch.setattr(timeline_module, "merge_segments", two_halves)
    video, prediction = predicted  # 30 frames at 25 fps
    out = tmp_path / "e2e.gkaan.mp4"
    code, output = run_cli(
        str(video), "--model", str(tiny_model_dir), "-o", str(out), "--timeline",
        "--window", "0.32", "--hop", "0.16", "--smooth", "1", "--switch-cost", "0",
    )  # fmt: skip
    assert code == 0, output
    (segments,) = merged
    assert len(segments) == 2 and segments[0].label != segments[1].label
    for s in segments:
        assert f"{s.start:.2f}-{s.end:.2f} s  {s.label} {s.prob:.1%}" in output
    _, frames = decode(out)
    assert len(frames) == probe_video(video).num_frames == 30
    expected = [segments.index(segment_at(segments, i / 25)) for i in range(30)]
    assert caption_positions(frames, overlay_layout(prediction, segments)) == expected
    assert expected[0] == 0 and expected[-1] == 1


def test_visualize_refuses_timeline_options_without_timeline(tmp_path: Path) -> None:
    code, output = run_cli(str(tmp_path / "v.mp4"), "--window", "2")
    assert code == 2 and "need --timeline" in output
