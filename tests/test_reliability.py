"""Hostile input (README "Files and models"): regular files only, nothing hangs, nothing is
overwritten, nothing tampered loads."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from gkaan_cli.config import GKAANConfig, PreprocessConfig, SamplingConfig
from gkaan_cli.data.dataset import ClipDataset, FeatureDataset
from gkaan_cli.data.manifest import MANIFEST_NAME, load_manifest, write_manifest
from gkaan_cli.data.prepare import PrepareOptions, prepare
from gkaan_cli.data.sources import SplitOptions, discover
from gkaan_cli.errors import (
    BadCheckpointError,
    BadDataError,
    BadVideoError,
    OutputError,
    UsageError,
)
from gkaan_cli.fileio import (
    LOCK_NAME,
    PathLock,
    atomic_write_text,
    check_output_path,
    cleanup_stale_temps,
    regular_file_problem,
    sha256_file,
)
from gkaan_cli.model.checkpoint import read_checkpoint, read_training_state, write_checkpoint
from gkaan_cli.model.hub_client import parse_hub_id
from gkaan_cli.model.locate import resolve_checkpoint
from gkaan_cli.model.registry import checkpoint_hashes, update_registry_hashes
from gkaan_cli.video import reader
from gkaan_cli.video.reader import probe_video

ROOT = Path(__file__).resolve().parents[1]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
SMALL_SAMPLING = SamplingConfig(clip_len=4, stride=2, max_clips=2)


def run_cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m gkaan_cli ARGS`` with this checkout first on the path, killed at timeout."""
    env = os.environ | {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "gkaan_cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
    )


@pytest.fixture
def specials(tmp_path: Path) -> dict[str, Path]:
    """Paths named like videos that are not regular files."""
    folder = tmp_path / "specials"
    folder.mkdir()
    fifo = folder / "fifo.mp4"
    os.mkfifo(fifo)
    (folder / "zero.mp4").symlink_to("/dev/zero")
    (folder / "loop.mp4").symlink_to(folder / "loop.mp4")
    (folder / "dangling.mp4").symlink_to(folder / "gone.mp4")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / "sock.mp4"))
    sock.close()
    return {p.stem: p for p in folder.iterdir()}


