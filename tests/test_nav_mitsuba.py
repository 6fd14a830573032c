"""Navigation without Open3D: :meth:`MitsubaRayCaster.list_intersections` (repeated first-hit casts) lists what
Open3D's ``list_intersections`` lists, the navigable grid built through it is Open3D's, and
``ess render --backend mitsuba`` runs with ``open3d`` unimportable (the GPU machine has no Open3D).

Mitsuba runs its ``llvm_ad_rgb`` variant here (see tests/test_mitsuba.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from envsim.nav.build import build_navgrid
from envsim.render.raycast import MitsubaRayCaster, Open3DRayCaster, list_step
from envsim.scenes.procedural.geometry import cat

ROOT = Path(__file__).resolve().parent.parent
KEYS = ("ray_ids", "t_hit", "primitive_ids", "geometry_ids", "primitive_uvs", "ray_splits")


def quad(y: float, *, up: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A 4 x 4 m horizontal square at height ``y``, normal +Y (``up``) or -Y."""
    v = np.array([[-2, y, -2], [2, y, -2], [2, y, 2], [-2, y, 2]], np.float32)
    f = np.array([[0, 2, 1], [0, 3, 2]] if up else [[0, 1, 2], [0, 2, 3]], np.int32)
    return v, f


def surfaces(hits: dict, n_rays: int, eps: float = 1e-4) -> list[list[float]]:
    """Per ray, the sorted distinct hit distances (hits closer than ``eps`` merged, as navigation merges them)."""
    out: list[list[float]] = [[] for _ in range(n_rays)]
    for r, t in sorted(zip(hits["ray_ids"].tolist(), hits["t_hit"].tolist())):
        if not out[r] or t - out[r][-1] > eps:
            out[r].append(t)
    return out


@pytest.fixture(scope="module")
def house():
    import tempfile

    from envsim.scenes.load import load_scene
    from envsim.scenes.procedural import ProceduralConfig, generate_house, write_house

    with tempfile.TemporaryDirectory() as tmp:
        glb, _ = write_house(generate_house(rng=np.random.default_rng(2), config=ProceduralConfig(texture_size=16)),
                             Path(tmp) / "house.glb")
        return load_scene(glb)


def test_list_intersections_of_stacked_floors():
    v, f = cat(quad(0.0), quad(1.0, up=False), quad(2.5), quad(2.5, up=False))  # the last two coincide
    rays = np.array([[0.3, 5.0, 0.2, 0.0, -1.0, 0.0],    # down through all four
                     [0.3, 5.0, 0.2, 0.0, -2.0, 0.0],    # the same, t in units of |d|
                     [9.0, 5.0, 9.0, 0.0, -1.0, 0.0],    # beside: no hit
                     [0.3, -1.0, 0.2, 0.0, 1.0, 0.0]],   # up from below
                    np.float32)
    got = MitsubaRayCaster(v, f, variant="llvm_ad_rgb").list_intersections(rays)
    ref = Open3DRayCaster(v, f).list_intersections(rays)
    assert set(got) == set(KEYS)
    for k in KEYS:
        assert got[k].dtype == ref[k].dtype, k
    assert got["primitive_uvs"].shape == (len(got["t_hit"]), 2)
    np.testing.assert_array_equal(got["ray_splits"], [0, 4, 8, 8, 12])
    np.testing.assert_array_equal(got["ray_ids"], np.repeat([0, 1, 3], 4))
    np.testing.assert_allclose(got["t_hit"][:4], [2.5, 2.5, 4.0, 5.0], atol=1e-5)
    np.testing.assert_allclose(got["t_hit"][4:8], [1.25, 1.25, 2.0, 2.5], atol=1e-5)
    np.testing.assert_allclose(got["t_hit"][8:], [1.0, 2.0, 3.5, 3.5], atol=1e-5)
    assert set(got["primitive_ids"][:2].tolist()) in ({4, 6}, {4, 7}, {5, 6}, {5, 7})  # both coincident quads
    tri = v[f[got["primitive_ids"]]].astype(np.float64)  # (H, 3, 3); every hit's uv gives its point
    u, w = got["primitive_uvs"][:, :1], got["primitive_uvs"][:, 1:]
    ids = got["ray_ids"]
    np.testing.assert_allclose((1 - u - w) * tri[:, 0] + u * tri[:, 1] + w * tri[:, 2],
                               rays[ids, :3] + got["t_hit"][:, None] * rays[ids, 3:], atol=1e-5)
    for r in (0, 1, 3):  # Open3D lists the same distances (it may list a shared edge's two triangles)
        assert surfaces(got, 4)[r] == pytest.approx(surfaces(ref, 4)[r], abs=1e-5)


