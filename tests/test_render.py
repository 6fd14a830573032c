"""Renderer tests that would catch a wrong convention: z-depth vs ray length, pixel centres, axis flips,
texture orientation, Z-up handling."""

from __future__ import annotations

import dataclasses

import numpy as np
import open3d as o3d
import pytest
import trimesh
from PIL import Image

from envsim.camera import quat_from_yaw_pitch_roll, quat_to_matrix
from envsim.render.renderer import LightingConfig, RenderConfig, Renderer, SemanticMode
from envsim.scenes.load import load_scene
from envsim.scenes.scene import Material, Scene, UpAxis
from tests.conftest import room_with_furniture, scene_from_trimesh

FLAT = LightingConfig(ambient=1.0, diffuse=0.0)


def random_poses(rng, n, lo=(-2.0, 0.5, -1.5), hi=(2.0, 2.5, 1.5)):
    pos = rng.uniform(lo, hi, size=(n, 3))
    q = quat_from_yaw_pitch_roll(rng.uniform(-np.pi, np.pi, n), rng.uniform(-0.6, 0.6, n), rng.uniform(-0.3, 0.3, n))
    return pos, q


def back_project(depth, K, position, rotation):
    """World points of every pixel with depth > 0, written independently of the renderer's ray code."""
    n, h, w = depth.shape
    v, u = np.mgrid[0:h, 0:w]
    pts = []
    for i in range(n):
        z = depth[i].astype(np.float64)
        ok = z > 0
        # OpenCV camera frame (x right, y down, z forward) -> OpenGL camera frame (y up, z backward).
        x_cv = (u[ok] - K[0, 2]) / K[0, 0] * z[ok]
        y_cv = (v[ok] - K[1, 2]) / K[1, 1] * z[ok]
        p_gl = np.stack([x_cv, -y_cv, -z[ok]], axis=1)
        pts.append(p_gl @ quat_to_matrix(rotation[i]).T + position[i])
    return np.concatenate(pts)


def test_back_projected_depth_lies_on_the_mesh():
    mesh = room_with_furniture(3)
    scene = scene_from_trimesh(mesh)
    cfg = RenderConfig(width=64, height=48, hfov_deg=75)
    r = Renderer(scene, cfg)
    pos, q = random_poses(np.random.default_rng(0), 12)
    views = r.render(pos, q)
    assert (views.depth > 0).mean() > 0.99  # a closed room: every ray hits
    pts = back_project(views.depth, cfg.intrinsics.K, pos, q)
    ref = o3d.t.geometry.RaycastingScene()
    ref.add_triangles(o3d.core.Tensor(scene.vertices), o3d.core.Tensor(scene.faces.astype(np.uint32)))
    dist = ref.compute_distance(o3d.core.Tensor(pts.astype(np.float32))).numpy()
    assert np.percentile(dist, 99.9) < 1e-3
    assert dist.max() < 5e-3


def test_wall_depth_is_z_depth_not_ray_length():
    box = trimesh.creation.box((8.0, 4.0, 8.0))  # walls at x, z = +-4; floor and ceiling at y = +-2
    box.invert()
    cfg = RenderConfig(width=33, height=33, hfov_deg=60)
    r = Renderer(scene_from_trimesh(box), cfg)
    yaw = np.radians(20.0)
    views = r.render(np.zeros((1, 3)), quat_from_yaw_pitch_roll(yaw, 0.0, 0.0))
    # Analytic: the wall z = -4 seen from the origin by a camera turned by yaw about +Y.
    K = cfg.intrinsics.K
    v, u = np.mgrid[0:33, 0:33]
    x_c, y_c = (u - K[0, 2]) / K[0, 0], -(v - K[1, 2]) / K[1, 1]
    # Camera ray (x_c, y_c, -1) in world: rotate about Y by yaw.
    dz_world = -np.sin(yaw) * x_c - np.cos(yaw) * 1.0
    t = -4.0 / dz_world  # parameter where the ray reaches z = -4, equal to the z-depth
    hits_far_wall = (np.abs(np.cos(yaw) * x_c - np.sin(yaw)) * t < 4.0) & (np.abs(y_c) * t < 2.0)
    np.testing.assert_allclose(views.depth[0][hits_far_wall], t[hits_far_wall], rtol=1e-5)
    assert views.depth[0, 16, 16] == pytest.approx(4.0 / np.cos(yaw), rel=1e-6)


