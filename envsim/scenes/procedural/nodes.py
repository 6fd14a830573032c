"""The scene's nodes in the order they are built (name, room, category, world geometry, material).

Also their conversion to textured trimesh meshes.
"""

from __future__ import annotations

import math

import numpy as np
import trimesh

from envsim.scenes.procedural.geometry import Frame, Geo, planar_uv
from envsim.scenes.procedural.materials import Mat

Parts = list[tuple[str, Geo, Mat]]  # a furniture item's parts: (name suffix, local geometry, material)

FACING = frozenset({
    "armchair", "bathtub", "bed", "bookshelf", "cabinet", "console_table", "counter", "desk", "dresser", "fridge",
    "mirror", "nightstand", "picture", "sideboard", "sink", "sofa", "toilet", "tv", "tv_stand", "wardrobe",
    "washing_machine",
})
"""Categories with a front (local +z of their frame, which wall spots turn into the room): their sidecar entries
record a ``yaw``. Round or symmetric items (tables, islands, rugs, lamps, plants, coat racks, showers) have none."""


def to_trimesh(v: np.ndarray, f: np.ndarray, mat: Mat) -> trimesh.Trimesh:
    """A mesh with float32 vertices and material ``mat``; planar UVs (metres / tile) when ``mat`` is textured.

    Args:
        v: (V, 3) world vertices in metres.
        f: (F, 3) faces.
        mat: the material.

    Returns:
        The unprocessed trimesh (vertex order kept, except splits for UVs).
    """
    uv = None
    if mat.tile is not None:
        v, f, uv = planar_uv(v, f, mat.tile)
    visual = trimesh.visual.TextureVisuals(uv=uv, material=mat.pbr)
    return trimesh.Trimesh(vertices=v.astype(np.float32), faces=f, visual=visual, process=False)


class Nodes:
    """The scene's nodes in insertion order: (name, room index, category, world geometry, material)."""

    def __init__(self) -> None:
        """Start with no nodes."""
        self.nodes: list[tuple[str, int, str, Geo, Mat]] = []
        self.yaw: dict[str, float] = {}  # node name -> facing yaw (radians about +Y, 0 = facing -Z)
        self._count: dict[tuple[int, str], int] = {}
        self.n_triangles = 0

    def add(self, room: int, name: str, category: str, geo: Geo, mat: Mat) -> None:
        """Add one node named ``rNN/<name>`` with world geometry ``geo``; empty geometry is skipped.

        Args:
            room: room index (NN).
            name: node name within the room.
            category: object category recorded in the sidecar.
            geo: world geometry in metres.
            mat: the node's material.
        """
        if len(geo[1]) == 0:
            return
        self.nodes.append((f"r{room:02d}/{name}", room, category, geo, mat))
        self.n_triangles += len(geo[1])

    def add_item(self, room: int, item: str, category: str, frame: Frame, parts: Parts) -> None:
        """Add a furniture item's parts (local geometry) placed by ``frame``, named ``<item><k>_<part>``.

        Items of a :data:`FACING` category also record their facing yaw: local +z turned by ``frame.theta``
        about +Y, as radians in (-pi, pi] with 0 facing -Z (``yaw = theta + pi``), rounded to 1e-6 (pi is 3.141593).
        """
        k = self._count.get((room, item), 0)
        self._count[(room, item)] = k + 1
        yaw = round(math.remainder(frame.theta + math.pi, 2 * math.pi), 6) if category in FACING else None
        for suffix, (v, f), mat in parts:
            name = f"{item}{k}_{suffix}"
            self.add(room, name, category, (frame.apply(v), f), mat)
            if yaw is not None and len(f):
                self.yaw[f"r{room:02d}/{name}"] = yaw
