"""The authors' training augmentation (docs/protocol.md#preprocessing): a plain random crop and
a flip drawn for every frame (``train_crop="random"``, ``train_per_frame``)."""

from __future__ import annotations

import torch

from gkaan_cli.config import PreprocessConfig
from gkaan_cli.video.transforms import ClipTransform

H, W, CROP, T = 12, 16, 8, 16


def _clip() -> torch.Tensor:
    """Every pixel tells where it is: red = row, green = column (identical frames)."""
    rows = torch.arange(H).view(H, 1).expand(H, W)
    cols = torch.arange(W).view(1, W).expand(H, W)
    frame = torch.stack([rows * 10, cols * 10, torch.zeros(H, W, dtype=torch.long)], dim=2)
    return frame.to(torch.uint8).expand(T, H, W, 3).contiguous()


def _windows(per_frame: bool) -> list[tuple[int, int, bool]]:
    """(top, left, flipped) of each output frame, checked to be an unscaled window."""
    config = PreprocessConfig(
        resize=(H, W), crop=CROP, mean=(0, 0, 0), std=(1, 1, 1),
        train_crop="random", train_per_frame=per_frame,
    )  # fmt: skip
    out = ClipTransform(config, train=True)(_clip(), torch.Generator().manual_seed(0))
    assert out.shape == (T, 3, CROP, CROP)
    pixels = (out * 255).round().long() // 10
    found = []
    for frame in pixels:
        top, cols = int(frame[0, 0, 0]), frame[1, 0]
        flipped = bool(cols[0] > cols[-1])
        left = int(cols.min())
        expected_cols = torch.arange(left, left + CROP)
        assert torch.equal(frame[0, :, 0], torch.arange(top, top + CROP))  # no rescaling
        assert torch.equal(cols, expected_cols.flip(0) if flipped else expected_cols)
        found.append((top, left, flipped))
    return found


def test_per_frame_draws_a_crop_and_flip_for_each_frame() -> None:
    windows = _windows(per_frame=True)
    assert len(set(windows)) > T // 2
    assert {flipped for _, _, flipped in windows} == {True, False}


def test_random_crop_without_per_frame_keeps_one_window_for_the_clip() -> None:
    assert len(set(_windows(per_frame=False))) == 1
