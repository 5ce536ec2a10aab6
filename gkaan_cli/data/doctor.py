"""The data doctor: checks of a labelled, split video list that need no decoding.

:func:`diagnose` runs every check on the entries :func:`~gkaan_cli.data.sources.assign_splits`
returned and gives plain warning lines (docs/protocol.md#the-data-doctor). ``gkaan prepare``
prints them and stores them in the manifest (``findings``); with ``--strict`` they stop the run
before any video is decoded. Each check reads only names, labels, splits and groups, except
the duplicate check, which hashes the files whose sizes coincide.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from ..errors import GkaanError, UsageError
from ..fileio import display_path, sha256_file
from .sources import SourceEntry

__all__ = [
    "MAX_CLASS_RATIO",
    "MIN_CLASS_VIDEOS",
    "DataWarningsError",
    "check_balance",
    "check_duplicates",
    "check_groups",
    "check_labels",
    "check_person_ids",
    "diagnose",
]

#: A class with fewer videos than this cannot have one in each of train, val and test.
MIN_CLASS_VIDEOS = 3
#: Warn when the largest class has more than this many times the videos of the smallest.
MAX_CLASS_RATIO = 10.0
#: Name parts that usually identify a person (KTH ``person07``, UCF101 ``_g08_`` groups of
#: one actor, ``P3``/``subject3``/``actor3``): a split that ignores them leaks the person.
_PERSON_TOKENS = ("person", "subject", "actor", "participant", "performer", "user", "p", "g")


class DataWarningsError(UsageError):
    """The doctor found problems and the run was told to be strict (``--strict``)."""

    def __init__(self, source: str, findings: Sequence[str]) -> None:
        self.findings = list(findings)
        super().__init__(
            f"{source}: {_plural(len(self.findings), 'data warning')} with --strict, nothing "
            f"prepared: {'; '.join(self.findings)}"
        )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def check_balance(
    entries: Sequence[SourceEntry],
    min_videos: int = MIN_CLASS_VIDEOS,
    max_ratio: float = MAX_CLASS_RATIO,
) -> list[str]:
    """Warn when a class has fewer than ``min_videos`` videos, no training video, or when the
    largest class holds more than ``max_ratio`` times the smallest."""
    totals = Counter(e.label for e in entries)
    train = Counter(e.label for e in entries if e.split == "train")
    warnings = [
        f"class {label!r} has {_plural(n, 'video')} (fewer than {min_videos}: it cannot be "
        "in train, val and test)"
        for label, n in sorted(totals.items())
        if n < min_videos
    ]
    if any(e.split == "train" for e in entries):
        warnings += [
            f"class {label!r} has no training video" for label in sorted(totals) if not train[label]
        ]
    if totals and max(totals.values()) > max_ratio * min(totals.values()):
        large = max(totals, key=lambda label: totals[label])
        small = min(totals, key=lambda label: totals[label])
        warnings.append(
            f"class {large!r} has {_plural(totals[large], 'video')}, more than {max_ratio:g} x "
            f"class {small!r} ({totals[small]})"
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


def check_groups(entries: Sequence[SourceEntry]) -> list[str]:
    """Warn about a group whose videos lie in more than one split."""
    splits: dict[str, set[str]] = defaultdict(set)
    for e in entries:
        if e.group is not None and e.split is not None:
            splits[e.group].add(e.split)
    return [
        f"group {group!r} is in splits {', '.join(sorted(s))}"
        for group, s in sorted(splits.items())
        if len(s) > 1
    ]


def check_duplicates(entries: Sequence[SourceEntry]) -> list[str]:
    """Warn about identical files (same bytes) in more than one split or under two labels.

    Only files that share their size with another are hashed; unreadable files are left to
    the decoder, which reports them."""
    by_size: dict[int, list[SourceEntry]] = defaultdict(list)
    for e in entries:
        try:
            by_size[e.path.stat().st_size].append(e)
        except OSError:
            continue
    by_hash: dict[str, list[SourceEntry]] = defaultdict(list)
    for same_size in by_size.values():
        if len(same_size) < 2:
            continue
        for e in same_size:
            try:
                by_hash[sha256_file(e.path)].append(e)
            except (OSError, GkaanError):
                continue
    warnings: list[str] = []
    for same in by_hash.values():
        names = ", ".join(display_path(e.path) for e in same)
        if len({e.split for e in same}) > 1:
            warnings.append(f"identical videos in more than one split: {names}")
        if len({e.label for e in same}) > 1:
            warnings.append(f"identical videos under two labels: {names}")
    return warnings


def check_person_ids(entries: Sequence[SourceEntry]) -> list[str]:
    """Without ``--split-by``: warn when every file name carries what looks like a person id
    (several videos each), suggesting the ``--split-by`` regex that groups by it."""
    names = [e.path.stem for e in entries]
    if len(names) < 2:
        return []
    for token in _PERSON_TOKENS:
        for word in dict.fromkeys((token, token.capitalize(), token.upper())):
            # the word, then digits, not inside a longer word ("_g08_", "P3T1", "person07")
            guarded = rf"(?<![A-Za-z]){word}(\d+)"
            ids = _ids(guarded, names)
            if ids is None or not 2 <= len(set(ids)) < len(ids):
                continue
            simple = rf"{word}(\d+)"
            shown = simple if _ids(simple, names) == ids else guarded
            return [
                f"file names carry what looks like a person id ({len(set(ids))} ids, e.g. "
                f"{names[0]!r}) but the split is by video, so one person can be in two splits; "
                f"group them with --split-by '{shown}'"
            ]
    return []


def _ids(regex: str, names: Sequence[str]) -> list[str] | None:
    """The first capture of ``regex`` in each name, or None when one name has none."""
    pattern = re.compile(regex)
    ids = [m.group(1) if (m := pattern.search(name)) else None for name in names]
    return None if None in ids else [i for i in ids if i is not None]


def diagnose(entries: Sequence[SourceEntry], *, split_by: str | None) -> list[str]:
    """Every check on ``entries`` (with their splits and groups): warning lines, in order of
    labels, balance, groups (with ``split_by``) or person ids (without), duplicates."""
    used = [e for e in entries if e.split is not None]
    warnings = check_labels({e.label for e in used}) + check_balance(used)
    warnings += check_groups(used) if split_by is not None else check_person_ids(used)
    return warnings + check_duplicates(used)
