"""Dataset discovery (class folders, UCF101, HMDB51, CSV) and group-safe split assignment."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import KTH_CLASSES

from gkaan_cli.data.sources import SplitOptions, assign_splits, discover
from gkaan_cli.errors import UsageError


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def test_class_folders_give_sorted_classes_and_only_video_files(tmp_path: Path) -> None:
    _touch(tmp_path, "walk/b.MP4", "walk/a.avi", "walk/notes.txt", "box/sub/c.mkv", "box/.d.mp4")
    source = discover(tmp_path)
    assert source.kind == "folder"
    assert source.classes == ("box", "walk")
    assert [source.video_id(e) for e in source.entries] == [
        "box/sub/c.mkv",
        "walk/a.avi",
        "walk/b.MP4",
    ]
    assert [e.label for e in source.entries] == ["box", "walk", "walk"]
    assert all(e.split is None for e in source.entries)


def test_kth_mini_is_found_with_its_six_classes(data_dir: Path) -> None:
    source = discover(data_dir / "kth-mini")
    assert source.classes == KTH_CLASSES
    assert len(source.entries) == 19


def test_split_by_never_puts_a_group_in_two_splits_and_reports_the_groups(tmp_path: Path) -> None:
    names = [
        f"{c}/person{p:02d}_{c}_d{d}.avi"
        for c in ("box", "run")
        for p in range(1, 11)
        for d in (1, 2)
    ]
    _touch(tmp_path, *names)
    entries, plan = assign_splits(
        discover(tmp_path).entries,
        SplitOptions(split_by=r"person(\d+)", val_fraction=0.2, test_fraction=0.2),
    )
    by_split = {s: {e.group for e in entries if e.split == s} for s in ("train", "val", "test")}
    assert sum(len(g) for g in by_split.values()) == 10  # every person in exactly one split
    assert (len(by_split["val"]), len(by_split["test"]), len(by_split["train"])) == (2, 2, 6)
    assert {s: sorted(g, key=int) for s, g in by_split.items()} == plan.groups
    again, _ = assign_splits(discover(tmp_path).entries, SplitOptions(split_by=r"person(\d+)"))
    assert [e.split for e in again] == [e.split for e in entries]
    other, _ = assign_splits(
        discover(tmp_path).entries, SplitOptions(split_by=r"person(\d+)", seed=1)
    )
    assert [e.split for e in other] != [e.split for e in entries]


def test_split_by_that_misses_a_file_name_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    _touch(tmp_path, "box/person01_box.avi", "box/stray.avi")
    with pytest.raises(UsageError, match=r"stray\.avi"):
        assign_splits(discover(tmp_path).entries, SplitOptions(split_by=r"person(\d+)"))
    with pytest.raises(UsageError, match="not a valid regex"):
        assign_splits(discover(tmp_path).entries, SplitOptions(split_by=r"person(\d+"))


def test_default_split_is_stratified_so_every_class_keeps_training_videos(tmp_path: Path) -> None:
    _touch(tmp_path, *[f"{c}/v{i}.mp4" for c in ("a", "b", "c") for i in range(5)])
    entries, plan = assign_splits(
        discover(tmp_path).entries, SplitOptions(val_fraction=0.2, test_fraction=0.2)
    )
    for label in ("a", "b", "c"):
        splits = sorted(e.split or "" for e in entries if e.label == label)
        assert splits == ["test", "train", "train", "train", "val"]
    assert "stratified" in plan.rule


def _ucf_lists(root: Path) -> Path:
    lists = root / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Archery\n")
    train = [
        f"{c}/v_{c}_g{g:02d}_c01.avi {i + 1}"
        for i, c in enumerate(("ApplyEyeMakeup", "Archery"))
        for g in range(8, 18)
    ]
    test = [
        f"{c}/v_{c}_g{g:02d}_c01.avi" for c in ("ApplyEyeMakeup", "Archery") for g in range(1, 8)
    ]
    (lists / "trainlist01.txt").write_text("\n".join(train) + "\n")
    (lists / "testlist01.txt").write_text("\r\n".join(test) + "\r\n")
    return lists


def test_ucf101_split_files_keep_the_official_test_split_and_draw_val_from_train_groups(
    tmp_path: Path,
) -> None:
    lists = _ucf_lists(tmp_path)
    source = discover(lists, video_root=tmp_path / "UCF-101")
    assert source.kind == "ucf101"
    assert source.classes == ("ApplyEyeMakeup", "Archery")
    assert len(source.entries) == 34
    assert (
        source.entries[0].path == tmp_path / "UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi"
    )
    entries, plan = assign_splits(
        source.entries, SplitOptions(split_by=r"_g(\d+)_", val_fraction=0.2)
    )
    test_groups = {e.group for e in entries if e.split == "test"}
    assert test_groups == {f"{g:02d}" for g in range(1, 8)}
    assert len(plan.groups["val"]) == 2 and len(plan.groups["train"]) == 8
    assert not set(plan.groups["val"]) & set(plan.groups["train"])


def test_hmdb51_split_files_map_1_to_train_2_to_test_and_exclude_0(tmp_path: Path) -> None:
    lists = tmp_path / "testTrainMulti_7030_splits"
    lists.mkdir()
    (lists / "brush_hair_test_split1.txt").write_text("a.avi 1 \nb.avi 2 \nc.avi 0 \n")
    (lists / "cartwheel_test_split1.txt").write_text("d.avi 1\n")
    (lists / "cartwheel_test_split2.txt").write_text("d.avi 2\n")
    _touch(tmp_path / "videos", "brush_hair/a.avi", "d.avi")
    source = discover(lists, video_root=tmp_path / "videos")
    assert source.classes == ("brush_hair", "cartwheel")
    got = [
        (e.path.relative_to(tmp_path / "videos").as_posix(), e.label, e.split, e.excluded)
        for e in source.entries
    ]
    assert got == [
        ("brush_hair/a.avi", "brush_hair", "train", None),
        ("b.avi", "brush_hair", "test", None),
        ("c.avi", "brush_hair", None, "not used by HMDB51 split 1"),
        ("d.avi", "cartwheel", "train", None),
    ]
    assert discover(lists, video_root=tmp_path / "videos", split_id=2).entries[0].split == "test"


def test_csv_with_or_without_header_gives_paths_relative_to_the_csv(tmp_path: Path) -> None:
    (tmp_path / "with.csv").write_text(
        "path,label,split\nclips/a.mp4,run,Train\nclips/b.mp4,box,validation\nc.mp4,box,\n"
    )
    source = discover(tmp_path / "with.csv")
    assert source.classes == ("box", "run")
    assert [(e.path, e.label, e.split) for e in source.entries] == [
        (tmp_path / "clips/a.mp4", "run", "train"),
        (tmp_path / "clips/b.mp4", "box", "val"),
        (tmp_path / "c.mp4", "box", None),
    ]
    (tmp_path / "bare.csv").write_text("x.mp4,jump\n")
    assert [e.label for e in discover(tmp_path / "bare.csv").entries] == ["jump"]
    (tmp_path / "bad.csv").write_text("x.mp4,jump,holdout\n")
    with pytest.raises(UsageError, match="unknown split"):
        discover(tmp_path / "bad.csv")


def test_missing_source_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="source not found"):
        discover(tmp_path / "nope")


def _ps7_names() -> list[str]:
    return [
        f"{action}/PS7A{a}P{p}T{t}.avi"
        for a, action in enumerate(("side", "one", "front"), start=1)
        for p in (1, 2, 3)
        for t in (1, 2, 3)
    ]


def test_test_groups_name_the_test_split_exactly(tmp_path: Path) -> None:
    _touch(tmp_path, *_ps7_names())
    entries, plan = assign_splits(
        discover(tmp_path).entries,
        SplitOptions(split_by=r"P(\d)T", test_groups=["3"], val_fraction=0.0),
    )
    assert plan.groups == {"train": ["1", "2"], "val": [], "test": ["3"]}
    assert {e.path.name for e in entries if e.split == "test"} == {
        f"PS7A{a}P3T{t}.avi" for a in (1, 2, 3) for t in (1, 2, 3)
    }


def test_val_groups_and_test_groups_together_leave_the_rest_for_training(tmp_path: Path) -> None:
    _touch(tmp_path, *_ps7_names())
    _, plan = assign_splits(
        discover(tmp_path).entries,
        SplitOptions(split_by=r"P(\d)T", test_groups=["1"], val_groups=["3"]),
    )
    assert plan.groups == {"train": ["2"], "val": ["3"], "test": ["1"]}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"test_groups": ["3"]}, "need --split-by"),
        ({"split_by": r"P(\d)T", "test_groups": ["4"]}, r"4 match no file name.*1, 2, 3"),
        ({"split_by": r"P(\d)T", "test_groups": ["2"], "val_groups": ["2"]}, "both test and val"),
    ],
)
def test_bad_explicit_groups_are_usage_errors_saying_why(
    tmp_path: Path, options: dict[str, object], message: str
) -> None:
    _touch(tmp_path, *_ps7_names())
    with pytest.raises(UsageError, match=message):
        assign_splits(discover(tmp_path).entries, SplitOptions(**options))  # type: ignore[arg-type]


def test_prepare_cli_takes_comma_separated_test_groups(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from gkaan_cli.cli import app

    _touch(tmp_path / "src", *_ps7_names())
    args = ["prepare", str(tmp_path / "src"), str(tmp_path / "out"), "--split-by", r"P(\d)T"]
    result = CliRunner().invoke(app, [*args, "--test-groups", "3,9", "--test-groups", "8"])
    assert result.exit_code == 2
    assert "group(s) 8, 9 match no file name" in result.output
