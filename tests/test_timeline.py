"""The timeline of a long video or a live stream: windows, segments, outputs and live sources
(docs/predict.md#timeline)."""

from __future__ import annotations

import csv
import functools
import http.server
import io
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from gkaan_cli import GKAAN, GKAANConfig, Predictor
from gkaan_cli.cli import app
from gkaan_cli.config import SWITCH_COST, PreprocessConfig, SamplingConfig
from gkaan_cli.engine.outputs import format_timelines, timeline_record
from gkaan_cli.engine.predict import FrameBatch
from gkaan_cli.engine.timeline import (
    Segment,
    TimelinePrediction,
    TimelineSpec,
    WindowPrediction,
    _TimelineRun,
    merge_segments,
    predict_timeline,
    stream_timeline,
    timeline_spec,
)
from gkaan_cli.errors import UsageError
from gkaan_cli.video.formats import is_live_source
from gkaan_cli.video.reader import read_frames
from gkaan_cli.video.transforms import ClipTransform

runner = CliRunner()
LABELS = ["boxing", "running", "waving"]
ROOT = Path(__file__).resolve().parents[1]


def window(index: int, label: int, prob: float = 0.8, *, hop: float = 0.5) -> WindowPrediction:
    """Window ``index`` (1 s long, one every ``hop`` s) giving ``label`` probability ``prob``."""
    probs = np.full(len(LABELS), (1 - prob) / (len(LABELS) - 1), np.float32)
    probs[label] = prob
    start = index * hop
    return WindowPrediction(index, start, start + 1.0, 0, 0, probs, {"gp": probs}, labels=LABELS)


def windows(labels: list[int], prob: float = 0.8) -> list[WindowPrediction]:
    return [window(i, label, prob) for i, label in enumerate(labels)]


# --- merging windows into segments -------------------------------------------------------


def test_consecutive_windows_with_one_label_make_one_segment() -> None:
    segments = merge_segments(windows([0, 0, 0, 0]), LABELS, switch_cost=0)
    assert segments == [Segment(0.0, 2.5, "boxing", pytest.approx(0.8), 0, 3)]


def test_a_boundary_lies_halfway_between_the_window_centres() -> None:
    # centres at 0.5, 1.0, 1.5, 2.0: the change between windows 1 and 2 is at 1.25 s
    segments = merge_segments(windows([0, 0, 2, 2]), LABELS, switch_cost=0)
    assert [(s.start, s.end, s.label) for s in segments] == [
        (0.0, 1.25, "boxing"),
        (1.25, 2.5, "waving"),
    ]
    assert [(s.first_window, s.last_window) for s in segments] == [(0, 1), (2, 3)]


def test_a_segment_prob_is_the_mean_probability_of_its_label_over_its_windows() -> None:
    parts = [window(0, 0, 0.9), window(1, 0, 0.5), window(2, 1, 0.7)]
    first, second = merge_segments(parts, LABELS, switch_cost=0)
    assert first.prob == pytest.approx(0.7)
    assert second.prob == pytest.approx(0.7)


def test_smoothing_removes_a_one_window_flicker() -> None:
    flicker = windows([0, 0, 0, 1, 0, 0, 0], prob=0.6)
    assert [s.label for s in merge_segments(flicker, LABELS, switch_cost=0)] == [
        "boxing",
        "running",
        "boxing",
    ]
    smoothed = merge_segments(flicker, LABELS, switch_cost=0, smooth=3)
    assert [(s.label, s.start, s.end) for s in smoothed] == [("boxing", 0.0, 4.0)]


def test_smoothing_averages_the_windows_around_each_window() -> None:
    parts = [window(0, 0, 0.9), window(1, 1, 0.6), window(2, 1, 0.6)]
    # window 0 with smooth=2 averages windows 0 and 1: boxing (0.9 + 0.2) / 2 = 0.55 wins
    segments = merge_segments(parts, LABELS, switch_cost=0, smooth=2)
    assert [s.label for s in segments] == ["boxing", "running"]
    assert segments[0].prob == pytest.approx((0.9 + 0.2) / 2)


