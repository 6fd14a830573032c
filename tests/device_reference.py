"""Open3D's renders of a few views, made on a CPU machine and carried to one without Open3D (the GPU machine),
where tests/test_device_parity.py holds the Mitsuba backend on CUDA against them.

A reference folder holds the scene (``house.glb`` and its rooms sidecar, loaded there as here) and
``reference.npz``: the camera poses and light seeds, Open3D's first hits of every pixel's ray, the renderer's
images with Open3D casting (RGB, depth, room and object ids, camera rooms, lights) and the navigable grid
built through Open3D. About 1 MB.

Usage (here, where Open3D is installed)::

    python -m tests.device_reference build/gpu_check/reference
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

REFERENCE_NPZ = "reference.npz"
HOUSE = "house.glb"
SIZE = 128
"""Image side in pixels (the GPU target's resolution)."""
VIEWS = 8


def render_config(semantic):
    """The render config of the reference images (the backend aside): jittered lights show per-view lighting."""
    from envsim.render.renderer import LightingConfig, RenderConfig

    return RenderConfig(width=SIZE, height=SIZE, semantic=semantic, lighting=LightingConfig(jitter=True))


def build_reference(folder: str | Path, *, seed: int = 1) -> Path:
    """Write the house, the poses and Open3D's outputs into ``folder`` (created); returns the npz path."""
    from envsim.nav.build import build_navgrid
    from envsim.nav.trajectory import TrajectoryConfig, sample_trajectories
    from envsim.render.raycast import Open3DRayCaster
    from envsim.render.renderer import Renderer, SemanticMode
    from envsim.scenes.load import load_scene
    from envsim.scenes.procedural import ProceduralConfig, generate_house, write_house
    from envsim.version import code_version

    folder = Path(folder)
    glb, _ = write_house(generate_house(rng=np.random.default_rng(seed), config=ProceduralConfig(texture_size=64)),
                         folder / HOUSE)
    scene = load_scene(glb)
    caster = Open3DRayCaster(scene.vertices, scene.faces)
    nav = build_navgrid(scene.vertices, scene.faces)
    traj = sample_trajectories(nav, config=TrajectoryConfig(views=VIEWS, views_per_trajectory=2, pitch_jitter_deg=15.0),
                               rng=np.random.default_rng(0))
    position, rotation = traj.position, traj.rotation
    seeds = np.arange(VIEWS, dtype=np.int64) + 7
    room = Renderer(scene, render_config(SemanticMode.ROOM), caster).render(position, rotation, seeds)
    obj = Renderer(scene, render_config(SemanticMode.OBJECT), caster).render(position, rotation, seeds)
    hits = caster.cast(Renderer(scene, render_config(SemanticMode.NONE), caster).rays(position, rotation))
    import open3d

    meta = {"open3d": open3d.__version__, "code_version": code_version(), "seed": seed, "views": VIEWS, "size": SIZE,
            "triangles": int(scene.n_triangles)}
    path = folder / REFERENCE_NPZ
    np.savez_compressed(
        path, position=position, rotation=rotation, seeds=seeds, rgb=room.rgb, depth=room.depth,
        semantic_room=room.semantic, semantic_object=obj.semantic, room=room.room, light=room.light,
        t=hits.t, triangle=hits.triangle, interior=interior(hits.triangle, hits.bary),
        nav_walkable=nav.walkable, nav_height=nav.height, nav_origin=nav.origin, meta=np.array(json.dumps(meta)),
    )
    return path


def interior(triangle: np.ndarray, bary: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    """Hits at least ``eps`` (barycentric) away from every edge of their triangle, bool (N,): where two
    BVHs must agree on the triangle."""
    u, v = bary[:, 0], bary[:, 1]
    return (triangle != 0xFFFFFFFF) & (np.minimum(np.minimum(u, v), 1.0 - u - v) > eps)


def load_reference(folder: str | Path) -> tuple[object, dict[str, np.ndarray]]:
    """The scene and the arrays of a reference folder."""
    from envsim.scenes.load import load_scene

    folder = Path(folder)
    with np.load(folder / REFERENCE_NPZ) as data:
        arrays = {k: data[k] for k in data.files}
    return load_scene(folder / HOUSE), arrays


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.device_reference FOLDER")
    print(build_reference(sys.argv[1]))
