"""Dataset annotation readers: small files written in each real format, parsed values checked by hand."""

from __future__ import annotations

import io
import json
import logging
import struct

import numpy as np
import pytest
import trimesh
from PIL import Image

from envsim.scenes.annotations import (
    DEFAULT_ROOM_LABELS,
    MP3D_REGION_CODES,
    AnnotationError,
    hm3d_face_instances,
    load_room_labels,
    map_room_label,
    read_habitat_regions,
    read_hm3d_semantic_txt,
    read_mp3d_house,
    read_mp3d_house_full,
    read_region_votes,
    read_replica_info,
    read_replica_semantic,
)
from envsim.scenes.rooms import ROOM_NAMES
from envsim.scenes.scene import RoomMap, SceneError, UpAxis

# ---------------------------------------------------------------------------------------------- room labels


def test_packaged_table_covers_every_mp3d_code_and_maps_to_toolkit_rooms():
    table = load_room_labels()
    assert DEFAULT_ROOM_LABELS.is_file()
    assert set(table["mp3d"]) == set(MP3D_REGION_CODES)
    for family in ("mp3d", "hm3d", "habitat"):
        assert set(table[family].values()) <= set(ROOM_NAMES) | {""}
    # every toolkit room is reachable from MP3D and HM3D
    assert set(table["mp3d"].values()) - {""} == set(ROOM_NAMES)
    assert set(table["hm3d"].values()) - {""} == set(ROOM_NAMES)


@pytest.mark.parametrize(
    "family, name, expected",
    [
        ("mp3d", "a", "bathroom"),
        ("mp3d", "t", "bathroom"),  # toilet
        ("mp3d", "b", "bedroom"),
        ("mp3d", "B", "B"),  # bar: codes are case-sensitive, unmapped keeps the name
        ("mp3d", "e", "hallway"),
        ("mp3d", "v", "living_room"),
        ("hm3d", "Living room", "living_room"),
        ("hm3d", "Hall/stairwell", "hallway"),
        ("hm3d", "Unknown room", "Unknown room"),
        ("hm3d", "Tie: Bedroom & Office", "Tie: Bedroom & Office"),
        ("habitat", "Dining-Room", "dining_room"),
        ("habitat", "Home_Office", "office"),
        ("habitat", "kitchen", "kitchen"),
        ("habitat", "sunroom", "sunroom"),  # omitted and not a toolkit name: unknown
    ],
)
def test_map_room_label(family, name, expected):
    assert map_room_label(family, name, load_room_labels()) == expected


def test_user_table_explicit_unknown_and_omitted_toolkit_names(tmp_path):
    p = tmp_path / "labels.toml"
    p.write_text('[mine]\n"kitchen" = ""\n"salon" = "Living Room"\n')
    table = load_room_labels(p)
    assert table == {"mine": {"kitchen": "", "salon": "living_room"}}
    assert map_room_label("mine", "salon", table) == "living_room"
    # explicitly unknown but reads as a toolkit room: marked so that its index is -1
    assert map_room_label("mine", "Kitchen", table) == "Kitchen (unmapped)"
    assert map_room_label("mine", "bedroom", table) == "bedroom"  # omitted toolkit name maps to itself
    with pytest.raises(AnnotationError, match=r"no \[hm3d\] table"):
        map_room_label("hm3d", "kitchen", table)


@pytest.mark.parametrize(
    "text, match",
    [
        ('[mp3d]\na = "bathroomz"\n', "not a toolkit room name"),
        ("[mp3d]\na = 3\n", "must be a string"),
        ('mp3d = "a"\n', "must be a table"),
        ("[mp3d\na = 1\n", "not valid TOML"),
    ],
)
def test_bad_room_label_tables(tmp_path, text, match):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(AnnotationError, match=match):
        load_room_labels(p)
    with pytest.raises(AnnotationError, match="not found"):
        load_room_labels(tmp_path / "missing.toml")


# ---------------------------------------------------------------------------------------------- MP3D .house

