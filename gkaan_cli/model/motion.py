"""The GM stream (``motion="track"``, docs/model.md#motion-track): where the activity is in
the frame, and how fast that place moves, classified by a linear head.

Per frame t of a clip, two maps over the h x w cells of the conv map F_t (C channels):

- the energy map A_t(n) = mean_c F_t(n, c)^2 (where the network sees something),
- the change map D_t(n) = mean_c |F_t(n, c) - F_{t-1}(n, c)| (where it changed).

Each map, normalised to sum 1 over the cells, has a centroid (x_t, y_t) in [0, 1]^2 and a
spread. The clip descriptor m holds, for each of the two maps, the mean displacement
|x_t - x_{t-s}| and |y_t - y_{t-s}| over the lags s in :data:`LAGS` (speed at several time
scales), the displacement of a straight-line fit of x_t and y_t over the clip (drift), the
mean spreads of x and y and the mean height y: :data:`DESCRIPTOR_SIZE` numbers in all.

The head is p_GM = softmax(W (m - mu) / sigma + b). It is not trained by gradient descent
with the other heads: :meth:`MotionHead.fit` fits it at the end of training as an
L2-regularised logistic regression on every training clip (standardised by the training
clips' mean and standard deviation), a convex problem with one answer. Until it is fitted,
the GM stream does not vote in the fusion.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = [
    "DESCRIPTOR_SIZE",
    "LAGS",
    "MOTION_L2",
    "RATE_TOLERANCE",
    "MotionHead",
    "motion_descriptor",
]

#: Frame lags of the centroid displacements (at 25 frames/s: 0.04 s to 0.8 s).
LAGS = (1, 5, 10, 20)
#: Numbers per map: two per lag, two for the drift, three for spread and height.
_PER_MAP = 2 * len(LAGS) + 2 + 3
#: Length of the clip descriptor m (energy map and change map).
DESCRIPTOR_SIZE = 2 * _PER_MAP
#: L2 weight of the logistic-regression fit (chosen by leave-one-person-out on kth-mini).
MOTION_L2 = 3e-3
#: Floor of the per-feature standard deviation (features constant in training).
_MIN_STD = 1e-6
#: A video whose frame rate differs from the fitted one by more than this fraction reads its
#: speeds differently (lags count frames): :meth:`MotionHead.rate_differs`.
RATE_TOLERANCE = 0.1


def _track(maps: Tensor) -> Tensor:
    """(B, T, h, w) non-negative maps -> (B, _PER_MAP) centroid speed, drift and spread."""
    b, t, h, w = maps.shape
    if t == 0:
        return maps.new_zeros(b, _PER_MAP)
    p = maps / maps.sum(dim=(2, 3), keepdim=True).clamp_min(1e-12)
    gy = torch.linspace(0, 1, h, dtype=maps.dtype, device=maps.device).view(1, 1, h, 1)
    gx = torch.linspace(0, 1, w, dtype=maps.dtype, device=maps.device).view(1, 1, 1, w)
    cy, cx = (p * gy).sum(dim=(2, 3)), (p * gx).sum(dim=(2, 3))  # (B, T)
    feats = []
    for lag in LAGS:
        if lag < t:
            feats += [(c[:, lag:] - c[:, :-lag]).abs().mean(dim=1) for c in (cx, cy)]
        else:  # the clip is too short for this lag
            feats += [cx.new_zeros(b), cx.new_zeros(b)]
    steps = torch.arange(t, dtype=maps.dtype, device=maps.device)
    steps = steps - steps.mean()
    norm = steps.square().sum().clamp_min(1e-12)
    for c in (cx, cy):  # |slope| x clip length: the drift over the clip
        slope = (steps * (c - c.mean(dim=1, keepdim=True))).sum(dim=1) / norm
        feats.append(slope.abs() * t)
    sx = (p * (gx - cx[..., None, None]).square()).sum(dim=(2, 3)).sqrt()
    sy = (p * (gy - cy[..., None, None]).square()).sum(dim=(2, 3)).sqrt()
    feats += [sx.mean(dim=1), sy.mean(dim=1), cy.mean(dim=1)]
    return torch.stack(feats, dim=1)


def motion_descriptor(maps: Tensor) -> Tensor:
    """Clip conv maps (B, T, C, h, w) -> the motion descriptor m, (B, DESCRIPTOR_SIZE) fp32."""
    maps = maps.float()
    energy = maps.square().mean(dim=2)
    change = (maps[:, 1:] - maps[:, :-1]).abs().mean(dim=2)
    return torch.cat([_track(energy), _track(change)], dim=1)


class MotionHead(nn.Module):
    """The GM stream's classifier: standardise the descriptor, then one linear layer.

    Every tensor is a buffer (saved in the checkpoint and loaded strictly, never touched by
    the optimiser); :meth:`fit` sets them.

    Args:
        classes: K, the number of classes.
    """

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(DESCRIPTOR_SIZE))
        self.register_buffer("std", torch.ones(DESCRIPTOR_SIZE))
        self.register_buffer("weight", torch.zeros(classes, DESCRIPTOR_SIZE))
        self.register_buffer("bias", torch.zeros(classes))
        #: 1.0 once :meth:`fit` has run (a float: checkpoints hold floating tensors only).
        self.register_buffer("fitted", torch.zeros(()))
        #: Median frame rate of the training videos (0: unknown).
        self.register_buffer("fps", torch.zeros(()))

    def forward(self, descriptor: Tensor) -> Tensor:
        """(B, DESCRIPTOR_SIZE) descriptors -> (B, K) logits."""
        return ((descriptor - self.mean) / self.std) @ self.weight.T + self.bias

    def rate_differs(self, fps: float) -> bool:
        """Whether a video at ``fps`` frames/s is read at another speed scale than the
        training videos (rates apart by more than :data:`RATE_TOLERANCE`; False when the
        head is not fitted or a rate is unknown)."""
        fitted = float(self.fps)
        if float(self.fitted) == 0 or fitted <= 0 or fps <= 0:
            return False
        return abs(fps / fitted - 1) > RATE_TOLERANCE

    @torch.enable_grad()
    def fit(
        self, descriptors: Tensor, labels: Tensor, l2: float = MOTION_L2, fps: float = 0.0
    ) -> None:
        """Fit the head as a logistic regression on training clips.

        Minimises mean cross-entropy + ``l2`` * ||W||^2 over standardised descriptors with
        L-BFGS (deterministic for the same inputs).

        Args:
            descriptors: (N, DESCRIPTOR_SIZE) descriptors of the training clips.
            labels: (N,) their class indices.
            l2: the L2 weight on W.
            fps: the training videos' (median) frame rate, 0 when unknown.
        """
        x = descriptors.detach().float().cpu().clone()  # may come from inference mode
        y = labels.detach().long().cpu().clone()
        mean, std = x.mean(dim=0), x.std(dim=0, correction=0).clamp_min(_MIN_STD)
        x = (x - mean) / std
        weight = torch.zeros(self.weight.shape, requires_grad=True)
        bias = torch.zeros(self.bias.shape, requires_grad=True)
        optimizer = torch.optim.LBFGS([weight, bias], max_iter=200, line_search_fn="strong_wolfe")

        def closure() -> Tensor:
            optimizer.zero_grad()
            logits = x @ weight.T + bias
            loss = nn.functional.cross_entropy(logits, y) + l2 * weight.square().sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        with torch.no_grad():
            for name, value in (("mean", mean), ("std", std), ("weight", weight), ("bias", bias)):
                getattr(self, name).copy_(value)
            self.fitted.fill_(1.0)
            self.fps.fill_(float(fps))
