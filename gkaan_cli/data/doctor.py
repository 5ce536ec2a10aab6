"""The data doctor: checks of a labelled video list that need no decoding.

Each check returns plain warning lines; the caller prints them, and with ``strict`` treats
them as errors. Not wired into ``gkaan prepare`` yet (issue 27).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Entry",
    "check_balance",
    "check_duplicates",
    "check_groups",
    "check_labels",
    "file_hash",
]


@dataclass(frozen=True)
class Entry:
    """One labelled video: its path, label, split and (optional) group."""

    path: Path
    label: str
    split: str
    group: str | None = None


def check_balance(entries: Sequence[Entry], min_videos: int, max_ratio: float) -> list[str]:
    """Warn when a class of a split has fewer than ``min_videos`` videos, or when its largest
    class holds more than ``max_ratio`` times its smallest."""
    warnings: list[str] = []
    per_split: dict[str, Counter[str]] = defaultdict(Counter)
    labels = sorted({e.label for e in entries})
    for e in entries:
        per_split[e.split][e.label] += 1
    for split, counts in sorted(per_split.items()):
        for label in labels:
            if counts[label] < min_videos:
                warnings.append(
                    f"split {split}: class {label!r} has {counts[label]} videos (< {min_videos})"
                )
        present = [n for n in counts.values() if n > 0]
        if present and max(present) > max_ratio * min(present):
            warnings.append(
                f"split {split}: largest class has {max(present)} videos, more than "
                f"{max_ratio:g} x the smallest ({min(present)})"
            )
    return warnings


def check_labels(labels: Iterable[str]) -> list[str]:
    """Warn about labels that differ only by case or spacing."""
    seen: dict[str, set[str]] = defaultdict(set)
    for label in labels:
        seen[re.sub(r"[\s_-]+", "", label).casefold()].add(label)
    return [
        f"labels {', '.join(repr(x) for x in sorted(group))} differ only by case or spacing"
        for _, group in sorted(seen.items())
        if len(group) > 1
    ]


def check_groups(entries: Sequence[Entry]) -> list[str]:
    """Warn about a group whose videos lie in more than one split."""
    splits: dict[str, set[str]] = defaultdict(set)
    for e in entries:
        if e.group is not None:
            splits[e.group].add(e.split)
    return [
        f"group {group!r} is in splits {', '.join(sorted(s))}"
        for group, s in sorted(splits.items())
        if len(s) > 1
    ]


def file_hash(path: Path) -> str:
    """The SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_duplicates(entries: Sequence[Entry]) -> list[str]:
    """Warn about identical files (same content) in more than one split or under two labels."""
    by_hash: dict[str, list[Entry]] = defaultdict(list)
    for e in entries:
        by_hash[file_hash(e.path)].append(e)
    warnings: list[str] = []
    for same in by_hash.values():
        names = ", ".join(str(e.path) for e in same)
        if len({e.split for e in same}) > 1:
            warnings.append(f"identical videos in more than one split: {names}")
        if len({e.label for e in same}) > 1:
            warnings.append(f"identical videos under two labels: {names}")
    return warnings
