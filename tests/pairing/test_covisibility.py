"""Covisibility: analytic plane scenes with exact answers, a wall between two cameras, agreement with
ray-cast visibility in a furnished room, and the numba kernel against the numpy reference."""

from __future__ import annotations

import numpy as np
import open3d as o3d
import pytest
import trimesh

from envsim.camera import camera_rays, make_intrinsics, pose_matrix, quat_from_yaw_pitch_roll, quat_to_matrix
from pairing.covisibility import CovisibilityConfig, covisibility, covisibility_pairs
from tests.conftest import room_with_furniture

W, H = 128, 96  # not square: catches swapped axes
INTR = make_intrinsics(width=W, height=H, hfov_deg=90.0)  # fx = fy = 64 px, cx = 63.5, cy = 47.5
K = INTR.K
STRIDE = 4
U = np.arange(0, W, STRIDE)  # sampled columns
V = np.arange(0, H, STRIDE)  # sampled rows


def pose(position, yaw=0.0, pitch=0.0, roll=0.0) -> np.ndarray:
    return pose_matrix(np.asarray(position, float), quat_from_yaw_pitch_roll(yaw, pitch, roll))


def plane(z: float) -> np.ndarray:
    """Depth of a camera facing an infinite plane perpendicular to its optical axis: constant z-depth."""
    return np.full((H, W), z, np.float32)


def both_ways(depth_a, pose_a, depth_b, pose_b, config=CovisibilityConfig()):
    """(A->B, B->A) from the reference and from the kernel; asserts they agree."""
    ref = (covisibility(depth_a, pose_a, depth_b, pose_b, K, config=config),
           covisibility(depth_b, pose_b, depth_a, pose_a, K, config=config))
    depth, poses = np.stack([depth_a, depth_b]), np.stack([pose_a, pose_b])
    fast = covisibility_pairs(depth, poses, K, np.array([[0, 1]]), config=config)
    np.testing.assert_allclose(fast[0], ref, atol=1e-6)
    return ref


def raycasting_scene(mesh: trimesh.Trimesh) -> o3d.t.geometry.RaycastingScene:
    scene = o3d.t.geometry.RaycastingScene()
    vertices = o3d.core.Tensor(mesh.vertices.astype(np.float32))
    scene.add_triangles(vertices, o3d.core.Tensor(mesh.faces.astype(np.uint32)))
    return scene


