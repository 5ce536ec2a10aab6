"""Specification of VideoWriter: browser-playable H.264 MP4, exact rate, atomic output."""

from __future__ import annotations

import os
import stat
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from gkaan_cli.errors import OutputError
from gkaan_cli.video.reader import probe_video, read_frames
from gkaan_cli.video.writer import VideoWriter, exact_rate


def _frames(count: int, width: int, height: int) -> list[np.ndarray]:
    return [np.full((height, width, 3), 20 * i, np.uint8) for i in range(count)]


@pytest.mark.parametrize(
    ("fps", "rate"),
    [(29.97, Fraction(30000, 1001)), (Fraction(2997, 100), Fraction(2997, 100)), (25.0, 25)],
)
def test_output_is_h264_yuv420p_at_the_exact_rate(
    tmp_path: Path, fps: float | Fraction, rate: Fraction
) -> None:
    path = tmp_path / "out.mp4"
    with VideoWriter(path, fps=fps, size=(64, 48)) as writer:
        for image in _frames(12, 64, 48):
            writer.write(image)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert stream.average_rate == rate
        assert sum(1 for _ in container.decode(stream)) == 12
    assert probe_video(path).num_frames == 12


def test_moov_atom_comes_first_for_streaming(tmp_path: Path) -> None:
    path = tmp_path / "fast.mp4"
    with VideoWriter(path, fps=25, size=(32, 32)) as writer:
        for image in _frames(3, 32, 32):
            writer.write(image)
    data = path.read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")


def test_odd_sizes_are_padded_to_even(tmp_path: Path) -> None:
    path = tmp_path / "odd.mp4"
    with VideoWriter(path, fps=25, size=(33, 21)) as writer:
        assert writer.size == (34, 22)
        for image in _frames(2, 33, 21):
            writer.write(image)
    first = next(read_frames(path))
    assert first.image.shape == (22, 34, 3)


def test_pixels_survive_encoding(tmp_path: Path) -> None:
    path = tmp_path / "grey.mp4"
    with VideoWriter(path, fps=25, size=(32, 32)) as writer:
        for image in _frames(4, 32, 32):
            writer.write(image)
    means = [float(f.image.mean()) for f in read_frames(path)]
    assert means == pytest.approx([0, 20, 40, 60], abs=3)


def test_an_error_leaves_neither_output_nor_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.mp4"
    with pytest.raises(KeyError), VideoWriter(path, fps=25, size=(32, 32)) as writer:
        writer.write(_frames(1, 32, 32)[0])
        raise KeyError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_existing_file_is_kept_until_the_new_one_is_complete(tmp_path: Path) -> None:
    path = tmp_path / "keep.mp4"
    path.write_bytes(b"old")
    with (
        pytest.raises(ValueError, match="expected"),
        VideoWriter(path, fps=25, size=(32, 32)) as writer,
    ):
        writer.write(np.zeros((16, 16, 3), np.uint8))
    assert path.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [path]


def test_output_has_the_permissions_of_a_file_opened_for_writing(tmp_path: Path) -> None:
    umask = os.umask(0o027)
    try:
        with VideoWriter(tmp_path / "shared.mp4", fps=25, size=(32, 32)) as writer:
            writer.write(_frames(1, 32, 32)[0])
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "shared.mp4").stat().st_mode) == 0o666 & ~0o027


def test_writing_no_frames_is_an_error(tmp_path: Path) -> None:
    with (
        pytest.raises(ValueError, match="no frames"),
        VideoWriter(tmp_path / "empty.mp4", fps=25, size=(32, 32)),
    ):
        pass
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("fps", "rate"),
    [(23.976, Fraction(24000, 1001)), (59.94, Fraction(60000, 1001)), (12.5, Fraction(25, 2))],
)
def test_float_rates_become_exact_fractions(fps: float, rate: Fraction) -> None:
    assert exact_rate(fps) == rate


def test_one_frame_per_hour_is_written_at_its_rate(tmp_path: Path) -> None:
    target = tmp_path / "slow.mp4"
    with VideoWriter(target, fps=1 / 3600, size=(32, 32)) as writer:
        for _ in range(2):
            writer.write(np.zeros((32, 32, 3), np.uint8))
    with av.open(str(target)) as container:
        assert container.streams.video[0].average_rate == Fraction(1, 3600)


@pytest.mark.parametrize("fps", [1 / 86400, 0.0, 1e6, float("nan")])
def test_a_rate_the_writer_cannot_take_is_one_output_error(tmp_path: Path, fps: float) -> None:
    with pytest.raises(OutputError, match="cannot write a video at"):
        VideoWriter(tmp_path / "x.mp4", fps=fps, size=(32, 32))
    assert list(tmp_path.iterdir()) == []
