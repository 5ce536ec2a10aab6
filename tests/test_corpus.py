"""The reliability corpus (issue 24): hostile option values, model folders, registries, Hub
answers, playlists in disguise, outputs and file names, each through the real command line.

Every case must end within its timeout with exit 0, 1 or 2 (the one it expects), print one
``error:`` line (or Typer's one usage message) and no traceback, and write nothing but its
own output. The Hub is a server on 127.0.0.1 started here (it answers garbage, a list, a tree
of the wrong shape, a byte every half second, or an endless body) and stops with the module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from conftest import write_video
from safetensors.torch import load_file, save_file

from gkaan_cli.config import GKAANConfig, PreprocessConfig, SamplingConfig
from gkaan_cli.model.gkaan import GKAAN

ROOT = Path(__file__).resolve().parents[1]
#: Seconds any one case may run: a hang fails the test instead of CI.
CASE_TIMEOUT = 120
#: The Hub limits the cases run under (small, so the slow and endless answers end soon).
HUB_DEADLINE_S = "3"
HUB_MAX_BYTES = "1000000"
#: A file name a terminal or a page could act on (ESC, BEL, markup).
HOSTILE_NAME = "a\x1b[31mred\x07<b>x<b>.mp4"


class _Hub(BaseHTTPRequestHandler):
    """``/<mode>/...``: how this fake Hub answers every request under that prefix."""

    requests: ClassVar[list[str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        _Hub.requests.append(self.path)
        mode = self.path.strip("/").split("/")[0]
        if "agent-harnesses" in self.path:  # huggingface_hub's own telemetry registry
            return self._send(b'{"standardEnvVars": [], "harnesses": {}}')
        if mode == "slow":
            return self._drip()
        if mode == "huge":
            return self._endless()
        body = {
            "garbage": b"{not json",
            "list": b"[1, 2, 3]",
            "tree": json.dumps({"sha": "a" * 40, "siblings": {"rfilename": 3}}).encode(),
        }.get(mode, b"")
        self._send(body, status=200 if body else 404)

    def _send(self, body: bytes, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _drip(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        try:
            for _ in range(600):  # at most 5 minutes, then the thread ends by itself
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.5)
        except OSError:
            pass

    def _endless(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        try:
            self.wfile.write(b"[")
            for _ in range(4096):  # 8 GB at most, then the thread ends by itself
                self.wfile.write(b"1," * (1 << 20))
        except OSError:
            pass


@pytest.fixture(scope="module")
def hub() -> Iterator[str]:
    """The fake Hub's base URL; the server runs in daemon threads and stops with the module."""
    _Hub.requests.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def _edit_tensors(folder: Path, edit: dict[str, torch.Tensor], convert: str | None = None) -> None:
    path = folder / "model.safetensors"
    tensors = load_file(path)
    if convert is not None:
        tensors[convert] = tensors[convert].to(torch.float8_e4m3fn)
    save_file(tensors | edit, path)


def _copy_model(source: Path, target: Path) -> Path:
    target.mkdir()
    for name in ("config.json", "model.safetensors"):
        (target / name).write_bytes((source / name).read_bytes())
    return target


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory, hub: str) -> Path:
    """Videos, model folders, registries and playlists of the corpus, in one folder."""
    work = tmp_path_factory.mktemp("corpus")
    write_video(work / "vid.mp4", 12)
    write_video(work / "two_frames.mkv", 2)
    write_video(work / "hourly.mp4", 3, fps=Fraction(1, 3600))
    write_video(work / "names" / HOSTILE_NAME, 8)
    torch.manual_seed(0)
    config = GKAANConfig(
        num_classes=2,
        backbone="resnet18",
        sru_hidden=16,
        sru_layers=1,
        la_hidden=8,
        preprocess=PreprocessConfig(resize=(40, 40), crop=32),
        sampling=SamplingConfig(clip_len=4, stride=4, max_clips=2),
    )
    model = GKAAN(config).save_pretrained(work / "model")
    huge = _copy_model(model, work / "cfg_big_model")
    raw = json.loads((huge / "config.json").read_text())
    raw["preprocess"] = {"resize": [4096, 4096], "crop": 4096}
    raw["sampling"] |= {"clip_len": 1024}
    raw["num_classes"], raw["sru_hidden"], raw["sru_layers"] = 100_000, 8192, 32
    (huge / "config.json").write_text(json.dumps(raw))
    _edit_tensors(_copy_model(model, work / "fp8_model"), {}, convert="srus.gp.layers.0.skip.bias")
    ood = {
        "ood.bank": torch.ones(4, 512),
        "ood.k": torch.tensor(-3),
        "ood.limit_video": torch.tensor(0.5),
        "ood.limit_clip": torch.tensor(0.5),
    }
    _edit_tensors(_copy_model(model, work / "ood_model"), ood)
    truncated = _copy_model(model, work / "truncated_model") / "model.safetensors"
    truncated.write_bytes(truncated.read_bytes()[:5000])
    (work / "pickle_model").mkdir()
    torch.save({"w": torch.zeros(2)}, work / "pickle_model" / "model.pt")
    for name, content in {
        "random": bytes(range(256)) * 4,
        "list": b"[1, 2]",
        "nohash": json.dumps({"default": "m", "models": {"m": {"repo": "org/name"}}}).encode(),
    }.items():
        (work / "registries" / name).mkdir(parents=True)
        (work / "registries" / name / "registry.json").write_bytes(content)
    lists = work / "lists"
    lists.mkdir()
    os.mkfifo(lists / "fifo.ts")
    hls = "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{}\n#EXT-X-ENDLIST\n"
    (lists / "fifo.m3u8").write_text(hls.format(lists / "fifo.ts"))
    (lists / "hls.mp4").write_text(hls.format(lists / "fifo.ts"))
    (lists / "net.m3u8").write_text(hls.format(f"{hub}/playlist/segment.ts"))
    (lists / "concat.mkv").write_text(f"ffconcat version 1.0\nfile '{work / 'vid.mp4'}'\n")
    (lists / "concat.mp4").write_text(f"ffconcat version 1.0\nfile '{lists / 'fifo.ts'}'\n")
    specials = work / "specials"
    specials.mkdir()
    os.mkfifo(specials / "fifo.mp4")
    (specials / "zero.mp4").symlink_to("/dev/zero")
    return work


