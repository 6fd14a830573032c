"""Tests for pairing.qa.position and pairing.qa.objects: a hand-placed two-object scene rendered with object
ids gives the answers its geometry says (in A's own frame when A has a yaw, else the camera's), object tables
from procedural sidecars, and the yaw the procedural generator records."""

from __future__ import annotations

import math

import numpy as np
import pytest
import trimesh

from envsim.camera import pose_matrix, quat_from_yaw_pitch_roll
from envsim.render.renderer import RenderConfig, Renderer, SemanticMode
from envsim.scenes.scene import Material, Scene
from pairing.qa.objects import STRUCTURE, scene_objects
from pairing.qa.position import (
    PositionConfig,
    build_position,
    frame_axes,
    relative_offset,
    seen_objects,
    world_points,
)
from pairing.qa.tasks import Question, Skip, ViewData

SOFA = np.array([-0.8, 0.4, -3.0])  # box centres, metres
LAMP = np.array([0.8, 0.4, -4.5])
CAMERA = np.array([0.0, 1.2, 0.0])


def two_object_scene() -> Scene:
    """A 10 m room with a 0.6 m box (the "sofa") front left and another (the "lamp") behind right."""
    room = trimesh.creation.box((10.0, 4.0, 14.0))
    room.apply_translation([0, 2.0, -3.0])
    room.invert()
    parts = [room]
    for centre in (SOFA, LAMP):
        box = trimesh.creation.box((0.6, 0.8, 0.6))
        box.apply_translation(centre)
        parts.append(box)
    v = np.concatenate([p.vertices for p in parts]).astype(np.float32)
    offsets = np.cumsum([0] + [len(p.vertices) for p in parts[:-1]])
    f = np.concatenate([p.faces + o for p, o in zip(parts, offsets)]).astype(np.int32)
    obj = np.concatenate([np.full(len(p.faces), i) for i, p in enumerate(parts)]).astype(np.int32)
    return Scene(
        name="two", vertices=v, faces=f, face_material=np.zeros(len(f), np.int32), face_object=obj,
        uv=np.zeros((len(v), 2), np.float32), color=np.ones((len(v), 3), np.float32),
        materials=(Material("grey", np.array([0.6, 0.6, 0.6], np.float32)),),
        object_names=("room", "sofa", "lamp"), object_room=np.full(3, -1, np.int32),
    )


@pytest.fixture(scope="module")
def rendered():
    scene = two_object_scene()
    cfg = RenderConfig(width=96, height=72, hfov_deg=90, semantic=SemanticMode.OBJECT)
    q = quat_from_yaw_pitch_roll(0.0, -0.1, 0.0)  # looking down -Z, slightly down
    views = Renderer(scene, cfg).render(CAMERA[None], q[None])
    return scene, views, pose_matrix(CAMERA, q), cfg.intrinsics.K


def view_of(rendered, objects) -> ViewData:
    _, views, pose, K = rendered
    return ViewData(rgb=views.rgb[0], pose=pose, K=K, depth=views.depth[0], semantic=views.semantic[0], objects=objects)


SIDECAR = {"format": "envsim-rooms/1", "up": "y", "rooms": [],
           "objects": {"room": {"category": "wall"}, "sofa": {"category": "sofa", "yaw": math.pi},  # faces +Z
                       "lamp": {"category": "lamp"}}}


def answers(view: ViewData, config: PositionConfig, n: int = 12) -> dict[tuple[str, str], tuple]:
    """(A, B) category or key -> (answer, frame) over several draws."""
    out = {}
    for seed in range(n):
        q = build_position(view, np.random.default_rng(seed), config)
        assert isinstance(q, Question), q
        a, b = q.meta["objects"]
        out[(a["category"] or a["object"], b["category"] or b["object"])] = (q.answer_struct, q.meta["frame"])
    return out


def test_world_points_back_project_the_rendered_boxes(rendered):
    _, views, pose, K = rendered
    pts = world_points(views.depth[0], K, pose)
    for index, centre in ((2, SOFA), (3, LAMP)):
        mask = views.semantic[0] == index
        p = pts[mask]
        assert mask.sum() > 40
        assert np.all(np.abs(p - centre) <= np.array([0.3, 0.4, 0.3]) + 1e-3)  # on the 0.6 x 0.8 x 0.6 box


def test_answers_agree_with_the_hand_placed_scene_in_a_own_frame_and_the_camera_frame(rendered):
    view = view_of(rendered, scene_objects(("room", "sofa", "lamp"), SIDECAR))
    got = answers(view, PositionConfig())
    # The sofa faces +Z (the camera): its right is world -X, its front +Z. The lamp (+1.6 m in x, -1.5 m in z)
    # is on the sofa's left and behind it.
    assert got[("sofa", "lamp")] == (["left", "behind"], "object")
    # The lamp has no yaw: camera frame. The sofa is left of the lamp in the image and nearer the camera.
    assert got[("lamp", "sofa")] == (["left", "front"], "camera")


def test_without_a_table_objects_are_anonymous_and_asked_in_the_camera_frame(rendered):
    view = view_of(rendered, None)
    got = answers(view, PositionConfig())
    assert set(got) == {(1, 2), (2, 1)}  # semantic ids 2 and 3; the room is too large to be an object
    assert got[(1, 2)] == (["right", "behind"], "camera")  # from the sofa, the lamp is right and farther
    assert got[(2, 1)] == (["left", "front"], "camera")


