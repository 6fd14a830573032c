"""Tests of envsim.nav.navmesh: Habitat-Sim .navmesh reading, writing, islands and rasterisation.

Files are built here byte by byte with ``struct`` from the layout in habitat-sim ``PathFinder.cpp`` and
Detour's ``DetourNavMesh.h``, independently of the module's writer.
"""

from __future__ import annotations

import logging
import math
import struct
import time

import numpy as np
import pytest

import envsim.nav.navmesh as nm
import envsim.nav.raster as raster
from envsim.nav.grid import NavGrid
from envsim.nav.navmesh import (
    NavMesh,
    NavMeshError,
    encode_navmesh,
    make_navmesh,
    navmesh_to_grid,
    parse_navmesh,
    read_navmesh,
    write_navmesh,
)

MSET = ord("M") << 24 | ord("S") << 16 | ord("E") << 8 | ord("T")
DNAV = ord("D") << 24 | ord("N") << 16 | ord("A") << 8 | ord("V")
EXT = 0x8000
SETTINGS = (0.05, 0.2, 1.5, 0.1, 0.2, 45.0, 20.0, 20.0, 12.0, 1.3, 6.0, 6.0, 1.0, True, True, True, False)
NAME = "scene.navmesh"


# ---------------------------------------------------------------------- byte builders (the documented layout)


def tile_bytes(
    verts,
    polys,
    *,
    neis=None,
    flags=None,
    offmesh=(),
    detail=None,
    max_links=0,
    link_size=12,
    bv_nodes=0,
    tx=0,
    ty=0,
    walkable=(1.5, 0.1, 0.2),
    magic=DNAV,
    version=7,
) -> bytes:
    """Detour tile data: dtMeshHeader (100 B), verts, polys (32 B), links, detail meshes (12 B), detail verts,
    detail tris (4 B), BV nodes (16 B), off-mesh connections (36 B).

    polys: ground polygons (vertex index lists); offmesh: (v0, v1) vertex pairs stored as type-1 polygons
    after them; detail: None, "fan" (Detour's dummy detail mesh) or (meshes, detail verts, detail tris) with
    meshes as (vertBase, triBase, vertCount, triCount) per ground polygon.
    """
    verts = [tuple(map(float, v)) for v in verts]
    n_ground = len(polys)
    neis = neis or [[0] * len(p) for p in polys]
    flags = flags or [1] * n_ground
    if detail == "fan":
        meshes, tris, base = [], [], 0
        for p in polys:
            n = len(p)
            meshes.append((0, base, 0, n - 2))
            for j in range(2, n):
                tris.append((0, j - 1, j, (1 << 2) | (1 if j == 2 else 0) | ((1 << 4) if j == n - 1 else 0)))
            base += n - 2
        detail = (meshes, [], tris)
    meshes, dverts, dtris = detail or ([], [], [])
    vs = np.array(verts + [v for pair in offmesh for v in pair], np.float32).reshape(-1, 3)
    bmin, bmax = vs.min(axis=0), vs.max(axis=0)
    n_poly, n_vert = n_ground + len(offmesh), len(verts) + 2 * len(offmesh)
    ints = (magic, version, tx, ty, 0, 0)  # magic, version, x, y, layer, userId
    counts = (n_poly, n_vert, max_links, len(meshes), len(dverts), len(dtris), bv_nodes, len(offmesh), n_ground)
    floats = (*walkable, *bmin.tolist(), *bmax.tolist(), 20.0)  # walkable h/r/climb, bmin, bmax, bvQuantFactor
    out = struct.pack("<5iI9i10f", *ints, *counts, *floats)
    assert len(out) == 100
    for v in vs:
        out += struct.pack("<3f", *v)
    for p, nb, fl in zip(polys, neis, flags):
        padded_verts, padded_neis = list(p) + [0] * (6 - len(p)), list(nb) + [0] * (6 - len(nb))
        out += struct.pack("<I6H6HHBB", 0, *padded_verts, *padded_neis, fl, len(p), 0)
    for k in range(len(offmesh)):
        a = len(verts) + 2 * k
        out += struct.pack("<I6H6HHBB", 0, a, a + 1, 0, 0, 0, 0, *[0] * 6, 1, 2, 1 << 6)  # type 1: off-mesh
    out += bytes([0xAB]) * (link_size * max_links)  # stale link data: must be skipped, not read
    for m in meshes:
        out += struct.pack("<IIBBxx", *m)
    for v in dverts:
        out += struct.pack("<3f", *v)
    for t in dtris:
        out += struct.pack("<4B", *t)
    out += bytes([0xCD]) * (16 * bv_nodes)
    for k, (p0, p1) in enumerate(offmesh):
        out += struct.pack("<6ffHBBI", *p0, *p1, 0.3, n_ground + k, 1, 0xFF, 7)
    return out


