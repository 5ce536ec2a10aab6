"""Run a ``gkaan export`` folder with ONNX Runtime (docs/export.md).

An export folder holds ``config.json`` (the checkpoint's, byte for byte), ``trunk.onnx``
(frames (N, 3, H, W) -> conv maps (N, C, h, w)), ``heads.onnx`` (a batch of clips' maps
(B, T, C, h, w) -> the outputs named in :data:`HEAD_OUTPUTS` order), ``tensors.safetensors``
(the ``ood.*`` and ``motion_head.*`` tensors, when the model has them) and ``export.json``
(versions, opset, the sha256 of every other file, the verification figures).

:class:`OnnxModel` offers what :class:`~gkaan_cli.engine.predict.Predictor` and the timeline
call on a :class:`~gkaan_cli.model.gkaan.GKAAN`: ``config``, ``ood``, ``trunk`` (via
:meth:`OnnxModel.inference_trunk`) and :meth:`OnnxModel.forward_heads`, so the decoding,
sampling, timeline and OOD verdict are the same code. Tensors cross to ONNX Runtime as numpy
arrays; the runtime path still imports torch (the Predictor's transform, batching and OOD
score are torch code).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import GKAANConfig
from ..errors import BadCheckpointError, MissingDependencyError, UsageError
from ..fileio import sha256_file
from .registry import check_file_sha256

if TYPE_CHECKING:
    import torch

    from .gkaan import GKAANOutput
    from .motion import MotionHead
    from .ood import OODStats

__all__ = [
    "EXPORT_FILE",
    "HEADS_FILE",
    "INSTALL_HINT",
    "ORT_ERROR",
    "ORT_WARNING",
    "TENSORS_FILE",
    "TRUNK_FILE",
    "OnnxModel",
    "head_output_names",
    "is_onnx_export",
    "load_export",
    "require_onnxruntime",
]

EXPORT_FILE = "export.json"
TRUNK_FILE = "trunk.onnx"
HEADS_FILE = "heads.onnx"
TENSORS_FILE = "tensors.safetensors"
#: Prefix of the GM head's tensors in a state dict (and in ``tensors.safetensors``).
_MOTION_PREFIX = "motion_head."
#: onnxruntime's native log severities: warnings (its default) and errors only.
ORT_WARNING, ORT_ERROR = 2, 3
#: The one line a missing onnxruntime gives.
INSTALL_HINT = 'ONNX export and runtime need onnx and onnxruntime: pip install "gkaan[onnx]"'


def require_onnxruntime() -> Any:
    """The ``onnxruntime`` module.

    Raises:
        MissingDependencyError: it is not installed (:data:`INSTALL_HINT`).
    """
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependencyError(INSTALL_HINT) from None
    return onnxruntime


def head_output_names(config: GKAANConfig) -> list[str]:
    """The heads graph's outputs in order: ``logits.NAME`` per attention stream,
    ``attention.sa``/``attention.la`` and ``embedding`` (the OOD clip embedding). The GM
    stream and the fusion run outside the graph (:meth:`OnnxModel.forward_heads`): the GM
    descriptor reads each clip at its own frame rate, which a graph cannot take as lags."""
    names = [f"logits.{s}" for s in config.streams]
    names += [
        f"attention.{a}"
        for a, users in (("sa", ("sa", "gs")), ("la", ("la", "gl")))
        if any(s in users for s in config.streams)
    ]
    names.append("embedding")
    return names


def is_onnx_export(spec: str | Path | None) -> bool:
    """Whether ``spec`` is a folder holding ``export.json`` (imports neither torch nor ORT)."""
    if spec is None:
        return False
    path = Path(spec).expanduser()
    return path.is_dir() and (path / EXPORT_FILE).is_file()


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / EXPORT_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadCheckpointError(path, f"unreadable export manifest ({error})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise BadCheckpointError(path, "not a gkaan export manifest (no 'files')")
    return manifest


def _check_files(folder: Path, manifest: dict[str, Any]) -> None:
    """Every file ``export.json`` lists matches its sha256; the two graphs and the config
    are listed."""
    files: dict[str, str] = manifest["files"]
    for required in ("config.json", TRUNK_FILE, HEADS_FILE):
        if required not in files:
            raise BadCheckpointError(folder / EXPORT_FILE, f"lists no {required}")
    for name, expected in files.items():
        path = folder / name
        if Path(name).name != name:
            raise BadCheckpointError(folder / EXPORT_FILE, f"file name {name!r} leaves the folder")
        check_file_sha256(path, expected, EXPORT_FILE, "export the model again")


class _OrtTrunk:
    """The trunk session as :attr:`Predictor.trunk` calls it: (N, 3, H, W) float tensor ->
    (N, C, h, w) fp32 maps on the caller's device."""

    def __init__(self, model: OnnxModel) -> None:
        self.model = model

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        import torch

        array = frames.detach().float().cpu().contiguous().numpy()
        (maps,) = self.model.trunk_session.run(None, {"frames": array})
        return torch.from_numpy(maps).to(frames.device)