def test_min_duration_gives_a_short_segment_to_its_more_probable_neighbour() -> None:
    # boxing 0-3, a 0.5 s "running", then waving; the short one looks more like waving
    parts = windows([0] * 5) + [window(5, 1, 0.5)] + [window(i, 2) for i in range(6, 11)]
    probs = np.array([0.1, 0.5, 0.4], np.float32)
    parts[5] = WindowPrediction(5, 2.5, 3.5, 0, 0, probs, {}, labels=LABELS)
    assert [s.label for s in merge_segments(parts, LABELS, switch_cost=0)] == [
        "boxing",
        "running",
        "waving",
    ]
    merged = merge_segments(parts, LABELS, switch_cost=0, min_duration=1.0)
    assert [(s.label, s.start, s.end) for s in merged] == [
        ("boxing", 0.0, 2.75),
        ("waving", 2.75, 6.0),
    ]


def test_min_duration_leaves_long_segments_and_a_single_one_alone() -> None:
    parts = windows([0, 0, 0, 0, 2, 2, 2, 2])
    assert merge_segments(parts, LABELS, switch_cost=0, min_duration=1.0) == merge_segments(
        parts, LABELS, switch_cost=0
    )
    only = merge_segments(windows([1, 1]), LABELS, switch_cost=0, min_duration=60.0)
    assert [(s.label, s.start, s.end) for s in only] == [("running", 0.0, 1.5)]


def test_no_windows_make_no_segments() -> None:
    assert merge_segments([], LABELS, switch_cost=0) == []


@pytest.mark.parametrize(("smooth", "min_duration"), [(0, 0.0), (1, -1.0)])
def test_smoothing_below_one_or_a_negative_min_duration_is_a_usage_error(
    smooth: int, min_duration: float
) -> None:
    with pytest.raises(UsageError):
        merge_segments(
            windows([0]), LABELS, switch_cost=0, smooth=smooth, min_duration=min_duration
        )


# --- windows in frames ---------------------------------------------------------------------


def test_default_window_is_the_model_clip_and_the_hop_half_of_it() -> None:
    spec = timeline_spec(SamplingConfig(clip_len=30), 25.0)
    assert spec == TimelineSpec(window=30, hop=15, fps=25.0)
    assert (spec.window_seconds, spec.hop_seconds) == (1.2, 0.6)


def test_window_and_hop_seconds_round_to_whole_frames() -> None:
    spec = timeline_spec(SamplingConfig(clip_len=30), 25.0, window=2.41, hop=0.9)
    assert (spec.window, spec.hop) == (60, 22)


@pytest.mark.parametrize(("window", "hop"), [(1.0, None), (0.0, None), (None, 0.0), (2.0, -1.0)])
def test_a_window_shorter_than_a_clip_or_a_nonpositive_hop_is_a_usage_error(
    window: float | None, hop: float | None
) -> None:
    with pytest.raises(UsageError):
        timeline_spec(SamplingConfig(clip_len=30), 25.0, window=window, hop=hop)


def test_only_dash_and_stream_urls_are_live_sources() -> None:
    for live in ("-", "http://127.0.0.1:8000/a.ts", "HTTPS://h/x", "rtsp://cam/1", "udp://@:1234"):
        assert is_live_source(live)
    for path in ("--", "clip.mp4", "./-", "file:///tmp/x.mp4", "http:/x", "fifo.mp4"):
        assert not is_live_source(path)


# --- the streaming run with a tiny model ---------------------------------------------------