def test_centres_are_the_visible_surface_means(rendered):
    view = view_of(rendered, scene_objects(("room", "sofa", "lamp"), SIDECAR))
    seen = {o.key: o for o in seen_objects(view.depth, view.semantic, view.pose, view.K, view.objects)}
    table = view.objects
    assert set(seen) == {table.names.index("sofa"), table.names.index("lamp")}  # the wall-room is structure
    for name, centre in (("sofa", SOFA), ("lamp", LAMP)):
        o = seen[table.names.index(name)]
        assert np.linalg.norm(o.centre - centre) < 0.45 and o.extent < 1.2 and not o.on_border


def test_margins_and_skips(rendered):
    view = view_of(rendered, None)
    assert build_position(view, np.random.default_rng(0), PositionConfig(min_offset=2.0)) == \
        Skip("no two objects apart on both axes")
    assert build_position(view, np.random.default_rng(0), PositionConfig(min_pixels=10_000)) == \
        Skip("fewer than two objects")
    bare = ViewData(rgb=view.rgb, pose=view.pose, K=view.K, depth=view.depth, semantic=np.zeros_like(view.semantic))
    assert build_position(bare, np.random.default_rng(0), PositionConfig()) == Skip("fewer than two objects")


def test_frame_axes_and_offsets():
    right, front = frame_axes(yaw=0.0)  # facing -Z like a camera at yaw 0
    np.testing.assert_allclose(right, [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(front, [0, 0, -1], atol=1e-12)
    assert relative_offset([0, 0, 0], [2, 5, -1], (right, front)) == pytest.approx((2.0, 1.0))
    right, front = frame_axes(yaw=math.pi / 2)  # facing -X
    np.testing.assert_allclose(right, [0, 0, -1], atol=1e-12)
    np.testing.assert_allclose(front, [-1, 0, 0], atol=1e-12)
    pose = pose_matrix(np.zeros(3), quat_from_yaw_pitch_roll(0.0, 0.3, 0.0))  # camera at yaw 0, pitched up
    right, toward = frame_axes(pose=pose)
    np.testing.assert_allclose(right, [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(toward, [0, 0, 1], atol=1e-12)  # "front" = back towards the camera
    assert frame_axes(pose=pose_matrix(np.zeros(3), quat_from_yaw_pitch_roll(0.0, -math.pi / 2, 0.0))) is None


def test_scene_objects_groups_procedural_items_and_drops_structure():
    names = ("r01/floor", "r01/wall_z0", "r01/bed0_frame", "r01/bed0_duvet", "r01/floor_lamp0_shade",
             "r01/floor_lamp0_pole", "r02/bed0_frame", "r01/table0_table", "extra")
    objects = {n: {"room": 1, "category": c} for n, c in zip(names, ("floor", "wall", "bed", "bed", "lamp", "lamp",
                                                                        "bed", "table", "plant"))}
    for n in ("r01/bed0_frame", "r01/bed0_duvet"):
        objects[n]["yaw"] = 1.5708
    objects["r02/bed0_frame"]["yaw"] = 0.0
    sidecar = {"format": "envsim-rooms/1", "up": "y", "objects": objects, "generator": {"module": "envsim.procedural"}}
    t = scene_objects(names, sidecar)
    assert t.names == ("r01/bed0", "r01/floor_lamp0", "r02/bed0", "r01/table0", "extra")
    assert t.group.tolist() == [-1, -1, 0, 0, 1, 1, 2, 3, 4]
    assert t.category == ("bed", "lamp", "bed", "table", "plant")
    np.testing.assert_allclose(t.yaw[[0, 2]], [1.5708, 0.0])
    assert np.isnan(t.yaw[[1, 3, 4]]).all()
    # Not procedural: every node is its own object; a z-up sidecar's yaw is not trusted.
    t = scene_objects(names, {**sidecar, "generator": None, "up": "z"})
    assert len(t.names) == 7 and np.isnan(t.yaw).all()
    t = scene_objects(("a", "b"), None)
    assert t.names == ("a", "b") and t.category == (None, None)
    with pytest.raises(ValueError, match="sidecar"):
        scene_objects(("a",), {"objects": []})


def test_procedural_sidecar_yaw_faces_away_from_the_wall_behind():
    from envsim.scenes.procedural import ProceduralConfig, generate_house

    house = generate_house(rng=np.random.default_rng(5), config=ProceduralConfig(texture_size=32))
    side = house.sidecar
    table = scene_objects(tuple(side["objects"]), side)
    assert "wall" in STRUCTURE and np.isfinite(table.yaw).sum() >= 5
    checked = 0
    for name, info in side["objects"].items():
        if "yaw" not in info:
            assert info["category"] not in ("bed", "sofa", "desk", "wardrobe")
            continue
        yaw = info["yaw"]
        assert -math.pi < yaw <= round(math.pi, 6)  # (-pi, pi], rounded to 1e-6
        centre = house.scene.geometry[name].vertices.mean(axis=0)
        polygon = np.array(side["rooms"][info["room"]]["polygon"])
        (x0, z0), (x1, z1) = polygon.min(axis=0), polygon.max(axis=0)
        x, z = centre[0], centre[2]
        facing = (round(-math.sin(yaw)), round(-math.cos(yaw)))  # an axis: (x, z)
        behind = {(1, 0): x - x0, (-1, 0): x1 - x, (0, 1): z - z0, (0, -1): z1 - z}[facing]
        ahead = {(1, 0): x1 - x, (-1, 0): x - x0, (0, 1): z1 - z, (0, -1): z - z0}[facing]
        assert behind < 1.6 and behind < ahead + 1e-9, name  # its back is to the nearer wall
        checked += 1
    assert checked > 20
