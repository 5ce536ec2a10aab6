"""Checkpoint directories: ``config.json`` + ``model.safetensors`` (DESIGN.md section 6).

Saving is atomic (a temporary directory beside the target, then a rename). Loading is
strict and never unpickles: pickle files are refused, every tensor key and shape must match.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from pydantic import ValidationError

from .config import GKAANConfig
from .errors import PICKLE_REASON, PICKLE_SUFFIXES, BadCheckpointError, UsageError
from .fileio import make_temp_dir
from .hub import CONFIG_FILE, WEIGHTS_FILE
from .model.gkaan import GKAAN

__all__ = ["load_checkpoint", "save_checkpoint"]

_MAX_NAMED = 5


def save_checkpoint(
    model: GKAAN,
    directory: str | Path,
    *,
    dtype: torch.dtype | None = None,
    extra_files: dict[str, str] | None = None,
) -> Path:
    """Write ``model`` to ``directory`` atomically, replacing an older checkpoint there.

    Args:
        model: the model to save.
        directory: the checkpoint directory to create or replace.
        dtype: store floating tensors in this dtype (e.g. ``torch.float16`` for small
            shipped models); default keeps the model's dtype.
        extra_files: more text files to write beside the config (name -> content), such as
            a README.md model card.
    """
    from safetensors.torch import save

    directory = Path(directory)
    if directory.exists() and not _replaceable(directory):
        raise UsageError(
            f"{directory}: exists and is not a gkaan checkpoint directory; will not overwrite it"
        )
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(directory)
    try:
        state = {
            key: (value.to(dtype) if dtype is not None and value.is_floating_point() else value)
            .detach()
            .cpu()
            .contiguous()
            for key, value in model.state_dict().items()
        }
        # safetensors' save_file creates the file 0600; bytes written by Python get 0666 & ~umask.
        (tmp / WEIGHTS_FILE).write_bytes(save(state, metadata={"format": "pt"}))
        (tmp / CONFIG_FILE).write_text(model.config.model_dump_json(indent=2) + "\n")
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text)
        if directory.exists():
            old = make_temp_dir(directory)
            directory.replace(old / directory.name)
            tmp.replace(directory)
            shutil.rmtree(old)
        else:
            tmp.replace(directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return directory


def load_checkpoint(directory: str | Path) -> GKAAN:
    """Load a checkpoint directory into a :class:`GKAAN` in eval mode (strict).

    Raises:
        BadCheckpointError: a pickle file, a missing or invalid ``config.json``, a missing
            or unreadable ``model.safetensors``, missing/unexpected tensors or wrong shapes.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    if directory.suffix.lower() in PICKLE_SUFFIXES:
        raise BadCheckpointError(directory, PICKLE_REASON)
    if not directory.is_dir():
        raise BadCheckpointError(
            directory, f"not a checkpoint directory (expected {CONFIG_FILE} + {WEIGHTS_FILE})"
        )
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    if not weights_path.is_file():
        pickles = sorted(p.name for p in directory.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
        if pickles:
            raise BadCheckpointError(directory / pickles[0], PICKLE_REASON)
        raise BadCheckpointError(weights_path, "missing")
    if not config_path.is_file():
        raise BadCheckpointError(config_path, "missing")
    try:
        config = GKAANConfig.model_validate_json(config_path.read_text())
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in error.errors()
        )
        raise BadCheckpointError(config_path, f"invalid config ({problems})") from error
    try:
        tensors = load_file(weights_path)
    except (SafetensorError, OSError) as error:
        raise BadCheckpointError(weights_path, f"unreadable safetensors file ({error})") from error
    model = GKAAN(config)
    expected = model.state_dict()
    _check_keys(weights_path, set(expected), set(tensors))
    for key, value in tensors.items():
        if value.shape != expected[key].shape:
            raise BadCheckpointError(
                weights_path,
                f"tensor {key} has shape {tuple(value.shape)}, "
                f"the config needs {tuple(expected[key].shape)}",
            )
        if value.is_floating_point():
            tensors[key] = value.to(expected[key].dtype)
    model.load_state_dict(tensors, strict=True)
    return model.eval()


def _replaceable(directory: Path) -> bool:
    """An empty directory or an older checkpoint may be replaced; anything else may not."""
    return directory.is_dir() and (
        (directory / CONFIG_FILE).is_file() or not any(directory.iterdir())
    )


def _check_keys(path: Path, expected: set[str], found: set[str]) -> None:
    """Raise naming the missing and unexpected tensor keys, if any."""
    problems = []
    for label, keys in (("missing", expected - found), ("unexpected", found - expected)):
        if keys:
            names = sorted(keys)
            more = f" and {len(names) - _MAX_NAMED} more" if len(names) > _MAX_NAMED else ""
            problems.append(f"{label} tensors {', '.join(names[:_MAX_NAMED])}{more}")
    if problems:
        raise BadCheckpointError(path, "; ".join(problems))
