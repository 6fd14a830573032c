"""The Mitsuba 3 backend (GPU path) against Open3D: the same rays must give the same hits, and the full
renderer the same images. On a CPU machine Mitsuba runs its ``llvm_ad_rgb`` variant, the GPU code path
compiled for the CPU; where a CUDA device works, ``cuda_ad_rgb`` is checked too.

Mitsuba is installed by the ``test`` extra: these tests fail (they do not skip) when it is missing or
Dr.Jit finds no libLLVM (``.ci/setup`` installs one).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from envsim.render.raycast import MISS, MitsubaRayCaster, Open3DRayCaster, RayHits, available_backends, make_ray_caster
from envsim.render.renderer import Backend, RenderConfig, Renderer, SemanticMode


def _variants() -> list[str]:
    from envsim.render.raycast import mitsuba_variant

    return ["llvm_ad_rgb"] + (["cuda_ad_rgb"] if mitsuba_variant() == "cuda_ad_rgb" else [])


VARIANTS = _variants()


def interior(hits: RayHits, eps: float = 1e-3) -> np.ndarray:
    """Hits at least ``eps`` (barycentric) away from every edge of their triangle, bool (N,)."""
    u, v = hits.bary[:, 0], hits.bary[:, 1]
    return (hits.triangle != MISS) & (np.minimum(np.minimum(u, v), 1.0 - u - v) > eps)


@pytest.fixture(scope="module")
def house(walked_house):
    return walked_house


# ------------------------------------------------------------------------------------ cast parity, real rays


@pytest.mark.parametrize("variant", VARIANTS)
def test_cast_matches_open3d_on_a_house(house, variant):
    scene, position, rotation = house
    rays = Renderer(scene, RenderConfig(width=128, height=128)).rays(position, rotation)  # z-depth scaled dirs
    ref = Open3DRayCaster(scene.vertices, scene.faces).cast(rays)
    got = MitsubaRayCaster(scene.vertices, scene.faces, variant=variant).cast(rays)
    assert got.t.dtype == np.float32 and got.triangle.dtype == np.uint32
    assert got.bary.shape == (len(rays), 2) and got.normal.shape == (len(rays), 3)
    assert got.bary.dtype == np.float32 and got.normal.dtype == np.float32
    # Depth: same hit/miss and t within 1 mm on >= 99% of pixels.
    same_miss = (ref.triangle == MISS) == (got.triangle == MISS)
    both = (ref.triangle != MISS) & (got.triangle != MISS)
    within = np.where(both, np.abs(ref.t - got.t) <= 1e-3, same_miss)
    assert within.mean() >= 0.99, within.mean()
    assert np.isinf(got.t[got.triangle == MISS]).all()
    # Triangle ids identical away from triangle edges, where the two BVHs may legitimately disagree.
    inner = interior(ref) & interior(got)
    assert inner.mean() > 0.9  # the comparison covers most of the image
    agree = ref.triangle[inner] == got.triangle[inner]
    assert agree.mean() >= 0.99, agree.mean()
    same = inner.copy()
    same[inner] = agree
    np.testing.assert_allclose(got.bary[same], ref.bary[same], atol=1e-3)
    # Normals: float32 cross products of the same vertices, taken in another order by each library (1.2e-5 seen
    # on slivers of the furniture).
    np.testing.assert_allclose(got.normal[same], ref.normal[same], atol=1e-4)


@pytest.mark.parametrize("semantic", [SemanticMode.ROOM, SemanticMode.OBJECT])
def test_renderer_images_match_open3d(house, semantic):
    scene, position, rotation = house
    cfg = RenderConfig(width=128, height=128, semantic=semantic, batch_views=8)
    ref_r = Renderer(scene, cfg)
    got_r = Renderer(scene, RenderConfig(width=128, height=128, semantic=semantic, backend=Backend.MITSUBA))
    assert isinstance(got_r.caster, MitsubaRayCaster)
    ref, got = ref_r.render(position, rotation), got_r.render(position, rotation)
    diff = np.abs(ref.rgb.astype(np.int16) - got.rgb.astype(np.int16))  # (B, H, W, 3)
    assert diff.mean() < 1.0, diff.mean()
    assert (diff.max(axis=-1) <= 2).mean() >= 0.99
    assert (np.abs(ref.depth - got.depth) <= 1e-3).mean() >= 0.99
    # Labels: identical away from triangle edges; the camera's room does not depend on the backend.
    hits = ref_r.caster.cast(ref_r.rays(position, rotation))
    inner = interior(hits).reshape(ref.semantic.shape)
    assert got.semantic.dtype == ref.semantic.dtype
    assert (got.semantic[inner] == ref.semantic[inner]).mean() >= 0.99
    assert np.array_equal(got.room, ref.room)


# -------------------------------------------------------------------------------- conventions, one triangle

TRIANGLE_V = np.array([[0.0, 0.0, -2.0], [1.0, 0.0, -2.0], [0.0, 1.0, -2.0]], np.float32)
TRIANGLE_F = np.array([[0, 1, 2]], np.int32)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("scale", [0.25, 1.0, 3.7])
def test_t_is_in_units_of_the_direction_length(variant, scale):
    caster = MitsubaRayCaster(TRIANGLE_V, TRIANGLE_F, variant=variant)
    d = np.array([0.05, 0.02, -1.0]) * scale
    rays = np.array([[0.2, 0.3, 0.0, *d]], np.float32)
    hits = caster.cast(rays)
    assert hits.triangle[0] == 0
    assert hits.t[0] == pytest.approx(2.0 / scale, rel=1e-6)  # z drops by |d_z| = scale per unit of t
    ref = Open3DRayCaster(TRIANGLE_V, TRIANGLE_F).cast(rays)
    assert hits.t[0] == pytest.approx(ref.t[0], rel=1e-6)


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_miss_gives_inf_and_MISS(variant):
    rays = np.array([[5.0, 5.0, 0.0, 0.0, 0.0, -1.0], [0.2, 0.2, 0.0, 0.0, 0.0, 1.0]], np.float32)  # beside, away
    hits = MitsubaRayCaster(TRIANGLE_V, TRIANGLE_F, variant=variant).cast(rays)
    ref = Open3DRayCaster(TRIANGLE_V, TRIANGLE_F).cast(rays)
    assert np.isinf(hits.t).all() and (hits.triangle == MISS).all()
    for name in ("t", "triangle", "bary", "normal"):  # the same fill values as Open3D on a miss
        np.testing.assert_array_equal(getattr(hits, name), getattr(ref, name))
    empty = MitsubaRayCaster(TRIANGLE_V, TRIANGLE_F, variant=variant).cast(np.zeros((0, 6), np.float32))
    assert empty.t.shape == (0,) and empty.bary.shape == (0, 2) and empty.normal.shape == (0, 3)


@pytest.mark.parametrize("variant", VARIANTS)
def test_barycentrics_reconstruct_the_hit_point(variant):
    rng = np.random.default_rng(0)
    v = rng.normal(size=(3, 3)).astype(np.float32) + np.float32([0, 0, -4])
    w = rng.dirichlet([2, 2, 2], size=200)  # (N, 3) target points inside the triangle
    target = w @ v.astype(np.float64)
    origin = rng.normal(size=(200, 3)) * 0.3
    direction = (target - origin) * rng.uniform(0.2, 5.0, size=(200, 1))  # any length
    rays = np.concatenate([origin, direction], axis=1).astype(np.float32)
    hits = MitsubaRayCaster(v, TRIANGLE_F, variant=variant).cast(rays)
    assert (hits.triangle == 0).all()
    u, vv = hits.bary[:, :1].astype(np.float64), hits.bary[:, 1:].astype(np.float64)
    from_bary = (1 - u - vv) * v[0] + u * v[1] + vv * v[2]  # Open3D's primitive_uvs convention
    from_t = rays[:, :3].astype(np.float64) + hits.t[:, None].astype(np.float64) * rays[:, 3:]
    np.testing.assert_allclose(from_bary, from_t, atol=1e-5)
    np.testing.assert_allclose(hits.bary, Open3DRayCaster(v, TRIANGLE_F).cast(rays).bary, atol=1e-5)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("faces", [TRIANGLE_F, TRIANGLE_F[:, ::-1]], ids=["ccw", "cw"])
def test_normal_follows_the_asset_winding_like_open3d(variant, faces):
    faces = np.ascontiguousarray(faces)
    rays = np.array([[0.2, 0.3, 0.0, 0.0, 0.0, -1.0], [0.2, 0.3, -5.0, 0.0, 0.0, 2.0]], np.float32)  # both sides
    hits = MitsubaRayCaster(TRIANGLE_V, faces, variant=variant).cast(rays)
    ref = Open3DRayCaster(TRIANGLE_V, faces).cast(rays)
    expected = [0.0, 0.0, 1.0] if faces[0, 0] == 0 else [0.0, 0.0, -1.0]  # (b - a) x (c - a), not ray-facing
    np.testing.assert_allclose(hits.normal, [expected, expected], atol=1e-7)
    np.testing.assert_allclose(hits.normal, ref.normal, atol=1e-7)


# ------------------------------------------------------------------------------------ selection and errors


def test_mitsuba_is_available_here():
    """CI installs Mitsuba (test extra) and libLLVM (.ci/setup): the parity tests above must really run."""
    assert available_backends() == ["open3d", "mitsuba"]


def test_make_ray_caster_picks_backends():
    assert isinstance(make_ray_caster("open3d", TRIANGLE_V, TRIANGLE_F), Open3DRayCaster)
    assert isinstance(make_ray_caster(Backend.MITSUBA, TRIANGLE_V, TRIANGLE_F), MitsubaRayCaster)
    auto = make_ray_caster("auto", TRIANGLE_V, TRIANGLE_F)  # Mitsuba only on a working CUDA device
    if "cuda_ad_rgb" in VARIANTS:
        assert isinstance(auto, MitsubaRayCaster) and auto.variant == "cuda_ad_rgb"
    else:
        assert isinstance(auto, Open3DRayCaster)
    with pytest.raises(ValueError, match="open3d, mitsuba, auto"):
        make_ray_caster("embree", TRIANGLE_V, TRIANGLE_F)
    with pytest.raises(ValueError, match="variant"):
        MitsubaRayCaster(TRIANGLE_V, TRIANGLE_F, variant="scalar_rgb")


def test_render_config_backend():
    assert RenderConfig().backend is Backend.OPEN3D
    assert RenderConfig(backend="mitsuba").backend is Backend.MITSUBA
    with pytest.raises(ValueError, match="open3d, mitsuba, auto"):
        RenderConfig(backend="optix")


def test_missing_mitsuba_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mitsuba", None)  # import mitsuba -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'ess-toolkit\[gpu\]'"):
        make_ray_caster("mitsuba", TRIANGLE_V, TRIANGLE_F)
    assert available_backends() == ["open3d"]
    assert isinstance(make_ray_caster("auto", TRIANGLE_V, TRIANGLE_F), Open3DRayCaster)
