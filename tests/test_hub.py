"""Checkpoint resolution (folders, registry, Hub cache) and Hub push, without the network."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar

import httpx2
import huggingface_hub
import numpy as np
import pytest
from huggingface_hub.errors import RepositoryNotFoundError
from safetensors.numpy import save_file

from gkaan_cli.errors import BadCheckpointError, HubError, MissingWeightsError, UsageError
from gkaan_cli.fileio import sha256_file
from gkaan_cli.model import registry
from gkaan_cli.model.checkpoint import CHECKPOINT_FILES
from gkaan_cli.model.hub_client import model_card, push_checkpoint
from gkaan_cli.model.locate import pull_checkpoint, resolve_checkpoint
from gkaan_cli.model.registry import (
    checkpoint_hashes,
    load_registry,
    registry_status,
    weights_dir,
)

COMMIT_MAIN = "a" * 40
COMMIT_V1 = "b" * 40
CONFIG = {"num_classes": 2, "class_names": ["walking", "boxing"], "backbone": "resnet18"}


def write_checkpoint(directory: Path, *, value: float = 1.0) -> Path:
    """A tiny checkpoint folder: config.json + a one-tensor model.safetensors."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(CONFIG))
    save_file({"w": np.full((2, 2), value, np.float32)}, str(directory / "model.safetensors"))
    return directory


def cache_repo(cache: Path, repo_id: str, commit: str, source: Path, refs: tuple[str, ...]) -> Path:
    """Put ``source``'s checkpoint files into ``cache`` exactly as huggingface_hub lays them
    out: blobs/<sha256>, snapshots/<commit>/<file> -> symlink to the blob, refs/<ref> = commit.
    """
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    snapshot.mkdir(parents=True)
    for name in CHECKPOINT_FILES:
        data = (source / name).read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / name).symlink_to(Path("..", "..", "blobs", blob.name))
    for ref in refs:
        (repo / "refs" / ref).write_text(commit)
    return snapshot


@pytest.fixture
def offline_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hub cache in HF_HUB_CACHE with HF_HUB_OFFLINE=1 (read at call time)."""
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


@pytest.fixture
def registry_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A weights folder of our own in GKAAN_WEIGHTS_DIR."""
    weights = tmp_path / "weights"
    weights.mkdir()
    monkeypatch.setenv("GKAAN_WEIGHTS_DIR", str(weights))
    return weights


def write_registry(weights: Path, registry: dict[str, Any]) -> None:
    (weights / "registry.json").write_text(json.dumps(registry))


def test_sha256_file_matches_known_digest(tmp_path: Path) -> None:
    path = tmp_path / "abc.txt"
    path.write_bytes(b"abc")
    assert sha256_file(path) == ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")


def test_weights_dir_is_repository_weights_folder_unless_overridden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GKAAN_WEIGHTS_DIR", raising=False)
    assert weights_dir() == Path(registry.__file__).resolve().parents[2] / "weights"
    monkeypatch.setenv("GKAAN_WEIGHTS_DIR", str(tmp_path))
    assert weights_dir() == tmp_path


def test_shipped_registry_default_is_a_local_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GKAAN_WEIGHTS_DIR", raising=False)
    shipped = load_registry()
    assert shipped.default == "kth-lite0"
    assert shipped.models["kth-lite0"].path == "kth-lite0"


def test_local_checkpoint_folder_resolves_to_itself(tmp_path: Path, registry_dir: Path) -> None:
    folder = write_checkpoint(tmp_path / "ckpt")
    assert resolve_checkpoint(str(folder)) == folder


def test_training_run_resolves_to_best_before_last(tmp_path: Path, registry_dir: Path) -> None:
    run = tmp_path / "run"
    write_checkpoint(run / "last")
    assert resolve_checkpoint(run) == run / "last"
    write_checkpoint(run / "best")
    assert resolve_checkpoint(run) == run / "best"