def file_bytes(tiles, *, version=2, settings=SETTINGS, ref64=False, refs=None, params=None, num_tiles=None) -> bytes:
    """A .navmesh file: header (40 B) [, NavMeshSettings (56 B)], then per tile a tile header and its data."""
    params = params or (0.0, 0.0, 0.0, 10.0, 10.0, 16, 1024)
    out = struct.pack("<3i3f2f2i", MSET, version, len(tiles) if num_tiles is None else num_tiles, *params)
    assert len(out) == 40
    if version >= 2:
        out += struct.pack("<13f4?", *settings)
    for k, data in enumerate(tiles):
        ref = (refs or [(1 << 16) | (k << 10)] * len(tiles))[k]
        out += struct.pack("<Qi4x", ref, len(data)) if ref64 else struct.pack("<Ii", ref, len(data))
        out += data
    return out


def rect(x0, z0, x1, z1, y=0.0):
    """Corners of an axis-aligned rectangle in Detour's winding (counter-clockwise seen from +Y)."""
    return [(x0, y, z0), (x0, y, z1), (x1, y, z1), (x1, y, z0)]


def shoelace_xz(points) -> float:
    p = np.asarray(points, float)
    return 0.5 * float(np.sum(p[:, 0] * np.roll(p[:, 2], -1) - np.roll(p[:, 0], -1) * p[:, 2]))


def two_squares_file(version=2) -> bytes:
    """One tile: a 2 x 3 m rectangle and a 1 x 1 m square far away, at y = 0.25."""
    v = rect(0, 0, 2, 3, 0.25) + rect(5, 5, 6, 6, 0.25)
    return file_bytes([tile_bytes(v, [[0, 1, 2, 3], [4, 5, 6, 7]])], version=version)


def two_tile_file(y_right=0.0) -> bytes:
    """Tile (0, 0): one 2 x 3 m quad; tile (1, 0): two 2 x 1.5 m quads. They meet at x = 2 with a T-junction
    (no shared edge, no shared vertex at z = 1.5): only Detour's portal rule joins them."""
    left = tile_bytes(rect(0, 0, 2, 3), [[0, 1, 2, 3]], neis=[[0, 0, EXT | 0, 0]], max_links=4, detail="fan")
    right_v = rect(2, 0, 4, 1.5, y_right) + rect(2, 1.5, 4, 3, y_right)
    right = tile_bytes(
        right_v,
        [[0, 1, 2, 3], [4, 5, 6, 7]],
        neis=[[EXT | 4, 2, 0, 0], [EXT | 4, 0, 0, 1]],  # quad 0's edge 1 is quad 1's edge 3 (z = 1.5)
        max_links=8,
        tx=1,
        detail="fan",
    )
    return file_bytes([left, right], params=(0.0, 0.0, 0.0, 2.0, 3.0, 4, 64))


# ---------------------------------------------------------------------- reading hand-built files


