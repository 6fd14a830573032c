"""Tests of envsim.nav.pathfind: Detour-style geodesics and straight paths on a navmesh.

The reference is independent of the module: on flat meshes the shortest walk between two points of a union
of convex polygons is the shortest path in its visibility graph (start, goal and polygon vertices joined
where the straight segment stays inside the union), solved here with a plain Dijkstra.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time

import numpy as np
import pytest

from envsim.nav.navmesh import NavMesh, make_navmesh, navmesh_to_grid
from envsim.nav.trajectory import TrajectoryConfig, sample_trajectories

EPS = 1e-9


# ---------------------------------------------------------------------- the reference


def cross(u, w) -> float:
    return float(u[0] * w[1] - u[1] * w[0])


def polygons_xz(mesh: NavMesh) -> list[np.ndarray]:
    """Each polygon's (x, z) corners, counter-clockwise."""
    out = []
    for row, n in zip(mesh.polygons, mesh.vert_count):
        p = mesh.vertices[row[:n]][:, [0, 2]].astype(np.float64)
        area = sum(cross(p[i], p[(i + 1) % n]) for i in range(n))
        out.append(p if area > 0 else p[::-1])
    return out


def inside_any(polys: list[np.ndarray], q) -> bool:
    """Whether (x, z) point q lies in (or on) one of the convex counter-clockwise polygons."""
    for p in polys:
        if all(cross(p[(i + 1) % len(p)] - p[i], q - p[i]) >= -EPS for i in range(len(p))):
            return True
    return False


def segment_inside(polys: list[np.ndarray], a, b) -> bool:
    """Whether segment a-b stays in the union: split it where it meets any polygon edge or vertex; between two
    splits it crosses no edge, so each piece is in or out as a whole, which its midpoint tells."""
    d = b - a
    ts = {0.0, 1.0}
    for p in polys:
        for i in range(len(p)):
            v, w = p[i], p[(i + 1) % len(p)]
            e = w - v
            den = cross(d, e)
            if abs(den) > EPS:
                t, s = cross(v - a, e) / den, cross(v - a, d) / den
                if -EPS <= t <= 1 + EPS and -EPS <= s <= 1 + EPS:
                    ts.add(min(max(t, 0.0), 1.0))
            dd = float(d @ d)
            if dd > 0:
                t = float((v - a) @ d) / dd
                if 0 <= t <= 1 and np.linalg.norm(a + t * d - v) < 1e-9:
                    ts.add(t)
    ts = sorted(ts)
    return all(inside_any(polys, a + 0.5 * (t0 + t1) * d) for t0, t1 in itertools.pairwise(ts))


def visibility_distance(mesh: NavMesh, start, goal) -> float:
    """Shortest walk in the (x, z) plane from start to goal inside the mesh's polygons (inf if none)."""
    polys = polygons_xz(mesh)
    corners = np.unique(np.round(np.concatenate(polys), 9), axis=0)
    nodes = [np.asarray(start, float)[[0, 2]], np.asarray(goal, float)[[0, 2]], *corners]
    best = [math.inf] * len(nodes)
    best[0] = 0.0
    heap = [(0.0, 0)]
    done = set()
    while heap:
        dist, i = heapq.heappop(heap)
        if i in done:
            continue
        done.add(i)
        if i == 1:
            return dist
        for j in range(len(nodes)):
            if j in done:
                continue
            step = float(np.linalg.norm(nodes[j] - nodes[i]))
            if dist + step < best[j] and segment_inside(polys, nodes[i], nodes[j]):
                best[j] = dist + step
                heapq.heappush(heap, (best[j], j))
    return math.inf


