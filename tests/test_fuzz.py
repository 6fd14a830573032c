"""Fuzzing the parsers of untrusted files: scene meshes, Habitat navmeshes and dataset annotations.

Each target starts from a small valid file and mutates it (bytes: flips, overwrites with boundary values,
inserts, deletes, truncation, repeats; text: tokens replaced by odd numbers, lines dropped or repeated;
JSON: values replaced by arbitrary JSON). A parser may succeed (and then its result must be usable) or
raise its own error type; anything else is a bug. Runs are derandomised and bounded for CI (about 20 s
in all); ``ESS_FUZZ_SCALE=20`` runs 20 times as many examples, ``ESS_FUZZ_RANDOM=1`` new random ones.
"""

from __future__ import annotations

import copy
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import trimesh
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from envsim.scenes.load import load_scene
from envsim.scenes.scene import MAX_COORDINATE, SceneError

SCALE = int(os.environ.get("ESS_FUZZ_SCALE", "1"))


def fuzz_settings(examples: int):
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        derandomize=os.environ.get("ESS_FUZZ_RANDOM") != "1",
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# ---------------------------------------------------------------------------------------------- mutations

WORDS = [0, 1, 3, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x10000, 150_000_000]
WORDS += [struct.unpack("<I", struct.pack("<f", x))[0] for x in (float("nan"), float("inf"), -1e30, 1e30, 1e-30, -0.0)]
TOKENS = ["nan", "inf", "-inf", "-1", "0", "1e309", "-1e39", "4294967296", "99999999999999999999", "0.5", "", "x",
          "0x10", "3 0 1", "#", "1/2/3", "-0", "1e-320", "\t", "end_header", "ply", "f", "v"]  # fmt: skip


@st.composite
def mutated_bytes(draw, base: bytes) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        n = len(data)
        head = st.integers(0, max(0, min(n, 512) - 1))  # headers hold the counts and offsets: hit them often
        pos = draw(st.one_of(head, st.integers(0, max(0, n - 1))))
        op = draw(st.sampled_from(["flip", "byte", "word", "insert", "delete", "truncate", "repeat"]))
        if op == "flip" and n:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte" and n:
            data[pos] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF, draw(st.integers(0, 255))]))
        elif op == "word" and n >= 4:
            pos = min(pos, n - 4)
            data[pos : pos + 4] = struct.pack("<I", draw(st.sampled_from(WORDS)))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        elif op == "truncate":
            del data[pos:]
        elif op == "repeat":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 64))]
    return bytes(data)


@st.composite
def mutated_text(draw, base: str) -> str:
    lines = base.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["token", "token", "token", "drop", "repeat", "swap", "cut"]))
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        if op == "token":
            words = lines[i].split(" ")
            j = draw(st.integers(0, len(words) - 1))
            words[j] = draw(st.one_of(st.sampled_from(TOKENS), st.text(max_size=6)))
            lines[i] = " ".join(words)
        elif op == "drop":
            del lines[i]
        elif op == "repeat":
            lines.insert(i, lines[i])
        elif op == "swap":
            k = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[k] = lines[k], lines[i]
        elif op == "cut":
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
            del lines[i + 1 :]
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\r\n"]))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=8,
)


@st.composite
def mutated_json(draw, base) -> str:
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        parent, key = None, None
        node = doc
        while isinstance(node, (dict, list)) and node and draw(st.integers(0, 3)):  # walk down a few levels
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            parent, key = node, draw(st.sampled_from(keys))
            node = node[key]
        if parent is None:
            continue
        if draw(st.booleans()):
            parent[key] = draw(JSON_VALUES)
        elif isinstance(parent, dict):
            del parent[key]
        else:
            parent.pop(key)
    return json.dumps(doc)


# ---------------------------------------------------------------------------------------------- scene files


def _textured_box() -> trimesh.Trimesh:
    box = trimesh.creation.box((2, 1, 2))
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (4, 4, 3), dtype=np.uint8))
    uv = np.random.default_rng(1).uniform(0, 1, (len(box.vertices), 2))
    material = trimesh.visual.material.SimpleMaterial(image=img, diffuse=[200, 100, 50, 255])
    box.visual = trimesh.visual.TextureVisuals(uv=uv, image=img, material=material)
    return box


