"""The training engine's refusals carry data (engine/train_errors.py) and speak of train's
arguments; ``gkaan train`` words each with its own flags, and ``prepare``'s where the data
must be prepared again, each a real option."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_messages import FLAG, command_options

from gkaan_cli.commands.train import train_message
from gkaan_cli.config import SamplingConfig
from gkaan_cli.engine import train_errors as errors
from gkaan_cli.errors import GkaanError, TrainingError, UsageError

RUN = Path("runs/a")
PREPARED = SamplingConfig(mode="dense", clip_len=4, stride=4, max_clips=2)
WANTED = SamplingConfig(mode="segments", num_segments=3, frames_per_segment=2)
ERRORS: list[GkaanError] = [
    errors.RunExistsError(RUN),
    errors.NothingToResumeError(RUN / "state.pt"),
    errors.ResumeChangedError(RUN, ("lr", "model"), ("epochs", "num_workers", "device")),
    errors.ResumeEpochsError(RUN, 3, 2),
    errors.ResumeEpochsError(RUN, 2, 2),
    errors.PrecisionDeviceError("fp16", "cpu"),
    errors.SamplingMismatchError(RUN, PREPARED, WANTED, "a/a_0"),
    errors.FeatureMapsMismatchError(RUN, "efficientnet_lite0", "ImageNet", None),
    errors.FeatureMapsMismatchError(RUN, "efficientnet_lite0", "/w/trunk", "ImageNet"),
    errors.LossNotFiniteError(RUN, float("nan"), 2, 1, 1),
    errors.FeatureMapsMismatchError(RUN, "efficientnet_lite0", "/w/trunk", "/w/trunk"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_the_engine_names_no_flag_and_train_words_it_with_real_ones(error: GkaanError) -> None:
    assert isinstance(error, UsageError | TrainingError)
    assert FLAG.findall(str(error)) == [] and "\n" not in str(error)
    worded = train_message(error)
    assert worded is not None and "\n" not in worded
    if not isinstance(error, errors.PrecisionDeviceError):  # the one about no file
        assert str(RUN) in worded
    options = command_options()
    allowed = options["train"] | options["prepare"]
    assert set(FLAG.findall(worded)) <= allowed


def test_train_words_the_old_lines() -> None:
    """The command says what it said before the engine's errors carried data."""
    worded = [train_message(error) for error in ERRORS]
    assert (
        worded[0]
        == f"{RUN}: already holds a run; pass --resume to continue it, or pick another --output"
    )
    assert worded[2] == (
        f"{RUN}: cannot resume with changed settings (lr, model); only --epochs, --workers, "
        "--device may change"
    )
    assert worded[3] == f"{RUN}: already trained 3 epochs; --epochs 2 is fewer"
    assert "resume with --epochs N above 2" in (worded[4] or "")
    assert worded[5] == (
        "fp16 training (--precision fp16, or amp: fp16 in the recipe or --config) needs a CUDA "
        "device; use --precision bf16 or fp32 on CPU"
    )
    sampling = worded[6] or ""
    assert "--sampling segments --num-segments 3 --frames-per-segment 2" in sampling
    held = json.loads(sampling.split("FILE holding ", 1)[1])
    assert SamplingConfig.model_validate(held["model"]["sampling"]) == PREPARED
    assert "--features efficientnet_lite0`" in (worded[7] or "")
    assert "--backbone-weights /w/trunk`" in (worded[8] or "")
    assert worded[9] == (
        f"{RUN}: the loss became nan at epoch 2, batch 1; training stopped, last/ and best/ "
        "keep epoch 1 (try a lower --lr, or --precision fp32)"
    )
    assert "/w/trunk weights, which have changed since" in (worded[10] or "")
    assert "--backbone-weights /w/trunk` again" in (worded[10] or "")
    assert train_message(UsageError("x")) is None  # other errors are shown as they are