def sample_on(mesh: NavMesh, rng: np.random.Generator, n: int, polygons=None) -> np.ndarray:
    """n points uniformly distributed over the (fan triangles of the) given polygons, (n, 3)."""
    tris, owner = mesh.triangles(), mesh.triangle_polygon()
    if polygons is not None:
        keep = np.isin(owner, polygons)
        tris = tris[keep]
    xyz = mesh.vertices.astype(np.float64)[tris]
    e1, e2 = (xyz[:, 1] - xyz[:, 0])[:, [0, 2]], (xyz[:, 2] - xyz[:, 0])[:, [0, 2]]
    area = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
    k = rng.choice(len(tris), size=n, p=area / area.sum())
    u, v = rng.random(n), rng.random(n)
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    t = xyz[k]
    return t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + v[:, None] * (t[:, 2] - t[:, 0])


def path_length(path: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum())


# ---------------------------------------------------------------------- hand-made meshes


def flat(points):
    return np.array([(x, 0.0, z) for x, z in points], np.float64)


def two_rooms():
    """Rooms [0, 4] x [0, 3] and [4.3, 8] x [0, 3], three strips each, joined by a door z in [1, 2]."""
    xs = [0.0, 4.0, 4.3, 8.0]
    pts = [(x, z) for x in xs for z in (0.0, 1.0, 2.0, 3.0)]
    vid = {p: i for i, p in enumerate(pts)}
    polys = []
    for x0, x1 in ((0.0, 4.0), (4.3, 8.0)):
        for z0, z1 in ((0.0, 1.0), (1.0, 2.0), (2.0, 3.0)):
            polys.append([vid[(x0, z0)], vid[(x0, z1)], vid[(x1, z1)], vid[(x1, z0)]])
    polys.append([vid[(4.0, 1.0)], vid[(4.0, 2.0)], vid[(4.3, 2.0)], vid[(4.3, 1.0)]])
    return make_navmesh(vertices=flat(pts), polygons=polys)


def l_corridor():
    """A 1 m wide L: an arm up z, two triangles at the corner, a pentagon along x; wound against Detour's
    winding (two_rooms follows it)."""
    pts = [(0, 0), (1, 0), (1, 4), (0, 4), (1, 5), (0, 5), (5, 4), (5.5, 4.5), (5, 5)]
    polys = [[0, 1, 2, 3], [3, 2, 4], [3, 4, 5], [2, 6, 7, 8, 4]]
    return make_navmesh(vertices=flat(pts), polygons=polys)


def islands():
    pts = [(0, 0), (0, 2), (2, 2), (2, 0), (5, 0), (5, 1), (6, 1), (6, 0)]
    return make_navmesh(vertices=flat(pts), polygons=[[0, 1, 2, 3], [4, 5, 6, 7]])


def fans(polygons, counts, detail_base=None):
    """Fan triangles (v0, v[j-1], v[j]) of padded polygons, optionally indexing detail copies of the corners."""
    tris, owner = [], []
    for k, (row, n) in enumerate(zip(polygons, counts)):
        idx = row[:n] if detail_base is None else detail_base[k] + np.arange(n)
        for j in range(2, n):
            tris.append([idx[0], idx[j - 1], idx[j]])
            owner.append(k)
    return np.asarray(tris, np.int32), np.asarray(owner, np.int32)


def tiled(pts, quads, neighbours, tile) -> NavMesh:
    """A flat mesh of quads with the given polygon links (as Detour links tiles), fans as detail mesh."""
    polys = np.full((len(quads), 6), -1, np.int32)
    polys[:, :4] = quads
    counts = np.full(len(quads), 4, np.int32)
    tris, owner = fans(polys, counts)
    return NavMesh(vertices=flat(pts), polygons=polys, vert_count=counts, neighbours=neighbours,
                   detail_triangles=tris, detail_polygon=owner, flags=np.ones(len(quads)),
                   areas=np.zeros(len(quads)), tile=tile)


