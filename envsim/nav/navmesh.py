"""Habitat-Sim navigation meshes (``.navmesh``): read, write, and rasterise onto a :class:`NavGrid`.

A ``.navmesh`` file is what Habitat-Sim's ``PathFinder::saveNavMesh`` writes: a small set header, the
``NavMeshSettings`` the mesh was built with (file version 2 only), then every tile of a Recast/Detour
``dtNavMesh`` as the raw Detour tile data. Detour's coordinates are Habitat's world frame (Y up, metres),
so vertices are used as they are. Polygons are convex, 3 to 6 vertices; off-mesh connections (type 1
polygons) are skipped.

Binary layout, little-endian, ``int``/``float`` 4 bytes, every tile section padded to 4 bytes (``dtAlign4``;
all item sizes are multiples of 4, so the padding is empty)::

    set header (40 B)     int magic 'MSET' (0x4D534554), int version (1 or 2), int numTiles,
                          dtNavMeshParams {float orig[3], float tileWidth, float tileHeight,
                                           int maxTiles, int maxPolys}
    settings (56 B)       version 2 only: float cellSize, cellHeight, agentHeight, agentRadius,
                          agentMaxClimb, agentMaxSlope, regionMinSize, regionMergeSize, edgeMaxLen,
                          edgeMaxError, vertsPerPoly, detailSampleDist, detailSampleMaxError;
                          bool filterLowHangingObstacles, filterLedgeSpans, filterWalkableLowHeightSpans,
                          includeStaticObjects (a padding byte before 2023)
    numTiles x            tile header (8 B): unsigned tileRef, int dataSize
                          (16 B: uint64 tileRef, int dataSize, 4 padding bytes, with DT_POLYREF64)
                          then dataSize bytes of Detour tile data:
      dtMeshHeader (100 B)    int magic 'DNAV' (0x444E4156), version (7), x, y, layer; unsigned userId;
                              int polyCount, vertCount, maxLinkCount, detailMeshCount, detailVertCount,
                              detailTriCount, bvNodeCount, offMeshConCount, offMeshBase;
                              float walkableHeight, walkableRadius, walkableClimb, bmin[3], bmax[3],
                              bvQuantFactor
      verts                   vertCount x float[3]
      polys                   polyCount x dtPoly (32 B): uint32 firstLink, uint16 verts[6], uint16 neis[6],
                              uint16 flags, uint8 vertCount, uint8 areaAndtype (area: low 6 bits,
                              type: high 2 bits, 0 ground, 1 off-mesh connection)
      links                   maxLinkCount x dtLink (12 B; 16 B with DT_POLYREF64), rebuilt by Detour on load
      detailMeshes            detailMeshCount x dtPolyDetail (12 B): uint32 vertBase, uint32 triBase,
                              uint8 vertCount, uint8 triCount, 2 padding bytes
      detailVerts             detailVertCount x float[3]
      detailTris              detailTriCount x uint8[4]: 3 vertex indices local to the polygon (below the
                              polygon's vertCount: its own vertices, else its detail vertices), edge flags
      bvTree                  bvNodeCount x dtBVNode (16 B)
      offMeshCons             offMeshConCount x dtOffMeshConnection (36 B)

``neis[j]`` is the neighbour across polygon edge ``j`` (from vertex ``j`` to ``j + 1``): 0 for a wall,
``index + 1`` for a polygon of the same tile, ``0x8000 | side`` for a portal to the neighbouring tile on
``side`` (0: +x, 2: +z, 4: -x, 6: -z); Detour joins portals of neighbouring tiles whose edges overlap.

References: habitat-sim ``src/esp/nav/PathFinder.cpp`` (``NavMeshSetHeader``, ``NavMeshTileHeader``,
``loadNavMesh``, ``saveNavMesh``) and ``PathFinder.h`` (``NavMeshSettings``); recastnavigation
``Detour/Include/DetourNavMesh.h`` (structs), ``Detour/Source/DetourNavMesh.cpp`` (``dtNavMesh::addTile``,
``findConnectingPolys``) and ``Detour/Source/DetourNavMeshBuilder.cpp`` (``dtCreateNavMeshData``).
"""

from __future__ import annotations

import logging
import math
import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from envsim.nav.grid import MAX_CELLS, NavGrid
from envsim.provenance import atomic_write

log = logging.getLogger(__name__)

NAVMESHSET_MAGIC = 0x4D534554
"""``'M' << 24 | 'S' << 16 | 'E' << 8 | 'T'``: first int of a ``.navmesh`` file (bytes ``TESM`` on disk)."""

NAVMESHSET_VERSIONS = (1, 2)
"""File versions Habitat-Sim reads: 1 without, 2 with the settings block."""

DT_NAVMESH_MAGIC = 0x444E4156
"""``'D' << 24 | 'N' << 16 | 'A' << 8 | 'V'``: first int of each Detour tile."""

