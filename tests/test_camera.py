import numpy as np
import pytest

from envsim.camera import (
    camera_rays,
    check_unit_quaternions,
    make_intrinsics,
    matrix_to_quat,
    pose_matrix,
    quat_from_yaw_pitch_roll,
    quat_multiply,
    quat_to_matrix,
)


def test_intrinsics_pixel_centre_convention():
    k = make_intrinsics(width=640, height=480, hfov_deg=90).K
    assert k[0, 0] == pytest.approx(320.0)  # tan(45 deg) = 1: f = W / 2
    assert k[0, 2] == pytest.approx(319.5) and k[1, 2] == pytest.approx(239.5)


def test_rays_span_the_field_of_view():
    intr = make_intrinsics(width=101, height=51, hfov_deg=90)
    d = camera_rays(intr)
    assert d.shape == (51, 101, 3)
    np.testing.assert_allclose(d[..., 2], -1.0)
    # Pixel centres of the outermost columns sit half a pixel inside the 45-degree edge.
    half_px = 1.0 / intr.fx / 2
    assert d[25, 0, 0] == pytest.approx(-1.0 + half_px, rel=1e-5)
    assert d[25, -1, 0] == pytest.approx(1.0 - half_px, rel=1e-5)
    assert d[0, 50, 1] > 0 > d[-1, 50, 1]  # image row 0 looks up (+Y)
    np.testing.assert_allclose(d[25, 50], [0, 0, -1], atol=1e-7)


@pytest.mark.parametrize("bad", [0.0, 180.0, -5.0])
def test_bad_hfov(bad):
    with pytest.raises(ValueError, match="between 0 and 180"):
        make_intrinsics(width=8, height=8, hfov_deg=bad)


def test_quaternion_round_trip_and_orthonormal():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(500, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q[q[:, 0] < 0] *= -1
    r = quat_to_matrix(q)
    np.testing.assert_allclose(r @ np.swapaxes(r, 1, 2), np.broadcast_to(np.eye(3), r.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-12)
    np.testing.assert_allclose(matrix_to_quat(r), q, atol=1e-9)


def test_quaternion_product_matches_matrix_product():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 50, 4))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    np.testing.assert_allclose(quat_to_matrix(quat_multiply(a, b)), quat_to_matrix(a) @ quat_to_matrix(b), atol=1e-12)


def test_yaw_pitch_roll_directions():
    fwd = np.array([0, 0, -1.0])
    r = quat_to_matrix(quat_from_yaw_pitch_roll(np.pi / 2, 0, 0))
    np.testing.assert_allclose(r @ fwd, [-1, 0, 0], atol=1e-12)  # positive yaw turns left (towards -X)
    r = quat_to_matrix(quat_from_yaw_pitch_roll(0, np.radians(30), 0))
    assert (r @ fwd)[1] == pytest.approx(0.5)  # positive pitch looks up
    r = quat_to_matrix(quat_from_yaw_pitch_roll(0, 0, np.pi / 2))
    np.testing.assert_allclose(r @ np.array([1.0, 0, 0]), [0, 1, 0], atol=1e-12)


def test_pose_matrix():
    q = quat_from_yaw_pitch_roll(0.3, 0.1, -0.2)
    m = pose_matrix(np.array([1.0, 2.0, 3.0]), q)
    np.testing.assert_allclose(m[:3, 3], [1, 2, 3])
    np.testing.assert_allclose(m[:3, :3], quat_to_matrix(q))
    np.testing.assert_allclose(m[3], [0, 0, 0, 1])


def test_check_unit_quaternions():
    check_unit_quaternions(np.array([[1.0, 0, 0, 0], [0, 0, 1, 0]]))
    with pytest.raises(ValueError, match="rotation 1 is not a unit quaternion"):
        check_unit_quaternions(np.array([[1.0, 0, 0, 0], [1.0, 1.0, 0, 0]]))
    with pytest.raises(ValueError, match="not a unit quaternion"):
        check_unit_quaternions(np.array([[np.nan, 0, 0, 0]]))
