"""Room and object annotations of public indoor-scene datasets (MP3D, Habitat, HM3D, Replica).

Readers, one per format, each checked against the format's own definition:

* Matterport3D ``house_segmentations/<id>.house`` (ASCII 1.1, Z-up): regions (rooms) with their floor
  polygons, label codes and heights, and objects with oriented boxes (:mod:`.mp3d`). Field layout from
  niessner/Matterport ``data_organization.md`` and the reference reader ``MPHouse::ReadAsciiFile`` in
  ``code/gaps/apps/mpview/mp.cpp``; habitat-sim reads the same lines in ``Mp3dSemanticScene.cpp``.
* Habitat region annotations: ``region_annotations`` in a ``*.semantic_config.json`` (habitat-sim
  ``SemanticAttributesManager.cpp`` / ``SemanticScene.cpp``): a Y-up poly-loop extruded from
  ``floor_height`` by ``extrusion_height`` (:mod:`.regions`).
* HM3D-Semantics v0.2: ``<hash>.semantic.txt`` (habitat-sim ``HM3DSemanticScene.cpp``), the texture-coded
  ``<hash>.semantic.glb`` and the per-region room votes ``Per_Scene_Region_Votes.csv`` (:mod:`.hm3d`).
* Replica: ``habitat/mesh_semantic.ply`` (quads with a per-face ``object_id``) and
  ``habitat/info_semantic.json`` (:mod:`.replica`).

Room polygons (:class:`envsim.scenes.scene.Room`) always come out in the world frame. The two semantic-mesh
readers take ``up`` like :func:`envsim.scenes.load.load_scene`: the asset's up axis, default Y (coordinates as
stored, which for HM3D's glTF is already the world frame; Replica is stored Z-up).

Dataset room names map onto :data:`envsim.scenes.rooms.ROOM_NAMES` through the user-editable table
``data_manifests/room_labels.toml`` (see :func:`load_room_labels`, :mod:`.labels`). World frame: right-handed,
Y up, metres; Z-up inputs are mapped with (x, y, z) -> (x, z, -y), so a Z-up floor point (x, y) lands at world
(x, z) = (x, -y).

Every reader raises :class:`AnnotationError` on malformed input, naming the file, the line where there is
one, and what to fix. This package's modules import downwards only: ``labels`` <- ``files`` <- the readers.
"""

from __future__ import annotations

from envsim.scenes.annotations.hm3d import HM3D_TXT_HEADER as HM3D_TXT_HEADER
from envsim.scenes.annotations.hm3d import (
    Hm3dFaceInstances,
    Hm3dInstance,
    hm3d_face_instances,
    read_hm3d_semantic_txt,
    read_region_votes,
)
from envsim.scenes.annotations.labels import (
    DEFAULT_ROOM_LABELS,
    AnnotationError,
    load_room_labels,
    map_room_label,
)
from envsim.scenes.annotations.labels import PathLike as PathLike
from envsim.scenes.annotations.mp3d import (
    MP3D_REGION_CODES,
    Mp3dHouse,
    Mp3dObject,
    Mp3dRegion,
    read_mp3d_house,
    read_mp3d_house_full,
)
from envsim.scenes.annotations.regions import HABITAT_DEFAULT_EXTRUSION_HEIGHT as HABITAT_DEFAULT_EXTRUSION_HEIGHT
from envsim.scenes.annotations.regions import HABITAT_DEFAULT_FLOOR_HEIGHT as HABITAT_DEFAULT_FLOOR_HEIGHT
from envsim.scenes.annotations.regions import read_habitat_regions
from envsim.scenes.annotations.replica import (
    ReplicaInfo,
    ReplicaSemantic,
    read_replica_info,
    read_replica_semantic,
)

# The ``X as X`` imports above re-export the single module's other public names (HM3D_TXT_HEADER, PathLike,
# HABITAT_DEFAULT_*), which stay outside ``__all__`` as they were.
__all__ = [
    "AnnotationError",
    "DEFAULT_ROOM_LABELS",
    "MP3D_REGION_CODES",
    "Hm3dFaceInstances",
    "Hm3dInstance",
    "Mp3dHouse",
    "Mp3dObject",
    "Mp3dRegion",
    "ReplicaInfo",
    "ReplicaSemantic",
    "hm3d_face_instances",
    "load_room_labels",
    "map_room_label",
    "read_habitat_regions",
    "read_hm3d_semantic_txt",
    "read_mp3d_house",
    "read_mp3d_house_full",
    "read_region_votes",
    "read_replica_info",
    "read_replica_semantic",
]
