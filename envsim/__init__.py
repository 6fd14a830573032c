"""envsim: render RGB-D datasets with exact camera poses from indoor scenes.

Public API (everything else is internal)::

    from envsim import load_scene, Renderer, RenderConfig, render_dataset, DatasetConfig, read_shard
    from envsim import read_scene_dataset, load_stage, read_navmesh, navmesh_to_grid   # Habitat assets
"""

from envsim.camera import Intrinsics, make_intrinsics, pose_matrix, quat_from_yaw_pitch_roll, quat_to_matrix
from envsim.scenes.load import load_scene
from envsim.scenes.rooms import ROOM_NAMES
from envsim.scenes.scene import Room, Scene, SceneError, UpAxis
from envsim.store.shards import Compression, ShardWriter, read_manifest, read_shard
from envsim.version import __version__, code_version

__all__ = [
    "ROOM_NAMES",
    "Compression",
    "DatasetConfig",
    "Backend",
    "Intrinsics",
    "RenderConfig",
    "Renderer",
    "Room",
    "Scene",
    "SceneError",
    "ShardWriter",
    "UpAxis",
    "__version__",
    "code_version",
    "load_scene",
    "load_stage",
    "make_intrinsics",
    "navmesh_to_grid",
    "pose_matrix",
    "quat_from_yaw_pitch_roll",
    "quat_to_matrix",
    "read_manifest",
    "read_navmesh",
    "read_scene_dataset",
    "read_shard",
    "render_dataset",
]


def __getattr__(name: str):
    # Heavier pieces (trimesh/Open3D users) load on first use.
    if name == "read_scene_dataset":
        from envsim.scenes.habitat import read_scene_dataset

        return read_scene_dataset
    if name == "load_stage":
        from envsim.scenes.stage import load_stage

        return load_stage
    if name in ("read_navmesh", "navmesh_to_grid"):
        from envsim.nav import navmesh

        return getattr(navmesh, name)
    if name in ("RenderConfig", "Renderer", "Backend"):
        from envsim.render import renderer as render

        return getattr(render, name)
    if name in ("DatasetConfig", "render_dataset"):
        from envsim import job

        return getattr(job, name)
    raise AttributeError(f"module 'envsim' has no attribute {name!r}")
