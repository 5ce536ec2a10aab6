"""The nested leave-one-person-out loop of benchmarks/nested.py: the outer person takes part in
no choice, and the choice is the candidate the inner folds score best."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))

import nested

PERSONS = ["p1", "p2", "p3", "p4", "p5"]


def fake_oracle(good: dict[str, str]) -> nested.Oracle:
    """Each person has two videos (labels 0 and 1); a candidate predicts them right when the
    training persons include the person ``good[candidate]`` names (a stand-in for a choice
    that depends on who was trained on)."""

    def oracle(candidate: str, held_out: tuple[str, ...], test: str) -> list[nested.Scored]:
        right = good[candidate] not in held_out
        out = []
        for label in (0, 1):
            probs = np.array([0.9, 0.1]) if (label == 0) == right else np.array([0.1, 0.9])
            out.append((label, probs))
        return out

    return oracle


def test_the_outer_person_is_never_seen_by_any_choice() -> None:
    calls: list[nested.Call] = []
    oracle = fake_oracle({"a": "p1", "b": "p3", "c": "p5"})
    folds = nested.nested_select(PERSONS, ["a", "b", "c"], oracle, calls=calls)
    assert [f.person for f in folds] == PERSONS
    for fold in folds:
        inner = [c for c in calls if c.fold == fold.person and not c.outer]
        outer = [c for c in calls if c.fold == fold.person and c.outer]
        # every candidate is scored on every other person, by a model without both
        assert len(inner) == 3 * (len(PERSONS) - 1)
        for call in inner:
            assert fold.person not in call.seen(PERSONS)
            assert call.test != fold.person and fold.person in call.held_out
        # and then the outer person is scored once, by a model trained on all the others
        assert len(outer) == 1 and outer[0].held_out == (fold.person,)
        assert outer[0].seen(PERSONS) == set(PERSONS)


def test_each_fold_chooses_the_candidate_its_inner_folds_score_best() -> None:
    # candidate "a" needs p1 in training: wrong only where p1 is held out. Inner folds of outer
    # p1 always hold out p1, so every candidate ties there except those needing another person.
    oracle = fake_oracle({"a": "p1", "b": "p3"})
    folds = nested.nested_select(PERSONS, ["a", "b"], oracle)
    chosen = {f.person: f.choice for f in folds}
    assert chosen["p1"] == "b"  # "a" is wrong on every inner fold of p1
    assert chosen["p3"] == "a"  # and "b" on every inner fold of p3
    assert chosen["p2"] == "a"  # a tie (each wrong on one inner person): the earlier
    # the outer scores are those of the chosen candidate on the outer person
    assert [f.correct for f in folds] == [2, 2, 2, 2, 2]


def test_choose_breaks_ties_by_nll_then_order() -> None:
    assert nested.choose({"x": (3, 2.0), "y": (3, 1.0), "z": (2, 0.0)}) == "y"
    assert nested.choose({"x": (3, 1.0), "y": (3, 1.0)}) == "x"


def test_the_variants_temperatures_see_neither_the_outer_nor_the_scored_person() -> None:
    """benchmarks/kth_variants.py fits each appearance stream's temperature on held-out
    predictions: to score person i inside outer fold o, from models trained without o (and
    the person they predict), on persons other than o and i."""
    import kth_nested
    import kth_variants

    read: list[tuple[tuple[str, ...], str]] = []

    class FakeOracle:
        persons = PERSONS

        def __init__(self) -> None:
            self._held: tuple[str, ...] = ()

        def appearance(self, held_out: tuple[str, ...], epochs: int, sa: str) -> Any:
            self._held = held_out
            return {f"{p}.avi": {"gs": np.array([[0.8, 0.2]])} for p in PERSONS}

        def person_videos(self, person: str) -> list[str]:
            read.append((self._held, person))
            return [f"{person}.avi"]

        def label(self, video: str) -> int:
            return 0

    oracle = kth_variants.VariantOracle.__new__(kth_variants.VariantOracle)
    oracle.sparse, oracle.persons, oracle._temperatures = FakeOracle(), PERSONS, {}
    candidate = kth_nested.Candidate(5, "-", 0.0, 0.0)
    for outer in PERSONS:
        for scored in PERSONS:
            read.clear()
            t = oracle.temperature(outer, scored, candidate, "gs")
            assert t in kth_variants.TEMPERATURES
            assert read, "no held-out predictions read"
            for held_out, person in read:
                assert outer in held_out and person in held_out  # the model never saw them
                assert person not in (outer, scored)