@pytest.mark.parametrize("version", [1, 2])
def test_hand_built_file_reads(version):
    m = parse_navmesh(two_squares_file(version), name=NAME)
    assert isinstance(m, NavMesh) and m.source == NAME
    assert m.n_polygons == 2
    np.testing.assert_array_equal(m.vertices, np.array(rect(0, 0, 2, 3, 0.25) + rect(5, 5, 6, 6, 0.25), np.float32))
    np.testing.assert_array_equal(m.polygons, [[0, 1, 2, 3, -1, -1], [4, 5, 6, 7, -1, -1]])
    np.testing.assert_array_equal(m.vert_count, [4, 4])
    np.testing.assert_array_equal(m.triangles(), [[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    np.testing.assert_array_equal(m.triangle_polygon(), [0, 0, 1, 1])
    assert m.area_m2 == pytest.approx(7.0)
    if version == 1:
        assert m.settings == {}
    else:
        names = list(nm.SETTINGS_DEFAULTS)
        assert list(m.settings) == names
        assert m.settings["agent_radius"] == 0.1 and m.settings["edge_max_error"] == 1.3
        assert m.settings["agent_max_slope"] == 45.0 and m.settings["include_static_objects"] is False
        assert m.settings["filter_ledge_spans"] is True
        assert [m.settings[k] for k in names] == pytest.approx(list(SETTINGS))


def test_settings_block_field_order():
    values = tuple(float(i + 1) for i in range(13)) + (False, True, False, True)
    m = parse_navmesh(file_bytes([tile_bytes(rect(0, 0, 1, 1), [[0, 1, 2, 3]])], settings=values), name=NAME)
    assert list(m.settings.values()) == list(values)


def test_islands_and_areas_by_hand():
    m = parse_navmesh(two_squares_file(), name=NAME)
    n, labels = m.islands()
    assert n == 2
    np.testing.assert_array_equal(labels, [0, 1])  # island 0 is the largest
    np.testing.assert_allclose(m.island_areas(), [6.0, 1.0])
    assert m.neighbours.shape == (0, 2)
    # Same squares, the small one first: labels follow area, not order.
    small_first = make_navmesh(vertices=rect(5, 5, 6, 6) + rect(0, 0, 2, 3), polygons=[[0, 1, 2, 3], [4, 5, 6, 7]])
    assert small_first.islands()[1].tolist() == [1, 0]
    np.testing.assert_allclose(small_first.island_areas(), [6.0, 1.0])


def test_internal_links_offmesh_links_bv_and_detail_sections_are_skipped_correctly():
    # Two quads linked through neis, one off-mesh connection, stale links and BV nodes before the detail mesh.
    v = rect(0, 0, 1, 1) + [(1, 0, 2), (2, 0, 2), (2, 0, 0)]
    polys = [[0, 1, 2, 3], [3, 2, 4, 5, 6]]
    neis = [[0, 0, 2, 0], [1, 0, 0, 0, 3]]  # poly 1's edge 4 points at the off-mesh polygon (index 2): ignored
    data = tile_bytes(
        v, polys, neis=neis, offmesh=[((0.5, 0, 0.5), (1.5, 0, 1.5))], detail="fan", max_links=9, bv_nodes=4
    )
    m = parse_navmesh(file_bytes([data]), name=NAME)
    assert m.n_polygons == 2  # the off-mesh polygon is skipped
    np.testing.assert_array_equal(m.vert_count, [4, 5])
    np.testing.assert_array_equal(m.polygons[1], [3, 2, 4, 5, 6, -1])
    np.testing.assert_array_equal(m.neighbours, [[0, 1]])
    np.testing.assert_array_equal(m.flags, [1, 1])
    assert m.islands()[0] == 1
    assert m.area_m2 == pytest.approx(1.0 + 2.0)  # the unit quad, then the pentagon (a 1 x 2 m rectangle)
    np.testing.assert_array_equal(m.triangles(detail=True), m.triangles())


def test_64bit_tile_refs_read_like_32bit():
    v = rect(0, 0, 1, 1) + [(1, 0, 2), (2, 0, 2), (2, 0, 0)]
    polys = [[0, 1, 2, 3], [3, 2, 4, 5, 6]]
    kw = {"neis": [[0, 0, 2, 0], [1, 0, 0, 0, 0]], "detail": "fan", "max_links": 9}
    m32 = parse_navmesh(file_bytes([tile_bytes(v, polys, **kw)]), name=NAME)
    data64 = file_bytes([tile_bytes(v, polys, link_size=16, **kw)], ref64=True, refs=[1 << 48])  # dtLink is 16 B
    m64 = parse_navmesh(data64, name=NAME)
    for a in ("vertices", "polygons", "neighbours", "detail_triangles"):
        np.testing.assert_array_equal(getattr(m64, a), getattr(m32, a))


def test_detail_mesh_heights_and_area():
    # A 2 x 2 m square at y = 0 whose detail mesh raises its centre to y = 0.5 (a pyramid of 4 triangles).
    meshes = [(0, 0, 1, 4)]
    dverts = [(1.0, 0.5, 1.0)]
    dtris = [(0, 1, 4, 0), (1, 2, 4, 0), (2, 3, 4, 0), (3, 0, 4, 0)]  # local index 4 = the detail vertex
    data = file_bytes([tile_bytes(rect(0, 0, 2, 2), [[0, 1, 2, 3]], detail=(meshes, dverts, dtris))])
    m = parse_navmesh(data, name=NAME)
    assert m.vertices.shape == (5, 3)
    np.testing.assert_array_equal(m.vertices[4], [1.0, 0.5, 1.0])
    np.testing.assert_array_equal(m.triangles(detail=True), [[0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]])
    assert m.area_m2 == pytest.approx(4 * math.sqrt(1.25))  # each face: base 2, slant height sqrt(1 + 0.25)
    assert m.polygon_areas(detail=False)[0] == pytest.approx(4.0)

    g = navmesh_to_grid(m, cell_size=0.1)
    centres = g.cell_centers()
    assert centres.shape[0] == 400
    expected = 0.5 * (1 - np.maximum(np.abs(centres[:, 0] - 1), np.abs(centres[:, 2] - 1)))
    np.testing.assert_allclose(centres[:, 1], expected, atol=1e-5)
    flat = navmesh_to_grid(m, cell_size=0.1, detail=False)
    np.testing.assert_allclose(flat.cell_centers()[:, 1], 0.0)


# ---------------------------------------------------------------------- tiles


def test_two_tiles_joined_through_portal_with_t_junction():
    m = parse_navmesh(two_tile_file(), name=NAME)
    assert m.n_polygons == 3
    np.testing.assert_array_equal(m.tile, [0, 1, 1])
    np.testing.assert_array_equal(m.polygons[1:, :4], [[4, 5, 6, 7], [8, 9, 10, 11]])  # global vertex indices
    np.testing.assert_array_equal(m.neighbours, [[0, 1], [0, 2], [1, 2]])
    np.testing.assert_array_equal(m.polygon_neighbours(0), [1, 2])
    n, labels = m.islands()
    assert n == 1 and labels.tolist() == [0, 0, 0]
    assert m.area_m2 == pytest.approx(12.0)
    g = navmesh_to_grid(m, cell_size=0.1)
    assert g.area_m2 == pytest.approx(12.0)
    assert g.islands()[0] == 1


@pytest.mark.parametrize(("dy", "joined"), [(0.3, True), (0.39, True), (0.5, False), (1.0, False)])
def test_portal_height_tolerance_is_twice_walkable_climb(dy, joined):
    m = parse_navmesh(two_tile_file(y_right=dy), name=NAME)  # walkableClimb = 0.2 m
    assert (m.islands()[0] == 1) is joined


def test_tiles_with_coinciding_edges_but_no_portal_flags_join_by_vertex_positions():
    left = tile_bytes(rect(0, 0, 2, 3), [[0, 1, 2, 3]])
    right = tile_bytes([(2.00002, 0, 0), (2.00002, 0, 3), (4, 0, 3), (4, 0, 0)], [[0, 1, 2, 3]], tx=1)
    m = parse_navmesh(file_bytes([left, right]), name=NAME)
    assert m.islands()[0] == 1
    far = tile_bytes([(2.01, 0, 0), (2.01, 0, 3), (4, 0, 3), (4, 0, 0)], [[0, 1, 2, 3]], tx=1)
    assert parse_navmesh(file_bytes([left, far]), name=NAME).islands()[0] == 2


def test_zero_tile_header_ends_the_tile_list_as_in_habitat(caplog):
    data = two_squares_file() + struct.pack("<Ii", 0, 0)
    data = data[:8] + struct.pack("<i", 3) + data[12:]  # numTiles = 3, the second tile header is zeros
    with caplog.at_level(logging.WARNING, logger="envsim.nav.detour"):
        m = parse_navmesh(data, name=NAME)
    assert m.n_polygons == 2
    assert "tiles end here" in caplog.text


# ---------------------------------------------------------------------- writer


def mixed_mesh():
    """Quads, a triangle, a pentagon and a hexagon on one island at different heights, and a second island."""
    v = [(0, 0, 0), (0, 0, 1), (1, 0, 1), (1, 0, 0), (2, 0.1, 1), (2, 0.1, 0), (1.5, 0.2, -1), (3, 0.1, 0.5)]
    v += [(10, 1, 10), (10, 1, 11), (10.5, 1, 11.5), (11, 1, 11), (11, 1, 10), (10.5, 1, 9.5)]
    polys = [[0, 1, 2, 3], [3, 2, 4, 5], [3, 5, 6], [5, 4, 7], [8, 9, 10, 11, 12, 13]]
    return np.asarray(v, np.float32), polys


def test_writer_bytes_match_the_documented_layout():
    v, polys = mixed_mesh()
    got = encode_navmesh((v, polys), version=2)
    # Expected, built independently: neis from shared edges, links for every edge, Detour's dummy detail.
    neis = [[0, 0, 2, 0], [1, 0, 4, 3], [2, 0, 0], [2, 0, 0], [0] * 6]
    n_edges = sum(len(p) for p in polys)
    tile = tile_bytes(v, polys, neis=neis, detail="fan", max_links=n_edges)
    lo, hi = v.min(axis=0), v.max(axis=0)
    params = (*lo.tolist(), float(hi[0] - lo[0]), float(hi[2] - lo[2]), 1, len(polys))
    expected = file_bytes([tile], params=params, refs=[1 << 3])  # salt 1 above ceil(log2(5)) = 3 poly bits
    expected = expected.replace(bytes([0xAB]) * (12 * n_edges), bytes(12 * n_edges))  # the writer zeroes links
    assert got == expected


@pytest.mark.parametrize("version", [1, 2])
def test_write_read_round_trip(tmp_path, version):
    v, polys = mixed_mesh()
    mesh = make_navmesh(vertices=v, polygons=polys, flags=[1, 1, 3, 1, 1], areas=[0, 0, 1, 0, 0])
    path = tmp_path / "out.navmesh"
    write_navmesh(mesh, path, version=version, settings={"agent_radius": 0.18})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.navmesh"]  # no temporary left behind
    back = read_navmesh(path)
    assert back.source == str(path)
    for a in ("vertices", "polygons", "vert_count", "neighbours", "flags", "areas", "detail_triangles"):
        np.testing.assert_array_equal(getattr(back, a), getattr(mesh, a), err_msg=a)
    np.testing.assert_array_equal(back.islands()[1], mesh.islands()[1])
    np.testing.assert_allclose(back.island_areas(), mesh.island_areas())
    if version == 1:
        assert back.settings == {}
    else:
        assert back.settings == {**nm.SETTINGS_DEFAULTS, "agent_radius": 0.18}
        again = parse_navmesh(encode_navmesh(back), name="again")  # settings survive a second round trip
        assert again.settings == back.settings


def test_writer_uses_detour_winding_and_merges_duplicate_vertices():
    # Clockwise-from-above input, and two triangles that share an edge only through duplicated vertices.
    v = [(0, 0, 0), (2, 0, 0), (2, 0, 2), (0, 0, 0), (2, 0, 2), (0, 0, 2)]
    m = parse_navmesh(encode_navmesh((v, [[0, 1, 2], [3, 4, 5]])), name=NAME)
    assert m.vertices.shape == (4, 3)
    for p, n in zip(m.polygons, m.vert_count):
        assert shoelace_xz(m.vertices[p[:n]]) < 0
    np.testing.assert_array_equal(m.neighbours, [[0, 1]])


def test_writer_rejects_bad_input():
    v, polys = mixed_mesh()
    with pytest.raises(ValueError, match="version"):
        encode_navmesh((v, polys), version=3)
    with pytest.raises(ValueError, match="unknown settings"):
        encode_navmesh((v, polys), settings={"agent_radiuss": 0.2})
    many = np.random.default_rng(0).uniform(0, 100, size=(3 * 21846, 3))  # 65538 distinct vertices
    with pytest.raises(ValueError, match="one Detour tile"):
        encode_navmesh((many, np.arange(many.shape[0]).reshape(-1, 3)))


@pytest.mark.parametrize(
    ("polygons", "match"),
    [([[0, 1]], "3 to 6"), ([[0, 1, 2, 3, 4, 5, 0]], "3 to 6"), ([[0, 1, 9]], "outside"), ([], "at least one")],
)
def test_make_navmesh_validates(polygons, match):
    with pytest.raises(ValueError, match=match):
        make_navmesh(vertices=np.zeros((6, 3)), polygons=polygons)


def test_make_navmesh_accepts_padded_arrays():
    v, polys = mixed_mesh()
    padded = np.full((len(polys), 6), -1)
    for i, p in enumerate(polys):
        padded[i, : len(p)] = p
    a = make_navmesh(vertices=v, polygons=polys)
    b = make_navmesh(vertices=v, polygons=padded)
    np.testing.assert_array_equal(a.polygons, b.polygons)
    np.testing.assert_array_equal(a.neighbours, b.neighbours)
    assert a.polygons.flags.writeable is False


# ---------------------------------------------------------------------- malformed files


def patched(data: bytes, offset: int, fmt: str, *values) -> bytes:
    return data[:offset] + struct.pack(fmt, *values) + data[offset + struct.calcsize(fmt) :]


TILE0 = 40 + 56 + 8  # first tile's data in a version-2 file
POLYS0 = TILE0 + 100 + 12 * 8  # two_squares_file: 8 vertices before the polygons


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda d: b"XXXX" + d[4:], "wrong magic"),
        (lambda d: b"MSET" + d[4:], "wrong magic"),  # big-endian
        (lambda d: patched(d, 4, "<i", 3), "unsupported navmesh version 3"),
        (lambda d: patched(d, 4, "<i", 0), "unsupported navmesh version 0"),
        (lambda d: patched(d, 8, "<i", -1), "negative tile count"),
        (lambda d: patched(d, TILE0, "<i", 0x12345678), "wrong tile magic"),
        (lambda d: patched(d, TILE0 + 4, "<i", 6), "unsupported Detour tile version 6"),
        (lambda d: patched(d, TILE0 + 24, "<i", 99), "need .* bytes"),  # polyCount beyond the data
        (lambda d: patched(d, TILE0 + 28, "<i", -2), "negative counts"),
        (lambda d: patched(d, TILE0 - 4, "<i", 90), "smaller than"),  # dataSize below dtMeshHeader
        (lambda d: patched(d, POLYS0 + 4, "<H", 8), "index 8 out of range"),  # vertex index of polygon 0
        (lambda d: patched(d, POLYS0 + 16, "<H", 9), "neighbour 8 out of range"),  # neis[0] of polygon 0
        (lambda d: patched(d, POLYS0 + 30, "<B", 2), "vertCount 2"),
        (lambda d: patched(d, POLYS0 + 30, "<B", 7), "vertCount 7"),
        (lambda d: patched(d, TILE0 + 100, "<f", math.nan), "nan"),
    ],
)
def test_malformed_files_raise(make, match):
    data = make(two_squares_file())
    with pytest.raises(NavMeshError, match=match) as info:
        parse_navmesh(data, name=NAME)
    assert NAME in str(info.value)


