"""Specification of the PyAV reader: exact counts, resizing, index subsets, rotation, bad files."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from gkaan_cli.errors import BadVideoError
from gkaan_cli.video import reader
from gkaan_cli.video.reader import cuda_decode_problem, probe_video, read_frames

REAL_VIDEOS = [
    "clips/apply_eye_makeup.avi",
    "clips/arm_wrestling.mp4",
    "clips/drink_water_1080p.avi",
    "clips/flipping_pancake.mkv",
    "kth-mini/boxing/person02_boxing_d4_uncomp.avi",
    "kth-mini/walking/person09_walking_d1_uncomp.avi",
    "ps7-arms/one_arm_raise/PS7A2P2T1.avi",
]


@pytest.mark.data
@pytest.mark.parametrize("name", REAL_VIDEOS)
def test_probe_counts_exactly_the_frames_read_frames_yields(data_dir: Path, name: str) -> None:
    info = probe_video(data_dir / name)
    frames = list(read_frames(data_dir / name, size=(32, 24)))
    assert info.num_frames == len(frames)
    assert [f.index for f in frames] == list(range(info.num_frames))
    assert all(f.image.shape == (24, 32, 3) and f.image.dtype == np.uint8 for f in frames)


@pytest.mark.data
def test_frame_times_increase_and_track_index_over_fps(data_dir: Path) -> None:
    paths = sorted((data_dir / "clips").iterdir())
    assert len(paths) >= 4
    for path in paths:
        fps = probe_video(path).fps
        times = [f.time for f in read_frames(path, size=(16, 16))]
        assert all(later > earlier for earlier, later in itertools.pairwise(times)), path
        assert times == pytest.approx([i / fps for i in range(len(times))], abs=1 / fps), path


@pytest.mark.data
def test_probe_counts_frames_of_mkv_that_states_no_count(data_dir: Path) -> None:
    info = probe_video(data_dir / "clips/flipping_pancake.mkv")
    assert (info.num_frames, info.width, info.height, info.codec) == (310, 426, 240, "h264")
    assert info.fps == pytest.approx(30.0)
    assert info.duration == pytest.approx(310 / 30, abs=0.05)


@pytest.mark.data
def test_probe_reports_ntsc_rate_as_float(data_dir: Path) -> None:
    info = probe_video(data_dir / "ps7-arms/one_arm_raise/PS7A2P2T1.avi")
    assert (info.num_frames, info.width, info.height) == (61, 640, 480)
    assert info.fps == pytest.approx(29.97)


@pytest.mark.data
def test_index_subset_returns_exactly_those_frames_with_full_read_pixels(data_dir: Path) -> None:
    path = data_dir / "clips/arm_wrestling.mp4"
    full = {f.index: f for f in read_frames(path) if f.index < 60}
    subset = list(read_frames(path, indices=[57, 3, 3, 0, 30]))
    assert [f.index for f in subset] == [0, 3, 30, 57]
    for frame in subset:
        np.testing.assert_array_equal(frame.image, full[frame.index].image)
        assert frame.time == pytest.approx(frame.index / 28.0)


def test_native_size_frames_keep_the_video_size(make_video: Callable[..., Path]) -> None:
    path = make_video("a.mp4", num_frames=5, size=(64, 48))
    frames = list(read_frames(path))
    assert [f.image.shape for f in frames] == [(48, 64, 3)] * 5
    assert [f.time for f in frames] == pytest.approx([i / 25 for i in range(5)])
    red = [int(f.image[2, 2, 0]) for f in frames]
    assert red == pytest.approx([0, 10, 20, 30, 40], abs=4)


def test_indices_past_the_end_are_ignored(make_video: Callable[..., Path]) -> None:
    path = make_video("a.mp4", num_frames=6)
    assert [f.index for f in read_frames(path, indices=[5, 6, 100])] == [5]


def test_one_frame_video_is_readable(make_video: Callable[..., Path]) -> None:
    path = make_video("one.mp4", num_frames=1)
    assert probe_video(path).num_frames == 1
    assert len(list(read_frames(path, size=(16, 16)))) == 1


def test_non_ascii_path_with_spaces_is_readable(make_video: Callable[..., Path]) -> None:
    path = make_video("vidéo d'été 動画.mp4", num_frames=4)
    assert probe_video(path).num_frames == 4
    assert len(list(read_frames(path))) == 4


def test_rotation_metadata_turns_frames_upright(tmp_path: Path) -> None:
    path = tmp_path / "portrait.mp4"
    image = np.zeros((48, 64, 3), np.uint8)
    image[:16, :16] = 255  # white top-left corner in the stored frame
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.set_display_rotation(90)  # display = stored frame turned 90 deg counter-clockwise
        for _ in range(3):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    info = probe_video(path)
    assert (info.width, info.height, info.rotation) == (48, 64, 90)
    frame = next(read_frames(path))
    assert frame.image.shape == (64, 48, 3)
    assert frame.image[60, 4].mean() > 200  # top-left went to bottom-left
    assert frame.image[4, 4].mean() < 50
    assert next(read_frames(path, size=(24, 32))).image.shape == (32, 24, 3)


def test_truncated_file_yields_the_frames_that_decode(tmp_path: Path, data_dir: Path) -> None:
    data = (data_dir / "clips/apply_eye_makeup.avi").read_bytes()
    path = tmp_path / "cut.avi"
    path.write_bytes(data[: len(data) // 2])
    info = probe_video(path)
    assert 0 < info.num_frames < 164
    assert len(list(read_frames(path, size=(16, 16)))) == info.num_frames


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mp2", rate=44100)
        for _ in range(10):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1152), np.int16), format="s16", layout="mono"
            )
            frame.sample_rate = 44100
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def _png_as_avi(path: Path) -> Path:
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream("png", rate=1)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "rgb24"
        frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda tmp: tmp / "missing.mp4", "file not found"),
        (lambda tmp: _mkdir(tmp / "x.mp4"), "is a directory"),
        (lambda tmp: _write(tmp / "zero.mp4", b""), "empty file"),
        (lambda tmp: _write(tmp / "notes.mp4", b"just some text\n" * 50), "not a video file"),
        (lambda tmp: _png_as_avi(tmp / "image.avi"), "still image"),
        (lambda tmp: _audio_only(tmp / "sound.mp4"), "no video stream"),
    ],
    ids=["missing", "directory", "zero-byte", "text", "png-renamed", "audio-only"],
)
def test_bad_inputs_raise_bad_video_error_naming_file_and_reason(
    tmp_path: Path, build: Callable[[Path], Path], reason: str
) -> None:
    path = build(tmp_path)
    with pytest.raises(BadVideoError, match=reason) as probe_error:
        probe_video(path)
    assert probe_error.value.path == str(path)
    with pytest.raises(BadVideoError, match=reason):
        list(read_frames(path))


@pytest.mark.data
def test_truncated_mp4_without_index_is_bad_video(tmp_path: Path, data_dir: Path) -> None:
    data = (data_dir / "clips/arm_wrestling.mp4").read_bytes()
    path = _write(tmp_path / "half.mp4", data[: len(data) // 2])
    with pytest.raises(BadVideoError, match="not a video file"):
        probe_video(path)


@pytest.mark.data
def test_file_that_decodes_nothing_is_bad_video(tmp_path: Path, data_dir: Path) -> None:
    data = (data_dir / "clips/apply_eye_makeup.avi").read_bytes()
    path = _write(tmp_path / "tail.avi", data[len(data) // 2 :])
    with pytest.raises(BadVideoError, match="no decodable frames"):
        probe_video(path)
    with pytest.raises(BadVideoError, match="no decodable frames"):
        list(read_frames(path))


# --- CUDA decoding falls back to the CPU (docs/predict.md#gpu-decode) ----------------------


@pytest.fixture
def fresh_cuda_probe() -> Iterator[None]:
    """:func:`cuda_decode_problem` asks again in this test and after it."""
    cuda_decode_problem.cache_clear()
    yield
    cuda_decode_problem.cache_clear()


@pytest.fixture
def no_cuda_decode(fresh_cuda_probe: None) -> str:
    """Skip where this machine can decode with CUDA (nothing would fall back); the reason."""
    problem = cuda_decode_problem()
    if problem is None:
        pytest.skip("CUDA decoding works here: nothing falls back")
    return problem


def _images(
    path: Path, decode: str = "cpu", on_fallback: Callable[[str], object] | None = None
) -> list[np.ndarray]:
    frames = read_frames(path, size=(64, 48), decode=decode, on_fallback=on_fallback)
    return [frame.image for frame in frames]


@pytest.mark.data
def test_cuda_decode_without_a_usable_device_gives_the_cpu_frames_and_says_why(
    data_dir: Path, no_cuda_decode: str
) -> None:
    path = data_dir / "clips/arm_wrestling.mp4"
    reasons: list[str] = []
    on_cuda = _images(path, decode="cuda", on_fallback=reasons.append)
    on_cpu = _images(path)
    assert len(on_cuda) == len(on_cpu) == probe_video(path).num_frames
    for cuda_image, cpu_image in zip(on_cuda, on_cpu, strict=True):
        np.testing.assert_array_equal(cuda_image, cpu_image)
    assert reasons == [no_cuda_decode]
    assert no_cuda_decode.startswith(("cannot create the CUDA device", "this FFmpeg build"))


def test_cuda_decode_not_offered_by_ffmpeg_falls_back_with_that_reason(
    make_video: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, fresh_cuda_probe: None
) -> None:
    monkeypatch.setattr(reader, "hwdevices_available", lambda: [])
    path = make_video("a.mp4", num_frames=6)
    reasons: list[str] = []
    images = _images(path, decode="cuda:1", on_fallback=reasons.append)
    assert reasons == ["this FFmpeg build has no CUDA support"]
    assert len(images) == 6
    for cuda_image, cpu_image in zip(images, _images(path), strict=True):
        np.testing.assert_array_equal(cuda_image, cpu_image)


def test_cuda_decode_that_fails_to_open_a_file_falls_back_naming_the_file(
    make_video: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, no_cuda_decode: str
) -> None:
    monkeypatch.setattr(reader, "cuda_decode_problem", lambda device=None: None)  # try each file
    path = make_video("a.mp4", num_frames=6)
    reasons: list[str] = []
    images = _images(path, decode="cuda", on_fallback=reasons.append)
    assert len(images) == 6
    (reason,) = reasons
    assert reason.startswith(f"{path}: cannot open on the CUDA device (")


def test_cpu_decode_never_asks_for_cuda(
    make_video: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(device: int | None = None) -> str | None:
        raise AssertionError("probed CUDA for a CPU decode")

    monkeypatch.setattr(reader, "cuda_decode_problem", refuse)
    reasons: list[str] = []
    assert len(_images(make_video("a.mp4", num_frames=3), on_fallback=reasons.append)) == 3
    assert reasons == []


@pytest.mark.parametrize("probe_passes", [False, True], ids=["no-device", "open-fails"])
@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda tmp: tmp / "missing.mp4", "file not found"),
        (lambda tmp: _write(tmp / "notes.mp4", b"just some text\n" * 50), "not a video file"),
        (lambda tmp: _png_as_avi(tmp / "image.avi"), "still image"),
        (lambda tmp: _audio_only(tmp / "sound.mp4"), "no video stream"),
    ],
    ids=["missing", "text", "png-renamed", "audio-only"],
)
def test_a_bad_file_gives_the_cpu_error_with_cuda_decode_not_a_fallback(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_cuda_decode: str,
    build: Callable[[Path], Path],
    reason: str,
    probe_passes: bool,
) -> None:
    if probe_passes:
        monkeypatch.setattr(reader, "cuda_decode_problem", lambda device=None: None)
    path = build(tmp_path)
    with pytest.raises(BadVideoError) as on_cpu:
        list(read_frames(path))
    reasons: list[str] = []
    with pytest.raises(BadVideoError, match=reason) as on_cuda:
        list(read_frames(path, decode="cuda", on_fallback=reasons.append))
    assert str(on_cuda.value) == str(on_cpu.value)
    assert reasons == []  # a bad file is an error, never a fallback note


def test_an_unknown_decode_is_refused(make_video: Callable[..., Path]) -> None:
    with pytest.raises(ValueError, match="decode must be cpu, cuda or cuda:N, got 'gpu'"):
        list(read_frames(make_video("a.mp4", num_frames=2), decode="gpu"))


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
