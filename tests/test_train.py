"""``train()``: learning, exact resume after kill -9, DDP with two processes, the run files."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import av
import numpy as np
import PIL.Image
import pytest
import torch
from conftest import TINY_MODEL

from gkaan_cli.commands.train import train_message
from gkaan_cli.engine.evaluate import evaluate
from gkaan_cli.engine.recipes import TrainConfig, load_train_config
from gkaan_cli.engine.train import METRICS_NAME, STATE_NAME, load_state, train
from gkaan_cli.engine.train_errors import RunExistsError
from gkaan_cli.engine.train_plot import CURVES_NAME, CURVES_SIZE, curve_series
from gkaan_cli.errors import UsageError
from gkaan_cli.model.gkaan import GKAAN

COLOURS = {"red": (220, 30, 30), "blue": (30, 30, 220)}


def _solid_video(path: Path, colour: tuple[int, int, int], seed: int, frames: int = 10) -> None:
    """A small MPEG-4 video of one colour with noise (so clips differ)."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for _ in range(frames):
            noise = rng.integers(-25, 25, (32, 32, 3))
            image = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


@pytest.fixture
def colour_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A CSV source: 2 colours x 4 videos, 3 of each for training and 1 for testing."""
    monkeypatch.setenv("GKAAN_CACHE", str(tmp_path / "cache"))
    rows = []
    for label, colour in COLOURS.items():
        for i in range(4):
            name = f"videos/{label}_{i}.mp4"
            _solid_video(tmp_path / name, colour, seed=i)
            rows.append(f"{name},{label},{'test' if i == 3 else 'train'}")
    csv = tmp_path / "colours.csv"
    csv.write_text("\n".join(rows) + "\n")
    return csv


def _config(**overrides: Any) -> TrainConfig:
    settings: dict[str, Any] = {
        "model": TINY_MODEL,
        "pretrained": False,
        "frozen_backbone": False,
        "lr": 3e-3,
        "batch_size": 4,
        "epochs": 2,
        "seed": 3,
    }
    return load_train_config("quick", None, {**settings, **overrides})


def _records(run: Path) -> list[dict[str, Any]]:
    """metrics.jsonl without its wall-clock part."""
    lines = (run / METRICS_NAME).read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "time"} for line in lines]


@pytest.mark.slow
def test_head_only_training_separates_an_easy_dataset(colour_source: Path, tmp_path: Path) -> None:
    config = _config(
        frozen_backbone=True,
        pretrained=True,
        model={**TINY_MODEL, "backbone": "efficientnet_lite0"},
        lr=1e-2,
        epochs=4,
    )
    result = train(colour_source, tmp_path / "run", config)
    final = result.history[-1]
    assert final.eval is not None and final.eval.split == "val"
    assert final.eval.video_top1 == 1.0
    assert final.train.loss < result.history[0].train.loss
    assert result.best is not None and result.best_metric == 1.0
    prepared = next((tmp_path / "cache" / "prepared").iterdir())
    report = evaluate(result.best, prepared)
    assert report.inputs == "features"  # the frozen ImageNet trunk matches the cached maps
    assert report.video["fused"].top1 == 1.0
    assert report.model is not None and report.model["precision"] == "fp32"  # train's maps


@pytest.mark.slow
def test_best_breaks_a_saturated_val_top1_by_the_lower_val_nll(
    colour_source: Path, tmp_path: Path
) -> None:
    """A small val split reaches 100% early; best/ must not stay at that first, half-trained
    epoch while later epochs are as accurate and more confident on the val videos."""
    config = _config(
        frozen_backbone=True,
        pretrained=True,
        model={**TINY_MODEL, "backbone": "efficientnet_lite0"},
        lr=1e-2,
        epochs=4,
    )
    result = train(colour_source, tmp_path / "run", config)
    evals = [record.eval for record in result.history]
    assert all(e is not None and e.video_nll is not None for e in evals)
    keys = [(e.video_top1, -e.video_nll) for e in evals]
    assert result.best_epoch == 1 + max(range(len(keys)), key=lambda i: (keys[i], -i))
    assert sum(k[0] == 1.0 for k in keys) >= 2  # the tie the NLL must break
    assert result.best_epoch > 1 + [k[0] for k in keys].index(1.0)


@pytest.mark.slow
def test_without_a_val_split_best_is_the_last_epoch_and_test_never_chooses(
    colour_source: Path, tmp_path: Path
) -> None:
    config = _config(epochs=2, val_fraction=0.0)
    result = train(colour_source, tmp_path / "run", config)
    assert [record.eval.split for record in result.history if record.eval] == ["test", "test"]
    assert result.selection == "last" and result.best_epoch == 2 and result.best_metric is None
    assert result.best == tmp_path / "run" / "best"
    best = GKAAN.from_pretrained(tmp_path / "run" / "best").state_dict()
    last = GKAAN.from_pretrained(tmp_path / "run" / "last").state_dict()
    assert all(torch.equal(best[key], last[key]) for key in last)


@pytest.mark.slow
def test_each_epoch_redraws_curves_png_with_loss_top1_per_stream_and_lr(
    colour_source: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    pictures: list[bytes] = []
    result = train(
        colour_source,
        run,
        _config(epochs=2, val_fraction=0.0),
        on_epoch=lambda record: pictures.append((run / CURVES_NAME).read_bytes()),
    )
    assert len(pictures) == 2 and pictures[0] != pictures[1]  # epoch 2 redrew it
    assert pictures[1] == (run / CURVES_NAME).read_bytes()
    with PIL.Image.open(run / CURVES_NAME) as image:
        image.load()
        assert image.format == "PNG" and image.size == CURVES_SIZE
    assert not [p for p in run.iterdir() if p.name.startswith(".")]  # no temp file left
    loss, top1, lr = curve_series(result.history)
    assert [e for e, _ in loss["train loss"]] == [1, 2] and [e for e, _ in lr["lr"]] == [1, 2]
    streams = [name for name in top1 if name.startswith("test ")]
    assert "test fused" in streams and len(streams) >= 2  # each stream and the fused one


@pytest.mark.slow
def test_run_directory_holds_checkpoints_config_metrics_and_a_weights_only_state(
    colour_source: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    result = train(colour_source, run, _config(epochs=1, accumulate=2))
    names = {p.name for p in run.iterdir()}
    expected = {"best", "last", METRICS_NAME, STATE_NAME, "train_config.json", CURVES_NAME, "eval"}
    assert expected <= names and names - expected <= {"tensorboard"}
    model = GKAAN.from_pretrained(run / "last")
    assert model.config.class_names == ["blue", "red"]
    assert TrainConfig.model_validate_json((run / "train_config.json").read_text()).accumulate == 2
    state = torch.load(run / STATE_NAME, weights_only=True)
    assert (state["epoch"], state["step"]) == (1, 2)  # 4 train videos x 2 clips, batches of 4
    assert set(state["rng"][0]) >= {"python", "numpy", "torch"}
    assert len(result.history) == 1
    assert set(result.history[0].to_json()) >= {"train", "eval", "time"}
    assert _records(run) == [  # metrics.jsonl holds the records, as state.pt's history does
        {k: v for k, v in r.to_json().items() if k != "time"} for r in result.history
    ]
    assert state["history"] == [r.to_json() for r in result.history]


@pytest.mark.slow
def test_after_the_final_epoch_last_and_best_are_each_written_once(
    colour_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The final checkpoints (fusion weights, OOD statistics, GM fit) are composed in memory
    and written once each; state.pt only after them."""
    import gkaan_cli.engine.train as train_module
    import gkaan_cli.model.gkaan as gkaan_module

    writes: list[tuple[str, int]] = []  # (folder, epochs reported to on_epoch before it)
    finished = {"epochs": 0}

    def counting(real: Any) -> Any:
        def write(directory: Path, *args: Any, **kwargs: Any) -> Any:
            writes.append((Path(directory).name, finished["epochs"]))
            return real(directory, *args, **kwargs)

        return write

    for module in (train_module, gkaan_module):
        monkeypatch.setattr(module, "write_checkpoint", counting(module.write_checkpoint))
    run = tmp_path / "run"

    def on_epoch(done: Any) -> None:
        finished["epochs"] = done.record.epoch

    result = train(colour_source, run, _config(epochs=2), on_epoch=on_epoch)
    assert result.selection == "val" and result.best == run / "best"
    assert sorted(name for name, epochs in writes if epochs == 2) == ["best", "last"]
    assert ("last", 0) in writes  # epoch 1's, for a run stopped in epoch 2
    state = torch.load(run / STATE_NAME, weights_only=True)
    assert state["epoch"] == 2 and len(_records(run)) == 2
    for name in ("best", "last"):  # the final ones, with the OOD statistics when it has them
        assert (GKAAN.from_pretrained(run / name).ood is not None) == result.ood


