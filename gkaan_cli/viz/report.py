"""One self-contained HTML page of predictions (``gkaan predict --report``).

Pure functions from prediction records (the dicts of
:func:`gkaan_cli.engine.outputs.prediction_record`, with ``clips``) to an HTML string: per
video its verdict (``record["verdict"]``: the label, or ``unknown (closest: ...)``), its
top-k with bars, each stream's top-1, an inline SVG timeline of the clips' class
probabilities over time and, when the record names an ``overlay`` (a path relative to the
page), the overlay video in a ``<video>`` element. No script, no external file, no CDN: the
page works offline and from any folder that keeps the overlays beside it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import quote

from ..config import STREAM_TITLES
from ..fileio import printable
from ..model.describe import model_words

__all__ = ["html_text", "model_section", "page_html", "report_html", "timeline_svg"]

#: Line colours of the timeline, one per ranked class (colour-blind safe, Okabe-Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442")

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 960px;
       padding: 0 1em; color: #1b1b1b; background: #fff; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; overflow-wrap: anywhere; }
section { border-top: 1px solid #ddd; padding: 0.5em 0 1em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { text-align: left; padding: 0.2em 0.8em 0.2em 0; vertical-align: top; }
td.prob { text-align: right; font-variant-numeric: tabular-nums; }
.bar { display: inline-block; height: 0.8em; background: #0072B2; }
.facts { color: #555; }
svg { max-width: 100%; height: auto; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
video { max-width: 100%; display: block; margin-top: 0.5em; }
"""


def _text(value: str) -> str:
    """``value`` for the page: HTML escaped (quotes too), control characters and bytes that
    are not UTF-8 shown as ``\\xNN`` (a file name cannot break the markup or the page)."""
    return escape(printable(value), quote=True)


def _pct(prob: float) -> str:
    return f"{100 * prob:.1f}%"


def _label_probs(part: Mapping[str, Any]) -> dict[str, float]:
    return {item["label"]: float(item["prob"]) for item in part["top_k"]}


def timeline_svg(
    record: Mapping[str, Any],
    labels: Sequence[str],
    *,
    width: int = 720,
    height: int = 220,
) -> str:
    """An inline SVG line plot: the probability of each of ``labels`` in each clip, over time.

    Each clip is a point at the middle of its span, with a faint band for the span itself;
    the x axis is the video's time in seconds, the y axis the probability (0 to 1). A
    timeline's record (windows as ``clips``, plus ``segments``) also gets its segments as
    labelled bands along the top; a clip or window judged out of distribution gets a grey
    mark along the bottom (its verdict on hover).
    """
    clips = record.get("clips") or []
    left, right, top, bottom = 40, 150, 10, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    duration = float(record.get("duration") or 0) or max(
        (float(c["end"]) for c in clips), default=1.0
    )

    def x(t: float) -> float:
        return left + plot_w * min(max(t / duration, 0.0), 1.0)

    def y(p: float) -> float:
        return top + plot_h * (1.0 - p)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" '
        f'aria-label="clip probabilities over time">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" '
        'stroke="#bbb"/>',
    ]
    for tick in (0.0, 0.5, 1.0):
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            'stroke="#e2e2e2"/>'
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.1f}</text>'
        )
    for tick in (0.0, duration / 2, duration):
        parts.append(
            f'<text x="{x(tick):.1f}" y="{height - 12}" text-anchor="middle">{tick:.1f} s</text>'
        )
    for index, clip in enumerate(clips):
        if index % 2 == 0:
            start, end = x(float(clip["start"])), x(float(clip["end"]))
            parts.append(
                f'<rect x="{start:.1f}" y="{top}" width="{max(end - start, 0.5):.1f}" '
                f'height="{plot_h}" fill="#eef3f8"/>'
            )
    parts += _segment_bands(record.get("segments") or [], labels, x, top)
    for clip in clips:  # each clip's (window's) verdict: a grey mark along the bottom
        if clip.get("in_distribution") is False:
            start, end = x(float(clip["start"])), x(float(clip["end"]))
            said = str(clip.get("verdict") or "unknown")
            parts.append(
                f'<rect class="unknown" x="{start:.1f}" y="{top + plot_h - 6}" '
                f'width="{max(end - start, 0.5):.1f}" height="6" fill="#777">'
                f"<title>{_text(said)}</title></rect>"
            )
    centres = [(float(c["start"]) + float(c["end"])) / 2 for c in clips]
    probs = [_label_probs(c) for c in clips]
    for rank, label in enumerate(labels):
        colour = PALETTE[rank % len(PALETTE)]
        points = [(x(t), y(p.get(label, 0.0))) for t, p in zip(centres, probs, strict=True)]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        parts += [
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>' for px, py in points
        ]
        legend_y = top + 14 + 16 * rank
        parts.append(
            f'<rect x="{left + plot_w + 10}" y="{legend_y - 9}" width="10" height="10" '
            f'fill="{colour}"/><text x="{left + plot_w + 25}" y="{legend_y}">'
            f"{_text(label)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _segment_bands(
    segments: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    x: Callable[[float], float],
    top: float,
) -> list[str]:
    """A timeline's segments (``gkaan predict --timeline``) as a strip of labelled bands along
    the top of the plot, each in its label's line colour (grey for a label not plotted)."""
    parts = []
    for segment in segments:
        label = str(segment["label"])
        unknown = segment.get("in_distribution") is False
        colour = PALETTE[labels.index(label) % len(PALETTE)] if label in labels else "#999"
        colour = "#999" if unknown else colour
        said = str(segment.get("verdict") or label)
        label = said.split(" ", 1)[0] if unknown else label  # the band says "unknown"
        start, end = x(float(segment["start"])), x(float(segment["end"]))
        width = max(end - start, 0.5)
        parts.append(
            f'<rect x="{start:.1f}" y="{top}" width="{width:.1f}" height="14" fill="{colour}" '
            f'fill-opacity="0.35" stroke="#fff"><title>{_text(said)} '
            f"{float(segment['start']):.2f}-{float(segment['end']):.2f} s</title></rect>"
        )
        if width > 7 * len(label):
            parts.append(f'<text x="{start + 3:.1f}" y="{top + 11}">{_text(label)}</text>')
    return parts


