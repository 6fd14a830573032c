"""A Habitat stage loaded into the Y-up world: its mesh turned into the world frame, rooms and per-face instance ids
from its annotations, the scene instance's objects composed onto it (:mod:`envsim.scenes.compose`).

What a stage is and where its files are comes from :mod:`envsim.scenes.habitat` (configs and folders).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from envsim.scenes.habitat import Stage, frame_rotation

log = logging.getLogger(__name__)


def load_stage(stage: Stage, *, labels: dict[str, dict[str, str]] | None = None):
    """Load a Habitat stage into the Y-up world with its rooms and per-face instance ids.

    The mesh is turned by :func:`frame_rotation`, then scaled by ``scale`` along the world axes (habitat-sim puts
    the scaling node above the frame-rotated mesh, for stages as for objects). Rooms come from the descriptor
    (MP3D ``.house`` regions, Habitat ``region_annotations``, HM3D regions with the room votes table);
    per-face instance ids come from the semantic mesh (transferred to the render mesh face by face, by
    the nearest semantic face centroid, when the two meshes differ). Faces without an annotation get
    instance id -1. A scene instance's objects are then added (:func:`envsim.scenes.compose.compose_scene`).

    Args:
        stage: what to load (see :func:`read_scene_dataset`).
        labels: room-label tables by family (default: ``data_manifests/room_labels.toml``).

    Returns:
        An :class:`envsim.scenes.scene.Scene`.

    Raises:
        SceneError: unreadable mesh or annotation files.
    """
    from envsim.provenance import file_sha256
    from envsim.scenes import annotations as ann
    from envsim.scenes.compose import compose_scene
    from envsim.scenes.load import load_scene
    from envsim.scenes.scene import UpAxis

    scene = load_scene(stage.render_asset, up=UpAxis.Y, name=stage.name)
    rot = frame_rotation(stage.up, stage.front)
    scale = np.asarray(stage.scale, np.float64)
    vertices = ((scene.vertices.astype(np.float64) @ rot.T) * scale).astype(np.float32)
    table = labels if labels is not None else ann.load_room_labels()
    rooms = scene.rooms
    desc = Path(stage.descriptor) if stage.descriptor else None
    instance = None  # per-face dataset instance id of the semantic mesh, -1 unlabelled
    inst_region: dict[int, int] = {}
    inst_names: dict[int, str] = {}
    region_room: dict[int, str] = {}
    if desc is not None and desc.name.endswith(".house"):
        rooms = ann.read_mp3d_house(desc, table=table)
    elif desc is not None and desc.name.endswith(".semantic_config.json"):
        rooms = ann.read_habitat_regions(desc, table=table)
    elif desc is not None and desc.name.endswith(".semantic.txt"):
        for inst_id, _color, category, region in ann.read_hm3d_semantic_txt(desc):
            inst_region[int(inst_id)] = int(region)
            inst_names[int(inst_id)] = str(category)
        votes = _find_upwards(desc.parent, "Per_Scene_Region_Votes.csv")
        if votes is not None:
            region_room = ann.read_region_votes(votes, _hm3d_scene_id(stage), table=table)
        else:
            log.warning("%s: no Per_Scene_Region_Votes.csv found above %s; HM3D rooms stay unknown", stage.name, desc.parent)
    sv = None
    if stage.semantic_asset:
        sem = Path(stage.semantic_asset)
        try:
            if sem.name.endswith(".semantic.glb") and desc is not None and desc.name.endswith(".semantic.txt"):
                sv, sf, sid = ann.hm3d_face_instances(sem, desc)
            elif sem.suffix.lower() == ".ply":
                info = desc if desc is not None and desc.name == "info_semantic.json" else None
                sv, sf, sid, classes = ann.read_replica_semantic(sem, info)
                if info is not None:
                    inst_names.update({int(k): str(v) for k, v in classes.items()})
        except ann.AnnotationError as exc:  # the scene still renders; only its instance ids are missing
            log.warning("%s: semantic mesh not used: %s", stage.name, exc)
            sv = None
        if sv is not None:
            sv = ((np.asarray(sv, np.float64) @ rot.T) * scale).astype(np.float32)
            instance = _transfer_face_ids(sv, np.asarray(sf), np.asarray(sid), vertices, scene.faces)
    if inst_region and region_room:  # HM3D: rooms are regions with a room vote; footprint from their faces
        rooms = _regions_as_rooms(vertices, scene.faces, instance, inst_region, region_room)
    face_object, object_names, object_room = _objects(vertices, scene, instance, inst_names, rooms)
    digest = hashlib.sha256(scene.sha256.encode())
    for f in stage.files()[1:]:
        digest.update(file_sha256(f).encode())
    return compose_scene(replace(
        scene, vertices=vertices, rooms=tuple(rooms), face_object=face_object, object_names=object_names,
        object_room=object_room, face_instance=instance, sha256=digest.hexdigest(), _room_map=[],
    ), stage)


def _find_upwards(folder: Path, name: str, levels: int = 3) -> Path | None:
    for parent in [folder, *folder.parents][: levels + 1]:
        if (parent / name).is_file():
            return parent / name
    return None


def _hm3d_scene_id(stage: Stage) -> str:
    """HM3D scenes are named ``<nnnnn>-<id>`` by folder; the votes table uses the folder name."""
    return Path(stage.render_asset).parent.name


def _transfer_face_ids(sv, sf, sid, vertices, faces) -> np.ndarray:
    """Per-face ids of a semantic mesh carried over to the render mesh by nearest face centroid."""
    from scipy.spatial import cKDTree

    if sf.shape == faces.shape and np.array_equal(sf, faces) and np.allclose(sv, vertices, atol=1e-5):
        return sid.astype(np.int32)
    tree = cKDTree(sv[sf].mean(axis=1))
    _, nearest = tree.query(vertices[faces].mean(axis=1), workers=-1)
    return sid[nearest].astype(np.int32)


def _regions_as_rooms(vertices, faces, instance, inst_region, region_room):
    """One room per HM3D region with a room vote: the convex hull of its faces' (x, z) footprint."""
    from scipy.spatial import ConvexHull, QhullError

    from envsim.scenes.scene import Room

    if instance is None:
        return ()
    ids = np.array(sorted(inst_region))
    regions = np.array([inst_region[i] for i in ids])
    lut = np.full(int(max(ids.max(), instance.max(), 0)) + 2, -1, np.int64)
    lut[ids] = regions
    face_region = np.where(instance >= 0, lut[np.clip(instance, 0, len(lut) - 1)], -1)
    rooms = []
    for region in sorted(region_room):
        sel = faces[face_region == region]
        if len(sel) == 0:
            continue
        pts = vertices[sel.reshape(-1)].astype(np.float64)
        try:
            hull = ConvexHull(pts[:, [0, 2]])
        except (QhullError, ValueError):
            continue
        rooms.append(Room(label=region_room[region], polygon=pts[hull.vertices][:, [0, 2]],
                          floor=float(pts[:, 1].min()), ceiling=float(pts[:, 1].max())))
    return tuple(rooms)


