"""Geometric pretext labels computed from depth maps and camera poses.

Four families of labels, each a pure function of its inputs (plus an explicit ``numpy.random.Generator``
wherever something is sampled):

1. **Relative pose** of view B in view A's camera frame (:func:`relative_pose`, :func:`relative_pose_matrix`).
2. **Regional depth ordering** of three flat, well-separated regions of one view
   (:func:`sample_depth_order`), one of the 3! = 6 orders in :data:`PERMUTATIONS_3`.
3. **Relative position and scale of two local crops** of one view (:func:`sample_crop_pair`,
   :func:`crop_relation`).
4. **Jigsaw and flipped-patch labels** (:func:`jigsaw_permutations`, :func:`apply_jigsaw`,
   :func:`apply_flipped_patch`).

Conventions (DESIGN.md): world Y up, metres; the camera looks down -Z with +X right and +Y up (OpenGL); a
pose is the camera-to-world 4x4; rotations are unit quaternions (w, x, y, z); depth is z-depth in metres
with 0 meaning no surface. Image boxes are ``(row0, col0, row1, col1)`` in pixels, half-open
(``row1`` and ``col1`` are one past the last row and column), rows growing downwards.

References:
    Liu et al., "Spatial-SSRL: Enhancing Spatial Understanding via Self-Supervised Reinforcement
    Learning", arXiv:2510.27606, 2025 (regional depth ordering, flipped patches, shuffled patches).
    Doersch et al., "Unsupervised Visual Representation Learning by Context Prediction", ICCV 2015
    (relative position of two patches).
    Noroozi & Favaro, "Unsupervised Learning of Visual Representations by Solving Jigsaw Puzzles",
    ECCV 2016 (maximal-Hamming permutation sets).
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from scipy import ndimage

from envsim.camera import matrix_to_quat

# ---------------------------------------------------------------------------------------------------------
# 1. Relative pose
# ---------------------------------------------------------------------------------------------------------

_HOMOGENEOUS_ROW_TOLERANCE = 1e-6


def _check_poses(pose: np.ndarray, name: str) -> np.ndarray:
    pose = np.asarray(pose, dtype=np.float64)
    if pose.ndim < 2 or pose.shape[-2:] != (4, 4):
        raise ValueError(f"{name} must have shape (4, 4) or (P, 4, 4) (camera-to-world matrices), got {pose.shape}")
    if not np.all(np.isfinite(pose)):
        raise ValueError(f"{name} contains NaN or inf; give finite camera-to-world matrices")
    bottom = pose[..., 3, :]
    if not np.allclose(bottom, [0.0, 0.0, 0.0, 1.0], atol=_HOMOGENEOUS_ROW_TOLERANCE):
        raise ValueError(
            f"{name} has a last row other than [0, 0, 0, 1]; give rigid camera-to-world 4x4 matrices "
            "(translation in the last column, not the last row)"
        )
    return pose


def relative_pose_matrix(pose_a: np.ndarray, pose_b: np.ndarray) -> np.ndarray:
    """Pose of camera B expressed in camera A's frame: ``T_ab = inv(T_a) @ T_b``.

    Args:
        pose_a: camera-to-world 4x4 of view A, (4, 4) or (P, 4, 4); rigid (rotation + translation, metres).
        pose_b: camera-to-world 4x4 of view B, shape broadcastable against ``pose_a``.

    Returns:
        float64 (..., 4, 4): maps points in B's camera frame to A's camera frame (OpenGL axes: x right,
        y up, z backward), leading shape the broadcast of the inputs'.

    Raises:
        ValueError: on a wrong shape, non-finite values or a last row other than [0, 0, 0, 1].
    """
    pose_a = _check_poses(pose_a, "pose_a")
    pose_b = _check_poses(pose_b, "pose_b")
    r_a = pose_a[..., :3, :3]  # (..., 3, 3)
    t_a = pose_a[..., :3, 3]  # (..., 3)
    r_a_inv = np.swapaxes(r_a, -1, -2)  # rigid inverse: R^T
    inv_a = np.zeros(pose_a.shape)
    inv_a[..., :3, :3] = r_a_inv
    inv_a[..., :3, 3] = -np.einsum("...ij,...j->...i", r_a_inv, t_a)
    inv_a[..., 3, 3] = 1.0
    return inv_a @ pose_b  # (..., 4, 4)


def relative_pose(pose_a: np.ndarray, pose_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relative translation and rotation of view B in view A's camera frame.

    Example: B one metre to A's right gives translation (1, 0, 0); B one metre ahead of A gives
    (0, 0, -1); B turned 90 degrees left of A (yaw +90 degrees about A's +Y) gives rotation
    (cos 45deg, 0, sin 45deg, 0).

    Args:
        pose_a: camera-to-world 4x4 of view A, (4, 4) or (P, 4, 4).
        pose_b: camera-to-world 4x4 of view B, broadcastable against ``pose_a``.

    Returns:
        translation: float64 (..., 3), B's camera centre in A's camera frame in metres (x right, y up,
            z backward: OpenGL).
        rotation: float64 (..., 4), unit quaternion (w, x, y, z) with w >= 0 of B's camera orientation in
            A's camera frame.
    """
    t_ab = relative_pose_matrix(pose_a, pose_b)  # (..., 4, 4)
    return t_ab[..., :3, 3].copy(), matrix_to_quat(t_ab[..., :3, :3])


