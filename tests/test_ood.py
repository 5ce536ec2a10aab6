"""Results name their model; the out-of-distribution verdict: stored in the checkpoint, loaded
strictly, optional for older checkpoints, calibrated on training data, switched by the
threshold; the motion option touches nothing outside the heads."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import typer
from click.testing import Result
from rich.console import Console
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from gkaan_cli.cli import guarded
from gkaan_cli.commands.predict import predict
from gkaan_cli.commands.tables import predictions_table, verdict
from gkaan_cli.config import GKAANConfig, PreprocessConfig, SamplingConfig
from gkaan_cli.engine.calibrate import bank_rows
from gkaan_cli.engine.outputs import format_predictions
from gkaan_cli.engine.predict import Predictor
from gkaan_cli.errors import BadCheckpointError
from gkaan_cli.fileio import sha256_file
from gkaan_cli.model.gkaan import GKAAN
from gkaan_cli.model.ood import OODStats, clip_embedding, fit_ood
from gkaan_cli.model.precision import resolve_precision


def tiny_config() -> GKAANConfig:
    """A 3-class resnet18 model with tiny SRUs, short overlapping clips and small frames."""
    return GKAANConfig(
        num_classes=3,
        class_names=["boxing", "running", "waving"],
        backbone="resnet18",
        sru_hidden=32,
        sru_layers=1,
        sampling=SamplingConfig(clip_len=4, stride=2, max_clips=3),
        preprocess=PreprocessConfig(resize=(64, 64), crop=56),
    )


def run_cli(*args: str) -> Result:
    app = typer.Typer()
    app.callback()(lambda: None)
    app.command("predict")(guarded(predict))
    return CliRunner().invoke(app, ["predict", *args])


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny checkpoint without OOD statistics (as every checkpoint before them)."""
    torch.manual_seed(0)
    return GKAAN(tiny_config()).save_pretrained(tmp_path_factory.mktemp("plain") / "tiny")