# Z-up, metres. Region 0 ("k"): an L-shaped floor surface inside the bbox x 0..4, y 0..3, floor z 0.1,
# height 2.5. Region 1 ("c"): no surface, bbox x 4..8, y 0..2, height 0 (ceiling = bbox zhi 2.6).
HOUSE_LINES = [
    "ASCII 1.1",
    "H  house1  -  0 1 6 1 0 1 1 2 1 1  0 0 0 0 0  0 0 0 8 3 2.7  0 0 0 0 0",
    "L  0  2  -  4 1.5 0.1  0 0 0 8 3 2.7  0 0 0 0 0",
    "R  0 0  0 0  k  2 1.5 0.1  0 0 0.1 4 3 2.7  2.5  0 0 0 0",
    "R  1 0  0 0  c  6 1 0  4 0 0 8 2 2.6  0  0 0 0 0",
    "P  0 0 1  -  4 0.5 0  4 1.5 2  0 0 0 0",
    "S  0 0 0  F  2 1.5 0.1  0 0 1  0 0 0.1 4 3 0.1  0 0 0 0 0",
    "V  0 0  -  0 0 0.1  0 0 1  0 0 0",
    "V  1 0  -  4 0 0.1  0 0 1  0 0 0",
    "V  2 0  -  4 3 0.1  0 0 1  0 0 0",
    "V  3 0  -  2 3 0.1  0 0 1  0 0 0",
    "V  4 0  -  2 1.5 0.1  0 0 1  0 0 0",
    "V  5 0  -  0 1.5 0.1  0 0 1  0 0 0",
    "P  pano0  0 0 0  2 1.5 1.5  0 0 0 0 0",
    "C  0 3 kitchen#cabinet 7 cabinet 0 0 0 0 0",
    "O  0 0 0  1 2 0.5  1 0 0  0 1 0  0.5 0.3 0.4  0 0 0 0 0 0 0 0",
]


def write_house(tmp_path, lines, name="x.house"):
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


def test_mp3d_house_regions_in_y_up_world(tmp_path):
    path = write_house(tmp_path, HOUSE_LINES)
    house = read_mp3d_house_full(path)
    assert house.name == "house1"
    kitchen, closet = house.regions
    assert (kitchen.code, closet.code) == ("k", "c")
    assert kitchen.from_surface and not closet.from_surface
    # L-shaped floor surface: Z-up (x, y) -> world (x, z) = (x, -y)
    np.testing.assert_allclose(
        kitchen.room.polygon, [[0, 0], [4, 0], [4, -3], [2, -3], [2, -1.5], [0, -1.5]]
    )
    assert kitchen.room.label == "kitchen" and kitchen.room.index == ROOM_NAMES.index("kitchen")
    assert kitchen.room.floor == pytest.approx(0.1) and kitchen.room.ceiling == pytest.approx(2.6)
    # bbox x 0..4 / 4..8, y 0..2 -> world z in [-2, 0]
    np.testing.assert_allclose(closet.room.polygon, [[4, 0], [8, 0], [8, -2], [4, -2]])
    assert closet.room.polygon[:, 1].min() == -2 and closet.room.polygon[:, 1].max() == 0
    assert closet.room.label == "closet" and closet.room.index == -1
    assert closet.room.floor == 0.0 and closet.room.ceiling == pytest.approx(2.6)
    assert read_mp3d_house(path)[0].label == "kitchen"

    # the L shape, not the bbox, decides membership (world points, y = height)
    rooms = RoomMap.build(house.rooms)
    got = rooms.lookup(np.array([[1.0, 1.0, -1.0], [3.0, 1.0, -2.5], [1.0, 1.0, -2.5], [6.0, 1.0, -1.0]]))
    assert got.tolist() == [ROOM_NAMES.index("kitchen"), ROOM_NAMES.index("kitchen"), -1, -1]


