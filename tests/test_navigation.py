"""Tests of envsim.nav.grid: navigable space from meshes, paths, geodesics and I/O."""

from __future__ import annotations

import heapq
import itertools
import math

import numpy as np
import pytest
import trimesh

from envsim.nav.build import build_navgrid
from envsim.nav.grid import NavConfig, NavGrid

CELL = 0.05
RADIUS = 0.1


# ---------------------------------------------------------------------- scene builders


def box(lo, hi) -> trimesh.Trimesh:
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    b = trimesh.creation.box(extents=hi - lo)
    b.apply_translation((lo + hi) / 2)
    return b


def quad(corners) -> trimesh.Trimesh:
    """A single-sheet rectangle (two triangles) through four corners given in order."""
    return trimesh.Trimesh(vertices=np.asarray(corners, float), faces=[[0, 1, 2], [0, 2, 3]], process=False)


def mesh(parts) -> tuple[np.ndarray, np.ndarray]:
    m = trimesh.util.concatenate(list(parts))
    return np.asarray(m.vertices, dtype=np.float64), np.asarray(m.faces, dtype=np.int64)


def room_parts(w: float, d: float, *, h: float = 2.6, t: float = 0.1, x0: float = 0.0, z0: float = 0.0):
    """Closed room with interior [x0, x0 + w] x [z0, z0 + d]: floor slab, ceiling slab, four thick walls."""
    x1, z1 = x0 + w, z0 + d
    return [
        box([x0 - t, -t, z0 - t], [x1 + t, 0, z1 + t]),
        box([x0 - t, h, z0 - t], [x1 + t, h + t, z1 + t]),
        box([x0 - t, 0, z0 - t], [x0, h, z1 + t]),
        box([x1, 0, z0 - t], [x1 + t, h, z1 + t]),
        box([x0, 0, z0 - t], [x1, h, z0]),
        box([x0, 0, z1], [x1, h, z1 + t]),
    ]


def two_rooms(door: float = 1.0, t: float = 0.1):
    """Two 3 m x 3 m rooms side by side along x (interiors [0, 3] and [3.1, 6.1] in x, [0, 3] in z), joined by
    a doorway of width ``door`` in the shared wall at z in [2.0 - door / 2, 2.0 + door / 2]."""
    w, d, h = 6.0 + t, 3.0, 2.6
    parts = [
        box([-t, -t, -t], [w + t, 0, d + t]),
        box([-t, h, -t], [w + t, h + t, d + t]),
        box([-t, 0, -t], [0, h, d + t]),
        box([w, 0, -t], [w + t, h, d + t]),
        box([0, 0, -t], [w, h, 0]),
        box([0, 0, d], [w, h, d + t]),
        # shared wall x in [3, 3.1] with a doorway (and a lintel above it)
        box([3.0, 0, 0], [3.0 + t, h, 2.0 - door / 2]),
        box([3.0, 0, 2.0 + door / 2], [3.0 + t, h, d]),
        box([3.0, 2.1, 2.0 - door / 2], [3.0 + t, h, 2.0 + door / 2]),
    ]
    return mesh(parts)


def walkable_extent(nav: NavGrid) -> tuple[np.ndarray, np.ndarray]:
    """(x, z) min and max of walkable cell borders."""
    c = nav.cell_centers()[:, [0, 2]]
    return c.min(axis=0) - nav.cell_size / 2, c.max(axis=0) + nav.cell_size / 2


def segment_is_navigable(nav: NavGrid, a: np.ndarray, b: np.ndarray, spacing: float = 0.004) -> bool:
    """Slow check: dense points on the segment all stand on walkable cells."""
    n = max(2, math.ceil(np.linalg.norm((b - a)[[0, 2]]) / spacing) + 1)
    xz = a[[0, 2]] + np.linspace(0, 1, n)[:, None] * (b - a)[[0, 2]]
    pts = np.stack([xz[:, 0], nav.floor_height(xz), xz[:, 1]], axis=1)
    return bool(nav.is_navigable(pts).all())


def floor_point(nav: NavGrid, x: float, z: float) -> np.ndarray:
    return np.array([x, nav.floor_height(np.array([[x, z]]))[0], z])


def path_length(path: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum())


# ---------------------------------------------------------------------- the walkable area


