"""A perceptual colormap as a 256-entry lookup table, without matplotlib.

Turbo (Mikhailov, Google AI 2019): blue (cold) -> green -> yellow -> dark red (hot), the
jet-like look of the paper's Fig. 1 without jet's false contours. The table is built from
the published degree-5 polynomial approximation of Turbo (Ruofei Du's fit).
"""

from __future__ import annotations

import numpy as np

__all__ = ["TURBO", "apply_colormap"]

#: Polynomial coefficients (rows R, G, B; columns x^0 .. x^5) of the Turbo approximation.
_TURBO_POLY = np.array(
    [
        [0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
        [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
        [0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973],
    ]
)


def _turbo_table() -> np.ndarray:
    x = np.linspace(0.0, 1.0, 256)
    powers = np.stack([x**k for k in range(_TURBO_POLY.shape[1])], axis=1)
    rgb = np.clip(powers @ _TURBO_POLY.T, 0.0, 1.0)
    return np.round(rgb * 255).astype(np.uint8)


#: (256, 3) uint8 RGB lookup table; row i is the colour of the value i / 255.
TURBO: np.ndarray = _turbo_table()
TURBO.setflags(write=False)


def apply_colormap(values: np.ndarray, lut: np.ndarray = TURBO) -> np.ndarray:
    """Colour ``values`` in [0, 1] (any shape, clipped) with ``lut``: returns shape + (3,) uint8."""
    levels = len(lut) - 1
    index = np.rint(np.clip(values, 0.0, 1.0) * levels).astype(np.intp)
    return lut[index]
