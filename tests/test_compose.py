"""Composed Habitat scene instances (HSSD-hab / ReplicaCAD): objects placed, rotated, mirrored and labelled where
the JSON says, checked against transforms written here independently (scipy rotations, URDF chains by hand)."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import open3d as o3d
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from envsim.camera import matrix_to_quat
from envsim.render.raycast import Open3DRayCaster
from envsim.render.renderer import RenderConfig, Renderer, SemanticMode
from envsim.scenes import compose
from envsim.scenes.habitat import read_scene_dataset
from envsim.scenes.load import load_scene
from envsim.scenes.stage import load_stage
from tests.test_render import back_project

HSSD_CONFIG = {  # hssd-hab.scene_dataset_config.json, as published
    "stages": {"paths": {".json": ["stages"]}},
    "objects": {"paths": {".json": ["objects/*", "objects/decomposed/*"]}},
    "scene_instances": {
        "default_attributes": {"default_lighting": "", "semantic_scene_instance": "hssd_ssd_map"},
        "paths": {".json": ["scenes"]},
    },
    "semantic_scene_descriptor_instances": {"hssd_ssd_map": "semantics/hssd-hab_semantic_lexicon.json"},
}
LEXICON = {"classes": [{"name": "chair", "id": 7}, {"name": "table", "id": 9}]}
A, B, C, D = "2217a617f24c", "1bc7b29ad3d8", "434fa4bae0f5", "5c9d0e1f2a3b"  # HSSD-like hash handles


def _write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def _object_mesh() -> trimesh.Trimesh:
    """A box with a knob on its +x side, off the asset origin: bounding box x -0.1..0.4, y 0..0.6, z -0.05..0.15."""
    body = trimesh.creation.box((0.4, 0.6, 0.2))
    body.apply_translation((0.1, 0.3, 0.05))
    knob = trimesh.creation.box((0.1, 0.1, 0.1))
    knob.apply_translation((0.35, 0.3, 0.05))
    return trimesh.util.concatenate([body, knob])


def _dataset(root: Path, instances: list[dict], *, objects: dict[str, dict] | None = None, scene: dict | None = None,
             stage: dict | None = None, config: dict | None = None) -> Path:
    """An HSSD-hab-style dataset: a closed 8 x 3 x 8 m room stage, one GLB + object config per handle
    (``objects``: handle -> extra config keys), the lexicon, and scene ``apt`` holding ``instances``."""
    room = trimesh.creation.box((8.0, 3.0, 8.0))
    room.apply_translation((0, 1.5, 0))
    room.invert()
    (root / "stages").mkdir(parents=True, exist_ok=True)
    room.export(str(root / "stages" / "room.ply"))
    _write(root / "stages" / "room.stage_config.json",
           {"render_asset": "room.ply", "up": [0, 1, 0], "front": [0, 0, -1], **(stage or {})})
    objects = objects if objects is not None else {A: {"semantic_id": 7}, B: {"semantic_id": 9}}
    for handle, extra in objects.items():
        folder = root / "objects" / handle[0]
        folder.mkdir(parents=True, exist_ok=True)
        _object_mesh().export(str(folder / f"{handle}.glb"))
        _write(folder / f"{handle}.object_config.json", {
            "render_asset": f"{handle}.glb", "collision_asset": f"{handle}.glb", "up": [0, 1, 0], "front": [0, 0, -1],
            "requires_lighting": True, **extra})
    _write(root / "semantics" / "hssd-hab_semantic_lexicon.json", LEXICON)
    _write(root / "scenes" / "apt.scene_instance.json", {
        "stage_instance": {"template_name": "stages/room"}, "translation_origin": "asset_local",
        "object_instances": instances, **(scene or {})})
    return _write(root / "hssd-hab.scene_dataset_config.json", config or HSSD_CONFIG)


def _instance(template: str, t, q=(1.0, 0.0, 0.0, 0.0), s=(1.0, 1.0, 1.0), **extra) -> dict:
    return {"template_name": template, "translation": list(t), "rotation": list(q), "non_uniform_scale": list(s),
            "motion_type": "STATIC", **extra}


def _quat(axis, degrees) -> tuple[float, ...]:
    x, y, z, w = Rotation.from_rotvec(np.radians(degrees) * np.asarray(axis, float) / np.linalg.norm(axis)).as_quat()
    return (w, x, y, z)


def _expected(points, q, t, s, com=None) -> np.ndarray:
    """world = R (s * p - c) + t, written with scipy (c = 0: asset_local)."""
    w, x, y, z = q
    scaled = np.asarray(points, float) * np.asarray(s, float)
    c = np.zeros(3) if com is None else np.asarray(com, float)
    return Rotation.from_quat([x, y, z, w]).apply(scaled - c) + np.asarray(t, float)


def _look_at(position, target) -> np.ndarray:
    forward = np.asarray(target, float) - np.asarray(position, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    return matrix_to_quat(np.stack([right, np.cross(right, forward), -forward], axis=1))


def _composed(scene, stage) -> tuple[str, ...]:
    """The names of the composed objects (after the stage's own)."""
    return scene.object_names[len(scene.object_names) - len(stage.composition.objects + stage.composition.articulated):]


def _object_faces(scene, stage, k: int) -> np.ndarray:
    """Face indices of the k-th composed object."""
    return np.flatnonzero(scene.face_object == len(scene.object_names) - len(_composed(scene, stage)) + k)


def _load(cfg: Path):
    (stage,) = read_scene_dataset(cfg)
    return stage, load_stage(stage)


def test_objects_are_placed_rotated_and_mirrored_where_the_json_says(tmp_path):
    """Back-projected depth of every object pixel lies on the analytically placed mesh (< 1 mm), and the
    mirrored object's faces point outward (by the transformed normals and by the faces the cameras see)."""
    qa, ta, sa = _quat((0.3, 1.0, 0.2), 40), (1.2, 0.4, -1.5), (-1.5, 1.0, 0.8)  # mirrored in x
    qb, tb = _quat((0, 1, 0), 120), (-1.5, 0.0, -1.0)
    cfg = _dataset(tmp_path, [_instance(A, ta, qa, sa), _instance(B, tb, qb)])
    stage, scene = _load(cfg)
    asset = load_scene(tmp_path / "objects" / A[0] / f"{A}.glb")
    expected = {7: (_expected(asset.vertices, qa, ta, sa), sa, qa), 9: (_expected(asset.vertices, qb, tb, (1, 1, 1)), (1, 1, 1), qb)}
    for k, sid in enumerate((7, 9)):
        faces = _object_faces(scene, stage, k)
        assert (scene.face_instance[faces] == sid).all()
        np.testing.assert_allclose(scene.vertices[np.unique(scene.faces[faces])], expected[sid][0], atol=1e-5)
    # outward: the winding's normal agrees with the asset's outward normal carried by the inverse transpose
    faces = _object_faces(scene, stage, 0)
    tri = scene.vertices[scene.faces[faces]].astype(np.float64)
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    m = Rotation.from_quat([*qa[1:], qa[0]]).as_matrix() @ np.diag(sa)
    want = np.asarray(trimesh.Trimesh(asset.vertices, asset.faces, process=False).face_normals) @ np.linalg.inv(m)
    assert (np.einsum("ij,ij->i", normal, want) > 0).all()

    targets = [np.asarray(ta) + [0, 0.3, 0], np.asarray(tb) + [0, 0.3, 0]]
    cams = [((0.0, 1.4, 1.5), 0), ((2.8, 1.6, 0.2), 0), ((0.5, 0.3, -3.5), 0), ((0.0, 1.4, 1.5), 1), ((-3.5, 1.8, 1.0), 1)]
    pos = np.array([c for c, _ in cams], float)
    rot = np.stack([_look_at(c, targets[i]) for c, i in cams])
    cfg_r = RenderConfig(width=96, height=72, hfov_deg=70, semantic=SemanticMode.OBJECT)
    views = Renderer(scene, cfg_r).render(pos, rot)
    for k, sid in enumerate((7, 9)):
        mask = views.semantic == sid + 1
        assert mask.sum() > 200, mask.sum()
        pts = back_project(np.where(mask, views.depth, 0.0), cfg_r.intrinsics.K, pos, rot)
        ref = o3d.t.geometry.RaycastingScene()
        ref.add_triangles(o3d.core.Tensor(expected[sid][0].astype(np.float32)),
                          o3d.core.Tensor(asset.faces.astype(np.uint32)))
        assert ref.compute_distance(o3d.core.Tensor(pts.astype(np.float32))).numpy().max() < 1e-3
    rays = Renderer(scene, cfg_r).rays(pos, rot)
    hits = Open3DRayCaster(scene.vertices, scene.faces).cast(rays)
    on_a = np.isin(hits.triangle, faces)
    assert on_a.sum() > 200
    seen = hits.triangle[on_a].astype(np.int64)
    tri = scene.vertices[scene.faces[seen]].astype(np.float64)
    facing = np.einsum("ij,ij->i", np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), rays[on_a, 3:])
    assert (facing < 0).all()  # every face a camera sees on the mirrored object faces it


