"""Replica: the semantic mesh ``habitat/mesh_semantic.ply`` and its ``habitat/info_semantic.json``.

The PLY has quads with a per-face ``object_id``, a property trimesh drops, so it is read with
:mod:`envsim.scenes.ply`. Replica meshes are stored Z-up (habitat-sim ``ReplicaInstanceMeshData.cpp``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from envsim.scenes.annotations.files import file_location, load_json
from envsim.scenes.annotations.labels import AnnotationError, PathLike
from envsim.scenes.ply import PlyError, PlyValues, read_ply_body, read_ply_header
from envsim.scenes.scene import UpAxis, z_up_to_y_up

log = logging.getLogger(__package__)  # the package's logger, shared by all its readers

UNDEFINED_CLASS = -1
"""The ``class_id`` Replica gives objects without a class ("undefined"): they keep no class name, silently."""

__all__ = ["UNDEFINED_CLASS", "ReplicaInfo", "ReplicaSemantic", "read_replica_info", "read_replica_semantic"]


class ReplicaSemantic(NamedTuple):
    """Replica's semantic mesh.

    Attributes:
        vertices: float32 (V, 3) metres, in the frame chosen by ``up`` (see :func:`read_replica_semantic`).
        faces: int32 (F, 3) triangles (each PLY quad split into [0, 1, 2], [0, 2, 3]).
        face_object: int32 (F,) object id (``info_semantic.json`` ``objects[].id``) of each triangle.
        object_classes: object id -> class name (via the object's ``class_id`` in ``classes``); empty
            without an ``info_semantic.json``.
    """

    vertices: np.ndarray
    faces: np.ndarray
    face_object: np.ndarray
    object_classes: dict[int, str]


class ReplicaInfo(NamedTuple):
    """Replica's ``info_semantic.json``.

    Attributes:
        classes: class id -> class name.
        object_class: object id -> class id.
    """

    classes: dict[int, str]
    object_class: dict[int, int]


def read_replica_info(info_json_path: PathLike) -> ReplicaInfo:
    """Read Replica's ``habitat/info_semantic.json``: ``classes`` [{id, name}] and ``objects`` [{id, class_id}].

    Args:
        info_json_path: the ``info_semantic.json`` file.

    Returns:
        Class names by class id and each object's class id.

    Raises:
        AnnotationError: not JSON, no ``classes`` list, or an entry without an integer ``id`` /
            ``class_id`` or a string ``name``.
    """
    path = Path(info_json_path)
    data = load_json(path, "Replica info_semantic.json")
    if not isinstance(data, dict) or not isinstance(data.get("classes"), list):
        raise AnnotationError(f"{path}: no 'classes' list; Replica's info_semantic.json has 'classes' and 'objects'")
    classes: dict[int, str] = {}
    for i, c in enumerate(data["classes"]):
        where = f"{path}: classes[{i}]"
        if not isinstance(c, dict) or "id" not in c or "name" not in c:
            raise AnnotationError(f"{where} needs 'id' and 'name', got {c!r}"[:200])
        if not isinstance(c["name"], str):
            raise AnnotationError(f"{where}: 'name' must be a string, got {c['name']!r}")
        classes[_json_int(c["id"], where, "id")] = c["name"]
    objects = data.get("objects", [])
    if not isinstance(objects, list):
        raise AnnotationError(f"{path}: 'objects' must be a list, got {type(objects).__name__}")
    object_class: dict[int, int] = {}
    for i, o in enumerate(objects):
        where = f"{path}: objects[{i}]"
        if not isinstance(o, dict) or "id" not in o or "class_id" not in o:
            raise AnnotationError(f"{where} needs 'id' and 'class_id'")
        object_class[_json_int(o["id"], where, "id")] = _json_int(o["class_id"], where, "class_id")
    unknown = sorted({c for c in object_class.values() if c not in classes and c != UNDEFINED_CLASS})
    if unknown:
        log.warning("%s: objects refer to class ids missing from 'classes': %s", path, unknown[:10])
    return ReplicaInfo(classes=classes, object_class=object_class)


def read_replica_semantic(
    ply_path: PathLike, info_json_path: PathLike | None = None, *, up: UpAxis = UpAxis.Y
) -> ReplicaSemantic:
    """Read Replica's ``habitat/mesh_semantic.ply`` (and ``info_semantic.json``).

    The PLY (binary little endian in the release; ASCII and big endian read too) has vertices
    ``x, y, z`` (+ normals, colours) and faces ``vertex_indices`` (quads in the release) with an
    ``object_id`` per face. Replica meshes are stored Z-up (-Z gravity: habitat-sim
    ``ReplicaInstanceMeshData.cpp``). Like :func:`envsim.scenes.load.load_scene`, ``up`` names the file's up
    axis and defaults to Y (coordinates as stored, for callers that apply the stage's own frame
    rotation); pass ``up=UpAxis.Z`` to get the toolkit's Y-up world directly.

    Args:
        ply_path: the ``mesh_semantic.ply`` file.
        info_json_path: the ``info_semantic.json`` file, or None to skip object classes.
        up: the PLY's up axis; Z maps (x, y, z) -> (x, z, -y).

    Returns:
        vertices float32 (V, 3) metres, triangles int32 (F, 3), face_object int32 (F,), and
        {object id: class name}. Class ids and the class table come from :func:`read_replica_info`.

    Raises:
        AnnotationError: malformed or truncated PLY, missing ``x``/``y``/``z``, ``vertex_indices`` or
            ``object_id``, indices out of range, or a malformed ``info_semantic.json``.
    """
    path = Path(ply_path)
    info = read_replica_info(info_json_path) if info_json_path is not None else None
    elements = _read_ply(path)
    if "vertex" not in elements or "face" not in elements:
        raise AnnotationError(f"{path}: PLY needs 'vertex' and 'face' elements, it has {sorted(elements)}")
    vel, fel = elements["vertex"], elements["face"]
    missing = [k for k in ("x", "y", "z") if k not in vel]
    if missing:
        raise AnnotationError(f"{path}: vertex element lacks properties {missing}")
    if "vertex_indices" not in fel or not isinstance(fel["vertex_indices"], tuple):
        raise AnnotationError(f"{path}: face element has no list property 'vertex_indices'")
    if "object_id" not in fel or isinstance(fel["object_id"], tuple):
        raise AnnotationError(
            f"{path}: face element has no 'object_id' property; use Replica's habitat/mesh_semantic.ply "
            "(mesh.ply carries no object ids)"
        )
    vertices = np.stack([np.asarray(vel[k], dtype=np.float64) for k in ("x", "y", "z")], axis=1)
    if not np.all(np.isfinite(vertices)):
        raise AnnotationError(f"{path}: non-finite (NaN or inf) vertex coordinates")
    counts, flat = fel["vertex_indices"]
    tris, poly = _triangulate(counts, flat, path)
    if tris.size and (tris.min() < 0 or tris.max() >= len(vertices)):
        raise AnnotationError(f"{path}: face vertex indices outside 0..{len(vertices) - 1}")
    face_object = np.asarray(fel["object_id"]).astype(np.int64)[poly]
    object_classes: dict[int, str] = {}
    if info is not None:
        object_classes = {o: info.classes[c] for o, c in info.object_class.items() if c in info.classes}
        known = np.fromiter(info.object_class, np.int64, len(info.object_class))
        unknown = np.setdiff1d(np.unique(face_object), known)
        if unknown.size:
            log.warning(
                "%s: %d object ids are not in info_semantic.json objects (e.g. %s)",
                path, unknown.size, unknown[:5].tolist(),
            )
    if up is UpAxis.Z:
        vertices = z_up_to_y_up(vertices)
    return ReplicaSemantic(
        vertices=np.ascontiguousarray(vertices, dtype=np.float32),
        faces=np.ascontiguousarray(tris, dtype=np.int32),
        face_object=face_object.astype(np.int32),
        object_classes=object_classes,
    )


def _json_int(value: Any, where: str, key: str) -> int:
    """``value`` if it is a JSON integer (booleans are not), else AnnotationError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise AnnotationError(f"{where}: {key!r} must be an integer, got {value!r}")
    return value


def _read_ply(path: Path) -> dict[str, dict[str, PlyValues]]:
    """Every element of a PLY file: name -> {property -> (N,) array, or (counts (N,), flat values) for lists}."""
    if not path.is_file():
        raise AnnotationError(f"PLY file not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AnnotationError(f"cannot read {path}: {exc}") from exc
    try:
        elements, trailing = read_ply_body(data, read_ply_header(data))
    except PlyError as exc:
        raise AnnotationError(f"{file_location(path, exc.line)}: {exc}") from exc
    if trailing:
        log.warning("%s: %d bytes after the last PLY element are ignored", path, trailing)
    return elements


def _triangulate(counts: np.ndarray, flat: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Fan-triangulate polygons: [0, 1, 2], [0, 2, 3], ... (habitat's quad split). Returns (tris, source polygon)."""
    counts = np.asarray(counts, dtype=np.int64)
    if counts.size and counts.min() < 3:
        bad = int(np.flatnonzero(counts < 3)[0])
        raise AnnotationError(f"{path}: face {bad} has {int(counts[bad])} vertices; faces need at least 3")
    starts = np.cumsum(counts) - counts
    n_tri = counts - 2
    poly = np.repeat(np.arange(len(counts)), n_tri)
    k = np.arange(int(n_tri.sum())) - np.repeat(np.cumsum(n_tri) - n_tri, n_tri) + 1
    s = starts[poly]
    flat = np.asarray(flat, dtype=np.int64)
    tris = np.stack([flat[s], flat[s + k], flat[s + k + 1]], axis=1)
    return tris, poly