def test_marker_projects_where_K_says():
    """A small red cube lands at the pixel that OpenCV's projection with K predicts."""
    room = trimesh.creation.box((10.0, 10.0, 10.0))
    room.invert()
    cube = trimesh.creation.box((0.1, 0.1, 0.1))
    target = np.array([0.7, 1.9, -3.0])
    cube.apply_translation(target)
    v = np.concatenate([room.vertices, cube.vertices]).astype(np.float32)
    f = np.concatenate([room.faces, cube.faces + len(room.vertices)]).astype(np.int32)
    fm = np.concatenate([np.zeros(len(room.faces)), np.ones(len(cube.faces))]).astype(np.int32)
    scene = Scene(
        name="marker", vertices=v, faces=f, face_material=fm, face_object=fm, uv=np.zeros((len(v), 2), np.float32),
        color=np.ones((len(v), 3), np.float32),
        materials=(Material("grey", np.array([0.5, 0.5, 0.5], np.float32)), Material("red", np.array([1.0, 0, 0], np.float32))),
        object_names=("room", "cube"), object_room=np.array([-1, -1], np.int32),
    )
    cfg = RenderConfig(width=160, height=120, hfov_deg=70, lighting=FLAT, semantic=SemanticMode.OBJECT)
    pos = np.array([[0.2, 1.5, 0.0]])
    q = quat_from_yaw_pitch_roll(0.15, 0.05, 0.1)
    views = Renderer(scene, cfg).render(pos, q[None])
    red = (views.rgb[0, :, :, 0] > 200) & (views.rgb[0, :, :, 1] < 50)
    assert red.sum() > 10
    assert np.array_equal(red, views.semantic[0] == 2)  # object ids are 1-based
    rows, cols = np.nonzero(red)
    # Expected pixel: world -> OpenGL camera -> OpenCV camera -> K.
    p_gl = quat_to_matrix(q).T @ (target - pos[0])
    p_cv = np.array([p_gl[0], -p_gl[1], -p_gl[2]])
    uvw = cfg.intrinsics.K @ p_cv
    assert cols.mean() == pytest.approx(uvw[0] / uvw[2], abs=0.5)
    assert rows.mean() == pytest.approx(uvw[1] / uvw[2], abs=0.5)


def _textured_quad_glb(path, texture: np.ndarray):
    """A 2 x 2 m quad in the plane z = -2 facing +Z, uv (0, 0) at its bottom-left corner."""
    verts = np.array([[-1, 0, -2], [1, 0, -2], [1, 2, -2], [-1, 2, -2]], dtype=np.float64)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    uv = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=np.float64)
    mat = trimesh.visual.material.PBRMaterial(baseColorTexture=Image.fromarray(texture))
    mesh = trimesh.Trimesh(verts, faces, visual=trimesh.visual.TextureVisuals(uv=uv, material=mat), process=False)
    trimesh.Scene({"quad": mesh}).export(path)


def test_texture_orientation_survives_glb(tmp_path):
    h, w = 32, 32
    tex = np.zeros((h, w, 3), np.uint8)
    tex[..., 0] = np.linspace(0, 255, w)[None, :]  # red grows to the right
    tex[..., 1] = np.linspace(0, 255, h)[:, None]  # green grows down the image rows
    _textured_quad_glb(tmp_path / "quad.glb", tex)
    scene = load_scene(tmp_path / "quad.glb")
    cfg = RenderConfig(width=64, height=64, hfov_deg=90, lighting=FLAT)
    views = Renderer(scene, cfg).render(np.array([[0.0, 1.0, 0.0]]), quat_from_yaw_pitch_roll(0, 0, 0)[None])
    rgb = views.rgb[0].astype(int)
    hit = views.depth[0] > 0
    rows, cols = np.nonzero(hit)
    top_left = rgb[rows.min() + 1, cols.min() + 1]
    bottom_right = rgb[rows.max() - 1, cols.max() - 1]
    # The image's top-left texel shows at the quad's top-left corner (glTF: uv origin = image top-left).
    assert top_left[0] < 40 and top_left[1] < 40
    assert bottom_right[0] > 215 and bottom_right[1] > 215
    # Bilinear: the centre of the quad is mid-grey in both channels.
    assert abs(rgb[rows.mean().round().astype(int), cols.mean().round().astype(int), 0] - 128) < 12


def test_z_up_asset_renders_like_its_y_up_twin(tmp_path):
    mesh = room_with_furniture(5)
    mesh.export(tmp_path / "yup.ply")
    zup = mesh.copy()
    zup.vertices = np.stack([mesh.vertices[:, 0], -mesh.vertices[:, 2], mesh.vertices[:, 1]], axis=1)
    zup.export(tmp_path / "zup.ply")
    a = load_scene(tmp_path / "yup.ply")
    b = load_scene(tmp_path / "zup.ply", up=UpAxis.Z)
    np.testing.assert_allclose(a.vertices, b.vertices, atol=1e-6)
    cfg = RenderConfig(width=40, height=30)
    pos, q = random_poses(np.random.default_rng(2), 4)
    va, vb = Renderer(a, cfg).render(pos, q), Renderer(b, cfg).render(pos, q)
    np.testing.assert_allclose(va.depth, vb.depth, atol=1e-5)
    assert np.abs(va.rgb.astype(int) - vb.rgb.astype(int)).max() <= 1