@pytest.mark.parametrize(
    "w, d, t, radius",
    [(4.0, 3.0, 0.1, 0.1), (4.0, 3.0, 0.1, 0.25), (3.33, 2.71, 0.131, 0.1), (3.33, 2.71, 0.131, 0.13)],
)
def test_empty_room_area_is_interior_minus_radius(w, d, t, radius):
    # The wall thickness t moves the walls off the cell borders; radius 0.13 is not a whole number of cells.
    nav = build_navgrid(*mesh(room_parts(w, d, t=t)), config=NavConfig(agent_radius=radius))
    expected = (w - 2 * radius) * (d - 2 * radius)
    perimeter = 2 * (w + d)
    assert abs(nav.area_m2 - expected) <= 0.6 * perimeter * CELL
    lo, hi = walkable_extent(nav)
    np.testing.assert_allclose(lo, [radius, radius], atol=CELL)
    np.testing.assert_allclose(hi, [w - radius, d - radius], atol=CELL)
    # Every walkable cell is on the floor (y = 0), not on the ceiling slab or a wall top.
    np.testing.assert_allclose(nav.height[nav.walkable], 0.0, atol=1e-5)
    assert nav.islands()[0] == 1


def test_drop_offs_keep_the_radius():
    # A 4 m x 3 m room whose floor has a 1 m x 1 m hole (a stairwell) at x in [1.5, 2.5], z in [1, 2].
    parts = room_parts(4.0, 3.0)
    parts[0] = box([-0.1, -0.1, -0.1], [1.5, 0, 3.1])
    parts += [
        box([2.5, -0.1, -0.1], [4.1, 0, 3.1]),
        box([1.5, -0.1, -0.1], [2.5, 0, 1]),
        box([1.5, -0.1, 2], [2.5, 0, 3.1]),
    ]
    nav = build_navgrid(*mesh(parts))
    grown_hole = (1 + 2 * RADIUS) ** 2 - (4 - math.pi) * RADIUS**2
    expected = (4 - 2 * RADIUS) * (3 - 2 * RADIUS) - grown_hole
    assert nav.area_m2 == pytest.approx(expected, abs=0.6 * (14 + 4) * CELL)
    c = nav.cell_centers()
    gap = np.maximum(np.abs(c[:, 0] - 2.0), np.abs(c[:, 2] - 1.5)) - 0.5  # Chebyshev distance to the hole
    assert gap.min() >= RADIUS - CELL / 2 - 1e-9
    # A free-standing platform: its edges are drop-offs too.
    slab = build_navgrid(*mesh([box([0, -0.1, 0], [3, 0, 2])]))
    assert slab.area_m2 == pytest.approx((3 - 2 * RADIUS) * (2 - 2 * RADIUS), abs=0.6 * 10 * CELL)


def test_ceiling_does_not_hide_floor_and_open_top_room_matches():
    with_ceiling = build_navgrid(*mesh(room_parts(3.0, 2.0)))
    open_top = build_navgrid(*mesh(p for i, p in enumerate(room_parts(3.0, 2.0)) if i != 1))
    assert with_ceiling.area_m2 > 0
    assert abs(with_ceiling.area_m2 - open_top.area_m2) <= 2 * (3 + 2) * CELL


def test_low_ceiling_leaves_only_the_roof():
    # A 1.2 m high room: its floor lacks the 1.5 m headroom, the roof slab on top (y = 1.3) has plenty.
    nav = build_navgrid(*mesh(room_parts(3.0, 3.0, h=1.2)))
    np.testing.assert_allclose(nav.height[nav.walkable], 1.3, atol=1e-4)
    tall = build_navgrid(*mesh(room_parts(3.0, 3.0, h=1.2)), config=NavConfig(agent_height=1.1))
    np.testing.assert_allclose(tall.height[tall.walkable], 0.0, atol=1e-4)


def test_face_winding_does_not_matter():
    v, f = mesh(room_parts(3.0, 2.0))
    a = build_navgrid(v, f)
    b = build_navgrid(v, f[:, ::-1].copy())
    np.testing.assert_array_equal(a.walkable, b.walkable)


