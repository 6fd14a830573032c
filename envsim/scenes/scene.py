"""Scenes: triangle meshes with materials, objects and rooms, loaded from GLB/glTF, PLY or OBJ.

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

import base64
import binascii
import hashlib
import io
import json
import logging
import os
import re
import struct
import zlib
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from envsim.provenance import file_sha256
from envsim.scenes.rooms import ROOM_NAMES, SIDECAR_FORMAT, SIDECAR_SUFFIX, room_index

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
        SceneError: the file is missing, unreadable, truncated or corrupt, too large for the memory
            available, has no triangles, or has non-finite or absurd vertex coordinates (see the module
            docstring). Missing or unreadable textures are only logged.
    """
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise SceneError(f"scene file not found: {path}")
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise SceneError(f"unsupported scene file {path.name}: use one of {', '.join(MESH_SUFFIXES)}")
    try:
        if path.stat().st_size == 0:
            raise SceneError(f"scene file is empty: {path}")
        _check_size(path, _declared_size(path))
        with np.errstate(all="ignore"):  # corrupt numbers become NaN quietly; they are refused below
            loaded = trimesh.load(str(path), force="scene", process=False)
    except SceneError:
        raise
    except FileNotFoundError as exc:  # trimesh's resolver: a .bin buffer or other file the asset names
        missing = exc.filename or (exc.args[0] if exc.args else "?")
        raise SceneError(f"{path.name} refers to a file that is missing: {missing}") from exc
    except OSError as exc:
        raise SceneError(f"cannot read {path}: {_one_line(exc)}") from exc
    except Exception as exc:  # trimesh raises many types for corrupt files
        raise SceneError(f"cannot read {path.name} (corrupt or truncated?): {_one_line(exc)}") from exc

    with np.errstate(all="ignore"):
        parts = _collect_parts(loaded, path)
    if not parts:
        raise SceneError(
            f"{path.name} holds no triangles ({_geometry_summary(loaded)}): a scene needs a triangle mesh, "
            "not only points or lines"
        )
    scene = _assemble(parts, name=name or path.stem, up=up)
    for problem in _texture_problems(path, scene.materials):
        log.warning("%s: %s", path.name, problem)
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


