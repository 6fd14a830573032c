"""The Habitat-Sim ``.navmesh`` binary format: a set of Recast/Detour tiles, parsed to arrays and encoded.

This module knows bytes and arrays only: :mod:`envsim.nav.navmesh` builds its
:class:`~envsim.nav.navmesh.NavMesh` from the tiles :func:`parse_tiles` returns and hands the mesh's arrays
to :func:`encode_single_tile`. Positions are Detour's, which are Habitat's world frame (Y up, metres).

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
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from envsim.nav.polygons import (
    DT_VERTS_PER_POLYGON,
    edge_neis,
    fan_triangles,
    merge_vertices,
    wind_like_detour,
)

log = logging.getLogger(__name__)

NAVMESHSET_MAGIC = 0x4D534554
"""``'M' << 24 | 'S' << 16 | 'E' << 8 | 'T'``: first int of a ``.navmesh`` file (bytes ``TESM`` on disk)."""

NAVMESHSET_VERSIONS = (1, 2)
"""File versions Habitat-Sim reads: 1 without, 2 with the settings block."""

DT_NAVMESH_MAGIC = 0x444E4156
"""``'D' << 24 | 'N' << 16 | 'A' << 8 | 'V'``: first int of each Detour tile."""

DT_NAVMESH_VERSION = 7
"""Detour tile data version (the only one Detour accepts)."""

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


class NavMeshError(ValueError):
    """A ``.navmesh`` file is malformed; the message names the file and what is wrong with it."""


def _align4(n: int) -> int:
    return (n + 3) & ~3


@dataclass(frozen=True)
class DetourTile:
    """One parsed Detour tile, indices local to it (positions in metres, Y up).

    Attributes:
        verts: float32 (V, 3) polygon vertices.
        polys: int32 (P, 6) ground polygons, vertex indices padded with -1.
        vert_count: int32 (P,) vertices of each ground polygon.
        flags: uint16 (P,) Detour polygon flags.
        areas: uint8 (P,) Detour area ids.
        internal: int64 (L, 2) ground polygon pairs linked by ``neis`` inside the tile.
        portals: (N,) ground polygon, (N,) Detour side, (N, 2) vertex indices of each portal edge.
        detail_verts: float32 (Vd, 3) detail-mesh vertices.
        detail_tris: int64 (T, 3) detail triangles: >= 0 tile vertex, < 0 detail vertex -1 - k.
        detail_poly: int64 (T,) ground polygon of each detail triangle, non-decreasing.
        walkable_climb: the tile's walkable climb in metres (0 if not finite).
    """

    verts: np.ndarray
    polys: np.ndarray
    vert_count: np.ndarray
    flags: np.ndarray
    areas: np.ndarray
    internal: np.ndarray
    portals: tuple[np.ndarray, np.ndarray, np.ndarray]
    detail_verts: np.ndarray
    detail_tris: np.ndarray
    detail_poly: np.ndarray
    walkable_climb: float


# ---------------------------------------------------------------------------------------- reading


def parse_tiles(data: bytes, *, name: str) -> tuple[list[DetourTile], dict[str, float | bool]]:
    """Parse the bytes of a Habitat-Sim ``.navmesh`` file into its Detour tiles and ``NavMeshSettings``.

    Reads like Habitat-Sim's ``PathFinder::loadNavMesh`` (a tile header with a zero tileRef or dataSize ends
    the tile list, trailing bytes are ignored) but checks everything Detour trusts: counts, section sizes,
    vertex, neighbour and detail indices. Tile headers with 64-bit tile refs (Detour built with
    ``DT_POLYREF64``) are recognised too.

    Args:
        data: the file's bytes.
        name: the file's name, for messages.

    Returns:
        tiles: the tiles in file order.
        settings: the ``NavMeshSettings`` by name (see :data:`SETTINGS_DEFAULTS`), empty for version 1.

    Raises:
        NavMeshError: if the data is malformed; the message names ``name`` and what is wrong.
    """
    data = bytes(data)
    version, num_tiles = _parse_set_header(data, name=name)
    off = _SET_HEADER.size
    settings: dict[str, float | bool] = {}
    if version >= 2:
        settings = _parse_settings(data, off, name=name)
        off += _SETTINGS.size

    tiles: list[DetourTile] = []
    for k in range(num_tiles):
        found = _tile_data_span(data, off, k=k, num_tiles=num_tiles, name=name)
        if found is None:
            break
        start, size, ref_bits = found
        where = f"{name}: tile {k} at byte {start}"
        tiles.append(_parse_tile(data[start : start + size], name=where, ref_bits=ref_bits))
        off = start + size
    if off < len(data):
        log.warning("%s: ignoring %d bytes after the last tile", name, len(data) - off)
    return tiles, settings


def _parse_set_header(data: bytes, *, name: str) -> tuple[int, int]:
    """Check the 40-byte set header: (file version, number of tiles)."""
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
    return version, num_tiles


def _parse_settings(data: bytes, off: int, *, name: str) -> dict[str, float | bool]:
    """The ``NavMeshSettings`` block at byte ``off`` by name."""
    if len(data) < off + _SETTINGS.size:
        raise NavMeshError(
            f"{name}: truncated at byte {len(data)}: the NavMeshSettings block ends at byte {off + _SETTINGS.size}"
        )
    values = _SETTINGS.unpack_from(data, off)
    # float32 values as their shortest decimal (0.05, not 0.05000000074505806)
    settings: dict[str, float | bool] = {k: float(str(np.float32(x))) for k, x in zip(_SETTINGS_FLOATS, values[:13])}
    settings.update({k: bool(x) for k, x in zip(_SETTINGS_BOOLS, values[13:])})
    return settings


def _tile_data_span(data: bytes, off: int, *, k: int, num_tiles: int, name: str) -> tuple[int, int, int] | None:
    """The tile header at byte ``off``: (start, size of the tile data, tile ref bits), or None at the end."""
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
        return None
    if size < 0:
        raise NavMeshError(f"{name}: tile {k} at byte {off}: negative dataSize {size}")
    start = off + header_size
    if len(data) < start + size:
        raise NavMeshError(
            f"{name}: truncated at byte {len(data)}: tile {k} of {num_tiles} needs {size} bytes of data "
            f"from byte {start} (to byte {start + size})"
        )
    return start, size, ref_bits


def _parse_tile(buf: bytes, *, name: str, ref_bits: int) -> DetourTile:
    """Parse one Detour tile's data (``dtMeshHeader`` and its sections)."""
    counts, offsets, walkable_climb = _tile_layout(buf, name=name, ref_bits=ref_bits)
    verts = _vec3_section(buf, counts["vertCount"], offsets["verts"], name=name, what="vertices")
    g, gp, nv, pv = _ground_polygons(buf, counts, offsets, name=name)
    internal, portals = _tile_links(gp, g, nv, pv, counts["polyCount"], name=name)
    dverts, d_tris, d_poly = _tile_detail(buf, counts, offsets, g, nv, pv, name=name)
    return DetourTile(
        verts=verts,
        polys=pv,
        vert_count=nv,
        flags=gp["flags"].astype(np.uint16),
        areas=(gp["area_and_type"] & 0x3F).astype(np.uint8),
        internal=internal.astype(np.int64),
        portals=portals,
        detail_verts=dverts,
        detail_tris=d_tris,
        detail_poly=d_poly,
        walkable_climb=float(walkable_climb) if math.isfinite(walkable_climb) else 0.0,
    )


