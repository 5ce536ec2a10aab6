"""Training recipes, config files and overrides, and the learning-rate schedule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gkaan_cli.engine.recipes import RECIPES, TrainConfig, load_train_config, lr_at
from gkaan_cli.errors import MissingDependencyError, UsageError


def test_paper_recipe_is_adam_batch_28_lr_1e5_then_1e6_over_16_epochs() -> None:
    config = load_train_config("ucf101")
    assert (config.optimizer, config.batch_size, config.epochs) == ("adam", 28, 16)
    assert [lr_at(config, e) for e in (0, 7.9, 8, 15)] == pytest.approx([1e-5, 1e-5, 1e-6, 1e-6])
    model = config.model_config_for(["a", "b"])
    assert model.dropout == 0.6
    assert (model.sampling.mode, model.sampling.clip_len, model.sampling.stride) == (
        "dense",
        30,
        15,
    )
    assert model.sampling.max_clips == 20
    assert load_train_config("hmdb51").model_dump(exclude={"recipe"}) == config.model_dump(
        exclude={"recipe"}
    )


def test_kinetics_and_reference_recipes_use_segment_sampling() -> None:
    kinetics = load_train_config("kinetics")
    assert (kinetics.batch_size, kinetics.lr, kinetics.epochs) == (64, 1e-3, 25)
    assert kinetics.model_config_for(["a"]).sampling.frames_per_clip == 12
    reference = load_train_config("reference")
    assert (reference.optimizer, reference.momentum, reference.weight_decay) == ("sgd", 0.9, 1e-5)
    assert reference.model_config_for(["a"]).sampling.frames_per_clip == 12
    assert lr_at(reference, 0) == pytest.approx(1e-3)
    assert lr_at(reference, reference.epochs / 2) == pytest.approx(5e-4)
    assert lr_at(reference, reference.epochs) == pytest.approx(0.0)


def test_quick_recipe_trains_heads_only() -> None:
    assert RECIPES["quick"]["frozen_backbone"] is True
    assert load_train_config("quick").frozen_backbone


def test_command_line_overrides_beat_the_file_which_beats_the_recipe(tmp_path: Path) -> None:
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"recipe": "kinetics", "lr": 0.5, "model": {"sru_hidden": 64}}))
    config = load_train_config(
        None, path, {"lr": 0.25, "epochs": None, "model": {"fusion": "late"}}
    )
    assert config.recipe == "kinetics"
    assert (config.lr, config.epochs, config.batch_size) == (0.25, 25, 64)
    model = config.model_config_for(["a", "b", "c"])
    assert (model.sru_hidden, model.fusion, model.num_classes) == (64, "late", 3)
    assert model.sampling.mode == "segments"  # merged key by key, not replaced


def test_yaml_config_file_is_read_when_pyyaml_is_installed(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("recipe: quick\nepochs: 3\n")
    try:
        import yaml  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependencyError, match="JSON"):
            load_train_config(None, path)
    else:
        assert load_train_config(None, path).epochs == 3


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"lr": -1.0}, "lr"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"model": {"fusion": "middle"}}, "fusion"),
        ({"model": {"num_classes": 3}}, "num_classes"),
        ({"batch_size": 2, "accumulate": 4}, "accumulate"),
        ({"no_such_setting": 1}, "no_such_setting"),
    ],
)
def test_invalid_settings_are_refused_naming_the_setting(
    overrides: dict[str, object], problem: str
) -> None:
    with pytest.raises(UsageError, match=problem):
        load_train_config("quick", None, overrides)


def test_bad_config_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"missing\.json"):
        load_train_config(None, tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{nope")
    with pytest.raises(UsageError, match=r"broken\.json: not valid JSON"):
        load_train_config(None, broken)
    with pytest.raises(UsageError, match="unknown recipe 'paper'"):
        load_train_config("paper")


def test_config_round_trips_through_json() -> None:
    config = load_train_config("reference", None, {"seed": 7})
    assert TrainConfig.model_validate_json(config.model_dump_json()) == config


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_model_inputs_are_the_model_configs_trunk_sampling_and_preprocess(recipe: str) -> None:
    """What preparing the data uses (before the classes are known) is what the trained
    model is built with."""
    for overrides in ({}, {"model": {"backbone": "resnet18", "sampling": {"clip_len": 4}}}):
        config = load_train_config(recipe, None, overrides)
        inputs = config.model_inputs()
        model = config.model_config_for(["a", "b", "c"])
        assert (inputs.backbone, inputs.sampling, inputs.preprocess) == (
            model.backbone,
            model.sampling,
            model.preprocess,
        )