@pytest.mark.parametrize("scene_origin,instance_origin,com,placed", [
    ("asset_local", None, None, "origin"),
    ("asset_local", "COM", None, "centre"),
    (None, None, None, "centre"),  # habitat-sim's default: the translation places the centre of mass
    ("COM", "asset_local", None, "origin"),
    ("asset_local", "com", [0.0, 0.2, 0.1], "com"),
])
def test_translation_origin_asset_local_vs_com(tmp_path, scene_origin, instance_origin, com, placed):
    q, t, s = _quat((1, 2, 0.5), 70), (0.5, 1.0, -0.5), (1.2, -0.9, 2.0)
    extra = {} if instance_origin is None else {"translation_origin": instance_origin}
    objects = {A: {"semantic_id": 7, **({} if com is None else {"COM": com})}}
    cfg = _dataset(tmp_path, [_instance(A, t, q, s, **extra)], objects=objects,
                   scene={} if scene_origin is None else {"translation_origin": scene_origin})
    if scene_origin is None:
        data = json.loads((tmp_path / "scenes" / "apt.scene_instance.json").read_text())
        del data["translation_origin"]
        _write(tmp_path / "scenes" / "apt.scene_instance.json", data)
    stage, scene = _load(cfg)
    asset = load_scene(tmp_path / "objects" / A[0] / f"{A}.glb").vertices.astype(np.float64)
    scaled = asset * s
    c = {"origin": None, "centre": (scaled.min(0) + scaled.max(0)) / 2, "com": np.asarray(s) * np.asarray(com or 0)}
    got = scene.vertices[np.unique(scene.faces[_object_faces(scene, stage, 0)])]
    np.testing.assert_allclose(got, _expected(asset, q, t, s, c[placed]), atol=1e-5)
    assert stage.composition.objects[0].translation_origin == ("asset_local" if placed == "origin" else "com")