def _tile_layout(buf: bytes, *, name: str, ref_bits: int) -> tuple[dict[str, int], dict[str, int], float]:
    """Check a ``dtMeshHeader``: (its counts by Detour name, byte offset of each section, walkableClimb)."""
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
    return counts, offsets, walkable_climb


def _vec3_section(buf: bytes, n: int, offset: int, *, name: str, what: str) -> np.ndarray:
    """``n`` float[3] at byte ``offset`` as float32 (n, 3), checked finite."""
    out = np.frombuffer(buf, "<f4", 3 * n, offset).reshape(n, 3).astype(np.float32)
    if not np.all(np.isfinite(out)):
        raise NavMeshError(f"{name}: {what} contain nan or inf")
    return out


def _ground_polygons(
    buf: bytes, counts: dict[str, int], offsets: dict[str, int], *, name: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The tile's ground polygons: (local index, dtPoly records, int32 vertex counts, int32 (Pg, 6) vertices)."""
    poly_count, vert_count = counts["polyCount"], counts["vertCount"]
    polys = np.frombuffer(buf, _POLY, poly_count, offsets["polys"])
    ground = (polys["area_and_type"] >> 6) == 0
    if np.any(~ground & ((polys["area_and_type"] >> 6) != DT_POLYTYPE_OFFMESH_CONNECTION)):
        log.warning("%s: skipping polygons of unknown type (neither ground nor off-mesh connection)", name)
    g = np.nonzero(ground)[0]  # local index of each ground polygon
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
    return g, gp, nv, np.where(slots, pv, -1)


def _tile_links(
    gp: np.ndarray, g: np.ndarray, nv: np.ndarray, pv: np.ndarray, poly_count: int, *, name: str
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Neighbours of the ground polygons: same-tile links (L, 2) and portal edges (see :class:`DetourTile`)."""
    slots = np.arange(DT_VERTS_PER_POLYGON)[None, :] < nv[:, None]  # (Pg, 6)
    local_to_ground = np.full(poly_count, -1, dtype=np.int64)
    local_to_ground[g] = np.arange(g.size)
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
    return internal, portals


def _tile_detail(
    buf: bytes,
    counts: dict[str, int],
    offsets: dict[str, int],
    g: np.ndarray,
    nv: np.ndarray,
    pv: np.ndarray,
    *,
    name: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The detail mesh: polygons with one use it, the others their fan.

    Returns:
        float32 (Vd, 3) detail vertices, int64 (T, 3) triangles (>= 0 tile vertex, < 0 detail vertex
        -1 - k) and int64 (T,) their ground polygons, grouped by polygon.
    """
    detail_meshes, detail_verts = counts["detailMeshCount"], counts["detailVertCount"]
    detail_tris = counts["detailTriCount"]
    dverts = _vec3_section(buf, detail_verts, offsets["detailVerts"], name=name, what="detail vertices")
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
    fan, fan_owner = fan_triangles(pv[no_detail], nv[no_detail])
    d_tris = np.concatenate([d_tris, fan.astype(np.int64)])
    owner = np.concatenate([owner, np.nonzero(no_detail)[0][fan_owner]])
    order = np.argsort(owner, kind="stable")
    return dverts, d_tris[order], owner[order].astype(np.int64)


# ---------------------------------------------------------------------------------------- writing


def encode_single_tile(
    vertices: np.ndarray,
    polygons: np.ndarray,
    vert_count: np.ndarray,
    flags: np.ndarray,
    areas: np.ndarray,
    *,
    settings: Mapping[str, float | bool],
    version: int,
) -> bytes:
    """The bytes of a single-tile ``.navmesh`` file (see :func:`envsim.nav.navmesh.encode_navmesh`).

    The tile is laid out as ``dtCreateNavMeshData`` lays it out, with the set header of Detour's single-tile
    parameters; vertices at equal positions are merged, polygons get Detour's winding and ``neis``.

    Args:
        vertices: float32 (V, 3) positions in metres, Y up.
        polygons: int32 (P, 6) vertex indices padded with -1, either winding.
        vert_count: int32 (P,) vertices of each polygon, 3 to 6.
        flags: uint16 (P,) Detour polygon flags.
        areas: uint8 (P,) Detour area ids.
        settings: every ``NavMeshSettings`` value by name (see :data:`SETTINGS_DEFAULTS`).
        version: file version: 2 writes the ``NavMeshSettings`` block, 1 does not.

    Raises:
        ValueError: on a mesh too large for one Detour tile (65535 vertices, 32767 polygons).
    """
    nv = vert_count
    used = np.arange(DT_VERTS_PER_POLYGON)[None, :] < nv[:, None]
    verts, polys = merge_vertices(vertices, polygons, used)
    polys = wind_like_detour(verts, polys, nv, used)
    p, v = polys.shape[0], verts.shape[0]
    if v > 0xFFFF or p > 0x7FFF:
        raise ValueError(
            f"{p} polygons over {v} vertices do not fit one Detour tile (at most 32767 polygons and 65535 "
            "vertices); split the mesh into tiles"
        )
    neis = edge_neis(polys, nv, v)
    bmin = verts.min(axis=0).astype(np.float32)
    bmax = verts.max(axis=0).astype(np.float32)
    tile = _tile_bytes(verts, polys, nv, neis, flags, areas, bmin=bmin, bmax=bmax, settings=settings)

    poly_bits = (p - 1).bit_length()  # dtIlog2(dtNextPow2(maxPolys))
    # dtNavMeshParams of a single-tile mesh: orig, tileWidth, tileHeight, maxTiles, maxPolys
    params = (*bmin.tolist(), float(bmax[0] - bmin[0]), float(bmax[2] - bmin[2]), 1, p)
    out = [_SET_HEADER.pack(NAVMESHSET_MAGIC, version, 1, *params)]
    if version >= 2:
        out.append(
            _SETTINGS.pack(
                *(float(settings[k]) for k in _SETTINGS_FLOATS), *(int(bool(settings[k])) for k in _SETTINGS_BOOLS)
            )
        )
    out.append(_TILE_HEADER.pack(1 << poly_bits, len(tile)))
    out.append(tile)
    return b"".join(out)


def _tile_bytes(
    verts: np.ndarray,
    polys: np.ndarray,
    nv: np.ndarray,
    neis: np.ndarray,
    flags: np.ndarray,
    areas: np.ndarray,
    *,
    bmin: np.ndarray,
    bmax: np.ndarray,
    settings: Mapping[str, float | bool],
) -> bytes:
    """The Detour tile data of one tile: ``dtMeshHeader`` and its sections, each padded to 4 bytes."""
    p, v = polys.shape[0], verts.shape[0]
    used = np.arange(DT_VERTS_PER_POLYGON)[None, :] < nv[:, None]
    fan, _ = fan_triangles(polys, nv)
    n_tris = fan.shape[0]
    max_links = int(nv.sum())
    cell_size = float(settings["cell_size"])
    ids = (DT_NAVMESH_MAGIC, DT_NAVMESH_VERSION, 0, 0, 0, 0)  # magic, version, tile x, y, layer, userId
    # polyCount, vertCount, maxLinkCount, detailMeshCount, detailVertCount, detailTriCount, bvNodeCount,
    # offMeshConCount, offMeshBase
    counts = (p, v, max_links, p, 0, n_tris, 0, 0, p)
    walkable = (settings["agent_height"], settings["agent_radius"], settings["agent_max_climb"])
    quant = 1.0 / cell_size if cell_size > 0 else 0.0  # bvQuantFactor
    header = _MESH_HEADER.pack(*ids, *counts, *walkable, *bmin.tolist(), *bmax.tolist(), quant)
    dtpolys = np.zeros(p, _POLY)
    dtpolys["verts"] = np.where(used, polys, 0)
    dtpolys["neis"] = neis
    dtpolys["flags"] = flags
    dtpolys["vert_count"] = nv
    dtpolys["area_and_type"] = areas & 0x3F  # type 0: ground
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
    return b"".join(s + bytes(_align4(len(s)) - len(s)) for s in sections)
