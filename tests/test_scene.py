import json

import numpy as np
import pytest
import trimesh

from envsim.scenes.load import load_scene
from envsim.scenes.scene import SceneError, UpAxis, points_in_polygon


def test_missing_empty_corrupt_and_unsupported(tmp_path):
    with pytest.raises(SceneError, match="not found"):
        load_scene(tmp_path / "nope.glb")
    (tmp_path / "empty.glb").write_bytes(b"")
    with pytest.raises(SceneError, match="empty"):
        load_scene(tmp_path / "empty.glb")
    (tmp_path / "junk.glb").write_bytes(b"glTF\x02\x00\x00\x00garbage" * 10)
    with pytest.raises(SceneError, match="cannot read|no triangles"):
        load_scene(tmp_path / "junk.glb")
    (tmp_path / "junk.ply").write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 99\nend_header\n\x00")
    with pytest.raises(SceneError):
        load_scene(tmp_path / "junk.ply")
    (tmp_path / "mesh.stl").write_bytes(b"solid x\nendsolid x\n")
    with pytest.raises(SceneError, match="unsupported"):
        load_scene(tmp_path / "mesh.stl")


def test_truncated_glb(tmp_path):
    box = trimesh.creation.box()
    data = trimesh.Scene({"box": box}).export(file_type="glb")
    (tmp_path / "cut.glb").write_bytes(data[: len(data) // 2])
    with pytest.raises(SceneError):
        load_scene(tmp_path / "cut.glb")


def test_no_triangles(tmp_path):
    (tmp_path / "points.ply").write_text(
        "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
        "end_header\n0 0 0\n1 0 0\n0 1 0\n"
    )
    with pytest.raises(SceneError, match="no triangles"):
        load_scene(tmp_path / "points.ply")


def test_nan_vertices(tmp_path):
    (tmp_path / "nan.obj").write_text("v 0 0 0\nv 1 0 0\nv nan 1 0\nf 1 2 3\n")
    with pytest.raises(SceneError, match="non-finite"):
        load_scene(tmp_path / "nan.obj")


def test_multi_node_glb_keeps_transforms_objects_and_colours(tmp_path):
    a = trimesh.creation.box((1, 1, 1))
    a.visual.face_colors = [255, 0, 0, 255]
    b = trimesh.creation.icosphere(radius=0.5)
    b.visual.vertex_colors = [0, 255, 0, 255]
    sc = trimesh.Scene()
    sc.add_geometry(a, node_name="red_box", transform=trimesh.transformations.translation_matrix([2, 0, 0]))
    sc.add_geometry(b, node_name="green_ball", transform=trimesh.transformations.translation_matrix([0, 3, 0]))
    sc.export(tmp_path / "two.glb")
    s = load_scene(tmp_path / "two.glb")
    assert set(s.object_names) == {"red_box", "green_ball"}
    box_id = s.object_names.index("red_box")
    box_verts = s.vertices[np.unique(s.faces[s.face_object == box_id])]
    np.testing.assert_allclose(box_verts.mean(axis=0), [2, 0, 0], atol=1e-6)
    col = s.color[s.faces[s.face_object == box_id]].reshape(-1, 3) * s.materials[s.face_material[s.face_object == box_id][0]].factor
    np.testing.assert_allclose(col.mean(axis=0), [1, 0, 0], atol=0.01)
    assert len(s.sha256) == 64


def test_sidecar_rooms_and_z_up(tmp_path):
    box = trimesh.creation.box((4, 4, 3))  # Z-up asset: x, y in plan, z up
    box.apply_translation([0, 0, 1.5])
    box.export(tmp_path / "scan.ply")
    side = {
        "format": "envsim-rooms/1",
        "up": "z",
        "rooms": [
            {"label": "Kitchen", "polygon": [[-2, -2], [0, -2], [0, 2], [-2, 2]], "floor": 0.0, "ceiling": 3.0},
            {"label": "garage", "polygon": [[0, -2], [2, -2], [2, 2], [0, 2]], "floor": 0.0, "ceiling": 3.0},
        ],
        "objects": {},
    }
    (tmp_path / "scan.rooms.json").write_text(json.dumps(side))
    s = load_scene(tmp_path / "scan.ply", up=UpAxis.Z)
    assert s.bounds[0, 1] == pytest.approx(0.0) and s.bounds[1, 1] == pytest.approx(3.0)
    # Asset (x=-1, y=1) maps to world (x=-1, z=-1): the kitchen; x=1 the garage (unknown label -> -1).
    rooms = s.room_at(np.array([[-1.0, 1.5, -1.0], [1.0, 1.5, -1.0], [5.0, 1.5, 0.0], [-1.0, 9.0, -1.0]]))
    assert rooms.tolist() == [4, -1, -1, -1]


def test_bad_sidecar(tmp_path):
    trimesh.creation.box().export(tmp_path / "m.ply")
    (tmp_path / "m.rooms.json").write_text("{not json")
    with pytest.raises(SceneError, match="sidecar"):
        load_scene(tmp_path / "m.ply")
    (tmp_path / "m.rooms.json").write_text(json.dumps({"format": "envsim-rooms/1", "rooms": [{"label": "x", "polygon": [[0, 0]]}]}))
    with pytest.raises(SceneError, match="polygon"):
        load_scene(tmp_path / "m.ply")


def test_points_in_polygon_matches_a_slow_reference():
    rng = np.random.default_rng(0)
    poly = np.array([[0, 0], [4, 0], [4, 1], [1, 1], [1, 3], [4, 3], [4, 4], [0, 4]], float)  # a C shape
    pts = rng.uniform(-1, 5, (2000, 2))

    def slow(p):
        inside = False
        for i in range(len(poly)):
            (x1, y1), (x2, y2) = poly[i], poly[(i + 1) % len(poly)]
            if (y1 > p[1]) != (y2 > p[1]) and p[0] < x1 + (p[1] - y1) * (x2 - x1) / (y2 - y1):
                inside = not inside
        return inside

    assert points_in_polygon(pts, poly).tolist() == [slow(p) for p in pts]