def test_single_sheet_scan_keeps_its_floor_in_either_winding():
    """A scan-like room (single-sheet floor, walls and ceiling, no slabs) with its normals into the room and the
    same room wound inside out have the same walkable cells: the inverted one is recognised by its rooms."""
    room = trimesh.creation.box((4.0, 2.6, 3.0))
    room.apply_translation([2.0, 1.3, 1.5])
    room.invert()  # normals into the room: floor up, ceiling down
    v, f = np.asarray(room.vertices), np.asarray(room.faces)
    upright = build_navgrid(v, f)
    inverted = build_navgrid(v, f[:, ::-1].copy())
    assert upright.walkable.sum() > 0.8 * (4.0 * 3.0) / 0.05**2
    np.testing.assert_array_equal(upright.walkable, inverted.walkable)
    np.testing.assert_allclose(upright.height[upright.walkable], 0.0, atol=1e-6)


def test_table_cells_are_not_walkable_and_table_top_is_dropped():
    # A 1.2 m x 0.8 m table (top 0.72-0.76 m) on four legs in the middle of a 5 m x 4 m room.
    cx, cz = 2.5, 2.0
    parts = room_parts(5.0, 4.0) + [box([cx - 0.6, 0.72, cz - 0.4], [cx + 0.6, 0.76, cz + 0.4])]
    for sx in (-1, 1):
        for sz in (-1, 1):
            lx, lz = cx + sx * 0.55, cz + sz * 0.35
            parts.append(box([lx - 0.025, 0, lz - 0.025], [lx + 0.025, 0.72, lz + 0.025]))
    v, f = mesh(parts)
    nav = build_navgrid(v, f)
    # Under the table: no headroom, not walkable; the floor kept there is the table top.
    under = np.array([[cx + dx, cz + dz] for dx in np.linspace(-0.5, 0.5, 5) for dz in np.linspace(-0.3, 0.3, 3)])
    rows, cols = nav.to_cell(under)
    assert not nav.walkable[rows, cols].any()
    np.testing.assert_allclose(nav.height[rows, cols], 0.76, atol=1e-4)
    # Only the floor is kept, and it still surrounds the table.
    assert np.all(np.abs(nav.height[nav.walkable]) < 1e-4)
    for x, z in [(cx - 0.9, cz), (cx + 0.9, cz), (cx, cz - 0.7), (cx, cz + 0.7)]:
        assert nav.is_navigable(floor_point(nav, x, z)[None])[0]
    # Without the island filter the table top is a separate island, clear of its edges by the radius.
    every = build_navgrid(v, f, config=NavConfig(largest_island=False))
    n, labels = every.islands()
    assert n == 2
    top = labels == 1
    np.testing.assert_allclose(every.height[top], 0.76, atol=1e-4)
    assert abs(top.sum() * CELL**2 - (1.2 - 2 * RADIUS) * (0.8 - 2 * RADIUS)) <= 2 * (1.2 + 0.8) * CELL


def test_thin_single_sheet_wall_blocks_walking():
    # A 6 m x 3 m room split at x = 3 by a zero-thickness wall: vertical rays never hit it.
    parts = room_parts(6.0, 3.0) + [quad([[3, 0, 0], [3, 2.6, 0], [3, 2.6, 3], [3, 0, 3]])]
    v, f = mesh(parts)
    every = build_navgrid(v, f, config=NavConfig(largest_island=False))
    n, labels = every.islands()
    assert n == 2
    # Each half keeps the radius from the sheet.
    for k in range(2):
        xs = every.to_world(*np.nonzero(labels == k))[:, 0]
        gap = np.abs(xs - 3.0).min()
        assert RADIUS - CELL / 2 <= gap <= RADIUS + CELL
    a, b = floor_point(every, 1.5, 1.5), floor_point(every, 4.5, 1.5)
    assert np.isinf(every.geodesic_distance(a, b[None])[0])
    with pytest.raises(ValueError, match="cannot be reached"):
        every.shortest_path(a, b)
    kept = build_navgrid(v, f)
    assert abs(kept.area_m2 - (3 - 2 * RADIUS) * (3 - 2 * RADIUS)) <= 2 * (3 + 3) * CELL


