"""Checkpoint folders on disk: ``config.json`` + ``model.safetensors``.

A checkpoint is a folder holding a serialised :class:`GKAANConfig` and the model's tensors;
this module reads and writes such folders without knowing the model class
(:meth:`GKAAN.save_pretrained <gkaan_cli.model.gkaan.GKAAN.save_pretrained>` and
``from_pretrained`` build on it). Writing is atomic (a temporary folder beside the target,
then a rename). Reading never unpickles: pickle files are refused.
"""

from __future__ import annotations

import pickle
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..config import GKAANConfig, memory_problem
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
    "check_tensors",
    "checkpoint_dir",
    "read_checkpoint",
    "read_training_state",
    "write_checkpoint",
]

#: Integer tensors a state dict may hold (BatchNorm's step counter); every other tensor
#: must be floating point.
INTEGER_TENSOR_SUFFIXES = ("num_batches_tracked", "ood.k")
#: Keys of a ``state.pt`` written by ``gkaan train`` (engine/train.py).
TRAINING_STATE_KEYS = (
    "model",
    "optimizer",
    "scaler",
    "epoch",
    "step",
    "best_metric",
    "best_epoch",
    "history",
    "rng",
    "config",
)

#: Floating-point dtypes a checkpoint may store (others, such as float8, are refused by name).
_FLOAT_DTYPES = ("float32", "float16", "bfloat16", "float64")

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
    problem = memory_problem(config)  # before a tensor is read or a layer built
    if problem is not None:
        raise BadCheckpointError(config_path, f"config {problem}")
    try:
        tensors = load_file(weights_path)
    except (SafetensorError, OSError, ValueError) as error:
        raise BadCheckpointError(weights_path, f"unreadable safetensors file ({error})") from error
    check_tensors(weights_path, tensors)
    return config, tensors


def check_tensors(path: str | Path, tensors: Mapping[str, Any]) -> None:
    """Refuse weights that are not floating point (besides BatchNorm's step counters) or
    hold NaN/Inf values: such a model could only give garbage.

    Raises:
        BadCheckpointError: naming ``path`` and the first bad tensor.
    """
    import torch

    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor):
            raise BadCheckpointError(path, f"{name!r} is not a tensor")
        if not tensor.is_floating_point():
            if name.endswith(INTEGER_TENSOR_SUFFIXES):
                continue
            raise BadCheckpointError(path, f"tensor {name!r} is {tensor.dtype}, not floating point")
        dtype = str(tensor.dtype).removeprefix("torch.")
        if dtype not in _FLOAT_DTYPES:  # e.g. float8: no isfinite, no CPU kernels
            raise BadCheckpointError(
                path,
                f"tensor {name!r} is {dtype}, an unsupported dtype "
                f"(supported: {', '.join(_FLOAT_DTYPES)})",
            )
        if not bool(torch.isfinite(tensor).all()):
            raise BadCheckpointError(path, f"tensor {name!r} holds NaN or Inf values")
    _check_motion_statistics(path, tensors)


#: The motion head's statistics (docs/model.md#motion-track): a standard deviation divides
#: the descriptor, ``fitted`` is a flag and ``fps`` a frame rate.
_MOTION_PREFIX = "motion_head."


def _check_motion_statistics(path: str | Path, tensors: Mapping[str, Any]) -> None:
    """Refuse GM statistics a fitted head could not use: a std that is not positive, a
    ``fitted`` flag other than 0 or 1, a negative frame rate."""
    checks = {
        "std": (lambda t: bool((t > 0).all()), "must be positive"),
        "fitted": (lambda t: t.numel() == 1 and float(t) in (0.0, 1.0), "must be 0 or 1"),
        "fps": (lambda t: t.numel() == 1 and float(t) >= 0, "must be one rate >= 0"),
    }
    for key, (valid, reason) in checks.items():
        tensor = tensors.get(_MOTION_PREFIX + key)
        if tensor is not None and not valid(tensor.float()):
            raise BadCheckpointError(path, f"tensor {_MOTION_PREFIX + key!r} {reason}")


def read_training_state(path: str | Path) -> dict[str, Any]:
    """A ``state.pt`` written by ``gkaan train``, loaded with ``weights_only=True`` (never
    unpickles code) and checked: a dict with the keys train writes, whole-number epoch and
    step, finite floating-point model weights.

    Raises:
        BadCheckpointError: unreadable, not a training state, or tampered values.
    """
    import torch

    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as error:
        reason = " ".join(str(error).split())[:200]
        raise BadCheckpointError(path, f"unreadable training state ({reason})") from None
    if not isinstance(state, dict):
        raise BadCheckpointError(path, "not a gkaan training state (not a dict)")
    missing = [key for key in TRAINING_STATE_KEYS if key not in state]
    if missing:
        reason = f"not a gkaan training state: missing {', '.join(missing)}"
        raise BadCheckpointError(path, reason)
    for key in ("epoch", "step"):
        value = state[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BadCheckpointError(path, f"training state: {key} is {value!r}, not a count")
    for key in ("model", "config", "optimizer", "scaler"):
        if not isinstance(state[key], dict):
            raise BadCheckpointError(path, f"training state: {key} is not a mapping")
    for key in ("history", "rng"):  # rng: one state per process
        if not isinstance(state[key], list):
            raise BadCheckpointError(path, f"training state: {key} is not a list")
    check_tensors(path, state["model"])
    return state


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
