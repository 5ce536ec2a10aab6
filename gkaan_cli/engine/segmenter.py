"""Window labels that hold: Viterbi decoding of a timeline's window probabilities with a cost
for every change of label (docs/predict.md#segments).

Labelling each window by its own most probable class flickers wherever neighbouring windows
disagree. Here the labels of all windows are chosen together: the sequence y_1..y_N that
maximises

    sum_i log p_i(y_i)  -  switch_cost * #{i : y_i != y_{i-1}}

is found exactly by dynamic programming (O(N K) for K classes). ``switch_cost = 0`` gives
the per-window argmax; a change of label is kept only where the windows after it favour
the new label by more than ``switch_cost`` nats in total, so a single doubtful window in a
steady run is absorbed, while a real change, which every later window supports, is kept.
The default, :data:`SWITCH_COST`, was chosen by nested leave-one-person-out validation on
joined KTH videos (weights/README.md#timelines).
"""

from __future__ import annotations

import numpy as np

from ..config import MAX_SWITCH_COST, SWITCH_COST

__all__ = ["MAX_SWITCH_COST", "SWITCH_COST", "decode_labels"]
#: Floor of a probability before its logarithm (a zero would forbid a label outright).
_MIN_PROB = 1e-6


def decode_labels(probs: np.ndarray, switch_cost: float = SWITCH_COST) -> list[int]:
    """The most probable label sequence of (N, K) window probabilities under a cost of
    ``switch_cost`` nats per change of label (ties: the lower class index, and staying)."""
    if not 0 <= switch_cost <= MAX_SWITCH_COST:
        raise ValueError(f"switch_cost must be in [0, {MAX_SWITCH_COST:g}], got {switch_cost}")
    count = len(probs)
    if count == 0:
        return []
    scores = np.log(np.clip(np.asarray(probs, dtype=np.float64), _MIN_PROB, None))
    if switch_cost == 0:
        return [int(k) for k in scores.argmax(axis=1)]
    classes = scores.shape[1]
    back = np.zeros((count, classes), dtype=np.int64)
    total = scores[0].copy()
    stay = np.arange(classes)
    for i in range(1, count):
        best = int(total.argmax())
        switch = total[best] - switch_cost
        keep = total >= switch  # staying wins ties
        back[i] = np.where(keep, stay, best)
        total = np.where(keep, total, switch) + scores[i]
    labels = [int(total.argmax())]
    for i in range(count - 1, 0, -1):
        labels.append(int(back[i, labels[-1]]))
    return labels[::-1]
