"""Checkpoint folders on disk: ``config.json`` + ``model.safetensors``.

A checkpoint is a folder holding a serialised :class:`GKAANConfig` and the model's tensors;
this module reads and writes such folders without knowing the model class
(:meth:`GKAAN.save_pretrained <gkaan_cli.model.gkaan.GKAAN.save_pretrained>` and
``from_pretrained`` build on it). Writing is atomic (a temporary folder beside the target,
then a rename). Reading never unpickles: pickle files are refused.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from ..config import GKAANConfig
from ..errors import (
    PICKLE_REASON,
    PICKLE_SUFFIXES,
    BadCheckpointError,
    UsageError,
    validation_problems,
)
from ..fileio import make_temp_dir

if TYPE_CHECKING:
    import torch

__all__ = [
    "CHECKPOINT_FILES",
    "CONFIG_FILE",
    "RUN_SUBDIRS",
    "WEIGHTS_FILE",
    "checkpoint_dir",
    "read_checkpoint",
    "write_checkpoint",
]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
#: The only files a checkpoint is made of (also exactly what is downloaded and uploaded).
CHECKPOINT_FILES = (CONFIG_FILE, WEIGHTS_FILE)
#: Sub-folders of a training run that hold checkpoints, preferred first.
RUN_SUBDIRS = ("best", "last")


def checkpoint_dir(source: str | Path) -> Path:
    """The checkpoint folder that the local path ``source`` names: itself, the ``best/``
    (else ``last/``) folder of a training run, or the folder of a ``model.safetensors`` file.

    Raises:
        BadCheckpointError: a pickle file (never loaded: unpickling runs code), another
            file, a missing path, or a folder without ``config.json`` or ``model.safetensors``.
    """
    path = Path(source).expanduser()
    if not path.is_dir():
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise BadCheckpointError(path, PICKLE_REASON)
        if not path.is_file():
            raise BadCheckpointError(
                path, f"not found (expected a checkpoint folder: {CONFIG_FILE} + {WEIGHTS_FILE})"
            )
        if path.name != WEIGHTS_FILE:
            raise BadCheckpointError(
                path, f"expected a checkpoint folder ({CONFIG_FILE} + {WEIGHTS_FILE}), got a file"
            )
        path = path.parent
    if not (path / WEIGHTS_FILE).is_file():
        runs = [path / sub for sub in RUN_SUBDIRS if (path / sub / WEIGHTS_FILE).is_file()]
        path = runs[0] if runs else path
    missing = [name for name in CHECKPOINT_FILES if not (path / name).is_file()]
    if not missing:
        return path
    pickles = sorted(p.name for p in path.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles and WEIGHTS_FILE in missing:
        raise BadCheckpointError(path / pickles[0], PICKLE_REASON)
    raise BadCheckpointError(path, f"not a gkaan checkpoint: missing {', '.join(missing)}")


def read_checkpoint(source: str | Path) -> tuple[GKAANConfig, dict[str, torch.Tensor]]:
    """The validated config and the tensors of a checkpoint (see :func:`checkpoint_dir` for
    what ``source`` may name). Tensors keep their stored dtype.

    Raises:
        BadCheckpointError: what :func:`checkpoint_dir` refuses, an invalid ``config.json``
            or an unreadable ``model.safetensors``.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = checkpoint_dir(source)
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    try:
        config = GKAANConfig.model_validate_json(config_path.read_bytes())
    except ValidationError as error:
        reason = f"invalid config ({validation_problems(error)})"
        raise BadCheckpointError(config_path, reason) from error
    try:
        tensors = load_file(weights_path)
    except (SafetensorError, OSError) as error:
        raise BadCheckpointError(weights_path, f"unreadable safetensors file ({error})") from error
    return config, tensors


def write_checkpoint(
    directory: str | Path,
    config: GKAANConfig,
    state_dict: Mapping[str, torch.Tensor],
    *,
    dtype: torch.dtype | None = None,
    extra_files: Mapping[str, str] | None = None,
) -> Path:
    """Write a checkpoint folder atomically, replacing an older checkpoint there.

    Args:
        directory: the checkpoint folder to create or replace (an existing folder that is
            neither empty nor a checkpoint is refused with :class:`UsageError`).
        config: written as ``config.json``.
        state_dict: the model's tensors, written as ``model.safetensors``.
        dtype: store floating tensors in this dtype (e.g. ``torch.float16`` for small
            shipped models); default keeps their dtype.
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
            for key, value in state_dict.items()
        }
        # safetensors' save_file creates the file 0600; bytes written by Python get 0666 & ~umask.
        (tmp / WEIGHTS_FILE).write_bytes(save(state, metadata={"format": "pt"}))
        (tmp / CONFIG_FILE).write_text(config.model_dump_json(indent=2) + "\n")
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


def _replaceable(directory: Path) -> bool:
    """An empty folder or an older checkpoint may be replaced; anything else may not."""
    return directory.is_dir() and (
        (directory / CONFIG_FILE).is_file() or not any(directory.iterdir())
    )