# ---------------------------------------------------------------------------------------------------------
# 2. Regional depth ordering
# ---------------------------------------------------------------------------------------------------------

PERMUTATIONS_3: np.ndarray = np.array(list(itertools.permutations(range(3))), dtype=np.int64)
"""The 3! = 6 orders of three regions, lexicographic: label ``i`` means ``order == PERMUTATIONS_3[i]``.

Rows: 0 (0, 1, 2), 1 (0, 2, 1), 2 (1, 0, 2), 3 (1, 2, 0), 4 (2, 0, 1), 5 (2, 1, 0).
"""
PERMUTATIONS_3.flags.writeable = False

_PERMUTATION_3_INDEX = {tuple(int(v) for v in p): i for i, p in enumerate(PERMUTATIONS_3)}

_DEPTH_ORDER_BATCH = 32  # candidate triples evaluated per vectorised batch


@dataclass(frozen=True)
class DepthOrderConfig:
    """How regions for the depth-ordering label are chosen.

    Attributes:
        region_size: side of the square regions in pixels, >= 1.
        max_internal_range: a region qualifies when the range (max - min) of normalised depth inside it is
            strictly below this, in (0, 1].
        min_separation: the three regions' median normalised depths must differ pairwise by at least this,
            in [0, 1).
        max_tries: number of random candidate triples to test before giving up, >= 1.
    """

    region_size: int = 16
    max_internal_range: float = 0.15
    min_separation: float = 0.05
    max_tries: int = 200

    def __post_init__(self) -> None:
        if int(self.region_size) != self.region_size or self.region_size < 1:
            raise ValueError(f"region_size must be a positive whole number of pixels, got {self.region_size}")
        if not 0.0 < self.max_internal_range <= 1.0:
            raise ValueError(
                f"max_internal_range is a fraction of the view's depth range and must lie in (0, 1], "
                f"got {self.max_internal_range}; 0.15 is the usual value"
            )
        if not 0.0 <= self.min_separation < 1.0:
            raise ValueError(
                f"min_separation is a fraction of the view's depth range and must lie in [0, 1), "
                f"got {self.min_separation}; 0.05 is the usual value"
            )
        if int(self.max_tries) != self.max_tries or self.max_tries < 1:
            raise ValueError(f"max_tries must be a positive whole number, got {self.max_tries}")


@dataclass(frozen=True)
class DepthOrderSample:
    """Three regions of one view and their near-to-far order.

    Attributes:
        boxes: int64 (3, 4), ``(row0, col0, row1, col1)`` half-open pixel boxes in random presentation
            order (the order a model sees them in).
        order: int64 (3,), indices into ``boxes`` from nearest to farthest.
        label: index of ``order`` in :data:`PERMUTATIONS_3`, in [0, 6).
        median_depth: float64 (3,), median normalised depth of each box, in [0, 1] (0 = the view's
            nearest valid pixel, 1 = its farthest).
    """

    boxes: np.ndarray
    order: np.ndarray
    label: int
    median_depth: np.ndarray


