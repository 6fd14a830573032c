"""KD-tree pairs and neighbours against O(N^2) brute force."""

from __future__ import annotations

import numpy as np
import pytest

from pairing.index import knn, radius_pairs, scene_groups


def brute_pairs(position: np.ndarray, scene: np.ndarray, radius: float) -> np.ndarray:
    """Every (i, j), i < j, same scene, squared distance <= radius^2 (the inclusive convention)."""
    position = np.asarray(position, np.float64)
    n = len(position)
    if n < 2:
        return np.empty((0, 2), np.int64)
    d2 = ((position[:, None, :] - position[None, :, :]) ** 2).sum(-1)  # (N, N)
    ok = (d2 <= radius * radius) & (scene[:, None] == scene[None, :]) & np.triu(np.ones((n, n), bool), 1)
    return np.argwhere(ok).astype(np.int64)  # argwhere is row-major: already lexicographic


def brute_knn(position, scene, k):
    n = len(position)
    d = np.sqrt(((position[:, None, :] - position[None, :, :]) ** 2).sum(-1))  # (N, N)
    d[scene[:, None] != scene[None, :]] = np.inf
    np.fill_diagonal(d, np.inf)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    dist = np.take_along_axis(d, order, axis=1)
    index = np.where(np.isfinite(dist), order, -1)
    if k > n:
        pad = k - n
        index = np.pad(index, ((0, 0), (0, pad)), constant_values=-1)
        dist = np.pad(dist, ((0, 0), (0, pad)), constant_values=np.inf)
    return index, dist


def _case(name: str):
    rng = np.random.default_rng(7)
    if name == "empty":
        return np.zeros((0, 3)), np.zeros(0, np.int64), 1.0
    if name == "one view":
        return np.zeros((1, 3)), np.zeros(1, np.int64), 1.0
    if name == "identical poses":
        return np.tile([[1.0, 1.5, -2.0]], (6, 1)), np.zeros(6, np.int64), 0.0
    if name == "duplicates and others":
        p = rng.uniform(0, 3, (40, 3))
        p[20:30] = p[0]
        return p, np.zeros(40, np.int64), 0.5
    if name == "several scenes, interleaved":
        # Views of 5 scenes shuffled together, at the same coordinates range: cross-scene pairs must not appear.
        return rng.uniform(0, 4, (300, 3)), rng.integers(0, 5, 300), 0.8
    if name == "several scenes, contiguous blocks":
        # Views stored scene by scene (the usual shard order), scene ids not increasing along the views.
        return rng.uniform(0, 3, (240, 3)), np.repeat([4, 1, 7, 0], [50, 90, 1, 99]), 0.7
    if name == "several scenes, negative ids, float32":
        return rng.uniform(0, 4, (200, 3)).astype(np.float32), rng.choice([-3, 2, 9], 200), 1.0
    if name == "exactly at the radius":
        # Distances 1, 5 and 0.5 exactly representable: inclusive boundary.
        p = np.array([[0, 0, 0], [1, 0, 0], [3, 4, 0], [0, 0.5, 0], [0, 0, 1.0000001]], np.float64)
        return p, np.zeros(5, np.int64), 1.0
    if name == "N=2000":
        return rng.uniform(0, 12, (2000, 3)) * [1, 0.1, 1], rng.integers(0, 3, 2000), 1.0
    raise KeyError(name)


CASES = [
    "empty",
    "one view",
    "identical poses",
    "duplicates and others",
    "several scenes, interleaved",
    "several scenes, contiguous blocks",
    "several scenes, negative ids, float32",
    "exactly at the radius",
    "N=2000",
]


@pytest.mark.parametrize("name", CASES)
def test_radius_pairs_equal_brute_force(name):
    position, scene, radius = _case(name)
    got = radius_pairs(position, scene, radius=radius)
    want = brute_pairs(position, scene, radius)
    assert got.dtype == np.int64 and got.shape[1] == 2
    np.testing.assert_array_equal(got, want)


