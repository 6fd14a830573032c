"""Habitat scene datasets: frames, configs, folder layouts, and rendering a Z-up scan through a config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from envsim.scenes.habitat import (
    HabitatError,
    discover_folder,
    frame_rotation,
    is_scene_dataset,
    looks_like_habitat,
    read_scene_dataset,
)
from envsim.scenes.scene import z_up_to_y_up


def test_frame_rotation_z_up_matches_the_matterport_mapping():
    rng = np.random.default_rng(0)
    p = rng.normal(size=(50, 3))
    r = frame_rotation([0, 0, 1], [0, 1, 0])
    np.testing.assert_allclose(p @ r.T, z_up_to_y_up(p), atol=1e-12)
    np.testing.assert_allclose(frame_rotation([0, 1, 0], [0, 0, -1]), np.eye(3), atol=1e-12)


@pytest.mark.parametrize("up,front", [([0, 0, 1], [0, 1, 0]), ([1, 0, 0], [0, 0, 1]), ([0, -1, 0], [1, 0, 0])])
def test_frame_rotation_is_proper_and_maps_up_and_front(up, front):
    r = frame_rotation(up, front)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1.0)
    np.testing.assert_allclose(r @ np.asarray(up, float), [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(r @ np.asarray(front, float), [0, 0, -1], atol=1e-12)


@pytest.mark.parametrize("up,front", [([0, 0, 1], [0, 1, 1]), ([0, 0, 0], [0, 1, 0]), ([0, 0, float("nan")], [0, 1, 0])])
def test_frame_rotation_refuses_bad_vectors(up, front):
    with pytest.raises(ValueError):
        frame_rotation(up, front)


def _touch(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def test_config_with_mesh_globs_defaults_and_neighbour_files(tmp_path):
    for sid in ("aaa", "bbb"):
        _touch(tmp_path / sid / f"{sid}.glb")
        _touch(tmp_path / sid / f"{sid}.navmesh")
    _touch(tmp_path / "aaa" / "aaa.house")
    cfg = _write(tmp_path / "mp3d.scene_dataset_config.json", {
        "stages": {"default_attributes": {"up": [0, 0, 1], "front": [0, 1, 0]}, "paths": {".glb": ["*/*.glb"]}},
    })
    assert is_scene_dataset(cfg) and is_scene_dataset(tmp_path)
    stages = read_scene_dataset(cfg)
    assert [s.name for s in stages] == ["aaa", "bbb"]
    a, b = stages
    assert a.family == "mp3d" and a.up == (0.0, 0.0, 1.0) and a.front == (0.0, 1.0, 0.0)
    assert a.navmesh.endswith("aaa/aaa.navmesh") and a.descriptor.endswith("aaa/aaa.house")
    assert b.descriptor == "" and b.navmesh.endswith("bbb.navmesh")
    assert read_scene_dataset(tmp_path) == stages


def test_config_with_stage_configs_scene_instances_and_handles(tmp_path):
    _touch(tmp_path / "meshes" / "apt.ply")
    _touch(tmp_path / "navs" / "apt.navmesh")
    _touch(tmp_path / "sem" / "apt.semantic_config.json", "{}")
    _write(tmp_path / "stages" / "apt.stage_config.json", {
        "render_asset": "../meshes/apt.ply", "up": [0, 1, 0], "front": [0, 0, -1], "scale": [2, 2, 2],
    })
    _write(tmp_path / "scenes" / "apt_0.scene_instance.json", {
        "stage_instance": {"template_name": "stages/apt"}, "navmesh_instance": "apt_nav",
        "semantic_scene_instance": "apt_ssd",
    })
    _write(tmp_path / "scenes" / "apt_1.scene_instance.json", {"stage_instance": {"template_name": "apt"}})
    cfg = _write(tmp_path / "toy.scene_dataset_config.json", {
        "stages": {"paths": {".json": ["stages"]}},
        "scene_instances": {"paths": {".json": ["scenes"]}},
        "navmesh_instances": {"apt_nav": "navs/apt.navmesh"},
        "semantic_scene_descriptor_instances": {"apt_ssd": "sem/apt.semantic_config.json"},
    })
    s0, s1 = read_scene_dataset(cfg)
    assert (s0.name, s1.name) == ("apt_0", "apt_1")
    assert s0.render_asset == str((tmp_path / "meshes" / "apt.ply").resolve())
    assert s0.scale == (2.0, 2.0, 2.0) and s0.up == (0.0, 1.0, 0.0)
    assert Path(s0.navmesh) == tmp_path / "navs" / "apt.navmesh"
    assert Path(s0.descriptor) == tmp_path / "sem" / "apt.semantic_config.json"
    assert s1.navmesh == "" and s1.descriptor == ""


@pytest.mark.parametrize(
    "config,message",
    [
        ({"stages": {"paths": {".glb": ["nothing/*.glb"]}}}, "matches no file"),
        ({"stages": []}, "must be a JSON object"),
        ({"stages": {"paths": {".glb": "x"}, "configs": "no"}}, "matches no file"),
        ({"stages": {"configs": [{"attributes": {"render_asset": "gone.glb"}}]}}, "missing file"),
        ({"stages": {"configs": [{"attributes": {}}]}}, "render_asset"),
        ({"stages": {"configs": [{"attributes": {"render_asset": "m.glb", "up": [0, 0, 1], "front": [0, 0, 1]}}]}},
         "orthogonal"),
        ({"stages": {"configs": [{"attributes": {"render_asset": "m.glb", "up": "up"}}]}}, "3 numbers"),
        ({}, "names no stages"),
    ],
)
def test_bad_configs_name_the_file_and_the_problem(tmp_path, config, message):
    _touch(tmp_path / "m.glb")
    cfg = _write(tmp_path / "bad.scene_dataset_config.json", config)
    with pytest.raises(HabitatError, match=message) as info:
        read_scene_dataset(cfg)
    assert "bad.scene_dataset_config.json" in str(info.value)


def test_unreadable_config_and_wrong_name(tmp_path):
    cfg = tmp_path / "x.scene_dataset_config.json"
    cfg.write_text("{not json")
    with pytest.raises(HabitatError, match="not valid JSON"):
        read_scene_dataset(cfg)
    other = _write(tmp_path / "x.json", {})
    with pytest.raises(HabitatError, match="must be named"):
        read_scene_dataset(other)
    with pytest.raises(HabitatError, match="not found"):
        read_scene_dataset(tmp_path / "missing.scene_dataset_config.json")


def test_scene_instance_naming_an_unknown_stage(tmp_path):
    _touch(tmp_path / "m.glb")
    _write(tmp_path / "scenes" / "s.scene_instance.json", {"stage_instance": {"template_name": "nope"}})
    cfg = _write(tmp_path / "d.scene_dataset_config.json", {
        "stages": {"paths": {".glb": ["*.glb"]}}, "scene_instances": {"paths": {".json": ["scenes"]}},
    })
    with pytest.raises(HabitatError, match="'nope' is not defined"):
        read_scene_dataset(cfg)


def test_download_layouts_are_recognised(tmp_path):
    hm3d = tmp_path / "hm3d"
    for split, sid in (("train", "00000-kfPV7w3FaU5"), ("val", "00800-TEEsavR23oF")):
        short = sid.split("-")[1]
        _touch(hm3d / split / sid / f"{short}.basis.glb")
        _touch(hm3d / split / sid / f"{short}.basis.navmesh")
    _touch(hm3d / "val" / "00800-TEEsavR23oF" / "TEEsavR23oF.semantic.glb")
    _touch(hm3d / "val" / "00800-TEEsavR23oF" / "TEEsavR23oF.semantic.txt")
    assert looks_like_habitat(hm3d)
    stages = discover_folder(hm3d)
    assert [s.name for s in stages] == ["TEEsavR23oF", "kfPV7w3FaU5"]
    val = stages[0]
    assert val.family == "hm3d" and val.up == (0.0, 1.0, 0.0)
    assert val.semantic_asset.endswith(".semantic.glb") and val.descriptor.endswith(".semantic.txt")
    assert val.navmesh.endswith("TEEsavR23oF.basis.navmesh")

    replica = tmp_path / "replica"
    for name in ("room_0", "office_1"):
        _touch(replica / name / "mesh.ply")
        _touch(replica / name / "habitat" / "mesh_semantic.ply")
        _touch(replica / name / "habitat" / "info_semantic.json")
    stages = discover_folder(replica)
    assert [s.name for s in stages] == ["office_1", "room_0"]
    assert stages[0].family == "replica" and stages[0].render_asset.endswith("office_1/mesh.ply")
    assert stages[0].semantic_asset.endswith("habitat/mesh_semantic.ply")

    gibson = tmp_path / "gibson"
    _touch(gibson / "Allensville.glb")
    _touch(gibson / "Allensville.navmesh")
    (g,) = discover_folder(gibson)
    assert (g.name, g.family) == ("Allensville", "gibson") and g.navmesh.endswith("Allensville.navmesh")

    plain = tmp_path / "plain"
    _touch(plain / "a.glb")
    assert not looks_like_habitat(plain)


def test_recipe_splits_resolve_to_names(tmp_path):
    from envsim.job.recipe import RecipeError, resolve_splits

    names = ["a1", "a2", "b1", "c1"]
    paths = [str(tmp_path / "train" / "a1.glb"), str(tmp_path / "train" / "a2.glb"), str(tmp_path / "val" / "b1.glb"),
             str(tmp_path / "other" / "c1.glb")]
    got = resolve_splits({"val": {"folder": "val"}, "test": ["c*"], "train": "rest"}, names, paths, root=tmp_path)
    assert got == {"val": ("b1",), "test": ("c1",), "train": ("a1", "a2")}
    with pytest.raises(RecipeError, match="more than one split"):
        resolve_splits({"x": ["a*"], "y": ["a1"]}, names, paths)
    with pytest.raises(RecipeError, match='only one split may be "rest"'):
        resolve_splits({"x": "rest", "y": "rest"}, names, paths)


def _z_up_house(tmp_path: Path, glb: Path, seed: int = 3) -> Path:
    """A procedural house written Y-up to ``tmp_path/yup/house.glb`` (+ sidecar) and Z-up to ``glb``."""
    import trimesh

    from envsim.scenes.procedural import generate_house, write_house

    house = generate_house(rng=np.random.default_rng(seed))
    yup, _ = write_house(house, tmp_path / "yup" / "house.glb")
    scan = trimesh.load(str(yup), force="scene", process=False)
    to_zup = np.array([[1, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], float)  # (x,y,z) -> (x,-z,y)
    scan.apply_transform(to_zup)
    glb.parent.mkdir(parents=True, exist_ok=True)
    scan.export(str(glb))
    return yup


def test_z_up_gltf_through_a_config_renders_like_the_mesh_rotated_by_hand(tmp_path):
    """A house stored Z-up, read through a scene dataset config with up [0,0,1], gives the images of the
    same house stored Y-up, pose for pose."""
    from envsim.job import DatasetConfig, load_poses, render_dataset, resolve_sources
    from envsim.render.renderer import RenderConfig
    from envsim.store.shards import read_shard

    yup = _z_up_house(tmp_path, tmp_path / "zup" / "scan.glb")
    cfg = _write(tmp_path / "zup" / "toy.scene_dataset_config.json", {
        "stages": {"default_attributes": {"up": [0, 0, 1], "front": [0, 1, 0]}, "paths": {".glb": ["*.glb"]}},
    })
    from envsim.scenes.load import load_scene

    centres = [r.polygon.mean(axis=0) for r in load_scene(yup).rooms]  # one camera in the middle of each room
    poses = [
        {"position": [float(c[0]), 1.5, float(c[1])], "rotation": [float(np.cos(a / 2)), 0.0, float(np.sin(a / 2)), 0.0]}
        for c, a in zip(centres, (0.3, 2.0, -1.2, 3.1, 1.0, -2.5, 0.7, 2.7))
    ]
    (tmp_path / "poses.json").write_text(json.dumps(poses))
    config = DatasetConfig(render=RenderConfig(width=48, height=40, hfov_deg=90))
    runs = []
    for name, spec in (("ref", str(yup)), ("cfg", str(cfg))):
        m = render_dataset(resolve_sources([spec]), config=config, out=tmp_path / name, poses=load_poses(tmp_path / "poses.json"))
        runs.append(read_shard(tmp_path / name / m["shards"][0]["file"]))
    ref, got = runs
    assert (ref["depth"] > 0).mean() > 0.9
    close = np.abs(got["depth"] - ref["depth"]) <= 1e-3
    assert close.mean() >= 0.99
    diff = np.abs(got["rgb"].astype(int) - ref["rgb"].astype(int))
    assert diff.mean() < 1.0 and (diff.max(axis=-1) <= 3).mean() >= 0.98


_MP3D_CODE = {"bathroom": "a", "bedroom": "b", "kitchen": "k", "living_room": "l", "hallway": "h",
              "dining_room": "d", "office": "o"}


def _house_file(rooms, path: Path) -> None:
    """An MP3D .house file (Z-up) with one region per room: its bounding box, label code and height."""
    lines = ["ASCII 1.1", f"H  scan  -  0 0 0 0 0 0 0 {len(rooms)} 0 1  0 0 0 0 0  -50 -50 0 50 50 3  0 0 0 0 0",
             "L  0  0  -  0 0 0  -50 -50 0 50 50 3  0 0 0 0 0"]
    for i, r in enumerate(rooms):
        (x0, z0), (x1, z1) = r.polygon.min(axis=0), r.polygon.max(axis=0)
        y0, y1 = -z1, -z0  # world z = -y of the Z-up frame
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        lines.append(f"R  {i} 0  0 0  {_MP3D_CODE[r.label]}  {cx} {cy} {r.floor}  {x0} {y0} {r.floor} {x1} {y1} "
                     f"{r.ceiling}  {r.ceiling - r.floor}  0 0 0 0")
    path.write_text("\n".join(lines) + "\n")


def test_mp3d_layout_renders_with_rooms_from_the_house_file(tmp_path):
    """An MP3D-style folder (Z-up .glb + .house) renders with the .house regions as room labels: the
    labels agree with the Y-up house's own room polygons at the same camera positions."""
    from envsim.scenes.load import load_scene
    from envsim.store.shards import read_shard
    from ess.main import main

    scan = tmp_path / "mp3d" / "SCAN01" / "SCAN01.glb"
    yup = _z_up_house(tmp_path, scan, seed=5)
    reference = load_scene(yup)
    _house_file(reference.rooms, scan.with_suffix(".house"))
    assert main(["render", str(tmp_path / "mp3d"), "--views", "60", "--size", "24x24", "--out", str(tmp_path / "out"),
                 "--no-progress", "--semantic", "room"]) == 0
    d = read_shard(tmp_path / "out" / "shard-00000.h5")
    expected = reference.room_at(d["position"].astype(np.float64))
    assert (expected >= 0).mean() > 0.7
    assert (d["room"] == expected).mean() > 0.95
    # per-pixel rooms: the house's own object->room labels (sidecar) agree with the .house regions
    from envsim.render.renderer import RenderConfig, Renderer, SemanticMode

    ref = Renderer(reference, RenderConfig(width=24, height=24, semantic=SemanticMode.ROOM))
    want = ref.render(d["position"], d["rotation"]).semantic
    seen = want > 0
    assert seen.mean() > 0.5
    agree = (d["semantic"][seen] == want[seen]).mean()
    assert agree > 0.98, agree  # 0.67 when walls took only their centroid's room
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["inputs"][0]["stage"]["family"] == "mp3d"
    assert "descriptor" in manifest["inputs"][0]["stage"]["files"]


