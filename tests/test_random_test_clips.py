"""The authors' test protocol (docs/protocol.md#reference-recipe): N random clips per video
(``SamplingConfig.test_clips``), combined by averaging logits (``clip_average="logits"``)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from gkaan_cli.config import GKAANConfig, PreprocessConfig, SamplingConfig
from gkaan_cli.data.dataset import ClipDataset
from gkaan_cli.data.prepare import PrepareOptions, prepare
from gkaan_cli.engine.evaluate import SplitOutputs, summarize
from gkaan_cli.video.sampling import frames_needed

RANDOM_TEST = SamplingConfig(mode="segments", num_segments=3, frames_per_segment=1, test_clips=4)


def test_test_clips_is_left_out_of_configs_at_zero() -> None:
    # Configs and cache keys written before the field existed stay the same.
    assert "test_clips" not in SamplingConfig(mode="segments").model_dump()
    assert RANDOM_TEST.model_dump()["test_clips"] == 4
    assert SamplingConfig.model_validate(RANDOM_TEST.model_dump()) == RANDOM_TEST
    assert "4 random test clips" in RANDOM_TEST.describe()


def test_random_test_clips_are_n_seeded_training_draws_per_video(
    tmp_path: Path, make_video: Callable[..., Path]
) -> None:
    assert frames_needed(30, RANDOM_TEST, train=False) == list(range(30))
    rows = []
    for label in ("jump", "run"):
        video = make_video(f"videos/{label}.mp4", num_frames=30)
        rows.append(f"{video},{label},test\n")
    (tmp_path / "list.csv").write_text("".join(rows))
    out = tmp_path / "out"
    prepare(tmp_path / "list.csv", out, PrepareOptions(sampling=RANDOM_TEST, resize=(64, 64)))
    shutil.rmtree(tmp_path / "videos")  # every frame of the test videos is in the cache
    config = GKAANConfig(
        num_classes=2, sampling=RANDOM_TEST, preprocess=PreprocessConfig(resize=(64, 64), crop=56)
    )
    dataset = ClipDataset(out, "test", config, train=False, seed=0)
    assert len(dataset) == 8 and [v for v, _ in dataset.items] == [0] * 4 + [1] * 4
    clips = [dataset.clip_frames(i) for i in range(8)]
    assert len(set(clips[:4])) > 1  # different random clips of one video
    for frames in clips:  # one frame from each third of the video
        assert [f // 10 for f in frames] == [0, 1, 2]
    again = ClipDataset(out, "test", config, train=False, seed=0)
    assert [again.clip_frames(i) for i in range(8)] == clips  # repeatable
    assert torch.equal(again[3][0], dataset[3][0])


def test_logit_averaging_is_the_softmax_of_the_mean_logit() -> None:
    logits = np.array([[2.5, 0.0, 0.0], [0.0, 1.2, 0.0], [0.0, 1.2, 0.0], [0.0, 0.0, 1.0]])
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    outputs = SplitOutputs(
        probs={"fused": probs}, labels=np.array([1, 1, 1, 2]), video_index=np.array([0, 0, 0, 1])
    )
    by_probs = summarize(outputs, ["a", "b", "c"], "test", "frames")
    by_logits = summarize(outputs, ["a", "b", "c"], "test", "frames", average="logits")
    # Video 0 (true class b): the mean probability favours b (0.44 against 0.41), the mean
    # logit a (0.83 against 0.80).
    assert by_probs.confusion[1].tolist() == [0, 1, 0]
    assert by_logits.confusion[1].tolist() == [1, 0, 0]
    assert (by_probs.video["fused"].top1, by_logits.video["fused"].top1) == (1.0, 0.5)
    means = [logits[:3].mean(axis=0), logits[3]]
    softmax = [np.exp(m) / np.exp(m).sum() for m in means]
    expected_nll = -(np.log(softmax[0][1]) + np.log(softmax[1][2])) / 2
    assert np.isclose(by_logits.video["fused"].nll, expected_nll)
    assert by_logits.clip["fused"] == by_probs.clip["fused"]  # clips are scored alone