def _coloured_box() -> trimesh.Trimesh:
    box = trimesh.creation.box((2, 1, 2))
    box.visual.face_colors = np.random.default_rng(0).integers(0, 256, (len(box.faces), 4))
    return box


def _scene_seeds() -> tuple[dict[str, tuple[str, bytes]], dict[str, bytes]]:
    """Small valid files by format: (suffix, bytes); and the files they name (MTL, texture, .bin buffers)."""
    textured = _textured_box()
    obj, obj_files = trimesh.exchange.obj.export_obj(
        textured, include_texture=True, return_texture=True, mtl_name="material.mtl"
    )
    gltf_files = trimesh.Scene({"box": textured}).export(file_type="gltf")
    gltf = gltf_files.pop("model.gltf")
    seeds = {
        "glb": (".glb", trimesh.Scene({"box": textured, "ball": _coloured_box()}).export(file_type="glb")),
        "ply-binary": (".ply", _coloured_box().export(file_type="ply")),
        "ply-ascii": (".ply", _coloured_box().export(file_type="ply", encoding="ascii")),
        "obj": (".obj", obj.encode()),
        "gltf": (".gltf", gltf),
        "mtl": (".mtl", obj_files["material.mtl"]),
    }
    return seeds, {**obj_files, **gltf_files}


