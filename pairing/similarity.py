"""Spatial similarity of two views from their poses: ESS-MB (binary) and ESS-MW (weighted).

Reference: "Environmental Spatial Similarity" (ESS), arXiv 2401.15120. ESS-MB treats every view taken
near another as a positive; ESS-MW weights each positive by how similar the two poses are.

For a pair of views with camera-centre distance ``d`` (metres) and angle ``a`` (radians) between their
viewing directions, with the gate ``G = [d <= r] * [a <= a_max]`` (r = ``radius``, a_max =
``max_angle_deg`` in radians):

* ESS-MB (binary):    ``s = G``
* ESS-MW (weighted), Gaussian falloff: ``w = G * exp(-d^2 / (2 sigma_p^2)) * exp(-a^2 / (2 sigma_a^2))``
* ESS-MW (weighted), linear falloff:   ``w = G * max(0, 1 - d / r) * max(0, 1 - a / a_max)``

Every weight lies in [0, 1], is 1 for identical poses, is symmetric in the two views and does not
increase with ``d`` or with ``a``. The viewing direction is the camera's -Z axis in the world frame, so
the angle ignores roll about the optical axis (a camera rolled in place sees the same scene).

The pair arrays can be very large (10^8 pairs for 10^6 views), so :func:`pair_geometry` is a numba
kernel over pairs (all cores, no temporaries), the weights are computed in chunks, and all return float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numba

# Open3D bundles an older TBB that numba refuses (with a warning); OpenMP or numba's own pool serve as well.
numba.config.THREADING_LAYER_PRIORITY = ["workqueue", "omp", "tbb"]
import numpy as np

from envsim.camera import check_unit_quaternions

CHUNK = 1 << 18  # pairs per vectorised step: temporaries of a few MB stay in cache


class Falloff(str, Enum):
    """How the ESS-MW weight decays with distance and angle inside the gate."""

    GAUSSIAN = "gaussian"
    LINEAR = "linear"


@dataclass(frozen=True)
class SimilarityConfig:
    """When two views count as spatial positives and how strongly.

    Attributes:
        radius: metres, > 0: largest camera-centre distance of a positive.
        max_angle_deg: degrees, in (0, 180]: largest angle between viewing directions of a positive.
        falloff: the ESS-MW weight shape (a string such as ``"linear"`` is accepted and converted).
        sigma_position: metres, > 0: the Gaussian's width in distance.
        sigma_angle_deg: degrees, > 0: the Gaussian's width in angle.
    """

    radius: float = 1.0
    max_angle_deg: float = 45.0
    falloff: Falloff = Falloff.GAUSSIAN
    sigma_position: float = 0.5
    sigma_angle_deg: float = 22.5

    def __post_init__(self) -> None:
        if not (math.isfinite(self.radius) and self.radius > 0):
            raise ValueError(f"radius must be a positive distance in metres, got {self.radius}")
        if not 0 < self.max_angle_deg <= 180:
            raise ValueError(
                f"max_angle_deg must lie in (0, 180] degrees, got {self.max_angle_deg}; use 180 for no angle limit"
            )
        try:
            object.__setattr__(self, "falloff", Falloff(self.falloff))
        except ValueError:
            choices = ", ".join(f.value for f in Falloff)
            raise ValueError(f"falloff must be one of {choices}, got {self.falloff!r}") from None
        if not (math.isfinite(self.sigma_position) and self.sigma_position > 0):
            raise ValueError(f"sigma_position must be a positive width in metres, got {self.sigma_position}")
        if not (math.isfinite(self.sigma_angle_deg) and self.sigma_angle_deg > 0):
            raise ValueError(f"sigma_angle_deg must be a positive width in degrees, got {self.sigma_angle_deg}")

    @property
    def max_angle(self) -> float:
        """The angle gate in radians."""
        return math.radians(self.max_angle_deg)

    @property
    def sigma_angle(self) -> float:
        """The Gaussian's angular width in radians."""
        return math.radians(self.sigma_angle_deg)


