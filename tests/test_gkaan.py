"""The GKAAN network: streams, fusion and attention outputs (docs/model.md)."""

from __future__ import annotations

import pytest
import torch

from gkaan_cli import GKAAN, GKAANConfig
from gkaan_cli.model.loss import gkaan_loss

B, T, SIZE = 2, 3, 64


def tiny_config(**overrides: object) -> GKAANConfig:
    settings: dict[str, object] = {
        "num_classes": 5,
        "backbone": "resnet18",
        "sru_hidden": 16,
        "la_hidden": 8,
    }
    return GKAANConfig(**(settings | overrides))


@pytest.fixture(scope="module")
def clips() -> torch.Tensor:
    return torch.randn(B, T, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def early() -> GKAAN:
    torch.manual_seed(0)
    return GKAAN(tiny_config()).eval()


def test_early_fusion_outputs_streams_probs_and_attention(early: GKAAN, clips: torch.Tensor):
    with torch.no_grad():
        out = early(clips)
    assert set(out.logits) == set(out.stream_probs) == {"gs", "gl", "gp"}
    assert out.probs.shape == (B, 5)
    torch.testing.assert_close(out.probs.sum(dim=1), torch.ones(B))
    assert set(out.attention) == {"sa", "la"}
    for maps in out.attention.values():
        assert maps.shape == (B, T, SIZE // 32, SIZE // 32)
        torch.testing.assert_close(maps.sum(dim=(2, 3)), torch.ones(B, T))


def test_composite_streams_read_2c_features_and_gp_reads_c(early: GKAAN) -> None:
    widths = {name: sru.layers[0].input_size for name, sru in early.srus.items()}
    assert widths == {"gs": 1024, "gl": 1024, "gp": 512}


def test_late_fusion_streams_each_read_c_features() -> None:
    model = GKAAN(tiny_config(fusion="late"))
    assert {name: sru.layers[0].input_size for name, sru in model.srus.items()} == {
        "gp": 512,
        "sa": 512,
        "la": 512,
    }


def test_fused_probs_are_the_weighted_mean_of_stream_probs(clips: torch.Tensor) -> None:
    torch.manual_seed(0)
    model = GKAAN(tiny_config(stream_weights=(1.0, 2.0, 5.0))).eval()
    with torch.no_grad():
        out = model(clips)
    p = out.stream_probs
    torch.testing.assert_close(out.probs, (p["gs"] + 2 * p["gl"] + 5 * p["gp"]) / 8)


def test_logit_fusion_option_averages_logits_before_softmax(clips: torch.Tensor) -> None:
    torch.manual_seed(0)
    model = GKAAN(tiny_config(fuse="logits")).eval()
    with torch.no_grad():
        out = model(clips)
    mean_logits = sum(out.logits.values()) / 3
    torch.testing.assert_close(out.probs, torch.softmax(mean_logits, dim=1))


def test_stream_logits_are_the_head_applied_to_every_step_then_averaged(
    early: GKAAN, clips: torch.Tensor
) -> None:
    with torch.no_grad():
        maps = early.extract_maps(clips.flatten(0, 1)).unflatten(0, (B, T))
        out = early.forward_heads(maps)
        gp = maps.mean(dim=(3, 4))
        states = early.srus["gp"](gp)
        per_step = [early.heads["gp"](states[:, t]) for t in range(T)]
    torch.testing.assert_close(out.logits["gp"], torch.stack(per_step).mean(dim=0))
    torch.testing.assert_close(out.probs, early(clips).probs)


@pytest.mark.parametrize(
    ("fusion", "attention"),
    [("gp", set()), ("sa", {"sa"}), ("la", {"la"}), ("gs", {"sa"}), ("gl", {"la"})],
)
def test_single_stream_models_compute_only_their_attention(
    fusion: str, attention: set[str]
) -> None:
    model = GKAAN(tiny_config(fusion=fusion)).eval()
    maps = torch.rand(B, T, 512, 2, 2)
    with torch.no_grad():
        out = model.forward_heads(maps)
    assert set(out.logits) == {fusion}
    assert set(out.attention) == attention
    torch.testing.assert_close(out.probs, out.stream_probs[fusion])
    assert (model.sa is not None) == ("sa" in attention)
    assert (model.la is not None) == ("la" in attention)


def test_gradients_reach_backbone_attention_and_every_sru_layer(clips: torch.Tensor) -> None:
    torch.manual_seed(0)
    config = tiny_config(dropout=0.0)
    model = GKAAN(config).train()
    loss = gkaan_loss(model(clips), torch.tensor([1, 3]), config).total
    loss.backward()
    checked = {
        "backbone conv1": model.backbone[0].weight,
        "LA W0": model.la.proj.weight,
        "LA w1": model.la.score.weight,
    }
    for name, sru in model.srus.items():
        for i, layer in enumerate(sru.layers):
            checked[f"{name} SRU layer {i}"] = layer.weight
    for name, param in checked.items():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_paper_config_parameter_count() -> None:
    model = GKAAN(GKAANConfig(num_classes=101))
    assert sum(p.numel() for p in model.parameters()) == 48_943_472


def test_from_pretrained_loads_a_local_directory(early: GKAAN, clips, tmp_path) -> None:
    early.save_pretrained(tmp_path / "ckpt")
    loaded = GKAAN.from_pretrained(tmp_path / "ckpt")
    assert loaded.config == early.config
    with torch.no_grad():
        torch.testing.assert_close(loaded(clips).probs, early(clips).probs, atol=0, rtol=0)