def tiny_config() -> GKAANConfig:
    return GKAANConfig(
        num_classes=3,
        class_names=LABELS,
        backbone="resnet18",
        sru_hidden=16,
        sru_layers=1,
        la_hidden=8,
        sampling=SamplingConfig(clip_len=4, stride=2, max_clips=3),
        preprocess=PreprocessConfig(resize=(64, 64), crop=56),
    )


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    return GKAAN(tiny_config()).save_pretrained(tmp_path_factory.mktemp("ckpt") / "tiny")


@pytest.fixture(scope="module")
def predictor(checkpoint: Path) -> Predictor:
    return Predictor(GKAAN.from_pretrained(checkpoint), batch_size=5, precision="fp32")


def clip_probs(predictor: Predictor, path: Path, frames: list[int]) -> np.ndarray:
    """Reference: decode one clip on its own and run the whole model on it."""
    height, width = predictor.config.preprocess.resize
    images = [f.image for f in read_frames(path, size=(width, height), indices=frames)]
    clip = ClipTransform(predictor.config.preprocess, train=False)(
        torch.from_numpy(np.stack(images))
    )
    with torch.inference_mode():
        return predictor.model(clip[None]).probs[0].numpy()


@pytest.mark.slow
def test_a_window_over_the_whole_video_is_the_video_prediction(
    predictor: Predictor, make_video
) -> None:
    video = make_video("a.mp4", num_frames=30)
    timeline = predict_timeline(predictor, video, window=30 / 25)
    assert len(timeline.windows) == 1
    np.testing.assert_allclose(timeline.windows[0].probs, predictor.predict_video(video).probs)


def test_overlapping_windows_run_each_frame_through_the_backbone_once(
    predictor: Predictor, make_video
) -> None:
    video = make_video("a.mp4", num_frames=41)
    timeline = predict_timeline(predictor, video)  # windows of 4 frames every 2
    assert timeline.processed_frames == 40  # frame 40 is in no full window
    assert [(w.first_frame, w.last_frame) for w in timeline.windows] == [
        (k, k + 3) for k in range(0, 37, 2)
    ]
    assert [(w.start, w.end) for w in timeline.windows[:2]] == [
        pytest.approx((0.0, 0.16)),
        pytest.approx((0.08, 0.24)),
    ]
    for w in timeline.windows[::6]:
        expected = clip_probs(predictor, video, list(range(w.first_frame, w.last_frame + 1)))
        np.testing.assert_allclose(w.probs, expected, atol=1e-5)
    assert timeline.segments[0].start == 0.0
    assert timeline.segments[-1].end == pytest.approx(timeline.windows[-1].end)


def test_a_window_longer_than_a_clip_averages_its_clips(predictor: Predictor, make_video) -> None:
    video = make_video("a.mp4", num_frames=20)
    timeline = predict_timeline(predictor, video, window=8 / 25, hop=8 / 25)
    first = timeline.windows[0]  # clips 0-3, 2-5, 4-7 (the model's dense sampling)
    expected = np.mean([clip_probs(predictor, video, list(range(s, s + 4))) for s in (0, 2, 4)], 0)
    np.testing.assert_allclose(first.probs, expected, atol=1e-5)
    assert len(timeline.windows) == 2


def test_a_hop_longer_than_the_window_skips_the_frames_between_windows(
    predictor: Predictor, make_video
) -> None:
    video = make_video("a.mp4", num_frames=50)
    timeline = predict_timeline(predictor, video, hop=0.4)  # 4-frame windows every 10 frames
    assert [w.first_frame for w in timeline.windows] == [0, 10, 20, 30, 40]
    assert timeline.processed_frames == 20


def test_a_video_shorter_than_a_window_is_one_window_like_predict_video(
    predictor: Predictor, make_video
) -> None:
    video = make_video("a.mp4", num_frames=3)
    timeline = predict_timeline(predictor, video)
    assert len(timeline.windows) == 1 and len(timeline.segments) == 1
    np.testing.assert_allclose(timeline.windows[0].probs, predictor.predict_video(video).probs)


