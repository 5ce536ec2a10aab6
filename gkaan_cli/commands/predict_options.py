"""The options of ``gkaan predict`` that no other command has, and the output format they
choose (docs/predict.md#outputs). The shared ones are in :mod:`.common`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, get_args

import typer

from ..apis.predict import DEFAULT_TOP_K
from ..config import (
    MAX_BATCH,
    MAX_CLASSES,
    MAX_CLIP_FRAMES,
    MAX_CLIPS,
    MAX_OOD_THRESHOLD,
    MAX_STRIDE,
    OutputFormat,
    SamplingMode,
)
from ..errors import UsageError

Format = Literal["table", OutputFormat]

#: ``--output`` file suffix -> format (``.txt`` is the table as plain text).
SUFFIX_FORMATS: dict[str, Format] = {f".{fmt}": fmt for fmt in get_args(OutputFormat)} | {
    ".txt": "table"
}


def output_format(fmt: Format | None, output: Path | None) -> Format:
    """The format to write: ``--format``, else ``--output``'s suffix, else the table (also
    for a character device or FIFO such as ``/dev/null`` or ``/dev/stdout``).

    Raises:
        UsageError: a suffix that disagrees with ``--format``, or an unknown suffix without it.
    """
    from ..fileio import is_stream_output

    known = SUFFIX_FORMATS.get(output.suffix.lower()) if output is not None else None
    if fmt is None:
        if output is None or (known is None and is_stream_output(output)):
            return "table"
        if known is None:
            suffixes = " ".join(SUFFIX_FORMATS)
            raise UsageError(f"--output {output}: give a suffix ({suffixes}) or --format")
        return known
    if known is not None and known != fmt:
        raise UsageError(f"--output {output} is a {known} file name but --format is {fmt}")
    return fmt


TopKOption = Annotated[
    int | None,
    typer.Option(
        "--top-k",
        "-k",
        min=1,
        max=MAX_CLASSES,
        help=f"Labels per video (default: {DEFAULT_TOP_K}; at most the model's classes).",
        show_default=False,
    ),
]

FormatOption = Annotated[
    Format | None,
    typer.Option(
        "--format",
        "-f",
        help="Output format (default: the --output file's suffix, else table).",
        show_default=False,
    ),
]

OutputOption = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        help="Write the results to this file instead of stdout; its suffix (.json .jsonl "
        ".csv .txt) sets the format (default: stdout).",
        show_default=False,
    ),
]

ClipsOption = Annotated[
    bool,
    typer.Option("--clips", help="Add each clip's time span and top labels (a timeline)."),
]

BatchSizeOption = Annotated[
    int,
    typer.Option(
        "--batch-size", min=1, max=MAX_BATCH, help="Frames per backbone batch (not clips)."
    ),
]

SaveVideoOption = Annotated[
    Path | None,
    typer.Option(
        "--save-video",
        help="Folder for one MP4 per input with the attention overlaid (default: none).",
        show_default=False,
    ),
]

ReportOption = Annotated[
    Path | None,
    typer.Option(
        "--report",
        help="Also write a self-contained HTML page: top-k, clip timeline plot, and the "
        "overlay videos of --save-video (default: none).",
        show_default=False,
    ),
]

ClipLenOption = Annotated[
    int | None,
    typer.Option(
        "--clip-len",
        min=1,
        max=MAX_CLIP_FRAMES,
        help="Frames per clip (default: the model's).",
        show_default=False,
    ),
]

StrideOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=MAX_STRIDE,
        help="Frames between dense clip starts (default: the model's).",
        show_default=False,
    ),
]

MaxClipsOption = Annotated[
    int | None,
    typer.Option(
        "--max-clips",
        min=1,
        max=MAX_CLIPS,
        help="Most clips per video (default: the model's).",
        show_default=False,
    ),
]

SamplingModeOption = Annotated[
    SamplingMode | None,
    typer.Option(
        "--sampling-mode", help="Clip sampling (default: the model's).", show_default=False
    ),
]

OodThresholdOption = Annotated[
    float,
    typer.Option(
        "--ood-threshold",
        min=0.0,
        max=MAX_OOD_THRESHOLD,
        help="Out-of-distribution scores above this are 'unknown' (1.0: the limit "
        "calibrated on the training data; larger flags fewer videos).",
    ),
]

NoOodOption = Annotated[
    bool,
    typer.Option(
        "--no-ood",
        help="No out-of-distribution verdict (default: a verdict when the model has "
        "OOD statistics).",
    ),
]

TimelineFlagOption = Annotated[
    bool,
    typer.Option(
        "--timeline",
        help="Score sliding windows over the whole video and merge them into segments of "
        "one action (default: off; implied for a live source: - for stdin, or an "
        "http(s)/rtsp/udp URL).",
    ),
]