DT_NAVMESH_VERSION = 7
"""Detour tile data version (the only one Detour accepts)."""

DT_VERTS_PER_POLYGON = 6
DT_EXT_LINK = 0x8000
DT_POLYTYPE_OFFMESH_CONNECTION = 1

SETTINGS_DEFAULTS: Mapping[str, float | bool] = MappingProxyType(
    {
        "cell_size": 0.05,
        "cell_height": 0.2,
        "agent_height": 1.5,
        "agent_radius": 0.1,
        "agent_max_climb": 0.2,
        "agent_max_slope": 45.0,
        "region_min_size": 20.0,
        "region_merge_size": 20.0,
        "edge_max_len": 12.0,
        "edge_max_error": 1.3,
        "verts_per_poly": 6.0,
        "detail_sample_dist": 6.0,
        "detail_sample_max_error": 1.0,
        "filter_low_hanging_obstacles": True,
        "filter_ledge_spans": True,
        "filter_walkable_low_height_spans": True,
        "include_static_objects": False,
    }
)
"""Habitat-Sim's ``NavMeshSettings`` in file order (Python attribute names) with its defaults
(``NavMeshSettings::setDefaults``): 13 floats (metres, degrees, cells) then 4 bools."""

_SETTINGS_FLOATS = tuple(SETTINGS_DEFAULTS)[:13]
_SETTINGS_BOOLS = tuple(SETTINGS_DEFAULTS)[13:]

_SET_HEADER = struct.Struct("<3i5f2i")  # 40 bytes: magic, version, numTiles, dtNavMeshParams
_SETTINGS = struct.Struct("<13f4B")  # 56 bytes: sizeof(NavMeshSettings)
_TILE_HEADER = struct.Struct("<Ii")  # 8 bytes: 32-bit dtTileRef (Detour's default), dataSize
_TILE_HEADER64 = struct.Struct("<Qi4x")  # 16 bytes: with DT_POLYREF64
_MESH_HEADER = struct.Struct("<5iI9i10f")  # 100 bytes: dtMeshHeader
_DNAV = struct.pack("<i", DT_NAVMESH_MAGIC)

_POLY = np.dtype(
    [
        ("first_link", "<u4"),
        ("verts", "<u2", (DT_VERTS_PER_POLYGON,)),
        ("neis", "<u2", (DT_VERTS_PER_POLYGON,)),
        ("flags", "<u2"),
        ("vert_count", "u1"),
        ("area_and_type", "u1"),
    ]
)
_POLY_DETAIL = np.dtype(
    {
        "names": ["vert_base", "tri_base", "vert_count", "tri_count"],
        "formats": ["<u4", "<u4", "u1", "u1"],
        "offsets": [0, 4, 8, 9],
        "itemsize": 12,
    }
)
_LINK_SIZE = {32: 12, 64: 16}  # sizeof(dtLink) for 32- and 64-bit dtPolyRef
_BVNODE_SIZE = 16
_OFFMESH_SIZE = 36
assert _POLY.itemsize == 32 and _SET_HEADER.size == 40 and _SETTINGS.size == 56 and _MESH_HEADER.size == 100

_PORTAL_SLAB_EPS = 0.01
"""Detour's tolerance in metres for portal edges (same border line, shrunk overlap): findConnectingPolys."""

_EDGE_ROUND = 1e-4
"""Polygon edges whose end points agree after rounding to this many metres are shared edges."""

_RASTER_CHUNK = 1 << 20
"""Candidate (triangle, cell) pairs rasterised per batch (about 150 MB of temporaries)."""


class NavMeshError(ValueError):
    """A ``.navmesh`` file is malformed; the message names the file and what is wrong with it."""


