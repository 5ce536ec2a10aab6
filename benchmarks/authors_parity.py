"""Parity check: gkaan's ``authors`` model against the authors' released modules (issue 25).

Builds the authors' ``Temporal_Net`` (github ZhenxingZheng/attention-network, Models.py and
Attention.py, with the ``sru`` 2.1.3 package on its CPU path) and gkaan's
``GKAAN(GKAANConfig(..., sru_variant="authors"))``, copies the authors' weights onto gkaan by
name, feeds both the same random conv maps (float64, eval mode) and prints the max abs
difference at every stage and for the gradient of every mapped parameter.

Usage:
    python benchmarks/authors_parity.py --authors /tmp/authors --sru /tmp/sru213

Shims (from outside, their files are not edited): none of their code is changed; the backbone
(``Spatial_Net``, which calls ``resnet34(True)`` and downloads) is not built: conv maps go
straight into ``Temporal_Net``. Their loss is a closure inside ``Main.main`` that calls
``.cuda()``; it is restated below with a CPU zero (``authors_attention_loss``).
Exit status 1 when a forward stage differs by more than 1e-5 or a gradient by more than 1e-6.
"""

from __future__ import annotations

import argparse
import sys

import torch
from torch import Tensor, nn

from gkaan_cli.config import GKAANConfig
from gkaan_cli.model.gkaan import GKAAN
from gkaan_cli.model.loss import gkaan_loss

FORWARD_TOL = 1e-5
GRAD_TOL = 1e-6
#: The authors' stream -> gkaan's stream.
STREAMS = {"average": "gp", "auto": "gs", "learned": "gl"}


def authors_attention_loss(baseline: Tensor, attention: Tensor, target: Tensor) -> Tensor:
    """Main.py's ``attentionloss``, line for line, with ``torch.zeros(1)`` on the CPU."""
    target_temp = target.unsqueeze(1)
    baseline_temp = torch.gather(baseline, 1, target_temp).squeeze(0)
    attention_temp = torch.gather(attention, 1, target_temp).squeeze(0)
    selfloss = torch.max(torch.zeros(1, dtype=baseline.dtype), baseline_temp - attention_temp + 0.1)
    return selfloss.mean()


