"""The SRU of docs/model.md#sru (eq. 11-15)."""

from __future__ import annotations

import pytest
import torch

from gkaan_cli.model.sru import SRU, SRULayer


def _loop_reference(layer: SRULayer, x: torch.Tensor) -> torch.Tensor:
    """Eq. 11-15 written one time step at a time."""
    hidden = layer.hidden_size
    w, w_f, w_r = layer.weight.split(hidden)
    b_f, b_r = layer.bias.split(hidden)
    c = torch.zeros(x.shape[0], hidden)
    outputs = []
    for t in range(x.shape[1]):
        x_t = x[:, t]
        x_tilde = x_t @ w.T
        f = torch.sigmoid(x_t @ w_f.T + b_f)
        r = torch.sigmoid(x_t @ w_r.T + b_r)
        c = f * c + (1 - f) * x_tilde
        x_skip = x_t if layer.skip is None else layer.skip(x_t)
        outputs.append(r * torch.tanh(c) + (1 - r) * x_skip)
    return torch.stack(outputs, dim=1)


@pytest.mark.parametrize(("input_size", "has_skip"), [(6, False), (4, True)])
def test_sru_layer_equals_the_per_step_equations(input_size: int, has_skip: bool) -> None:
    torch.manual_seed(0)
    layer = SRULayer(input_size, 6)
    with torch.no_grad():
        layer.bias.normal_()
    assert (layer.skip is not None) == has_skip
    x = torch.randn(3, 7, input_size)
    torch.testing.assert_close(layer(x), _loop_reference(layer, x), atol=1e-5, rtol=1e-5)


def test_sru_layer_parameter_layout() -> None:
    layer = SRULayer(512, 1024)
    assert layer.weight.shape == (3 * 1024, 512)
    assert layer.bias.shape == (2 * 1024,)
    assert layer.skip is not None and layer.skip.weight.shape == (1024, 512)
    assert SRULayer(1024, 1024).skip is None


def test_sru_output_at_step_t_ignores_later_inputs() -> None:
    torch.manual_seed(0)
    sru = SRU(5, 8, num_layers=3).eval()
    x = torch.randn(2, 6, 5)
    changed = x.clone()
    changed[:, 3:] = torch.randn(2, 3, 5)
    out, out_changed = sru(x), sru(changed)
    torch.testing.assert_close(out[:, :3], out_changed[:, :3], atol=0, rtol=0)
    assert not torch.allclose(out[:, 3:], out_changed[:, 3:])


def test_sru_dropout_masks_the_linear_input_shared_over_time_and_off_in_eval() -> None:
    torch.manual_seed(0)
    layer = SRULayer(32, 32, dropout=0.5)
    x = torch.ones(2, 5, 32)
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[:32] = torch.eye(32)  # x~_t = masked x_t
        layer.bias[:32].fill_(-30.0)  # f ~ 0: c_t = x~_t
        layer.bias[32:].fill_(30.0)  # r ~ 1: h_t = tanh(c_t), the linear path only
    train_out = layer.train()(x)
    values = train_out.unique()
    assert len(values) == 2  # dropped features: tanh(0); kept ones: tanh(1 / (1 - p))
    torch.testing.assert_close(values, torch.tensor([0.0, float(torch.tanh(torch.tensor(2.0)))]))
    torch.testing.assert_close(train_out, train_out[:, :1].expand_as(train_out))
    torch.testing.assert_close(layer.eval()(x), torch.tanh(x))


def test_sru_dropout_leaves_the_highway_copy_of_x_unmasked() -> None:
    torch.manual_seed(0)
    layer = SRULayer(32, 32, dropout=0.5)
    x = torch.ones(2, 5, 32)
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.fill_(-30.0)  # r ~ 0: the output is the highway term x'_t = x_t
    torch.testing.assert_close(layer.train()(x), x)


def test_sru_stack_maps_input_to_hidden_size() -> None:
    sru = SRU(512, 64, num_layers=3)
    assert [layer.input_size for layer in sru.layers] == [512, 64, 64]
    assert sru(torch.randn(2, 4, 512)).shape == (2, 4, 64)
