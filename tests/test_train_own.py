"""Training on your own videos: the default command, ``--from``, trunk weights, sampling checks."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import TINY_MODEL
from typer.testing import CliRunner

from gkaan_cli.cli import app
from gkaan_cli.commands.train import train_message
from gkaan_cli.config import SamplingConfig
from gkaan_cli.data.manifest import load_manifest
from gkaan_cli.data.prepare import PrepareOptions, prepare
from gkaan_cli.data.sources import SplitOptions
from gkaan_cli.engine.recipes import DEFAULT_RECIPE, OWN_TRUNK, load_train_config
from gkaan_cli.engine.train import RunStart, check_sampling, train
from gkaan_cli.errors import UsageError
from gkaan_cli.fileio import sha256_file
from gkaan_cli.model.backbones import build_backbone
from gkaan_cli.model.gkaan import GKAAN

runner = CliRunner()


def _folder(make_video: Callable[..., Path], root: str, classes: list[str], n: int = 3) -> Path:
    for c, label in enumerate(classes):
        for i in range(n):
            make_video(f"{root}/{label}/{label}_{i}.mp4", num_frames=12 + 2 * c + i)
    return Path(make_video("x.mp4").parent / root)


def _tiny(**overrides: Any) -> Any:
    settings = {
        "model": TINY_MODEL,
        "pretrained": False,
        "frozen_backbone": False,
        "batch_size": 4,
        "epochs": 1,
        "val_fraction": 0.0,
        **overrides,
    }
    return load_train_config("quick", None, settings)


@pytest.mark.slow
def test_default_command_trains_heads_on_the_default_models_trunk_and_writes_best(
    make_video: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GKAAN_CACHE", str(tmp_path / "cache"))
    for label in ("left", "right"):
        for i in range(3):
            make_video(f"mine/{label}/{label}_{i}.mp4", num_frames=30, size=(32, 32))
    run = tmp_path / "runs" / "mine"
    result = runner.invoke(
        app, ["train", str(tmp_path / "mine"), "--out", str(run), "--epochs", "1"]
    )
    assert result.exit_code == 0, result.output
    assert DEFAULT_RECIPE == "own"
    assert "epoch 1/1" in result.output and "clips/s" in result.output
    assert f"saved to {run / 'best'}" in result.output
    assert f"report: {run / 'report.html'}" in result.output  # the page of the run
    assert '<section id="curves">' in (run / "report.html").read_text(encoding="utf-8")
    # each video its own group: a verdict calibrated on near-duplicates would call new
    # people "unknown", so the run says why there is none
    assert "no out-of-distribution verdict" in result.output
    model = GKAAN.from_pretrained(run / "best")
    assert model.ood is None
    assert model.config.backbone == "efficientnet_lite0"
    assert model.config.class_names == ["left", "right"]
    trunk = GKAAN.from_pretrained(OWN_TRUNK).backbone.state_dict()
    ours = model.backbone.state_dict()
    assert all(torch.equal(ours[key], trunk[key].to(ours[key].dtype)) for key in trunk)
    # evaluate takes the same DATA, reuses the run's cached maps, and writes next to the run
    result = runner.invoke(app, ["evaluate", str(run / "best"), str(tmp_path / "mine")])
    assert result.exit_code == 0, result.output
    report = json.loads((run / "eval" / "test" / "report.json").read_text())
    assert report["inputs"] == "features"
    assert report["model"]["classes"] == ["left", "right"]
    assert report["model"]["sha256"] == sha256_file(run / "best" / "model.safetensors")
    assert report["data"]["source"] == str(tmp_path / "mine")
    assert "top5" not in report["video"]["fused"]
    page = (run / "eval" / "test" / "report.html").read_text(encoding="utf-8")  # same style
    assert '<section id="per-class">' in page and "left" in page and "None" not in page
    # predict and visualize name the model and say that it cannot call a video unknown
    video = str(tmp_path / "mine" / "left" / "left_0.mp4")
    for args in (["predict", video], ["visualize", video, "-o", str(tmp_path / "v.mp4")]):
        result = runner.invoke(app, [*args, "--model", str(run / "best")])
        assert result.exit_code == 0, result.output
        assert f"model: {run / 'best'}" in result.output
        assert "note: out-of-distribution verdict: no verdict" in result.output
        assert "--split-by" in result.output


@pytest.mark.slow
def test_from_a_model_with_other_classes_reuses_what_fits_and_names_the_new_tensors(
    make_video: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GKAAN_CACHE", str(tmp_path / "cache"))
    two = _folder(make_video, "two", ["a", "b"])
    three = _folder(make_video, "three", ["a", "b", "c"])
    first = train(two, tmp_path / "first", _tiny())
    assert first.best is not None
    starts: list[RunStart] = []
    small = {"preprocess": TINY_MODEL["preprocess"], "sampling": TINY_MODEL["sampling"]}
    config = _tiny(init_from=str(first.best), model=small)
    assert config.model["sru_hidden"] == 16  # the architecture comes from the --from model
    second = train(three, tmp_path / "second", config, on_start=starts.append)
    (start,) = starts
    assert start.new == sorted(
        f"heads.{s}.{p}" for s in ("gs", "gl", "gp") for p in ("weight", "bias")
    )
    source = GKAAN.from_pretrained(first.best).state_dict()
    # the network's tensors; the source's OOD statistics describe its own training data, and
    # the new run computes its own at the end
    network = [name for name in source if not name.startswith("ood.")]
    assert start.reused == len(network) - len(start.new)
    model = GKAAN.from_pretrained(tmp_path / "second" / "last")
    assert model.config.num_classes == 3 and second.best is not None


@pytest.mark.slow
def test_a_cache_prepared_for_other_sampling_stops_naming_the_prepare_flags(
    make_video: Callable[..., Path], tmp_path: Path
) -> None:
    source = _folder(make_video, "vids", ["a", "b"])
    prepared = tmp_path / "prepared"
    prepare(
        source,
        prepared,
        PrepareOptions(
            split=SplitOptions(val_fraction=0.0, test_fraction=0.0),
            sampling=SamplingConfig(mode="dense", clip_len=4, stride=4, max_clips=2),
            resize=(64, 64),
        ),
    )
    segments = {"mode": "segments", "num_segments": 3, "frames_per_segment": 2}
    config = _tiny(model={**TINY_MODEL, "sampling": segments})
    with pytest.raises(UsageError) as error:
        train(prepared, tmp_path / "run", config)
    message = train_message(error.value) or ""  # gkaan train's words, with the flags
    assert "\n" not in message
    assert "--sampling segments --num-segments 3 --frames-per-segment 2" in message
    # the other way out, a --config file holding the prepared sampling, trains
    config_file = tmp_path / "as-prepared.json"
    config_file.write_text(message.split("FILE holding ", 1)[1])
    tiny = {key: value for key, value in TINY_MODEL.items() if key != "sampling"}
    as_prepared = load_train_config("quick", config_file, {"model": tiny})
    sampling = as_prepared.model_config_for(["a", "b"]).sampling
    assert sampling.describe() == load_manifest(prepared).settings.sampling.describe()
    check_sampling(load_manifest(prepared), sampling, prepared)
    # a sampling the cached frames can serve is used as the recipe says
    fewer = {"mode": "dense", "clip_len": 4, "stride": 4, "max_clips": 1}
    result = train(prepared, tmp_path / "ok", _tiny(model={**TINY_MODEL, "sampling": fewer}))
    assert GKAAN.from_pretrained(result.last).config.sampling.max_clips == 1


def test_a_gkaan_checkpoint_serves_as_backbone_weights(tmp_path: Path) -> None:
    model = GKAAN(load_train_config("quick", None, {"model": TINY_MODEL}).model_config_for(["a"]))
    model.save_pretrained(tmp_path / "ckpt")
    trunk = build_backbone("resnet18", pretrained=tmp_path / "ckpt").state_dict()
    expected = model.backbone.state_dict()
    assert all(torch.equal(trunk[key], expected[key]) for key in expected)
    with pytest.raises(Exception, match="resnet18"):
        build_backbone("resnet34", pretrained=tmp_path / "ckpt")


@pytest.mark.slow
def test_training_with_groups_calibrates_an_ood_verdict(
    make_video: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GKAAN_CACHE", str(tmp_path / "cache"))
    for label in ("left", "right"):
        for person in range(3):
            make_video(f"mine/{label}/p{person}_{label}.mp4", num_frames=30, size=(32, 32))
    run = tmp_path / "runs" / "grouped"
    options = ["--split-by", r"p(\d)_", "--val-fraction", "0", "--epochs", "1"]
    result = runner.invoke(app, ["train", str(tmp_path / "mine"), "--out", str(run), *options])
    assert result.exit_code == 0, result.output
    assert "no out-of-distribution verdict" not in result.output
    model = GKAAN.from_pretrained(run / "best")
    assert model.ood is not None and float(model.ood.limit_video) > 0  # never x / 0
    assert model.ood.bank.shape[1] == 1280  # Lite0 GP embeddings of the training clips
