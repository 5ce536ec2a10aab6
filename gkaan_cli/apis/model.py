"""Which model a request names, resolved once, and loading it.

:func:`find_model` never raises for a bad spec: the problem travels in the
:class:`ModelSource` and :func:`open_model` raises it, so a command reports its inputs' errors
first and loads nothing when there is nothing to do. A spec is resolved before torch is
imported, so a mistyped name is reported at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import GkaanError

if TYPE_CHECKING:
    from ..model.gkaan import GKAAN
    from ..model.locate import CheckpointRef

__all__ = ["ModelSource", "find_model", "open_model"]


@dataclass(frozen=True)
class ModelSource:
    """A model spec, resolved: a checkpoint (:attr:`ref`), a ``gkaan export`` folder
    (:attr:`export`), or the :attr:`problem` that makes it neither."""

    spec: str | None
    ref: CheckpointRef | None = None
    export: Path | None = None
    problem: GkaanError | None = field(default=None, compare=False)

    @property
    def files(self) -> list[Path]:
        """The checkpoint's files: inputs too, so no output may replace them (none for an
        export or a spec that names no model)."""
        return self.ref.files if self.ref is not None else []


def find_model(spec: str | None) -> ModelSource:
    """Resolve ``spec`` (None: the registry's default model; a folder, a training run, a
    registered name, a Hub id ``org/name[@revision]``, or a ``gkaan export`` folder) once:
    a Hub id is downloaded here when not in the cache."""
    from ..model.locate import locate_checkpoint
    from ..model.onnx_runtime import is_onnx_export

    if is_onnx_export(spec):
        return ModelSource(spec, export=Path(str(spec)))
    try:
        return ModelSource(spec, ref=locate_checkpoint(spec))
    except GkaanError as problem:
        return ModelSource(spec, problem=problem)


def open_model(source: ModelSource) -> GKAAN:
    """The model ``source`` names, in eval mode. An export loads as an
    :class:`~gkaan_cli.model.onnx_runtime.OnnxModel`, which the Predictor runs with ONNX
    Runtime.

    Raises:
        GkaanError: the spec names no model (:attr:`ModelSource.problem`) or its files are
            not a valid checkpoint.
    """
    if source.problem is not None:
        raise source.problem
    if source.export is not None:
        from ..model.onnx_runtime import load_export

        return load_export(str(source.export))  # type: ignore[return-value]  # same interface
    from ..model.gkaan import GKAAN

    assert source.ref is not None
    return GKAAN.from_pretrained(source.ref)