def test_mp3d_house_objects(tmp_path):
    (obj,) = read_mp3d_house_full(write_house(tmp_path, HOUSE_LINES)).objects
    assert (obj.region, obj.category, obj.mpcat40) == (0, "kitchen cabinet", "cabinet")
    np.testing.assert_allclose(obj.center, [1, 0.5, -2])  # (x, z, -y)
    np.testing.assert_allclose(obj.axes, [[1, 0, 0], [0, 0, -1], [0, 1, 0]])  # a0, a1, a0 x a1 mapped
    np.testing.assert_allclose(obj.radii, [0.5, 0.3, 0.4])


def test_mp3d_house_label_table_overrides(tmp_path):
    table = load_room_labels()
    table["mp3d"] = dict(table["mp3d"], c="bedroom", k="")
    house = read_mp3d_house(write_house(tmp_path, HOUSE_LINES), table=table)
    assert [r.label for r in house] == ["kitchen (unmapped)", "bedroom"]
    assert [r.index for r in house] == [-1, ROOM_NAMES.index("bedroom")]


def _edit(index, new):
    lines = list(HOUSE_LINES)
    if new is None:
        del lines[index]
    else:
        lines[index] = new
    return lines


@pytest.mark.parametrize(
    "lines, match",
    [
        (_edit(0, "ASCII 1.0"), r"x\.house:1: header .*expected 'ASCII 1\.1'"),
        (_edit(3, HOUSE_LINES[3].replace("  k  ", "  Q  ")), r"x\.house:4: unknown MP3D region label code 'Q'"),
        (_edit(4, "R  1 0  0 0  c  6 1 0  4 0"), r"x\.house:5: truncated 'R' line"),
        (_edit(3, HOUSE_LINES[3].replace("4 3 2.7", "4 abc 2.7")), r"x\.house:4: bounding box .* got 'abc'"),
        (_edit(3, HOUSE_LINES[3].replace("R  0 0", "R  zero 0")), r"x\.house:4: region_index .* integer"),
        (_edit(3, HOUSE_LINES[3].replace("0 0 0.1 4 3 2.7", "5 0 0.1 4 3 2.7")), r"x\.house:4: bounding box min"),
        (_edit(15, None), r"declares 1 'O' records but the file has 0"),
        (HOUSE_LINES[:9], r"declares 6 'V' records but the file has 2"),
        (_edit(15, HOUSE_LINES[15].replace("O  0 0 0", "O  0 5 0")), r"x\.house:16: object refers to region 5"),
        (_edit(7, HOUSE_LINES[7].replace("V  0 0", "V  0 3")), r"x\.house:8: vertex refers to surface 3"),
        (_edit(1, None), r"x\.house:2: 'L' line before the 'H' header"),
        (_edit(5, "X  1 2 3"), r"x\.house:6: unknown record type 'X'"),
    ],
)
def test_mp3d_house_malformed(tmp_path, lines, match):
    with pytest.raises(AnnotationError, match=match):
        read_mp3d_house(write_house(tmp_path, lines))


def test_mp3d_house_not_text_or_missing(tmp_path):
    p = tmp_path / "bin.house"
    p.write_bytes(b"ASCII 1.1\n\xff\xfe\x00garbage")
    with pytest.raises(AnnotationError, match="not a UTF-8 text file"):
        read_mp3d_house(p)
    with pytest.raises(AnnotationError, match="not found"):
        read_mp3d_house(tmp_path / "nope.house")
    (tmp_path / "empty.house").write_text("")
    with pytest.raises(AnnotationError, match="empty file"):
        read_mp3d_house(tmp_path / "empty.house")
    assert issubclass(AnnotationError, SceneError)


# ---------------------------------------------------------------------------------------------- habitat regions

REGIONS = {
    "region_annotations": [
        {
            "name": "bed_1",
            "label": "bedroom",
            "poly_loop": [[-20, -2, -10], [-25, -2, 0], [-20, -2, 10], [-10, -2, 10], [-5, -2, 0], [-10, -2, -10]],
            "floor_height": -2.0,
            "extrusion_height": 4.0,
            "min_bounds": [-25, -2, -10],
            "max_bounds": [-5, 2, 10],
        },
        {"name": "lr", "label": "Living Room", "poly_loop": [[5, 0, -1], [9, 0, -1], [9, 0, 3], [5, 0, 3]]},
        {"name": "c", "label": "closet", "poly_loop": [[0, 0, 0], [1, 0, 0], [1, 0, 1]], "floor_height": 3.0},
    ]
}


