"""The data doctor's checks (gkaan_cli/data/doctor.py): what each warns about, and not."""

from __future__ import annotations

from pathlib import Path

from gkaan_cli.data.doctor import (
    Entry,
    check_balance,
    check_duplicates,
    check_groups,
    check_labels,
)


def test_balance_warns_on_a_small_class_and_a_large_ratio() -> None:
    entries = [Entry(Path(f"a{i}"), "walk", "train") for i in range(9)]
    entries += [Entry(Path("b0"), "run", "train")]
    warnings = check_balance(entries, min_videos=2, max_ratio=3.0)
    assert any("'run' has 1 videos" in w for w in warnings)
    assert any("9 videos, more than 3 x the smallest (1)" in w for w in warnings)
    assert check_balance(entries, min_videos=1, max_ratio=10.0) == []


def test_labels_differing_only_by_case_or_spacing() -> None:
    assert check_labels(["Hand Waving", "handwaving", "walk"]) == [
        "labels 'Hand Waving', 'handwaving' differ only by case or spacing"
    ]
    assert check_labels(["walk", "run"]) == []


def test_a_group_in_two_splits() -> None:
    entries = [
        Entry(Path("a"), "walk", "train", "person01"),
        Entry(Path("b"), "walk", "test", "person01"),
        Entry(Path("c"), "walk", "test", "person02"),
    ]
    assert check_groups(entries) == ["group 'person01' is in splits test, train"]


def test_identical_files_across_splits_and_labels(tmp_path: Path) -> None:
    for name, data in {"a": b"same", "b": b"same", "c": b"other"}.items():
        (tmp_path / name).write_bytes(data)
    entries = [
        Entry(tmp_path / "a", "walk", "train"),
        Entry(tmp_path / "b", "run", "test"),
        Entry(tmp_path / "c", "walk", "test"),
    ]
    warnings = check_duplicates(entries)
    assert len(warnings) == 2
    assert "more than one split" in warnings[0] and "two labels" in warnings[1]
    assert check_duplicates(entries[2:]) == []
