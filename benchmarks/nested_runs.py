"""The expensive half of the nested benchmark: appearance-stream models on kth-mini.

Nested leave-one-person-out (benchmarks/nested.py) needs, for every outer person o and every
inner person i != o, a model trained on all persons but o and i (scored on i), and for every
o a model trained on all persons but o (scored on o). The set of held-out persons is the
model's key: the inner fold (o, i) and the inner fold (i, o) train on the same persons, so
11 persons need 55 pair models and 11 single ones, for each SA variant of
:data:`SA_VARIANTS`. Each is trained once with :func:`gkaan_cli.engine.train.train` on the
cached conv maps (the recipe of ``kth_lopo.RECIPE`` with the appearance streams only: the
GM stream is fitted separately by the selection code, because it does not change the
trained weights), snapshotted after each epoch in :data:`SNAPSHOTS`, and every snapshot
scores its held-out persons' videos twice: on the 8 clips the model trains on (``e5_*``),
and on every window of :data:`WINDOW` frames at hop :data:`HOP` (``w5_*``; the ``own``
recipe's test clips, docs/protocol.md#test-windows), from every frame's conv maps
(:func:`full_maps`). The results (per clip probabilities of each appearance stream) are
cached in ``work`` as one ``.npz`` per key and SA variant (:func:`appearance_dir`), so an
interrupted run resumes where it stopped; the snapshots are kept.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from gkaan_cli.data.dataset import FeatureDataset
from gkaan_cli.data.manifest import load_manifest
from gkaan_cli.data.prepare import FeatureOptions, PrepareOptions, prepare
from gkaan_cli.data.sources import SplitOptions
from gkaan_cli.engine.evaluate import collect_outputs
from gkaan_cli.engine.recipes import TrainConfig
from gkaan_cli.engine.train import EpochDone, train
from gkaan_cli.model.gkaan import GKAAN

#: Epochs after which the appearance model is snapshotted and scored; the last is the
#: length of the run (both are candidates of the nested choice).
SNAPSHOTS = (5, 10)
#: SA variants of the appearance models (docs/model.md#sa-reference), ``reference``, the
#: ``own`` recipe's, first; ``kth_nested.SHIPPED_SA`` says which the shipped procedure
#: chooses among, and the benchmark reports the choice among all of them beside it.
SA_VARIANTS: tuple[str, ...] = ("reference", "paper")
#: The test windows (frames at 25 fps): one 30-frame clip, hop half a clip (the ``own``
#: recipe's dense sampling; ``predict --timeline``'s default window).
WINDOW, HOP = 30, 15
#: The appearance streams (eq. 19 weights 1 each).
STREAMS = ("gs", "gl", "gp")


def _per_variant(work: Path, name: str, sa: str) -> Path:
    """``work/name`` for the ``own`` recipe's SA variant (the folders of earlier runs),
    ``work/name-SA`` for another."""
    return work / (name if sa == SA_VARIANTS[0] else f"{name}-{sa}")


def appearance_dir(work: Path, sa: str) -> Path:
    """Where the scored snapshots of the ``sa`` models are cached."""
    return _per_variant(work, "appearance", sa)


def runs_dir(work: Path, sa: str) -> Path:
    """Where the ``sa`` models are trained (snapshots kept for the timeline persons)."""
    return _per_variant(work, "runs", sa)


def key_of(held_out: tuple[str, ...]) -> str:
    """The file-name key of a set of held-out persons (sorted, joined by '+')."""
    return "+".join(sorted(held_out))


def all_keys(persons: list[str], first: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every held-out set the nested benchmark needs: single persons, then the pairs in the
    order that completes one outer fold after another (each outer person needs a pair with
    every other person), the persons of ``first`` first, so an interrupted run leaves whole
    outer folds."""
    singles = [(p,) for p in persons]
    order = [p for p in first if p in persons] + [p for p in persons if p not in first]
    pairs: list[tuple[str, ...]] = []
    for outer in order:
        for inner in persons:
            pair = tuple(sorted((outer, inner)))
            if inner != outer and pair not in pairs:
                pairs.append(pair)
    return singles + pairs


