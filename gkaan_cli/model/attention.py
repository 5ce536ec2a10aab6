"""Spatial poolings of a conv map F (C x h x w) into one C-vector per frame (docs/model.md#gp).

Each module's ``forward(maps (N, C, h, w))`` returns ``(pooled (N, C), attention (N, h, w))``;
the attention is ``None`` for global pooling and otherwise sums to 1 over the h*w cells.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

__all__ = ["GlobalPooling", "LearnedAttention", "StatisticAttention"]

Variant = Literal["paper", "reference"]


def _attend(maps: Tensor, scores: Tensor) -> tuple[Tensor, Tensor]:
    """T = softmax over cells of ``scores`` (N, h, w); R = sum_n T_n f_n."""
    n, c, h, w = maps.shape
    flat = scores.reshape(n, h * w)
    # Stable softmax: softmax is shift-invariant, so subtracting the max changes nothing.
    weights = torch.softmax(flat - flat.amax(dim=1, keepdim=True), dim=1)
    pooled = torch.bmm(maps.reshape(n, c, h * w), weights.unsqueeze(2)).squeeze(2)
    return pooled, weights.reshape(n, h, w)


class GlobalPooling(nn.Module):
    """GP: R_GP = mean_n f_n (no attention map)."""

    def forward(self, maps: Tensor) -> tuple[Tensor, None]:
        return maps.mean(dim=(2, 3)), None


class StatisticAttention(nn.Module):
    """SA, parameter-free statistic attention: M_n = sum_c F_{c,n}^2, T = softmax_n(M).

    Args:
        variant: ``paper`` (sum of squares over channels) or ``reference`` (mean of squares
            over channels followed by a learnable scalar affine, a 1x1 conv on the map, as in
            the authors' code; gkaan initialises it to the identity, where the authors' code
            keeps PyTorch's default random init: docs/model.md#sa-reference).
    """

    def __init__(self, variant: Variant = "paper") -> None:
        super().__init__()
        self.variant = variant
        self.affine: nn.Conv2d | None = None
        if variant == "reference":
            self.affine = nn.Conv2d(1, 1, kernel_size=1)
            nn.init.ones_(self.affine.weight)
            nn.init.zeros_(self.affine.bias)
        elif variant != "paper":
            raise ValueError(f"unknown SA variant {variant!r}")

    def forward(self, maps: Tensor) -> tuple[Tensor, Tensor]:
        squares = maps.square()
        if self.affine is None:
            scores = squares.sum(dim=1)
        else:
            scores = self.affine(squares.mean(dim=1, keepdim=True)).squeeze(1)
        return _attend(maps, scores)


class LearnedAttention(nn.Module):
    """LA: M_n = w1 . tanh(W0 f_n + b0) + b1, T = softmax_n(M), W0 (hidden x C), w1 (1 x hidden).

    Args:
        channels: C.
        hidden: rows of W0 (128 in the paper).
        variant: ``paper``, or ``reference`` (an extra tanh on M, as in the authors' code).
    """

    def __init__(self, channels: int, hidden: int = 128, variant: Variant = "paper") -> None:
        super().__init__()
        if variant not in ("paper", "reference"):
            raise ValueError(f"unknown LA variant {variant!r}")
        self.variant = variant
        self.proj = nn.Linear(channels, hidden)  # W0, b0
        self.score = nn.Linear(hidden, 1)  # w1, b1

    def forward(self, maps: Tensor) -> tuple[Tensor, Tensor]:
        cells = maps.flatten(2).transpose(1, 2)  # (N, h*w, C): the vectors f_n
        scores = self.score(torch.tanh(self.proj(cells))).squeeze(2)
        if self.variant == "reference":
            scores = torch.tanh(scores)
        return _attend(maps, scores.reshape(maps.shape[0], *maps.shape[2:]))
