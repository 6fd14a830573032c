"""Mesh primitives (boxes, cylinders, ellipsoids), their concatenation, planar UVs and the local -> world frame.

Everything is in metres, Y up; a mesh is a ``Geo``: (V, 3) float64 vertices and (F, 3) int64 faces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import trimesh

Rect = tuple[float, float, float, float]  # (x0, z0, x1, z1) in metres
Geo = tuple[np.ndarray, np.ndarray]  # (V, 3) float64 vertices, (F, 3) int64 faces

_FACES = ("-x", "+x", "-y", "+y", "-z", "+z")


def box(lo: npt.ArrayLike, hi: npt.ArrayLike, faces: tuple[str, ...] = _FACES) -> Geo:
    """An axis-aligned box (or some of its faces) with outward winding; 4 unshared vertices per face.

    Args:
        lo: (3,) minimum corner in metres.
        hi: (3,) maximum corner in metres.
        faces: which faces to build, from ``-x +x -y +y -z +z``.

    Returns:
        The mesh; empty (0 vertices, 0 faces) when ``faces`` names none.
    """
    lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    verts, tris = [], []
    for key in _FACES:
        if key not in faces:
            continue
        axis, sign = "xyz".index(key[1]), 1 if key[0] == "+" else -1
        a, b = (axis + 1) % 3, (axis + 2) % 3  # e_a x e_b = e_axis
        quad = np.empty((4, 3))
        quad[:, axis] = hi[axis] if sign > 0 else lo[axis]
        quad[:, a] = [lo[a], hi[a], hi[a], lo[a]]
        quad[:, b] = [lo[b], lo[b], hi[b], hi[b]]
        if sign < 0:
            quad = quad[::-1]
        base = 4 * len(verts)
        verts.append(quad)
        tris.append(np.array([[0, 1, 2], [0, 2, 3]]) + base)
    if not verts:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64)
    return np.concatenate(verts), np.concatenate(tris).astype(np.int64)


def bb(x0: float, x1: float, y0: float, y1: float, z0: float, z1: float) -> Geo:
    """A closed box spanning the given ranges (metres)."""
    return box((x0, y0, z0), (x1, y1, z1))


def cyl(cx: float, cz: float, y0: float, y1: float, r: float, sections: int = 16) -> Geo:
    """A vertical closed cylinder of radius ``r`` standing on y0 (metres)."""
    m = trimesh.creation.cylinder(radius=r, height=y1 - y0, sections=sections)
    v = np.asarray(m.vertices, np.float64)
    v = np.stack([v[:, 0], v[:, 2], -v[:, 1]], axis=1)  # rotate the Z axis onto Y (a proper rotation)
    return v + [cx, (y0 + y1) / 2, cz], np.asarray(m.faces, np.int64)


def cyl_z(cx: float, cy: float, z0: float, z1: float, r: float, sections: int = 16) -> Geo:
    """A closed cylinder of radius ``r`` along +Z from z0 to z1, axis through (cx, cy) (metres)."""
    m = trimesh.creation.cylinder(radius=r, height=z1 - z0, sections=sections)
    return np.asarray(m.vertices, np.float64) + [cx, cy, (z0 + z1) / 2], np.asarray(m.faces, np.int64)


def ellipsoid(cx: float, cy: float, cz: float, rx: float, ry: float, rz: float) -> Geo:
    """An ellipsoid (scaled 80-triangle icosphere) centred at (cx, cy, cz), radii in metres."""
    m = trimesh.creation.icosphere(subdivisions=1, radius=1.0)
    return np.asarray(m.vertices, np.float64) * [rx, ry, rz] + [cx, cy, cz], np.asarray(m.faces, np.int64)


def cat(*geos: Geo) -> Geo:
    """One mesh holding all of ``geos`` (vertices stacked in order, face indices offset); needs at least one."""
    verts, faces, offset = [], [], 0
    for v, f in geos:
        verts.append(v)
        faces.append(f + offset)
        offset += len(v)
    return np.concatenate(verts), np.concatenate(faces)


def planar_uv(v: np.ndarray, f: np.ndarray, tile: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-face planar UVs in metres / ``tile``: faces facing X map (z, y), Y map (x, z), Z map (x, y).

    Vertices shared by faces with different projections are split first.

    Args:
        v: (V, 3) vertices in metres.
        f: (F, 3) faces.
        tile: metres per texture repeat.

    Returns:
        (vertices (V', 3), faces (F, 3), uv (V', 2)).
    """
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    axis = np.argmax(np.abs(n), axis=1)
    vert_axis = np.full(len(v), -1)
    vert_axis[f] = axis[:, None]
    if not np.all(vert_axis[f] == axis[:, None]):
        v = v[f].reshape(-1, 3)
        f = np.arange(len(v)).reshape(-1, 3)
        vert_axis = np.repeat(axis, 3)
    uv = np.empty((len(v), 2))
    proj = {0: (2, 1), 1: (0, 2), 2: (0, 1)}
    for ax, (pu, pv) in proj.items():
        sel = vert_axis == ax
        uv[sel, 0], uv[sel, 1] = v[sel, pu], v[sel, pv]
    return v, f, uv / tile


@dataclass(frozen=True)
class Frame:
    """Local -> world placement: rotation ``theta`` (radians) about +Y, then translation (tx, 0, tz)."""

    theta: float
    tx: float
    tz: float

    def apply(self, v: np.ndarray) -> np.ndarray:
        """World coordinates of local (N, 3) points ``v``; ``theta`` must be a multiple of 90 degrees."""
        c, s = round(math.cos(self.theta)), round(math.sin(self.theta))  # multiples of 90 degrees only
        x, z = v[:, 0], v[:, 2]
        return np.stack([c * x + s * z + self.tx, v[:, 1], -s * x + c * z + self.tz], axis=1)

    def rect(self, lx0: float, lz0: float, lx1: float, lz1: float) -> Rect:
        """World AABB of a local footprint rectangle."""
        p = self.apply(np.array([[lx0, 0, lz0], [lx1, 0, lz1]], np.float64))
        return (float(p[:, 0].min()), float(p[:, 2].min()), float(p[:, 0].max()), float(p[:, 2].max()))