def write_json(tmp_path, data, name="scene.semantic_config.json"):
    p = tmp_path / name
    p.write_text(json.dumps(data, indent=2))
    return p


def test_habitat_regions(tmp_path):
    bed, living, closet = read_habitat_regions(write_json(tmp_path, REGIONS))
    np.testing.assert_allclose(bed.polygon, [[-20, -10], [-25, 0], [-20, 10], [-10, 10], [-5, 0], [-10, -10]])
    assert (bed.label, bed.floor, bed.ceiling) == ("bedroom", -2.0, 2.0)
    assert living.label == "living_room" and (living.floor, living.ceiling) == (0.0, 2.5)  # habitat defaults
    assert closet.index == -1 and (closet.floor, closet.ceiling) == (3.0, 5.5)
    got = RoomMap.build((bed, living, closet)).lookup(np.array([[-15.0, 0.0, 0.0], [7.0, 1.5, 1.0], [-15.0, 3.0, 0.0]]))
    assert got.tolist() == [ROOM_NAMES.index("bedroom"), ROOM_NAMES.index("living_room"), -1]


def _region_variant(**changes):
    region = dict(REGIONS["region_annotations"][1])
    for k, v in changes.items():
        if v is None:
            region.pop(k)
        else:
            region[k] = v
    return {"region_annotations": [region]}


@pytest.mark.parametrize(
    "data, match",
    [
        ({"semantic_asset": "x.glb"}, "no 'region_annotations'"),
        ({"region_annotations": []}, "is empty"),
        ({"region_annotations": {"a": 1}}, "must be a list"),
        (_region_variant(poly_loop=None), r"region_annotations\[0\] \('lr'\) has no 'poly_loop'"),
        (_region_variant(label=None), "has no 'label'"),
        (_region_variant(poly_loop=[[0, 0, 0], [1, 0, 0]]), "at least 3"),
        (_region_variant(poly_loop=[[0, 0, 0], [1, 0], [1, 0, 1]]), r"poly_loop\[1\] must be an \[x, y, z\]"),
        (_region_variant(poly_loop=[[0, 0, 0], [1, "a", 0], [1, 0, 1]]), "finite number"),
        (_region_variant(extrusion_height=-1), "extrusion_height"),
        (_region_variant(floor_height="low"), "floor_height"),
    ],
)
def test_habitat_regions_malformed(tmp_path, data, match):
    with pytest.raises(AnnotationError, match=match):
        read_habitat_regions(write_json(tmp_path, data))


def test_habitat_regions_bad_json_names_line(tmp_path):
    p = tmp_path / "bad.semantic_config.json"
    p.write_text('{\n  "region_annotations": [\n    {"label": "x",,}\n  ]\n}\n')
    with pytest.raises(AnnotationError, match=r"bad\.semantic_config\.json:3: not valid JSON"):
        read_habitat_regions(p)


# ---------------------------------------------------------------------------------------------- HM3D

HM3D_TXT = 'HM3D Semantic Annotations\n1,FF0000,"wall",0\n2,0000ff,"bed, double",3\n3,00FF00,"chair",3\n'


def test_hm3d_semantic_txt(tmp_path):
    p = tmp_path / "abc.semantic.txt"
    p.write_text(HM3D_TXT)
    got = read_hm3d_semantic_txt(p)
    assert [tuple(i) for i in got] == [
        (1, "FF0000", "wall", 0),
        (2, "0000FF", "bed, double", 3),
        (3, "00FF00", "chair", 3),
    ]
    # the pre-habitat delivery has no header line
    p.write_text("\n".join(HM3D_TXT.splitlines()[1:]) + "\n")
    assert len(read_hm3d_semantic_txt(p)) == 3


