"""Spatial index over camera centres: all same-scene view pairs within a radius, and k nearest neighbours.

Spatial positives (ESS, arXiv 2401.15120) are views of the same scene taken close to each other. Views
are grouped by scene id and one KD-tree (:class:`scipy.spatial.cKDTree`) is built per scene, so the work
is O(n log n + P) for n views and P pairs, never O(n^2), and views of different scenes are never paired
however close their coordinates are.

Conventions: positions are camera centres in metres (world frame, Y up); distances are Euclidean in 3D.
A pair (i, j) is *within* the radius when ``|p_i - p_j| <= radius`` (inclusive, as ``cKDTree.query_pairs``;
at the boundary the decision is the squared-distance comparison ``d^2 <= r^2`` in float64), so identical
poses (distance 0) are always pairs, also for ``radius=0``.

Memory: the result holds 16 bytes per pair; building it needs about 1.5x that at peak (2.5x when the
views of different scenes interleave). The number of
pairs grows with the density of views: 10,000 views spread over 144 m^2 give ~1.1 million pairs at
1 m, so 1 million views at that density give ~110 million pairs (1.8 GB).
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.spatial import cKDTree

logger = logging.getLogger(__name__)

MAX_VIEWS = 1 << 31  # pair keys pack (i, j) into one int64 as (i << 32) | j


def _check_views(position: np.ndarray, scene: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated float64 (N, 3) positions and int64 (N,) scene ids."""
    position = np.asarray(position)
    scene = np.asarray(scene)
    if position.ndim != 2 or position.shape[1] != 3:
        raise ValueError(f"position must have shape (N, 3) (camera centres in metres), got {position.shape}")
    if scene.shape != (position.shape[0],):
        raise ValueError(
            f"scene must have shape (N,) with one scene id per view, got {scene.shape} for {position.shape[0]} views"
        )
    if scene.size and not np.issubdtype(scene.dtype, np.integer):
        raise ValueError(f"scene ids must be integers, got dtype {scene.dtype}; map scene names to ids first")
    position = position.astype(np.float64, copy=False)
    if not np.all(np.isfinite(position)):
        bad = int(np.flatnonzero(~np.all(np.isfinite(position), axis=1))[0])
        raise ValueError(f"position {bad} is not finite ({position[bad].tolist()}); drop views without a pose")
    return position, scene.astype(np.int64, copy=False)


def scene_groups(scene: np.ndarray) -> list[np.ndarray]:
    """Global view indices of each scene, in increasing scene id.

    Args:
        scene: int (N,) scene id of every view.

    Returns:
        One int64 array per scene id, the indices of its views in increasing order.
    """
    scene = np.asarray(scene)
    order = np.argsort(scene, kind="stable")  # (N,) grouped by scene, increasing index within a scene
    bounds = np.flatnonzero(np.diff(scene[order])) + 1
    return [g.astype(np.int64, copy=False) for g in np.split(order, bounds)] if scene.size else []


def radius_pairs(position: np.ndarray, scene: np.ndarray, *, radius: float) -> np.ndarray:
    """All unordered pairs of views of the same scene whose camera centres are within ``radius``.

    Args:
        position: float (N, 3) camera centres in metres.
        scene: int (N,) scene id of every view.
        radius: metres, >= 0; inclusive (``distance <= radius``).

    Returns:
        int64 (P, 2) pairs ``(i, j)`` with ``i < j``, rows sorted lexicographically; (0, 2) when there are none.
    """
    if not (np.isfinite(radius) and radius >= 0):
        raise ValueError(f"radius must be a finite distance in metres >= 0, got {radius}")
    position, scene = _check_views(position, scene)
    n = position.shape[0]
    if n > MAX_VIEWS:
        raise ValueError(f"radius_pairs handles at most {MAX_VIEWS} views at once, got {n}; pair scenes in batches")
    keys = []  # per scene: int64 (P_s,) sorted pair keys (i << 32) | j
    for idx in scene_groups(scene):
        if idx.size < 2:
            continue
        local = cKDTree(position[idx]).query_pairs(radius, output_type="ndarray")  # (P_s, 2), a < b
        # idx increases within a scene, so local a < b maps to global i < j.
        k = (idx[local[:, 0]] << 32) | idx[local[:, 1]]  # (P_s,) sorts as (i, j) lexicographically
        del local
        if k.size:
            k.sort()
            keys.append(k)
    if not keys:
        return np.empty((0, 2), np.int64)
    keys.sort(key=lambda k: int(k[0]))
    if any(a[-1] >= b[0] for a, b in zip(keys[:-1], keys[1:])):  # scenes interleave in the view order
        keys = [np.sort(np.concatenate(keys))]
    out = np.empty((sum(k.size for k in keys), 2), np.int64)  # (P, 2)
    start = 0
    for k in keys:  # in key order: the rows come out sorted without a global sort
        np.right_shift(k, 32, out=out[start : start + k.size, 0])
        np.bitwise_and(k, 0xFFFFFFFF, out=out[start : start + k.size, 1])
        start += k.size
    logger.debug("radius_pairs: %d views, radius %.3g m -> %d pairs", n, radius, out.shape[0])
    return out


def knn(position: np.ndarray, scene: np.ndarray, *, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest other views of the same scene for every view.

    A view is never its own neighbour, but other views at the same position are (distance 0). Ties are
    broken by the KD-tree, deterministically for the same input.

    Args:
        position: float (N, 3) camera centres in metres.
        scene: int (N,) scene id of every view.
        k: neighbours per view, >= 1.

    Returns:
        ``(index, distance)``: int64 (N, k) global view indices ordered by increasing distance, padded
        with -1 when the view's scene has at most k views; float64 (N, k) distances in metres, padded
        with inf.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1 (neighbours per view), got {k!r}")
    position, scene = _check_views(position, scene)
    n = position.shape[0]
    index = np.full((n, k), -1, np.int64)  # (N, k)
    distance = np.full((n, k), np.inf)  # (N, k)
    for idx in scene_groups(scene):
        m = idx.size
        kk = min(k + 1, m)  # one extra for the view itself
        if kk < 2:
            continue
        d, j = cKDTree(position[idx]).query(position[idx], k=kk)  # (m, kk)
        # Drop the view itself; with more than kk views at distance 0 it may be missing: drop the last then.
        drop = j == np.arange(m)[:, None]  # (m, kk)
        drop[~drop.any(axis=1), -1] = True
        keep = ~drop
        index[idx, : kk - 1] = idx[j[keep].reshape(m, kk - 1)]
        distance[idx, : kk - 1] = d[keep].reshape(m, kk - 1)
    return index, distance
