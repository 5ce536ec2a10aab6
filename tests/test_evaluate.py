"""Evaluation metrics on hand-made probabilities, the confusion image and ``evaluate()``."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import torch
from conftest import TINY_MODEL

from gkaan_cli.config import GKAANConfig
from gkaan_cli.engine.evaluate import (
    SplitOutputs,
    collect_outputs,
    evaluate,
    summarize,
    write_report,
)
from gkaan_cli.engine.metrics import (
    attention_peakedness,
    confusion_image,
    confusion_matrix,
    mean_class_accuracy,
    score,
    top_k_accuracy,
    video_average,
)
from gkaan_cli.errors import UsageError
from gkaan_cli.model.gkaan import GKAAN
from gkaan_cli.model.precision import inference_trunk

# Four clips of two videos (0: clips 0-1, 1: clips 2-3), three classes.
PROBS = np.array(
    [
        [0.6, 0.3, 0.1],  # video 0, label 0: right
        [0.1, 0.5, 0.4],  # video 0: wrong
        [0.2, 0.3, 0.5],  # video 1, label 2: right
        [0.5, 0.4, 0.1],  # video 1: wrong
    ]
)
LABELS = np.array([0, 0, 2, 2])
VIDEOS = np.array([0, 0, 1, 1])


def test_top_k_counts_a_hit_when_the_label_is_among_the_k_best() -> None:
    assert top_k_accuracy(PROBS, LABELS, 1) == 0.5
    assert top_k_accuracy(PROBS, LABELS, 2) == 0.5  # clips 1 and 3 rank their label last
    assert top_k_accuracy(PROBS, LABELS, 5) == 1.0  # k beyond K counts every class


def test_video_prediction_is_the_mean_of_its_clips() -> None:
    videos, probs, labels = video_average(PROBS, LABELS, VIDEOS)
    assert videos.tolist() == [0, 1]
    np.testing.assert_allclose(probs, [[0.35, 0.4, 0.25], [0.35, 0.35, 0.3]])
    assert labels.tolist() == [0, 2]


def test_confusion_rows_are_true_classes_and_mean_class_accuracy_skips_absent_classes() -> None:
    matrix = confusion_matrix(PROBS.argmax(axis=1), LABELS, 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 0, 0], [1, 0, 1]]
    assert mean_class_accuracy(matrix) == 0.5
    skewed = confusion_matrix(np.array([0, 0, 0, 1]), np.array([0, 0, 0, 1]), 2)
    assert mean_class_accuracy(skewed) == 1.0
    always_zero = confusion_matrix(np.array([0, 0, 0, 0]), np.array([0, 0, 0, 1]), 2)
    assert mean_class_accuracy(always_zero) == 0.5


def test_score_reports_top1_top5_mean_class_and_count() -> None:
    scores = score(PROBS, LABELS)
    assert (scores.top1, scores.top5, scores.mean_class, scores.count) == (0.5, 1.0, 0.5, 4)


def test_attention_entropy_is_zero_for_a_one_hot_map_and_log_n_for_a_uniform_one() -> None:
    one_hot = np.zeros((1, 7, 7))
    one_hot[0, 3, 3] = 1.0
    uniform = np.full((1, 7, 7), 1 / 49)
    entropy, peak = attention_peakedness(np.concatenate([one_hot, uniform]))
    np.testing.assert_allclose(entropy, [0.0, np.log(49)], atol=1e-12)
    np.testing.assert_allclose(peak, [1.0, 1 / 49])


def test_confusion_image_shades_each_cell_by_its_row_share_and_names_the_classes() -> None:
    matrix = np.array([[2, 0], [1, 1]])
    image = confusion_image(matrix, ["a", "b"], cell=40)
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
    # the cells are the bottom-right 2x2 block of 40-pixel squares (before the padding)
    pad = 20
    left, top = image.shape[1] - pad - 80, image.shape[0] - pad - 80
    corner = lambda row, col: image[top + 40 * row + 4, left + 40 * col + 4]  # noqa: E731
    assert corner(0, 1).tolist() == [255, 255, 255]  # empty cell stays white
    assert corner(0, 0).tolist() == [40, 180, 40]  # full diagonal: green
    assert corner(1, 0).tolist() == [142, 177, 242]  # half a row off the diagonal: light blue
    ink = image.min(axis=2) < 100
    assert ink[top:, :left].sum() > 50  # row names and the "true class" title
    assert ink[:top, left:].sum() > 50  # column names and the "predicted class" title


def test_confusion_image_writes_each_count_in_its_cell() -> None:
    empty = confusion_image(np.zeros((2, 2), np.int64), ["a", "b"], cell=40)
    counted = confusion_image(np.array([[0, 7], [0, 0]]), ["a", "b"], cell=40)
    assert empty.shape == counted.shape
    changed = np.argwhere((empty != counted).any(axis=2))
    pad = 20
    left, top = empty.shape[1] - pad - 80, empty.shape[0] - pad - 80
    assert len(changed) and changed[:, 0].min() >= top and changed[:, 1].min() >= left + 40


def _outputs() -> SplitOutputs:
    gp = np.array([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3]])
    maps = np.full((8, 7, 7), 1 / 49)
    return SplitOutputs(
        probs={"fused": PROBS, "gp": gp},
        labels=LABELS,
        video_index=VIDEOS,
        attention={"sa": attention_peakedness(maps)},
        map_size=49,
    )


def test_report_scores_clips_and_videos_for_the_fused_prediction_and_each_stream() -> None:
    report = summarize(_outputs(), ["a", "b", "c"], "test", "features")
    assert report.clip["fused"].top1 == 0.5
    assert report.video["fused"].top1 == 0.0  # video 0 -> b, video 1 -> a (tie broken by index)
    assert report.clip["gp"].top1 == 0.75
    assert report.video["gp"].top1 == 1.0
    assert report.confusion.tolist() == [[0, 1, 0], [0, 0, 0], [1, 0, 0]]
    assert [row["videos"] for row in report.per_class] == [1, 0, 1]
    assert report.per_class[1]["accuracy"] is None
    assert report.attention["sa"]["entropy"] == pytest.approx(np.log(49))


def test_report_files_hold_the_scores_and_a_decodable_png(tmp_path: Path) -> None:
    report = summarize(_outputs(), ["a", "b", "c"], "test", "frames")
    write_report(report, tmp_path / "eval")
    data = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert data["classes"] == ["a", "b", "c"]
    assert data["video"]["gp"]["top1"] == 1.0
    assert "top5" not in data["clip"]["fused"]  # top-5 only with more than 5 classes
    png = (tmp_path / "eval" / "confusion.png").read_bytes()
    with av.open(io.BytesIO(png)) as container:
        image = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert image.shape[0] > 3 * 56 and image.shape[1] > 3 * 56  # cells of 56 pixels plus names
    assert sorted(p.name for p in (tmp_path / "eval").iterdir()) == ["confusion.png", "report.json"]


def test_frames_run_through_the_inference_trunk_then_fp32_heads_like_the_model() -> None:
    """``evaluate --precision`` on frames: the backbone as predict runs it, the heads in fp32."""
    torch.manual_seed(0)
    model = GKAAN(GKAANConfig(num_classes=3, **TINY_MODEL)).eval()
    clips = torch.randn(2, 4, 3, 56, 56)
    batches = [(clips, torch.tensor([0, 2]), torch.tensor([0, 1]))]
    cpu = torch.device("cpu")

    def run(precision: str | None) -> SplitOutputs:
        trunk = None if precision is None else inference_trunk(model.backbone, precision, cpu)
        loader: Any = batches  # a DataLoader's items, without one
        return collect_outputs(model, loader, features=False, device=cpu, trunk=trunk)

    plain, fused, reduced = run(None), run("fp32"), run("bf16")
    for name, probs in plain.probs.items():
        np.testing.assert_allclose(fused.probs[name], probs, rtol=1e-4, atol=1e-5)
    assert reduced.probs["fused"].dtype == np.float32
    np.testing.assert_allclose(reduced.probs["fused"], plain.probs["fused"], atol=0.05)


def test_evaluate_refuses_fp16_on_the_cpu_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="fp16"):
        evaluate(tmp_path / "no-model", tmp_path / "no-data", device="cpu", precision="fp16")


def test_a_source_of_other_classes_is_refused_before_anything_is_prepared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import write_video

    from gkaan_cli.engine.evaluate import resolve_eval_data

    monkeypatch.setenv("GKAAN_CACHE", str(tmp_path / "cache"))
    for label in ("jump", "sit"):
        write_video(tmp_path / "other" / label / f"{label}.mp4", 6)
    config = GKAANConfig.model_validate(
        TINY_MODEL | {"num_classes": 2, "class_names": ["blue", "red"]}
    )
    with pytest.raises(UsageError, match=r"classes \['jump', 'sit'\] differ"):
        resolve_eval_data(tmp_path / "other", GKAAN(config), None)
    assert not (tmp_path / "cache").exists()  # nothing decoded, no cache entry