def test_list_intersections_limits_and_empty_input():
    v, f = cat(*(quad(float(y)) for y in range(5)))
    caster = MitsubaRayCaster(v, f, variant="llvm_ad_rgb")
    ray = np.array([[0.1, 9.0, 0.1, 0.0, -1.0, 0.0]], np.float32)
    assert len(caster.list_intersections(ray)["t_hit"]) == 5
    assert len(caster.list_intersections(ray, max_hits=2)["t_hit"]) == 2
    empty = caster.list_intersections(np.zeros((0, 6), np.float32))
    assert all(empty[k].shape[0] == 0 for k in KEYS if k != "ray_splits")
    np.testing.assert_array_equal(empty["ray_splits"], [0])
    assert list_step(np.array([[0.0, 0.0, 0.0], [32.0, 0.0, 0.0]])) == pytest.approx([1e-5, 2.5e-5], rel=0.1)


def test_list_intersections_match_open3d_on_a_house(house):
    rng = np.random.default_rng(0)
    lo, hi = house.vertices.min(axis=0), house.vertices.max(axis=0)
    n = 4000
    rays = np.zeros((n, 6), np.float32)
    rays[:, [0, 2]] = rng.uniform(lo[[0, 2]], hi[[0, 2]], size=(n, 2))
    rays[:, 1] = hi[1] + 1.0
    rays[:, 3:] = rng.normal(size=(n, 3)) * [0.2, 1.0, 0.2]
    rays[:, 4] = -np.abs(rays[:, 4])  # downwards, slanted: walls, furniture, floors, ceilings
    got = surfaces(MitsubaRayCaster(house.vertices, house.faces, variant="llvm_ad_rgb").list_intersections(rays), n)
    ref = surfaces(Open3DRayCaster(house.vertices, house.faces).list_intersections(rays), n)
    same = [len(a) == len(b) and np.allclose(a, b, atol=1e-4) for a, b in zip(got, ref)]
    assert np.mean(same) >= 0.995, np.mean(same)  # measured: 1.0 (disagreements only where rays graze edges)
    assert sum(map(len, ref)) > 2 * n  # the rays cross several surfaces each


def test_navgrid_through_a_caster_is_open3ds(house):
    ref = build_navgrid(house.vertices, house.faces)  # Open3D's RaycastingScene inside
    same = build_navgrid(house.vertices, house.faces, caster=Open3DRayCaster(house.vertices, house.faces))
    np.testing.assert_array_equal(same.walkable, ref.walkable)
    np.testing.assert_array_equal(same.height, ref.height)
    got = build_navgrid(house.vertices, house.faces, caster=MitsubaRayCaster(house.vertices, house.faces,
                                                                             variant="llvm_ad_rgb"))
    assert got.walkable.shape == ref.walkable.shape and np.array_equal(got.origin, ref.origin)
    # Measured on procedural houses 0-3 and furnished rooms (also double-sided): identical walkable cells.
    # Floors may differ outside the walls, where rays run along the edges of coincident triangles.
    assert np.count_nonzero(got.walkable != ref.walkable) <= 4
    both = got.walkable & ref.walkable
    np.testing.assert_allclose(got.height[both], ref.height[both], atol=1e-5)


BLOCK_OPEN3D = (
    "import sys; sys.modules['open3d'] = None\n"  # any `import open3d` now raises ImportError
    "from ess.main import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def test_render_with_mitsuba_needs_no_open3d(tmp_path):
    args = ["render", "procedural:1", "--backend", "mitsuba", "--views", "4", "--size", "16x16", "--no-progress",
            "--out", str(tmp_path / "out")]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", BLOCK_OPEN3D, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "out" / "shard-00000.h5").is_file() and any((tmp_path / "out" / "nav").iterdir())
    # ... and the same command with the default backend does need it: the block works
    done = subprocess.run([sys.executable, "-c", BLOCK_OPEN3D, *args[:2], "--views", "4", "--size", "16x16",
                           "--no-progress", "--out", str(tmp_path / "o3d")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode != 0 and "open3d" in done.stderr
