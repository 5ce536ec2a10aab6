"""Timeline labels decoded with a switch cost (gkaan_cli.engine.segmenter): a flickering
middle becomes one segment, a real change of action is kept, and a cost of 0 is the
per-window argmax."""

from __future__ import annotations

import numpy as np
import pytest

from gkaan_cli.engine.segmenter import MAX_SWITCH_COST, SWITCH_COST, decode_labels
from gkaan_cli.engine.timeline import WindowPrediction, merge_segments
from gkaan_cli.errors import UsageError

LABELS = ["walking", "jogging", "running"]


def windows(probs: list[list[float]], hop: float = 0.6) -> list[WindowPrediction]:
    return [
        WindowPrediction(
            index=i,
            start=i * hop,
            end=i * hop + 2 * hop,
            first_frame=i * 15,
            last_frame=i * 15 + 29,
            probs=np.array(p),
            stream_probs={},
        )
        for i, p in enumerate(probs)
    ]


WALK, JOG, RUN = [0.6, 0.3, 0.1], [0.3, 0.6, 0.1], [0.1, 0.3, 0.6]
SURE_WALK, SURE_RUN = [0.8, 0.15, 0.05], [0.05, 0.15, 0.8]
#: 10 walking windows with two doubtful ones inside, then 10 clearly running.
FLICKER = [SURE_WALK] * 4 + [JOG] + [SURE_WALK] * 2 + [RUN] + [SURE_WALK] * 2 + [SURE_RUN] * 10


def test_a_flickering_run_becomes_one_segment_and_the_real_change_is_kept() -> None:
    before = merge_segments(windows(FLICKER), LABELS, switch_cost=0)
    after = merge_segments(windows(FLICKER), LABELS)  # the default cost
    assert [s.label for s in before] == [
        "walking",
        "jogging",
        "walking",
        "running",
        "walking",
        "running",
    ]
    assert [s.label for s in after] == ["walking", "running"]
    assert after[0].last_window == 9 and after[1].first_window == 10  # the cut where it was


def test_the_cost_is_the_evidence_a_change_needs() -> None:
    one_doubt = [WALK] * 5 + [RUN] + [WALK] * 5
    # labelling the doubtful window "running" gains log(0.6 / 0.1) and costs two changes
    half_gap = (np.log(0.6) - np.log(0.1)) / 2
    doubt = np.array(one_doubt)
    assert decode_labels(doubt, switch_cost=half_gap - 0.05) == [0] * 5 + [2] + [0] * 5
    assert decode_labels(doubt, switch_cost=half_gap + 0.05) == [0] * 11


def test_cost_zero_is_the_argmax_and_ties_go_to_the_lower_class() -> None:
    probs = np.random.default_rng(0).dirichlet(np.ones(4), size=50)
    assert decode_labels(probs, 0) == probs.argmax(axis=1).tolist()
    assert decode_labels(np.array([[0.5, 0.5]] * 3), 0) == [0, 0, 0]
    assert decode_labels(np.zeros((0, 3))) == []


def test_the_decoded_sequence_is_the_best_by_brute_force() -> None:
    rng = np.random.default_rng(1)
    import itertools

    for _ in range(20):
        probs = rng.dirichlet(np.ones(3) * 0.7, size=6)
        cost = float(rng.uniform(0, 3))
        logp = np.log(np.clip(probs, 1e-6, None))

        def score(seq: tuple[int, ...], logp: np.ndarray = logp, cost: float = cost) -> float:
            switches = sum(a != b for a, b in itertools.pairwise(seq))
            return float(sum(logp[i, k] for i, k in enumerate(seq)) - cost * switches)

        best = max(score(s) for s in itertools.product(range(3), repeat=6))
        assert score(tuple(decode_labels(probs, cost))) == pytest.approx(best)


def test_a_cost_outside_its_bounds_is_a_usage_error() -> None:
    assert 0 < SWITCH_COST <= MAX_SWITCH_COST
    for cost in (-1.0, MAX_SWITCH_COST * 2, float("nan"), float("inf")):
        with pytest.raises(UsageError, match="--switch-cost"):
            merge_segments(windows([WALK]), LABELS, switch_cost=cost)
