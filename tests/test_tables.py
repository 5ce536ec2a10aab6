"""The result tables in an 80-column terminal and a wide one (issue 29): each video's row
of the predict table takes at most 3 lines at 80 columns, a label is never split over two
lines, a long file name is cut from the left on one line; at 200 columns the predict table
is the full one (file, verdict, top-k, a column per stream)."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import numpy as np
from rich.console import Console, RenderableType

from gkaan_cli.commands.evaluate import per_class_table, scores_table
from gkaan_cli.commands.tables import clips_timeline, predictions_table, segments_table
from gkaan_cli.commands.train import epochs_table
from gkaan_cli.engine.predict import ClipPrediction, VideoPrediction
from gkaan_cli.engine.timeline import Segment
from gkaan_cli.engine.train_records import EpochRecord, EpochTime, EvalScores, TrainScores

KTH = ["boxing", "handclapping", "handwaving", "jogging", "running", "walking"]
LONG = ["arms_front_raise_left", "arms_front_raise_right", "waving", "boxing", "clapping"]
KTH_PATH = "/work/shared/data/kth-mini/handclapping/person01_handclapping_d1_uncomp.avi"
CLIP_PATH = "/work/shared/data/clips/arm_wrestling.mp4"


def render(table: RenderableType, width: int) -> list[str]:
    console = Console(width=width, record=True, color_system=None)
    console.print(table)
    lines = console.export_text().splitlines()
    assert all(len(line) <= width for line in lines)
    return lines


def prediction(
    path: str, labels: list[str], fused: list[float], ood: bool | None = None
) -> VideoPrediction:
    """A prediction with four streams, each ranking the labels in its own order."""
    probs = np.array(fused, np.float32)
    streams = {name: np.roll(probs, shift) for shift, name in enumerate(("gs", "gl", "gp", "gm"))}
    clips = [
        ClipPrediction(float(i), i + 1.2, (i,), probs, streams, labels=labels) for i in range(3)
    ]
    return VideoPrediction(
        path=path,
        info=None,  # type: ignore[arg-type]
        labels=labels,
        probs=probs,
        stream_probs=streams,
        clips=clips,
        attention={},
        attention_frames=np.zeros(0, np.int64),
        attention_times=np.zeros(0),
        in_distribution=ood,
    )


def the_issue_videos() -> list[VideoPrediction]:
    """The two videos of issue 29 as the default model predicts them (one judged unknown)."""
    return [
        prediction(KTH_PATH, KTH, [0.001, 0.027, 0.001, 0.0, 0.191, 0.78]),
        prediction(CLIP_PATH, KTH, [0.002, 0.0, 0.006, 0.019, 0.654, 0.319], ood=False),
    ]


def rows(lines: list[str]) -> list[list[str]]:
    """The body rows of the first table in ``lines``: each row's lines (a row starts where
    the first cell is not empty)."""
    start = next(i for i, line in enumerate(lines) if line.startswith("┡")) + 1
    found: list[list[str]] = []
    for line in lines[start:]:
        if not line.startswith("│"):
            break
        if line[1:].split("│")[0].strip():
            found.append([])
        found[-1].append(line)
    return found


def whole(lines: list[str], words: list[str]) -> None:
    """Every word appears whole on one line (none is split over two)."""
    text = "\n".join(lines)
    for word in words:
        assert re.search(rf"(?<![\w]){re.escape(word)}(?![\w])", text), word


def test_the_issue_videos_take_at_most_3_lines_each_at_80_columns() -> None:
    lines = render(predictions_table(the_issue_videos(), path_width=26, width=80), 80)
    videos = rows(lines)
    assert len(videos) == 2 and all(len(row) <= 3 for row in videos)
    whole(lines, [*KTH, "unknown (closest: running 65%)", "arm_wrestling.mp4"])
    assert "walking 78.0%  running 19.1%" in videos[0][0]  # the top-k on one line each
    name = re.search(r"\.\.\.\S+", videos[0][0])
    assert name and KTH_PATH.endswith(name.group()[3:])  # cut from the left, one line
    assert "top-1 per stream" in "\n".join(lines)  # the streams in a second table
    for stream in ("GS walking 78.0%", "GL boxing", "GP handclapping", "GM handwaving"):
        assert stream in "\n".join(lines)


def test_at_200_columns_the_table_is_the_full_one() -> None:
    videos = the_issue_videos()
    lines = render(predictions_table(videos, path_width=66, width=200), 200)
    assert lines == render(predictions_table(videos), 200)  # as wide as it needs: the same
    header = next(line for line in lines if line.startswith("┃"))
    cells = [cell.strip() for cell in header.strip("┃").split("┃")]
    assert cells == [
        "file",
        "verdict",
        "top-5",
        "SA stream (GS)",
        "LA stream (GL)",
        "global (GP)",
        "motion track (GM)",
    ]
    assert [len(row) for row in rows(lines)] == [5, 5]  # one top-k label a line
    whole(lines, ["person01_handclapping_d1_uncomp.avi", "unknown (closest: running 65%)"])


def test_long_labels_and_names_stay_whole_in_a_narrow_terminal() -> None:
    folder = "/data/a/very/long/folder/that/goes/on/and/on/"
    videos = [
        prediction(
            folder + "person01_arms_front_raise_left_take2.mp4", LONG, [0.5, 0.3, 0.1, 0.06, 0.04]
        ),
        prediction(folder + "person02_waving.mp4", LONG, [0.1, 0.2, 0.6, 0.05, 0.05], ood=False),
    ]
    for width in (80, 60):
        lines = render(predictions_table(videos, top_k=3, width=width), width)
        whole(lines, LONG)
        assert all(len(row) <= (3 if width == 80 else 4) for row in rows(lines))
        assert "person02_waving.mp4" in "\n".join(lines)


def test_timeline_tables_keep_labels_and_the_path_line_whole() -> None:
    long = "/data/" + "deep/" * 20 + "person01_arms_front_raise_left.mp4"
    video = prediction(long, LONG, [0.5, 0.3, 0.1, 0.06, 0.04])
    segment = Segment(
        start=0.0, end=2.4, label="arms_front_raise_right", prob=0.9, first_window=0, last_window=3
    )
    timeline = SimpleNamespace(
        path=long,
        segments=[segment, segment],
        windows=[None] * 4,
        spec=SimpleNamespace(window_seconds=1.2, hop_seconds=0.6),
    )
    for table, label in (
        (clips_timeline(video, width=80), "arms_front_raise_left"),
        (segments_table(timeline, width=80), "arms_front_raise_right"),  # type: ignore[arg-type]
    ):
        lines = render(table, 80)
        assert lines[0].endswith(("person01_arms_front_raise_left.mp4", "0.60 s)"))
        assert "_arms_front_raise_left.mp4" in lines[0] and lines[0].count("...") == 1
        whole(lines[1:], [label])
        body = rows(lines[1:])
        assert body and all(len(row) == 1 for row in body)  # a row a line
    wide = render(segments_table(timeline), 200)  # type: ignore[arg-type]
    assert wide[0].startswith(f"segments of {long} (4 windows")


def test_evaluate_and_train_tables_keep_a_row_a_line_at_80_columns() -> None:
    accuracy = SimpleNamespace(top1=0.9, top5=1.0, mean_class=0.88)
    streams = ("fused", "gs", "gl", "gp", "gm")
    report: Any = SimpleNamespace(
        split="test",
        inputs="features",
        has_top5=True,
        clip=dict.fromkeys(streams, accuracy),
        video=dict.fromkeys(streams, accuracy),
        per_class=[{"class": name, "videos": 4, "correct": 3, "accuracy": 0.75} for name in LONG],
    )
    train = TrainScores(loss=0.1234, nll=0.1, ga_sa=0.0, ga_la=0.0, top1=0.9, clips=8)
    scores = EvalScores("val", 0.9, 1.0, 1.0, 1.0, 0.05, {"gp": 1.0})
    history = [
        EpochRecord(epoch, 2 * epoch, 1e-3, train, EpochTime(1.0, 123.4), scores)
        for epoch in (1, 2, 10)
    ]
    for table, words, count in (
        (scores_table(report), list(streams), 5),
        (per_class_table(report), LONG, len(LONG)),
        (epochs_table(history), ["val"], 3),
    ):
        for width in (80, 200):
            lines = render(table, width)
            whole(lines, words)
            body = rows(lines)
            assert len(body) == count and all(len(row) == 1 for row in body)