def two_tiles():
    """Tile 0: [0, 2] x [0, 3]; tile 1: [2, 4] x [-1, 1] and [2, 4] x [2.5, 4]. No vertex is shared across
    x = 2: each tile-1 quad overlaps the tile-0 edge over part of its own edge only (z in [0, 1] and in
    [2.5, 3]: partial portals), joined as Detour joins tile borders; make_navmesh alone would not join them."""
    pts = [(0, 0), (0, 3), (2, 3), (2, 0), (2, -1), (2, 1), (4, 1), (4, -1), (2, 2.5), (2, 4), (4, 4), (4, 2.5)]
    return tiled(pts, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]], [[0, 1], [0, 2]], [0, 1, 1])


def t_junction():
    """Tile 0: [0, 2] x [0, 3]; tile 1: [2, 4] x [1, 2.5] and [2, 4] x [2.5, 4]: three polygons all joined to
    each other (a cycle in the polygon graph; the top quad overlaps tile 0 over z in [2.5, 3] only)."""
    pts = [(0, 0), (0, 3), (2, 3), (2, 0), (2, 1), (2, 2.5), (4, 2.5), (4, 1), (2, 4), (4, 4)]
    return tiled(pts, [[0, 1, 2, 3], [4, 5, 6, 7], [5, 8, 9, 6]], [[0, 1], [0, 2], [1, 2]], [0, 1, 1])


MESHES = {"two-rooms": two_rooms, "l-corridor": l_corridor, "two-tiles": two_tiles}


@pytest.mark.parametrize("name", MESHES)
@pytest.mark.parametrize("seed", [0, 1])
def test_geodesics_match_the_visibility_graph(name, seed):
    mesh = MESHES[name]()
    rng = np.random.default_rng(seed)
    pts = sample_on(mesh, rng, 9)
    for start in pts[:3]:
        got = mesh.geodesic_distance(start, pts[3:])
        want = [visibility_distance(mesh, start, g) for g in pts[3:]]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
        for goal, d in zip(pts[3:], got):
            path = mesh.shortest_path(start, goal)
            np.testing.assert_allclose(path[[0, -1]], [start, goal], atol=1e-9)
            assert path_length(path) == pytest.approx(d, abs=1e-12)
            assert mesh.geodesic_distance(goal, start[None])[0] == pytest.approx(d, abs=1e-6)  # symmetric


def test_paths_bend_at_the_door_and_the_corner():
    rooms = two_rooms()
    path = rooms.shortest_path([1.0, 0.0, 0.5], [7.0, 0.0, 2.5])  # straight through the door
    np.testing.assert_allclose(path, [[1, 0, 0.5], [7, 0, 2.5]], atol=1e-12)
    path = rooms.shortest_path([3.9, 0.0, 0.1], [4.4, 0.0, 2.9])  # round both door posts
    np.testing.assert_allclose(path, [[3.9, 0, 0.1], [4, 0, 1], [4.3, 0, 2], [4.4, 0, 2.9]], atol=1e-12)
    corridor = l_corridor()
    path = corridor.shortest_path([0.5, 0.0, 0.5], [4.5, 0.0, 4.5])
    np.testing.assert_allclose(path, [[0.5, 0, 0.5], [1, 0, 4], [4.5, 0, 4.5]], atol=1e-12)
    assert corridor.geodesic_distance([0.5, 0, 0.5], [[4.5, 0, 4.5]])[0] == pytest.approx(2 * math.hypot(0.5, 3.5))