@dataclass(frozen=True)
class Case:
    """One command line of the corpus and what it must do."""

    args: tuple[str, ...]
    code: int
    says: str = ""  # a piece of the one error line (empty: exit 0, no error)
    env: dict[str, str] = field(default_factory=dict)
    writes: tuple[str, ...] = ()  # what it may write (names relative to the work folder)
    hub: bool = False  # HF_ENDPOINT is the fake Hub (under /<mode>), not offline
    errors: int = 1  # error lines when it fails (a batch reports each bad input)


def _predict(*args: str) -> tuple[str, ...]:
    return ("predict", *args, "--model", "model", "--device", "cpu", "-q")


PLAYLISTS = ("fifo.m3u8", "hls.mp4", "net.m3u8", "concat.mkv", "concat.mp4")
CASES: dict[str, Case] = {
    # option values: a usage error before any work
    **{
        f"{option}={value}": Case(_predict("two_frames.mkv", "--timeline", option, value), 2)
        for option, value in [
            ("--window", "inf"),
            ("--window", "1e308"),
            ("--window", "nan"),
            ("--hop", "inf"),
            ("--hop", "1e308"),
            ("--hop", "0"),
            ("--smooth", "99999999999999999999"),
            ("--min-duration", "inf"),
        ]
    },
    **{
        f"{option}={value}": Case(_predict("vid.mp4", option, value), 2)
        for option, value in [
            ("--threads", "99999999999999999999"),
            ("--threads", "100000"),
            ("--batch-size", "99999999999999999999"),
            ("--top-k", "99999999999999999999"),
            ("--ood-threshold", "nan"),
            ("--clip-len", "1000000000"),
        ]
    },
    "empty input": Case(_predict(""), 2),
    "empty model": Case(("predict", "vid.mp4", "--model", ""), 2),
    # the writer at one frame per hour
    "save-video hourly": Case(
        _predict("hourly.mp4", "--save-video", "sv"), 0, writes=("sv/hourly.gkaan.mp4",)
    ),
    "visualize hourly": Case(
        ("visualize", "hourly.mp4", "--model", "model", "--device", "cpu", "-q", "-o", "h.mp4"),
        0,
        writes=("h.mp4",),
    ),
    # model folders
    "config too big": Case(("predict", "vid.mp4", "--model", "cfg_big_model"), 1, "needs about"),
    "fp8 weight": Case(("predict", "vid.mp4", "--model", "fp8_model"), 1, "float8_e4m3fn"),
    "ood negative k": Case(("predict", "vid.mp4", "--model", "ood_model"), 1, "ood.k is -3"),
    "truncated weights": Case(("predict", "vid.mp4", "--model", "truncated_model"), 1, "safetens"),
    "pickle model": Case(("predict", "vid.mp4", "--model", "pickle_model"), 1, "pickle"),
    "hub id traversal": Case(("predict", "vid.mp4", "--model", "org/.."), 2, "not an existing"),
    # registries
    **{
        f"registry {name} {' '.join(args)}": Case(
            args, 1, "registry", env={"GKAAN_WEIGHTS_DIR": f"registries/{name}"}
        )
        for name, args in [
            ("random", ("info",)),
            ("list", ("info", "--json")),
            ("nohash", ("predict", "vid.mp4")),
            ("random", ("predict", "vid.mp4")),
        ]
    },
    # the Hub answers badly
    **{
        f"hub {mode} {command}": Case(
            ("hub", "pull", "org/name")
            if command == "pull"
            else ("predict", "vid.mp4", "--model", "org/name", "-q"),
            1,
            "org/name: ",
            env={"HF_ENDPOINT_MODE": mode},
            hub=True,
        )
        for mode, command in [
            ("garbage", "pull"),
            ("list", "pull"),
            ("tree", "pull"),
            ("slow", "pull"),
            ("huge", "pull"),
            ("list", "predict"),
            ("slow", "predict"),
        ]
    },
    # playlists in disguise: nothing they list is opened (one batch: each input one line)
    "playlists": Case(
        _predict(*(f"lists/{name}" for name in PLAYLISTS)),
        1,
        "not a video",
        errors=len(PLAYLISTS),
    ),
    "special inputs": Case(
        _predict("specials/fifo.mp4", "specials/zero.mp4", "/dev/null"),
        1,
        "not a regular file",
        errors=3,
    ),
    # outputs
    "output over the model's config": Case(
        _predict("vid.mp4", "-o", "model/config.json"), 2, "is also an input"
    ),
    "output over the model's weights": Case(
        _predict("vid.mp4", "-o", "./model/../model/model.safetensors", "-f", "json"),
        2,
        "is also an input",
    ),
    "output over the input": Case(
        _predict("vid.mp4", "-o", "vid.mp4", "-f", "json"), 2, "is also an input"
    ),
    "output /dev/null": Case(_predict("vid.mp4", "-o", "/dev/null"), 0),
    "output /dev/null json": Case(_predict("vid.mp4", "-o", "/dev/null", "-f", "json"), 0),
    "output /dev/stdout": Case(_predict("vid.mp4", "-o", "/dev/stdout", "-f", "json"), 0),
    "output /dev/full": Case(_predict("vid.mp4", "-o", "/dev/full", "-f", "json"), 1, "full"),
    # file names a terminal or a page could act on
    "hostile name": Case(_predict("names", "--report", "r.html"), 0, writes=("r.html",)),
}


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(folder)): (path.lstat().st_size, path.lstat().st_mtime_ns)
        for path in folder.rglob("*")
        if path.is_file() and not path.is_symlink()
    }