@pytest.mark.slow
def test_existing_run_needs_resume_and_resume_refuses_changed_settings(
    colour_source: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    train(colour_source, run, _config(epochs=1))
    with pytest.raises(RunExistsError, match="already holds a run") as exists:
        train(colour_source, run, _config(epochs=1))
    assert exists.value.out == run and isinstance(exists.value, UsageError)
    assert "--resume" in (train_message(exists.value) or "")  # the command's words
    with pytest.raises(UsageError, match="lr"):
        train(colour_source, run, _config(epochs=2, lr=0.5), resume=True)


_KILLED_RUN = """
import os, signal, sys
from gkaan_cli.engine.recipes import TrainConfig
from gkaan_cli.engine.train import train

config = TrainConfig.model_validate_json(sys.argv[3])
kill_at = int(sys.argv[4])

def hook(epoch, step):
    if step == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

train(sys.argv[1], sys.argv[2], config, on_step=hook)
"""


@pytest.mark.slow
def test_kill_9_during_an_epoch_then_resume_matches_an_uninterrupted_run(
    colour_source: Path, tmp_path: Path
) -> None:
    config = _config(epochs=3)
    reference = train(colour_source, tmp_path / "reference", config)
    run = tmp_path / "killed"
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            _KILLED_RUN,
            str(colour_source),
            str(run),
            config.model_dump_json(),
            "4",
        ],
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(_records(run)) == 1  # epoch 1 (steps 1-2) finished, epoch 2 died at step 4
    resumed = train(colour_source, run, config, resume=True)
    assert _records(run) == _records(tmp_path / "reference")
    assert resumed.best_metric == reference.best_metric
    last = GKAAN.from_pretrained(run / "last").state_dict()
    expected = GKAAN.from_pretrained(tmp_path / "reference" / "last").state_dict()
    assert all(torch.equal(last[key], expected[key]) for key in expected)