def _collect_parts(
    loaded, path: Path
) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, Material]]:
    """Flatten a trimesh Scene into (node name, world vertices, faces, uv, vertex colour, material).

    Raises:
        SceneError: an object whose faces are not triangles or index outside its vertices.
    """
    import trimesh

    parts = []
    for node in loaded.graph.nodes_geometry:
        transform, geom_name = loaded.graph[node]
        geom = loaded.geometry[geom_name]
        if not isinstance(geom, trimesh.Trimesh) or len(geom.faces) == 0:
            continue
        verts = np.asarray(geom.vertices, dtype=np.float64)
        faces = np.asarray(geom.faces, dtype=np.int64)
        if verts.ndim != 2 or verts.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
            raise SceneError(f"{path.name}: object {str(node)!r} is not a triangle mesh (corrupt file?)")
        if faces.min() < 0 or faces.max() >= len(verts):
            raise SceneError(
                f"{path.name}: object {str(node)!r} has face indices outside its {len(verts)} vertices (corrupt file?)"
            )
        matrix = np.asarray(transform, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite results are refused in _assemble
            verts = verts @ matrix[:3, :3].T + matrix[:3, 3]
        uv, color, material = None, None, Material(name="default", factor=np.full(3, 0.7, np.float32))
        visual = geom.visual
        if isinstance(visual, trimesh.visual.TextureVisuals):
            material = _material_from_trimesh(visual.material, path)
            raw = None if visual.uv is None else np.asarray(visual.uv, dtype=np.float64)
            if raw is not None and raw.ndim == 2 and raw.shape[0] == len(verts) and raw.shape[1] >= 2:
                uv = raw[:, :2].astype(np.float32)
                bad = ~np.isfinite(uv)
                if bad.any():
                    log.warning("%s: object %r has %d non-finite texture coordinates; set to 0", path.name,
                                str(node), int(bad.any(axis=1).sum()))
                    uv[bad] = 0.0
        elif isinstance(visual, trimesh.visual.ColorVisuals) and visual.defined:
            material = Material(name="vertex_color", factor=np.ones(3, np.float32))
            if visual.kind == "face":
                fc = np.asarray(visual.face_colors)[:, :3].astype(np.float32) / 255.0
                if len(fc) == len(faces):
                    verts = verts[faces].reshape(-1, 3)  # unshare vertices so each face keeps its colour
                    faces = np.arange(len(verts)).reshape(-1, 3)
                    color = np.repeat(fc, 3, axis=0)
            else:
                vc = np.asarray(visual.vertex_colors)[:, :3].astype(np.float32) / 255.0
                if len(vc) == len(verts):
                    color = vc
        parts.append((str(node), verts, faces, uv, color, material))
    return parts


def _material_from_trimesh(mat, path: Path) -> Material:
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
        try:
            texture = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
        except _image_errors() as exc:
            log.warning("%s: texture of material %r cannot be decoded (%s); using its colour", path.name, name,
                        _one_line(exc))
        if texture is not None and (texture.ndim != 3 or texture.shape[2] != 3 or texture.size == 0):
            log.warning("%s: texture of material %r is empty; using its colour", path.name, name)
            texture = None
    if texture is None and isinstance(mat, trimesh.visual.material.SimpleMaterial) and mat.diffuse is not None:
        factor = np.asarray(mat.diffuse, dtype=np.float32)[:3] / 255.0
    return Material(name=name, factor=factor, texture=texture)


def _assemble(parts, *, name: str, up: UpAxis) -> Scene:
    verts, faces, uvs, colors, fmat, fobj = [], [], [], [], [], []
    materials: list[Material] = []
    offset = 0
    for obj, (node, v, f, uv, col, mat) in enumerate(parts):
        if not np.all(np.isfinite(v)):
            raise SceneError(f"scene {name}: object {node!r} has non-finite (NaN or inf) vertex coordinates")
        largest = float(np.abs(v).max())
        if largest > MAX_COORDINATE:
            raise SceneError(
                f"scene {name}: object {node!r} has a vertex {largest:.3g} m from the origin (more than "
                f"{MAX_COORDINATE:.0e} m): a corrupt file or the wrong units; scenes are in metres"
            )
        if f.min() < 0 or f.max() >= len(v):
            raise SceneError(f"scene {name}: object {node!r} has face indices outside its vertex list")
        if offset + len(v) > MAX_INDEX:
            raise SceneError(f"scene {name} has more than {MAX_INDEX:,} vertices; split or simplify it")
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


# ---------------------------------------------------------------- guards run before and after trimesh


def _one_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (trimesh and Pillow errors can span lines or be empty)."""
    text = (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else 'corrupt or truncated data'}"


def _geometry_summary(loaded) -> str:
    counts = [f"{len(getattr(g, 'vertices', ()))} points" for g in loaded.geometry.values()]
    return ", ".join(counts) if counts else "no geometry"


def _available_memory() -> int | None:
    """Bytes of memory this process can still allocate (Linux MemAvailable, capped by a cgroup v2 limit);
    None where unknown."""
    avail = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max" and avail is not None:
            avail = min(avail, int(limit) - used)
    except (OSError, ValueError):
        pass
    return avail


def _check_size(path: Path, declared: tuple[int, int] | None) -> None:
    """Refuse a file whose declared (vertices, triangles) cannot fit in the memory available."""
    if declared is None:
        return
    vertices, triangles = declared
    if vertices > MAX_INDEX:
        raise SceneError(f"{path.name} declares {vertices:,} vertices, more than {MAX_INDEX:,}; split or simplify it")
    need = max(triangles, vertices // 2) * BYTES_PER_TRIANGLE
    avail = _available_memory()
    if avail is not None and need > avail:
        raise SceneError(
            f"{path.name} declares {triangles:,} triangles: loading and rendering it needs about "
            f"{_bytes_text(need)} of memory but {_bytes_text(max(avail, 0))} is available; "
            "simplify (decimate) the mesh or use a machine with more memory"
        )


def _bytes_text(n: int) -> str:
    """``n`` bytes as '512 KiB', '3.2 GiB'."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def _declared_size(path: Path) -> tuple[int, int] | None:
    """(vertices, triangles) a file declares, read without parsing its geometry; None when it cannot tell
    (trimesh then reports what is wrong).

    Raises:
        SceneError: a PLY header that promises more data than the file holds (truncated).
    """
    suffix = path.suffix.lower()
    if suffix == ".ply":
        return _ply_declared(path)
    if suffix == ".obj":
        n_v, n_f, _ = _scan_obj(path)
        return n_v, n_f
    header = _gltf_header(path)
    if header is None:
        return None
    try:
        accessors = header.get("accessors", [])
        per_mesh, vert_mesh = [], []
        for mesh in header.get("meshes", []):
            tri = vert = 0
            for prim in mesh.get("primitives", []):
                position = int(accessors[prim["attributes"]["POSITION"]]["count"])
                index = prim.get("indices")
                tri += (int(accessors[index]["count"]) if index is not None else position) // 3
                vert += position
            per_mesh.append(tri)
            vert_mesh.append(vert)
        uses = [node["mesh"] for node in header.get("nodes", []) if isinstance(node, dict) and "mesh" in node]
        uses = uses or range(len(per_mesh))
        return sum(vert_mesh[m] for m in uses), sum(per_mesh[m] for m in uses)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):  # malformed: trimesh will say how
        return None