def _model_section(model: Mapping[str, Any]) -> str:
    """The model block in words (:func:`~gkaan_cli.model.describe.model_words`)."""
    rows = "".join(
        f"<tr><th>{_text(key)}</th><td>{_text(value)}</td></tr>"
        for key, value in model_words(model)
    )
    return f'<section id="model"><h2>Model</h2><table>{rows}</table></section>'


def _video_section(record: Mapping[str, Any], *, timeline_labels: int) -> str:
    file = str(record["file"])
    facts = []
    if record.get("duration") is not None:
        facts.append(f"{float(record['duration']):.2f} s")
    if record.get("num_frames") is not None:
        facts.append(f"{record['num_frames']} frames")
    if record.get("fps") is not None:
        facts.append(f"{float(record['fps']):.3g} fps")
    ranked = "".join(
        f"<tr><td>{_text(item['label'])}</td><td class=prob>{_pct(item['prob'])}</td>"
        f'<td><span class=bar style="width:{200 * float(item["prob"]):.0f}px"></span></td></tr>'
        for item in record["top_k"]
    )
    streams = "".join(
        f"<tr><td>{_text(STREAM_TITLES.get(name, name))}</td><td>{_text(top['label'])}</td>"
        f"<td class=prob>{_pct(top['prob'])}</td></tr>"
        for name, top in (record.get("streams") or {}).items()
    )
    said = record.get("verdict")
    html = [
        '<section class="video">',
        f"<h2>{_text(file)}</h2>",
        f'<p class="facts">{_text(", ".join(facts))}</p>' if facts else "",
        f'<p class="verdict">verdict: <strong>{_text(str(said))}</strong></p>' if said else "",
        f"<p>{_text(str(record['top_k_note']))}</p>" if record.get("top_k_note") else "",
        f"<table><tr><th>label</th><th>prob</th><th></th></tr>{ranked}</table>",
    ]
    if streams:
        html.append(f"<table><tr><th>stream</th><th>top-1</th><th>prob</th></tr>{streams}</table>")
    if record.get("clips"):
        labels = [item["label"] for item in record["top_k"][:timeline_labels]]
        heading = "Windows and segments" if "segments" in record else "Clips over time"
        html += [f"<h3>{heading}</h3>", timeline_svg(record, labels)]
    if record.get("overlay"):
        # quoted: a "#" or "?" in a name is not a URL part, a byte that is not UTF-8 is %XX
        link = escape(quote(os.fsencode(str(record["overlay"])), safe="/"), quote=True)
        source = _text(str(record["overlay"]))
        html.append(
            f'<h3>Attention overlay</h3><video controls muted playsinline preload="metadata" '
            f'src="{link}"><a href="{link}">{source}</a></video>'
        )
    html.append("</section>")
    return "\n".join(part for part in html if part)


def report_html(
    records: Sequence[Mapping[str, Any]],
    *,
    model: Mapping[str, Any] | None = None,
    title: str = "gkaan predictions",
    timeline_labels: int = 5,
) -> str:
    """The whole page for ``records`` (one per video), with ``model``'s facts when given.

    A record's ``clips`` should rank every class (``top_k`` of the model's class count) so the
    timeline can follow the video's top labels through every clip; ``overlay``, when present,
    is the overlay video's path relative to the page.
    """
    body = [_model_section(model)] if model else []
    body += [_video_section(record, timeline_labels=timeline_labels) for record in records]
    if not records:
        body.append("<p>No video was predicted.</p>")
    return page_html(title, body)


def page_html(title: str, sections: Sequence[str]) -> str:
    """A whole page in the reports' style: ``title`` as its heading, then ``sections``
    (HTML, already escaped). No script, no external file."""
    return (
        "<!DOCTYPE html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n"
        '<meta name=viewport content="width=device-width, initial-scale=1">\n'
        f"<title>{_text(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{_text(title)}</h1>\n" + "\n".join(sections) + "\n</body>\n</html>\n"
    )


def html_text(value: str) -> str:
    """``value`` escaped for a page (control characters and stray bytes shown as ``\\xNN``)."""
    return _text(value)


def model_section(model: Mapping[str, Any]) -> str:
    """The ``model`` block as a page section, in words."""
    return _model_section(model)
