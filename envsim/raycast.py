"""Ray-casting backends: "cast these rays -> hit distance, triangle id, barycentrics, normal".

Everything after the hit (depth, texture lookup, lighting, labels) lives in :mod:`envsim.render` and is
shared by every backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

MISS = 0xFFFFFFFF
"""Triangle id of a ray that hit nothing."""


@dataclass(frozen=True)
class RayHits:
    """First hits of N rays.

    Attributes:
        t: float32 (N,) hit parameter in units of the ray direction's length; inf where nothing was hit.
        triangle: uint32 (N,) index of the hit triangle, :data:`MISS` where nothing was hit.
        bary: float32 (N, 2) barycentric (u, v) of the hit: point = (1-u-v) a + u b + v c.
        normal: float32 (N, 3) unit geometric normal of the hit triangle (asset winding).
    """

    t: np.ndarray
    triangle: np.ndarray
    bary: np.ndarray
    normal: np.ndarray


class RayCaster(Protocol):
    """What a rendering backend must do."""

    def cast(self, rays: np.ndarray) -> RayHits:
        """Cast float32 (N, 6) rays: origin (3) and direction (3, any non-zero length)."""
        ...


class Open3DRayCaster:
    """CPU ray casting with Open3D's ``RaycastingScene`` (Embree, all cores).

    Args:
        vertices: float32 (V, 3) metres.
        faces: int32 (F, 3).
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray):
        import open3d as o3d

        self._o3c = o3d.core
        self._scene = o3d.t.geometry.RaycastingScene()
        self._scene.add_triangles(
            o3d.core.Tensor(np.ascontiguousarray(vertices, dtype=np.float32)),
            o3d.core.Tensor(np.ascontiguousarray(faces, dtype=np.uint32)),
        )
        self.invalid_id = int(o3d.t.geometry.RaycastingScene.INVALID_ID)

    def cast(self, rays: np.ndarray) -> RayHits:
        out = self._scene.cast_rays(self._o3c.Tensor.from_numpy(np.ascontiguousarray(rays, dtype=np.float32)))
        assert self.invalid_id == MISS
        return RayHits(
            t=out["t_hit"].numpy(),
            triangle=out["primitive_ids"].numpy(),
            bary=out["primitive_uvs"].numpy(),
            normal=out["primitive_normals"].numpy(),
        )

    def list_intersections(self, rays: np.ndarray) -> dict[str, np.ndarray]:
        """All hits along each of the float32 (N, 6) rays (Open3D's ``list_intersections``), as numpy arrays."""
        out = self._scene.list_intersections(self._o3c.Tensor.from_numpy(np.ascontiguousarray(rays, dtype=np.float32)))
        return {k: v.numpy() for k, v in out.items()}
