"""Habitat-Sim navigation meshes (``.navmesh``): the model; read, write, and rasterise onto a :class:`NavGrid`.

A ``.navmesh`` file is what Habitat-Sim's ``PathFinder::saveNavMesh`` writes: a small set header, the
``NavMeshSettings`` the mesh was built with (file version 2 only), then every tile of a Recast/Detour
``dtNavMesh`` as the raw Detour tile data. Detour's coordinates are Habitat's world frame (Y up, metres),
so vertices are used as they are. Polygons are convex, 3 to 6 vertices; off-mesh connections (type 1
polygons) are skipped.

This module is the public face: the :class:`NavMesh` model (islands, areas), :func:`read_navmesh` and
:func:`write_navmesh`, and :func:`navmesh_to_grid`. The binary layout and its parser and encoder are in
:mod:`envsim.nav.detour`, polygon adjacency (shared edges, tile portals) in :mod:`envsim.nav.polygons`, the
rasteriser in :mod:`envsim.nav.raster`; their public names used here are importable from here too. Geodesics
and paths on the mesh (:meth:`NavMesh.geodesic_distance`, :meth:`NavMesh.shortest_path`) are Detour's, from
:mod:`envsim.nav.pathfind`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from envsim.nav.detour import (
    DT_EXT_LINK,
    DT_NAVMESH_MAGIC,
    DT_NAVMESH_VERSION,
    DT_POLYTYPE_OFFMESH_CONNECTION,
    NAVMESHSET_MAGIC,
    NAVMESHSET_VERSIONS,
    SETTINGS_DEFAULTS,
    DetourTile,
    NavMeshError,
    encode_single_tile,
    parse_tiles,
)
from envsim.nav.grid import NavGrid
from envsim.nav.pathfind import NavMeshQuery
from envsim.nav.polygons import (
    DT_VERTS_PER_POLYGON,
    fan_triangles,
    match_portals,
    normalise_pairs,
    shared_edge_pairs,
)
from envsim.nav.raster import rasterise_triangles
from envsim.provenance import atomic_write

log = logging.getLogger(__name__)

__all__ = [
    "DT_EXT_LINK",
    "DT_NAVMESH_MAGIC",
    "DT_NAVMESH_VERSION",
    "DT_POLYTYPE_OFFMESH_CONNECTION",
    "DT_VERTS_PER_POLYGON",
    "NAVMESHSET_MAGIC",
    "NAVMESHSET_VERSIONS",
    "SETTINGS_DEFAULTS",
    "NavMesh",
    "NavMeshError",
    "encode_navmesh",
    "make_navmesh",
    "navmesh_to_grid",
    "parse_navmesh",
    "read_navmesh",
    "write_navmesh",
]


# ---------------------------------------------------------------------------------------- the mesh


@dataclass(frozen=True, eq=False, repr=False)
class NavMesh:
    """A navigation mesh: convex polygons of walkable floor in the Y-up world frame.

    Build one with :func:`read_navmesh`, :func:`parse_navmesh` or :func:`make_navmesh`. Arrays are read-only.
    Polygons of all tiles are numbered together, in file order, off-mesh connections left out.

    Attributes:
        vertices: float32 (V, 3) world positions in metres, Y up: the polygon vertices of every tile, then the
            detail-mesh vertices of every tile (indexed by ``detail_triangles`` only).
        polygons: int32 (P, 6) vertex indices of each polygon in Detour's order, padded with -1.
        vert_count: int32 (P,) number of vertices of each polygon, 3 to 6.
        neighbours: int32 (E, 2) pairs ``i < j`` of polygons joined across an edge, unique, sorted: Detour's
            links inside a tile, portals between tiles (edges on one tile border that overlap, as Detour
            joins them) and any two polygons whose edges have the same end points (rounded to 0.1 mm).
        detail_triangles: int32 (T, 3) the detail mesh, indices into ``vertices``: the surface Detour
            measures heights on (Recast's polygon vertices are quantised to the voxel height, about
            0.2 m in Habitat; the detail mesh follows the floor). Polygons without one get their fan.
        detail_polygon: int32 (T,) polygon of each detail triangle, non-decreasing.
        flags: uint16 (P,) Detour polygon flags (Habitat: 0x01 walkable, 0x02 door, 0x04 disabled).
        areas: uint8 (P,) Detour area ids (Habitat: 0 ground, 1 door).
        tile: int32 (P,) index of the tile of each polygon, in file order.
        settings: the ``NavMeshSettings`` stored in a version-2 file (see :data:`SETTINGS_DEFAULTS` for the
            names and units), empty for version 1.
        source: where the mesh came from (a file path), for messages and provenance.
    """

    vertices: np.ndarray
    polygons: np.ndarray
    vert_count: np.ndarray
    neighbours: np.ndarray
    detail_triangles: np.ndarray
    detail_polygon: np.ndarray
    flags: np.ndarray
    areas: np.ndarray
    tile: np.ndarray
    settings: Mapping[str, float | bool] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        v = np.array(self.vertices, dtype=np.float32)
        polys = np.array(self.polygons, dtype=np.int32)
        nv = np.array(self.vert_count, dtype=np.int32).reshape(-1)
        if v.ndim != 2 or v.shape[1] != 3 or not np.all(np.isfinite(v)):
            raise ValueError(f"vertices must be a finite (V, 3) array of metres, got shape {v.shape}")
        if polys.ndim != 2 or polys.shape[1] != DT_VERTS_PER_POLYGON or polys.shape[0] == 0:
            raise ValueError(
                f"polygons must be a non-empty (P, 6) index array padded with -1, got shape {polys.shape}; "
                "a navmesh needs at least one polygon"
            )
        p = polys.shape[0]
        if nv.shape != (p,) or nv.min() < 3 or nv.max() > DT_VERTS_PER_POLYGON:
            raise ValueError(f"vert_count must hold ({p},) counts in [3, 6], one per polygon")
        used = np.arange(DT_VERTS_PER_POLYGON)[None, :] < nv[:, None]
        if np.any(polys[used] < 0) or np.any(polys[used] >= v.shape[0]) or np.any(polys[~used] != -1):
            raise ValueError(
                f"polygons must index the {v.shape[0]} vertices in their first vert_count columns and hold -1 "
                "after them"
            )
        nb = np.array(self.neighbours, dtype=np.int32).reshape(-1, 2)
        if nb.size and (nb.min() < 0 or nb.max() >= p or np.any(nb[:, 0] >= nb[:, 1])):
            raise ValueError(f"neighbours must be (E, 2) polygon pairs i < j within [0, {p})")
        dt = np.array(self.detail_triangles, dtype=np.int32).reshape(-1, 3)
        dp = np.array(self.detail_polygon, dtype=np.int32).reshape(-1)
        if dp.shape != (dt.shape[0],) or (dt.size and (dt.min() < 0 or dt.max() >= v.shape[0])):
            raise ValueError("detail_triangles must index vertices, with one detail_polygon entry per triangle")
        if dp.size and (dp.min() < 0 or dp.max() >= p or np.any(np.diff(dp) < 0)):
            raise ValueError(f"detail_polygon must be non-decreasing polygon indices within [0, {p})")
        arrays = {
            "vertices": v,
            "polygons": polys,
            "vert_count": nv,
            "neighbours": nb,
            "detail_triangles": dt,
            "detail_polygon": dp,
            "flags": np.array(self.flags, dtype=np.uint16).reshape(-1),
            "areas": np.array(self.areas, dtype=np.uint8).reshape(-1),
            "tile": np.array(self.tile, dtype=np.int32).reshape(-1),
        }
        for name in ("flags", "areas", "tile"):
            if arrays[name].shape != (p,):
                raise ValueError(f"{name} must hold one value per polygon ({p},), got {arrays[name].shape}")
        for name, a in arrays.items():
            a.setflags(write=False)
            object.__setattr__(self, name, a)
        unknown = set(self.settings) - set(SETTINGS_DEFAULTS)
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}; valid names are {list(SETTINGS_DEFAULTS)}")
        object.__setattr__(self, "settings", MappingProxyType(dict(self.settings)))
        object.__setattr__(self, "source", str(self.source))

    def __repr__(self) -> str:
        n, _ = self.islands()
        return (
            f"NavMesh({self.n_polygons} polygons, {self.vertices.shape[0]} vertices, {self.area_m2:.2f} m2, "
            f"{n} islands, source={self.source!r})"
        )

    @property
    def n_polygons(self) -> int:
        """Number of polygons P."""
        return int(self.polygons.shape[0])

    def polygon_neighbours(self, polygon: int) -> np.ndarray:
        """Polygons joined to ``polygon`` across an edge: int32 (K,) sorted."""
        nb = self.neighbours
        return np.sort(np.concatenate([nb[nb[:, 0] == polygon, 1], nb[nb[:, 1] == polygon, 0]]))

    def triangles(self, *, detail: bool = False) -> np.ndarray:
        """Triangles of the polygons, indices into :attr:`vertices`.

        Args:
            detail: the detail mesh instead of each polygon's fan ``(v0, v[j-1], v[j])``, j = 2..n-1.

        Returns:
            int32 (T, 3), grouped by polygon in polygon order (see :meth:`triangle_polygon`).
        """
        return self.detail_triangles if detail else self._fan[0]

    def triangle_polygon(self, *, detail: bool = False) -> np.ndarray:
        """Polygon of each triangle of :meth:`triangles` (same ``detail``): int32 (T,)."""
        return self.detail_polygon if detail else self._fan[1]

    def polygon_areas(self, *, detail: bool = True) -> np.ndarray:
        """True 3-D area of each polygon in square metres: float64 (P,).

        Args:
            detail: measure the detail mesh (as Habitat-Sim's ``PathFinder.navigable_area`` does) instead of
                the polygon fans; both have the same (x, z) footprint and differ on slopes only.
        """
        tri = self.vertices.astype(np.float64)[self.triangles(detail=detail)]  # (T, 3, 3)
        area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)  # (T,)
        return np.bincount(self.triangle_polygon(detail=detail), weights=area, minlength=self.n_polygons)

    @property
    def area_m2(self) -> float:
        """Total 3-D surface area of the detail mesh in square metres (not its horizontal projection)."""
        return float(self.polygon_areas().sum())

    def islands(self) -> tuple[int, np.ndarray]:
        """Connected islands of polygons (connected components of :attr:`neighbours`).

        Returns:
            n_islands: how many islands.
            labels: read-only int32 (P,) island of each polygon; island 0 has the largest area (ties broken
                by lowest polygon index), then in decreasing area.
        """
        return self._islands

    def island_areas(self) -> np.ndarray:
        """3-D area of each island of :meth:`islands` in square metres: float64 (n_islands,), decreasing."""
        n, labels = self.islands()
        return np.bincount(labels, weights=self.polygon_areas(), minlength=n)

    def snap_point(self, points: np.ndarray) -> np.ndarray:
        """The nearest point on the mesh of each point, as Habitat-Sim's ``PathFinder.snap_point``.

        Searches the polygons within (2, 4, 2) m (x, y, z) of each point, prefers one the point stands over
        (see :mod:`envsim.nav.pathfind`), and puts the result on the detail mesh.

        Args:
            points: (3,) or (N, 3) world points in metres.

        Returns:
            float64 (N, 3) (or (3,) for one point) metres; nan rows where no polygon is near enough.
        """
        pts = np.asarray(points, dtype=np.float64)
        _, snapped = self._query.snap(pts.reshape(-1, 3))
        return snapped.reshape(pts.shape) if pts.shape == (3,) else snapped

    def geodesic_distance(self, start: np.ndarray, goals: np.ndarray) -> np.ndarray:
        """Walking distances on the mesh from one point to many, as Habitat-Sim's ``PathFinder`` reports them.

        Both ends are snapped to the mesh, the polygon corridor is found with Detour's costs and string
        pulled, and the distance is the 3-D length of that straight path (:mod:`envsim.nav.pathfind`).

        Args:
            start: (3,) world point in metres.
            goals: (G, 3) world points in metres.

        Returns:
            float64 (G,) metres; inf where a goal is on another island or a point snaps to nothing.
        """
        return self._query.geodesic_distance(start, goals)

    def shortest_path(self, start: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """The straight path on the mesh between two points, as Habitat-Sim's ``PathFinder.find_path``.

        Args:
            start, goal: (3,) world points in metres.

        Returns:
            float64 (P, 3) world points, P >= 2, from the snapped start through the corners to the snapped
            goal, heights on the detail mesh; empty (0, 3) when the goal cannot be reached.
        """
        return self._query.shortest_path(start, goal)

    @cached_property
    def _query(self) -> NavMeshQuery:
        return NavMeshQuery(self)

    @cached_property
    def _fan(self) -> tuple[np.ndarray, np.ndarray]:
        return fan_triangles(self.polygons, self.vert_count)

    @cached_property
    def _islands(self) -> tuple[int, np.ndarray]:
        p = self.n_polygons
        nb = self.neighbours
        graph = coo_matrix((np.ones(nb.shape[0], np.int8), (nb[:, 0], nb[:, 1])), shape=(p, p)).tocsr()
        n, comp = connected_components(graph, directed=False)
        area = np.bincount(comp, weights=self.polygon_areas(), minlength=n)
        first = np.full(n, p, dtype=np.int64)
        np.minimum.at(first, comp, np.arange(p))
        order = np.lexsort((first, -area))  # new label -> old label
        rank = np.empty(n, dtype=np.int32)
        rank[order] = np.arange(n, dtype=np.int32)
        labels = rank[comp]
        labels.setflags(write=False)
        return int(n), labels


def make_navmesh(
    *,
    vertices: np.ndarray,
    polygons: np.ndarray | Sequence[Sequence[int]],
    flags: np.ndarray | None = None,
    areas: np.ndarray | None = None,
    settings: Mapping[str, float | bool] | None = None,
    source: str = "",
) -> NavMesh:
    """A :class:`NavMesh` from vertices and polygons (no detail mesh: each polygon's fan stands in).

    Args:
        vertices: (V, 3) world positions in metres, Y up.
        polygons: convex polygons of 3 to 6 vertex indices each, either winding (:func:`encode_navmesh`
            writes Detour's): a sequence of index sequences, or a (P, K <= 6) integer array padded with -1.
        flags: uint16 (P,) Detour flags; default 0x01 (Habitat's walkable flag) for every polygon.
        areas: uint8 (P,) Detour area ids (< 64); default 0 (ground).
        settings: ``NavMeshSettings`` values by name (see :data:`SETTINGS_DEFAULTS`); stored as given.
        source: provenance string.

    Raises:
        ValueError: on malformed input; the message says what to fix.
    """
    padded, nv = _pad_polygons(polygons)
    v = np.asarray(vertices, dtype=np.float32)
    if v.ndim != 2 or v.shape[1] != 3 or not np.all(np.isfinite(v)):
        raise ValueError(f"vertices must be a finite (V, 3) array of metres, got shape {v.shape}")
    used = np.arange(DT_VERTS_PER_POLYGON)[None, :] < nv[:, None]
    if np.any(padded[used] < 0) or np.any(padded[used] >= v.shape[0]):
        raise ValueError(f"polygons index vertices outside [0, {v.shape[0]}); check the polygon indices")
    p = padded.shape[0]
    areas_arr = np.zeros(p, np.uint8) if areas is None else np.asarray(areas).reshape(-1)
    if areas_arr.shape == (p,) and np.any((areas_arr < 0) | (areas_arr >= 64)):
        raise ValueError("areas must be Detour area ids in [0, 64)")
    fan, fan_poly = fan_triangles(padded, nv)
    return NavMesh(
        vertices=v,
        polygons=padded,
        vert_count=nv,
        neighbours=shared_edge_pairs(v, padded, nv),
        detail_triangles=fan,
        detail_polygon=fan_poly,
        flags=np.ones(p, np.uint16) if flags is None else flags,
        areas=areas_arr,
        tile=np.zeros(p, np.int32),
        settings={} if settings is None else dict(settings),
        source=source,
    )


def _pad_polygons(polygons) -> tuple[np.ndarray, np.ndarray]:
    """(P, 6) int32 padded with -1 and (P,) int32 vertex counts from either accepted polygon form."""
    if isinstance(polygons, np.ndarray) and polygons.ndim == 2:
        if not np.issubdtype(polygons.dtype, np.integer) or not 3 <= polygons.shape[1] <= DT_VERTS_PER_POLYGON:
            raise ValueError(
                f"a polygon array must be integer (P, 3..6) padded with -1, got {polygons.dtype} {polygons.shape}"
            )
        arr = polygons.astype(np.int32)
        nv = (arr >= 0).sum(axis=1).astype(np.int32)
        if np.any(arr[np.arange(arr.shape[1])[None, :] >= nv[:, None]] != -1):
            raise ValueError("polygon rows must list their vertex indices first, then -1 padding")
        padded = np.full((arr.shape[0], DT_VERTS_PER_POLYGON), -1, np.int32)
        padded[:, : arr.shape[1]] = arr
    else:
        rows = [np.asarray(q).reshape(-1) for q in polygons]
        if any(not np.issubdtype(q.dtype, np.integer) for q in rows if q.size):
            raise ValueError("polygons must hold integer vertex indices")
        nv = np.array([q.size for q in rows], dtype=np.int32)
        padded = np.full((len(rows), DT_VERTS_PER_POLYGON), -1, np.int32)
        for i, q in enumerate(rows):
            padded[i, : min(q.size, DT_VERTS_PER_POLYGON)] = q[:DT_VERTS_PER_POLYGON]
    if padded.shape[0] == 0:
        raise ValueError("a navmesh needs at least one polygon; polygons is empty")
    bad = np.nonzero((nv < 3) | (nv > DT_VERTS_PER_POLYGON))[0]
    if bad.size:
        raise ValueError(
            f"polygon {int(bad[0])} has {int(nv[bad[0]])} vertices; Detour polygons have 3 to 6 (split larger ones)"
        )
    return padded, nv


# ---------------------------------------------------------------------------------------- reading


def read_navmesh(path: str | os.PathLike) -> NavMesh:
    """Read a Habitat-Sim ``.navmesh`` file (see :mod:`envsim.nav.detour` for the layout).

    Args:
        path: the file.

    Returns:
        The mesh, with ``source`` set to ``path``.

    Raises:
        NavMeshError: if the file is malformed (the message names the file and the problem).
        OSError: if the file cannot be read.
    """
    path = Path(path)
    return parse_navmesh(path.read_bytes(), name=str(path))


def parse_navmesh(data: bytes, *, name: str) -> NavMesh:
    """Parse the bytes of a Habitat-Sim ``.navmesh`` file.

    Reads like Habitat-Sim's ``PathFinder::loadNavMesh`` (a tile header with a zero tileRef or dataSize ends
    the tile list, trailing bytes are ignored) but checks everything Detour trusts: counts, section sizes,
    vertex, neighbour and detail indices. Tile headers with 64-bit tile refs (Detour built with
    ``DT_POLYREF64``) are recognised too.

    Args:
        data: the file's bytes.
        name: the file's name, for messages and ``NavMesh.source``.

    Raises:
        NavMeshError: if the data is malformed; the message names ``name`` and what is wrong.
    """
    tiles, settings = parse_tiles(data, name=name)
    return _assemble(tiles, settings=settings, name=name)


def _assemble(tiles: list[DetourTile], *, settings: dict, name: str) -> NavMesh:
    """Join parsed tiles into one :class:`NavMesh` with global indices."""
    n_polys = sum(t.polys.shape[0] for t in tiles)
    if n_polys == 0:
        raise NavMeshError(
            f"{name}: no polygons: {len(tiles)} tile(s) hold no ground polygons; the navmesh is empty "
            "(rebuild it with a larger navigable area or smaller agent)"
        )
    vbase = np.cumsum([0] + [t.verts.shape[0] for t in tiles])
    n_main = int(vbase[-1])
    dbase = n_main + np.cumsum([0] + [t.detail_verts.shape[0] for t in tiles])
    pbase = np.cumsum([0] + [t.polys.shape[0] for t in tiles])
    polys, nvs, internal, dtris, dpoly, tile_of = [], [], [], [], [], []
    port_poly, port_side, port_a, port_b, port_tile, port_climb = [], [], [], [], [], []
    for k, t in enumerate(tiles):
        polys.append(np.where(t.polys >= 0, t.polys + vbase[k], -1))
        nvs.append(t.vert_count)
        internal.append(t.internal + pbase[k])
        dtris.append(np.where(t.detail_tris >= 0, t.detail_tris + vbase[k], dbase[k] + (-1 - t.detail_tris)))
        dpoly.append(t.detail_poly + pbase[k])
        tile_of.append(np.full(t.polys.shape[0], k, np.int32))
        pp, side, ends = t.portals
        port_poly.append(pp + pbase[k])
        port_side.append(side)
        port_a.append(t.verts[ends[:, 0]] if ends.size else np.zeros((0, 3), np.float32))
        port_b.append(t.verts[ends[:, 1]] if ends.size else np.zeros((0, 3), np.float32))
        port_tile.append(np.full(pp.size, k))
        port_climb.append(np.full(pp.size, t.walkable_climb))
    vertices = np.concatenate([t.verts for t in tiles] + [t.detail_verts for t in tiles])
    polygons = np.concatenate(polys).astype(np.int32)
    vert_count = np.concatenate(nvs)
    portal_pairs = match_portals(
        np.concatenate(port_poly),
        np.concatenate(port_side),
        np.concatenate(port_a).astype(np.float64),
        np.concatenate(port_b).astype(np.float64),
        np.concatenate(port_tile),
        np.concatenate(port_climb),
    )
    neighbours = normalise_pairs(*internal, portal_pairs, shared_edge_pairs(vertices[:n_main], polygons, vert_count))
    try:
        return NavMesh(
            vertices=vertices,
            polygons=polygons,
            vert_count=vert_count,
            neighbours=neighbours,
            detail_triangles=np.concatenate(dtris),
            detail_polygon=np.concatenate(dpoly),
            flags=np.concatenate([t.flags for t in tiles]),
            areas=np.concatenate([t.areas for t in tiles]),
            tile=np.concatenate(tile_of),
            settings=settings,
            source=name,
        )
    except ValueError as e:  # checked above already; keep the promise of NavMeshError regardless
        raise NavMeshError(f"{name}: {e}") from e


# ---------------------------------------------------------------------------------------- writing


def encode_navmesh(
    mesh: NavMesh | tuple[np.ndarray, np.ndarray | Sequence[Sequence[int]]],
    *,
    version: int = 2,
    settings: Mapping[str, float | bool] | None = None,
) -> bytes:
    """The bytes of a single-tile ``.navmesh`` file holding ``mesh``, as Detour and Habitat-Sim read it.

    The tile is laid out as ``dtCreateNavMeshData`` lays it out: no BV tree, no off-mesh connections, links
    space for every polygon edge (``maxLinkCount``; Detour rebuilds the links on load), and the fan of each
    polygon as its detail mesh (detail heights of a read mesh are not kept). Vertices at equal positions
    are merged; polygons sharing an edge (by merged vertices) become neighbours (``neis``); polygons are
    wound as Detour winds them (counter-clockwise seen from +Y: ``sum(x_i z_{i+1} - x_{i+1} z_i) < 0``),
    reversed where needed. The set header holds Detour's single-tile parameters (``dtNavMesh::init`` from
    tile data): ``orig = bmin``, tile width and height the (x, z) extent, ``maxTiles = 1``,
    ``maxPolys = P``, and the tile ref of tile 0 with salt 1, ``1 << ceil(log2(P))``.

    Args:
        mesh: a :class:`NavMesh`, or ``(vertices, polygons)`` as :func:`make_navmesh` takes them.
        version: file version: 2 writes the ``NavMeshSettings`` block, 1 does not.
        settings: ``NavMeshSettings`` values by name; missing names come from the mesh's settings, then
            :data:`SETTINGS_DEFAULTS`. ``agent_height``, ``agent_radius`` and ``agent_max_climb`` also fill
            the tile's walkable height, radius and climb; ``cell_size`` its ``bvQuantFactor``.

    Raises:
        ValueError: on an unknown version or setting, or a mesh too large for one Detour tile (65535
            vertices, 32767 polygons).
    """
    if version not in NAVMESHSET_VERSIONS:
        raise ValueError(f"version must be one of {NAVMESHSET_VERSIONS} (2 stores the settings), got {version}")
    if not isinstance(mesh, NavMesh):
        vertices, polygons = mesh
        mesh = make_navmesh(vertices=vertices, polygons=polygons)
    merged = {**SETTINGS_DEFAULTS, **mesh.settings, **(settings or {})}
    unknown = set(merged) - set(SETTINGS_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; valid names are {list(SETTINGS_DEFAULTS)}")
    return encode_single_tile(
        mesh.vertices, mesh.polygons, mesh.vert_count, mesh.flags, mesh.areas, settings=merged, version=version
    )


def write_navmesh(
    mesh: NavMesh | tuple[np.ndarray, np.ndarray | Sequence[Sequence[int]]],
    path: str | os.PathLike,
    *,
    version: int = 2,
    settings: Mapping[str, float | bool] | None = None,
) -> None:
    """Write ``mesh`` as a single-tile Habitat-Sim ``.navmesh`` file, atomically (see :func:`encode_navmesh`).

    Args:
        mesh: a :class:`NavMesh`, or ``(vertices, polygons)`` as :func:`make_navmesh` takes them.
        path: output file.
        version: file version, 1 or 2 (with the settings block).
        settings: ``NavMeshSettings`` values by name (see :func:`encode_navmesh`).
    """
    data = encode_navmesh(mesh, version=version, settings=settings)
    atomic_write(path, data, unique=True)


# ---------------------------------------------------------------------------------------- rasterising


def navmesh_to_grid(
    navmesh: NavMesh,
    *,
    cell_size: float = 0.05,
    largest_island: bool = True,
    detail: bool = True,
    max_climb: float | None = None,
) -> NavGrid:
    """Rasterise a navmesh onto an (x, z) grid: the navigable space of a scene from its real navmesh.

    A cell is walkable when its centre lies inside (or on the border of) the (x, z) projection of a
    triangle; its height is that triangle's plane at the centre, the lowest where several overlap. Cell
    borders lie on multiples of ``cell_size`` (centres at odd multiples of half a cell), and the grid has one
    empty cell around the mesh's bounding box.

    Args:
        navmesh: the mesh.
        cell_size: cell side in metres.
        largest_island: rasterise only island 0 of :meth:`NavMesh.islands` (the largest by area).
        detail: use the detail mesh's heights (Detour's surface) instead of the polygon fans (whose vertex
            heights Recast quantised to the voxel height).
        max_climb: the grid's ``max_climb`` in metres; default the navmesh's ``agent_max_climb`` setting,
            else 0.2.

    Returns:
        The grid (``config`` None); heights are nan off the rasterised polygons.

    Raises:
        ValueError: on a bad ``cell_size`` or a grid over :data:`envsim.nav.grid.MAX_CELLS` cells.
    """
    if not (math.isfinite(cell_size) and cell_size > 0):
        raise ValueError(f"cell_size must be a positive number of metres (e.g. 0.05), got {cell_size}")
    if max_climb is None:
        max_climb = float(navmesh.settings.get("agent_max_climb", 0.2))
    tris = navmesh.triangles(detail=detail)
    if largest_island:
        _, labels = navmesh.islands()
        tris = tris[labels[navmesh.triangle_polygon(detail=detail)] == 0]
    xyz = navmesh.vertices.astype(np.float64)[tris]  # (T, 3, 3)
    origin, height = rasterise_triangles(xyz, cell_size=cell_size)
    nz, nx = height.shape
    walkable = np.isfinite(height)
    log.info(
        "rasterised %d triangles of %s onto %dx%d cells of %.3f m: %.2f m2 walkable",
        tris.shape[0],
        navmesh.source,
        nz,
        nx,
        cell_size,
        walkable.sum() * cell_size**2,
    )
    return NavGrid(origin=origin, cell_size=cell_size, walkable=walkable, height=height, max_climb=max_climb)