def test_partial_tile_portal_is_clipped_to_the_overlap():
    mesh = two_tiles()
    path = mesh.shortest_path([1.0, 0.0, 0.5], [3.0, 0.0, 3.9])  # must pass the top quad's overlap z in [2.5, 3]
    np.testing.assert_allclose(path, [[1, 0, 0.5], [2, 0, 2.5], [3, 0, 3.9]], atol=1e-12)
    path = mesh.shortest_path([0.5, 0.0, 2.9], [3.5, 0.0, 3.8])  # over the overlap, then round its top end
    np.testing.assert_allclose(path, [[0.5, 0, 2.9], [2, 0, 3], [3.5, 0, 3.8]], atol=1e-12)
    path = mesh.shortest_path([1.0, 0.0, 2.5], [3.0, 0.0, -0.9])  # straight over the bottom overlap, z in [0, 1]
    np.testing.assert_allclose(path, [[1, 0, 2.5], [3, 0, -0.9]], atol=1e-12)
    path = mesh.shortest_path([1.0, 0.0, 2.5], [2.2, 0.0, -0.9])  # round its end at z = 0
    np.testing.assert_allclose(path, [[1, 0, 2.5], [2, 0, 0], [2.2, 0, -0.9]], atol=1e-12)


def test_corridor_is_chosen_by_portal_midpoints_as_detour_does():
    """Where the polygon graph has a cycle the corridor is the one of least midpoint cost, and its string-pulled
    path can be longer than the true shortest walk, in Detour (and so in Habitat) as here.

    From s = (0.0566, 0.0932) in the left quad to g = (3.3412, 3.5563) in the top quad: straight to the
    top quad through the midpoint (2, 2.75) of their portal costs 3.2931 + 1.5651 = 4.8582; through the
    lower quad, midpoints (2, 1.75) and (3, 2.5), it costs 2.5536 + 1.25 + 1.1094 = 4.9130. Detour's A*
    reaches the same choice (it pops the lower quad first, f = 2.5536 + 0.999 * 2.2513, but through it the
    top quad costs 2.5536 + 1 + 1.5651 = 5.1187 > 4.8582), so the path bends at (2, 2.5): 4.8007 m where
    the straight line, which the mesh allows, is 4.7730 m."""
    mesh = t_junction()
    s, g = np.array([0.05663934, 0.0, 0.09317451]), np.array([3.34124883, 0.0, 3.55631498])
    np.testing.assert_allclose(mesh.shortest_path(s, g), [s, [2, 0, 2.5], g], atol=1e-12)
    d = mesh.geodesic_distance(s, g[None])[0]
    assert d == pytest.approx(math.dist(s, [2, 0, 2.5]) + math.dist([2, 0, 2.5], g), abs=1e-12)
    shortest = visibility_distance(mesh, s, g)
    assert shortest == pytest.approx(math.dist(s, g), abs=1e-9) and shortest < d - 0.02
    rng = np.random.default_rng(0)
    pts = sample_on(mesh, rng, 8)
    for a, b in zip(pts[:4], pts[4:]):  # never shorter than the true shortest walk
        assert mesh.geodesic_distance(a, b[None])[0] >= visibility_distance(mesh, a, b) - 1e-9


def test_other_island_and_far_points_are_unreachable():
    mesh = islands()
    d = mesh.geodesic_distance([1.0, 0.0, 1.0], [[5.5, 0.0, 0.5], [1.5, 0.0, 1.5], [1.0, 0.0, 9.0]])
    assert np.isinf(d[0]) and d[1] == pytest.approx(math.sqrt(0.5)) and np.isinf(d[2])
    assert mesh.shortest_path([1.0, 0.0, 1.0], [5.5, 0.0, 0.5]).shape == (0, 3)
    assert mesh.shortest_path([9.0, 0.0, 9.0], [1.0, 0.0, 1.0]).shape == (0, 3)  # start snaps to nothing
    assert np.isinf(mesh.geodesic_distance([1.0, 9.0, 1.0], [[1.5, 0.0, 1.5]])).all()  # 9 m above: out of reach
    same = mesh.shortest_path([1.0, 0.0, 1.0], [1.0, 0.0, 1.0])
    assert same.shape == (2, 3) and path_length(same) == 0.0


