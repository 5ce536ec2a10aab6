"""How peaked SA and LA are on real frames (the table of docs/model.md#sa-peaked).

8 evenly spaced frames of each kth-mini video, resized and center-cropped as the model's
preprocessing does, through the model's trunk (fp32); per frame, over the h x w cells:
the paper SA's scores M_n = sum_c F^2 and its softmax, the mean-of-squares form at its
initialisation (the reference variant with a = 1, b = 0), and the model's trained LA.

    python benchmarks/attention_peaks.py [--model kth-lite0] [--data ../shared/data/kth-mini]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gkaan_cli.model.gkaan import GKAAN
from gkaan_cli.video.reader import probe_video, read_frames
from gkaan_cli.video.transforms import ClipTransform

FRAMES_PER_VIDEO = 8


def frame_maps(model: GKAAN, data: Path) -> Tensor:
    """(N, C, h, w) fp32 trunk maps of 8 evenly spaced frames of every video under ``data``."""
    transform = ClipTransform(model.config.preprocess, train=False)
    size = model.config.preprocess.resize
    out = []
    for path in sorted(data.glob("*/*.avi")):
        count = probe_video(path).num_frames
        indices = np.linspace(0, count - 1, FRAMES_PER_VIDEO).round().astype(int).tolist()
        frames = [f.image for f in read_frames(path, size=size, indices=indices)]
        with torch.inference_mode():
            out.append(model.extract_maps(transform(torch.from_numpy(np.stack(frames)))))
    return torch.cat(out).float()


def peaks(weights: Tensor) -> tuple[Tensor, Tensor]:
    """Per frame: the largest weight and the entropy (nats) of (N, h, w) attention maps."""
    flat = weights.flatten(1)
    return flat.amax(dim=1), -(flat * flat.clamp_min(1e-30).log()).sum(dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="kth-lite0")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/kth-mini"))
    args = parser.parse_args()
    model = GKAAN.from_pretrained(args.model).float()
    maps = frame_maps(model, args.data)
    squares = maps.square()
    scores = squares.sum(dim=1).flatten(1)  # the paper's M_n
    top2 = scores.topk(2, dim=1).values
    gap = top2[:, 0] - top2[:, 1]
    with torch.inference_mode():
        la_weights = model.la(maps)[1]
    rows = {
        "smallest M_n (median over frames)": f"{scores.amin(1).median():.0f}",
        "largest M_n (median; range)": f"{scores.amax(1).median():,.0f} "
        f"({scores.amax(1).min():,.0f} .. {scores.amax(1).max():,.0f})",
        "gap between the two largest M_n (median; smallest)": f"{gap.median():.0f} "
        f"({gap.min():.1f})",
    }
    paper_top, paper_entropy = peaks(torch.softmax(scores, dim=1))
    rows["paper SA: largest weight T (mean; smallest)"] = (
        f"{paper_top.mean():.4f} ({paper_top.min():.2f})"
    )
    rows["paper SA: entropy of T in nats (mean; largest)"] = (
        f"{paper_entropy.mean():.4f} ({paper_entropy.max():.2f})"
    )
    mean_top, mean_entropy = peaks(torch.softmax(squares.mean(dim=1).flatten(1), dim=1))
    rows["mean-of-squares form (reference at init): largest weight, entropy (means)"] = (
        f"{mean_top.mean():.3f}, {mean_entropy.mean():.2f}"
    )
    la_top, la_entropy = peaks(la_weights)
    rows[f"LA of {args.model}: largest weight, entropy (means)"] = (
        f"{la_top.mean():.2f}, {la_entropy.mean():.2f}"
    )
    print(f"{maps.shape[0]} frames, {maps.shape[2]} x {maps.shape[3]} cells")
    for name, value in rows.items():
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