def test_maps_in_memory_stay_within_one_window_and_a_batch(predictor: Predictor) -> None:
    spec = TimelineSpec(window=8, hop=4, fps=25.0)
    run = _TimelineRun(predictor, spec, 120)
    images = np.zeros((5, 64, 64, 3), np.uint8)
    most = 0
    with torch.inference_mode():
        for first in range(0, 120, 5):
            indices = list(range(first, first + 5))
            run.add_frames(FrameBatch(indices, [i / 25 for i in indices], images))
            most = max(most, len(run.scorer.maps))
            assert len(run.clips) <= 8
    assert run.next_window == (120 - 8) // 4 + 1
    assert most <= spec.window + 5


# --- outputs and the command ---------------------------------------------------------------


def test_json_and_csv_carry_windows_segments_and_the_model(
    predictor: Predictor, make_video
) -> None:
    timeline = predict_timeline(predictor, make_video("a.mp4", num_frames=20), smooth=3)
    record = json.loads(format_timelines([timeline], "json", top_k=2))[0]
    assert record == json.loads(json.dumps(timeline_record(timeline, top_k=2)))
    assert record["timeline"] == {
        "window": 0.16,
        "hop": 0.08,
        "window_frames": 4,
        "hop_frames": 2,
        "smooth": 3,
        "min_duration": 0.0,
        "switch_cost": SWITCH_COST,
    }
    assert len(record["windows"]) == 9 and len(record["windows"][0]["top_k"]) == 2
    assert record["segments"][0]["start"] == 0.0
    assert record["model"]["classes"] == LABELS
    lines = format_timelines([timeline, timeline], "jsonl").splitlines()
    assert [json.loads(line)["file"] for line in lines] == [timeline.path] * 2
    rows = list(csv.DictReader(io.StringIO(format_timelines([timeline], "csv", top_k=2))))
    levels = [row["level"] for row in rows]
    assert levels == ["segment"] * len(timeline.segments) + ["window"] * 9
    assert rows[0]["label_1"] == timeline.segments[0].label
    assert rows[-1]["gs_label"] in LABELS and rows[-1]["model"] == record["model"]["name"]


def test_predict_timeline_command_prints_the_segments(checkpoint: Path, make_video) -> None:
    video = make_video("a.mp4", num_frames=20)
    args = ["predict", str(video), "--model", str(checkpoint), "--timeline", "-q"]
    result = runner.invoke(app, [*args, "--smooth", "3"])
    assert result.exit_code == 0, result.output
    assert f"segments of {video} (9 windows of 0.16 s every 0.08 s)" in result.stdout
    result = runner.invoke(app, [*args, "-f", "json", "--window", "0.32", "--hop", "0.32"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)[0]["windows"]) == 2


def test_timeline_report_draws_the_segments(checkpoint: Path, make_video, tmp_path: Path) -> None:
    video = make_video("a.mp4", num_frames=20)
    page = tmp_path / "report.html"
    args = ["predict", str(video), "--model", str(checkpoint), "--timeline", "-q"]
    result = runner.invoke(app, [*args, "-f", "json", "--report", str(page)])
    assert result.exit_code == 0, result.output
    segments = json.loads(result.stdout)[0]["segments"]
    html = page.read_text()
    assert "<h3>Windows and segments</h3>" in html
    # the ranked labels are the windows' mean and say so: the video's answer is predict's
    assert "Mean over the timeline&#x27;s windows, not the video&#x27;s answer" in html
    for segment in segments:
        assert f"<title>{segment['label']} {segment['start']:.2f}-{segment['end']:.2f} s" in html


@pytest.mark.parametrize(
    "extra", [["--window", "2"], ["--timeline", "--clips"], ["--timeline", "--save-video", "o"]]
)
def test_timeline_options_that_do_not_fit_are_usage_errors(
    checkpoint: Path, make_video, extra: list[str]
) -> None:
    video = make_video("a.mp4", num_frames=8)
    result = runner.invoke(app, ["predict", str(video), "--model", str(checkpoint), *extra])
    assert result.exit_code == 2


