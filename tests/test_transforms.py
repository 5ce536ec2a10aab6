"""ClipTransform (docs/protocol.md#preprocessing): resize, shared crop/flip, normalise."""

from __future__ import annotations

import torch

from gkaan_cli.config import PreprocessConfig
from gkaan_cli.video.transforms import ClipTransform

SMALL = PreprocessConfig(resize=(32, 32), crop=24)


def _clip(frames: int = 3, height: int = 40, width: int = 50) -> torch.Tensor:
    return torch.randint(0, 256, (frames, height, width, 3), dtype=torch.uint8)


def test_test_transform_center_crops_and_normalises() -> None:
    clip = torch.full((2, 32, 32, 3), 255, dtype=torch.uint8)
    clip[:, 4:28, 4:28] = 0  # the 24x24 center is black, the border white
    out = ClipTransform(SMALL, train=False)(clip)
    assert out.shape == (2, 3, 24, 24) and out.dtype == torch.float32
    mean, std = torch.tensor(SMALL.mean), torch.tensor(SMALL.std)
    expected = (-mean / std).view(1, 3, 1, 1).expand(2, 3, 24, 24)
    torch.testing.assert_close(out, expected)


def test_input_of_another_size_is_resized_first() -> None:
    out = ClipTransform(SMALL, train=False)(_clip(height=120, width=160))
    assert out.shape == (3, 3, 24, 24)


def test_training_crop_is_reproducible_with_a_seeded_generator() -> None:
    transform, clip = ClipTransform(SMALL, train=True), _clip()
    first = transform(clip, torch.Generator().manual_seed(7))
    second = transform(clip, torch.Generator().manual_seed(7))
    other = transform(clip, torch.Generator().manual_seed(8))
    torch.testing.assert_close(first, second)
    assert not torch.equal(first, other)


def test_training_crop_and_flip_are_shared_by_all_frames() -> None:
    frame = _clip(frames=1)
    clip = frame.expand(4, -1, -1, -1).contiguous()
    config = PreprocessConfig(resize=(32, 32), crop=24, train_flip=0.5)
    out = ClipTransform(config, train=True)(clip, torch.Generator().manual_seed(3))
    for t in range(1, 4):
        torch.testing.assert_close(out[t], out[0])


def test_training_flip_mirrors_the_clip() -> None:
    clip = _clip(height=32, width=32)
    always = PreprocessConfig(resize=(32, 32), crop=24, train_flip=1.0, train_scale=(1.0, 1.0))
    never = always.model_copy(update={"train_flip": 0.0})
    flipped = ClipTransform(always, train=True)(clip, torch.Generator().manual_seed(0))
    plain = ClipTransform(never, train=True)(clip, torch.Generator().manual_seed(0))
    torch.testing.assert_close(flipped, plain.flip(-1))