def test_step_higher_than_max_climb_separates_islands_and_low_step_does_not():
    def scene(step: float):
        # 6 m x 3 m room whose half x > 3 is a raised platform of height ``step``.
        return mesh(room_parts(6.0, 3.0, h=3.0) + [box([3.0, 0, 0], [6.0, step, 3.0])])

    high = build_navgrid(*scene(0.3), config=NavConfig(largest_island=False))
    n, labels = high.islands()
    assert n == 2
    heights = sorted(float(np.median(high.height[labels == k])) for k in range(2))
    np.testing.assert_allclose(heights, [0.0, 0.3], atol=1e-4)
    a, b = floor_point(high, 1.5, 1.5), floor_point(high, 4.5, 1.5)
    assert np.isinf(high.geodesic_distance(a, b[None])[0])
    with pytest.raises(ValueError, match="cannot be reached"):
        high.shortest_path(a, b)
    # The ledge keeps the radius on both sides.
    xs = high.cell_centers()[:, 0]
    assert np.abs(xs - 3.0).min() >= RADIUS - CELL / 2 - 1e-9

    low = build_navgrid(*scene(0.1))
    a, b = floor_point(low, 1.5, 1.5), floor_point(low, 4.5, 1.5)
    assert low.islands()[0] == 1
    path = low.shortest_path(a, b)
    assert path_length(path) == pytest.approx(math.hypot(3.0, 0.1), abs=0.02)
    np.testing.assert_allclose(path[-1, 1], 0.1, atol=1e-4)


def test_slope_limit():
    def ramp(angle_deg: float):
        # A 4 m x 2 m plane tilted about the z axis, nothing else.
        s = 4.0 * math.tan(math.radians(angle_deg))
        return mesh([quad([[0, 0, 0], [0, 0, 2], [4, s, 2], [4, s, 0]])])

    gentle = build_navgrid(*ramp(8.0), config=NavConfig(agent_radius=0.0))
    assert gentle.area_m2 == pytest.approx(8.0, abs=2 * 6 * CELL)
    centres = gentle.cell_centers()
    np.testing.assert_allclose(centres[:, 1], centres[:, 0] * math.tan(math.radians(8.0)), atol=1e-3)
    with pytest.raises(ValueError, match="no navigable area"):
        build_navgrid(*ramp(8.0), config=NavConfig(agent_radius=0.0, max_slope_deg=5.0))


@pytest.mark.parametrize(
    "parts",
    [
        pytest.param([box([0, 0, 0], [0.1, 2.5, 3]), box([2, 0, 0], [2.1, 2.5, 3])], id="walls-only"),
        pytest.param(
            [quad([[0, 2, 0], [0, 2, 3], [1, 4, 3], [1, 4, 0]]), quad([[1, 4, 0], [1, 4, 3], [2, 2, 3], [2, 2, 0]])],
            id="steep-roof-only",
        ),
        pytest.param([box([0, 0, 0], [0.15, 0.5, 0.15])], id="too-small-for-the-radius"),
    ],
)
def test_scene_without_floor_raises(parts):
    with pytest.raises(ValueError, match="no navigable area"):
        build_navgrid(*mesh(parts))


# ---------------------------------------------------------------------- paths and distances


def test_shortest_path_in_empty_room_is_the_straight_line():
    nav = build_navgrid(*mesh(room_parts(5.0, 4.0)))
    rng = np.random.default_rng(3)
    for _ in range(5):
        a, b = nav.sample_points(rng=rng, n=2)
        straight = float(np.linalg.norm(b - a))
        path = nav.shortest_path(a, b)
        np.testing.assert_allclose(path[0], a, atol=1e-6)
        np.testing.assert_allclose(path[-1], b, atol=1e-6)
        assert path_length(path) == pytest.approx(straight, abs=1e-6)
        # The raw cell path is an 8-connected grid path: at most ~8 % longer than the straight line.
        raw = nav.shortest_path(a, b, smooth=False)
        assert straight - 1e-9 <= path_length(raw) <= straight * (1 + 0.0824) + 2 * CELL
        assert nav.is_navigable(raw).all()
        # Grid geodesic between cell centres: octile distance.
        d = nav.geodesic_distance(a, b[None])[0]
        (ra, rb), (ca, cb) = nav.to_cell(np.stack([a, b])[:, [0, 2]])
        dr, dc = abs(int(ra) - int(rb)), abs(int(ca) - int(cb))
        assert d == pytest.approx(CELL * (max(dr, dc) + (math.sqrt(2) - 1) * min(dr, dc)), rel=1e-6)