def test_radius_boundary_is_inclusive():
    p = np.array([[0, 0, 0], [1, 0, 0], [3, 4, 0]], np.float64)
    s = np.zeros(3, np.int64)
    np.testing.assert_array_equal(radius_pairs(p, s, radius=1.0), [[0, 1]])
    np.testing.assert_array_equal(radius_pairs(p, s, radius=5.0), [[0, 1], [0, 2], [1, 2]])
    assert radius_pairs(p, s, radius=np.nextafter(1.0, 0)).shape == (0, 2)


def test_identical_poses_pair_at_radius_zero():
    p = np.zeros((3, 3))
    np.testing.assert_array_equal(radius_pairs(p, np.zeros(3, int), radius=0.0), [[0, 1], [0, 2], [1, 2]])


def test_scenes_are_never_mixed():
    p = np.zeros((4, 3))
    got = radius_pairs(p, np.array([0, 1, 0, 1]), radius=1.0)
    np.testing.assert_array_equal(got, [[0, 2], [1, 3]])


def test_rows_are_sorted_and_ordered():
    rng = np.random.default_rng(3)
    got = radius_pairs(rng.uniform(0, 2, (500, 3)), rng.integers(0, 4, 500), radius=0.6)
    assert np.all(got[:, 0] < got[:, 1])
    keys = got[:, 0] * 500 + got[:, 1]
    assert np.all(np.diff(keys) > 0)


@pytest.mark.parametrize(
    "position, scene, radius, match",
    [
        (np.zeros((3, 2)), np.zeros(3, int), 1.0, "shape"),
        (np.zeros((3, 3)), np.zeros(2, int), 1.0, "one scene id per view"),
        (np.zeros((3, 3)), np.zeros(3, float), 1.0, "integers"),
        (np.array([[0, 0, np.nan], [0, 0, 0]]), np.zeros(2, int), 1.0, "not finite"),
        (np.zeros((3, 3)), np.zeros(3, int), -1.0, "radius"),
        (np.zeros((3, 3)), np.zeros(3, int), np.inf, "radius"),
    ],
)
def test_radius_pairs_rejects_bad_input(position, scene, radius, match):
    with pytest.raises(ValueError, match=match):
        radius_pairs(position, scene, radius=radius)


def test_scene_groups():
    groups = scene_groups(np.array([2, 0, 2, 1, 0]))
    assert [g.tolist() for g in groups] == [[1, 4], [3], [0, 2]]
    assert scene_groups(np.zeros(0, int)) == []


@pytest.mark.parametrize("k", [1, 3, 8, 40])
def test_knn_equals_brute_force(k):
    rng = np.random.default_rng(k)
    position = rng.uniform(0, 3, (120, 3))
    scene = rng.integers(0, 4, 120)
    scene[:3] = 9  # a scene of 3 views: fewer than k + 1 for k >= 3
    index, dist = knn(position, scene, k=k)
    want_index, want_dist = brute_knn(position, scene, k)
    assert index.shape == dist.shape == (120, k)
    np.testing.assert_allclose(dist, want_dist, rtol=1e-12)
    np.testing.assert_array_equal(index, want_index)  # random positions: no distance ties


def test_knn_padding_and_duplicates():
    # Five views at one position in scene 0, one view alone in scene 1.
    position = np.zeros((6, 3))
    scene = np.array([0, 0, 0, 0, 0, 1])
    index, dist = knn(position, scene, k=3)
    for i in range(5):
        assert i not in index[i]
        assert set(index[i]) <= {0, 1, 2, 3, 4} and len(set(index[i])) == 3
    np.testing.assert_array_equal(dist[:5], 0.0)
    np.testing.assert_array_equal(index[5], [-1, -1, -1])
    assert np.all(np.isinf(dist[5]))
    # Many duplicates (more than k + 1 at distance 0): still never itself.
    index, _ = knn(np.zeros((10, 3)), np.zeros(10, int), k=2)
    assert all(i not in index[i] for i in range(10))


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_knn_rejects_bad_k(k):
    with pytest.raises(ValueError, match="k must be"):
        knn(np.zeros((3, 3)), np.zeros(3, int), k=k)
