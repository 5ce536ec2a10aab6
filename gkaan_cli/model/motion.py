"""The GM stream (``motion="track"``, docs/model.md#motion-track): where the activity is in
the frame, and how fast that place moves, classified by a linear head.

Per frame t of a clip, two maps over the h x w cells of the conv map F_t (C channels):

- the energy map A_t(n) = mean_c F_t(n, c)^2 (where the network sees something),
- the change map D_t(n) = mean_c |F_t(n, c) - F_{t-1}(n, c)| (where it changed).

Each map, normalised to sum 1 over the cells, has a centroid (x_t, y_t) in [0, 1]^2 and a
spread (sx_t, sy_t). Times are in seconds, so the descriptor means the same at every frame
rate: the lags of :data:`LAG_SECONDS` become ``round(lag * fps)`` frames of the clip's own
rate, and every displacement is divided by its lag in seconds. Lengths are in one of two
units (:data:`MotionScale`, the model config's ``motion_scale``):

- ``frame``: fractions of the frame (a person twice as large moves twice as fast),
- ``height``: the activity region's own height, H = the clip's mean spread sy of the energy
  map, so a zoomed-in walker moves as many of its heights per second as a zoomed-out one.

For each of the two maps the clip descriptor m holds the mean speed |x_t - x_{t-s}| / s and
|y_t - y_{t-s}| / s at each lag (a lag longer than the clip repeats the longest that fits),
the speed of a straight-line fit of x_t and y_t over the clip (drift), the mean spreads sx
and sy in the same unit and the mean height y: :data:`DESCRIPTOR_SIZE` numbers.

The head is p_GM = softmax(W (m - mu) / sigma + b). It is not trained by gradient descent
with the other heads: :meth:`MotionHead.fit` fits it at the end of training as an
L2-regularised logistic regression on every training clip (standardised by the training
clips' mean and standard deviation), a convex problem with one answer. With the config's
``motion_augment`` the fit also sees each training clip zoomed in and out and played at
half and double its frame rate (:func:`augmented_descriptors`). Until it is fitted, the GM
stream does not vote in the fusion.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import MotionScale

__all__ = [
    "DEFAULT_FPS",
    "DESCRIPTOR_SIZE",
    "LAG_SECONDS",
    "MOTION_L2",
    "ZOOMS",
    "MotionHead",
    "MotionScale",
    "augmented_descriptors",
    "motion_descriptor",
]

#: Lags of the centroid displacements, in seconds (1, 5, 10 and 20 frames at 25 fps).
LAG_SECONDS = (0.04, 0.2, 0.4, 0.8)
#: Numbers per map: two per lag, two for the drift, three for spreads and height.
_PER_MAP = 2 * len(LAG_SECONDS) + 2 + 3
#: Length of the clip descriptor m (energy map and change map).
DESCRIPTOR_SIZE = 2 * _PER_MAP
#: Default L2 weight of the logistic-regression fit (the config's ``motion_l2``).
MOTION_L2 = 3e-3
#: The frame rate assumed for a clip whose rate is unknown.
DEFAULT_FPS = 25.0
#: Zoom factors of the fit's augmentation (1 is the clip as it is).
ZOOMS = (0.75, 1.0, 1.5)
#: Frame-rate factors of the fit's augmentation: every second frame, each frame twice.
_RATES = (0.5, 1.0, 2.0)
#: Floor of the per-feature standard deviation (features constant in training).
_MIN_STD = 1e-6
#: Floor of the activity region's height (a fiftieth of the frame).
_MIN_HEIGHT = 0.02


def _centroids(maps: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(B, T, h, w) non-negative maps -> centroids x, y and spreads sx, sy, each (B, T)."""
    _, _, h, w = maps.shape
    p = maps / maps.sum(dim=(2, 3), keepdim=True).clamp_min(1e-12)
    gy = torch.linspace(0, 1, h, dtype=maps.dtype, device=maps.device).view(1, 1, h, 1)
    gx = torch.linspace(0, 1, w, dtype=maps.dtype, device=maps.device).view(1, 1, 1, w)
    cy, cx = (p * gy).sum(dim=(2, 3)), (p * gx).sum(dim=(2, 3))
    sx = (p * (gx - cx[..., None, None]).square()).sum(dim=(2, 3)).sqrt()
    sy = (p * (gy - cy[..., None, None]).square()).sum(dim=(2, 3)).sqrt()
    return cx, cy, sx, sy


def _track(maps: Tensor, unit: Tensor, fps: float) -> Tensor:
    """(B, T, h, w) maps, (B,) length units -> (B, _PER_MAP) speeds, drift, spreads."""
    b, t = maps.shape[:2]
    cx, cy, sx, sy = _centroids(maps)
    feats: list[Tensor] = []
    previous = [cx.new_zeros(b), cx.new_zeros(b)]
    for seconds in LAG_SECONDS:
        lag = max(1, round(seconds * fps))
        if lag < t:
            previous = [
                (c[:, lag:] - c[:, :-lag]).abs().mean(dim=1) * (fps / lag) / unit for c in (cx, cy)
            ]
        feats += previous  # a lag longer than the clip repeats the longest that fits
    steps = torch.arange(t, dtype=maps.dtype, device=maps.device)
    steps = steps - steps.mean()
    norm = steps.square().sum().clamp_min(1e-12)
    for c in (cx, cy):  # |slope| per second: the drift over the clip
        slope = (steps * (c - c.mean(dim=1, keepdim=True))).sum(dim=1) / norm
        feats.append(slope.abs() * fps / unit)
    feats += [sx.mean(dim=1) / unit, sy.mean(dim=1) / unit, cy.mean(dim=1)]
    return torch.stack(feats, dim=1)


