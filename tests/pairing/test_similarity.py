"""ESS-MB / ESS-MW similarities: hand-computed values, gates, symmetry, range and monotonicity."""

from __future__ import annotations

import math

import numpy as np
import pytest

from envsim.camera import quat_from_yaw_pitch_roll, quat_multiply, quat_to_matrix
from pairing.similarity import (
    Falloff,
    SimilarityConfig,
    binary_similarity,
    pair_geometry,
    view_angle,
    view_direction,
    weighted_similarity,
)

GAUSS = SimilarityConfig()
LINEAR = SimilarityConfig(falloff=Falloff.LINEAR)


def random_poses(rng, n):
    position = rng.uniform(-2, 2, (n, 3))
    rotation = quat_from_yaw_pitch_roll(rng.uniform(-np.pi, np.pi, n), rng.uniform(-1, 1, n), rng.uniform(-1, 1, n))
    return position, rotation


def test_view_direction_matches_rotation_matrix():
    rng = np.random.default_rng(0)
    _, q = random_poses(rng, 50)
    np.testing.assert_allclose(view_direction(q), -quat_to_matrix(q)[:, :, 2], atol=1e-12)
    # Yaw 0 looks down -Z; yaw +90 degrees (turn left) looks down -X.
    yaw_0_and_90 = quat_from_yaw_pitch_roll([0.0, np.pi / 2], 0, 0)
    np.testing.assert_allclose(view_direction(yaw_0_and_90), [[0, 0, -1], [-1, 0, 0]], atol=1e-12)


def test_ninety_degree_turn_and_roll():
    a = quat_from_yaw_pitch_roll(np.zeros(3), 0.0, 0.0)
    b = quat_from_yaw_pitch_roll([np.pi / 2, 0.0, np.pi], [0.0, np.pi / 2, 0.0], 0.0)  # left, up, behind
    np.testing.assert_allclose(view_angle(a, b), [np.pi / 2, np.pi / 2, np.pi], atol=1e-12)
    # Roll about the optical axis does not change where the camera looks.
    rng = np.random.default_rng(1)
    _, q = random_poses(rng, 20)
    rolled = quat_multiply(q, quat_from_yaw_pitch_roll(0.0, 0.0, rng.uniform(-np.pi, np.pi, 20)))
    np.testing.assert_allclose(view_angle(q, rolled), 0.0, atol=1e-7)
    # Small angles stay accurate (arccos of a dot product would return 0 here).
    tiny = quat_from_yaw_pitch_roll(1e-9, 0.0, 0.0)[None]
    np.testing.assert_allclose(view_angle(a[:1], tiny), [1e-9], rtol=1e-6)


def test_pair_geometry_hand_computed():
    position = np.array([[0, 1.5, 0], [0.3, 1.5, -0.4], [0, 1.5, 0]])
    rotation = quat_from_yaw_pitch_roll([0.0, 0.0, np.pi / 3], 0.0, 0.0)
    d, a = pair_geometry(position, rotation, np.array([[0, 1], [0, 2], [1, 2]]))
    assert d.dtype == a.dtype == np.float32
    np.testing.assert_allclose(d, [0.5, 0.0, 0.5], rtol=1e-6)
    np.testing.assert_allclose(a, [0.0, np.pi / 3, np.pi / 3], atol=1e-6)
    d, a = pair_geometry(position, rotation, np.zeros((0, 2), np.int64))
    assert d.shape == a.shape == (0,)


def test_pair_geometry_equals_numpy_reference():
    rng = np.random.default_rng(2)
    position, rotation = random_poses(rng, 300)
    pairs = rng.integers(0, 300, (5000, 2))
    distance, angle = pair_geometry(position.astype(np.float32), rotation, pairs.astype(np.int32))
    i, j = pairs.T
    forward = -quat_to_matrix(rotation)[:, :, 2]  # (N, 3) camera -Z in the world
    np.testing.assert_allclose(distance, np.linalg.norm(position[i] - position[j], axis=1), rtol=1e-6, atol=1e-6)
    cos = np.clip(np.sum(forward[i] * forward[j], axis=1), -1, 1)
    np.testing.assert_allclose(angle, np.arccos(cos), atol=2e-6)
    assert angle.min() >= 0 and angle.max() <= np.float32(np.pi)


def test_gaussian_hand_computed():
    # sigma_position 0.5 m: d = 0.5 -> exp(-0.5); sigma_angle 22.5 deg: a = 22.5 deg -> exp(-0.5).
    d = np.array([0.0, 0.5, 0.0, 0.5, 0.25])
    a = np.radians([0.0, 0.0, 22.5, 22.5, 10.0])
    want = [1.0, math.exp(-0.5), math.exp(-0.5), math.exp(-1.0), math.exp(-0.125) * math.exp(-((10 / 22.5) ** 2) / 2)]
    np.testing.assert_allclose(weighted_similarity(d, a, GAUSS), want, rtol=1e-6)


