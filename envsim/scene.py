"""Scenes: triangle meshes with materials, objects and rooms, loaded from GLB/glTF, PLY or OBJ.

Everything after loading works in the toolkit's world frame: right-handed, Y up, metres. Assets stored
Z-up (Habitat's Matterport/HM3D/Gibson meshes, most PLY scans) are mapped with (x, y, z) -> (x, z, -y).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from envsim.rooms import ROOM_NAMES, SIDECAR_FORMAT, SIDECAR_SUFFIX, room_index

log = logging.getLogger(__name__)

MESH_SUFFIXES = (".glb", ".gltf", ".ply", ".obj")


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
    """

    name: str
    factor: np.ndarray
    texture: np.ndarray | None = None


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
        if not self._room_map:
            self._room_map.append(RoomMap.build(self.rooms))
        return self._room_map[0].lookup(points)


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
        return self.labels[room].astype(np.int32)


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


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sidecar_path(mesh_path: str | os.PathLike) -> Path:
    """``<dir>/<stem>.rooms.json`` next to a mesh file."""
    p = Path(mesh_path)
    return p.with_name(p.stem + SIDECAR_SUFFIX)


def load_scene(path: str | os.PathLike, *, up: UpAxis = UpAxis.Y, name: str | None = None) -> Scene:
    """Load a mesh file (and its ``.rooms.json`` sidecar, if any) into the Y-up world frame.

    Args:
        path: a ``.glb``, ``.gltf``, ``.ply`` or ``.obj`` file (OBJ materials from its MTL).
        up: the asset's up axis; Z-up assets are rotated to Y-up.
        name: scene name; defaults to the file stem.

    Raises:
        SceneError: the file is missing, unreadable, has no triangles or non-finite vertices.
    """
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise SceneError(f"scene file not found: {path}")
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise SceneError(f"unsupported scene file {path.name}: use one of {', '.join(MESH_SUFFIXES)}")
    if path.stat().st_size == 0:
        raise SceneError(f"scene file is empty: {path}")
    try:
        loaded = trimesh.load(str(path), force="scene", process=False)
    except Exception as exc:  # trimesh raises many types for corrupt files
        raise SceneError(f"cannot read {path.name}: {type(exc).__name__}: {exc}".splitlines()[0]) from exc

    parts = _collect_parts(loaded)
    if not parts:
        raise SceneError(f"{path.name} holds no triangles")
    scene = _assemble(parts, name=name or path.stem, up=up)
    side = sidecar_path(path)
    rooms: tuple[Room, ...] = ()
    object_room = np.full(len(scene.object_names), -1, dtype=np.int32)
    digest = hashlib.sha256(file_sha256(path).encode())
    if side.is_file():
        rooms, object_room = _read_sidecar(side, scene.object_names)
        digest.update(file_sha256(side).encode())
    return Scene(
        name=scene.name,
        vertices=scene.vertices,
        faces=scene.faces,
        face_material=scene.face_material,
        face_object=scene.face_object,
        uv=scene.uv,
        color=scene.color,
        materials=scene.materials,
        object_names=scene.object_names,
        object_room=object_room,
        rooms=rooms,
        source=str(path),
        sha256=digest.hexdigest(),
    )


def _collect_parts(loaded) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, Material]]:
    """Flatten a trimesh Scene into (node name, world vertices, faces, uv, vertex colour, material)."""
    import trimesh

    parts = []
    for node in loaded.graph.nodes_geometry:
        transform, geom_name = loaded.graph[node]
        geom = loaded.geometry[geom_name]
        if not isinstance(geom, trimesh.Trimesh) or len(geom.faces) == 0:
            continue
        verts = np.asarray(geom.vertices, dtype=np.float64)
        verts = verts @ np.asarray(transform)[:3, :3].T + np.asarray(transform)[:3, 3]
        faces = np.asarray(geom.faces, dtype=np.int64)
        uv, color, material = None, None, Material(name="default", factor=np.full(3, 0.7, np.float32))
        visual = geom.visual
        if isinstance(visual, trimesh.visual.TextureVisuals):
            material = _material_from_trimesh(visual.material)
            if visual.uv is not None and len(visual.uv) == len(verts):
                uv = np.asarray(visual.uv, dtype=np.float32)
        elif isinstance(visual, trimesh.visual.ColorVisuals) and visual.defined:
            material = Material(name="vertex_color", factor=np.ones(3, np.float32))
            if visual.kind == "face":
                fc = np.asarray(visual.face_colors)[:, :3].astype(np.float32) / 255.0
                verts = verts[faces].reshape(-1, 3)  # unshare vertices so each face keeps its colour
                faces = np.arange(len(verts)).reshape(-1, 3)
                color = np.repeat(fc, 3, axis=0)
            else:
                color = np.asarray(visual.vertex_colors)[:, :3].astype(np.float32) / 255.0
        parts.append((str(node), verts, faces, uv, color, material))
    return parts


