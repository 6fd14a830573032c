"""Metrics against hand-computed values and slow reference formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.evaluation.metrics import (
    confusion_matrix,
    mean_absolute_error,
    mean_std,
    median,
    per_class_accuracy,
    position_error,
    r2_score,
    recall_at,
    rotation_error_deg,
    tile_accuracy,
    top1_accuracy,
)
from envsim.camera import quat_from_yaw_pitch_roll, quat_to_matrix


def test_accuracy_confusion_per_class_by_hand():
    pred = np.array([0, 1, 1, 2, 0])
    labels = np.array([0, 1, 2, 2, 2])
    assert top1_accuracy(pred, labels) == pytest.approx(3 / 5)
    cm = confusion_matrix(pred, labels, 4)
    expected = np.zeros((4, 4), int)
    expected[0, 0] = expected[1, 1] = expected[2, 1] = expected[2, 2] = expected[2, 0] = 1
    np.testing.assert_array_equal(cm, expected)
    assert cm.sum() == 5 and cm.dtype.kind == "i"
    acc = per_class_accuracy(pred, labels, 4)
    np.testing.assert_allclose(acc[:3], [1.0, 1.0, 1 / 3])
    assert math.isnan(acc[3])  # class 3 absent from the labels


def test_empty_and_bad_inputs():
    empty = np.zeros(0, int)
    assert math.isnan(top1_accuracy(empty, empty))
    assert confusion_matrix(empty, empty, 3).sum() == 0
    assert np.all(np.isnan(per_class_accuracy(empty, empty, 3)))
    assert math.isnan(recall_at(np.zeros(0), 1.0))
    with pytest.raises(ValueError, match="unknown labels"):
        confusion_matrix(np.array([0]), np.array([-1]), 3)
    with pytest.raises(ValueError, match="equal length"):
        top1_accuracy(np.array([0, 1]), np.array([0]))


def _reference_angle_deg(qa, qb):
    """Slow reference: angle of R_a^T R_b from the trace."""
    ra, rb = quat_to_matrix(qa), quat_to_matrix(qb)
    rel = np.einsum("nji,njk->nik", ra, rb)
    cos = np.clip((np.trace(rel, axis1=1, axis2=2) - 1) / 2, -1, 1)
    return np.degrees(np.arccos(cos))


def test_rotation_error_matches_matrix_reference_and_sign():
    rng = np.random.default_rng(0)
    qa = rng.normal(size=(200, 4))
    qa /= np.linalg.norm(qa, axis=1, keepdims=True)
    qb = rng.normal(size=(200, 4))
    qb /= np.linalg.norm(qb, axis=1, keepdims=True)
    err = rotation_error_deg(qa, qb)
    np.testing.assert_allclose(err, _reference_angle_deg(qa, qb), atol=1e-5)
    np.testing.assert_allclose(rotation_error_deg(qa, -qb), err, atol=1e-9)  # q and -q: one rotation
    assert np.all((err >= 0) & (err <= 180))
    np.testing.assert_allclose(rotation_error_deg(qa, qa), 0, atol=1e-6)


@pytest.mark.parametrize("deg", [1e-4, 0.5, 30.0, 90.0, 179.0])
def test_rotation_error_known_yaw(deg):
    q0 = quat_from_yaw_pitch_roll(np.zeros(1), np.zeros(1), np.zeros(1))
    q1 = quat_from_yaw_pitch_roll(np.radians([deg]), np.zeros(1), np.zeros(1))
    assert rotation_error_deg(q0, q1)[0] == pytest.approx(deg, rel=1e-6)


def test_position_error_recall_median():
    a = np.zeros((3, 3))
    b = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 0.5], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(position_error(a, b), [5.0, 0.5, 1.0])
    assert recall_at(np.array([0.2, 0.5, 1.0, np.nan]), 0.5) == pytest.approx(0.5)  # inclusive; NaN is a miss
    assert median(np.array([1.0, np.nan, 3.0])) == 2.0
    assert math.isnan(median(np.array([np.nan])))


def test_mean_std():
    m, s = mean_std([1.0, 2.0, 3.0])
    assert m == 2.0 and s == pytest.approx(1.0)  # ddof=1
    assert mean_std([0.7]) == (0.7, 0.0)
    assert all(math.isnan(v) for v in mean_std([]))
    assert math.isnan(mean_std([1.0, None])[0])


def test_regression_metrics_against_slow_loops():
    rng = np.random.default_rng(3)
    target = rng.normal(size=(40, 3)) * [1.0, 5.0, 0.1]
    pred = target + rng.normal(size=(40, 3)) * 0.5
    for j in range(3):
        t, p = target[:, j].tolist(), pred[:, j].tolist()
        mean = sum(t) / len(t)
        ss_res = sum((a - b) ** 2 for a, b in zip(t, p))
        ss_tot = sum((a - mean) ** 2 for a in t)
        assert r2_score(pred, target)[j] == pytest.approx(1 - ss_res / ss_tot, rel=1e-12)
        assert mean_absolute_error(pred, target)[j] == pytest.approx(sum(abs(a - b) for a, b in zip(t, p)) / 40)
    np.testing.assert_allclose(r2_score(target, target), 1.0)
    np.testing.assert_allclose(r2_score(np.broadcast_to(target.mean(axis=0), target.shape), target), 0.0, atol=1e-12)
    assert r2_score(pred[:, 0], target[:, 0]).shape == (1,)  # 1-D targets: one column
    assert math.isnan(r2_score(np.ones((4, 1)), np.full((4, 1), 2.0))[0])  # constant targets: undefined
    assert math.isnan(mean_absolute_error(np.zeros((0, 2)), np.zeros((0, 2)))[1])
    with pytest.raises(ValueError, match="same shape"):
        r2_score(np.zeros((3, 2)), np.zeros((3, 3)))


def test_tile_accuracy_counts_shared_positions():
    perms = np.array([[0, 1, 2, 3], [1, 0, 2, 3], [3, 2, 1, 0]])
    # right label: 4/4; label 1 read as 0: positions 2, 3 agree (2/4); label 2 read as 0: none agree (0/4)
    assert tile_accuracy(np.array([0, 0, 0]), np.array([0, 1, 2]), perms) == pytest.approx((4 + 2 + 0) / 12)
    assert tile_accuracy(np.array([2]), np.array([2]), perms) == 1.0
    assert math.isnan(tile_accuracy(np.zeros(0, int), np.zeros(0, int), perms))
    with pytest.raises(ValueError, match="lie in"):
        tile_accuracy(np.array([3]), np.array([0]), perms)
