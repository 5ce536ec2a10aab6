"""gkaan export: ONNX graphs that answer as the PyTorch model, refused when tampered with,
and one line when onnxruntime is missing (docs/export.md)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_MODEL
from typer.testing import CliRunner

from gkaan_cli.cli import app
from gkaan_cli.config import GKAANConfig
from gkaan_cli.errors import BadCheckpointError, MissingDependencyError
from gkaan_cli.fileio import sha256_file
from gkaan_cli.model.gkaan import GKAAN
from gkaan_cli.model.motion import MotionHead

pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
pytest.importorskip("onnx", reason="the [onnx] extra is not installed")

from gkaan_cli.engine import export as export_module
from gkaan_cli.engine.export import ExportError, export_model
from gkaan_cli.engine.predict import Predictor
from gkaan_cli.model.onnx_runtime import INSTALL_HINT, is_onnx_export, load_export

runner = CliRunner()


def _tiny(tmp_path: Path, **overrides: object) -> Path:
    """A saved tiny GKAAN (random weights) with OOD statistics; its checkpoint folder."""
    torch.manual_seed(0)
    settings: dict[str, object] = {"num_classes": 3, "class_names": ["a", "b", "c"]}
    config = GKAANConfig(**(settings | TINY_MODEL | overrides))  # type: ignore[arg-type]
    model = GKAAN(config).eval()
    from gkaan_cli.model.ood import OODStats

    model.ood = OODStats(torch.rand(6, config.feature_channels), 2, 0.5, 0.5)
    if model.motion_head is not None:  # a fitted GM head, so GM votes in the fusion
        head: MotionHead = model.motion_head
        head.weight.normal_()
        head.fitted.fill_(1.0)
        head.fps.fill_(25.0)
    return model.save_pretrained(tmp_path / "ckpt")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(checkpoint, export) of a tiny early-fusion model with the GM stream."""
    root = tmp_path_factory.mktemp("export")
    checkpoint = _tiny(root, motion="track")
    out = root / "onnx"
    export_model(GKAAN.from_pretrained(checkpoint), out)
    return checkpoint, out


@pytest.mark.slow
def test_export_writes_graphs_config_tensors_and_a_manifest(exported: tuple[Path, Path]) -> None:
    checkpoint, out = exported
    manifest = json.loads((out / "export.json").read_text())
    assert set(manifest["files"]) == {
        "config.json",
        "trunk.onnx",
        "heads.onnx",
        "tensors.safetensors",
    }
    assert (out / "config.json").read_bytes() == (checkpoint / "config.json").read_bytes()
    assert manifest["opset"] == 17
    assert {"gkaan", "torch", "onnx", "onnxruntime"} <= set(manifest["versions"])
    check = manifest["verification"]
    assert check["top1_agreement"] == 1.0
    assert max(check["max_abs_diff"].values()) <= 1e-3 * max(check["scale"].values())
    # the graph holds the attention streams; GM reads each clip's frame rate outside it
    assert manifest["heads_outputs"][:3] == ["logits.gs", "logits.gl", "logits.gp"]
    assert not any("gm" in name for name in manifest["heads_outputs"])
    assert is_onnx_export(out) and not is_onnx_export(checkpoint)


def test_exported_graphs_give_the_models_outputs(exported: tuple[Path, Path]) -> None:
    checkpoint, out = exported
    model = GKAAN.from_pretrained(checkpoint)
    onnx = load_export(out)
    torch.manual_seed(1)
    frames = torch.randn(5, 3, 56, 56)  # another batch size than the export's example
    with torch.inference_mode():
        maps = model.extract_maps(frames)
        clips = torch.rand(3, 4, *maps.shape[1:])
        want = model.forward_heads(clips)
        at_50 = model.forward_heads(clips, 50.0)
    assert torch.allclose(onnx.extract_maps(frames), maps, atol=1e-4)
    got = onnx.forward_heads(clips)
    assert torch.allclose(got.probs, want.probs, atol=1e-4)
    # the GM stream reads the clips' frame rate as the model does
    assert torch.allclose(
        onnx.forward_heads(clips, 50.0).stream_probs["gm"], at_50.stream_probs["gm"], atol=1e-5
    )
    assert set(got.stream_probs) == set(want.stream_probs) == {"gs", "gl", "gp", "gm"}
    for name, value in want.stream_probs.items():
        assert torch.allclose(got.stream_probs[name], value, atol=1e-4)
    for name, value in want.attention.items():
        assert torch.allclose(got.attention[name], value, atol=1e-4)
    assert onnx.ood is not None and torch.equal(onnx.ood.bank, model.ood.bank)  # type: ignore[union-attr]
    assert onnx.motion_head is not None and float(onnx.motion_head.fps) == 25.0


def test_predictor_runs_an_export_as_it_runs_the_model(
    exported: tuple[Path, Path], make_video: Callable[..., Path]
) -> None:
    checkpoint, out = exported
    video = make_video("v.mp4", num_frames=20)
    want = Predictor(GKAAN.from_pretrained(checkpoint), device="cpu", precision="fp32")
    got = Predictor(load_export(out), device="cpu")
    a, b = want.predict_video(video), got.predict_video(video)
    assert np.abs(a.probs - b.probs).max() < 1e-4
    assert a.top_k(1)[0][0] == b.top_k(1)[0][0]
    assert [c.frames for c in a.clips] == [c.frames for c in b.clips]
    assert a.ood_score == pytest.approx(b.ood_score, abs=1e-4)
    assert a.in_distribution == b.in_distribution
    assert b.model is not None and b.model["runtime"].startswith("onnxruntime ")
    assert b.model["sha256"] == sha256_file(out / "export.json")


