"""Find the labelled videos of a dataset and assign them to train/val/test splits.

Sources (:func:`discover`):

- a folder with one sub-folder per class (videos found recursively inside each class folder);
- UCF101 official split files (``classInd.txt``, ``trainlist0N.txt``, ``testlist0N.txt``)
  plus the video root (``<root>/<Class>/v_<Class>_gXX_cYY.avi``);
- HMDB51 official split files (``<class>_test_splitN.txt``, lines ``video.avi 0|1|2``: 1 train,
  2 test, 0 not used) plus the video root (``<root>/<class>/<video>`` or ``<root>/<video>``);
- a CSV file ``path,label[,split]`` (header optional, paths relative to the CSV file). A row
  whose field is too long for the csv module, whose label is longer than
  :data:`~gkaan_cli.config.MAX_CLASS_NAME` characters (the model's bound on a class name)
  or empty, or whose path is longer than :data:`MAX_PATH_CHARS`, is refused with its number.

Splits (:func:`assign_splits`, settings in :class:`SplitOptions`): official splits are kept;
``split_by`` (a regular expression
whose first capture group, searched in the file name, is the group id: KTH ``person(\\d+)``,
UCF101 ``_g(\\d+)_``) puts whole groups in one split, never one group in two; ``test_groups``
and ``val_groups`` name the groups of those splits exactly (e.g. ps7-arms P3 for test). Without
``split_by`` each video is its own group and the split is stratified per class (each class
gives ``round(fraction * n)`` of its videos to val and test): clips of one person or scene
may then land in two splits, so pass ``split_by`` whenever the names carry a group.
"""

from __future__ import annotations

import csv
import os
import random
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from ..config import MAX_CLASS_NAME
from ..errors import UsageError
from ..fileio import display_path, regular_file_problem
from ..video.formats import has_video_extension

__all__ = [
    "MAX_PATH_CHARS",
    "SPLITS",
    "VIDEO_GROUPS_RULE",
    "Source",
    "SourceEntry",
    "Split",
    "SplitOptions",
    "SplitPlan",
    "assign_splits",
    "discover",
]

#: The split rule without ``split_by``: no two videos are known to share a person.
VIDEO_GROUPS_RULE = "each video its own group, stratified by class"

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")
_SPLIT_ALIASES: dict[str, Split] = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
#: Longest video path a CSV row may give (Linux's PATH_MAX).
MAX_PATH_CHARS = 4096
_HMDB_FILE = re.compile(r"^(?P<label>.+)_test_split(?P<split>\d)\.txt$")


@dataclass(frozen=True)
class SourceEntry:
    """One video of a source: its path, class label, official split (if any) and group."""

    path: Path
    label: str
    split: Split | None = None
    group: str | None = None
    #: Why the source itself excludes this video (HMDB51 "0" lines), else ``None``.
    excluded: str | None = None


@dataclass(frozen=True)
class Source:
    """A discovered dataset: ``kind``, ``root`` (ids are relative to it), classes, entries."""

    kind: Literal["folder", "ucf101", "hmdb51", "csv"]
    root: Path
    description: str
    classes: tuple[str, ...]
    entries: tuple[SourceEntry, ...]
    #: ``(path, reason)`` of what could not be searched: an unreadable folder, a class
    #: folder with no readable video. Paths are printable (:func:`display_path`).
    warnings: tuple[tuple[str, str], ...] = ()

    def video_id(self, entry: SourceEntry) -> str:
        """Stable id of ``entry``: its path relative to the root (POSIX), else the full path."""
        try:
            return entry.path.relative_to(self.root).as_posix()
        except ValueError:
            return entry.path.as_posix()


@dataclass(frozen=True)
class SplitPlan:
    """How videos were split: the rule used and the sorted group ids in each split."""

    rule: str
    groups: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class SplitOptions:
    """How :func:`assign_splits` puts videos into train/val/test (defaults: 60/20/20 by video).

    Attributes:
        split_by: regular expression; the first capture group of ``re.search`` on the file
            name is the group id. ``None``: each video is its own group, stratified by class.
        val_fraction: fraction of groups (of train groups with official splits) for val.
        test_fraction: fraction of groups for test, where no official split says.
        seed: seed of the group shuffle.
        test_groups: with ``split_by``, exactly these groups are test (``test_fraction`` is
            then unused); only groups without an official split.
        val_groups: with ``split_by``, exactly these groups are val (``val_fraction`` unused).
    """

    split_by: str | None = None
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    seed: int = 0
    test_groups: tuple[str, ...] | None = None
    val_groups: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("test_groups", "val_groups"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))