def normalise_depth(depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Depth rescaled to [0, 1] over the view's valid pixels: ``d' = (d - min) / (max - min)``.

    Args:
        depth: (H, W) z-depth in metres; 0 or non-finite means no surface.

    Returns:
        normalised: float64 (H, W), 0 at invalid pixels and everywhere when the valid depth range is empty
            or zero (fewer than two distinct depths).
        valid: bool (H, W), True where the depth is finite and positive.
    """
    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim != 2:
        raise ValueError(f"depth must be one (H, W) view in metres, got shape {depth.shape}")
    valid = np.isfinite(depth) & (depth > 0)
    out = np.zeros(depth.shape)
    if not np.any(valid):
        return out, valid
    d = depth[valid]
    lo, hi = float(d.min()), float(d.max())
    if hi > lo:
        out[valid] = (d - lo) / (hi - lo)
    return out, valid


def qualified_regions(depth: np.ndarray, *, config: DepthOrderConfig) -> np.ndarray:
    """Which square regions of a view are flat enough and fully valid to take part in depth ordering.

    Computed for every top-left corner at once: sliding-window minimum and maximum of normalised depth
    (separable ``scipy.ndimage`` filters) and the count of invalid pixels from an integral image.

    Args:
        depth: (H, W) z-depth in metres, 0 = no surface.
        config: region size and flatness threshold.

    Returns:
        bool (H - s + 1, W - s + 1) with s = ``config.region_size``: entry (r, c) is True when the box
        ``(r, c, r + s, c + s)`` has no invalid pixel and its normalised-depth range is below
        ``config.max_internal_range``. All False when the view has no depth variation.

    Raises:
        ValueError: when the view is smaller than one region.
    """
    dn, valid = normalise_depth(depth)
    h, w = dn.shape
    s = int(config.region_size)
    if h < s or w < s:
        raise ValueError(
            f"depth is {h}x{w} pixels but DepthOrderConfig.region_size is {s}; use a region_size of at most "
            f"{min(h, w)}"
        )
    n_rows, n_cols = h - s + 1, w - s + 1
    if not np.any(valid) or float(dn.max()) <= 0.0:
        return np.zeros((n_rows, n_cols), dtype=bool)
    # With origin 0 a size-s filter's window for output j starts at j - s // 2, so the window whose
    # top-left corner is r sits at output r + s // 2 (true for odd and even s).
    o = s // 2
    win = (slice(o, o + n_rows), slice(o, o + n_cols))
    hi = ndimage.maximum_filter1d(ndimage.maximum_filter1d(dn, s, axis=0, mode="nearest"), s, axis=1, mode="nearest")
    lo = ndimage.minimum_filter1d(ndimage.minimum_filter1d(dn, s, axis=0, mode="nearest"), s, axis=1, mode="nearest")
    internal_range = hi[win] - lo[win]  # (n_rows, n_cols)
    integral = np.zeros((h + 1, w + 1), dtype=np.int64)
    integral[1:, 1:] = (~valid).astype(np.int64).cumsum(axis=0).cumsum(axis=1)
    n_invalid = integral[s:, s:] - integral[:-s, s:] - integral[s:, :-s] + integral[:-s, :-s]  # (n_rows, n_cols)
    return (n_invalid == 0) & (internal_range < config.max_internal_range)


def depth_order_label(order: np.ndarray) -> int:
    """Index of a near-to-far order of three regions in :data:`PERMUTATIONS_3`.

    Args:
        order: (3,) a permutation of (0, 1, 2).
    """
    key = tuple(int(v) for v in np.asarray(order).reshape(-1))
    if key not in _PERMUTATION_3_INDEX:
        raise ValueError(f"order must be a permutation of (0, 1, 2), got {key}")
    return _PERMUTATION_3_INDEX[key]


def sample_depth_order(
    depth: np.ndarray, *, rng: np.random.Generator, config: DepthOrderConfig
) -> DepthOrderSample | None:
    """Pick three flat, disjoint, depth-separated square regions of a view and label their depth order.

    Depth is normalised per view (:func:`normalise_depth`). Candidate regions are every square of side
    ``config.region_size`` without invalid pixels whose internal normalised-depth range is below
    ``config.max_internal_range`` (:func:`qualified_regions`). Up to ``config.max_tries`` random triples of
    candidates are drawn (in batches, vectorised); the first triple whose boxes do not overlap and whose
    median normalised depths differ pairwise by at least ``config.min_separation`` is returned. The boxes
    keep their random draw order as the presentation order; the label is the near-to-far order.

    Reference: Liu et al., Spatial-SSRL, arXiv:2510.27606 (regional depth ordering).

    Args:
        depth: (H, W) z-depth in metres, 0 = no surface.
        rng: the source of randomness.
        config: region size and thresholds.

    Returns:
        The sample, or None when no qualifying triple was found within ``config.max_tries`` (for example a
        flat wall facing the camera, or a view with fewer than three qualifying regions).

    Raises:
        ValueError: when the view is smaller than one region.
    """
    mask = qualified_regions(depth, config=config)  # (n_rows, n_cols)
    rows, cols = np.nonzero(mask)
    n = rows.size
    if n < 3:
        return None
    dn, _ = normalise_depth(depth)
    s = int(config.region_size)
    windows = np.lib.stride_tricks.sliding_window_view(dn, (s, s))  # (n_rows, n_cols, s, s), a view
    pairs = ((0, 1), (0, 2), (1, 2))
    remaining = int(config.max_tries)
    while remaining > 0:
        batch = min(_DEPTH_ORDER_BATCH, remaining)
        remaining -= batch
        pick = rng.integers(0, n, size=(batch, 3))  # (T, 3) candidate indices
        r0, c0 = rows[pick], cols[pick]  # (T, 3) each
        ok = np.ones(batch, dtype=bool)
        for i, j in pairs:  # disjoint boxes: separated along rows or along columns
            ok &= (np.abs(r0[:, i] - r0[:, j]) >= s) | (np.abs(c0[:, i] - c0[:, j]) >= s)
        if not np.any(ok):
            continue
        med = np.median(windows[r0[ok], c0[ok]].reshape(-1, 3, s * s), axis=-1)  # (T_ok, 3)
        sep = np.ones(med.shape[0], dtype=bool)
        for i, j in pairs:
            sep &= np.abs(med[:, i] - med[:, j]) >= config.min_separation
        hits = np.flatnonzero(sep)
        if hits.size == 0:
            continue
        k = int(hits[0])
        rr, cc, m = r0[ok][k], c0[ok][k], med[k]  # (3,) each
        boxes = np.stack([rr, cc, rr + s, cc + s], axis=1).astype(np.int64)  # (3, 4)
        order = np.argsort(m, kind="stable").astype(np.int64)  # near to far
        return DepthOrderSample(boxes=boxes, order=order, label=depth_order_label(order), median_depth=m.copy())
    return None


# ---------------------------------------------------------------------------------------------------------
# 3. Relative position and scale of two crops
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CropConfig:
    """How two local crops of one view are drawn.

    Each crop's size is set by a scale ``s`` drawn uniformly in ``[min_scale, max_scale]`` and an aspect
    ratio ``a`` (width / height) drawn log-uniformly in ``[1 / max_aspect, max_aspect]``: the crop is
    ``round(s * m / sqrt(a))`` rows by ``round(s * m * sqrt(a))`` columns, with m the shorter image side,
    clipped to the image. Its position is uniform over all placements inside the image. The two crops are
    drawn independently and may overlap.

    Attributes:
        min_scale: smallest crop side (geometric mean of height and width) as a fraction of the shorter
            image side, in (0, 1].
        max_scale: largest such fraction, in [min_scale, 1].
        max_aspect: largest width / height ratio (and inverse), >= 1; 1 gives square crops.
    """

    min_scale: float = 0.2
    max_scale: float = 0.6
    max_aspect: float = 4.0 / 3.0

    def __post_init__(self) -> None:
        if not 0.0 < self.min_scale <= 1.0:
            raise ValueError(f"min_scale is a fraction of the image side and must lie in (0, 1], got {self.min_scale}")
        if not self.min_scale <= self.max_scale <= 1.0:
            raise ValueError(
                f"max_scale must lie in [min_scale, 1] = [{self.min_scale}, 1], got {self.max_scale}; "
                "swap the two if they are reversed"
            )
        if not (math.isfinite(self.max_aspect) and self.max_aspect >= 1.0):
            raise ValueError(f"max_aspect is a ratio >= 1 (1 = square crops only), got {self.max_aspect}")


@dataclass(frozen=True)
class CropPair:
    """Two crops of one view and their relation (see :func:`crop_relation`).

    Attributes:
        box_a: int64 (4,), ``(row0, col0, row1, col1)`` half-open pixel box of crop A.
        box_b: int64 (4,), the same for crop B.
        offset: float64 (2,), ``(dx, dy)`` of B's centre relative to A's, as fractions of the image width
            and height; x right, y down.
        log_scale: ``log(sqrt(area_b / area_a))``, natural log.
    """

    box_a: np.ndarray
    box_b: np.ndarray
    offset: np.ndarray
    log_scale: float


def crop_relation(
    box_a: np.ndarray, box_b: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray | float]:
    """Relative position and scale of crop B with respect to crop A.

    ``offset = (centre_b - centre_a) / (width, height)`` as ``(dx, dy)`` in image coordinates: x to the
    right, **y downwards** (rows grow downwards), so a crop below A has dy > 0. ``log_scale =
    log(sqrt(area_b / area_a))``: 0 for equal areas, ``log(0.5)`` when B has half A's side.

    Reference: Doersch et al., "Unsupervised Visual Representation Learning by Context Prediction",
    ICCV 2015 (relative position of two patches), here continuous and with scale.

    Args:
        box_a: (4,) or (P, 4), ``(row0, col0, row1, col1)`` half-open boxes in pixels.
        box_b: same layout, broadcastable against ``box_a``.
        height: image height in pixels, >= 1.
        width: image width in pixels, >= 1.

    Returns:
        offset: float64 (..., 2), ``(dx, dy)`` as fractions of the image width and height.
        log_scale: float64 (...,); a float for single boxes.

    Raises:
        ValueError: on a wrong shape, an empty box or a non-positive image size.
    """
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got height={height}, width={width}")
    a = np.asarray(box_a, dtype=np.float64)
    b = np.asarray(box_b, dtype=np.float64)
    for name, box in (("box_a", a), ("box_b", b)):
        if box.ndim < 1 or box.shape[-1] != 4:
            raise ValueError(f"{name} must have shape (4,) or (P, 4) as (row0, col0, row1, col1), got {box.shape}")
        if np.any(box[..., 2] <= box[..., 0]) or np.any(box[..., 3] <= box[..., 1]):
            raise ValueError(
                f"{name} has an empty box; boxes are (row0, col0, row1, col1) with row1 > row0 and col1 > col0"
            )
    centre_a = np.stack([(a[..., 1] + a[..., 3]) / 2, (a[..., 0] + a[..., 2]) / 2], axis=-1)  # (..., 2) as (x, y)
    centre_b = np.stack([(b[..., 1] + b[..., 3]) / 2, (b[..., 0] + b[..., 2]) / 2], axis=-1)
    offset = (centre_b - centre_a) / np.array([width, height], dtype=np.float64)  # (..., 2)
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    log_scale = 0.5 * np.log(area_b / area_a)  # (...,)
    return offset, log_scale[()]


def sample_crop_boxes(height: int, width: int, *, rng: np.random.Generator, config: CropConfig) -> np.ndarray:
    """Draw two independent crops of an image: int64 (2, 4) ``(row0, col0, row1, col1)`` half-open boxes, both
    inside the image and at least one pixel on a side (the boxes of :func:`sample_crop_pair`, from the same
    draws, without their relation: for labelling many views, whose relations are computed at once).

    Args:
        height: image height in pixels, >= 1.
        width: image width in pixels, >= 1.
        rng: the source of randomness.
        config: crop scales and aspect jitter (see :class:`CropConfig`).
    """
    if int(height) != height or int(width) != width or height < 1 or width < 1:
        raise ValueError(f"image size must be positive whole pixels, got height={height}, width={width}")
    height, width = int(height), int(width)
    scale = rng.uniform(config.min_scale, config.max_scale, size=2)  # (2,)
    log_aspect = rng.uniform(-math.log(config.max_aspect), math.log(config.max_aspect), size=2)  # (2,)
    side = scale * min(height, width)  # (2,) pixels
    root_aspect = np.exp(log_aspect / 2)
    crop_h = np.clip(np.rint(side / root_aspect), 1, height).astype(np.int64)  # (2,)
    crop_w = np.clip(np.rint(side * root_aspect), 1, width).astype(np.int64)  # (2,)
    row0 = rng.integers(0, height - crop_h + 1)  # (2,)
    col0 = rng.integers(0, width - crop_w + 1)  # (2,)
    return np.stack([row0, col0, row0 + crop_h, col0 + crop_w], axis=1).astype(np.int64)  # (2, 4)


def sample_crop_pair(height: int, width: int, *, rng: np.random.Generator, config: CropConfig) -> CropPair:
    """Draw two independent crops of an image and their relative position and scale.

    Args:
        height: image height in pixels, >= 1.
        width: image width in pixels, >= 1.
        rng: the source of randomness.
        config: crop scales and aspect jitter (see :class:`CropConfig`).

    Returns:
        The two boxes of :func:`sample_crop_boxes` with :func:`crop_relation` of them.
    """
    boxes = sample_crop_boxes(height, width, rng=rng, config=config)
    offset, log_scale = crop_relation(boxes[0], boxes[1], int(height), int(width))
    return CropPair(box_a=boxes[0], box_b=boxes[1], offset=offset, log_scale=float(log_scale))


# ---------------------------------------------------------------------------------------------------------
# 4. Jigsaw and flipped-patch labels
# ---------------------------------------------------------------------------------------------------------

_JIGSAW_POOL_SIZE = 100_000  # random candidate permutations for grids too large to enumerate (grid >= 4)


class FlipAxis(IntEnum):
    """Which way a tile is flipped: the numpy axis reversed (as ``np.flipud`` / ``np.fliplr``)."""

    UP_DOWN = 0
    LEFT_RIGHT = 1


@functools.lru_cache(maxsize=8)
def _jigsaw_permutations_cached(n: int, grid: int, seed: int) -> np.ndarray:
    k = grid * grid
    rng = np.random.default_rng(seed)
    if k <= 9:
        candidates = np.array(list(itertools.permutations(range(k))), dtype=np.int8)  # (k!, k), identity first
    else:
        pool = np.argsort(rng.random((_JIGSAW_POOL_SIZE, k)), axis=1).astype(np.int8)
        candidates = np.concatenate([np.arange(k, dtype=np.int8)[None], pool])  # identity first
    columns = np.ascontiguousarray(candidates.T)  # (k, M): one contiguous pass per tile position

    def hamming_to(j: int) -> np.ndarray:  # (M,) Hamming distance of every candidate to candidate j
        d = np.zeros(columns.shape[1], dtype=np.int32)
        for pos in range(k):
            d += columns[pos] != columns[pos, j]
        return d

    chosen = [0]
    min_dist = hamming_to(0)  # (M,) Hamming distance to the chosen set
    sum_dist = min_dist.copy()  # (M,) summed distance to the chosen rows
    for _ in range(n - 1):
        best = np.flatnonzero(min_dist == min_dist.max())  # maximise the minimum distance ...
        best = best[sum_dist[best] == sum_dist[best].max()]  # ... then the mean distance ...
        j = int(best[rng.integers(best.size)])  # ... then break ties with the seeded generator
        chosen.append(j)
        d = hamming_to(j)
        np.minimum(min_dist, d, out=min_dist)
        sum_dist += d
    out = candidates[chosen].astype(np.int64)
    out.flags.writeable = False
    return out


def jigsaw_permutations(n: int = 100, grid: int = 3, *, seed: int = 0) -> np.ndarray:
    """A fixed set of tile permutations far apart in Hamming distance, for the jigsaw label.

    Greedy maximal-Hamming selection: row 0 is the identity (label 0 = tiles in place, included on
    purpose); each next row is the permutation whose minimum Hamming distance to the rows chosen so far is
    largest, ties broken by the largest mean distance and then by a generator seeded with ``seed``. For
    ``grid <= 3`` all ``(grid*grid)!`` permutations are candidates; for larger grids a seeded pool of
    100,000 random permutations is. Deterministic for given arguments; results are cached.

    Reference: Noroozi & Favaro, "Unsupervised Learning of Visual Representations by Solving Jigsaw
    Puzzles", ECCV 2016 (maximal Hamming distance set; they maximise the mean, here the minimum first).

    Args:
        n: number of permutations (classes), in [1, number of candidates].
        grid: tiles per image side, >= 2.
        seed: seed of the tie-breaking generator (and of the pool for grid >= 4); 0 is the library default.

    Returns:
        int64 (n, grid*grid), read-only; row ``i`` is the permutation of label ``i`` (see
        :func:`apply_jigsaw` for how a permutation moves tiles).
    """
    if int(grid) != grid or grid < 2:
        raise ValueError(f"grid must be a whole number of tiles per side >= 2, got {grid}")
    k = int(grid) * int(grid)
    n_candidates = math.factorial(k) if k <= 9 else _JIGSAW_POOL_SIZE + 1
    if int(n) != n or not 1 <= n <= n_candidates:
        raise ValueError(f"n must be a whole number in [1, {n_candidates}] for a {grid}x{grid} grid, got {n}")
    return _jigsaw_permutations_cached(int(n), int(grid), int(seed))


def sample_jigsaw(*, rng: np.random.Generator, permutations: np.ndarray) -> int:
    """Draw a jigsaw label uniformly: an index into ``permutations``.

    Args:
        rng: the source of randomness.
        permutations: (n, grid*grid) from :func:`jigsaw_permutations`.

    Returns:
        Label in [0, n).
    """
    permutations = np.asarray(permutations)
    if permutations.ndim != 2 or permutations.shape[0] < 1:
        raise ValueError(
            f"permutations must be a non-empty (n, grid*grid) array from jigsaw_permutations, got {permutations.shape}"
        )
    return int(rng.integers(permutations.shape[0]))


def invert_permutation(permutation: np.ndarray) -> np.ndarray:
    """The inverse permutation: ``apply_jigsaw(apply_jigsaw(x, p, g), invert_permutation(p), g)`` is ``x``."""
    return np.argsort(np.asarray(permutation), kind="stable")


def grid_shape(grid: int | tuple[int, int]) -> tuple[int, int]:
    """Tiles per column and per row of a grid given as one side (square) or as ``(rows, cols)``.

    Raises:
        ValueError: when a side is not a positive whole number.
    """
    sides = tuple(grid) if isinstance(grid, (tuple, list)) else (grid, grid)
    if len(sides) != 2 or any(int(g) != g or g < 1 for g in sides):
        raise ValueError(f"grid must be a positive whole number of tiles per side or (rows, cols), got {grid}")
    return int(sides[0]), int(sides[1])


def crop_to_grid(image: np.ndarray, grid: int | tuple[int, int]) -> tuple[np.ndarray, int, int]:
    """The image cropped to whole tiles (bottom rows and right columns beyond them dropped).

    Args:
        image: (H, W) or (H, W, C), any dtype.
        grid: tiles per side, or ``(rows, cols)``.

    Returns:
        The cropped view ``(rows * th, cols * tw, ...)``, the tile height ``th`` and width ``tw`` in pixels.
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"image must be (H, W) or (H, W, C), got shape {image.shape}")
    rows, cols = grid_shape(grid)
    h, w = image.shape[:2]
    if h < rows or w < cols:
        raise ValueError(f"image of {h}x{w} pixels is smaller than a {rows}x{cols} grid; use a smaller grid")
    th, tw = h // rows, w // cols
    return image[: rows * th, : cols * tw], th, tw


