"""Simple Recurrent Unit (Lei et al. 2018), the temporal model of each stream (docs/model.md#sru).

No gate reads h_{t-1} or c_{t-1}, so one matmul covers every time step; only the elementwise
recurrence of c runs step by step.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["SRU", "SRULayer"]


class SRULayer(nn.Module):
    """One SRU layer: (B, T, input_size) -> (B, T, hidden_size).

    Parameters: ``weight`` (3H, I) with row blocks [W; W_f; W_r], ``bias`` (2H) = [b_f, b_r],
    and ``skip`` (Linear I -> H, the projection x'_t of eq. 15) only when I != H.

    Args:
        input_size: I.
        hidden_size: H.
        dropout: probability of dropping an input feature of the linear transformation
            (eq. 11-13); one mask per sequence, shared over time, training only. The highway
            term of eq. 15 gets the unmasked x (docs/model.md#sru-layout).
    """

    def __init__(self, input_size: int, hidden_size: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.dropout = dropout
        bound = math.sqrt(3.0 / input_size)
        self.weight = nn.Parameter(torch.empty(3 * hidden_size, input_size).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(2 * hidden_size))
        self.skip = nn.Linear(input_size, hidden_size) if input_size != hidden_size else None

    def forward(self, x: Tensor) -> Tensor:
        masked = x
        if self.training and self.dropout > 0:
            keep = 1.0 - self.dropout
            mask = x.new_empty(x.shape[0], 1, x.shape[2]).bernoulli_(keep) / keep
            masked = x * mask
        hidden = self.hidden_size
        # One matmul for all t: rows [W; W_f; W_r] give x~_t (eq. 11) and the gate inputs.
        x_tilde, f_in, r_in = torch.nn.functional.linear(masked, self.weight).split(hidden, dim=2)
        b_f, b_r = self.bias.split(hidden)
        f = torch.sigmoid(f_in + b_f)  # eq. 12
        r = torch.sigmoid(r_in + b_r)  # eq. 13
        # eq. 14, c_t = f_t * c_{t-1} + (1 - f_t) * x~_t: the input term is computed for all t
        # at once; unbind (not f[:, t]) keeps the backward pass one stack instead of T
        # full-size zero tensors per step.
        c = x.new_zeros(x.shape[0], hidden)
        cells = []
        for f_t, u_t in zip(f.unbind(1), ((1 - f) * x_tilde).unbind(1), strict=True):
            c = f_t * c + u_t
            cells.append(c)
        highway = x if self.skip is None else self.skip(x)
        return r * torch.tanh(torch.stack(cells, dim=1)) + (1 - r) * highway  # eq. 15


class SRU(nn.Module):
    """A stack of :class:`SRULayer`: (B, T, input_size) -> (B, T, hidden_size).

    Args:
        input_size: features per time step.
        hidden_size: H of every layer.
        num_layers: depth (3 in the paper).
        dropout: input dropout of every layer (0.6 in the paper).
    """

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 3, dropout: float = 0.0
    ) -> None:
        super().__init__()
        sizes = [input_size] + [hidden_size] * (num_layers - 1)
        self.layers = nn.ModuleList(SRULayer(size, hidden_size, dropout) for size in sizes)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x
