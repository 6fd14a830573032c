"""Pinhole cameras, quaternions and ray generation.

Conventions (see DESIGN.md): world Y up, metres; the camera looks down -Z with +X right and +Y up
(OpenGL); a pose is the camera-to-world 4x4; rotations are unit quaternions (w, x, y, z); intrinsics are
an OpenCV-style pixel-centre 3x3 K, so pixel (u, v) = (0, 0) is the centre of the top-left pixel.
Depth is z-depth: the distance along the optical axis, not along the ray.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

UNIT_QUATERNION_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Intrinsics:
    """A pinhole camera.

    Attributes:
        width: image width in pixels.
        height: image height in pixels.
        fx: focal length along x in pixels.
        fy: focal length along y in pixels.
        cx: principal point x in pixels (pixel-centre convention).
        cy: principal point y in pixels.
    """

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @property
    def K(self) -> np.ndarray:  # noqa: N802 - the usual symbol
        """The 3x3 intrinsic matrix, float64."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])


def make_intrinsics(*, width: int, height: int, hfov_deg: float) -> Intrinsics:
    """Square-pixel intrinsics for an image of ``width x height`` pixels and a horizontal field of view.

    Args:
        width: pixels, >= 1.
        height: pixels, >= 1.
        hfov_deg: horizontal field of view in degrees, in (0, 180).
    """
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if not 0.0 < hfov_deg < 180.0:
        raise ValueError(f"hfov must lie strictly between 0 and 180 degrees, got {hfov_deg}")
    f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    return Intrinsics(width=width, height=height, fx=f, fy=f, cx=(width - 1) / 2.0, cy=(height - 1) / 2.0)


