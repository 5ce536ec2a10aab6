"""``gkaan predict`` and the streaming Predictor: one backbone pass per frame, same numbers as
a naive per-clip pipeline, machine-readable outputs, and bad inputs reported one line each."""

from __future__ import annotations

import csv
import io
import json
import pickle
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from click.testing import Result
from rich.console import Console
from typer.testing import CliRunner

from gkaan_cli.apis.options import SamplingOverrides
from gkaan_cli.cli import guarded
from gkaan_cli.commands.predict import predict
from gkaan_cli.commands.tables import predictions_table
from gkaan_cli.config import GKAANConfig, PreprocessConfig, SamplingConfig
from gkaan_cli.engine import predict as predict_module
from gkaan_cli.engine.predict import Predictor, VideoPrediction, expand_inputs, resolve_decode
from gkaan_cli.engine.timeline import predict_timeline
from gkaan_cli.errors import BadVideoError, UsageError
from gkaan_cli.model.gkaan import GKAAN
from gkaan_cli.model.precision import resolve_precision
from gkaan_cli.video.reader import VideoInfo, cuda_decode_problem, probe_video, read_frames
from gkaan_cli.video.sampling import sample_clips
from gkaan_cli.video.transforms import ClipTransform

#: The precision the default ``auto`` runs on this CPU (bf16 where native, else fp32).
AUTO = resolve_precision("auto", torch.device("cpu"))
SMALL = PreprocessConfig(resize=(64, 64), crop=56)