def test_snapping_uses_habitats_search_box_and_prefers_the_floor_below():
    mesh = islands()
    np.testing.assert_allclose(mesh.snap_point([-0.5, 0.3, 1.0]), [0.0, 0.0, 1.0])  # off the side: the outline
    np.testing.assert_allclose(mesh.snap_point([1.0, 3.9, 1.0]), [1.0, 0.0, 1.0])  # within 4 m above
    assert np.isnan(mesh.snap_point([1.0, 4.1, 1.0])).all()
    assert np.isnan(mesh.snap_point([-2.1, 0.0, 1.0])).all()  # more than 2 m off in x
    d = mesh.geodesic_distance([-0.5, 0.0, 1.0], [[2.0, 0.0, 1.0]])
    assert d[0] == pytest.approx(2.0)  # measured from the snapped start
    # two floors 3 m apart over the same square: the one the point stands on (within the climb) wins
    pts = [(0, 0, 0), (0, 0, 2), (2, 0, 2), (2, 0, 0), (0, 3, 0), (0, 3, 2), (2, 3, 2), (2, 3, 0)]
    stacked = make_navmesh(vertices=np.array(pts, float), polygons=[[0, 1, 2, 3], [4, 5, 6, 7]])
    np.testing.assert_allclose(stacked.snap_point([[1, 2.8, 1], [1, 0.4, 1], [1, 1.4, 1]]),
                               [[1, 3, 1], [1, 0, 1], [1, 0, 1]])


def test_path_heights_lie_on_the_detail_mesh():
    """The L corridor with its polygon corners all at y = 0 (as Recast quantises them) but a detail mesh that
    rises 0.1 m per metre of x: path points, ends included, take the detail heights."""
    flat_l = l_corridor()
    nv = flat_l.vert_count
    base = np.concatenate([[0], np.cumsum(nv)[:-1]]) + flat_l.vertices.shape[0]
    detail = np.concatenate([flat_l.vertices[row[:n]] for row, n in zip(flat_l.polygons, nv)]).astype(np.float64)
    detail[:, 1] = 0.1 * detail[:, 0]
    tris, owner = fans(flat_l.polygons, nv, detail_base=base)
    mesh = NavMesh(vertices=np.concatenate([flat_l.vertices, detail]), polygons=flat_l.polygons, vert_count=nv,
                   neighbours=flat_l.neighbours, detail_triangles=tris, detail_polygon=owner, flags=flat_l.flags,
                   areas=flat_l.areas, tile=flat_l.tile)
    path = mesh.shortest_path([0.5, 0.0, 0.5], [4.5, 0.0, 4.5])
    np.testing.assert_allclose(path[:, [0, 2]], [[0.5, 0.5], [1, 4], [4.5, 4.5]], atol=1e-12)
    np.testing.assert_allclose(path[:, 1], 0.1 * path[:, 0], atol=1e-6)
    assert mesh.geodesic_distance([0.5, 0.0, 0.5], [[4.5, 0.0, 4.5]])[0] == pytest.approx(path_length(path))
    assert path_length(path) > 2 * math.hypot(0.5, 3.5)  # climbing 0.4 m adds to the flat length
    rng = np.random.default_rng(3)
    for a, b in zip(sample_on(flat_l, rng, 5), sample_on(flat_l, rng, 5)):
        p = mesh.shortest_path(a, b)
        np.testing.assert_allclose(p[:, 1], 0.1 * p[:, 0], atol=1e-6)


def test_pyramid_detail_mesh_heights():
    """A 2 x 2 m square at y = 0 whose detail mesh raises its centre to 0.5 m (as in test_navmesh)."""
    verts = np.array([(0, 0, 0), (0, 0, 2), (2, 0, 2), (2, 0, 0), (1, 0.5, 1)], np.float64)
    mesh = NavMesh(vertices=verts, polygons=[[0, 1, 2, 3, -1, -1]], vert_count=[4], neighbours=np.zeros((0, 2)),
                   detail_triangles=[[0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]], detail_polygon=[0, 0, 0, 0],
                   flags=[1], areas=[0], tile=[0])
    xz = np.random.default_rng(0).uniform(0, 2, (20, 2))
    snapped = mesh.snap_point(np.stack([xz[:, 0], np.zeros(20), xz[:, 1]], axis=1))
    want = 0.5 * (1 - np.maximum(np.abs(xz[:, 0] - 1), np.abs(xz[:, 1] - 1)))
    np.testing.assert_allclose(snapped[:, 1], want, atol=1e-12)
    path = mesh.shortest_path([0.5, 0, 1.0], [1.5, 0, 1.0])
    np.testing.assert_allclose(path, [[0.5, 0.25, 1], [1.5, 0.25, 1]], atol=1e-12)