def test_detail_index_out_of_range_raises():
    meshes = [(0, 0, 1, 4)]
    dtris = [(0, 1, 4, 0), (1, 2, 4, 0), (2, 3, 5, 0), (3, 0, 4, 0)]  # local 5: a second detail vertex it lacks
    data = file_bytes([tile_bytes(rect(0, 0, 2, 2), [[0, 1, 2, 3]], detail=(meshes, [(1, 0.5, 1)], dtris))])
    with pytest.raises(NavMeshError, match="out of range"):
        parse_navmesh(data, name=NAME)
    meshes = [(0, 2, 1, 4)]  # triBase + triCount beyond detailTriCount
    data = file_bytes([tile_bytes(rect(0, 0, 2, 2), [[0, 1, 2, 3]], detail=(meshes, [(1, 0.5, 1)], dtris))])
    with pytest.raises(NavMeshError, match="out of range"):
        parse_navmesh(data, name=NAME)


@pytest.mark.parametrize(
    "data",
    [
        file_bytes([]),  # no tiles
        file_bytes([tile_bytes(rect(0, 0, 1, 1), [])]),  # a tile without polygons
        file_bytes([tile_bytes(rect(0, 0, 1, 1), [], offmesh=[((0, 0, 0), (1, 0, 1))])]),  # off-mesh only
    ],
)
def test_zero_polygons_raise(data):
    with pytest.raises(NavMeshError, match="no polygons"):
        parse_navmesh(data, name=NAME)


