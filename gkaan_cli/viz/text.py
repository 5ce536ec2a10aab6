"""Caption text drawn with an embedded 5x7 bitmap font (no Pillow, no font files).

Pillow is not a dependency of gkaan and torchvision draws text only through Pillow, so
captions use this small font: upper-case letters, digits and common punctuation; lower
case is drawn as upper case and any other character as ``?``. Each glyph is 5 x 7 pixels
with one pixel of spacing, scaled by an integer factor.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GLYPH_HEIGHT", "GLYPH_WIDTH", "draw_text", "text_width"]

GLYPH_WIDTH = 5
GLYPH_HEIGHT = 7
_ADVANCE = GLYPH_WIDTH + 1

#: Each glyph: 7 rows of 5 cells, '#' = ink.
_FONT_ROWS: dict[str, str] = {
    "A": ".###. #...# #...# ##### #...# #...# #...#",
    "B": "####. #...# #...# ####. #...# #...# ####.",
    "C": ".###. #...# #.... #.... #.... #...# .###.",
    "D": "####. #...# #...# #...# #...# #...# ####.",
    "E": "##### #.... #.... ####. #.... #.... #####",
    "F": "##### #.... #.... ####. #.... #.... #....",
    "G": ".###. #...# #.... #.### #...# #...# .####",
    "H": "#...# #...# #...# ##### #...# #...# #...#",
    "I": ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    "J": "..### ...#. ...#. ...#. ...#. #..#. .##..",
    "K": "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
    "L": "#.... #.... #.... #.... #.... #.... #####",
    "M": "#...# ##.## #.#.# #.#.# #...# #...# #...#",
    "N": "#...# #...# ##..# #.#.# #..## #...# #...#",
    "O": ".###. #...# #...# #...# #...# #...# .###.",
    "P": "####. #...# #...# ####. #.... #.... #....",
    "Q": ".###. #...# #...# #...# #.#.# #..#. .##.#",
    "R": "####. #...# #...# ####. #.#.. #..#. #...#",
    "S": ".#### #.... #.... .###. ....# ....# ####.",
    "T": "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    "U": "#...# #...# #...# #...# #...# #...# .###.",
    "V": "#...# #...# #...# #...# #...# .#.#. ..#..",
    "W": "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
    "X": "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
    "Y": "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
    "Z": "##### ....# ...#. ..#.. .#... #.... #####",
    "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
    "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
    "2": ".###. #...# ....# ...#. ..#.. .#... #####",
    "3": "##### ...#. ..#.. ...#. ....# #...# .###.",
    "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
    "5": "##### #.... ####. ....# ....# #...# .###.",
    "6": "..##. .#... #.... ####. #...# #...# .###.",
    "7": "##### ....# ...#. ..#.. .#... .#... .#...",
    "8": ".###. #...# #...# .###. #...# #...# .###.",
    "9": ".###. #...# #...# .#### ....# ...#. .##..",
    " ": "..... ..... ..... ..... ..... ..... .....",
    ".": "..... ..... ..... ..... ..... .##.. .##..",
    ",": "..... ..... ..... ..... .##.. ..#.. .#...",
    ":": "..... .##.. .##.. ..... .##.. .##.. .....",
    "%": "##... ##..# ...#. ..#.. .#... #..## ...##",
    "-": "..... ..... ..... ##### ..... ..... .....",
    "_": "..... ..... ..... ..... ..... ..... #####",
    "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.",
    ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
    "/": "..... ....# ...#. ..#.. .#... #.... .....",
    "|": "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    "=": "..... ..... ##### ..... ##### ..... .....",
    "+": "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
    "!": "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..",
    "'": "..#.. ..#.. .#... ..... ..... ..... .....",
    "#": "..... .#.#. ##### .#.#. ##### .#.#. .....",
    "?": ".###. #...# ....# ...#. ..#.. ..... ..#..",
}


def _glyph(rows: str) -> np.ndarray:
    return np.array([[cell == "#" for cell in row] for row in rows.split()], dtype=bool)


_GLYPHS: dict[str, np.ndarray] = {char: _glyph(rows) for char, rows in _FONT_ROWS.items()}


def text_width(text: str, scale: int = 1) -> int:
    """Width in pixels of ``text`` drawn at ``scale`` (without the trailing spacing)."""
    return max(0, len(text) * _ADVANCE - 1) * scale


def _mask(text: str) -> np.ndarray:
    """Ink mask (7, width) of ``text`` at scale 1."""
    mask = np.zeros((GLYPH_HEIGHT, len(text) * _ADVANCE), dtype=bool)
    for i, char in enumerate(text.upper()):
        glyph = _GLYPHS.get(char, _GLYPHS["?"])
        mask[:, i * _ADVANCE : i * _ADVANCE + GLYPH_WIDTH] = glyph
    return mask


def draw_text(
    image: np.ndarray,
    text: str,
    x: int,
    y: int,
    *,
    scale: int = 1,
    color: tuple[int, int, int] = (255, 255, 255),
) -> None:
    """Draw ``text`` into ``image`` (H, W, 3) uint8 in place, top-left corner at (x, y).

    Args:
        image: the RGB image to draw on; text outside it is clipped.
        text: the string (see the module docstring for the character set).
        x, y: pixel position of the top-left corner of the first glyph.
        scale: integer magnification of the 5x7 glyphs.
        color: RGB ink colour.
    """
    mask = _mask(text).repeat(scale, axis=0).repeat(scale, axis=1)
    height, width = image.shape[:2]
    top, left = max(y, 0), max(x, 0)
    bottom, right = min(y + mask.shape[0], height), min(x + mask.shape[1], width)
    if bottom <= top or right <= left:
        return
    visible = mask[top - y : bottom - y, left - x : right - x]
    image[top:bottom, left:right][visible] = color
