"""Training configuration: :class:`TrainConfig`, the paper's named recipes, config files.

A run's settings come from a named recipe (docs/protocol.md#recipes), then a YAML or JSON file,
then command-line overrides, each layer replacing the keys it names (``model`` is merged key
by key). The result is validated by pydantic and saved as ``<run>/train_config.json``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..config import BackboneName, GKAANConfig, PreprocessConfig, SamplingConfig
from ..data.sources import SplitOptions
from ..errors import MissingDependencyError, UsageError, validation_problems

__all__ = [
    "CONFIG_NAME",
    "DEFAULT_RECIPE",
    "OWN_RECIPE",
    "OWN_TRUNK",
    "RECIPES",
    "Amp",
    "ModelInputs",
    "TrainConfig",
    "load_train_config",
    "lr_at",
    "merge_overrides",
]

#: The run folder's saved TrainConfig.
CONFIG_NAME = "train_config.json"
#: Autocast precision of training (``fp16`` needs CUDA; ``bf16`` also runs on CPU).
Amp = Literal["none", "bf16", "fp16"]

#: GKAANConfig fields that come from the dataset, never from a recipe.
_DATA_FIELDS = ("num_classes", "class_names")
_SPLIT = SplitOptions()


@dataclass(frozen=True)
class ModelInputs:
    """What a run's model takes in, known before the data gives its classes: the trunk, how
    clips are sampled and how frames are preprocessed (what preparing the data needs).

    Attributes:
        backbone: the CNN trunk (with a frozen trunk, the conv maps cached).
        sampling: how clips are drawn from a video.
        preprocess: frame size and normalisation.
    """

    backbone: BackboneName
    sampling: SamplingConfig
    preprocess: PreprocessConfig


class TrainConfig(BaseModel):
    """Everything a training run needs besides the data (docs/protocol.md#recipes).

    Attributes:
        recipe: the named recipe this config started from (informative).
        model: :class:`~gkaan_cli.config.GKAANConfig` fields (backbone, fusion, sru_hidden,
            dropout, sampling, ...); ``num_classes``/``class_names`` come from the data.
        pretrained: start the backbone from pretrained weights (``backbone_weights``, else
            ImageNet).
        backbone_weights: where the pretrained trunk comes from: ``None`` (ImageNet), a local
            torchvision/ImageNet weights file, a GKAAN checkpoint or run folder, or a
            registered model name (its trunk). The ``own`` recipe uses the default model's.
        init_from: start from this trained GKAAN (registry name, checkpoint or run folder,
            Hub id): every tensor whose name and shape fit is copied, the rest (e.g. the
            classifier rows for other classes) start fresh. Its architecture replaces the
            recipe's (options given on the command line still apply), and its trunk is the
            ``backbone_weights`` unless those are given.
        frozen_backbone: train the heads on cached conv maps (``prepare --features``); the
            backbone never runs (docs/protocol.md#frozen-backbone).
        optimizer: ``adam`` (paper) or ``sgd`` (reference code, with ``momentum``).
        lr: base learning rate.
        schedule: ``constant``; ``steps`` (``lr_steps``: (epoch, factor) pairs, from that
            0-based epoch on the rate is ``lr * factor``); ``cosine`` (per optimizer step,
            from ``lr`` to 0 over ``epochs``); ``cosine_epoch`` (the same curve, stepped once
            per epoch, as the authors' code does).
        batch_size: clips per optimizer step (over all processes).
        accumulate: each batch runs as this many micro-batches (gradient accumulation: same
            update, less memory).
        amp: autocast precision (``fp16`` needs CUDA; ``bf16`` also runs on CPU).
        eval_every: evaluate (and save ``best/``) every this many epochs, and after the last.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        split_by, val_fraction, test_fraction: how ``prepare`` splits a raw source (ignored
            when the data is already prepared).
    """

    model_config = ConfigDict(extra="forbid")

    recipe: str | None = None
    model: dict[str, Any] = Field(default_factory=dict)
    pretrained: bool = True
    backbone_weights: str | None = None
    init_from: str | None = None
    frozen_backbone: bool = False
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = Field(1e-5, gt=0)
    schedule: Literal["constant", "steps", "cosine", "cosine_epoch"] = "steps"
    lr_steps: list[tuple[int, float]] = Field(default_factory=list)
    momentum: float = Field(0.9, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(28, ge=1)
    accumulate: int = Field(1, ge=1)
    epochs: int = Field(16, ge=1)
    seed: int = 0
    amp: Amp = "none"
    num_workers: int = Field(0, ge=0)
    eval_every: int = Field(1, ge=1)
    device: str = "auto"
    split_by: str | None = _SPLIT.split_by
    val_fraction: float = Field(_SPLIT.val_fraction, ge=0, lt=1)
    test_fraction: float = Field(_SPLIT.test_fraction, ge=0, lt=1)

    @field_validator("model")
    @classmethod
    def _valid_model(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in _DATA_FIELDS:
            if name in value:
                raise ValueError(f"model.{name} comes from the dataset; remove it")
        GKAANConfig(num_classes=1, **value)  # raises ValidationError naming the bad field
        return value

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.batch_size < self.accumulate:
            raise ValueError(
                f"batch_size ({self.batch_size}) must be at least accumulate ({self.accumulate})"
            )
        return self

    def model_inputs(self) -> ModelInputs:
        """The model's trunk, sampling and preprocessing, as :meth:`model_config_for` gives
        them, without a dataset's classes."""
        fields = GKAANConfig.model_fields
        return ModelInputs(
            backbone=self.model.get("backbone", fields["backbone"].default),
            sampling=SamplingConfig.model_validate(
                self.model.get("sampling", fields["sampling"].default)
            ),
            preprocess=PreprocessConfig.model_validate(
                self.model.get("preprocess", fields["preprocess"].default)
            ),
        )

    def model_config_for(self, class_names: list[str]) -> GKAANConfig:
        """The model's config for a dataset with these classes."""
        return GKAANConfig(num_classes=len(class_names), class_names=class_names, **self.model)

    def split_options(self) -> SplitOptions:
        """How ``prepare`` splits a raw source for this run (``seed`` is the run's seed)."""
        return SplitOptions(
            split_by=self.split_by,
            val_fraction=self.val_fraction,
            test_fraction=self.test_fraction,
            seed=self.seed,
        )


#: The registered model whose trunk the ``own`` recipe starts from (weights/registry.json).
OWN_TRUNK = "kth-lite0"
#: The ``own`` recipe, chosen by leave-one-person-out validation (docs/protocol.md#own-recipe).
OWN_RECIPE: dict[str, Any] = {
    "model": {
        "backbone": "efficientnet_lite0",
        "sa_variant": "reference",  # chosen by validation: docs/protocol.md#own-recipe
        "sru_layers": 2,
        "sru_hidden": 256,
        "dropout": 0.5,
        # tested on every window (at most 64): docs/protocol.md#test-windows
        "sampling": {
            "mode": "dense",
            "clip_len": 30,
            "stride": 15,
            "max_clips": 8,
            "test_max_clips": 64,
        },
    },
    "backbone_weights": OWN_TRUNK,
    "frozen_backbone": True,
    "optimizer": "adam",
    "lr": 1e-3,
    "schedule": "constant",
    "batch_size": 8,
    "epochs": 10,
}

_PAPER_DENSE = {"mode": "dense", "clip_len": 30, "stride": 15, "max_clips": 20}

# UCF101/HMDB51 (docs/protocol.md#recipes): Adam, batch 28, 1e-5 for 8 epochs then 1e-6 for 8.
_PAPER_UCF_HMDB: dict[str, Any] = {
    "model": {"backbone": "resnet34", "dropout": 0.6, "sampling": _PAPER_DENSE},
    "optimizer": "adam",
    "lr": 1e-5,
    "schedule": "steps",
    "lr_steps": [(8, 0.1)],
    "batch_size": 28,
    "epochs": 16,
}

#: The named training recipes (``--recipe``), each a mapping of TrainConfig fields.
RECIPES: dict[str, dict[str, Any]] = {
    "ucf101": _PAPER_UCF_HMDB,
    "hmdb51": _PAPER_UCF_HMDB,
    # Kinetics: batch 64, lr 1e-3, 25 epochs, 3 segments x 4 frames.
    "kinetics": {
        "model": {
            "backbone": "resnet34",
            "dropout": 0.6,
            "sampling": {"mode": "segments", "num_segments": 3, "frames_per_segment": 4},
        },
        "optimizer": "adam",
        "lr": 1e-3,
        "schedule": "constant",
        "batch_size": 64,
        "epochs": 25,
    },
    # The authors' public code (docs/protocol.md#reference-recipe): SA/LA reference variants,
    # the `sru` package's cell, Dropout(0.5) before each classifier, logits averaging,
    # dropout 0.5, SGD momentum 0.9, lr 1e-3 with a per-epoch cosine, weight decay 1e-5,
    # batch 30, 18 epochs, 12 segments of one frame, a random 224 crop and flip per frame;
    # tested on 10 random clips per video, logits averaged.
    "reference": {
        "model": {
            "backbone": "resnet34",
            "sa_variant": "reference",
            "la_variant": "reference",
            "sru_variant": "authors",
            "head_dropout": 0.5,
            "fuse": "logits",
            "dropout": 0.5,
            "preprocess": {"train_crop": "random", "train_per_frame": True},
            "clip_average": "logits",
            "sampling": {
                "mode": "segments",
                "num_segments": 12,
                "frames_per_segment": 1,
                "test_clips": 10,
            },
        },
        "optimizer": "sgd",
        "momentum": 0.9,
        "lr": 1e-3,
        "schedule": "cosine_epoch",
        "weight_decay": 1e-5,
        "batch_size": 30,
        "epochs": 18,
    },
    # Small and CPU-friendly: heads only on cached EfficientNet-Lite0 maps, short clips.
    "quick": {
        "model": {
            "backbone": "efficientnet_lite0",
            "sru_layers": 1,
            "sru_hidden": 256,
            "dropout": 0.3,
            "sampling": {"mode": "dense", "clip_len": 16, "stride": 8, "max_clips": 6},
        },
        "frozen_backbone": True,
        "optimizer": "adam",
        "lr": 1e-3,
        "schedule": "constant",
        "batch_size": 8,
        "epochs": 10,
    },
    # Your own videos (docs/protocol.md#own-recipe): transfer learning from the default
    # model's frozen EfficientNet-Lite0 trunk, heads trained on cached maps; offline, CPU.
    "own": OWN_RECIPE,
}
#: The recipe used when neither ``--recipe`` nor the config file names one.
DEFAULT_RECIPE = "own"


def merge_overrides(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``overrides``; nested dicts (``model``, ``sampling``) merge by key."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_overrides(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_file(path: Path) -> dict[str, Any]:
    """A config file's mapping (JSON, or YAML when PyYAML is installed)."""
    if not path.is_file():
        raise UsageError(f"{path}: config file not found")
    text = path.read_text()
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as error:
            raise MissingDependencyError(
                f"{path}: reading YAML needs PyYAML (pip install pyyaml); or write the config "
                "as JSON"
            ) from error
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise UsageError(f"{path}: not valid YAML ({error})") from error
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise UsageError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping of settings at the top level")
    return data


def load_train_config(
    recipe: str | None = None,
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainConfig:
    """Build a :class:`TrainConfig`: recipe, then file, then ``overrides``.

    Args:
        recipe: a key of :data:`RECIPES`; default the file's ``recipe`` key, else
            :data:`DEFAULT_RECIPE`.
        config_file: a ``.json``, ``.yaml`` or ``.yml`` file of TrainConfig fields.
        overrides: settings given on the command line (``None`` values are ignored).
    """
    file_data = _read_file(Path(config_file)) if config_file is not None else {}
    name = recipe or file_data.get("recipe") or DEFAULT_RECIPE
    if name not in RECIPES:
        raise UsageError(f"unknown recipe {name!r}; choose one of {', '.join(sorted(RECIPES))}")
    settings = merge_overrides(RECIPES[name], file_data)
    cli = {key: value for key, value in (overrides or {}).items() if value is not None}
    source = cli.get("init_from") or settings.get("init_from")
    if source is not None:
        settings = merge_overrides(settings, {"model": source_architecture(str(source))})
        if "backbone_weights" not in cli and "backbone_weights" not in file_data:
            settings["backbone_weights"] = str(source)
    settings = merge_overrides(settings, cli)
    settings["recipe"] = name
    try:
        return TrainConfig.model_validate(settings)
    except ValidationError as error:
        where = str(config_file) if config_file is not None else f"recipe {name}"
        problems = validation_problems(error)
        raise UsageError(f"{where}: invalid training config ({problems})") from error


#: GKAANConfig fields a ``--from`` model passes on to the new one (its architecture).
ARCHITECTURE_FIELDS = (
    "backbone",
    "fusion",
    "sa_variant",
    "la_variant",
    "la_hidden",
    "sru_variant",
    "sru_use_tanh",
    "sru_layers",
    "sru_hidden",
    "stream_weights",
    "fuse",
)


def source_architecture(spec: str) -> dict[str, Any]:
    """The architecture fields (:data:`ARCHITECTURE_FIELDS`) of the model ``spec`` names."""
    from ..model.checkpoint import read_checkpoint
    from ..model.locate import resolve_checkpoint

    config = read_checkpoint(resolve_checkpoint(spec))[0]
    return config.model_dump(mode="json", include=set(ARCHITECTURE_FIELDS))


def lr_at(config: TrainConfig, epoch: float) -> float:
    """Learning rate at (fractional, 0-based) ``epoch`` under ``config.schedule``."""
    if config.schedule in ("cosine", "cosine_epoch"):
        if config.schedule == "cosine_epoch":
            epoch = math.floor(epoch)
        return config.lr * 0.5 * (1.0 + math.cos(math.pi * min(epoch / config.epochs, 1.0)))
    factor = 1.0
    if config.schedule == "steps":
        for start, value in sorted(config.lr_steps):
            if epoch >= start:
                factor = value
    return config.lr * factor
