"""The pages people read about a training run and an evaluation: ``RUN/report.html`` and
``EVAL/report.html`` (docs/protocol.md#run-report).

Pure reading of what the run left on disk (``train_config.json``, ``metrics.jsonl``,
``curves.png``, the evaluation's ``report.json`` and ``confusion.png``, the prepared data's
``manifest.json``) into one self-contained page in the style of ``predict --report``: images
are embedded, nothing is fetched, every value is written in words.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..data.manifest import load_manifest
from ..engine.recipes import CONFIG_NAME
from ..engine.train import TrainResult
from ..errors import GkaanError
from ..fileio import atomic_write_text
from .report import html_text, model_section, page_html

__all__ = [
    "REPORT_NAME",
    "eval_report_html",
    "run_report_html",
    "write_eval_report",
    "write_run_report",
]

#: The page's file name in a run folder and in an evaluation folder.
REPORT_NAME = "report.html"
_OOD = {
    True: "yes: best/ carries statistics of its training clips for the unknown verdict",
    False: "no: the training videos need at least two groups (e.g. persons, --split-by)",
}
_STREAMS = {"fused": "fused", "gp": "global (GP)", "gs": "SA stream (GS)", "gl": "LA stream (GL)"}


def _image(path: Path, alt: str) -> str:
    """``path`` embedded as a data URI, or a line saying it is missing."""
    if not path.is_file():
        return f"<p>{html_text(path.name)} was not written.</p>"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html_text(alt)}" src="data:image/png;base64,{data}">'


def _rows(pairs: Sequence[tuple[str, str]]) -> str:
    cells = "".join(f"<tr><th>{html_text(k)}</th><td>{html_text(v)}</td></tr>" for k, v in pairs)
    return f"<table>{cells}</table>"


def _words(value: Any) -> str:
    """A setting's value as a user writes it: lists joined, booleans yes/no, null as none."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(_words(v) for v in value) or "none"
    return str(value)


def _percent(value: Any) -> str:
    return "no video" if value is None else f"{100 * float(value):.1f}%"