@pytest.mark.parametrize(
    "text, match",
    [
        ('HM3D Semantic Annotations\n1,FF0000,"wall",0\n2,GG0000,"bed",1\n', r":3: expected <id>,<RRGGBB>"),
        ('HM3D Semantic Annotations\n1,FF0000,"wall"\n', r":2: expected"),
        ('HM3D Semantic Annotations\n1,FF0000,"wall",0\n1,00FF00,"bed",0\n', r":3: instance id 1 repeats line 2"),
        ("Some other header\n", r":1: expected .* or the header 'HM3D Semantic Annotations'"),
        ("HM3D Semantic Annotations\n", "no instance lines"),
    ],
)
def test_hm3d_semantic_txt_malformed(tmp_path, text, match):
    p = tmp_path / "abc.semantic.txt"
    p.write_text(text)
    with pytest.raises(AnnotationError, match=match):
        read_hm3d_semantic_txt(p)


def _glb_bytes(positions, texcoords, indices, png, translation):
    """A minimal glTF 2.0 binary written by hand (texcoords in glTF convention: v = 0 at the image top)."""
    blob = bytearray()
    views = []

    def add(data: bytes) -> int:
        views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": len(data)})
        blob.extend(data)
        blob.extend(b"\0" * (-len(blob) % 4))
        return len(views) - 1

    pos = np.asarray(positions, "<f4")
    vp = add(pos.tobytes())
    vt = add(np.asarray(texcoords, "<f4").tobytes())
    vi = add(np.asarray(indices, "<u4").tobytes())
    vimg = add(png)
    doc = {
        "asset": {"version": "2.0"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "translation": translation}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0, "TEXCOORD_0": 1}, "indices": 2, "material": 0}]}],
        "materials": [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}}],
        "textures": [{"source": 0, "sampler": 0}],
        "samplers": [{"magFilter": 9728, "minFilter": 9728}],
        "images": [{"bufferView": vimg, "mimeType": "image/png"}],
        "accessors": [
            {"bufferView": vp, "componentType": 5126, "count": len(pos), "type": "VEC3",
             "min": pos.min(0).tolist(), "max": pos.max(0).tolist()},
            {"bufferView": vt, "componentType": 5126, "count": len(texcoords), "type": "VEC2"},
            {"bufferView": vi, "componentType": 5125, "count": len(indices), "type": "SCALAR"},
        ],
        "bufferViews": views,
        "buffers": [{"byteLength": len(blob)}],
    }  # fmt: skip
    js = json.dumps(doc).encode()
    js += b" " * (-len(js) % 4)
    total = 12 + 8 + len(js) + 8 + len(blob)
    return (
        struct.pack("<4sII", b"glTF", 2, total)
        + struct.pack("<I4s", len(js), b"JSON") + js
        + struct.pack("<I4s", len(blob), b"BIN\0") + bytes(blob)
    )  # fmt: skip


def test_hm3d_face_instances_from_texture(tmp_path):
    # 2x2 texture: top row red, green; bottom row blue, an unlisted colour
    img = Image.fromarray(np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [10, 20, 30]]], np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    tri = np.array([[0, 0, 0], [1, 0, 0], [0, 0, 1]], np.float32)
    positions = np.concatenate([tri, tri + [2, 0, 0], tri + [4, 0, 0]])
    # glTF uv (origin top-left): face 0 -> top-left texel, face 1 -> bottom-right, face 2 -> bottom-left
    texcoords = np.repeat([[0.25, 0.25], [0.75, 0.75], [0.25, 0.75]], 3, axis=0)
    glb = tmp_path / "abc.semantic.glb"
    glb.write_bytes(_glb_bytes(positions, texcoords, np.arange(9), buf.getvalue(), [1.0, 2.0, 3.0]))
    txt = tmp_path / "abc.semantic.txt"
    txt.write_text(HM3D_TXT)

    v, f, inst = hm3d_face_instances(glb, txt)
    assert v.dtype == np.float32 and f.dtype == np.int32 and inst.dtype == np.int32
    assert inst.tolist() == [1, -1, 2]
    np.testing.assert_allclose(v[f[2]], positions[6:9] + [1, 2, 3])  # node translation applied, Y-up kept
    vz, _, _ = hm3d_face_instances(glb, txt, up=UpAxis.Z)
    np.testing.assert_allclose(vz, np.stack([v[:, 0], v[:, 2], -v[:, 1]], axis=1))  # (x, y, z) -> (x, z, -y)