def camera_rays(intr: Intrinsics) -> np.ndarray:
    """Per-pixel ray directions in the camera frame, scaled so that the z component is -1.

    With this scaling a hit parameter ``t`` along the ray equals the z-depth in metres.

    Returns:
        float32 (H, W, 3).
    """
    u = np.arange(intr.width, dtype=np.float64)
    v = np.arange(intr.height, dtype=np.float64)
    uu, vv = np.meshgrid(u, v)  # (H, W)
    d = np.empty((intr.height, intr.width, 3), dtype=np.float64)
    d[..., 0] = (uu - intr.cx) / intr.fx
    d[..., 1] = -(vv - intr.cy) / intr.fy
    d[..., 2] = -1.0
    return d.astype(np.float32)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices from unit quaternions (w, x, y, z).

    Args:
        q: (..., 4).

    Returns:
        (..., 3, 3) float64.
    """
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    r = np.empty(q.shape[:-1] + (3, 3))
    r[..., 0, 0] = 1 - 2 * (y * y + z * z)
    r[..., 0, 1] = 2 * (x * y - w * z)
    r[..., 0, 2] = 2 * (x * z + w * y)
    r[..., 1, 0] = 2 * (x * y + w * z)
    r[..., 1, 1] = 1 - 2 * (x * x + z * z)
    r[..., 1, 2] = 2 * (y * z - w * x)
    r[..., 2, 0] = 2 * (x * z - w * y)
    r[..., 2, 1] = 2 * (y * z + w * x)
    r[..., 2, 2] = 1 - 2 * (x * x + y * y)
    return r


def matrix_to_quat(r: np.ndarray) -> np.ndarray:
    """Unit quaternions (w, x, y, z) with w >= 0 from rotation matrices.

    Args:
        r: (..., 3, 3).

    Returns:
        (..., 4) float64.
    """
    r = np.asarray(r, dtype=np.float64)
    m = r.reshape(-1, 3, 3)
    out = np.empty((m.shape[0], 4))
    tr = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    # Pick the numerically best branch per matrix (Shepperd's method).
    cand = np.stack([tr, m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], axis=1)
    k = np.argmax(cand, axis=1)
    for branch in range(4):
        sel = k == branch
        if not np.any(sel):
            continue
        a = m[sel]
        if branch == 0:
            s = np.sqrt(1.0 + tr[sel]) * 2
            q = [0.25 * s, (a[:, 2, 1] - a[:, 1, 2]) / s, (a[:, 0, 2] - a[:, 2, 0]) / s, (a[:, 1, 0] - a[:, 0, 1]) / s]
        elif branch == 1:
            s = np.sqrt(1.0 + a[:, 0, 0] - a[:, 1, 1] - a[:, 2, 2]) * 2
            q = [(a[:, 2, 1] - a[:, 1, 2]) / s, 0.25 * s, (a[:, 0, 1] + a[:, 1, 0]) / s, (a[:, 0, 2] + a[:, 2, 0]) / s]
        elif branch == 2:
            s = np.sqrt(1.0 + a[:, 1, 1] - a[:, 0, 0] - a[:, 2, 2]) * 2
            q = [(a[:, 0, 2] - a[:, 2, 0]) / s, (a[:, 0, 1] + a[:, 1, 0]) / s, 0.25 * s, (a[:, 1, 2] + a[:, 2, 1]) / s]
        else:
            s = np.sqrt(1.0 + a[:, 2, 2] - a[:, 0, 0] - a[:, 1, 1]) * 2
            q = [(a[:, 1, 0] - a[:, 0, 1]) / s, (a[:, 0, 2] + a[:, 2, 0]) / s, (a[:, 1, 2] + a[:, 2, 1]) / s, 0.25 * s]
        out[sel] = np.stack(q, axis=1)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    out[out[:, 0] < 0] *= -1
    return out.reshape(r.shape[:-2] + (4,))


def quat_from_yaw_pitch_roll(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Camera orientations from yaw about +Y, then pitch about the camera's +X, then roll about its +Z.

    Yaw 0 looks down world -Z; positive yaw turns left (counter-clockwise seen from above); positive
    pitch looks up.

    Args:
        yaw, pitch, roll: radians, broadcastable arrays.

    Returns:
        (..., 4) unit quaternions (w, x, y, z).
    """
    yaw, pitch, roll = np.broadcast_arrays(np.asarray(yaw, float), np.asarray(pitch, float), np.asarray(roll, float))
    qy = np.stack([np.cos(yaw / 2), 0 * yaw, np.sin(yaw / 2), 0 * yaw], axis=-1)
    qp = np.stack([np.cos(pitch / 2), np.sin(pitch / 2), 0 * pitch, 0 * pitch], axis=-1)
    qr = np.stack([np.cos(roll / 2), 0 * roll, 0 * roll, np.sin(roll / 2)], axis=-1)
    return quat_multiply(quat_multiply(qy, qp), qr)


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b`` of quaternions (w, x, y, z), shapes broadcast, (..., 4)."""
    aw, ax, ay, az = np.moveaxis(np.asarray(a, float), -1, 0)
    bw, bx, by, bz = np.moveaxis(np.asarray(b, float), -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def pose_matrix(position: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Camera-to-world 4x4 matrices from camera centres (..., 3) and quaternions (..., 4); float64."""
    position = np.asarray(position, dtype=np.float64)
    r = quat_to_matrix(rotation)
    out = np.zeros(r.shape[:-2] + (4, 4))
    out[..., :3, :3] = r
    out[..., :3, 3] = position
    out[..., 3, 3] = 1.0
    return out


def check_unit_quaternions(q: np.ndarray, *, tolerance: float = UNIT_QUATERNION_TOLERANCE) -> None:
    """Raise ValueError naming the first quaternion whose norm differs from 1 by more than ``tolerance``."""
    q = np.asarray(q, dtype=np.float64)
    norms = np.linalg.norm(q, axis=-1)
    bad = np.flatnonzero(~(np.abs(norms - 1.0) <= tolerance))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"rotation {i} is not a unit quaternion (norm {norms.flat[i]:.6g}); "
            "give rotations as unit quaternions [w, x, y, z]"
        )


def parse_size(text: str) -> tuple[int, int]:
    """An image size ``"WxH"`` (e.g. ``"128x128"``) as (W, H) in pixels.

    Raises:
        ValueError: the text is not two whole numbers >= 1 joined by ``x``.
    """
    parts = str(text).lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts) or min(int(p) for p in parts) < 1:
        raise ValueError(f"size must look like 128x128 (WIDTH x HEIGHT in pixels), got {text!r}")
    return int(parts[0]), int(parts[1])