def tiny_config(**overrides: object) -> GKAANConfig:
    """A 3-class resnet18 model with tiny SRUs, short overlapping clips and small frames."""
    settings: dict[str, object] = {
        "num_classes": 3,
        "class_names": ["boxing", "running", "waving"],
        "backbone": "resnet18",
        "sru_hidden": 32,
        "sru_layers": 1,
        "sampling": SamplingConfig(clip_len=4, stride=2, max_clips=3),
        "preprocess": SMALL,
    }
    return GKAANConfig(**(settings | overrides))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny random early-fusion model (GS, GL, GP streams; SA and LA maps)."""
    torch.manual_seed(0)
    return GKAAN(tiny_config()).save_pretrained(tmp_path_factory.mktemp("ckpt") / "tiny")


def load(checkpoint: Path) -> GKAAN:
    return GKAAN.from_pretrained(checkpoint)


def naive_predict(model: GKAAN, path: Path, sampling: SamplingConfig) -> dict[str, np.ndarray]:
    """Reference pipeline: decode each clip on its own and run ``model(clip)`` on it."""
    info = probe_video(path)
    transform = ClipTransform(model.config.preprocess, train=False)
    height, width = model.config.preprocess.resize
    probs, sa = [], {}
    with torch.inference_mode():
        for clip in sample_clips(info.num_frames, sampling, fps=info.fps):
            images = {
                f.index: f.image
                for f in read_frames(path, size=(width, height), indices=clip.frames)
            }
            frames = torch.from_numpy(np.stack([images[i] for i in clip.frames]))
            output = model(transform(frames)[None])
            probs.append(output.probs[0].numpy())
            for t, index in enumerate(clip.frames):
                sa.setdefault(index, output.attention["sa"][0, t].numpy())
    return {"probs": np.mean(probs, axis=0), "clip_probs": np.stack(probs), "sa": sa}


def test_each_frame_goes_through_the_backbone_once_when_clips_overlap(
    checkpoint: Path, make_video: Callable[..., Path]
) -> None:
    video = make_video("overlap.mp4", num_frames=20)
    model = load(checkpoint)
    sampling = SamplingConfig(clip_len=6, stride=2, max_clips=20)
    batches: list[int] = []
    predictor = Predictor(model, device="cpu", batch_size=7, sampling=sampling)
    extract = predictor.trunk

    def counting(frames: torch.Tensor) -> torch.Tensor:
        batches.append(frames.shape[0])
        return extract(frames)

    predictor.trunk = counting  # type: ignore[assignment]
    result = predictor.predict_video(video)
    assert [c.frames[0] for c in result.clips] == [0, 2, 4, 6, 8, 10, 12, 14]
    assert sum(len(c.frames) for c in result.clips) == 48
    assert sum(batches) == 20
    assert batches == [7, 7, 6]


def test_predictions_equal_a_naive_per_clip_pipeline(
    checkpoint: Path, make_video: Callable[..., Path]
) -> None:
    video = make_video("same.mp4", num_frames=17, size=(80, 60))
    sampling = SamplingConfig(clip_len=5, stride=3, max_clips=20)
    expected = naive_predict(load(checkpoint), video, sampling)
    result = Predictor(
        load(checkpoint), device="cpu", precision="fp32", batch_size=4, sampling=sampling
    )
    prediction = result.predict_video(video, keep_attention=True)
    np.testing.assert_allclose(prediction.probs, expected["probs"], atol=1e-5)
    np.testing.assert_allclose(
        np.stack([c.probs for c in prediction.clips]), expected["clip_probs"], atol=1e-5
    )
    assert list(prediction.attention_frames) == sorted(expected["sa"])
    np.testing.assert_allclose(
        prediction.attention["sa"],
        np.stack([expected["sa"][i] for i in sorted(expected["sa"])]),
        atol=1e-5,
    )
    assert prediction.attention["la"].shape == (17, 2, 2)
    np.testing.assert_allclose(prediction.attention_times, prediction.attention_frames / 25)


def test_video_probabilities_are_the_mean_of_clip_probabilities(
    checkpoint: Path, make_video: Callable[..., Path]
) -> None:
    video = make_video("mean.mp4", num_frames=14)
    prediction = Predictor(load(checkpoint), device="cpu").predict_video(video)
    assert len(prediction.clips) == 3
    np.testing.assert_allclose(prediction.probs, np.mean([c.probs for c in prediction.clips], 0))
    for name in ("gs", "gl", "gp"):
        clip_mean = np.mean([c.stream_probs[name] for c in prediction.clips], axis=0)
        np.testing.assert_allclose(prediction.stream_probs[name], clip_mean, rtol=1e-6)
    assert prediction.probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert prediction.top_k(2)[0] == (
        prediction.labels[int(prediction.probs.argmax())],
        float(prediction.probs.max()),
    )


def test_same_video_and_model_give_the_same_numbers_every_run(
    checkpoint: Path, make_video: Callable[..., Path]
) -> None:
    video = make_video("det.mp4", num_frames=16)
    first = Predictor(load(checkpoint), device="cpu", batch_size=3).predict_video(video)
    second = Predictor(load(checkpoint), device="cpu", batch_size=3).predict_video(video)
    assert np.array_equal(first.probs, second.probs)
    assert all(
        np.array_equal(a.probs, b.probs) for a, b in zip(first.clips, second.clips, strict=True)
    )


def test_a_video_shorter_than_a_clip_is_padded_and_predicted(
    checkpoint: Path, make_video: Callable[..., Path]
) -> None:
    video = make_video("short.mp4", num_frames=3)
    prediction = Predictor(load(checkpoint), device="cpu").predict_video(video)
    assert [c.frames for c in prediction.clips] == [(0, 0, 1, 2)]


def test_bf16_autocast_on_cpu_stays_close_to_fp32(
    checkpoint: Path, make_video: Callable[..., Path]
) -> None:
    video = make_video("bf16.mp4", num_frames=8)
    fp32 = Predictor(load(checkpoint), device="cpu", precision="fp32").predict_video(video)
    bf16 = Predictor(load(checkpoint), device="cpu", precision="bf16").predict_video(video)
    assert bf16.probs.dtype == np.float32
    np.testing.assert_allclose(bf16.probs, fp32.probs, atol=0.05)


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bf16_only_where_the_hardware_runs_it_natively(
    checkpoint: Path, make_video: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    import gkaan_cli.model.precision as precision

    monkeypatch.setattr(precision, "native_bf16", lambda device: native)
    predictor = Predictor(load(checkpoint), device="cpu", precision="auto")
    expected = "bf16" if native else "fp32"
    assert predictor.precision == expected
    assert predictor.model_info["precision"] == expected  # the model block says which
    prediction = predictor.predict_video(make_video("auto.mp4", num_frames=8))
    assert prediction.model is not None and prediction.model["precision"] == expected
    assert prediction.probs.dtype == np.float32  # heads and fusion stay in fp32


def test_fp16_on_cpu_and_an_unknown_device_are_usage_errors(checkpoint: Path) -> None:
    with pytest.raises(UsageError, match="fp16 needs a CUDA device"):
        Predictor(load(checkpoint), device="cpu", precision="fp16")
    with pytest.raises(UsageError, match="device must be"):
        Predictor(load(checkpoint), device="tpu")


def test_predict_many_reports_bad_videos_and_carries_on(
    checkpoint: Path, make_video: Callable[..., Path], tmp_path: Path
) -> None:
    good = make_video("good.mp4", num_frames=8)
    results = list(
        Predictor(load(checkpoint), device="cpu").predict_many([tmp_path / "gone.mp4", good])
    )
    assert isinstance(results[0], BadVideoError)
    assert results[0].path == str(tmp_path / "gone.mp4")
    assert isinstance(results[1], VideoPrediction)
    assert results[1].path == str(good)


def assert_same_prediction(got: VideoPrediction, expected: VideoPrediction) -> None:
    """Same file, frames, clips and numbers (up to the backbone's batch-composition noise)."""
    assert got.path == expected.path
    assert got.labels == expected.labels
    assert got.processed_frames == expected.processed_frames
    assert [(c.frames, c.start, c.end) for c in got.clips] == [
        (c.frames, c.start, c.end) for c in expected.clips
    ]
    np.testing.assert_allclose(got.probs, expected.probs, rtol=1e-5, atol=1e-6)
    for name, probs in expected.stream_probs.items():
        np.testing.assert_allclose(got.stream_probs[name], probs, rtol=1e-5, atol=1e-6)
    for a, b in zip(got.clips, expected.clips, strict=True):
        np.testing.assert_allclose(a.probs, b.probs, rtol=1e-5, atol=1e-6)
    assert list(got.attention_frames) == list(expected.attention_frames)
    for name, maps in expected.attention.items():
        np.testing.assert_allclose(got.attention[name], maps, rtol=1e-5, atol=1e-6)


def test_predict_many_equals_predict_video_for_each_video_in_input_order(
    checkpoint: Path, make_video: Callable[..., Path]
) -> None:
    lengths = [3, 9, 14, 5, 20, 2]  # shorter and longer than a clip (4) and a batch (8)
    videos = [make_video(f"m{i}.mp4", num_frames=n) for i, n in enumerate(lengths)]
    predictor = Predictor(load(checkpoint), device="cpu", batch_size=8)
    many = list(predictor.predict_many(videos, keep_attention=True))
    assert [p.path for p in many if isinstance(p, VideoPrediction)] == [str(v) for v in videos]
    for got, video in zip(many, videos, strict=True):
        assert isinstance(got, VideoPrediction)
        assert_same_prediction(got, predictor.predict_video(video, keep_attention=True))


def test_predict_many_yields_a_bad_video_s_error_in_its_place_and_predicts_the_rest(
    checkpoint: Path,
    make_video: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gkaan_cli.engine.predict as engine

    first = make_video("first.mp4", num_frames=6)
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    missing = tmp_path / "missing.mp4"
    cut = make_video("cut.mp4", num_frames=5)
    last = make_video("last.mp4", num_frames=7)
    real_probe = engine.probe_video

    def probe(path: Path) -> VideoInfo:  # ``cut`` shrinks after its probe (still being written)
        info = real_probe(path)
        return replace(info, num_frames=12) if Path(path) == cut else info

    monkeypatch.setattr(engine, "probe_video", probe)
    predictor = Predictor(load(checkpoint), device="cpu", batch_size=4)
    results = list(predictor.predict_many([first, text, missing, cut, last]))
    assert [type(r) for r in results] == [
        VideoPrediction,
        BadVideoError,
        BadVideoError,
        BadVideoError,
        VideoPrediction,
    ]
    assert [r.path for r in results] == [str(p) for p in (first, text, missing, cut, last)]
    assert isinstance(results[2], BadVideoError) and results[2].reason == "file not found"
    assert isinstance(results[3], BadVideoError)
    assert results[3].reason == "decoding stopped early (frame 5 not decoded)"
    monkeypatch.undo()
    for index, video in ((0, first), (4, last)):
        got = results[index]
        assert isinstance(got, VideoPrediction)
        assert_same_prediction(got, predictor.predict_video(video))


def test_batches_span_videos_and_each_result_comes_once_its_last_frame_is_in(
    checkpoint: Path, make_video: Callable[..., Path]
) -> None:
    videos = [make_video(f"s{i}.mp4", num_frames=3) for i in range(5)]  # 3 frames each
    predictor = Predictor(load(checkpoint), device="cpu", batch_size=4)
    trunk = predictor.trunk
    batches: list[int] = []

    def counting(frames: torch.Tensor) -> torch.Tensor:
        batches.append(frames.shape[0])
        return trunk(frames)

    predictor.trunk = counting  # type: ignore[assignment]
    events: list[tuple[int, int | None]] = []
    results = predictor.predict_many(
        videos, on_progress=lambda event: events.append((event.done, event.total))
    )
    assert next(results).path == str(videos[0])
    assert batches == [4]  # the first video's 3 frames and the second's first
    assert [r.path for r in results] == [str(v) for v in videos[1:]]
    assert batches == [4, 4, 4, 3]  # full batches of 4 until the last: never 3 per video
    # per video: frames done of its needed frames, each video in turn up to its total
    assert events == [(3, 3), (1, 3), (3, 3), (2, 3), (3, 3), (3, 3), (3, 3)]


def test_inputs_expand_directories_recursively_and_globs(
    make_video: Callable[..., Path], tmp_path: Path
) -> None:
    a = make_video("set/a/one.mp4", num_frames=2)
    b = make_video("set/b/two.avi", num_frames=2)
    (tmp_path / "set" / "notes.txt").write_text("not a video")
    (tmp_path / "empty").mkdir()
    paths, errors = expand_inputs(
        [
            str(tmp_path / "set"),
            str(tmp_path / "set" / "*" / "*.mp4"),
            str(tmp_path / "empty"),
            str(tmp_path / "nope.mp4"),
        ]
    )
    assert paths == [a, b]
    assert [(e.path, e.reason) for e in errors] == [
        (str(tmp_path / "empty"), "no video files in directory"),
        (str(tmp_path / "nope.mp4"), "no such file"),
    ]


# --- the command ---------------------------------------------------------------------------


def run_cli(*args: str) -> Result:
    app = typer.Typer()
    app.callback()(lambda: None)
    app.command("predict")(guarded(predict))
    return CliRunner().invoke(app, ["predict", *args])


def test_json_output_holds_top_k_streams_and_clip_timeline(
    checkpoint: Path, make_video: Callable[..., Path]
) -> None:
    video = make_video("json.mp4", num_frames=12)
    result = run_cli(str(video), "--model", str(checkpoint), "-f", "json", "-k", "2", "--clips")
    assert result.exit_code == 0, result.output
    (record,) = json.loads(result.stdout)
    assert record["file"] == str(video)
    assert record["num_frames"] == 12
    assert len(record["top_k"]) == 2
    assert {t["label"] for t in record["top_k"]} <= {"boxing", "running", "waving"}
    assert record["top_k"][0]["prob"] >= record["top_k"][1]["prob"]
    assert set(record["streams"]) == {"gs", "gl", "gp"}
    assert [(c["start"], c["end"]) for c in record["clips"]] == [
        (0.0, 0.16),
        (0.16, 0.32),
        (0.32, 0.48),
    ]
    assert all(len(c["top_k"]) == 2 for c in record["clips"])


def test_jsonl_and_csv_outputs_parse_with_one_record_per_video(
    checkpoint: Path, make_video: Callable[..., Path], tmp_path: Path
) -> None:
    videos = [str(make_video(f"v{i}.mp4", num_frames=5)) for i in range(2)]
    jsonl = run_cli(*videos, "--model", str(checkpoint), "-f", "jsonl")
    assert jsonl.exit_code == 0
    assert [json.loads(line)["file"] for line in jsonl.stdout.splitlines()] == videos
    out = tmp_path / "preds.csv"
    table = run_cli(*videos, "--model", str(checkpoint), "-o", str(out), "--clips", "-k", "3")
    assert table.exit_code == 0
    assert table.stdout == ""
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [(r["file"], r["level"]) for r in rows] == [
        (videos[0], "video"),
        (videos[0], "clip"),
        (videos[1], "video"),
        (videos[1], "clip"),
    ]
    assert all(r["label_3"] and r["gs_label"] and r["gp_prob"] for r in rows)
    probs = [float(rows[0][f"prob_{i}"]) for i in (1, 2, 3)]
    assert sum(probs) == pytest.approx(1.0, abs=1e-4)


def test_table_output_lists_each_file_with_its_top_labels(
    checkpoint: Path, make_video: Callable[..., Path]
) -> None:
    video = make_video("t.mp4", num_frames=6)
    result = run_cli(str(video), "--model", str(checkpoint), "-k", "3")
    assert result.exit_code == 0
    assert "t.mp4" in result.stdout
    assert all(label in result.stdout for label in ("boxing", "running", "waving"))
    # stderr: only the model line (and, for a model without OOD statistics, the note that no
    # video can be called unknown) before the first video and the throughput line after
    model_line, no_ood, summary = result.stderr.splitlines()
    assert no_ood.startswith("note: out-of-distribution verdict: no verdict")
    assert model_line == (
        f"model: {checkpoint} (3 classes: boxing, running, waving; resnet18; cpu; {AUTO})"
    )
    assert summary.startswith("1 video, 6 frames in ") and summary.endswith(" frames/s)")


def test_table_shows_full_paths_only_when_two_files_share_a_name() -> None:
    def prediction(path: str) -> VideoPrediction:
        probs = np.array([0.7, 0.2, 0.1], np.float32)
        return VideoPrediction(
            path=path,
            info=None,  # type: ignore[arg-type]
            labels=["boxing", "running", "waving"],
            probs=probs,
            stream_probs={"gp": probs},
            clips=[],
            attention={},
            attention_frames=np.zeros(0, np.int64),
            attention_times=np.zeros(0),
        )

    def shown(*paths: str) -> str:
        console = Console(width=300, record=True)
        console.print(predictions_table([prediction(p) for p in paths]))
        return console.export_text()

    assert "/x/a/same.mp4" in shown("/x/a/same.mp4", "/x/b/same.mp4")
    alone = shown("/x/a/same.mp4", "/x/b/other.mp4")
    assert "same.mp4" in alone and "/x/a/" not in alone


def test_bad_inputs_get_one_line_each_and_the_good_file_is_still_predicted(
    checkpoint: Path, make_video: Callable[..., Path], tmp_path: Path
) -> None:
    good = make_video("good.mp4", num_frames=6)
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    empty = tmp_path / "zero.mp4"
    empty.touch()
    folder = tmp_path / "novideos"
    folder.mkdir()
    missing = tmp_path / "missing.mp4"
    inputs = [str(p) for p in (missing, text, folder, empty, good)]
    result = run_cli(*inputs, "--model", str(checkpoint), "-f", "json")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    # besides the errors, stderr holds the model line and the throughput line, nothing else
    assert lines.pop(-1).startswith("1 video, 6 frames in ")
    assert lines.pop(2).startswith(f"model: {checkpoint} (3 classes")  # after input errors
    assert lines.pop(2).startswith("note: out-of-distribution verdict")  # no OOD statistics
    assert len(lines) == 4
    assert lines[0] == f"error: {missing}: no such file"
    assert lines[1] == f"error: {folder}: no video files in directory"
    assert lines[2].startswith(f"error: {text}: ")
    assert lines[3].startswith(f"error: {empty}: ")
    assert [r["file"] for r in json.loads(result.stdout)] == [str(good)]


def test_a_pickle_checkpoint_is_refused(make_video: Callable[..., Path], tmp_path: Path) -> None:
    video = make_video("p.mp4", num_frames=4)
    bad = tmp_path / "model.pt"
    bad.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    result = run_cli(str(video), "--model", str(bad))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {bad}: pickle files are refused")
    assert result.stdout == ""


def test_sampling_flags_override_the_checkpoint_protocol(
    checkpoint: Path, make_video: Callable[..., Path]
) -> None:
    video = make_video("o.mp4", num_frames=20)
    result = run_cli(
        str(video),
        "--model",
        str(checkpoint),
        "-f",
        "json",
        "--clips",
        "--clip-len",
        "10",
        "--stride",
        "5",
        "--max-clips",
        "2",
    )
    assert result.exit_code == 0
    clips = json.loads(result.stdout)[0]["clips"]
    assert [(c["start"], c["end"]) for c in clips] == [(0.0, 0.4), (0.4, 0.8)]


def test_max_clips_flag_sets_the_clips_a_video_is_tested_on() -> None:
    sampling = SamplingConfig(max_clips=8, test_max_clips=64)  # the own recipe's
    config = GKAANConfig(num_classes=2, sampling=sampling)
    assert SamplingOverrides().apply(config).max_clips_for(train=False) == 64
    assert SamplingOverrides(max_clips=2).apply(config).max_clips_for(train=False) == 2


def test_fp16_on_cpu_exits_with_usage_code(
    checkpoint: Path, make_video: Callable[..., Path]
) -> None:
    video = make_video("u.mp4", num_frames=4)
    result = run_cli(
        str(video), "--model", str(checkpoint), "--device", "cpu", "--precision", "fp16"
    )
    assert result.exit_code == 2
    assert "fp16 needs a CUDA device" in result.stderr


# --- real videos ---------------------------------------------------------------------------


def real_size_model() -> GKAAN:
    """A tiny model (seeded) at the real frame size: 2 clips of 4 frames a video."""
    torch.manual_seed(0)
    return GKAAN(
        tiny_config(
            preprocess=PreprocessConfig(),
            sampling=SamplingConfig(clip_len=4, stride=2, max_clips=2),
        )
    )


@pytest.mark.slow
@pytest.mark.data
def test_real_clips_are_predicted_including_mkv_without_frame_count_and_1080p_avi(
    data_dir: Path, tmp_path: Path
) -> None:
    model = real_size_model()
    checkpoint = model.save_pretrained(tmp_path / "real")
    clips = data_dir / "clips"
    result = run_cli(str(clips), "--model", str(checkpoint), "-f", "json", "--clips")
    assert result.exit_code == 0, result.stderr
    records = {Path(r["file"]).name: r for r in json.loads(result.stdout)}
    assert sorted(records) == [
        "apply_eye_makeup.avi",
        "arm_wrestling.mp4",
        "drink_water_1080p.avi",
        "flipping_pancake.mkv",
    ]
    assert records["arm_wrestling.mp4"]["num_frames"] == 280
    assert records["drink_water_1080p.avi"]["num_frames"] == 103
    assert records["flipping_pancake.mkv"]["num_frames"] > 0
    for record in records.values():
        assert len(record["clips"]) == 2
        assert sum(t["prob"] for t in record["top_k"]) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.slow
@pytest.mark.data
def test_real_clips_through_predict_many_equal_predict_video_each(
    data_dir: Path, tmp_path: Path
) -> None:
    model = real_size_model()
    videos = sorted((data_dir / "clips").iterdir())
    predictor = Predictor(model, device="cpu", batch_size=5)  # 8 frames a video: batches span
    many = list(predictor.predict_many(videos))
    assert len(many) == len(videos) == 4
    for got, video in zip(many, videos, strict=True):
        assert isinstance(got, VideoPrediction), got
        assert_same_prediction(got, predictor.predict_video(video))


# --- where video is decoded (docs/predict.md#gpu-decode) ----------------------------------


def test_decode_auto_on_a_cpu_device_is_the_cpu_and_the_model_block_says_so(
    checkpoint: Path, make_video: Callable[..., Path]
) -> None:
    reasons: list[str] = []
    predictor = Predictor(load(checkpoint), device="cpu", on_decode_fallback=reasons.append)
    assert predictor.decode == "cpu"
    prediction = predictor.predict_video(make_video("d.mp4", num_frames=8))
    assert prediction.model is not None and prediction.model["decode"] == "cpu"
    assert reasons == []  # nothing asked for CUDA: nothing fell back


def test_decode_cuda_on_a_cpu_device_and_an_unknown_decode_are_usage_errors(
    checkpoint: Path,
) -> None:
    with pytest.raises(UsageError, match="--decode cuda needs a CUDA device, not cpu"):
        Predictor(load(checkpoint), device="cpu", decode="cuda")
    with pytest.raises(UsageError, match="decode must be one of auto, cpu, cuda, got 'gpu'"):
        Predictor(load(checkpoint), device="cpu", decode="gpu")


@pytest.mark.parametrize(
    ("decode", "problem", "expected"),
    [
        ("auto", None, ("cuda:1", None)),
        ("auto", "no device", ("cpu", None)),  # auto: the CPU without a note
        ("cuda", None, ("cuda:1", None)),
        ("cuda", "no device", ("cpu", "no device")),  # asked for: the CPU with the reason
        ("cpu", None, ("cpu", None)),
    ],
)
def test_decode_on_a_cuda_device_follows_the_probe_of_that_device(
    monkeypatch: pytest.MonkeyPatch,
    decode: str,
    problem: str | None,
    expected: tuple[str, str | None],
) -> None:
    asked: list[int | None] = []

    def probe(device: int | None = None) -> str | None:
        asked.append(device)
        return problem

    monkeypatch.setattr(predict_module, "cuda_decode_problem", probe)
    assert resolve_decode(decode, torch.device("cuda", 1)) == expected
    assert asked == ([] if decode == "cpu" else [1])


@pytest.fixture
def cuda_decode_chosen(monkeypatch: pytest.MonkeyPatch) -> str:
    """Predictors decode with ``cuda:0`` whatever their device (the choice a CUDA device with
    a working probe makes); skipped where CUDA decoding works. Returns why it cannot here."""
    problem = cuda_decode_problem(0)
    if problem is None:
        pytest.skip("CUDA decoding works here: nothing falls back")
    monkeypatch.setattr(predict_module, "resolve_decode", lambda decode, device: ("cuda:0", None))
    return problem


def test_a_video_that_cannot_be_decoded_on_cuda_falls_back_with_the_same_prediction(
    checkpoint: Path, make_video: Callable[..., Path], cuda_decode_chosen: str
) -> None:
    videos = [make_video("a.mp4", num_frames=8), make_video("b.mp4", num_frames=6)]
    on_cpu = list(Predictor(load(checkpoint), device="cpu", decode="cpu").predict_many(videos))
    reasons: list[str] = []
    predictor = Predictor(load(checkpoint), device="cpu", on_decode_fallback=reasons.append)
    assert predictor.decode == "cuda" and predictor.model_info["decode"] == "cuda"
    fell_back = list(predictor.predict_many(videos))
    assert reasons == [cuda_decode_chosen] * 2  # one per video, from the decoding thread
    for got, expected in zip(fell_back, on_cpu, strict=True):
        assert isinstance(got, VideoPrediction) and isinstance(expected, VideoPrediction)
        np.testing.assert_array_equal(got.probs, expected.probs)
    predict_timeline(predictor, videos[0])  # a timeline decodes as predict does
    assert reasons == [cuda_decode_chosen] * 3


def test_predict_says_once_that_cuda_decode_fell_back_and_quiet_says_nothing(
    checkpoint: Path, make_video: Callable[..., Path], cuda_decode_chosen: str
) -> None:
    videos = [str(make_video("a.mp4", num_frames=6)), str(make_video("b.mp4", num_frames=6))]
    result = run_cli(*videos, "--model", str(checkpoint), "--decode", "cuda", "-f", "json")
    assert result.exit_code == 0, result.output
    note = f"note: CUDA decode not available ({cuda_decode_chosen}); decoding on the CPU"
    lines = result.stderr.splitlines()
    assert lines[0].endswith(f"; cpu; {AUTO}; cuda decode)")  # the model line says what was chosen
    assert lines.count(note) == 1  # two videos fell back, one note
    assert [record["model"]["decode"] for record in json.loads(result.stdout)] == ["cuda"] * 2
    quiet = run_cli(*videos, "--model", str(checkpoint), "--decode", "cuda", "-q", "-f", "json")
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_predict_notes_at_once_when_decode_cuda_cannot_be_used_in_this_process(
    checkpoint: Path, make_video: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        predict_module, "resolve_decode", lambda decode, device: ("cpu", "no CUDA here")
    )
    video = make_video("a.mp4", num_frames=6)
    result = run_cli(str(video), "--model", str(checkpoint), "--decode", "cuda", "--timeline")
    assert result.exit_code == 0, result.output
    model_line, no_ood, note, *_ = result.stderr.splitlines()  # the model named first
    assert no_ood.startswith("note: out-of-distribution verdict")
    assert model_line.endswith(f"; cpu; {AUTO})")  # decoded on the CPU: nothing to add
    assert note == "note: CUDA decode not available (no CUDA here); decoding on the CPU"