def test_hm3d_face_instances_from_vertex_colours_and_errors(tmp_path):
    tri = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 0, 1]], [[0, 1, 2]], process=False)
    green = tri.copy()
    green.visual.vertex_colors = [0, 255, 0, 255]
    grey = tri.copy()
    grey.apply_translation([3, 0, 0])
    grey.visual.vertex_colors = [9, 9, 9, 255]
    glb = tmp_path / "vc.semantic.glb"
    glb.write_bytes(trimesh.Scene({"a": green, "b": grey}).export(file_type="glb"))
    txt = tmp_path / "vc.semantic.txt"
    txt.write_text(HM3D_TXT)
    res = hm3d_face_instances(glb, txt)
    order = np.argsort(res.vertices[res.faces].mean(axis=1)[:, 0])
    assert res.face_instance[order].tolist() == [3, -1]

    bad = tmp_path / "bad.glb"
    bad.write_bytes(b"glTF\x02\x00\x00\x00garbage" * 4)
    with pytest.raises(AnnotationError, match="cannot read the GLB"):
        hm3d_face_instances(bad, txt)
    with pytest.raises(AnnotationError, match="not found"):
        hm3d_face_instances(tmp_path / "none.glb", txt)


VOTES_HEADER = (
    "Scene Name,Region #,Bathroom,Bedroom,Dining room,Garage,Hall/stairwell,Kitchen,Laundry room,"
    "Living room,Office,Rec room,Unknown room,Room Proposal"
)


def write_votes(tmp_path, rows):
    p = tmp_path / "Per_Scene_Region_Votes.csv"
    p.write_text(VOTES_HEADER + "\n" + "\n".join(rows) + "\n")
    return p


VOTE_ROWS = [
    "00800-TEEsavR23oF,0,0,0,0,0,0,0,0,0,0,0,3, Unknown room",
    "00800-TEEsavR23oF,1,0,4,0,0,0,0,0,1,0,0,2, Bedroom",
    "00800-TEEsavR23oF,3,0,0,0,0,2,0,0,0,0,0,1, Hall/stairwell",
    "00800-TEEsavR23oF,4,0,2,0,0,0,0,0,0,2,0,0, Tie: Bedroom & Office",
    "00801-HaxA7YrQdEC,1,0,0,0,0,0,5,0,0,0,0,0, Kitchen",
]


def test_region_votes(tmp_path):
    p = write_votes(tmp_path, VOTE_ROWS)
    got = read_region_votes(p, "00800-TEEsavR23oF")
    assert got == {0: "Unknown room", 1: "bedroom", 3: "hallway", 4: "Tie: Bedroom & Office"}
    assert read_region_votes(p, "HaxA7YrQdEC") == {1: "kitchen"}  # the hash alone identifies the scene


@pytest.mark.parametrize(
    "rows, match",
    [
        (VOTE_ROWS[:1] + ["00800-TEEsavR23oF,x,0,0,0,0,0,0,0,0,0,0,0, Kitchen"], r":3: region id 'x'"),
        (VOTE_ROWS[:1] + ["00800-TEEsavR23oF,2,0,0, Kitchen"], r":3: 5 columns, expected 14"),
        (VOTE_ROWS[:1] + ["00800-TEEsavR23oF,2,0,0,0,0,0,0,0,0,0,0,0, "], r":3: empty room proposal"),
        (VOTE_ROWS[:2] + VOTE_ROWS[1:2], r":4: region 1 of scene 00800-TEEsavR23oF is listed twice"),
        (VOTE_ROWS[4:], r"no rows for scene '00800-TEEsavR23oF'"),
    ],
)
def test_region_votes_malformed(tmp_path, rows, match):
    with pytest.raises(AnnotationError, match=match):
        read_region_votes(write_votes(tmp_path, rows), "00800-TEEsavR23oF")


