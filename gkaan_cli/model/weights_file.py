"""State dicts on disk: reading a local weights file, and saying why one does not fit a model.

Shared by the backbones (ImageNet weights given as a local file) and the GKAAN checkpoint
loader, so a refused weights file is described the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

import torch

from ..errors import MissingWeightsError

__all__ = ["load_state_dict_file", "state_dict_mismatch"]

#: Tensor names listed in a mismatch message before "and N more".
_MAX_NAMED = 5


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from a ``.safetensors`` file or a ``.pth`` file (weights only).

    Raises:
        MissingWeightsError: the file is missing or is not a state dict of tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingWeightsError(f"{path}: backbone weights file not found")
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            return load_file(path)
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise MissingWeightsError(f"{path}: not a readable state dict ({error})") from error
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise MissingWeightsError(f"{path}: not a state dict of tensors")
    return state


def state_dict_mismatch(
    expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor]
) -> str | None:
    """Why ``found`` cannot be loaded strictly where ``expected`` is the model's state dict:
    its missing and unexpected tensors and those of the wrong shape; ``None`` when it fits.

    Args:
        expected: the model's own state dict (names and shapes).
        found: the tensors read from a weights file.
    """
    wrong = [
        key
        for key in sorted(found.keys() & expected.keys())
        if found[key].shape != expected[key].shape
    ]
    shapes = [
        f"{key} has shape {tuple(found[key].shape)}, expected {tuple(expected[key].shape)}"
        for key in wrong
    ]
    problems = [
        f"{label}{_listed(names)}"
        for label, names in (
            ("missing tensors ", sorted(expected.keys() - found.keys())),
            ("unexpected tensors ", sorted(found.keys() - expected.keys())),
            ("tensors of the wrong shape: ", shapes),
        )
        if names
    ]
    return "; ".join(problems) or None


def _listed(items: Collection[str]) -> str:
    """The first few ``items`` joined by commas, then how many more there are."""
    items = list(items)
    more = f" and {len(items) - _MAX_NAMED} more" if len(items) > _MAX_NAMED else ""
    return ", ".join(items[:_MAX_NAMED]) + more
