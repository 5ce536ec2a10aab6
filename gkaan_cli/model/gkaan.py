"""The GKAAN network: backbone, spatial poolings, one SRU + head per stream, fusion.

docs/model.md. Early fusion streams GS = [GP, SA], GL = [GP, LA] and GP (eq. 19);
late fusion streams GP, SA and LA (eq. 20); single-stream models are the paper's ablations.
With ``motion="track"`` a GM stream (docs/model.md#motion-track) joins the fusion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from ..config import GKAANConfig, MotionScale
from ..errors import BadCheckpointError
from .attention import GlobalPooling, LearnedAttention, StatisticAttention
from .backbones import build_backbone
from .checkpoint import WEIGHTS_FILE, read_checkpoint, write_checkpoint
from .motion import MotionHead, motion_descriptor
from .ood import OOD_PREFIX, OODStats
from .sru import SRU, AuthorsSRU
from .weights_file import state_dict_mismatch

if TYPE_CHECKING:
    from .locate import CheckpointRef

__all__ = [
    "GKAAN",
    "GKAANOutput",
    "fuse_streams",
    "gm_logits",
    "stream_weights",
    "temporal_difference",
]


def temporal_difference(x: Tensor, stride: int) -> Tensor:
    """(B, T, ...) -> ``x_t - x_{t-stride}``, zero for ``t < stride`` (docs/model.md#eq-motion)."""
    out = torch.zeros_like(x)
    if stride < x.shape[1]:
        out[:, stride:] = x[:, stride:] - x[:, :-stride]
    return out


@dataclass
class GKAANOutput:
    """What one forward pass gives.

    Attributes:
        logits: per stream, (B, K) logits averaged over time (eq. 16); ``"gm"`` for the
            motion stream of ``motion="track"`` (a clip-level classifier).
        stream_probs: per stream, (B, K) softmax probabilities.
        probs: (B, K) fused class probabilities (eq. 19 / eq. 20).
        attention: ``"sa"`` and/or ``"la"`` -> (B, T, h, w) maps, each summing to 1 per frame,
            present when the model computes that attention.
    """

    logits: dict[str, Tensor]
    stream_probs: dict[str, Tensor]
    probs: Tensor
    attention: dict[str, Tensor] = field(default_factory=dict)


class GKAAN(nn.Module):
    """Global and Local Knowledge-Aware Attention Network (Zheng et al., TNNLS 2020).

    Args:
        config: the model configuration (streams, sizes, variants).
        pretrained_backbone: ``True`` for ImageNet backbone weights, a path to a local
            weights file, or ``False`` for random weights.
    """

    def __init__(self, config: GKAANConfig, *, pretrained_backbone: bool | str | Path = False):
        super().__init__()
        self.config = config
        channels = config.feature_channels
        streams = config.streams
        self.backbone = build_backbone(config.backbone, pretrained=pretrained_backbone)
        self.gp = GlobalPooling()
        self.sa = (
            StatisticAttention(config.sa_variant)
            if any(s in ("sa", "gs") for s in streams)
            else None
        )
        self.la = (
            LearnedAttention(channels, config.la_hidden, config.la_variant)
            if any(s in ("la", "gl") for s in streams)
            else None
        )
        width = {"gp": channels, "sa": channels, "la": channels}
        width |= {"gs": 2 * channels, "gl": 2 * channels}  # fusion layer: [R_GP, R_att]
        # Motion input (docs/model.md#motion): W_m, appended to every stream's SRU input.
        self.motion = (
            nn.Linear(channels, config.motion_dim, bias=False) if config.motion == "diff" else None
        )
        extra = config.motion_dim if self.motion is not None else 0
        self.srus = nn.ModuleDict({s: self._sru(width[s] + extra) for s in streams})
        self.heads = nn.ModuleDict(
            {s: nn.Linear(config.sru_hidden, config.num_classes) for s in streams}
        )
        #: Dropout before each classifier (``head_dropout``; none when 0).
        self.head_dropout = nn.Dropout(config.head_dropout) if config.head_dropout > 0 else None
        #: The GM stream (docs/model.md#motion-track), fitted at the end of training.
        self.motion_head = MotionHead(config.num_classes) if config.motion == "track" else None
        self.register_buffer("stream_weights", stream_weights(config), persistent=False)
        #: Out-of-distribution statistics (docs/model.md#ood), when the checkpoint has them.
        self.ood: OODStats | None = None
        #: The checkpoint :meth:`from_pretrained` loaded, resolved once (None when built in
        #: memory), and its spec and folder.
        self.ref: CheckpointRef | None = None
        self.source: str | None = None
        self.checkpoint_path: Path | None = None

    def _sru(self, input_size: int) -> nn.Module:
        """One stream's SRU, of ``config.sru_variant`` (docs/model.md#sru-authors)."""
        cfg = self.config
        if cfg.sru_variant == "authors":
            return AuthorsSRU(
                input_size, cfg.sru_hidden, cfg.sru_layers, cfg.dropout, use_tanh=cfg.sru_use_tanh
            )
        return SRU(input_size, cfg.sru_hidden, cfg.sru_layers, cfg.dropout)

    def extract_maps(self, frames: Tensor) -> Tensor:
        """Backbone only: frames (N, 3, H, W) -> conv maps (N, C, h, w)."""
        return self.backbone(frames)

    def forward(self, clips: Tensor, fps: float | Tensor | None = None) -> GKAANOutput:
        """Classify clips (B, T, 3, H, W) at ``fps`` frames/s (see :meth:`forward_heads`)."""
        b, t = clips.shape[:2]
        maps = self.extract_maps(clips.flatten(0, 1))
        return self.forward_heads(maps.unflatten(0, (b, t)), fps)

    def forward_heads(self, maps: Tensor, fps: float | Tensor | None = None) -> GKAANOutput:
        """Everything after the backbone: classify clips from their conv maps (B, T, C, h, w),
        e.g. maps cached by ``gkaan prepare --features`` or computed once per frame.

        ``fps``: the clips' frame rate (one number or one per clip), read by the GM stream
        only (docs/model.md#motion-track); None: the rate the GM head was fitted at."""
        logits, attention = self.stream_logits(maps)
        if self.motion_head is not None:
            logits["gm"] = gm_logits(self.motion_head, maps, fps, self.config.motion_scale).to(
                maps.dtype
            )
        return fuse_streams(self.config, self.stream_weights, self.motion_head, logits, attention)

    def stream_logits(self, maps: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Each attention stream's clip logits (eq. 16) and the SA/LA maps (B, T, h, w) of
        clip conv maps (B, T, C, h, w): :meth:`forward_heads` without GM and the fusion
        (what an ONNX export's heads graph computes)."""
        b, t, _, h, w = maps.shape
        flat = maps.flatten(0, 1)
        pooled = {"gp": self.gp(flat)[0]}
        attention: dict[str, Tensor] = {}
        for name, module in (("sa", self.sa), ("la", self.la)):
            if module is not None:
                pooled[name], weights = module(flat)
                attention[name] = weights.reshape(b, t, h, w)
        if "sa" in pooled:
            pooled["gs"] = torch.cat([pooled["gp"], pooled["sa"]], dim=1)
        if "la" in pooled:
            pooled["gl"] = torch.cat([pooled["gp"], pooled["la"]], dim=1)
        motion = None
        if self.motion is not None:  # docs/model.md#eq-motion
            gp = pooled["gp"].reshape(b, t, -1)
            motion = self.motion(temporal_difference(gp, self.config.motion_stride))
        logits = {}
        for name in self.config.streams:
            inputs = pooled[name].reshape(b, t, -1)
            if motion is not None:
                inputs = torch.cat([inputs, motion], dim=2)
            states = self.srus[name](inputs)
            if self.head_dropout is not None:
                states = self.head_dropout(states)
            logits[name] = self.heads[name](states).mean(dim=1)  # eq. 16
        return logits, attention

    def save_pretrained(self, directory: str | Path, *, dtype: torch.dtype | None = None) -> Path:
        """Write ``config.json`` + ``model.safetensors`` to ``directory`` atomically.

        Args:
            directory: the checkpoint folder to create or replace.
            dtype: store floating tensors in this dtype (e.g. ``torch.float16``).
        """
        return write_checkpoint(directory, self.config, self.state_dict(), dtype=dtype)

    @classmethod
    def from_pretrained(
        cls, spec: str | Path | CheckpointRef, *, revision: str | None = None
    ) -> GKAAN:
        """Load a checkpoint strictly, in eval mode, from a local directory, a training run, a
        Hub id or a registry name.

        Args:
            spec: a checkpoint directory, a training run directory (its ``best/``, else
                ``last/``), a Hub repo id ``org/name[@revision]``, a registry name, or a
                :class:`~gkaan_cli.model.locate.CheckpointRef` already resolved (used as is).
            revision: Hub revision (branch, tag or commit) to pin.

        Raises:
            BadCheckpointError: a pickle file, a missing or invalid file, or tensors that do
                not fit the model the config describes (each one named).
        """
        from .locate import CheckpointRef, locate_checkpoint

        ref = (
            spec if isinstance(spec, CheckpointRef) else locate_checkpoint(spec, revision=revision)
        )
        directory = ref.folder
        config, tensors = read_checkpoint(directory)
        model = cls(config)
        ood = {k: v for k, v in tensors.items() if k.startswith(OOD_PREFIX)}
        if ood:  # optional: older checkpoints have none and give no verdict
            try:
                model.ood = OODStats.from_state(
                    ood, prefix=OOD_PREFIX, channels=config.feature_channels
                )
            except ValueError as error:
                raise BadCheckpointError(directory / WEIGHTS_FILE, str(error)) from error
        expected = model.state_dict()
        problem = state_dict_mismatch(expected, tensors)
        if problem is not None:
            raise BadCheckpointError(directory / WEIGHTS_FILE, problem)
        for key, value in tensors.items():
            if value.is_floating_point():
                tensors[key] = value.to(expected[key].dtype)
        model.load_state_dict(tensors, strict=True)
        model.ref, model.source, model.checkpoint_path = ref, ref.spec, directory
        return model.eval()


def stream_weights(config: GKAANConfig) -> Tensor:
    """The attention streams' fusion weights (``config.stream_weights``), normalised, fp32."""
    weights = torch.tensor(config.stream_weights[: len(config.streams)], dtype=torch.float32)
    return weights / weights.sum()


def gm_logits(
    head: MotionHead, maps: Tensor, fps: float | Tensor | None, scale: MotionScale
) -> Tensor:
    """The GM stream's logits of clip maps (B, T, C, h, w) at ``fps`` (None: the rate the
    head was fitted at; docs/model.md#motion-track)."""
    rate = fps if fps is not None else float(head.fps)
    return head(motion_descriptor(maps, rate, scale))


def fuse_streams(
    config: GKAANConfig,
    stream_weights: Tensor,
    motion_head: MotionHead | None,
    logits: dict[str, Tensor],
    attention: dict[str, Tensor],
) -> GKAANOutput:
    """Each stream's probabilities and the fused ones (eq. 19/20, or ``fuse="logits"``) of
    the streams' ``logits`` (GM last, when ``motion_head`` is given); ``stream_weights``:
    the normalised weights of the attention streams."""
    like = next(iter(logits.values()))
    weights = stream_weights.to(like.dtype)
    if motion_head is not None:
        fitted = motion_head.fitted  # 0.0 or 1.0 on the model's device: no host sync
        streams = config.stream_weights[: len(config.streams)]
        vote = (config.motion_weight * fitted).reshape(1)
        mixed_weights = torch.cat([fitted.new_tensor(streams), vote])
        weights = (mixed_weights / mixed_weights.sum()).to(like)
    stream_probs = {name: torch.softmax(value, dim=1) for name, value in logits.items()}
    if config.fuse == "logits":
        mixed = sum(wt * value for wt, value in zip(weights, logits.values(), strict=True))
        probs = torch.softmax(mixed, dim=1)
    else:  # eq. 19 (early fusion), eq. 20 (late fusion)
        probs = sum(wt * value for wt, value in zip(weights, stream_probs.values(), strict=True))
    return GKAANOutput(logits, stream_probs, probs, attention)
