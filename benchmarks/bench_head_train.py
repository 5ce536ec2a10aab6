"""Head-only training throughput on cached conv maps (``prepare --features``), run by hand.

Trains the ``quick`` recipe's heads (EfficientNet-Lite0 maps, SRU 1x256, batch 8, the
prepared folder's clip sampling) for ``--epochs`` epochs on a prepared folder and prints the
train clips/s of each epoch (the ``time.clips_per_s`` of ``metrics.jsonl``), the clips/s
of reading the maps alone (DataLoader over the train split) and the load average.
``--profile`` also runs it under cProfile and prints the top functions by cumulative time.

    python -m gkaan_cli prepare ../shared/data/kth-mini /tmp/kth-prep --features efficientnet_lite0
    python benchmarks/bench_head_train.py /tmp/kth-prep [--epochs 2] [--workers 0] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import tempfile
import time
from pathlib import Path

from torch.utils.data import DataLoader

from gkaan_cli.data.dataset import FeatureDataset
from gkaan_cli.data.manifest import load_manifest
from gkaan_cli.engine.recipes import load_train_config
from gkaan_cli.engine.train import run_model_config, train


def data_clips_per_s(data: Path, config: object, batch: int) -> float:
    """Clips/s of reading the train split's cached maps through the DataLoader alone."""
    model_config = run_model_config(config, load_manifest(data))  # type: ignore[arg-type]
    dataset = FeatureDataset(data, "train", model_config, train=True)
    collate = getattr(dataset, "collate", None)
    start = time.perf_counter()
    clips = sum(len(b[1]) for b in DataLoader(dataset, batch_size=batch, collate_fn=collate))
    return clips / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    sampling = load_manifest(args.data).settings.sampling.model_dump(mode="json")
    overrides = {
        "epochs": args.epochs,
        "num_workers": args.workers,
        "eval_every": args.epochs,
        "model": {"sampling": sampling},  # the clips the cache holds
    }
    config = load_train_config("quick", overrides=overrides)
    load_before = os.getloadavg()[0]
    data_rate = data_clips_per_s(args.data, config, config.batch_size)
    profile = cProfile.Profile() if args.profile else None
    with tempfile.TemporaryDirectory(prefix="gkaan-bench-") as tmp:
        if profile is not None:
            profile.enable()
        train(args.data, Path(tmp) / "run", config)
        if profile is not None:
            profile.disable()
        lines = (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()
    epochs = [json.loads(line) for line in lines]
    result = {
        "data": str(args.data),
        "clips_per_epoch": [e["train"]["clips"] for e in epochs],
        "train_clips_per_s": [round(e["time"]["clips_per_s"], 1) for e in epochs],
        "data_only_clips_per_s": round(data_rate, 1),
        "workers": args.workers,
        "load_average": [load_before, os.getloadavg()[0]],
    }
    print(json.dumps(result, indent=2))
    if profile is not None:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