@pytest.fixture
def recording_server() -> Iterator[SimpleNamespace]:
    """An HTTP server on 127.0.0.1 that records each request's path and answers 404; it
    runs in a daemon thread and stops with the test."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_port}", requests=requests)
    finally:
        server.shutdown()
        server.server_close()


# -- inputs: regular files only ----------------------------------------------------------


def test_special_files_are_refused_at_once_without_opening(specials: dict[str, Path]) -> None:
    expected = {
        "fifo": "a FIFO",
        "zero": "a character device",
        "loop": "a symbolic link loop",
        "dangling": "a dangling symbolic link",
        "sock": "a socket",
    }
    for name, kind in expected.items():
        started = time.monotonic()
        with pytest.raises(BadVideoError, match=f"not a regular file \\({kind}\\)"):
            probe_video(specials[name])
        with pytest.raises(BadVideoError, match="not a regular file"):
            list(reader.read_frames(specials[name]))
        assert time.monotonic() - started < 5
        assert regular_file_problem(specials[name]) == f"not a regular file ({kind})"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("list.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{target}\n#EXT-X-ENDLIST\n"),
        ("x.mp4", "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{target}\n#EXT-X-ENDLIST\n"),
        ("x.mkv", "ffconcat version 1.0\nfile '{target}'\n"),
        ("list.ffconcat", "ffconcat version 1.0\nfile '{target}'\n"),
    ],
)
@pytest.mark.parametrize("target", ["fifo", "video", "url"])
def test_a_playlist_in_disguise_opens_nothing_it_lists(
    tmp_path: Path,
    make_video: Callable[..., Path],
    recording_server: SimpleNamespace,
    name: str,
    text: str,
    target: str,
) -> None:
    fifo = tmp_path / "fifo.ts"
    os.mkfifo(fifo)
    listed = {
        "fifo": str(fifo),
        "video": str(make_video("real.mp4", num_frames=8)),
        "url": f"{recording_server.url}/segment.ts",
    }[target]
    playlist = tmp_path / name
    playlist.write_text(text.format(target=listed))
    started = time.monotonic()
    with pytest.raises(BadVideoError, match="not a video"):
        probe_video(playlist)
    with pytest.raises(BadVideoError, match="not a video"):
        list(reader.read_frames(playlist))
    assert time.monotonic() - started < 10  # the FIFO is never opened (it would block)
    assert recording_server.requests == []


def test_sha256_refuses_a_fifo_and_dev_zero_instead_of_blocking(
    specials: dict[str, Path],
) -> None:
    for name in ("fifo", "zero"):
        with pytest.raises(OSError, match="not a regular file"):
            sha256_file(specials[name])


@pytest.mark.slow
def test_prepare_does_not_hang_on_a_fifo_or_dev_zero(
    tmp_path: Path, make_video: Callable[..., Path]
) -> None:
    src = tmp_path / "src"
    make_video("src/boxing/good.mp4", num_frames=8)
    (src / "walking").mkdir()
    os.mkfifo(src / "walking" / "fifo.mp4")
    (src / "walking" / "zero.mp4").symlink_to("/dev/zero")
    result = run_cli(
        "prepare", str(src), str(tmp_path / "out"), "--clip-len", "4", cwd=tmp_path, timeout=180
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    manifest = load_manifest(tmp_path / "out")
    reasons = {Path(v.path).name: v.reason for v in manifest.videos if v.status == "failed"}
    assert reasons == {
        "fifo.mp4": "not a regular file (a FIFO)",
        "zero.mp4": "not a regular file (a character device)",
    }
    # the class folder has no readable video: named in the report
    assert "class folder 'walking' has no readable video" in result.stdout


def test_class_folder_without_a_readable_video_is_a_warning(
    tmp_path: Path, make_video: Callable[..., Path]
) -> None:
    make_video("src/boxing/a.mp4", num_frames=4)
    (tmp_path / "src" / "empty").mkdir()
    source = discover(tmp_path / "src")
    assert source.classes == ("boxing", "empty")
    assert [(Path(p).name, r) for p, r in source.warnings] == [
        ("empty", "class folder 'empty' has no readable video")
    ]


@pytest.mark.skipif(IS_ROOT, reason="root reads folders whatever their mode")
def test_unreadable_folder_is_reported_not_skipped(
    tmp_path: Path, make_video: Callable[..., Path]
) -> None:
    make_video("src/boxing/a.mp4", num_frames=4)
    locked = tmp_path / "src" / "boxing" / "more"
    make_video("src/boxing/more/b.mp4", num_frames=4)
    locked.chmod(0)
    try:
        source = discover(tmp_path / "src")
    finally:
        locked.chmod(0o755)
    assert any("unreadable folder" in reason for _, reason in source.warnings)


@pytest.mark.slow
def test_non_utf8_file_name_is_prepared_and_stored_losslessly(
    tmp_path: Path, make_video: Callable[..., Path]
) -> None:
    good = make_video("src/boxing/plain.mp4", num_frames=6)
    odd = Path(os.fsdecode(os.fsencode(good.parent) + b"/caf\xe9.mp4"))
    odd.write_bytes(good.read_bytes())
    report = prepare(
        tmp_path / "src", tmp_path / "out", PrepareOptions(sampling=SMALL_SAMPLING, resize=(32, 32))
    )
    assert report.ok == 2 and report.failed == 0
    manifest = load_manifest(tmp_path / "out")
    assert os.fsencode(odd) in {os.fsencode(v.path) for v in manifest.videos}
    json.loads((tmp_path / "out" / MANIFEST_NAME).read_text(encoding="utf-8"))  # valid JSON
    result = run_cli("prepare", str(tmp_path / "src"), str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("rate", [0.0, 2.0**-31, 90000.0])
def test_absurd_stated_frame_rates_are_not_believed(rate: float) -> None:
    stream = SimpleNamespace(average_rate=rate, guessed_rate=rate, base_rate=rate)
    assert reader.stated_fps(stream) == 0.0  # type: ignore[arg-type]
    sane = SimpleNamespace(average_rate=rate, guessed_rate=None, base_rate=25.0)
    assert reader.stated_fps(sane) == 25.0  # type: ignore[arg-type]


def test_video_with_an_absurd_rate_gets_a_plausible_fps_or_a_clear_error(
    make_video: Callable[..., Path],
) -> None:
    from fractions import Fraction

    path = make_video("fast.mkv", num_frames=10, fps=Fraction(90000), codec="libx264")
    try:
        info = probe_video(path)
    except BadVideoError as error:
        assert "implausible frame rate" in str(error)
    else:
        assert reader.MIN_FPS <= info.fps <= reader.MAX_FPS
        assert 0 < info.duration < 10**6


# -- outputs -----------------------------------------------------------------------------


def test_output_that_is_a_directory_or_under_a_file_is_refused_before_work(
    tmp_path: Path,
) -> None:
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(OutputError, match="is a directory"):
        check_output_path(tmp_path / "dir.json")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="not a directory"):
        check_output_path(tmp_path / "file" / "out.json")
    with pytest.raises(OutputError, match="exists and is not a directory"):
        check_output_path(tmp_path / "file", kind="dir")
    assert check_output_path(tmp_path / "new" / "deeper" / "out.json").name == "out.json"


def test_output_naming_an_input_is_a_usage_error(tmp_path: Path) -> None:
    video = tmp_path / "x.mp4"
    video.write_bytes(b"video")
    (tmp_path / "link.json").symlink_to(video)
    for target in (video, tmp_path / "link.json", tmp_path / "." / "x.mp4"):
        with pytest.raises(UsageError, match="is also an input"):
            check_output_path(target, inputs=[video])


def test_character_devices_are_outputs_written_in_place(tmp_path: Path) -> None:
    assert check_output_path("/dev/null") == Path("/dev/null")
    atomic_write_text("/dev/null", "results\n")
    assert Path("/dev/null").is_char_device()  # written, not replaced
    with pytest.raises(OutputError, match=r"/dev/full: cannot write .*disk is full"):
        atomic_write_text("/dev/full", "results\n")
    assert list(tmp_path.iterdir()) == []


def test_a_fifo_nothing_reads_is_refused_as_an_output_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "out.json"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="a FIFO that nothing reads"):
        check_output_path(fifo)


def test_predict_output_over_its_input_is_refused_and_the_video_survives(
    tmp_path: Path, make_video: Callable[..., Path]
) -> None:
    video = make_video("x.mp4", num_frames=4)
    before = video.read_bytes()
    result = run_cli("predict", str(video), "-o", str(video), "--format", "json", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "is also an input" in result.stderr and "Traceback" not in result.stderr
    assert video.read_bytes() == before


def test_write_errors_become_one_line_naming_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OutputError, match=r"out\.json: cannot write .*disk is full"):
        atomic_write_text(tmp_path / "out.json", "{}")
    assert list(tmp_path.iterdir()) == []  # the temp file is gone too
    monkeypatch.undo()
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="cannot write"):
        atomic_write_text(tmp_path / "file" / "out.json", "{}")


def test_stale_temp_files_of_a_killed_run_are_cleaned_up(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.{dead.pid}-0123abcd.tmp.json"
    live = tmp_path / f".out.{os.getpid()}-0123abcd.tmp.json"
    other = tmp_path / f".other.{dead.pid}-0123abcd.tmp.json"
    for path in (stale, live, other):
        path.write_text("half")
    check_output_path(tmp_path / "out.json")
    assert not stale.exists() and live.exists() and other.exists()
    assert cleanup_stale_temps(tmp_path) == [other]


def test_save_video_names_never_collide_with_an_input(tmp_path: Path) -> None:
    from gkaan_cli.apis.predict import overlay_paths

    inputs = [tmp_path / "a.gkaan.mp4", tmp_path / "a.mp4"]
    for path in inputs:
        path.write_bytes(b"video")
    predictions = [SimpleNamespace(path=str(p)) for p in inputs]
    targets = overlay_paths(predictions, tmp_path)  # type: ignore[arg-type]
    assert not {t.resolve() for t in targets} & {p.resolve() for p in inputs}
    assert len(set(targets)) == 2


def test_prepare_into_a_folder_another_prepare_holds_is_refused(
    tmp_path: Path, make_video: Callable[..., Path]
) -> None:
    make_video("src/boxing/a.mp4", num_frames=4)
    out = tmp_path / "out"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        out.mkdir()
        (out / LOCK_NAME).write_text(f"{other.pid}\n")
        with pytest.raises(OutputError, match=f"another gkaan process \\(pid {other.pid}\\)"):
            prepare(tmp_path / "src", out, PrepareOptions(sampling=SMALL_SAMPLING))
        assert not (out / MANIFEST_NAME).exists()
    finally:
        other.kill()
        other.wait()
    # the holder is gone: its lock is stale and taken over
    report = prepare(
        tmp_path / "src", out, PrepareOptions(sampling=SMALL_SAMPLING, resize=(32, 32))
    )
    assert report.ok == 1 and not (out / LOCK_NAME).exists()


def test_path_lock_is_exclusive_within_a_process(tmp_path: Path) -> None:
    with PathLock(tmp_path / "d"), pytest.raises(OutputError, match=f"pid {os.getpid()}"):
        PathLock(tmp_path / "d").acquire()
    PathLock(tmp_path / "d").acquire().release()


# -- models and caches -------------------------------------------------------------------


def _checkpoint(folder: Path, **tensors: torch.Tensor) -> Path:
    config = GKAANConfig(num_classes=2, backbone="resnet18")
    return write_checkpoint(folder, config, tensors or {"w": torch.zeros(2)})


@pytest.fixture
def weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "weights"
    _checkpoint(folder / "mine")
    entry = {"path": "mine", "sha256": checkpoint_hashes(folder / "mine")}
    (folder / "registry.json").write_text(
        json.dumps({"default": "mine", "models": {"mine": entry}})
    )
    monkeypatch.setenv("GKAAN_WEIGHTS_DIR", str(folder))
    return folder


def test_tampered_config_beside_registered_weights_is_refused(weights: Path) -> None:
    assert resolve_checkpoint("mine") == weights / "mine"
    config = weights / "mine" / "config.json"
    config.write_text(config.read_text().replace('"num_classes": 2', '"num_classes": 3'))
    with pytest.raises(BadCheckpointError, match=r"config\.json: sha256 does not match"):
        resolve_checkpoint(None)


def test_registry_hashes_are_recomputed_by_one_call(weights: Path) -> None:
    _checkpoint(weights / "mine", w=torch.ones(3))
    with pytest.raises(BadCheckpointError):
        resolve_checkpoint("mine")
    assert update_registry_hashes("mine") == checkpoint_hashes(weights / "mine")
    assert resolve_checkpoint("mine") == weights / "mine"


def test_shipped_registry_pins_every_loaded_file() -> None:
    raw = json.loads((ROOT / "weights" / "registry.json").read_text())
    for entry in raw["models"].values():
        assert set(entry["sha256"]) == {"config.json", "model.safetensors"}


def test_cwd_folder_never_shadows_a_registry_name(
    weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = tmp_path / "cwd"
    _checkpoint(cwd / "mine")
    monkeypatch.chdir(cwd)
    assert resolve_checkpoint("mine") == weights / "mine"
    assert resolve_checkpoint(None) == weights / "mine"
    assert resolve_checkpoint("./mine").resolve() == (cwd / "mine").resolve()


@pytest.mark.parametrize(
    "spec",
    ["org/..", "../x", "org/a..b", "org/name@main/../x", "org/name@a//b", "org/name@./x"],
)
def test_hub_ids_that_could_leave_the_cache_are_refused(spec: str) -> None:
    assert parse_hub_id(spec) is None
    with pytest.raises(BadCheckpointError, match="not an existing path"):
        resolve_checkpoint(spec)


def test_hub_revision_flag_is_validated(weights: Path) -> None:
    with pytest.raises(UsageError, match="not a valid branch"):
        resolve_checkpoint("org/name", revision="../../x")


@pytest.mark.parametrize(
    "bad",
    [
        {"num_classes": 10**9},
        {"sru_hidden": 10**7},
        {"la_hidden": 10**7},
        {"sampling": {"clip_len": 1_000_000_000}},
        {"sampling": {"mode": "segments", "num_segments": 1000, "frames_per_segment": 1000}},
        {"preprocess": {"resize": [100000, 100000]}},
        {"preprocess": {"resize": [64, 64], "crop": 128}},
        {"preprocess": {"std": [0.0, 1.0, 1.0]}},
        {"preprocess": {"mean": [float("nan"), 0.0, 0.0]}},
        {"stream_weights": [1.0, float("inf"), 1.0]},
    ],
)
def test_hostile_config_values_are_refused_by_pydantic(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        GKAANConfig.model_validate({"num_classes": 2} | bad)


#: Legal sizes that no machine holds: about 470 GB of weights, frames and activations.
HUGE_CONFIG = {
    "num_classes": 100_000,
    "backbone": "resnet50",
    "sru_hidden": 8192,
    "sru_layers": 32,
    "preprocess": {"resize": [4096, 4096], "crop": 4096},
    "sampling": {"clip_len": 1024},
}


def test_a_config_the_machine_cannot_hold_is_refused_naming_its_fields(tmp_path: Path) -> None:
    from gkaan_cli.config import memory_problem

    config = GKAANConfig.model_validate(HUGE_CONFIG)
    assert memory_problem(config, available=10**15) is None
    assert "sized by preprocess.resize, sampling.clip_len" in str(
        memory_problem(config, available=10**9)
    )
    small = GKAANConfig(num_classes=2, backbone="resnet18", sru_hidden=8, sru_layers=1)
    weights = memory_problem(
        small.model_copy(update={"sru_layers": 32, "sru_hidden": 8192}), available=10**9
    )
    assert "most of it weights" in str(weights) and "sru_hidden" in str(weights)
    folder = _checkpoint(tmp_path / "ckpt")
    (folder / "config.json").write_text(json.dumps(HUGE_CONFIG))
    with pytest.raises(BadCheckpointError, match=r"config\.json: config needs about \d+"):
        read_checkpoint(folder)


def test_hostile_flag_is_one_line_before_any_allocation(
    tmp_path: Path, make_video: Callable[..., Path]
) -> None:
    video = make_video("x.mp4", num_frames=4)
    result = run_cli("predict", str(video), "--clip-len", "1000000000", cwd=tmp_path)
    # refused by the option's bound at parse time (a usage error naming the flag), before
    # any model or clip is built
    assert result.returncode == 2, result.stderr
    assert "--clip-len" in result.stderr and "1024" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("tensor", "reason"),
    [
        (torch.tensor([1.0, float("nan")]), "NaN or Inf"),
        (torch.tensor([float("inf")]), "NaN or Inf"),
        (torch.tensor([1, 2], dtype=torch.int32), "not floating point"),
    ],
)
def test_weights_must_be_finite_floats(tmp_path: Path, tensor: torch.Tensor, reason: str) -> None:
    folder = _checkpoint(tmp_path / "ckpt", w=tensor)
    with pytest.raises(BadCheckpointError, match=reason):
        read_checkpoint(folder)


def test_weights_of_an_unsupported_dtype_are_refused_by_name(tmp_path: Path) -> None:
    folder = _checkpoint(tmp_path / "ckpt", w=torch.zeros(2).to(torch.float8_e4m3fn))
    with pytest.raises(BadCheckpointError, match="'w' is float8_e4m3fn, an unsupported dtype"):
        read_checkpoint(folder)


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("k", torch.tensor(-3), "ood.k is -3, not a count"),
        ("k", torch.tensor([1, 2]), "ood.k has 2 values"),
        ("limit_video", torch.tensor(0.0), "ood.limit_video is 0, not a positive limit"),
        ("limit_clip", torch.tensor(-1.0), "ood.limit_clip is -1, not a positive limit"),
    ],
)
def test_ood_statistics_are_validated_like_the_weights(
    key: str, value: torch.Tensor, reason: str
) -> None:
    from gkaan_cli.model.ood import OODStats

    state = {
        "ood.bank": torch.ones(4, 8),
        "ood.k": torch.tensor(2),
        "ood.limit_video": torch.tensor(0.5),
        "ood.limit_clip": torch.tensor(0.5),
    } | {f"ood.{key}": value}
    with pytest.raises(ValueError, match=reason):
        OODStats.from_state(state, prefix="ood.", channels=8)


@pytest.mark.parametrize(
    ("key", "value"),
    [("std", torch.zeros(3)), ("fitted", torch.tensor(0.5)), ("fps", torch.tensor(-25.0))],
)
def test_gm_statistics_a_head_could_not_use_are_refused(
    tmp_path: Path, key: str, value: torch.Tensor
) -> None:
    folder = _checkpoint(tmp_path / "ckpt", **{f"motion_head.{key}": value})
    with pytest.raises(BadCheckpointError, match=f"'motion_head.{key}' must be"):
        read_checkpoint(folder)


@pytest.mark.slow
@pytest.mark.parametrize("content", [bytes(range(128, 256)), b"[1, 2]", b"{"])
def test_a_registry_of_garbage_is_one_line(weights: Path, tmp_path: Path, content: bytes) -> None:
    (weights / "registry.json").write_bytes(content)
    with pytest.raises(BadCheckpointError, match="invalid model registry"):
        resolve_checkpoint(None)
    for args in (("info",), ("info", "--json")):
        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith("error: ") and "invalid model registry" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_batchnorm_step_counters_may_be_integers(tmp_path: Path) -> None:
    folder = _checkpoint(tmp_path / "ckpt", **{"bn.num_batches_tracked": torch.tensor(3)})
    assert read_checkpoint(folder)[1]["bn.num_batches_tracked"].item() == 3


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_training_state_not_written_by_train_is_one_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x80\x04not a zip")
    with pytest.raises(BadCheckpointError, match="unreadable training state"):
        read_training_state(garbage)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(BadCheckpointError, match="not a gkaan training state: missing"):
        read_training_state(other)
    listed = tmp_path / "list.pt"
    torch.save([1, 2], listed)
    with pytest.raises(BadCheckpointError, match="not a dict"):
        read_training_state(listed)


@pytest.fixture
def prepared(tmp_path: Path, make_video: Callable[..., Path]) -> Path:
    make_video("src/boxing/a.mp4", num_frames=8, size=(64, 64))
    make_video("src/running/b.mp4", num_frames=8, size=(64, 64))
    out = tmp_path / "prepared"
    options = PrepareOptions(
        sampling=SMALL_SAMPLING,
        resize=(32, 32),
        split=SplitOptions(val_fraction=0.0, test_fraction=0.0),
    )
    prepare(tmp_path / "src", out, options)
    return out


def _clip_config(**overrides: object) -> GKAANConfig:
    settings: dict[str, object] = {
        "num_classes": 2,
        "backbone": "resnet18",
        "sampling": SMALL_SAMPLING,
        "preprocess": PreprocessConfig(resize=(32, 32), crop=24),
    }
    return GKAANConfig(**(settings | overrides))


def _edit_manifest(folder: Path, edit: Callable[[dict[str, object]], None]) -> None:
    raw = json.loads((folder / MANIFEST_NAME).read_text())
    edit(raw)
    (folder / MANIFEST_NAME).write_text(json.dumps(raw))


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("shard", "../../outside.jpgs", "not a path inside the prepared folder"),
        ("shard", "/etc/passwd", "not a path inside the prepared folder"),
        ("label_index", 7, "out of range"),
        ("cached_runs", [[0, 999]], "outside the video's"),
    ],
)
def test_tampered_manifest_is_one_line(
    prepared: Path, field: str, value: object, reason: str
) -> None:
    def edit(raw: dict[str, object]) -> None:
        raw["videos"][0][field] = value  # type: ignore[index]

    _edit_manifest(prepared, edit)
    with pytest.raises(UsageError, match=reason):
        load_manifest(prepared)


def test_shard_linked_outside_the_prepared_folder_is_refused(
    prepared: Path, tmp_path: Path
) -> None:
    record = load_manifest(prepared).videos[0]
    shard = prepared / str(record.shard)
    outside = tmp_path / "elsewhere.jpgs"
    shard.replace(outside)
    shard.symlink_to(outside)
    with pytest.raises(BadDataError, match="outside the prepared folder"):
        ClipDataset(prepared, "train", _clip_config(), train=False)


def test_corrupt_shard_is_one_line_and_a_prepare_rerun_rebuilds_it(
    prepared: Path, tmp_path: Path
) -> None:
    record = load_manifest(prepared).videos[0]
    shard = prepared / str(record.shard)
    good = shard.read_bytes()
    corrupt = bytearray(good)
    corrupt[10:400] = bytes(390)  # inside the first JPEG; the footer stays valid
    shard.write_bytes(bytes(corrupt))
    with pytest.raises(BadDataError, match=f"{shard.name}: corrupt shard"):  # its sha256
        ClipDataset(prepared, "train", _clip_config(), train=False)
    _edit_manifest(prepared, lambda raw: raw["videos"][0].update(shard_sha256=None))
    dataset = ClipDataset(prepared, "train", _clip_config(), train=False)  # no sha256 to check
    with pytest.raises(BadDataError, match=f"{shard.name}: corrupt shard"):
        for index in range(len(dataset)):
            dataset[index]
    _edit_manifest(prepared, lambda raw: raw["videos"][0].update(shard_sha256=record.shard_sha256))
    options = PrepareOptions(
        sampling=SMALL_SAMPLING,
        resize=(32, 32),
        split=SplitOptions(val_fraction=0.0, test_fraction=0.0),
    )
    report = prepare(tmp_path / "src", prepared, options)
    assert report.ok == 1 and report.skipped == 1
    assert shard.read_bytes() == good
    assert sha256_file(shard) == load_manifest(prepared).videos[0].shard_sha256


def test_feature_shards_are_checked_against_the_model(prepared: Path) -> None:
    manifest = load_manifest(prepared)
    videos = []
    for record in manifest.videos:
        name = f"features/{Path(str(record.shard)).stem}.npy"
        maps = np.zeros((len(record.cached_frames), 64, 7, 7), np.float16)  # resnet18 has 512
        np.save(prepared / name, maps)
        videos.append(record.model_copy(update={"features": name}))
    settings = manifest.settings.model_copy(update={"features": "resnet18"})
    write_manifest(manifest.model_copy(update={"videos": videos, "settings": settings}), prepared)
    with pytest.raises(BadDataError, match=r"feature shard is float16 \(\d+, 64, 7, 7\)"):
        FeatureDataset(prepared, "train", _clip_config(), train=False)


def test_non_finite_probabilities_are_an_error_for_that_video(
    make_video: Callable[..., Path],
) -> None:
    from gkaan_cli.engine.predict import Predictor
    from gkaan_cli.model.gkaan import GKAAN

    torch.manual_seed(0)
    model = GKAAN(_clip_config(sru_hidden=16, sru_layers=1))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(float("nan"))
    video = make_video("x.mp4", num_frames=8)
    with pytest.raises(BadVideoError, match="non-finite probabilities"):
        Predictor(model, device="cpu").predict_video(video)


@pytest.mark.parametrize(("width", "height"), [(4097, 17), (17, 4097), (1, 1), (65535, 2)])
def test_extreme_geometry_gives_encodable_panels(width: int, height: int) -> None:
    from gkaan_cli.viz.render import MAX_PANEL_WIDTH, VIDEO_PANEL_HEIGHTS, panel_size

    panel_w, panel_h = panel_size(width, height, VIDEO_PANEL_HEIGHTS)
    assert panel_w % 2 == 0 and panel_h % 2 == 0
    assert 2 <= panel_h <= VIDEO_PANEL_HEIGHTS[1]
    assert 32 <= panel_w <= MAX_PANEL_WIDTH


def test_vfr_clip_times_come_from_the_frames_timestamps(tmp_path: Path) -> None:
    """A VFR MKV (frames 0.1 s apart, then 0.5 s apart): clip spans follow the timestamps."""
    from fractions import Fraction

    import av

    from gkaan_cli.engine.predict import Predictor
    from gkaan_cli.model.gkaan import GKAAN

    path = tmp_path / "vfr.mkv"
    stamps = [0.0, 0.1, 0.2, 0.3, 0.8, 1.3, 1.8, 2.3]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for stamp in stamps:
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            frame.pts, frame.time_base = round(stamp * 1000), Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    decoded = [round(f.time, 3) for f in reader.read_frames(path)]
    if decoded != stamps:
        pytest.skip(f"this FFmpeg did not keep the VFR timestamps ({decoded})")
    torch.manual_seed(0)
    model = GKAAN(_clip_config(sru_hidden=16, sru_layers=1))
    prediction = Predictor(model, device="cpu").predict_video(path)
    last = prediction.clips[-1]
    assert last.start == pytest.approx(stamps[last.frames[0]])
    assert last.end > stamps[last.frames[-1]]


def test_special_files_in_a_predict_folder_are_reported_not_skipped(
    specials: dict[str, Path],
) -> None:
    from gkaan_cli.engine.predict import expand_inputs

    paths, errors = expand_inputs([str(specials["fifo"].parent)])
    assert paths == []  # each reported at once, before any model loads, never opened
    assert {Path(e.path).name for e in errors} == {f"{name}.mp4" for name in specials}
    assert all("not a regular file" in str(e) for e in errors)
    for error in errors:
        with pytest.raises(BadVideoError, match="not a regular file"):
            probe_video(error.path)


def test_csv_source_with_a_fifo_row_fails_that_row_only(
    tmp_path: Path, make_video: Callable[..., Path]
) -> None:
    make_video("v/a.mp4", num_frames=6)
    os.mkfifo(tmp_path / "v" / "pipe.mp4")
    (tmp_path / "list.csv").write_text("path,label\nv/a.mp4,boxing\nv/pipe.mp4,walking\n")
    report = prepare(
        tmp_path / "list.csv",
        tmp_path / "out",
        PrepareOptions(sampling=SMALL_SAMPLING, resize=(32, 32)),
    )
    assert report.ok == 1
    assert [(Path(p).name, r) for p, r in report.failures] == [
        ("pipe.mp4", "not a regular file (a FIFO)")
    ]