_VOTE_NAME = {"bathroom": "Bathroom", "bedroom": "Bedroom", "kitchen": "Kitchen", "living_room": "Living room",
              "hallway": "Hall/stairwell", "dining_room": "Dining room", "office": "Office"}


def test_hm3d_layout_instances_and_region_rooms(tmp_path):
    """An HM3D-style scene: per-pixel instance ids from a colour-coded semantic GLB + semantic.txt, and
    camera rooms from the regions' room votes, checked against the house's own room polygons."""
    import trimesh

    from envsim.scenes.load import load_scene
    from envsim.scenes.procedural import generate_house, write_house
    from envsim.store.shards import read_shard
    from ess.main import main

    root = tmp_path / "hm3d"
    folder = root / "val" / "00800-ABCDEFGHIJK"
    house = generate_house(rng=np.random.default_rng(7))
    write_house(house, tmp_path / "yup" / "house.glb")
    scene = load_scene(tmp_path / "yup" / "house.glb")
    folder.mkdir(parents=True)
    # the render mesh: the house itself (HM3D GLBs are Y-up); rooms must come from the annotations, not a sidecar
    house.scene.export(str(folder / "ABCDEFGHIJK.basis.glb"))
    # the semantic mesh: the same surfaces, one flat colour per room (instance id = room + 1, region = room)
    centroids = scene.vertices[scene.faces].mean(axis=1)
    from envsim.scenes.scene import RoomMap

    region = RoomMap.build(scene.rooms).polygon_at(centroids + np.array([0, 0.05, 0]))  # room polygon index
    colors = {i: (20 + 23 * i, 250 - 19 * i, 3 + 11 * i) for i in range(len(scene.rooms))}
    fc = np.array([colors[g] + (255,) if g >= 0 else (0, 0, 0, 255) for g in region], np.uint8)
    sem = trimesh.Trimesh(scene.vertices, scene.faces, face_colors=fc, process=False)
    sem.export(str(folder / "ABCDEFGHIJK.semantic.glb"))
    txt = ["HM3D Semantic Annotations"] + [
        f'{i + 1},{"%02X%02X%02X" % colors[i]},"floor, wall",{i}' for i in range(len(scene.rooms))
    ]
    (folder / "ABCDEFGHIJK.semantic.txt").write_text("\n".join(txt) + "\n")
    header = "Scene Name,Region #,Bathroom,Bedroom,Dining room,Garage,Hall/stairwell,Kitchen,Laundry room,Living room,Office,Rec room,Unknown room,Room Proposal"
    rows = [header] + [f"00800-ABCDEFGHIJK,{i},0,0,0,0,0,0,0,0,0,0,0, {_VOTE_NAME[r.label]}" for i, r in enumerate(scene.rooms)]
    (root / "Per_Scene_Region_Votes.csv").write_text("\n".join(rows) + "\n")

    assert main(["render", str(root), "--views", "60", "--size", "24x24", "--out", str(tmp_path / "out"),
                 "--no-progress", "--semantic", "object"]) == 0
    d = read_shard(tmp_path / "out" / "shard-00000.h5")
    expected = scene.room_at(d["position"].astype(np.float64))
    assert (expected >= 0).mean() > 0.7
    assert (d["room"] == expected).mean() > 0.8  # region footprints are convex hulls of their faces
    # per-pixel instance ids: cast the same rays at the Y-up house and look up the colour-coded region
    # of each hit triangle (instance id = region + 1, stored + 1; unlabelled faces and misses give 0)
    from envsim.render.raycast import Open3DRayCaster
    from envsim.render.renderer import RenderConfig, Renderer

    renderer = Renderer(scene, RenderConfig(width=24, height=24))
    hits = Open3DRayCaster(scene.vertices, scene.faces).cast(renderer.rays(d["position"], d["rotation"]))
    tri = hits.triangle.astype(np.int64)
    hit = (tri != 0xFFFFFFFF) & (hits.t < 20)
    expected_ids = np.zeros(tri.shape, np.int64)
    expected_ids[hit] = region[tri[hit]] + 2
    expected_ids[hit & (region[np.where(hit, tri, 0)] < 0)] = 0
    got = d["semantic"].astype(np.int64).reshape(-1)
    labelled = expected_ids > 0
    assert labelled.mean() > 0.3
    assert (got[labelled] == expected_ids[labelled]).mean() > 0.97