def _run(case: Case, work: Path, hub: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "PYTHONPATH": str(ROOT),
        "COLUMNS": "200",
        "HF_HOME": str(home),  # huggingface_hub's own caches stay out of the user's home
        "HF_HUB_CACHE": str(home / "hub"),
        "GKAAN_HUB_DEADLINE": HUB_DEADLINE_S,
        "GKAAN_HUB_MAX_BYTES": HUB_MAX_BYTES,
    }
    env |= {key: value for key, value in case.env.items() if key != "HF_ENDPOINT_MODE"}
    if case.hub:
        env.pop("HF_HUB_OFFLINE", None)
        env["HF_ENDPOINT"] = f"{hub}/{case.env['HF_ENDPOINT_MODE']}"
    else:
        env["HF_HUB_OFFLINE"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "gkaan_cli", *case.args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        errors="backslashreplace",
        timeout=CASE_TIMEOUT,
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_corpus_case(name: str, work: Path, hub: str, tmp_path: Path) -> None:
    case = CASES[name]
    before = _snapshot(work)
    result = _run(case, work, hub, tmp_path)
    assert result.returncode == case.code, result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert "\x1b" not in result.stderr  # no escape sequence reaches the terminal
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    if case.code == 2 and not errors:  # Typer's usage message: one box, one problem
        assert result.stderr.count("Invalid value") + result.stderr.count("Error") >= 1
    elif case.code:
        assert len(errors) == case.errors, result.stderr
        assert case.says in errors[0], result.stderr
    else:
        assert not errors, result.stderr
    after = _snapshot(work)
    changed = {path for path, stat in after.items() if before.get(path) != stat}
    assert changed <= set(case.writes), changed
    assert set(before) <= set(after)  # nothing removed
    assert not any(".tmp" in path for path in after)  # outputs land whole, no temp files
    if name == "playlists":  # the URL a playlist lists was never fetched
        assert not [path for path in _Hub.requests if path.startswith("/playlist")]
    if name == "hostile name":
        page = (work / "r.html").read_text()
        assert "\x1b" not in page and "<b>x" not in page and "\\x1b[31mred" in page
    for path in changed:
        (work / path).unlink()  # the next case starts from the same folder
