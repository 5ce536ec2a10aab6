"""Fusion weights chosen on the val split: a strong stream is not outvoted by weak ones."""

from __future__ import annotations

import numpy as np

from gkaan_cli.engine.stream_weights import choose_stream_weights

STREAMS = ("gs", "gl", "gp")


def _probs(correct: bool, labels: np.ndarray, k: int = 3, confidence: float = 0.8) -> np.ndarray:
    """Clip probabilities that put ``confidence`` on the true class (or on the next one)."""
    target = labels if correct else (labels + 1) % k
    probs = np.full((len(labels), k), (1 - confidence) / (k - 1))
    probs[np.arange(len(labels)), target] = confidence
    return probs


def test_a_stream_that_alone_is_right_is_not_outvoted() -> None:
    labels = np.repeat(np.arange(3), 2)  # 3 videos of 2 clips
    videos = np.repeat(np.arange(3), 2)
    probs = {"gs": _probs(False, labels), "gl": _probs(True, labels), "gp": _probs(False, labels)}
    choice = choose_stream_weights(probs, labels, videos, STREAMS, (1.0, 1.0, 1.0))
    assert choice.accuracy["config"] == 0.0  # equal weights: two wrong streams win
    assert choice.accuracy[choice.name] == 1.0
    fused = sum(w * probs[s] for w, s in zip(choice.weights, STREAMS, strict=True))
    assert (fused.argmax(axis=1) == labels).all()


def test_equal_weights_are_kept_when_nothing_is_better() -> None:
    labels = np.arange(3)
    videos = np.arange(3)
    probs = {s: _probs(True, labels) for s in STREAMS}
    choice = choose_stream_weights(probs, labels, videos, STREAMS, (1.0, 1.0, 1.0))
    assert choice.name == "config"
    assert choice.weights == (1.0, 1.0, 1.0)


def test_a_more_confident_stream_does_not_replace_equal_weights_on_a_tie() -> None:
    """Every candidate right on val: the most confident stream is no reason to drop the others."""
    labels = np.arange(3)
    videos = np.arange(3)
    probs = {
        "gs": _probs(True, labels, confidence=0.99),
        "gl": _probs(True, labels, confidence=0.6),
        "gp": _probs(True, labels, confidence=0.6),
    }
    choice = choose_stream_weights(probs, labels, videos, STREAMS, (1.0, 1.0, 1.0))
    assert choice.name == "config" and choice.weights == (1.0, 1.0, 1.0)
