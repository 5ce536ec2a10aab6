"""``gkaan export``: a GKAAN model as ONNX graphs run by ONNX Runtime (docs/export.md).

The trunk (frames -> conv maps) and the heads (a clip's maps -> every output the Predictor
uses) are traced from the model's own code (``GKAAN.extract_maps`` and
``GKAAN.stream_logits``, plus :func:`~gkaan_cli.model.ood.clip_embedding`; the GM stream and
the fusion run outside the graph, in the model's own functions): :class:`HeadsGraph` is the
one place that says what the heads graph computes. The folder is built in a
temporary folder, verified on real frames against PyTorch, and renamed into place only when
every output agrees within :data:`TOLERANCE`; otherwise nothing is left behind.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import GkaanError, UsageError
from ..fileio import check_output_path, make_temp_dir, sha256_file
from ..model.checkpoint import CONFIG_FILE, WEIGHTS_FILE
from ..model.gkaan import GKAAN
from ..model.motion import DEFAULT_FPS
from ..model.onnx_runtime import (
    EXPORT_FILE,
    HEADS_FILE,
    ORT_ERROR,
    ORT_WARNING,
    TENSORS_FILE,
    TRUNK_FILE,
    head_output_names,
    load_export,
    require_onnxruntime,
)
from ..model.ood import OOD_PREFIX, clip_embedding
from ..progress import ProgressCallback, ProgressEvent
from ..version import __version__
from ..video.reader import probe_video, read_frames
from ..video.sampling import sample_clips
from ..video.transforms import ClipTransform
from ..words import plural

__all__ = [
    "DEFAULT_OPSET",
    "INT8_MIN_AGREEMENT",
    "INT8_TRUNK_FILE",
    "TOLERANCE",
    "ExportError",
    "ExportReport",
    "HeadsGraph",
    "export_model",
]

#: ONNX opset written by default (the TorchScript exporter's best-tested one).
DEFAULT_OPSET = 17
#: An output agrees when max |ORT - torch| <= TOLERANCE x max(1, max |torch|): 1e-3 absolute
#: on probabilities and attention (values in [0, 1]), relative on maps and embeddings.
TOLERANCE = 1e-3
#: The int8 trunk is written only when its top-1 agrees with fp32 on at least this fraction
#: of the check clips.
INT8_MIN_AGREEMENT = 0.99
#: The quantised trunk's file (the fp32 ``trunk.onnx`` stays beside it).
INT8_TRUNK_FILE = "trunk.int8.onnx"
#: Clips taken from each verification video (first, middle, last of its sampled clips).
VERIFY_CLIPS = 3
#: Clips of the built-in check (synthetic moving frames) when no video is given.
BUILTIN_CLIPS = 2
#: Frames per trunk batch while verifying and calibrating.
_BATCH = 16


class ExportError(GkaanError):
    """The exported graphs disagree with the model, or the int8 trunk with the fp32 one."""


class HeadsGraph(nn.Module):
    """The heads graph: :meth:`GKAAN.stream_logits` (each attention stream's logits and the
    attention maps) and the OOD clip embedding, as the outputs :func:`head_output_names`
    lists. The GM stream and the fusion stay outside (``OnnxModel.forward_heads``)."""

    def __init__(self, model: GKAAN) -> None:
        super().__init__()
        self.model = model
        self.names = head_output_names(model.config)

    def forward(self, maps: Tensor) -> tuple[Tensor, ...]:
        logits, attention = self.model.stream_logits(maps)
        values = {"embedding": clip_embedding(maps)}
        values |= {f"logits.{k}": v for k, v in logits.items()}
        values |= {f"attention.{k}": v for k, v in attention.items()}
        return tuple(values[name].float() for name in self.names)


@dataclass
class ExportReport:
    """What :func:`export_model` wrote and measured.

    ``max_diff`` maps each output (``maps`` and the heads outputs) to its largest absolute
    ORT-vs-torch difference, ``scale`` to max(1, max |torch|); ``agreement`` is the fraction
    of clips with the same top-1; ``int8`` (None without ``--int8``) holds the int8 trunk's
    agreement with fp32 on the check videos and the clip counts.
    """

    out: Path
    files: dict[str, str]
    opset: int
    frames_source: str
    clips: int
    max_diff: dict[str, float]
    scale: dict[str, float]
    agreement: float
    tolerance: float = TOLERANCE
    int8: dict[str, Any] | None = None
    failed: list[str] = field(default_factory=list)


def _quiet_export(module: nn.Module, example: Tensor, path: Path, **kwargs: Any) -> None:
    """``torch.onnx.export`` (TorchScript tracer) without its warnings and console noise."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (example,), str(path), dynamo=False, **kwargs)


