"""Covisibility of two RGB-D views: how much of what one camera sees the other camera sees too.

Spatial proximity (ESS, :mod:`pairing.similarity`) pairs two cameras a metre apart even when a wall
stands between them and their images share nothing. Covisibility uses the depth maps to tell: the
covisibility of A in B is the fraction of A's surface points that B sees.

Definition. Sample A's pixels on a regular grid ``(u, v) = (stride * i, stride * j)``; a sample is
*valid* when its z-depth ``z`` is finite and > 0. Back-project it (OpenCV pixel-centre intrinsics K,
camera looking down +Z with y down) to ``x = (u - cx) / fx * z``, ``y = (v - cy) / fy * z``; the
toolkit's camera frame is OpenGL (looking down -Z, +Y up), so the point is ``p_gl = (x, -y, -z)`` and
in the world ``R_A p_gl + t_A`` for the camera-to-world pose ``[R_A | t_A]``. Move it into B's OpenCV
frame, ``(X, Y, Z)``, and project: ``u' = fx X / Z + cx``, ``v' = fy Y / Z + cy``. The sample is
*seen by B* when

1. it is in front of B: ``Z > 0``;
2. it lands inside B's image: the nearest pixel ``(floor(u' + 0.5), floor(v' + 0.5))`` exists;
3. it is not occluded: B's depth there, ``z_B``, is valid and
   ``z_B >= Z * (1 - rel_tolerance) - abs_tolerance``.

``covisibility(A, B) = seen / valid`` (0 when A has no valid sample). It is not symmetric: a close-up
view of a table is fully seen by a distant view of the room, not the reverse.

Tolerances. The defaults (5 cm + 2 % of the depth) absorb float16 depth storage (0.05 % relative),
nearest-pixel lookup on slanted surfaces and renderer noise, while a real wall (>= 10 cm thick) still
occludes. A surface thinner than ``abs_tolerance + rel_tolerance * Z`` (a sheet of paper, a zero-thickness
mesh wall seen from both sides) does not occlude; the test is a depth comparison, not a ray cast.

:func:`covisibility` is the clear numpy reference for one pair; :func:`covisibility_pairs` runs a
numba kernel over many pairs on all cores and matches it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba

# Open3D bundles an older TBB that numba refuses (with a warning); OpenMP or numba's own pool serve as well.
numba.config.THREADING_LAYER_PRIORITY = ["workqueue", "omp", "tbb"]
import numpy as np

# OpenCV camera frame (x right, y down, z forward) <-> OpenGL camera frame (x right, y up, z backward).
_FLIP = np.diag([1.0, -1.0, -1.0])


@dataclass(frozen=True)
class CovisibilityConfig:
    """How covisibility is measured.

    Attributes:
        stride: pixels, >= 1: sample every ``stride``-th pixel of A in both directions (4 -> 1/16 of them).
        abs_tolerance: metres, >= 0: depth slack of the occlusion test.
        rel_tolerance: fraction of the depth, in [0, 1): depth slack growing with distance.
    """

    stride: int = 4
    abs_tolerance: float = 0.05
    rel_tolerance: float = 0.02

    def __post_init__(self) -> None:
        if isinstance(self.stride, bool) or not isinstance(self.stride, (int, np.integer)) or self.stride < 1:
            raise ValueError(f"stride must be an integer >= 1 (pixels between samples), got {self.stride!r}")
        if not (math.isfinite(self.abs_tolerance) and self.abs_tolerance >= 0):
            raise ValueError(f"abs_tolerance must be a distance in metres >= 0, got {self.abs_tolerance}")
        if not 0 <= self.rel_tolerance < 1:
            raise ValueError(f"rel_tolerance must lie in [0, 1) (a fraction of the depth), got {self.rel_tolerance}")


def _check_k(K: np.ndarray) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f"K must be a 3x3 pinhole intrinsic matrix with fx, fy > 0, got {K.tolist()}")
    return K


def _check_pose(pose: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape != shape:
        raise ValueError(f"{name} must have shape {shape} (camera-to-world 4x4), got {pose.shape}")
    if not np.all(np.isfinite(pose)):
        raise ValueError(f"{name} must be finite")
    return pose


def _relative(pose_a: np.ndarray, pose_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation (3, 3) and translation (3,) taking A's OpenCV camera frame into B's."""
    r_a, t_a = pose_a[:3, :3], pose_a[:3, 3]
    r_b, t_b = pose_b[:3, :3], pose_b[:3, 3]
    rotation = _FLIP @ r_b.T @ r_a @ _FLIP  # world-to-B (R_b^T, rigid inverse) after A-to-world
    translation = _FLIP @ (r_b.T @ (t_a - t_b))
    return rotation, translation


