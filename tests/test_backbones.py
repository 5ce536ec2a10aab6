"""Backbone trunks and where their ImageNet weights come from (docs/model.md#frame-features)."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torchvision.models import resnet18

from gkaan_cli.errors import MissingWeightsError
from gkaan_cli.model.backbones import BACKBONES, build_backbone

RESNET18_FILE = "resnet18-f37072fd.pth"  # torchvision's name for ResNet18_Weights.IMAGENET1K_V1


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty TORCH_HOME; GKAAN_OFFLINE set so nothing can be downloaded."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("GKAAN_OFFLINE", "1")
    return tmp_path / "torch"


def _no_network(*args: object, **kwargs: object) -> None:
    raise AssertionError("tried to download although offline")


@pytest.fixture(scope="module")
def reference_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return resnet18().state_dict()


def assert_trunk_holds(trunk: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    torch.testing.assert_close(trunk[0].weight, state["conv1.weight"], atol=0, rtol=0)
    torch.testing.assert_close(
        trunk[7][1].conv2.weight, state["layer4.1.conv2.weight"], atol=0, rtol=0
    )


@pytest.mark.parametrize(("name", "channels"), [("resnet18", 512), ("resnet50", 2048)])
def test_resnet_trunk_gives_c_maps_at_one_32nd_resolution(name: str, channels: int) -> None:
    trunk = build_backbone(name).eval()
    with torch.no_grad():
        maps = trunk(torch.randn(1, 3, 64, 96))
    assert maps.shape == (1, channels, 2, 3)
    assert BACKBONES[name].channels == channels


def test_efficientnet_lite0_trunk_is_built_by_name() -> None:
    trunk = build_backbone("efficientnet_lite0").eval()
    with torch.no_grad():
        assert trunk(torch.randn(1, 3, 64, 64)).shape == (1, 1280, 2, 2)


def test_specs_give_each_backbones_normalisation() -> None:
    assert BACKBONES["resnet34"].mean == (0.485, 0.456, 0.406)
    assert BACKBONES["resnet34"].std == (0.229, 0.224, 0.225)
    from gkaan_cli.model.efficientnet_lite import LITE_MEAN, LITE_STD

    assert BACKBONES["efficientnet_lite0"].mean == LITE_MEAN
    assert BACKBONES["efficientnet_lite0"].std == LITE_STD


@pytest.mark.parametrize("variable", ["GKAAN_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_and_uncached_fails_at_once_saying_where_to_put_the_file(
    torch_home: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.delenv("GKAAN_OFFLINE")
    monkeypatch.setenv(variable, "1")
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    with pytest.raises(MissingWeightsError) as info:
        build_backbone("resnet34", pretrained=True)
    message = str(info.value)
    assert "https://download.pytorch.org/models/resnet34-b627a593.pth" in message
    assert str(torch_home / "hub" / "checkpoints" / "resnet34-b627a593.pth") in message
    assert variable in message and "local weights file" in message


def test_weights_in_the_torch_home_cache_are_used(torch_home: Path, reference_state) -> None:
    cache = torch_home / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(reference_state, cache / RESNET18_FILE)
    assert_trunk_holds(build_backbone("resnet18", pretrained=True), reference_state)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_local_weights_file_is_loaded(tmp_path: Path, reference_state, suffix: str) -> None:
    path = tmp_path / f"weights{suffix}"
    if suffix == ".pth":
        torch.save(reference_state, path)
    else:
        save_file(reference_state, path)
    assert_trunk_holds(build_backbone("resnet18", pretrained=path), reference_state)


def test_weights_of_another_network_are_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(MissingWeightsError, match=r"other\.pth: not resnet18 weights"):
        build_backbone("resnet18", pretrained=path)


def test_missing_local_weights_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(MissingWeightsError, match=r"nope\.pth: backbone weights file not found"):
        build_backbone("resnet18", pretrained=tmp_path / "nope.pth")


def test_unknown_backbone_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown backbone 'vgg16'"):
        build_backbone("vgg16")
