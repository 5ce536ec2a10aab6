"""The embedded default model (weights/kth-lite0): loadable offline, small, and it works."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from gkaan_cli.config import SamplingConfig
from gkaan_cli.engine.predict import Predictor
from gkaan_cli.model.gkaan import GKAAN
from gkaan_cli.model.locate import resolve_checkpoint
from gkaan_cli.model.motion import LAG_SECONDS, motion_descriptor
from gkaan_cli.model.registry import load_registry, weights_dir
from gkaan_cli.video.reader import read_frames
from gkaan_cli.video.transforms import ClipTransform

KTH_CLASSES = ["boxing", "handclapping", "handwaving", "jogging", "running", "walking"]


@pytest.fixture(scope="module")
def default_dir() -> Path:
    """The registry's default checkpoint folder (its sha256 checked by the registry)."""
    return resolve_checkpoint(None)


@pytest.fixture(scope="module")
def default_model(default_dir: Path) -> GKAAN:
    return GKAAN.from_pretrained(default_dir)


def test_the_default_model_is_kth_lite0_in_the_weights_folder(default_dir: Path) -> None:
    assert load_registry().default == "kth-lite0"
    assert default_dir.resolve() == (weights_dir() / "kth-lite0").resolve()


def test_default_checkpoint_is_fp16_at_most_25_mb_and_holds_every_model_tensor(
    default_dir: Path, default_model: GKAAN
) -> None:
    weights = default_dir / "model.safetensors"
    assert weights.stat().st_size <= 25 * 10**6
    with safe_open(str(weights), "pt") as handle:
        keys = set(handle.keys())
        dtypes = {handle.get_slice(key).get_dtype() for key in keys}
    assert keys == set(default_model.state_dict())  # backbone included: self-contained
    assert dtypes == {"F16", "I64"}  # floats in fp16; batch-norm counters stay int64


def test_default_model_is_an_early_fusion_lite0_model_with_the_six_kth_classes(
    default_model: GKAAN,
) -> None:
    config = default_model.config
    assert config.class_names == KTH_CLASSES
    assert (config.backbone, config.fusion) == ("efficientnet_lite0", "early")
    assert config.preprocess.mean == pytest.approx((127 / 255,) * 3)
    assert config.preprocess.std == pytest.approx((128 / 255,) * 3)
    assert config.sampling.mode == "dense"
    # trained on 8 clips a video, tested on every window (docs/protocol.md#test-windows)
    assert (config.sampling.max_clips, config.sampling.test_max_clips) == (8, 64)


def test_default_model_ood_bank_keeps_at_most_8_clips_per_training_video(
    default_model: GKAAN,
) -> None:
    # 20 training videos; the GM head saw every window, the bank a checkpoint carries did not
    assert default_model.ood is not None
    assert 20 * 6 <= default_model.ood.bank.shape[0] <= 20 * 8


@pytest.mark.slow
def test_default_model_recognises_boxing_in_real_kth_videos(
    data_dir: Path, default_model: GKAAN
) -> None:
    sampling = SamplingConfig(mode="dense", clip_len=30, stride=15, max_clips=2)
    predictor = Predictor(default_model, device="cpu", sampling=sampling)
    videos = sorted((data_dir / "kth-mini" / "boxing").glob("*.avi"))
    top = [predictor.predict_video(path).top_k(1)[0][0] for path in videos]
    assert len(videos) == 3
    assert top.count("boxing") >= 2, top


def test_default_model_has_a_fitted_motion_track_stream(default_model: GKAAN) -> None:
    config = default_model.config
    assert config.motion == "track" and config.motion_weight > sum(config.stream_weights)
    head = default_model.motion_head
    assert head is not None and float(head.fitted) == 1.0
    assert bool((head.std > 0).all()) and float(head.weight.abs().sum()) > 0


def _clip_maps(model: GKAAN, path: Path, start: int) -> torch.Tensor:
    """The trunk's conv maps (1, 30, C, h, w) of 30 consecutive frames from ``start``."""
    size = model.config.preprocess.resize
    frames = [f.image for f in read_frames(path, size=size, indices=range(start, start + 30))]
    clip = ClipTransform(model.config.preprocess, train=False)(torch.from_numpy(np.stack(frames)))
    with torch.inference_mode():
        return model.extract_maps(clip).unsqueeze(0)


@pytest.mark.slow
def test_the_gm_descriptor_sees_a_walker_cross_the_frame_and_a_boxer_stay(
    data_dir: Path, default_model: GKAAN
) -> None:
    walker = data_dir / "kth-extra" / "walking" / "person01_walking_d1_uncomp.avi"
    boxer = data_dir / "kth-mini" / "boxing" / "person05_boxing_d2_uncomp.avi"
    speeds = {}
    for name, path in (("walker", walker), ("boxer", boxer)):
        descriptor = motion_descriptor(_clip_maps(default_model, path, start=30))[0]
        speeds[name] = float(descriptor[2 * LAG_SECONDS.index(0.8)])  # energy centroid, x
    assert speeds["walker"] > 5 * speeds["boxer"], speeds  # measured: 0.30 vs 0.022
