"""The GKAAN training loss (docs/model.md#loss): NLL of the fused probabilities plus GA terms.

GA(att) = mean over the batch of max(0, p_GP[y] - p_att[y] + margin): the attention stream
must beat the global-pooling stream on the true class by at least ``margin``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ..config import MIN_PROB, GKAANConfig
from .gkaan import GKAANOutput

__all__ = ["LossParts", "ga_term", "gkaan_loss"]


class LossParts(NamedTuple):
    """The loss and its parts (scalars): ``total = nll + ga_sa + ga_la``."""

    total: Tensor
    nll: Tensor
    ga_sa: Tensor
    ga_la: Tensor


def ga_term(p_gp: Tensor, p_att: Tensor, target: Tensor, margin: float) -> Tensor:
    """Mean of max(0, p_GP[y] - p_att[y] + margin) over the batch.

    Args:
        p_gp: (B, K) softmax probabilities of the GP stream.
        p_att: (B, K) softmax probabilities of the attention stream.
        target: (B,) true class indices.
        margin: the hinge margin (0.1 in the paper).
    """
    index = target.unsqueeze(1)
    true_gp = p_gp.gather(1, index).squeeze(1)
    true_att = p_att.gather(1, index).squeeze(1)
    return torch.clamp(true_gp - true_att + margin, min=0).mean()


def gkaan_loss(output: GKAANOutput, target: Tensor, config: GKAANConfig) -> LossParts:
    """L = NLL(log P_fused, y) + GA(SA) + GA(LA).

    GA applies to early fusion only, where the GS stream stands for SA and the GL stream for
    LA; late fusion and single-stream models get zero GA terms.

    Args:
        output: the model's output for the batch.
        target: (B,) true class indices.
        config: the model's config (fusion and margin).
    """
    nll = torch.nn.functional.nll_loss(torch.log(output.probs.clamp_min(MIN_PROB)), target)
    if config.fusion == "early":
        p_gp = output.stream_probs["gp"]
        ga_sa = ga_term(p_gp, output.stream_probs["gs"], target, config.margin)
        ga_la = ga_term(p_gp, output.stream_probs["gl"], target, config.margin)
    else:
        ga_sa = ga_la = nll.new_zeros(())
    return LossParts(nll + ga_sa + ga_la, nll, ga_sa, ga_la)
