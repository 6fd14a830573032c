"""Tests of envsim.nav.trajectory: agent trajectories over a navigable grid."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import trimesh

from envsim.camera import quat_to_matrix
from envsim.nav.build import build_navgrid
from envsim.nav.grid import NavGrid
from envsim.nav.trajectory import Trajectories, TrajectoryConfig, TrajectoryMode, sample_trajectories

MODES = list(TrajectoryMode)


def box(lo, hi) -> trimesh.Trimesh:
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    b = trimesh.creation.box(extents=hi - lo)
    b.apply_translation((lo + hi) / 2)
    return b


@pytest.fixture(scope="module")
def nav() -> NavGrid:
    """A closed 5 m x 4 m room with a 1 m pillar in the middle and a low wall; the floor is at y = 0.3."""
    w, d, h, t, y0 = 5.0, 4.0, 2.6, 0.1, 0.3
    parts = [
        box([-t, y0 - t, -t], [w + t, y0, d + t]),
        box([-t, y0 + h, -t], [w + t, y0 + h + t, d + t]),
        box([-t, y0, -t], [0, y0 + h, d + t]),
        box([w, y0, -t], [w + t, y0 + h, d + t]),
        box([0, y0, -t], [w, y0 + h, 0]),
        box([0, y0, d], [w, y0 + h, d + t]),
        box([2.0, y0, 1.5], [3.0, y0 + h, 2.5]),  # pillar
        box([0.0, y0, 3.0], [1.5, y0 + 1.0, 3.1]),  # low wall sticking out of a side wall
    ]
    m = trimesh.util.concatenate(parts)
    return build_navgrid(np.asarray(m.vertices), np.asarray(m.faces))


def floor_of(traj: Trajectories, config: TrajectoryConfig) -> np.ndarray:
    return traj.position - np.array([0.0, config.camera_height, 0.0])


def forward_xz(traj: Trajectories) -> np.ndarray:
    """(N, 2) horizontal viewing directions (camera -Z axis in the world)."""
    f = quat_to_matrix(traj.rotation) @ np.array([0.0, 0.0, -1.0])
    return f[:, [0, 2]]


def yaw_of(traj: Trajectories) -> np.ndarray:
    f = forward_xz(traj)
    return np.arctan2(-f[:, 0], -f[:, 1])


def wrap(a: np.ndarray) -> np.ndarray:
    return (a + np.pi) % (2 * np.pi) - np.pi


def dense_segment_ok(nav: NavGrid, a: np.ndarray, b: np.ndarray, spacing: float = 0.004) -> bool:
    n = max(2, math.ceil(np.linalg.norm((b - a)[[0, 2]]) / spacing) + 1)
    xz = a[[0, 2]] + np.linspace(0, 1, n)[:, None] * (b - a)[[0, 2]]
    pts = np.stack([xz[:, 0], nav.floor_height(xz), xz[:, 1]], axis=1)
    return bool(nav.is_navigable(pts).all())


# ---------------------------------------------------------------------- every mode


@pytest.mark.parametrize("mode", MODES)
def test_counts_numbering_and_shapes(nav, mode):
    config = TrajectoryConfig(mode=mode, views=23, views_per_trajectory=10)
    traj = sample_trajectories(nav, config=config, rng=np.random.default_rng(0))
    assert len(traj) == 23
    assert traj.position.shape == (23, 3) and traj.position.dtype == np.float64
    assert traj.rotation.shape == (23, 4)
    assert traj.trajectory.dtype == np.int32 and traj.step.dtype == np.int32
    np.testing.assert_array_equal(traj.trajectory, [0] * 10 + [1] * 10 + [2] * 3)
    np.testing.assert_array_equal(traj.step, list(range(10)) + list(range(10)) + list(range(3)))


@pytest.mark.parametrize("views, per, lengths", [(1, 50, [1]), (50, 50, [50]), (51, 50, [50, 1]), (7, 1, [1] * 7)])
def test_trajectory_lengths(views, per, lengths):
    assert TrajectoryConfig(views=views, views_per_trajectory=per).trajectory_lengths == lengths


@pytest.mark.parametrize("mode", MODES)
def test_positions_are_navigable_at_camera_height(nav, mode):
    config = TrajectoryConfig(mode=mode, views=120, views_per_trajectory=40, camera_height=1.25)
    traj = sample_trajectories(nav, config=config, rng=np.random.default_rng(1))
    floor = floor_of(traj, config)
    assert nav.is_navigable(floor, y_tolerance=1e-6).all()
    np.testing.assert_allclose(floor[:, 1], nav.floor_height(floor[:, [0, 2]]), atol=1e-9)
    np.testing.assert_allclose(floor[:, 1], 0.3, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(traj.rotation, axis=1), 1.0, atol=1e-9)


@pytest.mark.parametrize("mode", MODES)
def test_same_seed_same_arrays_other_seed_differs(nav, mode):
    config = TrajectoryConfig(mode=mode, views=60, views_per_trajectory=20, pitch_jitter_deg=3.0, roll_jitter_deg=1.0)
    a = sample_trajectories(nav, config=config, rng=np.random.default_rng(5))
    b = sample_trajectories(nav, config=config, rng=np.random.default_rng(5))
    c = sample_trajectories(nav, config=config, rng=np.random.default_rng(6))
    for name in ("position", "rotation", "trajectory", "step"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.position, c.position)
    assert not np.array_equal(a.rotation, c.rotation)


@pytest.mark.parametrize("mode", MODES)
def test_no_jitter_means_level_camera(nav, mode):
    config = TrajectoryConfig(mode=mode, views=40)
    traj = sample_trajectories(nav, config=config, rng=np.random.default_rng(2))
    r = quat_to_matrix(traj.rotation)
    np.testing.assert_allclose(r[:, 1, :], np.tile([0.0, 1.0, 0.0], (40, 1)), atol=1e-9)  # world Y row: no pitch/roll


def test_pitch_and_roll_jitter_have_the_requested_spread(nav):
    config = TrajectoryConfig(mode=TrajectoryMode.COVERAGE, views=3000, pitch_jitter_deg=4.0, roll_jitter_deg=2.0)
    traj = sample_trajectories(nav, config=config, rng=np.random.default_rng(3))
    r = quat_to_matrix(traj.rotation)
    pitch = np.degrees(np.arcsin(np.clip(-r[:, 1, 2], -1, 1)))  # camera -Z axis tilted up
    roll = np.degrees(np.arctan2(r[:, 1, 0], r[:, 1, 1]))
    assert np.std(pitch) == pytest.approx(4.0, rel=0.08)
    assert np.std(roll) == pytest.approx(2.0, rel=0.08)
    assert abs(np.mean(pitch)) < 0.3 and abs(np.mean(roll)) < 0.15


# ---------------------------------------------------------------------- walks


@pytest.mark.parametrize("mode", [TrajectoryMode.RANDOM_WALK, TrajectoryMode.TOUR])
def test_walks_are_smooth_and_stay_on_navigable_space(nav, mode):
    config = TrajectoryConfig(mode=mode, views=300, views_per_trajectory=100, step_size=0.3, max_turn_deg=15.0)
    traj = sample_trajectories(nav, config=config, rng=np.random.default_rng(4))
    floor = floor_of(traj, config)
    yaw = yaw_of(traj)
    moved = 0
    for k in range(3):
        sel = np.flatnonzero(traj.trajectory == k)
        p, y = floor[sel], yaw[sel]
        step = np.linalg.norm(np.diff(p[:, [0, 2]], axis=0), axis=1)
        assert np.all(step <= config.step_size + 1e-9)
        assert np.all(np.abs(wrap(np.diff(y))) <= math.radians(config.max_turn_deg) + 1e-9)
        for a, b, s in zip(p[:-1], p[1:], step):
            if s > 0:
                assert nav.segment_navigable(a, b)
                assert dense_segment_ok(nav, a, b)
        # The camera looks where the agent walks.
        go = np.flatnonzero(step > 1e-9)
        d = np.diff(p[:, [0, 2]], axis=0)[go]
        f = forward_xz(traj)[sel][go + 1]
        cos = np.sum(d * f, axis=1) / (np.linalg.norm(d, axis=1) * np.linalg.norm(f, axis=1))
        np.testing.assert_allclose(cos, 1.0, atol=1e-6)
        moved += go.size
    # It walks: most steps move (a tour also turns on the spot towards each new goal), and explores the room.
    assert moved >= (0.6 if mode is TrajectoryMode.RANDOM_WALK else 0.4) * (config.views - 3)
    assert np.ptp(floor[:, 0]) > 2.0 and np.ptp(floor[:, 2]) > 1.5


def test_random_walk_steps_are_exactly_step_size_or_zero(nav):
    config = TrajectoryConfig(views=200, views_per_trajectory=200, step_size=0.2)
    traj = sample_trajectories(nav, config=config, rng=np.random.default_rng(8))
    step = np.linalg.norm(np.diff(traj.position[:, [0, 2]], axis=0), axis=1)
    assert np.all((np.abs(step - 0.2) < 1e-9) | (step == 0))
    # When it stops it turns instead (never stands still with the same heading).
    still = step == 0
    dyaw = np.abs(wrap(np.diff(yaw_of(traj))))
    assert np.all(dyaw[still] > 1e-6)


def test_random_walk_in_a_corridor_turns_around_at_the_ends():
    # A 3 m x 0.5 m corridor: most headings are blocked, so the agent must turn often without leaving it.
    walkable = np.zeros((12, 64), dtype=bool)
    walkable[1:11, 2:62] = True
    nav = NavGrid(origin=np.array([0.0, 0.0]), cell_size=0.05, walkable=walkable, height=np.zeros(walkable.shape))
    config = TrajectoryConfig(views=400, views_per_trajectory=400, step_size=0.25, max_turn_deg=30.0)
    traj = sample_trajectories(nav, config=config, rng=np.random.default_rng(0))
    floor = floor_of(traj, config)
    assert nav.is_navigable(floor).all()
    for a, b in itertools.pairwise(floor):
        if np.any(a != b):
            assert dense_segment_ok(nav, a, b)
    assert np.ptp(floor[:, 0]) > 2.0  # it travels along the corridor
    assert np.all(np.abs(wrap(np.diff(yaw_of(traj)))) <= math.radians(30.0) + 1e-9)


@pytest.mark.parametrize("mode", MODES)
def test_tiny_island_keeps_exact_view_count(mode):
    # Four cells: every step of 0.25 m leaves the island, so walks can only turn on the spot.
    walkable = np.zeros((4, 4), dtype=bool)
    walkable[1:3, 1:3] = True
    nav = NavGrid(origin=np.zeros(2), cell_size=0.05, walkable=walkable, height=np.full((4, 4), 0.5))
    config = TrajectoryConfig(mode=mode, views=30, views_per_trajectory=12)
    traj = sample_trajectories(nav, config=config, rng=np.random.default_rng(0))
    assert len(traj) == 30
    assert nav.is_navigable(floor_of(traj, config)).all()


def test_tour_follows_shortest_paths_around_the_pillar(nav):
    config = TrajectoryConfig(mode=TrajectoryMode.TOUR, views=400, views_per_trajectory=400, step_size=0.25)
    traj = sample_trajectories(nav, config=config, rng=np.random.default_rng(9))
    floor = floor_of(traj, config)
    step = np.linalg.norm(np.diff(floor[:, [0, 2]], axis=0), axis=1)
    # Mostly full steps (shorter ones only at the ends of path legs), and rotations in place at sharp turns.
    assert np.mean(np.abs(step - 0.25) < 1e-6) > 0.45
    assert np.any(step == 0)
    # Never inside the pillar's footprint grown by the radius.
    inside = (floor[:, 0] > 1.9) & (floor[:, 0] < 3.1) & (floor[:, 2] > 1.4) & (floor[:, 2] < 2.6)
    assert not inside.any()


# ---------------------------------------------------------------------- coverage


def test_coverage_is_uniform_over_the_area():
    walkable = np.ones((80, 120), dtype=bool)  # 6 m x 4 m at 0.05 m
    nav = NavGrid(origin=np.zeros(2), cell_size=0.05, walkable=walkable, height=np.zeros(walkable.shape))
    config = TrajectoryConfig(mode=TrajectoryMode.COVERAGE, views=240, views_per_trajectory=60)
    traj = sample_trajectories(nav, config=config, rng=np.random.default_rng(0))
    xz = traj.position[:, [0, 2]]
    # 24 blocks of 1 m x 1 m get 10 views each, give or take the block borders.
    counts = np.histogram2d(xz[:, 0], xz[:, 1], bins=[6, 4], range=[[-0.025, 5.975], [-0.025, 3.975]])[0]
    assert counts.min() >= 6 and counts.max() <= 14
    # Better spread than independent uniform draws (whose nearest neighbours lie 0.16 m apart on average
    # here, the closest pair about 0.01 m).
    d = np.linalg.norm(xz[:, None] - xz[None], axis=2) + np.eye(len(xz)) * 1e9
    assert d.min(axis=1).mean() > 0.185
    assert d.min() > 0.03
    # Yaw covers all directions.
    assert np.histogram(yaw_of(traj), bins=4, range=(-np.pi, np.pi))[0].min() > 30


# ---------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"mode": "teleport"}, "mode must be one of"),
        ({"views": 0}, "views"),
        ({"views": 2.5}, "views"),
        ({"views": True}, "views"),
        ({"views_per_trajectory": 0}, "views_per_trajectory"),
        ({"step_size": 0.0}, "step_size"),
        ({"step_size": float("nan")}, "step_size"),
        ({"max_turn_deg": 0.0}, "max_turn_deg"),
        ({"max_turn_deg": 181.0}, "max_turn_deg"),
        ({"camera_height": -0.1}, "camera_height"),
        ({"pitch_jitter_deg": -1.0}, "pitch_jitter_deg"),
        ({"roll_jitter_deg": float("inf")}, "roll_jitter_deg"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrajectoryConfig(**kwargs)


def test_config_accepts_mode_values_and_numpy_ints():
    c = TrajectoryConfig(mode="tour", views=np.int64(10))
    assert c.mode is TrajectoryMode.TOUR and c.views == 10 and type(c.views) is int


def test_empty_grid_is_rejected():
    nav = NavGrid(origin=np.zeros(2), cell_size=0.1, walkable=np.zeros((3, 3), bool), height=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="no walkable cell"):
        sample_trajectories(nav, config=TrajectoryConfig(views=5), rng=np.random.default_rng(0))


def _quadrants(nav: NavGrid, small: bool = False) -> np.ndarray:
    """Four made-up rooms over the grid (x split at 1 m when ``small``, else 2.5 m; z split at 2 m), -1 elsewhere."""
    rows, cols = np.nonzero(nav.walkable)
    p = nav.to_world(rows, cols)
    regions = np.full(nav.walkable.shape, -1, np.int64)
    regions[rows, cols] = (p[:, 0] > (1.0 if small else 2.5)).astype(int) + 2 * (p[:, 2] > 2.0)
    return regions


@pytest.mark.parametrize("mode", [TrajectoryMode.RANDOM_WALK, TrajectoryMode.TOUR])
def test_trajectories_start_in_every_room_by_area(nav, mode):
    regions = _quadrants(nav, small=True)
    area = np.bincount(regions[nav.walkable])
    config = TrajectoryConfig(mode=mode, views=12 * 5, views_per_trajectory=5, step_size=0.1)
    traj = sample_trajectories(nav, config=config, rng=np.random.default_rng(3), regions=regions)
    first = floor_of(traj, config)[traj.step == 0]
    r, c = nav.to_cell(first[:, [0, 2]])
    start_room = regions[r, c]
    counts = np.bincount(start_room, minlength=4)
    assert np.all(counts >= 1) and counts.sum() == 12  # every room has a start
    # the rest by area: one each, then 8 by largest remainders of 8 * area / total
    share = 8 * area / area.sum()
    assert np.all(np.abs(counts - 1 - share) < 1.0 + 1e-9), (counts, share)
    assert nav.is_navigable(floor_of(traj, config)).all()
    # with starts_by_room off, rooms change nothing about where a plain walk starts
    off = TrajectoryConfig(**{**config.__dict__, "starts_by_room": False, "explore": False})
    plain = sample_trajectories(nav, config=off, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(
        plain.position, sample_trajectories(nav, config=off, rng=np.random.default_rng(3), regions=regions).position)


def test_exploring_walks_cross_from_room_to_room(tmp_path):
    """In a procedural house (rooms joined by doorways) an exploring walk visits more rooms than a plain one,
    within the turn limit and on navigable floor."""
    from envsim.job import room_regions
    from envsim.scenes.load import load_scene
    from envsim.scenes.procedural import generate_house, write_house

    glb, _ = write_house(generate_house(rng=np.random.default_rng(0)), tmp_path / "house.glb")
    scene = load_scene(glb)
    nav = build_navgrid(scene.vertices, scene.faces)
    regions = room_regions(scene, nav)
    visited = {}
    for explore in (True, False):
        config = TrajectoryConfig(views=20 * 40, views_per_trajectory=40, explore=explore)
        traj = sample_trajectories(nav, config=config, rng=np.random.default_rng(0), regions=regions)
        floor = floor_of(traj, config)
        assert nav.is_navigable(floor).all()
        r, c = nav.to_cell(floor[:, [0, 2]])
        room = regions[r, c]
        visited[explore] = np.mean([len(set(room[traj.trajectory == t]) - {-1}) for t in range(20)])
        turn = np.abs(wrap(np.diff(yaw_of(traj))))[np.diff(traj.trajectory) == 0]
        assert turn.max() <= np.radians(config.max_turn_deg) + 1e-9
    assert visited[True] >= 1.9 and visited[True] > visited[False] + 0.4, visited  # measured: 2.15 vs 1.4


def test_fewer_trajectories_than_rooms_start_in_distinct_rooms(nav):
    regions = _quadrants(nav)
    config = TrajectoryConfig(views=3 * 4, views_per_trajectory=4)
    for seed in range(5):
        traj = sample_trajectories(nav, config=config, rng=np.random.default_rng(seed), regions=regions)
        first = floor_of(traj, config)[traj.step == 0]
        r, c = nav.to_cell(first[:, [0, 2]])
        assert len(set(regions[r, c].tolist())) == 3


def test_procedural_houses_have_views_in_every_room(tmp_path):
    """The recipe's 8 trajectories per house reach every room (the dining rooms of two houses had none)."""
    import json

    from envsim.job import DatasetConfig, render_dataset, resolve_sources
    from envsim.render.renderer import RenderConfig
    from envsim.store.reader import DatasetReader

    out = tmp_path / "d"
    cfg = DatasetConfig(render=RenderConfig(width=8, height=8),
                        trajectory=TrajectoryConfig(views=80, views_per_trajectory=10))
    render_dataset(resolve_sources(["procedural:3"]), config=cfg, out=out)
    reader = DatasetReader(out)
    meta = reader.meta()
    for s, name in enumerate(reader.scene_names):
        rooms = json.loads((out / "scenes" / f"{name}.rooms.json").read_text())["rooms"]
        assert len(rooms) <= 8
        seen = {reader.room_names[i] for i in meta["room"][meta["scene"] == s] if i >= 0}
        assert seen == {room["label"] for room in rooms}, name