def test_shortest_path_goes_through_the_doorway():
    nav = build_navgrid(*two_rooms(door=1.0))
    a, b = floor_point(nav, 1.0, 0.5), floor_point(nav, 5.0, 0.5)
    path = nav.shortest_path(a, b)
    straight = float(np.linalg.norm(b - a))
    length = path_length(path)
    # Around the wall via the doorway at z in [1.5, 2.5]: past the door edge at z = 1.6 (edge + radius),
    # through the 0.1 m thick wall, and back.
    via_door = math.hypot(2.0, 1.1) + 0.1 + math.hypot(1.9, 1.1)
    assert length > straight + 0.4
    assert length == pytest.approx(via_door, abs=0.1)
    assert nav.is_navigable(path).all()
    for p, q in itertools.pairwise(path):
        assert segment_is_navigable(nav, p, q)
    # It crosses the dividing wall inside the doorway.
    crossing = [
        p[[0, 2]] + (3.05 - p[0]) / (q[0] - p[0]) * (q - p)[[0, 2]]
        for p, q in itertools.pairwise(path)
        if (p[0] - 3.05) * (q[0] - 3.05) < 0
    ]
    assert len(crossing) == 1 and 1.5 + RADIUS - CELL <= crossing[0][1] <= 2.5 - RADIUS + CELL
    # The grid geodesic is a grid path: no shorter than the string-pulled path.
    d = nav.geodesic_distance(a, b[None])[0]
    assert length - 1e-6 <= d <= length * 1.0824 + 2 * CELL


def test_narrow_doorway_is_closed():
    # A 0.15 m gap is narrower than the agent (2 x 0.1 m radius + cell quantisation).
    nav = build_navgrid(*two_rooms(door=0.15))
    assert nav.area_m2 == pytest.approx((3 - 2 * RADIUS) ** 2, abs=2 * 6 * CELL)


def test_l_shaped_room_path_turns_the_corner():
    # L = [0, 4] x [0, 1.5] plus [0, 1.5] x [1.5, 4]; built from a 4 x 4 room with a solid block in the corner.
    parts = room_parts(4.0, 4.0) + [box([1.5, 0, 1.5], [4.0, 2.6, 4.0])]
    nav = build_navgrid(*mesh(parts))
    area = 4 * 1.5 + 1.5 * 2.5
    assert nav.area_m2 == pytest.approx((4 - 0.2) * (1.5 - 0.2) + (1.5 - 0.2) * (2.5), abs=2 * 16 * CELL)
    assert nav.area_m2 < area
    a, b = floor_point(nav, 3.5, 0.75), floor_point(nav, 0.75, 3.5)
    assert not segment_is_navigable(nav, a, b)
    path = nav.shortest_path(a, b)
    corner = np.array([1.5 - RADIUS, 1.5 - RADIUS])  # the block's inner corner, kept at the radius
    expected = np.linalg.norm(a[[0, 2]] - corner) + np.linalg.norm(b[[0, 2]] - corner)
    assert path_length(path) == pytest.approx(expected, abs=0.08)
    for p, q in itertools.pairwise(path):
        assert segment_is_navigable(nav, p, q)


