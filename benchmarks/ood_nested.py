"""The default model's out-of-distribution verdict: unseen KTH people against other footage.

Backs the table of weights/README.md#out-of-distribution-verdict.

- In distribution: every KTH video of ``../shared/data/kth-mini`` and ``kth-extra`` (20, 11
  persons), each person scored by statistics fitted without that person (nested), exactly
  as ``gkaan train`` fits them (:func:`~gkaan_cli.engine.calibrate.bank_rows`: at most
  ``max_clips`` of each video's test clips in the bank; :func:`~gkaan_cli.model.ood.fit_ood`:
  limits calibrated by holding out one person at a time), on the model's test clips.
- Out of distribution: every video of ``clips/`` and ``ps7-arms`` scored with the
  checkpoint's own statistics, as ``gkaan predict`` scores it.

The embedding depends only on the frozen trunk, so every video's conv maps are computed
once with the model's trunk. Prints the AUROC (ID vs OOD scores), the KTH videos flagged
nested and at the shipped limit, the non-KTH videos flagged, and the closest calls.

    python benchmarks/ood_nested.py [--data ../shared/data] [--json ood.json]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gkaan_cli.engine.calibrate import bank_rows
from gkaan_cli.model.gkaan import GKAAN
from gkaan_cli.model.ood import OODStats, clip_embedding, fit_ood
from gkaan_cli.video.reader import probe_video, read_frames
from gkaan_cli.video.sampling import frames_needed, sample_clips
from gkaan_cli.video.transforms import ClipTransform

PERSON = re.compile(r"person(\d+)")
VIDEO_SUFFIXES = {".avi", ".mp4", ".mkv"}


@torch.inference_mode()
def clip_embeddings(model: GKAAN, path: Path) -> torch.Tensor:
    """(clips, C) embeddings of the video's test clips (the model's sampling)."""
    info = probe_video(path)
    sampling = model.config.sampling
    clips = sample_clips(info.num_frames, sampling, fps=info.fps or 25.0)
    needed = frames_needed(info.num_frames, sampling, train=False)
    transform = ClipTransform(model.config.preprocess, train=False)
    size = model.config.preprocess.resize
    maps: dict[int, torch.Tensor] = {}
    batch: list[tuple[int, np.ndarray]] = []

    def flush() -> None:
        images = transform(torch.from_numpy(np.stack([image for _, image in batch])))
        for (index, _), m in zip(batch, model.extract_maps(images), strict=True):
            maps[index] = m
        batch.clear()

    for frame in read_frames(path, size=size, indices=needed):
        batch.append((frame.index, frame.image))
        if len(batch) == 64:
            flush()
    if batch:
        flush()
    return clip_embedding(torch.stack([torch.stack([maps[i] for i in c.frames]) for c in clips]))


def auroc(inside: list[float], outside: list[float]) -> float:
    """P(an OOD score > an ID score), ties counted half."""
    pairs = [(o > i) + 0.5 * (o == i) for i in inside for o in outside]
    return float(np.mean(pairs))


def run(data: Path, model_spec: str = "kth-lite0") -> dict[str, Any]:
    model = GKAAN.from_pretrained(model_spec)
    assert model.ood is not None
    kth = sorted(p for d in ("kth-mini", "kth-extra") for p in (data / d).rglob("*.avi"))
    others = sorted(
        p
        for d in ("clips", "ps7-arms")
        for p in (data / d).rglob("*")
        if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()
    )
    embeddings = {p.name: clip_embeddings(model, p) for p in kth}
    persons = {p.name: PERSON.search(p.name).group(1) for p in kth}  # type: ignore[union-attr]
    per_video = model.config.sampling.max_clips_for(train=True)
    ids = {p: i for i, p in enumerate(sorted(set(persons.values())))}
    nested: dict[str, float] = {}
    for person in ids:
        train = [v for v in embeddings if persons[v] != person]
        x = torch.cat([embeddings[v] for v in train])
        video = torch.cat([torch.full((len(embeddings[v]),), i) for i, v in enumerate(train)])
        group = torch.cat([torch.full((len(embeddings[v]),), ids[persons[v]]) for v in train])
        rows = bank_rows(video, per_video)
        stats = OODStats.from_state(fit_ood(x[rows], video[rows], group[rows]))
        for v in embeddings:
            if persons[v] == person:
                nested[v] = stats.video_score(embeddings[v])
    shipped_kth = {v: model.ood.video_score(e) for v, e in embeddings.items()}
    outside = {p.name: model.ood.video_score(clip_embeddings(model, p)) for p in others}
    return {
        "model": model_spec,
        "auroc": auroc(list(nested.values()), list(outside.values())),
        "kth_nested": nested,
        "kth_flagged_nested": sorted(v for v, s in nested.items() if s > 1.0),
        "kth_flagged_shipped": sorted(v for v, s in shipped_kth.items() if s > 1.0),
        "others": outside,
        "others_flagged": sum(s > 1.0 for s in outside.values()),
    }


def summary(result: dict[str, Any]) -> str:
    nested, others = result["kth_nested"], result["others"]
    top = max(nested, key=nested.get)
    low = sorted(others.items(), key=lambda kv: kv[1])[:3]
    return "\n".join(
        [
            f"AUROC {result['auroc']:.3f} ({len(nested)} KTH nested vs {len(others)} others)",
            f"KTH flagged nested: {len(result['kth_flagged_nested'])}/{len(nested)} "
            f"{result['kth_flagged_nested']}; at the shipped limit: "
            f"{len(result['kth_flagged_shipped'])}/{len(nested)}",
            f"others flagged: {result['others_flagged']}/{len(others)}",
            f"largest KTH nested score {nested[top]:.3f} ({top}); lowest others: "
            + ", ".join(f"{v} {s:.3f}" for v, s in low),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--model", default="kth-lite0")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    result = run(args.data, args.model)
    print(summary(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
