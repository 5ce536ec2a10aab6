"""Nested leave-one-person-out selection: every choice made without the person it is scored on.

The outer loop holds out one person o. Every choice (:class:`Candidate`: appearance epochs,
GM descriptor, GM L2 weight, GM fusion weight; then the timeline's switch cost and smoothing)
is made by an inner leave-one-person-out over the other persons: for each inner person i,
a model trained without o and i predicts i's videos, and the candidate with the most inner
videos right (ties: the lower pooled negative log-likelihood, then the earlier candidate)
wins. Only then does the model trained without o, with the chosen candidate, predict o's
videos, once. The outer person's videos therefore take part in no choice: the figure
pooled over the outer folds is an estimate for people nobody tuned on.

:func:`nested_select` is the loop, independent of what is trained: it calls an ``oracle``
``(candidate, held_out, test_person) -> [(label, probs), ...]`` and records every call, so a
test can check which persons each choice saw (tests/test_nested.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: One video's true label and predicted class probabilities.
Scored = tuple[int, np.ndarray]
#: ``oracle(candidate, held_out_persons, test_person)``: the videos of ``test_person`` as
#: predicted by a model trained on every person except ``held_out_persons``.
Oracle = Callable[[Any, tuple[str, ...], str], list[Scored]]


@dataclass(frozen=True)
class Call:
    """One oracle call: the model was trained without ``held_out`` and scored on ``test``."""

    fold: str
    candidate: Any
    held_out: tuple[str, ...]
    test: str
    outer: bool

    def seen(self, persons: Sequence[str]) -> set[str]:
        """The persons whose videos this call's model or score used."""
        return {p for p in persons if p not in self.held_out} | {self.test}


@dataclass
class FoldResult:
    """One outer fold: the held-out person, the candidate chosen, its videos' predictions and
    the inner score of every candidate (correct videos, NLL)."""

    person: str
    choice: Any
    videos: list[Scored]
    inner: dict[Any, tuple[int, float]] = field(default_factory=dict)

    @property
    def correct(self) -> int:
        return sum(int(np.argmax(p) == y) for y, p in self.videos)


def score_videos(videos: Sequence[Scored]) -> tuple[int, float]:
    """(videos right, summed negative log-likelihood of the true class)."""
    right = sum(int(np.argmax(p) == y) for y, p in videos)
    nll = -sum(math.log(max(float(p[y]), 1e-6)) for y, p in videos)
    return right, nll


def choose(scores: dict[Any, tuple[int, float]]) -> Any:
    """The candidate with the most right, then the lowest NLL, then the earliest."""
    order = list(scores)
    return min(order, key=lambda c: (-scores[c][0], scores[c][1], order.index(c)))


def nested_select(
    persons: Sequence[str],
    candidates: Sequence[Any],
    oracle: Oracle,
    *,
    outer_persons: Sequence[str] | None = None,
    calls: list[Call] | None = None,
) -> list[FoldResult]:
    """The nested loop: per outer person (all ``persons``, or ``outer_persons``), an inner
    leave-one-person-out choice among ``candidates`` over all the other persons, then one
    outer score. ``calls`` (if given) receives every oracle call."""
    results = []
    for outer in persons if outer_persons is None else outer_persons:
        inner_persons = [p for p in persons if p != outer]
        scores: dict[Any, tuple[int, float]] = {}
        for candidate in candidates:
            videos: list[Scored] = []
            for inner in inner_persons:
                held_out = tuple(sorted((outer, inner)))
                if calls is not None:
                    calls.append(Call(outer, candidate, held_out, inner, outer=False))
                videos += oracle(candidate, held_out, inner)
            scores[candidate] = score_videos(videos)
        chosen = choose(scores)
        if calls is not None:
            calls.append(Call(outer, chosen, (outer,), outer, outer=True))
        results.append(FoldResult(outer, chosen, oracle(chosen, (outer,), outer), scores))
    return results


def checked_select(
    persons: Sequence[str],
    candidates: Sequence[Any],
    oracle: Oracle,
    *,
    outer_persons: Sequence[str] | None = None,
) -> list[FoldResult]:
    """:func:`nested_select`, asserting over every oracle call of the run that no choice
    used a model or a score that saw its fold's outer person."""
    calls: list[Call] = []
    folds = nested_select(persons, candidates, oracle, outer_persons=outer_persons, calls=calls)
    for call in calls:
        assert call.outer or call.fold not in call.seen(persons), call
    return folds


def per_class(folds: Sequence[FoldResult], classes: Sequence[str]) -> dict[str, list[int]]:
    """class -> [videos right, videos] over the outer folds' predictions."""
    out = {c: [0, 0] for c in classes}
    for fold in folds:
        for y, p in fold.videos:
            out[classes[y]][0] += int(np.argmax(p) == y)
            out[classes[y]][1] += 1
    return out


def plain_select(
    persons: Sequence[str], candidates: Sequence[Any], oracle: Oracle
) -> tuple[Any, dict[Any, tuple[int, float]]]:
    """The non-nested choice: the candidate with the best leave-one-person-out score over all
    ``persons`` (what a shipped model is chosen by; its score is optimistic)."""
    scores = {}
    for candidate in candidates:
        videos: list[Scored] = []
        for person in persons:
            videos += oracle(candidate, (person,), person)
        scores[candidate] = score_videos(videos)
    return choose(scores), scores