def test_navmesh_replaces_the_computed_navigable_space_and_inspects(tmp_path, capsys):
    """With a .navmesh next to the mesh, the agent walks on the navmesh's polygons only."""
    from envsim.nav.navmesh import write_navmesh
    from envsim.scenes.load import load_scene
    from envsim.store.shards import read_shard
    from ess.main import main

    scan = tmp_path / "gibson" / "Testville.glb"
    yup = _z_up_house(tmp_path, scan, seed=5)
    rooms = load_scene(yup).rooms
    # a navmesh covering two rooms only: their polygons shrunk by 0.4 m, at floor height
    kept = sorted(rooms, key=lambda r: -float(np.ptp(r.polygon[:, 0]) * np.ptp(r.polygon[:, 1])))[:2]
    verts, polys = [], []
    for r in kept:
        (x0, z0), (x1, z1) = r.polygon.min(axis=0) + 0.4, r.polygon.max(axis=0) - 0.4
        base = len(verts)
        verts += [[x0, r.floor, z0], [x1, r.floor, z0], [x1, r.floor, z1], [x0, r.floor, z1]]
        polys.append([base, base + 1, base + 2, base + 3])
    write_navmesh((np.asarray(verts, np.float32), polys), scan.with_suffix(".navmesh"))
    assert main(["inspect", str(scan.with_suffix(".navmesh"))]) == 0
    text = capsys.readouterr().out
    assert "2 polygons" in text and "2 island(s)" in text
    out = tmp_path / "out"
    assert main(["render", str(tmp_path / "gibson"), "--views", "40", "--size", "16x16", "--out", str(out),
                 "--no-progress"]) == 0
    pos = read_shard(out / "shard-00000.h5")["position"]
    inside = np.zeros(len(pos), bool)
    for r in kept[:1]:  # the largest island only (the default)
        (x0, z0), (x1, z1) = r.polygon.min(axis=0) + 0.4, r.polygon.max(axis=0) - 0.4
        inside |= (pos[:, 0] >= x0 - 0.05) & (pos[:, 0] <= x1 + 0.05) & (pos[:, 2] >= z0 - 0.05) & (pos[:, 2] <= z1 + 0.05)
    assert inside.all()
    np.testing.assert_allclose(pos[:, 1], kept[0].floor + 1.5, atol=0.05)


