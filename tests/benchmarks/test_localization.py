"""Localization against hand-built cases, exact twins and random features (the chance level)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.evaluation.localization import localization_errors, localization_summary, nearest_by_cosine
from envsim.camera import quat_from_yaw_pitch_roll


def _yaw(deg):
    return quat_from_yaw_pitch_roll(np.radians(np.asarray(deg, float)), 0.0, 0.0)


def test_nearest_by_cosine_matches_brute_force():
    rng = np.random.default_rng(0)
    q, d = rng.normal(size=(37, 6)), rng.normal(size=(50, 6))
    sim = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (d / np.linalg.norm(d, axis=1, keepdims=True)).T
    np.testing.assert_array_equal(nearest_by_cosine(q, d), sim.argmax(1))


def test_hand_built_two_scenes():
    # Scene 0: database views 0, 1, 2; query 3 looks like view 1. Scene 1: database view 4; query 5.
    features = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.1, 1, 0], [1, 1, 1], [1, 0, 0]], float)
    position = np.array([[0, 0, 0], [2, 0, 0], [0, 0, 5], [2, 0, 1], [7, 7, 7], [7, 7, 10]], float)
    rotation = _yaw([0, 90, 0, 60, 0, 45])
    scene = np.array([0, 0, 0, 0, 1, 1])
    query = np.array([0, 0, 0, 1, 0, 1], bool)
    e = localization_errors(features, position, rotation, scene, query, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(e.query, [3, 5])
    np.testing.assert_array_equal(e.retrieved, [1, 4])  # view 4 is query 5's whole database, from scene 1 only
    np.testing.assert_allclose(e.retrieval_m, [1.0, 3.0])
    np.testing.assert_allclose(e.retrieval_deg, [30.0, 45.0], atol=1e-9)
    np.testing.assert_allclose(e.oracle_m, [1.0, 3.0])
    assert e.database_views == 4
    s = localization_summary(e)
    assert s["loc_queries"] == 2 and s["loc_unanswered"] == 0
    assert s["loc_retrieval_median_m"] == pytest.approx(2.0)
    assert s["loc_retrieval_recall_1m"] == 0.5 and s["loc_retrieval_recall_0.5m"] == 0.0
    assert s["loc_retrieval_recall_1m_30deg"] == 0.5
    # A single database view: the ridge readout predicts its position; the chance draw is that view.
    assert e.regression_m[1] == pytest.approx(3.0) and e.chance_m[1] == pytest.approx(3.0)


def test_twins_give_zero_error_and_database_excludes_queries():
    rng = np.random.default_rng(1)
    n_db, n_q = 60, 20
    db_x = rng.normal(size=(n_db, 16))
    pos = rng.uniform(0, 10, size=(n_db, 3))
    rot = _yaw(rng.uniform(-180, 180, n_db))
    twin = rng.choice(n_db, n_q, replace=False)
    features = np.vstack([db_x, db_x[twin]])
    position = np.vstack([pos, pos[twin]])
    rotation = np.vstack([rot, -rot[twin]])  # -q: the same orientation
    scene = np.zeros(n_db + n_q, int)
    query = np.r_[np.zeros(n_db, bool), np.ones(n_q, bool)]
    e = localization_errors(features, position, rotation, scene, query, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(e.retrieved, twin)
    np.testing.assert_allclose(e.retrieval_m, 0, atol=1e-12)
    np.testing.assert_allclose(e.retrieval_deg, 0, atol=1e-6)
    s = localization_summary(e)
    assert s["loc_retrieval_recall_0.5m"] == 1.0 and s["loc_oracle_median_m"] == 0.0
    # An explicit database mask that contains the queries still never retrieves a query.
    e2 = localization_errors(features, position, rotation, scene, query, rng=np.random.default_rng(0),
                             database=np.ones(n_db + n_q, bool))
    np.testing.assert_array_equal(e2.retrieved, twin)


def test_random_features_are_at_chance_and_position_readout_works():
    rng = np.random.default_rng(2)
    n_db, n_q = 3000, 600
    position = rng.uniform(0, 10, size=(n_db + n_q, 3))
    rotation = _yaw(rng.uniform(-180, 180, n_db + n_q))
    scene = np.zeros(n_db + n_q, int)
    query = np.r_[np.zeros(n_db, bool), np.ones(n_q, bool)]
    random = rng.normal(size=(n_db + n_q, 32))
    s = localization_summary(
        localization_errors(random, position, rotation, scene, query, rng=np.random.default_rng(0))
    )
    assert s["loc_retrieval_median_m"] == pytest.approx(s["loc_chance_median_m"], rel=0.15)
    assert s["loc_retrieval_median_deg"] == pytest.approx(s["loc_chance_median_deg"], rel=0.2)
    assert s["loc_oracle_median_m"] < 0.2 * s["loc_chance_median_m"]
    assert s["loc_regression_median_m"] == pytest.approx(s["loc_chance_median_m"], rel=0.35)  # nothing to read out
    # Features that carry the position linearly: the ridge readout is near exact.
    informative = np.hstack([position, rng.normal(size=(n_db + n_q, 5))])
    s2 = localization_summary(
        localization_errors(informative, position, rotation, scene, query, rng=np.random.default_rng(0))
    )
    assert s2["loc_regression_median_m"] < 0.01
    assert s2["loc_chance_median_m"] == s["loc_chance_median_m"]  # chance ignores features: same rng, same draws


def test_no_queries_and_scene_without_database():
    position = np.zeros((3, 3))
    rotation = _yaw([0, 0, 0])
    feats = np.eye(3)
    none = localization_summary(localization_errors(feats, position, rotation, np.zeros(3, int), np.zeros(3, bool),
                                                    rng=np.random.default_rng(0)))
    assert none["loc_queries"] == 0 and math.isnan(none["loc_retrieval_median_m"])
    # Query 2 is alone in scene 1: it cannot be answered (NaN, counted as a miss).
    e = localization_errors(feats, position, rotation, np.array([0, 0, 1]), np.array([0, 1, 1], bool),
                            rng=np.random.default_rng(0))
    s = localization_summary(e)
    assert s["loc_unanswered"] == 1 and s["loc_retrieval_recall_1m"] == 0.5 and s["loc_retrieval_median_m"] == 0.0
