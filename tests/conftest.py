"""Shared fixtures: the real videos in ../shared/data and small synthetic videos made with PyAV."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
#: The classes of ../shared/data/kth-mini, in sorted (label index) order.
KTH_CLASSES = ("boxing", "handclapping", "handwaving", "jogging", "running", "walking")
#: A tiny end-to-end model: random ResNet-18 on 64x64 frames, clips of 4 frames.
TINY_MODEL: dict[str, Any] = {
    "backbone": "resnet18",
    "sru_layers": 1,
    "sru_hidden": 16,
    "la_hidden": 8,
    "preprocess": {"resize": (64, 64), "crop": 56},
    "sampling": {"mode": "dense", "clip_len": 4, "stride": 4, "max_clips": 2},
}


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """../shared/data (real videos); skips the test where the folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real videos not found at {SHARED_DATA} (present in CI)")
    return SHARED_DATA


def write_video(
    path: Path,
    num_frames: int = 24,
    *,
    size: tuple[int, int] = (64, 48),
    fps: int | Fraction = 25,
    codec: str = "mpeg4",
    pix_fmt: str = "yuv420p",
) -> Path:
    """Write a small real video whose frame i is a solid colour with a moving square.

    ``size`` is (width, height). Frame i has its red channel equal to ``(i * 10) % 256`` in the
    top-left corner so tests can tell frames apart after decoding.
    """
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for i in range(num_frames):
            img = np.zeros((height, width, 3), np.uint8)
            img[..., 0] = (i * 10) % 256
            x = (i * 3) % max(1, width - 8)
            img[height // 2 - 4 : height // 2 + 4, x : x + 8] = 255
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.fixture
def make_video(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_video("a.mp4", num_frames=30, size=(64, 48))`` -> path in tmp_path."""

    def _make(name: str = "clip.mp4", num_frames: int = 24, **kwargs: object) -> Path:
        return write_video(tmp_path / name, num_frames, **kwargs)  # type: ignore[arg-type]

    return _make