@pytest.mark.slow
def test_resume_with_more_epochs_continues_the_run(colour_source: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(colour_source, run, _config(epochs=1))
    result = train(colour_source, run, _config(epochs=2), resume=True)
    assert [r["epoch"] for r in _records(run)] == [1, 2]
    assert result.epochs == 2 and load_state(run / STATE_NAME)["step"] == 4
    with pytest.raises(UsageError, match="already finished 2 of 2 epochs"):  # not silence
        train(colour_source, run, _config(epochs=2), resume=True)


_DDP_RUN = """
import sys
from gkaan_cli.engine.recipes import TrainConfig
from gkaan_cli.engine.train import train

train(sys.argv[1], sys.argv[2], TrainConfig.model_validate_json(sys.argv[3]))
"""


@pytest.mark.slow
def test_two_process_ddp_run_trains_on_all_clips_and_rank_0_writes(
    colour_source: Path, tmp_path: Path
) -> None:
    config = _config(epochs=1)
    script = tmp_path / "ddp_train.py"
    script.write_text(textwrap.dedent(_DDP_RUN))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node",
            "2",
            "--standalone",
            str(script),
            str(colour_source),
            str(tmp_path / "run"),
            config.model_dump_json(),
        ],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (record,) = _records(tmp_path / "run")
    # prepare moves 1 train video per class to val: 4 videos x 2 clips, split over 2 ranks
    assert record["train"]["clips"] == 8
    assert record["step"] == 2  # a global batch of 4: 2 clips per rank per step
    assert record["eval"]["split"] == "val"
    assert record["eval"]["video_top1"] in (0.0, 0.5, 1.0)  # 2 val videos, gathered from both
    assert GKAAN.from_pretrained(tmp_path / "run" / "last").config.num_classes == 2
    leftovers = [p.name for p in (tmp_path / "run").iterdir() if ".tmp" in p.name]
    assert leftovers == []