# ---------------------------------------------------------------------------------------------- Replica

INFO = {
    "classes": [{"id": 0, "name": "wall"}, {"id": 7, "name": "sofa"}],
    "objects": [{"id": 0, "class_id": 0, "class_name": "wall"}, {"id": 5, "class_id": 7, "class_name": "sofa"}],
    "id_to_label": [0, 0, 0, 0, 0, 7],
}
# Z-up vertices: two unit quads side by side on the floor z = 0
REPLICA_V = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [2, 0, 0], [2, 1, 0]], np.float32)
REPLICA_QUADS = np.array([[0, 1, 2, 3], [1, 4, 5, 2]], np.int32)
REPLICA_OBJ = np.array([0, 5], np.int16)


def replica_binary_ply(vertices=REPLICA_V, quads=REPLICA_QUADS, objects=REPLICA_OBJ, object_prop="object_id"):
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment replica-like\n"
        f"element vertex {len(vertices)}\nproperty float x\nproperty float y\nproperty float z\n"
        "property float nx\nproperty float ny\nproperty float nz\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\n"
        f"element face {len(quads)}\nproperty list uchar int vertex_indices\nproperty short {object_prop}\nend_header\n"
    )
    vdt = np.dtype([("p", "<f4", 3), ("n", "<f4", 3), ("c", "u1", 3)])
    v = np.zeros(len(vertices), vdt)
    v["p"], v["n"], v["c"] = vertices, [0, 0, 1], 128
    fdt = np.dtype([("k", "u1"), ("i", "<i4", 4), ("o", "<i2")])
    f = np.zeros(len(quads), fdt)
    f["k"], f["i"], f["o"] = 4, quads, objects
    return header.encode() + v.tobytes() + f.tobytes()


def write_replica(tmp_path, ply_bytes, info=INFO):
    ply, js = tmp_path / "mesh_semantic.ply", tmp_path / "info_semantic.json"
    ply.write_bytes(ply_bytes)
    js.write_text(json.dumps(info))
    return ply, js


def test_replica_binary_quads(tmp_path):
    ply, js = write_replica(tmp_path, replica_binary_ply())
    v, f, obj, object_classes = read_replica_semantic(ply, js, up=UpAxis.Z)
    np.testing.assert_allclose(v, np.stack([REPLICA_V[:, 0], REPLICA_V[:, 2], -REPLICA_V[:, 1]], 1))
    assert v.dtype == np.float32 and f.dtype == np.int32
    assert f.tolist() == [[0, 1, 2], [0, 2, 3], [1, 4, 5], [1, 5, 2]]  # [0,1,2],[0,2,3] per quad
    assert obj.tolist() == [0, 0, 5, 5] and obj.dtype == np.int32
    assert object_classes == {0: "wall", 5: "sofa"}
    info = read_replica_info(js)
    assert info.classes == {0: "wall", 7: "sofa"} and info.object_class == {0: 0, 5: 7}
    stored = read_replica_semantic(ply)  # default: coordinates as stored, no info file
    np.testing.assert_allclose(stored.vertices, REPLICA_V)
    assert stored.object_classes == {} and stored.face_object.tolist() == [0, 0, 5, 5]


