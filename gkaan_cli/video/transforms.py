"""Clip preprocessing (docs/protocol.md#preprocessing): resize, crop, flip, scale, normalise.

By default one random-resized crop box and one flip decision are drawn per clip and applied
to every frame, so the clip stays temporally coherent, and all ops run on the whole
(T, 3, H, W) tensor. ``train_crop="random"`` and ``train_per_frame`` give the authors'
augmentation instead: a plain random crop and a flip drawn for each frame.
"""

from __future__ import annotations

import math

import torch
from torchvision.transforms.v2 import functional as F

from ..config import PreprocessConfig

__all__ = ["ClipTransform"]

#: Attempts at drawing a crop box inside the frame before falling back to a center crop
#: (torchvision's RandomResizedCrop rule).
_CROP_ATTEMPTS = 10


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    return low + (high - low) * torch.rand(1, generator=generator).item()


class ClipTransform:
    """uint8 clip (T, H, W, 3) -> normalised float (T, 3, crop, crop).

    Args:
        preprocess: sizes, normalisation and training augmentation settings.
        train: the training crop + horizontal flip (``preprocess.train_crop``, shared by the
            clip unless ``preprocess.train_per_frame``) instead of a center crop.
    """

    def __init__(self, preprocess: PreprocessConfig, *, train: bool) -> None:
        self.preprocess = preprocess
        self.train = train

    def _crop_box(
        self, height: int, width: int, generator: torch.Generator | None
    ) -> tuple[int, int, int, int]:
        """(top, left, h, w) drawn like torchvision's RandomResizedCrop, seeded by ``generator``."""
        scale, ratio = self.preprocess.train_scale, self.preprocess.train_ratio
        area = height * width
        log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        for _ in range(_CROP_ATTEMPTS):
            target_area = area * _uniform(scale[0], scale[1], generator)
            aspect = math.exp(_uniform(log_ratio[0], log_ratio[1], generator))
            w = round(math.sqrt(target_area * aspect))
            h = round(math.sqrt(target_area / aspect))
            if 0 < w <= width and 0 < h <= height:
                top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
                left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
                return top, left, h, w
        in_ratio = width / height
        if in_ratio < ratio[0]:
            w, h = width, round(width / ratio[0])
        elif in_ratio > ratio[1]:
            h, w = height, round(height * ratio[1])
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def _augment(self, clip: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """One training crop and flip decision, applied to all of ``clip`` (..., 3, H, W)."""
        cfg = self.preprocess
        height, width = clip.shape[-2:]
        if cfg.train_crop == "random":
            top = int(torch.randint(0, height - cfg.crop + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - cfg.crop + 1, (1,), generator=generator))
            clip = F.crop(clip, top, left, cfg.crop, cfg.crop)
        else:
            top, left, h, w = self._crop_box(height, width, generator)
            clip = F.resized_crop(clip, top, left, h, w, [cfg.crop, cfg.crop], antialias=True)
        if torch.rand(1, generator=generator).item() < cfg.train_flip:
            clip = F.horizontal_flip(clip)
        return clip

    def __call__(
        self, frames: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Transform one clip; ``generator`` seeds the training crop and flip."""
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != torch.uint8:
            raise ValueError(
                f"expected a uint8 (T, H, W, 3) clip, got {tuple(frames.shape)} {frames.dtype}"
            )
        cfg = self.preprocess
        clip = frames.permute(0, 3, 1, 2)
        if tuple(clip.shape[-2:]) != tuple(cfg.resize):
            clip = F.resize(clip, list(cfg.resize), antialias=True)
        if self.train and cfg.train_per_frame:
            clip = torch.stack([self._augment(frame, generator) for frame in clip])
        elif self.train:
            clip = self._augment(clip, generator)
        else:
            clip = F.center_crop(clip, [cfg.crop, cfg.crop])
        clip = F.to_dtype(clip, torch.float32, scale=True)
        return F.normalize(clip, list(cfg.mean), list(cfg.std))