class OnnxModel:
    """An exported model run by ONNX Runtime, with the interface the Predictor uses.

    Build it with :func:`load_export`. ``config``, ``ood`` (an
    :class:`~gkaan_cli.model.ood.OODStats` or None), ``source`` and ``checkpoint_path`` (the
    export folder) mean what they mean on a GKAAN model.
    """

    #: Distinguishes it from a torch model (Predictor, describe).
    runtime = "onnxruntime"

    def __init__(
        self,
        folder: Path,
        config: GKAANConfig,
        manifest: dict[str, Any],
        ood: OODStats | None,
        *,
        source: str,
        int8: bool = False,
    ) -> None:
        self.folder = folder
        self.config = config
        self.manifest = manifest
        self.ood = ood
        self.source = source
        self.checkpoint_path = folder
        self.int8 = int8
        self.output_names: list[str] = list(manifest.get("heads_outputs") or [])
        self.clip_frames = int(manifest.get("clip_frames", config.sampling.frames_per_clip))
        self.export_sha256 = sha256_file(folder / EXPORT_FILE)
        self.threads: int | None = None
        self.providers = ["CPUExecutionProvider"]
        self._sessions: dict[str, Any] = {}
        self.training = False
        #: The GM head (its tensors from ``tensors.safetensors``), run in torch by
        #: :meth:`forward_heads`; None without a GM stream.
        self.motion_head: MotionHead | None = None

    # torch-module look-alikes the Predictor calls
    def eval(self) -> OnnxModel:
        return self

    def to(self, device: Any) -> OnnxModel:
        """Choose the execution provider for ``device`` (CUDA where onnxruntime has it)."""
        ort = require_onnxruntime()
        kind = getattr(device, "type", str(device).split(":")[0])
        if kind == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise UsageError(
                    "this onnxruntime has no CUDA provider; run the export with --device cpu"
                )
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        else:
            providers = ["CPUExecutionProvider"]
        if providers != self.providers:
            self.providers, self._sessions = providers, {}
        return self

    def set_threads(self, threads: int | None) -> None:
        """Intra-op threads of the sessions (None: ONNX Runtime's default)."""
        if threads != self.threads:
            self.threads, self._sessions = threads, {}

    def _session(self, file_name: str) -> Any:
        if file_name not in self._sessions:
            ort = require_onnxruntime()
            options = ort.SessionOptions()
            options.log_severity_level = ORT_ERROR  # no native warnings on the user's stderr
            if self.threads is not None:
                options.intra_op_num_threads = self.threads
            path = self.folder / file_name
            try:
                self._sessions[file_name] = ort.InferenceSession(
                    str(path), options, providers=self.providers
                )
            except Exception as error:  # onnxruntime raises its own exception classes
                reason = str(error).splitlines()[0] if str(error) else type(error).__name__
                raise BadCheckpointError(path, f"onnxruntime cannot load it ({reason})") from None
        return self._sessions[file_name]

    @property
    def trunk_session(self) -> Any:
        return self._session(str(self.manifest.get("trunk", TRUNK_FILE)))

    @property
    def heads_session(self) -> Any:
        return self._session(HEADS_FILE)

    def inference_trunk(self) -> _OrtTrunk:
        """The trunk as the Predictor runs it: torch frames in, fp32 torch maps out."""
        return _OrtTrunk(self)

    def extract_maps(self, frames: torch.Tensor) -> torch.Tensor:
        """Trunk only: frames (N, 3, H, W) -> conv maps (N, C, h, w)."""
        return _OrtTrunk(self)(frames)

    def run_heads(self, maps: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every heads output by name for clip maps (B, T, C, h, w).

        Raises:
            UsageError: clips of another length than the export's (its heads unroll the
                SRU over :attr:`clip_frames` steps).
        """
        import torch

        if maps.shape[1] != self.clip_frames:
            raise UsageError(
                f"this export takes clips of {self.clip_frames} frames, not {maps.shape[1]}: "
                "use the model's sampling or export again"
            )
        array = maps.detach().float().cpu().contiguous().numpy()
        values = self.heads_session.run(None, {"maps": array})
        return {
            name: torch.from_numpy(value).to(maps.device)
            for name, value in zip(self.output_names, values, strict=True)
        }

    def forward_heads(
        self, maps: torch.Tensor, fps: float | torch.Tensor | None = None
    ) -> GKAANOutput:
        """As :meth:`GKAAN.forward_heads`: the heads graph gives each attention stream's
        logits and the attention maps; the GM stream (at ``fps``) and the fusion are the
        model's own functions (:func:`~gkaan_cli.model.gkaan.gm_logits`,
        :func:`~gkaan_cli.model.gkaan.fuse_streams`), run in torch."""
        from .gkaan import fuse_streams, gm_logits, stream_weights

        out = self.run_heads(maps)
        logits = {k[7:]: v for k, v in out.items() if k.startswith("logits.")}
        attention = {k[10:]: v for k, v in out.items() if k.startswith("attention.")}
        if self.motion_head is not None:
            head = self.motion_head.to(maps.device)
            logits["gm"] = gm_logits(head, maps.float(), fps, self.config.motion_scale)
        weights = stream_weights(self.config).to(maps.device)
        return fuse_streams(self.config, weights, self.motion_head, logits, attention)

    def check_precision(self, precision: str) -> str:
        """The precision the Predictor reports: ``fp32`` (``int8`` for a quantised trunk).

        Raises:
            UsageError: ``bf16``/``fp16`` (an export runs as it was written).
        """
        actual = "int8" if self.int8 else "fp32"
        if precision not in ("auto", "fp32", actual):
            raise UsageError(
                f"an ONNX export runs in {actual} (its trunk as exported), not {precision}; "
                "use --precision auto or fp32"
            )
        return actual

    def describe(self) -> dict[str, Any]:
        """What the model block adds for an export: the runtime and the export's sha256
        (of ``export.json``, which pins every other file)."""
        ort = require_onnxruntime()
        return {
            "runtime": f"onnxruntime {ort.__version__}",
            "sha256": self.export_sha256,
            "export": {
                "opset": self.manifest.get("opset"),
                "trunk": self.manifest.get("trunk", TRUNK_FILE),
                "source_sha256": (self.manifest.get("source") or {}).get("sha256"),
            },
        }


def load_export(spec: str | Path, *, source: str | None = None) -> OnnxModel:
    """Load an export folder, checking every file's sha256 first.

    Raises:
        MissingDependencyError: onnxruntime is not installed.
        BadCheckpointError: a missing, unreadable or changed file, or an invalid config.
    """
    from pydantic import ValidationError

    from .checkpoint import CONFIG_FILE

    require_onnxruntime()
    folder = Path(spec).expanduser()
    manifest = _read_manifest(folder)
    _check_files(folder, manifest)
    config_path = folder / CONFIG_FILE
    try:
        config = GKAANConfig.model_validate_json(config_path.read_bytes())
    except ValidationError as error:
        raise BadCheckpointError(
            config_path, f"invalid config ({error.error_count()} errors)"
        ) from None
    expected = head_output_names(config)
    if manifest.get("heads_outputs") != expected:
        raise BadCheckpointError(
            folder / EXPORT_FILE, f"heads outputs {manifest.get('heads_outputs')} != {expected}"
        )
    ood, motion_head = _load_tensors(folder, manifest, config)
    model = OnnxModel(
        folder,
        config,
        manifest,
        ood,
        source=str(spec) if source is None else source,
        int8=manifest.get("trunk") != TRUNK_FILE,
    )
    model.motion_head = motion_head
    return model


def _load_tensors(
    folder: Path, manifest: dict[str, Any], config: GKAANConfig
) -> tuple[OODStats | None, MotionHead | None]:
    """The OOD statistics and the GM head's tensors (its fitted frame rate, for the
    frame-rate note) from ``tensors.safetensors``; None where the model has none."""
    if TENSORS_FILE not in manifest["files"]:
        return None, None
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .motion import MotionHead
    from .ood import OOD_PREFIX, OODStats

    path = folder / TENSORS_FILE
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError) as error:
        raise BadCheckpointError(path, f"unreadable safetensors file ({error})") from error
    ood_tensors = {k: v for k, v in tensors.items() if k.startswith(OOD_PREFIX)}
    head_tensors = {
        k.removeprefix(_MOTION_PREFIX): v
        for k, v in tensors.items()
        if k.startswith(_MOTION_PREFIX)
    }
    ood = head = None
    try:
        if ood_tensors:
            ood = OODStats.from_state(
                ood_tensors, prefix=OOD_PREFIX, channels=config.feature_channels
            )
        if config.motion == "track" and head_tensors:
            head = MotionHead(config.num_classes)
            head.load_state_dict(head_tensors, strict=True)
    except (ValueError, RuntimeError) as error:
        raise BadCheckpointError(path, str(error).splitlines()[0]) from error
    return ood, head