@pytest.mark.parametrize(
    "data",
    [
        two_squares_file(version=1),
        two_squares_file(version=2),
        two_tile_file(),
        file_bytes(
            [tile_bytes(rect(0, 0, 1, 1), [[0, 1, 2, 3]], detail="fan", max_links=4, link_size=16)],
            ref64=True,
            refs=[1 << 48],
        ),
    ],
    ids=["v1", "v2", "two-tiles", "64-bit-refs"],
)
def test_every_truncation_raises_navmesh_error(data):
    parse_navmesh(data, name=NAME)  # the whole file is valid
    for n in range(len(data)):
        with pytest.raises(NavMeshError, match=NAME):
            parse_navmesh(data[:n], name=NAME)


@pytest.mark.filterwarnings("error")
def test_corrupted_bytes_raise_only_navmesh_error():
    data = bytearray(two_tile_file())
    rng = np.random.default_rng(1234)
    outcomes = {"parsed": 0, "rejected": 0}
    for _ in range(250):
        bad = bytearray(data)
        for pos in rng.integers(0, len(bad), size=rng.integers(1, 4)):
            bad[pos] = int(rng.integers(0, 256))
        try:
            m = parse_navmesh(bytes(bad), name=NAME)
        except NavMeshError:
            outcomes["rejected"] += 1
            continue
        outcomes["parsed"] += 1
        m.islands(), m.area_m2  # a mesh that parses is usable
    assert min(outcomes.values()) > 10, outcomes


