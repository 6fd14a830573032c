"""Colour palettes of furniture, trim and decor (sRGB in [0, 1]) and the draws that pick and jitter them.

The floor and wall palettes, used by :mod:`envsim.scenes.procedural.structure` only, live there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

RGB = tuple[float, float, float]  # sRGB in [0, 1]

_T = TypeVar("_T")

# Colours are sRGB in [0, 1]; draws jitter them.
WALL_TILES: list[RGB] = [
    (0.95, 0.95, 0.94),
    (0.80, 0.88, 0.92),
    (0.78, 0.90, 0.84),
    (0.88, 0.84, 0.76),
    (0.70, 0.72, 0.74),
]
"""Bathroom wall and kitchen backsplash tile colours."""
WOOD: dict[str, RGB] = {
    "light_oak": (0.78, 0.62, 0.44),
    "oak": (0.62, 0.45, 0.28),
    "walnut": (0.38, 0.25, 0.16),
    "cherry": (0.55, 0.29, 0.19),
    "white": (0.92, 0.92, 0.90),
    "black": (0.16, 0.16, 0.16),
    "grey": (0.55, 0.55, 0.55),
}
"""Furniture wood and lacquer colours by name."""
FABRIC: dict[str, RGB] = {
    "grey": (0.50, 0.50, 0.52),
    "navy": (0.18, 0.22, 0.38),
    "beige": (0.78, 0.72, 0.62),
    "green": (0.30, 0.42, 0.30),
    "rust": (0.62, 0.32, 0.20),
    "mustard": (0.78, 0.62, 0.22),
    "blue": (0.35, 0.48, 0.68),
    "leather": (0.40, 0.24, 0.14),
    "pink": (0.80, 0.60, 0.62),
    "cream": (0.90, 0.87, 0.80),
    "charcoal": (0.25, 0.25, 0.27),
}
"""Upholstery, bedding and rug colours by name."""
ART: list[RGB] = [
    (0.85, 0.30, 0.20),
    (0.20, 0.40, 0.70),
    (0.95, 0.75, 0.20),
    (0.30, 0.60, 0.45),
    (0.60, 0.35, 0.60),
    (0.15, 0.15, 0.18),
]
"""Picture and vase colours."""
BOOKS: list[RGB] = [
    (0.60, 0.12, 0.12),
    (0.14, 0.24, 0.50),
    (0.18, 0.42, 0.24),
    (0.88, 0.84, 0.72),
    (0.12, 0.12, 0.12),
    (0.85, 0.62, 0.18),
]
"""Book spine colours."""
WHITE: RGB = (0.93, 0.93, 0.92)
"""Off-white for trim, frames and appliances."""
CERAMIC: RGB = (0.96, 0.96, 0.95)
"""Sanitary ceramic (bathtub, toilet, basin)."""
METAL: RGB = (0.70, 0.71, 0.73)
"""Brushed metal (taps, handles, hoods)."""
SCREEN: RGB = (0.05, 0.06, 0.07)
"""Switched-off TV and monitor screens."""
PLANT: list[RGB] = [(0.20, 0.45, 0.18), (0.28, 0.52, 0.22), (0.16, 0.36, 0.20)]
"""Foliage colours."""
POT: list[RGB] = [(0.70, 0.38, 0.24), (0.90, 0.90, 0.88), (0.25, 0.25, 0.26)]
"""Plant pot colours."""


def jitter(rng: np.random.Generator, rgb: RGB, amount: float = 0.04) -> RGB:
    """``rgb`` with each channel scaled by ``1 + N(0, amount)`` and clipped to [0, 1] (draws 3 normals).

    Args:
        rng: source of the draw.
        rgb: base colour, sRGB in [0, 1].
        amount: standard deviation of the relative change.

    Returns:
        The jittered colour.
    """
    c = np.clip(np.asarray(rgb) * (1.0 + rng.normal(0.0, amount, 3)), 0.0, 1.0)
    return (float(c[0]), float(c[1]), float(c[2]))


def pick(rng: np.random.Generator, options: Sequence[_T], p: Sequence[float] | None = None) -> _T:
    """One of ``options``, drawn with ``rng.choice`` (uniformly, or with probabilities ``p``)."""
    return options[int(rng.choice(len(options), p=p))]


def pick_colour(rng: np.random.Generator, palette: dict[str, RGB], names: tuple[str, ...], amount: float = 0.04) -> RGB:
    """A jittered colour of ``palette``, its name drawn uniformly from ``names``.

    Args:
        rng: source of the draws (the name first, then the jitter).
        palette: colours by name.
        names: the names to choose from.
        amount: jitter, see :func:`jitter`.

    Returns:
        The colour, sRGB in [0, 1].
    """
    return jitter(rng, palette[pick(rng, names)], amount)