def test_an_object_is_turned_by_its_frame_before_it_is_scaled(tmp_path):
    """A Z-up object config (up +Z, front +Y) with a per-axis scale: habitat-sim scales the turned mesh."""
    q, t = _quat((0, 1, 0), 30), (0.5, 0.2, -1.0)
    objects = {A: {"up": [0, 0, 1], "front": [0, 1, 0], "scale": [1.0, 2.0, 0.5]}}
    cfg = _dataset(tmp_path, [_instance(A, t, q, (1.0, 1.0, -1.5))], objects=objects)
    stage, scene = _load(cfg)
    asset = load_scene(tmp_path / "objects" / A[0] / f"{A}.glb").vertices.astype(np.float64)
    turned = np.stack([asset[:, 0], asset[:, 2], -asset[:, 1]], axis=1)  # Z-up -> Y-up
    got = scene.vertices[np.unique(scene.faces[_object_faces(scene, stage, 0)])]
    np.testing.assert_allclose(got, _expected(turned, q, t, (1.0, 2.0, -0.75)), atol=1e-5)


def test_a_stage_is_turned_by_its_frame_before_it_is_scaled(tmp_path):
    """A Z-up stage config (up +Z, front +Y) with a per-axis scale: habitat-sim scales the turned mesh along the
    world axes, as for objects (a scaling node above the frame-rotated mesh)."""
    cfg = _dataset(tmp_path, [], stage={"up": [0, 0, 1], "front": [0, 1, 0], "scale": [1.0, 2.0, 0.5]})
    stage, scene = _load(cfg)
    asset = load_scene(tmp_path / "stages" / "room.ply").vertices.astype(np.float64)
    turned = np.stack([asset[:, 0], asset[:, 2], -asset[:, 1]], axis=1)  # Z-up -> Y-up
    np.testing.assert_allclose(scene.vertices, turned * [1.0, 2.0, 0.5], atol=1e-5)


