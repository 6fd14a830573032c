"""Procedural houses: determinism, room vocabulary, sidecar completeness, sealing, reachable doorways."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh

from envsim.scenes.procedural import MANDATORY_ROOMS, House, ProceduralConfig, generate_house, write_house
from envsim.scenes.rooms import ROOM_NAMES, SIDECAR_FORMAT

SEEDS = (0, 1, 2, 3, 4, 5)
TALL_CATEGORIES = {"wardrobe", "fridge", "bookshelf", "counter"}  # may reach 2.2 m
STRUCTURE = {"floor", "ceiling", "wall", "baseboard", "lamp"}


@pytest.fixture(scope="module")
def houses() -> dict[int, House]:
    return {seed: generate_house(rng=np.random.default_rng(seed)) for seed in SEEDS}


def world_mesh(house: House) -> trimesh.Trimesh:
    return house.scene.to_mesh()


def raycaster(mesh: trimesh.Trimesh):
    o3d = pytest.importorskip("open3d")
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(
        o3d.core.Tensor(np.asarray(mesh.vertices, np.float32)), o3d.core.Tensor(np.asarray(mesh.faces, np.uint32))
    )

    def cast(origins: np.ndarray, directions: np.ndarray) -> np.ndarray:
        rays = np.concatenate([origins, directions], axis=1).astype(np.float32)
        return scene.cast_rays(o3d.core.Tensor(rays))["t_hit"].numpy()

    return cast


def room_centre(room: dict) -> np.ndarray:
    return np.asarray(room["polygon"], np.float64).mean(axis=0)


def test_same_seed_gives_identical_files_and_other_seeds_differ(tmp_path):
    paths = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        paths.append(write_house(generate_house(rng=np.random.default_rng(seed)), tmp_path / name / "house.glb"))
    (glb_a, side_a), (glb_b, side_b), (glb_c, side_c) = paths
    assert glb_a.read_bytes() == glb_b.read_bytes()
    assert side_a.read_bytes() == side_b.read_bytes()
    assert glb_a.read_bytes() != glb_c.read_bytes()
    assert side_a.read_bytes() != side_c.read_bytes()
    assert side_a.name == "house.rooms.json"
    assert not [p for p in (tmp_path / "a").iterdir() if p.name not in ("house.glb", "house.rooms.json")]


@pytest.mark.parametrize("seed", SEEDS)
def test_room_types(houses, seed):
    labels = [r["label"] for r in houses[seed].sidecar["rooms"]]
    assert labels.count("hallway") == 1
    for label in MANDATORY_ROOMS:
        assert label in labels
    assert set(labels) <= set(ROOM_NAMES)
    cfg = ProceduralConfig()
    assert cfg.min_rooms <= len(labels) - 1 <= cfg.max_rooms


@pytest.mark.parametrize("seed", SEEDS)
def test_sidecar_lists_every_node(houses, seed):
    house = houses[seed]
    side = house.sidecar
    assert side["format"] == SIDECAR_FORMAT and side["up"] == "y"
    nodes = list(house.scene.graph.nodes_geometry)
    assert sorted(nodes) == sorted(side["objects"])
    n_rooms = len(side["rooms"])
    for name, info in side["objects"].items():
        assert name.startswith(f"r{info['room']:02d}/")
        assert 0 <= info["room"] < n_rooms and isinstance(info["category"], str)
    for i in range(n_rooms):
        cats = {o["category"] for o in side["objects"].values() if o["room"] == i}
        assert {"floor", "ceiling", "wall"} <= cats
    json.dumps(side)  # plain python types only


@pytest.mark.parametrize("seed", SEEDS)
def test_room_polygons_disjoint_and_inside_footprint(houses, seed):
    house = houses[seed]
    rects = []
    for room in house.sidecar["rooms"]:
        p = np.asarray(room["polygon"])
        lo, hi = p.min(axis=0), p.max(axis=0)
        assert np.all(hi - lo >= 1.0)
        assert room["floor"] == 0.0 and room["ceiling"] == ProceduralConfig().wall_height
        rects.append((lo, hi))
    bounds = house.scene.bounds  # (2, 3)
    for i, (lo, hi) in enumerate(rects):
        assert np.all(lo >= bounds[0, [0, 2]]) and np.all(hi <= bounds[1, [0, 2]])
        for lo2, hi2 in rects[i + 1 :]:
            overlap = np.minimum(hi, hi2) - np.maximum(lo, lo2)
            assert np.any(overlap <= 1e-9)
    labels = [r["label"] for r in house.sidecar["rooms"]]
    for label in ("living_room", "bedroom", "kitchen", "bathroom"):
        i = labels.index(label)
        assert np.all(rects[i][1] - rects[i][0] >= 2.5 - 1e-6)


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_house_is_sealed(houses, seed):
    house = houses[seed]
    cast = raycaster(world_mesh(house))
    rng = np.random.default_rng(seed)
    for room in house.sidecar["rooms"]:
        c = room_centre(room)
        dirs = rng.standard_normal((2000, 3))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        origins = np.tile([c[0], 1.5, c[1]], (len(dirs), 1))
        t = cast(origins, dirs)
        assert np.all(t < 20.0), f"{room['label']}: {np.count_nonzero(~(t < 20))} rays escape"


@pytest.mark.parametrize("seed", SEEDS)
def test_doorways_are_open_from_room_centres(houses, seed):
    house = houses[seed]
    side = house.sidecar
    cast = raycaster(world_mesh(house))
    rooms = side["rooms"]
    hallway = [r["label"] for r in rooms].index("hallway")
    reached = {i: False for i in range(len(rooms)) if i != hallway}
    for door in side["doors"]:
        centre = np.asarray(door["center"])
        assert door["height"] > 1.0
        for i in door["rooms"]:
            if i == hallway:
                continue
            c = room_centre(rooms[i])
            d = np.array([centre[0] - c[0], 0.0, centre[1] - c[1]])
            dist = np.linalg.norm(d)
            t = cast(np.array([[c[0], 1.0, c[1]]]), (d / dist)[None])[0]
            assert t > dist + 0.05, f"room {i} ({rooms[i]['label']}): doorway blocked at {t:.2f} m of {dist:.2f} m"
            if hallway in door["rooms"]:
                reached[i] = True
    assert all(reached.values()), "every room has a doorway to the hallway"


@pytest.mark.parametrize("seed", SEEDS)
def test_furniture_heights_and_triangle_budget(houses, seed):
    house = houses[seed]
    objects = house.sidecar["objects"]
    total = 0
    for name in house.scene.graph.nodes_geometry:
        _, geom = house.scene.graph[name]
        mesh = house.scene.geometry[geom]
        total += len(mesh.faces)
        top = float(mesh.bounds[1, 1])
        category = objects[name]["category"]
        if category in STRUCTURE:
            continue
        assert float(mesh.bounds[0, 1]) >= -1e-6, name
        assert top <= (2.2 if category in TALL_CATEGORIES else 2.0) + 1e-6, f"{name} reaches {top:.2f} m"
    assert 1000 < total < 30000


def test_glb_round_trip_keeps_names_uvs_and_textures(houses, tmp_path):
    house = houses[0]
    glb, side = write_house(house, tmp_path / "h.glb")
    loaded = trimesh.load(glb, force="scene")
    sidecar = json.loads(side.read_text())
    assert set(loaded.graph.nodes_geometry) == set(sidecar["objects"])
    textured = 0
    for name in loaded.graph.nodes_geometry:
        mesh = loaded.geometry[loaded.graph[name][1]]
        material = mesh.visual.material
        assert isinstance(material, trimesh.visual.material.PBRMaterial)
        if material.baseColorTexture is not None:
            textured += 1
            assert mesh.visual.uv is not None and len(mesh.visual.uv) == len(mesh.vertices)
            assert np.ptp(mesh.visual.uv, axis=0).max() > 0
        else:
            assert material.baseColorFactor is not None
        if sidecar["objects"][name]["category"] in ("floor", "wall", "ceiling"):
            assert material.baseColorTexture is not None, name
    assert textured > 0


def test_loads_with_room_labels(houses, tmp_path):
    scene_mod = pytest.importorskip("envsim.scenes.load")
    glb, _ = write_house(houses[1], tmp_path / "h.glb")
    scene = scene_mod.load_scene(glb)
    assert [r.label for r in scene.rooms] == [r["label"] for r in houses[1].sidecar["rooms"]]
    assert np.all(scene.object_room >= 0)
    assert any(m.texture is not None for m in scene.materials)
    centres = np.array([[*room_centre(r)[:1], 1.5, room_centre(r)[1]] for r in houses[1].sidecar["rooms"]])
    expected = [ROOM_NAMES.index(r["label"]) for r in houses[1].sidecar["rooms"]]
    assert scene.room_at(centres).tolist() == expected


def test_empty_houses_and_small_textures():
    house = generate_house(
        rng=np.random.default_rng(3),
        config=ProceduralConfig(furniture=False, texture_size=16, min_rooms=5, max_rooms=5),
    )
    cats = {o["category"] for o in house.sidecar["objects"].values()}
    assert cats <= STRUCTURE
    assert len(house.sidecar["rooms"]) == 6


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_rooms": 3},
        {"min_rooms": 6, "max_rooms": 5},
        {"door_height": 2.6},
        {"door_width": 0.3},
        {"texture_size": 4},
        {"wall_height": 2.0},
    ],
)
def test_config_validation(kwargs):
    with pytest.raises(ValueError):
        ProceduralConfig(**kwargs)


def test_write_house_needs_glb(houses, tmp_path):
    with pytest.raises(ValueError, match=".glb"):
        write_house(houses[0], tmp_path / "house.obj")