@pytest.fixture(scope="module")
def with_ood(plain: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same weights plus OOD statistics whose bank is random embeddings."""
    model = GKAAN.from_pretrained(plain)
    torch.manual_seed(1)
    model.ood = OODStats(torch.randn(6, model.config.feature_channels), 2, 0.5, 0.6)
    return model.save_pretrained(tmp_path_factory.mktemp("ood") / "tiny")


def test_a_checkpoint_without_ood_statistics_loads_and_predicts_without_a_verdict(
    plain: Path, make_video: Callable[..., Path]
) -> None:
    model = GKAAN.from_pretrained(plain)
    assert model.ood is None
    prediction = Predictor(model).predict_video(make_video("a.mp4", num_frames=8))
    assert prediction.probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert prediction.ood_score is None and prediction.in_distribution is None
    assert all(c.ood_score is None and c.in_distribution is None for c in prediction.clips)
    assert verdict(prediction) == ""


def test_ood_statistics_are_saved_in_the_safetensors_and_loaded_back(with_ood: Path) -> None:
    tensors = load_file(with_ood / "model.safetensors")
    assert {"ood.bank", "ood.k", "ood.limit_video", "ood.limit_clip"} <= set(tensors)
    model = GKAAN.from_pretrained(with_ood)
    assert model.ood is not None
    assert int(model.ood.k) == 2 and float(model.ood.limit_clip) == pytest.approx(0.6)
    assert model.ood.bank.shape == (6, model.config.feature_channels)


def test_incomplete_or_misshapen_ood_statistics_are_refused(with_ood: Path, tmp_path: Path) -> None:
    for name, edit in {
        "missing": lambda t: t.pop("ood.k"),
        "unexpected": lambda t: t.update({"ood.extra": torch.zeros(1)}),
        "shape": lambda t: t.update({"ood.bank": torch.zeros(6, 7)}),
    }.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text((with_ood / "config.json").read_text())
        tensors = load_file(with_ood / "model.safetensors")
        edit(tensors)
        save_file(tensors, folder / "model.safetensors")
        with pytest.raises(BadCheckpointError, match="OOD statistics do not fit"):
            GKAAN.from_pretrained(folder)


def test_the_verdict_flips_with_the_threshold_and_no_ood_switches_it_off(
    with_ood: Path, make_video: Callable[..., Path]
) -> None:
    video = make_video("flip.mp4", num_frames=8)
    model = GKAAN.from_pretrained(with_ood)
    score = Predictor(model).predict_video(video).ood_score
    assert score is not None and score > 0
    strict = Predictor(model, ood_threshold=score * 0.9).predict_video(video)
    loose = Predictor(model, ood_threshold=score * 1.1).predict_video(video)
    assert strict.ood_score == pytest.approx(score) and strict.in_distribution is False
    assert loose.in_distribution is True
    assert verdict(strict).startswith(f"unknown (closest: {strict.top_k(1)[0][0]} ")
    assert verdict(loose) == ""
    clips = [c.in_distribution for c in strict.clips]
    assert all(v is not None for v in clips) and len(clips) == len(strict.clips)
    off = Predictor(model, ood=False).predict_video(video)
    assert off.ood_score is None and off.in_distribution is None
    assert off.model is not None and off.model["ood"] is None
    console = Console(width=300, record=True)
    console.print(predictions_table([strict]))
    assert "unknown (closest: " in console.export_text()


def test_the_cli_threshold_and_no_ood_options_reach_the_json(
    with_ood: Path, make_video: Callable[..., Path]
) -> None:
    video = make_video("cli.mp4", num_frames=8)
    low = run_cli(str(video), "-m", str(with_ood), "-f", "json", "--ood-threshold", "1e-6")
    assert low.exit_code == 0, low.output
    (record,) = json.loads(low.stdout)
    assert record["in_distribution"] is False and record["model"]["ood"]["threshold"] == 1e-6
    off = run_cli(str(video), "-m", str(with_ood), "-f", "json", "--no-ood")
    (record,) = json.loads(off.stdout)
    assert record["ood_score"] is None and record["in_distribution"] is None


def test_every_output_format_names_the_model(plain: Path, make_video: Callable[..., Path]) -> None:
    video = make_video("named.mp4", num_frames=8)
    prediction = Predictor(GKAAN.from_pretrained(plain)).predict_video(video)
    (record,) = json.loads(format_predictions([prediction], "json", clips=True))
    block = record["model"]
    assert block["name"] == str(plain) and block["kind"] == "folder"
    assert block["sha256"] == sha256_file(plain / "model.safetensors")
    assert block["classes"] == ["boxing", "running", "waving"] and block["num_classes"] == 3
    assert block["backbone"] == "resnet18" and block["sampling"]["clip_len"] == 4
    auto = resolve_precision("auto", torch.device("cpu"))  # the default: bf16 where native
    assert (block["device"], block["precision"]) == ("cpu", auto)
    (line,) = format_predictions([prediction], "jsonl").splitlines()
    assert json.loads(line)["model"] == block
    header, row = format_predictions([prediction], "csv").splitlines()
    columns = dict(zip(header.split(","), row.split(","), strict=True))
    assert columns["model"] == str(plain) and columns["model_sha256"] == block["sha256"]
    assert prediction.processed_frames == 8


def test_fit_ood_calibrates_limits_on_held_out_groups() -> None:
    torch.manual_seed(0)
    centre = torch.randn(16)
    embeddings = centre + 0.1 * torch.randn(12, 16)
    videos = torch.arange(12) // 3
    groups = videos // 2  # two videos per person
    stats = OODStats.from_state(fit_ood(embeddings, videos, groups, k=2, margin=1.1))
    # every training video scored against the other persons sits below the limit
    for person in range(2):
        held = groups == person
        other = OODStats(embeddings[~held], 2, float(stats.limit_video), 1.0)
        for v in videos[held].unique():
            assert other.video_score(embeddings[videos == v]) <= 1 / 1.1 + 1e-6
    assert stats.video_score(-centre.expand(3, 16)) > 1  # far from every training clip
    with pytest.raises(ValueError, match="two training videos"):
        fit_ood(embeddings[:3], torch.zeros(3))
    with pytest.raises(ValueError, match="two groups"):  # no groups: no calibration
        fit_ood(embeddings, videos)
    with pytest.raises(ValueError, match="two groups"):
        fit_ood(embeddings, videos, torch.zeros(12))


def test_clip_embedding_is_the_time_mean_gp_feature() -> None:
    maps = torch.randn(2, 5, 8, 3, 3)
    assert torch.allclose(clip_embedding(maps), maps.mean(dim=(1, 3, 4)))


def test_the_motion_option_changes_nothing_outside_the_heads() -> None:
    paper = GKAANConfig(num_classes=101)
    plain = GKAAN(paper)
    moving = GKAAN(paper.model_copy(update={"motion": "diff"}))
    assert sum(p.numel() for p in plain.parameters()) == 48_943_472
    outside = {k: v.shape for k, v in plain.state_dict().items() if not k.startswith("srus.")}
    assert {k: v.shape for k, v in moving.state_dict().items() if k in outside} == outside
    extra = set(moving.state_dict()) - set(plain.state_dict())
    assert "motion.weight" in extra and all(k.startswith(("motion.", "srus.")) for k in extra)
    maps = torch.randn(2, 4, 512, 7, 7)
    a, b = plain.forward_heads(maps), moving.forward_heads(maps)
    assert a.probs.shape == b.probs.shape == (2, 101)
    assert {k: v.shape for k, v in a.attention.items()} == {
        k: v.shape for k, v in b.attention.items()
    }


def test_the_bank_keeps_at_most_max_clips_per_video_spread_over_its_clips() -> None:
    # every window is tested (45 of a 690-frame video), the bank keeps 8 of them, evenly
    videos = torch.tensor([0] * 45 + [1] * 3)
    rows = bank_rows(videos, 8).tolist()
    assert rows == [0, 6, 13, 19, 25, 31, 38, 44, 45, 46, 47]
