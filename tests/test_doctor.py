"""The data doctor (gkaan_cli/data/doctor.py): what each check warns about, and not; prepare
prints the warnings, keeps them in the manifest and, with --strict, stops before decoding."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from gkaan_cli.cli import app
from gkaan_cli.data.doctor import (
    check_balance,
    check_duplicates,
    check_groups,
    check_labels,
    check_person_ids,
)
from gkaan_cli.data.manifest import load_manifest
from gkaan_cli.data.prepare import PrepareOptions, prepare
from gkaan_cli.data.sources import SourceEntry, assign_splits, discover

runner = CliRunner()


def test_balance_warns_on_a_small_class_a_class_without_training_videos_and_a_large_ratio() -> None:
    entries = [SourceEntry(Path(f"a{i}"), "walk", "train") for i in range(11)]
    entries += [SourceEntry(Path("b0"), "run", "test")]
    warnings = check_balance(entries, min_videos=3, max_ratio=10.0)
    assert warnings == [
        "class 'run' has 1 video (fewer than 3: it cannot be in train, val and test)",
        "class 'run' has no training video",
        "class 'walk' has 11 videos, more than 10 x class 'run' (1)",
    ]
    balanced = [SourceEntry(Path(f"{c}{i}"), c, "train") for c in "ab" for i in range(3)]
    assert check_balance(balanced) == []


def test_labels_differing_only_by_case_or_spacing() -> None:
    assert check_labels(["Hand Waving", "handwaving", "walk"]) == [
        "labels 'Hand Waving', 'handwaving' differ only by case or spacing"
    ]
    assert check_labels(["walk", "run"]) == []


def test_a_group_in_two_splits() -> None:
    entries = [
        SourceEntry(Path("a"), "walk", "train", "person01"),
        SourceEntry(Path("b"), "walk", "test", "person01"),
        SourceEntry(Path("c"), "walk", "test", "person02"),
    ]
    assert check_groups(entries) == ["group 'person01' is in splits test, train"]


def test_identical_files_across_splits_and_labels(tmp_path: Path) -> None:
    for name, data in {"a": b"same", "b": b"same", "c": b"othr"}.items():
        (tmp_path / name).write_bytes(data)
    entries = [
        SourceEntry(tmp_path / "a", "walk", "train"),
        SourceEntry(tmp_path / "b", "run", "test"),
        SourceEntry(tmp_path / "c", "walk", "test"),
    ]
    warnings = check_duplicates(entries)
    assert len(warnings) == 2
    assert "more than one split" in warnings[0] and "two labels" in warnings[1]
    assert check_duplicates(entries[2:]) == []


def test_person_ids_in_names_suggest_the_split_by_regex_that_groups_them() -> None:
    def names(*stems: str) -> list[SourceEntry]:
        return [SourceEntry(Path(f"{s}.avi"), "x", "train") for s in stems]

    kth = names("person01_boxing_d1", "person01_boxing_d2", "person02_boxing_d1")
    assert "--split-by 'person(\\d+)'" in check_person_ids(kth)[0]
    ps7 = names("PS7A3P1T1", "PS7A3P1T2", "PS7A1P2T1")
    assert "--split-by 'P(\\d+)'" in check_person_ids(ps7)[0]
    ucf = names("v_Drum_g01_c01", "v_Drum_g01_c02", "v_Run_g02_c01")
    assert "_g" not in check_person_ids(ucf)[0] or "g(\\d+)" in check_person_ids(ucf)[0]
    # one video per id, or names without ids: nothing to group
    assert check_person_ids(names("person01_a", "person02_a")) == []
    assert check_person_ids(names("walk_a", "walk_b", "run_c")) == []


def test_real_sources_get_the_warnings_a_user_needs(data_dir: Path) -> None:
    src = discover(data_dir / "ps7-arms")
    from gkaan_cli.data.doctor import diagnose

    by_video, _ = assign_splits(src.entries)
    assert any("--split-by 'P(\\d+)'" in w for w in diagnose(by_video, split_by=None))
    from gkaan_cli.data.sources import SplitOptions

    by_person, _ = assign_splits(src.entries, SplitOptions(split_by=r"P(\d)T"))
    assert diagnose(by_person, split_by=r"P(\d)T") == []


def _bad_csv(tmp_path: Path, video: Path) -> Path:
    """Same video in train and test (two copies), a class of one video, person ids."""
    rows = []
    for person in (1, 2):
        for take in (1, 2):
            name = f"person0{person}_walk_{take}.mp4"
            shutil.copy(video, tmp_path / name)
            rows.append(f"{name},walk,{'train' if take == 1 else 'test'}")
    shutil.copy(video, tmp_path / "person03_wave_1.mp4")  # bytes of walk videos: a duplicate
    rows.append("person03_wave_1.mp4,wave,train")
    csv = tmp_path / "bad.csv"
    csv.write_text("\n".join(rows) + "\n")
    return csv


def test_prepare_prints_the_three_warnings_and_keeps_them_in_the_manifest(
    tmp_path: Path, make_video: Callable[..., Path]
) -> None:
    csv = _bad_csv(tmp_path, make_video("src.mp4", num_frames=8))
    result = runner.invoke(app, ["prepare", str(csv), str(tmp_path / "out"), "-q"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: ")]
    assert any("'wave' has 1 video" in w for w in warnings)
    assert any("identical videos in more than one split" in w for w in warnings)
    assert any("--split-by 'person(\\d+)'" in w for w in warnings)
    manifest = load_manifest(tmp_path / "out")
    assert [f"warning: {f}" for f in manifest.findings] == warnings


def test_strict_stops_before_decoding_with_the_warnings(
    tmp_path: Path, make_video: Callable[..., Path]
) -> None:
    csv = _bad_csv(tmp_path, make_video("src.mp4", num_frames=8))
    result = runner.invoke(app, ["prepare", str(csv), str(tmp_path / "out"), "--strict"])
    assert result.exit_code == 2
    assert "data warnings with --strict, nothing prepared" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_a_clean_source_has_no_findings(tmp_path: Path, make_video: Callable[..., Path]) -> None:
    for number, label in enumerate(("walk", "wave")):
        for take in range(3):
            make_video(f"src/{label}/{label}{take}.mp4", num_frames=8 + take + 3 * number)
    report = prepare(tmp_path / "src", tmp_path / "out", PrepareOptions(strict=True))
    assert report.findings == [] and report.ok == 6
    assert load_manifest(tmp_path / "out").findings == []