def test_read_navmesh_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_navmesh(tmp_path / "missing.navmesh")


# ---------------------------------------------------------------------- rasterisation


def test_grid_of_rectangle_area_and_height():
    m = make_navmesh(vertices=rect(0, 0, 2, 3, 0.7), polygons=[[0, 1, 2, 3]])
    g = navmesh_to_grid(m, cell_size=0.05)
    assert isinstance(g, NavGrid) and g.config is None
    assert int(g.walkable.sum()) == 40 * 60 and g.area_m2 == pytest.approx(6.0)
    np.testing.assert_allclose(g.height[g.walkable], 0.7, atol=1e-6)
    assert np.all(np.isnan(g.height[~g.walkable]))
    assert not g.walkable[0].any() and not g.walkable[-1].any()  # an empty border
    assert g.is_navigable(np.array([[1.0, 0.7, 1.5], [0.01, 0.7, 2.99], [2.2, 0.7, 1.0]])).tolist() == [
        True,
        True,
        False,
    ]
    assert g.max_climb == pytest.approx(0.2)
    # Off the cell lattice, the area is within half a cell of the perimeter.
    shifted = make_navmesh(vertices=rect(0.013, -0.031, 2.013, 2.969, 0.7), polygons=[[0, 1, 2, 3]])
    assert navmesh_to_grid(shifted).area_m2 == pytest.approx(6.0, abs=10 * 0.025)