def test_semantic_ids_and_categories_from_the_lexicon(tmp_path):
    objects = {A: {"semantic_id": 7}, B: {"semantic_id": 9}, C: {"semantic_id": 11}, D: {}}
    cfg = _dataset(tmp_path, [_instance(h, (i - 1.5, 0, -2)) for i, h in enumerate((A, B, C, D))], objects=objects)
    stage, scene = _load(cfg)
    assert stage.composition.lexicon.endswith("semantics/hssd-hab_semantic_lexicon.json")
    assert _composed(scene, stage) == ("chair", "table", C, D)  # no lexicon entry or no semantic id: the template name
    stage_faces = scene.face_object == 0
    assert (scene.face_instance[stage_faces] == -1).all()
    for k, sid in enumerate((7, 9, 11, -1)):
        assert (scene.face_instance[_object_faces(scene, stage, k)] == sid).all()
    assert compose.manifest_record(stage.composition)["categories"] == {"7": "chair", "9": "table"}


def test_hab3_semantic_configs_give_rooms_and_the_lexicon(tmp_path):
    """The newer HSSD layout: per-scene ``semantics/scenes/<scene>.semantic_config.json`` chosen by the
    ``%%CONFIG_NAME_AS_ASSET_FILENAME%%`` default, region rooms, and the lexicon from its default attributes."""
    config = {**HSSD_CONFIG,
              "scene_instances": {"default_attributes": {
                  "semantic_scene_instance": "%%CONFIG_NAME_AS_ASSET_FILENAME%%.semantic_config.json"},
                  "paths": {".json": ["scenes"]}},
              "semantic_scene_descriptor_instances": {
                  "default_attributes": {"semantic_descriptor_filename": "../hssd-hab_semantic_lexicon.json"},
                  "paths": {".json": ["semantics/scenes/*"]}}}
    cfg = _dataset(tmp_path, [_instance(A, (2.0, 0, -2.0)), _instance(B, (-2.0, 0, 2.0))], config=config)
    _write(tmp_path / "semantics" / "scenes" / "apt.semantic_config.json", {"region_annotations": [{
        "name": "kitchen_0", "label": "kitchen", "poly_loop": [[0, 0, -4], [4, 0, -4], [4, 0, 0], [0, 0, 0]],
        "floor_height": 0.0, "extrusion_height": 3.0}]})
    stage, scene = _load(cfg)
    assert stage.descriptor.endswith("apt.semantic_config.json") and len(scene.rooms) == 1
    assert _composed(scene, stage) == ("chair", "table")
    assert scene.object_room[-2:].tolist() == [0, -1]  # the chair stands in the kitchen, the table outside