SEEDS, COMPANIONS = _scene_seeds()


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A folder holding the files the OBJ and glTF seeds name."""
    folder = tmp_path_factory.mktemp("fuzz")
    for name, data in COMPANIONS.items():
        (folder / name).write_bytes(data)
    return folder


def _load_or_scene_error(path: Path) -> None:
    try:
        scene = load_scene(path)
    except SceneError as exc:
        assert "\n" not in str(exc), exc
        return
    assert scene.n_triangles > 0
    assert np.all(np.isfinite(scene.vertices)) and np.abs(scene.vertices).max() <= MAX_COORDINATE
    assert scene.faces.min() >= 0 and scene.faces.max() < len(scene.vertices)
    assert np.all(np.isfinite(scene.uv)) and np.all((scene.color >= 0) & (scene.color <= 1))
    assert scene.face_material.max() < len(scene.materials)
    for m in scene.materials:
        assert m.texture is None or (m.texture.ndim == 3 and m.texture.shape[2] == 3 and m.texture.size > 0)


@pytest.mark.parametrize("fmt, examples", [("glb", 150), ("ply-binary", 150), ("ply-ascii", 60), ("obj", 60)])
def test_scene_loaders_survive_mutated_bytes(work, fmt, examples):
    suffix, seed = SEEDS[fmt]

    @fuzz_settings(examples)
    @given(data=mutated_bytes(seed))
    def run(data):
        path = work / f"fuzz-bytes{suffix}"
        path.write_bytes(data)
        _load_or_scene_error(path)

    run()


@pytest.mark.parametrize("fmt, examples", [("ply-ascii", 80), ("obj", 80), ("gltf", 80)])
def test_scene_loaders_survive_mutated_text(work, fmt, examples):
    suffix, seed = SEEDS[fmt]

    @fuzz_settings(examples)
    @given(text=mutated_text(seed.decode()))
    def run(text):
        path = work / f"fuzz-text{suffix}"  # next to the seed's MTL, texture and .bin buffers
        path.write_text(text, errors="surrogateescape")
        _load_or_scene_error(path)

    run()


def test_obj_survives_a_mutated_material_library(work):
    obj = work / "seed.obj"
    obj.write_bytes(SEEDS["obj"][1])

    @fuzz_settings(60)
    @given(text=mutated_text(SEEDS["mtl"][1].decode()))
    def run(text):
        (work / "material.mtl").write_text(text)
        _load_or_scene_error(obj)

    try:
        run()
    finally:
        (work / "material.mtl").write_bytes(SEEDS["mtl"][1])


# ---------------------------------------------------------------------------------------------- navmesh

navmesh = pytest.importorskip("envsim.nav.navmesh")


def _navmesh_seeds() -> list[bytes]:
    l_shape = (
        np.array([[0, 0, 0], [2, 0, 0], [2, 0, 1], [1, 0, 1], [1, 0, 3], [0, 0, 3], [0, 0, 1]], np.float32),
        [[0, 1, 2, 3, 6], [6, 3, 4, 5]],
    )
    seeds = [navmesh.encode_navmesh(l_shape, version=v) for v in (1, 2)]
    try:  # hand-built files with several tiles, detail meshes and 64-bit refs, when their builders exist
        from tests.test_navmesh import two_tile_file

        seeds.append(two_tile_file())
    except ImportError:
        pass
    return seeds


NAVMESH_SEEDS = _navmesh_seeds()


@fuzz_settings(400)
@given(seed=st.sampled_from(range(len(NAVMESH_SEEDS))), data=st.data())
def test_navmesh_parser_survives_mutated_bytes(seed, data):
    blob = data.draw(mutated_bytes(NAVMESH_SEEDS[seed]))
    try:
        mesh = navmesh.parse_navmesh(blob, name="fuzz.navmesh")
    except navmesh.NavMeshError as exc:
        assert "fuzz.navmesh" in str(exc)
        return
    assert mesh.n_polygons > 0
    mesh.islands()
    assert np.isfinite(mesh.area_m2) or not np.all(np.isfinite(mesh.vertices))
    try:
        navmesh.navmesh_to_grid(mesh, cell_size=0.25)
    except ValueError:  # documented: a grid too large (absurd coordinates) or no walkable cell
        pass


# ---------------------------------------------------------------------------------------------- annotations

annotations = pytest.importorskip("envsim.scenes.annotations")

HOUSE = """ASCII 1.1
H  house1  -  0 1 6 1 0 1 1 2 1 1  0 0 0 0 0  0 0 0 8 3 2.7  0 0 0 0 0
L  0  2  -  4 1.5 0.1  0 0 0 8 3 2.7  0 0 0 0 0
R  0 0  0 0  k  2 1.5 0.1  0 0 0.1 4 3 2.7  2.5  0 0 0 0
R  1 0  0 0  c  6 1 0  4 0 0 8 2 2.6  0  0 0 0 0
P  0 0 1  -  4 0.5 0  4 1.5 2  0 0 0 0
S  0 0 0  F  2 1.5 0.1  0 0 1  0 0 0.1 4 3 0.1  0 0 0 0 0
V  0 0  -  0 0 0.1  0 0 1  0 0 0
V  1 0  -  4 0 0.1  0 0 1  0 0 0
V  2 0  -  4 3 0.1  0 0 1  0 0 0
V  3 0  -  2 3 0.1  0 0 1  0 0 0
V  4 0  -  2 1.5 0.1  0 0 1  0 0 0
V  5 0  -  0 1.5 0.1  0 0 1  0 0 0
P  pano0  0 0 0  2 1.5 1.5  0 0 0 0 0
C  0 3 kitchen#cabinet 7 cabinet 0 0 0 0 0
O  0 0 0  1 2 0.5  1 0 0  0 1 0  0.5 0.3 0.4  0 0 0 0 0 0 0 0
"""  # Z-up, metres: an L-shaped kitchen floor and a closet (as tests/test_annotations.py builds it)
REGIONS = {
    "region_annotations": [
        {"name": "bed_1", "label": "bedroom", "poly_loop": [[-2, -2, -1], [-2.5, -2, 0], [-2, -2, 1], [-1, -2, 1]],
         "floor_height": -2.0, "extrusion_height": 4.0, "min_bounds": [-2.5, -2, -1], "max_bounds": [-1, 2, 1]},
        {"name": "lr", "label": "Living Room", "poly_loop": {"a": [5, 0, -1], "b": [9, 0, -1], "c": [9, 0, 3]}},
    ]
}  # fmt: skip
HM3D_TXT = 'HM3D Semantic Annotations\n1,FF0000,"wall",0\n2,0000ff,"bed, double",3\n3,00FF00,"chair",3\n'
VOTES = (
    "Scene Name,Region #,Bathroom,Bedroom,Dining room,Garage,Hall/stairwell,Kitchen,Laundry room,"
    "Living room,Office,Rec room,Unknown room,Room Proposal\n"
    "00800-TEEsavR23oF,0,0,0,0,0,0,0,0,0,0,0,3, Unknown room\n"
    "00800-TEEsavR23oF,1,0,4,0,0,0,0,0,1,0,0,2, Bedroom\n"
    "00800-TEEsavR23oF,4,0,2,0,0,0,0,0,0,2,0,0, Tie: Bedroom & Office\n"
    "00801-HaxA7YrQdEC,1,0,0,0,0,0,5,0,0,0,0,0, Kitchen\n"
)
REPLICA_INFO = {
    "classes": [{"id": 0, "name": "wall"}, {"id": 7, "name": "sofa"}],
    "objects": [{"id": 0, "class_id": 0, "class_name": "wall"}, {"id": 5, "class_id": 7, "class_name": "sofa"}],
    "id_to_label": [0, 0, 0, 0, 0, 7],
}


def _replica_ply() -> bytes:
    v = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [2, 0, 0], [2, 1, 0]], np.float32)
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(v)}\nproperty float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\n"
        "element face 2\nproperty list uchar int vertex_indices\nproperty short object_id\nend_header\n"
    )
    vert = np.zeros(len(v), [("p", "<f4", 3), ("c", "u1", 3)])
    vert["p"], vert["c"] = v, 128
    face = np.zeros(2, [("k", "u1"), ("i", "<i4", 4), ("o", "<i2")])
    face["k"], face["i"], face["o"] = 4, [[0, 1, 2, 3], [1, 4, 5, 2]], [0, 5]
    return header.encode() + vert.tobytes() + face.tobytes()


REPLICA_ASCII = (
    "ply\nformat ascii 1.0\nelement vertex 5\nproperty float x\nproperty float y\nproperty float z\n"
    "element face 2\nproperty list uchar int vertex_indices\nproperty int object_id\nend_header\n"
    "0 0 0\n1 0 0\n1 1 0\n0 1 0\n2 0 0\n3 0 1 2 0\n4 0 1 4 3 5\n"
)


def _semantic_glb() -> bytes:
    tri = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 0, 1]], [[0, 1, 2]], process=False)
    red = tri.copy()
    red.visual.vertex_colors = [255, 0, 0, 255]
    green = tri.copy()
    green.apply_translation([2, 0, 0])
    green.visual.vertex_colors = [0, 255, 0, 255]
    return trimesh.Scene({"a": red, "b": green}).export(file_type="glb")


def _expect(call, *, ok=lambda result: None):
    """Run a reader: it returns (checked by ``ok``) or raises AnnotationError with a one-line message."""
    try:
        result = call()
    except annotations.AnnotationError as exc:
        assert str(exc).strip(), "an AnnotationError without a message"
        return
    ok(result)


def _rooms_ok(rooms) -> None:
    for r in rooms:
        assert r.polygon.ndim == 2 and r.polygon.shape[1] == 2 and r.polygon.shape[0] >= 3
        assert np.all(np.isfinite(r.polygon)) and np.isfinite(r.floor) and np.isfinite(r.ceiling)


@fuzz_settings(250)
@given(text=mutated_text(HOUSE))
def test_mp3d_house_reader_survives_mutated_text(work, text):
    path = work / "fuzz.house"
    path.write_text(text)
    _expect(lambda: annotations.read_mp3d_house(path), ok=_rooms_ok)


@fuzz_settings(80)
@given(data=mutated_bytes(HOUSE.encode()))
def test_mp3d_house_reader_survives_mutated_bytes(work, data):
    path = work / "fuzz.house"
    path.write_bytes(data)
    _expect(lambda: annotations.read_mp3d_house(path), ok=_rooms_ok)


@fuzz_settings(200)
@given(text=st.one_of(mutated_json(REGIONS), mutated_text(json.dumps(REGIONS, indent=1))))
def test_habitat_regions_reader_survives_mutated_json(work, text):
    path = work / "fuzz.semantic_config.json"
    path.write_text(text)
    _expect(lambda: annotations.read_habitat_regions(path), ok=_rooms_ok)


@fuzz_settings(120)
@given(text=mutated_text(HM3D_TXT))
def test_hm3d_semantic_txt_reader_survives_mutated_text(work, text):
    path = work / "fuzz.semantic.txt"
    path.write_text(text)
    _expect(lambda: annotations.read_hm3d_semantic_txt(path))


@fuzz_settings(120)
@given(text=mutated_text(VOTES))
def test_region_votes_reader_survives_mutated_text(work, text):
    path = work / "Per_Scene_Region_Votes.csv"
    path.write_text(text)
    _expect(lambda: annotations.read_region_votes(path, "00800-TEEsavR23oF"))


def _replica_ok(result) -> None:
    n = len(result.vertices)
    assert result.faces.ndim == 2 and (result.faces.size == 0 or (result.faces.min() >= 0 and result.faces.max() < n))
    assert len(result.face_object) == len(result.faces)


@fuzz_settings(200)
@given(data=st.one_of(mutated_bytes(_replica_ply()), mutated_bytes(REPLICA_ASCII.encode())))
def test_replica_semantic_reader_survives_mutated_ply(work, data):
    ply, info = work / "mesh_semantic.ply", work / "info_semantic.json"
    ply.write_bytes(data)
    info.write_text(json.dumps(REPLICA_INFO))
    _expect(lambda: annotations.read_replica_semantic(ply, info), ok=_replica_ok)


@fuzz_settings(120)
@given(text=mutated_json(REPLICA_INFO))
def test_replica_info_reader_survives_mutated_json(work, text):
    path = work / "info_semantic.json"
    path.write_text(text)
    _expect(lambda: annotations.read_replica_info(path))


@fuzz_settings(60)
@given(data=mutated_bytes(_semantic_glb()), txt=st.one_of(st.just(HM3D_TXT), mutated_text(HM3D_TXT)))
def test_hm3d_face_instances_survive_mutated_glb(work, data, txt):
    glb, path = work / "fuzz.semantic.glb", work / "fuzz.semantic.txt"
    glb.write_bytes(data)
    path.write_text(txt)
    _expect(lambda: annotations.hm3d_face_instances(glb, path))


def test_seeds_are_valid(work):
    """Every fuzz target starts from a file its parser accepts (else the fuzzing tests nothing)."""
    for fmt, (suffix, data) in SEEDS.items():
        if fmt != "mtl":
            (work / f"seed-check{suffix}").write_bytes(data)
            scene = load_scene(work / f"seed-check{suffix}")
            assert scene.n_triangles == (24 if fmt == "glb" else 12)
            if fmt in ("obj", "gltf"):  # the texture they name was found
                assert scene.materials[0].texture is not None
    for blob in NAVMESH_SEEDS:
        assert navmesh.parse_navmesh(blob, name="seed").n_polygons > 0
    (work / "seed.house").write_text(HOUSE)
    assert len(annotations.read_mp3d_house(work / "seed.house")) == 2
    (work / "seed.json").write_text(json.dumps(REGIONS))
    assert len(annotations.read_habitat_regions(work / "seed.json")) == 2
    (work / "seed.ply").write_bytes(_replica_ply())
    (work / "seed-info.json").write_text(json.dumps(REPLICA_INFO))
    assert len(annotations.read_replica_semantic(work / "seed.ply", work / "seed-info.json").faces) == 4
    (work / "seed-ascii.ply").write_text(REPLICA_ASCII)
    assert len(annotations.read_replica_semantic(work / "seed-ascii.ply").faces) == 3
    (work / "seed.glb").write_bytes(_semantic_glb())
    (work / "seed.txt").write_text(HM3D_TXT)
    assert len(annotations.hm3d_face_instances(work / "seed.glb", work / "seed.txt").faces) == 2
    (work / "votes.csv").write_text(VOTES)
    assert len(annotations.read_region_votes(work / "votes.csv", "00800-TEEsavR23oF")) == 3


def test_replica_ply_with_a_repeated_property_is_an_annotation_error(work):
    ply = work / "repeated.ply"
    ply.write_bytes(_replica_ply().replace(b"property float x\n", b"property float x\nproperty float x\n"))
    with pytest.raises(annotations.AnnotationError):
        annotations.read_replica_semantic(ply)
