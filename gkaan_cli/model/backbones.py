"""CNN trunks that turn a frame into the conv map F (docs/model.md#frame-features).

A trunk maps (N, 3, H, W) -> (N, C, H/32, W/32): ResNet-18/34/50 from torchvision without
avgpool/fc, or EfficientNet-Lite0 (:mod:`gkaan_cli.model.efficientnet_lite`). ImageNet
weights come from torchvision's weight enum through its own cache (``TORCH_HOME``) or from
a local ``.pth``/``.safetensors`` file; they never silently fall back to random weights.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn
from torchvision import models

from ..config import BACKBONE_CHANNELS, IMAGENET_MEAN, IMAGENET_STD, LITE_MEAN, LITE_STD
from ..errors import MissingWeightsError
from ..fileio import atomic_write_path
from .weights_file import load_state_dict_file

__all__ = ["BACKBONES", "BackboneSpec", "build_backbone", "is_gkaan_checkpoint"]

#: Seconds a weight download may stall before it counts as "offline".
DOWNLOAD_TIMEOUT_S = 20.0
_OFFLINE_VARS = ("GKAAN_OFFLINE", "HF_HUB_OFFLINE")
_HASH_PREFIX = re.compile(r"-([a-f0-9]{6,})\.")


class BackboneSpec(NamedTuple):
    """A backbone's name, conv-map channels C and input normalisation (per RGB channel)."""

    name: str
    channels: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


BACKBONES: dict[str, BackboneSpec] = {
    name: BackboneSpec(name, BACKBONE_CHANNELS[name], IMAGENET_MEAN, IMAGENET_STD)
    for name in ("resnet18", "resnet34", "resnet50")
}
BACKBONES["efficientnet_lite0"] = BackboneSpec(
    "efficientnet_lite0", BACKBONE_CHANNELS["efficientnet_lite0"], LITE_MEAN, LITE_STD
)

_RESNETS: dict[str, tuple[Callable[..., models.ResNet], models.WeightsEnum]] = {
    "resnet18": (models.resnet18, models.ResNet18_Weights.IMAGENET1K_V1),
    "resnet34": (models.resnet34, models.ResNet34_Weights.IMAGENET1K_V1),
    "resnet50": (models.resnet50, models.ResNet50_Weights.IMAGENET1K_V1),
}


def build_backbone(name: str, *, pretrained: bool | str | Path = False) -> nn.Module:
    """Build the trunk ``name`` (a key of :data:`BACKBONES`).

    Args:
        name: backbone name.
        pretrained: ``False`` for random weights, ``True`` for ImageNet weights (cache or
            download), a path to a local ``.pth``/``.safetensors`` state dict, or a GKAAN
            checkpoint folder (or training run) whose trunk (its ``backbone.*`` tensors) is
            used; that model's backbone must be ``name``.
    """
    if not isinstance(pretrained, bool) and is_gkaan_checkpoint(pretrained):
        return _checkpoint_trunk(name, Path(pretrained))
    if name == "efficientnet_lite0":
        from .efficientnet_lite import efficientnet_lite0_trunk

        return efficientnet_lite0_trunk(pretrained)
    if name not in _RESNETS:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    builder, weights = _RESNETS[name]
    net = builder(weights=None)
    if pretrained:
        path = _cached_weights(weights.url) if pretrained is True else Path(pretrained)
        try:
            net.load_state_dict(load_state_dict_file(path))
        except RuntimeError as error:
            reason = " ".join(str(error).split())
            raise MissingWeightsError(f"{path}: not {name} weights ({reason})") from error
    return nn.Sequential(
        net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4
    )


def is_gkaan_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a GKAAN checkpoint (folder, run folder or its ``model.safetensors``)
    rather than a plain backbone weights file."""
    path = Path(path).expanduser()
    if path.is_dir():
        return True
    return path.is_file() and (path.parent / "config.json").is_file()


def _checkpoint_trunk(name: str, source: Path) -> nn.Module:
    """The trunk ``name`` with the ``backbone.*`` tensors of the GKAAN checkpoint ``source``."""
    from .checkpoint import read_checkpoint
    from .weights_file import state_dict_mismatch

    config, tensors = read_checkpoint(source)
    if config.backbone != name:
        raise MissingWeightsError(
            f"{source}: a {config.backbone} model; its trunk cannot serve as {name} weights"
        )
    trunk = build_backbone(name)
    expected = trunk.state_dict()
    prefix = "backbone."
    state = {key[len(prefix) :]: value for key, value in tensors.items() if key.startswith(prefix)}
    problem = state_dict_mismatch(expected, state)
    if problem is not None:
        raise MissingWeightsError(f"{source}: trunk tensors do not fit {name} ({problem})")
    trunk.load_state_dict({key: value.to(expected[key].dtype) for key, value in state.items()})
    return trunk


def _cached_weights(url: str) -> Path:
    """Path of torchvision's cached copy of ``url``, downloading it when allowed."""
    filename = url.rsplit("/", 1)[-1]
    target = Path(torch.hub.get_dir()) / "checkpoints" / filename
    if target.is_file():
        return target
    how = (
        f"download {url} and place it at {target} (or set TORCH_HOME), "
        "or pass the path of a local weights file instead"
    )
    offline = [var for var in _OFFLINE_VARS if os.environ.get(var, "") not in ("", "0")]
    if offline:
        raise MissingWeightsError(f"{filename}: not cached and {offline[0]} is set; {how}")
    try:
        _download(url, target)
    except (OSError, RuntimeError) as error:
        raise MissingWeightsError(f"{filename}: download failed ({error}); {how}") from error
    return target


def _download(url: str, target: Path) -> None:
    """Download ``url`` to ``target`` atomically, checking torchvision's sha256 prefix."""
    match = _HASH_PREFIX.search(target.name)
    digest = hashlib.sha256()
    with atomic_write_path(target) as temp:
        request = urllib.request.Request(url, headers={"User-Agent": "gkaan"})
        with (
            urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response,
            open(temp, "wb") as handle,
        ):
            while chunk := response.read(1 << 20):
                handle.write(chunk)
                digest.update(chunk)
        if match and not digest.hexdigest().startswith(match.group(1)):
            raise RuntimeError(f"sha256 {digest.hexdigest()} does not match {match.group(1)}")
