"""The torch render path (``envsim.render.shade_torch``) against the numba kernels and the numpy reference, on the
same hits; and the whole torch path (rays, Mitsuba ``cast_torch``, shading, host copy) against the default
Open3D + numba renderer.

Everything runs on CPU tensors here (Mitsuba's ``llvm_ad_rgb`` casts); where torch sees a CUDA device the
same tests run on ``cuda`` too, and skip there with the reason otherwise.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import trimesh

from envsim.camera import quat_from_yaw_pitch_roll
from envsim.render.kernels import shade_hits
from envsim.render.raycast import MISS, MitsubaRayCaster, Open3DRayCaster, mitsuba_variant
from envsim.render.renderer import Backend, LightingConfig, RenderConfig, Renderer, SemanticMode
from envsim.render.shade_torch import face_normals, shade
from envsim.scenes.scene import Material, Scene
from tests.conftest import room_with_furniture, scene_from_trimesh

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA device")),
]
VARIANTS = [
    "llvm_ad_rgb",
    pytest.param("cuda_ad_rgb", marks=pytest.mark.skipif(
        mitsuba_variant() != "cuda_ad_rgb", reason="Mitsuba has no working CUDA device")),
]
JITTER = LightingConfig(jitter=True)


def interior(triangle: np.ndarray, bary: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    """Hits at least ``eps`` (barycentric) away from every edge of their triangle, bool (N,)."""
    u, v = bary[:, 0], bary[:, 1]
    return (triangle != MISS) & (np.minimum(np.minimum(u, v), 1.0 - u - v) > eps)


@pytest.fixture(scope="module")
def house(walked_house):
    return walked_house


def wrapped_quad_scene() -> Scene:
    """Two quads facing +Z at z = -2: a textured one whose uv run far outside [0, 1] (REPEAT wrapping, negative
    coordinates, an odd non-square texture) and one with vertex colours, each its own object."""
    v = np.array([
        [-1.5, 0, -2], [0, 0, -2], [0, 2, -2], [-1.5, 2, -2],  # textured
        [0, 0, -2], [1.5, 0, -2], [1.5, 2, -2], [0, 2, -2],  # vertex colours
    ], np.float32)
    f = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]], np.int32)
    uv = np.array([[-1.75, -0.6], [2.25, -0.6], [2.25, 3.4], [-1.75, 3.4]] + [[0, 0]] * 4, np.float32)
    color = np.ones((8, 3), np.float32)
    color[4:] = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]]
    texture = np.random.default_rng(3).integers(0, 256, (5, 3, 3), dtype=np.uint8)
    return Scene(
        name="quads", vertices=v, faces=f,
        face_material=np.array([0, 0, 1, 1], np.int32), face_object=np.array([0, 0, 1, 1], np.int32),
        uv=uv, color=color,
        materials=(Material("tex", np.array([0.9, 0.8, 1.0], np.float32), texture),
                   Material("plain", np.array([1.0, 1.0, 1.0], np.float32))),
        object_names=("textured", "coloured"), object_room=np.array([-1, -1], np.int32),
    )


def shade_three_ways(renderer: Renderer, position, rotation, seeds, device: str):
    """The same Open3D hits shaded by the torch code on ``device``, the numba kernel and the numpy reference."""
    cfg = renderer.config
    light = renderer.lights(seeds)
    rays = renderer.rays(position, rotation)
    hits = Open3DRayCaster(renderer.scene.vertices, renderer.scene.faces).cast(rays)
    valid = (hits.triangle != MISS) & (hits.t <= cfg.max_depth)
    ref_rgb, ref_sem = renderer.shade_reference(hits, rays[:, 3:], light, valid)
    ref = (ref_rgb, np.where(valid, hits.t, 0.0).astype(np.float32), ref_sem)

    n = len(rays)
    with_sem = renderer._face_semantic is not None
    rgb, depth = np.empty((n, 3), np.uint8), np.empty(n, np.float32)
    sem = np.empty(n if with_sem else 0, renderer._semantic_dtype)
    shade_light = renderer._shade_light(light)  # (B, 6): the flat faces' gain last
    shade_hits(hits.t, hits.triangle, hits.bary, hits.normal, rays, shade_light, n // len(seeds),
               np.float32(cfg.max_depth), renderer._face_uv, renderer._face_col, renderer._face_factor,
               renderer._face_tex_offset, renderer._face_tex_hw, renderer._texels, renderer._face_flat,
               renderer._face_semantic if with_sem else np.zeros(0, np.int64), rgb, depth, sem)
    fast = (rgb, depth, sem if with_sem else None)

    surfaces = Renderer(renderer.scene, cfg, caster=renderer.caster, device=device).device_path.surfaces
    up = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
    out = shade(surfaces, up(hits.t), up(hits.triangle.view(np.int32)), up(hits.bary), up(rays[:, 3:]), up(shade_light),
                max_depth=cfg.max_depth, normal=up(hits.normal))
    sem_t = None
    if out.semantic is not None:
        sem_t = out.semantic.cpu().numpy().view(renderer._semantic_dtype)
    got = (out.rgb.cpu().numpy(), out.depth.cpu().numpy(), sem_t)
    return got, fast, ref, hits, valid


def assert_close_rgb(a: np.ndarray, b: np.ndarray, *, levels: int, fraction: float) -> None:
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    assert diff.max() <= levels, diff.max()
    assert (diff > 0).mean() <= fraction, (diff > 0).mean()


# ------------------------------------------------------------------------------------- same hits, 3 shaders


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("semantic", [SemanticMode.NONE, SemanticMode.ROOM, SemanticMode.OBJECT])
def test_torch_shading_matches_numba_and_reference_on_a_house(house, device, semantic):
    scene, position, rotation = house
    cfg = RenderConfig(width=64, height=48, semantic=semantic, max_depth=4.0, lighting=JITTER)
    renderer = Renderer(scene, cfg)
    got, fast, ref, hits, valid = shade_three_ways(renderer, position, rotation, np.arange(len(position)), device)
    # The scene exercises what matters: textures with wrapped uv, max_depth clipping.
    f = hits.triangle[valid].astype(np.int64)
    assert (renderer._face_tex_hw[f].prod(axis=1) > 1).mean() > 0.2  # textured hits
    uv = renderer._face_uv[f]
    assert ((uv < 0) | (uv > 1)).any()  # REPEAT wrapping
    assert ((hits.triangle != MISS) & (hits.t > cfg.max_depth)).mean() > 0.01  # clipped
    # Depth: exactly the reference (the same select); RGB equal up to float rounding of the last level.
    np.testing.assert_array_equal(got[1], ref[1])
    np.testing.assert_array_equal(got[1], fast[1])
    assert_close_rgb(got[0], ref[0], levels=1, fraction=1e-3)
    assert_close_rgb(got[0], fast[0], levels=1, fraction=1e-3)
    assert (got[0][~valid] == 0).all()
    if semantic is SemanticMode.NONE:
        assert got[2] is None and ref[2] is None
    else:
        assert got[2].dtype == ref[2].dtype == fast[2].dtype
        np.testing.assert_array_equal(got[2], ref[2])
        np.testing.assert_array_equal(got[2], fast[2])


@pytest.mark.parametrize("device", DEVICES)
def test_textured_quads_with_wrapped_uv(device):
    scene = wrapped_quad_scene()
    cfg = RenderConfig(width=96, height=64, hfov_deg=100, semantic=SemanticMode.OBJECT, lighting=JITTER)
    renderer = Renderer(scene, cfg)
    position = np.array([[0.0, 1.0, 0.0], [0.3, 0.8, -0.5], [-0.4, 1.2, 0.2]])
    rotation = quat_from_yaw_pitch_roll(np.array([0.0, 0.2, -0.3]), np.array([0.0, 0.1, -0.1]), np.zeros(3))
    got, fast, ref, hits, valid = shade_three_ways(renderer, position, rotation, np.array([4, 5, 6]), device)
    assert valid.mean() > 0.3 and (~valid).mean() > 0.05  # hits and misses
    assert set(np.unique(hits.triangle[valid])) == {0, 1, 2, 3}
    np.testing.assert_array_equal(got[1], ref[1])
    assert_close_rgb(got[0], ref[0], levels=1, fraction=1e-3)
    assert_close_rgb(got[0], fast[0], levels=1, fraction=1e-3)
    np.testing.assert_array_equal(got[2], ref[2])
    # The whole torch path renders the same images as the numba path.
    views = Renderer(scene, cfg, device=device).render(position, rotation, np.array([4, 5, 6]))
    numba = renderer.render(position, rotation, np.array([4, 5, 6]))
    np.testing.assert_array_equal(views.depth, numba.depth)
    assert_close_rgb(views.rgb, numba.rgb, levels=1, fraction=1e-3)
    np.testing.assert_array_equal(views.semantic, numba.semantic)


@pytest.mark.parametrize("device", DEVICES)
def test_table_normals_are_the_backends(house, device):
    """Without backend normals the shading looks up each triangle's: the same as Open3D's on the hits."""
    scene, position, rotation = house
    renderer = Renderer(scene, RenderConfig(width=32, height=32))
    hits = renderer.caster.cast(renderer.rays(position, rotation))
    hit = hits.triangle != MISS
    table = face_normals(scene.vertices, scene.faces)
    # float32 cross products in another order than Open3D's: 1.2e-5 apart on slivers of the furniture
    np.testing.assert_allclose(table[hits.triangle[hit].astype(np.int64)], hits.normal[hit], atol=1e-4)
    surfaces = Renderer(scene, renderer.config, caster=renderer.caster, device=device).device_path.surfaces
    assert surfaces.face_normal.shape == (scene.n_triangles + 1, 3)
    np.testing.assert_array_equal(surfaces.face_normal[:-1].cpu().numpy(), table)
    assert not surfaces.face_normal[-1].any() and not surfaces.face_col[-1].any()  # the "no surface" row


# ----------------------------------------------------------------------------------------- the torch path


@pytest.mark.parametrize("device", DEVICES)
def test_rays_are_the_numba_kernels(house, device):
    scene, position, rotation = house
    cfg = RenderConfig(width=40, height=30, hfov_deg=75)
    numba = Renderer(scene, cfg).rays(position, rotation)
    path = Renderer(scene, cfg, device=device).device_path
    rays = path.rays(position, rotation)
    if device == "cuda":
        torch.cuda.synchronize()
    assert rays.device.type == device and rays.dtype == torch.float32 and rays.shape == numba.shape
    np.testing.assert_array_equal(rays.cpu().numpy(), numba)  # same float32 products and sums, same order


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("semantic", [SemanticMode.ROOM, SemanticMode.OBJECT])
def test_torch_path_with_mitsuba_matches_open3d_and_numba(house, device, semantic):
    scene, position, rotation = house
    seeds = np.arange(len(position)) + 7
    cfg = RenderConfig(width=128, height=128, semantic=semantic, lighting=JITTER)
    ref_r = Renderer(scene, cfg)
    got_r = Renderer(scene, RenderConfig(width=128, height=128, semantic=semantic, lighting=JITTER,
                                         backend=Backend.MITSUBA), device=device)
    assert isinstance(got_r.caster, MitsubaRayCaster) and got_r.device == torch.device(device)
    ref, got = ref_r.render(position, rotation, seeds), got_r.render(position, rotation, seeds)
    for name in ("rgb", "depth", "semantic", "room", "light"):
        a, b = getattr(ref, name), getattr(got, name)
        assert a.dtype == b.dtype and a.shape == b.shape, name
    near = np.abs(ref.rgb.astype(np.int16) - got.rgb.astype(np.int16)).max(axis=-1) <= 2  # (B, H, W)
    assert near.mean() >= 0.99, near.mean()
    assert (np.abs(ref.depth - got.depth) <= 1e-3).mean() >= 0.99
    hits = ref_r.caster.cast(ref_r.rays(position, rotation))
    inner = interior(hits.triangle, hits.bary).reshape(ref.semantic.shape)
    assert (got.semantic[inner] == ref.semantic[inner]).mean() >= 0.99
    np.testing.assert_array_equal(got.room, ref.room)
    np.testing.assert_array_equal(got.light, ref.light)


@pytest.mark.parametrize("device", DEVICES)
def test_torch_path_equals_numba_path_on_the_same_caster(house, device):
    """Mitsuba (LLVM) casts both: rays, hits and normals are then the same, and so are the images."""
    scene, position, rotation = house
    cfg = RenderConfig(width=48, height=40, semantic=SemanticMode.OBJECT, max_depth=5.0, lighting=JITTER,
                       backend=Backend.MITSUBA)
    numba = Renderer(scene, cfg)
    assert numba.device is None  # Mitsuba on the CPU: the numba path unless the torch path is asked for
    torch_r = Renderer(scene, cfg, caster=numba.caster, device=device)
    seeds = np.arange(len(position))
    a, b = numba.render(position, rotation, seeds), torch_r.render(position, rotation, seeds)
    if device == "cpu" or numba.caster.variant.startswith("cuda_"):
        np.testing.assert_array_equal(a.depth, b.depth)
    else:  # LLVM hits vs the GPU's
        assert (np.abs(a.depth - b.depth) <= 1e-3).mean() >= 0.99
    assert_close_rgb(a.rgb, b.rgb, levels=2, fraction=0.01)
    assert (a.semantic == b.semantic).mean() >= 0.99


@pytest.mark.parametrize("device", DEVICES)
def test_light_jitter_is_per_view(device):
    scene = scene_from_trimesh(room_with_furniture(1))
    cfg = RenderConfig(width=16, height=16, lighting=JITTER)
    r = Renderer(scene, cfg, device=device)
    pos = np.tile([[0.0, 1.5, 0.0]], (3, 1))
    q = np.tile(quat_from_yaw_pitch_roll(0, 0, 0), (3, 1))
    a = r.render(pos, q, light_seeds=np.array([1, 2, 1]))
    np.testing.assert_array_equal(a.rgb[0], a.rgb[2])
    assert not np.array_equal(a.rgb[0], a.rgb[1])
    np.testing.assert_array_equal(a.depth[0], a.depth[1])  # light changes colour only
    np.testing.assert_array_equal(a.light, Renderer(scene, cfg).lights(np.array([1, 2, 1])))
    numba = Renderer(scene, cfg).render(pos, q, light_seeds=np.array([1, 2, 1]))
    assert_close_rgb(a.rgb, numba.rgb, levels=1, fraction=1e-3)


@pytest.mark.parametrize("device", DEVICES)
def test_max_depth_and_misses_are_zero(device):
    box = trimesh.creation.box((2.0, 2.0, 2.0))  # seen from outside: most rays miss
    scene = scene_from_trimesh(box)
    cfg = RenderConfig(width=32, height=32, max_depth=4.5, semantic=SemanticMode.OBJECT)
    r = Renderer(scene, cfg, device=device)
    q = quat_from_yaw_pitch_roll(0, 0, 0)[None]
    near = r.render(np.array([[0, 0, 4.0]]), q)
    far = r.render(np.array([[0, 0, 6.0]]), q)
    assert near.depth[0, 16, 16] == pytest.approx(3.0)
    assert near.depth[0, 0, 0] == 0 and np.all(near.rgb[0, 0, 0] == 0) and near.semantic[0, 0, 0] == 0
    assert near.semantic[0, 16, 16] == 1
    assert np.all(far.depth == 0) and np.all(far.rgb == 0) and np.all(far.semantic == 0)  # beyond max_depth
    numba = Renderer(scene, cfg).render(np.array([[0, 0, 4.0]]), q)
    np.testing.assert_array_equal(near.depth, numba.depth)
    np.testing.assert_array_equal(near.rgb, numba.rgb)


@pytest.mark.parametrize("device", DEVICES)
def test_chunks_and_empty_batches(house, device):
    scene, position, rotation = house
    cfg = RenderConfig(width=40, height=30, semantic=SemanticMode.ROOM, lighting=JITTER)
    seeds = np.arange(len(position))
    whole = Renderer(scene, cfg, device=device).render(position, rotation, seeds)
    chunked = Renderer(scene, cfg, device=device, chunk_rays=5 * 40 * 30 - 7)  # 4 views a step: 4, 4, 4
    chunked = chunked.render(position, rotation, seeds)
    for name in ("rgb", "depth", "semantic"):
        np.testing.assert_array_equal(getattr(whole, name), getattr(chunked, name))
    empty = Renderer(scene, cfg, device=device).render(np.zeros((0, 3)), np.zeros((0, 4)), np.zeros(0, np.int64))
    assert empty.rgb.shape == (0, 30, 40, 3)
    assert empty.depth.shape == empty.semantic.shape == (0, 30, 40)


@pytest.mark.slow  # compiling takes ~10-30 s on two cores
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's compiler stack uses torch.jit internally
@pytest.mark.parametrize("device", DEVICES)
def test_compiled_shading_is_the_same(house, device):
    scene, position, rotation = house
    cfg = RenderConfig(width=40, height=30, semantic=SemanticMode.OBJECT, max_depth=4.0, lighting=JITTER,
                       backend=Backend.MITSUBA)
    seeds = np.arange(len(position))
    eager = Renderer(scene, cfg, device=device).render(position, rotation, seeds)
    fused_r = Renderer(scene, cfg, device=device, compile_shading=True, chunk_rays=5 * 40 * 30)  # 5, 5, 2 views
    fused = fused_r.render(position, rotation, seeds)
    assert fused_r.device_path.compile  # it compiled (no fallback to eager)
    np.testing.assert_array_equal(fused.depth, eager.depth)
    np.testing.assert_array_equal(fused.semantic, eager.semantic)
    assert_close_rgb(fused.rgb, eager.rgb, levels=1, fraction=1e-3)  # an FMA on the GPU may move a level


# -------------------------------------------------------------------------------------- cast_torch, devices


@pytest.mark.parametrize("variant", VARIANTS)
def test_cast_torch_is_cast_on_device(house, variant):
    scene, position, rotation = house
    caster = MitsubaRayCaster(scene.vertices, scene.faces, variant=variant)
    device = caster.torch_device_type
    rays = Renderer(scene, RenderConfig(width=64, height=64)).rays(position, rotation)
    rays[:50, 3:] = [0.0, 1.0, 0.0]  # straight up: the ceiling
    rays[50:60, :3] = [500.0, 500.0, 500.0]  # far outside: misses
    ref = caster.cast(rays)
    t, tri, bary = caster.cast_torch(torch.from_numpy(rays).to(device))
    assert t.device.type == tri.device.type == bary.device.type == device
    assert t.dtype == torch.float32 and tri.dtype == torch.int32 and bary.dtype == torch.float32
    assert t.shape == (len(rays),) and bary.shape == (len(rays), 2)
    np.testing.assert_array_equal(t.cpu().numpy(), ref.t)
    np.testing.assert_array_equal(tri.cpu().numpy().view(np.uint32), ref.triangle)  # -1 == MISS
    np.testing.assert_array_equal(bary.cpu().numpy(), ref.bary)
    assert (tri[50:60] == -1).all() and torch.isinf(t[50:60]).all()
    empty = caster.cast_torch(torch.zeros((0, 6), device=device))
    assert [x.shape for x in empty] == [(0,), (0,), (0, 2)]
    other = "cpu" if device == "cuda" else "meta"
    with pytest.raises(ValueError, match="torch tensor on"):
        caster.cast_torch(torch.zeros((4, 6), device=other))
    with pytest.raises(ValueError, match=r"\(N, 6\)"):
        caster.cast_torch(torch.zeros((4, 3), device=device))


def test_device_selection():
    scene = scene_from_trimesh(trimesh.creation.box((2.0, 2.0, 2.0)))
    assert Renderer(scene, RenderConfig()).device is None  # Open3D: the numba path
    on_cpu = Renderer(scene, RenderConfig(backend=Backend.MITSUBA))
    gpu = on_cpu.caster.variant.startswith("cuda_") and torch.cuda.is_available()
    assert on_cpu.device == (torch.device("cuda") if gpu else None)  # the torch path only on a GPU
    assert Renderer(scene, RenderConfig(), device="cpu").device == torch.device("cpu")
    open3d_torch = Renderer(scene, RenderConfig(), device=torch.device("cpu"))
    assert open3d_torch.device_path.device_cast is False  # Open3D casts on the host
    mitsuba_cpu = Renderer(scene, RenderConfig(backend=Backend.MITSUBA), device="cpu")
    assert mitsuba_cpu.device_path.device_cast == mitsuba_cpu.caster.variant.startswith("llvm_")  # else via the host
    with pytest.raises(ValueError, match="unknown render device"):
        Renderer(scene, RenderConfig(), device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            Renderer(scene, RenderConfig(), device="cuda")


def test_cli_backend_option(tmp_path):
    """``ess render --backend`` reaches the render config, and Mitsuba renders the dataset Open3D renders."""
    import h5py

    from ess.main import main

    base = ["render", "procedural:1", "--views", "6", "--size", "24x16", "--semantic", "room", "--no-progress"]
    assert main(base + ["--out", str(tmp_path / "o3d")]) == 0
    assert main(base + ["--backend", "mitsuba", "--out", str(tmp_path / "mi")]) == 0
    with h5py.File(tmp_path / "o3d" / "shard-00000.h5") as a, h5py.File(tmp_path / "mi" / "shard-00000.h5") as b:
        assert '"backend": "mitsuba"' in b.attrs["config"] and '"backend": "open3d"' in a.attrs["config"]
        # each backend casts its own navigable grid: floor heights (so camera poses) may be one float32 ulp apart
        np.testing.assert_allclose(a["pose"][()], b["pose"][()], rtol=0, atol=1e-6)
        for key in ("room", "light"):
            np.testing.assert_array_equal(a[key][()], b[key][()])
        near = np.abs(a["rgb"][()].astype(np.int16) - b["rgb"][()].astype(np.int16)).max(axis=-1) <= 2
        assert near.mean() >= 0.99
        assert (np.abs(a["depth"][()] - b["depth"][()]) <= 1e-3).mean() >= 0.99
        assert (a["semantic"][()] == b["semantic"][()]).mean() >= 0.98


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shading", ["auto", "flat", "lit"])
@pytest.mark.parametrize("lighting", [LightingConfig(), JITTER])
def test_flat_and_lit_faces_shade_alike_three_ways(device, shading, lighting):
    """A scene whose textured material asks to be flat and whose plain one is lit, under every shading mode."""
    scene = wrapped_quad_scene()
    tex, plain = scene.materials
    scene = dataclasses.replace(scene, materials=(dataclasses.replace(tex, unlit=True), plain))
    cfg = RenderConfig(width=96, height=64, hfov_deg=100, shading=shading, lighting=lighting)
    renderer = Renderer(scene, cfg)
    expected_flat = {"auto": {0, 1}, "flat": {0, 1, 2, 3}, "lit": set()}[shading]
    assert set(np.flatnonzero(renderer._face_flat)) == expected_flat
    position = np.array([[0.0, 1.0, 0.0], [0.3, 0.8, -0.5], [-0.4, 1.2, 0.2]])
    rotation = quat_from_yaw_pitch_roll(np.array([0.0, 0.2, -0.3]), np.array([0.0, 0.1, -0.1]), np.zeros(3))
    got, fast, ref, hits, valid = shade_three_ways(renderer, position, rotation, np.array([4, 5, 6]), device)
    assert_close_rgb(got[0], ref[0], levels=1, fraction=1e-3)
    assert_close_rgb(fast[0], ref[0], levels=1, fraction=1e-3)
    views = Renderer(scene, cfg, device=device).render(position, rotation, np.array([4, 5, 6]))
    assert_close_rgb(views.rgb, renderer.render(position, rotation, np.array([4, 5, 6])).rgb, levels=1, fraction=1e-3)