def apply_jigsaw(image: np.ndarray, permutation: np.ndarray, grid: int | tuple[int, int]) -> np.ndarray:
    """Rearrange the tiles of an image: the tile at position ``k`` comes from tile ``permutation[k]``.

    Tiles are numbered row-major (``k = tile_row * cols + tile_col``). When the image height or width is
    not a multiple of the tile count, the bottom rows and right columns beyond the largest multiple are
    cropped off first (:func:`crop_to_grid`), so the output is ``(rows * (H // rows), cols * (W // cols), ...)``.

    Args:
        image: (H, W) or (H, W, C), any dtype.
        permutation: (rows*cols,) a permutation of ``range(rows*cols)``.
        grid: tiles per side, >= 1, or ``(rows, cols)``.

    Returns:
        A new array, the input's dtype.
    """
    img, th, tw = crop_to_grid(image, grid)
    rows, cols = grid_shape(grid)
    k = rows * cols
    perm = np.asarray(permutation)
    if perm.shape != (k,) or not np.array_equal(np.sort(perm), np.arange(k)):
        raise ValueError(f"permutation must be a permutation of range({k}) for a {rows}x{cols} grid, got {perm}")
    rest = img.shape[2:]
    tiles = img.reshape(rows, th, cols, tw, *rest).swapaxes(1, 2).reshape(k, th, tw, *rest)  # (k, th, tw, ...)
    out = tiles[perm]  # tile k <- tile perm[k]
    return out.reshape(rows, cols, th, tw, *rest).swapaxes(1, 2).reshape(rows * th, cols * tw, *rest)