def name_map(theirs: nn.Module) -> dict[str, str]:
    """Their state-dict key -> gkaan's key (only keys their forward pass uses)."""
    mapping = {
        "attention_auto.conv.weight": "sa.affine.weight",
        "attention_auto.conv.bias": "sa.affine.bias",
        "attention_learned.linear.0.weight": "la.proj.weight",
        "attention_learned.linear.0.bias": "la.proj.bias",
        "attention_learned.linear.2.weight": "la.score.weight",
        "attention_learned.linear.2.bias": "la.score.bias",
    }
    for key in theirs.state_dict():
        for stream, ours in STREAMS.items():
            prefix = f"reason_{stream}."
            if key.startswith(prefix):
                rest = key[len(prefix) :]
                if rest.startswith("rnn."):
                    mapping[key] = f"srus.{ours}.{rest[len('rnn.') :]}"
                elif rest.startswith("fc."):
                    mapping[key] = f"heads.{ours}.{rest[len('fc.') :]}"
    return mapping


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--authors", required=True, help="checkout of attention-network")
    parser.add_argument("--sru", required=True, help="folder holding the sru 2.1.3 package")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--segments", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sys.path[:0] = [args.sru, args.authors]
    import Models

    torch.manual_seed(args.seed)
    theirs = Models.Temporal_Net(
        dataset="hmdb", segments=args.segments, attention="all", hidden_size=1024, img_dim=512
    ).double()
    config = GKAANConfig(
        num_classes=51,
        backbone="resnet34",
        sa_variant="reference",
        la_variant="reference",
        fuse="logits",
        dropout=0.5,
        sru_variant="authors",
    )
    ours = GKAAN(config).double()

    mapping = name_map(theirs)
    their_sd, our_sd = theirs.state_dict(), ours.state_dict()
    unmapped_theirs = sorted(set(their_sd) - set(mapping))
    unmapped_ours = sorted(
        k for k in set(our_sd) - set(mapping.values()) if not k.startswith("backbone.")
    )
    assert len(set(mapping.values())) == len(mapping), "mapping is not one to one"
    print(f"mapping ({len(mapping)} tensors, one to one):")
    for key, value in mapping.items():
        assert their_sd[key].shape == our_sd[value].shape, (key, value)
        print(f"  {key:45s} -> {value}  {tuple(their_sd[key].shape)}")
    print(f"  theirs unmapped (unused by their forward): {unmapped_theirs}")
    print(f"  ours unmapped (besides backbone.*): {unmapped_ours}")
    ours.load_state_dict({**our_sd, **{mapping[k]: their_sd[k] for k in mapping}})
    theirs.eval()
    ours.eval()

    b, t = args.batch, args.segments
    maps = torch.randn(b * t, 512, 7, 7, dtype=torch.float64).abs()
    target = torch.randint(0, 51, (b,))

    caught: dict[str, Tensor] = {}

    def keep(name: str, index: int | None = None):
        def hook(_m: nn.Module, _i: object, out: object) -> None:
            caught[name] = out[index] if index is not None else out  # type: ignore[index]

        return hook

    theirs.attention_auto.conv.register_forward_hook(keep("sa_scores"))
    theirs.attention_learned.linear.register_forward_hook(keep("la_scores"))
    for stream in STREAMS:
        getattr(theirs, f"attention_{stream}").register_forward_hook(keep(f"pooled_{stream}"))
        getattr(theirs, f"reason_{stream}").rnn.register_forward_hook(keep(f"sru_{stream}", 0))
    for name, module in (("sa", ours.sa), ("la", ours.la)):
        module.register_forward_hook(keep(f"ours_pool_{name}", 0))
    for stream in STREAMS.values():
        ours.srus[stream].register_forward_hook(keep(f"ours_sru_{stream}"))

    out_avg, out_auto, out_learned, out_fused = theirs(maps)
    # Main.train, lines 139-143: softmax of each stream, then CE + both GA terms.
    p_avg, p_auto, p_learned = (torch.softmax(o, dim=1) for o in (out_avg, out_auto, out_learned))
    their_loss = (
        nn.functional.cross_entropy(out_fused, target)
        + authors_attention_loss(p_avg, p_auto, target)
        + authors_attention_loss(p_avg, p_learned, target)
    )
    ours_out = ours.forward_heads(maps.unflatten(0, (b, t)))
    parts = gkaan_loss(ours_out, target, config)

    their_logits = {"gp": out_avg, "gs": out_auto, "gl": out_learned}
    stages: list[tuple[str, Tensor, Tensor]] = [
        (
            "attention map SA",
            torch.softmax(caught["sa_scores"].reshape(b * t, -1), -1),
            ours_out.attention["sa"].reshape(b * t, -1),
        ),
        (
            "attention map LA",
            torch.softmax(caught["la_scores"].squeeze(-1), -1),
            ours_out.attention["la"].reshape(b * t, -1),
        ),
        ("pooled GP", caught["pooled_average"].reshape(b * t, -1), torch.mean(maps, dim=(2, 3))),
        ("pooled SA", caught["pooled_auto"].reshape(b * t, -1), caught["ours_pool_sa"]),
        ("pooled LA", caught["pooled_learned"].reshape(b * t, -1), caught["ours_pool_la"]),
    ]
    for stream, name in STREAMS.items():
        stages.append(
            (
                f"SRU output {name}",
                caught[f"sru_{stream}"].transpose(0, 1),
                caught[f"ours_sru_{name}"],
            )
        )
    for name in STREAMS.values():
        stages.append((f"logits {name}", their_logits[name], ours_out.logits[name]))
        stages.append(
            (f"probs {name}", torch.softmax(their_logits[name], 1), ours_out.stream_probs[name])
        )
    stages.append(("fused output (probs)", torch.softmax(out_fused, 1), ours_out.probs))
    stages.append(("GA term SA", authors_attention_loss(p_avg, p_auto, target), parts.ga_sa))
    stages.append(("GA term LA", authors_attention_loss(p_avg, p_learned, target), parts.ga_la))
    stages.append(("cross-entropy", nn.functional.cross_entropy(out_fused, target), parts.nll))
    stages.append(("loss total", their_loss, parts.total))

    failed = False
    print(f"\nforward (float64, eval, B={b}, T={t}), max abs difference:")
    for label, a, o in stages:
        diff = (a.detach() - o.detach()).abs().max().item()
        bad = diff > FORWARD_TOL
        failed |= bad
        print(f"  {label:32s} {diff:.3e}{'  FAIL' if bad else ''}")

    their_loss.backward()
    their_params = dict(theirs.named_parameters())
    our_params = dict(ours.named_parameters())
    parts.total.backward()
    failed |= compare_grads("gkaan_loss", mapping, their_params, our_params)
    print("FAIL" if failed else "PASS")
    return 1 if failed else 0


def compare_grads(
    title: str, mapping: dict[str, str], their_params: dict, our_params: dict
) -> bool:
    """Print the max abs gradient difference per mapped parameter; True when one is too big."""
    failed = False
    worst = ("", 0.0)
    print(f"\ngradients, our loss = {title}, max abs difference per mapped parameter:")
    for key, value in mapping.items():
        if key not in their_params or value not in our_params:
            continue
        g_a, g_o = their_params[key].grad, our_params[value].grad
        if g_a is None or g_o is None:
            diff = 0.0 if g_a is None and g_o is None else float("inf")
        else:
            diff = (g_a - g_o).abs().max().item()
        bad = diff > GRAD_TOL
        failed |= bad
        worst = max(worst, (value, diff), key=lambda x: x[1])
        print(f"  {value:35s} {diff:.3e}{'  FAIL' if bad else ''}")
    print(f"largest gradient difference ({title}): {worst[1]:.3e} ({worst[0]})")
    return failed


if __name__ == "__main__":
    sys.exit(main())