def covisibility(
    depth_a: np.ndarray,
    pose_a: np.ndarray,
    depth_b: np.ndarray,
    pose_b: np.ndarray,
    K: np.ndarray,  # noqa: N803 - the usual symbol
    *,
    config: CovisibilityConfig = CovisibilityConfig(),
) -> float:
    """Fraction of A's valid sampled pixels that B sees (definition in the module docstring); reference.

    Args:
        depth_a: (H, W) z-depth of view A in metres, 0 = no surface; float16 or float32.
        pose_a: (4, 4) camera-to-world pose of A.
        depth_b: (H, W) z-depth of view B in metres.
        pose_b: (4, 4) camera-to-world pose of B.
        K: (3, 3) pixel intrinsics shared by both views.
        config: sampling stride and occlusion tolerances.

    Returns:
        Covisibility of A in B, in [0, 1].
    """
    depth_a = np.asarray(depth_a, dtype=np.float32)
    depth_b = np.asarray(depth_b, dtype=np.float32)
    if depth_a.ndim != 2 or depth_a.shape != depth_b.shape:
        raise ValueError(f"depth_a and depth_b must be (H, W) images of one size, got {depth_a.shape}, {depth_b.shape}")
    K = _check_k(K)
    rotation, translation = _relative(_check_pose(pose_a, (4, 4), "pose_a"), _check_pose(pose_b, (4, 4), "pose_b"))
    h, w = depth_a.shape
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    v, u = np.mgrid[0:h : config.stride, 0:w : config.stride]  # (h', w') pixel rows and columns
    z = depth_a[v, u].astype(np.float64)  # (h', w')
    valid = np.isfinite(z) & (z > 0)
    n_valid = int(valid.sum())
    if n_valid == 0:
        return 0.0
    z, u, v = z[valid], u[valid], v[valid]  # (M,)
    p = np.stack([(u - cx) / fx * z, (v - cy) / fy * z, z])  # (3, M) A's OpenCV frame
    q = rotation @ p + translation[:, None]  # (3, M) B's OpenCV frame
    with np.errstate(divide="ignore", invalid="ignore"):
        ub = np.floor(fx * q[0] / q[2] + cx + 0.5)  # (M,) nearest pixel column in B
        vb = np.floor(fy * q[1] / q[2] + cy + 0.5)  # (M,)
    inside = (q[2] > 0) & (ub >= 0) & (ub <= w - 1) & (vb >= 0) & (vb <= h - 1)
    zb = depth_b[vb[inside].astype(np.int64), ub[inside].astype(np.int64)].astype(np.float64)  # (M_in,)
    ok = np.isfinite(zb) & (zb > 0)
    seen = ok & (zb >= q[2][inside] * (1.0 - config.rel_tolerance) - config.abs_tolerance)
    return int(seen.sum()) / n_valid