def test_a_missing_object_asset_is_one_warning_and_the_scene_loads(tmp_path, caplog):
    missing = "9f9f9f9f9f9f"
    objects = {A: {"semantic_id": 7}, missing: {"semantic_id": 9}}
    cfg = _dataset(tmp_path, [_instance(A, (0, 0, -2)), *[_instance(missing, (i, 0, 1)) for i in range(3)],
                              _instance("never_defined", (0, 0, 0))], objects=objects)
    (tmp_path / "objects" / missing[0] / f"{missing}.glb").unlink()
    with caplog.at_level(logging.WARNING):
        stage, scene = _load(cfg)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("envsim")]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    text = warnings[0].getMessage()
    assert missing in text and "never_defined" in text and "apt" in text
    assert _composed(scene, stage) == ("chair",) and scene.n_triangles == 12 + 24


def test_one_asset_is_loaded_once_for_three_instances(tmp_path, monkeypatch):
    calls: list[str] = []
    real = compose.load_scene

    def counting(path, **kw):
        calls.append(Path(path).name)
        return real(path, **kw)

    monkeypatch.setattr(compose, "load_scene", counting)
    cfg = _dataset(tmp_path, [_instance(A, (i - 1.0, 0, -2), _quat((0, 1, 0), 30 * i)) for i in range(3)]
                   + [_instance(B, (0, 0, 2))])
    stage, scene = _load(cfg)
    assert sorted(calls) == sorted([f"{A}.glb", f"{B}.glb"])
    parts = [_object_faces(scene, stage, k) for k in range(3)]
    assert len({tuple(scene.face_material[p]) for p in parts}) == 1  # the instances share the asset's materials
    assert not np.allclose(scene.vertices[scene.faces[parts[0]]], scene.vertices[scene.faces[parts[1]]])


def test_flat_shader_type_marks_materials_unlit(tmp_path):
    objects = {A: {"shader_type": "flat"}, B: {"shader_type": "phong"}, C: {"force_flat_shading": True}, D: {}}
    cfg = _dataset(tmp_path, [_instance(A, (0, 0, -2)), _instance(B, (1, 0, -2)),
                              _instance(B, (2, 0, -2), shader_type="flat"), _instance(C, (-1, 0, -2)),
                              _instance(D, (-2, 0, -2))], objects=objects, stage={"shader_type": "flat"})
    stage, scene = _load(cfg)
    assert stage.shader_type == "flat"
    assert [o.shader_type for o in stage.composition.objects] == ["flat", "phong", "flat", "flat", ""]

    def unlit(faces):
        return {scene.materials[m].unlit for m in np.unique(scene.face_material[faces])}

    assert unlit(np.flatnonzero(scene.face_object == 0)) == {True}
    assert [unlit(_object_faces(scene, stage, k)) for k in range(5)] == [{True}, {False}, {True}, {True}, {False}]