def _flat(settings: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested settings as ``("model.sampling.clip_len", "30")`` rows."""
    rows: list[tuple[str, str]] = []
    for key, value in settings.items():
        if isinstance(value, Mapping):
            rows += _flat(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", _words(value)))
    return rows


def _scores_section(report: Mapping[str, Any], folder: Path) -> list[str]:
    """Video top-1 per stream, per-class accuracy and the confusion image of ``report.json``."""
    split = str(report.get("split"))
    video = report.get("video") or {}
    streams = [
        (_STREAMS.get(name, name), f"{100 * float(scores['top1']):.1f}%")
        for name, scores in video.items()
        if isinstance(scores, Mapping) and "top1" in scores
    ]
    per_class = report.get("per_class") or []
    classes = "".join(
        f"<tr><td>{html_text(str(row.get('class')))}</td>"
        f"<td class=prob>{int(row.get('correct') or 0)}/{int(row.get('videos') or 0)}</td>"
        f"<td class=prob>{_percent(row.get('accuracy'))}</td></tr>"
        for row in per_class
        if isinstance(row, Mapping)
    )
    data = report.get("data") or {}
    videos = data.get("videos") if isinstance(data, Mapping) else None
    return [
        f'<section id="scores"><h2>Scores on the {html_text(split)} split'
        f"{f' ({videos} videos)' if videos else ''}</h2>"
        "<p class=facts>Video top-1: the clips of a video averaged, then the most probable "
        "class.</p>" + _rows(streams) + "</section>",
        '<section id="per-class"><h2>Per class</h2><table><tr><th>class</th><th>right</th>'
        f"<th>accuracy</th></tr>{classes}</table>"
        + _image(folder / "confusion.png", "confusion matrix")
        + "</section>",
    ]


def _data_section(prepared: Path) -> str:
    """Counts per split and class, the groups and the data doctor's findings."""
    try:
        manifest = load_manifest(prepared)
    except (GkaanError, OSError) as error:
        return f'<section id="data"><h2>Data</h2><p>{html_text(str(error))}</p></section>'
    counts: dict[str, Counter[str]] = {}
    for record in manifest.records():
        counts.setdefault(str(record.split), Counter())[record.label] += 1
    splits = [s for s in ("train", "val", "test") if s in counts]
    header = "".join(f"<th>{s}</th>" for s in splits)
    body = "".join(
        f"<tr><td>{html_text(label)}</td>"
        + "".join(f"<td class=prob>{counts[s][label]}</td>" for s in splits)
        + "</tr>"
        for label in manifest.classes
    )
    groups = [
        (f"{split} groups", ", ".join(manifest.split_groups.get(split, [])) or "none")
        for split in splits
    ]
    findings = "".join(f"<li>{html_text(f)}</li>" for f in manifest.findings)
    return (
        '<section id="data"><h2>Data</h2>'
        + _rows([("prepared", str(prepared)), ("source", manifest.source)])
        + _rows([("split rule", manifest.split_rule), *groups])
        + f"<table><tr><th>class</th>{header}</tr>{body}</table>"
        + (f"<h3>Data warnings</h3><ul>{findings}</ul>" if findings else "")
        + "</section>"
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def eval_report_html(folder: Path, *, title: str | None = None) -> str:
    """The page of an evaluation folder (``report.json`` + ``confusion.png``)."""
    report = _read_json(folder / "report.json")
    if not isinstance(report, Mapping):
        raise GkaanError(f"{folder / 'report.json'}: not an evaluation report")
    sections = [model_section(report["model"])] if report.get("model") else []
    sections += _scores_section(report, folder)
    data = report.get("data")
    if isinstance(data, Mapping) and data.get("prepared"):
        sections.append(_data_section(Path(str(data["prepared"]))))
    split = report.get("split")
    return page_html(title or f"gkaan evaluate: {split} split", sections)


def write_eval_report(folder: str | Path) -> Path:
    """Write ``folder/report.html`` for the evaluation in ``folder``; returns its path."""
    folder = Path(folder)
    path = folder / REPORT_NAME
    atomic_write_text(path, eval_report_html(folder))
    return path


def run_report_html(result: TrainResult) -> str:
    """The page of a training run: settings, curves, the best epoch, the final ``best/``'s
    scores per stream and per class with its confusion image, its model block, and the data
    it saw (counts per split and class, groups, the doctor's findings)."""
    out = result.out
    best = (
        f"epoch {result.best_epoch} of {result.epochs}, chosen by the val split's fused video "
        "top-1 (ties: the lower val NLL)"
        if result.selection == "val"
        else f"the last epoch ({result.epochs}): no val split, so nothing was chosen"
    )
    sections = [
        '<section id="run"><h2>Run</h2>'
        + _rows([("folder", str(out)), ("best/", best), ("OOD verdict", _OOD[result.ood])])
        + "</section>",
        '<section id="curves"><h2>Training curves</h2>'
        + _image(out / "curves.png", "loss, top-1 per stream and learning rate by epoch")
        + "</section>",
    ]
    report = _read_json(result.evaluation / "report.json") if result.evaluation else None
    if isinstance(report, Mapping) and result.evaluation is not None:
        if report.get("model"):
            sections.insert(1, model_section(report["model"]))
        sections += _scores_section(report, result.evaluation)
        data = report.get("data")
        if isinstance(data, Mapping) and data.get("prepared"):
            sections.append(_data_section(Path(str(data["prepared"]))))
    settings = _read_json(out / CONFIG_NAME)
    if isinstance(settings, Mapping):
        sections.append('<section id="settings"><h2>Settings</h2>' + _rows(_flat(settings)))
        sections[-1] += "</section>"
    return page_html(f"gkaan train: {out.name}", sections)


def write_run_report(result: TrainResult) -> Path:
    """Write ``RUN/report.html`` for a finished run; returns its path."""
    path = result.out / REPORT_NAME
    atomic_write_text(path, run_report_html(result))
    return path