@pytest.mark.parametrize("name", ["model.pt", "model.pth", "weights.pkl", "pytorch_model.bin"])
def test_pickle_file_is_refused(tmp_path: Path, registry_dir: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(BadCheckpointError, match="pickle files are refused") as info:
        resolve_checkpoint(str(path))
    assert info.value.path == str(path)
    assert "safetensors" in str(info.value)


def test_folder_with_only_pickle_weights_is_refused(tmp_path: Path, registry_dir: Path) -> None:
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(CONFIG))
    (folder / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(BadCheckpointError, match="pickle files are refused") as info:
        resolve_checkpoint(str(folder))
    assert info.value.path == str(folder / "pytorch_model.bin")


def test_folder_without_config_names_the_missing_file(tmp_path: Path, registry_dir: Path) -> None:
    folder = write_checkpoint(tmp_path / "ckpt")
    (folder / "config.json").unlink()
    with pytest.raises(BadCheckpointError, match=r"missing config\.json") as info:
        resolve_checkpoint(str(folder))
    assert info.value.path == str(folder)


def test_unknown_model_name_lists_registered_names(registry_dir: Path) -> None:
    write_registry(registry_dir, {"models": {"alpha": {"path": "a"}, "beta": {"path": "b"}}})
    with pytest.raises(BadCheckpointError, match=r"registered: alpha, beta") as info:
        resolve_checkpoint("no_such_model")
    assert info.value.path == "no_such_model"


def test_no_model_uses_registry_default(tmp_path: Path, registry_dir: Path) -> None:
    write_checkpoint(registry_dir / "mine")
    write_registry(registry_dir, {"default": "mine", "models": {"mine": {"path": "mine"}}})
    assert resolve_checkpoint(None) == registry_dir / "mine"
    assert resolve_checkpoint("mine") == registry_dir / "mine"


def test_registered_model_not_yet_trained_says_so(registry_dir: Path) -> None:
    write_registry(registry_dir, {"default": "kth", "models": {"kth": {"path": "kth"}}})
    with pytest.raises(MissingWeightsError, match="registered model 'kth' has no checkpoint yet"):
        resolve_checkpoint(None)


def test_no_model_and_no_default_is_a_usage_error(registry_dir: Path) -> None:
    with pytest.raises(UsageError, match="names no default"):
        resolve_checkpoint(None)


def test_invalid_registry_names_the_file(registry_dir: Path) -> None:
    write_registry(registry_dir, {"default": "x", "models": {"x": {"path": "x", "repo": "o/n"}}})
    with pytest.raises(BadCheckpointError, match="exactly one of 'path' or 'repo'") as info:
        load_registry()
    assert info.value.path == str(registry_dir / "registry.json")


def test_hub_id_resolves_from_offline_cache(
    tmp_path: Path, offline_cache: Path, registry_dir: Path
) -> None:
    source = write_checkpoint(tmp_path / "src")
    snapshot = cache_repo(offline_cache, "org/model", COMMIT_MAIN, source, refs=("main",))
    found = resolve_checkpoint("org/model")
    assert found == snapshot
    assert (found / "model.safetensors").read_bytes() == (source / "model.safetensors").read_bytes()
    assert pull_checkpoint("org/model") == snapshot


def test_hub_download_fetches_exactly_config_and_weights(
    tmp_path: Path, offline_cache: Path, registry_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_repo(offline_cache, "org/model", COMMIT_MAIN, write_checkpoint(tmp_path / "s"), ("main",))
    calls: list[tuple[str, str | None, list[str], bool]] = []
    real = huggingface_hub.snapshot_download

    def recording(repo_id: str, **kwargs: Any) -> str:
        patterns = sorted(kwargs["allow_patterns"])
        calls.append((repo_id, kwargs["revision"], patterns, kwargs["local_files_only"]))
        return real(repo_id, **kwargs)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", recording)
    found = resolve_checkpoint("org/model")
    # One snapshot of one commit: both files come from the same commit.
    assert calls == [("org/model", None, ["config.json", "model.safetensors"], True)]
    assert found.name == COMMIT_MAIN


def test_revision_is_pinned_through_refs(
    tmp_path: Path, offline_cache: Path, registry_dir: Path
) -> None:
    main = cache_repo(
        offline_cache, "org/model", COMMIT_MAIN, write_checkpoint(tmp_path / "m"), ("main",)
    )
    v1 = cache_repo(
        offline_cache, "org/model", COMMIT_V1, write_checkpoint(tmp_path / "v", value=2.0), ("v1",)
    )
    assert resolve_checkpoint("org/model") == main
    assert resolve_checkpoint("org/model@v1") == v1
    assert resolve_checkpoint("org/model", revision="v1") == v1
    assert resolve_checkpoint(f"org/model@{COMMIT_V1}") == v1


def test_offline_cache_miss_says_how_to_fix(offline_cache: Path, registry_dir: Path) -> None:
    with pytest.raises(HubError) as info:
        resolve_checkpoint("org/absent@v2")
    message = str(info.value)
    assert message.startswith("org/absent@v2: not in the local cache")
    assert "offline: run once online or unset HF_HUB_OFFLINE" in message
    assert str(offline_cache) in message


def test_conflicting_revisions_are_a_usage_error(registry_dir: Path) -> None:
    with pytest.raises(UsageError, match="conflicting revisions 'v1' and 'v2'"):
        resolve_checkpoint("org/model@v1", revision="v2")


def test_revision_with_a_local_folder_is_refused(tmp_path: Path, registry_dir: Path) -> None:
    folder = write_checkpoint(tmp_path / "ckpt")
    with pytest.raises(UsageError, match="--revision applies to Hub ids"):
        resolve_checkpoint(str(folder), revision="v1")


def test_missing_or_private_repo_says_how_to_authenticate(
    registry_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def not_found(repo_id: str, **kwargs: Any) -> str:
        request = httpx2.Request("GET", f"https://huggingface.co/api/models/{repo_id}")
        raise RepositoryNotFoundError("401", response=httpx2.Response(401, request=request))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", not_found)
    with pytest.raises(HubError, match="org/private: not found or private") as info:
        resolve_checkpoint("org/private")
    assert "HF_TOKEN" in str(info.value)
    assert "hf auth login" in str(info.value)


def _hub_registry(weights: Path, sha256: dict[str, str]) -> None:
    entry = {"repo": "org/model", "revision": COMMIT_MAIN, "sha256": sha256}
    write_registry(weights, {"default": "pinned", "models": {"pinned": entry}})


def test_registered_hub_model_with_matching_sha256_resolves(
    tmp_path: Path, offline_cache: Path, registry_dir: Path
) -> None:
    source = write_checkpoint(tmp_path / "src")
    snapshot = cache_repo(offline_cache, "org/model", COMMIT_MAIN, source, refs=("main",))
    _hub_registry(registry_dir, checkpoint_hashes(source))
    assert resolve_checkpoint(None) == snapshot
    assert registry_status()["pinned"]["available"] is True


def test_registered_hub_model_with_wrong_sha256_is_refused(
    tmp_path: Path, offline_cache: Path, registry_dir: Path
) -> None:
    source = write_checkpoint(tmp_path / "src")
    cache_repo(offline_cache, "org/model", COMMIT_MAIN, source, refs=("main",))
    _hub_registry(registry_dir, {"config.json": "0" * 64, "model.safetensors": "0" * 64})
    with pytest.raises(BadCheckpointError, match="sha256 does not match registry entry 'pinned'"):
        resolve_checkpoint("pinned")


def test_model_card_describes_labels_architecture_metrics_and_usage() -> None:
    metrics = {"top1": 0.91234, "clips": {"top1": 0.8}, "recipe": "kth", "confusion": [[1]]}
    card = model_card(CONFIG, metrics, repo_id="org/gkaan-kth")
    assert card.startswith("---\nlibrary_name: gkaan\npipeline_tag: video-classification\n")
    assert "`walking`, `boxing`" in card
    assert "| Backbone | resnet18 |" in card
    assert "| Fusion | early (streams GS, GL, GP) |" in card
    assert "| Sampling | dense: 30 consecutive frames every 15 frames" in card
    assert "| top1 | 0.9123 |" in card
    assert "| clips.top1 | 0.8 |" in card
    assert "| recipe | kth |" in card
    assert "confusion" not in card
    assert "gkaan predict video.mp4 --model org/gkaan-kth" in card


def test_model_card_without_metrics_has_no_evaluation_section() -> None:
    assert "## Evaluation" not in model_card(CONFIG)


class FakeHfApi:
    """Records what push_checkpoint asks of the Hub."""

    instances: ClassVar[list[FakeHfApi]] = []

    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.uploaded: dict[str, bytes] = {}
        FakeHfApi.instances.append(self)

    def create_repo(self, repo_id: str, **kwargs: Any) -> str:
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        return f"https://huggingface.co/{repo_id}"

    def create_branch(self, repo_id: str, **kwargs: Any) -> None:
        self.calls.append(("create_branch", {"repo_id": repo_id, **kwargs}))

    def upload_folder(self, *, folder_path: str | Path, **kwargs: Any) -> None:
        self.calls.append(("upload_folder", kwargs))
        self.uploaded = {p.name: p.read_bytes() for p in Path(folder_path).iterdir()}


@pytest.fixture
def fake_api(monkeypatch: pytest.MonkeyPatch) -> type[FakeHfApi]:
    FakeHfApi.instances = []
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHfApi)
    return FakeHfApi


def test_push_uploads_exactly_config_weights_and_card(
    tmp_path: Path, fake_api: type[FakeHfApi]
) -> None:
    run = tmp_path / "run"
    write_checkpoint(run / "best")
    write_checkpoint(run / "last", value=3.0)
    (run / "best" / "optimizer.pt").write_bytes(b"never uploaded")
    (run / "report.json").write_text(json.dumps({"top1": 0.75}))
    url = push_checkpoint(run, "org/gkaan-kth", private=True, token="hf_x")
    assert url == "https://huggingface.co/org/gkaan-kth"
    (api,) = fake_api.instances
    assert api.token == "hf_x"
    assert sorted(api.uploaded) == ["README.md", "config.json", "model.safetensors"]
    best = run / "best" / "model.safetensors"
    assert api.uploaded["model.safetensors"] == best.read_bytes()
    assert b"| top1 | 0.75 |" in api.uploaded["README.md"]
    assert [name for name, _ in api.calls] == ["create_repo", "upload_folder"]
    assert api.calls[0][1] == {"repo_id": "org/gkaan-kth", "private": True, "exist_ok": True}
    assert api.calls[1][1]["repo_id"] == "org/gkaan-kth"
    assert api.calls[1][1]["revision"] is None


def test_push_to_a_revision_creates_the_branch(tmp_path: Path, fake_api: type[FakeHfApi]) -> None:
    folder = write_checkpoint(tmp_path / "ckpt")
    url = push_checkpoint(folder, "org/m", revision="exp1")
    assert url == "https://huggingface.co/org/m/tree/exp1"
    (api,) = fake_api.instances
    assert api.calls[1] == (
        "create_branch",
        {"repo_id": "org/m", "branch": "exp1", "exist_ok": True},
    )
    assert api.calls[2][1]["revision"] == "exp1"


def test_push_refuses_a_malformed_repo_id(tmp_path: Path, fake_api: type[FakeHfApi]) -> None:
    folder = write_checkpoint(tmp_path / "ckpt")
    with pytest.raises(UsageError, match="not a Hub repository id"):
        push_checkpoint(folder, "no-namespace")
    assert fake_api.instances == []