def sample_flipped_patch(*, rng: np.random.Generator, grid: int = 3) -> int:
    """Draw which tile to flip, uniformly: a row-major tile index in [0, grid*grid)."""
    if int(grid) != grid or grid < 1:
        raise ValueError(f"grid must be a positive whole number of tiles per side, got {grid}")
    return int(rng.integers(grid * grid))


def apply_flipped_patch(
    image: np.ndarray, index: int, grid: int | tuple[int, int], axis: FlipAxis | int = FlipAxis.LEFT_RIGHT
) -> np.ndarray:
    """Flip one tile of an image in place of itself; the label is ``index``.

    The image is cropped to whole tiles exactly as in :func:`apply_jigsaw`. Flipping twice with the same
    arguments restores the (cropped) image.

    Reference: Liu et al., Spatial-SSRL, arXiv:2510.27606 (flipped patch recognition).

    Args:
        image: (H, W) or (H, W, C), any dtype.
        index: row-major tile index in [0, rows*cols).
        grid: tiles per side, >= 1, or ``(rows, cols)``.
        axis: :class:`FlipAxis`; 1 (``LEFT_RIGHT``, default) mirrors the tile horizontally, 0 (``UP_DOWN``)
            vertically.

    Returns:
        A new array, the input's dtype.
    """
    img, th, tw = crop_to_grid(image, grid)
    rows, cols = grid_shape(grid)
    try:
        axis = FlipAxis(axis)
    except ValueError:
        raise ValueError(f"axis must be FlipAxis.UP_DOWN (0) or FlipAxis.LEFT_RIGHT (1), got {axis!r}") from None
    if int(index) != index or not 0 <= index < rows * cols:
        raise ValueError(f"index must be a tile index in [0, {rows * cols}) for a {rows}x{cols} grid, got {index}")
    out = img.copy()
    r, c = divmod(int(index), cols)
    box = (slice(r * th, (r + 1) * th), slice(c * tw, (c + 1) * tw))
    out[box] = np.flip(img[box], axis=int(axis))
    return out