@pytest.mark.slow
def test_a_loss_that_becomes_nan_stops_the_run_and_keeps_the_good_checkpoints(
    colour_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gkaan_cli.engine.train as train_module
    from gkaan_cli.errors import TrainingError

    real_loss = train_module.gkaan_loss
    diverged = {"now": False}

    def loss_that_diverges(*args: Any, **kwargs: Any) -> Any:
        parts = real_loss(*args, **kwargs)
        return parts._replace(total=parts.total * float("nan")) if diverged["now"] else parts

    monkeypatch.setattr(train_module, "gkaan_loss", loss_that_diverges)
    config = _config(epochs=3)
    run = tmp_path / "run"

    def on_epoch(record: dict[str, Any]) -> None:
        diverged["now"] = True  # every step after the first epoch gives a NaN loss

    with pytest.raises(TrainingError, match="nan at epoch 2, batch 1"):
        train(colour_source, run, config, on_epoch=on_epoch)
    assert len(_records(run)) == 1  # only the good epoch was recorded
    for name in ("best", "last"):  # loaded strictly: finite weights, from epoch 1
        model = GKAAN.from_pretrained(run / name)
        weights = [t for t in model.state_dict().values() if t.is_floating_point()]
        assert all(torch.isfinite(t).all() for t in weights)


@pytest.mark.slow
def test_a_run_leaves_report_html_with_curves_scores_model_and_data_that_chromium_renders(
    colour_source: Path, tmp_path: Path
) -> None:
    from test_report import CHROMIUM, chromium

    from gkaan_cli.viz.run_report import write_run_report

    run = tmp_path / "run"
    result = train(colour_source, run, _config(epochs=2, val_fraction=0.0))
    assert result.evaluation == run / "eval" / "test"  # as `gkaan evaluate RUN/best` writes it
    report = json.loads((result.evaluation / "report.json").read_text())
    assert report["split"] == "test" and report["data"]["videos"] == 2
    page_path = write_run_report(result)
    page = page_path.read_text(encoding="utf-8")
    for section in ("run", "model", "curves", "scores", "per-class", "data", "settings"):
        assert f'<section id="{section}">' in page, section
    assert page.count('src="data:image/png;base64,') == 2  # curves and confusion, embedded
    assert "the last epoch (2): no val split" in page
    assert "<td>red</td><td class=prob>3</td><td class=prob>1</td>" in page  # train, test counts
    assert "None" not in page and "{'" not in page and "<script" not in page
    if CHROMIUM is None:
        return
    probe = page_path.with_name("probe.html")
    script = (
        "<script>addEventListener('load', () => { document.body.dataset.images = "
        "[...document.images].map(i => i.naturalWidth).join(','); });</script>"
    )
    probe.write_text(page.replace("</body>", script + "</body>"), encoding="utf-8")
    dom = chromium("--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    widths = re.search(r'data-images="([\d,]*)"', dom)
    assert widths is not None, dom[:500]
    assert all(int(w) > 0 for w in widths.group(1).split(",")), widths.group(1)  # images load


def test_one_class_is_refused_with_one_line(colour_source: Path, tmp_path: Path) -> None:
    rows = [row for row in colour_source.read_text().splitlines() if ",red," in row]
    single = tmp_path / "red.csv"
    single.write_text("\n".join(rows) + "\n")
    with pytest.raises(UsageError, match=r"at least two classes.*has 1 \(red\)"):
        train(single, tmp_path / "run", _config(epochs=1))
    assert not (tmp_path / "run" / "best").exists()