def test_vertex_colours_from_ply(tmp_path):
    box = trimesh.creation.box((4.0, 4.0, 4.0))
    box.invert()
    box.visual.vertex_colors = np.tile([[255, 0, 0, 255]], (len(box.vertices), 1))
    box.visual.vertex_colors[box.vertices[:, 2] < 0] = [0, 0, 255, 255]  # the far (z = -2) wall is blue
    box.export(tmp_path / "box.ply")
    scene = load_scene(tmp_path / "box.ply")
    cfg = RenderConfig(width=16, height=16, hfov_deg=40, lighting=FLAT)
    views = Renderer(scene, cfg).render(np.zeros((1, 3)), quat_from_yaw_pitch_roll(0, 0, 0)[None])
    centre = views.rgb[0, 8, 8]
    np.testing.assert_array_equal(centre, [0, 0, 255])


def test_obj_with_mtl_texture(tmp_path):
    tex = np.zeros((8, 8, 3), np.uint8)
    tex[:4] = [250, 250, 0]  # top half yellow
    tex[4:] = [0, 200, 200]
    _textured_quad_glb(tmp_path / "quad.glb", tex)
    trimesh.load(tmp_path / "quad.glb", force="mesh").export(tmp_path / "quad.obj")
    assert (tmp_path / "material.mtl").exists() or any(tmp_path.glob("*.mtl"))
    scene = load_scene(tmp_path / "quad.obj")
    assert any(m.texture is not None for m in scene.materials)
    cfg = RenderConfig(width=32, height=32, hfov_deg=90, lighting=FLAT)
    views = Renderer(scene, cfg).render(np.array([[0.0, 1.0, 0.0]]), quat_from_yaw_pitch_roll(0, 0, 0)[None])
    rows, cols = np.nonzero(views.depth[0] > 0)
    np.testing.assert_array_equal(views.rgb[0, rows.min() + 1, cols.mean().astype(int)], [250, 250, 0])
    np.testing.assert_array_equal(views.rgb[0, rows.max() - 1, cols.mean().astype(int)], [0, 200, 200])


def test_max_depth_and_misses_are_zero():
    box = trimesh.creation.box((2.0, 2.0, 2.0))  # seen from outside: most rays miss
    cfg = RenderConfig(width=32, height=32, max_depth=4.5)
    r = Renderer(scene_from_trimesh(box), cfg)
    near = r.render(np.array([[0, 0, 4.0]]), quat_from_yaw_pitch_roll(0, 0, 0)[None])
    far = r.render(np.array([[0, 0, 6.0]]), quat_from_yaw_pitch_roll(0, 0, 0)[None])
    assert near.depth[0, 16, 16] == pytest.approx(3.0)
    assert near.depth[0, 0, 0] == 0 and np.all(near.rgb[0, 0, 0] == 0)
    assert np.all(far.depth == 0)  # the box is 5 m away, beyond max_depth


def test_lighting_jitter_is_per_view_and_seeded():
    scene = scene_from_trimesh(room_with_furniture(1))
    cfg = RenderConfig(width=16, height=16, lighting=LightingConfig(jitter=True))
    r = Renderer(scene, cfg)
    pos = np.tile([[0.0, 1.5, 0.0]], (3, 1))
    q = np.tile(quat_from_yaw_pitch_roll(0, 0, 0), (3, 1))
    a = r.render(pos, q, light_seeds=np.array([1, 2, 1]))
    np.testing.assert_array_equal(a.rgb[0], a.rgb[2])
    assert not np.array_equal(a.rgb[0], a.rgb[1])
    np.testing.assert_array_equal(a.depth[0], a.depth[1])  # light changes colour only