def test_replica_ascii_and_binary_mixed_polygons(tmp_path):
    text = (
        "ply\nformat ascii 1.0\nelement vertex 5\nproperty float x\nproperty float y\nproperty float z\n"
        "element face 2\nproperty list uchar int vertex_indices\nproperty int object_id\nend_header\n"
        "0 0 0\n1 0 0\n1 1 0\n0 1 0\n2 0 0\n3 0 1 2 0\n4 0 1 4 3 5\n"
    )
    ply, js = write_replica(tmp_path, text.encode())
    res = read_replica_semantic(ply, js)
    assert res.faces.tolist() == [[0, 1, 2], [0, 1, 4], [0, 4, 3]]
    assert res.face_object.tolist() == [0, 5, 5]
    # the same mesh in binary with variable-length lists (slow path)
    hdr = text.split("end_header\n")[0].replace("ascii", "binary_little_endian") + "end_header\n"
    body = np.array([0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 2, 0, 0], "<f4").tobytes()
    body += struct.pack("<B3ii", 3, 0, 1, 2, 0) + struct.pack("<B4ii", 4, 0, 1, 4, 3, 5)
    ply.write_bytes(hdr.encode() + body)
    res2 = read_replica_semantic(ply, js)
    assert res2.faces.tolist() == res.faces.tolist() and res2.face_object.tolist() == [0, 5, 5]
    ply.write_bytes(hdr.encode() + body[:-6])
    with pytest.raises(AnnotationError, match="truncated"):
        read_replica_semantic(ply, js)


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda b: b[:-5], "truncated"),
        (lambda b: b[: len(b) // 2], "truncated"),
        (lambda b: b.replace(b"end_header\n", b"end_headr\n"), "no 'end_header'"),
        (lambda b: b"PLY" + b[3:], "not a PLY file"),
        (lambda b: b.replace(b"property short object_id", b"property quad object_id"), "unknown PLY property type"),
        (lambda b: b.replace(b"element face 2", b"element face two"), "malformed PLY header line"),
    ],
)
def test_replica_ply_malformed(tmp_path, mutate, match):
    ply, js = write_replica(tmp_path, mutate(replica_binary_ply()))
    with pytest.raises(AnnotationError, match=match):
        read_replica_semantic(ply, js)


def test_replica_missing_properties_bad_indices_and_bad_info(tmp_path):
    ply, js = write_replica(tmp_path, replica_binary_ply(object_prop="segment_id"))
    with pytest.raises(AnnotationError, match="no 'object_id'"):
        read_replica_semantic(ply, js)
    ply, js = write_replica(tmp_path, replica_binary_ply(quads=np.array([[0, 1, 2, 3], [1, 4, 5, 9]])))
    with pytest.raises(AnnotationError, match="outside 0..5"):
        read_replica_semantic(ply, js)
    for info, match in [
        ({"objects": []}, "no 'classes' list"),
        ({"classes": [{"id": "0", "name": "wall"}]}, r"classes\[0\]: 'id' must be an integer"),
        ({"classes": [{"id": 0}]}, r"classes\[0\] needs 'id' and 'name'"),
        ({"classes": [], "objects": [{"id": 1}]}, r"objects\[0\] needs 'id' and 'class_id'"),
    ]:
        ply, js = write_replica(tmp_path, replica_binary_ply(), info)
        with pytest.raises(AnnotationError, match=match):
            read_replica_semantic(ply, js)
    js.write_text("{not json")
    with pytest.raises(AnnotationError, match=r"info_semantic\.json:1: not valid JSON"):
        read_replica_info(js)


def test_replica_undefined_class_is_not_an_error(tmp_path, caplog):
    """Real info_semantic.json files give objects class -1 ("undefined"); reading one says nothing."""
    info = dict(INFO, objects=INFO["objects"] + [{"id": 9, "class_id": -1, "class_name": "undefined"}])
    ply, js = write_replica(tmp_path, replica_binary_ply(objects=np.array([0, 9], np.int16)), info=info)
    with caplog.at_level(logging.WARNING):
        _v, _f, obj, object_classes = read_replica_semantic(ply, js, up=UpAxis.Z)
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    assert obj.tolist() == [0, 0, 9, 9] and object_classes == {0: "wall", 5: "sofa"}  # 9 keeps no class
    info["objects"].append({"id": 10, "class_id": 12})  # a class that really is missing still warns
    js.write_text(json.dumps(info))
    with caplog.at_level(logging.WARNING):
        read_replica_semantic(ply, js, up=UpAxis.Z)
    assert "missing from 'classes': [12]" in caplog.text