_PLY_TYPE_SIZE = {
    "char": 1, "uchar": 1, "int8": 1, "uint8": 1, "short": 2, "ushort": 2, "int16": 2, "uint16": 2,
    "int": 4, "uint": 4, "int32": 4, "uint32": 4, "float": 4, "float32": 4, "double": 8, "float64": 8,
}


def _ply_declared(path: Path) -> tuple[int, int] | None:
    """A PLY header's vertex and face counts, checked against the bytes (binary) or lines (ASCII) after it."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    end = re.search(rb"end_header[ \t]*(\r\n|\r|\n)", head)
    if not head.startswith(b"ply") or end is None:
        return None
    lines = head[: end.start()].decode("ascii", "replace").splitlines()
    fmt = ""
    elements: list[list] = []  # [name, count, bytes of fixed properties, bytes of list counts]
    for line in lines:
        words = line.split()
        if not words:
            continue
        if words[0] == "format" and len(words) > 1:
            fmt = words[1]
        elif words[0] == "element" and len(words) == 3:
            if not words[2].isdigit():
                raise SceneError(f"{path.name}: bad PLY header line {line.strip()!r} (corrupt file?)")
            elements.append([words[1], int(words[2]), 0, 0])
        elif words[0] == "property" and elements:
            if len(words) == 5 and words[1] == "list" and words[2] in _PLY_TYPE_SIZE:
                elements[-1][3] += _PLY_TYPE_SIZE[words[2]]
            elif len(words) == 3 and words[1] in _PLY_TYPE_SIZE:
                elements[-1][2] += _PLY_TYPE_SIZE[words[1]]
            else:
                return None
    counts = {name: count for name, count, _, _ in elements}
    vertices, faces = counts.get("vertex", 0), counts.get("face", 0)
    body = path.stat().st_size - end.end()
    if fmt.startswith("binary"):
        need = sum(count * (fixed + lists) for _, count, fixed, lists in elements)  # lists of >= 0 entries
        if need > body:
            raise SceneError(
                f"{path.name} is truncated: its header declares {vertices:,} vertices and {faces:,} faces "
                f"(at least {need:,} bytes) but only {body:,} bytes follow it"
            )
    elif fmt == "ascii":
        records = sum(count for _, count, _, _ in elements)
        found = _count_lines(path, end.end())
        if found < records:
            raise SceneError(
                f"{path.name} is truncated: its header declares {vertices:,} vertices and {faces:,} faces "
                f"({records:,} lines) but only {found:,} lines follow it"
            )
    return vertices, faces


def _count_lines(path: Path, start: int) -> int:
    """Lines from byte ``start`` to the end of a file (a last line without a line break counts)."""
    n_lf = n_cr = 0
    last = b"\n"
    with open(path, "rb") as f:
        f.seek(start)
        for chunk in iter(lambda: f.read(1 << 22), b""):
            n_lf += chunk.count(b"\n")
            n_cr += chunk.count(b"\r")
            last = chunk[-1:]
    return max(n_lf, n_cr) + (last not in (b"\n", b"\r"))


def _scan_obj(path: Path) -> tuple[int, int, list[str]]:
    """(vertex lines, face lines, ``mtllib`` names) of an OBJ file, in one streaming pass."""
    n_v = n_f = 0
    libs: list[str] = []
    carry = b"\n"
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            data = carry + chunk
            cut = data.rfind(b"\n")
            if cut <= 0:
                carry = data
                continue
            block, carry = data[: cut + 1], data[cut:]  # carry keeps the line break: line starts stay visible
            n_v += block.count(b"\nv ") + block.count(b"\nv\t")
            n_f += block.count(b"\nf ") + block.count(b"\nf\t")
            libs += [m.decode("utf-8", "replace").strip() for m in re.findall(rb"\nmtllib[ \t]+([^\r\n]+)", block)]
    block = carry + b"\n"
    n_v += block.count(b"\nv ") + block.count(b"\nv\t")
    n_f += block.count(b"\nf ") + block.count(b"\nf\t")
    libs += [m.decode("utf-8", "replace").strip() for m in re.findall(rb"\nmtllib[ \t]+([^\r\n]+)", block)]
    return n_v, n_f, libs


def _gltf_header(path: Path) -> dict | None:
    """The JSON of a .gltf file or of a GLB's first chunk; None when it is not readable as such."""
    try:
        if path.suffix.lower() == ".gltf":
            header = json.loads(path.read_bytes())
        else:
            with open(path, "rb") as f:
                magic, _, _, length, kind = struct.unpack("<4sIIII", f.read(20))
                if magic != b"glTF" or kind != 0x4E4F534A:  # 'JSON'
                    return None
                header = json.loads(f.read(length))
    except (OSError, ValueError, UnicodeDecodeError, struct.error, RecursionError):
        return None
    return header if isinstance(header, dict) else None