def _videos_in(folder: Path, warnings: list[tuple[str, str]]) -> list[Path]:
    """Video-named files under ``folder`` (recursively, hidden names skipped), whatever their
    type: a FIFO, a folder or a dangling link named ``x.mp4`` is kept, so preparing it fails
    with its reason instead of vanishing. Unreadable sub-folders are added to ``warnings``."""

    def unreadable(error: OSError) -> None:
        where = error.filename if error.filename is not None else folder
        reason = f"unreadable folder ({error.strerror or error}); its videos are not used"
        warnings.append((display_path(where), reason))

    found: list[Path] = []
    for top, dirs, files in os.walk(folder, onerror=unreadable):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(
            Path(top) / name
            for name in [*files, *dirs]  # a folder named x.mp4 is reported, not skipped
            if not name.startswith(".") and has_video_extension(Path(name))
        )
    return sorted(found)


def _folder(root: Path) -> Source:
    try:
        children = list(root.iterdir())
    except OSError as error:
        raise UsageError(f"{display_path(root)}: cannot read ({error.strerror or error})") from None
    classes = sorted(p.name for p in children if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise UsageError(f"{display_path(root)}: no class sub-folders (expected one per class)")
    warnings: list[tuple[str, str]] = []
    entries: list[SourceEntry] = []
    for label in classes:
        videos = _videos_in(root / label, warnings)
        if not any(regular_file_problem(path) is None for path in videos):
            warnings.append(
                (display_path(root / label), f"class folder {label!r} has no readable video")
            )
        entries.extend(SourceEntry(path, label) for path in videos)
    return Source("folder", root, f"folder {root}", tuple(classes), tuple(entries), tuple(warnings))


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: cannot read ({error})") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def _ucf101(lists: Path, video_root: Path, split_id: int) -> Source:
    classes: list[str] = []
    for line in _read_lines(lists / "classInd.txt"):
        number, _, name = line.partition(" ")
        if not number.isdigit() or not name:
            raise UsageError(f"{lists / 'classInd.txt'}: bad line {line[:80]!r} (want '1 Name')")
        if len(name.strip()) > MAX_CLASS_NAME:
            raise UsageError(
                f"{lists / 'classInd.txt'}: class {number} is {len(name.strip())} characters "
                f"long (at most {MAX_CLASS_NAME})"
            )
        classes.append(name.strip())
    known = set(classes)
    entries: list[SourceEntry] = []
    for split, name in (("train", "trainlist"), ("test", "testlist")):
        list_file = lists / f"{name}{split_id:02d}.txt"
        for line in _read_lines(list_file):
            rel = line.split()[0]
            label = rel.split("/")[0]
            if label not in known:
                raise UsageError(f"{list_file}: class {label!r} of {rel!r} not in classInd.txt")
            entries.append(SourceEntry(video_root / rel, label, split))  # type: ignore[arg-type]
    description = f"UCF101 split {split_id} ({lists}) videos in {video_root}"
    return Source("ucf101", video_root, description, tuple(classes), tuple(entries))


def _hmdb51(lists: Path, video_root: Path, split_id: int) -> Source:
    files = sorted(lists.glob(f"*_test_split{split_id}.txt"))
    if not files:
        raise UsageError(f"{lists}: no HMDB51 files *_test_split{split_id}.txt")
    classes: list[str] = []
    entries: list[SourceEntry] = []
    codes: dict[str, Split | None] = {"1": "train", "2": "test", "0": None}
    for list_file in files:
        match = _HMDB_FILE.match(list_file.name)
        assert match is not None
        label = match["label"]
        classes.append(label)
        for line in _read_lines(list_file):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in codes:
                raise UsageError(f"{list_file}: bad line {line!r} (want 'video.avi 0|1|2')")
            nested = video_root / label / parts[0]
            path = nested if nested.exists() else video_root / parts[0]
            split = codes[parts[1]]
            excluded = None if split else f"not used by HMDB51 split {split_id}"
            entries.append(SourceEntry(path, label, split, excluded=excluded))
    description = f"HMDB51 split {split_id} ({lists}) videos in {video_root}"
    return Source("hmdb51", video_root, description, tuple(classes), tuple(entries))


def _csv_rows(path: Path) -> list[tuple[int, list[str]]]:
    """The CSV's non-empty rows after an optional ``path,label`` header, with their numbers
    (1 = the first row after the header); a row the csv module cannot parse is refused."""
    reader = csv.reader(_read_lines(path))
    rows: list[tuple[int, list[str]]] = []
    header = 0
    while True:
        number = reader.line_num + 1 - header
        try:
            row = next(reader)
        except StopIteration:
            return rows
        except csv.Error as error:
            raise UsageError(
                f"{path}: row {number}: cannot be read ({error}; a label is at most "
                f"{MAX_CLASS_NAME} characters)"
            ) from None
        if not row:
            continue
        if number == 1 and not header and [c.strip().lower() for c in row[:2]] == ["path", "label"]:
            header = 1
            continue
        rows.append((number, row))


def _csv(path: Path) -> Source:
    entries: list[SourceEntry] = []
    for number, row in _csv_rows(path):
        if len(row) not in (2, 3):
            raise UsageError(
                f"{path}: row {number} has {len(row)} columns (want path,label[,split])"
            )
        label = row[1].strip()
        if not label or len(label) > MAX_CLASS_NAME:
            size = f"is {len(label)} characters long" if label else "is empty"
            raise UsageError(
                f"{path}: row {number}: the label {size} (1 to {MAX_CLASS_NAME} characters)"
            )
        if len(row[0].strip()) > MAX_PATH_CHARS:
            raise UsageError(
                f"{path}: row {number}: the path is {len(row[0].strip())} characters long "
                f"(at most {MAX_PATH_CHARS})"
            )
        split: Split | None = None
        if len(row) == 3 and row[2].strip():
            name = row[2].strip().lower()
            if name not in _SPLIT_ALIASES:
                raise UsageError(f"{path}: row {number}: unknown split {row[2]!r} (train/val/test)")
            split = _SPLIT_ALIASES[name]
        video = Path(row[0].strip())
        entries.append(SourceEntry(path.parent / video, label, split))
    if not entries:
        raise UsageError(f"{path}: no rows")
    classes = tuple(sorted({e.label for e in entries}))
    return Source("csv", path.parent, f"CSV {path}", classes, tuple(entries))


def discover(
    source: str | Path, *, video_root: str | Path | None = None, split_id: int = 1
) -> Source:
    """Find the videos and labels of ``source`` (sorted, deterministic).

    Args:
        source: a folder of class folders, a ``.csv`` file, or the folder holding the UCF101
            (``classInd.txt``) or HMDB51 (``*_test_splitN.txt``) split files.
        video_root: where the videos of UCF101/HMDB51 split files live (default: ``source``).
        split_id: which official split (1, 2 or 3) to use.

    Raises:
        UsageError: the source does not exist or is not in one of these layouts.
    """
    path = Path(source)
    if not path.exists():
        raise UsageError(f"{path}: source not found")
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise UsageError(f"{path}: a file source must be a .csv (path,label[,split])")
        return _csv(path)
    root = Path(video_root) if video_root is not None else path
    if (path / "classInd.txt").is_file():
        return _ucf101(path, root, split_id)
    if any(path.glob("*_test_split[0-9].txt")):
        return _hmdb51(path, root, split_id)
    return _folder(path)


def _group_of(entry: SourceEntry, pattern: re.Pattern[str]) -> str | None:
    match = pattern.search(entry.path.name)
    if match is None:
        return None
    return match.group(1) if pattern.groups else match.group(0)


def _natural(key: str) -> tuple[int, str]:
    """Sort key putting numeric group ids in numeric order ("2" before "10")."""
    return (int(key), key) if key.isdigit() else (1 << 62, key)


def _take(groups: Sequence[str], fractions: Sequence[float], rng: random.Random) -> list[list[str]]:
    """Shuffle ``groups`` and cut off ``round(f * n)`` of them per fraction; the rest last.

    A positive fraction gets at least one group while at least one group is left over.
    """
    order = sorted(groups, key=_natural)
    rng.shuffle(order)
    cuts: list[list[str]] = []
    for fraction in fractions:
        count = round(fraction * len(groups))
        if fraction > 0:
            count = max(count, 1)
        count = min(count, len(order) - 1)
        cuts.append(order[:count] if count > 0 else [])
        order = order[max(count, 0) :]
    cuts.append(order)
    return cuts


def _explicit_groups(
    test_groups: Sequence[str] | None,
    val_groups: Sequence[str] | None,
    split_by: str | None,
    known: set[str],
    official: dict[str, set[str]],
) -> dict[str, Split]:
    """Group -> split for ``test_groups``/``val_groups``, checked against the known groups."""
    named: dict[str, Split] = dict.fromkeys(val_groups or (), "val")
    both = sorted(set(test_groups or ()) & set(named), key=_natural)
    named.update(dict.fromkeys(test_groups or (), "test"))
    if not named:
        return {}
    if split_by is None:
        raise UsageError("--test-groups/--val-groups need --split-by (the regex of group ids)")
    if both:
        raise UsageError(f"group(s) {', '.join(both)} given for both test and val")
    unknown = sorted(set(named) - known, key=_natural)
    if unknown:
        raise UsageError(
            f"group(s) {', '.join(unknown)} match no file name by --split-by {split_by!r}; "
            f"the groups are {', '.join(sorted(known, key=_natural))}"
        )
    fixed = sorted(set(named) & set(official), key=_natural)
    if fixed:
        raise UsageError(f"group(s) {', '.join(fixed)} already have an official split")
    return named


def assign_splits(
    entries: Iterable[SourceEntry], options: SplitOptions | None = None
) -> tuple[list[SourceEntry], SplitPlan]:
    """Give every entry a split and a group, whole groups at a time.

    Entries with an official split keep it; ``val_fraction`` of the train groups then go to
    val. Entries without one get test, val and train groups by ``test_fraction`` and
    ``val_fraction`` (a shuffle seeded by ``seed``). Excluded entries keep ``split=None``.

    Args:
        entries: the source's entries.
        options: how to split (default ``SplitOptions()``).

    Raises:
        UsageError: bad fractions, a bad regex, a file name it does not match, a group that
            official splits put in both train and test, or explicit groups without
            ``split_by``, unknown, in both lists, or with an official split.
    """
    options = options if options is not None else SplitOptions()
    split_by, seed = options.split_by, options.seed
    val_fraction, test_fraction = options.val_fraction, options.test_fraction
    test_groups, val_groups = options.test_groups, options.val_groups
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise UsageError(
            f"val_fraction ({val_fraction}) and test_fraction ({test_fraction}) must be in "
            "[0, 1) with a sum below 1"
        )
    items = list(entries)
    used = [e for e in items if e.excluded is None]
    if split_by is not None:
        try:
            pattern = re.compile(split_by)
        except re.error as error:
            raise UsageError(f"--split-by {split_by!r} is not a valid regex ({error})") from None
        unmatched = [e.path.name for e in used if _group_of(e, pattern) is None]
        if unmatched:
            raise UsageError(
                f"--split-by {split_by!r} matches no group in {len(unmatched)} file name(s), "
                f"e.g. {', '.join(unmatched[:3])}"
            )
        group_of = {id(e): _group_of(e, pattern) or "" for e in used}
        rule = f"groups by regex {split_by}"
    else:
        group_of = {id(e): f"{e.label}/{e.path.stem}" for e in used}
        rule = VIDEO_GROUPS_RULE

    official: dict[str, set[str]] = defaultdict(set)
    for entry in used:
        if entry.split is not None:
            official[group_of[id(entry)]].add(entry.split)
    mixed = sorted(g for g, splits in official.items() if len(splits) > 1)
    if mixed and split_by is not None:
        raise UsageError(f"official splits put group(s) {', '.join(mixed[:5])} in two splits")
    explicit = _explicit_groups(test_groups, val_groups, split_by, set(group_of.values()), official)
    if test_groups is not None:
        test_fraction = 0.0
    if val_groups is not None:
        val_fraction = 0.0

    def pools(split: Split | None) -> list[list[str]]:
        """Groups to cut from: one pool per class without ``split_by`` (stratified)."""
        chosen = [
            e
            for e in used
            if e.split == split
            and (split is not None or group_of[id(e)] not in official)
            and group_of[id(e)] not in explicit
        ]
        if split_by is not None:
            return [sorted({group_of[id(e)] for e in chosen}, key=_natural)] if chosen else []
        strata: dict[str, list[str]] = defaultdict(list)
        for entry in chosen:
            strata[entry.label].append(group_of[id(entry)])
        return [strata[label] for label in sorted(strata)]

    rng = random.Random(seed)
    split_of: dict[str, Split] = dict(explicit)
    for pool in pools("train"):
        val, train = _take(pool, [val_fraction], rng)
        split_of.update(dict.fromkeys(train, "train") | dict.fromkeys(val, "val"))
    for pool in pools(None):
        test, val, train = _take(pool, [test_fraction, val_fraction], rng)
        split_of.update(
            dict.fromkeys(test, "test") | dict.fromkeys(val, "val") | dict.fromkeys(train, "train")
        )

    result: list[SourceEntry] = []
    groups: dict[str, set[str]] = {s: set() for s in SPLITS}
    for entry in items:
        if entry.excluded is not None:
            result.append(entry)
            continue
        group = group_of[id(entry)]
        split = split_of.get(group) or min(official[group])
        groups[split].add(group)
        result.append(replace(entry, split=split, group=group))
    plan = SplitPlan(rule, {s: sorted(g, key=_natural) for s, g in groups.items()})
    return result, plan
