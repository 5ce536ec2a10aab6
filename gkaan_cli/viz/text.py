"""Caption text drawn with Pillow's built-in font into RGB frames (no font files to ship).

Pillow 10.1 and later, built with FreeType as its wheels are, provide a scalable default font
(Aileron Regular) in any pixel size. A Pillow without FreeType falls back to its fixed-size
bitmap font: text stays readable but does not grow with the requested size.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "MIN_FONT_SIZE",
    "draw_text",
    "fit_font_size",
    "fit_text",
    "font",
    "line_height",
    "text_width",
]

#: Smallest font size (pixels per em) that captions shrink to before being shortened.
MIN_FONT_SIZE = 10
_ELLIPSIS = "…"


@lru_cache(maxsize=64)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's default font at ``size`` pixels per em (its bitmap font without FreeType)."""
    try:
        return ImageFont.load_default(size=size)
    except (ImportError, OSError):  # a Pillow built without FreeType
        return ImageFont.load_default()


def line_height(size: int) -> int:
    """Height in pixels of one line of text at ``size``: ascender to descender."""
    face = font(size)
    if isinstance(face, ImageFont.FreeTypeFont):
        ascent, descent = face.getmetrics()
        return ascent + descent
    return int(face.getbbox("Ag|")[3])


def text_width(text: str, size: int) -> int:
    """Width in pixels of ``text`` drawn at ``size``, from its origin to its last ink."""
    return int(np.ceil(font(size).getbbox(text)[2])) if text else 0


def fit_font_size(lines: list[str], width: int, largest: int) -> int:
    """Largest font size from ``largest`` down to :data:`MIN_FONT_SIZE` at which every line
    is at most ``width`` pixels wide (:data:`MIN_FONT_SIZE` when none is)."""
    size = max(largest, MIN_FONT_SIZE)
    while size > MIN_FONT_SIZE and max(text_width(line, size) for line in lines) > width:
        size -= 1
    return size


def fit_text(text: str, size: int, width: int) -> str:
    """``text``, or its longest start followed by "…" that is at most ``width`` pixels wide."""
    if text_width(text, size) <= width:
        return text
    keep = len(text)
    while keep > 0 and text_width(text[:keep].rstrip() + _ELLIPSIS, size) > width:
        keep -= 1
    return text[:keep].rstrip() + _ELLIPSIS if keep else ""


def draw_text(
    image: np.ndarray,
    text: str,
    x: int,
    y: int,
    *,
    size: int,
    color: tuple[int, int, int] = (255, 255, 255),
) -> None:
    """Draw ``text`` into ``image`` (H, W, 3) uint8 in place, anti-aliased over what is there.

    Args:
        image: the RGB image to draw on; text outside it is clipped.
        text: the string; characters the font lacks are drawn as boxes.
        x, y: pixel position of the line's top-left corner (the ascender line); the text
            covers ``text_width(text, size)`` x ``line_height(size)`` pixels from there.
        size: font size in pixels per em.
        color: RGB ink colour.
    """
    height, width = image.shape[:2]
    top, left = max(y, 0), max(x, 0)
    bottom = min(y + line_height(size), height)
    right = min(x + text_width(text, size), width)
    if bottom <= top or right <= left:
        return
    region = Image.fromarray(image[top:bottom, left:right])
    ImageDraw.Draw(region).text((x - left, y - top), text, fill=color, font=font(size))
    image[top:bottom, left:right] = np.asarray(region)