def view_direction(rotation: np.ndarray) -> np.ndarray:
    """Unit viewing directions (the camera's -Z axis) in the world frame.

    Args:
        rotation: (N, 4) camera-to-world unit quaternions (w, x, y, z).

    Returns:
        float64 (N, 3).
    """
    q = np.asarray(rotation, dtype=np.float64)
    if q.ndim != 2 or q.shape[1] != 4:
        raise ValueError(f"rotation must have shape (N, 4) (quaternions w, x, y, z), got {q.shape}")
    check_unit_quaternions(q)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T  # (N,) each
    # Minus the third column of the rotation matrix (see envsim.camera.quat_to_matrix).
    return -np.stack([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)], axis=1)  # (N, 3)


def _angle_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles in radians between unit vectors (M, 3); atan2(|a x b|, a . b) keeps small angles accurate
    (arccos of the dot product does not)."""
    cross = np.empty_like(a)  # (M, 3), written out: np.cross is several times slower
    cross[:, 0] = a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1]
    cross[:, 1] = a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2]
    cross[:, 2] = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    return np.arctan2(np.sqrt(np.einsum("mk,mk->m", cross, cross)), np.einsum("mk,mk->m", a, b))


def view_angle(rot_a: np.ndarray, rot_b: np.ndarray) -> np.ndarray:
    """Angles between the viewing directions of two cameras; roll about the optical axis is ignored.

    Args:
        rot_a: (P, 4) unit quaternions (w, x, y, z) of the first views.
        rot_b: (P, 4) unit quaternions of the second views.

    Returns:
        float64 (P,) radians in [0, pi].
    """
    rot_a, rot_b = np.asarray(rot_a), np.asarray(rot_b)
    if rot_a.shape != rot_b.shape:
        raise ValueError(f"rot_a and rot_b must have the same shape (P, 4), got {rot_a.shape} and {rot_b.shape}")
    return _angle_between(view_direction(rot_a), view_direction(rot_b))


def pair_geometry(position: np.ndarray, rotation: np.ndarray, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Camera-centre distance and viewing-direction angle of every pair.

    Args:
        position: (N, 3) camera centres in metres.
        rotation: (N, 4) unit quaternions (w, x, y, z).
        pairs: int (P, 2) view indices, e.g. from :func:`pairing.index.radius_pairs`.

    Returns:
        ``(distance, angle)``: float32 (P,) metres and float32 (P,) radians in [0, pi], computed in float64.
    """
    position = np.asarray(position, dtype=np.float64)
    pairs = np.asarray(pairs)
    if position.ndim != 2 or position.shape[1] != 3:
        raise ValueError(f"position must have shape (N, 3) (camera centres in metres), got {position.shape}")
    if np.shape(rotation) != (position.shape[0], 4):
        raise ValueError(
            f"rotation must have shape ({position.shape[0]}, 4) to match position, got {np.shape(rotation)}"
        )
    if pairs.ndim != 2 or pairs.shape[1] != 2 or (pairs.size and not np.issubdtype(pairs.dtype, np.integer)):
        raise ValueError(f"pairs must be an integer array of shape (P, 2), got {pairs.dtype} {pairs.shape}")
    if pairs.size and (pairs.min() < 0 or pairs.max() >= position.shape[0]):
        raise ValueError(f"pairs index views outside [0, {position.shape[0]}); build pairs from the same views")
    direction = view_direction(rotation)  # (N, 3)
    distance = np.empty(pairs.shape[0], np.float32)  # (P,)
    angle = np.empty(pairs.shape[0], np.float32)  # (P,)
    pairs = np.ascontiguousarray(pairs, dtype=np.int64)
    _geometry_kernel(np.ascontiguousarray(position), direction, pairs, distance, angle)
    return distance, angle


