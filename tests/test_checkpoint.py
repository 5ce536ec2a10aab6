"""Checkpoint directories: config.json + model.safetensors, strict and pickle-free."""

from __future__ import annotations

import json
import os
import pickle
import stat
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from gkaan_cli import GKAAN, GKAANConfig
from gkaan_cli.errors import BadCheckpointError, UsageError
from gkaan_cli.model.checkpoint import read_checkpoint, write_checkpoint

CONFIG = GKAANConfig(
    num_classes=3, class_names=["a", "b", "c"], backbone="resnet18", sru_hidden=8, la_hidden=4
)


@pytest.fixture(scope="module")
def model() -> GKAAN:
    torch.manual_seed(0)
    return GKAAN(CONFIG)


@pytest.fixture(scope="module")
def saved(model: GKAAN, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return model.save_pretrained(tmp_path_factory.mktemp("ckpt") / "model")


def copy_with_tensors(saved: Path, target: Path, tensors: dict[str, torch.Tensor]) -> Path:
    target.mkdir()
    (target / "config.json").write_text((saved / "config.json").read_text())
    save_file(tensors, target / "model.safetensors")
    return target


class _Trap:
    """Unpickling this touches a marker file: proof that a loader unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.marker,))


def test_round_trip_is_bit_exact(model: GKAAN, saved: Path) -> None:
    assert sorted(p.name for p in saved.iterdir()) == ["config.json", "model.safetensors"]
    loaded = GKAAN.from_pretrained(saved)
    assert loaded.config == CONFIG and not loaded.training
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    for key, value in original.items():
        assert torch.equal(value, restored[key]), key


def test_checkpoint_files_are_read_without_the_model_class(model: GKAAN, saved: Path) -> None:
    config, tensors = read_checkpoint(saved)
    assert config == CONFIG
    assert tensors.keys() == model.state_dict().keys()
    assert torch.equal(tensors["heads.gp.weight"], model.heads["gp"].weight.detach())


def test_config_json_is_the_full_readable_config(saved: Path) -> None:
    config = json.loads((saved / "config.json").read_text())
    assert config["class_names"] == ["a", "b", "c"]
    assert config["preprocess"]["crop"] == 224 and config["sampling"]["clip_len"] == 30


def test_fp16_checkpoint_loads_as_float32(model: GKAAN, tmp_path: Path) -> None:
    path = model.save_pretrained(tmp_path / "half", dtype=torch.float16)
    assert load_file(path / "model.safetensors")["heads.gp.weight"].dtype == torch.float16
    loaded = GKAAN.from_pretrained(path)
    weight = loaded.heads["gp"].weight
    assert weight.dtype == torch.float32
    torch.testing.assert_close(weight, model.heads["gp"].weight.half().float(), atol=0, rtol=0)


def test_saving_replaces_an_older_checkpoint_and_leaves_no_temp_dirs(
    model: GKAAN, tmp_path: Path
) -> None:
    target = tmp_path / "model"
    write_checkpoint(target, CONFIG, model.state_dict(), extra_files={"README.md": "old card"})
    write_checkpoint(target, CONFIG, model.state_dict(), extra_files={"README.md": "new card"})
    assert (target / "README.md").read_text() == "new card"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    GKAAN.from_pretrained(target)


def test_saved_checkpoint_has_the_permissions_of_a_normal_folder_and_files(
    model: GKAAN, tmp_path: Path
) -> None:
    old = os.umask(0o027)
    try:
        target = model.save_pretrained(tmp_path / "model")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o750
    for name in ("config.json", "model.safetensors"):
        assert stat.S_IMODE((target / name).stat().st_mode) == 0o640


def test_a_training_run_folder_loads_its_best_checkpoint_despite_its_state_file(
    model: GKAAN, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    model.save_pretrained(run / "best")
    torch.save({"epoch": 1}, run / "state.pt")  # the run's training state is not a model
    loaded = GKAAN.from_pretrained(run)
    torch.testing.assert_close(loaded.state_dict(), model.state_dict(), atol=0, rtol=0)


def test_saving_refuses_to_overwrite_a_directory_that_is_not_a_checkpoint(
    model: GKAAN, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="not a gkaan checkpoint"):
        model.save_pretrained(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_pickle_file_is_refused_without_unpickling(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    weights = tmp_path / "model.pth"
    weights.write_bytes(pickle.dumps(_Trap(marker)))
    with pytest.raises(BadCheckpointError, match=r"pickle.*execute arbitrary code") as info:
        GKAAN.from_pretrained(weights)
    assert str(weights) in str(info.value)
    with pytest.raises(BadCheckpointError, match=r"model\.pth: pickle") as info:
        GKAAN.from_pretrained(tmp_path)
    assert not marker.exists()


def test_missing_and_unexpected_tensors_are_named(saved: Path, tmp_path: Path) -> None:
    tensors = load_file(saved / "model.safetensors")
    del tensors["la.proj.weight"]
    tensors["extra.weight"] = torch.zeros(2)
    bad = copy_with_tensors(saved, tmp_path / "bad", tensors)
    with pytest.raises(BadCheckpointError) as info:
        GKAAN.from_pretrained(bad)
    message = str(info.value)
    assert "model.safetensors" in message
    assert "missing tensors la.proj.weight" in message
    assert "unexpected tensors extra.weight" in message


def test_shape_mismatch_is_named(saved: Path, tmp_path: Path) -> None:
    tensors = load_file(saved / "model.safetensors")
    tensors["heads.gp.bias"] = torch.zeros(7)
    bad = copy_with_tensors(saved, tmp_path / "bad", tensors)
    with pytest.raises(BadCheckpointError, match=r"heads\.gp\.bias has shape \(7,\)"):
        GKAAN.from_pretrained(bad)


def test_invalid_config_is_refused_naming_the_field(saved: Path, tmp_path: Path) -> None:
    bad = copy_with_tensors(saved, tmp_path / "bad", load_file(saved / "model.safetensors"))
    config = json.loads((bad / "config.json").read_text())
    config["num_classes"] = 0
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(BadCheckpointError, match=r"config\.json: invalid config \(num_classes"):
        GKAAN.from_pretrained(bad)


@pytest.mark.parametrize("missing", ["config.json", "model.safetensors"])
def test_missing_file_is_named(saved: Path, tmp_path: Path, missing: str) -> None:
    bad = copy_with_tensors(saved, tmp_path / "bad", load_file(saved / "model.safetensors"))
    (bad / missing).unlink()
    with pytest.raises(
        BadCheckpointError, match=rf"not a gkaan checkpoint: missing {missing}"
    ) as info:
        GKAAN.from_pretrained(bad)
    assert info.value.path == str(bad)


def test_corrupt_safetensors_is_refused(saved: Path, tmp_path: Path) -> None:
    bad = copy_with_tensors(saved, tmp_path / "bad", {})
    (bad / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(BadCheckpointError, match="unreadable safetensors"):
        GKAAN.from_pretrained(bad)