def _reference_distances(walkable, height, cell, max_climb, start):
    """Pure-python Dijkstra over cells with the documented move rules."""
    nz, nx = walkable.shape
    dist = {start: 0.0}
    heap = [(0.0, start)]
    while heap:
        d, (r, c) = heapq.heappop(heap)
        if d > dist[(r, c)]:
            continue
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                if dr == dc == 0:
                    continue
                rr, cc = r + dr, c + dc
                if not (0 <= rr < nz and 0 <= cc < nx) or not walkable[rr, cc]:
                    continue
                dh = float(height[rr, cc]) - float(height[r, c])
                if abs(dh) > max_climb + 1e-6:
                    continue
                if dr and dc:
                    if not (walkable[r, cc] and walkable[rr, c]):
                        continue
                    block = [float(height[i, j]) for i in (r, rr) for j in (c, cc)]
                    if max(block) - min(block) > max_climb + 1e-6:
                        continue
                nd = d + math.sqrt((cell * math.hypot(dr, dc)) ** 2 + dh * dh)
                if nd < dist.get((rr, cc), math.inf):
                    dist[(rr, cc)] = nd
                    heapq.heappush(heap, (nd, (rr, cc)))
    out = np.full(walkable.shape, np.inf)
    for (r, c), d in dist.items():
        out[r, c] = d
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_geodesic_distance_matches_slow_reference(seed):
    rng = np.random.default_rng(seed)
    nz, nx = 13, 17
    walkable = rng.random((nz, nx)) < 0.75
    height = rng.choice([0.0, 0.1, 0.25, 0.5], size=(nz, nx)).astype(np.float32)
    height[~walkable & (rng.random((nz, nx)) < 0.5)] = np.nan
    nav = NavGrid(origin=np.array([-1.0, 2.0]), cell_size=0.1, walkable=walkable, height=height, max_climb=0.2)
    rows, cols = np.nonzero(walkable)
    goals = nav.to_world(*np.mgrid[0:nz, 0:nx].reshape(2, -1))
    goals[:, 1] = np.nan_to_num(goals[:, 1])
    for k in rng.choice(rows.size, size=4, replace=False):
        ref = _reference_distances(walkable, height, 0.1, 0.2, (int(rows[k]), int(cols[k])))
        start = nav.to_world(rows[k : k + 1], cols[k : k + 1])[0]
        got = nav.geodesic_distance(start, goals).reshape(nz, nx)
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-9)
        # Paths exist exactly where the reference reaches, and their raw length is the distance.
        for r, c in zip(*np.nonzero(np.isfinite(ref) & (rng.random((nz, nx)) < 0.2))):
            goal = nav.to_world(np.array([r]), np.array([c]))[0]
            raw = nav.shortest_path(start, goal, smooth=False)
            assert path_length(raw) == pytest.approx(ref[r, c], abs=1e-9)
            smooth = nav.shortest_path(start, goal)
            assert path_length(smooth) <= ref[r, c] + 1e-9
            for p, q in itertools.pairwise(smooth):
                assert nav.segment_navigable(p, q)
                assert segment_is_navigable(nav, p, q)
        # Islands agree with reachability.
        _n, labels = nav.islands()
        own = labels[rows[k], cols[k]]
        np.testing.assert_array_equal(labels == own, np.isfinite(ref))


def test_islands_are_ordered_by_size():
    walkable = np.zeros((6, 10), dtype=bool)
    walkable[1:3, 1:3] = True  # 4 cells
    walkable[1:5, 5:9] = True  # 16 cells
    walkable[5, 0] = True  # 1 cell
    nav = NavGrid(origin=np.zeros(2), cell_size=1.0, walkable=walkable, height=np.zeros(walkable.shape))
    n, labels = nav.islands()
    assert n == 3
    assert (labels == 0).sum() == 16 and (labels == 1).sum() == 4 and (labels == 2).sum() == 1
    assert (labels[~walkable] == -1).all()


def test_diagonal_moves_do_not_cut_corners():
    walkable = np.array([[1, 0], [0, 1]], dtype=bool)
    nav = NavGrid(origin=np.zeros(2), cell_size=1.0, walkable=walkable, height=np.zeros((2, 2)))
    assert nav.islands()[0] == 2
    a, b = nav.to_world(np.array([0, 1]), np.array([0, 1]))
    assert not nav.segment_navigable(a, b)
    assert np.isinf(nav.geodesic_distance(a, b[None])[0])


def test_shortest_path_rejects_points_off_the_navigable_space():
    nav = build_navgrid(*mesh(room_parts(3.0, 3.0)))
    inside = floor_point(nav, 1.5, 1.5)
    for bad in (inside + [0, 1.5, 0], np.array([0.02, 0.0, 1.5]), np.array([10.0, 0.0, 10.0])):
        with pytest.raises(ValueError, match="not navigable"):
            nav.shortest_path(inside, bad)
        with pytest.raises(ValueError, match="not navigable"):
            nav.geodesic_distance(bad, inside[None])
        assert np.isinf(nav.geodesic_distance(inside, bad[None])[0])


# ---------------------------------------------------------------------- cells, sampling, I/O


def test_cell_conversions_round_trip():
    nav = build_navgrid(*mesh(room_parts(3.0, 2.0)))
    rows, cols = np.nonzero(nav.walkable)
    pts = nav.to_world(rows, cols)
    r2, c2 = nav.to_cell(pts[:, [0, 2]] + 0.49 * CELL)
    np.testing.assert_array_equal(r2, rows)
    np.testing.assert_array_equal(c2, cols)
    np.testing.assert_array_equal(nav.cell_centers(), pts)
    assert nav.is_navigable(pts).all()
    assert not nav.is_navigable(pts + [0, 1.0, 0]).any()
    assert nav.area_m2 == pytest.approx(rows.size * CELL**2)