def _urdf_dataset(root: Path) -> Path:
    """A ReplicaCAD-style dataset: configs/ folders, an object template named ``objects/<name>``, and a
    two-link URDF cabinet (revolute door at rest, visual origins with rpy, a mirroring mesh scale)."""
    cfg = _dataset(root, [], objects={})
    (root / "urdf" / "cabinet").mkdir(parents=True)
    for name in ("body", "door"):
        _object_mesh().export(str(root / "urdf" / "cabinet" / f"{name}.glb"))
    (root / "urdf" / "cabinet" / "cabinet.urdf").write_text("""<?xml version="1.0"?>
<robot name="cabinet">
  <link name="base"><visual><origin xyz="0.1 0.2 0.3" rpy="0.1 0.2 0.3"/>
    <geometry><mesh filename="body.glb" scale="1 2 1"/></geometry></visual></link>
  <link name="door"><visual><origin xyz="0 0.1 0" rpy="0 0 0.5"/>
    <geometry><mesh filename="package://door.glb" scale="-1 1 1"/></geometry></visual>
    <visual><geometry><box size="0.1 0.1 0.1"/></geometry></visual></link>
  <link name="handle"><visual><geometry><mesh filename="body.glb"/></geometry></visual></link>
  <joint name="hinge" type="revolute"><parent link="base"/><child link="door"/>
    <origin xyz="0.5 0 0.25" rpy="0 0.4 0"/><axis xyz="0 1 0"/><limit lower="0" upper="2"/></joint>
  <joint name="knob" type="fixed"><parent link="door"/><child link="handle"/>
    <origin xyz="0.2 0 0.1" rpy="0.3 0 0"/></joint>
</robot>""")
    (root / "objects" / "basket.glb").parent.mkdir(parents=True, exist_ok=True)
    _object_mesh().export(str(root / "objects" / "basket.glb"))
    _write(root / "configs" / "objects" / "frl_apartment_basket.object_config.json",
           {"render_asset": "../../objects/basket.glb", "semantic_id": 9})
    config = {"stages": {"paths": {".json": ["stages"]}}, "objects": {"paths": {".json": ["configs/objects"]}},
              "articulated_objects": {"paths": {".urdf": ["urdf/*/"]}}, "scene_instances": {"paths": {".json": ["scenes"]}}}
    _write(root / "scenes" / "apt.scene_instance.json", {
        "stage_instance": {"template_name": "stages/room"}, "translation_origin": "asset_local",
        "object_instances": [_instance("objects/frl_apartment_basket", (1, 0, 1))],
        "articulated_object_instances": [{"template_name": "cabinet", "translation": [-1.0, 0.0, -2.0],
                                          "rotation": list(_quat((0, 1, 0), 90)), "uniform_scale": 1.5,
                                          "fixed_base": True, "motion_type": "DYNAMIC"}]})
    cfg.unlink()
    return _write(root / "replicaCAD.scene_dataset_config.json", config)


def _pose(xyz, rpy) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = Rotation.from_euler("xyz", rpy).as_matrix()  # extrinsic x, y, z = Rz @ Ry @ Rx (URDF rpy)
    m[:3, 3] = xyz
    return m


def test_articulated_object_in_its_rest_pose_from_the_urdf(tmp_path):
    cfg = _urdf_dataset(tmp_path)
    stage, scene = _load(cfg)
    # "objects/frl_apartment_basket" found by its stem; its semantic id 9 is "table" in the lexicon under semantics/
    assert _composed(scene, stage) == ("table", "cabinet")
    asset = load_scene(tmp_path / "objects" / "basket.glb").vertices.astype(np.float64)
    base = np.eye(4)
    base[:3, :3] = Rotation.from_rotvec([0, np.pi / 2, 0]).as_matrix() * 1.5
    base[:3, 3] = (-1.0, 0.0, -2.0)
    body = base @ _pose((0.1, 0.2, 0.3), (0.1, 0.2, 0.3)) @ np.diag([1, 2, 1, 1.0])
    door = base @ _pose((0.5, 0, 0.25), (0, 0.4, 0)) @ _pose((0, 0.1, 0), (0, 0, 0.5)) @ np.diag([-1, 1, 1, 1.0])
    handle = base @ _pose((0.5, 0, 0.25), (0, 0.4, 0)) @ _pose((0.2, 0, 0.1), (0.3, 0, 0))
    want = np.concatenate([asset @ m[:3, :3].T + m[:3, 3] for m in (body, door, handle)])
    faces = _object_faces(scene, stage, 1)
    np.testing.assert_allclose(scene.vertices[np.unique(scene.faces[faces])], want, atol=1e-5)
    third = len(faces) // 3
    tri = scene.vertices[scene.faces[faces[third:2 * third]]].astype(np.float64)  # the mirrored door
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    outward = trimesh.Trimesh(asset, load_scene(tmp_path / "objects" / "basket.glb").faces, process=False).face_normals
    assert (np.einsum("ij,ij->i", normal, outward @ np.linalg.inv(door[:3, :3])) > 0).all()
    assert str(tmp_path / "urdf" / "cabinet" / "cabinet.urdf") in stage.files()