@numba.njit(parallel=True, nogil=True, cache=True)
def _geometry_kernel(position, direction, pairs, distance, angle):  # pragma: no cover - compiled
    """Fill ``distance`` = |p_i - p_j| and ``angle`` = atan2(|d_i x d_j|, d_i . d_j), float32 (P,) each.

    Args:
        position: float64 (N, 3) metres.
        direction: float64 (N, 3) unit viewing directions.
        pairs: int64 (P, 2).
        distance, angle: float32 (P,) out.
    """
    for p in numba.prange(pairs.shape[0]):
        i = pairs[p, 0]
        j = pairs[p, 1]
        dx = position[i, 0] - position[j, 0]
        dy = position[i, 1] - position[j, 1]
        dz = position[i, 2] - position[j, 2]
        distance[p] = math.sqrt(dx * dx + dy * dy + dz * dz)
        ax, ay, az = direction[i, 0], direction[i, 1], direction[i, 2]
        bx, by, bz = direction[j, 0], direction[j, 1], direction[j, 2]
        cx = ay * bz - az * by
        cy = az * bx - ax * bz
        cz = ax * by - ay * bx
        angle[p] = math.atan2(math.sqrt(cx * cx + cy * cy + cz * cz), ax * bx + ay * by + az * bz)


def _check_geometry(distance: np.ndarray, angle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    distance, angle = np.asarray(distance), np.asarray(angle)
    if distance.shape != angle.shape or distance.ndim != 1:
        raise ValueError(f"distance and angle must be 1-D arrays of equal length, got {distance.shape}, {angle.shape}")
    return distance, angle


def _in_dtype(x: np.ndarray, limit: float) -> np.ndarray | float:
    """``limit`` rounded to ``x``'s float dtype: rounding is monotone, so ``d64 <= r`` implies
    ``float32(d64) <= float32(r)`` and a pair at exactly the radius stays inside after float32 rounding."""
    return np.asarray(limit, dtype=x.dtype) if np.issubdtype(x.dtype, np.floating) else limit


def _gate(distance: np.ndarray, angle: np.ndarray, config: SimilarityConfig) -> np.ndarray:
    """bool: inside the radius and the angle limit, compared in the arrays' own precision."""
    return (distance <= _in_dtype(distance, config.radius)) & (angle <= _in_dtype(angle, config.max_angle))


def binary_similarity(distance: np.ndarray, angle: np.ndarray, config: SimilarityConfig) -> np.ndarray:
    """ESS-MB: 1 for a positive (within the radius and the angle limit), else 0.

    Args:
        distance: (P,) camera-centre distances in metres.
        angle: (P,) viewing-direction angles in radians.
        config: the gate.

    Returns:
        float32 (P,) in {0, 1}.
    """
    distance, angle = _check_geometry(distance, angle)
    return _gate(distance, angle, config).astype(np.float32)


def _weights(distance: np.ndarray, angle: np.ndarray, config: SimilarityConfig) -> np.ndarray:
    """ESS-MW weights of one chunk, float32 (C,), computed in float64."""
    d = distance.astype(np.float64)  # (C,)
    a = angle.astype(np.float64)  # (C,)
    if config.falloff is Falloff.GAUSSIAN:
        # exp(-x) exp(-y) = exp(-(x + y)): one exponential per pair.
        w = np.exp(-(d * d / (2.0 * config.sigma_position**2) + a * a / (2.0 * config.sigma_angle**2)))
    else:
        w = np.maximum(0.0, 1.0 - d / config.radius) * np.maximum(0.0, 1.0 - a / config.max_angle)
    w[~_gate(distance, angle, config)] = 0.0
    return w.astype(np.float32)


def weighted_similarity(distance: np.ndarray, angle: np.ndarray, config: SimilarityConfig) -> np.ndarray:
    """ESS-MW: weight of every pair by spatial similarity (formulas in the module docstring).

    Args:
        distance: (P,) camera-centre distances in metres.
        angle: (P,) viewing-direction angles in radians.
        config: the gate and the falloff.

    Returns:
        float32 (P,) in [0, 1]; 0 outside the gate, 1 for identical poses.
    """
    distance, angle = _check_geometry(distance, angle)
    out = np.empty(distance.shape, np.float32)  # (P,)
    for s in range(0, distance.shape[0], CHUNK):
        out[s : s + CHUNK] = _weights(distance[s : s + CHUNK], angle[s : s + CHUNK], config)
    return out
