"""The ``authors`` SRU cell and ``head_dropout`` (docs/model.md#sru-authors); ``paper`` unchanged.

The cell is checked against a few-line implementation of the ``sru`` package's equations
(release 2.1.3) written here, from the package's own weight layout, not from gkaan's code.
"""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from gkaan_cli import GKAAN, GKAANConfig
from gkaan_cli.model.sru import SRU, AuthorsSRU


def package_equations(
    x: torch.Tensor,
    layers: list[dict[str, torch.Tensor]],
    tanh: bool,
    masks: list[torch.Tensor | None],
) -> torch.Tensor:
    """The package's forward, time-major (T, B, I) as it takes it: U = x W with W (I, H*k),
    per unit the k columns (x~, f, r[, x']); c_t = x~ + (c_{t-1} - x~) f_t;
    h_t = x' + (g(c_t) m - x') r_t."""
    for params, mask in zip(layers, masks, strict=True):
        weight, weight_c, bias, scale_x = (
            params[k] for k in ("weight", "weight_c", "bias", "scale_x")
        )
        length, batch, n_in = x.shape
        d = weight_c.shape[0] // 2
        k = weight.shape[1] // d
        u = (x.reshape(-1, n_in) @ weight).view(length, batch, d, k)
        x_prime = u[..., 3] if k == 4 else x * scale_x
        c = x.new_zeros(batch, d)
        out = []
        for t in range(length):
            forget = torch.sigmoid(u[t, :, :, 1] + c * weight_c[:d] + bias[:d])
            reset = torch.sigmoid(u[t, :, :, 2] + c * weight_c[d:] + bias[d:])
            c = u[t, :, :, 0] + (c - u[t, :, :, 0]) * forget
            g = c.tanh() if tanh else c
            if mask is not None:
                g = g * mask
            out.append(x_prime[t] + (g - x_prime[t]) * reset)
        x = torch.stack(out)
    return x


def _layer_params(sru: AuthorsSRU) -> list[dict[str, torch.Tensor]]:
    return [dict(layer.named_parameters()) | dict(layer.named_buffers()) for layer in sru.rnn_lst]


@pytest.mark.parametrize(("input_size", "tanh"), [(6, False), (8, False), (6, True)])
def test_authors_cell_matches_the_package_equations_forward_and_gradients(
    input_size: int, tanh: bool
) -> None:
    torch.manual_seed(0)
    sru = AuthorsSRU(input_size, 8, num_layers=3, dropout=0.5, use_tanh=tanh).double().eval()
    x = torch.randn(2, 5, input_size, dtype=torch.float64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    ours = sru(x)
    params = _layer_params(sru)
    ref_params = [
        {k: v.detach().clone().requires_grad_(v.requires_grad) for k, v in p.items()}
        for p in params
    ]
    ref = package_equations(x_ref.transpose(0, 1), ref_params, tanh, [None] * 3).transpose(0, 1)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)
    weights = torch.randn_like(ours)
    (ours * weights).sum().backward()
    (ref * weights).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=0, atol=1e-12)
    for mine, theirs in zip(params, ref_params, strict=True):
        for name in ("weight", "weight_c", "bias"):
            torch.testing.assert_close(mine[name].grad, theirs[name].grad, rtol=0, atol=1e-12)
        assert mine["scale_x"].grad is None  # a buffer, never trained


def test_authors_dropout_masks_g_of_c_in_every_layer_but_the_last() -> None:
    sru = AuthorsSRU(6, 8, num_layers=3, dropout=0.5).double().train()
    assert [layer.dropout for layer in sru.rnn_lst] == [0.5, 0.5, 0.0]
    x = torch.randn(3, 5, 6, dtype=torch.float64)
    torch.manual_seed(7)
    ours = sru(x)
    torch.manual_seed(7)  # one (B, H) mask per layer with dropout, drawn in layer order
    masks = [torch.empty(3, 8, dtype=torch.float64).bernoulli_(0.5) / 0.5 for _ in range(2)]
    ref = package_equations(x.transpose(0, 1), _layer_params(sru), False, [*masks, None])
    torch.testing.assert_close(ours, ref.transpose(0, 1), rtol=0, atol=1e-12)
    # The input of the matmul is never masked: eval mode equals training with no mask.
    no_mask = package_equations(x.transpose(0, 1), _layer_params(sru), False, [None] * 3)
    torch.testing.assert_close(sru.eval()(x), no_mask.transpose(0, 1), rtol=0, atol=1e-12)


