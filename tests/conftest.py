"""Shared fixtures: small scenes built in memory and written to disk in real asset formats."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from envsim.scenes.scene import Material, Scene


def scene_from_trimesh(mesh: trimesh.Trimesh, *, name: str = "test", color=(0.6, 0.6, 0.6)) -> Scene:
    """An in-memory single-object, single-material Scene from a trimesh mesh."""
    v = np.asarray(mesh.vertices, np.float32)
    f = np.asarray(mesh.faces, np.int32)
    return Scene(
        name=name,
        vertices=v,
        faces=f,
        face_material=np.zeros(len(f), np.int32),
        face_object=np.zeros(len(f), np.int32),
        uv=np.zeros((len(v), 2), np.float32),
        color=np.ones((len(v), 3), np.float32),
        materials=(Material("m", np.asarray(color, np.float32)),),
        object_names=("mesh",),
        object_room=np.full(1, -1, np.int32),
    )


def room_with_furniture(seed: int = 0) -> trimesh.Trimesh:
    """A closed 6 x 3 x 5 m room (floor at y=0) with a few random boxes inside: a non-trivial mesh."""
    rng = np.random.default_rng(seed)
    room = trimesh.creation.box((6.0, 3.0, 5.0))
    room.apply_translation([0, 1.5, 0])
    room.invert()
    parts = [room]
    for _ in range(6):
        ext = rng.uniform(0.2, 1.0, 3)
        box = trimesh.creation.box(ext)
        box.apply_translation([rng.uniform(-2.5, 2.5), ext[1] / 2, rng.uniform(-2, 2)])
        parts.append(box)
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.4)
    sphere.apply_translation([1.0, 2.2, -1.0])
    parts.append(sphere)
    return trimesh.util.concatenate(parts)


@pytest.fixture
def furnished_room() -> trimesh.Trimesh:
    return room_with_furniture(0)


@pytest.fixture(scope="module")
def walked_house(tmp_path_factory):
    """A furnished, textured procedural house and 12 camera poses walked through it (pitch jitter shows
    floors and ceilings): (scene, position (12, 3), rotation (12, 4))."""
    from envsim.nav.build import build_navgrid
    from envsim.nav.trajectory import TrajectoryConfig, sample_trajectories
    from envsim.scenes.load import load_scene
    from envsim.scenes.procedural import ProceduralConfig, generate_house, write_house

    glb, _ = write_house(
        generate_house(rng=np.random.default_rng(1), config=ProceduralConfig(texture_size=64)),
        tmp_path_factory.mktemp("house") / "house.glb",
    )
    scene = load_scene(glb)
    nav = build_navgrid(scene.vertices, scene.faces)
    traj = sample_trajectories(
        nav, config=TrajectoryConfig(views=12, views_per_trajectory=3, pitch_jitter_deg=15.0),
        rng=np.random.default_rng(0),
    )
    return scene, traj.position, traj.rotation