def test_unwalkable_polygons_are_skipped():
    mesh = two_rooms()
    door = mesh.n_polygons - 1
    flags = np.ones(mesh.n_polygons, np.uint16)
    flags[door] = 0x04  # Habitat's disabled flag, without the walkable one
    closed = make_navmesh(vertices=mesh.vertices, polygons=mesh.polygons, flags=flags)
    assert np.isinf(closed.geodesic_distance([1, 0, 1.5], [[7, 0, 1.5]])[0])
    assert closed.snap_point([4.15, 0, 1.5])[0] == pytest.approx(4.0)  # snaps beside the door, not onto it


# ---------------------------------------------------------------------- a generated house


def lattice_navmesh(nav, factor: int = 4) -> NavMesh:
    """Quads of factor x factor grid cells wherever all of them are walkable, on a shared vertex lattice."""
    nz, nx = nav.walkable.shape
    nz, nx = nz // factor, nx // factor
    ok = nav.walkable[: nz * factor, : nx * factor].reshape(nz, factor, nx, factor).all(axis=(1, 3))
    rows, cols = np.nonzero(ok)
    size = factor * nav.cell_size
    x0, z0 = nav.origin - nav.cell_size / 2
    vid = np.arange((nz + 1) * (nx + 1)).reshape(nz + 1, nx + 1)
    gz, gx = np.meshgrid(np.arange(nz + 1), np.arange(nx + 1), indexing="ij")
    vx, vz = x0 + gx.ravel() * size, z0 + gz.ravel() * size
    h = nav.floor_height(np.stack([vx, vz], axis=1) + 1e-4)
    verts = np.stack([vx, np.nan_to_num(h, nan=0.0), vz], axis=1)
    quads = np.stack([vid[rows, cols], vid[rows + 1, cols], vid[rows + 1, cols + 1], vid[rows, cols + 1]], axis=1)
    used = np.unique(quads)
    remap = np.full(vid.size, -1)
    remap[used] = np.arange(used.size)
    return make_navmesh(vertices=verts[used], polygons=remap[quads], source="procedural house lattice")


@pytest.fixture(scope="module")
def house(tmp_path_factory):
    from envsim.nav.build import build_navgrid
    from envsim.scenes.load import load_scene
    from envsim.scenes.procedural import generate_house, write_house

    glb, _ = write_house(generate_house(rng=np.random.default_rng(0)), tmp_path_factory.mktemp("house") / "h.glb")
    scene = load_scene(glb)
    mesh = lattice_navmesh(build_navgrid(scene.vertices, scene.faces))
    return mesh, navmesh_to_grid(mesh, cell_size=0.05)


def on_polygons(mesh: NavMesh, xz: np.ndarray) -> np.ndarray:
    """bool (S,): each (x, z) point lies in (or within 1e-6 m of) some polygon."""
    polys = polygons_xz(mesh)
    k = max(len(p) for p in polys)
    v = np.stack([np.concatenate([p, np.repeat(p[-1:], k - len(p), axis=0)]) for p in polys])  # (P, k, 2)
    e = np.roll(v, -1, axis=1) - v  # (P, k, 2); padding repeats the last corner: zero edges, no constraint
    tol = 1e-6 * np.linalg.norm(e, axis=2)  # (P, k)
    ok = np.zeros(len(xz), bool)
    for s in range(0, len(xz), 256):
        w = xz[s : s + 256, None, None, :] - v[None]  # (S, P, k, 2)
        c = e[None, ..., 0] * w[..., 1] - e[None, ..., 1] * w[..., 0]
        ok[s : s + 256] = np.any(np.all(c >= -tol[None], axis=2), axis=1)
    return ok