def test_replica_layout_object_ids_per_pixel(tmp_path):
    """A Replica-style scene (mesh.ply + habitat/mesh_semantic.ply with per-face object ids, Z-up):
    per-pixel semantic = object id + 1 on the faces the rays hit."""
    from envsim.render.raycast import Open3DRayCaster
    from envsim.render.renderer import RenderConfig, Renderer
    from envsim.store.shards import read_shard
    from ess.main import main
    from tests.conftest import room_with_furniture, scene_from_trimesh

    mesh = room_with_furniture(4)
    v_yup = np.asarray(mesh.vertices, np.float64)
    v_zup = np.stack([v_yup[:, 0], -v_yup[:, 2], v_yup[:, 1]], axis=1)
    faces = np.asarray(mesh.faces)
    object_id = (np.arange(len(faces)) // 12).astype(np.int64)  # one object per 12 faces (a box's worth)
    scene_dir = tmp_path / "replica" / "room_9"
    (scene_dir / "habitat").mkdir(parents=True)
    body = [f"{x} {y} {z}" for x, y, z in v_zup]
    head = ["ply", "format ascii 1.0", f"element vertex {len(v_zup)}", "property float x", "property float y",
            "property float z", f"element face {len(faces)}", "property list uchar int vertex_indices"]
    (scene_dir / "mesh.ply").write_text("\n".join(head + ["end_header"] + body + [f"3 {a} {b} {c}" for a, b, c in faces]) + "\n")
    sem = head + ["property int object_id", "end_header"] + body + [
        f"3 {a} {b} {c} {o}" for (a, b, c), o in zip(faces, object_id)
    ]
    (scene_dir / "habitat" / "mesh_semantic.ply").write_text("\n".join(sem) + "\n")
    info = {"classes": [{"id": 1, "name": "thing"}], "objects": [{"id": int(o), "class_id": 1} for o in np.unique(object_id)]}
    (scene_dir / "habitat" / "info_semantic.json").write_text(json.dumps(info))
    poses = [{"position": [0.3, 1.4, 0.2], "rotation": [float(np.cos(a / 2)), 0.0, float(np.sin(a / 2)), 0.0]}
             for a in (0.0, 1.3, 2.6, -2.0)]
    (tmp_path / "poses.json").write_text(json.dumps(poses))
    assert main(["render", str(tmp_path / "replica"), "--poses", str(tmp_path / "poses.json"), "--size", "20x16",
                 "--semantic", "object", "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    d = read_shard(tmp_path / "out" / "shard-00000.h5")
    ref = scene_from_trimesh(mesh)
    renderer = Renderer(ref, RenderConfig(width=20, height=16))
    hits = Open3DRayCaster(ref.vertices, ref.faces).cast(renderer.rays(d["position"], d["rotation"]))
    hit = hits.triangle != 0xFFFFFFFF
    assert hit.mean() > 0.95
    got = d["semantic"].reshape(-1).astype(np.int64)
    assert (got[hit] == object_id[hits.triangle[hit].astype(np.int64)] + 1).mean() > 0.99


def test_mp3d_recipe_with_root_and_split(tmp_path):
    """`ess render data_manifests/mp3d.toml --root R --split val` renders the official val scenes found."""
    import shutil

    from ess.main import main

    recipe = Path(__file__).resolve().parents[1] / "data_manifests" / "mp3d.toml"
    root = tmp_path / "mp3d"
    first = root / "2azQ1b91cZZ" / "2azQ1b91cZZ.glb"
    _z_up_house(tmp_path, first, seed=8)
    (root / "ABCDEFGHIJK").mkdir()
    shutil.copy(first, root / "ABCDEFGHIJK" / "ABCDEFGHIJK.glb")
    common = ["--root", str(root), "--views", "8", "--size", "16x16", "--no-progress", "--semantic", "none"]
    assert main(["render", str(recipe), "--split", "val", "--out", str(tmp_path / "val"), *common]) == 0
    m = json.loads((tmp_path / "val" / "manifest.json").read_text())
    assert m["scene_names"] == ["2azQ1b91cZZ"] and m["splits"] == {"val": ["2azQ1b91cZZ"]}
    assert main(["render", str(recipe), "--out", str(tmp_path / "all"), *common]) == 0
    m = json.loads((tmp_path / "all" / "manifest.json").read_text())
    assert m["scene_names"] == ["2azQ1b91cZZ", "ABCDEFGHIJK"]
    assert m["splits"] == {"val": ["2azQ1b91cZZ"], "train": ["ABCDEFGHIJK"]}
    assert main(["render", str(recipe), "--split", "nope", "--out", str(tmp_path / "x"), *common]) == 2
