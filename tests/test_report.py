"""The HTML report of ``gkaan predict --report``: one self-contained page a browser shows."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from gkaan_cli.cli import app
from gkaan_cli.video.writer import VideoWriter
from gkaan_cli.viz.report import report_html, timeline_svg

LABELS = ["boxing", "hand<clapping>", "waving"]


def record(overlay: str | None = None) -> dict[str, object]:
    """A prediction record as ``prediction_record(..., clips=True)`` writes it."""

    def ranked(probs: list[float]) -> list[dict[str, object]]:
        pairs = sorted(zip(LABELS, probs, strict=True), key=lambda pair: -pair[1])
        return [{"label": label, "prob": prob} for label, prob in pairs]

    clip_probs = [[0.7, 0.2, 0.1], [0.5, 0.4, 0.1], [0.2, 0.7, 0.1]]
    result: dict[str, object] = {
        "file": "/videos/a & b.mp4",
        "num_frames": 30,
        "fps": 10.0,
        "duration": 3.0,
        "top_k": ranked([0.47, 0.43, 0.1])[:2],
        "streams": {"gp": {"label": "boxing", "prob": 0.5}, "gs": {"label": "waving", "prob": 0.4}},
        "clips": [
            {"start": float(i), "end": i + 1.0, "top_k": ranked(p), "streams": {}}
            for i, p in enumerate(clip_probs)
        ],
    }
    if overlay is not None:
        result["overlay"] = overlay
    return result


def test_page_is_self_contained_escaped_and_names_streams_in_words() -> None:
    page = report_html(
        [record("ov/a.gkaan.mp4")],
        model={"name": "kth-lite0", "kind": "registry", "classes": ["a", "b"]},
    )
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page
    assert not re.search(r"(src|href)=\"?https?:", page)  # nothing fetched from the network
    assert "/videos/a &amp; b.mp4" in page and "hand&lt;clapping&gt;" in page
    assert "global (GP)" in page and "SA stream (GS)" in page
    assert '<video controls muted playsinline preload="metadata" src="ov/a.gkaan.mp4">' in page
    assert "kth-lite0" in page


def test_timeline_draws_one_line_per_label_through_every_clip() -> None:
    svg = timeline_svg(record(), ["boxing", "waving"])
    lines = re.findall(r'<polyline points="([^"]+)"', svg)
    assert len(lines) == 2
    assert all(len(points.split()) == 3 for points in lines)
    boxing = [float(p.split(",")[1]) for p in lines[0].split()]
    assert boxing[0] < boxing[1] < boxing[2]  # 0.7, 0.5, 0.2: higher probability is higher up


def test_a_video_without_overlay_has_no_video_element() -> None:
    assert "<video" not in report_html([record()])


# --- a real browser --------------------------------------------------------------------------

CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None
)
needs_browser = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium to run this test)"
)

#: Appended to a copy of the page: what the <video> element says about the overlay.
PROBE = """<script>
const v = document.querySelector("video");
document.body.dataset.canPlay = v.canPlayType('video/mp4; codecs="avc1.64001F"') || "no";
function mark() { document.body.dataset.readyState = String(v.readyState); }
v.addEventListener("loadeddata", mark);
v.addEventListener("error", () => { document.body.dataset.error = String(v.error.code); });
mark();
</script>"""


def chromium(*args: str) -> str:
    result = subprocess.run(
        [CHROMIUM or "chromium", "--headless", "--no-sandbox", "--disable-gpu", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def write_overlay(path: Path) -> None:
    """A 1-second H.264 clip from the same writer ``--save-video`` uses."""
    path.parent.mkdir(parents=True)
    with VideoWriter(path, fps=10, size=(96, 64)) as writer:
        for i in range(10):
            image = np.zeros((64, 96, 3), np.uint8)
            image[:, : 8 * (i + 1)] = (200, 40, 40)
            writer.write(image)


@pytest.mark.slow
@needs_browser
def test_the_page_renders_and_its_overlay_video_plays_in_chromium(tmp_path: Path) -> None:
    write_overlay(tmp_path / "ov" / "a.gkaan.mp4")
    page = report_html(
        [record("../ov/a.gkaan.mp4")], model={"name": "kth-lite0", "kind": "registry"}
    )
    (tmp_path / "site").mkdir()
    html = tmp_path / "site" / "report.html"
    html.write_text(page, encoding="utf-8")

    shot = tmp_path / "shot.png"
    chromium("--hide-scrollbars", "--window-size=1000,1200", f"--screenshot={shot}", html.as_uri())
    with Image.open(shot) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 20, "the screenshot is blank"

    probe = html.with_name("probe.html")
    probe.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = chromium("--virtual-time-budget=8000", "--dump-dom", probe.as_uri())
    body = re.search(r"<body[^>]*>", dom)
    assert body is not None
    assert re.search(r'data-can-play="(probably|maybe)"', body.group(0)), body.group(0)
    assert "data-error" not in body.group(0)
    ready = re.search(r'data-ready-state="(\d)"', body.group(0))
    assert ready is not None and int(ready.group(1)) >= 2, body.group(0)  # a frame decoded


def test_predict_report_links_the_saved_overlay_relative_to_the_page(
    make_video: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    video = make_video("v.mp4", num_frames=6)
    args = ["predict", str(video), "--save-video", "ov", "--report", "out/r.html", "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    page = (tmp_path / "out" / "r.html").read_text(encoding="utf-8")
    assert 'src="../ov/v.gkaan.mp4"' in page and "<svg" in page
    assert (tmp_path / "ov" / "v.gkaan.mp4").is_file()
    model = page[page.index('<section id="model">') :]
    model = model[: model.index("</section>")]
    # the model block in words a user knows: no Python dicts, lists or None
    assert "dense: 30 consecutive frames every 15 frames" in model
    assert "training clips, 5 nearest, limit 1x" in model
    assert "{" not in model and "[" not in model and "None" not in model


def test_a_report_name_without_html_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "x.mp4"), "--report", "r.txt"])
    assert result.exit_code == 2
    assert "--report r.txt: the file name must end in .html" in result.stderr


@pytest.mark.slow
def test_an_unknown_video_has_the_same_verdict_in_the_table_json_and_page(
    data_dir: Path, tmp_path: Path
) -> None:
    video = data_dir / "clips" / "arm_wrestling.mp4"  # no KTH action: judged unknown
    page, data = tmp_path / "r.html", tmp_path / "r.json"
    args = ["predict", str(video), "--report", str(page), "-o", str(data), "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    import json

    said = json.loads(data.read_text())[0]["verdict"]
    assert said.startswith("unknown (closest: ")
    assert f"verdict: <strong>{said}</strong>" in page.read_text(encoding="utf-8")
    table = CliRunner().invoke(app, ["predict", str(video), "-q"])
    assert said in table.output


def test_each_unknown_window_is_marked_on_the_timeline_with_its_verdict() -> None:
    data = record()
    clips = data["clips"]
    assert isinstance(clips, list)
    clips[1] |= {"in_distribution": False, "verdict": "unknown (closest: boxing 50%)"}
    clips[0] |= {"in_distribution": True, "verdict": "boxing"}
    svg = timeline_svg(data, LABELS)
    assert svg.count('class="unknown"') == 1
    assert "<title>unknown (closest: boxing 50%)</title>" in svg