def test_grid_interpolates_sloped_triangle():
    def plane(x, z):
        return 0.1 + 0.5 * x + 0.25 * z

    v = [(x, plane(x, z), z) for x, z in [(0.0, 0.0), (0.0, 3.0), (4.0, 0.0)]]
    m = make_navmesh(vertices=v, polygons=[[0, 1, 2]])
    g = navmesh_to_grid(m, cell_size=0.05)
    pts = g.cell_centers()
    np.testing.assert_allclose(pts[:, 1], plane(pts[:, 0], pts[:, 2]), atol=1e-5)
    assert g.area_m2 == pytest.approx(6.0, abs=12 * 0.025)  # perimeter 12 m


def test_grid_keeps_lowest_floor_and_largest_island():
    floors = rect(0, 0, 2, 3, 1.0) + rect(0, 0, 2, 3, 0.0) + rect(5, 0, 6, 1, 2.0)
    m = make_navmesh(vertices=floors, polygons=[[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]])
    both = navmesh_to_grid(m, largest_island=False)
    assert both.area_m2 == pytest.approx(7.0)
    rows, cols = both.to_cell(np.array([[1.0, 1.0]]))
    assert both.height[rows[0], cols[0]] == pytest.approx(0.0)  # the lower of the two stacked floors
    one = navmesh_to_grid(m, largest_island=True)  # the stacked floors tie on area; island 0 is polygon 0's
    assert one.area_m2 == pytest.approx(6.0)
    np.testing.assert_allclose(one.height[one.walkable], 1.0)


