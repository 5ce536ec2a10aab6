"""The GM stream (``motion="track"``): its descriptor measures where activity is and how fast
it moves; the head is fitted at the end of training, saved and loaded strictly; it does not
vote until fitted; the option changes nothing outside the heads."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from gkaan_cli.cli import app
from gkaan_cli.config import GKAANConfig, SamplingConfig
from gkaan_cli.errors import BadCheckpointError
from gkaan_cli.model.gkaan import GKAAN
from gkaan_cli.model.motion import DESCRIPTOR_SIZE, LAG_SECONDS, motion_descriptor

runner = CliRunner()


def blob_clip(xs: list[int], y: int = 3, size: int = 7, channels: int = 4) -> torch.Tensor:
    """(1, T, C, size, size) maps with one active cell per frame at (y, xs[t])."""
    maps = torch.zeros(1, len(xs), channels, size, size)
    for t, x in enumerate(xs):
        maps[0, t, :, y, x] = 1.0
    return maps


def tiny(motion: str = "track", **update: object) -> GKAANConfig:
    return GKAANConfig(
        num_classes=3,
        backbone="resnet18",
        sru_hidden=16,
        sru_layers=1,
        motion=motion,  # type: ignore[arg-type]
        **update,  # type: ignore[arg-type]
    )


def test_the_descriptor_reads_the_speed_of_a_moving_blob_and_zero_for_a_still_one() -> None:
    still = motion_descriptor(blob_clip([3] * 24), fps=25.0)
    slow = motion_descriptor(blob_clip([t // 4 for t in range(24)]), fps=25.0)  # 1 cell / 4
    fast = motion_descriptor(blob_clip([t // 2 for t in range(12)] * 2), fps=25.0)  # 1 cell / 2
    assert still.shape == slow.shape == (1, DESCRIPTOR_SIZE)
    # energy map: the first numbers are |dx|, |dy| per second at each lag, in frame widths
    # (a 0-1 grid: 1/6 per cell)
    assert torch.all(still[0, : 2 * len(LAG_SECONDS)] == 0)
    lag5_x = 2 * LAG_SECONDS.index(0.2)  # 5 frames at 25 fps
    assert slow[0, lag5_x] == pytest.approx((5 / 4) / 6 / 0.2, abs=0.2)  # 1.25 cells in 0.2 s
    assert fast[0, 0] > slow[0, 0] > still[0, 0]  # lag 1: faster is larger
    assert slow[0, 2 * len(LAG_SECONDS)] > 0.5  # drift: a blob crossing the frame in 1 s


def gaussian_clip(
    frames: int, fps: float, sigma: float, speed: float, size: int = 41, channels: int = 4
) -> torch.Tensor:
    """(1, frames, C, size, size) maps of a Gaussian blob of ``sigma`` cells whose centre
    moves right at ``speed`` cells per second from 1.5 sigma left of the centre, at ``fps``."""
    grid = torch.arange(size, dtype=torch.float32)
    times = torch.arange(frames, dtype=torch.float32) / fps
    x0 = size // 2 - 1.5 * sigma + speed * times
    y0 = size / 2
    gx = (grid[None, None, :] - x0[:, None, None]).square()
    gy = (grid[None, :, None] - y0).square()
    blob = torch.exp(-(gx + gy) / (2 * sigma**2))  # (T, size, size)
    return blob[None, :, None].expand(1, frames, channels, size, size).clone()


def test_the_height_descriptor_is_the_same_at_two_zooms_and_two_frame_rates() -> None:
    # the same walk: 1.2 s at 25 fps, seen at zoom 1 and zoom 2 (twice the size, twice the
    # speed in cells), and at 50 fps (twice the frames in the clip's 30: 0.6 s of it)
    base = gaussian_clip(30, 25.0, sigma=2.0, speed=6.0)
    zoomed = gaussian_clip(30, 25.0, sigma=4.0, speed=12.0)
    faster = gaussian_clip(30, 50.0, sigma=2.0, speed=6.0)
    a = motion_descriptor(base, 25.0, "height")[0]
    for other, fps in ((zoomed, 25.0), (faster, 50.0)):
        b = motion_descriptor(other, fps, "height")[0]
        # the stated tolerance: 5% of each number (or 0.02 absolute near zero)
        assert torch.allclose(a, b, rtol=0.05, atol=0.02), (a, b)
    # the frame unit keeps the rate invariance but not the zoom's
    frame_base = motion_descriptor(base, 25.0, "frame")[0]
    assert torch.allclose(
        frame_base, motion_descriptor(faster, 50.0, "frame")[0], rtol=0.05, atol=0.02
    )
    speed = 2 * LAG_SECONDS.index(0.2)
    assert motion_descriptor(zoomed, 25.0, "frame")[0, speed] > 1.8 * frame_base[speed]


def test_the_descriptor_is_finite_for_a_single_frame_and_for_blank_maps() -> None:
    for maps in (torch.randn(2, 1, 8, 7, 7), torch.zeros(2, 30, 8, 7, 7)):
        out = motion_descriptor(maps)
        assert out.shape == (2, DESCRIPTOR_SIZE) and torch.isfinite(out).all()


@pytest.mark.slow
def test_the_track_option_adds_no_parameter_and_changes_no_other_output() -> None:
    paper = GKAANConfig(num_classes=101)
    plain, tracked = GKAAN(paper), GKAAN(paper.model_copy(update={"motion": "track"}))
    count = sum(p.numel() for p in plain.parameters())
    assert count == sum(p.numel() for p in tracked.parameters()) == 48_943_472
    extra = set(tracked.state_dict()) - set(plain.state_dict())
    assert extra and all(k.startswith("motion_head.") for k in extra)
    tracked.load_state_dict(plain.state_dict() | {k: tracked.state_dict()[k] for k in extra})
    plain.eval(), tracked.eval()
    maps = torch.randn(2, 4, 512, 7, 7)
    a, b = plain.forward_heads(maps), tracked.forward_heads(maps)
    assert set(b.stream_probs) == {"gs", "gl", "gp", "gm"}
    for name in a.stream_probs:
        assert torch.equal(a.stream_probs[name], b.stream_probs[name])
    # not fitted yet: GM is uniform and takes no part in the fused probabilities
    assert torch.allclose(b.stream_probs["gm"], torch.full((2, 101), 1 / 101))
    assert torch.allclose(a.probs, b.probs)


def fitted_model(weight: float = 1.0) -> tuple[GKAAN, torch.Tensor]:
    """A tiny model whose GM head has learnt: still -> 0, slow -> 1, fast -> 2."""
    torch.manual_seed(0)
    model = GKAAN(tiny(motion_weight=weight)).eval()
    clips = [
        blob_clip([3] * 24, channels=512),
        blob_clip([t // 4 for t in range(24)], channels=512),
        blob_clip([t % 7 for t in range(24)], channels=512),
    ]
    maps = torch.cat(clips)  # real maps are never exactly still: a little noise everywhere
    noisy = maps.repeat(5, 1, 1, 1, 1) + 0.01 * torch.rand(15, *maps.shape[1:])
    with torch.inference_mode():  # as at the end of training
        descriptors = motion_descriptor(noisy[3:])
    assert model.motion_head is not None
    model.motion_head.fit(descriptors, torch.tensor([0, 1, 2] * 4))
    return model, noisy[:3]  # unseen clips


def test_a_fitted_head_classifies_by_motion_and_the_weight_steers_the_fusion() -> None:
    model, maps = fitted_model(weight=1.0)
    with torch.inference_mode():
        out = model.forward_heads(maps)
        assert out.stream_probs["gm"].argmax(dim=1).tolist() == [0, 1, 2]
        model.config = model.config.model_copy(update={"motion_weight": 1000.0})
        assert model.forward_heads(maps).probs.argmax(dim=1).tolist() == [0, 1, 2]
        model.config = model.config.model_copy(update={"motion_weight": 0.0})
        appearance = sum(out.stream_probs[s] for s in ("gs", "gl", "gp")) / 3
        assert torch.allclose(model.forward_heads(maps).probs, appearance)


def test_the_fitted_head_is_saved_in_fp16_and_loaded_strictly(tmp_path: Path) -> None:
    model, maps = fitted_model()
    folder = model.save_pretrained(tmp_path / "tracked", dtype=torch.float16)
    again = GKAAN.from_pretrained(folder)
    with torch.inference_mode():
        assert torch.allclose(
            again.forward_heads(maps).stream_probs["gm"],
            model.forward_heads(maps).stream_probs["gm"],
            atol=5e-3,
        )
    weights = folder / "model.safetensors"
    tensors = load_file(weights)
    save_file({k: v for k, v in tensors.items() if k != "motion_head.weight"}, weights)
    with pytest.raises(BadCheckpointError, match=r"motion_head\.weight"):
        GKAAN.from_pretrained(folder)


@pytest.mark.slow
def test_training_with_the_track_option_fits_the_gm_head(
    make_video: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GKAAN_CACHE", str(tmp_path / "cache"))
    for label in ("left", "right"):
        for number in range(2):
            make_video(f"mine/{label}/{label}{number}.mp4", num_frames=12, size=(32, 32))
    recipe = tmp_path / "recipe.json"
    sampling = SamplingConfig(mode="dense", clip_len=6, stride=6, max_clips=2).model_dump()
    recipe.write_text(json.dumps({"model": {"sampling": sampling}}))
    run = tmp_path / "run"
    args = ["train", str(tmp_path / "mine"), "--out", str(run), "--config", str(recipe)]
    result = runner.invoke(
        app, [*args, "--motion", "track", "--epochs", "1", "--val-fraction", "0"]
    )
    assert result.exit_code == 0, result.output
    model = GKAAN.from_pretrained(run / "last")
    assert model.motion_head is not None and float(model.motion_head.fitted) == 1.0
    assert model.config.motion_weight == 30.0  # the validated default weight
    assert float(model.motion_head.fps) == 25.0  # the training videos' frame rate
    assert float(model.motion_head.std.min()) > 0


def test_the_gm_stream_reads_each_video_at_its_own_frame_rate() -> None:
    # the same walk filmed at 25 and at 50 fps (1 cell per 0.16 s): the energy map's speeds
    # and drift are the same when each clip is read at its own rate, halved when the 50 fps
    # clip is taken for 25 fps; the fitted head then answers the same for both
    model, _ = fitted_model()
    walk25 = blob_clip([t // 4 for t in range(24)], channels=512)
    walk50 = blob_clip([t // 8 for t in range(48)], channels=512)
    speeds = slice(0, 2 * len(LAG_SECONDS) + 2)
    at25 = motion_descriptor(walk25, 25.0)[0, speeds]
    at50 = motion_descriptor(walk50, 50.0)[0, speeds]
    misread = motion_descriptor(walk50, 25.0)[0, speeds]
    assert torch.allclose(at25, at50, rtol=0.1, atol=0.02)
    moving = at25 > 0.1
    assert torch.allclose(misread[moving], at25[moving] / 2, rtol=0.1)
    with torch.inference_mode():
        gm25 = model.forward_heads(walk25, 25.0).stream_probs["gm"]
        gm50 = model.forward_heads(walk50, 50.0).stream_probs["gm"]
    assert gm25.argmax().item() == gm50.argmax().item() == 1