def render_depth(mesh: trimesh.Trimesh, position: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """z-depth (B, H, W) float32 of views of ``mesh`` by Open3D ray casting, 0 where nothing is hit."""
    scene = raycasting_scene(mesh)
    dirs = camera_rays(INTR).reshape(-1, 3).astype(np.float64)  # (H*W, 3) camera frame, z = -1: t is z-depth
    out = []
    for p, q in zip(position, rotation):
        d = dirs @ quat_to_matrix(q).T  # (H*W, 3) world
        rays = np.concatenate([np.broadcast_to(p, d.shape), d], axis=1).astype(np.float32)
        t = scene.cast_rays(o3d.core.Tensor(rays))["t_hit"].numpy()
        out.append(np.where(np.isfinite(t), t, 0.0).reshape(H, W))
    return np.stack(out).astype(np.float32)


def furnished_room() -> trimesh.Trimesh:
    """A closed 6 x 3 x 5 m room (floor at y = 0) with boxes and a sphere inside."""
    return room_with_furniture(0)


@pytest.fixture(scope="module")
def room_views():
    """16 views of the furnished room: depth (16, H, W), poses (16, 4, 4), positions and quaternions."""
    rng = np.random.default_rng(1)
    n = 16
    position = rng.uniform([-2.0, 0.8, -1.5], [2.0, 2.2, 1.5], (n, 3))
    position[1] = position[0] + [0.3, 0.0, 0.2]  # a few close pairs with large overlap
    position[3] = position[2] + [-0.2, 0.1, 0.0]
    yaw = rng.uniform(-np.pi, np.pi, n)
    yaw[1], yaw[3] = yaw[0] + 0.3, yaw[2] - 0.2
    rotation = quat_from_yaw_pitch_roll(yaw, rng.uniform(-0.4, 0.4, n), rng.uniform(-0.2, 0.2, n))
    depth = render_depth(furnished_room(), position, rotation)
    return depth, pose_matrix(position, rotation), position, rotation


# --- analytic scenes -------------------------------------------------------------------------------


def test_view_with_itself_is_fully_covisible(room_views):
    depth, poses, _, _ = room_views
    for i in range(4):
        assert covisibility(depth[i], poses[i], depth[i], poses[i], K) > 0.999
    fast = covisibility_pairs(depth, poses, K, np.stack([np.arange(16)] * 2, axis=1))
    assert np.all(fast > 0.999)


def test_cameras_facing_away_see_nothing_of_each_other():
    a = pose([0, 1.5, 0], yaw=0.0)
    b = pose([0, 1.5, 0], yaw=np.pi)  # same place, looking the other way
    assert both_ways(plane(2.0), a, plane(2.0), b) == (0.0, 0.0)
    c = pose([0, 1.5, 0], yaw=np.pi / 2)  # 90 degrees to the left: fields of 90 degrees touch, no overlap
    a_c, c_a = both_ways(plane(2.0), a, plane(2.0), c)
    assert a_c < 0.05 and c_a < 0.05


@pytest.mark.parametrize("shift", [0.3, 0.5, 1.0])
def test_sideways_shift_overlap_is_exact(shift):
    """Both cameras face a plane 2 m ahead; B is ``shift`` m to the right of A. A's column u lands on
    B's column u - fx * shift / 2, so A->B keeps the columns whose nearest B pixel is >= 0 and B->A the
    columns whose nearest A pixel is <= W - 1; rows are unaffected."""
    z = 2.0
    a, b = pose([0, 1.5, 0]), pose([shift, 1.5, 0])
    px = INTR.fx * shift / z
    want_ab = np.mean(np.floor(U - px + 0.5) >= 0)
    want_ba = np.mean(np.floor(U + px + 0.5) <= W - 1)
    got_ab, got_ba = both_ways(plane(z), a, plane(z), b)
    assert got_ab == pytest.approx(want_ab, abs=1e-12)
    assert got_ba == pytest.approx(want_ba, abs=1e-12)
    # ... and both approach the continuous overlap 1 - shift / (2 z tan(hfov / 2)) within a sample column.
    assert abs(got_ab - (1 - shift / (2 * z * np.tan(np.radians(45))))) <= STRIDE / W


def test_vertical_shift_direction():
    """B 0.5 m above A, both facing a plane 2 m ahead. Raising a camera moves the scene down in its
    image, so A's row v lands on B's row v + fy * 0.5 / 2 and A's bottom rows leave B's image. B sees
    nothing in its top 40 rows, which removes the A samples landing there; a mirrored y axis would
    remove other samples and give another fraction."""
    z, s = 2.0, 0.5
    a, b = pose([0, 1.5, 0]), pose([0, 1.5 + s, 0])
    py = INTR.fy * s / z  # 16 px
    depth_b = plane(z)
    depth_b[:40] = 0.0  # B sees nothing in its top 40 rows
    vb = np.floor(V + py + 0.5)
    want_ab = np.mean((vb <= H - 1) & (vb >= 40))
    got_ab, _ = both_ways(plane(z), a, depth_b, b)
    assert got_ab == pytest.approx(want_ab, abs=1e-12)
    assert want_ab < np.mean(vb <= H - 1)  # the hole matters: a flipped y would miss different rows


def test_close_up_is_seen_by_the_wide_view_not_the_reverse():
    """A 1 m from a plane, B 3 m from it behind A: B sees all of A's patch; A sees about 1/9 of B's."""
    a, b = pose([0, 1.5, 0]), pose([0, 1.5, 2.0])
    got_ab, got_ba = both_ways(plane(1.0), a, plane(3.0), b)
    assert got_ab == 1.0
    # B's sample (u, v) lands at A's pixel 3 (u - cx) + cx: rows and columns separate.
    in_u = np.mean(np.abs(np.floor(3 * (U - INTR.cx) + INTR.cx + 0.5) - (W - 1) / 2) <= (W - 1) / 2)
    in_v = np.mean(np.abs(np.floor(3 * (V - INTR.cy) + INTR.cy + 0.5) - (H - 1) / 2) <= (H - 1) / 2)
    assert got_ba == pytest.approx(in_u * in_v, abs=1e-12)
    assert abs(got_ba - 1 / 9) < 0.03


def test_occlusion_tolerance():
    """B sees a surface 10 cm in front of where A's points are: occluded at the default tolerance
    (5 cm + 2 %), visible with a looser one."""
    a, b = pose([0, 1.5, 0]), pose([0, 1.5, 0])
    assert both_ways(plane(2.0), a, plane(1.9), b)[0] == 0.0
    assert both_ways(plane(2.0), a, plane(1.9), b, CovisibilityConfig(abs_tolerance=0.11, rel_tolerance=0.0))[0] == 1.0
    assert both_ways(plane(2.0), a, plane(1.97), b)[0] == 1.0  # within 5 cm + 2 % of 2 m
    assert both_ways(plane(2.0), a, plane(5.0), b)[0] == 1.0  # a farther surface does not hide the point


def test_no_valid_pixels_gives_zero():
    a, b = pose([0, 1.5, 0]), pose([0.1, 1.5, 0])
    empty = np.zeros((H, W), np.float32)
    assert both_ways(empty, a, plane(2.0), b) == (0.0, 0.0)  # nothing of A; B's points fall on A's holes


# --- a wall between two cameras ---------------------------------------------------------------------


def two_rooms() -> trimesh.Trimesh:
    """An 8 x 3 x 4 m hall split into two rooms by a 0.2 m thick wall in the plane x = 0."""
    hall = trimesh.creation.box((8.0, 3.0, 4.0))
    hall.apply_translation([0, 1.5, 0])
    hall.invert()
    wall = trimesh.creation.box((0.2, 3.0, 4.0))
    wall.apply_translation([0, 1.5, 0])
    return trimesh.util.concatenate([hall, wall])


def test_wall_between_nearby_cameras():
    """A and B 1.2 m apart face each other through the wall: spatially close (an ESS positive at 1.5 m),
    yet they see nothing in common. Without the occlusion test A's wall would count as seen by B."""
    position = np.array([[-0.6, 1.5, 0.0], [0.6, 1.5, 0.0]])
    rotation = quat_from_yaw_pitch_roll([-np.pi / 2, np.pi / 2], 0.0, 0.0)  # A looks +X, B looks -X
    depth = render_depth(two_rooms(), position, rotation)
    np.testing.assert_allclose(depth, 0.5, atol=1e-4)  # each sees its face of the wall, 0.5 m ahead
    poses = pose_matrix(position, rotation)
    assert both_ways(depth[0], poses[0], depth[1], poses[1]) == (0.0, 0.0)
    no_occlusion = CovisibilityConfig(abs_tolerance=100.0)
    ab, ba = both_ways(depth[0], poses[0], depth[1], poses[1], no_occlusion)
    assert ab > 0.95 and ba > 0.95


# --- realistic views ---------------------------------------------------------------------------------


def raycast_visibility(mesh, depth_a, pose_a, pose_b) -> float:
    """Ground truth by ray casting, independent of depth comparisons: the fraction of A's sampled surface
    points inside B's image whose ray from B's centre reaches them unobstructed."""
    scene = raycasting_scene(mesh)
    dirs = camera_rays(INTR)[::STRIDE, ::STRIDE].reshape(-1, 3)  # (M, 3) camera frame, z = -1
    z = depth_a[::STRIDE, ::STRIDE].reshape(-1).astype(np.float64)
    ok = z > 0
    points = (dirs[ok] * z[ok, None]) @ pose_a[:3, :3].T + pose_a[:3, 3]  # (M', 3) world
    to_point = points - pose_b[:3, 3]  # (M', 3)
    cam = to_point @ pose_b[:3, :3]  # (M', 3) in B's frame (rotation^T applied)
    front = cam[:, 2] < 0
    with np.errstate(divide="ignore", invalid="ignore"):
        u = INTR.cx + INTR.fx * cam[:, 0] / -cam[:, 2]
        v = INTR.cy - INTR.fy * cam[:, 1] / -cam[:, 2]
    inside = front & (u >= -0.5) & (u < W - 0.5) & (v >= -0.5) & (v < H - 0.5)
    dist = np.linalg.norm(to_point, axis=1)
    rays = np.concatenate([np.broadcast_to(pose_b[:3, 3], to_point.shape), to_point / dist[:, None]], axis=1)
    t = scene.cast_rays(o3d.core.Tensor(rays.astype(np.float32)))["t_hit"].numpy()
    unobstructed = t >= dist - 0.02
    return float(np.sum(inside & unobstructed)) / max(int(ok.sum()), 1)


def test_agrees_with_raycast_visibility(room_views):
    depth, poses, _, _ = room_views
    mesh = furnished_room()
    pairs = [(0, 1), (1, 0), (2, 3), (3, 2)] + [(i, j) for i in range(4, 16, 3) for j in range(5, 16, 4) if i != j]
    covis = covisibility_pairs(depth, poses, K, np.array(pairs))[:, 0]
    truth = np.array([raycast_visibility(mesh, depth[a], poses[a], poses[b]) for a, b in pairs])
    assert covis[:4].min() > 0.25  # the close pairs overlap
    np.testing.assert_allclose(covis, truth, atol=0.01)
    assert np.ptp(truth) > 0.3  # the pairs span overlapping and non-overlapping views


# --- fast kernel against the reference ------------------------------------------------------------


@pytest.mark.parametrize("stride", [1, 3, 4])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_kernel_equals_reference(room_views, stride, dtype):
    depth, poses, _, _ = room_views
    depth = depth.astype(dtype)
    depth[5, :20] = 0.0  # holes
    rng = np.random.default_rng(stride)
    pairs = rng.integers(0, 16, (40, 2))
    pairs[:4] = [[0, 1], [2, 3], [1, 0], [7, 7]]
    config = CovisibilityConfig(stride=stride)
    fast = covisibility_pairs(depth, poses.astype(np.float32), K, pairs, config=config)
    assert fast.dtype == np.float32 and fast.shape == (40, 2)
    ref = np.array(
        [
            [covisibility(depth[a], poses[a], depth[b], poses[b], K, config=config),
             covisibility(depth[b], poses[b], depth[a], poses[a], K, config=config)]
            for a, b in pairs
        ]
    )
    np.testing.assert_allclose(fast, ref, atol=1e-6)
    assert np.ptp(ref) > 0.5


def test_empty_pairs():
    out = covisibility_pairs(np.zeros((2, H, W), np.float32), np.stack([np.eye(4)] * 2), K, np.zeros((0, 2), int))
    assert out.shape == (0, 2) and out.dtype == np.float32


@pytest.mark.parametrize(
    "kwargs, match",
    [({"stride": 0}, "stride"), ({"stride": 2.5}, "stride"), ({"abs_tolerance": -1.0}, "abs_tolerance"),
     ({"rel_tolerance": 1.0}, "rel_tolerance")],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CovisibilityConfig(**kwargs)


def test_bad_inputs():
    depth = np.zeros((2, H, W), np.float32)
    poses = np.stack([np.eye(4)] * 2)
    with pytest.raises(ValueError, match="outside"):
        covisibility_pairs(depth, poses, K, np.array([[0, 2]]))
    with pytest.raises(ValueError, match="pose must have shape"):
        covisibility_pairs(depth, poses[:1], K, np.array([[0, 1]]))
    with pytest.raises(ValueError, match="one size"):
        covisibility(depth[0], poses[0], depth[0, :10], poses[1], K)
    with pytest.raises(ValueError, match="K must be"):
        covisibility(depth[0], poses[0], depth[1], poses[1], np.eye(2))
