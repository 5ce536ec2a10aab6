"""Out-of-distribution verdict: does a clip look like the model's training clips?

docs/model.md#ood. A clip's embedding is the mean over its frames and positions of the
backbone's conv maps (the GP feature of eq. 4 averaged over time). Its raw score is the
cosine distance to the training clips, ``d(x) = 1 - mean of the k largest cos(x, b_i)``
over the bank ``b`` of training clip embeddings; a video's raw score is the mean of its
clips'. The limits come from the training data alone: each group (person) of the training
set is scored against a bank without that group, and the limit is ``margin`` times the
largest such score (one for videos, one for clips). Reported scores are raw / limit, so a
score above 1 (the default threshold) means "not like anything seen in training".

The statistics live in the checkpoint's ``model.safetensors`` as ``ood.*`` tensors and are
loaded strictly; a checkpoint without them loads and gives no verdict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

__all__ = ["NO_GROUPS", "OOD_KEYS", "OOD_PREFIX", "OODStats", "clip_embedding", "fit_ood"]

#: Prefix of the OOD tensors in a checkpoint's state dict.
OOD_PREFIX = "ood."
#: The tensors an :class:`OODStats` is made of (each exactly once).
OOD_KEYS = ("bank", "k", "limit_video", "limit_clip")
#: Neighbours averaged by the score, and the limit's margin over the largest training score
#: (docs/model.md#ood; chosen by leave-one-person-out on kth-mini, weights/README.md).
DEFAULT_K = 5
DEFAULT_MARGIN = 1.1
_MIN_LIMIT = 1e-6
#: Why a model trained without groups has no verdict (said at the end of ``gkaan train``).
NO_GROUPS = (
    "no out-of-distribution verdict: the training videos need at least two groups (e.g. "
    "persons, --split-by) to calibrate it on new people"
)


def clip_embedding(maps: Tensor) -> Tensor:
    """Conv maps of clips (B, T, C, h, w) -> (B, C) embeddings: the time-mean GP feature."""
    return maps.float().mean(dim=(1, 3, 4))


def _normalise(x: Tensor) -> Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _raw_scores(bank: Tensor, queries: Tensor, k: int) -> Tensor:
    """1 - mean of the ``k`` largest cosine similarities of each query to the bank."""
    sim = _normalise(queries.float()) @ _normalise(bank.float()).T
    top = sim.topk(min(k, bank.shape[0]), dim=1).values
    return 1.0 - top.mean(dim=1)


class OODStats(nn.Module):
    """The OOD statistics of a model: training clip embeddings and the calibrated limits.

    Args:
        bank: (N, C) embeddings of the training clips.
        k: neighbours averaged by the score.
        limit_video: raw video score at which a video counts as out of distribution.
        limit_clip: the same for one clip.
    """

    def __init__(self, bank: Tensor, k: int, limit_video: float, limit_clip: float) -> None:
        super().__init__()
        self.register_buffer("bank", bank.detach().float().clone())
        self.register_buffer("k", torch.tensor(int(k), dtype=torch.int64))
        self.register_buffer("limit_video", torch.tensor(float(limit_video)))
        self.register_buffer("limit_clip", torch.tensor(float(limit_clip)))

    @classmethod
    def from_state(
        cls, tensors: Mapping[str, Tensor], *, prefix: str = "", channels: int | None = None
    ) -> OODStats:
        """Rebuild from ``prefix + key`` tensors (what :func:`fit_ood` returns, or a
        checkpoint's ``ood.*`` tensors).

        Raises:
            ValueError: a missing or unexpected OOD tensor, a bank that is not (N, C) of
                finite values, a ``k`` below 1 or limits that are not positive and finite.
        """
        found = {key[len(prefix) :]: value for key, value in tensors.items()}
        missing = [prefix + key for key in OOD_KEYS if key not in found]
        unexpected = sorted(prefix + key for key in found if key not in OOD_KEYS)
        if missing or unexpected:
            parts = [f"missing {', '.join(missing)}"] if missing else []
            parts += [f"unexpected {', '.join(unexpected)}"] if unexpected else []
            raise ValueError(f"OOD statistics do not fit: {'; '.join(parts)}")
        bank = found["bank"]
        if bank.ndim != 2 or bank.shape[0] < 1 or channels not in (None, bank.shape[1]):
            raise ValueError(
                f"OOD statistics do not fit: {prefix}bank has shape {tuple(bank.shape)}, "
                f"expected (N, {channels or 'C'})"
            )
        scalars = {key: found[key] for key in ("k", "limit_video", "limit_clip")}
        for key, value in scalars.items():
            if value.numel() != 1:
                raise ValueError(f"OOD statistics: {prefix}{key} has {value.numel()} values, not 1")
        k = float(scalars["k"])
        if not (k >= 1 and k == int(k)):  # NaN fails too
            raise ValueError(f"OOD statistics: {prefix}k is {k:g}, not a count of neighbours")
        for key in ("limit_video", "limit_clip"):
            limit = float(scalars[key])
            if not (math.isfinite(limit) and limit > 0):
                raise ValueError(
                    f"OOD statistics: {prefix}{key} is {limit:g}, not a positive limit"
                )
        if not bool(torch.isfinite(bank).all()):
            raise ValueError(f"OOD statistics: {prefix}bank holds NaN or Inf values")
        return cls(bank, int(k), float(scalars["limit_video"]), float(scalars["limit_clip"]))

    def scores(self, embeddings: Tensor) -> tuple[Tensor, float]:
        """(n, C) embeddings of one video's clips -> ((n,) clip scores relative to the clip
        limit, the video's score relative to the video limit); > 1 means unknown."""
        raw = _raw_scores(self.bank, embeddings.to(self.bank.device), int(self.k))
        return raw / self.limit_clip.float(), float(raw.mean() / self.limit_video.float())

    def clip_scores(self, embeddings: Tensor) -> Tensor:
        """(B, C) clip embeddings -> (B,) scores relative to the clip limit (> 1: unknown)."""
        return self.scores(embeddings)[0]

    def video_score(self, embeddings: Tensor) -> float:
        """(n, C) embeddings of one video's clips -> its score relative to the video limit."""
        return self.scores(embeddings)[1]


def fit_ood(
    embeddings: Tensor,
    videos: Tensor,
    groups: Tensor | None = None,
    *,
    k: int = DEFAULT_K,
    margin: float = DEFAULT_MARGIN,
) -> dict[str, Tensor]:
    """OOD statistics of a training set (the ``OODStats`` tensors, without prefix).

    Args:
        embeddings: (N, C) :func:`clip_embedding` of every training clip (test-time sampling).
        videos: (N,) the video each clip comes from.
        groups: (N,) the group (e.g. person) of each clip; a group's clips are scored against
            the others only. At least two groups are needed: videos of one person or one
            recording session are near-duplicates of each other, so limits calibrated by
            holding out single videos are far too tight and would call new people "unknown"
            (on ps7-arms: every video of the unseen person, against none with person groups).
        k: neighbours averaged by the score.
        margin: the limits are ``margin`` x the largest held-out score.

    Raises:
        ValueError: fewer than two videos or two groups (nothing to calibrate the limits with).
    """
    videos = videos.long()
    if videos.unique().numel() < 2:
        raise ValueError("OOD statistics need at least two training videos")
    if groups is None or groups.unique().numel() < 2:
        raise ValueError(NO_GROUPS)
    embeddings = embeddings.float()
    clip_scores = torch.empty(len(embeddings))
    for group in groups.unique():
        held = groups == group
        clip_scores[held] = _raw_scores(embeddings[~held], embeddings[held], k)
    video_scores = torch.stack([clip_scores[videos == v].mean() for v in videos.unique()])
    return {
        "bank": embeddings.clone(),
        "k": torch.tensor(k, dtype=torch.int64),
        # floored: identical training clips would give a zero limit (and scores x / 0)
        "limit_video": (video_scores.max() * margin).clamp_min(_MIN_LIMIT),
        "limit_clip": (clip_scores.max() * margin).clamp_min(_MIN_LIMIT),
    }
