"""Loading a mesh file (GLB/glTF, PLY, OBJ + MTL) and its ``<stem>.rooms.json`` sidecar into a
:class:`~envsim.scenes.scene.Scene` in the Y-up world frame; broken files end in a :class:`SceneError`."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from envsim.provenance import file_sha256
from envsim.scenes.guards import check_size, declared_size, geometry_summary, image_errors, one_line, texture_problems
from envsim.scenes.rooms import ROOM_NAMES, SIDECAR_FORMAT, SIDECAR_SUFFIX
from envsim.scenes.scene import (
    MAX_COORDINATE,
    MAX_INDEX,
    MESH_SUFFIXES,
    Material,
    Room,
    Scene,
    SceneError,
    UpAxis,
    z_up_to_y_up,
)

log = logging.getLogger(__name__)


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
        check_size(path, declared_size(path))
        with np.errstate(all="ignore"):  # corrupt numbers become NaN quietly; they are refused below
            loaded = trimesh.load(str(path), force="scene", process=False)
    except SceneError:
        raise
    except FileNotFoundError as exc:  # trimesh's resolver: a .bin buffer or other file the asset names
        missing = exc.filename or (exc.args[0] if exc.args else "?")
        raise SceneError(f"{path.name} refers to a file that is missing: {missing}") from exc
    except OSError as exc:
        raise SceneError(f"cannot read {path}: {one_line(exc)}") from exc
    except Exception as exc:  # trimesh raises many types for corrupt files
        raise SceneError(f"cannot read {path.name} (corrupt or truncated?): {one_line(exc)}") from exc

    with np.errstate(all="ignore"):
        parts = _collect_parts(loaded, path)
    if not parts:
        raise SceneError(
            f"{path.name} holds no triangles ({geometry_summary(loaded)}): a scene needs a triangle mesh, "
            "not only points or lines"
        )
    scene = _assemble(parts, name=name or path.stem, up=up)
    for problem in texture_problems(path, scene.materials):
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
        except image_errors() as exc:
            log.warning("%s: texture of material %r cannot be decoded (%s); using its colour", path.name, name,
                        one_line(exc))
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