@pytest.mark.parametrize("semantic", [SemanticMode.NONE, SemanticMode.OBJECT])
def test_fused_kernel_matches_numpy_reference(tmp_path, semantic):
    tex = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    _textured_quad_glb(tmp_path / "quad.glb", tex)
    quad = load_scene(tmp_path / "quad.glb")
    room = scene_from_trimesh(room_with_furniture(4), color=(0.9, 0.5, 0.2))
    for scene in (quad, room):
        cfg = RenderConfig(width=40, height=30, semantic=semantic, max_depth=4.0, lighting=LightingConfig(jitter=True))
        r = Renderer(scene, cfg)
        pos, q = random_poses(np.random.default_rng(1), 5)
        seeds = np.arange(5)
        fast, slow = r.render(pos, q, seeds), r.render_reference(pos, q, seeds)
        np.testing.assert_array_equal(fast.depth, slow.depth)
        assert np.abs(fast.rgb.astype(int) - slow.rgb.astype(int)).max() <= 1
        assert (fast.rgb != slow.rgb).mean() < 0.001
        if semantic is SemanticMode.NONE:
            assert fast.semantic is None and slow.semantic is None
        else:
            np.testing.assert_array_equal(fast.semantic, slow.semantic)


@pytest.mark.parametrize("how", ["flat", "auto-unlit-material"])
def test_flat_pixel_is_the_bilinear_texture_colour_at_the_hit(tmp_path, how):
    """Flat shading (Habitat's ``shader_type: flat``): the colour is the texture itself, sampled bilinearly at
    the hit's uv, computed here from the back-projected depth and the quad's geometry, with scipy's sampler."""
    from scipy.ndimage import map_coordinates

    tex = np.random.default_rng(3).integers(0, 256, (8, 12, 3), dtype=np.uint8)
    _textured_quad_glb(tmp_path / "quad.glb", tex)
    scene = load_scene(tmp_path / "quad.glb")
    if how == "flat":
        cfg = RenderConfig(width=80, height=60, hfov_deg=80, shading="flat")
    else:  # the asset asks for it; the default shading honours it
        scene = dataclasses.replace(scene, materials=tuple(dataclasses.replace(m, unlit=True) for m in scene.materials))
        cfg = RenderConfig(width=80, height=60, hfov_deg=80)
    pos = np.array([[0.1, 1.0, 0.0], [-0.3, 0.8, -0.4]])
    q = quat_from_yaw_pitch_roll(np.array([0.1, -0.2]), np.array([0.05, -0.1]), np.array([0.0, 0.2]))
    views = Renderer(scene, cfg).render(pos, q)
    hit = views.depth > 0
    assert hit.mean() > 0.3
    pts = back_project(views.depth, cfg.intrinsics.K, pos, q)  # (M, 3) on the quad z = -2
    u, v = (pts[:, 0] + 1) / 2, pts[:, 1] / 2  # the quad's uv (OpenGL: v = 0 at the bottom)
    h, w = tex.shape[:2]
    rows, cols = (1 - v) * h - 0.5, u * w - 0.5
    expected = np.stack([map_coordinates(tex[..., c].astype(np.float64), [rows, cols], order=1, mode="grid-wrap")
                         for c in range(3)], axis=1)
    got = views.rgb[hit].astype(np.float64)
    diff = np.abs(got - expected)
    assert np.percentile(diff, 99.5) <= 1.0 and diff.max() <= 3.0, (np.percentile(diff, 99.5), diff.max())
    lit = Renderer(scene, dataclasses.replace(cfg, shading="lit")).render(pos, q)
    assert np.abs(lit.rgb[hit].astype(int) - got).mean() > 10  # lighting really is off


def test_flat_surfaces_keep_the_view_brightness_only_when_lighting_is_jittered(tmp_path):
    tex = np.full((4, 4, 3), 200, np.uint8)
    _textured_quad_glb(tmp_path / "quad.glb", tex)
    scene = load_scene(tmp_path / "quad.glb")
    pos, q = np.tile([[0.0, 1.0, 0.0]], (3, 1)), np.tile(quat_from_yaw_pitch_roll(0, 0, 0), (3, 1))
    plain = Renderer(scene, RenderConfig(width=16, height=16, shading="flat")).render(pos, q, np.array([1, 2, 3]))
    assert np.all(plain.rgb[plain.depth > 0] == 200)  # no jitter: exactly the texture
    jit = Renderer(scene, RenderConfig(width=16, height=16, shading="flat", lighting=LightingConfig(jitter=True)))
    views = jit.render(pos, q, np.array([1, 2, 3]))
    centre = views.rgb[:, 8, 8, 0].astype(float)
    gain = jit.flat_gain(views.light)
    np.testing.assert_allclose(centre, np.minimum(200 * gain, 255), atol=1.0)
    assert len(set(centre)) == 3  # brightness varies per view
    # Uniform over the surface: direction plays no part.
    assert np.ptp(views.rgb[0][views.depth[0] > 0]) == 0


def test_unknown_shading_is_refused():
    with pytest.raises(ValueError, match="unknown shading 'phong'"):
        RenderConfig(shading="phong")