def test_a_missing_urdf_or_urdf_mesh_is_one_warning(tmp_path, caplog):
    cfg = _urdf_dataset(tmp_path)
    (tmp_path / "urdf" / "cabinet" / "door.glb").unlink()
    data = json.loads((tmp_path / "scenes" / "apt.scene_instance.json").read_text())
    data["articulated_object_instances"].append({"template_name": "fridge", "translation": [0, 0, 0]})
    _write(tmp_path / "scenes" / "apt.scene_instance.json", data)
    with caplog.at_level(logging.WARNING):
        stage, scene = _load(cfg)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("envsim")]
    assert len(warnings) == 1 and "fridge" in warnings[0] and "door.glb" in warnings[0], warnings
    assert _composed(scene, stage) == ("table", "cabinet")  # the body still stands


def test_stage_files_and_checksum_follow_the_objects(tmp_path):
    cfg = _dataset(tmp_path, [_instance(A, (0, 0, -2))])
    stage, scene = _load(cfg)
    files = stage.files()
    glb = tmp_path / "objects" / A[0] / f"{A}.glb"
    for f in (glb, glb.with_name(f"{A}.object_config.json"), tmp_path / "semantics" / "hssd-hab_semantic_lexicon.json"):
        assert str(f.resolve()) in files
    assert files[0] == stage.render_asset and len(files) == len(set(files))
    box = trimesh.creation.box((0.3, 0.3, 0.3))
    box.export(str(glb))
    assert load_stage(stage).sha256 != scene.sha256


def test_ess_render_of_a_composed_scene_with_object_semantics(tmp_path):
    from envsim.store.shards import read_shard
    from ess.main import main

    cfg = _dataset(tmp_path / "hssd", [_instance(A, (0.0, 0.5, -1.5), _quat((0, 1, 0), 25)), _instance(B, (1.2, 0, -1.0))])
    poses = [{"position": [0.3, 1.2, 1.0], "rotation": _look_at((0.3, 1.2, 1.0), (0.5, 0.5, -1.3)).tolist()}] * 2
    _write(tmp_path / "poses.json", poses)
    assert main(["render", str(cfg), "--poses", str(tmp_path / "poses.json"), "--size", "48x36", "--semantic", "object",
                 "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    d = read_shard(tmp_path / "out" / "shard-00000.h5")
    ids = set(np.unique(d["semantic"]).tolist())
    assert {8, 10} <= ids <= {0, 8, 10}  # chair and table pixels; the stage is unlabelled
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    objects = manifest["inputs"][0]["stage"]["objects"]
    assert objects["objects"] == 2 and objects["categories"] == {"7": "chair", "9": "table"}


@pytest.mark.parametrize(
    "stage_attrs, family_folder, flat",
    [({}, None, False), ({"requires_lighting": False}, None, True), ({"requires_lighting": True}, None, False),
     ({"shader_type": "pbr"}, None, False), (None, "mp3d", True), (None, "gibson", True)],
)
def test_scans_are_unlit_unless_their_config_asks_for_light(tmp_path, stage_attrs, family_folder, flat):
    """Habitat shows MP3D / Gibson / HM3D / Replica stages unlit; a dataset config's stage is lit unless it says
    flat (``shader_type``, ``force_flat_shading`` or the legacy ``requires_lighting: false``)."""
    from envsim.scenes.habitat import discover_folder

    if family_folder is None:
        stage, scene = _load(_dataset(tmp_path, [], objects={}, stage=stage_attrs))
    else:
        scan = tmp_path / family_folder / "SCAN01" / "SCAN01.glb"
        scan.parent.mkdir(parents=True)
        trimesh.creation.box((4.0, 3.0, 4.0)).export(str(scan))
        (stage,) = discover_folder(tmp_path / family_folder)  # a bare .glb: Gibson's layout
        scene = load_stage(dataclasses.replace(stage, family=family_folder))
    assert {m.unlit for m in scene.materials} == {flat}
