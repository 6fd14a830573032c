"""Scenes: triangle meshes with materials, objects and rooms (the model; :mod:`envsim.scenes.load` reads
them from GLB/glTF, PLY or OBJ, :mod:`envsim.scenes.guards` refuses broken files).

Everything after loading works in the toolkit's world frame: right-handed, Y up, metres. Assets stored
Z-up (Habitat's Matterport/HM3D/Gibson meshes, most PLY scans) are mapped with (x, y, z) -> (x, z, -y).

Broken input never gets past :func:`load_scene` as anything but a :class:`SceneError` naming the file:
truncated or corrupt files, headers that promise more data than the file holds, meshes too large for the
memory available (:data:`BYTES_PER_TRIANGLE`), no triangles, face indices outside the vertex list,
non-finite or absurd (> :data:`MAX_COORDINATE`) coordinates. Textures the asset names but that are missing
or unreadable are a logged warning: the surface keeps its material colour. Degenerate triangles (zero area:
repeated indices, collinear or coincident vertices) are kept as they are: rays never hit them and they are
never floor, so they change neither the images nor the navigable space.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from envsim.scenes.rooms import room_index

log = logging.getLogger(__name__)

MESH_SUFFIXES = (".glb", ".gltf", ".ply", ".obj")

MAX_COORDINATE = 1.0e6
"""Largest vertex coordinate magnitude in metres that :func:`load_scene` accepts: beyond it a file is corrupt
or in the wrong units (and float32 keeps less than 1/16 m of precision there)."""

BYTES_PER_TRIANGLE = 400
"""Peak working memory per triangle of loading, ray casting and navigating a scene (about 330 bytes measured
on a 2M-triangle GLB and PLY, plus headroom). :func:`load_scene` refuses a file whose header declares more
triangles than the memory available can hold, before reading it."""

MAX_INDEX = 2**31 - 1
"""Faces are int32: at most this many vertices."""


class UpAxis(str, Enum):
    """Which axis of an asset points up."""

    Y = "y"
    Z = "z"


class SceneError(ValueError):
    """A scene file that cannot be used (missing, corrupt, empty, non-finite)."""


def z_up_to_y_up(points: np.ndarray) -> np.ndarray:
    """Map Z-up coordinates to the Y-up world: (x, y, z) -> (x, z, -y). Shape (..., 3)."""
    p = np.asarray(points)
    return np.stack([p[..., 0], p[..., 2], -p[..., 1]], axis=-1)


@dataclass(frozen=True, eq=False)
class Material:
    """Surface colour: ``factor`` (RGB in [0, 1]) times the texture (if any) times vertex colours.

    Attributes:
        name: material name from the asset.
        factor: float32 (3,) linear multiplier in [0, 1].
        texture: uint8 (H, W, 3) image or None; sampled bilinearly with REPEAT wrapping, OpenGL uv
            convention (v = 0 at the bottom row).
        unlit: the asset asks to be shown flat (Habitat ``"shader_type": "flat"``): with ``--shading auto`` its
            pixels are the albedo itself, no lighting.
    """

    name: str
    factor: np.ndarray
    texture: np.ndarray | None = None
    unlit: bool = False


@dataclass(frozen=True, eq=False)
class Room:
    """A room: a floor polygon in the world (x, z) plane and a height range.

    Attributes:
        label: room name as given by the scene (may be outside :data:`ROOM_NAMES`).
        polygon: float64 (P, 2) world (x, z) vertices in metres.
        floor: floor height in metres (world y).
        ceiling: ceiling height in metres.
    """

    label: str
    polygon: np.ndarray
    floor: float
    ceiling: float

    @property
    def index(self) -> int:
        """Index into :data:`ROOM_NAMES`, -1 for labels the toolkit does not know."""
        return room_index(self.label)


@dataclass(frozen=True, eq=False)
class Scene:
    """A triangle mesh in the Y-up world frame, with what the renderer needs to colour and label hits.

    Attributes:
        name: scene name (file stem unless given).
        vertices: float32 (V, 3) metres.
        faces: int32 (F, 3) vertex indices.
        face_material: int32 (F,) index into ``materials``.
        face_object: int32 (F,) index into ``object_names``.
        uv: float32 (V, 2) texture coordinates (zeros where the asset has none).
        color: float32 (V, 3) vertex colours in [0, 1] (ones where the asset has none).
        materials: surface materials.
        object_names: one name per object (mesh node) in the asset.
        object_room: int32 (n_objects,) index into ``rooms`` of each object's room, -1 unknown.
        rooms: room polygons from the sidecar (empty when the scene has none).
        source: the file the scene was loaded from ('' for scenes built in memory).
        sha256: SHA-256 of the source file (and sidecar), '' for in-memory scenes.
        face_instance: int32 (F,) instance id of each face from the dataset's own annotation (HM3D,
            Replica, MP3D semantic meshes), -1 unlabelled; None for scenes without one.
    """

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    face_material: np.ndarray
    face_object: np.ndarray
    uv: np.ndarray
    color: np.ndarray
    materials: tuple[Material, ...]
    object_names: tuple[str, ...]
    object_room: np.ndarray
    rooms: tuple[Room, ...] = ()
    source: str = ""
    sha256: str = ""
    face_instance: np.ndarray | None = None
    _room_map: list = field(default_factory=list, repr=False)

    @property
    def n_triangles(self) -> int:
        return int(self.faces.shape[0])

    @property
    def bounds(self) -> np.ndarray:
        """(2, 3) min and max corner in metres."""
        return np.stack([self.vertices.min(axis=0), self.vertices.max(axis=0)])

    def room_at(self, points: np.ndarray) -> np.ndarray:
        """Room (index into :data:`ROOM_NAMES`) containing each point, from the room polygons.

        Args:
            points: (N, 3) world points in metres.

        Returns:
            int32 (N,): -1 where no room polygon contains the point or its label is unknown.
        """
        return self._rooms().lookup(points)

    def room_polygon_at(self, points: np.ndarray) -> np.ndarray:
        """Index into ``rooms`` of the polygon containing each (N, 3) point, -1 where none: int64 (N,)."""
        return self._rooms().polygon_at(points)

    def _rooms(self) -> "RoomMap":
        if not self._room_map:
            self._room_map.append(RoomMap.build(self.rooms))
        return self._room_map[0]


class RoomMap:
    """Rasterised room polygons for O(1) point lookups (cell size <= 2 cm for scenes up to 40 m)."""

    def __init__(self, origin: np.ndarray, cell: float, grid: np.ndarray, floors: np.ndarray, ceilings: np.ndarray):
        self.origin, self.cell, self.grid = origin, cell, grid
        self.floors, self.ceilings = floors, ceilings
        self.labels = np.array([-1], dtype=np.int32)

    @classmethod
    def build(cls, rooms: tuple[Room, ...]) -> "RoomMap":
        if not rooms:
            rm = cls(np.zeros(2), 1.0, np.full((1, 1), -1, np.int16), np.zeros(0), np.zeros(0))
            return rm
        allp = np.concatenate([r.polygon for r in rooms])
        lo, hi = allp.min(axis=0), allp.max(axis=0)
        cell = max(0.02, float((hi - lo).max()) / 2048.0)
        nx, nz = (np.ceil((hi - lo) / cell).astype(int) + 1).tolist()
        grid = np.full((nz, nx), -1, dtype=np.int16)
        xs = lo[0] + (np.arange(nx) + 0.5) * cell
        zs = lo[1] + (np.arange(nz) + 0.5) * cell
        for i, room in enumerate(rooms):
            pl, ph = room.polygon.min(axis=0), room.polygon.max(axis=0)
            cx = np.flatnonzero((xs >= pl[0]) & (xs <= ph[0]))
            cz = np.flatnonzero((zs >= pl[1]) & (zs <= ph[1]))
            if cx.size == 0 or cz.size == 0:
                continue
            px, pz = np.meshgrid(xs[cx], zs[cz])
            inside = points_in_polygon(np.stack([px.ravel(), pz.ravel()], 1), room.polygon).reshape(px.shape)
            sub = grid[cz[0] : cz[-1] + 1, cx[0] : cx[-1] + 1]
            sub[inside & (sub < 0)] = i
        rm = cls(lo, cell, grid, np.array([r.floor for r in rooms]), np.array([r.ceiling for r in rooms]))
        rm.labels = np.array([r.index for r in rooms] + [-1], dtype=np.int32)
        return rm

    def lookup(self, points: np.ndarray) -> np.ndarray:
        """Room label (index into :data:`ROOM_NAMES`) at each (N, 3) point, -1 where none: int32 (N,)."""
        return self.labels[self.polygon_at(points)].astype(np.int32)

    def polygon_at(self, points: np.ndarray) -> np.ndarray:
        """Index of the room polygon containing each (N, 3) point (within its floor/ceiling range, 0.5 m
        slack), -1 where none: int64 (N,)."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        ix = np.floor((p[:, 0] - self.origin[0]) / self.cell).astype(np.int64)
        iz = np.floor((p[:, 2] - self.origin[1]) / self.cell).astype(np.int64)
        ok = (ix >= 0) & (iz >= 0) & (ix < self.grid.shape[1]) & (iz < self.grid.shape[0])
        room = np.full(p.shape[0], -1, dtype=np.int64)
        room[ok] = self.grid[iz[ok], ix[ok]]
        has = room >= 0
        if self.floors.size:
            r = room[has]
            y = p[has, 1]
            inside_y = (y >= self.floors[r] - 0.5) & (y <= self.ceilings[r] + 0.5)
            room[np.flatnonzero(has)[~inside_y]] = -1
        return room


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test, vectorised over points.

    Args:
        points: (N, 2).
        polygon: (P, 2) vertices, either orientation, not closed.

    Returns:
        bool (N,).
    """
    x, y = points[:, 0][:, None], points[:, 1][:, None]
    a = polygon
    b = np.roll(polygon, -1, axis=0)
    ax, ay, bx, by = a[:, 0][None], a[:, 1][None], b[:, 0][None], b[:, 1][None]
    crosses = (ay > y) != (by > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        xint = ax + (y - ay) * (bx - ax) / (by - ay)
    return np.count_nonzero(crosses & (x < xint), axis=1) % 2 == 1