def _export_graphs(model: GKAAN, folder: Path, opset: int) -> dict[str, Any]:
    """Write trunk.onnx and heads.onnx; the facts export.json records about them."""
    config = model.config
    crop = config.preprocess.crop
    frames = torch.zeros(2, 3, crop, crop)
    with torch.inference_mode():
        maps_shape = tuple(model.extract_maps(frames).shape[1:])
    _quiet_export(
        model.backbone,
        frames,
        folder / TRUNK_FILE,
        input_names=["frames"],
        output_names=["maps"],
        dynamic_axes={"frames": {0: "frames"}, "maps": {0: "frames"}},
        opset_version=opset,
    )
    heads = HeadsGraph(model)
    clip_frames = config.sampling.frames_per_clip
    example = torch.rand(2, clip_frames, *maps_shape)
    _quiet_export(
        heads,
        example,
        folder / HEADS_FILE,
        input_names=["maps"],
        output_names=heads.names,
        dynamic_axes={"maps": {0: "clips"}} | {name: {0: "clips"} for name in heads.names},
        opset_version=opset,
    )
    model.eval()  # the wrapper's export may leave submodules in training mode
    return {
        "clip_frames": clip_frames,
        "maps_shape": list(maps_shape),
        "heads_outputs": heads.names,
    }


def _extra_tensors(model: GKAAN) -> dict[str, Tensor]:
    """The OOD and GM tensors of the model's state (what the Predictor reads besides graphs)."""
    return {
        key: value.detach().cpu().contiguous()
        for key, value in model.state_dict().items()
        if key.startswith((OOD_PREFIX, "motion_head."))
    }


def _video_clips(
    model: GKAAN, videos: Sequence[Path], per_video: int
) -> Iterator[tuple[Tensor, float]]:
    """Normalised clips (T, 3, crop, crop) from ``videos`` as predict samples them (up to
    ``per_video`` each: first, middle, last), each with its video's frame rate."""
    config = model.config
    transform = ClipTransform(config.preprocess, train=False)
    height, width = config.preprocess.resize
    for path in videos:
        info = probe_video(path)
        clips = sample_clips(info.num_frames, config.sampling, fps=info.fps, train=False)
        picks = sorted(
            {round(i * (len(clips) - 1) / max(per_video - 1, 1)) for i in range(per_video)}
        )
        chosen = [clips[i] for i in picks if i < len(clips)]
        needed = sorted({i for c in chosen for i in c.frames})
        images = {f.index: f.image for f in read_frames(path, size=(width, height), indices=needed)}
        for clip in chosen:
            if all(i in images for i in clip.frames):
                stack = np.stack([images[i] for i in clip.frames])
                yield transform(torch.from_numpy(stack)), info.fps


