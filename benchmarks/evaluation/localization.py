"""Spatial localization from frozen features: where in its scene was a query view taken?

The protocol follows :mod:`envsim.store.splits`: queries are the held-out trajectories; a query is localized
within its own scene against that scene's **database**, the views of the scene that are not queries (in a
familiar scene these are the training views; in an unfamiliar scene the other trajectories, never seen in
training). Reference: ESS (arXiv 2401.15120), spatial localization in familiar and unfamiliar environments.

Per query (all vectorised per scene):

- **retrieval**: the database view with the highest cosine similarity of features; its pose is the
  prediction (position error in metres, geodesic rotation error in degrees);
- **regression**: a ridge readout from features to the camera position ``(x, y, z)``, fit on the scene's
  database views (:func:`benchmarks.evaluation.probes.ridge_regression`);
- **chance** (the floor): a database view of the scene drawn uniformly at random with the given ``rng``;
- **oracle** (the ceiling of retrieval): the database view whose camera centre is nearest the query's.

A query whose scene has no database view cannot be answered: its errors are NaN; medians skip it and
recalls count it as a miss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from benchmarks.evaluation.metrics import median, position_error, recall_at, rotation_error_deg
from benchmarks.evaluation.probes import ridge_regression

SIM_CHUNK = 2048  # queries per similarity block: bounds the (chunk, database) matrix
RECALL_M = (0.5, 1.0)  # position recall thresholds, metres
JOINT_RECALL = (1.0, 30.0)  # (metres, degrees) joint recall threshold


@dataclass(frozen=True)
class LocalizationErrors:
    """Per-query errors of one localization run.

    Attributes:
        query: int64 (Q,) view indices of the queries (ascending).
        retrieved: int64 (Q,) view index of each query's retrieved database view (-1: no database).
        retrieval_m: (Q,) metres, position error of retrieval.
        retrieval_deg: (Q,) degrees, rotation error of retrieval.
        regression_m: (Q,) metres, position error of the ridge readout.
        chance_m: (Q,) metres, position error of a random database view.
        chance_deg: (Q,) degrees, rotation error of a random database view.
        oracle_m: (Q,) metres, distance to the nearest database camera centre.
        database_views: database views over all scenes with queries.
    """

    query: np.ndarray
    retrieved: np.ndarray
    retrieval_m: np.ndarray
    retrieval_deg: np.ndarray
    regression_m: np.ndarray
    chance_m: np.ndarray
    chance_deg: np.ndarray
    oracle_m: np.ndarray
    database_views: int


def nearest_by_cosine(query_x: np.ndarray, database_x: np.ndarray) -> np.ndarray:
    """Index of the most cosine-similar database row for every query row (ties: the lowest index).

    Args:
        query_x: (Q, C) features.
        database_x: (D, C) features, D >= 1.

    Returns:
        int64 (Q,) indices into ``database_x``.
    """
    q, d = _unit_rows(query_x), _unit_rows(database_x)
    if d.shape[0] == 0:
        raise ValueError("the database is empty")
    out = np.empty(q.shape[0], np.int64)
    for s in range(0, q.shape[0], SIM_CHUNK):
        out[s : s + SIM_CHUNK] = np.argmax(q[s : s + SIM_CHUNK] @ d.T, axis=1)  # (c, D) -> (c,)
    return out


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be a 2-D array (views, channels), got shape {x.shape}")
    norm = np.linalg.norm(x, axis=1, keepdims=True)  # (n, 1)
    return x / np.where(norm > 0, norm, 1.0)


def localization_errors(
    features: np.ndarray,
    position: np.ndarray,
    rotation: np.ndarray,
    scene: np.ndarray,
    query: np.ndarray,
    *,
    rng: np.random.Generator,
    database: np.ndarray | None = None,
    alpha: float = 1.0,
) -> LocalizationErrors:
    """Localize every query view within its scene (module docstring: retrieval, regression, chance, oracle).

    Args:
        features: (N, C) features of all views (rows outside ``query`` and ``database`` are ignored).
        position: (N, 3) camera centres in metres.
        rotation: (N, 4) camera-to-world unit quaternions (w, x, y, z).
        scene: int (N,) scene id of every view.
        query: bool (N,) the query views.
        rng: draws the chance baseline (scenes in ascending id order, one draw per query).
        database: bool (N,) views that may be retrieved; default ``~query``. Always restricted to the
            query's scene, and never containing a query.
        alpha: ridge penalty of the regression readout.

    Returns:
        The per-query errors.

    Raises:
        ValueError: shapes disagree.
    """
    features = np.asarray(features)
    n = features.shape[0]
    position = np.asarray(position, np.float64)
    rotation = np.asarray(rotation, np.float64)
    scene = np.asarray(scene)
    query = np.asarray(query, bool)
    database = ~query if database is None else np.asarray(database, bool) & ~query
    if features.ndim != 2 or position.shape != (n, 3) or rotation.shape != (n, 4):
        raise ValueError(
            f"features (N, C), position (N, 3) and rotation (N, 4) must describe the same N views, got "
            f"{features.shape}, {position.shape}, {rotation.shape}"
        )
    if scene.shape != (n,) or query.shape != (n,) or database.shape != (n,):
        raise ValueError(f"scene, query and database must be (N,) = ({n},) arrays")
    q_idx = np.flatnonzero(query)  # (Q,)
    nq = q_idx.size
    keys = ("retrieval_m", "retrieval_deg", "regression_m", "chance_m", "chance_deg", "oracle_m")
    out = {k: np.full(nq, np.nan) for k in keys}  # (Q,) each
    retrieved = np.full(nq, -1, np.int64)
    db_total = 0
    for s in np.unique(scene[q_idx]):
        rows = np.flatnonzero(scene[q_idx] == s)  # positions within q_idx
        qi = q_idx[rows]  # (Qs,) view indices
        di = np.flatnonzero(database & (scene == s))  # (Ds,) view indices
        if di.size == 0:
            continue
        db_total += di.size
        hit = di[nearest_by_cosine(features[qi], features[di])]  # (Qs,)
        retrieved[rows] = hit
        out["retrieval_m"][rows] = position_error(position[qi], position[hit])
        out["retrieval_deg"][rows] = rotation_error_deg(rotation[qi], rotation[hit])
        pred = ridge_regression(features[di], position[di], features[qi], alpha=alpha)  # (Qs, 3)
        out["regression_m"][rows] = position_error(position[qi], pred)
        rand = di[rng.integers(0, di.size, size=qi.size)]  # (Qs,)
        out["chance_m"][rows] = position_error(position[qi], position[rand])
        out["chance_deg"][rows] = rotation_error_deg(rotation[qi], rotation[rand])
        out["oracle_m"][rows] = cKDTree(position[di]).query(position[qi])[0]
    return LocalizationErrors(query=q_idx, retrieved=retrieved, database_views=db_total, **out)


def localization_summary(errors: LocalizationErrors) -> dict[str, float | int]:
    """The report's localization metrics from per-query errors.

    Returns:
        ``loc_queries``, ``loc_database_views``, ``loc_unanswered`` (queries without a database);
        ``loc_retrieval_median_m``, ``loc_retrieval_median_deg``, ``loc_retrieval_recall_0.5m``,
        ``loc_retrieval_recall_1m``, ``loc_retrieval_recall_1m_30deg`` (position and rotation jointly);
        ``loc_regression_median_m``, ``loc_regression_recall_1m``; ``loc_chance_median_m``,
        ``loc_chance_median_deg``, ``loc_chance_recall_1m``; ``loc_oracle_median_m``. Medians in metres or
        degrees over the answered queries, recalls in [0, 1] over all queries; NaN without queries.
    """
    e = errors
    d_max, a_max = JOINT_RECALL
    joint = np.where((e.retrieval_m <= d_max) & (e.retrieval_deg <= a_max), 0.0, np.inf)  # (Q,)
    out: dict[str, float | int] = {
        "loc_queries": int(e.query.size),
        "loc_database_views": int(e.database_views),
        "loc_unanswered": int(np.sum(e.retrieved < 0)),
        "loc_retrieval_median_m": median(e.retrieval_m),
        "loc_retrieval_median_deg": median(e.retrieval_deg),
    }
    for t in RECALL_M:
        out[f"loc_retrieval_recall_{t:g}m"] = recall_at(e.retrieval_m, t)
    out[f"loc_retrieval_recall_{d_max:g}m_{a_max:g}deg"] = recall_at(joint, 0.0)
    out["loc_regression_median_m"] = median(e.regression_m)
    out["loc_regression_recall_1m"] = recall_at(e.regression_m, 1.0)
    out["loc_chance_median_m"] = median(e.chance_m)
    out["loc_chance_median_deg"] = median(e.chance_deg)
    out["loc_chance_recall_1m"] = recall_at(e.chance_m, 1.0)
    out["loc_oracle_median_m"] = median(e.oracle_m)
    return out
