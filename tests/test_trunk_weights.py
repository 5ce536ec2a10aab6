"""Trunk weights as one typed value: cached conv maps match a run by the content of the
trunk's weights, whatever name they came by, and manifests written before the hash existed
still read and match by name."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import TINY_MODEL
from safetensors.torch import save_file

from gkaan_cli.data.manifest import MANIFEST_NAME, load_manifest
from gkaan_cli.data.prepare import FeatureOptions, PrepareOptions, prepare
from gkaan_cli.data.sources import SplitOptions
from gkaan_cli.engine.evaluate import features_match
from gkaan_cli.engine.recipes import load_train_config
from gkaan_cli.engine.train import RunStart, train
from gkaan_cli.engine.train_errors import FeatureMapsMismatchError
from gkaan_cli.model.backbones import build_backbone
from gkaan_cli.model.efficientnet_lite import efficientnet_lite0
from gkaan_cli.model.gkaan import GKAAN
from gkaan_cli.model.trunk_weights import TrunkWeights, weights_digest

LITE = {**TINY_MODEL, "backbone": "efficientnet_lite0"}
LITE.pop("preprocess")  # the backbone's own preprocessing, as the cached maps have it


@pytest.mark.parametrize(
    ("written", "source", "path"),
    [
        (True, "imagenet", None),
        ("True", "imagenet", None),
        (False, "random", None),
        ("False", "random", None),
        ("", "random", None),
        ("/w/trunk.pth", "file", "/w/trunk.pth"),
    ],
)
def test_every_value_gkaan_has_written_reads_as_trunk_weights(
    written: Any, source: str, path: str | None
) -> None:
    weights = TrunkWeights.parse(written)
    assert (weights.source, weights.path, weights.sha256) == (source, path, None)
    assert TrunkWeights.parse(weights.model_dump()) == weights


def test_the_hash_is_of_the_values_not_their_dtype_or_name() -> None:
    torch.manual_seed(0)
    a = torch.nn.Conv2d(3, 4, 3)
    b = torch.nn.Conv2d(3, 4, 3)
    b.load_state_dict(a.state_dict())
    assert weights_digest(a) == weights_digest(b)
    half = torch.nn.Conv2d(3, 4, 3)
    half.load_state_dict({k: v.half() for k, v in a.state_dict().items()})
    assert weights_digest(half.half()) == weights_digest(half.float())  # same values
    assert weights_digest(half) != weights_digest(a)  # rounded to fp16: other values
    with torch.no_grad():
        b.bias[0] += 1e-3
    assert weights_digest(a) != weights_digest(b)


def test_same_weights_by_hash_when_both_know_it_else_by_source_and_path() -> None:
    imagenet = TrunkWeights(source="imagenet", sha256="a" * 64)
    assert imagenet.same_weights(TrunkWeights(source="file", path="/x", sha256="a" * 64))
    assert not imagenet.same_weights(TrunkWeights(source="imagenet", sha256="b" * 64))
    assert imagenet.same_weights(TrunkWeights(source="imagenet"))  # a version-1 manifest
    assert not imagenet.same_weights(TrunkWeights(source="file", path="/x"))


@pytest.fixture
def prepared(tmp_path: Path, make_video: Callable[..., Path]) -> Path:
    """Two classes x two videos, prepared with ImageNet EfficientNet-Lite0 maps."""
    for label in ("left", "right"):
        for i in range(2):
            make_video(f"src/{label}/{label}{i}.mp4", num_frames=12 + 4 * i)
    out = tmp_path / "prepared"
    options = PrepareOptions(
        split=SplitOptions(val_fraction=0.0, test_fraction=0.0),
        sampling=load_train_config("quick", None, {"model": LITE}).model_inputs().sampling,
        features=FeatureOptions("efficientnet_lite0", pretrained=True, precision="fp32"),
    )
    prepare(tmp_path / "src", out, options)
    return out


def _imagenet_file(path: Path, *, nudge: bool = False) -> Path:
    """The ImageNet Lite0 weights saved under another name (one tensor moved by ``nudge``)."""
    state = {k: v.clone() for k, v in efficientnet_lite0(pretrained=True).state_dict().items()}
    if nudge:
        state["_conv_stem.weight"][0, 0, 0, 0] += 1e-3
    save_file(state, str(path))
    return path


def _config(**overrides: Any) -> Any:
    settings = {"model": LITE, "frozen_backbone": True, "epochs": 1, "batch_size": 2}
    return load_train_config("quick", None, {**settings, **overrides})


def test_the_manifest_records_the_hash_of_the_trunk_that_computed_the_maps(prepared: Path) -> None:
    weights = load_manifest(prepared).settings.pretrained
    assert weights is not None and weights.source == "imagenet"
    trunk = build_backbone("efficientnet_lite0", pretrained=True)
    assert weights.sha256 == weights_digest(trunk)


def test_maps_match_a_run_whose_trunk_has_the_same_weights_under_another_name(
    prepared: Path, tmp_path: Path
) -> None:
    copy = _imagenet_file(tmp_path / "renamed.safetensors")
    starts: list[RunStart] = []
    result = train(
        prepared, tmp_path / "run", _config(backbone_weights=str(copy)), on_start=starts.append
    )
    (start,) = starts
    assert start.inputs == "features" and start.trunk.path == str(copy.resolve())
    assert start.trunk.sha256 == load_manifest(prepared).settings.pretrained.sha256  # type: ignore[union-attr]
    assert features_match(GKAAN.from_pretrained(result.last), load_manifest(prepared))


def test_maps_of_other_weights_are_refused_naming_both(prepared: Path, tmp_path: Path) -> None:
    other = _imagenet_file(tmp_path / "other.safetensors", nudge=True)
    with pytest.raises(FeatureMapsMismatchError) as caught:
        train(prepared, tmp_path / "run", _config(backbone_weights=str(other)))
    assert (caught.value.cached, caught.value.weights) == ("ImageNet", str(other.resolve()))
    assert not (tmp_path / "run").exists()


def test_a_version_1_manifest_still_matches_by_name(prepared: Path, tmp_path: Path) -> None:
    path = prepared / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    manifest["version"], manifest["settings"]["pretrained"] = 1, "True"
    path.write_text(json.dumps(manifest))
    old = load_manifest(prepared)
    assert old.settings.pretrained == TrunkWeights(source="imagenet")
    starts: list[RunStart] = []
    result = train(prepared, tmp_path / "run", _config(), on_start=starts.append)
    assert [(s.inputs, s.trunk.label) for s in starts] == [("features", "ImageNet")]
    assert features_match(GKAAN.from_pretrained(result.last), old)  # tensor by tensor
