"""Leave-one-person-out (LOPO) video accuracy of the default model's recipe on kth-mini.

KTH clips carry the person id in their file names (``person09_boxing_d1``); a split by clip
would leak the person, so each fold holds out every video of one person (11 folds on
kth-mini). Features are computed once per backbone by ``prepare --features`` (the cache is
reused by every fold: only the manifest's splits change, through ``test_groups``); each
fold then trains the heads with :func:`gkaan_cli.engine.train.train` on the other persons
and :func:`gkaan_cli.engine.evaluate.evaluate` scores the held-out videos (fused and per
stream, docs/model.md#eq-19).

The recipe runs on ``efficientnet_lite0`` with its ImageNet weights (the shipped model's
backbone) and, with ``--backbones``, on ``resnet34`` with random weights (seeded, written to
a weights file so that prepare, train and evaluate all use the same ones), so the value of
pretrained features is measured. ``--motion none diff track`` runs the recipe once per
motion option (docs/model.md#motion) on the same folds and features; for ``track`` each fold
model is also scored with every GM fusion weight of ``--motion-weights`` (the weight changes
only the fusion, not the training), so the weight is chosen on the same folds.

In the same folds, two more measurements on the cached features of the first run:

- the baseline to beat: a logistic regression on clip-mean pooled features (the GP feature
  averaged over the clip's frames), standardised on the training clips, L2 weight 1e-3;
  video = mean of its clips' probabilities;
- the out-of-distribution score of each held-out video (docs/model.md#ood) under the fold
  model's statistics, which saw only the other persons: the in-distribution half of the OOD
  measurement in weights/README.md.

The figures the README quotes come from ``--nested`` (benchmarks/kth_nested.py), where the
held-out person takes part in no choice; a plain run's figures are selected on the folds
they report.

Usage::

    python benchmarks/kth_lopo.py --nested [--work /tmp/kth-nested] [--json nested.json]
    python benchmarks/kth_lopo.py [--data ../shared/data/kth-mini] [--work /tmp/kth-lopo]
        [--backbones efficientnet_lite0 resnet34-random] [--motion none diff track]
        [--motion-weights 1 3 9 27]
        [--sa-variant paper|reference] [--fusion early|late] [--fuse probs|logits]
        [--dropout P] [--epochs N] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from gkaan_cli.config import SamplingConfig
from gkaan_cli.data.dataset import FeatureDataset
from gkaan_cli.data.manifest import load_manifest
from gkaan_cli.data.prepare import FeatureOptions, PrepareOptions, prepare
from gkaan_cli.data.sources import SplitOptions
from gkaan_cli.engine.evaluate import EvalReport, evaluate
from gkaan_cli.engine.recipes import TrainConfig, merge_overrides
from gkaan_cli.engine.train import train
from gkaan_cli.model.gkaan import GKAAN
from gkaan_cli.model.ood import clip_embedding
from gkaan_cli.model.trunk_weights import TrunkWeights

PERSON = r"person(\d+)"
#: Clips the cache serves and the model samples: 30 consecutive frames, at most 8 per video
#: (to train and to test: the plain LOPO rows; the shipped model tests every window, which
#: the nested run scores from every frame's maps: kth_nested, docs/protocol.md#test-windows).
SAMPLING = SamplingConfig(mode="dense", clip_len=30, stride=15, max_clips=8)
#: The trunk's precision for the cached maps: fp32, as the shipped model was trained on.
PRECISION = "fp32"
#: The recipe of the shipped model (weights/README.md): heads only on cached conv maps.
RECIPE: dict[str, Any] = {
    "recipe": "quick",
    "model": {
        "backbone": "efficientnet_lite0",
        "fusion": "early",
        "sa_variant": "paper",
        "sru_layers": 2,
        "sru_hidden": 256,
        "dropout": 0.5,
        "sampling": SAMPLING.model_dump(),
    },
    "frozen_backbone": True,
    "optimizer": "adam",
    "lr": 1e-3,
    "schedule": "constant",
    "batch_size": 8,
    "epochs": 5,
    "eval_every": 5,
    "seed": 0,
}
#: Backbone runs: name -> (backbone, ImageNet weights?).
RUNS: dict[str, tuple[str, bool]] = {
    "efficientnet_lite0": ("efficientnet_lite0", True),
    "resnet34-random": ("resnet34", False),
}


def random_weights(work: Path, seed: int) -> Path:
    """A torchvision ResNet-34 state dict with seeded random initialisation, as a file."""
    from safetensors.torch import save_file
    from torchvision import models

    path = work / f"resnet34-random-seed{seed}.safetensors"
    if not path.is_file():
        torch.manual_seed(seed)
        state = {k: v.contiguous() for k, v in models.resnet34(weights=None).state_dict().items()}
        save_file(state, path)
    return path


def prepare_features(data: Path, out: Path, backbone: str, weights: bool | Path) -> float:
    """Decode kth-mini once into ``out`` with ``backbone`` conv maps; returns seconds."""
    options = PrepareOptions(
        split=SplitOptions(split_by=PERSON, val_fraction=0.0, test_fraction=0.0),
        sampling=SAMPLING,
        features=FeatureOptions(backbone, pretrained=weights, precision=PRECISION),  # type: ignore[arg-type]
    )
    report = prepare(data, out, options)
    if report.failed:
        raise SystemExit(f"prepare failed on {report.failures}")
    return report.seconds


def run_fold(
    data: Path, prepared: Path, run: Path, person: str, config: TrainConfig
) -> tuple[EvalReport, GKAAN]:
    """Train on every person but ``person``; evaluate on ``person``'s videos."""
    options = PrepareOptions(
        split=SplitOptions(split_by=PERSON, test_groups=(person,), val_fraction=0.0),
        sampling=SAMPLING,
        features=FeatureOptions(
            config.model["backbone"], pretrained=_weights_of(prepared), precision=PRECISION
        ),
    )
    prepare(data, prepared, options)
    shutil.rmtree(run, ignore_errors=True)
    result = train(prepared, run, config)
    model = GKAAN.from_pretrained(result.last)
    return evaluate(model, prepared, split="test"), model