def cross2(u, w) -> float:
    return float(u[0] * w[1] - u[1] * w[0])


def brute_force_grid(xyz, origin, cell, shape):
    """Per cell, per triangle: sign tests and the plane through the corners (slow reference)."""
    nz, nx = shape
    out = np.full(shape, np.nan)
    for r in range(nz):
        for c in range(nx):
            p = np.array([origin[0] + c * cell, origin[1] + r * cell])
            for t in xyz:
                a, b, d = t[0, [0, 2]], t[1, [0, 2]], t[2, [0, 2]]
                s = [cross2(b - a, p - a), cross2(d - b, p - b), cross2(a - d, p - d)]
                if not (min(s) >= 0 or max(s) <= 0):
                    continue
                coef = np.linalg.solve(np.c_[t[:, [0, 2]], np.ones(3)], t[:, 1])  # y = ax + bz + c
                y = coef[0] * p[0] + coef[1] * p[1] + coef[2]
                out[r, c] = y if np.isnan(out[r, c]) else min(out[r, c], y)
    return out


@pytest.mark.parametrize("chunk", [1 << 20, 7])
def test_rasterise_matches_brute_force(monkeypatch, chunk):
    monkeypatch.setattr(raster, "_RASTER_CHUNK", chunk)
    rng = np.random.default_rng(7)
    xyz = np.empty((16, 3, 3))
    xyz[:, :, [0, 2]] = rng.uniform(0, 1.5, size=(16, 1, 2)) + rng.uniform(-0.5, 0.5, size=(16, 3, 2))
    xyz[:, :, 1] = rng.uniform(-1, 1, size=(16, 3))
    origin, cell, shape = np.array([0.21, 0.32]), 0.13, (10, 9)  # many triangles stick out of the grid
    got = raster._rasterise(xyz, origin, cell, shape)
    want = brute_force_grid(xyz, origin, cell, shape)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[~np.isnan(got)], want[~np.isnan(want)], atol=1e-5)


def test_rasterising_many_triangles_is_vectorised():
    n = 250  # 250 x 200 quads of 0.1 m = 100,000 triangles
    xs, zs = np.meshgrid(np.arange(n + 1) * 0.1, np.arange(201) * 0.1)
    v = np.stack([xs.ravel(), 0.05 * np.sin(xs.ravel()), zs.ravel()], axis=1)
    i = (np.arange(200)[:, None] * (n + 1) + np.arange(n)[None, :]).ravel()
    m = make_navmesh(vertices=v, polygons=np.stack([i, i + n + 1, i + n + 2, i + 1], axis=1))
    assert m.triangles().shape[0] == 100_000 and m.islands()[0] == 1
    t0 = time.perf_counter()
    g = navmesh_to_grid(m, cell_size=0.05)
    assert time.perf_counter() - t0 < 8.0  # a per-triangle Python loop takes far longer
    assert g.area_m2 == pytest.approx(25.0 * 20.0)


def test_grid_rejects_bad_cell_size_and_huge_grids():
    m = make_navmesh(vertices=rect(0, 0, 2, 3), polygons=[[0, 1, 2, 3]])
    with pytest.raises(ValueError, match="cell_size"):
        navmesh_to_grid(m, cell_size=0.0)
    huge = make_navmesh(vertices=rect(0, 0, 5000, 5000), polygons=[[0, 1, 2, 3]])
    with pytest.raises(ValueError, match="increase cell_size"):
        navmesh_to_grid(huge, cell_size=0.05)


def test_navmesh_validates_on_construction():
    import dataclasses

    m = make_navmesh(vertices=rect(0, 0, 2, 3), polygons=[[0, 1, 2, 3]])
    with pytest.raises(ValueError, match="index the 4 vertices"):
        dataclasses.replace(m, polygons=[[0, 1, 2, 4, -1, -1]])
    with pytest.raises(ValueError, match="vert_count"):
        dataclasses.replace(m, vert_count=[7])
    with pytest.raises(ValueError, match="neighbours"):
        dataclasses.replace(m, neighbours=[[0, 1]])
    with pytest.raises(ValueError, match="unknown settings"):
        dataclasses.replace(m, settings={"radius": 1.0})
    with pytest.raises(ValueError, match="finite"):
        dataclasses.replace(m, vertices=np.full((4, 3), np.nan))
