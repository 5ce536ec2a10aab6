"""`gkaan prepare` as a library: real datasets, bad inputs, resume and idempotence, features."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import KTH_CLASSES

from gkaan_cli.commands.prepare import exit_code, render_report
from gkaan_cli.config import GKAANConfig, SamplingConfig
from gkaan_cli.data.dataset import FeatureDataset
from gkaan_cli.data.frame_cache import read_frame_shard
from gkaan_cli.data.manifest import VideoRecord, load_manifest
from gkaan_cli.data.prepare import FeatureOptions, PrepareOptions, PrepareReport, prepare
from gkaan_cli.data.sources import SplitOptions
from gkaan_cli.video.reader import probe_video, read_frames
from gkaan_cli.video.sampling import frames_needed
from gkaan_cli.video.writer import encode_png

SMALL = SamplingConfig(clip_len=8, stride=8, max_clips=2)
BY_PERSON = PrepareOptions(split=SplitOptions(split_by=r"person(\d+)"), sampling=SMALL)


@pytest.fixture(scope="module")
def kth(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PrepareReport]:
    out = tmp_path_factory.mktemp("kth")
    report = prepare(data_dir / "kth-mini", out, BY_PERSON)
    return out, report


@pytest.mark.slow
def test_kth_mini_prepares_every_video_with_frames_counted_like_pyav(
    kth: tuple[Path, PrepareReport], data_dir: Path
) -> None:
    out, report = kth
    assert (report.ok, report.failed, report.skipped) == (19, 0, 0)
    assert exit_code(report) == 0
    manifest = load_manifest(out)
    assert manifest.classes == list(KTH_CLASSES)
    assert manifest.settings.sampling == SMALL
    for record in manifest.videos:
        info = probe_video(record.path)
        assert record.status == "ok"
        assert (record.frames, record.width, record.height) == (info.num_frames, 160, 120)
        assert record.fps == pytest.approx(25.0)
        assert manifest.classes[record.label_index] == record.label == Path(record.path).parent.name
        assert record.cached_frames == frames_needed(
            info.num_frames, SMALL, train=record.split == "train"
        )
    assert report.frames == sum(v.frames or 0 for v in manifest.videos)
    assert report.hours == pytest.approx(sum(v.duration or 0 for v in manifest.videos) / 3600)


def test_kth_persons_never_fall_in_two_splits(kth: tuple[Path, PrepareReport]) -> None:
    out, report = kth
    records = load_manifest(out).videos
    splits_of: dict[str, set[str]] = {}
    for record in records:
        assert record.group is not None and record.group in Path(record.path).name
        splits_of.setdefault(record.group, set()).add(record.split or "")
    assert all(len(s) == 1 for s in splits_of.values())
    assert {s: set(g) for s, g in report.split_groups.items()} == {
        s: {g for g, splits in splits_of.items() if s in splits} for s in ("train", "val", "test")
    }
    assert all(report.split_videos[s] > 0 for s in ("train", "val", "test"))


def test_cached_frames_are_the_decoders_256_frames_within_jpeg_error(
    kth: tuple[Path, PrepareReport],
) -> None:
    out, _ = kth
    record = load_manifest(out).videos[0]
    assert record.shard is not None
    cached = read_frame_shard(out / record.shard, [0, 1, 0]).numpy()
    decoded = [f.image for f in read_frames(record.path, size=(256, 256), indices=[0, 1])]
    assert cached.shape == (3, 256, 256, 3)
    assert np.abs(cached[0].astype(int) - decoded[0]).mean() < 3.0
    assert np.abs(cached[1].astype(int) - decoded[1]).mean() < 3.0
    assert np.array_equal(cached[0], cached[2])


def test_second_run_skips_every_video_and_changes_no_byte(
    kth: tuple[Path, PrepareReport], data_dir: Path
) -> None:
    out, _ = kth
    before = _snapshot(out)
    again = prepare(data_dir / "kth-mini", out, BY_PERSON)
    assert (again.ok, again.skipped, again.failed) == (0, 19, 0)
    assert _snapshot(out) == before


@pytest.mark.slow
def test_ps7_arms_prepares_27_videos_in_three_classes(data_dir: Path, tmp_path: Path) -> None:
    options = PrepareOptions(split=SplitOptions(split_by=r"P(\d)T"), sampling=SMALL)
    report = prepare(data_dir / "ps7-arms", tmp_path, options)
    manifest = load_manifest(tmp_path)
    assert (report.ok, report.failed) == (27, 0)
    assert manifest.classes == ["arms_front_raise", "arms_side_raise", "one_arm_raise"]
    assert {v.group for v in manifest.videos} == {"1", "2", "3"}
    assert all(
        (v.width, v.height) == (640, 480) and 61 <= (v.frames or 0) <= 115 for v in manifest.videos
    )
    assert "ok" in _render(report) and "27" in _render(report)


def _render(report: PrepareReport) -> str:
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(render_report(report))
    return console.export_text()


def _snapshot(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
    }


def _bad_inputs(folder: Path, data_dir: Path, make_video: Callable[..., Path]) -> None:
    """Good and bad files in ``folder`` (a class folder under the test's tmp_path)."""
    make_video("in/cls/good.mp4", num_frames=20)
    make_video("in/cls/one_frame.mp4", num_frames=1)
    make_video("in/cls/clip ünï çødé.mp4", num_frames=12)
    real = (data_dir / "clips" / "arm_wrestling.mp4").read_bytes()
    (folder / "truncated.mp4").write_bytes(real[: len(real) // 2])
    (folder / "zero.mp4").write_bytes(b"")
    (folder / "text.mp4").write_text("this is not a video\n")
    (folder / "image.avi").write_bytes(encode_png(np.zeros((16, 16, 3), np.uint8)))
    (folder / "x.mp4").mkdir()
    with av.open(str(folder / "audio.mp4"), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for _ in range(8):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate = 16000
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_bad_files_fail_with_a_reason_while_good_ones_are_prepared(
    tmp_path: Path, data_dir: Path, make_video: Callable[..., Path]
) -> None:
    _bad_inputs(tmp_path / "in" / "cls", data_dir, make_video)
    options = PrepareOptions(split=SplitOptions(val_fraction=0, test_fraction=0), sampling=SMALL)
    report = prepare(tmp_path / "in", tmp_path / "out", options)
    records = {Path(v.path).name: v for v in load_manifest(tmp_path / "out").videos}
    reasons = {name: v.reason for name, v in records.items() if v.status == "failed"}
    assert reasons == {
        "truncated.mp4": "not a video file (invalid data)",
        "zero.mp4": "empty file (0 bytes)",
        "text.mp4": "not a video file (invalid data)",
        "image.avi": "a still image (png_pipe), not a video",
        "x.mp4": "is a directory, not a video file",
        "audio.mp4": "no video stream",
    }
    good = {name: v for name, v in records.items() if v.status == "ok"}
    assert sorted(good) == ["clip ünï çødé.mp4", "good.mp4", "one_frame.mp4"]
    assert good["one_frame.mp4"].frames == 1 and good["one_frame.mp4"].cached_frames == [0]
    assert (report.ok, report.failed) == (3, 6)
    assert sorted(Path(p).name for p, _ in report.failures) == sorted(reasons)
    assert exit_code(report) == 0 and exit_code(report, strict=True) == 1


def test_nothing_prepared_exits_1(tmp_path: Path) -> None:
    (tmp_path / "in" / "cls").mkdir(parents=True)
    (tmp_path / "in" / "cls" / "zero.mp4").write_bytes(b"")
    options = PrepareOptions(split=SplitOptions(val_fraction=0, test_fraction=0))
    report = prepare(tmp_path / "in", tmp_path / "out", options)
    assert (report.ok, report.failed, exit_code(report)) == (0, 1, 1)


def test_interrupted_run_resumes_to_the_same_manifest_and_cache(
    tmp_path: Path, make_video: Callable[..., Path]
) -> None:
    for i in range(6):
        make_video(f"in/{'ab'[i % 2]}/v{i}.mp4", num_frames=10 + i)
    options = PrepareOptions(
        split=SplitOptions(val_fraction=0.0, test_fraction=0.5), sampling=SMALL
    )
    full = prepare(tmp_path / "in", tmp_path / "full", options)

    seen: list[str] = []

    def stop_after_two(record: VideoRecord, outcome: str) -> None:
        seen.append(record.id)
        if len(seen) == 2:
            raise KeyboardInterrupt  # as if killed by Ctrl-C

    with pytest.raises(KeyboardInterrupt):
        prepare(tmp_path / "in", tmp_path / "part", options, on_video=stop_after_two)
    assert len(load_manifest(tmp_path / "part").videos) == 2
    (tmp_path / "part" / "frames" / ".v9.jpgs.tmp-123").write_bytes(b"half")  # a killed write
    limited = prepare(
        tmp_path / "in", tmp_path / "part", dataclasses.replace(options, max_videos=4)
    )
    assert (limited.skipped, limited.ok, limited.remaining) == (2, 2, 2)
    resumed = prepare(tmp_path / "in", tmp_path / "part", options)
    assert (resumed.skipped, resumed.ok) == (4, 2) and full.ok == 6
    assert _snapshot(tmp_path / "part") == _snapshot(tmp_path / "full")


def test_changed_video_is_prepared_again(tmp_path: Path, make_video: Callable[..., Path]) -> None:
    video = make_video("in/a/v.mp4", num_frames=10)
    options = PrepareOptions(
        split=SplitOptions(val_fraction=0.0, test_fraction=0.0), sampling=SMALL
    )
    prepare(tmp_path / "in", tmp_path / "out", options)
    make_video("in/a/v.mp4", num_frames=14)
    report = prepare(tmp_path / "in", tmp_path / "out", options)
    assert (report.ok, report.skipped) == (1, 0)
    assert load_manifest(tmp_path / "out").videos[0].frames == 14 == probe_video(video).num_frames


def test_features_store_fp16_conv_maps_for_every_cached_frame(
    data_dir: Path, tmp_path: Path
) -> None:
    videos = sorted((data_dir / "ps7-arms").rglob("*P1T1.avi"))[:2]
    csv = tmp_path / "two.csv"
    csv.write_text("".join(f"{p},{p.parent.name},train\n" for p in videos))
    sampling = SamplingConfig(mode="uniform", clip_len=4, num_clips=1)
    options = PrepareOptions(
        split=SplitOptions(val_fraction=0),
        sampling=sampling,
        features=FeatureOptions("resnet18", pretrained=False),
    )
    run = functools.partial(prepare, csv, tmp_path / "out", options)
    report = run()
    assert report.ok == 2
    manifest = load_manifest(tmp_path / "out")
    assert manifest.settings.features == "resnet18"
    for record in manifest.videos:
        assert record.features is not None
        maps = np.load(tmp_path / "out" / record.features)
        assert maps.dtype == np.float16 and maps.shape == (4, 512, 7, 7)
        assert np.isfinite(maps).all() and maps.astype(np.float32).std() > 0
    config = GKAANConfig(num_classes=2, backbone="resnet18", sampling=sampling)
    dataset = FeatureDataset(tmp_path / "out", "train", config, train=False)
    maps, label, video = dataset[1]
    assert maps.shape == (4, 512, 7, 7) and maps.dtype == torch.float32
    assert (label, video) == (manifest.videos[1].label_index, 1)
    again = run()
    assert again.skipped == 2


def test_features_record_their_precision_and_another_precision_recomputes_them(
    data_dir: Path, tmp_path: Path
) -> None:
    video = sorted((data_dir / "ps7-arms").rglob("*P1T1.avi"))[0]
    csv = tmp_path / "one.csv"
    csv.write_text(f"{video},{video.parent.name},train\n")

    def run(precision: str) -> PrepareReport:
        features = FeatureOptions("resnet18", pretrained=False, precision=precision)
        options = PrepareOptions(
            split=SplitOptions(val_fraction=0),
            sampling=SamplingConfig(mode="uniform", clip_len=2, num_clips=1),
            features=features,
        )
        return prepare(csv, tmp_path / "out", options)

    assert run("fp32").ok == 1
    assert load_manifest(tmp_path / "out").settings.precision == "fp32"
    assert run("fp32").skipped == 1
    assert run("bf16").ok == 1  # maps of another precision are not reused
    assert load_manifest(tmp_path / "out").settings.precision == "bf16"
    assert FeatureOptions("resnet18").precision == "auto"  # as predict's default


def test_another_split_reuses_the_decoded_videos(
    tmp_path: Path, make_video: Callable[..., Path]
) -> None:
    from gkaan_cli.engine.recipes import load_train_config
    from gkaan_cli.engine.run_data import prepared_cache_dir

    for label in ("walk", "wave"):
        for person in (1, 2, 3):
            make_video(f"src/{label}/p{person}_{label}.mp4", num_frames=10 + person)
    sampling = SamplingConfig(mode="dense", clip_len=4, stride=4, max_clips=2)
    by_video = PrepareOptions(sampling=sampling, resize=(32, 32))
    first = prepare(tmp_path / "src", tmp_path / "out", by_video)
    assert first.ok == 6
    by_person = dataclasses.replace(
        by_video, split=SplitOptions(split_by=r"p(\d)_", val_fraction=0.0, test_groups=("3",))
    )
    second = prepare(tmp_path / "src", tmp_path / "out", by_person)
    assert (second.ok, second.skipped, second.failed) == (0, 6, 0)  # nothing decoded again
    manifest = load_manifest(tmp_path / "out")
    assert {v.group for v in manifest.records("test")} == {"3"}  # re-split all the same
    # a run's cache folder does not depend on its split settings
    plain = load_train_config("quick", None, {"pretrained": False})
    other = load_train_config("quick", None, {"pretrained": False, "split_by": r"p(\d)_"})
    src = tmp_path / "src"
    assert prepared_cache_dir(src, plain) == prepared_cache_dir(src, other)