def _material_from_trimesh(mat) -> Material:
    import trimesh

    name = str(getattr(mat, "name", None) or "material")
    factor = np.ones(3, np.float32)
    image = None
    if isinstance(mat, trimesh.visual.material.PBRMaterial):
        if mat.baseColorFactor is not None:
            factor = np.asarray(mat.baseColorFactor, dtype=np.float32)[:3] / 255.0
        image = mat.baseColorTexture
    elif isinstance(mat, trimesh.visual.material.SimpleMaterial):
        image = mat.image
        if image is None and mat.diffuse is not None:
            factor = np.asarray(mat.diffuse, dtype=np.float32)[:3] / 255.0
    texture = None
    if image is not None:
        texture = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
    return Material(name=name, factor=factor, texture=texture)


def _assemble(parts, *, name: str, up: UpAxis) -> Scene:
    verts, faces, uvs, colors, fmat, fobj = [], [], [], [], [], []
    materials: list[Material] = []
    offset = 0
    for obj, (node, v, f, uv, col, mat) in enumerate(parts):
        if not np.all(np.isfinite(v)):
            raise SceneError(f"scene {name}: object {node!r} has non-finite (NaN or inf) vertex coordinates")
        if f.min() < 0 or f.max() >= len(v):
            raise SceneError(f"scene {name}: object {node!r} has face indices outside its vertex list")
        verts.append(v)
        faces.append(f + offset)
        uvs.append(uv if uv is not None else np.zeros((len(v), 2), np.float32))
        colors.append(col if col is not None else np.ones((len(v), 3), np.float32))
        fmat.append(np.full(len(f), len(materials), np.int32))
        fobj.append(np.full(len(f), obj, np.int32))
        materials.append(mat)
        offset += len(v)
    vertices = np.concatenate(verts)
    if up is UpAxis.Z:
        vertices = z_up_to_y_up(vertices)
    return Scene(
        name=name,
        vertices=np.ascontiguousarray(vertices, dtype=np.float32),
        faces=np.ascontiguousarray(np.concatenate(faces), dtype=np.int32),
        face_material=np.concatenate(fmat),
        face_object=np.concatenate(fobj),
        uv=np.ascontiguousarray(np.concatenate(uvs), dtype=np.float32),
        color=np.ascontiguousarray(np.concatenate(colors), dtype=np.float32),
        materials=tuple(materials),
        object_names=tuple(p[0] for p in parts),
        object_room=np.full(len(parts), -1, np.int32),
    )


def _read_sidecar(path: Path, object_names: tuple[str, ...]) -> tuple[tuple[Room, ...], np.ndarray]:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SceneError(f"cannot read room sidecar {path.name}: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT:
        raise SceneError(f"{path.name} is not an {SIDECAR_FORMAT} sidecar (missing 'format')")
    side_up = UpAxis(str(data.get("up", "y")).lower())
    rooms = []
    try:
        for r in data.get("rooms", []):
            poly = np.asarray(r["polygon"], dtype=np.float64).reshape(-1, 2)
            floor, ceiling = float(r.get("floor", 0.0)), float(r.get("ceiling", 3.0))
            if side_up is UpAxis.Z:
                poly = np.stack([poly[:, 0], -poly[:, 1]], axis=1)
            if poly.shape[0] < 3 or not np.all(np.isfinite(poly)):
                raise ValueError(f"room {r.get('label')!r} needs a polygon of >= 3 finite points")
            rooms.append(Room(label=str(r["label"]), polygon=poly, floor=floor, ceiling=ceiling))
    except (KeyError, TypeError, ValueError) as exc:
        raise SceneError(f"bad room in {path.name}: {exc}") from exc
    object_room = np.full(len(object_names), -1, dtype=np.int32)
    objects = data.get("objects", {})
    for i, n in enumerate(object_names):
        info = objects.get(n)
        if isinstance(info, dict) and isinstance(info.get("room"), int) and 0 <= info["room"] < len(rooms):
            object_room[i] = info["room"]
    unknown = sorted({r.label for r in rooms if r.index < 0})
    if unknown:
        log.warning("%s: room labels not in the toolkit's vocabulary %s are labelled -1: %s", path.name, ROOM_NAMES, unknown)
    return tuple(rooms), object_room