def clip_means(prepared: Path, split: str, model: GKAAN) -> list[tuple[str, int, torch.Tensor]]:
    """Per video of ``split``: (name, label index, (clips, C) clip-mean pooled features)."""
    dataset = FeatureDataset(prepared, split, model.config, train=False)
    rows: dict[int, list[torch.Tensor]] = {}
    for index in range(len(dataset)):
        maps, _, video = dataset[index]
        rows.setdefault(video, []).append(clip_embedding(maps[None])[0])
    return [
        (Path(dataset.records[v].path).name, dataset.records[v].label_index, torch.stack(r))
        for v, r in sorted(rows.items())
    ]


def logistic_baseline(
    train_set: list[tuple[str, int, torch.Tensor]],
    test_set: list[tuple[str, int, torch.Tensor]],
    classes: int,
    lam: float = 1e-3,
) -> list[int]:
    """Predicted class of each test video by logistic regression on clip-mean features."""
    x = torch.cat([f for _, _, f in train_set])
    y = torch.cat([torch.full((len(f),), label) for _, label, f in train_set])
    mean, std = x.mean(0), x.std(0) + 1e-6
    torch.manual_seed(0)
    linear = torch.nn.Linear(x.shape[1], classes)
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=200, line_search_fn="strong_wolfe")
    xs = (x - mean) / std

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(linear(xs), y)
        loss = loss + lam * linear.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return [
            int(torch.softmax(linear((f - mean) / std), 1).mean(0).argmax()) for _, _, f in test_set
        ]


def _weights_of(prepared: Path) -> TrunkWeights | bool:
    """The trunk weights ``prepared``'s maps came from (ImageNet when it names none)."""
    return load_manifest(prepared).settings.pretrained or True


