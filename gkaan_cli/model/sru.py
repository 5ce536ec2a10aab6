"""Simple Recurrent Unit (Lei et al. 2018), the temporal model of each stream (docs/model.md#sru).

Two cells (``GKAANConfig.sru_variant``):

- ``paper`` (:class:`SRU`): the paper's equations 11-15. No gate reads h_{t-1} or c_{t-1}, so
  one matmul covers every time step; only the elementwise recurrence of c runs step by step.
- ``authors`` (:class:`AuthorsSRU`): the cell of the ``sru`` package, release 2.1.3, that the
  authors' released code calls (docs/model.md#sru-authors): c_{t-1} also enters both gates
  through per-unit vectors, the highway input is scaled, the cell activation is the identity
  by default, and dropout masks g(c_t). Written here from its equations; tensor names and
  layouts are the package's, so a state dict maps one to one.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["SRU", "AuthorsSRU", "AuthorsSRULayer", "SRULayer"]


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


class AuthorsSRULayer(nn.Module):
    """One layer of the ``sru`` package's cell (release 2.1.3, unidirectional, no layer norm, no
    projection): (B, T, I) -> (B, T, H) (docs/model.md#sru-authors).

    With ``u_t = x_t W`` split per unit into (x~_t, f~_t, r~_t[, x'_t]):

        f_t = sigmoid(f~_t + v_f * c_{t-1} + b_f)
        r_t = sigmoid(r~_t + v_r * c_{t-1} + b_r)
        c_t = f_t * c_{t-1} + (1 - f_t) * x~_t
        h_t = r_t * (g(c_t) * m) + (1 - r_t) * x'_t

    where g is the identity (or tanh with ``use_tanh``), m a dropout mask of g(c_t) drawn once
    per sequence (training only), and x'_t = ``scale_x`` * x_t when I == H, else the fourth
    column of u_t (a projection without bias).

    Tensors, named and laid out as the package's: ``weight`` (I, H*k), k = 3 when I == H else 4,
    the k columns of unit j adjacent (``weight.view(I, H, k)[:, j]``); ``weight_c`` (2H) =
    [v_f, v_r]; ``bias`` (2H) = [b_f, b_r]; ``scale_x`` (1,), a buffer.

    Args:
        input_size: I.
        hidden_size: H.
        dropout: probability of dropping a unit of g(c_t) (the package's ``dropout``).
        use_tanh: tanh as g instead of the identity (the package's flag).
        rescale: the package's ``rescale``: ``scale_x`` = sqrt(3) (highway bias 0) and the
            matching rescaling of ``weight`` at initialisation.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        dropout: float = 0.0,
        *,
        use_tanh: bool = False,
        rescale: bool = True,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.dropout = dropout
        self.use_tanh = use_tanh
        self.k = 3 if input_size == hidden_size else 4
        self.weight = nn.Parameter(torch.empty(input_size, hidden_size * self.k))
        self.weight_c = nn.Parameter(torch.empty(2 * hidden_size))
        self.bias = nn.Parameter(torch.empty(2 * hidden_size))
        self.register_buffer("scale_x", torch.ones(1))
        self.reset_parameters(rescale=rescale)

    @torch.no_grad()
    def reset_parameters(self, *, rescale: bool = True) -> None:
        """The package's initialisation (highway bias 0, no input dropout, no normalised input):
        every weight U(-sqrt(3/I), sqrt(3/I)); the gate columns and v_f, v_r (from U(-sqrt 3,
        sqrt 3)) times sqrt(1/2); biases 0; with ``rescale``, ``scale_x`` = sqrt(1 + 2 e^0),
        the projection column times ``scale_x`` and, with dropout, the x~ column times
        sqrt(1 - dropout)."""
        bound = math.sqrt(3.0 / self.input_size)
        self.weight.uniform_(-bound, bound)
        columns = self.weight.view(self.input_size, self.hidden_size, self.k)
        columns[..., 1:3].mul_(math.sqrt(0.5))
        self.weight_c.uniform_(-math.sqrt(3.0), math.sqrt(3.0)).mul_(math.sqrt(0.5))
        self.bias.zero_()
        self.scale_x.fill_(1.0)
        if rescale:
            self.scale_x.fill_(math.sqrt(3.0))
            if self.k == 4:
                columns[..., 3].mul_(math.sqrt(3.0))
            if self.dropout > 0:
                columns[..., 0].mul_(math.sqrt(1.0 - self.dropout))

    def forward(self, x: Tensor) -> Tensor:
        hidden = self.hidden_size
        u = torch.matmul(x, self.weight).unflatten(2, (hidden, self.k))  # (B, T, H, k)
        b_f, b_r = self.bias.split(hidden)
        v_f, v_r = self.weight_c.split(hidden)
        x_tilde, f_in, r_in = u[..., 0], u[..., 1] + b_f, u[..., 2] + b_r
        highway = u[..., 3] if self.k == 4 else x * self.scale_x
        mask = None
        if self.training and self.dropout > 0:
            keep = 1.0 - self.dropout
            mask = x.new_empty(x.shape[0], hidden).bernoulli_(keep) / keep
        c = x.new_zeros(x.shape[0], hidden)
        states = []
        steps = zip(
            x_tilde.unbind(1), f_in.unbind(1), r_in.unbind(1), highway.unbind(1), strict=True
        )
        for x_t, f_t, r_t, skip_t in steps:
            f = torch.sigmoid(f_t + v_f * c)
            r = torch.sigmoid(r_t + v_r * c)  # both gates read c_{t-1}
            c = f * c + (1 - f) * x_t
            g = torch.tanh(c) if self.use_tanh else c
            if mask is not None:
                g = g * mask
            states.append(r * g + (1 - r) * skip_t)
        return torch.stack(states, dim=1)


class AuthorsSRU(nn.Module):
    """A stack of :class:`AuthorsSRULayer` as the package's ``SRU`` builds it:
    (B, T, input_size) -> (B, T, hidden_size). Layers are ``rnn_lst`` (the package's name);
    ``dropout`` goes to every layer but the last.

    Args:
        input_size: features per time step.
        hidden_size: H of every layer.
        num_layers: depth (3 in the authors' code).
        dropout: dropout of g(c_t) in layers 1..L-1 (0.5 in the authors' code).
        use_tanh: tanh as the cell activation instead of the identity.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 3,
        dropout: float = 0.0,
        *,
        use_tanh: bool = False,
    ) -> None:
        super().__init__()
        sizes = [input_size] + [hidden_size] * (num_layers - 1)
        self.rnn_lst = nn.ModuleList(
            AuthorsSRULayer(
                size, hidden_size, dropout if i + 1 < num_layers else 0.0, use_tanh=use_tanh
            )
            for i, size in enumerate(sizes)
        )

    @property
    def layers(self) -> nn.ModuleList:
        """The layers (as :attr:`SRU.layers`)."""
        return self.rnn_lst

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.rnn_lst:
            x = layer(x)
        return x