def test_predict_cli_with_an_export_prints_the_same_label(
    exported: tuple[Path, Path], make_video: Callable[..., Path]
) -> None:
    checkpoint, out = exported
    video = make_video("w.mp4", num_frames=12)
    answers = []
    for model in (str(checkpoint), str(out)):
        result = runner.invoke(
            app, ["predict", str(video), "--model", model, "--format", "json", "-q"]
        )
        assert result.exit_code == 0, result.output
        answers.append(json.loads(result.stdout)[0]["top_k"][0]["label"])
    assert answers[0] == answers[1]


def test_a_tampered_graph_is_refused(exported: tuple[Path, Path], tmp_path: Path) -> None:
    _, out = exported
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in out.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    data = bytearray((copy / "heads.onnx").read_bytes())
    data[-1] ^= 0xFF
    (copy / "heads.onnx").write_bytes(bytes(data))
    with pytest.raises(BadCheckpointError, match=r"sha256 does not match export\.json"):
        load_export(copy)


def test_a_tampered_graph_is_one_error_line_in_predict(
    exported: tuple[Path, Path], tmp_path: Path, make_video: Callable[..., Path]
) -> None:
    _, out = exported
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in out.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    (copy / "trunk.onnx").write_bytes((copy / "trunk.onnx").read_bytes() + b"\0")
    video = make_video("t.mp4", num_frames=8)
    result = runner.invoke(app, ["predict", str(video), "--model", str(copy), "-q"])
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "trunk.onnx" in errors[0] and "sha256" in errors[0]
    assert "Traceback" not in result.output


def test_missing_onnxruntime_is_one_line(
    exported: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, make_video: Callable[..., Path]
) -> None:
    checkpoint, out = exported
    video = make_video("m.mp4", num_frames=8)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.raises(MissingDependencyError, match=r'pip install "gkaan\[onnx\]"'):
        load_export(out)
    for args in (
        ["export", str(checkpoint), "-o", "x"],
        ["predict", str(video), "--model", str(out)],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 1
        assert result.stderr.strip().splitlines() == [f"error: {INSTALL_HINT}"]


@pytest.mark.slow
def test_a_failed_verification_leaves_nothing_behind(
    exported: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint, _ = exported
    monkeypatch.setattr(export_module, "TOLERANCE", 0.0)  # any difference fails
    out = tmp_path / "strict"
    with pytest.raises(ExportError, match="disagrees with PyTorch"):
        export_model(GKAAN.from_pretrained(checkpoint), out)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_the_heads_are_judged_on_pytorchs_maps_not_on_the_onnx_trunks(
    exported: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trunk whose maps are off (here by 1% of their size, beyond its limit) is the only
    graph named: the heads are checked on PyTorch's maps, so the trunk's error is not
    charged to them (docs/export.md, verification)."""
    checkpoint, _ = exported
    real_load = export_module.load_export

    def off_trunk(folder: Path) -> object:
        model = real_load(folder)
        extract = model.extract_maps
        model.extract_maps = lambda frames: extract(frames) * 1.01  # type: ignore[method-assign]
        return model

    monkeypatch.setattr(export_module, "load_export", off_trunk)
    with pytest.raises(ExportError, match="disagrees with PyTorch") as error:
        export_model(GKAAN.from_pretrained(checkpoint), tmp_path / "out")
    beyond = str(error.value).split("beyond", 1)[1]
    assert "maps" in beyond
    assert not any(name in beyond for name in ("logits.", "attention.", "embedding"))
    assert not (tmp_path / "out").exists()


def test_export_refuses_to_overwrite_a_folder_that_is_not_an_export(
    exported: tuple[Path, Path], tmp_path: Path
) -> None:
    checkpoint, _ = exported
    (tmp_path / "notes.txt").write_text("keep me")
    result = runner.invoke(app, ["export", str(checkpoint), "-o", str(tmp_path), "-q"])
    assert result.exit_code == 2
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def _black_video(path: Path, frames: int = 16) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(frames):
            image = np.zeros((48, 64, 3), np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.mark.slow
def test_int8_with_a_bad_calibration_set_is_refused(
    tmp_path: Path, make_video: Callable[..., Path]
) -> None:
    checkpoint = _tiny(tmp_path)
    videos = [make_video(f"v{i}.mp4", num_frames=16 + 4 * i) for i in range(3)]
    black = [_black_video(tmp_path / f"black{i}.mp4") for i in range(3)]
    out = tmp_path / "int8"
    # even-numbered videos calibrate (all black: activation ranges near zero), odd ones check
    calibrate = [black[0], videos[0], black[1], videos[1], black[2], videos[2]]
    result = runner.invoke(
        app,
        ["export", str(checkpoint), "-o", str(out), "--int8", "-q", "--calibrate"]
        + [str(video) for video in calibrate],  # --calibrate VIDEOS...
    )
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "int8 trunk agrees with fp32" in errors[0]
    assert not out.exists()


@pytest.mark.slow
def test_int8_export_of_the_default_model_prints_no_onnxruntime_log(
    tmp_path: Path, make_video: Callable[..., Path], capfd: pytest.CaptureFixture[str]
) -> None:
    """quantize_static's calibration sessions log each unused initializer of the Lite0 graph
    natively (67 lines); the user sees gkaan's own lines only, whatever the outcome."""
    videos = [make_video(f"v{i}.mp4", num_frames=40, size=(96, 72)) for i in range(2)]
    out = tmp_path / "int8"
    result = runner.invoke(
        app,
        ["export", "kth-lite0", "-o", str(out), "--int8", "-q", "--calibrate"]
        + [str(video) for video in videos],
    )
    assert result.exit_code in (0, 1)
    assert "onnxruntime" not in capfd.readouterr().err