def _count_per_class(report: EvalReport, into: dict[str, list[int]]) -> None:
    """Add the report's per-class fused video counts to ``into`` (class -> [correct, videos])."""
    for row in report.per_class:
        counts = into.setdefault(row["class"], [0, 0])
        counts[0] += row["correct"]
        counts[1] += row["videos"]


def lopo(
    data: Path,
    work: Path,
    name: str,
    config: TrainConfig,
    *,
    extras: bool = False,
    motion_weights: tuple[float, ...] = (),
) -> dict[str, Any]:
    """All folds of one run; accuracies pooled over the held-out videos. With ``extras``, also
    the logistic-regression baseline and the held-out videos' OOD scores; for a GM stream,
    the fused per-class counts under each of ``motion_weights``."""
    backbone, imagenet = RUNS[_run_of(name)]
    prepared = work / f"{_run_of(name)}-prep"
    weights: bool | Path = True if imagenet else random_weights(work, config.seed)
    prepare_seconds = prepare_features(data, prepared, backbone, weights)
    manifest = load_manifest(prepared)
    persons = manifest.split_groups["train"]
    model_config = config.model_config_for(list(manifest.classes))
    track = model_config.motion == "track"
    streams = ("fused", *model_config.streams, *(("gm",) if track else ()))
    weighted: dict[float, dict[str, list[int]]] = {w: {} for w in motion_weights if track}
    correct = dict.fromkeys(streams, 0)
    per_class: dict[str, list[int]] = {}
    baseline: dict[str, list[int]] = {}
    ood_scores: dict[str, float] = {}
    folds = []
    started = time.perf_counter()
    for person in persons:
        fold_start = time.perf_counter()
        report, model = run_fold(data, prepared, work / f"{name}-runs" / person, person, config)
        if extras:
            train_set, test_set = (clip_means(prepared, s, model) for s in ("train", "test"))
            guesses = logistic_baseline(train_set, test_set, len(manifest.classes))
            for (video, label, feats), guess in zip(test_set, guesses, strict=True):
                counts = baseline.setdefault(manifest.classes[label], [0, 0])
                counts[0] += int(guess == label)
                counts[1] += 1
                if model.ood is not None:
                    ood_scores[video] = model.ood.video_score(feats)
        videos = report.video["fused"].count
        for stream in streams:
            correct[stream] += round(report.video[stream].top1 * videos)
        _count_per_class(report, per_class)
        for weight, counts in weighted.items():
            model.config = model.config.model_copy(update={"motion_weight": weight})
            _count_per_class(evaluate(model, prepared, split="test"), counts)
        folds.append(
            {
                "person": person,
                "videos": videos,
                "correct": round(report.video["fused"].top1 * videos),
                "seconds": time.perf_counter() - fold_start,
            }
        )
        line = " ".join(f"{s} {round(report.video[s].top1 * videos)}" for s in streams)
        print(f"{name} person {person}: {videos} videos, correct: {line}", flush=True)
    total = sum(f["videos"] for f in folds)
    return {
        "backbone": backbone,
        "weights": "imagenet" if imagenet else f"random (seed {config.seed})",
        "persons": persons,
        "videos": total,
        "accuracy": {s: correct[s] / total for s in streams},
        "per_class": {c: {"correct": k, "videos": n} for c, (k, n) in per_class.items()},
        "folds": folds,
        "baseline_per_class": {c: {"correct": k, "videos": n} for c, (k, n) in baseline.items()},
        "motion_weights": {
            str(w): {c: {"correct": k, "videos": n} for c, (k, n) in counts.items()}
            for w, counts in weighted.items()
        },
        "ood_scores": ood_scores,
        "prepare_seconds": prepare_seconds,
        "train_eval_seconds": time.perf_counter() - started,
        "recipe": config.model_dump(mode="json"),
    }


def _run_of(name: str) -> str:
    """The backbone run of a result name ``<run>`` or ``<run>+motion-<kind>``."""
    return name.split("+")[0]