def test_linear_hand_computed():
    # radius 1 m, 45 degrees: d = 0.5 -> 0.5; a = 22.5 deg -> 0.5; both -> 0.25; at the radius -> 0.
    d = np.array([0.0, 0.5, 0.0, 0.5, 1.0, 0.2])
    a = np.radians([0.0, 0.0, 22.5, 22.5, 0.0, 9.0])
    np.testing.assert_allclose(weighted_similarity(d, a, LINEAR), [1.0, 0.5, 0.5, 0.25, 0.0, 0.8 * 0.8], atol=1e-6)


@pytest.mark.parametrize("config", [GAUSS, LINEAR, SimilarityConfig(radius=2.0, max_angle_deg=180, sigma_position=3.0)])
def test_gate(config):
    r, amax = config.radius, config.max_angle
    d = np.array([0.0, r, np.nextafter(r, 9), 0.1, 0.1, 5.0])
    a = np.array([0.0, 0.0, 0.0, amax, np.nextafter(amax, 9), 0.0])
    inside = np.array([1, 1, 0, 1, 0, 0], np.float32)
    b = binary_similarity(d, a, config)
    assert b.dtype == np.float32
    np.testing.assert_array_equal(b, inside)
    w = weighted_similarity(d, a, config)
    assert np.all(w[inside == 0] == 0)
    if config.falloff is Falloff.GAUSSIAN:
        assert np.all(w[inside == 1] > 0)  # Gaussian weights do not vanish inside the gate


def test_pair_at_exactly_the_radius_stays_positive_in_float32():
    # 0.3 m apart along x: float32 rounding of the distance must not push it out of the gate.
    position = np.array([[0.0, 0, 0], [0.3, 0, 0]])
    rotation = np.array([[1.0, 0, 0, 0]] * 2)
    d, a = pair_geometry(position, rotation, np.array([[0, 1]]))
    assert binary_similarity(d, a, SimilarityConfig(radius=0.3))[0] == 1.0


@pytest.mark.parametrize("config", [GAUSS, LINEAR])
def test_weights_symmetric_in_range_and_one_for_identical_poses(config):
    rng = np.random.default_rng(5)
    position, rotation = random_poses(rng, 200)
    position[1], rotation[1] = position[0], rotation[0]  # an identical pair
    pairs = rng.integers(0, 200, (3000, 2))
    pairs[0] = [0, 1]
    w = weighted_similarity(*pair_geometry(position, rotation, pairs), config)
    w_rev = weighted_similarity(*pair_geometry(position, rotation, pairs[:, ::-1]), config)
    np.testing.assert_array_equal(w, w_rev)
    assert w.dtype == np.float32 and np.all((w >= 0) & (w <= 1))
    assert w[0] == 1.0
    assert np.any(w > 0) and np.any(w == 0)
    b = binary_similarity(*pair_geometry(position, rotation, pairs), config)
    assert np.all(w <= b)  # zero outside the ESS-MB gate
    if config.falloff is Falloff.GAUSSIAN:
        np.testing.assert_array_equal(w > 0, b > 0)


@pytest.mark.parametrize("config", [GAUSS, LINEAR])
def test_monotone_in_distance_and_angle(config):
    grid_d = np.linspace(0, 1.5 * config.radius, 301)
    grid_a = np.linspace(0, np.pi, 301)
    for a in (0.0, 0.3):
        w = weighted_similarity(grid_d, np.full_like(grid_d, a), config)
        assert np.all(np.diff(w) <= 0)
    for d in (0.0, 0.4):
        w = weighted_similarity(np.full_like(grid_a, d), grid_a, config)
        assert np.all(np.diff(w) <= 0)
    assert weighted_similarity(grid_d, 0 * grid_d, config)[0] == 1.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"radius": 0.0}, "radius"),
        ({"radius": float("nan")}, "radius"),
        ({"max_angle_deg": 0.0}, "max_angle_deg"),
        ({"max_angle_deg": 181.0}, "max_angle_deg"),
        ({"falloff": "cosine"}, "gaussian, linear"),
        ({"sigma_position": 0.0}, "sigma_position"),
        ({"sigma_angle_deg": -1.0}, "sigma_angle_deg"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SimilarityConfig(**kwargs)


def test_config_accepts_falloff_string():
    assert SimilarityConfig(falloff="linear").falloff is Falloff.LINEAR


def test_bad_inputs():
    with pytest.raises(ValueError, match="unit quaternion"):
        view_direction(np.array([[2.0, 0, 0, 0]]))
    with pytest.raises(ValueError, match="outside"):
        pair_geometry(np.zeros((2, 3)), np.array([[1.0, 0, 0, 0]] * 2), np.array([[0, 2]]))
    with pytest.raises(ValueError, match="equal length"):
        weighted_similarity(np.zeros(3), np.zeros(2), GAUSS)
