"""Spatial poolings GP, SA and LA (docs/model.md#gp)."""

from __future__ import annotations

import pytest
import torch

from gkaan_cli.model.attention import GlobalPooling, LearnedAttention, StatisticAttention


@pytest.fixture
def maps() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(3, 16, 4, 5) * 0.3


def test_global_pooling_is_the_mean_over_cells(maps: torch.Tensor) -> None:
    pooled, attention = GlobalPooling()(maps)
    assert attention is None
    torch.testing.assert_close(pooled, maps.reshape(3, 16, 20).mean(dim=2))


def test_statistic_attention_is_softmax_of_channel_summed_squares(maps: torch.Tensor) -> None:
    pooled, attention = StatisticAttention()(maps)
    expected = torch.softmax((maps**2).sum(dim=1).reshape(3, 20), dim=1)
    assert attention.shape == (3, 4, 5)
    torch.testing.assert_close(attention.reshape(3, 20), expected)
    torch.testing.assert_close(pooled, (maps.reshape(3, 16, 20) * expected[:, None]).sum(dim=2))


def test_statistic_attention_stays_finite_on_huge_activations(maps: torch.Tensor) -> None:
    pooled, attention = StatisticAttention()(maps * 1e3)
    assert torch.isfinite(pooled).all()
    torch.testing.assert_close(attention.sum(dim=(1, 2)), torch.ones(3))


def test_reference_statistic_attention_starts_as_mean_of_squares_and_learns_a_scale(
    maps: torch.Tensor,
) -> None:
    module = StatisticAttention("reference")
    _, attention = module(maps)
    expected = torch.softmax((maps**2).mean(dim=1).reshape(3, 20), dim=1)
    torch.testing.assert_close(attention.reshape(3, 20), expected)
    assert sum(p.numel() for p in module.parameters()) == 2
    with torch.no_grad():
        module.affine.weight.fill_(50.0)
    _, sharper = module(maps)
    assert sharper.amax() > attention.amax()


def test_learned_attention_has_the_paper_weight_shapes() -> None:
    module = LearnedAttention(512)
    assert module.proj.weight.shape == (128, 512)
    assert module.score.weight.shape == (1, 128)
    assert sum(p.numel() for p in module.parameters()) == 128 * 512 + 128 + 128 + 1


@pytest.mark.parametrize("variant", ["paper", "reference"])
def test_learned_attention_follows_its_equation(maps: torch.Tensor, variant: str) -> None:
    module = LearnedAttention(16, hidden=8, variant=variant)
    pooled, attention = module(maps)
    cells = maps.reshape(3, 16, 20).transpose(1, 2)
    scores = torch.tanh(cells @ module.proj.weight.T + module.proj.bias) @ module.score.weight.T
    scores = scores.squeeze(2) + module.score.bias
    if variant == "reference":
        scores = torch.tanh(scores)
    weights = torch.softmax(scores, dim=1)
    torch.testing.assert_close(attention.reshape(3, 20), weights)
    torch.testing.assert_close(pooled, (cells * weights[..., None]).sum(dim=1))