def _builtin_clips(model: GKAAN) -> Iterator[tuple[Tensor, float]]:
    """Synthetic clips at 25 frames/s: a bright disc moving over a smooth textured
    background (seeded)."""
    config = model.config
    transform = ClipTransform(config.preprocess, train=False)
    height, width = config.preprocess.resize
    frames = config.sampling.frames_per_clip
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    for number in range(BUILTIN_CLIPS):
        base = rng.integers(0, 256, size=(height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
        background = np.kron(base, np.ones((8, 8, 1), dtype=np.uint8))[:height, :width]
        clip = []
        for t in range(frames):
            x = width * (0.2 + 0.6 * t / max(frames - 1, 1))
            y = height * (0.3 + 0.4 * number)
            disc = (xx - x) ** 2 + (yy - y) ** 2 < (min(height, width) / 8) ** 2
            image = background.copy()
            image[disc] = (255, 240, 200)
            clip.append(image)
        yield transform(torch.from_numpy(np.stack(clip))), DEFAULT_FPS


def _verify(
    model: GKAAN,
    folder: Path,
    clips: Iterator[tuple[Tensor, float]],
    on_progress: ProgressCallback | None,
) -> tuple[int, dict[str, float], dict[str, float], float]:
    """Run torch and ORT on the same clips at their frame rates: clip count, the largest
    difference and scale of the maps, every graph output and the fused ``probs`` (GM
    included), and the fused top-1 agreement.

    Each graph is judged on the same input: the trunk on the frames (``maps``), the heads on
    PyTorch's maps (every heads output), so a graph is not blamed for the other's rounding,
    which the paper SA's near-argmax would amplify past any limit (docs/export.md). The
    fused probabilities and top-1 go through both ORT graphs, end to end."""
    exported = load_export(folder).to("cpu")
    names = ["maps", *exported.output_names, "probs"]
    diff = dict.fromkeys(names, 0.0)
    scale = dict.fromkeys(names, 1.0)
    agree = count = 0
    graph = HeadsGraph(model)
    for clip, fps in clips:
        with torch.inference_mode():
            maps = torch.cat([model.extract_maps(b) for b in clip.split(_BATCH)])
            expected = [maps, *graph(maps[None]), model.forward_heads(maps[None], fps).probs]
            ort_maps = torch.cat([exported.extract_maps(b) for b in clip.split(_BATCH)])
            found = [
                ort_maps,
                *exported.run_heads(maps[None]).values(),
                exported.forward_heads(ort_maps[None], fps).probs,
            ]
        for name, want, got in zip(names, expected, found, strict=True):
            diff[name] = max(diff[name], float((want.float() - got.float()).abs().max()))
            scale[name] = max(scale[name], float(want.abs().max()))
        agree += int(expected[-1].argmax() == found[-1].argmax())
        count += 1
        if on_progress is not None:
            on_progress(ProgressEvent("verify", count))
    if count == 0:
        raise ExportError("no clip to verify on: the --calibrate videos gave no full clip")
    return count, diff, scale, agree / count


def _int8_trunk(
    model: GKAAN, folder: Path, videos: Sequence[Path], on_progress: ProgressCallback | None
) -> dict[str, Any]:
    """Quantise the trunk statically on the even-numbered videos' frames; measure top-1
    agreement with fp32 on the odd-numbered ones.

    Raises:
        UsageError: fewer than two videos.
        ExportError: agreement below :data:`INT8_MIN_AGREEMENT` (nothing is written).
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    if len(videos) < 2:
        raise UsageError("--int8 needs at least two --calibrate videos (calibrate, then check)")
    calibrate, check = list(videos[0::2]), list(videos[1::2])
    frames = [b for c, _ in _video_clips(model, calibrate, VERIFY_CLIPS) for b in c.split(_BATCH)]
    if not frames:
        raise ExportError("no clip to calibrate on: the --calibrate videos gave no full clip")

    class _Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.batches = iter(frames)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {"frames": batch.numpy()}

    with _quiet_logging(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        quantize_static(
            str(folder / TRUNK_FILE),
            str(folder / INT8_TRUNK_FILE),
            _Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    fp32 = load_export(folder).to("cpu")
    int8 = load_export(folder).to("cpu")
    int8.manifest = int8.manifest | {"trunk": INT8_TRUNK_FILE}
    agree = count = 0
    for clip, fps in _video_clips(model, check, VERIFY_CLIPS):
        with torch.inference_mode():
            want = fp32.forward_heads(fp32.extract_maps(clip)[None], fps).probs
            got = int8.forward_heads(int8.extract_maps(clip)[None], fps).probs
        agree += int(want.argmax() == got.argmax())
        count += 1
        if on_progress is not None:
            on_progress(ProgressEvent("int8", count))
    if count == 0:
        raise ExportError("no clip to check the int8 trunk on: the check videos gave no clip")
    result = {
        "agreement": agree / count,
        "clips": count,
        "calibration_videos": [str(p) for p in calibrate],
        "check_videos": [str(p) for p in check],
        "min_agreement": INT8_MIN_AGREEMENT,
    }
    if agree / count < INT8_MIN_AGREEMENT:
        raise ExportError(
            f"int8 trunk agrees with fp32 on {agree}/{count} check clips "
            f"({agree / count:.1%} < {INT8_MIN_AGREEMENT:.0%}): not written; calibrate on "
            "more varied videos or export fp32"
        )
    return result


@contextlib.contextmanager
def _quiet_logging() -> Iterator[None]:
    """No root-logger warnings (onnxruntime.quantization logs its advice there), and no
    native onnxruntime warnings (its calibration sessions log every unused initializer of
    the Lite0 graph on stderr)."""
    ort = require_onnxruntime()
    logging.disable(logging.WARNING)
    ort.set_default_logger_severity(ORT_ERROR)
    try:
        yield
    finally:
        ort.set_default_logger_severity(ORT_WARNING)
        logging.disable(logging.NOTSET)


def _versions() -> dict[str, str]:
    import onnx

    ort = require_onnxruntime()
    return {
        "gkaan": __version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
    }


def _replaceable(out: Path) -> bool:
    return out.is_dir() and ((out / EXPORT_FILE).is_file() or not any(out.iterdir()))


def export_model(
    model: GKAAN,
    out: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    calibrate: Sequence[str | Path] = (),
    int8: bool = False,
    on_progress: ProgressCallback | None = None,
) -> ExportReport:
    """Export ``model`` to the folder ``out`` (replacing an earlier export there) and verify it.

    Args:
        model: the network (its checkpoint's ``config.json`` is copied when it has one).
        out: the export folder.
        opset: the ONNX opset.
        calibrate: videos to verify on (else the built-in synthetic clips) and, with
            ``int8``, to calibrate and check the int8 trunk on.
        int8: also write a statically quantised trunk, which then runs by default.
        on_progress: ``ProgressEvent("verify"|"int8", clips_done)``.

    Returns:
        The report; ``failed`` lists the outputs beyond the tolerance (then nothing was
        written and :class:`ExportError` was raised instead).

    Raises:
        ExportError: an output beyond :data:`TOLERANCE`, a top-1 disagreement, or an int8
            trunk below :data:`INT8_MIN_AGREEMENT`.
        UsageError: ``out`` is a folder that is not an export, ``--int8`` without two videos.
        MissingDependencyError: onnx or onnxruntime is not installed.
        BadVideoError: a ``calibrate`` video cannot be read.
    """
    require_onnxruntime()
    try:
        import onnx  # noqa: F401  # the exporter needs it
    except ImportError:
        from ..errors import MissingDependencyError
        from ..model.onnx_runtime import INSTALL_HINT

        raise MissingDependencyError(INSTALL_HINT) from None
    out = check_output_path(out, kind="dir")
    if out.exists() and not _replaceable(out):
        raise UsageError(f"{out}: exists and is not a gkaan export folder; will not overwrite it")
    if int8 and not calibrate:
        raise UsageError("--int8 needs --calibrate VIDEOS (frames to calibrate and check on)")
    videos = [Path(p) for p in calibrate]
    model = model.eval().cpu()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(out)
    try:
        facts = _export_graphs(model, tmp, opset)
        source = model.checkpoint_path
        if source is not None and (source / CONFIG_FILE).is_file():
            shutil.copyfile(source / CONFIG_FILE, tmp / CONFIG_FILE)
        else:
            (tmp / CONFIG_FILE).write_text(model.config.model_dump_json(indent=2) + "\n")
        extra = _extra_tensors(model)
        if extra:
            from safetensors.torch import save

            (tmp / TENSORS_FILE).write_bytes(save(extra, metadata={"format": "pt"}))
        files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir())}
        manifest: dict[str, Any] = {
            "format": "onnx",
            "versions": _versions(),
            "opset": opset,
            "source": {
                "name": model.source,
                "sha256": sha256_file(source / WEIGHTS_FILE)
                if source is not None and (source / WEIGHTS_FILE).is_file()
                else None,
            },
            "trunk": TRUNK_FILE,
            **facts,
            "files": files,
        }
        (tmp / EXPORT_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
        clips = _video_clips(model, videos, VERIFY_CLIPS) if videos else _builtin_clips(model)
        count, diff, scale, agreement = _verify(model, tmp, clips, on_progress)
        failed = [name for name in diff if diff[name] > TOLERANCE * scale[name]]
        report = ExportReport(
            out=out,
            files=files,
            opset=opset,
            frames_source=plural(len(videos), "video") if videos else "built-in synthetic clips",
            clips=count,
            max_diff=diff,
            scale=scale,
            agreement=agreement,
            failed=failed,
        )
        if failed or agreement < 1.0:
            worst = ", ".join(f"{n} {diff[n]:.2e}" for n in failed) or "none"
            raise ExportError(
                f"ONNX Runtime disagrees with PyTorch (beyond {TOLERANCE:g} x scale: {worst}; "
                f"top-1 agreement {agreement:.1%}): nothing written"
            )
        if int8:
            report.int8 = _int8_trunk(model, tmp, videos, on_progress)
            files[INT8_TRUNK_FILE] = sha256_file(tmp / INT8_TRUNK_FILE)
            manifest["trunk"] = INT8_TRUNK_FILE
        manifest["verification"] = {
            "frames": report.frames_source,
            "clips": count,
            "tolerance": TOLERANCE,
            "max_abs_diff": diff,
            "scale": scale,
            "top1_agreement": agreement,
            "int8": report.int8,
        }
        (tmp / EXPORT_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
        report.files = dict(files) | {EXPORT_FILE: sha256_file(tmp / EXPORT_FILE)}
        if out.exists():
            old = make_temp_dir(out)
            out.replace(old / out.name)
            tmp.replace(out)
            shutil.rmtree(old)
        else:
            tmp.replace(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return report
