"""The GKAAN loss: NLL of the fused probabilities plus GA terms (docs/model.md#loss)."""

from __future__ import annotations

import math

import pytest
import torch

from gkaan_cli import GKAANConfig, GKAANOutput
from gkaan_cli.model.loss import ga_term, gkaan_loss


def probs(true_class_prob: float, num_classes: int = 3) -> torch.Tensor:
    """A (1, K) distribution giving class 0 ``true_class_prob`` and sharing the rest."""
    rest = (1 - true_class_prob) / (num_classes - 1)
    return torch.tensor([[true_class_prob] + [rest] * (num_classes - 1)])


def output(stream_probs: dict[str, torch.Tensor], fused: torch.Tensor) -> GKAANOutput:
    logits = {name: value.log() for name, value in stream_probs.items()}
    return GKAANOutput(logits=logits, stream_probs=stream_probs, probs=fused)


TARGET = torch.tensor([0])


def test_ga_is_the_true_class_gap_plus_margin() -> None:
    value = ga_term(probs(0.7), probs(0.5), TARGET, margin=0.1)
    assert value.item() == pytest.approx(0.3)


def test_ga_is_zero_once_attention_beats_gp_by_the_margin() -> None:
    assert ga_term(probs(0.5), probs(0.7), TARGET, margin=0.1).item() == 0.0
    assert ga_term(probs(0.5), probs(0.6), TARGET, margin=0.1).item() == pytest.approx(0.0)


def test_ga_averages_over_the_batch_and_reads_the_true_class() -> None:
    p_gp = torch.tensor([[0.7, 0.3], [0.2, 0.8]])
    p_att = torch.tensor([[0.5, 0.5], [0.9, 0.1]])
    # sample 0 (y=0): 0.7 - 0.5 + 0.1 = 0.3; sample 1 (y=1): 0.8 - 0.1 + 0.1 = 0.8
    value = ga_term(p_gp, p_att, torch.tensor([0, 1]), margin=0.1)
    assert value.item() == pytest.approx(0.55)


def test_ga_gradient_reaches_both_streams() -> None:
    p_gp, p_att = probs(0.7).requires_grad_(), probs(0.5).requires_grad_()
    ga_term(p_gp, p_att, TARGET, margin=0.1).backward()
    assert p_gp.grad[0, 0].item() == pytest.approx(1.0)
    assert p_att.grad[0, 0].item() == pytest.approx(-1.0)


def test_early_fusion_loss_is_nll_plus_ga_of_gs_and_gl() -> None:
    config = GKAANConfig(num_classes=3)
    streams = {"gs": probs(0.5), "gl": probs(0.65), "gp": probs(0.7)}
    parts = gkaan_loss(output(streams, probs(0.6)), TARGET, config)
    assert parts.nll.item() == pytest.approx(-math.log(0.6))
    assert parts.ga_sa.item() == pytest.approx(0.3)
    assert parts.ga_la.item() == pytest.approx(0.15)
    assert parts.total.item() == pytest.approx(-math.log(0.6) + 0.45)


@pytest.mark.parametrize("fusion", ["late", "gp", "sa", "la", "gs", "gl"])
def test_late_fusion_and_single_streams_have_no_ga(fusion: str) -> None:
    config = GKAANConfig(num_classes=3, fusion=fusion)
    streams = {name: probs(0.7 if name == "gp" else 0.2) for name in config.streams}
    parts = gkaan_loss(output(streams, probs(0.4)), TARGET, config)
    assert parts.ga_sa.item() == parts.ga_la.item() == 0.0
    assert parts.total.item() == pytest.approx(-math.log(0.4))


def test_nll_stays_finite_when_the_true_class_has_zero_probability() -> None:
    config = GKAANConfig(num_classes=2, fusion="gp")
    fused = torch.tensor([[0.0, 1.0]])
    parts = gkaan_loss(output({"gp": fused}, fused), TARGET, config)
    assert math.isfinite(parts.total.item()) and parts.nll.item() > 20