def test_a_live_source_must_be_the_only_input(checkpoint: Path, make_video) -> None:
    video = make_video("a.mp4", num_frames=8)
    result = runner.invoke(app, ["predict", "-", str(video), "--model", str(checkpoint)])
    assert result.exit_code == 2
    assert "only input" in result.output


# --- real clips: boundaries with the default model, live sources ---------------------------


def concat_clips(out: Path, pieces: list[tuple[Path, float, float]], fps: int = 25) -> Path:
    """Decode each (video, start s, end s) piece with PyAV and re-encode them, in order, into
    one 160 x 120 MPEG-4 AVI at ``fps`` (a container that also streams through a pipe)."""
    with av.open(str(out), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = 4_000_000  # near lossless at KTH's 160 x 120
        stream.width, stream.height = 160, 120  # every KTH video
        for path, start, end in pieces:
            first, stop = round(start * fps), round(end * fps)
            for frame in read_frames(path, size=(160, 120), indices=range(first, stop)):
                image = av.VideoFrame.from_ndarray(frame.image, format="rgb24")
                container.mux(stream.encode(image))
        container.mux(stream.encode())
    return out


#: 6 s pieces the default model labels right all through (checked window by window).
PIECES = (
    ("boxing", "boxing/person02_boxing_d4_uncomp.avi", 2.0),
    ("walking", "walking/person16_walking_d3_uncomp.avi", 18.0),
    ("handwaving", "handwaving/person01_handwaving_d2_uncomp.avi", 2.0),
)
PIECE_SECONDS = 6.0


@pytest.mark.slow
def test_segments_of_concatenated_clips_find_the_classes_and_the_cuts(
    data_dir: Path, tmp_path: Path
) -> None:
    kth = data_dir / "kth-mini"
    pieces = [(kth / name, start, start + PIECE_SECONDS) for _, name, start in PIECES]
    video = concat_clips(tmp_path / "three.avi", pieces)
    predictor = Predictor(GKAAN.from_pretrained("kth-lite0"), precision="auto")
    timeline = predict_timeline(predictor, video, min_duration=2.0)
    window = timeline.spec.window_seconds
    assert [s.label for s in timeline.segments] == [label for label, _, _ in PIECES]
    cuts = [PIECE_SECONDS, 2 * PIECE_SECONDS]
    boundaries = [s.start for s in timeline.segments[1:]]
    assert all(abs(b - c) <= window for b, c in zip(boundaries, cuts, strict=True)), boundaries
    assert timeline.segments[0].start == 0.0
    assert timeline.segments[-1].end >= 3 * PIECE_SECONDS - timeline.spec.hop_seconds - 1e-6


@pytest.fixture(scope="module")
def real_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 s of a real KTH video re-encoded to MPEG-4 AVI (skips without ../shared/data)."""
    from conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip(f"real videos not found at {SHARED_DATA} (present in CI)")
    source = SHARED_DATA / "kth-mini" / "boxing" / "person02_boxing_d4_uncomp.avi"
    return concat_clips(tmp_path_factory.mktemp("live") / "boxing.avi", [(source, 0.0, 4.0)])


def gkaan(*args: str, stdin: Path) -> subprocess.CompletedProcess[str]:
    with stdin.open("rb") as source:
        return subprocess.run(
            [sys.executable, "-m", "gkaan_cli", *args],
            stdin=source,
            capture_output=True,
            text=True,
            timeout=300,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
            check=False,
        )


@pytest.mark.slow
def test_stdin_prints_a_line_per_window_and_the_segments_of_file_mode(
    checkpoint: Path, real_clip: Path
) -> None:
    model = ["--model", str(checkpoint)]
    stream = gkaan("predict", "-", *model, "--smooth", "3", "-f", "json", stdin=real_clip)
    assert stream.returncode == 0, stream.stderr
    live = json.loads(stream.stdout)[0]
    result = runner.invoke(
        app, ["predict", str(real_clip), *model, "--timeline", "--smooth", "3", "-f", "json", "-q"]
    )
    assert result.exit_code == 0, result.output
    file = json.loads(result.stdout)[0]
    assert live["file"] == "-" and live["num_frames"] == file["num_frames"] == 100
    assert [s["label"] for s in live["segments"]] == [s["label"] for s in file["segments"]]
    for a, b in zip(live["segments"], file["segments"], strict=True):
        assert (a["start"], a["end"]) == pytest.approx((b["start"], b["end"]))
        assert a["prob"] == pytest.approx(b["prob"], abs=1e-4)
    assert len(live["windows"]) == len(file["windows"]) == 49
    lines = [line for line in stream.stderr.splitlines() if line.endswith("%")]
    assert len(lines) == 49  # json on stdout: the per-window lines go to stderr
    for line, window in zip(lines, file["windows"], strict=True):
        top = window["top_k"][0]
        assert line.split() == [
            f"{window['start']:.2f}-{window['end']:.2f}",
            "s",
            top["label"],
            f"{top['prob']:.1%}",
        ]


@pytest.mark.slow
def test_stdin_table_prints_the_window_lines_then_the_segments(
    checkpoint: Path, real_clip: Path
) -> None:
    stream = gkaan("predict", "-", "--model", str(checkpoint), "--hop", "0.4", stdin=real_clip)
    assert stream.returncode == 0, stream.stderr
    out = stream.stdout.splitlines()
    assert out[0].split()[:2] == ["0.00-0.16", "s"]
    assert sum(line.endswith("%") for line in out) == 10  # windows every 10 frames
    assert any(line.startswith("segments of - (10 windows of 0.16 s") for line in out)
    assert "live: - (160x120, 25 fps, mpeg4)" in stream.stderr


@pytest.mark.slow
def test_ctrl_c_on_a_live_source_prints_the_segments_so_far(
    checkpoint: Path, real_clip: Path
) -> None:
    data = real_clip.read_bytes()
    # Python leaves Ctrl-C ignored when it starts with SIGINT ignored, as a child of a
    # background job does (`ci &`): give the child the interactive default, as a terminal would
    ctrl_c = "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler)"
    main = f"{ctrl_c}; runpy.run_module('gkaan_cli', run_name='__main__')"
    process = subprocess.Popen(
        [sys.executable, "-c", main, "predict", "-", "--model", str(checkpoint)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(data[: len(data) // 2])  # the stream stays open: a camera
    process.stdin.flush()
    first = process.stdout.readline().decode()
    assert first.split()[:2] == ["0.00-0.16", "s"]
    process.send_signal(signal.SIGINT)
    process.wait(timeout=120)  # stdin still open: the stream cannot end before the interrupt
    out, err = process.communicate()  # a few lines: they fit in the pipes while it exits
    assert process.returncode == 130, err.decode()
    assert "segments of - (" in out.decode()
    assert "interrupted after" in err.decode() and "Traceback" not in err.decode()


@pytest.fixture
def http_url(real_clip: Path) -> Iterator[str]:
    """``real_clip`` served over HTTP on 127.0.0.1."""
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(real_clip.parent)
    )
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{real_clip.name}"
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_an_http_stream_gives_the_windows_of_the_file(
    predictor: Predictor, real_clip: Path, http_url: str
) -> None:
    live = stream_timeline(predictor, http_url, window=0.32, hop=0.2)
    seen = [window.index for window in live]
    live.close()
    streamed = live.result(min_duration=0.5)
    file = predict_timeline(predictor, real_clip, window=0.32, hop=0.2, min_duration=0.5)
    assert seen == list(range(len(file.windows))) and live.dropped is None
    for a, b in zip(streamed.windows, file.windows, strict=True):
        assert (a.start, a.end, a.first_frame) == (b.start, b.end, b.first_frame)
        np.testing.assert_allclose(a.probs, b.probs, atol=1e-5)
    assert [(s.label, s.start, s.end) for s in streamed.segments] == [
        (s.label, s.start, s.end) for s in file.segments
    ]


def test_a_stream_that_drops_gives_one_error_line_then_the_segments_so_far(
    checkpoint: Path, real_clip: Path
) -> None:
    data = real_clip.read_bytes()

    class HalfThenClose(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # announces the whole file, sends half, hangs up
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HalfThenClose)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/clip.avi"
    try:
        result = runner.invoke(app, ["predict", url, "--model", str(checkpoint), "-q"])
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and f"{url}: the stream dropped after" in errors[0]
    windows = [line for line in result.stdout.splitlines() if line.endswith("%")]
    assert 10 < len(windows) < 49  # about half of the 49 windows of the whole clip
    assert f"segments of {url} ({len(windows)} windows" in result.stdout


def test_an_unreachable_stream_is_one_error_line(checkpoint: Path) -> None:
    result = runner.invoke(
        app, ["predict", "http://127.0.0.1:9/none.avi", "--model", str(checkpoint), "-q"]
    )
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "http://127.0.0.1:9/none.avi" in errors[0]


def test_a_segment_is_unknown_when_most_of_its_windows_are_and_says_so_as_everything_does() -> None:
    import dataclasses

    from gkaan_cli.engine.predict import verdict_text

    parts = windows([0, 0, 0, 0])
    judged = [dataclasses.replace(w, in_distribution=i != 0) for i, w in enumerate(parts)]
    (kept,) = merge_segments(judged, LABELS, switch_cost=0)
    assert kept.in_distribution is True and kept.verdict == "boxing"  # 1 of 4 unknown
    unknown = [dataclasses.replace(w, in_distribution=i == 0) for i, w in enumerate(parts)]
    (segment,) = merge_segments(unknown, LABELS, switch_cost=0)
    assert segment.in_distribution is False
    assert segment.verdict == "unknown (closest: boxing 80%)" == verdict_text("boxing", 0.8, False)
    assert unknown[1].verdict == segment.verdict  # a window says it the same way
    (plain,) = merge_segments(parts, LABELS, switch_cost=0)
    assert plain.in_distribution is None and plain.verdict == "boxing"  # no verdict: the label


def test_segment_times_are_rounded_to_the_microsecond() -> None:
    parts = [window(3 + i, 0, hop=0.1) for i in range(3)]
    assert parts[0].start != 0.3  # 3 * 0.1 in floating point: 0.30000000000000004
    (segment,) = merge_segments(parts, LABELS, switch_cost=0)
    assert (segment.start, segment.end) == (0.3, 1.5)


def test_a_live_timeline_stopped_before_its_first_window_writes_the_models_csv_header() -> None:
    """Ctrl-C on ``predict - -f csv`` before one window: the CSV header with the model's
    stream columns, no rows (before: an IndexError reading the first window's streams)."""
    from gkaan_cli.video.reader import VideoInfo

    empty = TimelinePrediction(
        path="-",
        info=VideoInfo("-", 320, 240, 25.0, 0, 0.0, "h264", 0),
        labels=["a", "b"],
        spec=TimelineSpec(window=30, hop=15, fps=25.0),
        windows=[],
        segments=[],
        streams=GKAANConfig(num_classes=2, motion="track").output_streams,
    )
    rows = list(csv.reader(io.StringIO(format_timelines([empty], "csv", top_k=2))))
    assert len(rows) == 1
    assert [c for c in rows[0] if c.endswith("_label")] == [
        "gs_label",
        "gl_label",
        "gp_label",
        "gm_label",
    ]
