"""Which weights a trunk holds, as one typed value (docs/protocol.md#frozen-backbone).

A :class:`TrunkWeights` says where a trunk's weights came from (random, ImageNet, or a file
or GKAAN checkpoint) and, once the trunk is built, a SHA-256 of its tensors. It travels
from the training config to the prepared manifest and the training run; cached conv maps
match a run when the two hashes agree, whatever name the weights came by. Manifests
written before the hash existed hold ``true``/``"True"``/a path: :meth:`TrunkWeights.parse`
reads those too, and such a value (no hash) is compared by where it came from.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:  # the manifest reads this module; torch is imported only where it runs
    from torch import nn

__all__ = ["TrunkWeights", "weights_digest"]

#: How the weights of each source read in messages (a file reads as its path).
_LABELS = {"random": "random", "imagenet": "ImageNet"}


def weights_digest(module: nn.Module) -> str:
    """SHA-256 of ``module``'s tensors: names, shapes and values as fp32 (buffers included),
    so the same weights give the same hash whatever dtype or device they sit in."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        value = tensor.detach().to("cpu")
        value = value.float() if value.is_floating_point() else value.long()
        digest.update(f"{name}:{tuple(value.shape)}:{value.dtype};".encode())
        digest.update(value.contiguous().numpy().tobytes())
    return digest.hexdigest()


class TrunkWeights(BaseModel):
    """Where a trunk's weights came from, and what they are.

    Attributes:
        source: ``random``, ``imagenet`` (the backbone's ImageNet weights) or ``file``.
        path: the absolute path of the weights file or GKAAN checkpoint folder
            (``file`` only).
        sha256: :func:`weights_digest` of the built trunk; ``None`` before it was built,
            and in manifests written before it was recorded.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: Literal["random", "imagenet", "file"]
    path: str | None = None
    sha256: str | None = None

    @classmethod
    def parse(cls, value: Any) -> TrunkWeights:
        """A weights value in any form gkaan has written or taken: a ``TrunkWeights``
        (or its dict), ``True``/``"True"`` (ImageNet), ``False``/``"False"``/``None``/``""``
        (random), or a path."""
        if isinstance(value, TrunkWeights):
            return value
        if isinstance(value, dict):
            return cls.model_validate(value)
        if value in (None, False, "False", ""):
            return cls(source="random")
        if value in (True, "True"):
            return cls(source="imagenet")
        return cls(source="file", path=str(Path(value)))

    @property
    def pretrained(self) -> bool | str:
        """The value :func:`~gkaan_cli.model.backbones.build_backbone` takes."""
        if self.source == "file" and self.path is not None:
            return self.path
        return self.source == "imagenet"

    @property
    def label(self) -> str:
        """How the weights read in messages: ``ImageNet``, ``random`` or the path."""
        return self.path if self.source == "file" and self.path else _LABELS[self.source]

    def built(self, trunk: nn.Module) -> TrunkWeights:
        """This value with the hash of ``trunk``, the module built from it."""
        return self.model_copy(update={"sha256": weights_digest(trunk)})

    def same_weights(self, other: TrunkWeights) -> bool:
        """Whether both name the same weights: by hash where both know it, else by source
        and path."""
        if self.sha256 is not None and other.sha256 is not None:
            return self.sha256 == other.sha256
        return (self.source, self.path) == (other.source, other.path)