def test_sample_points_are_navigable_uniform_and_seeded():
    nav = build_navgrid(*mesh(room_parts(4.0, 2.0)))
    a = nav.sample_points(rng=np.random.default_rng(7), n=4000)
    b = nav.sample_points(rng=np.random.default_rng(7), n=4000)
    c = nav.sample_points(rng=np.random.default_rng(8), n=4000)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (4000, 3) and nav.is_navigable(a).all()
    # Uniform over the area: the four x-quarters of the room get about a quarter each.
    counts = np.histogram(a[:, 0], bins=4, range=(RADIUS, 4.0 - RADIUS))[0]
    assert np.all(np.abs(counts - 1000) < 150)
    # Jittered inside cells, not only cell centres.
    assert np.unique(a[:, 0]).size > 3000 and np.unique(a[:, 2]).size > 3000
    assert nav.sample_points(rng=np.random.default_rng(0), n=0).shape == (0, 3)


def test_save_load_round_trip(tmp_path):
    config = NavConfig(agent_radius=0.15, max_climb=0.15)
    nav = build_navgrid(*two_rooms(), config=config)
    path = tmp_path / "scene.npz"
    nav.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["scene.npz"]
    back = NavGrid.load(path)
    np.testing.assert_array_equal(back.origin, nav.origin)
    np.testing.assert_array_equal(back.walkable, nav.walkable)
    assert back.height.dtype == np.float32
    assert back.height.tobytes() == nav.height.tobytes()  # nan included
    assert back.cell_size == nav.cell_size and back.max_climb == nav.max_climb
    assert back.config == config
    a, b = floor_point(nav, 1.0, 0.5), floor_point(nav, 5.0, 0.5)
    np.testing.assert_array_equal(back.shortest_path(a, b), nav.shortest_path(a, b))
    # Hand-made grids (no config) round-trip too.
    plain = NavGrid(origin=np.zeros(2), cell_size=0.5, walkable=np.ones((2, 3), bool), height=np.zeros((2, 3)))
    plain.save(tmp_path / "plain.npz")
    assert NavGrid.load(tmp_path / "plain.npz").config is None


def test_load_rejects_other_files(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a navigation grid"):
        NavGrid.load(tmp_path / "other.npz")


def test_grid_is_read_only():
    nav = build_navgrid(*mesh(room_parts(2.0, 2.0)))
    with pytest.raises(ValueError):
        nav.walkable[0, 0] = True
    with pytest.raises(AttributeError):
        nav.cell_size = 1.0  # type: ignore[misc]


# ---------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"cell_size": 0.0}, "cell_size"),
        ({"cell_size": float("nan")}, "cell_size"),
        ({"agent_radius": -0.1}, "agent_radius"),
        ({"agent_height": 0.1, "max_climb": 0.2}, "agent_height"),
        ({"max_climb": -1.0}, "max_climb"),
        ({"max_slope_deg": 90.0}, "max_slope_deg"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NavConfig(**kwargs)


def test_build_validates_mesh():
    v, f = mesh(room_parts(2.0, 2.0))
    with pytest.raises(ValueError, match="vertices"):
        build_navgrid(v[:, :2], f)
    with pytest.raises(ValueError, match="faces"):
        build_navgrid(v, f.astype(np.float64))
    with pytest.raises(ValueError, match="outside"):
        build_navgrid(v, f + v.shape[0])
    bad = v.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="nan"):
        build_navgrid(bad, f)
    with pytest.raises(ValueError, match="cell_size"):
        build_navgrid(v * 1000.0, f, config=NavConfig(cell_size=0.01))


def test_navgrid_validates_arrays():
    with pytest.raises(ValueError, match="one shape"):
        NavGrid(origin=np.zeros(2), cell_size=0.1, walkable=np.ones((2, 2), bool), height=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="finite floor height"):
        NavGrid(origin=np.zeros(2), cell_size=0.1, walkable=np.ones((2, 2), bool), height=np.full((2, 2), np.nan))