def test_authors_state_dict_names_shapes_and_initialisation() -> None:
    torch.manual_seed(0)
    sru = AuthorsSRU(512, 256, num_layers=3, dropout=0.5)
    shapes = {k: tuple(v.shape) for k, v in sru.state_dict().items()}
    assert shapes == {
        "rnn_lst.0.weight": (512, 4 * 256),  # I != H: a fourth, projection column per unit
        "rnn_lst.0.weight_c": (512,),
        "rnn_lst.0.bias": (512,),
        "rnn_lst.0.scale_x": (1,),
        **{f"rnn_lst.{i}.{n}": (256, 3 * 256) for i in (1, 2) for n in ("weight",)},
        **{f"rnn_lst.{i}.{n}": (512,) for i in (1, 2) for n in ("weight_c", "bias")},
        **{f"rnn_lst.{i}.scale_x": (1,) for i in (1, 2)},
    }
    assert "rnn_lst.0.scale_x" not in dict(sru.named_parameters())
    for i, layer in enumerate(sru.rnn_lst):
        assert layer.scale_x.item() == pytest.approx(math.sqrt(3))
        bound = math.sqrt(3 / layer.input_size)
        columns = layer.weight.detach().view(layer.input_size, 256, layer.k)
        maxima = columns.abs().amax(dim=(0, 1))
        x_tilde = bound * (math.sqrt(0.5) if i < 2 else 1.0)  # rescaled for g(c) dropout
        assert x_tilde * 0.95 < maxima[0] <= x_tilde
        assert bound * math.sqrt(0.5) * 0.95 < maxima[1] <= bound * math.sqrt(0.5)
        assert bound * math.sqrt(0.5) * 0.95 < maxima[2] <= bound * math.sqrt(0.5)
        if layer.k == 4:
            assert bound * math.sqrt(3) * 0.95 < maxima[3] <= bound * math.sqrt(3)
        assert 1.1 < layer.weight_c.abs().max() <= math.sqrt(1.5)
        assert layer.bias.abs().max() == 0


def _reference_config(**overrides: object) -> GKAANConfig:
    settings: dict[str, object] = {
        "num_classes": 51,
        "backbone": "resnet34",
        "sa_variant": "reference",
        "la_variant": "reference",
        "fuse": "logits",
        "dropout": 0.5,
    }
    return GKAANConfig(**(settings | overrides))


def test_paper_sru_is_unchanged() -> None:
    paper = GKAAN(GKAANConfig(num_classes=101))
    assert sum(p.numel() for p in paper.parameters()) == 48_943_472
    reference = GKAAN(_reference_config())  # the model with the default (paper) SRU
    assert sum(p.numel() for p in reference.parameters()) == 48_789_724
    assert all(isinstance(s, SRU) for s in reference.srus.values())
    assert reference.head_dropout is None
    # Outputs recorded from the code before sru_variant existed: bit-identical.
    torch.manual_seed(0)
    config = GKAANConfig(
        num_classes=3, backbone="resnet18", sru_hidden=8, sru_layers=2, la_hidden=4, dropout=0.5
    )
    model = GKAAN(config)
    maps = torch.randn(2, 4, 512, 2, 2)
    with torch.no_grad():
        evaluated = model.eval().forward_heads(maps).probs.flatten().tolist()
        torch.manual_seed(1)
        trained = model.train().forward_heads(maps).probs.flatten().tolist()
    assert [v.hex() for v in evaluated] == [
        "0x1.09ec2c0000000p-2", "0x1.8636620000000p-2", "0x1.6fdd780000000p-2",
        "0x1.1688540000000p-2", "0x1.87a5320000000p-2", "0x1.61d27c0000000p-2",
    ]  # fmt: skip
    assert [v.hex() for v in trained] == [
        "0x1.10dbd40000000p-2", "0x1.82e5380000000p-2", "0x1.6c3ef80000000p-2",
        "0x1.2346cc0000000p-2", "0x1.871bbe0000000p-2", "0x1.559d780000000p-2",
    ]  # fmt: skip


def test_authors_model_has_the_package_names_and_head_dropout() -> None:
    model = GKAAN(_reference_config(sru_variant="authors", head_dropout=0.5))
    assert all(isinstance(s, AuthorsSRU) for s in model.srus.values())
    keys = model.state_dict()
    assert keys["srus.gp.rnn_lst.0.weight"].shape == (512, 4 * 1024)
    assert keys["srus.gs.rnn_lst.0.weight"].shape == (1024, 3 * 1024)  # [GP, SA] is 1024 wide
    assert keys["srus.gs.rnn_lst.2.scale_x"].item() == pytest.approx(math.sqrt(3))
    # Dropout(0.5) on what each classifier reads, in training only.
    seen: list[torch.Tensor] = []
    model.heads["gp"].register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    maps = torch.randn(2, 3, 512, 7, 7)
    with torch.no_grad():
        model.eval().forward_heads(maps)
        model.train().forward_heads(maps)
    evaluated, trained = seen
    assert (evaluated == 0).float().mean() < 0.01
    assert 0.45 < (trained == 0).float().mean() < 0.55


def test_tanh_flag_belongs_to_the_authors_cell() -> None:
    with pytest.raises(ValidationError, match="sru_use_tanh"):
        GKAANConfig(num_classes=2, sru_use_tanh=True)
    model = GKAAN(
        _reference_config(
            num_classes=2,
            sru_variant="authors",
            sru_use_tanh=True,
            sru_hidden=8,
            sru_layers=1,
            backbone="resnet18",
        )
    )
    assert all(layer.use_tanh for s in model.srus.values() for layer in s.rnn_lst)


def test_reference_recipe_selects_the_authors_model_and_augmentation() -> None:
    from gkaan_cli.engine.recipes import load_train_config

    config = load_train_config("reference").model_config_for(["a", "b"])
    assert (config.sru_variant, config.head_dropout, config.sru_use_tanh) == ("authors", 0.5, False)
    assert (config.preprocess.train_crop, config.preprocess.train_per_frame) == ("random", True)
    assert (config.sa_variant, config.la_variant, config.fuse) == (
        "reference",
        "reference",
        "logits",
    )