def render(results: dict[str, dict[str, Any]]) -> Table:
    """One row per backbone run: overall, per stream and per class video accuracy."""
    table = Table(title="kth-mini leave-one-person-out video accuracy")
    classes = sorted({c for r in results.values() for c in r["per_class"]})
    streams = list(dict.fromkeys(s for r in results.values() for s in r["accuracy"]))
    for column in ("run", "videos", *streams, *classes, "prepare s", "folds s"):
        table.add_column(column, justify="right")
    for name, r in results.items():
        if r["baseline_per_class"]:
            rows = r["baseline_per_class"]
            total = sum(v["correct"] for v in rows.values())
            table.add_row(
                "logistic regression, clip-mean features",
                str(r["videos"]),
                f"{100 * total / r['videos']:.1f}%",
                *("-" for _ in streams[1:]),
                *(f"{rows[c]['correct']}/{rows[c]['videos']}" for c in classes),
                "",
                "",
            )
        table.add_row(
            name,
            str(r["videos"]),
            *(f"{100 * r['accuracy'][s]:.1f}%" if s in r["accuracy"] else "-" for s in streams),
            *(f"{r['per_class'][c]['correct']}/{r['per_class'][c]['videos']}" for c in classes),
            f"{r['prepare_seconds']:.0f}",
            f"{r['train_eval_seconds']:.0f}",
        )
        for weight, rows in r.get("motion_weights", {}).items():
            total = sum(v["correct"] for v in rows.values())
            table.add_row(
                f"{name}, GM weight {weight}",
                str(r["videos"]),
                f"{100 * total / r['videos']:.1f}%",
                *("-" for _ in streams[1:]),
                *(f"{rows[c]['correct']}/{rows[c]['videos']}" for c in classes),
                "",
                "",
            )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/kth-mini"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/kth-lopo"))
    parser.add_argument(
        "--backbones", nargs="+", choices=sorted(RUNS), default=["efficientnet_lite0"]
    )
    parser.add_argument("--motion", nargs="+", choices=("none", "diff", "track"), default=["none"])
    parser.add_argument("--motion-weight", type=float, default=1.0, help="GM fusion weight")
    parser.add_argument("--motion-weights", type=float, nargs="*", default=[])
    parser.add_argument("--motion-dim", type=int, default=128)
    parser.add_argument("--motion-stride", type=int, default=1)
    parser.add_argument("--sa-variant", choices=("paper", "reference"), default="paper")
    parser.add_argument("--fusion", choices=("early", "late"), default="early")
    parser.add_argument("--fuse", choices=("probs", "logits"), default="probs")
    parser.add_argument("--dropout", type=float, default=RECIPE["model"]["dropout"])
    parser.add_argument("--epochs", type=int, default=RECIPE["epochs"])
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument(
        "--nested",
        action="store_true",
        help="nested leave-one-person-out instead (benchmarks/kth_nested.py; --data, --work, "
        "--json)",
    )
    args = parser.parse_args()
    if args.nested:
        import kth_nested

        forwarded = ["--data", str(args.data), "--work", str(args.work)]
        kth_nested.main([*forwarded, *(["--json", str(args.json)] if args.json else [])])
        return
    args.work.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    for backbone in args.backbones:
        for number, motion in enumerate(args.motion):
            overrides = {
                "model": {
                    "backbone": RUNS[backbone][0],
                    "sa_variant": args.sa_variant,
                    "fusion": args.fusion,
                    "fuse": args.fuse,
                    "dropout": args.dropout,
                    "motion": motion,
                    "motion_dim": args.motion_dim,
                    "motion_stride": args.motion_stride,
                    "motion_weight": args.motion_weight,
                },
                "epochs": args.epochs,
                "eval_every": args.epochs,
            }
            config = TrainConfig.model_validate(merge_overrides(RECIPE, overrides))
            name = backbone if motion == "none" else f"{backbone}+motion-{motion}"
            results[name] = lopo(
                args.data,
                args.work,
                name,
                config,
                extras=number == 0,
                motion_weights=tuple(args.motion_weights),
            )
    Console().print(render(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
