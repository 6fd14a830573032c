"""Navigable space of a scene, computed from its triangle mesh alone (no navmesh needed).

The scene is sampled on a regular (x, z) grid, one cell of ``cell_size`` metres per sample, in the Y-up
world frame. A cell is *walkable* when an agent (a vertical cylinder of ``agent_radius`` and
``agent_height``, Habitat-Sim's defaults) can stand on its floor:

1. **Floors.** A vertical ray is cast down through every cell centre from above the scene and *all* its hits
   are listed (Open3D ``RaycastingScene.list_intersections``, or any :class:`NavCaster`), so ceilings and
   roofs do not hide the floors below them. A hit is a candidate floor when its triangle's normal lies within
   ``max_slope_deg`` of +Y, as Recast/Habitat take it, so the top of a ceiling or roof (facing down, into the
   room) is never walked on. Scans stored with inverted winding keep their floors: where a down-facing surface
   has an up-facing one at least ``agent_height`` above it (an inverted floor under an inverted ceiling) more
   often than the reverse, the scene is read inside out and down-facing surfaces are the candidates. A
   candidate is walkable when the next surface above it (the previous hit along the downward ray) is at least
   ``agent_height`` higher. Each cell keeps its *lowest* walkable candidate.
2. **Walls.** Vertical surfaces are invisible to vertical rays (single-sheet walls of scanned meshes most of
   all), so short horizontal rays join the centres of neighbouring cells at several heights between
   ``max_climb`` and ``agent_height`` above the floor; a hit means a wall, a table leg or the side of a solid
   lies between the two cells. Neighbouring cells whose floors differ by more than ``max_climb`` (a ledge, a
   step too high) are a boundary too.
3. **Clearance.** Cells closer than ``agent_radius`` to a cell with no floor, to a wall or to a ledge are
   removed (Euclidean distance transforms).
4. **Islands.** Walkable cells are joined 8-connected (neighbouring floors must differ by at most
   ``max_climb``; a diagonal move needs the whole 2x2 block of cells around it walkable, so paths never cut
   a wall's corner) and, with ``largest_island``, only the largest connected island is kept, which drops
   table tops, wall tops, roofs and the insides of closed solids.

The result is a :class:`~envsim.nav.grid.NavGrid` (queries, geodesics, sampling, save and load live there).
:class:`~envsim.nav.grid.NavConfig` is defined next to it (a grid records the settings it was built with)
and importable from here too.

Limitations: one floor per cell, the lowest, so a multi-storey scene keeps its ground level only; features
smaller than a cell (thin rails, narrow gaps) are resolved to a cell at best; the clearance test measures
distances between cell centres, so walkable borders are accurate to about half a cell.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from types import SimpleNamespace
from typing import Any, Protocol

import numpy as np
from scipy import ndimage

from envsim.nav.grid import HEIGHT_EPS, MAX_CELLS, NavConfig, NavGrid

log = logging.getLogger(__name__)

_RAY_OFFSET = (0.01234567, 0.03141593)
"""Vertical rays run this fraction of a cell off the cell centre (x, z), so that rays through the centres of
axis-aligned assets do not graze triangle edges and vertices exactly."""

_SURFACE_MERGE_EPS = 1e-4
"""Hits closer than this along one ray (metres) are one surface (shared edges, coplanar faces)."""

_PROBE_SPACING = 0.25
"""Largest vertical spacing in metres between the horizontal wall probes."""


class NavCaster(Protocol):
    """What navigation casts through: the two calls of Open3D's ``RaycastingScene`` it needs, on numpy arrays.

    :class:`~envsim.render.raycast.Open3DRayCaster` and :class:`~envsim.render.raycast.MitsubaRayCaster` are
    NavCasters (the render layer's, passed in by the job); without one, :func:`build_navgrid` uses Open3D.
    """

    def cast(self, rays: np.ndarray) -> Any:
        """First hits of float32 (N, 6) rays; ``.t`` is float32 (N,) in units of the direction's length, inf
        on a miss."""
        ...

    def list_intersections(self, rays: np.ndarray) -> dict[str, np.ndarray]:
        """Every hit of float32 (N, 6) rays: ``ray_ids``, ``t_hit`` and ``primitive_ids`` (H,), any order."""
        ...


class _Open3DScene:
    """The default :class:`NavCaster`: the mesh in Open3D's ``RaycastingScene``."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray):
        import open3d as o3d

        self._o3c = o3d.core
        self._scene = o3d.t.geometry.RaycastingScene()
        self._scene.add_triangles(o3d.core.Tensor(vertices.astype(np.float32)),
                                  o3d.core.Tensor(np.ascontiguousarray(faces, dtype=np.uint32)))

    def cast(self, rays: np.ndarray) -> Any:
        return SimpleNamespace(t=self._scene.cast_rays(self._o3c.Tensor(rays))["t_hit"].numpy())

    def list_intersections(self, rays: np.ndarray) -> dict[str, np.ndarray]:
        return {k: v.numpy() for k, v in self._scene.list_intersections(self._o3c.Tensor(rays)).items()}


def build_navgrid(
    vertices: np.ndarray, faces: np.ndarray, *, config: NavConfig = NavConfig(), caster: NavCaster | None = None
) -> NavGrid:
    """The navigable space of a triangle mesh (see the module docstring for the method).

    Args:
        vertices: (V, 3) float world positions in metres, Y up.
        faces: (F, 3) int vertex indices.
        config: agent and grid settings.
        caster: casts the rays over this same mesh (:class:`NavCaster`, e.g. a renderer's
            :class:`~envsim.render.raycast.MitsubaRayCaster`, so that the GPU path needs no Open3D); None
            builds Open3D's ``RaycastingScene`` of the mesh.

    Returns:
        The grid over the mesh's (x, z) bounding box.

    Raises:
        ValueError: on malformed input, a grid over :data:`~envsim.nav.grid.MAX_CELLS` cells, or a scene
            without navigable area.
    """
    t0 = time.perf_counter()
    vertices, faces = _checked_mesh(vertices, faces)
    cell = config.cell_size
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    origin, (nz, nx) = _grid_frame(lo, hi, cell)
    scene = caster if caster is not None else _Open3DScene(vertices, faces)

    # 1. Floors: all hits of one downward ray per cell.
    height = _floor_heights(scene, vertices, faces, origin=origin, shape=(nz, nx), top=hi[1] + 1.0, config=config)
    floor = np.isfinite(height)
    if not np.any(floor):
        raise ValueError(
            "the scene has no navigable area: no upward-facing surface with "
            f"{config.agent_height} m of headroom; check the up axis (--up) and the units (metres)"
        )

    # 2. Boundaries between neighbouring floors: ledges and walls.
    boundary = _boundaries(scene, floor, height, origin=origin, config=config)

    # 3. Clearance.
    r = config.agent_radius
    walkable = _clearance(floor, boundary, cell=cell, radius=r)
    grid = NavGrid(
        origin=origin,
        cell_size=cell,
        walkable=walkable,
        height=height.astype(np.float32),
        max_climb=config.max_climb,
        config=config,
    )
    if not np.any(walkable):
        raise ValueError(
            f"the scene has no navigable area once {r} m of clearance is kept from walls and ledges; "
            "lower agent_radius or cell_size"
        )

    # 4. Islands.
    if config.largest_island:
        n_islands, labels = grid.islands()
        if n_islands > 1:
            grid = dataclasses.replace(grid, walkable=labels == 0)
    log.info(
        "navigable grid %dx%d at %.3f m: %.1f m2 walkable in %.2f s",
        nz,
        nx,
        cell,
        grid.area_m2,
        time.perf_counter() - t0,
    )
    return grid


def _checked_mesh(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mesh as float64 (V, 3) vertices and integer (F, 3) faces, or ValueError saying what is wrong."""
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or vertices.shape[0] == 0:
        raise ValueError(f"vertices must be a non-empty (V, 3) array, got shape {vertices.shape}")
    if not np.all(np.isfinite(vertices)):
        raise ValueError("vertices contain nan or inf; clean the mesh before building its navigable space")
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.shape[0] == 0 or not np.issubdtype(faces.dtype, np.integer):
        raise ValueError(f"faces must be a non-empty (F, 3) integer array, got {faces.dtype} {faces.shape}")
    if faces.min() < 0 or faces.max() >= vertices.shape[0]:
        raise ValueError(f"faces index vertices outside [0, {vertices.shape[0]}); check the mesh")
    return vertices, faces


def _grid_frame(lo: np.ndarray, hi: np.ndarray, cell: float) -> tuple[np.ndarray, tuple[int, int]]:
    """Grid over the (x, z) box from ``lo`` to ``hi``: (x, z) centre of cell (0, 0) and shape (nz, nx)."""
    nx = max(1, math.ceil((hi[0] - lo[0]) / cell - 1e-9))
    nz = max(1, math.ceil((hi[2] - lo[2]) / cell - 1e-9))
    if nx * nz > MAX_CELLS:
        raise ValueError(
            f"a {hi[0] - lo[0]:.1f} m x {hi[2] - lo[2]:.1f} m scene at cell_size={cell} m needs {nx * nz:,} cells "
            f"(at most {MAX_CELLS:,}); increase cell_size or check the scene's units"
        )
    return np.array([lo[0] + cell / 2, lo[2] + cell / 2]), (nz, nx)


def _facing(vertices: np.ndarray, faces: np.ndarray, prim: np.ndarray, max_slope_deg: float) -> np.ndarray:
    """Which way triangles ``prim`` (K,) face: int8 (K,) +1 within ``max_slope_deg`` of +Y, -1 within it of -Y,
    0 steeper (and degenerate triangles)."""
    uniq, inverse = np.unique(prim, return_inverse=True)
    tri = vertices[faces[uniq]]  # (U, 3, 3)
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norm = np.linalg.norm(normal, axis=1)
    cos_up = normal[:, 1] / np.maximum(norm, 1e-300)  # 0 for degenerate triangles
    limit = math.cos(math.radians(max_slope_deg)) - 1e-9
    out = np.where(cos_up >= limit, 1, np.where(cos_up <= -limit, -1, 0)).astype(np.int8)
    return out[inverse.reshape(-1)]


def _floor_heights(
    scene: NavCaster,
    vertices: np.ndarray,
    faces: np.ndarray,
    *,
    origin: np.ndarray,
    shape: tuple[int, int],
    top: float,
    config: NavConfig,
) -> np.ndarray:
    """Lowest standable floor under each cell: float64 (nz, nx) y in metres, nan where there is none.

    Args:
        scene: casts rays over the mesh (:class:`NavCaster`).
        vertices, faces: the mesh, float64 (V, 3) metres and (F, 3) indices.
        origin: (x, z) centre of cell (0, 0) in metres.
        shape: grid shape (nz, nx).
        top: y in metres above the scene the downward rays start at.
        config: the agent (``max_slope_deg``, ``agent_height``) and ``cell_size``.
    """
    nz, nx = shape
    cell = config.cell_size
    rows, cols = np.mgrid[0:nz, 0:nx]
    rays = np.zeros((nz * nx, 6), dtype=np.float32)
    rays[:, 0] = origin[0] + (cols.ravel() + _RAY_OFFSET[0]) * cell
    rays[:, 1] = top
    rays[:, 2] = origin[1] + (rows.ravel() + _RAY_OFFSET[1]) * cell
    rays[:, 4] = -1.0
    hits = scene.list_intersections(rays)
    ray_id = np.asarray(hits["ray_ids"]).astype(np.int64)
    t_hit = np.asarray(hits["t_hit"]).astype(np.float64)
    prim = np.asarray(hits["primitive_ids"]).astype(np.int64)
    order = np.lexsort((t_hit, ray_id))  # by ray, then top to bottom
    ray_id, t_hit, prim = ray_id[order], t_hit[order], prim[order]
    facing = _facing(vertices, faces, prim, config.max_slope_deg)  # per hit
    surf_ray, surf_y, stand = _standable_surfaces(ray_id, t_hit, top - t_hit, facing, config.agent_height)
    # The lowest standable surface per ray: the last one in top-to-bottom order.
    idx = np.flatnonzero(stand)
    last = np.ones(idx.size, dtype=bool)
    last[:-1] = surf_ray[idx[1:]] != surf_ray[idx[:-1]]
    idx = idx[last]
    height = np.full(nz * nx, np.nan)
    height[surf_ray[idx]] = surf_y[idx]
    return height.reshape(nz, nx)


def _standable_surfaces(
    ray_id: np.ndarray, t_hit: np.ndarray, y_hit: np.ndarray, facing: np.ndarray, agent_height: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge coincident hits of the downward rays into surfaces and find those an agent can stand on.

    Args:
        ray_id, t_hit, y_hit, facing: (H,) ray, distance and y in metres of each hit, sorted by ray then
            top to bottom, and which way its triangle faces (:func:`_facing`).
        agent_height: headroom in metres the agent needs up to the next surface above.

    Returns:
        (S,) ray, y in metres and whether the agent can stand on it, of each surface, in hit order.
    """
    new_surface = np.ones(ray_id.size, dtype=bool)
    new_surface[1:] = (ray_id[1:] != ray_id[:-1]) | (t_hit[1:] - t_hit[:-1] > _SURFACE_MERGE_EPS)
    surf = np.cumsum(new_surface) - 1  # surface index of each hit
    n_surf = int(surf[-1]) + 1 if surf.size else 0
    surf_first = np.flatnonzero(new_surface)
    surf_ray = ray_id[surf_first]
    surf_y = y_hit[surf_first]
    up = np.bincount(surf, weights=facing > 0, minlength=n_surf) > 0
    down = np.bincount(surf, weights=facing < 0, minlength=n_surf) > 0
    headroom = np.full(n_surf, np.inf)
    same_ray = surf_ray[1:] == surf_ray[:-1]
    headroom[1:][same_ray] = surf_y[:-1][same_ray] - surf_y[1:][same_ray]
    # Rooms tell the winding: a floor (below) and a ceiling (above) at least agent_height apart, each facing
    # one way only. The inside of a tall solid (a wall, a wardrobe) looks like an inverted room, so an
    # inverted reading must also cover a quarter of the scene's columns.
    gap = np.zeros(n_surf, bool)
    gap[1:] = same_ray & (headroom[1:] >= agent_height)
    up_only, down_only = up & ~down, down & ~up
    upright = int(np.count_nonzero(gap[1:] & up_only[1:] & down_only[:-1]))
    inverted = int(np.count_nonzero(gap[1:] & down_only[1:] & up_only[:-1]))
    inside_out = inverted > upright and inverted >= 0.25 * np.unique(surf_ray).size
    if inside_out:
        log.info("faces are wound inside out (%d inverted floor/ceiling columns, %d upright): floors face down",
                 inverted, upright)
    surf_floor = down if inside_out else up
    return surf_ray, surf_y, surf_floor & (headroom >= agent_height)


def _boundaries(
    scene: NavCaster, floor: np.ndarray, height: np.ndarray, *, origin: np.ndarray, config: NavConfig
) -> np.ndarray:
    """Cells next to a ledge or a wall: bool (nz, nx).

    Args:
        scene: casts rays over the mesh (:class:`NavCaster`).
        floor: bool (nz, nx) cells with a floor.
        height: float64 (nz, nx) floor y in metres, nan without floor.
        origin: (x, z) centre of cell (0, 0) in metres.
        config: the agent (``max_climb``, ``agent_height``) and ``cell_size``.
    """
    nz, nx = floor.shape
    boundary = np.zeros((nz, nx), dtype=bool)
    probe_src, probe_dst = [], []
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a = (slice(0, nz - dr), slice(max(0, -dc), nx - max(0, dc)))
        b = (slice(dr, nz), slice(max(0, dc), nx + min(0, dc)))
        both = floor[a] & floor[b]
        with np.errstate(invalid="ignore"):
            ledge = both & (np.abs(height[a] - height[b]) > config.max_climb + HEIGHT_EPS)
        boundary[a] |= ledge
        boundary[b] |= ledge
        if dr == 0 or dc == 0:  # walls are probed between 4-neighbours
            rr, cc = np.nonzero(both & ~ledge)
            src = np.stack([rr + a[0].start, cc + a[1].start], axis=1)
            probe_src.append(src)
            probe_dst.append(src + np.array([dr, dc]))
    src = np.concatenate(probe_src)
    dst = np.concatenate(probe_dst)
    if src.size:
        wall = _walls_between(scene, src, dst, height, origin=origin, config=config)
        boundary[src[wall, 0], src[wall, 1]] = True
        boundary[dst[wall, 0], dst[wall, 1]] = True
    return boundary


def _walls_between(
    scene: NavCaster, src: np.ndarray, dst: np.ndarray, height: np.ndarray, *, origin: np.ndarray, config: NavConfig
) -> np.ndarray:
    """Whether horizontal probes between neighbouring cells (E, 2) ``src`` and ``dst`` hit a wall: bool (E,).

    The probes run at several heights between ``max_climb`` and ``agent_height`` above the higher floor.
    """
    cell = config.cell_size
    n_levels = max(2, math.ceil((config.agent_height - config.max_climb) / _PROBE_SPACING) + 1)
    margin = min(0.01, (config.agent_height - config.max_climb) / 4)
    levels = np.linspace(config.max_climb + margin, config.agent_height - margin, n_levels)
    base = np.maximum(height[src[:, 0], src[:, 1]], height[dst[:, 0], dst[:, 1]])  # (E,)
    e = src.shape[0]
    probes = np.empty((levels.size, e, 6), dtype=np.float32)
    probes[..., 0] = origin[0] + (src[:, 1] + _RAY_OFFSET[0]) * cell
    probes[..., 1] = base[None] + levels[:, None]
    probes[..., 2] = origin[1] + (src[:, 0] + _RAY_OFFSET[1]) * cell
    probes[..., 3] = (dst[:, 1] - src[:, 1]) * cell
    probes[..., 4] = 0.0
    probes[..., 5] = (dst[:, 0] - src[:, 0]) * cell
    t_probe = np.asarray(scene.cast(probes.reshape(-1, 6)).t).reshape(levels.size, e)
    return np.any(t_probe <= 1.0, axis=0)


def _clearance(floor: np.ndarray, boundary: np.ndarray, *, cell: float, radius: float) -> np.ndarray:
    """Cells with floor at least ``radius`` metres from any cell without floor and any boundary: bool (nz, nx).

    Distances run from cell centres to the nearest cell without floor (whose border lies about half a cell
    closer) and to the nearest boundary cell (the wall or ledge lies about half a cell beyond it).
    """
    free = np.pad(floor, 1, constant_values=False)
    d_void = ndimage.distance_transform_edt(free)[1:-1, 1:-1] * cell
    walkable = floor & ~boundary & (d_void >= radius + cell / 2 - 1e-9)
    if np.any(boundary):
        d_edge = ndimage.distance_transform_edt(~boundary) * cell
        walkable &= d_edge >= radius - cell / 2 - 1e-9
    return walkable


__all__ = ["NavCaster", "NavConfig", "build_navgrid"]