def motion_descriptor(
    maps: Tensor, fps: float | Tensor | None = None, scale: MotionScale = "frame"
) -> Tensor:
    """Clip conv maps (B, T, C, h, w) -> the motion descriptor m, (B, DESCRIPTOR_SIZE) fp32.

    Args:
        maps: the clips' conv maps, consecutive frames.
        fps: the clips' frame rate: one number, or one per clip (B,); None or a rate that is
            not positive means :data:`DEFAULT_FPS`.
        scale: the unit of lengths (:data:`MotionScale`).
    """
    maps = maps.float()
    rates = _rates(fps, maps.shape[0])
    out = maps.new_zeros(maps.shape[0], DESCRIPTOR_SIZE)
    for rate in sorted(set(rates)):
        rows = [i for i, r in enumerate(rates) if r == rate]
        index = torch.tensor(rows, device=maps.device)
        out[index] = _describe(maps[index], rate, scale)
    return out


def _rates(fps: float | Tensor | None, count: int) -> list[float]:
    """One frame rate per clip, :data:`DEFAULT_FPS` where unknown."""
    if fps is None:
        values = [DEFAULT_FPS] * count
    elif isinstance(fps, Tensor) and fps.dim() > 0:
        values = [float(v) for v in fps.tolist()]
    else:
        values = [float(fps)] * count
    return [v if 0 < v < float("inf") else DEFAULT_FPS for v in values]


def _describe(maps: Tensor, fps: float, scale: MotionScale) -> Tensor:
    """(B, T, C, h, w) fp32 maps of clips at ``fps`` -> (B, DESCRIPTOR_SIZE)."""
    if maps.shape[1] < 2:
        return maps.new_zeros(maps.shape[0], DESCRIPTOR_SIZE)
    energy = maps.square().mean(dim=2)
    change = (maps[:, 1:] - maps[:, :-1]).abs().mean(dim=2)
    if scale == "height":
        unit = _centroids(energy)[3].mean(dim=1).clamp_min(_MIN_HEIGHT)
    else:
        unit = maps.new_ones(maps.shape[0])
    return torch.cat([_track(energy, unit, fps), _track(change, unit, fps)], dim=1)


def _zoom(maps: Tensor, factor: float) -> Tensor:
    """Maps (B, T, C, h, w) as a camera zoomed by ``factor`` about the centre would give
    them: > 1 crops the centre and enlarges it, < 1 shrinks the frame inside a border of
    each map's mean (bilinear, map size kept)."""
    if factor == 1.0:
        return maps
    b, t, c, h, w = maps.shape
    flat = maps.flatten(0, 1)
    if factor > 1:
        ch, cw = max(1, round(h / factor)), max(1, round(w / factor))
        top, left = (h - ch) // 2, (w - cw) // 2
        crop = flat[:, :, top : top + ch, left : left + cw]
        out = nn.functional.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False)
    else:
        sh, sw = max(1, round(h * factor)), max(1, round(w * factor))
        small = nn.functional.interpolate(flat, size=(sh, sw), mode="bilinear", align_corners=False)
        out = flat.mean(dim=(2, 3), keepdim=True).expand(-1, -1, h, w).clone()
        top, left = (h - sh) // 2, (w - sw) // 2
        out[:, :, top : top + sh, left : left + sw] = small
    return out.reshape(b, t, c, h, w)


def augmented_descriptors(
    maps: Tensor, fps: float | Tensor | None = None, scale: MotionScale = "frame"
) -> Tensor:
    """Descriptors of every zoom of :data:`ZOOMS` at each rate (half, as is, double) of each
    clip: (len(ZOOMS) * 3, B, DESCRIPTOR_SIZE); the clip as it is is the middle row.

    Half the rate keeps every second frame (a clip at fps / 2); double repeats each frame
    (a clip at 2 fps, as a video re-encoded at twice its rate).
    """
    maps = maps.float()
    rates = torch.tensor(_rates(fps, maps.shape[0]))
    out = []
    for zoom in ZOOMS:
        zoomed = _zoom(maps, zoom)
        for rate in _RATES:
            if rate < 1:
                clips, clip_fps = zoomed[:, ::2], rates / 2
            elif rate > 1:
                clips, clip_fps = zoomed.repeat_interleave(2, dim=1), rates * 2
            else:
                clips, clip_fps = zoomed, rates
            out.append(motion_descriptor(clips, clip_fps, scale))
    return torch.stack(out)


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

    @torch.enable_grad()
    def fit(
        self, descriptors: Tensor, labels: Tensor, l2: float = MOTION_L2, fps: float = 0.0
    ) -> None:
        """Fit the head as a logistic regression on training clips.

        Minimises mean cross-entropy + ``l2`` * ||W||^2 over standardised descriptors with
        L-BFGS (deterministic for the same inputs).

        Args:
            descriptors: (N, DESCRIPTOR_SIZE) descriptors of the training clips, or
                (A, N, DESCRIPTOR_SIZE): A variants of each (:func:`augmented_descriptors`),
                all fitted with the clip's label.
            labels: (N,) their class indices.
            l2: the L2 weight on W.
            fps: the training videos' (median) frame rate, 0 when unknown.
        """
        x = descriptors.detach().float().cpu().clone()  # may come from inference mode
        y = labels.detach().long().cpu().clone()
        if x.dim() == 3:  # augmented variants of every clip
            y = y.repeat(x.shape[0])
            x = x.flatten(0, 1)
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
