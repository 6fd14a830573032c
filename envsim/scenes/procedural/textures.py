"""Procedural, seamlessly tiling textures: wood planks, ceramic tiles, carpet and near-white detail textures.

Each returns a uint8 (size, size, 3) RGB image; rows are v, columns u.
"""

from __future__ import annotations

import math

import numpy as np

from envsim.scenes.procedural.palette import RGB


def _noise(rng: np.random.Generator, size: int, sigma_u: float, sigma_v: float) -> np.ndarray:
    """Seamlessly tiling Gaussian-filtered noise, zero mean and unit std; (size, size), rows = v.

    Args:
        sigma_u: blur along u (columns) in pixels.
        sigma_v: blur along v (rows) in pixels.
    """
    white = rng.standard_normal((size, size))
    fv = np.fft.fftfreq(size)[:, None]
    fu = np.fft.fftfreq(size)[None, :]
    filt = np.exp(-2.0 * math.pi**2 * ((sigma_u * fu) ** 2 + (sigma_v * fv) ** 2))
    n = np.fft.ifft2(np.fft.fft2(white) * filt).real
    n -= n.mean()
    std = n.std()
    return n / std if std > 0 else n


def _u8(img: np.ndarray) -> np.ndarray:
    """[0, 1] floats (H, W) or (H, W, 3) -> uint8 (H, W, 3)."""
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)


def tex_planks(rng: np.random.Generator, size: int, rgb: RGB, rows: int) -> np.ndarray:
    """Wood planks along u, ``rows`` per texture, one end seam per row.

    Args:
        rng: source of the draws.
        size: pixels per side.
        rgb: wood colour, sRGB in [0, 1].
        rows: planks across the texture.

    Returns:
        uint8 (size, size, 3).
    """
    s = size
    edges = np.round(np.linspace(0, s, rows + 1)).astype(int)
    line = max(1, s // 128)
    grain = 0.06 * _noise(rng, s, s / 5.0, 0.7) + 0.025 * _noise(rng, s, 1.5, 0.6)
    warp = _noise(rng, s, s / 6.0, s / 10.0)
    yy = np.arange(s)[:, None]
    streak = 0.05 * np.sin(2 * math.pi * (yy * rows * 2.5 / s + 0.5 * warp))
    shade = np.ones((s, s))
    tint = np.ones((s, s, 3))
    for r in range(rows):
        a, b = edges[r], edges[r + 1]
        shade[a:b] *= 1.0 + rng.normal(0.0, 0.08)
        tint[a:b] *= 1.0 + rng.normal(0.0, 0.025, 3)
        shade[a : a + line] *= 0.55
        seam = int(rng.integers(0, s))
        shade[a:b, np.arange(seam, seam + line) % s] *= 0.55
    img = np.asarray(rgb)[None, None, :] * tint * (shade * (1.0 + grain + streak))[..., None]
    return _u8(img)


def tex_tiles(
    rng: np.random.Generator,
    size: int,
    n_u: int,
    n_v: int,
    colours: list[RGB],
    grout: RGB,
    *,
    checker: bool = False,
    stagger: bool = False,
) -> np.ndarray:
    """Ceramic tiles, ``n_u x n_v`` per texture, grout lines, per-tile shade.

    Args:
        rng: source of the draws.
        size: pixels per side.
        n_u: tiles along u.
        n_v: tiles along v.
        colours: tile colours, sRGB in [0, 1]; tiles draw one each unless ``checker``.
        grout: grout colour.
        checker: alternate the colours in a checkerboard instead of drawing them.
        stagger: shift every other row by half a tile (subway tiles).

    Returns:
        uint8 (size, size, 3).
    """
    s = size
    cu, cv = s / n_u, s / n_v
    pos = np.arange(s) + 0.5
    row = np.floor(pos / cv).astype(int)  # (s,)
    shift = np.where(stagger & (row % 2 == 1), cu / 2, 0.0)
    uu = (pos[None, :] + shift[:, None]) % s
    col = np.floor(uu / cu).astype(int)
    fu = uu - col * cu
    fv = (pos - row * cv)[:, None] * np.ones((1, s))
    g = max(1.0, s / 128)
    palette = np.asarray(colours, np.float64)
    if checker:
        which = (row[:, None] + col) % len(palette)
    else:
        which = rng.integers(0, len(palette), (n_v, n_u))[row[:, None], np.minimum(col, n_u - 1)]
    jit = 1.0 + rng.normal(0.0, 0.035, (n_v, n_u))
    tile = palette[which] * jit[row[:, None], np.minimum(col, n_u - 1)][..., None]
    tile *= (1.0 + 0.02 * _noise(rng, s, 1.0, 1.0))[..., None]
    bevel = (fu < 2 * g) | (fv < 2 * g) | (cu - fu < g) | (cv - fv < g)
    tile[bevel] *= 0.95
    img = np.where(((fu < g) | (fv < g))[..., None], np.asarray(grout)[None, None, :], tile)
    return _u8(img)


def tex_carpet(rng: np.random.Generator, size: int, rgb: RGB) -> np.ndarray:
    """Carpet: ``rgb`` shaded by fine and coarse noise; uint8 (size, size, 3)."""
    s = size
    shade = 0.92 + 0.07 * _noise(rng, s, 0.6, 0.6) + 0.03 * _noise(rng, s, 3, 3) + 0.04 * _noise(rng, s, s / 8, s / 8)
    return _u8(np.asarray(rgb)[None, None, :] * shade[..., None])


def tex_grey(rng: np.random.Generator, size: int, kind: str) -> np.ndarray:
    """Near-white greyscale detail textures that a material's colour factor tints.

    Args:
        rng: source of the draws.
        size: pixels per side.
        kind: ``"paint"``, ``"ceiling"``, ``"fabric"`` or ``"grain"``.

    Returns:
        uint8 (size, size, 3), the three channels equal.
    """
    s = size
    if kind == "paint":
        img = (
            0.94
            + 0.014 * _noise(rng, s, s / 10, s / 10)
            + 0.01 * _noise(rng, s, 3, 3)
            + 0.012 * _noise(rng, s, 0.7, 0.7)
        )
    elif kind == "ceiling":
        img = 0.95 + 0.012 * _noise(rng, s, 0.7, 0.7) + 0.01 * _noise(rng, s, s / 8, s / 8)
    elif kind == "fabric":
        weave = ((np.arange(s)[:, None] + np.arange(s)[None, :]) % 2) * 2.0 - 1.0
        img = 0.88 + 0.05 * _noise(rng, s, 0.6, 0.6) + 0.03 * weave + 0.03 * _noise(rng, s, s / 8, s / 8)
    elif kind == "grain":
        warp = _noise(rng, s, s / 4, s / 12)
        yy = np.arange(s)[:, None]
        rings = np.sin(2 * math.pi * (yy * 24.0 / s + 0.25 * warp))
        img = 0.88 + 0.035 * rings + 0.04 * _noise(rng, s, s / 5, 0.6) + 0.015 * _noise(rng, s, 1.0, 0.5)
    else:
        raise ValueError(f"unknown texture kind {kind!r}")
    return _u8(img)