def test_house_paths_stay_on_the_mesh_and_beat_the_grid(house):
    mesh, grid = house
    assert mesh.n_polygons > 500
    _, labels = mesh.islands()
    rng = np.random.default_rng(0)
    pts = sample_on(mesh, rng, 13, polygons=np.flatnonzero(labels == 0))
    start, goals = pts[0], pts[1:]
    t0 = time.perf_counter()
    geo = mesh.geodesic_distance(start, goals)
    elapsed = time.perf_counter() - t0
    grid_d = grid.geodesic_distance(start, goals)
    straight = np.linalg.norm(goals - start, axis=1)
    slack = 2 * math.sqrt(2) * grid.cell_size / 2  # grid distances run between the two cells' centres
    assert np.all(np.isfinite(geo)) and np.all(np.isfinite(grid_d))
    assert np.all(geo >= straight - 1e-9)
    assert np.all(geo <= grid_d + slack), np.c_[geo, grid_d]
    assert np.mean(geo / grid_d) < 0.99  # the grid's 8-connected walk is measurably longer
    along = []
    for goal, d in zip(goals, geo):
        path = mesh.shortest_path(start, goal)
        assert path_length(path) == pytest.approx(d, abs=1e-9)
        for a, b in itertools.pairwise(path):  # points every centimetre along every segment
            n = max(2, math.ceil(np.linalg.norm((b - a)[[0, 2]]) / 0.01) + 1)
            along.append(a[[0, 2]] + np.linspace(0, 1, n)[:, None] * (b - a)[[0, 2]])
        np.testing.assert_allclose(mesh.snap_point(path), path, atol=1e-9)  # every point on the mesh
    assert on_polygons(mesh, np.concatenate(along)).all()
    assert not on_polygons(mesh, np.array([[100.0, 100.0], [start[0], start[2] + 50.0]])).any()
    assert elapsed < 5.0


def test_tours_on_a_navmesh_walk_its_paths(house):
    mesh, grid = house
    config = TrajectoryConfig(mode="tour", views=90, views_per_trajectory=30, step_size=0.25, starts_by_room=False)
    traj = sample_trajectories(grid, config=config, rng=np.random.default_rng(0), navmesh=mesh)
    again = sample_trajectories(grid, config=config, rng=np.random.default_rng(0), navmesh=mesh)
    np.testing.assert_array_equal(traj.position, again.position)
    floor = traj.position - [0.0, config.camera_height, 0.0]
    np.testing.assert_allclose(mesh.snap_point(floor), floor, atol=1e-9)  # on the mesh, at its heights
    same = traj.trajectory[1:] == traj.trajectory[:-1]
    step = np.linalg.norm(np.diff(floor[:, [0, 2]], axis=0), axis=1)[same]
    moved = step[step > 1e-9]
    assert moved.size > 40
    assert np.all(moved <= config.step_size + 1e-9)
    assert np.median(moved) == pytest.approx(config.step_size, abs=1e-9)
    plain = sample_trajectories(grid, config=config, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(plain.position,
                                  sample_trajectories(grid, config=config, rng=np.random.default_rng(0),
                                                      navmesh=None).position)


def test_query_is_cached_on_the_mesh():
    mesh = two_rooms()
    mesh.geodesic_distance([1, 0, 1], [[7, 0, 1]])
    query = mesh.__dict__.get("_query")
    assert query is not None and query.portals.shape == (6, 2, 3)
    mesh.shortest_path([1, 0, 1], [7, 0, 1])
    assert mesh.__dict__["_query"] is query
