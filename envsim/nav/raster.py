"""Rasterising triangles onto an (x, z) :class:`~envsim.nav.grid.NavGrid`: a navmesh's navigable space.

A cell is walkable when its centre lies inside (or on the border of) the (x, z) projection of a triangle;
its height is that triangle's plane at the centre, the lowest where several overlap. Cell borders lie on
multiples of ``cell_size`` (centres at odd multiples of half a cell), and the grid has one empty cell around
the triangles' bounding box. :func:`envsim.nav.navmesh.navmesh_to_grid` picks a navmesh's triangles, calls
:func:`rasterise_triangles` and makes the grid. Coordinates are metres in the Y-up world frame.
"""

from __future__ import annotations

import numpy as np

from envsim.nav.grid import MAX_CELLS

_RASTER_CHUNK = 1 << 20
"""Candidate (triangle, cell) pairs rasterised per batch (about 150 MB of temporaries)."""


def rasterise_triangles(xyz: np.ndarray, *, cell_size: float) -> tuple[np.ndarray, np.ndarray]:
    """Rasterise the triangles of a navmesh onto a grid around their (x, z) bounding box.

    Args:
        xyz: float64 (T, 3, 3) triangle corners in metres, Y up.
        cell_size: cell side in metres, positive.

    Returns:
        origin: float64 (2,) world (x, z) in metres of the centre of cell (0, 0).
        height: float32 (nz, nx) floor y in metres of each cell, nan off the triangles.

    Raises:
        ValueError: on a grid over :data:`envsim.nav.grid.MAX_CELLS` cells.
    """
    lo = xyz.reshape(-1, 3).min(axis=0)
    hi = xyz.reshape(-1, 3).max(axis=0)
    k0 = np.floor(lo[[0, 2]] / cell_size) - 1  # first cell's index in world cells, one empty cell around
    n = np.floor(hi[[0, 2]] / cell_size) - k0 + 2  # (nx, nz), as floats until checked
    if n[0] * n[1] > MAX_CELLS:
        raise ValueError(
            f"a {hi[0] - lo[0]:.1f} m x {hi[2] - lo[2]:.1f} m navmesh at cell_size={cell_size} m needs "
            f"{n[0] * n[1]:,.0f} cells (at most {MAX_CELLS:,}); increase cell_size"
        )
    nx, nz = int(n[0]), int(n[1])
    origin = (k0 + 0.5) * cell_size  # (x, z) centre of cell (0, 0)
    return origin, _rasterise(xyz, origin, cell_size, (nz, nx))


def _rasterise(xyz: np.ndarray, origin: np.ndarray, cell: float, shape: tuple[int, int]) -> np.ndarray:
    """Lowest triangle height at each grid cell centre inside a triangle's (x, z) projection.

    Args:
        xyz: float64 (T, 3, 3) triangle corners in metres.
        origin: (x, z) centre of cell (0, 0) in metres.
        cell: cell side in metres.
        shape: grid shape (nz, nx).

    Returns:
        float32 (nz, nx) heights in metres, nan where no triangle covers the centre.
    """
    nz, nx = shape
    x, y, z = xyz[:, :, 0], xyz[:, :, 1], xyz[:, :, 2]  # (T, 3) each
    # Cell columns/rows whose centres lie in each triangle's bounding box.
    c0 = np.ceil((x.min(axis=1) - origin[0]) / cell - 1e-9).astype(np.int64)
    c1 = np.floor((x.max(axis=1) - origin[0]) / cell + 1e-9).astype(np.int64)
    r0 = np.ceil((z.min(axis=1) - origin[1]) / cell - 1e-9).astype(np.int64)
    r1 = np.floor((z.max(axis=1) - origin[1]) / cell + 1e-9).astype(np.int64)
    den = (x[:, 1] - x[:, 0]) * (z[:, 2] - z[:, 0]) - (x[:, 2] - x[:, 0]) * (z[:, 1] - z[:, 0])  # (T,) 2x area
    c0, c1 = np.maximum(c0, 0), np.minimum(c1, nx - 1)  # cells off the grid are not rasterised
    r0, r1 = np.maximum(r0, 0), np.minimum(r1, nz - 1)
    ncol = np.maximum(c1 - c0 + 1, 0)
    nrow = np.maximum(r1 - r0 + 1, 0)
    count = np.where(np.abs(den) > 1e-12, ncol * nrow, 0)  # (T,) candidate cells; vertical triangles none
    keep = np.nonzero(count)[0]
    best = np.full(nz * nx, np.inf)
    ends = np.cumsum(count[keep])
    start = 0
    while start < keep.size:
        base = ends[start - 1] if start else 0
        stop = max(int(np.searchsorted(ends, base + _RASTER_CHUNK, side="right")), start + 1)
        t_idx = keep[start:stop]
        cnt = count[t_idx]
        t = np.repeat(np.arange(t_idx.size), cnt)
        local = np.arange(t.size) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        tt = t_idx[t]
        col = c0[tt] + local % ncol[tt]
        row = r0[tt] + local // ncol[tt]
        px = origin[0] + col * cell - x[tt, 0]
        pz = origin[1] + row * cell - z[tt, 0]
        ex1, ez1 = x[tt, 1] - x[tt, 0], z[tt, 1] - z[tt, 0]
        ex2, ez2 = x[tt, 2] - x[tt, 0], z[tt, 2] - z[tt, 0]
        w1 = (px * ez2 - ex2 * pz) / den[tt]
        w2 = (ex1 * pz - px * ez1) / den[tt]
        w0 = 1.0 - w1 - w2
        eps = -1e-9
        inside = (w0 >= eps) & (w1 >= eps) & (w2 >= eps)
        h = w0 * y[tt, 0] + w1 * y[tt, 1] + w2 * y[tt, 2]
        np.minimum.at(best, (row * nx + col)[inside], h[inside])
        start = stop
    best[~np.isfinite(best)] = np.nan
    return best.reshape(nz, nx).astype(np.float32)