def _objects(vertices, scene, instance, inst_names, rooms):
    """face_object / object_names / object_room for a stage: one object per annotated instance (plus
    'unlabelled'), or, without a semantic mesh, one object per room the face centroids fall in."""
    faces = scene.faces
    if instance is None:
        if not rooms:
            return scene.face_object, scene.object_names, scene.object_room
        face_room = _face_rooms(vertices, faces, rooms)
        names = tuple(f"room-{i}" for i in range(len(rooms))) + ("no-room",)
        face_object = np.where(face_room >= 0, face_room, len(rooms)).astype(np.int32)
        object_room = np.append(np.arange(len(rooms)), -1).astype(np.int32)
        return face_object, names, object_room
    uniq, face_object = np.unique(instance, return_inverse=True)
    names = tuple("unlabelled" if i < 0 else f"{inst_names.get(int(i), 'object')}#{int(i)}" for i in uniq)
    object_room = np.full(len(uniq), -1, np.int32)
    if rooms:
        face_room = _face_rooms(vertices, faces, rooms)
        has = face_room >= 0  # each instance's room: where most of its faces lie
        votes = np.bincount(face_object[has] * len(rooms) + face_room[has], minlength=len(uniq) * len(rooms))
        votes = votes.reshape(len(uniq), len(rooms))
        object_room = np.where(votes.any(axis=1), votes.argmax(axis=1), -1).astype(np.int32)
    return face_object.astype(np.int32), names, object_room


def _face_rooms(vertices: np.ndarray, faces: np.ndarray, rooms, *, reach: float = 0.2) -> np.ndarray:
    """Index into ``rooms`` of the room each face bounds, -1 for none.

    A face belongs to the room its centroid (raised 5 cm) lies in; a face outside every room (a wall, whose
    centroid lies inside the wall or on its outer side) belongs to the room ``reach`` metres off it along
    its normal, on either side (scans' winding is not reliable), the front side first.
    """
    from envsim.scenes.scene import RoomMap

    rmap = RoomMap.build(tuple(rooms))
    tri = vertices[faces].astype(np.float64)
    centroids = tri.mean(axis=1) + np.array([0.0, 0.05, 0.0])
    face_room = rmap.polygon_at(centroids)
    missing = np.flatnonzero(face_room < 0)
    if missing.size:
        n = np.cross(tri[missing, 1] - tri[missing, 0], tri[missing, 2] - tri[missing, 0])
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        for sign in (1.0, -1.0):
            still = face_room[missing] < 0
            if not still.any():
                break
            idx = missing[still]
            face_room[idx] = rmap.polygon_at(centroids[idx] + sign * reach * n[still])
    return face_room