def _align4(n: int) -> int:
    return (n + 3) & ~3


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

    @cached_property
    def _fan(self) -> tuple[np.ndarray, np.ndarray]:
        return _fan_triangles(self.polygons, self.vert_count)

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
    fan, fan_poly = _fan_triangles(padded, nv)
    return NavMesh(
        vertices=v,
        polygons=padded,
        vert_count=nv,
        neighbours=_shared_edge_pairs(v, padded, nv),
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


def _fan_triangles(polygons: np.ndarray, vert_count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fan triangulation (v0, v[j-1], v[j]) of padded polygons: int32 (T, 3) and int32 (T,) polygon, grouped."""
    tris, owner = [], []
    for j in range(2, DT_VERTS_PER_POLYGON):
        sel = np.nonzero(vert_count > j)[0]
        tris.append(np.stack([polygons[sel, 0], polygons[sel, j - 1], polygons[sel, j]], axis=1))
        owner.append(sel)
    tri = np.concatenate(tris).astype(np.int32)
    own = np.concatenate(owner).astype(np.int32)
    order = np.argsort(own, kind="stable")
    return tri[order], own[order]


def _polygon_edges(polygons: np.ndarray, vert_count: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every polygon edge: (N,) polygon, (N,) edge slot j, (N, 2) vertex indices (v[j], v[j+1 mod n])."""
    p = np.arange(polygons.shape[0])
    poly, slot, ends = [], [], []
    for j in range(DT_VERTS_PER_POLYGON):
        sel = p[vert_count > j]
        nxt = np.where(j + 1 < vert_count[sel], j + 1, 0)
        poly.append(sel)
        slot.append(np.full(sel.size, j))
        ends.append(np.stack([polygons[sel, j], polygons[sel, nxt]], axis=1))
    return np.concatenate(poly), np.concatenate(slot), np.concatenate(ends)


def _pairs_by_key(key: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Pairs of owners of equal keys (each owner chained to the next with the same key): int64 (M, 2)."""
    order = np.argsort(key, kind="stable")
    k, o = key[order], owner[order]
    same = np.nonzero(k[1:] == k[:-1])[0]
    return np.stack([o[same], o[same + 1]], axis=1)


def _shared_edge_pairs(vertices: np.ndarray, polygons: np.ndarray, vert_count: np.ndarray) -> np.ndarray:
    """Polygon pairs with an edge whose end points agree after rounding to :data:`_EDGE_ROUND`: (E, 2) int32."""
    q = np.round(vertices.astype(np.float64) / _EDGE_ROUND)  # (V, 3) whole numbers, kept as floats
    order = np.lexsort(q.T[::-1])
    new = np.ones(q.shape[0], dtype=bool)
    new[1:] = np.any(q[order][1:] != q[order][:-1], axis=1)
    vid = np.empty(q.shape[0], dtype=np.int64)
    vid[order] = np.cumsum(new) - 1  # same id for coinciding vertices
    n_ids = int(vid.max()) + 1 if vid.size else 1
    poly, _, ends = _polygon_edges(polygons, vert_count)
    a, b = vid[ends[:, 0]], vid[ends[:, 1]]
    ok = a != b
    key = np.minimum(a, b)[ok] * n_ids + np.maximum(a, b)[ok]
    return _normalise_pairs(_pairs_by_key(key, poly[ok]))


def _normalise_pairs(*pair_sets: np.ndarray) -> np.ndarray:
    """Union of polygon pairs as unique sorted (i < j) int32 (E, 2), self pairs dropped."""
    pairs = np.concatenate([np.asarray(s, dtype=np.int64).reshape(-1, 2) for s in pair_sets])
    pairs = np.sort(pairs, axis=1)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    if pairs.size == 0:
        return np.zeros((0, 2), np.int32)
    n = int(pairs[:, 1].max()) + 1
    key = np.sort(pairs[:, 0] * n + pairs[:, 1])  # 1-D keys sort much faster than rows
    key = key[np.concatenate([[True], key[1:] != key[:-1]])]
    return np.stack([key // n, key % n], axis=1).astype(np.int32)


# ---------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Tile:
    """One parsed Detour tile, indices local to it."""

    verts: np.ndarray  # float32 (V, 3)
    polys: np.ndarray  # int32 (P, 6) ground polygons, padded -1
    vert_count: np.ndarray  # int32 (P,)
    flags: np.ndarray  # uint16 (P,)
    areas: np.ndarray  # uint8 (P,)
    internal: np.ndarray  # int64 (L, 2) ground polygon pairs linked by neis
    portals: tuple[np.ndarray, np.ndarray, np.ndarray]  # ground polygon, side, (N, 2) vertex indices
    detail_verts: np.ndarray  # float32 (Vd, 3)
    detail_tris: np.ndarray  # int64 (T, 3): >= 0 tile vertex, < 0 detail vertex -1 - k
    detail_poly: np.ndarray  # int64 (T,) ground polygon
    walkable_climb: float


def read_navmesh(path: str | os.PathLike) -> NavMesh:
    """Read a Habitat-Sim ``.navmesh`` file (see the module docstring for the layout).

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
    data = bytes(data)
    if len(data) < _SET_HEADER.size:
        raise NavMeshError(f"{name}: truncated at byte {len(data)}: the navmesh header needs {_SET_HEADER.size} bytes")
    magic, version, num_tiles, *_params = _SET_HEADER.unpack_from(data, 0)
    if magic != NAVMESHSET_MAGIC:
        hint = " (it is a single Detour tile, not a Habitat-Sim .navmesh set)" if data[:4] == _DNAV else ""
        raise NavMeshError(
            f"{name}: wrong magic {data[:4]!r}, expected b'TESM' ('MSET' as a little-endian int){hint}; "
            "give a navmesh saved by Habitat-Sim's PathFinder.save_nav_mesh"
        )
    if version not in NAVMESHSET_VERSIONS:
        raise NavMeshError(
            f"{name}: unsupported navmesh version {version}; Habitat-Sim writes versions "
            f"{NAVMESHSET_VERSIONS[0]} and {NAVMESHSET_VERSIONS[1]}"
        )
    if num_tiles < 0:
        raise NavMeshError(f"{name}: negative tile count {num_tiles} in the header")
    off = _SET_HEADER.size
    settings: dict[str, float | bool] = {}
    if version >= 2:
        if len(data) < off + _SETTINGS.size:
            raise NavMeshError(
                f"{name}: truncated at byte {len(data)}: the NavMeshSettings block ends at byte {off + _SETTINGS.size}"
            )
        values = _SETTINGS.unpack_from(data, off)
        # float32 values as their shortest decimal (0.05, not 0.05000000074505806)
        settings = {k: float(str(np.float32(x))) for k, x in zip(_SETTINGS_FLOATS, values[:13])}
        settings.update({k: bool(x) for k, x in zip(_SETTINGS_BOOLS, values[13:])})
        off += _SETTINGS.size

    tiles: list[_Tile] = []
    for k in range(num_tiles):
        if len(data) < off + _TILE_HEADER.size:
            raise NavMeshError(
                f"{name}: truncated at byte {len(data)}: tile {k} of {num_tiles} has no complete tile header "
                f"(bytes {off}..{off + _TILE_HEADER.size})"
            )
        ref, size = _TILE_HEADER.unpack_from(data, off)
        header_size = _TILE_HEADER.size
        ref_bits = 32
        if data[off + 8 : off + 12] == _DNAV:
            pass
        elif data[off + 16 : off + 20] == _DNAV:
            ref, size = _TILE_HEADER64.unpack_from(data, off)
            header_size, ref_bits = _TILE_HEADER64.size, 64
        elif ref != 0 and size != 0 and len(data) < off + 20:
            raise NavMeshError(f"{name}: truncated at byte {len(data)}: tile {k} of {num_tiles} has no tile data")
        elif ref != 0 and size != 0:
            raise NavMeshError(
                f"{name}: tile {k} at byte {off}: wrong tile magic "
                f"{data[off + 8 : off + 12]!r}, expected {_DNAV!r} ('DNAV', Detour tile data)"
            )
        if ref == 0 or size == 0:
            log.warning("%s: tile %d of %d has tileRef=%d, dataSize=%d: tiles end here", name, k, num_tiles, ref, size)
            break
        if size < 0:
            raise NavMeshError(f"{name}: tile {k} at byte {off}: negative dataSize {size}")
        start = off + header_size
        if len(data) < start + size:
            raise NavMeshError(
                f"{name}: truncated at byte {len(data)}: tile {k} of {num_tiles} needs {size} bytes of data "
                f"from byte {start} (to byte {start + size})"
            )
        where = f"{name}: tile {k} at byte {start}"
        tiles.append(_parse_tile(data[start : start + size], name=where, ref_bits=ref_bits))
        off = start + size
    if off < len(data):
        log.warning("%s: ignoring %d bytes after the last tile", name, len(data) - off)
    return _assemble(tiles, settings=settings, name=name)


def _parse_tile(buf: bytes, *, name: str, ref_bits: int) -> _Tile:
    """Parse one Detour tile's data (``dtMeshHeader`` and its sections)."""
    if len(buf) < _MESH_HEADER.size:
        raise NavMeshError(f"{name}: dataSize {len(buf)} is smaller than the {_MESH_HEADER.size}-byte dtMeshHeader")
    h = _MESH_HEADER.unpack_from(buf, 0)
    magic, version = h[0], h[1]
    if magic != DT_NAVMESH_MAGIC:
        raise NavMeshError(f"{name}: wrong tile magic {buf[:4]!r}, expected {_DNAV!r} ('DNAV', Detour tile data)")
    if version != DT_NAVMESH_VERSION:
        raise NavMeshError(f"{name}: unsupported Detour tile version {version}, expected {DT_NAVMESH_VERSION}")
    (poly_count, vert_count, max_links, detail_meshes, detail_verts, detail_tris, bv_nodes, offmesh) = h[6:14]
    walkable_climb = h[17]
    counts = {
        "polyCount": poly_count,
        "vertCount": vert_count,
        "maxLinkCount": max_links,
        "detailMeshCount": detail_meshes,
        "detailVertCount": detail_verts,
        "detailTriCount": detail_tris,
        "bvNodeCount": bv_nodes,
        "offMeshConCount": offmesh,
    }
    negative = [f"{k}={v}" for k, v in counts.items() if v < 0]
    if negative:
        raise NavMeshError(f"{name}: negative counts in dtMeshHeader: {', '.join(negative)}")
    sizes = [
        ("verts", 12 * vert_count),
        ("polys", _POLY.itemsize * poly_count),
        ("links", _LINK_SIZE[ref_bits] * max_links),
        ("detailMeshes", _POLY_DETAIL.itemsize * detail_meshes),
        ("detailVerts", 12 * detail_verts),
        ("detailTris", 4 * detail_tris),
        ("bvTree", _BVNODE_SIZE * bv_nodes),
        ("offMeshCons", _OFFMESH_SIZE * offmesh),
    ]
    offsets = {}
    o = _align4(_MESH_HEADER.size)
    for section, n in sizes:
        offsets[section] = o
        o += _align4(n)
    if o > len(buf):
        raise NavMeshError(
            f"{name}: the sections of dtMeshHeader ({', '.join(f'{k}={v}' for k, v in counts.items())}) need "
            f"{o} bytes but dataSize is {len(buf)}: truncated or corrupt tile"
        )

    verts = np.frombuffer(buf, "<f4", 3 * vert_count, offsets["verts"]).reshape(vert_count, 3).astype(np.float32)
    if not np.all(np.isfinite(verts)):
        raise NavMeshError(f"{name}: vertices contain nan or inf")
    polys = np.frombuffer(buf, _POLY, poly_count, offsets["polys"])
    ground = (polys["area_and_type"] >> 6) == 0
    if np.any(~ground & ((polys["area_and_type"] >> 6) != DT_POLYTYPE_OFFMESH_CONNECTION)):
        log.warning("%s: skipping polygons of unknown type (neither ground nor off-mesh connection)", name)
    g = np.nonzero(ground)[0]  # local index of each ground polygon
    local_to_ground = np.full(poly_count, -1, dtype=np.int64)
    local_to_ground[g] = np.arange(g.size)
    gp = polys[g]
    nv = gp["vert_count"].astype(np.int32)
    bad = np.nonzero((nv < 3) | (nv > DT_VERTS_PER_POLYGON))[0]
    if bad.size:
        raise NavMeshError(
            f"{name}: polygon {int(g[bad[0]])} has vertCount {int(nv[bad[0]])}, expected 3 to {DT_VERTS_PER_POLYGON}"
        )
    slots = np.arange(DT_VERTS_PER_POLYGON)[None, :] < nv[:, None]  # (Pg, 6)
    pv = gp["verts"].astype(np.int32)
    out_of_range = slots & (pv >= vert_count)
    if np.any(out_of_range):
        i, j = np.argwhere(out_of_range)[0]
        raise NavMeshError(
            f"{name}: polygon {int(g[i])} vertex {int(j)} has index {int(pv[i, j])} out of range "
            f"(the tile has {vert_count} vertices)"
        )
    pv = np.where(slots, pv, -1)

    # Neighbours: same-tile links and portal edges.
    neis = gp["neis"].astype(np.int64)
    internal_slot = slots & (neis != 0) & ((neis & DT_EXT_LINK) == 0)
    i, j = np.nonzero(internal_slot)
    other = neis[i, j] - 1
    if np.any(other >= poly_count):
        m = int(np.argmax(other >= poly_count))
        raise NavMeshError(
            f"{name}: polygon {int(g[i[m]])} edge {int(j[m])} names neighbour {int(other[m])} out of range "
            f"(the tile has {poly_count} polygons)"
        )
    other_ground = local_to_ground[other]
    keep = other_ground >= 0
    internal = np.stack([i[keep], other_ground[keep]], axis=1)
    pi, pj = np.nonzero(slots & ((neis & DT_EXT_LINK) != 0))
    nxt = np.where(pj + 1 < nv[pi], pj + 1, 0)
    portals = (pi.astype(np.int64), (neis[pi, pj] & 0xFF).astype(np.int64), np.stack([pv[pi, pj], pv[pi, nxt]], 1))

    # Detail mesh: polygons with one use it, the others their fan.
    dverts = (
        np.frombuffer(buf, "<f4", 3 * detail_verts, offsets["detailVerts"]).reshape(detail_verts, 3).astype(np.float32)
    )
    if not np.all(np.isfinite(dverts)):
        raise NavMeshError(f"{name}: detail vertices contain nan or inf")
    dmeshes = np.frombuffer(buf, _POLY_DETAIL, detail_meshes, offsets["detailMeshes"])
    dtris = np.frombuffer(buf, "u1", 4 * detail_tris, offsets["detailTris"]).reshape(detail_tris, 4)
    has = g < detail_meshes
    gd = np.nonzero(has)[0]  # ground polygons with a detail sub-mesh
    dm = dmeshes[g[gd]]
    vbase = dm["vert_base"].astype(np.int64)
    tbase = dm["tri_base"].astype(np.int64)
    dvc = dm["vert_count"].astype(np.int64)
    dtc = dm["tri_count"].astype(np.int64)
    bad = np.nonzero((vbase + dvc > detail_verts) | (tbase + dtc > detail_tris))[0]
    if bad.size:
        b = int(bad[0])
        raise NavMeshError(
            f"{name}: detail mesh of polygon {int(g[gd[b]])} (vertBase={int(vbase[b])}, vertCount={int(dvc[b])}, "
            f"triBase={int(tbase[b])}, triCount={int(dtc[b])}) is out of range of the tile's {detail_verts} "
            f"detail vertices and {detail_tris} detail triangles"
        )
    with_tris = dtc > 0
    gd, vbase, tbase, dvc, dtc = gd[with_tris], vbase[with_tris], tbase[with_tris], dvc[with_tris], dtc[with_tris]
    owner = np.repeat(gd, dtc)  # (Td,) ground polygon
    first = np.repeat(np.cumsum(dtc) - dtc, dtc)
    tri_idx = np.repeat(tbase, dtc) + (np.arange(owner.size) - first)
    local = dtris[tri_idx, :3].astype(np.int64)  # (Td, 3)
    pnv = nv[owner].astype(np.int64)[:, None]
    pdv = np.repeat(dvc, dtc)[:, None]
    if np.any(local >= pnv + pdv):
        m = int(np.argwhere(local >= pnv + pdv)[0, 0])
        raise NavMeshError(
            f"{name}: detail triangle {int(tri_idx[m])} of polygon {int(g[owner[m]])} has vertex index "
            f"{int(local[m].max())} out of range (the polygon has {int(pnv[m, 0])} vertices and "
            f"{int(pdv[m, 0])} detail vertices)"
        )
    own_vertex = pv[owner[:, None], np.minimum(local, DT_VERTS_PER_POLYGON - 1)]
    detail_vertex = -1 - (np.repeat(vbase, dtc)[:, None] + local - pnv)
    d_tris = np.where(local < pnv, own_vertex, detail_vertex)
    no_detail = np.ones(g.size, dtype=bool)
    no_detail[gd] = False
    fan, fan_owner = _fan_triangles(pv[no_detail], nv[no_detail])
    d_tris = np.concatenate([d_tris, fan.astype(np.int64)])
    owner = np.concatenate([owner, np.nonzero(no_detail)[0][fan_owner]])
    order = np.argsort(owner, kind="stable")

    return _Tile(
        verts=verts,
        polys=pv,
        vert_count=nv,
        flags=gp["flags"].astype(np.uint16),
        areas=(gp["area_and_type"] & 0x3F).astype(np.uint8),
        internal=internal.astype(np.int64),
        portals=portals,
        detail_verts=dverts,
        detail_tris=d_tris[order],
        detail_poly=owner[order].astype(np.int64),
        walkable_climb=float(walkable_climb) if math.isfinite(walkable_climb) else 0.0,
    )


def _assemble(tiles: list[_Tile], *, settings: dict, name: str) -> NavMesh:
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
    portal_pairs = _match_portals(
        np.concatenate(port_poly),
        np.concatenate(port_side),
        np.concatenate(port_a).astype(np.float64),
        np.concatenate(port_b).astype(np.float64),
        np.concatenate(port_tile),
        np.concatenate(port_climb),
    )
    neighbours = _normalise_pairs(*internal, portal_pairs, _shared_edge_pairs(vertices[:n_main], polygons, vert_count))
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


def _slab(va: np.ndarray, vb: np.ndarray, axis: int, along: int) -> tuple[np.ndarray, ...]:
    """Portal edges as Detour's slabs (``getSlabCoord``, ``calcSlabEndPoints``).

    Args:
        va, vb: (N, 3) end points in metres.
        axis: coordinate that is constant on the border line (0: x, 2: z).
        along: coordinate along the border line (2 or 0).

    Returns:
        pos, u0, y0, u1, y1: (N,) each: the border coordinate, then the end points ordered along the line
        (u0 <= u1) with their heights.
    """
    swap = va[:, along] > vb[:, along]
    p0 = np.where(swap[:, None], vb, va)
    p1 = np.where(swap[:, None], va, vb)
    return va[:, axis], p0[:, along], p0[:, 1], p1[:, along], p1[:, 1]


def _match_portals(
    poly: np.ndarray, side: np.ndarray, va: np.ndarray, vb: np.ndarray, tile: np.ndarray, climb: np.ndarray
) -> np.ndarray:
    """Polygon pairs joined through tile-border portals, as Detour's ``findConnectingPolys`` joins them.

    A portal edge on side s (0: +x, 2: +z, 4: -x, 6: -z) of one tile joins a portal edge on the opposite
    side of another tile when both lie on the same border line (within 1 cm), overlap along it by more
    than 2 cm, and their heights over the overlap agree within twice the walkable climb (or cross).

    Args:
        poly: (N,) global polygon of each portal edge.
        side: (N,) Detour side of each portal edge.
        va, vb: (N, 3) float64 end points of each edge in metres.
        tile: (N,) tile of each edge.
        climb: (N,) walkable climb in metres of each edge's tile.

    Returns:
        int64 (M, 2) polygon pairs.
    """
    out = [np.zeros((0, 2), np.int64)]
    for s_pos, s_neg, axis, along in ((0, 4, 0, 2), (2, 6, 2, 0)):
        a = np.nonzero(side == s_pos)[0]
        b = np.nonzero(side == s_neg)[0]
        if a.size == 0 or b.size == 0:
            continue
        apos, au0, ay0, au1, ay1 = _slab(va[a], vb[a], axis, along)
        bpos, bu0, by0, bu1, by1 = _slab(va[b], vb[b], axis, along)
        # Candidates: b edges in the neighbouring position bins whose start lies in [a.u0 - longest b, a.u1].
        bin_w = 2 * _PORTAL_SLAB_EPS
        kb = np.floor(bpos / bin_w)  # whole numbers kept as floats (no overflow on absurd coordinates)
        umin = min(au0.min(), bu0.min())
        maxlen = float((bu1 - bu0).max())
        span = max(au1.max(), bu1.max()) - umin + 2 * maxlen + 1.0
        order = np.lexsort((bu0, kb))
        keys, rank_sorted = np.unique(kb[order], return_inverse=True)
        comp = rank_sorted * span + (bu0[order] - umin)  # sorted
        ka = np.floor(apos / bin_w)
        ia_all, jb_all = [], []
        for dk in (-1, 0, 1):
            q = ka + dk
            r = np.searchsorted(keys, q)
            found = (r < keys.size) & (keys[np.minimum(r, keys.size - 1)] == q)
            lo = np.searchsorted(comp, r * span + (au0 - umin) - maxlen - bin_w, side="left")
            hi = np.searchsorted(comp, r * span + (au1 - umin) + bin_w, side="right")
            n = np.where(found, hi - lo, 0)
            ia = np.repeat(np.arange(a.size), n)
            first = np.repeat(np.cumsum(n) - n, n)
            ia_all.append(ia)
            jb_all.append(order[np.repeat(lo, n) + (np.arange(ia.size) - first)])
        i = np.concatenate(ia_all)
        j = np.concatenate(jb_all)
        ok = (np.abs(apos[i] - bpos[j]) <= _PORTAL_SLAB_EPS) & (tile[a[i]] != tile[b[j]])
        minx = np.maximum(au0[i], bu0[j]) + _PORTAL_SLAB_EPS
        maxx = np.minimum(au1[i], bu1[j]) - _PORTAL_SLAB_EPS
        ok &= minx <= maxx
        with np.errstate(divide="ignore", invalid="ignore"):
            ad = (ay1[i] - ay0[i]) / (au1[i] - au0[i])
            bd = (by1[j] - by0[j]) / (bu1[j] - bu0[j])
            dmin = (by0[j] + bd * (minx - bu0[j])) - (ay0[i] + ad * (minx - au0[i]))
            dmax = (by0[j] + bd * (maxx - bu0[j])) - (ay0[i] + ad * (maxx - au0[i]))
            thr = (2.0 * np.maximum(climb[a[i]], climb[b[j]])) ** 2
            ok &= (dmin * dmax < 0) | (dmin * dmin <= thr) | (dmax * dmax <= thr)
        out.append(np.stack([poly[a[i[ok]]], poly[b[j[ok]]]], axis=1))
    return np.concatenate(out)


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

    # Keep the polygon vertices (in their order), merging equal positions into the first of them.
    nv = mesh.vert_count
    used = np.arange(DT_VERTS_PER_POLYGON)[None, :] < nv[:, None]
    referenced = np.unique(mesh.polygons[used])
    _, first, inverse = np.unique(mesh.vertices[referenced], axis=0, return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.int64)
    rank[np.argsort(first)] = np.arange(first.size)  # unique row -> output vertex, in first-use order
    verts = mesh.vertices[referenced[np.sort(first)]]
    new_index = np.zeros(mesh.vertices.shape[0], dtype=np.int64)
    new_index[referenced] = rank[inverse.reshape(-1)]
    polys = np.where(used, new_index[np.maximum(mesh.polygons, 0)], -1)
    p, v = polys.shape[0], verts.shape[0]
    # Detour's winding: sum(x_i z_{i+1} - x_{i+1} z_i) < 0 (counter-clockwise seen from +Y); its path funnel
    # relies on it.
    xz = verts.astype(np.float64)[np.maximum(polys, 0)][:, :, [0, 2]]  # (P, 6, 2)
    nxt = (np.arange(DT_VERTS_PER_POLYGON)[None, :] + 1) % nv[:, None]  # (P, 6)
    xz1 = np.take_along_axis(xz, nxt[:, :, None], axis=1)
    shoelace = np.where(used, xz[:, :, 0] * xz1[:, :, 1] - xz1[:, :, 0] * xz[:, :, 1], 0.0).sum(axis=1)
    flip = shoelace > 0
    rev = (nv[:, None] - 1 - np.arange(DT_VERTS_PER_POLYGON)[None, :]).clip(0)
    polys[flip] = np.where(used[flip], np.take_along_axis(polys[flip], rev[flip], axis=1), -1)
    if v > 0xFFFF or p > 0x7FFF:
        raise ValueError(
            f"{p} polygons over {v} vertices do not fit one Detour tile (at most 32767 polygons and 65535 "
            "vertices); split the mesh into tiles"
        )

    # neis: the other polygon across each edge with the same (merged) end points.
    poly, slot, ends = _polygon_edges(polys, nv)
    key = np.minimum(ends[:, 0], ends[:, 1]) * (v + 1) + np.maximum(ends[:, 0], ends[:, 1])
    order = np.argsort(key, kind="stable")
    neis = np.zeros((p, DT_VERTS_PER_POLYGON), dtype=np.int64)
    k_sorted = key[order]
    same = np.nonzero(k_sorted[1:] == k_sorted[:-1])[0]
    e0, e1 = order[same], order[same + 1]
    diff = poly[e0] != poly[e1]
    e0, e1 = e0[diff], e1[diff]
    neis[poly[e0], slot[e0]] = poly[e1] + 1
    neis[poly[e1], slot[e1]] = poly[e0] + 1

    fan, _ = _fan_triangles(polys, nv)
    n_tris = fan.shape[0]
    max_links = int(nv.sum())
    bmin = verts.min(axis=0).astype(np.float32)
    bmax = verts.max(axis=0).astype(np.float32)
    cell_size = float(merged["cell_size"])
    ids = (DT_NAVMESH_MAGIC, DT_NAVMESH_VERSION, 0, 0, 0, 0)  # magic, version, tile x, y, layer, userId
    # polyCount, vertCount, maxLinkCount, detailMeshCount, detailVertCount, detailTriCount, bvNodeCount,
    # offMeshConCount, offMeshBase
    counts = (p, v, max_links, p, 0, n_tris, 0, 0, p)
    walkable = (merged["agent_height"], merged["agent_radius"], merged["agent_max_climb"])
    quant = 1.0 / cell_size if cell_size > 0 else 0.0  # bvQuantFactor
    header = _MESH_HEADER.pack(*ids, *counts, *walkable, *bmin.tolist(), *bmax.tolist(), quant)
    dtpolys = np.zeros(p, _POLY)
    dtpolys["verts"] = np.where(used, polys, 0)
    dtpolys["neis"] = neis
    dtpolys["flags"] = mesh.flags
    dtpolys["vert_count"] = nv
    dtpolys["area_and_type"] = mesh.areas & 0x3F  # type 0: ground
    detail = np.zeros(p, _POLY_DETAIL)
    detail["tri_base"] = np.cumsum(nv - 2) - (nv - 2)
    detail["tri_count"] = nv - 2
    tris = np.zeros((n_tris, 4), np.uint8)  # local indices (0, j-1, j) and boundary-edge flags, as Detour
    j = np.arange(n_tris) - np.repeat(detail["tri_base"].astype(np.int64), nv - 2) + 2  # (T,) j of each fan tri
    last = np.repeat(nv - 1, nv - 2)
    tris[:, 1], tris[:, 2] = j - 1, j
    tris[:, 3] = (1 << 2) | np.where(j == 2, 1 << 0, 0) | np.where(j == last, 1 << 4, 0)
    sections = [
        header,
        verts.astype("<f4").tobytes(),
        dtpolys.tobytes(),
        bytes(_LINK_SIZE[32] * max_links),
        detail.tobytes(),
        tris.tobytes(),
    ]
    tile = b"".join(s + bytes(_align4(len(s)) - len(s)) for s in sections)

    poly_bits = (p - 1).bit_length()  # dtIlog2(dtNextPow2(maxPolys))
    # dtNavMeshParams of a single-tile mesh: orig, tileWidth, tileHeight, maxTiles, maxPolys
    params = (*bmin.tolist(), float(bmax[0] - bmin[0]), float(bmax[2] - bmin[2]), 1, p)
    out = [_SET_HEADER.pack(NAVMESHSET_MAGIC, version, 1, *params)]
    if version >= 2:
        out.append(
            _SETTINGS.pack(
                *(float(merged[k]) for k in _SETTINGS_FLOATS), *(int(bool(merged[k])) for k in _SETTINGS_BOOLS)
            )
        )
    out.append(_TILE_HEADER.pack(1 << poly_bits, len(tile)))
    out.append(tile)
    return b"".join(out)


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
    height = _rasterise(xyz, origin, cell_size, (nz, nx))
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
