"""A learned fusion of the streams, scored nested: does it beat the fixed GM weight?

For each outer person o of a finished nested run (``kth_nested.py --json``), with the GM
descriptor and L2 that o's inner folds chose, one non-negative weight per stream (GS, GL,
GP, GM) on the streams' log-probabilities is fitted (multinomial NLL, L2 ``lam`` on the
weights, L-BFGS) to the inner folds' held-out predictions: person i's videos as predicted
by the model trained without o and i. The outer person's videos are then scored once with
those weights, beside the fixed-weight fusion the nested run chose. No fit sees o.

    python benchmarks/kth_stacked.py --work /tmp/kth-nested --json /tmp/kth-nested.json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import kth_nested
import numpy as np
import torch

STREAMS = ("gs", "gl", "gp", "gm")
LAMBDAS = (1e-3, 1e-2, 1e-1)


def log_probs(
    oracle: kth_nested.KTHOracle, c: Any, held: tuple[str, ...], video: str
) -> np.ndarray:
    probs = oracle.streams(c, held, video)
    return np.stack([np.log(np.clip(probs[s], 1e-6, 1.0)) for s in STREAMS])  # (4, K)


def fit_weights(x: list[np.ndarray], y: list[int], lam: float) -> np.ndarray:
    """Non-negative stream weights (softplus) minimising NLL + lam * ||w||^2."""
    xs = torch.tensor(np.array(x), dtype=torch.float64)
    ys = torch.tensor(y)
    raw = torch.zeros(len(STREAMS), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([raw], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        w = torch.nn.functional.softplus(raw)
        logits = (w[None, :, None] * xs).sum(dim=1)
        loss = torch.nn.functional.cross_entropy(logits, ys) + lam * (w**2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    return torch.nn.functional.softplus(raw).detach().numpy()


def run(work: Path, prepared: Path, nested_result: dict[str, Any]) -> dict[str, Any]:
    oracle = kth_nested.KTHOracle(work, prepared)
    out: dict[str, Any] = {}
    for lam in LAMBDAS:
        stacked = fixed = 0
        weights = {}
        for fold in nested_result["nested"]["folds"]:
            o, choice = fold["person"], fold["choice"]
            c = kth_nested.Candidate(**choice)
            if c.weight == 0:  # the streams still need a GM descriptor to weigh
                c = replace(c, descriptor=c.gm_fit[0], l2=c.gm_fit[1], weight=1.0)
            x, y = [], []
            for i in oracle.persons:
                if i != o:
                    held = tuple(sorted((o, i)))
                    for video in oracle.person_videos(i):
                        x.append(log_probs(oracle, c, held, video))
                        y.append(oracle.label(video))
            w = fit_weights(x, y, lam)
            weights[o] = [round(float(v), 3) for v in w]
            for video in oracle.person_videos(o):
                label = oracle.label(video)
                mixed = (w[:, None] * log_probs(oracle, c, (o,), video)).sum(axis=0)
                stacked += int(np.argmax(mixed) == label)
                fused = oracle.fused(kth_nested.Candidate(**choice), oracle.streams(c, (o,), video))
                fixed += int(np.argmax(fused) == label)
        out[str(lam)] = {"stacked": stacked, "fixed": fixed, "weights": weights}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/kth-nested"))
    parser.add_argument("--prepared", type=Path, default=None)
    parser.add_argument("--json", type=Path, required=True, help="kth_nested.py's --json")
    args = parser.parse_args()
    prepared = args.prepared or args.work / "prepared"
    result = run(args.work, prepared, json.loads(args.json.read_text()))
    for lam, row in result.items():
        print(f"L2 {lam}: stacked {row['stacked']}/19, fixed weights {row['fixed']}/19")
        print("  weights (GS, GL, GP, GM) per outer person:", row["weights"])


if __name__ == "__main__":
    main()