def score_snapshot(checkpoint: Path, prepared: Path) -> dict[str, np.ndarray]:
    """Per clip probabilities of each appearance stream on ``prepared``'s test split."""
    model = GKAAN.from_pretrained(checkpoint)
    dataset = FeatureDataset(prepared, "test", model.config, train=False)
    loader = DataLoader(dataset, batch_size=16, collate_fn=dataset.collate)
    outputs = collect_outputs(model, loader, features=True, device=model_device())
    names = np.array([Path(dataset.records[v].path).name for v in outputs.video_index])
    result = {f"probs_{s}": p for s, p in outputs.probs.items()}
    result["labels"] = outputs.labels
    result["videos"] = names
    return result


def full_maps(work: Path, record: dict[str, Any]) -> torch.Tensor:
    """Every frame's conv maps of a manifest ``record``'s video, cut to a whole number of
    hops (fp32; cached fp16 under ``work/fullmaps``)."""
    path = work / "fullmaps" / f"{Path(record['path']).name}.npy"
    if not path.is_file():
        from gkaan_cli.data.frame_cache import compute_features, feature_preprocess
        from gkaan_cli.model.backbones import build_backbone
        from gkaan_cli.video.reader import read_frames

        trunk = build_backbone("efficientnet_lite0", pretrained=True).eval()
        frames = np.stack([f.image for f in read_frames(record["path"], size=(256, 256))])
        frames = frames[: len(frames) // HOP * HOP]
        maps = compute_features(
            torch.from_numpy(frames), trunk, feature_preprocess("efficientnet_lite0")
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, maps)
    return torch.from_numpy(np.load(path).astype(np.float32))


def windows_of(maps: torch.Tensor) -> torch.Tensor:
    """(frames, C, h, w) -> (W, WINDOW, C, h, w): every window, hop :data:`HOP`."""
    starts = range(0, len(maps) - WINDOW + 1, HOP)
    return torch.stack([maps[s : s + WINDOW] for s in starts])


@torch.inference_mode()
def score_windows(checkpoint: Path, work: Path, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per window probabilities of each appearance stream on every window of ``records``'
    videos (``predict`` of the ``own`` recipe: docs/protocol.md#test-windows)."""
    model = GKAAN.from_pretrained(checkpoint)
    names: list[str] = []
    probs: dict[str, list[np.ndarray]] = {s: [] for s in STREAMS}
    for record in records:
        windows = windows_of(full_maps(work, record))
        for i in range(0, len(windows), 16):
            output = model.forward_heads(windows[i : i + 16])
            for s in STREAMS:
                probs[s].append(output.stream_probs[s].float().numpy())
        names += [Path(record["path"]).name] * len(windows)
    result: dict[str, Any] = {f"probs_{s}": np.concatenate(p) for s, p in probs.items()}
    result["videos"] = np.array(names)
    return result


def _add_windows(
    out: Path, run: Path, work: Path, prepared: Path, held_out: tuple[str, ...]
) -> None:
    """Add the every-window scores (``w5_*``) of each snapshot of ``run`` to ``out``."""
    arrays = dict(np.load(out))
    records = [
        {"path": str(r.path)} for r in load_manifest(prepared).records() if r.group in held_out
    ]
    for epochs in SNAPSHOTS:
        for name, value in score_windows(run / f"epoch{epochs}", work, records).items():
            arrays[f"w{epochs}_{name}"] = value
    np.savez(out.with_suffix(".tmp.npz"), **arrays)
    out.with_suffix(".tmp.npz").replace(out)


def model_device() -> Any:
    import torch

    return torch.device("cpu")


def run_key(
    data: Path,
    prepared: Path,
    work: Path,
    held_out: tuple[str, ...],
    config: TrainConfig,
    options_for: Any,
) -> Path:
    """Train on every person but ``held_out`` and score each snapshot (on its 8 clips and on
    every window); returns the .npz. A cached .npz without the window scores gets them from
    the kept snapshots, or is made again (training is deterministic)."""
    sa = config.model["sa_variant"]
    out = appearance_dir(work, sa) / f"{key_of(held_out)}.npz"
    run = runs_dir(work, sa) / key_of(held_out)
    if out.is_file() and f"w{SNAPSHOTS[0]}_videos" in np.load(out).files:
        return out
    if out.is_file() and all((run / f"epoch{e}").is_dir() for e in SNAPSHOTS):
        _add_windows(out, run, work, prepared, held_out)
        return out
    prepare(data, prepared, options_for(held_out))
    shutil.rmtree(run, ignore_errors=True)

    def snapshot(done: EpochDone) -> None:
        epoch = done.record.epoch
        if epoch in SNAPSHOTS and epoch < done.epochs:  # the final last/ is written at the end
            shutil.copytree(run / "last", run / f"epoch{epoch}", dirs_exist_ok=True)

    train(prepared, run, config, on_epoch=snapshot)
    if config.epochs in SNAPSHOTS:
        shutil.copytree(run / "last", run / f"epoch{config.epochs}", dirs_exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    for epochs in SNAPSHOTS:
        for name, value in score_snapshot(run / f"epoch{epochs}", prepared).items():
            arrays[f"e{epochs}_{name}"] = value
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out.with_suffix(".tmp.npz"), **arrays)
    out.with_suffix(".tmp.npz").replace(out)
    for child in run.iterdir():  # the snapshots stay (window scores, timelines)
        if child.name.startswith("epoch"):
            continue
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()
    _add_windows(out, run, work, prepared, held_out)
    return out


def run_all(
    data: Path,
    prepared: Path,
    work: Path,
    config: TrainConfig,
    options_for: Any,
    timeline_persons: tuple[str, ...],
    worker: int = 0,
    workers: int = 1,
) -> None:
    """Every key of :func:`all_keys` (every ``workers``-th from ``worker``, for processes
    sharing the work, each with its own ``prepared`` copy), printing progress; the keys
    holding a person of ``timeline_persons`` first."""
    persons = list(load_manifest(prepared).split_groups["train"]) + list(
        load_manifest(prepared).split_groups.get("test", [])
    )
    persons = sorted(set(persons))
    keys = all_keys(persons, first=timeline_persons)
    started = time.perf_counter()
    for number, held_out in enumerate(keys, start=1):
        if number % workers != worker:
            continue
        t0 = time.perf_counter()
        run_key(data, prepared, work, held_out, config, options_for)
        print(
            f"[{number}/{len(keys)}] SA {config.model['sa_variant']}, held out "
            f"{key_of(held_out)}: "
            f"{time.perf_counter() - t0:.0f} s (total {time.perf_counter() - started:.0f} s)",
            flush=True,
        )


def recipe(sa: str) -> TrainConfig:
    """The default model's recipe (kth_lopo.RECIPE) with SA ``sa``, the last snapshot's
    epochs, appearance streams only."""
    import kth_lopo

    overrides = {"model": {"sa_variant": sa, "motion": "none"}, "epochs": SNAPSHOTS[-1]}
    overrides["eval_every"] = SNAPSHOTS[-1]
    return TrainConfig.model_validate(kth_lopo.merge_overrides(kth_lopo.RECIPE, overrides))


def prepare_and_train(
    data: Path, prepared: Path, work: Path, timeline_persons: tuple[str, ...]
) -> None:
    """Cache kth-mini's conv maps once (``prepare --features``), then every model of every
    SA variant."""
    import kth_lopo

    config = recipe(SA_VARIANTS[0])
    weights = True

    def options_for(held_out: tuple[str, ...]) -> PrepareOptions:
        return PrepareOptions(
            split=SplitOptions(split_by=kth_lopo.PERSON, test_groups=held_out, val_fraction=0.0),
            sampling=kth_lopo.SAMPLING,
            features=FeatureOptions(
                config.model["backbone"], pretrained=weights, precision=kth_lopo.PRECISION
            ),
        )

    prepare(data, prepared, options_for(()))
    for sa in SA_VARIANTS:
        run_all(data, prepared, work, recipe(sa), options_for, timeline_persons)