def _gltf_blob(path: Path, header: dict, view: int) -> bytes:
    """Bytes of a bufferView: in a GLB's binary chunk or in an external .bin file."""
    bv = header["bufferViews"][view]
    buffer = header["buffers"][bv["buffer"]]
    start, length = int(bv.get("byteOffset", 0)), int(bv["byteLength"])
    if "uri" in buffer:
        uri = buffer["uri"]
        if uri.startswith("data:"):
            return _uri_bytes(path, uri)[start : start + length]
        source, offset = path.parent / uri, 0
    else:
        with open(path, "rb") as f:
            f.seek(12)
            offset = 20 + struct.unpack("<I", f.read(4))[0] + 8  # past the JSON chunk and the BIN chunk header
        source = path
    with open(source, "rb") as f:
        f.seek(offset + start)
        return f.read(length)


def _uri_bytes(path: Path, uri: str) -> bytes:
    if uri.startswith("data:"):
        return base64.b64decode(uri.partition(",")[2])
    return (path.parent / uri).read_bytes()


def _is_image(source: bytes | Path) -> bool:
    """Whether Pillow recognises ``source`` (bytes or a file) as an image, as trimesh needs it to."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source):
            return True
    except _image_errors():
        return False


def _image_errors() -> tuple[type[Exception], ...]:
    """What Pillow raises for data that is not an image or is corrupt (opening or decoding it)."""
    from PIL import Image

    return (OSError, ValueError, SyntaxError, EOFError, TypeError, IndexError, struct.error, zlib.error,
            MemoryError, Image.DecompressionBombError)


def _texture_problems(path: Path, materials: tuple[Material, ...]) -> list[str]:
    """Textures the asset names that are missing or not images (trimesh drops those silently)."""
    suffix = path.suffix.lower()
    if suffix == ".obj":
        return _obj_texture_problems(path, materials)
    if suffix not in (".glb", ".gltf"):
        return []
    header = _gltf_header(path)
    problems: list[str] = []
    if header is None:
        return problems
    try:
        images, textures = header.get("images", []), header.get("textures", [])
        used = set()
        for mat in header.get("materials", []):
            ref = mat.get("pbrMetallicRoughness", {}).get("baseColorTexture")
            if ref is not None:
                used.add(int(textures[ref["index"]]["source"]))
        for i in sorted(used):
            image = images[i]
            uri = image.get("uri")
            if uri is not None and not uri.startswith("data:"):  # a file name, as trimesh resolves it
                if not (path.parent / uri).is_file():
                    problems.append(f"texture {uri} not found; its surfaces use their material colour")
                elif not _is_image(path.parent / uri):
                    problems.append(f"texture {uri} is not a readable image; its surfaces use their material colour")
            else:
                blob = _uri_bytes(path, uri) if uri is not None else _gltf_blob(path, header, image["bufferView"])
                if not _is_image(blob):
                    problems.append(f"embedded texture {i} is not a readable image; its surfaces use their colour")
    except (AttributeError, KeyError, IndexError, TypeError, ValueError, OSError, struct.error, binascii.Error):
        pass  # a reference trimesh could not follow either: nothing more to say about it
    return problems


def _obj_texture_problems(path: Path, materials: tuple[Material, ...]) -> list[str]:
    textured = {m.name: m.texture is not None for m in materials}
    problems: list[str] = []
    for lib in _scan_obj(path)[2]:
        mtl = path.parent / lib
        try:
            text = mtl.read_text(errors="replace")
        except (OSError, ValueError):  # missing, a folder, unreadable, or a name with a NUL byte
            problems.append(f"material library {lib!r} not found or unreadable; surfaces use a default grey")
            continue
        material = None
        for line in text.splitlines():
            words = line.split()
            if len(words) > 1 and words[0] == "newmtl":
                material = " ".join(words[1:])
            elif len(words) > 1 and words[0].lower() == "map_kd" and textured.get(material) is False:
                name = line[line.lower().index("map_kd") + 6 :].strip()
                try:
                    state = "is not a readable image" if (mtl.parent / name).is_file() else "not found"
                except ValueError:
                    state = "not found"
                problems.append(f"texture {name} of material {material} {state}; using the material colour (Kd)")
    return problems


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