@numba.njit(parallel=True, nogil=True, cache=True)
def _covisibility_kernel(  # pragma: no cover - compiled
    depth, rotation, translation, pairs, fx, fy, cx, cy, stride, abs_tol, rel_tol, out
):
    """Fill ``out`` (P, 2) float32 with A->B and B->A covisibility; see :func:`covisibility` for the maths.

    Args:
        depth: float32 (N, H, W) z-depth in metres.
        rotation: float64 (P, 2, 3, 3): [p, 0] A's OpenCV frame into B's, [p, 1] B's into A's.
        translation: float64 (P, 2, 3).
        pairs: int64 (P, 2) view indices (A, B).
        fx, fy, cx, cy: intrinsics in pixels.
        stride: pixels between samples.
        abs_tol, rel_tol: occlusion tolerances.
        out: float32 (P, 2).
    """
    h = depth.shape[1]
    w = depth.shape[2]
    for task in numba.prange(pairs.shape[0] * 2):
        p = task // 2
        d = task - 2 * p
        src = pairs[p, d]
        dst = pairs[p, 1 - d]
        r = rotation[p, d]
        t = translation[p, d]
        n_valid = 0
        n_seen = 0
        for v in range(0, h, stride):
            for u in range(0, w, stride):
                z = np.float64(depth[src, v, u])
                if not (z > 0.0 and math.isfinite(z)):
                    continue
                n_valid += 1
                x = (u - cx) / fx * z
                y = (v - cy) / fy * z
                qx = r[0, 0] * x + r[0, 1] * y + r[0, 2] * z + t[0]
                qy = r[1, 0] * x + r[1, 1] * y + r[1, 2] * z + t[1]
                qz = r[2, 0] * x + r[2, 1] * y + r[2, 2] * z + t[2]
                if not qz > 0.0:
                    continue
                ub = np.floor(fx * qx / qz + cx + 0.5)  # float: no int overflow far outside
                vb = np.floor(fy * qy / qz + cy + 0.5)
                if not (ub >= 0 and ub <= w - 1 and vb >= 0 and vb <= h - 1):
                    continue
                zb = np.float64(depth[dst, int(vb), int(ub)])
                if zb > 0.0 and math.isfinite(zb) and zb >= qz * (1.0 - rel_tol) - abs_tol:
                    n_seen += 1
        out[p, d] = n_seen / n_valid if n_valid > 0 else 0.0


def covisibility_pairs(
    depth: np.ndarray,
    pose: np.ndarray,
    K: np.ndarray,  # noqa: N803 - the usual symbol
    pairs: np.ndarray,
    *,
    config: CovisibilityConfig = CovisibilityConfig(),
) -> np.ndarray:
    """Covisibility in both directions of many view pairs, on all cores.

    Args:
        depth: (N, H, W) z-depth in metres, 0 = no surface; float16 or float32 (cast to float32, a copy
            for float16).
        pose: (N, 4, 4) camera-to-world poses.
        K: (3, 3) pixel intrinsics shared by all views.
        pairs: int (P, 2) view indices (A, B).
        config: sampling stride and occlusion tolerances.

    Returns:
        float32 (P, 2): column 0 the covisibility of A in B (fraction of A seen by B), column 1 of B in A.
    """
    depth = np.ascontiguousarray(depth, dtype=np.float32)
    if depth.ndim != 3:
        raise ValueError(f"depth must have shape (N, H, W), got {depth.shape}")
    n = depth.shape[0]
    pose = _check_pose(pose, (n, 4, 4), "pose")
    K = _check_k(K)
    pairs = np.asarray(pairs)
    if pairs.ndim != 2 or pairs.shape[1] != 2 or (pairs.size and not np.issubdtype(pairs.dtype, np.integer)):
        raise ValueError(f"pairs must be an integer array of shape (P, 2), got {pairs.dtype} {pairs.shape}")
    if pairs.size and (pairs.min() < 0 or pairs.max() >= n):
        raise ValueError(f"pairs index views outside [0, {n}); build pairs from the same views as depth")
    pairs = np.ascontiguousarray(pairs, dtype=np.int64)
    out = np.zeros((pairs.shape[0], 2), np.float32)  # (P, 2)
    if pairs.shape[0] == 0:
        return out
    # Relative transforms, both directions: (P, 2, 3, 3) and (P, 2, 3), OpenCV frames.
    r = pose[:, :3, :3]  # (N, 3, 3)
    t = pose[:, :3, 3]  # (N, 3)
    a, b = pairs[:, 0], pairs[:, 1]
    rotation = np.empty((pairs.shape[0], 2, 3, 3))
    translation = np.empty((pairs.shape[0], 2, 3))
    for col, (src, dst) in enumerate(((a, b), (b, a))):
        r_dst_t = np.swapaxes(r[dst], 1, 2)  # (P, 3, 3) world-to-dst rotation
        rotation[:, col] = _FLIP @ r_dst_t @ r[src] @ _FLIP
        translation[:, col] = np.einsum("ij,pjk,pk->pi", _FLIP, r_dst_t, t[src] - t[dst])
    _covisibility_kernel(
        depth, rotation, translation, pairs, K[0, 0], K[1, 1], K[0, 2], K[1, 2],
        int(config.stride), float(config.abs_tolerance), float(config.rel_tolerance), out,
    )
    return out
